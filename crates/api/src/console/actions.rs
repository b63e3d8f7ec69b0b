//! What an operator does from the console: each through the engine command the API uses,
//! audited under the operator's id.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use partnerflow_core::machine::Actor;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::{base, message, render, require_form, session};
use crate::AppState;
use crate::extract::AppPath;

pub(crate) async fn login_page(State(state): State<AppState>) -> Response {
    let mut ctx = base(&state, None);
    ctx.insert("error".to_owned(), json!(null));
    render(StatusCode::OK, "login.html.j2", ctx)
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    token: String,
}

pub(crate) async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let Some(operator) = session::operator_for_token(&state, form.token.trim()) else {
        metrics::counter!("partnerflow_api_auth_failures_total", "reason" => "console_token")
            .increment(1);
        let mut ctx = base(&state, None);
        let error = ctx["t"]["bad_token"].clone();
        ctx.insert("error".to_owned(), error);
        return render(StatusCode::UNAUTHORIZED, "login.html.j2", ctx);
    };
    tracing::info!(operator, "console sign-in");
    let mut res = Redirect::to("/ui").into_response();
    if let Ok(v) = session::issue(&state, &operator, &headers).parse() {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(page) = require_form(&state, &headers, &form.csrf) {
        return *page;
    }
    let mut res = Redirect::to("/ui/login").into_response();
    if let Ok(v) = session::clear(&headers).parse() {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

/// Back to the instance's page, or a page saying why nothing was done.
fn outcome(
    state: &AppState,
    s: &session::Session,
    instance: Uuid,
    result: Result<serde_json::Value, partnerflow_engine::Error>,
) -> Response {
    match result {
        Ok(_) => Redirect::to(&format!("/ui/instances/{instance}")).into_response(),
        Err(e) => {
            let text = e.to_string();
            let status = crate::error::ApiError::from(e).status();
            message(state, Some(s), status, "Refused / 未执行", &text)
        }
    }
}

pub(crate) async fn resume(
    State(state): State<AppState>,
    AppPath(id): AppPath<Uuid>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let s = match require_form(&state, &headers, &form.csrf) {
        Ok(s) => s,
        Err(page) => return *page,
    };
    let result = state
        .engine
        .resume(
            id,
            Actor {
                id: s.operator.clone(),
            },
            None,
        )
        .await;
    outcome(&state, &s, id, result)
}

pub(crate) async fn cancel(
    State(state): State<AppState>,
    AppPath(id): AppPath<Uuid>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let s = match require_form(&state, &headers, &form.csrf) {
        Ok(s) => s,
        Err(page) => return *page,
    };
    let reason = if form.reason.trim().is_empty() {
        "cancelled from the console"
    } else {
        form.reason.trim()
    };
    let result = state
        .engine
        .cancel(
            id,
            reason,
            Actor {
                id: s.operator.clone(),
            },
            None,
        )
        .await;
    outcome(&state, &s, id, result)
}

#[derive(Debug, Deserialize)]
pub(crate) struct AssignForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    person: String,
}

pub(crate) async fn assign(
    State(state): State<AppState>,
    AppPath(task): AppPath<Uuid>,
    headers: HeaderMap,
    Form(form): Form<AssignForm>,
) -> Response {
    let s = match require_form(&state, &headers, &form.csrf) {
        Ok(s) => s,
        Err(page) => return *page,
    };
    let result = state
        .engine
        .reassign(
            task,
            form.person.trim(),
            Actor {
                id: s.operator.clone(),
            },
        )
        .await;
    let instance = result
        .as_ref()
        .ok()
        .and_then(|v| v["instance_id"].as_str()?.parse().ok())
        .unwrap_or(Uuid::nil());
    outcome(&state, &s, instance, result)
}

#[derive(Debug, Deserialize)]
pub(crate) struct DelegateForm {
    #[serde(default)]
    csrf: String,
    person: String,
    delegate: String,
    #[serde(default)]
    role: String,
    starts_at: chrono::NaiveDate,
    ends_at: chrono::NaiveDate,
}

pub(crate) async fn delegate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<DelegateForm>,
) -> Response {
    let s = match require_form(&state, &headers, &form.csrf) {
        Ok(s) => s,
        Err(page) => return *page,
    };
    let tz = state.engine.calendar().timezone();
    let at = |d: chrono::NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .and_then(|t| t.and_local_timezone(tz).earliest())
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_default()
    };
    let d = partnerflow_core::directory::Delegation {
        person: form.person.trim().to_owned(),
        delegate: form.delegate.trim().to_owned(),
        role: Some(form.role.trim().to_owned()).filter(|r| !r.is_empty()),
        starts_at: at(form.starts_at),
        ends_at: at(form.ends_at),
    };
    match state.engine.delegate(d, &s.operator).await {
        Ok(_) => Redirect::to("/ui/operations").into_response(),
        Err(e) => message(
            &state,
            Some(&s),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Refused / 未执行",
            &e.to_string(),
        ),
    }
}
