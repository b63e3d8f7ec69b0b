//! The driver question (docs/dev/ARCHITECTURE.md): a transition's statements — read an
//! instance, save it under its version, append three events, commit — run through sqlx's
//! `Any` driver and through the native PostgreSQL driver, one connection each, on scratch
//! tables of their own, with the wall time and the CPU time of this process and of the
//! server's backend measured around each run.

use std::time::{Duration, Instant};

use sqlx::{Connection, Row};

use crate::{Error, Result, Store};

/// One run of the probe.
#[derive(Debug, Clone)]
pub struct Run {
    pub driver: &'static str,
    pub transitions: u64,
    pub wall: Duration,
    /// CPU time of this process (the driver's side).
    pub client_cpu: Duration,
    /// CPU time of the PostgreSQL backend serving the connection.
    pub server_cpu: Duration,
}

const SETUP: &str = "drop table if exists driver_probe, driver_probe_events;
    create table driver_probe (id text primary key, state text not null, version bigint not null);
    create table driver_probe_events (instance_id text not null, seq bigint not null,
        payload text not null, primary key (instance_id, seq));
    insert into driver_probe select 'p' || n, repeat('x', 1500), 0 from generate_series(0, 99) n";
const TEARDOWN: &str = "drop table if exists driver_probe, driver_probe_events";
const READ: &str = "select state, version from driver_probe where id = $1";
const SAVE: &str =
    "update driver_probe set state = $1, version = version + 1 where id = $2 and version = $3";
const APPEND: &str = "insert into driver_probe_events (instance_id, seq, payload) values ($1, $2, $3), ($1, $4, $5), ($1, $6, $7)";

/// CPU time (user + system) of a process, from /proc.
fn cpu_of(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime is the 12th, stime the 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    // Linux reports clock ticks of 1/100 s.
    Duration::from_millis(fields.iter().sum::<u64>() * 10)
}

macro_rules! transitions {
    ($conn:expr, $n:expr, $first:expr) => {{
        let conn = $conn;
        let pid: i32 = sqlx::query("select pg_backend_pid()")
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?;
        let pid = pid.to_string();
        let (wall, client, server) = (Instant::now(), cpu_of("self"), cpu_of(&pid));
        for i in 0..$n {
            let id = format!("p{}", i % 100);
            let seq = i64::try_from(($first + i) * 3).unwrap_or(i64::MAX);
            let mut tx = conn.begin().await?;
            let row = sqlx::query(READ).bind(&id).fetch_one(&mut *tx).await?;
            let (state, version): (String, i64) = (row.try_get(0)?, row.try_get(1)?);
            let saved = sqlx::query(SAVE)
                .bind(state)
                .bind(&id)
                .bind(version)
                .execute(&mut *tx)
                .await?;
            if saved.rows_affected() != 1 {
                return Err(Error::Corrupt(format!("probe row {id} lost its version")));
            }
            let payload = "{\"kind\":\"step_completed\",\"outcome\":\"done\"}";
            sqlx::query(APPEND)
                .bind(&id)
                .bind(seq)
                .bind(payload)
                .bind(seq + 1)
                .bind(payload)
                .bind(seq + 2)
                .bind(payload)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        (
            wall.elapsed(),
            cpu_of("self").saturating_sub(client),
            cpu_of(&pid).saturating_sub(server),
        )
    }};
}

/// Runs `transitions` through each driver, `rounds` times in turn (Any first); PostgreSQL only.
pub async fn run(store: &Store, transitions: u64, rounds: u32) -> Result<Vec<Run>> {
    let url = store
        .url()
        .ok_or_else(|| Error::Corrupt("the driver probe needs PostgreSQL".to_owned()))?;
    let mut any = sqlx::AnyConnection::connect(url).await?;
    let mut native = sqlx::PgConnection::connect(url).await?;
    sqlx::raw_sql(SETUP).execute(&mut native).await?;
    let mut out = Vec::new();
    let run = |driver, (wall, client_cpu, server_cpu)| Run {
        driver,
        transitions,
        wall,
        client_cpu,
        server_cpu,
    };
    // Each run appends events under sequence numbers of its own.
    let first = |round: u32, driver: u64| (u64::from(round) * 2 + driver) * transitions;
    for round in 0..rounds {
        out.push(run(
            "any",
            transitions!(&mut any, transitions, first(round, 0)),
        ));
        out.push(run(
            "postgres",
            transitions!(&mut native, transitions, first(round, 1)),
        ));
    }
    sqlx::raw_sql(TEARDOWN).execute(&mut native).await?;
    Ok(out)
}
