//! partnerflow's record, in PostgreSQL (production) or SQLite (embedded default).
//!
//! One code path serves both backends through sqlx's `Any` driver: the schema keeps to types
//! both understand (text, bigint), times are microseconds since the epoch, JSON is text, and
//! the few statements that differ (row locking) branch on [`Backend`]. Repository functions take
//! a connection or transaction, so the engine decides where a transaction begins and ends.
//!
//! # Layout
//! - [`attachments`]: uploaded files, kept once by their SHA-256, and a row per upload.
//! - [`instances`]: instances with their optimistic version, and the audit events.
//! - [`tasks`]: human tasks and their SLA clocks.
//! - [`timers`]: durable timers, claimed by the sweeper.
//! - [`outbox`]: side effects waiting to be carried out, leased to workers.
//! - [`idempotency`]: stored answers to requests carrying an `Idempotency-Key`.
//! - [`ledger`]: account balances, locked by the transition that posts, and their postings.
//! - [`standing`]: facts transitions record about a partner (its business certification).
//! - [`notifications`]: the record of every notification sent, keyed for deduplication.
//! - [`transactions`]: imported transactions, summed for a settlement run.
//! - [`settlement`]: settlement runs and statements, once per partner and period.
//! - [`definitions`]: every definition version an instance may still run on.
//! - [`retention`]: deleting delivery rows (done outbox rows, closed timers, old
//!   idempotency keys) once old enough.

pub mod attachments;
pub mod connections;
pub mod definitions;
pub mod delegations;
pub mod gauges;
pub mod idempotency;
pub mod instances;
pub mod ledger;
pub mod links;
pub mod notifications;
pub mod outbox;
pub mod probe;
pub mod retention;
pub mod settlement;
pub mod standing;
pub mod tasks;
pub mod timers;
pub mod transactions;
pub mod wake;
pub mod webhooks;

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
pub use sqlx::{AnyConnection as Conn, AnyPool, Transaction};

/// A connection borrowed from the pool.
pub type PooledConn = sqlx::pool::PoolConnection<sqlx::Any>;
/// A transaction on either backend.
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// Errors of the record, in categories the engine acts on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The row asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A row with the same unique key exists (a business key, an Idempotency-Key).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The instance changed since it was read: read again and retry.
    #[error("stale: {0}")]
    Stale(String),
    /// The ledger refused a posting (a reservation above what the account has available).
    #[error(transparent)]
    Ledger(partnerflow_core::ledger::LedgerError),
    /// A stored document could not be read back.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The database could not be reached or refused the statement.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// The connection pool and what it talks to.
#[derive(Debug, Clone)]
pub struct Store {
    pub pool: AnyPool,
    pub backend: Backend,
    /// The PostgreSQL url, for the fast paths that need the driver itself (`COPY`).
    pg_url: Option<Redacted>,
}

/// A connection string kept out of logs (it may carry a password).
#[derive(Clone)]
struct Redacted(String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

static PG_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

impl Store {
    /// Connects to `url` (`postgres://…` or `sqlite:…`).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        install_default_drivers();
        let backend = if url.starts_with("postgres") {
            Backend::Postgres
        } else if url.starts_with("sqlite") {
            Backend::Sqlite
        } else {
            return Err(Error::Database(sqlx::Error::Configuration(
                format!("database url must start with postgres:// or sqlite:, got `{url}`").into(),
            )));
        };
        let max = if backend == Backend::Sqlite {
            max_connections.min(8)
        } else {
            max_connections
        };
        let url = match backend {
            // WAL lets readers proceed while the single writer commits; busy_timeout queues writers.
            Backend::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            // Connections name their process and pool size for the connection budget, as a
            // startup parameter (poolers pass it on), unless the URL names them.
            Backend::Postgres if !url.contains("application_name=") => {
                let join = if url.contains('?') { '&' } else { '?' };
                format!(
                    "{url}{join}application_name={}",
                    connections::application_name(max)
                )
            }
            _ => url.to_owned(),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        sqlx::raw_sql("pragma journal_mode = wal; pragma busy_timeout = 10000; pragma synchronous = normal; pragma foreign_keys = on;")
                            .execute(conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        let pg_url = (backend == Backend::Postgres).then(|| Redacted(url.clone()));
        Ok(Store {
            pool,
            backend,
            pg_url,
        })
    }

    /// The PostgreSQL url (`None` on SQLite).
    pub fn url(&self) -> Option<&str> {
        self.pg_url.as_ref().map(|u| u.0.as_str())
    }

    /// Applies the backend's migrations.
    pub async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Postgres => PG_MIGRATIONS.run(&self.pool).await?,
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
        }
        Ok(())
    }

    /// Borrows a connection from the pool.
    pub async fn acquire(&self) -> Result<PooledConn> {
        Ok(self.pool.acquire().await?)
    }

    /// Begins a transaction.
    pub async fn begin(&self) -> Result<Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Postgres => self.pool.begin().await?,
            // Take the write lock up front: a deferred transaction that reads and then writes
            // fails with "database is locked" instead of waiting when another writer is active.
            Backend::Sqlite => self.pool.begin_with("begin immediate").await?,
        })
    }

    /// `for update skip locked` where the backend has it (SQLite has a single writer anyway).
    pub(crate) fn skip_locked(backend: Backend) -> &'static str {
        match backend {
            Backend::Postgres => "for update skip locked",
            Backend::Sqlite => "",
        }
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// Microseconds since the epoch, the stored form of every time.
pub fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// A step sequence number as stored (bigint); beyond `i64::MAX` it saturates.
pub(crate) fn seq_i64(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// The inverse of [`to_micros`].
pub fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

pub(crate) fn json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::Corrupt(format!("{what}: {e}")))
}

/// A stored amount (decimal text); `what` names it in the error.
pub(crate) fn decimal(what: &str, text: &str) -> Result<rust_decimal::Decimal> {
    use std::str::FromStr;
    rust_decimal::Decimal::from_str(text)
        .map_err(|e| Error::Corrupt(format!("{what} `{text}`: {e}")))
}

/// The stored amount in column `i` of a row.
pub(crate) fn decimal_at(row: &sqlx::any::AnyRow, i: usize) -> Result<rust_decimal::Decimal> {
    use sqlx::Row;
    decimal("stored amount", &row.try_get::<String, _>(i)?)
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Serializing our own types to a String cannot fail (no non-string map keys, no I/O).
    serde_json::to_string(value).unwrap_or_default()
}

/// `($1, $2, $3), ($4, $5, $6)` for a multi-row insert of `rows` rows of `cols` columns.
pub(crate) fn values_clause(rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| {
            let params: Vec<String> = (1..=cols).map(|c| format!("${}", r * cols + c)).collect();
            format!("({})", params.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Marks a statement assembled from this crate's own constants (never from input) as safe.
pub(crate) fn sql(text: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(text)
}

/// Runs one statement outside the repositories (administration: creating test databases).
pub async fn raw_execute(store: &Store, statement: &str) -> Result<()> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(&store.pool)
        .await?;
    Ok(())
}
