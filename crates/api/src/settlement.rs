//! Rebate settlement over HTTP: transactions in (`POST /v1/transactions`, a batch, all or
//! nothing), the runs with their progress and totals, a partner's statements with their lines,
//! and why a line says what it says. A partner confirms or disputes its statement by deciding
//! the statement's task (`POST /v1/tasks/{task}/decision`, signed as every partner-side call);
//! the statement view names that task.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use partnerflow_settlement::Settlement;
use partnerflow_settlement::import::ImportRefused;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{Caller, Read, Who};
use crate::error::ApiError;
use crate::extract::{AppPath, AppQuery, limit};

/// At most this many transactions a request.
const MAX_BATCH: usize = 10_000;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/transactions", post(import))
        .route("/v1/settlement/runs", get(runs))
        .route("/v1/statements", get(statements))
        .route("/v1/statements/{id}", get(statement))
        .route("/v1/statements/{id}/lines/{n}/explain", get(explain))
}

fn settlement(state: &AppState) -> Result<&Settlement, ApiError> {
    state
        .settlement
        .as_ref()
        .ok_or_else(|| ApiError::not_found("settlement is not configured on this server"))
}

fn failed(e: partnerflow_settlement::Error) -> ApiError {
    match e {
        partnerflow_settlement::Error::Invalid(m) => ApiError::invalid_field("$", "settlement", m),
        partnerflow_settlement::Error::Engine(e) => e.into(),
        partnerflow_settlement::Error::Store(e) => partnerflow_engine::Error::from(e).into(),
        other @ (partnerflow_settlement::Error::Config(_)
        | partnerflow_settlement::Error::Io { .. }) => ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "settlement",
            other.to_string(),
        ),
    }
}

#[derive(Debug, Deserialize)]
struct ImportBody {
    transactions: Vec<Value>,
}

async fn import(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    if let Who::Integration(i) = &caller.who
        && !i.imports.iter().any(|w| w == "transactions")
    {
        return Err(ApiError::forbidden(
            "out_of_scope",
            format!("integration `{}` may not import transactions", i.id),
        ));
    }
    let body: ImportBody = caller.payload.json()?;
    if body.transactions.is_empty() || body.transactions.len() > MAX_BATCH {
        return Err(ApiError::invalid_field(
            "transactions",
            "batch",
            format!("a batch holds 1 to {MAX_BATCH} transactions"),
        ));
    }
    let s = settlement(&state)?;
    let tz = s.rules().timezone;
    match partnerflow_settlement::import::rows(
        state.engine.store(),
        &body.transactions,
        tz,
        state.engine.now(),
    )
    .await
    {
        Ok(report) => Ok(Json(
            json!({ "rows": report.rows, "imported": report.imported, "duplicates": report.duplicates }),
        )),
        Err(ImportRefused::Rows(errors)) => {
            let details: Vec<Value> = errors
                .iter()
                .map(|e| {
                    json!({ "field": format!("transactions[{}].{}", e.row - 1, e.column),
                            "rule": "row", "message": e.reason })
                })
                .collect();
            Err(ApiError::invalid_field(
                "transactions",
                "row",
                format!(
                    "{} problem(s) in the batch; nothing was imported",
                    errors.len()
                ),
            )
            .with_details(Value::Array(details)))
        }
        Err(ImportRefused::Failed(e)) => Err(failed(e)),
    }
}

#[derive(Debug, Deserialize)]
struct RunsQuery {
    limit: Option<i64>,
}

async fn runs(
    State(state): State<AppState>,
    AppQuery(q): AppQuery<RunsQuery>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    if let Who::Integration(i) = &caller.who {
        return Err(ApiError::forbidden(
            "operators_only",
            format!("integration `{}` may not read settlement runs", i.id),
        ));
    }
    let s = settlement(&state)?;
    let runs = s.runs(limit(q.limit)?).await.map_err(failed)?;
    Ok(Json(json!({ "programme": s.programme(), "runs": runs })))
}

#[derive(Debug, Deserialize)]
struct StatementsQuery {
    partner: Option<String>,
    period: Option<String>,
    limit: Option<i64>,
}

async fn statements(
    State(state): State<AppState>,
    AppQuery(q): AppQuery<StatementsQuery>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.who.may_read(Read::Statements)?;
    let partner = caller.who.partner().map(str::to_owned).or(q.partner);
    let s = settlement(&state)?;
    let list = s
        .statements(partner.as_deref(), q.period.as_deref(), limit(q.limit)?)
        .await
        .map_err(failed)?;
    let list: Vec<Value> = list
        .into_iter()
        .map(|s| {
            json!({ "id": s.id, "partner_id": s.partner_id, "period": s.period, "total": s.total,
                    "carried_in": s.carried_in, "payable": s.payable, "instance_id": s.instance_id,
                    "carried_into": s.carried_into })
        })
        .collect();
    Ok(Json(json!({ "statements": list })))
}

/// A statement the caller may read: operators any, a partner-side integration its own (404
/// for another partner's).
async fn readable<'a>(
    state: &'a AppState,
    caller: &Caller,
    id: &str,
) -> Result<(&'a Settlement, partnerflow_settlement::Statement), ApiError> {
    caller.who.may_read(Read::Statements)?;
    let s = settlement(state)?;
    let found = s
        .statement(id)
        .await
        .map_err(failed)?
        .ok_or_else(|| ApiError::not_found(format!("statement {id}")))?;
    caller
        .who
        .may_see(&format!("statement {id}"), Some(found.partner_id.as_str()))?;
    Ok((s, found))
}

async fn statement(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let (_, found) = readable(&state, &caller, &id).await?;
    let mut workflow = Value::Null;
    if let Some(instance) = found.instance_id.as_deref().and_then(|i| i.parse().ok()) {
        let v = state.engine.instance(instance).await?;
        let task = v.tasks.iter().find(|t| t.status == "open");
        let steps = v.data.get("steps");
        workflow = json!({ "instance_id": v.id, "status": v.status, "current_steps": v.current_steps,
                           "task": task.map(|t| json!({ "id": t.id, "step": t.step, "due_at": t.due_at })),
                           // The statement as corrected after a dispute, when it was.
                           "corrected": steps.and_then(|s| s.pointer("/resolve_dispute/data/statement")),
                           "payout": steps.and_then(|s| s.pointer("/await_invoice/data/payout_amount")) });
    }
    let mut out = serde_json::to_value(&found)
        .map_err(|e| partnerflow_engine::Error::Conflict(e.to_string()))?;
    out["workflow"] = workflow;
    Ok(Json(out))
}

async fn explain(
    State(state): State<AppState>,
    AppPath((id, n)): AppPath<(String, usize)>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let (s, _) = readable(&state, &caller, &id).await?;
    let why = s
        .explain(&id, n)
        .await
        .map_err(|e| match e {
            partnerflow_settlement::Error::Invalid(m) => ApiError::not_found(m),
            other @ (partnerflow_settlement::Error::Config(_)
            | partnerflow_settlement::Error::Store(_)
            | partnerflow_settlement::Error::Engine(_)
            | partnerflow_settlement::Error::Io { .. }) => failed(other),
        })?
        .ok_or_else(|| ApiError::not_found(format!("statement {id}")))?;
    Ok(Json(serde_json::to_value(why).map_err(|e| {
        partnerflow_engine::Error::Conflict(e.to_string())
    })?))
}
