//! Instances: start one (`POST /v1/workflows/{workflow_id}/instances`), show one with its
//! timeline, tasks and SLA clocks, and list them by status. Operators and signed integrations
//! may call all three.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{AppPath, AppQuery, IdempotencyKey, limit};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/workflows/{workflow_id}/instances", post(start))
        .route("/v1/instances", get(list))
        .route("/v1/instances/{id}", get(show))
        .route("/v1/instances/{id}/evidence", get(evidence))
}

#[derive(Debug, Deserialize)]
struct StartBody {
    business_key: String,
    input: Value,
}

/// 201 with the new instance; 200 with the existing one when the Idempotency-Key or the
/// business key was seen before.
async fn start(
    State(state): State<AppState>,
    AppPath(workflow_id): AppPath<String>,
    key: IdempotencyKey,
    caller: Caller,
) -> Result<Response, ApiError> {
    let body: StartBody = caller.payload.json()?;
    if body.business_key.trim().is_empty() {
        return Err(ApiError::invalid_field(
            "business_key",
            "required",
            "business_key must not be empty",
        ));
    }
    let idem = caller.payload.idempotency(key);
    let (started, created) = state
        .engine
        .start(
            &workflow_id,
            &body.business_key,
            body.input,
            caller.who.actor(),
            idem,
        )
        .await?;
    if !created {
        return Ok((StatusCode::OK, Json(started)).into_response());
    }
    let location = HeaderValue::from_str(&format!("/v1/instances/{}", started.id)).ok();
    let mut response = (StatusCode::CREATED, Json(started)).into_response();
    if let Some(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

async fn show(
    State(state): State<AppState>,
    AppPath(id): AppPath<Uuid>,
    _caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(state.engine.instance(id).await?))
}

/// The evidence bundle: timeline, tasks, notifications, the audit-chain check, and the same
/// for every child workflow.
async fn evidence(
    State(state): State<AppState>,
    AppPath(id): AppPath<Uuid>,
    _caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(state.engine.evidence(id).await?))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    status: Option<String>,
    limit: Option<i64>,
}

async fn list(
    State(state): State<AppState>,
    AppQuery(q): AppQuery<ListQuery>,
    _caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    let limit = limit(q.limit)?;
    Ok(Json(
        state.engine.instances(q.status.as_deref(), limit).await?,
    ))
}
