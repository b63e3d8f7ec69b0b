//! Instances, their optimistic version, and their append-only, hash-chained events.

use partnerflow_core::audit::AuditKeys;
use partnerflow_core::machine::{Event, InstanceState};
use sqlx::Row;
use uuid::Uuid;

use crate::{Conn, Error, Result, from_micros, json, to_json, to_micros};

/// An instance as stored: its state plus what the next write must check against.
#[derive(Debug, Clone)]
pub struct Stored {
    pub state: InstanceState,
    pub version: i64,
    pub event_count: i64,
    pub last_hash: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

const COLUMNS: &str = "state, version, event_count, last_hash, created_at, updated_at";

fn from_row(row: &sqlx::any::AnyRow) -> Result<Stored> {
    from_row_at(row, 0)
}

/// Reads [`COLUMNS`] starting at column `at` (for joins).
pub(crate) fn from_row_at(row: &sqlx::any::AnyRow, at: usize) -> Result<Stored> {
    Ok(Stored {
        state: json("instance state", &row.try_get::<String, _>(at)?)?,
        version: row.try_get(at + 1)?,
        event_count: row.try_get(at + 2)?,
        last_hash: row.try_get(at + 3)?,
        created_at: from_micros(row.try_get(at + 4)?),
        updated_at: from_micros(row.try_get(at + 5)?),
    })
}

pub async fn load(conn: &mut Conn, id: Uuid) -> Result<Option<Stored>> {
    let row = sqlx::query(crate::sql(format!(
        "select {COLUMNS} from instances where id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn find_by_key(
    conn: &mut Conn,
    workflow_id: &str,
    business_key: &str,
) -> Result<Option<Stored>> {
    let row = sqlx::query(crate::sql(format!(
        "select {COLUMNS} from instances where workflow_id = $1 and business_key = $2"
    )))
    .bind(workflow_id)
    .bind(business_key)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Inserts a new instance at version 1. A second instance with the same business key is a
/// conflict.
pub async fn insert(
    conn: &mut Conn,
    s: &InstanceState,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    let res = sqlx::query(
        r#"insert into instances (id, workflow_id, def_version, business_key, partner_id, parent_id, status,
               current_step, seq, state, version, event_count, last_hash, created_at, updated_at)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, 0, $11, $12, $12)"#,
    )
    .bind(s.id.to_string())
    .bind(&s.workflow_id)
    .bind(i64::from(s.version))
    .bind(&s.business_key)
    .bind(s.partner_id.clone())
    .bind(s.parent.as_ref().map(|p| p.instance_id.to_string()))
    .bind(s.status.label().to_owned())
    .bind(s.step.clone())
    .bind(crate::seq_i64(s.seq))
    .bind(to_json(s))
    .bind(partnerflow_core::audit::GENESIS)
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await;
    match res {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(Error::Conflict(format!(
            "an instance of {} with business key {} exists",
            s.workflow_id, s.business_key
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Writes the new state and appends `events` to the chain, if nobody wrote since `expected`.
/// Returns the new version.
pub async fn save(
    conn: &mut Conn,
    s: &InstanceState,
    expected: &Stored,
    events: &[Event],
    keys: &AuditKeys,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<i64> {
    let id = s.id.to_string();
    let mut hash = expected.last_hash.clone();
    let mut seq = expected.event_count;
    let mut chained = Vec::with_capacity(events.len());
    let version = keys.current();
    for e in events {
        seq += 1;
        hash = keys
            .tag(
                version,
                &hash,
                &id,
                u64::try_from(seq).unwrap_or_default(),
                e,
            )
            .ok_or_else(|| {
                Error::Corrupt(format!("audit key version {version} is not configured"))
            })?;
        chained.push((seq, e, hash.clone()));
    }
    // The version check comes first, so a writer working from a stale read fails here with a
    // conflict (and retries) instead of colliding on the events' keys.
    let updated = sqlx::query(
        r#"update instances set status = $1, current_step = $2, seq = $3, state = $4, version = version + 1,
               event_count = $5, last_hash = $6, updated_at = $7
           where id = $8 and version = $9"#,
    )
    .bind(s.status.label().to_owned())
    .bind(s.step.clone())
    .bind(crate::seq_i64(s.seq))
    .bind(to_json(s))
    .bind(seq)
    .bind(&hash)
    .bind(to_micros(now))
    .bind(&id)
    .bind(expected.version)
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(Error::Stale(format!("instance {id} changed concurrently")));
    }
    // One statement for all events of the transition: fewer round trips per commit.
    let rows: Vec<(String, u64, &Event, String)> = chained
        .into_iter()
        .map(|(seq, e, hash)| (id.clone(), u64::try_from(seq).unwrap_or_default(), e, hash))
        .collect();
    insert_events(conn, &rows, version).await?;
    Ok(expected.version + 1)
}

/// One stored audit event.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoredEvent {
    pub seq: i64,
    #[serde(flatten)]
    pub event: Event,
    pub hash: String,
    /// The audit key version that tagged it (0: the unkeyed chain of earlier events).
    pub key_version: u32,
}

pub async fn events(conn: &mut Conn, id: Uuid) -> Result<Vec<StoredEvent>> {
    let rows = sqlx::query("select seq, kind, actor, at, payload, hash, key_version from events where instance_id = $1 order by seq")
        .bind(id.to_string())
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(StoredEvent {
                seq: r.try_get(0)?,
                event: Event {
                    kind: r.try_get(1)?,
                    actor: r.try_get(2)?,
                    at: from_micros(r.try_get(3)?),
                    payload: json("event payload", &r.try_get::<String, _>(4)?)?,
                },
                hash: r.try_get(5)?,
                key_version: u32::try_from(r.try_get::<i64, _>(6)?).unwrap_or(u32::MAX),
            })
        })
        .collect()
}

/// A summary line for listings.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub id: String,
    pub workflow_id: String,
    pub business_key: String,
    pub status: String,
    pub current_step: Option<String>,
}

/// Which instances a listing shows: each filter that is `None` lets every instance through.
#[derive(Debug, Clone, Copy, Default)]
pub struct Listing<'a> {
    pub status: Option<&'a str>,
    pub partner: Option<&'a str>,
    pub workflow: Option<&'a str>,
}

/// A row of `id, workflow_id, business_key, status, current_step`.
fn summary_of(r: &sqlx::any::AnyRow) -> Result<Summary> {
    Ok(Summary {
        id: r.try_get(0)?,
        workflow_id: r.try_get(1)?,
        business_key: r.try_get(2)?,
        status: r.try_get(3)?,
        current_step: r.try_get(4)?,
    })
}

/// Running instances not changed since `before` with nothing pending that would move them:
/// no outbox row, no timer, no open task (candidates for "stuck"; the caller also checks
/// their waits and children). Oldest change first.
pub async fn quiet_running(
    conn: &mut Conn,
    before: chrono::DateTime<chrono::Utc>,
    limit: i64,
) -> Result<Vec<Summary>> {
    let rows = sqlx::query(
        "select i.id, i.workflow_id, i.business_key, i.status, i.current_step from instances i
         where i.status = 'running' and i.updated_at < $1
           and not exists (select 1 from outbox o where o.instance_id = i.id and o.status = 'pending')
           and not exists (select 1 from timers t where t.instance_id = i.id and t.status = 'pending')
           and not exists (select 1 from tasks k where k.instance_id = i.id and k.status = 'open')
         order by i.updated_at limit $2",
    )
    .bind(crate::to_micros(before))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(summary_of).collect()
}

/// Instances passing `filter`, newest first.
pub async fn list(conn: &mut Conn, filter: Listing<'_>, limit: i64) -> Result<Vec<Summary>> {
    let rows = sqlx::query(
        "select id, workflow_id, business_key, status, current_step from instances
         where ($1 is null or status = $1) and ($2 is null or partner_id = $2)
           and ($3 is null or workflow_id = $3)
         order by created_at desc limit $4",
    )
    .bind(filter.status.map(str::to_owned))
    .bind(filter.partner.map(str::to_owned))
    .bind(filter.workflow.map(str::to_owned))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(summary_of).collect()
}

/// The partner of an instance: `None` when there is no such instance, `Some(None)` when it
/// belongs to no partner.
pub async fn partner_of(conn: &mut Conn, id: Uuid) -> Result<Option<Option<String>>> {
    let row = sqlx::query("select partner_id from instances where id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| Ok(r.try_get::<Option<String>, _>(0)?))
        .transpose()
}

/// How many instances are in each status.
pub async fn count_by_status(conn: &mut Conn) -> Result<Vec<(String, i64)>> {
    let rows =
        sqlx::query("select status, count(*) from instances group by status order by status")
            .fetch_all(&mut *conn)
            .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// The newest `limit` instances of `workflow_id` for `partner` other than `except`: id,
/// business key, status and start input (what a duplicate check compares).
pub async fn siblings(
    conn: &mut Conn,
    workflow_id: &str,
    partner: &str,
    except: Option<Uuid>,
    limit: i64,
) -> Result<Vec<(String, String, String, serde_json::Value)>> {
    let rows = sqlx::query(
        "select id, business_key, status, state from instances
         where workflow_id = $1 and partner_id = $2 and ($3 is null or id <> $3)
         order by created_at desc limit $4",
    )
    .bind(workflow_id)
    .bind(partner)
    .bind(except.map(|e| e.to_string()))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let state: String = r.try_get(3)?;
            let state: serde_json::Value = serde_json::from_str(&state)
                .map_err(|e| Error::Corrupt(format!("instance state: {e}")))?;
            let input = state
                .pointer("/data/input")
                .cloned()
                .unwrap_or(serde_json::Value::Null);
            Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, input))
        })
        .collect()
}

/// Which of `keys` name an instance of `workflow_id` already: business key → instance id.
pub async fn existing_keys(
    conn: &mut Conn,
    workflow_id: &str,
    keys: &[String],
) -> Result<std::collections::BTreeMap<String, String>> {
    let mut out = std::collections::BTreeMap::new();
    for chunk in keys.chunks(500) {
        let params: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "select business_key, id from instances where workflow_id = $1 and business_key in ({})",
            params.join(", ")
        );
        // Not prepared: a plan cached while the table was small (a bulk start grows it fast)
        // would scan it whole for every later batch.
        let mut q = sqlx::query(crate::sql(sql))
            .persistent(false)
            .bind(workflow_id);
        for k in chunk {
            q = q.bind(k.clone());
        }
        for r in q.fetch_all(&mut *conn).await? {
            out.insert(r.try_get(0)?, r.try_get(1)?);
        }
    }
    Ok(out)
}

/// Inserts new instances with their first events, at version 1, in as few statements as the
/// parameter limit allows: a transaction that starts many instances (a bulk start, a parent and
/// its child) writes each table once. A business key taken already is a conflict.
pub async fn insert_new(
    conn: &mut Conn,
    new: &[(InstanceState, Vec<Event>)],
    keys: &AuditKeys,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    let version = keys.current();
    let mut rows = Vec::with_capacity(new.len());
    let mut chained = Vec::new();
    for (s, events) in new {
        let id = s.id.to_string();
        let mut hash = partnerflow_core::audit::GENESIS.to_owned();
        for (i, e) in events.iter().enumerate() {
            let seq = i as u64 + 1;
            hash = keys.tag(version, &hash, &id, seq, e).ok_or_else(|| {
                Error::Corrupt(format!("audit key version {version} is not configured"))
            })?;
            chained.push((id.clone(), seq, e, hash.clone()));
        }
        rows.push((s, events.len(), hash));
    }
    for chunk in rows.chunks(400) {
        let sql = format!(
            "insert into instances (id, workflow_id, def_version, business_key, partner_id, parent_id, status,
                 current_step, seq, state, version, event_count, last_hash, created_at, updated_at) values {}",
            crate::values_clause(chunk.len(), 15)
        );
        let mut q = sqlx::query(crate::sql(sql));
        for (s, count, hash) in chunk {
            q = q
                .bind(s.id.to_string())
                .bind(s.workflow_id.clone())
                .bind(i64::from(s.version))
                .bind(s.business_key.clone())
                .bind(s.partner_id.clone())
                .bind(s.parent.as_ref().map(|p| p.instance_id.to_string()))
                .bind(s.status.label().to_owned())
                .bind(s.step.clone())
                .bind(crate::seq_i64(s.seq))
                .bind(to_json(*s))
                .bind(i64::from(*count > 0))
                .bind(i64::try_from(*count).unwrap_or(i64::MAX))
                .bind(hash.clone())
                .bind(to_micros(now))
                .bind(to_micros(now));
        }
        match q.execute(&mut *conn).await {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(Error::Conflict(
                    "an instance with one of these business keys exists".to_owned(),
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    insert_events(conn, &chained, version).await
}

/// Appends chained events — (instance id, seq, event, tag) — tagged under key `version`, one
/// statement per chunk.
async fn insert_events(
    conn: &mut Conn,
    rows: &[(String, u64, &Event, String)],
    version: u32,
) -> Result<()> {
    for chunk in rows.chunks(1000) {
        let sql = format!(
            "insert into events (instance_id, seq, kind, actor, at, payload, hash, key_version) values {}",
            crate::values_clause(chunk.len(), 8)
        );
        let mut q = sqlx::query(crate::sql(sql));
        for (id, seq, e, hash) in chunk {
            q = q
                .bind(id.clone())
                .bind(crate::seq_i64(*seq))
                .bind(e.kind.clone())
                .bind(e.actor.clone())
                .bind(to_micros(e.at))
                .bind(e.payload.to_string())
                .bind(hash.clone())
                .bind(i64::from(version));
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}
