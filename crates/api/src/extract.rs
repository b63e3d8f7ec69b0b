//! Extractors whose rejections are [`ApiError`]s: path and query parameters, the
//! `Idempotency-Key` header, and the raw body of an authenticated request ([`Payload`]), which
//! parses as JSON into our 400/422 answers and hashes into the request's idempotency record.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use partnerflow_engine::Idempotency;
use serde::de::DeserializeOwned;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;

/// Path parameters; a malformed one (a task id that is not a UUID) answers 400.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub(crate) struct AppPath<T>(pub(crate) T);

/// Query parameters; a malformed query answers 400.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub(crate) struct AppQuery<T>(pub(crate) T);

/// Listings return at most this many rows unless asked for fewer.
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

/// A listing's `limit` parameter: 100 when absent, 1 to 1000 when given.
pub(crate) fn limit(asked: Option<i64>) -> Result<i64, ApiError> {
    match asked {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::invalid_field(
            "limit",
            "range",
            format!("limit must be between 1 and {MAX_LIMIT}, not {n}"),
        )),
    }
}

/// The optional `Idempotency-Key` header: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, Default)]
pub(crate) struct IdempotencyKey(pub(crate) Option<String>);

pub(crate) const IDEMPOTENCY_HEADER: &str = "idempotency-key";
const MAX_KEY_LEN: usize = 255;

impl IdempotencyKey {
    pub(crate) fn from_headers(headers: &HeaderMap) -> Result<Self, ApiError> {
        let Some(value) = headers.get(IDEMPOTENCY_HEADER) else {
            return Ok(IdempotencyKey(None));
        };
        let key = value.to_str().ok().filter(|k| {
            !k.is_empty() && k.len() <= MAX_KEY_LEN && k.bytes().all(|b| b.is_ascii_graphic())
        });
        match key {
            Some(k) => Ok(IdempotencyKey(Some(k.to_owned()))),
            None => Err(ApiError::bad_request(
                "bad_idempotency_key",
                format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
            )),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Self::from_headers(&parts.headers)
    }
}

/// The raw body of a request, with what its idempotency hash covers.
#[derive(Debug)]
pub(crate) struct Payload {
    pub(crate) body: Bytes,
    method: Method,
    path: String,
}

impl Payload {
    pub(crate) async fn read(parts: Parts, body: Body, state: &AppState) -> Result<Self, ApiError> {
        let method = parts.method.clone();
        let path = parts
            .extensions
            .get::<OriginalUri>()
            .map_or_else(|| parts.uri.path().to_owned(), |u| u.path().to_owned());
        let body = Bytes::from_request(Request::from_parts(parts, body), state).await?;
        Ok(Payload { body, method, path })
    }

    /// The body as `T`: 400 when it is not JSON, 422 when it is JSON of the wrong shape.
    pub(crate) fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body).map_err(json_error)
    }

    /// The request's idempotency record: the key, and a hash of method, path and raw body, so
    /// the same key with a different request is recognised.
    pub(crate) fn idempotency(&self, key: IdempotencyKey) -> Option<Idempotency> {
        let key = key.0?;
        let mut hash = Sha256::new();
        hash.update(self.method.as_str().as_bytes());
        hash.update(b" ");
        hash.update(self.path.as_bytes());
        hash.update(b"\n");
        hash.update(&self.body);
        Some(Idempotency {
            key,
            request_hash: hex::encode(hash.finalize()),
        })
    }
}

fn json_error(e: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Io | Category::Syntax | Category::Eof => {
            ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
        }
        Category::Data => ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "the body does not have the expected shape",
        )
        .with_details(json!([{ "field": "$", "rule": "schema", "message": e.to_string() }])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_are_400_and_shape_errors_are_422() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Body {
            decision: String,
        }
        let bad = serde_json::from_slice::<Body>(b"{not json").expect_err("syntax");
        assert_eq!(json_error(bad).status().as_u16(), 400);
        let empty = serde_json::from_slice::<Body>(b"").expect_err("eof");
        assert_eq!(json_error(empty).status().as_u16(), 400);
        let shape = serde_json::from_slice::<Body>(br#"{"decision": 1}"#).expect_err("data");
        assert_eq!(json_error(shape).status().as_u16(), 422);
    }

    #[test]
    fn limit_defaults_and_bounds() {
        assert_eq!(limit(None).ok(), Some(DEFAULT_LIMIT));
        assert_eq!(limit(Some(5)).ok(), Some(5));
        assert_eq!(limit(Some(0)).map_err(|e| e.status().as_u16()), Err(422));
        assert_eq!(
            limit(Some(MAX_LIMIT + 1)).map_err(|e| e.status().as_u16()),
            Err(422)
        );
    }

    #[test]
    fn the_request_hash_covers_method_path_and_body() {
        let payload = |method: Method, path: &str, body: &'static [u8]| Payload {
            body: Bytes::from_static(body),
            method,
            path: path.to_owned(),
        };
        let key = || IdempotencyKey(Some("k".to_owned()));
        let hash = |p: Payload| p.idempotency(key()).map(|i| i.request_hash);
        let base = hash(payload(Method::POST, "/v1/tasks/a/decision", b"{}"));
        assert_eq!(
            base,
            hash(payload(Method::POST, "/v1/tasks/a/decision", b"{}"))
        );
        assert_ne!(
            base,
            hash(payload(Method::POST, "/v1/tasks/b/decision", b"{}"))
        );
        assert_ne!(
            base,
            hash(payload(Method::POST, "/v1/tasks/a/decision", b"{ }"))
        );
        assert_ne!(
            base,
            hash(payload(Method::PUT, "/v1/tasks/a/decision", b"{}"))
        );
        assert!(
            payload(Method::POST, "/", b"")
                .idempotency(IdempotencyKey(None))
                .is_none()
        );
    }
}
