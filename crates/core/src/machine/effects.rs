//! What the machine asks the world to do, and what it records.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::ParentRef;
use crate::calendar::Due;
use crate::definition::{NotifySpec, Recipient};

/// An audit event, appended to the instance's hash chain.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    pub kind: String,
    pub actor: String,
    pub at: DateTime<Utc>,
    pub payload: Value,
}

/// Why a timer exists. Stored with the timer and handed back when it fires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TimerKind {
    /// The n-th reminder of the human step's ladder.
    Remind { index: usize },
    /// The n-th escalation of the human step's ladder.
    Escalate { index: usize, to: Recipient },
    /// The SLA is breached.
    Breach,
    /// The SLA ran out: apply the step's silence policy.
    Silence,
    /// A wait or a child step ran out of time.
    Timeout,
    /// A timer step elapsed.
    Elapsed,
}

/// A side effect, persisted in the same transaction as the transition that causes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// Run an automated step's handler (an outbox job).
    RunStep {
        seq: u64,
        step: String,
        handler: String,
    },
    /// Open a human task.
    OpenTask {
        task_id: Uuid,
        seq: u64,
        step: String,
        role: String,
        due: Due,
    },
    /// Close the open task with the outcome that left the step.
    CloseTask { task_id: Uuid, outcome: String },
    /// Record that a task was escalated (shown on SLA clocks).
    EscalateTask { task_id: Uuid, level: usize },
    /// Record the person a task is now assigned to.
    AssignTask { task_id: Uuid, person: String },
    /// Schedule a timer for the current step entry.
    ScheduleTimer { seq: u64, kind: TimerKind, due: Due },
    /// Cancel every pending timer of a step entry.
    CancelTimers { seq: u64 },
    /// Send a notification (an outbox job), deduplicated by `key`.
    Notify { spec: NotifySpec, key: String },
    /// Start a child workflow in the same transaction.
    StartChild {
        child_id: Uuid,
        workflow: String,
        business_key: String,
        input: Value,
        parent: ParentRef,
    },
    /// Post to the ledger in the same transaction; a posting the account's balance refuses
    /// (a reservation above the quota) refuses the whole transition. `step` and `seq` name the
    /// step entry that made the postings (the one entered, or the one a transition leaves).
    Post {
        seq: u64,
        step: Option<String>,
        postings: Vec<crate::ledger::Posting>,
    },
    /// Record facts about the instance's partner (`business_info = certified`) in the same
    /// transaction; a later fact of the same name replaces the earlier.
    RecordStanding {
        partner: String,
        facts: std::collections::BTreeMap<String, String>,
    },
    /// Cancel a child this instance no longer waits for, in the same transaction.
    CancelChild { child_id: Uuid },
    /// Tell the waiting parent this instance finished, in the same transaction.
    NotifyParent { parent: ParentRef, status: String },
}
