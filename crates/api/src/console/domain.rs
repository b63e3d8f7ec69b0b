//! The console's domain pages: a partner (standing, instances of every workflow with their
//! summaries, MDF/NRE/rebate accounts, payables and payments, statements) and the settlement
//! runs with each period's statements.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{base, local, message, render, require};
use crate::AppState;
use crate::extract::{AppPath, AppQuery};

pub(crate) async fn partner(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppPath(partner): AppPath<String>,
) -> Response {
    let s = match require(&state, &headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let e = &state.engine;
    let (listed, ledger, standing) = match (
        e.partner_status(&partner, partnerflow_engine::Listing::default(), 500)
            .await,
        e.partner_ledger(&partner).await,
        e.standing(&partner).await,
    ) {
        (Ok(l), Ok(g), Ok(st)) => (l, g, st),
        (Err(err), _, _) | (_, Err(err), _) | (_, _, Err(err)) => {
            return message(
                &state,
                Some(&s),
                StatusCode::SERVICE_UNAVAILABLE,
                "503",
                &err.to_string(),
            );
        }
    };
    let instances: Vec<Value> = listed
        .iter()
        .map(|i| {
            let summary: Vec<String> = i.summary.iter().map(|(k, v)| format!("{k}: {}", v.as_str().map_or_else(|| v.to_string(), str::to_owned))).collect();
            let overdue = i.sla_clocks.iter().any(|c| c.overdue);
            json!({ "id": i.id, "workflow_id": i.workflow_id, "business_key": i.business_key, "status": i.status,
                    "step": i.current_step.clone().unwrap_or_default(), "summary": summary.join(" · "),
                    "class": if overdue { "sla-100" } else { "" } })
        })
        .collect();
    let accounts: Vec<Value> = ledger
        .accounts
        .iter()
        .map(|a| json!({ "account": a.account, "quota": a.balance.quota.to_string(), "supplements": a.balance.supplements.to_string(),
                          "reserved": a.balance.reserved.to_string(), "consumed": a.balance.consumed.to_string(), "available": a.available.to_string() }))
        .collect();
    let payments: Vec<String> = ledger
        .payments
        .iter()
        .map(|p| serde_json::to_string(p).unwrap_or_default())
        .collect();
    let payables: Vec<String> = ledger
        .payables
        .iter()
        .map(|p| serde_json::to_string(p).unwrap_or_default())
        .collect();
    let statements = match &state.settlement {
        Some(st) => st
            .statements(Some(&partner), None, 100)
            .await
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let statements: Vec<Value> = statements
        .iter()
        .map(|st| json!({ "period": st.period, "total": st.total.to_string(), "carried_in": st.carried_in.to_string(),
                           "payable": st.payable.to_string(), "instance_id": st.instance_id }))
        .collect();
    let mut ctx = base(&state, Some(&s));
    ctx.insert("partner".to_owned(), json!(partner));
    ctx.insert(
        "standing".to_owned(),
        json!(
            standing
                .iter()
                .map(|(f, st)| json!({ "fact": f, "state": st }))
                .collect::<Vec<_>>()
        ),
    );
    ctx.insert("instances".to_owned(), json!(instances));
    ctx.insert("accounts".to_owned(), json!(accounts));
    ctx.insert("payables".to_owned(), json!(payables));
    ctx.insert("payments".to_owned(), json!(payments));
    ctx.insert("statements".to_owned(), json!(statements));
    render(StatusCode::OK, "partner.html.j2", ctx)
}

#[derive(Debug, Deserialize)]
pub(crate) struct PeriodQuery {
    #[serde(default)]
    period: String,
}

pub(crate) async fn settlement(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppQuery(q): AppQuery<PeriodQuery>,
) -> Response {
    let s = match require(&state, &headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let Some(st) = &state.settlement else {
        return message(
            &state,
            Some(&s),
            StatusCode::NOT_FOUND,
            "404",
            "this programme has no rebate settlement",
        );
    };
    let runs = match st.runs(100).await {
        Ok(r) => r,
        Err(e) => {
            return message(
                &state,
                Some(&s),
                StatusCode::SERVICE_UNAVAILABLE,
                "503",
                &e.to_string(),
            );
        }
    };
    let runs: Vec<Value> = runs
        .iter()
        .map(|r| json!({ "period": r.period, "status": r.status, "partners_done": r.partners_done, "partners_total": r.partners_total,
                          "statements": r.statements, "total": r.total.to_string(), "started_at": local(&state, r.started_at) }))
        .collect();
    let period = Some(q.period.trim().to_owned()).filter(|p| !p.is_empty());
    let mut statements = Vec::new();
    if let Some(p) = &period {
        for stmt in st.statements(None, Some(p), 500).await.unwrap_or_default() {
            let instance = match stmt.instance_id.as_deref().and_then(|i| i.parse().ok()) {
                Some(id) => state.engine.instance(id).await.ok(),
                None => None,
            };
            let state_label = match (&instance, &stmt.carried_into) {
                (Some(v), _) => format!("{} {}", v.status, v.current_steps.join(", ")),
                (None, Some(next)) => format!("carried into {next}"),
                (None, None) => String::new(),
            };
            // Disputed: the partner's decision on the statement was `dispute`.
            let disputed = instance.as_ref().is_some_and(|v| {
                v.timeline.iter().any(|e| {
                    e.event.kind == "decision"
                        && e.event.payload.get("decision").and_then(Value::as_str)
                            == Some("dispute")
                })
            });
            statements.push(json!({ "partner_id": stmt.partner_id, "total": stmt.total.to_string(), "carried_in": stmt.carried_in.to_string(),
                                    "payable": stmt.payable.to_string(), "instance_id": stmt.instance_id, "state": state_label,
                                    "disputed": disputed, "carried_into": stmt.carried_into }));
        }
    }
    let mut ctx = base(&state, Some(&s));
    ctx.insert("runs".to_owned(), json!(runs));
    ctx.insert("period".to_owned(), json!(period));
    let disputes = statements
        .iter()
        .filter(|s| s["disputed"] == json!(true))
        .count();
    let carried = statements
        .iter()
        .filter(|s| !s["carried_into"].is_null())
        .count();
    ctx.insert("statements".to_owned(), json!(statements));
    ctx.insert("disputes".to_owned(), json!(disputes));
    ctx.insert("carried".to_owned(), json!(carried));
    render(StatusCode::OK, "settlement.html.j2", ctx)
}
