//! SMS through an HTTP provider, in the request shape of the common cloud SMS APIs:
//!
//! `POST <url>` with `Authorization: Bearer <key>`, `Idempotency-Key: <key>` and
//! `{"phone_number": "+86…", "sign_name": "…", "template_id": "…", "template_params": {…},
//! "content": "…", "idempotency_key": "…"}`. A 2xx answer is accepted; 408, 429 and 5xx (or
//! no answer) are retried; any other 4xx is permanent.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use crate::{Error, Message, Notifier};

#[derive(Clone)]
pub struct SmsConfig {
    pub url: String,
    pub key: Option<String>,
    /// The registered signature shown as the sender (`【伙伴计划】`).
    pub sign_name: String,
    /// The provider's template id for each of our templates; our name when not listed.
    pub template_ids: BTreeMap<String, String>,
    pub timeout: Duration,
}

impl std::fmt::Debug for SmsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsConfig")
            .field("url", &self.url)
            .field("sign_name", &self.sign_name)
            .finish_non_exhaustive()
    }
}

pub struct HttpSms {
    client: reqwest::Client,
    config: SmsConfig,
}

impl HttpSms {
    pub fn new(config: SmsConfig) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| format!("sms client: {e}"))?;
        Ok(HttpSms { client, config })
    }
}

#[async_trait::async_trait]
impl Notifier for HttpSms {
    async fn send(&self, m: &Message) -> Result<(), Error> {
        let template_id = self
            .config
            .template_ids
            .get(&m.template)
            .unwrap_or(&m.template);
        let body = json!({
            "phone_number": m.address,
            "sign_name": self.config.sign_name,
            "template_id": template_id,
            "template_params": m.params,
            "content": m.content.sms,
            "idempotency_key": m.key,
        });
        let mut request = self
            .client
            .post(&self.config.url)
            .header("Idempotency-Key", &m.key)
            .json(&body);
        if let Some(key) = &self.config.key {
            request = request.bearer_auth(key);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Error::Retryable(format!("sms provider: {e}")))?;
        classify(response.status(), "sms provider")
    }
}

/// What an HTTP answer means for a delivery.
pub(crate) fn classify(status: reqwest::StatusCode, who: &str) -> Result<(), Error> {
    if status.is_success() {
        Ok(())
    } else if status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
    {
        Err(Error::Retryable(format!("{who} answered {status}")))
    } else {
        Err(Error::Permanent(format!("{who} refused with {status}")))
    }
}
