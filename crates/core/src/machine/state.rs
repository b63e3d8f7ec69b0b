//! What the state machine works on and answers with: an instance's state, the commands, the
//! context the world passes in, the refusals, and the result of applying a command.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::Event;
use super::TimerKind;
use super::effects::Effect;
use crate::calendar::{BusinessCalendar, Due};
use crate::definition::WorkflowDefinition;
use crate::directory::Directory;
use crate::validation::FieldError;

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

    /// The value at a JSON pointer into the instance's data (`/input/budget`,
    /// `/steps/next_milestone/amount`), as definitions and step params name values.
    pub fn value_at(&self, pointer: &str) -> Option<&Value> {
        let path = pointer.trim_start_matches('/');
        let (head, rest) = path.split_once('/').unwrap_or((path, ""));
        let root = self.data.get(head)?;
        if rest.is_empty() {
            Some(root)
        } else {
            root.pointer(&format!("/{rest}"))
        }
    }

    /// A definition's template filled in for this instance: `{partner}` is its partner,
    /// `{instance}` its id, `{/pointer}` a text or number of its data (ledger accounts such as
    /// `mdf:{partner}:2026`, payable ids such as `nre:{instance}:{/steps/next_milestone/number}`).
    /// Fails with the name of the first placeholder the instance cannot fill.
    pub fn fill(&self, template: &str) -> Result<String, String> {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let Some(close) = rest[open..].find('}') else {
                return Err(rest[open..].to_owned());
            };
            let name = &rest[open + 1..open + close];
            let value = match name {
                "partner" => self.partner_id.clone(),
                "instance" => Some(self.id.to_string()),
                pointer => match self.value_at(pointer) {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Number(n)) => Some(n.to_string()),
                    _ => None,
                },
            };
            match value.filter(|v| !v.is_empty()) {
                Some(v) => out.push_str(&v),
                None => return Err(name.to_owned()),
            }
            rest = &rest[open + close + 1..];
        }
        out.push_str(rest);
        Ok(out)
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
    /// The person the task was assigned to by an operator; none: the role's queue.
    #[serde(default)]
    pub assignee: Option<String>,
    /// The task's SLA ladder runs on one timer: each rung, when it fires, schedules the next.
    /// False for tasks opened before, whose rungs were all scheduled when they opened.
    #[serde(default)]
    pub chained_timers: bool,
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
        /// How the decision reached us when it is not a signed call (a signed link's who,
        /// when, IP and user agent), recorded on the decision event.
        evidence: Option<Value>,
    },
    /// An operator assigns the open task to a person (who must be able to decide it).
    Reassign {
        task_id: Uuid,
        person: String,
        actor: Actor,
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
