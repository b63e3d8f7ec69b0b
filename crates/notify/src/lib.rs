//! Notification delivery. The engine resolves recipients, renders each message from the
//! templates and records it under its idempotency key before handing it to a [`Notifier`]; a
//! notifier only delivers.
//!
//! # Layout
//! - [`context`]: the variables every template sees.
//! - [`templates`]: `config/templates/<locale>/<name>.j2`, checked at start-up, rendered per
//!   recipient's locale.
//! - [`Notifier`]: the delivery interface; [`Channels`] routes email and SMS to their provider.
//! - [`smtp`]: email through SMTP (lettre); [`sms`]: SMS through an HTTP provider.
//! - [`webhook`]: signed outbound webhook requests.
//! - [`LogNotifier`]: delivers by logging; the embedded default.

pub mod context;
pub mod sms;
pub mod smtp;
pub mod templates;
pub mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;

use partnerflow_core::definition::Channel;
use serde::Serialize;

pub use context::Context;
pub use templates::{Rendered, TemplateError, Templates};

/// One message to one address.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    /// Deduplication key; providers receive it (SMTP as the `Message-ID`, SMS and webhooks as
    /// the idempotency key), so a repeat after a crash is recognisable.
    pub key: String,
    pub channel: Channel,
    /// Email address, or phone number in E.164.
    pub address: String,
    pub recipient_name: String,
    pub template: String,
    pub content: Rendered,
    /// The template's parameters, for SMS providers that fill their own registered template.
    pub params: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The provider could not be reached or refused for now; try again later.
    #[error("delivery failed, retryable: {0}")]
    Retryable(String),
    /// The message can never be delivered (a malformed address, a refused template).
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
        tracing::info!(channel = ?m.channel, address = %m.address, template = %m.template, key = %m.key, subject = %m.content.subject, "notification");
        Ok(())
    }
}

/// Routes each message to the provider of its channel.
#[derive(Clone)]
pub struct Channels {
    pub email: Arc<dyn Notifier>,
    pub sms: Arc<dyn Notifier>,
}

impl Default for Channels {
    fn default() -> Self {
        Channels {
            email: Arc::new(LogNotifier),
            sms: Arc::new(LogNotifier),
        }
    }
}

#[async_trait::async_trait]
impl Notifier for Channels {
    async fn send(&self, m: &Message) -> Result<(), Error> {
        match m.channel {
            Channel::Email => self.email.send(m).await,
            Channel::Sms => self.sms.send(m).await,
        }
    }
}

/// The parameters an SMS provider's registered template is filled with.
pub fn sms_params(ctx: &Context) -> BTreeMap<String, String> {
    let mut p = BTreeMap::new();
    p.insert("name".to_owned(), ctx.recipient.name.clone());
    p.insert("workflow".to_owned(), ctx.instance.workflow.clone());
    p.insert("business_key".to_owned(), ctx.instance.business_key.clone());
    p.insert("step".to_owned(), ctx.instance.step.clone());
    if !ctx.task.due_at.is_empty() {
        p.insert("due_at".to_owned(), ctx.task.due_at.clone());
    }
    if ctx.level > 0 {
        p.insert("level".to_owned(), ctx.level.to_string());
    }
    for link in &ctx.links {
        p.insert(format!("link_{}", link.decision), link.url.clone());
    }
    p
}
