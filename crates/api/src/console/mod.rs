//! The operator console (`/ui`): server-rendered pages over the same engine commands as the
//! API, in the operator's language. Every page needs a session (sign-in with a named operator
//! token); every form carries the session's CSRF token; what an operator does is audited under
//! their id.
//!
//! - `session`: the signed session cookie and CSRF tokens.
//! - `i18n`: the console's words in zh-CN and en.
//! - `pages`: inbox, instance, operations; `domain`: a partner, the settlement runs.
//! - `actions`: sign-in and out, reassign, resume, cancel, delegate.

mod actions;
mod domain;
mod i18n;
mod pages;
mod session;

use std::sync::LazyLock;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Value, json};

use crate::AppState;
pub(crate) use session::Session;

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    for (name, source) in [
        (
            "layout.html.j2",
            include_str!("../../templates/console/layout.html.j2"),
        ),
        (
            "login.html.j2",
            include_str!("../../templates/console/login.html.j2"),
        ),
        (
            "inbox.html.j2",
            include_str!("../../templates/console/inbox.html.j2"),
        ),
        (
            "instance.html.j2",
            include_str!("../../templates/console/instance.html.j2"),
        ),
        (
            "operations.html.j2",
            include_str!("../../templates/console/operations.html.j2"),
        ),
        (
            "message.html.j2",
            include_str!("../../templates/console/message.html.j2"),
        ),
        (
            "partner.html.j2",
            include_str!("../../templates/console/partner.html.j2"),
        ),
        (
            "settlement.html.j2",
            include_str!("../../templates/console/settlement.html.j2"),
        ),
    ] {
        if let Err(e) = env.add_template(name, source) {
            tracing::error!(template = name, error = %e, "console template");
        }
    }
    env
});

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/ui", get(pages::inbox))
        .route("/ui/login", get(actions::login_page).post(actions::login))
        .route("/ui/logout", post(actions::logout))
        .route("/ui/operations", get(pages::operations))
        .route("/ui/instances/{id}", get(pages::instance))
        .route("/ui/instances/{id}/evidence", get(pages::evidence))
        .route("/ui/instances/{id}/resume", post(actions::resume))
        .route("/ui/instances/{id}/cancel", post(actions::cancel))
        .route("/ui/tasks/{id}/assign", post(actions::assign))
        .route("/ui/delegations", post(actions::delegate))
        .route("/ui/partners/{partner}", get(domain::partner))
        .route("/ui/settlement", get(domain::settlement))
}

/// The page context every template gets: the operator, the words, the CSRF token.
pub(crate) fn base(state: &AppState, session: Option<&Session>) -> serde_json::Map<String, Value> {
    let locale = session
        .and_then(|s| state.engine.directory().person(&s.operator))
        .map_or("zh-CN", |p| p.locale.as_str());
    let (lang, t) = i18n::words(locale);
    let mut ctx = serde_json::Map::new();
    ctx.insert("lang".to_owned(), json!(lang));
    ctx.insert("t".to_owned(), json!(t));
    ctx.insert(
        "operator".to_owned(),
        json!(session.map(|s| s.operator.clone())),
    );
    ctx.insert(
        "csrf".to_owned(),
        json!(session.map(|s| s.csrf(state)).unwrap_or_default()),
    );
    ctx
}

/// Renders `template`; a template error is a 500 page, logged.
pub(crate) fn render(
    status: StatusCode,
    template: &str,
    ctx: serde_json::Map<String, Value>,
) -> Response {
    let rendered = TEMPLATES
        .get_template(template)
        .and_then(|t| t.render(Value::Object(ctx)));
    match rendered {
        Ok(html) => {
            let mut res = (status, Html(html)).into_response();
            res.headers_mut().insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-store"),
            );
            res
        }
        Err(e) => {
            let detail = format!("{e:#}");
            tracing::error!(template, error = %detail, "console template failed");
            let escaped = detail
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html(format!("<!doctype html><p>The page could not be rendered.</p><pre>{template}: {escaped}</pre>")),
            )
                .into_response()
        }
    }
}

/// A page with a title and one sentence.
pub(crate) fn message(
    state: &AppState,
    session: Option<&Session>,
    status: StatusCode,
    title: &str,
    text: &str,
) -> Response {
    let mut ctx = base(state, session);
    ctx.insert("title".to_owned(), json!(title));
    ctx.insert("text".to_owned(), json!(text));
    render(status, "message.html.j2", ctx)
}

/// The session, or the sign-in page.
/// (The refusal is boxed: a response is large, and the happy path should not carry it.)
pub(crate) fn require(state: &AppState, headers: &HeaderMap) -> Result<Session, Box<Response>> {
    session::read(state, headers).ok_or_else(|| Box::new(Redirect::to("/ui/login").into_response()))
}

/// The session of a form post with its CSRF token checked.
pub(crate) fn require_form(
    state: &AppState,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<Session, Box<Response>> {
    let s = require(state, headers)?;
    if s.csrf_ok(state, csrf) {
        Ok(s)
    } else {
        let (_, t) = i18n::words("en");
        let text = t.get("bad_csrf").copied().unwrap_or("");
        Err(Box::new(message(
            state,
            Some(&s),
            StatusCode::FORBIDDEN,
            "403",
            text,
        )))
    }
}

/// Local time of the business calendar, to the minute.
pub(crate) fn local(state: &AppState, at: chrono::DateTime<chrono::Utc>) -> String {
    let tz = state.engine.calendar().timezone();
    at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}
