//! How partnerflow reaches people and systems: the templates notifications are rendered from,
//! signed links, quiet hours and webhook subscribers.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveTime;
use partnerflow_notify::Templates;
use partnerflow_notify::webhook::WebhookClient;

/// Delivery settings of an engine.
#[derive(Clone)]
pub struct Reach {
    pub templates: Arc<Templates>,
    /// Where signed links point: the public address of `partnerflow serve`.
    pub public_url: String,
    /// Key of the signed-link tokens (an HMAC of the notification and decision).
    pub link_secret: Vec<u8>,
    /// How long a signed link may be used.
    pub link_ttl: Duration,
    /// Working hours of every recipient, in their own time zone, on working days of the
    /// business calendar; a non-urgent message outside them waits. `None`: no quiet hours.
    pub working_hours: Option<(NaiveTime, NaiveTime)>,
    pub webhooks: Vec<Subscriber>,
    pub webhook_client: WebhookClient,
    /// Attempts of one webhook delivery before it is recorded as failed.
    pub webhook_attempts: i64,
}

impl std::fmt::Debug for Reach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reach")
            .field("public_url", &self.public_url)
            .field("working_hours", &self.working_hours)
            .field("webhooks", &self.webhooks)
            .finish_non_exhaustive()
    }
}

/// A system that receives webhooks.
#[derive(Clone)]
pub struct Subscriber {
    pub id: String,
    pub url: String,
    /// Event types it receives (`task.created`, …); empty: all.
    pub events: Vec<String>,
    pub secrets: Vec<WebhookSecret>,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets are never logged.
        f.debug_struct("Subscriber")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

/// A signing secret, used until `until` when set (a secret being rotated out).
#[derive(Clone)]
pub struct WebhookSecret {
    pub secret: String,
    pub until: Option<chrono::DateTime<chrono::Utc>>,
}

impl Subscriber {
    pub fn wants(&self, event: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|e| e == event)
    }

    /// The secrets that sign at `now`: during a rotation's overlap, the old and the new.
    pub fn secrets_at(&self, now: chrono::DateTime<chrono::Utc>) -> Vec<&str> {
        self.secrets
            .iter()
            .filter(|s| s.until.is_none_or(|until| now < until))
            .map(|s| s.secret.as_str())
            .collect()
    }
}

/// Event types a subscriber may ask for.
pub const WEBHOOK_EVENTS: &[&str] = &[
    "task.created",
    "task.escalated",
    "step.completed",
    "sla.breached",
    "workflow.finished",
    "payment.made",
];

/// The templates of the engine's own task notifications.
pub const BUILT_IN_TEMPLATES: &[&str] = &[
    "task.assigned",
    "task.reminder",
    "task.escalated",
    "task.breached",
];

/// The templates shipped in this source tree (tests, and a binary run from its checkout).
pub fn shipped_templates_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/templates")
}

impl Reach {
    /// The shipped templates, links to loopback, no quiet hours and no webhooks.
    pub fn development() -> Result<Self, String> {
        let templates = Templates::load(&shipped_templates_dir()).map_err(|e| e.to_string())?;
        Ok(Reach {
            templates: Arc::new(templates),
            public_url: "http://127.0.0.1:8080".to_owned(),
            link_secret: b"partnerflow-development-link-key-not-for-production".to_vec(),
            link_ttl: Duration::from_secs(72 * 3600),
            working_hours: None,
            webhooks: Vec::new(),
            webhook_client: WebhookClient::new(Duration::from_secs(10))?,
            webhook_attempts: 10,
        })
    }
}
