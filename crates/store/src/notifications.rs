//! The record of notifications. Each address is recorded under its key as an intent
//! (`sending`) before its provider is called, outside any transaction, and marked `sent` after:
//! the key makes a retried step send nothing twice, and a call whose result was never recorded
//! (a crash, a timeout after the provider accepted) is retried under the same key, which the
//! provider receives, so it can recognise the repeat.

use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use crate::{Conn, Result, from_micros, to_micros};

#[derive(Debug, Clone, serde::Serialize)]
pub struct Sent {
    pub key: String,
    pub instance_id: String,
    pub channel: String,
    pub recipient: String,
    pub address: String,
    pub template: String,
    pub payload: serde_json::Value,
    /// When the intent was first recorded, then when the provider accepted it.
    pub sent_at: DateTime<Utc>,
    /// `sending` (intent recorded, provider not known to have accepted) or `sent`.
    pub status: String,
    /// Provider calls made under this key.
    pub attempts: i64,
    pub last_error: Option<String>,
    /// The key of the notification this one stands in for on the other channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_for: Option<String>,
}

pub const SENDING: &str = "sending";
pub const SENT: &str = "sent";
pub const FAILED: &str = "failed";

/// What a sender may do with one address of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Call the provider: the intent is recorded and claimed by this sender until the given time.
    Send,
    /// Already sent, or failed for good: nothing to do.
    Sent,
    /// Another sender holds the claim right now.
    Busy,
}

/// Records the intent to send `n` (or takes over an earlier intent whose claim ran out), each
/// in its own statement: no transaction is open while the provider is called.
pub async fn claim(
    conn: &mut Conn,
    n: &Sent,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Claim> {
    let inserted = sqlx::query(
        r#"insert into notifications (key, instance_id, channel, recipient, address, template, payload, sent_at, status, claimed_until, attempts)
           values ($1, $2, $3, $4, $5, $6, $7, $8, 'sending', $9, 1) on conflict (key) do nothing"#,
    )
    .bind(&n.key)
    .bind(&n.instance_id)
    .bind(&n.channel)
    .bind(&n.recipient)
    .bind(&n.address)
    .bind(&n.template)
    .bind(n.payload.to_string())
    .bind(to_micros(now))
    .bind(to_micros(until))
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Claim::Send);
    }
    let retaken = sqlx::query(
        "update notifications set claimed_until = $1, attempts = attempts + 1
         where key = $2 and status = 'sending' and (claimed_until is null or claimed_until <= $3)",
    )
    .bind(to_micros(until))
    .bind(&n.key)
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await?;
    if retaken.rows_affected() == 1 {
        return Ok(Claim::Send);
    }
    let status: Option<String> = sqlx::query("select status from notifications where key = $1")
        .bind(&n.key)
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| r.try_get(0))
        .transpose()?;
    Ok(if matches!(status.as_deref(), Some(SENT) | Some(FAILED)) {
        Claim::Sent
    } else {
        Claim::Busy
    })
}

/// The provider accepted the message.
pub async fn mark_sent(conn: &mut Conn, key: &str, now: DateTime<Utc>) -> Result<()> {
    sqlx::query("update notifications set status = 'sent', sent_at = $1, claimed_until = null, last_error = null where key = $2")
        .bind(to_micros(now))
        .bind(key)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The provider failed for good (its last attempt, or a permanent refusal): recorded as
/// `failed`, never sent again under this key.
pub async fn mark_failed(conn: &mut Conn, key: &str, error: &str) -> Result<()> {
    sqlx::query("update notifications set status = 'failed', claimed_until = null, last_error = $1 where key = $2 and status = 'sending'")
        .bind(error)
        .bind(key)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Names the notification `key` stands in for, on the other channel.
pub async fn mark_fallback(conn: &mut Conn, key: &str, fallback_for: &str) -> Result<()> {
    sqlx::query("update notifications set fallback_for = $1 where key = $2")
        .bind(fallback_for)
        .bind(key)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The provider call failed: the intent stays `sending`, its claim released for the retry.
pub async fn release(conn: &mut Conn, key: &str, error: &str) -> Result<()> {
    sqlx::query("update notifications set claimed_until = null, last_error = $1 where key = $2 and status = 'sending'")
        .bind(error)
        .bind(key)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn for_instance(conn: &mut Conn, instance_id: Uuid) -> Result<Vec<Sent>> {
    let rows = sqlx::query(
        "select key, instance_id, channel, recipient, address, template, payload, sent_at, status, attempts, last_error, fallback_for from notifications where instance_id = $1 order by sent_at, key",
    )
    .bind(instance_id.to_string())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Sent {
                key: r.try_get(0)?,
                instance_id: r.try_get(1)?,
                channel: r.try_get(2)?,
                recipient: r.try_get(3)?,
                address: r.try_get(4)?,
                template: r.try_get(5)?,
                payload: crate::json("notification payload", &r.try_get::<String, _>(6)?)?,
                sent_at: from_micros(r.try_get(7)?),
                status: r.try_get(8)?,
                attempts: r.try_get(9)?,
                last_error: r.try_get(10)?,
                fallback_for: r.try_get(11)?,
            })
        })
        .collect()
}
