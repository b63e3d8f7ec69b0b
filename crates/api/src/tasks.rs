//! Human tasks: the work lists (`GET /v1/tasks?role=R&status=open`) and reviewer callbacks
//! (`POST /v1/tasks/{task_id}/decision`).
//!
//! A decision must be signed by an integration scoped to the task's role; whether the person
//! named as `actor` holds that role, and four-eyes, are the engine's checks against the
//! directory, never a role claimed in the request.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use partnerflow_core::machine::Actor;
use partnerflow_engine::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Caller, IntegrationId, SignedIntegration};
use crate::error::ApiError;
use crate::extract::{AppPath, AppQuery, IdempotencyKey, limit};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tasks", get(list))
        .route("/v1/tasks/{task_id}/decision", post(decide))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    role: Option<String>,
    status: Option<String>,
    limit: Option<i64>,
}

#[derive(Debug, Serialize)]
struct TaskItem {
    id: String,
    instance_id: String,
    step: String,
    role: String,
    due_at: DateTime<Utc>,
    status: String,
    escalation_level: i64,
}

async fn list(
    State(state): State<AppState>,
    AppQuery(q): AppQuery<ListQuery>,
    _caller: Caller,
) -> Result<Json<Vec<TaskItem>>, ApiError> {
    let limit = limit(q.limit)?;
    let tasks = state
        .engine
        .tasks(q.role.as_deref(), q.status.as_deref(), limit)
        .await?;
    let items = tasks
        .into_iter()
        .map(|t| TaskItem {
            id: t.id,
            instance_id: t.instance_id,
            step: t.step,
            role: t.role,
            due_at: t.due_at,
            status: t.status,
            escalation_level: t.escalation_level,
        })
        .collect();
    Ok(Json(items))
}

#[derive(Debug, Deserialize)]
struct DecisionBody {
    /// Any string; the step's definition says which it accepts.
    decision: String,
    #[serde(default)]
    reason: Option<String>,
    actor: ActorBody,
    #[serde(default)]
    data: Value,
}

#[derive(Debug, Deserialize)]
struct ActorBody {
    id: String,
}

/// 200 with the engine's answer, also when an Idempotency-Key is replayed.
async fn decide(
    State(state): State<AppState>,
    AppPath(task_id): AppPath<Uuid>,
    key: IdempotencyKey,
    signed: SignedIntegration,
) -> Result<Json<Value>, ApiError> {
    let body: DecisionBody = signed.payload.json()?;
    if body.actor.id.trim().is_empty() {
        return Err(ApiError::invalid_field(
            "actor.id",
            "required",
            "actor.id must name a person",
        ));
    }
    ensure_in_scope(&state.engine, task_id, &signed.integration).await?;
    let idem = signed.payload.idempotency(key);
    let actor = Actor { id: body.actor.id };
    let answer = state
        .engine
        .decide(task_id, &body.decision, body.reason, actor, body.data, idem)
        .await?;
    Ok(Json(answer))
}

/// Ok when `task_id` is a task of one of the integration's roles; 403 when it belongs to
/// another role, 404 when there is no such task.
///
/// The engine has no lookup by task id, so this searches listings: the integration's open
/// tasks first (the usual case), then all of its tasks (a late or replayed decision on a closed
/// task, which the engine answers with 409 or the first answer), and only on the way to an
/// error every task, to tell 403 from 404. `engine.task(task_id)` would replace all of it.
async fn ensure_in_scope(
    engine: &Engine,
    task_id: Uuid,
    integration: &IntegrationId,
) -> Result<(), ApiError> {
    let task = engine
        .task(task_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("not found: task {task_id}")))?;
    if integration.roles.contains(&task.role) {
        return Ok(());
    }
    let message = format!(
        "integration `{}` may not act for role `{}` of task {task_id}",
        integration.id, task.role
    );
    Err(ApiError::forbidden("out_of_scope", message))
}
