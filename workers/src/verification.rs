//! Business (real-name) verification providers: a micro-deposit of ¥0.01–0.99 to the company's
//! account, confirmed by the partner, 3 attempts then locked. The embedded default simulates
//! the provider deterministically; production calls a provider over HTTPS.

use std::time::Duration;

use partnerflow_core::handler::HandlerError;
use partnerflow_core::onboarding::{self, Application, DepositOutcome, MicroDepositCheck};
use partnerflow_core::programme::Programme;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::onboarding::ENTRIES;

/// Result of business / real-name verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    Verified {
        reference: String,
    },
    /// The micro-deposit was confirmed wrongly too many times.
    Locked {
        reason: String,
    },
}

/// A business-verification provider (micro-deposit to the company's account, confirmed by
/// the partner). The embedded default simulates one; production plugs in an HTTP provider.
#[async_trait::async_trait]
pub trait BusinessVerifier: Send + Sync + 'static {
    /// `input` is the whole validated input, for provider-specific fields.
    async fn verify(
        &self,
        app: &Application,
        input: &Value,
        programme: &Programme,
    ) -> Result<Verification, HandlerError>;
}

/// Deterministic provider: the deposit amount derives from the USCC; the partner's entries are
/// read from the application's optional `micro_deposit_entries` (absent: entered correctly).
#[derive(Debug, Default, Clone)]
pub struct SimulatedVerifier;

#[async_trait::async_trait]
impl BusinessVerifier for SimulatedVerifier {
    async fn verify(
        &self,
        app: &Application,
        input: &Value,
        programme: &Programme,
    ) -> Result<Verification, HandlerError> {
        let expected = onboarding::micro_deposit_amount(
            &app.company.uscc,
            &programme.contract.verification_salt,
        );
        let entries: Vec<Decimal> = input
            .get(ENTRIES)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_else(|| vec![expected]);
        let mut check = MicroDepositCheck::default();
        for entered in entries {
            match check.confirm(
                expected,
                entered,
                programme.onboarding.micro_deposit_attempts,
            ) {
                DepositOutcome::Verified => {
                    return Ok(Verification::Verified {
                        reference: format!("SIM-{}", app.company.uscc),
                    });
                }
                DepositOutcome::Locked => {
                    return Ok(Verification::Locked {
                        reason: format!(
                            "micro-deposit confirmed wrongly {} times",
                            programme.onboarding.micro_deposit_attempts
                        ),
                    });
                }
                DepositOutcome::Retry { .. } => {}
            }
        }
        Err(HandlerError::Retryable(
            "the partner has not confirmed the micro-deposit yet".to_owned(),
        ))
    }
}

/// A provider reached over HTTP(S). partnerflow sends
/// `POST <url>` with `{"partner_id", "uscc", "company_name"}` (bearer token when configured,
/// `Idempotency-Key: <partner_id>:<uscc>`) and expects
/// `{"status": "verified" | "locked" | "pending", "reference"?, "reason"?}`.
/// `pending` (the partner has not confirmed the deposit yet) is asked again at the step's
/// `poll_every` until its `poll_for` deadline; timeouts and 5xx answers are retried with
/// backoff; any other answer fails the step for an operator.
#[derive(Debug, Clone)]
pub struct HttpVerifier {
    client: reqwest::Client,
    url: String,
    token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ProviderAnswer {
    status: String,
    #[serde(default)]
    reference: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

impl HttpVerifier {
    pub fn new(url: &str, token: Option<String>, timeout: Duration) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| format!("verification client: {e}"))?;
        Ok(HttpVerifier {
            client,
            url: url.to_owned(),
            token,
        })
    }
}

#[async_trait::async_trait]
impl BusinessVerifier for HttpVerifier {
    async fn verify(
        &self,
        app: &Application,
        _input: &Value,
        _programme: &Programme,
    ) -> Result<Verification, HandlerError> {
        let body = json!({ "partner_id": app.partner_id, "uscc": app.company.uscc, "company_name": app.company.name });
        let mut request = self
            .client
            .post(&self.url)
            .header(
                "Idempotency-Key",
                format!("{}:{}", app.partner_id, app.company.uscc),
            )
            .json(&body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| {
            HandlerError::Retryable(format!("verification provider unreachable: {e}"))
        })?;
        let status = response.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(HandlerError::Retryable(format!(
                "verification provider answered {status}"
            )));
        }
        if !status.is_success() {
            return Err(HandlerError::Fatal(format!(
                "verification provider refused the request: {status}"
            )));
        }
        let answer: ProviderAnswer = response.json().await.map_err(|e| {
            HandlerError::Fatal(format!(
                "verification provider answer is not understood: {e}"
            ))
        })?;
        match answer.status.as_str() {
            "verified" => Ok(Verification::Verified {
                reference: answer.reference.unwrap_or_default(),
            }),
            "locked" => Ok(Verification::Locked {
                reason: answer
                    .reason
                    .unwrap_or_else(|| "locked by the provider".to_owned()),
            }),
            "pending" => Err(HandlerError::Pending(
                "the partner has not confirmed the micro-deposit yet".to_owned(),
            )),
            other => Err(HandlerError::Fatal(format!(
                "verification provider status `{other}` is not verified, locked or pending"
            ))),
        }
    }
}
