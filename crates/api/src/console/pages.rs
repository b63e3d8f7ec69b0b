//! The console's pages: the inbox of open tasks with their SLA clocks, an instance with its
//! nested timeline, and operations (failed and stuck instances, delegations).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use partnerflow_engine::TaskFilter;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{base, local, message, render, require};
use crate::AppState;
use crate::extract::{AppPath, AppQuery};

const PAGE: i64 = 50;

#[derive(Debug, Deserialize)]
pub(crate) struct InboxQuery {
    #[serde(default)]
    filter: String,
    #[serde(default)]
    role: String,
    /// Only the tasks this person may take: assigned to them, or unassigned of a role they
    /// hold (or hold as a delegate).
    #[serde(default)]
    person: String,
    /// The cursor: `<due micros>.<task id>` of the last row of the page before.
    #[serde(default)]
    after: String,
}

fn sla_class(percent: i64) -> &'static str {
    match percent {
        p if p >= 100 => "sla-100",
        p if p >= 80 => "sla-80",
        p if p >= 50 => "sla-50",
        _ => "sla-ok",
    }
}

pub(crate) async fn inbox(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppQuery(q): AppQuery<InboxQuery>,
) -> Response {
    let s = match require(&state, &headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let role = Some(q.role.trim()).filter(|r| !r.is_empty());
    let person = Some(q.person.trim()).filter(|p| !p.is_empty());
    let dir = state.engine.directory();
    let now = state.engine.now();
    let filter = TaskFilter {
        role,
        status: Some("open"),
        partner: None,
    };
    let mut after = q.after.split_once('.').and_then(|(us, id)| {
        Some((
            chrono::DateTime::from_timestamp_micros(us.parse().ok()?)?,
            id.to_owned(),
        ))
    });
    let wanted = |clock: &partnerflow_engine::view::SlaClock| match q.filter.as_str() {
        "overdue" | "breached" => clock.overdue,
        "escalated" => clock.escalation_level > 0,
        _ => true,
    };
    // Filters on the SLA clock are applied to pages of the due-ordered list, so a page is full
    // unless the list ran out.
    let mut rows = Vec::new();
    let mut next = None;
    'pages: loop {
        let page = match state
            .engine
            .tasks_page(
                &filter,
                after.as_ref().map(|(d, id)| (*d, id.as_str())),
                PAGE,
            )
            .await
        {
            Ok(p) => p,
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
        let exhausted = (page.len() as i64) < PAGE;
        for (task, clock) in page {
            after = Some((task.due_at, task.id.clone()));
            if !wanted(&clock) {
                continue;
            }
            if let Some(p) = person {
                let mine = match &task.assignee {
                    Some(a) => a == p,
                    None => dir.may_act_at(p, &task.role, None, now),
                };
                if !mine {
                    continue;
                }
            }
            // The business calendar counts whole working days.
            let left_minutes =
                (clock.allowed_working_minutes - clock.elapsed_working_minutes).max(0);
            let left = format!("{:.1} WD", left_minutes as f64 / 1440.0);
            let cursor = format!("{}.{}", task.due_at.timestamp_micros(), task.id);
            rows.push(json!({
                "task_id": task.id, "instance_id": task.instance_id, "step": task.step, "role": task.role,
                "due_at": local(&state, task.due_at), "percent": clock.percent_used, "overdue": clock.overdue,
                "escalation_level": clock.escalation_level, "assignee": task.assignee.unwrap_or_default(),
                "class": sla_class(clock.percent_used), "left": left,
            }));
            if rows.len() as i64 >= PAGE {
                next = Some(cursor);
                break 'pages;
            }
        }
        if exhausted {
            break;
        }
    }
    let mut ctx = base(&state, Some(&s));
    let t = ctx["t"].clone();
    let label = |k: &str| t[k].clone();
    ctx.insert(
        "filters".to_owned(),
        json!([
            { "value": "", "label": label("all_open") },
            { "value": "overdue", "label": label("overdue") },
            { "value": "escalated", "label": label("escalated") },
            { "value": "breached", "label": label("breached") },
        ]),
    );
    ctx.insert("filter".to_owned(), json!(q.filter));
    ctx.insert("role".to_owned(), json!(q.role));
    ctx.insert("person".to_owned(), json!(q.person));
    ctx.insert("rows".to_owned(), json!(rows));
    ctx.insert("next".to_owned(), json!(next));
    render(StatusCode::OK, "inbox.html.j2", ctx)
}

/// An instance's events for the page, with each started child's own events nested under the
/// event that started it (two levels deep).
async fn events(
    state: &AppState,
    v: &partnerflow_engine::view::InstanceView,
    depth: u8,
) -> Vec<Value> {
    let mut out = Vec::new();
    for e in &v.timeline {
        let mut child = Value::Null;
        if e.event.kind == "child_started"
            && depth < 2
            && let Some(id) = e
                .event
                .payload
                .get("child")
                .and_then(Value::as_str)
                .and_then(|c| c.parse::<Uuid>().ok())
            && let Ok(cv) = state.engine.instance(id).await
        {
            let nested = Box::pin(events(state, &cv, depth + 1)).await;
            child = json!({ "id": cv.id, "workflow_id": cv.workflow_id, "business_key": cv.business_key, "status": cv.status, "events": nested });
        }
        out.push(json!({
            "at": local(state, e.event.at), "kind": e.event.kind, "actor": e.event.actor,
            "payload": e.event.payload.to_string(), "child": child,
        }));
    }
    out
}

pub(crate) async fn instance(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppPath(id): AppPath<Uuid>,
) -> Response {
    let s = match require(&state, &headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let v = match state.engine.instance(id).await {
        Ok(v) => v,
        Err(e) => {
            return message(
                &state,
                Some(&s),
                StatusCode::NOT_FOUND,
                "404",
                &e.to_string(),
            );
        }
    };
    let chain = match state.engine.verify_chain(id).await {
        Ok(Ok(())) => "ok".to_owned(),
        Ok(Err(seq)) => format!("broken at event {seq}"),
        Err(e) => e.to_string(),
    };
    let dir = state.engine.directory();
    let tasks: Vec<Value> = v
        .tasks
        .iter()
        .map(|t| {
            let votes: Vec<String> = v
                .timeline
                .iter()
                .filter(|e| e.event.kind == "vote_recorded" && e.event.payload["task"].as_str() == Some(t.id.as_str()))
                .map(|e| format!("{} {}", e.event.actor, e.event.payload["decision"].as_str().unwrap_or("")))
                .collect();
            json!({ "id": t.id, "step": t.step, "role": t.role, "status": t.status, "outcome": t.outcome,
                    "due_at": local(&state, t.due_at), "assignee": t.assignee.clone().unwrap_or_default(),
                    "votes": votes.join(", "), "open": t.status == "open" })
        })
        .collect();
    let open_role = v
        .tasks
        .iter()
        .find(|t| t.status == "open")
        .map(|t| t.role.clone());
    let people: Vec<Value> = open_role
        .as_deref()
        .map(|r| {
            dir.holders(r)
                .map(|p| json!({ "id": p.id, "name": p.name }))
                .collect()
        })
        .unwrap_or_default();
    let postings: Vec<Value> = v
        .timeline
        .iter()
        .filter(|e| e.event.kind == "posting")
        .map(|e| json!({ "at": local(&state, e.event.at), "payload": e.event.payload.to_string() }))
        .collect();
    let notifications: Vec<Value> = v
        .notifications
        .iter()
        .map(|n| json!({ "template": n.template, "address": n.address, "channel": n.channel, "status": n.status, "attempts": n.attempts }))
        .collect();
    let mut ctx = base(&state, Some(&s));
    ctx.insert("events".to_owned(), json!(events(&state, &v, 0).await));
    ctx.insert("steps".to_owned(), json!(v.current_steps.join(", ")));
    ctx.insert("failed".to_owned(), json!(v.status.starts_with("failed")));
    ctx.insert("running".to_owned(), json!(v.status == "running"));
    ctx.insert("chain".to_owned(), json!(chain));
    ctx.insert("tasks".to_owned(), json!(tasks));
    ctx.insert("people".to_owned(), json!(people));
    ctx.insert("postings".to_owned(), json!(postings));
    ctx.insert("notifications".to_owned(), json!(notifications));
    ctx.insert("message".to_owned(), json!(null));
    ctx.insert("v".to_owned(), json!({ "id": v.id, "workflow_id": v.workflow_id, "business_key": v.business_key, "status": v.status, "partner_id": v.partner_id }));
    render(StatusCode::OK, "instance.html.j2", ctx)
}

pub(crate) async fn evidence(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppPath(id): AppPath<Uuid>,
) -> Response {
    let s = match require(&state, &headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    match state.engine.evidence(id).await {
        Ok(bundle) => {
            let body = serde_json::to_vec_pretty(&bundle).unwrap_or_default();
            let mut res = (StatusCode::OK, body).into_response();
            let h = res.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
            if let Ok(v) = format!("attachment; filename=\"evidence-{id}.json\"").parse() {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            res
        }
        Err(e) => message(
            &state,
            Some(&s),
            StatusCode::NOT_FOUND,
            "404",
            &e.to_string(),
        ),
    }
}

pub(crate) async fn operations(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let s = match require(&state, &headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let listing = partnerflow_engine::Listing {
        status: Some("failed"),
        partner: None,
        workflow: None,
    };
    let failed = state
        .engine
        .instances(listing, 200)
        .await
        .unwrap_or_default();
    // Stuck: running, unchanged for an hour, and nothing pending that would move it.
    let stuck = state
        .engine
        .stuck(std::time::Duration::from_secs(3600), 200)
        .await
        .unwrap_or_default();
    let delegations = state.engine.delegations().await.unwrap_or_default();
    let mut ctx = base(&state, Some(&s));
    ctx.insert("failed".to_owned(), json!(failed));
    ctx.insert("stuck".to_owned(), json!(stuck));
    let delegations: Vec<Value> = delegations
        .iter()
        .map(|d| json!({ "person": d.delegation.person, "delegate": d.delegation.delegate, "role": d.delegation.role.clone().unwrap_or_default(),
                          "starts_at": local(&state, d.delegation.starts_at), "ends_at": local(&state, d.delegation.ends_at) }))
        .collect();
    ctx.insert("delegations".to_owned(), json!(delegations));
    render(StatusCode::OK, "operations.html.j2", ctx)
}
