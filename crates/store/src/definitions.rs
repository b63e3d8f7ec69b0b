//! Every definition version an instance was started on, so running instances keep theirs
//! after the files in `workflows/` move on.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{Conn, Error, Result, to_micros};

/// A stored definition source.
#[derive(Debug, Clone)]
pub struct Stored {
    pub workflow_id: String,
    pub version: u32,
    pub fingerprint: String,
    pub source: String,
}

/// Registers a version. The same version with a different fingerprint is a conflict: a
/// changed definition needs a new version number.
pub async fn register(conn: &mut Conn, d: &Stored, now: DateTime<Utc>) -> Result<()> {
    let existing =
        sqlx::query("select fingerprint from definitions where workflow_id = $1 and version = $2")
            .bind(&d.workflow_id)
            .bind(i64::from(d.version))
            .fetch_optional(&mut *conn)
            .await?;
    match existing {
        Some(r) if r.try_get::<String, _>(0)? == d.fingerprint => Ok(()),
        Some(_) => Err(Error::Conflict(format!(
            "workflow {} version {} is already registered with different content; bump `version`",
            d.workflow_id, d.version
        ))),
        None => {
            sqlx::query("insert into definitions (workflow_id, version, fingerprint, source, created_at) values ($1, $2, $3, $4, $5) on conflict do nothing")
                .bind(&d.workflow_id)
                .bind(i64::from(d.version))
                .bind(&d.fingerprint)
                .bind(&d.source)
                .bind(to_micros(now))
                .execute(&mut *conn)
                .await?;
            Ok(())
        }
    }
}

pub async fn all(conn: &mut Conn) -> Result<Vec<Stored>> {
    let rows = sqlx::query("select workflow_id, version, fingerprint, source from definitions order by workflow_id, version")
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Stored {
                workflow_id: r.try_get(0)?,
                version: u32::try_from(r.try_get::<i64, _>(1)?).unwrap_or_default(),
                fingerprint: r.try_get(2)?,
                source: r.try_get(3)?,
            })
        })
        .collect()
}
