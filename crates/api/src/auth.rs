//! Who is calling: operators with a bearer token, integrations with an HMAC-signed request.
//!
//! A signed request carries `X-Partnerflow-Integration: <id>` and
//! `X-Partnerflow-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
//! Any of the integration's secrets may match (rotation: add the new secret, move the senders,
//! drop the old one), the comparison is constant-time, and the timestamp must lie within the
//! configured tolerance of the injected clock's now, so tests on a virtual clock sign with
//! virtual time. Several `v1=` entries are accepted, as a sender mid-rotation may send both.
//!
//! The extractors read the body (a signature covers it), so they come last in a handler's
//! arguments: [`Caller`] accepts either kind of credential, [`SignedIntegration`] only a
//! signature. Both hand the raw body on as a [`Payload`].

use axum::extract::{FromRequest, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use hmac::{Hmac, Mac};
use partnerflow_core::machine::Actor;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Payload;

/// The header naming the calling integration.
pub const INTEGRATION_HEADER: &str = "x-partnerflow-integration";
/// The header carrying `t=<unix>,v1=<hex>`.
pub const SIGNATURE_HEADER: &str = "x-partnerflow-signature";
/// The signature tolerance of the product spec (±5 minutes).
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

type HmacSha256 = Hmac<Sha256>;

/// The credentials the API accepts. Built by the CLI from configuration.
#[derive(Clone)]
pub struct AuthConfig {
    pub integrations: Vec<Integration>,
    /// Bearer tokens of operators (any matches).
    pub operator_tokens: Vec<String>,
    /// How far a signature's timestamp may lie from now, in seconds, either way.
    pub tolerance_secs: i64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            integrations: Vec::new(),
            operator_tokens: Vec::new(),
            tolerance_secs: DEFAULT_TOLERANCE_SECS,
        }
    }
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("integrations", &self.integrations)
            .field(
                "operator_tokens",
                &format_args!("[{} redacted]", self.operator_tokens.len()),
            )
            .field("tolerance_secs", &self.tolerance_secs)
            .finish()
    }
}

/// A system that calls back (a review portal, an e-signature provider, a bank feed).
#[derive(Clone)]
pub struct Integration {
    pub id: String,
    /// Several during a rotation: any of them may sign.
    pub secrets: Vec<String>,
    /// The task roles it may decide for.
    pub roles: Vec<String>,
    /// The external events it may post.
    pub events: Vec<String>,
}

impl std::fmt::Debug for Integration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Integration")
            .field("id", &self.id)
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .field("roles", &self.roles)
            .finish()
    }
}

/// Signs `body` at `timestamp` with `secret`: the header value `t=<unix>,v1=<hex>`.
/// Used by tests, the bench and the README's examples.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(tag))
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Why a signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SignatureError {
    #[error("the signature header is not `t=<unix>,v1=<hex>`")]
    Malformed,
    #[error("the signature's timestamp is outside the allowed window")]
    OutsideTolerance,
    #[error("the signature does not match")]
    Mismatch,
}

impl SignatureError {
    fn label(self) -> &'static str {
        match self {
            SignatureError::Malformed => "malformed_signature",
            SignatureError::OutsideTolerance => "stale_signature",
            SignatureError::Mismatch => "bad_signature",
        }
    }
}

/// Checks a `t=…,v1=…` header over `body` against any of `secrets`, at `now` (unix seconds).
pub(crate) fn verify(
    header: &str,
    body: &[u8],
    secrets: &[String],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut tags = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match key {
            "t" if timestamp.is_none() => {
                timestamp = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| SignatureError::Malformed)?,
                )
            }
            "t" => return Err(SignatureError::Malformed),
            "v1" => tags.push(hex::decode(value).map_err(|_| SignatureError::Malformed)?),
            // Other schemes (a future v2) are ignored, as long as a v1 is present.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if tags.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if now.abs_diff(timestamp) > tolerance_secs.max(0).unsigned_abs() {
        return Err(SignatureError::OutsideTolerance);
    }
    let matched = secrets.iter().filter(|s| !s.is_empty()).any(|secret| {
        tags.iter()
            .any(|tag| mac(secret, timestamp, body).verify_slice(tag).is_ok())
    });
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Constant-time token check: both sides are hashed first, so neither content nor length leaks.
fn token_matches(given: &str, tokens: &[String]) -> bool {
    let given = Sha256::digest(given.as_bytes());
    tokens
        .iter()
        .filter(|t| !t.is_empty())
        .fold(false, |found, token| {
            let diff = Sha256::digest(token.as_bytes())
                .iter()
                .zip(given.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            found | (diff == 0)
        })
}

fn refuse(reason: &'static str, message: impl Into<String>) -> ApiError {
    metrics::counter!("partnerflow_api_auth_failures_total", "reason" => reason).increment(1);
    ApiError::unauthorized(reason, message)
}

/// The integration a request was signed by, with the roles it may act for.
#[derive(Debug, Clone)]
pub(crate) struct IntegrationId {
    pub(crate) id: String,
    pub(crate) roles: Vec<String>,
    pub(crate) events: Vec<String>,
}

impl IntegrationId {
    /// How the integration appears as an actor in the audit trail.
    pub(crate) fn actor(&self) -> Actor {
        Actor {
            id: format!("integration:{}", self.id),
        }
    }
}

/// Who made an authenticated request.
#[derive(Debug, Clone)]
pub(crate) enum Who {
    Operator,
    Integration(IntegrationId),
}

impl Who {
    pub(crate) fn actor(&self) -> Actor {
        match self {
            Who::Operator => Actor {
                id: "operator".to_owned(),
            },
            Who::Integration(i) => i.actor(),
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
    pub(crate) integration: IntegrationId,
    pub(crate) payload: Payload,
}

impl FromRequest<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        if parts.headers.contains_key(AUTHORIZATION) {
            operator(&parts, state)?;
            let payload = Payload::read(parts, body, state).await?;
            return Ok(Caller {
                who: Who::Operator,
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

impl FromRequest<AppState> for SignedIntegration {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (Some(id), Some(signature)) = (header(INTEGRATION_HEADER), header(SIGNATURE_HEADER))
        else {
            return Err(refuse(
                "signature_required",
                "this endpoint needs a signed request (X-Partnerflow-Integration and X-Partnerflow-Signature)",
            ));
        };
        let integration = state.auth.integrations.iter().find(|i| i.id == id);
        // Read the body before judging the integration, so an unknown id and a bad signature
        // cost the same.
        let payload = Payload::read(parts, body, state).await?;
        let now = state.clock.now().timestamp();
        let secrets = integration.map_or(&[][..], |i| &i.secrets[..]);
        if let Err(e) = verify(
            &signature,
            &payload.body,
            secrets,
            now,
            state.auth.tolerance_secs,
        ) {
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
        let integration = IntegrationId {
            id: integration.id.clone(),
            roles: integration.roles.clone(),
            events: integration.events.clone(),
        };
        Ok(SignedIntegration {
            integration,
            payload,
        })
    }
}

/// Checks `Authorization: Bearer <token>` against the operator tokens.
fn operator(parts: &Parts, state: &AppState) -> Result<(), ApiError> {
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
    if token_matches(token.trim(), &state.auth.operator_tokens) {
        Ok(())
    } else {
        Err(refuse("bad_token", "the bearer token is not valid"))
    }
}

#[cfg(test)]
mod tests;
