//! The instance state machine: `apply(definition, state, command, ctx)` → new state, audit
//! events and effects. No I/O: the engine persists the result in one transaction and carries
//! the effects out afterwards, so a command applied twice (a duplicate delivery, a replayed
//! callback) is recognised here by its step sequence number and changes nothing.

mod effects;
mod human;
mod lifecycle;
mod postings;
mod votes;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::calendar::{BusinessCalendar, Due};
use crate::definition::{NotifySpec, Step, StepKind, TimerSpec, WorkflowDefinition};
use crate::directory::Directory;
use crate::validation::FieldError;
pub use effects::{Effect, Event, TimerKind};
pub use lifecycle::{CANCELLED, CHILD_FAILED};

/// Lifecycle of an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "detail")]
pub enum Status {
    Running,
    /// Reached an end step; the detail is the end step's status (`completed`, `rejected`, …).
    Finished(String),
    /// A step failed for good; an operator must look.
    Failed(String),
}

impl Status {
    /// The label stored in the database and shown by the API.
    pub fn label(&self) -> &str {
        match self {
            Status::Running => "running",
            Status::Finished(s) => s,
            Status::Failed(_) => "failed",
        }
    }
}

/// A parent waiting for this instance (a child workflow step).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentRef {
    pub instance_id: Uuid,
    pub seq: u64,
}

/// Everything the machine knows about one instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceState {
    pub id: Uuid,
    pub workflow_id: String,
    pub version: u32,
    pub business_key: String,
    pub partner_id: Option<String>,
    /// Who submitted the item (four-eyes applies to them).
    pub submitted_by: Option<String>,
    /// Who at the partner notifications addressed to the partner go to.
    #[serde(alias = "contact")]
    pub party: Option<Party>,
    pub parent: Option<ParentRef>,
    pub status: Status,
    pub step: Option<String>,
    /// Incremented every time a step is entered; jobs, timers and tasks carry it, so anything
    /// addressed to an earlier entry of a step is recognised as stale.
    pub seq: u64,
    /// The open task of the current human step.
    pub task: Option<OpenTask>,
    /// The open wait of the current wait_event step.
    #[serde(default)]
    pub wait: Option<OpenWait>,
    /// The running child of the current child step.
    #[serde(default)]
    pub child: Option<Uuid>,
    /// Input and step outputs: `input`, `steps.<step>`, `events.<name>`.
    pub data: Map<String, Value>,
}

impl InstanceState {
    /// A running instance of `def` that has not started yet; the caller fills in who it is
    /// for (partner, submitter, contact, parent).
    pub fn new(id: Uuid, def: &WorkflowDefinition, business_key: &str) -> Self {
        InstanceState {
            id,
            workflow_id: def.id.clone(),
            version: def.version,
            business_key: business_key.to_owned(),
            partner_id: None,
            submitted_by: None,
            party: None,
            parent: None,
            status: Status::Running,
            step: None,
            seq: 0,
            task: None,
            wait: None,
            child: None,
            data: Map::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenTask {
    pub id: Uuid,
    pub due: Due,
    pub opened_at: DateTime<Utc>,
    /// Distinct persons who approved so far (a vote).
    pub approvals: Vec<String>,
    /// Distinct persons who rejected so far (a vote).
    #[serde(default)]
    pub rejections: Vec<String>,
}

/// The person at the partner an instance's partner notifications go to. Any workflow's input
/// names it the same way: its first `contacts` entry (`name`, `email`, `phone`, and optionally
/// `locale`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    pub name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default = "default_locale")]
    pub locale: String,
}

fn default_locale() -> String {
    "zh-CN".to_owned()
}

/// The party an input names, if any.
pub fn party_in(input: &Value) -> Option<Party> {
    input
        .pointer("/contacts/0")
        .and_then(|c| serde_json::from_value(c.clone()).ok())
}

/// A wait for an external event: an event must name the correlation id of the entry it
/// answers, so a late retry meant for an earlier loop is refused rather than taken by this one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenWait {
    pub step: String,
    pub event: String,
    pub correlation: String,
}

/// Who acts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub id: String,
}

impl Actor {
    /// The engine itself (handlers, timers, silence policies).
    pub fn system() -> Self {
        Actor {
            id: "system".to_owned(),
        }
    }
}

/// Something that happens to an instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    Start {
        input: Value,
        actor: Actor,
    },
    StepCompleted {
        seq: u64,
        outcome: String,
        output: Value,
    },
    StepFailed {
        seq: u64,
        error: String,
    },
    Decide {
        task_id: Uuid,
        decision: String,
        reason: Option<String>,
        actor: Actor,
        data: Value,
    },
    ExternalEvent {
        name: String,
        /// The correlation id of the wait it answers.
        correlation: String,
        payload: Value,
        actor: Actor,
    },
    TimerFired {
        seq: u64,
        timer: TimerKind,
    },
    ChildFinished {
        seq: u64,
        child_id: Uuid,
        status: String,
    },
    /// Stop a running instance (an operator, or the parent leaving the step that waits for it).
    Cancel {
        actor: Actor,
        reason: String,
        by_parent: bool,
    },
    /// Enter a failed instance's failed step again (an operator).
    Resume {
        actor: Actor,
    },
}

/// The world as the machine may see it: time, ids, calendar and directory are passed in.
pub struct Ctx<'a> {
    pub now: DateTime<Utc>,
    pub calendar: &'a BusinessCalendar,
    pub directory: &'a Directory,
    pub new_id: &'a mut dyn FnMut() -> Uuid,
    /// Runs the named validator over a decision's data, for the instance it is about.
    pub validate: &'a DataValidator<'a>,
}

/// A validator as the machine calls it: name, data, instance → normalised data or every problem.
pub type DataValidator<'a> =
    dyn Fn(&str, &Value, &InstanceState) -> Result<Value, Vec<FieldError>> + 'a;

/// Why a command was refused. Nothing changes when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("task {0} is not open")]
    TaskClosed(Uuid),
    #[error("`{decision}` is not a decision of step `{step}`; allowed: {allowed}")]
    UnknownDecision {
        step: String,
        decision: String,
        allowed: String,
    },
    #[error("a reason is required to {0}")]
    ReasonRequired(String),
    #[error("{actor} does not hold role `{role}`")]
    RoleMissing { actor: String, role: String },
    #[error("{0} submitted this item and may not decide it")]
    OwnItem(String),
    #[error("{0} has already voted on this task")]
    AlreadyVoted(String),
    #[error("the instance is not waiting for event `{0}`")]
    EventNotExpected(String),
    #[error(
        "the wait `{correlation}` for event `{event}` is no longer open (the open one is `{open}`)"
    )]
    WaitClosed {
        event: String,
        correlation: String,
        open: String,
    },
    #[error("the instance is {0}, not running")]
    NotRunning(String),
    #[error("the instance is {0}, not failed: only a failed instance can be resumed")]
    NotFailed(String),
    #[error("outcome `{outcome}` of step `{step}` has no transition")]
    NoTransition { step: String, outcome: String },
    #[error("the definition has no step `{0}`")]
    MissingStep(String),
    #[error("the instance has already started")]
    AlreadyStarted,
    #[error("the decision's data is invalid: {} problem(s)", .0.len())]
    InvalidData(Vec<FieldError>),
}

/// The result of applying a command.
#[derive(Debug, Default)]
pub struct Applied {
    pub events: Vec<Event>,
    pub effects: Vec<Effect>,
    /// False when the command was addressed to an earlier step entry: nothing to persist.
    pub changed: bool,
}

/// Applies `cmd` to `state` (mutated in place on success; callers apply to a copy).
pub fn apply(
    def: &WorkflowDefinition,
    state: &mut InstanceState,
    cmd: Command,
    ctx: &mut Ctx<'_>,
) -> Result<Applied, Error> {
    let mut m = Machine {
        def,
        state,
        ctx,
        out: Applied {
            changed: true,
            ..Applied::default()
        },
    };
    m.command(cmd)?;
    Ok(m.out)
}

struct Machine<'a, 'c> {
    def: &'a WorkflowDefinition,
    state: &'a mut InstanceState,
    ctx: &'a mut Ctx<'c>,
    out: Applied,
}

impl Machine<'_, '_> {
    fn command(&mut self, cmd: Command) -> Result<(), Error> {
        if let Command::Start { input, actor } = cmd {
            if self.state.step.is_some() {
                return Err(Error::AlreadyStarted);
            }
            self.event(
                "started",
                &actor,
                json!({ "workflow": self.def.id, "version": self.def.version }),
            );
            self.state.data.insert("input".to_owned(), input);
            return self.enter(&self.def.start.clone());
        }
        match cmd {
            Command::Cancel {
                actor,
                reason,
                by_parent,
            } => return self.cancel(&actor, &reason, by_parent),
            Command::Resume { actor } => return self.resume(&actor),
            _ => {}
        }
        if self.state.status != Status::Running {
            return match cmd {
                Command::Decide { task_id, .. } => Err(Error::TaskClosed(task_id)),
                Command::ExternalEvent { .. } => {
                    Err(Error::NotRunning(self.state.status.label().to_owned()))
                }
                _ => self.stale(),
            };
        }
        match cmd {
            Command::Start { .. } => Err(Error::AlreadyStarted),
            Command::Cancel { .. } | Command::Resume { .. } => self.stale(),
            Command::StepCompleted {
                seq,
                outcome,
                output,
            } => {
                if seq != self.state.seq {
                    return self.stale();
                }
                let step = self.current_id();
                self.event(
                    "step_completed",
                    &Actor::system(),
                    json!({ "step": step, "outcome": outcome, "output": output }),
                );
                self.put_step_output(&step, output);
                self.follow(&outcome)
            }
            Command::StepFailed { seq, error } => {
                if seq != self.state.seq {
                    return self.stale();
                }
                let step = self.current_id();
                if self.current()?.on.contains_key("failed") {
                    self.event(
                        "step_failed",
                        &Actor::system(),
                        json!({ "step": step, "error": error }),
                    );
                    return self.follow("failed");
                }
                self.fail(error.clone(), json!({ "step": step, "error": error }));
                Ok(())
            }
            Command::Decide {
                task_id,
                decision,
                reason,
                actor,
                data,
            } => self.decide(task_id, decision, reason, actor, data),
            Command::ExternalEvent {
                name,
                correlation,
                payload,
                actor,
            } => {
                let replaces_input = match &self.current()?.kind {
                    StepKind::WaitEvent {
                        event,
                        replaces_input,
                        ..
                    } if *event == name => *replaces_input,
                    _ => return Err(Error::EventNotExpected(name)),
                };
                let open = self.open_correlation();
                if correlation != open {
                    return Err(Error::WaitClosed {
                        event: name,
                        correlation,
                        open,
                    });
                }
                self.event(
                    "event_received",
                    &actor,
                    json!({ "event": name, "correlation": correlation, "payload": payload }),
                );
                if replaces_input {
                    // Notifications from here on go to the contact the new input names.
                    if let Some(party) = party_in(&payload) {
                        self.state.party = Some(party);
                    }
                    self.state.data.insert("input".to_owned(), payload.clone());
                }
                let events = self.state.data.entry("events").or_insert_with(|| json!({}));
                if let Some(map) = events.as_object_mut() {
                    map.insert(name, payload);
                }
                self.follow("received")
            }
            Command::TimerFired { seq, timer } => {
                if seq != self.state.seq {
                    return self.stale();
                }
                self.timer(timer)
            }
            Command::ChildFinished {
                seq,
                child_id,
                status,
            } => self.child_finished(seq, child_id, status),
        }
    }

    /// The correlation id of the open wait (the entry's seq for a wait recorded without one).
    fn open_correlation(&self) -> String {
        self.state
            .wait
            .as_ref()
            .map_or_else(|| self.state.seq.to_string(), |w| w.correlation.clone())
    }

    fn stale(&mut self) -> Result<(), Error> {
        self.out.changed = false;
        Ok(())
    }

    fn current_id(&self) -> String {
        self.state.step.clone().unwrap_or_default()
    }

    fn current(&self) -> Result<&Step, Error> {
        let id = self.current_id();
        self.def.step(&id).ok_or(Error::MissingStep(id))
    }

    /// A value of the instance's data as a correlation id (strings as they are, numbers in
    /// decimal); `None` when the pointer finds nothing usable.
    pub(super) fn state_pointer(&self, pointer: &str) -> Option<String> {
        let (head, rest) = pointer
            .trim_start_matches('/')
            .split_once('/')
            .map_or((pointer.trim_start_matches('/'), ""), |(h, r)| (h, r));
        let root = self.state.data.get(head)?;
        let value = if rest.is_empty() {
            root
        } else {
            root.pointer(&format!("/{rest}"))?
        };
        match value {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    fn put_step_output(&mut self, step: &str, output: Value) {
        if output.is_null() {
            return;
        }
        let steps = self.state.data.entry("steps").or_insert_with(|| json!({}));
        if let Some(map) = steps.as_object_mut() {
            map.insert(step.to_owned(), output);
        }
    }

    fn event(&mut self, kind: &str, actor: &Actor, payload: Value) {
        self.out.events.push(Event {
            kind: kind.to_owned(),
            actor: actor.id.clone(),
            at: self.ctx.now,
            payload,
        });
    }

    /// Leaves the current step by `outcome`.
    fn follow(&mut self, outcome: &str) -> Result<(), Error> {
        let step = self.current()?;
        let transition = step
            .on
            .get(outcome)
            .ok_or_else(|| Error::NoTransition {
                step: step.id.clone(),
                outcome: outcome.to_owned(),
            })?
            .clone();
        self.leave(outcome)?;
        self.post(&transition.post)?;
        self.notify_all(&transition.notify, outcome);
        self.enter(&transition.to)
    }

    fn notify_all(&mut self, specs: &[NotifySpec], cause: &str) {
        for (i, spec) in specs.iter().enumerate() {
            let key = format!(
                "{}:{}:{cause}:{i}:{}",
                self.state.id, self.state.seq, spec.template
            );
            self.out.effects.push(Effect::Notify {
                spec: spec.clone(),
                key,
            });
        }
    }

    fn due(&mut self, spec: TimerSpec) -> Due {
        match spec {
            TimerSpec::After(span) => span.after(self.ctx.now, None, self.ctx.calendar),
            TimerSpec::Annual { month, day, time } => Due {
                at: self
                    .ctx
                    .calendar
                    .next_annual(self.ctx.now, month, day, time),
                beyond_calendar: false,
            },
        }
    }

    fn schedule(&mut self, kind: TimerKind, due: Due) {
        if due.beyond_calendar {
            self.event(
                "calendar_exceeded",
                &Actor::system(),
                json!({ "timer": kind, "due_at": due.at }),
            );
        }
        self.out.effects.push(Effect::ScheduleTimer {
            seq: self.state.seq,
            kind,
            due,
        });
    }

    fn enter(&mut self, id: &str) -> Result<(), Error> {
        let step = self
            .def
            .step(id)
            .ok_or_else(|| Error::MissingStep(id.to_owned()))?
            .clone();
        self.state.seq += 1;
        self.state.step = Some(id.to_owned());
        let seq = self.state.seq;
        self.event(
            "step_entered",
            &Actor::system(),
            json!({ "step": id, "seq": seq }),
        );
        self.post(&step.post)?;
        self.notify_all(&step.notify, "enter");
        match &step.kind {
            StepKind::Automated { handler, .. } => {
                self.out.effects.push(Effect::RunStep {
                    seq,
                    step: id.to_owned(),
                    handler: handler.clone(),
                });
            }
            StepKind::Human(h) => self.open_task(&step, h),
            StepKind::Timer { fires } => {
                let due = self.due(*fires);
                self.schedule(TimerKind::Elapsed, due);
            }
            StepKind::WaitEvent {
                event,
                correlate,
                timeout,
                ..
            } => {
                let correlation = correlate
                    .as_deref()
                    .and_then(|p| self.state_pointer(p))
                    .unwrap_or_else(|| seq.to_string());
                self.state.wait = Some(OpenWait {
                    step: id.to_owned(),
                    event: event.clone(),
                    correlation: correlation.clone(),
                });
                self.event(
                    "wait_opened",
                    &Actor::system(),
                    json!({ "step": id, "event": event, "correlation": correlation }),
                );
                if let Some(t) = timeout {
                    let due = self.due(*t);
                    self.schedule(TimerKind::Timeout, due);
                }
            }
            StepKind::Child { workflow, deadline } => {
                let child_id = (self.ctx.new_id)();
                let input = json!({
                    "parent": self.state.data.get("input").cloned().unwrap_or(Value::Null),
                    "steps": self.state.data.get("steps").cloned().unwrap_or(Value::Null),
                });
                self.state.child = Some(child_id);
                self.out.effects.push(Effect::StartChild {
                    child_id,
                    workflow: workflow.clone(),
                    business_key: format!("{}/{id}/{seq}", self.state.business_key),
                    input,
                    parent: ParentRef {
                        instance_id: self.state.id,
                        seq,
                    },
                });
                self.event(
                    "child_started",
                    &Actor::system(),
                    json!({ "child": child_id, "workflow": workflow }),
                );
                if let Some(t) = deadline {
                    let due = self.due(*t);
                    self.schedule(TimerKind::Timeout, due);
                }
            }
            StepKind::End { status } => {
                self.state.status = Status::Finished(status.clone());
                self.event("finished", &Actor::system(), json!({ "status": status }));
                self.tell_parent(status);
            }
        }
        Ok(())
    }
}

/// Whether entering a step of this kind schedules timers that leaving it must cancel.
fn step_has_timers(kind: &StepKind) -> bool {
    match kind {
        StepKind::Human(_) | StepKind::Timer { .. } => true,
        StepKind::WaitEvent { timeout, .. } => timeout.is_some(),
        StepKind::Child { deadline, .. } => deadline.is_some(),
        StepKind::Automated { .. } | StepKind::End { .. } => false,
    }
}

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;
