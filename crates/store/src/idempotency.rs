//! Stored answers for requests that carry an `Idempotency-Key`: the same key gets the first
//! answer back, and the same key with a different body is refused.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{Conn, Result, to_micros};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub request_hash: String,
    pub status: u16,
    pub body: String,
}

pub async fn get(conn: &mut Conn, scope: &str, key: &str) -> Result<Option<Answer>> {
    let row = sqlx::query("select request_hash, response_status, response_body from idempotency_keys where scope = $1 and key = $2")
        .bind(scope)
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| {
        Ok(Answer {
            request_hash: r.try_get(0)?,
            status: u16::try_from(r.try_get::<i64, _>(1)?).unwrap_or(500),
            body: r.try_get(2)?,
        })
    })
    .transpose()
}

/// Stores the answer; a concurrent request with the same key makes this a conflict, and the
/// whole transaction (the transition with it) rolls back.
pub async fn put(
    conn: &mut Conn,
    scope: &str,
    key: &str,
    answer: &Answer,
    now: DateTime<Utc>,
) -> Result<()> {
    let res = sqlx::query(
        "insert into idempotency_keys (scope, key, request_hash, response_status, response_body, created_at) values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(scope)
    .bind(key)
    .bind(&answer.request_hash)
    .bind(i64::from(answer.status))
    .bind(&answer.body)
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await;
    match res {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(crate::Error::Conflict(
            format!("idempotency key {key} in use"),
        )),
        Err(e) => Err(e.into()),
    }
}
