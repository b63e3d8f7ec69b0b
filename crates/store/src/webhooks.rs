//! The delivery log of outbound webhooks: per event and subscriber, its body (kept for
//! replay), the attempts made and the receiver's last answer. An attempt is recorded before
//! the receiver is called and its answer after; an accepted delivery's answer and the
//! completion of its outbox row are written together.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::outbox::Lease;
use crate::{Backend, Conn, Result, from_micros, to_micros};

pub const SENDING: &str = "sending";
pub const DELIVERED: &str = "delivered";
pub const FAILED: &str = "failed";

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Delivery {
    pub id: String,
    pub subscriber: String,
    pub instance_id: String,
    pub event: String,
    pub body: serde_json::Value,
    pub status: String,
    pub attempts: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Records an attempt about to be made (the first creates the row).
pub async fn attempt(
    conn: &mut Conn,
    id: &str,
    subscriber: &str,
    instance_id: &str,
    event: &str,
    body: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "insert into webhook_deliveries (id, subscriber, instance_id, event, body, status, attempts, created_at, updated_at)
         values ($1, $2, $3, $4, $5, 'sending', 1, $6, $6)
         on conflict (id) do update set attempts = webhook_deliveries.attempts + 1, status = 'sending', updated_at = $6",
    )
    .bind(id)
    .bind(subscriber)
    .bind(instance_id)
    .bind(event)
    .bind(body.to_string())
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records the receiver's answer.
pub async fn answered(
    conn: &mut Conn,
    id: &str,
    status: &str,
    http_status: Option<u16>,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "update webhook_deliveries set status = $1, last_status = $2, last_error = $3, updated_at = $4 where id = $5",
    )
    .bind(status)
    .bind(http_status.map(i64::from))
    .bind(error)
    .bind(to_micros(now))
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records that the receiver accepted the delivery and completes its outbox row under `lease`;
/// on PostgreSQL in one statement. The row is left alone when the lease is no longer ours.
pub async fn delivered(
    conn: &mut Conn,
    backend: Backend,
    id: &str,
    http_status: Option<u16>,
    lease: &Lease,
    now: DateTime<Utc>,
) -> Result<()> {
    match backend {
        Backend::Postgres => {
            let sql = format!(
                "with answered as (
                   update webhook_deliveries set status = $4, last_status = $5, last_error = null, updated_at = $1
                   where id = $6)
                 {}",
                crate::outbox::COMPLETE
            );
            sqlx::query(crate::sql(sql))
                .bind(to_micros(now))
                .bind(lease.id)
                .bind(&lease.token)
                .bind(DELIVERED)
                .bind(http_status.map(i64::from))
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
        Backend::Sqlite => {
            answered(conn, id, DELIVERED, http_status, None, now).await?;
            crate::outbox::complete(conn, lease, now).await?;
        }
    }
    Ok(())
}

const COLUMNS: &str = "id, subscriber, instance_id, event, body, status, attempts, last_status, last_error, created_at, updated_at";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Delivery> {
    Ok(Delivery {
        id: r.try_get(0)?,
        subscriber: r.try_get(1)?,
        instance_id: r.try_get(2)?,
        event: r.try_get(3)?,
        body: crate::json("webhook body", &r.try_get::<String, _>(4)?)?,
        status: r.try_get(5)?,
        attempts: r.try_get(6)?,
        last_status: r.try_get(7)?,
        last_error: r.try_get(8)?,
        created_at: from_micros(r.try_get(9)?),
        updated_at: from_micros(r.try_get(10)?),
    })
}

pub async fn get(conn: &mut Conn, id: &str) -> Result<Option<Delivery>> {
    let sql = format!("select {COLUMNS} from webhook_deliveries where id = $1");
    sqlx::query(crate::sql(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| from_row(&r))
        .transpose()
}

/// A subscriber's deliveries, newest first; only failed ones when `failed_only`.
pub async fn list(
    conn: &mut Conn,
    subscriber: &str,
    failed_only: bool,
    limit: i64,
) -> Result<Vec<Delivery>> {
    let sql = format!(
        "select {COLUMNS} from webhook_deliveries where subscriber = $1 and ($2 = 0 or status = 'failed')
         order by created_at desc, id desc limit $3"
    );
    sqlx::query(crate::sql(sql))
        .bind(subscriber)
        .bind(i64::from(failed_only))
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(from_row)
        .collect()
}
