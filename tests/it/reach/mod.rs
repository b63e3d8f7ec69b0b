//! Reaching reviewers and systems: email received by a real SMTP server (aiosmtpd), SMS and
//! webhook requests received by a local HTTP server, signed links used through the API,
//! quiet hours, fallback and delegation, on the virtual clock.

mod assign;
mod links;
pub(crate) mod mail;
mod receivers;
mod webhooks;
