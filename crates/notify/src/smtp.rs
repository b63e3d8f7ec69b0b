//! Email through SMTP (lettre): STARTTLS, implicit TLS or plain, multipart text + HTML, and a
//! `Message-ID` derived from the notification's key, so a message sent again after a crash
//! carries the same id and a mail system can recognise the repeat.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use sha2::{Digest, Sha256};

use crate::{Error, Message, Notifier};

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain connection upgraded with STARTTLS (port 587); refused if the server cannot.
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No TLS: only for a relay on the same host or a test server.
    Plain,
}

impl std::str::FromStr for Security {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "starttls" => Ok(Security::Starttls),
            "tls" => Ok(Security::Tls),
            "plain" => Ok(Security::Plain),
            other => Err(format!(
                "email.security must be starttls, tls or plain, got `{other}`"
            )),
        }
    }
}

/// Where and how email is sent.
#[derive(Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The sender, `partnerflow <noreply@vendor.example>`.
    pub from: String,
    pub timeout: Duration,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password is never logged.
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    domain: String,
    /// Bounds a whole send (lettre's own timeout bounds each read, not the server's answer
    /// to the message).
    timeout: std::time::Duration,
}

impl SmtpMailer {
    pub fn new(config: &SmtpConfig) -> Result<Self, String> {
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| format!("email.from `{}` is not a mailbox: {e}", config.from))?;
        let domain = from.email.domain().to_owned();
        let tls = || {
            TlsParameters::new(config.host.clone())
                .map_err(|e| format!("email TLS for {}: {e}", config.host))
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .timeout(Some(config.timeout));
        builder = match config.security {
            Security::Starttls => builder.tls(Tls::Required(tls()?)),
            Security::Tls => builder.tls(Tls::Wrapper(tls()?)),
            Security::Plain => builder.tls(Tls::None),
        };
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(SmtpMailer {
            transport: builder.build(),
            from,
            domain,
            timeout: config.timeout,
        })
    }

    /// `<hex of SHA-256(key), 32 digits>@<the sender's domain>`: the same for every attempt
    /// of one notification.
    pub fn message_id(&self, key: &str) -> String {
        message_id(key, &self.domain)
    }
}

/// The `Message-ID` of the notification `key` sent from `domain`.
pub fn message_id(key: &str, domain: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    format!("<{}@{domain}>", &hex::encode(digest)[..32])
}

#[async_trait::async_trait]
impl Notifier for SmtpMailer {
    async fn send(&self, m: &Message) -> Result<(), Error> {
        let address = m
            .address
            .parse()
            .map_err(|e| Error::Permanent(format!("email address `{}`: {e}", m.address)))?;
        let to = Mailbox::new(Some(m.recipient_name.clone()), address);
        let email = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(m.content.subject.clone())
            .message_id(Some(self.message_id(&m.key)))
            .multipart(MultiPart::alternative_plain_html(
                m.content.text.clone(),
                m.content.html.clone(),
            ))
            .map_err(|e| Error::Permanent(format!("email for {}: {e}", m.address)))?;
        match tokio::time::timeout(self.timeout, self.transport.send(email)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if e.is_permanent() => Err(Error::Permanent(format!("SMTP refused: {e}"))),
            Ok(Err(e)) => Err(Error::Retryable(format!("SMTP: {e}"))),
            // The server may have taken the message: the retry carries the same Message-ID.
            Err(_) => Err(Error::Retryable(format!(
                "SMTP: no answer within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }
}
