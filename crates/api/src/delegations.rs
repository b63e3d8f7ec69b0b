//! Out-of-office and reassignment, for operators: `POST /v1/delegations` `{person, delegate,
//! role?, starts_at, ends_at}`, `GET /v1/delegations`, `DELETE /v1/delegations/{id}`, and
//! `POST /v1/tasks/{task_id}/assign` `{person}`. Each is audited under the operator's id.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use partnerflow_core::directory::Delegation;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Caller, Who};
use crate::error::ApiError;
use crate::extract::AppPath;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/delegations", get(list).post(create))
        .route("/v1/delegations/{id}", delete(revoke))
        .route("/v1/tasks/{task_id}/assign", post(assign))
}

/// The operator's id; integrations may not manage delegations or assignments.
pub(crate) fn operator(who: &Who) -> Result<&str, ApiError> {
    match who {
        Who::Operator(id) => Ok(id),
        Who::Integration(i) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("integration `{}` may not do this: operators only", i.id),
        )),
    }
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let by = operator(&caller.who)?;
    let d: Delegation = caller.payload.json()?;
    let stored = state.engine.delegate(d, by).await?;
    Ok((StatusCode::CREATED, Json(json!(stored))))
}

async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    operator(&caller.who)?;
    Ok(Json(json!(state.engine.delegations().await?)))
}

async fn revoke(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    caller: Caller,
) -> Result<StatusCode, ApiError> {
    operator(&caller.who)?;
    state.engine.revoke_delegation(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
struct AssignBody {
    person: String,
}

async fn assign(
    State(state): State<AppState>,
    AppPath(task_id): AppPath<Uuid>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    operator(&caller.who)?;
    let body: AssignBody = caller.payload.json()?;
    if body.person.trim().is_empty() {
        return Err(ApiError::invalid_field(
            "person",
            "required",
            "person must name someone in the directory",
        ));
    }
    let answer = state
        .engine
        .reassign(task_id, &body.person, caller.who.actor())
        .await?;
    Ok(Json(answer))
}
