//! A bank or payment platform reached over HTTP: `POST <url>` with the payable's id as the
//! `Idempotency-Key` header and `{payable, payee, amount, currency}` as JSON; it answers
//! `{"status": "confirmed" | "submitted", "reference": "…"}`, the first payment's answer for a
//! repeated key. Timeouts, 5xx and 429 are retried; any other refusal is final.

use std::time::Duration;

use partnerflow_core::handler::HandlerError;
use serde::Deserialize;
use serde_json::json;

use super::{PaymentAnswer, PaymentProvider, PaymentRequest};

#[derive(Debug, Clone)]
pub struct HttpBank {
    client: reqwest::Client,
    url: String,
    token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct BankAnswer {
    status: String,
    reference: String,
}

impl HttpBank {
    pub fn new(url: &str, token: Option<String>, timeout: Duration) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| format!("payment client: {e}"))?;
        Ok(HttpBank {
            client,
            url: url.to_owned(),
            token,
        })
    }
}

#[async_trait::async_trait]
impl PaymentProvider for HttpBank {
    async fn pay(&self, request: &PaymentRequest) -> Result<PaymentAnswer, HandlerError> {
        let body = json!({ "payable": request.idempotency_key, "payee": request.payee,
                           "amount": request.amount.to_string(), "currency": request.currency });
        let mut call = self
            .client
            .post(&self.url)
            .header("Idempotency-Key", &request.idempotency_key)
            .json(&body);
        if let Some(token) = &self.token {
            call = call.bearer_auth(token);
        }
        let response = call
            .send()
            .await
            .map_err(|e| HandlerError::Retryable(format!("payment provider unreachable: {e}")))?;
        let status = response.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(HandlerError::Retryable(format!(
                "payment provider answered {status}"
            )));
        }
        if !status.is_success() {
            return Err(HandlerError::Fatal(format!(
                "payment provider refused payable {}: {status}",
                request.idempotency_key
            )));
        }
        let answer: BankAnswer = response.json().await.map_err(|e| {
            HandlerError::Retryable(format!("payment provider's answer unreadable: {e}"))
        })?;
        match answer.status.as_str() {
            "confirmed" => Ok(PaymentAnswer::Confirmed {
                reference: answer.reference,
            }),
            "submitted" => Ok(PaymentAnswer::Submitted {
                reference: answer.reference,
            }),
            other => Err(HandlerError::Fatal(format!(
                "payment provider status `{other}` is neither confirmed nor submitted"
            ))),
        }
    }
}
