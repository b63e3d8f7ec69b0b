//! Leaving a step with a running child, children that fail or are cancelled, and an operator's
//! cancel and resume, on the machine alone.

use serde_json::json;
use uuid::Uuid;

use super::super::testkit::Instance;
use super::super::*;
use crate::definition::{AnyNames, WorkflowDefinition};

const PARENT: &str = r#"
id = "parent"
version = 1
start = "sign"
[[steps]]
id = "sign"
kind = "child"
workflow = "child"
timeout = "2h"
on.completed = "done"
on.timeout = "lapsed"
[[steps]]
id = "done"
kind = "end"
[[steps]]
id = "lapsed"
kind = "end"
status = "lapsed"
"#;

const CHILD: &str = r#"
id = "child"
version = 1
start = "prepare"
[[steps]]
id = "prepare"
kind = "automated"
handler = "work"
on.done = "partner_sign"
[[steps]]
id = "partner_sign"
kind = "human"
role = "partner"
sla = "30CD"
reminders = ["7CD", "14CD"]
decisions = ["sign"]
on.sign = "done"
[[steps]]
id = "done"
kind = "end"
"#;

/// A child waiting for its partner's signature.
fn child_at_signing() -> Instance {
    let mut child = Instance::new(
        CHILD,
        Some(ParentRef {
            instance_id: Uuid::from_u128(1),
            seq: 1,
        }),
    );
    child.state.partner_id = Some("P-1".to_owned());
    child.start();
    child
        .apply(Command::StepCompleted {
            seq: 1,
            outcome: "done".to_owned(),
            output: json!(null),
        })
        .expect("prepared");
    child
}

fn operator() -> Actor {
    Actor {
        id: "ops.he".to_owned(),
    }
}

#[test]
fn a_parent_leaving_its_child_step_cancels_the_child() {
    let mut parent = Instance::new(PARENT, None);
    let started = parent.start();
    let Some(Effect::StartChild { child_id, .. }) = started
        .effects
        .iter()
        .find(|e| matches!(e, Effect::StartChild { .. }))
        .cloned()
    else {
        panic!("no child started: {:?}", started.effects);
    };
    let timed_out = parent
        .apply(Command::TimerFired {
            seq: parent.state.seq,
            timer: TimerKind::Timeout,
        })
        .expect("timeout");
    assert!(
        timed_out
            .effects
            .contains(&Effect::CancelChild { child_id }),
        "{:?}",
        timed_out.effects
    );
    assert_eq!(parent.state.status, Status::Finished("lapsed".to_owned()));
    assert_eq!(parent.state.child, None);
}

#[test]
fn a_child_that_finishes_by_itself_is_not_cancelled() {
    let mut parent = Instance::new(PARENT, None);
    parent.start();
    let child_id = parent.state.child.expect("child");
    let done = parent
        .apply(Command::ChildFinished {
            seq: parent.state.seq,
            child_id,
            status: "completed".to_owned(),
        })
        .expect("finished");
    assert!(
        !done
            .effects
            .iter()
            .any(|e| matches!(e, Effect::CancelChild { .. }))
    );
}

#[test]
fn a_cancelled_child_closes_its_task_and_timers_and_refuses_late_decisions() {
    let mut child = child_at_signing();
    let task = child.state.task.clone().expect("task").id;
    let seq = child.state.seq;
    let cancelled = child
        .apply(Command::Cancel {
            actor: Actor::system(),
            reason: "parent left".to_owned(),
            by_parent: true,
        })
        .expect("cancel");
    assert!(cancelled.effects.contains(&Effect::CloseTask {
        task_id: task,
        outcome: CANCELLED.to_owned()
    }));
    assert!(cancelled.effects.contains(&Effect::CancelTimers { seq }));
    assert!(
        !cancelled
            .effects
            .iter()
            .any(|e| matches!(e, Effect::NotifyParent { .. })),
        "the parent cancelled it and is not told again"
    );
    assert_eq!(child.state.status.label(), "cancelled");
    let late = child.apply(Command::Decide {
        task_id: task,
        decision: "sign".to_owned(),
        reason: None,
        actor: Actor {
            id: "P-1/a".to_owned(),
        },
        data: json!(null),
        evidence: None,
    });
    assert_eq!(late.err(), Some(Error::TaskClosed(task)));
    let reminder = child
        .apply(Command::TimerFired {
            seq,
            timer: TimerKind::Remind { index: 0 },
        })
        .expect("stale");
    assert!(!reminder.changed, "no reminder after the cancel");
    // A second cancel by the parent changes nothing; by an operator it is refused.
    let again = child
        .apply(Command::Cancel {
            actor: Actor::system(),
            reason: "again".to_owned(),
            by_parent: true,
        })
        .expect("no-op");
    assert!(!again.changed);
    assert!(matches!(
        child.apply(Command::Cancel {
            actor: operator(),
            reason: "again".to_owned(),
            by_parent: false,
        }),
        Err(Error::NotRunning(_))
    ));
}

#[test]
fn an_operator_cancel_tells_the_waiting_parent() {
    let mut child = child_at_signing();
    let cancelled = child
        .apply(Command::Cancel {
            actor: operator(),
            reason: "duplicate application".to_owned(),
            by_parent: false,
        })
        .expect("cancel");
    assert!(cancelled.effects.contains(&Effect::NotifyParent {
        parent: ParentRef {
            instance_id: Uuid::from_u128(1),
            seq: 1
        },
        status: CANCELLED.to_owned()
    }));
    let event = cancelled
        .events
        .iter()
        .find(|e| e.kind == "cancelled")
        .expect("event");
    assert_eq!(event.actor, "ops.he");
}

#[test]
fn a_failing_child_tells_its_parent_which_follows_failed_or_fails_itself() {
    let mut child = Instance::new(
        CHILD,
        Some(ParentRef {
            instance_id: Uuid::from_u128(1),
            seq: 1,
        }),
    );
    child.start();
    let failed = child
        .apply(Command::StepFailed {
            seq: 1,
            error: "provider refused".to_owned(),
        })
        .expect("fail");
    assert!(matches!(child.state.status, Status::Failed(_)));
    assert!(failed.effects.contains(&Effect::NotifyParent {
        parent: ParentRef {
            instance_id: Uuid::from_u128(1),
            seq: 1
        },
        status: CHILD_FAILED.to_owned()
    }));

    // A parent without a `failed` transition fails itself; one with it follows it.
    let told = |text: &str| {
        let mut parent = Instance::new(text, None);
        parent.start();
        let child_id = parent.state.child.expect("child");
        parent
            .apply(Command::ChildFinished {
                seq: parent.state.seq,
                child_id,
                status: CHILD_FAILED.to_owned(),
            })
            .expect("told");
        parent.state.status
    };
    assert!(matches!(told(PARENT), Status::Failed(_)));
    let with_failed = PARENT.replace(
        "on.timeout = \"lapsed\"",
        "on.timeout = \"lapsed\"\non.failed = \"lapsed\"",
    );
    assert_eq!(told(&with_failed), Status::Finished("lapsed".to_owned()));
}

#[test]
fn resume_enters_the_failed_step_again_and_only_a_failed_instance() {
    let mut child = Instance::new(CHILD, None);
    child.start();
    assert!(matches!(
        child.apply(Command::Resume { actor: operator() }),
        Err(Error::NotFailed(_))
    ));
    child
        .apply(Command::StepFailed {
            seq: 1,
            error: "provider refused".to_owned(),
        })
        .expect("fail");
    let resumed = child
        .apply(Command::Resume { actor: operator() })
        .expect("resume");
    assert_eq!(child.state.status, Status::Running);
    assert_eq!(child.state.seq, 2, "a new entry of the step");
    assert!(resumed.effects.contains(&Effect::RunStep {
        seq: 2,
        step: "prepare".to_owned(),
        handler: "work".to_owned()
    }));
    let event = resumed
        .events
        .iter()
        .find(|e| e.kind == "resumed")
        .expect("event");
    assert_eq!(event.actor, "ops.he");
    // The failed entry's late result changes nothing.
    let late = child
        .apply(Command::StepCompleted {
            seq: 1,
            outcome: "done".to_owned(),
            output: json!(null),
        })
        .expect("stale");
    assert!(!late.changed);
}

#[test]
fn an_event_must_name_the_business_id_its_wait_declares() {
    let flow = r#"
id = "milestones"
version = 1
start = "await_payment"
[[steps]]
id = "await_payment"
kind = "wait_event"
event = "payment_confirmed"
correlate = "/input/milestone"
on.received = "done"
[[steps]]
id = "done"
kind = "end"
"#;
    let mut m = Instance::new(flow, None);
    m.start_with(json!({ "milestone": 2 }));
    assert_eq!(
        m.state.wait.as_ref().map(|w| w.correlation.as_str()),
        Some("2")
    );
    let event = |correlation: &str| Command::ExternalEvent {
        name: "payment_confirmed".to_owned(),
        correlation: correlation.to_owned(),
        payload: json!({}),
        actor: Actor::system(),
    };
    assert!(matches!(
        m.apply(event("1")),
        Err(Error::WaitClosed { correlation, open, .. }) if correlation == "1" && open == "2"
    ));
    m.apply(event("2")).expect("milestone 2's payment");
    assert_eq!(m.state.status, Status::Finished("completed".to_owned()));
    assert_eq!(m.state.wait, None);
}

#[test]
fn a_correlate_that_is_not_a_pointer_is_refused_at_load() {
    let flow = r#"
id = "bad"
version = 1
start = "w"
[[steps]]
id = "w"
kind = "wait_event"
event = "e"
correlate = "milestone"
on.received = "done"
[[steps]]
id = "done"
kind = "end"
"#;
    let errors = WorkflowDefinition::parse("bad.toml", flow, None, &AnyNames).expect_err("refused");
    assert!(
        errors.iter().any(|e| e.rule == "bad-correlate"),
        "{errors:?}"
    );
}

#[test]
fn an_interrupt_ends_a_human_step_for_its_entry_only() {
    let flow = r#"
id = "revocable"
version = 1
start = "review"
[[steps]]
id = "review"
kind = "human"
role = "expert"
sla = "3WD"
decisions = ["approve"]
interrupts = ["revoked"]
on.approve = "done"
on.revoked = { to = "gone" }
[[steps]]
id = "done"
kind = "end"
[[steps]]
id = "gone"
kind = "end"
status = "revoked"
"#;
    let mut m = Instance::new(flow, None);
    m.start();
    let task = m.state.task.as_ref().expect("task").id;
    let event = |name: &str, correlation: &str| Command::ExternalEvent {
        name: name.to_owned(),
        correlation: correlation.to_owned(),
        payload: json!({}),
        actor: Actor::system(),
    };
    assert!(matches!(
        m.apply(event("other", "1")),
        Err(Error::EventNotExpected(_))
    ));
    assert!(matches!(
        m.apply(event("revoked", "0")),
        Err(Error::WaitClosed { .. })
    ));
    let out = m.apply(event("revoked", "1")).expect("revoked");
    assert!(out.effects.contains(&Effect::CloseTask {
        task_id: task,
        outcome: "revoked".to_owned()
    }));
    assert_eq!(m.state.status, Status::Finished("revoked".to_owned()));
    let missing = flow.replace("on.revoked = { to = \"gone\" }\n", "");
    let errors =
        WorkflowDefinition::parse("r.toml", &missing, None, &AnyNames).expect_err("refused");
    assert!(
        errors.iter().any(|e| e.rule == "missing-transition"),
        "{errors:?}"
    );
}
