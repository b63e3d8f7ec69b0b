//! External events (`POST /v1/instances/{id}/events/{event_name}`): an agreement uploaded, an
//! invoice received, a payment confirmed. Signed by an integration like decisions; the body is
//! the event's payload (an empty body is an empty object). An integration may post only the
//! events its configuration lists (403 otherwise); the engine answers 409 when the instance is
//! not waiting for that event.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::AppState;
use crate::auth::SignedIntegration;
use crate::error::ApiError;
use crate::extract::{AppPath, IdempotencyKey};

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/instances/{id}/events/{event_name}", post(post_event))
}

async fn post_event(
    State(state): State<AppState>,
    AppPath((id, name)): AppPath<(Uuid, String)>,
    key: IdempotencyKey,
    signed: SignedIntegration,
) -> Result<Json<Value>, ApiError> {
    if !signed.integration.events.contains(&name) {
        let message = format!(
            "integration `{}` may not post event `{name}`",
            signed.integration.id
        );
        return Err(ApiError::forbidden("out_of_scope", message));
    }
    let payload: Value = if signed.payload.body.is_empty() {
        json!({})
    } else {
        signed.payload.json()?
    };
    let idem = signed.payload.idempotency(key);
    let answer = state
        .engine
        .post_event(id, &name, payload, signed.integration.actor(), idem)
        .await?;
    Ok(Json(answer))
}
