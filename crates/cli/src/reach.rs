//! `[notifications]` and `[[webhooks]]` settings → the engine's [`Reach`] and the email and
//! SMS providers.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::NaiveTime;
use partnerflow_engine::{Reach, Subscriber, WebhookSecret};
use partnerflow_notify::{Channels, LogNotifier, Notifier, Templates};
use serde::Deserialize;

/// The signed-link key shipped for development; refused on a public address.
pub const DEVELOPMENT_LINK_SECRET: &str = "partnerflow-development-link-key-not-for-production";

#[derive(Clone, Deserialize)]
pub struct Notifications {
    /// `config/templates`: `<locale>/<name>.j2`.
    pub templates: std::path::PathBuf,
    /// The public address of `partnerflow serve`, where signed links point.
    pub public_url: String,
    pub link_secret: String,
    pub link_ttl_hours: u64,
    /// `HH:MM-HH:MM` in each recipient's time zone on working days; empty: no quiet hours.
    pub working_hours: String,
    pub email: Email,
    pub sms: Sms,
    pub webhook_attempts: i64,
    pub webhook_timeout_ms: u64,
}

impl std::fmt::Debug for Notifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifications")
            .field("templates", &self.templates)
            .field("public_url", &self.public_url)
            .field("working_hours", &self.working_hours)
            .field("email", &self.email.provider)
            .field("sms", &self.sms.provider)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Deserialize)]
pub struct Email {
    /// `log` (the embedded default) or `smtp`.
    pub provider: String,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub port: u16,
    /// `starttls`, `tls` or `plain`.
    #[serde(default = "starttls")]
    pub security: String,
    #[serde(default)]
    pub username: Option<String>,
    /// Better set as PARTNERFLOW__NOTIFICATIONS__EMAIL__PASSWORD; never logged.
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub from: String,
    pub timeout_ms: u64,
}

fn starttls() -> String {
    "starttls".to_owned()
}

#[derive(Clone, Deserialize)]
pub struct Sms {
    /// `log` (the embedded default) or `http`.
    pub provider: String,
    #[serde(default)]
    pub url: String,
    /// Better set as PARTNERFLOW__NOTIFICATIONS__SMS__KEY; never logged.
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub sign_name: String,
    #[serde(default)]
    pub template_ids: std::collections::BTreeMap<String, String>,
    pub timeout_ms: u64,
}

/// One `[[webhooks]]` subscriber.
#[derive(Clone, Deserialize)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    #[serde(default)]
    pub events: Vec<String>,
    pub secrets: Vec<Secret>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets are never logged.
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Deserialize)]
pub struct Secret {
    pub secret: String,
    /// RFC 3339: the secret signs until then (the overlap of a rotation).
    #[serde(default)]
    pub until: Option<chrono::DateTime<chrono::Utc>>,
}

/// `HH:MM-HH:MM`, or none for an empty string.
pub fn working_hours(s: &str) -> Result<Option<(NaiveTime, NaiveTime)>> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    let parse = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M");
    let (a, b) = s
        .split_once('-')
        .context("notifications.working_hours must be HH:MM-HH:MM or empty")?;
    let (a, b) = (
        parse(a).context("notifications.working_hours start")?,
        parse(b).context("notifications.working_hours end")?,
    );
    if a >= b {
        bail!("notifications.working_hours: the start must be before the end");
    }
    Ok(Some((a, b)))
}

/// The templates directory: the configured one, or the source tree's when it does not exist
/// (a binary run from elsewhere than its checkout).
fn templates_dir(n: &Notifications) -> std::path::PathBuf {
    if n.templates.is_dir() {
        n.templates.clone()
    } else {
        partnerflow_engine::reach::shipped_templates_dir()
    }
}

pub fn templates(n: &Notifications) -> Result<Templates> {
    let dir = templates_dir(n);
    Templates::load(&dir).with_context(|| format!("notification templates in {}", dir.display()))
}

pub fn reach(n: &Notifications, webhooks: &[Webhook], templates: Templates) -> Result<Reach> {
    for w in webhooks {
        for e in &w.events {
            if !partnerflow_engine::reach::WEBHOOK_EVENTS.contains(&e.as_str()) {
                bail!(
                    "webhooks `{}`: event `{e}` is not one of {}",
                    w.id,
                    partnerflow_engine::reach::WEBHOOK_EVENTS.join(", ")
                );
            }
        }
        if w.secrets.is_empty() {
            bail!("webhooks `{}`: at least one secret is required", w.id);
        }
        reqwest_url(&w.url).with_context(|| format!("webhooks `{}`: url", w.id))?;
    }
    Ok(Reach {
        templates: Arc::new(templates),
        public_url: n.public_url.clone(),
        link_secret: n.link_secret.as_bytes().to_vec(),
        link_ttl: Duration::from_secs(n.link_ttl_hours * 3600),
        working_hours: working_hours(&n.working_hours)?,
        webhooks: webhooks
            .iter()
            .map(|w| Subscriber {
                id: w.id.clone(),
                url: w.url.clone(),
                events: w.events.clone(),
                secrets: w
                    .secrets
                    .iter()
                    .map(|s| WebhookSecret {
                        secret: s.secret.clone(),
                        until: s.until,
                    })
                    .collect(),
            })
            .collect(),
        webhook_client: partnerflow_notify::webhook::WebhookClient::new(Duration::from_millis(
            n.webhook_timeout_ms,
        ))
        .map_err(anyhow::Error::msg)?,
        webhook_attempts: n.webhook_attempts.max(1),
    })
}

fn reqwest_url(url: &str) -> Result<()> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        bail!("`{url}` is not an http(s) URL")
    }
}

/// The email and SMS providers the settings name.
pub fn notifier(n: &Notifications) -> Result<Arc<dyn Notifier>> {
    let e = &n.email;
    let email: Arc<dyn Notifier> = match e.provider.as_str() {
        "log" => Arc::new(LogNotifier),
        "smtp" => {
            if e.host.is_empty() || e.from.is_empty() {
                bail!("notifications.email.host and .from are required when provider = \"smtp\"");
            }
            let security = e.security.parse().map_err(anyhow::Error::msg)?;
            let port = match (e.port, security) {
                (0, partnerflow_notify::smtp::Security::Tls) => 465,
                (0, partnerflow_notify::smtp::Security::Starttls) => 587,
                (0, partnerflow_notify::smtp::Security::Plain) => 25,
                (p, _) => p,
            };
            Arc::new(
                partnerflow_notify::smtp::SmtpMailer::new(&partnerflow_notify::smtp::SmtpConfig {
                    host: e.host.clone(),
                    port,
                    security,
                    username: e.username.clone(),
                    password: e.password.clone(),
                    from: e.from.clone(),
                    timeout: Duration::from_millis(e.timeout_ms),
                })
                .map_err(anyhow::Error::msg)?,
            )
        }
        other => bail!("notifications.email.provider must be `log` or `smtp`, got `{other}`"),
    };
    let s = &n.sms;
    let sms: Arc<dyn Notifier> = match s.provider.as_str() {
        "log" => Arc::new(LogNotifier),
        "http" => {
            if s.url.is_empty() {
                bail!("notifications.sms.url is required when provider = \"http\"");
            }
            Arc::new(
                partnerflow_notify::sms::HttpSms::new(partnerflow_notify::sms::SmsConfig {
                    url: s.url.clone(),
                    key: s.key.clone(),
                    sign_name: s.sign_name.clone(),
                    template_ids: s.template_ids.clone(),
                    timeout: Duration::from_millis(s.timeout_ms),
                })
                .map_err(anyhow::Error::msg)?,
            )
        }
        other => bail!("notifications.sms.provider must be `log` or `http`, got `{other}`"),
    };
    Ok(Arc::new(Channels { email, sms }))
}
