//! Retention: rows that only served delivery are deleted once old enough, in batches, so the
//! tables the loops scan stay small. The record itself (instances, events, tasks,
//! notifications) is never deleted here; buried (`dead`) outbox rows stay for an operator.

use chrono::{DateTime, Utc};

use crate::{Result, Store, to_micros};

/// The cut-off per kind of row: rows older than these are deleted.
#[derive(Debug, Clone, Copy)]
pub struct Cutoffs {
    /// Outbox rows completed before this.
    pub done_outbox: DateTime<Utc>,
    /// Timers fired or cancelled before this.
    pub closed_timers: DateTime<Utc>,
    /// Idempotency keys first answered before this.
    pub idempotency_keys: DateTime<Utc>,
}

/// How many rows one purge deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub outbox: u64,
    pub timers: u64,
    pub idempotency_keys: u64,
}

impl Purged {
    pub fn total(&self) -> u64 {
        self.outbox + self.timers + self.idempotency_keys
    }
}

/// Deletes up to `batch` rows of each kind older than its cut-off. Called again until it
/// deletes nothing, each batch is a short statement of its own.
pub async fn purge(store: &Store, cutoffs: Cutoffs, batch: i64) -> Result<Purged> {
    let outbox = sqlx::query(
        "delete from outbox where id in (select id from outbox where status = 'done' and done_at < $1 limit $2)",
    )
    .bind(to_micros(cutoffs.done_outbox))
    .bind(batch)
    .execute(&store.pool)
    .await?
    .rows_affected();
    let timers = sqlx::query(
        "delete from timers where id in (select id from timers where status in ('fired', 'cancelled') and coalesce(closed_at, due_at) < $1 limit $2)",
    )
    .bind(to_micros(cutoffs.closed_timers))
    .bind(batch)
    .execute(&store.pool)
    .await?
    .rows_affected();
    // Keyed by (scope, key): the batch is chosen by age and deleted by both columns.
    let idempotency_keys = sqlx::query(
        "delete from idempotency_keys where created_at < $1 and (scope || ' ' || key) in
           (select scope || ' ' || key from idempotency_keys where created_at < $1 limit $2)",
    )
    .bind(to_micros(cutoffs.idempotency_keys))
    .bind(batch)
    .execute(&store.pool)
    .await?
    .rows_affected();
    Ok(Purged {
        outbox,
        timers,
        idempotency_keys,
    })
}
