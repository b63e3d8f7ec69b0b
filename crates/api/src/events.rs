//! External events (`POST /v1/instances/{id}/events/{event_name}?correlation=<id>`): an
//! agreement uploaded, an invoice received, a payment confirmed. The correlation id names the
//! wait the event answers (the instance view lists open waits), so an event meant for an
//! earlier entry of a loop answers 409 instead of being taken by the current one. Signed by an integration like decisions; the body is
//! the event's payload (an empty body is an empty object). An integration may post only the
//! events its configuration lists (403 otherwise), a partner-side one only to its partner's
//! instances (404 otherwise); the engine answers 409 when the instance is not waiting for that
//! event.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::AppState;
use crate::auth::{SignedIntegration, Who};
use crate::error::ApiError;
use crate::extract::{AppPath, AppQuery, IdempotencyKey};

#[derive(Debug, serde::Deserialize)]
struct EventQuery {
    /// The correlation id of the wait the event answers (the instance view lists open waits).
    correlation: Option<String>,
}

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/instances/{id}/events/{event_name}", post(post_event))
}

async fn post_event(
    State(state): State<AppState>,
    AppPath((id, name)): AppPath<(Uuid, String)>,
    AppQuery(query): AppQuery<EventQuery>,
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
    let Some(correlation) = query.correlation.filter(|c| !c.is_empty()) else {
        return Err(ApiError::bad_request(
            "correlation_required",
            "an event must name the wait it answers: ?correlation=<id> (see the instance's `waits`)",
        )
        .with_details(json!([{ "field": "correlation", "rule": "required" }])));
    };
    let who = Who::Integration(signed.integration.clone());
    if who.partner().is_some() {
        let partner = state.engine.partner_of(id).await?;
        who.may_see(&format!("instance {id}"), partner.as_deref())?;
    }
    let payload: Value = if signed.payload.body.is_empty() {
        json!({})
    } else {
        signed.payload.json()?
    };
    let idem = signed.payload.idempotency(key);
    let answer = state
        .engine
        .post_event(id, &name, &correlation, payload, who.actor(), idem)
        .await?;
    Ok(Json(answer))
}
