//! An expert panel's quorum and amount-based four-eyes, on the machine alone.

use serde_json::{Value, json};
use uuid::Uuid;

use super::super::testkit::Instance;
use super::super::*;

fn flow(voting: &str) -> String {
    format!(
        r#"
id = "panel"
version = 1
start = "review"
[[steps]]
id = "review"
kind = "human"
role = "expert"
sla = "5WD"
decisions = ["approve", "reject"]
reason_required = []
{voting}
on.approve = "approved"
on.reject = "rejected"
[[steps]]
id = "approved"
kind = "end"
status = "approved"
[[steps]]
id = "rejected"
kind = "end"
status = "rejected"
"#
    )
}

/// An instance at its review, submitted by `submitter`, with `input`.
fn at_review(voting: &str, submitter: &str, input: Value) -> (Instance, Uuid) {
    let mut m = Instance::new(&flow(voting), None);
    m.state.submitted_by = Some(submitter.to_owned());
    m.start_with(input);
    let task = m.state.task.as_ref().expect("task").id;
    (m, task)
}

fn vote(m: &mut Instance, task: Uuid, who: &str, decision: &str) -> Result<Applied, Error> {
    m.apply(Command::Decide {
        task_id: task,
        decision: decision.to_owned(),
        reason: None,
        actor: Actor { id: who.to_owned() },
        data: Value::Null,
        evidence: None,
    })
}

const PANEL: &str = "quorum = { approve = 2, of = 3 }";

fn status(m: &Instance) -> &str {
    m.state.status.label()
}

#[test]
fn a_single_no_does_not_end_a_panel_vote_and_two_yes_approve() {
    let (mut m, task) = at_review(PANEL, "P-1/a", json!({}));
    vote(&mut m, task, "e1", "reject").expect("first no");
    assert_eq!(
        status(&m),
        "running",
        "one rejection leaves the quorum reachable"
    );
    vote(&mut m, task, "e2", "approve").expect("first yes");
    assert_eq!(status(&m), "running");
    let last = vote(&mut m, task, "e3", "approve").expect("second yes");
    assert_eq!(status(&m), "approved");
    let votes: Vec<&Event> = last
        .events
        .iter()
        .filter(|e| e.kind == "vote_recorded")
        .collect();
    assert_eq!(votes.len(), 1, "each vote is audited as it is cast");
    assert_eq!(votes[0].actor, "e3");
    assert_eq!(votes[0].payload["approvals"], 2);
    assert_eq!(votes[0].payload["rejections"], 1);
}

#[test]
fn two_rejections_of_three_make_the_quorum_impossible() {
    let (mut m, task) = at_review(PANEL, "P-1/a", json!({}));
    vote(&mut m, task, "e1", "reject").expect("first no");
    vote(&mut m, task, "e2", "reject").expect("second no");
    assert_eq!(status(&m), "rejected");
}

#[test]
fn a_panel_member_votes_once_and_the_submitter_not_at_all() {
    let (mut m, task) = at_review(PANEL, "e3", json!({}));
    vote(&mut m, task, "e1", "approve").expect("yes");
    assert_eq!(
        vote(&mut m, task, "e1", "reject").err(),
        Some(Error::AlreadyVoted("e1".to_owned()))
    );
    assert_eq!(
        vote(&mut m, task, "e3", "approve").err(),
        Some(Error::OwnItem("e3".to_owned()))
    );
    assert_eq!(status(&m), "running");
}

#[test]
fn a_quorum_without_a_panel_size_counts_everyone_who_may_decide() {
    // Three experts, one of them the submitter: two voters for a quorum of two.
    let (mut m, task) = at_review("quorum = 2", "e3", json!({}));
    vote(&mut m, task, "e1", "reject").expect("no");
    assert_eq!(
        status(&m),
        "rejected",
        "one no of two voters makes two yes impossible"
    );
}

const DUAL: &str = r#"two_approvals_above = { amount = "/input/amount", above = "50000.00" }"#;

#[test]
fn above_the_threshold_two_persons_approve_below_one() {
    let (mut m, task) = at_review(DUAL, "P-1/a", json!({ "amount": "50000.01" }));
    vote(&mut m, task, "e1", "approve").expect("first");
    assert_eq!(status(&m), "running", "50,000.01 needs a second approver");
    assert_eq!(
        vote(&mut m, task, "e1", "approve").err(),
        Some(Error::AlreadyVoted("e1".to_owned())),
        "not the same person twice"
    );
    vote(&mut m, task, "e2", "approve").expect("second");
    assert_eq!(status(&m), "approved");

    let (mut m, task) = at_review(DUAL, "P-1/a", json!({ "amount": "50000.00" }));
    vote(&mut m, task, "e1", "approve").expect("one");
    assert_eq!(
        status(&m),
        "approved",
        "at the threshold one approval is enough"
    );
}

#[test]
fn an_amount_that_cannot_be_read_needs_two_approvals() {
    let (mut m, task) = at_review(DUAL, "P-1/a", json!({ "amount": "a lot" }));
    vote(&mut m, task, "e1", "approve").expect("first");
    assert_eq!(status(&m), "running");
}

#[test]
fn bad_voting_rules_are_refused_at_load() {
    use crate::definition::{AnyNames, WorkflowDefinition};
    for (voting, rule) in [
        ("quorum = { approve = 3, of = 2 }", "bad-quorum"),
        ("quorum = 0", "bad-quorum"),
        (
            r#"two_approvals_above = { amount = "amount", above = "1" }"#,
            "bad-dual-approval",
        ),
        (
            r#"two_approvals_above = { amount = "/input/amount", above = "-1" }"#,
            "bad-dual-approval",
        ),
    ] {
        let errors =
            WorkflowDefinition::parse("p.toml", &flow(voting), None, &AnyNames).expect_err(voting);
        assert!(
            errors.iter().any(|e| e.rule == rule),
            "{voting}: {errors:?}"
        );
    }
}
