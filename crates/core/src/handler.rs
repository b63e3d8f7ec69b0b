//! The contract between the engine and the step handlers in `workers/`.
//!
//! A handler gets a snapshot of the instance and returns an outcome (a transition name) and an
//! output stored under `steps.<step>`. It says whether a failure is worth retrying; the engine
//! decides when, through the outbox. Validators check input at the edge (a start, an event)
//! and return every problem at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use crate::calendar::BusinessCalendar;
use crate::definition::Registry;
use crate::machine::InstanceState;
use crate::programme::Programme;
use crate::validation::{FieldError, RecordFacts};

/// What a handler sees.
#[derive(Debug, Clone)]
pub struct StepContext {
    pub instance: InstanceState,
    pub step: String,
    /// `instance:seq:step`: the same for every attempt of this step entry, so a handler's own
    /// external calls (a provider that accepts an idempotency key) are never repeated as new.
    pub idempotency_key: String,
    /// The step's `params` from its definition (`Null` when it has none).
    pub params: Value,
    pub now: DateTime<Utc>,
    pub calendar: Arc<BusinessCalendar>,
    pub programme: Arc<Programme>,
}

/// A handler's result: the outcome names the transition to follow.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutput {
    pub outcome: String,
    pub output: Value,
}

impl StepOutput {
    pub fn new(outcome: &str, output: Value) -> Self {
        StepOutput {
            outcome: outcome.to_owned(),
            output,
        }
    }
}

/// Why a handler failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HandlerError {
    /// Worth another attempt (a provider timed out).
    #[error("retryable: {0}")]
    Retryable(String),
    /// The provider has not decided yet (a person must act on its side): asked again at the
    /// step's `poll_every` until its `poll_for` deadline; a step without polling retries it
    /// like a retryable failure.
    #[error("pending: {0}")]
    Pending(String),
    /// Will fail the same way every time (bad data); never retried.
    #[error("fatal: {0}")]
    Fatal(String),
}

#[async_trait::async_trait]
pub trait StepHandler: Send + Sync + 'static {
    async fn run(&self, ctx: StepContext) -> Result<StepOutput, HandlerError>;
}

/// What a validator may consult besides the input itself.
#[derive(Debug, Clone, Copy)]
pub struct ValidationContext<'a> {
    pub programme: &'a Programme,
    /// The programme's business calendar (working-day rules such as MDF lateness).
    pub calendar: &'a BusinessCalendar,
    /// Today in the programme's time zone.
    pub today: NaiveDate,
    /// The instance the input is for (absent for a start).
    pub instance: Option<&'a InstanceState>,
    /// What the record says about what the input names (attachments, the partner's standing,
    /// its other instances when the validator compares).
    pub facts: &'a RecordFacts,
}

/// Checks and normalises input (a start's, an event's payload, a decision's data); returns
/// every failing field.
pub type Validator = fn(&Value, &ValidationContext<'_>) -> Result<Value, Vec<FieldError>>;

/// What a validator needs loaded besides the attachments its input names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// The partner's standing (a gate such as business certification).
    pub standing: bool,
    /// The partner's other instances of the workflow (a duplicate check).
    pub siblings: bool,
}

/// Handlers and validators by name, as definitions refer to them.
#[derive(Clone, Default)]
pub struct HandlerRegistry {
    handlers: BTreeMap<String, Arc<dyn StepHandler>>,
    validators: BTreeMap<String, (Validator, Needs)>,
}

impl std::fmt::Debug for HandlerRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandlerRegistry")
            .field("handlers", &self.handlers.keys().collect::<Vec<_>>())
            .field("validators", &self.validators.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl HandlerRegistry {
    pub fn handler(mut self, name: &str, h: impl StepHandler) -> Self {
        self.handlers.insert(name.to_owned(), Arc::new(h));
        self
    }

    pub fn validator(self, name: &str, v: Validator) -> Self {
        self.validator_needing(name, v, Needs::default())
    }

    /// A validator that consults more of the record than the attachments it names.
    pub fn validator_needing(mut self, name: &str, v: Validator, needs: Needs) -> Self {
        self.validators.insert(name.to_owned(), (v, needs));
        self
    }

    pub fn get_handler(&self, name: &str) -> Option<Arc<dyn StepHandler>> {
        self.handlers.get(name).cloned()
    }

    pub fn get_validator(&self, name: &str) -> Option<(Validator, Needs)> {
        self.validators.get(name).copied()
    }
}

impl Registry for HandlerRegistry {
    fn has_handler(&self, name: &str) -> bool {
        self.handlers.contains_key(name)
    }

    fn has_validator(&self, name: &str) -> bool {
        self.validators.contains_key(name)
    }
}
