//! `partnerflow bench driver`: the statements of a transition through sqlx's Any driver and
//! through the native PostgreSQL driver, in turns on the configured database
//! (`store::probe`); prints each run and the medians per transition.

use anyhow::{Result, bail};

use crate::settings::Settings;

pub async fn run(settings: &Settings, transitions: u64, rounds: u32) -> Result<()> {
    let store = partnerflow_store::Store::connect(&settings.database.url, 2).await?;
    if store.backend != partnerflow_store::Backend::Postgres {
        bail!("bench driver compares drivers of PostgreSQL: configure a postgres:// database");
    }
    let transitions = transitions.max(1);
    println!(
        "driver bench on {}: {transitions} transitions (read, save under version, 3 events, commit) × {rounds} rounds per driver",
        crate::app::redact(&settings.database.url)
    );
    let runs = partnerflow_store::probe::run(&store, transitions, rounds.max(1)).await?;
    let per = |d: std::time::Duration| d.as_secs_f64() * 1e6 / transitions as f64;
    for r in &runs {
        println!(
            "{:8} {:8.0} transitions/s · wall {:6.1} µs · client CPU {:6.1} µs · server CPU {:6.1} µs per transition",
            r.driver,
            transitions as f64 / r.wall.as_secs_f64().max(1e-9),
            per(r.wall),
            per(r.client_cpu),
            per(r.server_cpu)
        );
    }
    for driver in ["any", "postgres"] {
        let median = |f: fn(&partnerflow_store::probe::Run) -> std::time::Duration| {
            let mut v: Vec<f64> = runs
                .iter()
                .filter(|r| r.driver == driver)
                .map(|r| per(f(r)))
                .collect();
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or_default()
        };
        println!(
            "median {driver:8} wall {:6.1} µs · client CPU {:6.1} µs · server CPU {:6.1} µs per transition",
            median(|r| r.wall),
            median(|r| r.client_cpu),
            median(|r| r.server_cpu)
        );
    }
    Ok(())
}
