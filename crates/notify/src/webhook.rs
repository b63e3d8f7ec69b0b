//! Outbound webhooks: `POST <subscriber url>` with the event as JSON, signed as inbound
//! callbacks are (`X-Partnerflow-Signature: t=<unix>,v1=<hex>` over
//! `t.POST.PATH.IDEMPOTENCY_KEY.BODY`, PATH being the URL's path and query), one `v1=` per
//! secret in force so a receiver rotating its secret accepts either. `Idempotency-Key` and
//! `X-Partnerflow-Delivery` carry the event id, the same on every attempt.

use std::time::Duration;

use partnerflow_core::signature::{SignedRequest, sign_all};

/// The header naming the event type (`task.created`).
pub const EVENT_HEADER: &str = "x-partnerflow-event";
/// The header carrying the event id, the same on every attempt and replay.
pub const DELIVERY_HEADER: &str = "x-partnerflow-delivery";

/// One signed request to a subscriber.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    pub url: &'a str,
    pub event: &'a str,
    pub delivery_id: &'a str,
    pub body: &'a [u8],
    /// The subscriber's secrets in force now.
    pub secrets: &'a [&'a str],
    /// Unix seconds the signature is made at.
    pub timestamp: i64,
}

#[derive(Debug, Clone)]
pub struct WebhookClient {
    client: reqwest::Client,
}

impl WebhookClient {
    pub fn new(timeout: Duration) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| format!("webhook client: {e}"))?;
        Ok(WebhookClient { client })
    }

    /// Sends `out`. Any answer but a 2xx is a failure to retry (a receiver that is down or
    /// misconfigured today may be fixed tomorrow); the status is kept for the delivery log.
    pub async fn post(&self, out: &Outgoing<'_>) -> Answer {
        let url = match reqwest::Url::parse(out.url) {
            Ok(url) => url,
            Err(e) => return Answer::failed(None, format!("webhook url `{}`: {e}", out.url)),
        };
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let signature = sign_all(
            out.secrets,
            out.timestamp,
            SignedRequest {
                method: "POST",
                path: &path,
                idempotency_key: out.delivery_id,
                body: out.body,
            },
        );
        let sent = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("idempotency-key", out.delivery_id)
            .header(DELIVERY_HEADER, out.delivery_id)
            .header(EVENT_HEADER, out.event)
            .header("x-partnerflow-signature", signature)
            .body(out.body.to_vec())
            .send()
            .await;
        match sent {
            Err(e) => Answer::failed(None, format!("webhook {}: {e}", out.url)),
            Ok(r) if r.status().is_success() => Answer {
                status: Some(r.status().as_u16()),
                error: None,
            },
            Ok(r) => Answer::failed(
                Some(r.status().as_u16()),
                format!("webhook receiver answered {}", r.status()),
            ),
        }
    }
}

/// What a receiver answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: Option<u16>,
    /// Set unless the receiver accepted the event.
    pub error: Option<String>,
}

impl Answer {
    fn failed(status: Option<u16>, error: String) -> Self {
        Answer {
            status,
            error: Some(error),
        }
    }
}
