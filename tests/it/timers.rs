//! The sweeper fires due timers in groups, one transaction each; a group that fails (here: a
//! timer the state machine refuses) fires its timers one by one, so the others still fire and
//! the refused one is not tried again.

use partnerflow::harness::Harness;
use partnerflow_core::machine::TimerKind;
use partnerflow_engine::BulkStart;

use crate::helpers::{bulk, count_events};
use crate::on_both_backends;

async fn a_group_with_a_refused_timer_still_fires_the_others(h: Harness) {
    let keys: Vec<BulkStart> = (0..5).map(|n| bulk(&format!("review-{n}"))).collect();
    let started = h
        .engine
        .start_many("reference_reminders", keys)
        .await
        .expect("bulk start");
    // One more review, given a timer its step cannot take (a human step does not elapse).
    let odd = h
        .engine
        .start_many("reference_reminders", vec![bulk("odd")])
        .await
        .expect("start")[0]
        .0;
    {
        let mut conn = h.engine.store().acquire().await.expect("conn");
        let due = h.now() + chrono::Duration::minutes(1);
        partnerflow_store::timers::insert_many(&mut conn, odd, &[(1, TimerKind::Elapsed, due)])
            .await
            .expect("timer");
    }
    // The first rung of the reviews is 25 % of their 2 h SLA.
    h.clock.advance(chrono::Duration::minutes(31));
    h.engine.drain().await.expect("drain");
    for (id, _) in &started {
        assert_eq!(
            count_events(&h, *id, "reminder").await,
            1,
            "review {id} was reminded once"
        );
    }
    assert_eq!(
        count_events(&h, odd, "reminder").await,
        1,
        "and so was the odd one"
    );
    let mut conn = h.engine.store().acquire().await.expect("conn");
    let left = partnerflow_store::timers::pending_for(&mut conn, odd)
        .await
        .expect("pending");
    assert!(
        left.iter().all(|t| t.kind != TimerKind::Elapsed),
        "the refused timer is marked fired, not tried again: {left:?}"
    );
}
on_both_backends!(
    a_group_with_a_refused_timer_still_fires_the_others,
    shanghai(2026, 3, 2, 10, 0),
    crate::helpers::with_reference
);
