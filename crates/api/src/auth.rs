//! Who is calling, and what they may do: operators with a named bearer token, integrations with
//! a request signed as [`signature`] describes.
//!
//! The extractors read the body (a signature covers it), so they come last in a handler's
//! arguments: [`Caller`] accepts either kind of credential, [`SignedIntegration`] only a
//! signature. Both hand the raw body on as a [`Payload`]. Every signed write must carry an
//! `Idempotency-Key` (it is part of what is signed).

mod config;

use axum::extract::{FromRequest, OriginalUri, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use partnerflow_core::machine::Actor;
use sha2::{Digest, Sha256};

pub use config::{AuthConfig, DEFAULT_TOLERANCE_SECS, Integration, Operator, Read};
use partnerflow_core::signature::{self, Streaming, verify};
pub use partnerflow_core::signature::{SignedRequest, sign};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{IdempotencyKey, Payload};

/// The header naming the calling integration.
pub const INTEGRATION_HEADER: &str = "x-partnerflow-integration";
/// The header carrying `t=<unix>,v1=<hex>`.
pub const SIGNATURE_HEADER: &str = "x-partnerflow-signature";

/// Constant-time token check: both sides are hashed first, so neither content nor length
/// leaks. Returns the operator whose token matched.
fn operator_for<'a>(given: &str, operators: &'a [Operator]) -> Option<&'a Operator> {
    let given = Sha256::digest(given.as_bytes());
    operators
        .iter()
        .filter(|o| !o.token.is_empty())
        .fold(None, |found, operator| {
            let diff = Sha256::digest(operator.token.as_bytes())
                .iter()
                .zip(given.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if diff == 0 { Some(operator) } else { found }
        })
}

fn refuse(reason: &'static str, message: impl Into<String>) -> ApiError {
    metrics::counter!("partnerflow_api_auth_failures_total", "reason" => reason).increment(1);
    ApiError::unauthorized(reason, message)
}

/// Who made an authenticated request.
#[derive(Debug, Clone)]
pub(crate) enum Who {
    /// An operator, by the id their token is configured with.
    Operator(String),
    Integration(Integration),
}

impl Who {
    /// How the caller itself appears as an actor in the audit trail.
    pub(crate) fn actor(&self) -> Actor {
        match self {
            Who::Operator(id) => Actor { id: id.clone() },
            Who::Integration(i) => Actor {
                id: format!("integration:{}", i.id),
            },
        }
    }

    /// The partner a partner-side integration is bound to.
    pub(crate) fn partner(&self) -> Option<&str> {
        match self {
            Who::Operator(_) => None,
            Who::Integration(i) => i.partner.as_deref(),
        }
    }

    /// 403 unless the caller may read `what`.
    pub(crate) fn may_read(&self, what: Read) -> Result<(), ApiError> {
        match self {
            Who::Operator(_) => Ok(()),
            Who::Integration(i) if i.reads.contains(&what) => Ok(()),
            Who::Integration(i) => Err(ApiError::forbidden(
                "out_of_scope",
                format!("integration `{}` may not read {}", i.id, what.label()),
            )),
        }
    }

    /// 403 unless the caller may start `workflow`.
    pub(crate) fn may_start(&self, workflow: &str) -> Result<(), ApiError> {
        match self {
            Who::Operator(_) => Ok(()),
            Who::Integration(i) if i.workflows.iter().any(|w| w == workflow) => Ok(()),
            Who::Integration(i) => Err(ApiError::forbidden(
                "out_of_scope",
                format!("integration `{}` may not start `{workflow}`", i.id),
            )),
        }
    }

    /// 404 when a partner-side caller asks about another partner's instance, so it cannot
    /// even learn that the instance exists.
    pub(crate) fn may_see(&self, what: &str, partner: Option<&str>) -> Result<(), ApiError> {
        match self.partner() {
            Some(own) if partner != Some(own) => {
                Err(ApiError::not_found(format!("not found: {what}")))
            }
            _ => Ok(()),
        }
    }
}

/// An operator (bearer token) or a signed integration, and the request's body.
#[derive(Debug)]
pub(crate) struct Caller {
    pub(crate) who: Who,
    pub(crate) payload: Payload,
}

/// A request signed by an integration, and its body.
#[derive(Debug)]
pub(crate) struct SignedIntegration {
    pub(crate) integration: Integration,
    pub(crate) payload: Payload,
}

impl FromRequest<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        if parts.headers.contains_key(AUTHORIZATION) {
            let id = operator(&parts, state)?;
            let payload = Payload::read(parts, body, state).await?;
            return Ok(Caller {
                who: Who::Operator(id),
                payload,
            });
        }
        if !parts.headers.contains_key(INTEGRATION_HEADER) {
            return Err(refuse(
                "missing_credentials",
                "send a bearer token or a signed request",
            ));
        }
        let signed =
            SignedIntegration::from_request(Request::from_parts(parts, body), state).await?;
        Ok(Caller {
            who: Who::Integration(signed.integration),
            payload: signed.payload,
        })
    }
}

/// The request target as sent (path and query), which the signature covers.
fn target(parts: &Parts) -> String {
    let uri = parts
        .extensions
        .get::<OriginalUri>()
        .map_or(&parts.uri, |u| &u.0);
    uri.path_and_query()
        .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned())
}

/// Reads are GET and HEAD; everything else is a write and must carry an Idempotency-Key.
fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD)
}

fn idempotency_key(headers: &HeaderMap, method: &Method) -> Result<String, ApiError> {
    match IdempotencyKey::from_headers(headers)?.0 {
        Some(key) => Ok(key),
        None if is_write(method) => Err(ApiError::bad_request(
            "idempotency_key_required",
            "a signed write must carry an Idempotency-Key header; it is part of what is signed",
        )
        .with_details(serde_json::json!([{ "field": "Idempotency-Key", "rule": "required" }]))),
        None => Ok(String::new()),
    }
}

/// What a signed request says of itself besides its body: the integration, the signature
/// header, the Idempotency-Key (empty on reads) and the signed target.
struct SignedHead {
    id: String,
    signature: String,
    key: String,
    path: String,
}

/// The signed parts of a request; `None` when it carries no integration and signature headers.
fn signed_head(parts: &Parts) -> Result<Option<SignedHead>, ApiError> {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (Some(id), Some(signature)) = (header(INTEGRATION_HEADER), header(SIGNATURE_HEADER)) else {
        return Ok(None);
    };
    Ok(Some(SignedHead {
        id,
        signature,
        key: idempotency_key(&parts.headers, &parts.method)?,
        path: target(parts),
    }))
}

impl FromRequest<AppState> for SignedIntegration {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let Some(SignedHead {
            id,
            signature,
            key,
            path,
        }) = signed_head(&parts)?
        else {
            return Err(refuse(
                "signature_required",
                "this endpoint needs a signed request (X-Partnerflow-Integration and X-Partnerflow-Signature)",
            ));
        };
        let method = parts.method.clone();
        let integration = state.auth.integrations.iter().find(|i| i.id == id);
        // Read the body before judging the integration, so an unknown id and a bad signature
        // cost the same.
        let payload = Payload::read(parts, body, state).await?;
        let now = state.clock.now().timestamp();
        let secrets = integration.map_or(&[][..], |i| &i.secrets[..]);
        let request = SignedRequest {
            method: method.as_str(),
            path: &path,
            idempotency_key: &key,
            body: &payload.body,
        };
        if let Err(e) = verify(&signature, request, secrets, now, state.auth.tolerance_secs) {
            let message = if integration.is_none() {
                "unknown integration or bad signature".to_owned()
            } else {
                e.to_string()
            };
            return Err(refuse(e.label(), message));
        }
        let Some(integration) = integration else {
            return Err(refuse(
                "bad_signature",
                "unknown integration or bad signature",
            ));
        };
        Ok(SignedIntegration {
            integration: integration.clone(),
            payload,
        })
    }
}

/// The caller of a request whose body streams (an upload): an operator, or an integration whose
/// signature is then checked over the body as it arrives ([`Streaming`], to be finished).
pub(crate) fn streaming_caller(
    parts: &Parts,
    state: &AppState,
) -> Result<(Who, Option<Streaming>), ApiError> {
    if parts.headers.contains_key(AUTHORIZATION) {
        return Ok((Who::Operator(operator(parts, state)?), None));
    }
    let Some(SignedHead {
        id,
        signature,
        key,
        path,
    }) = signed_head(parts)?
    else {
        return Err(refuse(
            "missing_credentials",
            "send a bearer token or a signed request",
        ));
    };
    let Some(integration) = state.auth.integrations.iter().find(|i| i.id == id) else {
        return Err(refuse(
            "bad_signature",
            "unknown integration or bad signature",
        ));
    };
    let request = SignedRequest {
        method: parts.method.as_str(),
        path: &path,
        idempotency_key: &key,
        body: b"",
    };
    let now = state.clock.now().timestamp();
    let check = Streaming::begin(
        &signature,
        request,
        &integration.secrets,
        now,
        state.auth.tolerance_secs,
    )
    .map_err(refuse_signature)?;
    Ok((Who::Integration(integration.clone()), Some(check)))
}

/// The answer to a signature that does not hold.
pub(crate) fn refuse_signature(e: signature::SignatureError) -> ApiError {
    refuse(e.label(), e.to_string())
}

/// Checks `Authorization: Bearer <token>` against the operators' tokens; the operator's id.
fn operator(parts: &Parts, state: &AppState) -> Result<String, ApiError> {
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(token) = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
    else {
        return Err(refuse(
            "bad_token",
            "the Authorization header must be `Bearer <token>`",
        ));
    };
    match operator_for(token.trim(), &state.auth.operators) {
        Some(op) => Ok(op.id.clone()),
        None => Err(refuse("bad_token", "the bearer token is not valid")),
    }
}

#[cfg(test)]
mod tests;
