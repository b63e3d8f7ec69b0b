//! The connection budget: how many connections PostgreSQL serves, and how many the partnerflow
//! processes connected to it may open. A process whose pool cannot fit is refused at start-up
//! instead of having its connections refused under load.
//!
//! Each pooled PostgreSQL connection names its process and pool size in `application_name`
//! (`partnerflow/<pid>/<max>`, unless the URL sets a name of its own); the budget reads those
//! back from `pg_stat_activity`.

use std::collections::BTreeSet;

use sqlx::Row;

use crate::{Backend, Result, Store};

const PREFIX: &str = "partnerflow/";

/// The `application_name` of this process's connections with a pool of `max`.
pub(crate) fn application_name(max: u32) -> String {
    format!("{PREFIX}{}/{max}", std::process::id())
}

/// PostgreSQL's connections and who may use them, as seen from one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// `max_connections` less `superuser_reserved_connections`.
    pub limit: u32,
    /// Other partnerflow processes connected now, and the connections their pools may open.
    pub processes: u32,
    pub theirs: u32,
    /// Connections other clients hold now.
    pub others: u32,
}

/// A pool that does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Overdrawn {
    /// The pool alone is larger than the server serves: it can never fill.
    #[error(
        "database.max_connections = {own} is more than PostgreSQL serves ({limit}: max_connections less superuser_reserved_connections); lower database.max_connections or raise PostgreSQL's max_connections"
    )]
    Alone { own: u32, limit: u32 },
    /// With the pools of the other processes and the other clients' connections, more than
    /// the server serves: under load some connections will be refused.
    #[error(
        "database.max_connections = {own}, with the {theirs} connections that {processes} other partnerflow processes may open and the {others} other clients hold, is more than PostgreSQL serves ({limit}); under load connections will be refused: lower database.max_connections in each process or raise PostgreSQL's max_connections"
    )]
    Together {
        own: u32,
        theirs: u32,
        processes: u32,
        others: u32,
        limit: u32,
    },
}

impl Budget {
    /// Whether a pool of `own` connections fits beside what is already spoken for.
    pub fn check(&self, own: u32) -> Result<(), Overdrawn> {
        if own > self.limit {
            return Err(Overdrawn::Alone {
                own,
                limit: self.limit,
            });
        }
        let total = u64::from(own) + u64::from(self.theirs) + u64::from(self.others);
        if total > u64::from(self.limit) {
            return Err(Overdrawn::Together {
                own,
                theirs: self.theirs,
                processes: self.processes,
                others: self.others,
                limit: self.limit,
            });
        }
        Ok(())
    }
}

impl Store {
    /// The connection budget as it stands (`None` on SQLite, which has no server).
    pub async fn connection_budget(&self) -> Result<Option<Budget>> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut conn = self.pool.acquire().await?;
        let limit: i64 = sqlx::query(
            "select current_setting('max_connections')::bigint - current_setting('superuser_reserved_connections')::bigint",
        )
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
        let rows = sqlx::query(
            "select coalesce(application_name, ''), coalesce(host(client_addr), 'local') from pg_stat_activity
             where backend_type = 'client backend' and pid <> pg_backend_pid()",
        )
        .fetch_all(&mut *conn)
        .await?;
        let own = application_name(self.pool.options().get_max_connections());
        let mut processes = BTreeSet::new();
        let mut others = 0_u32;
        for row in rows {
            let name: String = row.try_get(0)?;
            let host: String = row.try_get(1)?;
            match pool_size(&name) {
                // This process's own pool is what is being checked.
                Some(_) if name == own && host_is_local(&host) => {}
                Some(max) => {
                    processes.insert((host, name, max));
                }
                None => others += 1,
            }
        }
        let theirs = processes.iter().map(|(_, _, max)| *max).sum();
        Ok(Some(Budget {
            limit: u32::try_from(limit.max(0)).unwrap_or(u32::MAX),
            processes: u32::try_from(processes.len()).unwrap_or(u32::MAX),
            theirs,
            others,
        }))
    }
}

/// The pool size a partnerflow `application_name` declares.
fn pool_size(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let (_pid, max) = rest.split_once('/')?;
    max.parse().ok()
}

fn host_is_local(host: &str) -> bool {
    matches!(host, "local" | "127.0.0.1" | "::1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(limit: u32, theirs: u32, others: u32) -> Budget {
        Budget {
            limit,
            processes: u32::from(theirs > 0),
            theirs,
            others,
        }
    }

    #[test]
    fn a_pool_larger_than_the_server_is_refused_alone() {
        assert_eq!(
            budget(97, 0, 0).check(98),
            Err(Overdrawn::Alone { own: 98, limit: 97 })
        );
        assert_eq!(budget(97, 0, 0).check(97), Ok(()));
    }

    #[test]
    fn pools_that_add_up_past_the_server_are_named_together() {
        let b = budget(97, 64, 2);
        assert_eq!(b.check(31), Ok(()));
        let err = b.check(32).expect_err("over by one");
        assert!(matches!(err, Overdrawn::Together { theirs: 64, .. }));
        let text = err.to_string();
        assert!(
            text.contains("database.max_connections = 32") && text.contains("(97)"),
            "{text}"
        );
    }

    #[test]
    fn only_partnerflow_names_declare_a_pool() {
        assert_eq!(pool_size("partnerflow/4242/32"), Some(32));
        assert_eq!(pool_size("psql"), None);
        assert_eq!(pool_size("partnerflow/4242"), None);
        assert_eq!(pool_size("partnerflow/4242/many"), None);
    }
}
