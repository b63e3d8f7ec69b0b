//! A partner's standing: the latest state of each fact a transition recorded about it
//! (`business_info = certified`), with the instance that recorded it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use crate::{Conn, Result, to_micros};

/// Records `facts` for `partner`, each replacing the fact's earlier state.
pub async fn record(
    conn: &mut Conn,
    partner: &str,
    facts: &BTreeMap<String, String>,
    instance_id: Uuid,
    now: DateTime<Utc>,
) -> Result<()> {
    for (fact, state) in facts {
        sqlx::query(
            "insert into partner_standing (partner_id, fact, state, instance_id, updated_at)
             values ($1, $2, $3, $4, $5)
             on conflict (partner_id, fact)
             do update set state = excluded.state, instance_id = excluded.instance_id,
                           updated_at = excluded.updated_at",
        )
        .bind(partner)
        .bind(fact)
        .bind(state)
        .bind(instance_id.to_string())
        .bind(to_micros(now))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Every fact recorded for `partner`, fact → state.
pub async fn of_partner(conn: &mut Conn, partner: &str) -> Result<BTreeMap<String, String>> {
    let rows = sqlx::query("select fact, state from partner_standing where partner_id = $1")
        .bind(partner)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}
