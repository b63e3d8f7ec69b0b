//! Counts read for `/metrics` and `partnerflow status`: the outbox backlog, what waits in the
//! queue, the oldest pending row, due timers, open and overdue tasks by role, failed instances.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{Conn, Result, from_micros, to_micros};

/// The service at a glance.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Gauges {
    /// Outbox rows not yet done.
    pub backlog: i64,
    /// Rows pushed to the queue and not yet taken by a worker.
    pub queued: i64,
    /// When the oldest pending row was written.
    pub oldest_pending: Option<DateTime<Utc>>,
    /// Timers due now or earlier and not yet fired.
    pub due_timers: i64,
    /// Open tasks per role: (role, open, overdue).
    pub tasks: Vec<(String, i64, i64)>,
    pub failed_instances: i64,
}

pub async fn read(conn: &mut Conn, now: DateTime<Utc>) -> Result<Gauges> {
    let at = to_micros(now);
    let o = sqlx::query(
        "select count(*),
                coalesce(sum(case when dispatched_until > $1 and (lease_until is null or lease_until <= $1) then 1 else 0 end), 0),
                min(created_at)
         from outbox where status = 'pending'",
    )
    .bind(at)
    .fetch_one(&mut *conn)
    .await?;
    let t = sqlx::query("select count(*) from timers where status = 'pending' and due_at <= $1")
        .bind(at)
        .fetch_one(&mut *conn)
        .await?;
    let roles = sqlx::query(
        "select role, count(*), coalesce(sum(case when due_at <= $1 then 1 else 0 end), 0)
         from tasks where status = 'open' group by role order by role",
    )
    .bind(at)
    .fetch_all(&mut *conn)
    .await?;
    let f = sqlx::query("select count(*) from instances where status = 'failed'")
        .fetch_one(&mut *conn)
        .await?;
    Ok(Gauges {
        backlog: o.try_get(0)?,
        queued: o.try_get(1)?,
        oldest_pending: o.try_get::<Option<i64>, _>(2)?.map(from_micros),
        due_timers: t.try_get(0)?,
        tasks: roles
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<Result<_>>()?,
        failed_instances: f.try_get(0)?,
    })
}
