//! Uploads: the API streams an attachment's bytes into an [`Upload`]; the engine checks the
//! name against the programme's rules first and records the upload once it is complete.

use partnerflow_core::attachments::AttachmentRules;
use partnerflow_store::attachments::{self, Attachment, Blobs, Upload};
use uuid::Uuid;

use crate::engine::{Engine, Error, Result};

/// Who uploads what, as authentication and the request establish it.
#[derive(Debug, Clone)]
pub struct UploadMeta {
    pub screen: String,
    pub filename: String,
    pub uploaded_by: String,
    pub partner_id: Option<String>,
}

impl Engine {
    pub fn attachment_rules(&self) -> &AttachmentRules {
        &self.inner.programme.attachments
    }

    fn blobs(&self) -> Blobs {
        Blobs::new(self.inner.settings.attachments_dir.clone())
    }

    /// Starts an upload, after checking its screen and file name (nothing is written when
    /// they break a rule).
    pub async fn begin_upload(&self, screen: &str, filename: &str) -> Result<Upload> {
        self.attachment_rules()
            .check_name(screen, filename)
            .map_err(|e| Error::Invalid(vec![e]))?;
        Ok(self.blobs().begin().await?)
    }

    /// Keeps a complete upload and records it.
    pub async fn finish_upload(&self, upload: Upload, meta: UploadMeta) -> Result<Attachment> {
        let (sha256, size) = upload.finish().await?;
        let attachment = Attachment {
            id: Uuid::now_v7().to_string(),
            sha256,
            filename: meta.filename.trim().to_owned(),
            screen: meta.screen,
            size: i64::try_from(size).unwrap_or(i64::MAX),
            uploaded_by: meta.uploaded_by,
            partner_id: meta.partner_id,
            created_at: self.now(),
        };
        let mut conn = self.conn().await?;
        attachments::insert(&mut conn, &attachment).await?;
        Ok(attachment)
    }

    /// A recorded attachment.
    pub async fn attachment(&self, id: &str) -> Result<Option<Attachment>> {
        let mut conn = self.conn().await?;
        Ok(attachments::get(&mut conn, id).await?)
    }

    /// Where the file of a recorded attachment is.
    pub fn attachment_path(&self, sha256: &str) -> std::path::PathBuf {
        self.blobs().path_of(sha256)
    }
}
