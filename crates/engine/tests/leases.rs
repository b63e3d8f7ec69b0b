//! The outbox lease: taken by the worker that runs a row, so a duplicate delivered while the
//! work runs does not run it again, and a result from a worker whose lease ran out (another
//! took the row over) is discarded. Counts what the handler actually executed.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use chrono::Duration;
use partnerflow_core::handler::{
    HandlerError, HandlerRegistry, StepContext, StepHandler, StepOutput,
};
use serde_json::json;
use tokio::sync::Notify;

const FLOW: &str = r#"
id = "slow_flow"
version = 1
start = "work"
[[steps]]
id = "work"
kind = "automated"
handler = "slow"
on.done = "done"
[[steps]]
id = "done"
kind = "end"
"#;

/// Counts its runs; the first run waits until released.
#[derive(Default)]
struct SlowState {
    runs: AtomicUsize,
    first_started: Notify,
    release_first: Notify,
}

#[derive(Clone, Default)]
struct Slow(Arc<SlowState>);

#[async_trait::async_trait]
impl StepHandler for Slow {
    async fn run(&self, ctx: StepContext) -> Result<StepOutput, HandlerError> {
        let run = self.0.runs.fetch_add(1, SeqCst) + 1;
        if run == 1 {
            self.0.first_started.notify_one();
            self.0.release_first.notified().await;
        }
        Ok(StepOutput::new(
            "done",
            json!({ "run": run, "key": ctx.idempotency_key }),
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_during_the_work_waits_and_a_result_after_the_lease_ran_out_is_discarded() {
    let slow = Slow::default();
    let registry = HandlerRegistry::default().handler("slow", slow.clone());
    let t = common::engine(
        FLOW,
        registry,
        r#"programme_director = "boss""#,
        Arc::new(partnerflow_notify::LogNotifier),
    )
    .await;
    let (engine, clock) = (t.engine.clone(), t.clock.clone());
    let store = engine.store().clone();
    let id = t.start("slow_flow").await;
    let now = partnerflow_engine::Clock::now(clock.as_ref());
    let ids = partnerflow_store::outbox::claim_due(&store, now, now + Duration::seconds(60), 10)
        .await
        .expect("dispatch");
    assert_eq!(ids.len(), 1);
    let row = ids[0];

    // Worker A takes the row and is slow.
    let a = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.run_job(row).await })
    };
    slow.0.first_started.notified().await;
    // A duplicate delivery while A holds the lease does not run the handler.
    engine.run_job(row).await.expect("duplicate");
    assert_eq!(
        slow.0.runs.load(SeqCst),
        1,
        "the duplicate waited for the lease"
    );

    // A's lease runs out (it is stuck); worker B takes the row over and finishes the step.
    clock.advance(Duration::seconds(31));
    engine.run_job(row).await.expect("worker B");
    assert_eq!(slow.0.runs.load(SeqCst), 2);
    let view = engine.instance(id).await.expect("view");
    assert_eq!(view.status, "completed");

    // A finally returns: its result is discarded, nothing is applied twice.
    slow.0.release_first.notify_one();
    a.await
        .expect("join")
        .expect("a superseded result is not an error");
    let view = engine.instance(id).await.expect("view");
    let completed: Vec<_> = view
        .timeline
        .iter()
        .filter(|e| e.event.kind == "step_completed")
        .collect();
    assert_eq!(completed.len(), 1, "{:?}", view.timeline);
    assert_eq!(
        completed[0].event.payload["output"]["run"], 2,
        "B's result stands"
    );
    assert_eq!(
        completed[0].event.payload["output"]["key"],
        format!("{id}:1:work"),
        "handlers get the step entry's idempotency key"
    );
    assert_eq!(engine.backlog().await.expect("backlog"), 0);
}
