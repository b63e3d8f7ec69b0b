//! The outbox: side effects written in the transition's transaction and carried out after it.
//!
//! A row is `pending` until a worker completes it (`done`) or gives up (`dead`). The dispatcher
//! pushes a due row to the queue and marks it dispatched until a deadline; the worker that
//! takes it holds a lease (a token and an expiry, renewed while the work runs), and only the
//! holder of the current token may finish it. A row not taken by its deadline, or whose lease
//! ran out, is due again: that is how work lost by the queue (a FLUSHALL) or with a worker (a
//! kill) comes back, while a long backlog waiting in the queue is not pushed again and again.

use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use crate::instances::Stored;
use crate::timers::parse_uuid;
use crate::{Backend, Conn, Result, Store, json, to_micros};

/// What a row asks for.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Work {
    /// Run an automated step's handler for step entry `seq`.
    RunStep {
        seq: u64,
        step: String,
        handler: String,
    },
    /// Send a notification.
    Notify {
        key: String,
        spec: partnerflow_core::definition::NotifySpec,
    },
    /// Deliver one event to one webhook subscriber. Rows of one instance and subscriber are
    /// carried out one at a time, in order.
    Webhook {
        subscriber: String,
        /// The event id, the same on every attempt and replay.
        id: String,
        event: String,
        body: serde_json::Value,
    },
}

impl Work {
    fn kind(&self) -> &'static str {
        match self {
            Work::RunStep { .. } => "run_step",
            Work::Notify { .. } => "notify",
            Work::Webhook { .. } => "webhook",
        }
    }

    /// Rows sharing this key are carried out one at a time, in id order.
    fn ordering_key(&self, instance_id: Uuid) -> Option<String> {
        match self {
            Work::Webhook { subscriber, .. } => Some(format!("{instance_id}:{subscriber}")),
            Work::RunStep { .. } | Work::Notify { .. } => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub instance_id: Uuid,
    pub work: Work,
    pub failures: i64,
    /// When the row was written: for a step job, when the step was entered.
    pub created_at: DateTime<Utc>,
    /// The lease as the row was read: finishing the row needs it to still be current.
    pub lease: Lease,
}

/// A worker's hold on a row: only the current token may finish it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub id: i64,
    pub token: String,
}

/// Inserts the outbox rows of one instance in one statement, in order.
pub async fn insert_many(
    conn: &mut Conn,
    instance_id: Uuid,
    works: &[Work],
    now: DateTime<Utc>,
) -> Result<()> {
    let rows: Vec<(Uuid, Work)> = works.iter().map(|w| (instance_id, w.clone())).collect();
    insert_for_many(conn, &rows, now).await
}

/// Marks up to `limit` due rows dispatched until `redispatch_at` and returns their ids, oldest
/// first. Due: pending, available, neither waiting in the queue nor leased by a worker, and
/// with no earlier pending row of the same ordering key.
pub async fn claim_due(
    store: &Store,
    now: DateTime<Utc>,
    redispatch_at: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<i64>> {
    let sql = format!(
        r#"update outbox set dispatched_until = $1
           where id in (select o.id from outbox o
                        where o.status = 'pending' and o.available_at <= $2
                          and (o.dispatched_until is null or o.dispatched_until <= $2)
                          and (o.lease_until is null or o.lease_until <= $2)
                          and (o.ordering_key is null or not exists (
                                select 1 from outbox e where e.ordering_key = o.ordering_key
                                  and e.status = 'pending' and e.id < o.id))
                        order by o.id limit $3 {})
           returning id"#,
        Store::skip_locked(store.backend)
    );
    let query = sqlx::query(crate::sql(sql))
        .bind(to_micros(redispatch_at))
        .bind(to_micros(now))
        .bind(limit);
    let rows = match store.backend {
        // The pending rows are walked in id order through `outbox_pending`, with an index scan:
        // it marks the dead entries that the rows' updates leave behind until vacuum as it
        // passes them, so the next claim skips them. A bitmap scan, which the planner prefers
        // on its stale row counts, visits each of them on every claim.
        Backend::Postgres => {
            let mut tx = store.begin().await?;
            sqlx::query("set local enable_bitmapscan = off")
                .execute(&mut *tx)
                .await?;
            let rows = query.fetch_all(&mut *tx).await?;
            tx.commit().await?;
            rows
        }
        Backend::Sqlite => query.fetch_all(&store.pool).await?,
    };
    let mut ids = rows
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<Vec<i64>, _>>()?;
    ids.sort_unstable();
    Ok(ids)
}

/// Takes the lease of a pending row for `lease.token` until `until`, unless another worker
/// holds a lease that has not run out, and returns the row with its instance as stored. `None`
/// when the row is not ours to work on (done, dead, or leased to another worker). On
/// PostgreSQL the lease and the read are one statement.
pub async fn take(
    conn: &mut Conn,
    backend: Backend,
    lease: &Lease,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Option<(OutboxRow, Option<Stored>)>> {
    const LEASE: &str = "update outbox set lease_token = $1, lease_until = $2
         where id = $3 and status = 'pending' and (lease_token is null or lease_until is null or lease_until <= $4)";
    let sql = match backend {
        Backend::Postgres => format!(
            "with taken as ({LEASE} returning id, instance_id, payload, failures, lease_token, created_at)
             select o.id, o.instance_id, o.payload, o.failures, o.lease_token, o.created_at, {INSTANCE}
             from taken o left join instances i on i.id = o.instance_id"
        ),
        Backend::Sqlite => LEASE.to_owned(),
    };
    let query = sqlx::query(crate::sql(sql))
        .bind(&lease.token)
        .bind(to_micros(until))
        .bind(lease.id)
        .bind(to_micros(now));
    match backend {
        Backend::Postgres => {
            let row = query.fetch_optional(&mut *conn).await?;
            row.as_ref().map(leased_row).transpose()
        }
        Backend::Sqlite => {
            if query.execute(&mut *conn).await?.rows_affected() != 1 {
                return Ok(None);
            }
            get_pending(conn, lease.id).await
        }
    }
}

/// Extends a held lease; false when it was lost (it ran out and another worker took the row).
pub async fn renew(conn: &mut Conn, lease: &Lease, until: DateTime<Utc>) -> Result<bool> {
    let res = sqlx::query(
        "update outbox set lease_until = $1 where id = $2 and lease_token = $3 and status = 'pending'",
    )
    .bind(to_micros(until))
    .bind(lease.id)
    .bind(&lease.token)
    .execute(&mut *conn)
    .await?;
    Ok(res.rows_affected() == 1)
}

/// The instance columns read beside an outbox row, in the order `instances::from_row_at` reads.
const INSTANCE: &str = "i.state, i.version, i.event_count, i.last_hash, i.created_at, i.updated_at";

/// The row if it is still pending (a completed row delivered again is ignored), with its
/// instance as stored, in one query.
pub async fn get_pending(conn: &mut Conn, id: i64) -> Result<Option<(OutboxRow, Option<Stored>)>> {
    let sql = format!(
        "select o.id, o.instance_id, o.payload, o.failures, o.lease_token, o.created_at, {INSTANCE}
         from outbox o left join instances i on i.id = o.instance_id
         where o.id = $1 and o.status = 'pending'"
    );
    let row = sqlx::query(crate::sql(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(leased_row).transpose()
}

/// An outbox row and its instance, as `take` and `get_pending` select them.
fn leased_row(r: &sqlx::any::AnyRow) -> Result<(OutboxRow, Option<Stored>)> {
    let id = r.try_get(0)?;
    let outbox = OutboxRow {
        id,
        instance_id: parse_uuid(&r.try_get::<String, _>(1)?)?,
        work: json("outbox payload", &r.try_get::<String, _>(2)?)?,
        failures: r.try_get(3)?,
        created_at: crate::from_micros(r.try_get(5)?),
        lease: Lease {
            id,
            token: r.try_get::<Option<String>, _>(4)?.unwrap_or_default(),
        },
    };
    let instance = match r.try_get::<Option<String>, _>(6)? {
        Some(_) => Some(crate::instances::from_row_at(r, 6)?),
        None => None,
    };
    Ok((outbox, instance))
}

/// Marks the row done. False when the lease is no longer ours (it ran out and another worker
/// took or finished the row): then the caller's result must be discarded.
pub async fn complete(conn: &mut Conn, lease: &Lease, now: DateTime<Utc>) -> Result<bool> {
    let res = sqlx::query(COMPLETE)
        .bind(to_micros(now))
        .bind(lease.id)
        .bind(&lease.token)
        .execute(&mut *conn)
        .await?;
    Ok(res.rows_affected() == 1)
}

/// Completing a row under a lease: $1 when, $2 the row, $3 the lease token.
pub(crate) const COMPLETE: &str =
    "update outbox set status = 'done', done_at = $1, lease_until = null
     where id = $2 and status = 'pending' and lease_token = $3";

/// Records a failed attempt and makes the row due again at `retry_at`, releasing the lease.
pub async fn retry(
    conn: &mut Conn,
    lease: &Lease,
    retry_at: DateTime<Utc>,
    error: &str,
) -> Result<()> {
    sqlx::query("update outbox set failures = failures + 1, available_at = $1, lease_until = null, lease_token = null, dispatched_until = null, last_error = $2 where id = $3 and status = 'pending' and lease_token = $4")
        .bind(to_micros(retry_at))
        .bind(error)
        .bind(lease.id)
        .bind(&lease.token)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Makes the row due again at `at` without counting a failure (a provider still deciding),
/// releasing the lease.
pub async fn poll_later(
    conn: &mut Conn,
    lease: &Lease,
    at: DateTime<Utc>,
    note: &str,
) -> Result<()> {
    sqlx::query("update outbox set available_at = $1, lease_until = null, lease_token = null, dispatched_until = null, last_error = $2 where id = $3 and status = 'pending' and lease_token = $4")
        .bind(to_micros(at))
        .bind(note)
        .bind(lease.id)
        .bind(&lease.token)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Gives up on the row after its last attempt.
pub async fn bury(conn: &mut Conn, lease: &Lease, error: &str, now: DateTime<Utc>) -> Result<()> {
    sqlx::query("update outbox set status = 'dead', failures = failures + 1, last_error = $1, done_at = $2 where id = $3 and status = 'pending' and lease_token = $4")
        .bind(error)
        .bind(to_micros(now))
        .bind(lease.id)
        .bind(&lease.token)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Rows still pending (backlog, for `/metrics` and for tests that wait for quiescence).
pub async fn pending_count(conn: &mut Conn) -> Result<i64> {
    Ok(
        sqlx::query("select count(*) from outbox where status = 'pending'")
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?,
    )
}

/// The earliest time a pending row can be dispatched: when it becomes available, or when the
/// queue's deadline or the worker's lease on it runs out, whichever is later. A row waiting
/// behind an earlier one of its ordering key is not counted: the earlier one is.
pub async fn next_available(conn: &mut Conn) -> Result<Option<DateTime<Utc>>> {
    let row = sqlx::query(
        "select min(case
            when coalesce(lease_until, 0) > available_at and coalesce(lease_until, 0) >= coalesce(dispatched_until, 0) then lease_until
            when coalesce(dispatched_until, 0) > available_at then dispatched_until
            else available_at end)
         from outbox o where status = 'pending'
           and (o.ordering_key is null or not exists (
                 select 1 from outbox e where e.ordering_key = o.ordering_key
                   and e.status = 'pending' and e.id < o.id))",
    )
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get::<Option<i64>, _>(0)?.map(crate::from_micros))
}

/// Enqueues work of several instances in one statement (per chunk): a transaction that starts
/// many instances.
pub async fn insert_for_many(
    conn: &mut Conn,
    works: &[(Uuid, Work)],
    now: DateTime<Utc>,
) -> Result<()> {
    for chunk in works.chunks(1000) {
        let sql = format!(
            "insert into outbox (instance_id, kind, payload, status, available_at, failures, created_at, ordering_key) values {}",
            crate::values_clause(chunk.len(), 8)
        );
        let mut q = sqlx::query(crate::sql(sql));
        for (instance_id, work) in chunk {
            q = q
                .bind(instance_id.to_string())
                .bind(work.kind())
                .bind(crate::to_json(work))
                .bind("pending")
                .bind(to_micros(now))
                .bind(0_i64)
                .bind(to_micros(now))
                .bind(work.ordering_key(*instance_id));
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}
