//! The import's `COPY` into PostgreSQL: the one place the store streams rows through the
//! native driver (the shared `Any` path has no `COPY`).

use chrono::{DateTime, Utc};
use partnerflow_core::rebate::transactions::Transaction;

use super::COLUMNS;
use crate::{Error, Result, Store, to_micros};

/// A `COPY` into PostgreSQL under way: one `COPY` into a staging table, fed by a task of its
/// own (so the caller checks the next rows while PostgreSQL takes the last), then one move
/// into `transactions` (duplicates left out) when finished; nothing is kept unless
/// [`Copy::finish`] commits.
pub struct Copy {
    rows: Option<tokio::sync::mpsc::Sender<Vec<Transaction>>>,
    feeder: tokio::task::JoinHandle<Result<sqlx::PgConnection>>,
}

fn csv_field(out: &mut String, v: &str) {
    if v.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(v);
    }
}

fn copy_text(rows: &[Transaction], now: DateTime<Utc>) -> String {
    use std::fmt::Write;
    let mut text = String::with_capacity(rows.len() * 128);
    let imported_at = to_micros(now);
    for t in rows {
        for v in [
            t.source.as_str(),
            &t.order_id,
            &t.partner_id,
            &t.customer_id,
            &t.product,
            &t.family,
        ] {
            csv_field(&mut text, v);
            text.push(',');
        }
        let _ = write!(text, "{},", t.amount);
        csv_field(&mut text, &t.currency);
        let _ = write!(
            text,
            ",{},{},{},",
            t.tax_rate,
            t.kind.label(),
            to_micros(t.booked_at)
        );
        csv_field(&mut text, t.original_order_id.as_deref().unwrap_or(""));
        let _ = writeln!(text, ",{imported_at}");
    }
    text
}

impl Copy {
    /// Opens a connection of its own (COPY needs the PostgreSQL driver itself) and starts.
    pub async fn begin(store: &Store, now: DateTime<Utc>) -> Result<Copy> {
        use sqlx::Connection;
        let url = store.url().ok_or_else(|| {
            Error::Corrupt("COPY needs the PostgreSQL url of the store".to_owned())
        })?;
        let mut conn = sqlx::PgConnection::connect(url).await?;
        // The staging table lives in this backend's memory while it fits (temp_buffers is set
        // before the session's first temporary table), and the move sorts in memory.
        sqlx::raw_sql(
            "set temp_buffers = '512MB'; set work_mem = '512MB'; begin;
             create temp table transactions_stage (like transactions including defaults) on commit drop;
             alter table transactions_stage drop column id;",
        )
        .execute(&mut conn)
        .await?;
        let (rows, mut incoming) = tokio::sync::mpsc::channel::<Vec<Transaction>>(2);
        let feeder = tokio::spawn(async move {
            let sql = format!("copy transactions_stage ({COLUMNS}) from stdin with (format csv)");
            let mut copy = conn.copy_in_raw(&sql).await?;
            while let Some(batch) = incoming.recv().await {
                copy.send(copy_text(&batch, now).into_bytes()).await?;
            }
            copy.finish().await?;
            Ok(conn)
        });
        Ok(Copy {
            rows: Some(rows),
            feeder,
        })
    }

    /// Streams `rows` (checked already) into the staging table.
    pub async fn send(&mut self, rows: Vec<Transaction>) -> Result<()> {
        let sent = match &self.rows {
            Some(tx) => tx.send(rows).await.is_ok(),
            None => false,
        };
        if !sent {
            // The feeder stopped: its error says why.
            self.rows = None;
            let failed = (&mut self.feeder).await;
            return Err(match failed {
                Ok(Err(e)) => e,
                Ok(Ok(_)) => Error::Corrupt("the COPY ended early".to_owned()),
                Err(e) => Error::Corrupt(format!("the COPY task failed: {e}")),
            });
        }
        Ok(())
    }

    async fn connection(mut self) -> Result<sqlx::PgConnection> {
        self.rows = None;
        match (&mut self.feeder).await {
            Ok(r) => r,
            Err(e) => Err(Error::Corrupt(format!("the COPY task failed: {e}"))),
        }
    }

    /// Moves the staged rows in (leaving out orders recorded already, and repeats within the
    /// import) and commits; how many were new. Imports are serialized by a table lock, so the
    /// anti-join sees every committed order and a plain insert (much cheaper than a
    /// speculative one) cannot collide. A file rarely repeats an order, so the rows go in as
    /// they are; when one does (the insert meets its own duplicate), the move is redone with
    /// the repeats left out.
    pub async fn finish(self) -> Result<u64> {
        let mut conn = self.connection().await?;
        let t_columns = COLUMNS
            .split(", ")
            .map(|c| format!("s.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let absent = "not exists (select 1 from transactions t where t.source = s.source and t.order_id = s.order_id)";
        let plain = format!(
            "insert into transactions ({COLUMNS}) select {t_columns} from transactions_stage s where {absent}"
        );
        let distinct = format!(
            "insert into transactions ({COLUMNS})
             select distinct on (s.source, s.order_id) {t_columns} from transactions_stage s
             where {absent} order by s.source, s.order_id"
        );
        sqlx::raw_sql("lock table transactions in share row exclusive mode; savepoint plain")
            .execute(&mut conn)
            .await?;
        let moved = match sqlx::query(sqlx::AssertSqlSafe(plain))
            .execute(&mut conn)
            .await
        {
            Ok(done) => done.rows_affected(),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                sqlx::raw_sql("rollback to savepoint plain")
                    .execute(&mut conn)
                    .await?;
                sqlx::query(sqlx::AssertSqlSafe(distinct))
                    .execute(&mut conn)
                    .await?
                    .rows_affected()
            }
            Err(e) => return Err(e.into()),
        };
        sqlx::raw_sql("commit").execute(&mut conn).await?;
        // Fresh statistics, or the month's aggregate is planned for the table as it was
        // (after a first import: empty, a sort spilled to disk instead of a hash).
        sqlx::raw_sql("analyze transactions")
            .execute(&mut conn)
            .await?;
        Ok(moved)
    }

    /// Gives up: nothing of the import is kept.
    pub async fn abort(self) -> Result<()> {
        if let Ok(mut conn) = self.connection().await {
            sqlx::raw_sql("rollback").execute(&mut conn).await?;
        }
        Ok(())
    }
}
