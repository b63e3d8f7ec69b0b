//! Uploads (`POST /v1/attachments?screen=<screen>&filename=<name>`, the file as the raw body):
//! streamed into the attachment store, the screen's extension list, the forbidden filename
//! characters and the size limit checked before and while the bytes arrive, never buffered
//! whole. A signed upload is verified over the streamed body as it goes and kept only when the
//! signature matches; a refused upload leaves no file behind. Answers 201 with the
//! attachment's id and SHA-256, which applications, claims and invoices then name.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use futures::StreamExt;
use partnerflow_engine::UploadMeta;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth;
use crate::error::ApiError;
use crate::extract::AppQuery;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/attachments", post(upload))
}

#[derive(Debug, Deserialize)]
struct UploadQuery {
    screen: String,
    filename: String,
}

async fn upload(
    State(state): State<AppState>,
    AppQuery(q): AppQuery<UploadQuery>,
    req: Request,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (parts, body) = req.into_parts();
    let (who, mut signature) = auth::streaming_caller(&parts, &state)?;
    let rules = state.engine.attachment_rules().clone();
    let mut upload = state.engine.begin_upload(&q.screen, &q.filename).await?;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                upload.abort().await;
                return Err(ApiError::bad_request(
                    "upload_broken",
                    format!("the upload broke off: {e}"),
                ));
            }
        };
        if upload.size() + chunk.len() as u64 > rules.max_bytes {
            upload.abort().await;
            let e = rules.too_large();
            return Err(ApiError::invalid_field(&e.field, &e.rule, e.message));
        }
        if let Some(s) = signature.as_mut() {
            s.update(&chunk);
        }
        if let Err(e) = upload.write(&chunk).await {
            upload.abort().await;
            return Err(partnerflow_engine::Error::from(e).into());
        }
    }
    if let Some(s) = signature
        && let Err(e) = s.finish()
    {
        upload.abort().await;
        return Err(auth::refuse_signature(e));
    }
    let meta = UploadMeta {
        screen: q.screen,
        filename: q.filename,
        uploaded_by: who.actor().id,
        partner_id: who.partner().map(str::to_owned),
    };
    let attachment = state.engine.finish_upload(upload, meta).await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "id": attachment.id, "sha256": attachment.sha256, "size": attachment.size,
                     "filename": attachment.filename, "screen": attachment.screen }),
        ),
    ))
}
