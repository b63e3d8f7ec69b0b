//! Imported transactions: written once per (source, order id), in batches on the shared path
//! and through `COPY` on PostgreSQL; summed for a settlement run (exactly, in numeric, on
//! PostgreSQL; in Rust on SQLite, which has no exact decimal sum).

use chrono::{DateTime, Utc};
use partnerflow_core::rebate::transactions::Transaction;
use rust_decimal::Decimal;
use sqlx::Row;

mod copy;

pub use copy::Copy;

use crate::{Backend, Conn, Result, Store, from_micros, to_micros};

const COLUMNS: &str = "source, order_id, partner_id, customer_id, product, family, amount, currency, tax_rate, kind, booked_at, original_order_id, imported_at";

/// Inserts `rows` in the caller's transaction, leaving out those whose (source, order id) is
/// recorded already; the number inserted.
pub async fn insert(
    conn: &mut Conn,
    backend: Backend,
    rows: &[Transaction],
    now: DateTime<Utc>,
) -> Result<u64> {
    let mut inserted = 0;
    // 13 parameters a row; PostgreSQL takes at most 65,535 per statement.
    for chunk in rows.chunks(1000) {
        let cast = |i: usize, col: usize| -> String {
            let p = format!("${}", i * 13 + col);
            match (backend, col) {
                (Backend::Postgres, 7 | 9) => format!("cast({p} as numeric)"),
                _ => p,
            }
        };
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                format!(
                    "({})",
                    (1..=13).map(|c| cast(i, c)).collect::<Vec<_>>().join(", ")
                )
            })
            .collect();
        let sql = format!(
            "insert into transactions ({COLUMNS}) values {} on conflict (source, order_id) do nothing",
            values.join(", ")
        );
        let mut q = sqlx::query(crate::sql(sql));
        for t in chunk {
            q = q
                .bind(t.source.clone())
                .bind(t.order_id.clone())
                .bind(t.partner_id.clone())
                .bind(t.customer_id.clone())
                .bind(t.product.clone())
                .bind(t.family.clone())
                .bind(t.amount.to_string())
                .bind(t.currency.clone())
                .bind(t.tax_rate.to_string())
                .bind(t.kind.label())
                .bind(to_micros(t.booked_at))
                .bind(t.original_order_id.clone())
                .bind(to_micros(now));
        }
        inserted += q.execute(&mut *conn).await?.rows_affected();
    }
    Ok(inserted)
}

/// How many transactions are recorded.
pub async fn count(conn: &mut Conn) -> Result<i64> {
    Ok(sqlx::query("select count(*) from transactions")
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?)
}

/// The newest transaction's id, once every import under way has committed (PostgreSQL waits
/// for them; SQLite has one writer): what a run settles up to.
pub async fn cutoff(store: &Store) -> Result<i64> {
    let mut tx = store.begin().await?;
    if store.backend == Backend::Postgres {
        sqlx::query("lock table transactions in share mode")
            .execute(&mut *tx)
            .await?;
    }
    // On PostgreSQL, the sequence: every committed row has an id up to its last value, and
    // every later one a greater id (no index orders `id`; a max would read the table).
    let newest = match store.backend {
        Backend::Postgres => {
            "select case when is_called then last_value end from transactions_id_seq"
        }
        Backend::Sqlite => "select max(id) from transactions",
    };
    let max: Option<i64> = sqlx::query(newest).fetch_one(&mut *tx).await?.try_get(0)?;
    tx.commit().await?;
    Ok(max.unwrap_or(0))
}

/// One group of a month's transactions: (partner, family, sales tax rate, policy segment) →
/// Σ amount (tax included) and count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSum {
    pub partner_id: String,
    pub family: String,
    pub tax_rate: Decimal,
    pub segment: usize,
    pub amount: Decimal,
    pub count: u64,
}

/// What a run sums: transactions booked in `[start, end)` with ids up to `cutoff`; `changes`
/// are the instants a new policy takes over (segments 1, 2, …).
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub cutoff: i64,
    pub changes: &'a [DateTime<Utc>],
}

fn segment_case(changes: &[DateTime<Utc>]) -> String {
    if changes.is_empty() {
        return "0".to_owned();
    }
    let whens: Vec<String> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| format!("when t.booked_at < {} then {i}", to_micros(*c)))
        .collect();
    format!("case {} else {} end", whens.join(" "), changes.len())
}

/// The month's own transactions, summed per group: everything booked in the window except
/// refunds of orders booked before it (those are clawbacks, read by [`earlier_rows`]).
pub async fn month_sums(conn: &mut Conn, backend: Backend, w: Window<'_>) -> Result<Vec<GroupSum>> {
    let segment = segment_case(w.changes);
    let filter = "t.booked_at >= $1 and t.booked_at < $2 and t.id <= $3
        and (t.original_order_id is null or not exists (
            select 1 from transactions o where o.source = t.source and o.order_id = t.original_order_id
              and o.booked_at < $1))";
    let sql = match backend {
        Backend::Postgres => format!(
            "select t.partner_id, t.family, t.tax_rate::text, {segment} as segment, sum(t.amount)::text, count(*)
             from transactions t where {filter} group by 1, 2, 3, 4"
        ),
        Backend::Sqlite => format!(
            "select t.partner_id, t.family, t.tax_rate, {segment} as segment, t.amount, 1
             from transactions t where {filter}"
        ),
    };
    let rows = if backend == Backend::Postgres {
        // The month's groups (partners × families) hash in memory instead of spilling to disk.
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        sqlx::query("set local work_mem = '256MB'")
            .execute(&mut *tx)
            .await?;
        let rows = sqlx::query(crate::sql(sql))
            .bind(to_micros(w.start))
            .bind(to_micros(w.end))
            .bind(w.cutoff)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows
    } else {
        sqlx::query(crate::sql(sql))
            .bind(to_micros(w.start))
            .bind(to_micros(w.end))
            .bind(w.cutoff)
            .fetch_all(&mut *conn)
            .await?
    };
    let mut sums: std::collections::BTreeMap<(String, String, Decimal, usize), (Decimal, u64)> =
        std::collections::BTreeMap::new();
    for r in &rows {
        let key = (
            r.try_get::<String, _>(0)?,
            r.try_get::<String, _>(1)?,
            crate::decimal_at(r, 2)?,
            usize::try_from(r.try_get::<i64, _>(3)?).unwrap_or_default(),
        );
        let e = sums.entry(key).or_default();
        e.0 += crate::decimal_at(r, 4)?;
        e.1 += u64::try_from(r.try_get::<i64, _>(5)?).unwrap_or_default();
    }
    Ok(sums
        .into_iter()
        .map(
            |((partner_id, family, tax_rate, segment), (amount, count))| GroupSum {
                partner_id,
                family,
                tax_rate: tax_rate.normalize(),
                segment,
                amount,
                count,
            },
        )
        .collect())
}

/// A transaction of an earlier month that a run settles: booked before the window and
/// imported after the previous run (an adjustment), or a refund in the window of an order
/// booked before it (a clawback, with the original's booking time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlierRow {
    pub partner_id: String,
    pub family: String,
    pub tax_rate: Decimal,
    pub amount: Decimal,
    pub booked_at: DateTime<Utc>,
    pub original_booked_at: Option<DateTime<Utc>>,
}

/// The adjustments (when there was a previous run, with its cutoff) and clawbacks of a window:
/// two narrow queries, the first over the ids imported since the previous run, the second over
/// the window's refunds that name an order.
pub async fn earlier_rows(
    conn: &mut Conn,
    w: Window<'_>,
    previous_cutoff: Option<i64>,
) -> Result<Vec<EarlierRow>> {
    let mut rows = Vec::new();
    if let Some(previous) = previous_cutoff {
        rows.extend(
            sqlx::query(
                "select t.partner_id, t.family, cast(t.tax_rate as text), cast(t.amount as text), t.booked_at, cast(null as bigint)
                 from transactions t where t.id > $1 and t.id <= $2 and t.booked_at < $3",
            )
            .bind(previous)
            .bind(w.cutoff)
            .bind(to_micros(w.start))
            .fetch_all(&mut *conn)
            .await?,
        );
    }
    rows.extend(
        sqlx::query(
            "select t.partner_id, t.family, cast(t.tax_rate as text), cast(t.amount as text), t.booked_at, o.booked_at
             from transactions t
             join transactions o on o.source = t.source and o.order_id = t.original_order_id
             where t.original_order_id is not null and t.booked_at >= $1 and t.booked_at < $2
               and t.id <= $3 and o.booked_at < $1",
        )
        .bind(to_micros(w.start))
        .bind(to_micros(w.end))
        .bind(w.cutoff)
        .fetch_all(&mut *conn)
        .await?,
    );
    rows.iter()
        .map(|r| {
            Ok(EarlierRow {
                partner_id: r.try_get(0)?,
                family: r.try_get(1)?,
                tax_rate: crate::decimal_at(r, 2)?.normalize(),
                amount: crate::decimal_at(r, 3)?,
                booked_at: from_micros(r.try_get(4)?),
                original_booked_at: r.try_get::<Option<i64>, _>(5)?.map(from_micros),
            })
        })
        .collect()
}

/// One recorded transaction, as an explanation lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Recorded {
    pub id: i64,
    pub source: String,
    pub order_id: String,
    pub customer_id: String,
    pub product: String,
    pub amount: Decimal,
    pub tax_rate: Decimal,
    pub kind: String,
    pub booked_at: DateTime<Utc>,
    pub original_order_id: Option<String>,
}

/// A partner's transactions of a family booked in `[from, to)` with ids in `(after, upto]`,
/// oldest first, at most `limit`.
pub async fn of_line(
    conn: &mut Conn,
    partner: &str,
    family: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    ids: (i64, i64),
    limit: i64,
) -> Result<Vec<Recorded>> {
    let rows = sqlx::query(
        "select id, source, order_id, customer_id, product, cast(amount as text), cast(tax_rate as text), kind,
                booked_at, original_order_id
         from transactions where partner_id = $1 and family = $2 and booked_at >= $3 and booked_at < $4
           and id > $5 and id <= $6 order by id limit $7",
    )
    .bind(partner)
    .bind(family)
    .bind(to_micros(from))
    .bind(to_micros(to))
    .bind(ids.0)
    .bind(ids.1)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Recorded {
                id: r.try_get(0)?,
                source: r.try_get(1)?,
                order_id: r.try_get(2)?,
                customer_id: r.try_get(3)?,
                product: r.try_get(4)?,
                amount: crate::decimal_at(r, 5)?,
                tax_rate: crate::decimal_at(r, 6)?,
                kind: r.try_get(7)?,
                booked_at: from_micros(r.try_get(8)?),
                original_order_id: r.try_get(9)?,
            })
        })
        .collect()
}
