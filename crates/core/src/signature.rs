//! Request signatures: `X-Partnerflow-Signature: t=<unix seconds>,v1=<hex>` where the hex is
//! HMAC-SHA256 of `<t>.<METHOD>.<PATH>.<IDEMPOTENCY_KEY>.<BODY>` with the integration's secret.
//!
//! The whole request is signed, not the body alone: our bodies do not name the object they act
//! on (the task, the instance, the event are in the path), so a signature over the body alone
//! would be valid for every task of the same role. PATH is the request target as sent, path and
//! query string; IDEMPOTENCY_KEY is the header's value (empty on reads, which carry none).
//! Any of the integration's secrets may match (rotation), the comparison is constant-time, and
//! the timestamp must lie within the tolerance of the injected clock, so tests on a virtual
//! clock sign with virtual time. Several `v1=` entries are accepted (a sender mid-rotation).

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What a signature covers, besides its timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedRequest<'a> {
    /// `POST`, `GET`, … as sent.
    pub method: &'a str,
    /// Path and query string as sent, e.g. `/v1/tasks/…/decision`.
    pub path: &'a str,
    /// The `Idempotency-Key` header's value; empty when the request has none.
    pub idempotency_key: &'a str,
    pub body: &'a [u8],
}

/// Signs `request` at `timestamp` with `secret`: the header value `t=<unix>,v1=<hex>`.
/// Used by tests, the bench and the README's examples; outbound webhooks use [`sign_all`].
pub fn sign(secret: &str, timestamp: i64, request: SignedRequest<'_>) -> String {
    let tag = mac(secret, timestamp, request).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(tag))
}

/// Signs `request` with every secret in `secrets`: one `v1=` per secret, so a receiver
/// mid-rotation accepts it under either the old secret or the new one.
pub fn sign_all(secrets: &[&str], timestamp: i64, request: SignedRequest<'_>) -> String {
    let mut header = format!("t={timestamp}");
    for secret in secrets {
        let tag = mac(secret, timestamp, request).finalize().into_bytes();
        header.push_str(",v1=");
        header.push_str(&hex::encode(tag));
    }
    header
}

fn mac(secret: &str, timestamp: i64, r: SignedRequest<'_>) -> HmacSha256 {
    // HMAC takes keys of any length; an error here is impossible, so an empty key stands in.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| HmacSha256::new(&Default::default()));
    for part in [
        timestamp.to_string().as_bytes(),
        r.method.as_bytes(),
        r.path.as_bytes(),
        r.idempotency_key.as_bytes(),
    ] {
        mac.update(part);
        mac.update(b".");
    }
    mac.update(r.body);
    mac
}

/// Why a signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is not `t=<unix>,v1=<hex>`")]
    Malformed,
    #[error("the signature's timestamp is outside the allowed window")]
    OutsideTolerance,
    #[error("the signature does not match")]
    Mismatch,
}

impl SignatureError {
    pub fn label(self) -> &'static str {
        match self {
            SignatureError::Malformed => "malformed_signature",
            SignatureError::OutsideTolerance => "stale_signature",
            SignatureError::Mismatch => "bad_signature",
        }
    }
}

/// The timestamp and `v1` tags of a `t=…,v1=…` header.
fn parse_header(header: &str) -> Result<(i64, Vec<Vec<u8>>), SignatureError> {
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
    Ok((timestamp, tags))
}

fn within(timestamp: i64, now: i64, tolerance_secs: i64) -> Result<(), SignatureError> {
    if now.abs_diff(timestamp) > tolerance_secs.max(0).unsigned_abs() {
        Err(SignatureError::OutsideTolerance)
    } else {
        Ok(())
    }
}

/// Checks a `t=…,v1=…` header over `request` against any of `secrets`, at `now` (unix seconds).
pub fn verify(
    header: &str,
    request: SignedRequest<'_>,
    secrets: &[String],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let mut check = Streaming::begin(header, request, secrets, now, tolerance_secs)?;
    check.update(request.body);
    check.finish()
}

/// A signature checked over a body that arrives in pieces (an upload), without holding it.
pub struct Streaming {
    macs: Vec<HmacSha256>,
    tags: Vec<Vec<u8>>,
}

impl Streaming {
    /// Checks the header and the timestamp, and starts the MACs over everything but the body
    /// (`request.body` is not read).
    pub fn begin(
        header: &str,
        request: SignedRequest<'_>,
        secrets: &[String],
        now: i64,
        tolerance_secs: i64,
    ) -> Result<Self, SignatureError> {
        let (timestamp, tags) = parse_header(header)?;
        within(timestamp, now, tolerance_secs)?;
        let head = SignedRequest {
            body: b"",
            ..request
        };
        let macs = secrets
            .iter()
            .filter(|s| !s.is_empty())
            .map(|secret| mac(secret, timestamp, head))
            .collect();
        Ok(Streaming { macs, tags })
    }

    pub fn update(&mut self, chunk: &[u8]) {
        for m in &mut self.macs {
            m.update(chunk);
        }
    }

    pub fn finish(self) -> Result<(), SignatureError> {
        let tags = self.tags;
        let matched = self
            .macs
            .into_iter()
            .any(|m| tags.iter().any(|tag| m.clone().verify_slice(tag).is_ok()));
        if matched {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}
