//! Durable timers: reminders, escalations, silence policies, waits. The sweeper claims due
//! timers with a lease, so a sweeper that dies mid-batch only delays them.

use chrono::{DateTime, Utc};
use partnerflow_core::machine::TimerKind;
use sqlx::Row;
use uuid::Uuid;

use crate::{Conn, Result, Store, from_micros, json, to_json, to_micros};

#[derive(Debug, Clone)]
pub struct Timer {
    pub id: i64,
    pub instance_id: Uuid,
    pub seq: u64,
    pub kind: TimerKind,
    pub due_at: DateTime<Utc>,
}

/// Inserts the timers of one instance in one statement.
pub async fn insert_many(
    conn: &mut Conn,
    instance_id: Uuid,
    timers: &[(u64, TimerKind, DateTime<Utc>)],
) -> Result<()> {
    let rows: Vec<(Uuid, u64, TimerKind, DateTime<Utc>)> = timers
        .iter()
        .map(|(seq, kind, at)| (instance_id, *seq, kind.clone(), *at))
        .collect();
    insert_for_many(conn, &rows).await
}

/// Cancels the pending timers of one step entry.
pub async fn cancel(
    conn: &mut Conn,
    instance_id: Uuid,
    seq: u64,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query("update timers set status = 'cancelled', closed_at = $3 where instance_id = $1 and seq = $2 and status = 'pending'")
        .bind(instance_id.to_string())
        .bind(crate::seq_i64(seq))
        .bind(to_micros(now))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Moves a pending timer to fired. False when it was not pending (fired by another sweeper
/// whose claim outlived ours, or cancelled): the caller's transition must not commit.
pub async fn mark_fired(conn: &mut Conn, id: i64, now: DateTime<Utc>) -> Result<bool> {
    let res = sqlx::query(
        "update timers set status = 'fired', closed_at = $2 where id = $1 and status = 'pending'",
    )
    .bind(id)
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await?;
    Ok(res.rows_affected() == 1)
}

/// Claims up to `limit` due timers for `lease_until`, oldest due first.
pub async fn claim_due(
    store: &Store,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Timer>> {
    let sql = format!(
        r#"update timers set claimed_until = $1
           where id in (select id from timers
                        where status = 'pending' and due_at <= $2 and (claimed_until is null or claimed_until <= $2)
                        order by due_at limit $3 {})
           returning id, instance_id, seq, kind, due_at"#,
        Store::skip_locked(store.backend)
    );
    let rows = sqlx::query(crate::sql(sql))
        .bind(to_micros(lease_until))
        .bind(to_micros(now))
        .bind(limit)
        .fetch_all(&store.pool)
        .await?;
    let mut timers = rows
        .iter()
        .map(|r| {
            Ok(Timer {
                id: r.try_get(0)?,
                instance_id: parse_uuid(&r.try_get::<String, _>(1)?)?,
                seq: u64::try_from(r.try_get::<i64, _>(2)?).unwrap_or_default(),
                kind: json("timer kind", &r.try_get::<String, _>(3)?)?,
                due_at: from_micros(r.try_get(4)?),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    timers.sort_by_key(|t| (t.due_at, t.id));
    Ok(timers)
}

/// The earliest pending due time, so a sweeper on a virtual clock knows where to jump.
pub async fn next_due(conn: &mut Conn) -> Result<Option<DateTime<Utc>>> {
    let row = sqlx::query("select min(due_at) from timers where status = 'pending'")
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get::<Option<i64>, _>(0)?.map(from_micros))
}

/// The earliest pending timer due after `now`: when a sweeper that just took everything due
/// should look again.
pub async fn next_due_after(conn: &mut Conn, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
    let row =
        sqlx::query("select min(due_at) from timers where status = 'pending' and due_at > $1")
            .bind(to_micros(now))
            .fetch_one(&mut *conn)
            .await?;
    Ok(row.try_get::<Option<i64>, _>(0)?.map(from_micros))
}

/// Pending timers of an instance (for SLA clocks).
pub async fn pending_for(conn: &mut Conn, instance_id: Uuid) -> Result<Vec<Timer>> {
    let rows = sqlx::query("select id, instance_id, seq, kind, due_at from timers where instance_id = $1 and status = 'pending' order by due_at")
        .bind(instance_id.to_string())
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Timer {
                id: r.try_get(0)?,
                instance_id,
                seq: u64::try_from(r.try_get::<i64, _>(2)?).unwrap_or_default(),
                kind: json("timer kind", &r.try_get::<String, _>(3)?)?,
                due_at: from_micros(r.try_get(4)?),
            })
        })
        .collect()
}

pub(crate) fn parse_uuid(s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|e| crate::Error::Corrupt(format!("uuid `{s}`: {e}")))
}

/// Schedules timers of several instances in one statement (per chunk).
pub async fn insert_for_many(
    conn: &mut Conn,
    timers: &[(Uuid, u64, TimerKind, DateTime<Utc>)],
) -> Result<()> {
    for chunk in timers.chunks(1000) {
        let sql = format!(
            "insert into timers (instance_id, seq, kind, due_at, status) values {}",
            crate::values_clause(chunk.len(), 5)
        );
        let mut q = sqlx::query(crate::sql(sql));
        for (instance_id, seq, kind, due_at) in chunk {
            q = q
                .bind(instance_id.to_string())
                .bind(crate::seq_i64(*seq))
                .bind(to_json(kind))
                .bind(to_micros(*due_at))
                .bind("pending");
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// How late each timer due in `[from, to]` fired: its due time and µs after it (what
/// `partnerflow bench timers` reports).
pub async fn lateness(
    conn: &mut Conn,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, i64)>> {
    sqlx::query(
        "select due_at, closed_at - due_at from timers
         where due_at >= $1 and due_at <= $2 and status = 'fired' and closed_at is not null",
    )
    .bind(to_micros(from))
    .bind(to_micros(to))
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| Ok((from_micros(r.try_get(0)?), r.try_get(1)?)))
    .collect()
}

/// How many timers due in `[from, to]` are still pending.
pub async fn pending_between(
    conn: &mut Conn,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<i64> {
    Ok(sqlx::query(
        "select count(*) from timers where due_at >= $1 and due_at <= $2 and status = 'pending'",
    )
    .bind(to_micros(from))
    .bind(to_micros(to))
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)?)
}
