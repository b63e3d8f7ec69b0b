//! Instances: start one (`POST /v1/workflows/{workflow_id}/instances`), show one with its
//! timeline, tasks and SLA clocks, list them by status, and (operators only) cancel a running
//! one or resume a failed one. Operators may do all of it; an
//! integration only what its scopes list, and a partner-side integration only for its partner.
//!
//! The submitter of a start is the operator, or the person the integration names in `actor`
//! (confirmed by the directory; for a partner-side integration, one of its partner's people),
//! or the integration itself when it names nobody.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use partnerflow_core::machine::Actor;
use partnerflow_engine::Submitter;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Caller, Read, Who};
use crate::error::ApiError;
use crate::extract::{AppPath, AppQuery, IdempotencyKey, limit};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/workflows/{workflow_id}/instances", post(start))
        .route("/v1/instances", get(list))
        .route("/v1/partners/{partner}/instances", get(partner_status))
        .route("/v1/instances/{id}", get(show))
        .route("/v1/instances/{id}/evidence", get(evidence))
        .route("/v1/instances/{id}/cancel", post(cancel))
        .route("/v1/instances/{id}/resume", post(resume))
}

#[derive(Debug, Deserialize)]
struct StartBody {
    business_key: String,
    input: Value,
    /// The person an integration submits for; operators submit as themselves.
    #[serde(default)]
    actor: Option<crate::tasks::ActorBody>,
}

/// The submitter of a start, from authentication and the directory.
fn submitter(state: &AppState, who: &Who, asserted: Option<String>) -> Result<Submitter, ApiError> {
    let partner = who.partner().map(str::to_owned);
    let actor = match (who, asserted) {
        (Who::Operator(id), Some(named)) if named != *id => {
            return Err(ApiError::invalid_field(
                "actor.id",
                "principal",
                format!("operator `{id}` submits as themselves, not as `{named}`"),
            ));
        }
        (Who::Operator(_), _) => who.actor(),
        (Who::Integration(_), Some(named)) => {
            let person = state.engine.directory().person(&named);
            match person {
                Some(p) if p.partner.as_deref() == partner.as_deref() => Actor { id: named },
                Some(_) => {
                    return Err(ApiError::forbidden(
                        "actor_out_of_scope",
                        format!("`{named}` does not belong to this integration's partner"),
                    ));
                }
                None => {
                    return Err(ApiError::invalid_field(
                        "actor.id",
                        "directory",
                        format!("`{named}` is not a person in the directory"),
                    ));
                }
            }
        }
        (Who::Integration(i), None) if i.partner.is_some() => {
            return Err(ApiError::invalid_field(
                "actor.id",
                "required",
                "a partner-side integration must name the partner's person who submits",
            ));
        }
        (Who::Integration(_), None) => who.actor(),
    };
    Ok(Submitter { actor, partner })
}

/// 201 with the new instance; 200 with the existing one when the Idempotency-Key or the
/// business key was seen before.
async fn start(
    State(state): State<AppState>,
    AppPath(workflow_id): AppPath<String>,
    key: IdempotencyKey,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.who.may_start(&workflow_id)?;
    let body: StartBody = caller.payload.json()?;
    if body.business_key.trim().is_empty() {
        return Err(ApiError::invalid_field(
            "business_key",
            "required",
            "business_key must not be empty",
        ));
    }
    let submitter = submitter(&state, &caller.who, body.actor.map(|a| a.id))?;
    let idem = caller.payload.idempotency(key);
    let (started, created) = state
        .engine
        .start(
            &workflow_id,
            &body.business_key,
            body.input,
            submitter,
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
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    caller.who.may_read(Read::Instances)?;
    let view = state.engine.instance(id).await?;
    caller
        .who
        .may_see(&format!("instance {id}"), view.partner_id.as_deref())?;
    Ok(Json(view))
}

/// The evidence bundle: timeline, tasks, notifications, the audit-chain check, and the same
/// for every child workflow.
async fn evidence(
    State(state): State<AppState>,
    AppPath(id): AppPath<Uuid>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    caller.who.may_read(Read::Evidence)?;
    let partner = state.engine.partner_of(id).await?;
    caller
        .who
        .may_see(&format!("instance {id}"), partner.as_deref())?;
    Ok(Json(state.engine.evidence(id).await?))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    status: Option<String>,
    workflow: Option<String>,
    limit: Option<i64>,
}

async fn list(
    State(state): State<AppState>,
    AppQuery(q): AppQuery<ListQuery>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    caller.who.may_read(Read::Instances)?;
    let limit = limit(q.limit)?;
    let partner = caller.who.partner();
    let filter = partnerflow_engine::Listing {
        status: q.status.as_deref(),
        partner,
        workflow: q.workflow.as_deref(),
    };
    Ok(Json(state.engine.instances(filter, limit).await?))
}

/// A partner's instances with their summaries and SLA clocks (each MDF activity, NRE project
/// and its milestone): operators, and the partner's own portal.
async fn partner_status(
    State(state): State<AppState>,
    AppPath(partner): AppPath<String>,
    AppQuery(q): AppQuery<ListQuery>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    caller.who.may_read(Read::Instances)?;
    caller
        .who
        .may_see(&format!("partner {partner}"), Some(partner.as_str()))?;
    let limit = limit(q.limit)?;
    let filter = partnerflow_engine::Listing {
        status: q.status.as_deref(),
        partner: None,
        workflow: q.workflow.as_deref(),
    };
    let items = state.engine.partner_status(&partner, filter, limit).await?;
    Ok(Json(json!({ "partner": partner, "instances": items })))
}

#[derive(Debug, Deserialize)]
struct CancelBody {
    reason: String,
}

/// Only an operator may cancel or resume, and the audit records which one.
fn operator_only(who: &Who) -> Result<Actor, ApiError> {
    match who {
        Who::Operator(_) => Ok(who.actor()),
        Who::Integration(i) => Err(ApiError::forbidden(
            "operators_only",
            format!("integration `{}` may not cancel or resume instances", i.id),
        )),
    }
}

/// Cancels a running instance: its task closes, its timers and its running child are
/// cancelled. 409 when it is not running.
async fn cancel(
    State(state): State<AppState>,
    AppPath(id): AppPath<Uuid>,
    key: IdempotencyKey,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let actor = operator_only(&caller.who)?;
    let body: CancelBody = caller.payload.json()?;
    if body.reason.trim().is_empty() {
        return Err(ApiError::invalid_field(
            "reason",
            "required",
            "say why the instance is cancelled",
        ));
    }
    let idem = caller.payload.idempotency(key);
    Ok(Json(
        state.engine.cancel(id, &body.reason, actor, idem).await?,
    ))
}

/// Resumes a failed instance by entering its failed step again. 409 when it has not failed.
async fn resume(
    State(state): State<AppState>,
    AppPath(id): AppPath<Uuid>,
    key: IdempotencyKey,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let actor = operator_only(&caller.who)?;
    let idem = caller.payload.idempotency(key);
    Ok(Json(state.engine.resume(id, actor, idem).await?))
}
