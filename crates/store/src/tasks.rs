//! Human tasks: who must decide what by when, and how far the task has been escalated.

use chrono::{DateTime, Utc};
use partnerflow_core::calendar::Due;
use sqlx::Row;
use uuid::Uuid;

use crate::{Conn, Result, from_micros, to_micros};

#[derive(Debug, Clone, serde::Serialize)]
pub struct Task {
    pub id: String,
    pub instance_id: String,
    pub step: String,
    pub seq: i64,
    pub role: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub beyond_calendar: bool,
    pub escalation_level: i64,
    pub outcome: Option<String>,
    pub closed_at: Option<DateTime<Utc>>,
    /// The person the task is assigned to; none: the role's queue.
    pub assignee: Option<String>,
}

pub const OPEN: &str = "open";
pub const CLOSED: &str = "closed";

const COLUMNS: &str = "id, instance_id, step, seq, role, status, created_at, due_at, beyond_calendar, escalation_level, outcome, closed_at, assignee";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Task> {
    Ok(Task {
        id: r.try_get(0)?,
        instance_id: r.try_get(1)?,
        step: r.try_get(2)?,
        seq: r.try_get(3)?,
        role: r.try_get(4)?,
        status: r.try_get(5)?,
        created_at: from_micros(r.try_get(6)?),
        due_at: from_micros(r.try_get(7)?),
        beyond_calendar: r.try_get::<i64, _>(8)? != 0,
        escalation_level: r.try_get(9)?,
        outcome: r.try_get(10)?,
        closed_at: r.try_get::<Option<i64>, _>(11)?.map(from_micros),
        assignee: r.try_get(12)?,
    })
}

/// A task to open: its instance, step, role and due point.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub id: Uuid,
    pub instance_id: Uuid,
    pub step: String,
    pub seq: u64,
    pub role: String,
    pub due: Due,
}

/// Opens tasks, as many a statement as the parameter limit allows (a bulk start opens one per
/// instance).
pub async fn insert_many(conn: &mut Conn, new: &[NewTask], now: DateTime<Utc>) -> Result<()> {
    for chunk in new.chunks(1000) {
        let sql = format!(
            "insert into tasks (id, instance_id, step, seq, role, status, created_at, due_at, beyond_calendar, escalation_level) values {}",
            crate::values_clause(chunk.len(), 10)
        );
        let mut q = sqlx::query(crate::sql(sql));
        for t in chunk {
            q = q
                .bind(t.id.to_string())
                .bind(t.instance_id.to_string())
                .bind(t.step.clone())
                .bind(crate::seq_i64(t.seq))
                .bind(t.role.clone())
                .bind(OPEN)
                .bind(to_micros(now))
                .bind(to_micros(t.due.at))
                .bind(i64::from(t.due.beyond_calendar))
                .bind(0_i64);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Assigns the task to `person` (a reassignment); `None` puts it back in the role's queue.
pub async fn assign(conn: &mut Conn, id: Uuid, person: Option<&str>) -> Result<()> {
    sqlx::query("update tasks set assignee = $1 where id = $2")
        .bind(person)
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn close(conn: &mut Conn, id: Uuid, outcome: &str, now: DateTime<Utc>) -> Result<()> {
    sqlx::query("update tasks set status = $1, outcome = $2, closed_at = $3 where id = $4")
        .bind(CLOSED)
        .bind(outcome)
        .bind(to_micros(now))
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn escalate(conn: &mut Conn, id: Uuid, level: i64) -> Result<()> {
    sqlx::query("update tasks set escalation_level = $1 where id = $2 and escalation_level < $1")
        .bind(level)
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn get(conn: &mut Conn, id: Uuid) -> Result<Option<Task>> {
    let row = sqlx::query(crate::sql(format!(
        "select {COLUMNS} from tasks where id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Which tasks a listing returns; `None` matches everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter<'a> {
    pub role: Option<&'a str>,
    pub status: Option<&'a str>,
    /// Only tasks of this partner's instances.
    pub partner: Option<&'a str>,
}

/// Tasks filtered by role, status and partner, soonest due first.
pub async fn list(conn: &mut Conn, filter: &Filter<'_>, limit: i64) -> Result<Vec<Task>> {
    let rows = sqlx::query(crate::sql(format!(
        "select {COLUMNS} from tasks where ($1 is null or role = $1) and ($2 is null or status = $2)
           and ($3 is null or instance_id in (select id from instances where partner_id = $3))
         order by due_at limit $4"
    )))
    .bind(filter.role.map(str::to_owned))
    .bind(filter.status.map(str::to_owned))
    .bind(filter.partner.map(str::to_owned))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// One page of [`list`]: the tasks after `after` (a task's due time and id, the cursor of the
/// page before), soonest due first, ties by id. The row comparison lets the `(due_at, id)`
/// index start at the cursor, however deep into the list it is.
pub async fn page(
    conn: &mut Conn,
    filter: &Filter<'_>,
    after: Option<(DateTime<Utc>, &str)>,
    limit: i64,
) -> Result<Vec<Task>> {
    let (due, id) = after.map_or((i64::MIN, ""), |(d, id)| (to_micros(d), id));
    let rows = sqlx::query(crate::sql(format!(
        "select {COLUMNS} from tasks where ($1 is null or role = $1) and ($2 is null or status = $2)
           and ($3 is null or instance_id in (select id from instances where partner_id = $3))
           and (due_at, id) > ($4, $5)
         order by due_at, id limit $6"
    )))
    .bind(filter.role.map(str::to_owned))
    .bind(filter.status.map(str::to_owned))
    .bind(filter.partner.map(str::to_owned))
    .bind(due)
    .bind(id.to_owned())
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

pub async fn for_instance(conn: &mut Conn, instance_id: Uuid) -> Result<Vec<Task>> {
    let rows = sqlx::query(crate::sql(format!(
        "select {COLUMNS} from tasks where instance_id = $1 order by created_at"
    )))
    .bind(instance_id.to_string())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}
