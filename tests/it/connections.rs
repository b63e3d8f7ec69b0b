//! The connection budget at start-up: a pool PostgreSQL can never fill is refused before the
//! process does anything, and the pools of other partnerflow processes count against it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use partnerflow_store::Store;
use partnerflow_store::connections::Overdrawn;

const REPO_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

#[tokio::test]
async fn a_worker_whose_pool_postgresql_cannot_serve_stops_at_start_up_naming_the_setting() {
    let test = "a_worker_whose_pool_postgresql_cannot_serve_stops_at_start_up_naming_the_setting";
    if !crate::services::postgres(test) {
        return;
    }
    let url = crate::helpers::postgres_url().await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_partnerflow"))
        .args(["worker"])
        .current_dir(REPO_ROOT)
        .env("PARTNERFLOW__DATABASE__URL", &url)
        .env("PARTNERFLOW__DATABASE__MAX_CONNECTIONS", "100000")
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn partnerflow worker");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the worker kept running with a pool PostgreSQL cannot serve");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        use std::io::Read;
        let _ = pipe.read_to_string(&mut stderr);
    }
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("database.max_connections = 100000")
            && stderr.contains("max_connections less superuser_reserved_connections"),
        "{stderr}"
    );
    // Refused before migrating: the database is as it was created.
    let store = Store::connect(&url, 1).await.expect("connect");
    let tables: i64 = sqlx::Row::try_get(
        &sqlx::query(
            "select count(*) from information_schema.tables where table_schema = 'public'",
        )
        .fetch_one(&store.pool)
        .await
        .expect("tables"),
        0,
    )
    .expect("count");
    assert_eq!(tables, 0);
}

#[tokio::test]
async fn the_pools_of_other_partnerflow_processes_count_against_the_budget() {
    let test = "the_pools_of_other_partnerflow_processes_count_against_the_budget";
    if !crate::services::postgres(test) {
        return;
    }
    let url = crate::helpers::postgres_url().await;
    // Another pool (another size, so another name) holding one connection open.
    let other = Store::connect(&url, 61).await.expect("connect");
    let _held = other.pool.acquire().await.expect("a connection");
    let mine = Store::connect(&url, 7).await.expect("connect");
    let budget = mine
        .connection_budget()
        .await
        .expect("budget")
        .expect("PostgreSQL has one");
    assert!(budget.processes >= 1 && budget.theirs >= 61, "{budget:?}");
    // A pool that fits alone but not beside the other one.
    let own = budget.limit.saturating_sub(60);
    assert!(
        matches!(budget.check(own), Err(Overdrawn::Together { .. })),
        "{budget:?}"
    );
    assert!(matches!(
        budget.check(budget.limit + 1),
        Err(Overdrawn::Alone { .. })
    ));
}
