//! Signed links from emails and SMS: `GET /l/{token}` shows what the link would decide and a
//! form to confirm it (a GET never decides: mail scanners open links); `POST /l/{token}` with
//! that form's CSRF token decides, through the same transition as a signed callback, as the
//! person the link was sent to, with the request's evidence. A used, expired, unknown or
//! tampered link, or one whose task is closed, answers a page saying so and changes nothing.
//!
//! CSRF: the GET sets a random `pf_link_csrf` cookie (HttpOnly, SameSite=Strict, Path=/l/,
//! Secure when links point to https) and puts the same value in the form; a POST whose field
//! does not match the cookie is refused.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use partnerflow_engine::{LinkEvidence, LinkRefusal, LinkView};
use serde::Deserialize;

use crate::AppState;
use crate::extract::AppPath;

const CSRF_COOKIE: &str = "pf_link_csrf";

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/l/{token}", get(show).post(confirm))
}

/// Tokens are 22 URL-safe characters; anything else is not looked up.
fn plausible(token: &str) -> bool {
    token.len() == 22
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

async fn show(State(state): State<AppState>, AppPath(token): AppPath<String>) -> Response {
    if !plausible(&token) {
        return refused(LinkRefusal::Unknown);
    }
    match state.engine.link(&token).await {
        Ok(Ok(view)) => {
            let csrf = uuid::Uuid::new_v4().simple().to_string();
            let secure = if state.engine.links_are_https() {
                "; Secure"
            } else {
                ""
            };
            let cookie =
                format!("{CSRF_COOKIE}={csrf}; Path=/l/; HttpOnly; SameSite=Strict{secure}");
            let mut res = page(StatusCode::OK, &confirmation(&token, &view, &csrf));
            if let Ok(v) = cookie.parse() {
                res.headers_mut().insert(header::SET_COOKIE, v);
            }
            res.headers_mut().insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-store"),
            );
            res
        }
        Ok(Err(refusal)) => refused(refusal),
        Err(e) => unavailable(&e),
    }
}

#[derive(Debug, Deserialize)]
struct ConfirmForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

async fn confirm(
    State(state): State<AppState>,
    AppPath(token): AppPath<String>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Form(form): Form<ConfirmForm>,
) -> Response {
    if !plausible(&token) {
        return refused(LinkRefusal::Unknown);
    }
    let cookie = cookie_value(&headers, CSRF_COOKIE);
    if form.csrf.is_empty() || cookie.as_deref() != Some(form.csrf.as_str()) {
        return page(
            StatusCode::FORBIDDEN,
            &message(
                "Not confirmed / 未确认",
                "This form has expired or did not come from the link's page. Open the link again. 表单已失效或并非来自该链接页面，请重新打开链接。",
            ),
        );
    }
    let ip = extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".to_owned());
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(300)
        .collect();
    let reason = Some(form.reason.trim().to_owned()).filter(|r| !r.is_empty());
    match state
        .engine
        .decide_by_link(&token, reason, LinkEvidence { ip, user_agent })
        .await
    {
        Ok(Ok(answer)) => page(
            StatusCode::OK,
            &message(
                "Recorded / 已记录",
                &format!(
                    "Your decision \"{}\" is recorded. 您的决定已记录。",
                    answer
                        .get("decision")
                        .and_then(|d| d.as_str())
                        .unwrap_or("")
                ),
            ),
        ),
        Ok(Err(refusal)) => refused(refusal),
        Err(partnerflow_engine::Error::Refused(e)) => page(
            StatusCode::UNPROCESSABLE_ENTITY,
            &message(
                "Not recorded / 未记录",
                &format!("{e}. Nothing was changed. 未作任何更改。"),
            ),
        ),
        Err(e) => unavailable(&e),
    }
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn refused(refusal: LinkRefusal) -> Response {
    let (status, title, text) = match refusal {
        LinkRefusal::Unknown => (
            StatusCode::NOT_FOUND,
            "Link not valid / 链接无效",
            "This link is not valid: check that it was copied whole. 此链接无效，请确认链接完整。",
        ),
        LinkRefusal::Used => (
            StatusCode::GONE,
            "Link already used / 链接已使用",
            "This link was used already; each link decides once. 此链接已使用，每个链接仅可使用一次。",
        ),
        LinkRefusal::Expired => (
            StatusCode::GONE,
            "Link expired / 链接已过期",
            "This link has expired. Decide from the review system instead. 此链接已过期，请在审批系统中处理。",
        ),
        LinkRefusal::TaskClosed => (
            StatusCode::CONFLICT,
            "Task no longer open / 待办已关闭",
            "This task was decided or closed meanwhile; nothing was changed. 该待办已处理或关闭，未作任何更改。",
        ),
    };
    page(status, &message(title, text))
}

fn unavailable(e: &partnerflow_engine::Error) -> Response {
    tracing::error!(error = %e, "signed link");
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        &message(
            "Try again / 请重试",
            "The service could not answer just now; nothing was changed. 服务暂时无法响应，未作任何更改。",
        ),
    )
}

fn page(status: StatusCode, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>partnerflow</title></head><body style=\"font-family: sans-serif; max-width: 36em; margin: 2em auto\">{body}</body></html>"
    );
    (status, Html(html)).into_response()
}

fn message(title: &str, text: &str) -> String {
    format!("<h1>{}</h1><p>{}</p>", escape(title), escape(text))
}

fn confirmation(token: &str, v: &LinkView, csrf: &str) -> String {
    let required = if v.reason_required { " required" } else { "" };
    format!(
        r#"<h1>Confirm: {decision} / 确认：{decision}</h1>
<p>{workflow} <b>{key}</b>, step <b>{step}</b>, as <b>{person}</b>.</p>
<p>The link works once, until {expires}. 链接仅可使用一次，有效期至 {expires}。</p>
<form method="post" action="/l/{token}">
<input type="hidden" name="csrf" value="{csrf}">
<p><label>Reason / 理由<br><textarea name="reason" rows="3" cols="40"{required}></textarea></label></p>
<p><button type="submit">{decision}</button></p>
</form>"#,
        decision = escape(&v.decision),
        workflow = escape(&v.workflow_id),
        key = escape(&v.business_key),
        step = escape(&v.step),
        person = escape(&v.person),
        expires = v.expires_at.format("%Y-%m-%d %H:%M UTC"),
        token = escape(token),
        csrf = escape(csrf),
    )
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
