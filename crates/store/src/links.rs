//! Signed links: found by the SHA-256 of their token, used once. `consume` runs in the
//! transaction of the decision it records, so a link is used exactly when its decision commits.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{Conn, Result, from_micros, to_micros};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Link {
    pub token_hash: String,
    pub task_id: String,
    pub instance_id: String,
    pub decision: String,
    pub person: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

/// Records links in one statement; one already recorded (a notification sent again) is kept
/// as it was.
pub async fn insert(conn: &mut Conn, links: &[Link]) -> Result<()> {
    if links.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "insert into task_links (token_hash, task_id, instance_id, decision, person, created_at, expires_at)
         values {} on conflict (token_hash) do nothing",
        crate::values_clause(links.len(), 7)
    );
    let mut q = sqlx::query(crate::sql(sql));
    for l in links {
        q = q
            .bind(l.token_hash.clone())
            .bind(l.task_id.clone())
            .bind(l.instance_id.clone())
            .bind(l.decision.clone())
            .bind(l.person.clone())
            .bind(to_micros(l.created_at))
            .bind(to_micros(l.expires_at));
    }
    q.execute(&mut *conn).await?;
    Ok(())
}

pub async fn get(conn: &mut Conn, token_hash: &str) -> Result<Option<Link>> {
    let row = sqlx::query(
        "select token_hash, task_id, instance_id, decision, person, created_at, expires_at, used_at
         from task_links where token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| {
        Ok(Link {
            token_hash: r.try_get(0)?,
            task_id: r.try_get(1)?,
            instance_id: r.try_get(2)?,
            decision: r.try_get(3)?,
            person: r.try_get(4)?,
            created_at: from_micros(r.try_get(5)?),
            expires_at: from_micros(r.try_get(6)?),
            used_at: r.try_get::<Option<i64>, _>(7)?.map(from_micros),
        })
    })
    .transpose()
}

/// Marks the link used with the request's evidence; false when it was used already or has
/// expired.
pub async fn consume(
    conn: &mut Conn,
    token_hash: &str,
    now: DateTime<Utc>,
    ip: &str,
    agent: &str,
) -> Result<bool> {
    let res = sqlx::query(
        "update task_links set used_at = $1, used_ip = $2, used_agent = $3
         where token_hash = $4 and used_at is null and expires_at > $1",
    )
    .bind(to_micros(now))
    .bind(ip)
    .bind(agent)
    .bind(token_hash)
    .execute(&mut *conn)
    .await?;
    Ok(res.rows_affected() == 1)
}
