//! The ledger's record: each account's balance (one row, locked by the transition that posts
//! to it: `for update` on PostgreSQL, the single writer on SQLite) and its postings, appended.
//! The balance rules are [`Balance::apply`]'s, in the core; this module only reads, locks and
//! writes.

use chrono::{DateTime, Utc};
use partnerflow_core::ledger::{Balance, Posting};
use partnerflow_core::money::Currency;
use rust_decimal::Decimal;
use sqlx::Row;
use uuid::Uuid;

use crate::{Backend, Conn, Error, Result, from_micros, to_micros};

/// One stored posting.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    pub id: i64,
    pub account: String,
    pub movement: String,
    pub amount: Decimal,
    pub currency: String,
    pub instance_id: String,
    pub seq: i64,
    pub step: Option<String>,
    pub payable: Option<String>,
    pub at: DateTime<Utc>,
}

/// Where the postings come from.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub instance_id: Uuid,
    pub seq: u64,
    pub step: Option<&'a str>,
}

/// Applies `postings` in the transaction `tx`: every account they touch is locked (in name
/// order, so two transitions never wait on each other crosswise), each posting is checked
/// against the balance as it stands after the ones before it, and the new balances and the
/// postings are written. A refused posting fails the call; the caller's transaction then
/// commits nothing.
pub async fn post(
    tx: &mut Conn,
    backend: Backend,
    postings: &[Posting],
    source: Source<'_>,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut accounts: Vec<&str> = postings.iter().map(|p| p.account.as_str()).collect();
    accounts.sort_unstable();
    accounts.dedup();
    let mut balances = Vec::with_capacity(accounts.len());
    for account in &accounts {
        balances.push((*account, lock(tx, backend, account, now).await?));
    }
    for p in postings {
        if let Some((_, balance)) = balances.iter_mut().find(|(a, _)| *a == p.account) {
            *balance = balance.apply(p).map_err(Error::Ledger)?;
        }
    }
    for (account, b) in &balances {
        sqlx::query(
            "update ledger_accounts set quota = $1, supplements = $2, reserved = $3, consumed = $4, updated_at = $5 where account = $6",
        )
        .bind(b.quota.to_string())
        .bind(b.supplements.to_string())
        .bind(b.reserved.to_string())
        .bind(b.consumed.to_string())
        .bind(to_micros(now))
        .bind(*account)
        .execute(&mut *tx)
        .await?;
    }
    let sql = format!(
        "insert into ledger_entries (account, movement, amount, currency, instance_id, seq, step, created_at, payable) values {}",
        crate::values_clause(postings.len(), 9)
    );
    let mut q = sqlx::query(crate::sql(sql));
    for p in postings {
        q = q
            .bind(p.account.clone())
            .bind(p.movement.label())
            .bind(p.amount.amount.to_string())
            .bind(format!("{:?}", p.amount.currency))
            .bind(source.instance_id.to_string())
            .bind(crate::seq_i64(source.seq))
            .bind(source.step.map(str::to_owned))
            .bind(to_micros(now))
            .bind(p.payable.clone());
    }
    q.execute(&mut *tx).await?;
    Ok(())
}

/// The account's balance, its row created when new, locked until the transaction ends.
async fn lock(
    tx: &mut Conn,
    backend: Backend,
    account: &str,
    now: DateTime<Utc>,
) -> Result<Balance> {
    sqlx::query(
        "insert into ledger_accounts (account, currency, quota, supplements, reserved, consumed, updated_at)
         values ($1, 'CNY', '0', '0', '0', '0', $2) on conflict (account) do nothing",
    )
    .bind(account)
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?;
    let lock = match backend {
        Backend::Postgres => "for update",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "select quota, supplements, reserved, consumed from ledger_accounts where account = $1 {lock}"
    );
    let row = sqlx::query(crate::sql(sql))
        .bind(account)
        .fetch_one(&mut *tx)
        .await?;
    balance_at(&row, 0)
}

/// A stored amount (decimal text) in column `i`.
fn amount_at(row: &sqlx::any::AnyRow, i: usize) -> Result<Decimal> {
    crate::decimal("ledger amount", &row.try_get::<String, _>(i)?)
}

/// The balance in the four columns from `at`: quota, supplements, reserved, consumed.
fn balance_at(row: &sqlx::any::AnyRow, at: usize) -> Result<Balance> {
    Ok(Balance {
        currency: Currency::CNY,
        quota: amount_at(row, at)?,
        supplements: amount_at(row, at + 1)?,
        reserved: amount_at(row, at + 2)?,
        consumed: amount_at(row, at + 3)?,
    })
}

/// An account's balance (zero when it has no postings).
pub async fn balance(conn: &mut Conn, account: &str) -> Result<Balance> {
    let row = sqlx::query(
        "select quota, supplements, reserved, consumed from ledger_accounts where account = $1",
    )
    .bind(account)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref()
        .map_or(Ok(Balance::default()), |r| balance_at(r, 0))
}

/// An account's postings, oldest first.
pub async fn entries(conn: &mut Conn, account: &str) -> Result<Vec<Entry>> {
    let rows = sqlx::query(
        "select id, account, movement, amount, currency, instance_id, seq, step, created_at, payable
         from ledger_entries where account = $1 order by id",
    )
    .bind(account)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(entry_of).collect()
}

fn entry_of(r: &sqlx::any::AnyRow) -> Result<Entry> {
    Ok(Entry {
        id: r.try_get(0)?,
        account: r.try_get(1)?,
        movement: r.try_get(2)?,
        amount: amount_at(r, 3)?,
        currency: r.try_get(4)?,
        instance_id: r.try_get(5)?,
        seq: r.try_get(6)?,
        step: r.try_get(7)?,
        at: from_micros(r.try_get(8)?),
        payable: r.try_get(9)?,
    })
}

/// The accounts of a partner (named `<kind>:<partner>:<…>`, as the shipped workflows name
/// them), with their balances.
pub async fn accounts_of(conn: &mut Conn, partner: &str) -> Result<Vec<(String, Balance)>> {
    let rows = sqlx::query(
        "select account, quota, supplements, reserved, consumed from ledger_accounts
         where account like $1 order by account",
    )
    .bind(format!("%:{}:%", partner.replace(['%', '_'], "")))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, balance_at(r, 1)?)))
        .collect()
}

/// Every account with its stored balance, by name.
pub async fn all_accounts(conn: &mut Conn) -> Result<Vec<(String, Balance)>> {
    let rows = sqlx::query(
        "select account, quota, supplements, reserved, consumed from ledger_accounts order by account",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, balance_at(r, 1)?)))
        .collect()
}
