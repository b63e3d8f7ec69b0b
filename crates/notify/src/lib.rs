//! Notification delivery. The engine resolves recipients and records every notification under
//! its idempotency key before handing it to a [`Notifier`]; a notifier only delivers.
//!
//! # Layout
//! - [`Notifier`]: the delivery interface (email, SMS).
//! - [`LogNotifier`]: delivers by logging; the embedded default. SMTP and SMS providers
//!   implement the same trait.

use partnerflow_core::definition::Channel;
use serde::Serialize;

/// One message to one address.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    /// Deduplication key; providers that support one receive it too.
    pub key: String,
    pub channel: Channel,
    /// Email address or phone number.
    pub address: String,
    pub recipient_name: String,
    pub locale: String,
    pub template: String,
    pub vars: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The provider could not be reached or refused for now; try again later.
    #[error("delivery failed, retryable: {0}")]
    Retryable(String),
    /// The message can never be delivered (a malformed address).
    #[error("delivery failed: {0}")]
    Permanent(String),
}

#[async_trait::async_trait]
pub trait Notifier: Send + Sync + 'static {
    async fn send(&self, message: &Message) -> Result<(), Error>;
}

/// Delivers by writing a log line. Every message is still recorded by the engine.
#[derive(Debug, Default, Clone)]
pub struct LogNotifier;

#[async_trait::async_trait]
impl Notifier for LogNotifier {
    async fn send(&self, m: &Message) -> Result<(), Error> {
        tracing::info!(channel = ?m.channel, address = %m.address, template = %m.template, key = %m.key, "notification");
        Ok(())
    }
}
