//! Group commit: decisions arriving together commit in shared transactions, and one refused
//! among them costs the others nothing and leaves nothing of itself.

use partnerflow::harness::Harness;
use partnerflow_core::machine::Actor;
use partnerflow_engine::Error;

use crate::helpers::{bulk, count_events};
use crate::on_both_backends;

async fn decisions_arriving_together_commit_in_groups_and_a_refused_one_costs_nothing(h: Harness) {
    const VALID: usize = 20;
    let started = h
        .engine
        .start_many(
            "reference_reminders",
            (0..VALID + 2)
                .map(|n| bulk(&format!("review-{n}")))
                .collect(),
        )
        .await
        .expect("bulk start");
    let mut tasks = Vec::new();
    for (id, _) in &started {
        let (task, _) = h.open_task(*id).await.expect("task").expect("open");
        tasks.push((*id, task));
    }
    let before = h.engine.group_stats();
    // Hold the instances (PostgreSQL: their rows; SQLite: the write lock) so that every
    // decision is queued before the first group can commit.
    let mut blocker = h.engine.store().begin().await.expect("begin");
    sqlx::query("update instances set updated_at = updated_at")
        .execute(&mut *blocker)
        .await
        .expect("lock the instances");
    let mut calls = tokio::task::JoinSet::new();
    for (n, (id, task)) in tasks.iter().copied().enumerate() {
        let engine = h.engine.clone();
        // The last two ask for a decision the step does not offer.
        let decision = if n < VALID { "approve" } else { "escalate" };
        calls.spawn(async move {
            let answer = engine
                .decide(
                    task,
                    decision,
                    None,
                    Actor {
                        id: "cm.li".to_owned(),
                    },
                    serde_json::Value::Null,
                    None,
                )
                .await;
            (n, id, answer)
        });
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(8);
    while h.engine.group_stats().submitted < before.submitted + tasks.len() as u64 {
        assert!(
            std::time::Instant::now() < deadline,
            "decisions were not queued"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    blocker.rollback().await.expect("release");
    while let Some(joined) = calls.join_next().await {
        let (n, id, answer) = joined.expect("join");
        if n < VALID {
            answer.unwrap_or_else(|e| panic!("decision {n} was not committed: {e}"));
            assert_eq!(
                count_events(&h, id, "decision").await,
                1,
                "instance {n} decided once"
            );
        } else {
            assert!(
                matches!(answer, Err(Error::Refused(_))),
                "decision {n}: {answer:?}"
            );
            assert_eq!(
                count_events(&h, id, "decision").await,
                0,
                "nothing of the refusal kept"
            );
            assert!(h.open_task(id).await.expect("task").is_some(), "still open");
        }
    }
    let after = h.engine.group_stats();
    assert_eq!(
        after.transitions - before.transitions,
        VALID as u64,
        "every valid decision committed in a group"
    );
    // Four writers each hold a group while the instances are held; everything else queues
    // behind them and commits in one more group (or a few).
    let commits = after.commits - before.commits;
    assert!(
        commits <= 8,
        "{VALID} decisions took {commits} transactions"
    );
}
on_both_backends!(
    decisions_arriving_together_commit_in_groups_and_a_refused_one_costs_nothing,
    shanghai(2025, 9, 1, 9, 0),
    crate::helpers::with_reference
);
