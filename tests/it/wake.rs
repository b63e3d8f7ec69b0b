//! Wake-ups between processes (PostgreSQL `LISTEN`/`NOTIFY`): two engines on one database, as a
//! `worker` process and a `serve` process are. The one that commits runs no dispatcher; the
//! other's dispatcher polls once an hour, so only the wake-up can make it push the work in time.

use std::time::{Duration, Instant};

use partnerflow::harness::{Harness, shanghai};
use partnerflow_core::machine::Actor;
use partnerflow_engine::Submitter;
use tokio_util::sync::CancellationToken;

fn hourly_poll(s: &mut partnerflow::settings::Settings) {
    s.engine.poll_ms = 3_600_000;
    s.paths.extra_workflows =
        vec![concat!(env!("CARGO_MANIFEST_DIR"), "/../../workflows/reference").into()];
}

async fn start(h: &Harness, key: &str) -> uuid::Uuid {
    let submitter = Submitter {
        actor: Actor {
            id: "crm".to_owned(),
        },
        partner: None,
    };
    let (started, _) = h
        .engine
        .start(
            "reference_approval",
            key,
            serde_json::json!({}),
            submitter,
            None,
        )
        .await
        .expect("start");
    started.id
}

async fn reaches_the_approval(h: &Harness, id: uuid::Uuid, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let view = h.engine.instance(id).await.expect("view");
        if view.current_steps.iter().any(|s| s == "approval") {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_committed_in_one_process_wakes_the_dispatcher_of_another() {
    if !crate::services::postgres(
        "wake::work_committed_in_one_process_wakes_the_dispatcher_of_another",
    ) {
        return;
    }
    let url = crate::helpers::postgres_url().await;
    let at = shanghai(2026, 3, 2, 10, 0);
    let serving = Harness::with_settings(&url, at, hourly_poll)
        .await
        .expect("serve");
    let working = Harness::with_settings(&url, at, hourly_poll)
        .await
        .expect("worker");
    let stop = CancellationToken::new();
    let mut loops = Vec::new();
    let (e, s) = (serving.engine.clone(), stop.clone());
    loops.push(tokio::spawn(async move { e.run_dispatcher(s).await }));
    let (e, s) = (serving.engine.clone(), stop.clone());
    loops.push(tokio::spawn(async move {
        let _ = e.run_workers(2, s).await;
    }));
    // The dispatcher's first round runs at once; what comes after it needs a wake-up.
    let first = start(&serving, "wake-0").await;
    assert!(
        reaches_the_approval(&serving, first, Duration::from_secs(20)).await,
        "the dispatching process runs its own work"
    );
    for n in 1..=3 {
        let id = start(&working, &format!("wake-{n}")).await;
        assert!(
            reaches_the_approval(&working, id, Duration::from_secs(20)).await,
            "start {n}, committed in the other process, was pushed without waiting for the hourly poll"
        );
    }
    stop.cancel();
    for l in loops {
        let _ = l.await;
    }
}
