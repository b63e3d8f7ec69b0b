//! The driver probe of `partnerflow bench driver` (PostgreSQL).

/// `partnerflow bench driver`'s probe runs the same transitions through both drivers, each
/// saving under its version check, and leaves no scratch table behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_driver_probe_runs_both_drivers_and_cleans_up() {
    if !crate::services::postgres("drivers::the_driver_probe_runs_both_drivers_and_cleans_up") {
        return;
    }
    let url = crate::helpers::postgres_url().await;
    let store = partnerflow_store::Store::connect(&url, 1)
        .await
        .expect("store");
    let runs = partnerflow_store::probe::run(&store, 50, 2)
        .await
        .expect("probe");
    let drivers: Vec<&str> = runs.iter().map(|r| r.driver).collect();
    assert_eq!(drivers, vec!["any", "postgres", "any", "postgres"]);
    assert!(
        runs.iter()
            .all(|r| r.transitions == 50 && !r.wall.is_zero())
    );
    let mut conn = store.acquire().await.expect("conn");
    let left: i64 = sqlx::Row::try_get(
        &sqlx::query("select count(*) from pg_tables where tablename like 'driver_probe%'")
            .fetch_one(&mut *conn)
            .await
            .expect("count"),
        0,
    )
    .expect("count");
    assert_eq!(left, 0, "the scratch tables are dropped");
}
