//! Human tasks: the work lists (`GET /v1/tasks?role=R&status=open`) and decisions
//! (`POST /v1/tasks/{task_id}/decision`).
//!
//! A decision comes from an operator (who decides as themselves) or is signed by an
//! integration scoped to the task's role, which names the person deciding; whether that person
//! holds the role, and four-eyes, are the engine's checks against the directory, never a role
//! claimed in the request. A partner-side integration sees only its partner's tasks.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use partnerflow_core::machine::Actor;
use partnerflow_engine::TaskFilter;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Caller, Read, Who};
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
    /// The `cursor` of the last task of the page before: the tasks due after it.
    after: Option<String>,
}

/// A task's place in the due-ordered list: its due time (µs) and id.
fn cursor_of(due_at: DateTime<Utc>, id: &str) -> String {
    format!("{}.{id}", due_at.timestamp_micros())
}

fn parse_cursor(cursor: &str) -> Result<(DateTime<Utc>, String), ApiError> {
    cursor
        .split_once('.')
        .and_then(|(us, id)| {
            let due = DateTime::from_timestamp_micros(us.parse().ok()?)?;
            Uuid::parse_str(id).ok()?;
            Some((due, id.to_owned()))
        })
        .ok_or_else(|| {
            ApiError::invalid_field(
                "after",
                "cursor",
                format!("`{cursor}` is not a cursor: pass the `cursor` of a listed task"),
            )
        })
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
    /// Pass as `after` for the next page.
    cursor: String,
}

/// Tasks soonest due first (ties by id), a page of `limit` after the cursor `after`.
async fn list(
    State(state): State<AppState>,
    AppQuery(q): AppQuery<ListQuery>,
    caller: Caller,
) -> Result<Json<Vec<TaskItem>>, ApiError> {
    caller.who.may_read(Read::Tasks)?;
    let limit = limit(q.limit)?;
    let filter = TaskFilter {
        role: q.role.as_deref(),
        status: q.status.as_deref(),
        partner: caller.who.partner(),
    };
    let after = q.after.as_deref().map(parse_cursor).transpose()?;
    let tasks = state
        .engine
        .tasks_page(
            &filter,
            after.as_ref().map(|(d, id)| (*d, id.as_str())),
            limit,
        )
        .await?;
    let items = tasks
        .into_iter()
        .map(|(t, _)| TaskItem {
            cursor: cursor_of(t.due_at, &t.id),
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
    /// Who decides: required from an integration; an operator decides as themselves.
    #[serde(default)]
    actor: Option<ActorBody>,
    #[serde(default)]
    data: Value,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ActorBody {
    pub(crate) id: String,
}

/// 200 with the engine's answer, also when an Idempotency-Key is replayed.
async fn decide(
    State(state): State<AppState>,
    AppPath(task_id): AppPath<Uuid>,
    key: IdempotencyKey,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let body: DecisionBody = caller.payload.json()?;
    let named = body.actor.map(|a| a.id);
    if named.as_deref().is_some_and(|id| id.trim().is_empty()) {
        return Err(ApiError::invalid_field(
            "actor.id",
            "required",
            "actor.id must name a person",
        ));
    }
    let actor = match (&caller.who, named) {
        (Who::Operator(id), Some(named)) if named != *id => {
            return Err(ApiError::invalid_field(
                "actor.id",
                "principal",
                format!("operator `{id}` decides as themselves, not as `{named}`"),
            ));
        }
        (Who::Operator(id), _) => Actor { id: id.clone() },
        (Who::Integration(_), Some(named)) => Actor { id: named },
        (Who::Integration(_), None) => {
            return Err(ApiError::invalid_field(
                "actor.id",
                "required",
                "actor.id must name the person deciding",
            ));
        }
    };
    ensure_in_scope(&state, task_id, &caller.who).await?;
    let idem = caller.payload.idempotency(key);
    let answer = state
        .engine
        .decide(task_id, &body.decision, body.reason, actor, body.data, idem)
        .await?;
    Ok(Json(answer))
}

/// Ok when the caller may decide `task_id`: an operator always (the directory still decides
/// whether they hold the role), an integration for its roles (403 otherwise) and, when
/// partner-side, only on its partner's instances (404 otherwise, as for a task that does not
/// exist).
async fn ensure_in_scope(state: &AppState, task_id: Uuid, who: &Who) -> Result<(), ApiError> {
    let task = state
        .engine
        .task(task_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("not found: task {task_id}")))?;
    let Who::Integration(integration) = who else {
        return Ok(());
    };
    if who.partner().is_some() {
        let instance = Uuid::parse_str(&task.instance_id)
            .map_err(|_| ApiError::not_found(format!("not found: task {task_id}")))?;
        let partner = state.engine.partner_of(instance).await?;
        who.may_see(&format!("task {task_id}"), partner.as_deref())?;
    }
    if integration.roles.contains(&task.role) {
        return Ok(());
    }
    let message = format!(
        "integration `{}` may not act for role `{}` of task {task_id}",
        integration.id, task.role
    );
    Err(ApiError::forbidden("out_of_scope", message))
}
