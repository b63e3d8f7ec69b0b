//! The state machine on its own: no database, a fixed clock, deterministic ids.

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::*;
use crate::calendar::BusinessCalendar;
use crate::definition::{AnyNames, WorkflowDefinition};
use crate::directory::Directory;

const FLOW: &str = r#"
id = "panel"
version = 1
start = "prepare"
[[steps]]
id = "prepare"
kind = "automated"
handler = "work"
on.done = "panel"
[[steps]]
id = "panel"
kind = "human"
role = "expert"
sla = "4h"
quorum = 2
silence = "auto_confirm"
silence_decision = "approve"
decisions = ["approve", "reject"]
on.approve = "done"
on.reject = "done"
[[steps]]
id = "done"
kind = "end"
"#;

fn directory() -> Directory {
    toml::from_str(
        r#"
        programme_director = "boss"
        [[people]]
        id = "boss"
        name = "Boss"
        [[people]]
        id = "e1"
        name = "Expert 1"
        roles = ["expert"]
        [[people]]
        id = "e2"
        name = "Expert 2"
        roles = ["expert"]
        "#,
    )
    .expect("directory")
}

struct World {
    def: WorkflowDefinition,
    cal: BusinessCalendar,
    dir: Directory,
    state: InstanceState,
    next: u128,
}

impl World {
    fn new() -> Self {
        let def = WorkflowDefinition::parse("panel.toml", FLOW, None, &AnyNames).expect("valid");
        let state = InstanceState {
            submitted_by: Some("e2".to_owned()),
            ..InstanceState::new(Uuid::from_u128(1), &def, "k")
        };
        World {
            def,
            cal: BusinessCalendar::weekdays_only(chrono_tz::Asia::Shanghai),
            dir: directory(),
            state,
            next: 100,
        }
    }

    fn apply(&mut self, cmd: Command) -> Result<Applied, Error> {
        let now = Utc
            .with_ymd_and_hms(2026, 3, 2, 2, 0, 0)
            .single()
            .expect("valid time");
        let mut next = self.next;
        let mut new_id = || {
            next += 1;
            Uuid::from_u128(next)
        };
        let mut ctx = Ctx {
            now,
            calendar: &self.cal,
            directory: &self.dir,
            new_id: &mut new_id,
            validate: &|_, data, _| Ok(data.clone()),
        };
        let mut copy = self.state.clone();
        let out = apply(&self.def, &mut copy, cmd, &mut ctx);
        self.next = next;
        if out.is_ok() {
            self.state = copy;
        }
        out
    }

    fn start_and_prepare(&mut self) -> Uuid {
        self.apply(Command::Start {
            input: json!({}),
            actor: Actor::system(),
        })
        .expect("start");
        self.apply(Command::StepCompleted {
            seq: 1,
            outcome: "done".to_owned(),
            output: Value::Null,
        })
        .expect("prepare");
        self.state.task.as_ref().expect("task open").id
    }
}

fn decide(task_id: Uuid, actor: &str) -> Command {
    Command::Decide {
        task_id,
        decision: "approve".to_owned(),
        reason: None,
        actor: Actor {
            id: actor.to_owned(),
        },
        data: Value::Null,
        evidence: None,
    }
}

#[test]
fn a_completion_for_an_earlier_step_entry_changes_nothing() {
    let mut w = World::new();
    w.start_and_prepare();
    let again = w
        .apply(Command::StepCompleted {
            seq: 1,
            outcome: "done".to_owned(),
            output: Value::Null,
        })
        .expect("stale is not an error");
    assert!(!again.changed && again.events.is_empty() && again.effects.is_empty());
    assert_eq!(w.state.step.as_deref(), Some("panel"));
}

#[test]
fn a_quorum_needs_distinct_approvers_and_excludes_the_submitter() {
    let mut w = World::new();
    let task = w.start_and_prepare();
    let first = w.apply(decide(task, "e1")).expect("first approval");
    assert!(first.events.iter().any(|e| e.kind == "vote_recorded"));
    assert_eq!(
        w.state.step.as_deref(),
        Some("panel"),
        "one of two approvals is not enough"
    );
    assert_eq!(
        w.apply(decide(task, "e1")).expect_err("same person twice"),
        Error::AlreadyVoted("e1".to_owned())
    );
    assert_eq!(
        w.apply(decide(task, "e2")).expect_err("submitter"),
        Error::OwnItem("e2".to_owned())
    );
    w.dir.people.push(crate::directory::Person {
        id: "e3".to_owned(),
        name: "Expert 3".to_owned(),
        roles: vec!["expert".to_owned()],
        ..w.dir.people[1].clone()
    });
    w.apply(decide(task, "e3")).expect("second approval");
    assert_eq!(w.state.status, Status::Finished("completed".to_owned()));
}

fn scheduled(effects: &[Effect]) -> Vec<(TimerKind, String)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::ScheduleTimer { kind, due, .. } => {
                Some((kind.clone(), due.at.format("%H:%M").to_string()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_human_step_runs_its_ladder_on_one_timer_from_the_sla() {
    let mut w = World::new();
    w.apply(Command::Start {
        input: json!({}),
        actor: Actor::system(),
    })
    .expect("start");
    let out = w
        .apply(Command::StepCompleted {
            seq: 1,
            outcome: "done".to_owned(),
            output: Value::Null,
        })
        .expect("prepare");
    // One timer at a time: the first rung when the task opens, each next one when the
    // previous fires. 4 h SLA from 02:00 UTC: reminders at 50 % and 80 %, the first
    // escalation, the breach and the silence policy at 100 %; the silence policy confirms,
    // so the second escalation (200 %) is never scheduled.
    let mut chain = scheduled(&out.effects);
    assert_eq!(chain.len(), 1, "one timer when the task opens: {chain:?}");
    loop {
        let (kind, _) = chain.last().cloned().expect("a rung");
        let out = w
            .apply(Command::TimerFired {
                seq: 2,
                timer: kind,
            })
            .expect("fires");
        let next = scheduled(&out.effects);
        assert!(next.len() <= 1, "at most one next rung: {next:?}");
        if next.is_empty() {
            break;
        }
        chain.extend(next);
    }
    let times: Vec<&str> = chain.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(times, vec!["04:00", "05:12", "06:00", "06:00", "06:00"]);
    assert!(matches!(chain[0].0, TimerKind::Remind { index: 0 }));
    assert!(matches!(chain[1].0, TimerKind::Remind { index: 1 }));
    assert!(matches!(chain[2].0, TimerKind::Escalate { index: 0, .. }));
    assert!(matches!(chain[3].0, TimerKind::Breach));
    assert!(matches!(chain[4].0, TimerKind::Silence));
    assert_eq!(w.state.status, Status::Finished("completed".to_owned()));
}

#[test]
fn tasks_opened_with_every_rung_scheduled_schedule_no_more() {
    let mut w = World::new();
    w.start_and_prepare();
    if let Some(task) = w.state.task.as_mut() {
        task.chained_timers = false;
    }
    let out = w
        .apply(Command::TimerFired {
            seq: 2,
            timer: TimerKind::Remind { index: 0 },
        })
        .expect("reminder");
    assert!(out.changed, "the reminder is sent");
    assert!(
        scheduled(&out.effects).is_empty(),
        "its next rung exists already"
    );
}

#[test]
fn a_decided_task_schedules_no_further_rung() {
    let mut w = World::new();
    w.start_and_prepare();
    let task = w.state.task.as_ref().map(|t| t.id).expect("a task");
    w.dir.people.push(crate::directory::Person {
        id: "e3".to_owned(),
        name: "Expert 3".to_owned(),
        roles: vec!["expert".to_owned()],
        ..w.dir.people[1].clone()
    });
    w.apply(decide(task, "e1")).expect("first approval");
    w.apply(decide(task, "e3")).expect("second approval");
    let late = w
        .apply(Command::TimerFired {
            seq: 2,
            timer: TimerKind::Remind { index: 0 },
        })
        .expect("stale");
    assert!(!late.changed);
    assert!(scheduled(&late.effects).is_empty());
}

#[test]
fn silence_confirms_only_where_the_definition_allows_it() {
    let mut w = World::new();
    w.start_and_prepare();
    w.apply(Command::TimerFired {
        seq: 2,
        timer: TimerKind::Silence,
    })
    .expect("silence");
    assert_eq!(w.state.status, Status::Finished("completed".to_owned()));
    let stale = w
        .apply(Command::TimerFired {
            seq: 2,
            timer: TimerKind::Silence,
        })
        .expect("a second firing is stale");
    assert!(!stale.changed);
}

#[test]
fn refusals_leave_the_state_untouched() {
    let mut w = World::new();
    let task = w.start_and_prepare();
    let before = serde_json::to_value(&w.state).expect("state");
    assert!(matches!(
        w.apply(decide(task, "stranger")),
        Err(Error::RoleMissing { .. })
    ));
    assert!(matches!(
        w.apply(decide(Uuid::from_u128(7), "e1")),
        Err(Error::TaskClosed(_))
    ));
    let wrong = Command::Decide {
        task_id: task,
        decision: "maybe".to_owned(),
        reason: None,
        actor: Actor {
            id: "e1".to_owned(),
        },
        data: Value::Null,
        evidence: None,
    };
    assert!(matches!(w.apply(wrong), Err(Error::UnknownDecision { .. })));
    let reject = Command::Decide {
        task_id: task,
        decision: "reject".to_owned(),
        reason: Some("  ".to_owned()),
        actor: Actor {
            id: "e1".to_owned(),
        },
        data: Value::Null,
        evidence: None,
    };
    assert_eq!(
        w.apply(reject).expect_err("blank reason"),
        Error::ReasonRequired("reject".to_owned())
    );
    assert_eq!(serde_json::to_value(&w.state).expect("state"), before);
}

#[test]
fn a_template_is_filled_from_the_partner_the_id_and_the_data() {
    let def = WorkflowDefinition::parse("panel.toml", FLOW, None, &AnyNames).expect("definition");
    let mut state = InstanceState::new(Uuid::nil(), &def, "k");
    state.partner_id = Some("P-1".to_owned());
    state.data.insert(
        "steps".to_owned(),
        json!({ "next": { "number": 2, "blank": "" } }),
    );
    assert_eq!(
        state.fill("nre:{instance}:{/steps/next/number}").as_deref(),
        Ok(format!("nre:{}:2", Uuid::nil()).as_str())
    );
    assert_eq!(
        state.fill("mdf:{partner}:2026").as_deref(),
        Ok("mdf:P-1:2026")
    );
    assert_eq!(
        state.fill("x:{/steps/next/blank}"),
        Err("/steps/next/blank".to_owned())
    );
    assert_eq!(state.fill("x:{/nowhere}"), Err("/nowhere".to_owned()));
    assert_eq!(state.fill("x:{open"), Err("{open".to_owned()));
}
