//! [`ApiError`]: every failure the API answers with, as `{"error": {"code", "message", "details"}}`
//! and the right status. Engine errors are mapped here, once, by an exhaustive match; extractor
//! rejections and the bodies axum and tower-http produce on their own (404, 405, 413, timeouts,
//! panics) are brought into the same shape by [`json_errors`].
//!
//! The messages of 5xx answers never reach the client: they are logged once, when the response
//! is built, inside the request's trace span.

use axum::Json;
use axum::extract::Request;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use partnerflow_core::machine;
use partnerflow_engine::Error as EngineError;
use serde_json::{Value, json};

/// An error answer: status, a stable snake_case code for clients, a sentence for people and
/// structured details (for 422, the list of field errors).
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Value,
    /// What went wrong inside, for the log only (5xx).
    internal: Option<String>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Value::Null,
            internal: None,
        }
    }

    pub(crate) fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// A 5xx whose cause is logged and whose client-facing message is generic.
    fn hidden(status: StatusCode, code: &'static str, internal: String) -> Self {
        let message = match status {
            StatusCode::SERVICE_UNAVAILABLE => {
                "the service is temporarily unavailable; retry later"
            }
            _ => "internal error",
        };
        ApiError {
            internal: Some(internal),
            ..ApiError::new(status, code, message)
        }
    }

    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub(crate) fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, code, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 422 with one field error, in the shape the engine's validators use.
    pub(crate) fn invalid_field(field: &str, rule: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "the request is invalid",
        )
        .with_details(json!([{ "field": field, "rule": rule, "message": message }]))
    }

    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code clients match on.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(internal) = &self.internal {
            tracing::error!(status = self.status.as_u16(), code = self.code, error = %internal, "request failed");
        }
        let body = json!({ "error": { "code": self.code, "message": self.message, "details": self.details } });
        (self.status, Json(body)).into_response()
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::NotFound(what) => ApiError::not_found(format!("not found: {what}")),
            EngineError::Invalid(fields) => {
                let message = format!("the input is invalid ({} problem(s))", fields.len());
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation_failed",
                    message,
                )
                .with_details(json!(fields))
            }
            EngineError::Refused(refusal) => refusal.into(),
            EngineError::KeyReused(key) => ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_reused",
                format!("Idempotency-Key `{key}` was already used with a different request"),
            ),
            EngineError::Conflict(msg) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", format!("conflict: {msg}"))
            }
            EngineError::Superseded(msg) => ApiError::new(
                StatusCode::CONFLICT,
                "superseded",
                format!("{msg}; nothing changed"),
            ),
            EngineError::LinkUsed => ApiError::new(
                StatusCode::CONFLICT,
                "link_used",
                "the link was used already; nothing changed".to_owned(),
            ),
            EngineError::Stale(msg) => ApiError::new(
                StatusCode::CONFLICT,
                "concurrent_change",
                format!("{msg}; retry the request"),
            ),
            EngineError::Definitions(errors) => {
                let causes: Vec<String> = errors.iter().map(ToString::to_string).collect();
                ApiError::hidden(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    format!("definitions: {}", causes.join("; ")),
                )
            }
            EngineError::Store(store) => ApiError::hidden(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!("store: {store}"),
            ),
        }
    }
}

impl From<machine::Error> for ApiError {
    fn from(e: machine::Error) -> Self {
        use machine::Error as M;
        let (status, code) = match &e {
            M::TaskClosed(_) => (StatusCode::CONFLICT, "task_closed"),
            M::UnknownDecision { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "unknown_decision"),
            M::ReasonRequired(_) => (StatusCode::UNPROCESSABLE_ENTITY, "reason_required"),
            M::RoleMissing { .. } => (StatusCode::FORBIDDEN, "role_missing"),
            M::OwnItem(_) => (StatusCode::FORBIDDEN, "own_item"),
            M::AlreadyVoted(_) => (StatusCode::CONFLICT, "already_voted"),
            M::EventNotExpected(_) => (StatusCode::CONFLICT, "event_not_expected"),
            M::WaitClosed { .. } => (StatusCode::CONFLICT, "wait_closed"),
            M::NotFailed(_) => (StatusCode::CONFLICT, "not_failed"),
            M::NotRunning(_) => (StatusCode::CONFLICT, "not_running"),
            M::NoTransition { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "no_transition"),
            M::AlreadyStarted => (StatusCode::CONFLICT, "already_started"),
            M::InvalidData(fields) => {
                return ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation_failed",
                    e.to_string(),
                )
                .with_details(json!(fields));
            }
            // A definition names a step it does not have: our fault, not the caller's.
            M::MissingStep(_) => {
                return ApiError::hidden(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    e.to_string(),
                );
            }
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::bad_request("bad_path", r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::bad_request("bad_query", r.body_text())
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        let status = r.status();
        ApiError::new(status, fallback_code(status), r.body_text())
    }
}

/// The code of an error answer built outside our handlers, by status.
fn fallback_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "timeout",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "validation_failed",
        503 => "unavailable",
        504 => "timeout",
        500..=599 => "internal",
        _ => "error",
    }
}

/// Middleware: an error answer that is not JSON yet (axum's 405, tower-http's timeout and
/// panic answers, body-limit rejections) is rewritten into the `{"error": …}` shape.
pub(crate) async fn json_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    // Pages (a signed link's) answer their errors as pages.
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    if status.is_server_error() {
        tracing::error!(status = status.as_u16(), "request failed");
    }
    let message = status.canonical_reason().unwrap_or("error").to_lowercase();
    let mut rewritten = ApiError::new(status, fallback_code(status), message).into_response();
    // Keep headers such as `Allow` on a 405.
    for (name, value) in res.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewritten.headers_mut().append(name.clone(), value.clone());
        }
    }
    rewritten
}

/// The answer of the catch-panic layer: a JSON 500 with nothing of the panic in it.
pub(crate) fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(non-string panic payload)");
    ApiError::hidden(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("handler panicked: {detail}"),
    )
    .into_response()
}

/// The answer for a route that does not exist.
pub(crate) async fn no_route() -> ApiError {
    ApiError::not_found("no such route")
}

#[cfg(test)]
mod tests;
