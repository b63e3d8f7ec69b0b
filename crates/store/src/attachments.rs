//! Attachments: each file kept once, named by its SHA-256, in a directory of its own
//! (`<dir>/<first two hex digits>/<sha256>`), and a row per upload. An upload streams into a
//! temporary file in the same directory and is moved into place only once it is complete and
//! accepted; a refused or broken upload leaves nothing behind.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::Row;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use crate::{Conn, Error, Result, from_micros, to_micros};

/// Where attachment files live.
#[derive(Debug, Clone)]
pub struct Blobs {
    dir: PathBuf,
}

/// An upload under way: bytes written to a temporary file, hashed as they come.
#[derive(Debug)]
pub struct Upload {
    temp: PathBuf,
    file: Option<tokio::fs::File>,
    hash: Sha256,
    size: u64,
    dir: PathBuf,
}

fn io(e: std::io::Error) -> Error {
    Error::Corrupt(format!("attachment store: {e}"))
}

impl Blobs {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Blobs { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts an upload.
    pub async fn begin(&self) -> Result<Upload> {
        let tmp = self.dir.join("tmp");
        tokio::fs::create_dir_all(&tmp).await.map_err(io)?;
        let temp = tmp.join(Uuid::now_v7().to_string());
        let file = tokio::fs::File::create(&temp).await.map_err(io)?;
        Ok(Upload {
            temp,
            file: Some(file),
            hash: Sha256::new(),
            size: 0,
            dir: self.dir.clone(),
        })
    }

    /// The path of a stored file.
    pub fn path_of(&self, sha256: &str) -> PathBuf {
        self.dir.join(sha256.get(..2).unwrap_or("00")).join(sha256)
    }
}

impl Upload {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub async fn write(&mut self, chunk: &[u8]) -> Result<()> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| Error::Corrupt("attachment upload already finished".to_owned()))?;
        file.write_all(chunk).await.map_err(io)?;
        self.hash.update(chunk);
        self.size += chunk.len() as u64;
        Ok(())
    }

    /// Moves the complete file into place under its SHA-256 (a file already there with the
    /// same content is kept, the upload dropped); returns the hash and size.
    pub async fn finish(mut self) -> Result<(String, u64)> {
        if let Some(mut file) = self.file.take() {
            file.flush().await.map_err(io)?;
            file.sync_all().await.map_err(io)?;
        }
        let sha256 = hex::encode(std::mem::take(&mut self.hash).finalize());
        let target = Blobs::new(self.dir.clone()).path_of(&sha256);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        if tokio::fs::try_exists(&target).await.map_err(io)? {
            tokio::fs::remove_file(&self.temp).await.map_err(io)?;
        } else {
            tokio::fs::rename(&self.temp, &target).await.map_err(io)?;
        }
        Ok((sha256, self.size))
    }

    /// Drops the upload and its temporary file.
    pub async fn abort(mut self) {
        drop(self.file.take());
        let _ = tokio::fs::remove_file(&self.temp).await;
    }
}

/// One uploaded attachment.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Attachment {
    pub id: String,
    pub sha256: String,
    pub filename: String,
    pub screen: String,
    pub size: i64,
    pub uploaded_by: String,
    pub partner_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub async fn insert(conn: &mut Conn, a: &Attachment) -> Result<()> {
    sqlx::query(
        "insert into attachments (id, sha256, filename, screen, size, uploaded_by, partner_id, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&a.id)
    .bind(&a.sha256)
    .bind(&a.filename)
    .bind(&a.screen)
    .bind(a.size)
    .bind(&a.uploaded_by)
    .bind(a.partner_id.clone())
    .bind(to_micros(a.created_at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get(conn: &mut Conn, id: &str) -> Result<Option<Attachment>> {
    let row = sqlx::query(
        "select id, sha256, filename, screen, size, uploaded_by, partner_id, created_at from attachments where id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| {
        Ok(Attachment {
            id: r.try_get(0)?,
            sha256: r.try_get(1)?,
            filename: r.try_get(2)?,
            screen: r.try_get(3)?,
            size: r.try_get(4)?,
            uploaded_by: r.try_get(5)?,
            partner_id: r.try_get(6)?,
            created_at: from_micros(r.try_get(7)?),
        })
    })
    .transpose()
}

/// The recorded attachments among `ids` (ids that name none are left out).
pub async fn among(conn: &mut Conn, ids: &[String]) -> Result<Vec<Attachment>> {
    let mut found = Vec::new();
    for id in ids {
        if let Some(a) = get(conn, id).await? {
            found.push(a);
        }
    }
    Ok(found)
}
