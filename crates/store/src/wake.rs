//! Wake-ups between processes, on PostgreSQL's `LISTEN`/`NOTIFY`: a transaction that leaves
//! work for a loop only another process runs (a `worker` process's step result, for the
//! dispatcher in `serve`) says so on the loop's channel, and PostgreSQL delivers it when the
//! transaction commits. A wake-up is a hint, never the record: the loops still poll, so one
//! lost with a connection costs a poll interval, nothing more.

use crate::{Backend, Conn, Result, Store};

/// Which loop a wake-up is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loop {
    /// The outbox dispatcher: new rows are due.
    Dispatcher,
    /// The timer sweeper: a timer is due soon.
    Sweeper,
}

impl Loop {
    fn channel(self) -> &'static str {
        match self {
            Loop::Dispatcher => "partnerflow_dispatcher",
            Loop::Sweeper => "partnerflow_sweeper",
        }
    }
}

/// Asks, in the caller's transaction, that the listeners of `target` be woken once it commits
/// (PostgreSQL; SQLite has one process, which wakes its own loops).
pub async fn notify(conn: &mut Conn, backend: Backend, target: Loop) -> Result<()> {
    if backend == Backend::Postgres {
        sqlx::query("select pg_notify($1, '')")
            .bind(target.channel())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// A connection listening for one loop's wake-ups.
pub struct Listener(sqlx::postgres::PgListener);

impl Listener {
    /// Listens for `target`'s wake-ups; none on SQLite.
    pub async fn connect(store: &Store, target: Loop) -> Result<Option<Listener>> {
        let Some(url) = store.url() else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect(url).await?;
        listener.listen(target.channel()).await?;
        Ok(Some(Listener(listener)))
    }

    /// Waits for the next wake-up (reconnecting, and listening again, after a lost
    /// connection; what was sent meanwhile is lost, which the loop's poll makes up for).
    pub async fn next(&mut self) -> Result<()> {
        self.0.recv().await?;
        Ok(())
    }
}
