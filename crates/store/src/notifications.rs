//! The record of sent notifications. The key makes a retried step send nothing twice.

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
    pub sent_at: DateTime<Utc>,
}

/// Records a notification; false when one with this key was already recorded.
pub async fn record(conn: &mut Conn, n: &Sent) -> Result<bool> {
    let res = sqlx::query(
        r#"insert into notifications (key, instance_id, channel, recipient, address, template, payload, sent_at)
           values ($1, $2, $3, $4, $5, $6, $7, $8) on conflict (key) do nothing"#,
    )
    .bind(&n.key)
    .bind(&n.instance_id)
    .bind(&n.channel)
    .bind(&n.recipient)
    .bind(&n.address)
    .bind(&n.template)
    .bind(n.payload.to_string())
    .bind(to_micros(n.sent_at))
    .execute(&mut *conn)
    .await?;
    Ok(res.rows_affected() == 1)
}

pub async fn for_instance(conn: &mut Conn, instance_id: Uuid) -> Result<Vec<Sent>> {
    let rows = sqlx::query(
        "select key, instance_id, channel, recipient, address, template, payload, sent_at from notifications where instance_id = $1 order by sent_at, key",
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
            })
        })
        .collect()
}
