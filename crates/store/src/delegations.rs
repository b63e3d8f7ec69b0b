//! Delegations made through the API (out-of-office): who acts for whom, for which role, from
//! when until when. The directory file's own delegations are added to these when they are read.

use chrono::{DateTime, Utc};
use partnerflow_core::directory::Delegation;
use sqlx::Row;

use crate::{Conn, Result, from_micros, to_micros};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stored {
    pub id: String,
    #[serde(flatten)]
    pub delegation: Delegation,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub async fn insert(conn: &mut Conn, d: &Stored) -> Result<()> {
    sqlx::query(
        "insert into delegations (id, person, delegate, role, starts_at, ends_at, created_by, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&d.id)
    .bind(&d.delegation.person)
    .bind(&d.delegation.delegate)
    .bind(d.delegation.role.as_deref())
    .bind(to_micros(d.delegation.starts_at))
    .bind(to_micros(d.delegation.ends_at))
    .bind(&d.created_by)
    .bind(to_micros(d.created_at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Ends a delegation now; false when there is none by that id still in force.
pub async fn revoke(conn: &mut Conn, id: &str, now: DateTime<Utc>) -> Result<bool> {
    let res =
        sqlx::query("update delegations set revoked_at = $1 where id = $2 and revoked_at is null")
            .bind(to_micros(now))
            .bind(id)
            .execute(&mut *conn)
            .await?;
    Ok(res.rows_affected() == 1)
}

const COLUMNS: &str =
    "id, person, delegate, role, starts_at, ends_at, created_by, created_at, revoked_at";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Stored> {
    Ok(Stored {
        id: r.try_get(0)?,
        delegation: Delegation {
            person: r.try_get(1)?,
            delegate: r.try_get(2)?,
            role: r.try_get(3)?,
            starts_at: from_micros(r.try_get(4)?),
            ends_at: from_micros(r.try_get(5)?),
        },
        created_by: r.try_get(6)?,
        created_at: from_micros(r.try_get(7)?),
        revoked_at: r.try_get::<Option<i64>, _>(8)?.map(from_micros),
    })
}

/// Delegations not revoked that have not ended by `now` (running or still to come).
pub async fn current(conn: &mut Conn, now: DateTime<Utc>) -> Result<Vec<Stored>> {
    let sql = format!(
        "select {COLUMNS} from delegations where revoked_at is null and ends_at > $1 order by starts_at, id"
    );
    sqlx::query(crate::sql(sql))
        .bind(to_micros(now))
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(from_row)
        .collect()
}
