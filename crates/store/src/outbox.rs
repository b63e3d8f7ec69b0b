//! The outbox: side effects written in the transition's transaction and carried out after it.
//!
//! A row is `pending` until a worker completes it (`done`) or gives up (`dead`). Dispatching
//! leases a row; a row whose lease ran out is due again, which is how work lost by the queue
//! (a FLUSHALL, a killed worker) comes back.

use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use crate::instances::Stored;
use crate::timers::parse_uuid;
use crate::{Conn, Result, Store, json, to_micros};

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
}

impl Work {
    fn kind(&self) -> &'static str {
        match self {
            Work::RunStep { .. } => "run_step",
            Work::Notify { .. } => "notify",
        }
    }
}

#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub instance_id: Uuid,
    pub work: Work,
    pub failures: i64,
}

/// Inserts the outbox rows of one instance in one statement, in order.
pub async fn insert_many(
    conn: &mut Conn,
    instance_id: Uuid,
    works: &[Work],
    now: DateTime<Utc>,
) -> Result<()> {
    if works.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "insert into outbox (instance_id, kind, payload, status, available_at, failures, created_at) values {}",
        crate::values_clause(works.len(), 7)
    );
    let mut q = sqlx::query(crate::sql(sql));
    for work in works {
        q = q
            .bind(instance_id.to_string())
            .bind(work.kind())
            .bind(crate::to_json(work))
            .bind("pending")
            .bind(to_micros(now))
            .bind(0_i64)
            .bind(to_micros(now));
    }
    q.execute(&mut *conn).await?;
    Ok(())
}

/// Leases up to `limit` due rows until `lease_until` and returns their ids, oldest first.
pub async fn claim_due(
    store: &Store,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<i64>> {
    let sql = format!(
        r#"update outbox set lease_until = $1
           where id in (select id from outbox
                        where status = 'pending' and available_at <= $2 and (lease_until is null or lease_until <= $2)
                        order by id limit $3 {})
           returning id"#,
        Store::skip_locked(store.backend)
    );
    let rows = sqlx::query(crate::sql(sql))
        .bind(to_micros(lease_until))
        .bind(to_micros(now))
        .bind(limit)
        .fetch_all(&store.pool)
        .await?;
    let mut ids = rows
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<Vec<i64>, _>>()?;
    ids.sort_unstable();
    Ok(ids)
}

/// The row if it is still pending (a completed row delivered again is ignored), with its
/// instance as stored, in one query.
pub async fn get_pending(conn: &mut Conn, id: i64) -> Result<Option<(OutboxRow, Option<Stored>)>> {
    let row = sqlx::query(
        r#"select o.id, o.instance_id, o.payload, o.failures,
                  i.state, i.version, i.event_count, i.last_hash, i.created_at, i.updated_at
           from outbox o left join instances i on i.id = o.instance_id
           where o.id = $1 and o.status = 'pending'"#,
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| {
        let outbox = OutboxRow {
            id: r.try_get(0)?,
            instance_id: parse_uuid(&r.try_get::<String, _>(1)?)?,
            work: json("outbox payload", &r.try_get::<String, _>(2)?)?,
            failures: r.try_get(3)?,
        };
        let instance = match r.try_get::<Option<String>, _>(4)? {
            Some(_) => Some(crate::instances::from_row_at(&r, 4)?),
            None => None,
        };
        Ok((outbox, instance))
    })
    .transpose()
}

/// Marks the row done. Returns false if it was not pending (someone else finished it).
pub async fn complete(conn: &mut Conn, id: i64, now: DateTime<Utc>) -> Result<bool> {
    let res = sqlx::query(
        "update outbox set status = 'done', done_at = $1 where id = $2 and status = 'pending'",
    )
    .bind(to_micros(now))
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(res.rows_affected() == 1)
}

/// Records a failed attempt and makes the row due again at `retry_at`.
pub async fn retry(conn: &mut Conn, id: i64, retry_at: DateTime<Utc>, error: &str) -> Result<()> {
    sqlx::query("update outbox set failures = failures + 1, available_at = $1, lease_until = null, last_error = $2 where id = $3 and status = 'pending'")
        .bind(to_micros(retry_at))
        .bind(error)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Gives up on the row after its last attempt.
pub async fn bury(conn: &mut Conn, id: i64, error: &str, now: DateTime<Utc>) -> Result<()> {
    sqlx::query("update outbox set status = 'dead', failures = failures + 1, last_error = $1, done_at = $2 where id = $3 and status = 'pending'")
        .bind(error)
        .bind(to_micros(now))
        .bind(id)
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

/// The earliest time a pending row becomes available.
pub async fn next_available(conn: &mut Conn) -> Result<Option<DateTime<Utc>>> {
    let row = sqlx::query("select min(available_at) from outbox where status = 'pending'")
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get::<Option<i64>, _>(0)?.map(crate::from_micros))
}
