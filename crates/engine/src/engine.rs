//! The [`Engine`] handle: its parts, settings, errors, definitions and validators. The commands
//! it answers are in `commands`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use partnerflow_core::BusinessCalendar;
use partnerflow_core::definition::{DefinitionError, WorkflowDefinition};
use partnerflow_core::directory::Directory;
use partnerflow_core::handler::{HandlerRegistry, ValidationContext};
use partnerflow_core::machine::{self, InstanceState};
use partnerflow_core::programme::Programme;
use partnerflow_core::validation::{FieldError, RecordFacts};
use partnerflow_notify::Notifier;
use partnerflow_store::{Store, definitions, instances};
use serde_json::Value;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::clock::Clock;
use crate::facts::Subject;
use crate::queue::Queue;

/// Errors of the engine, in the categories the API maps to status codes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not found: {0}")]
    NotFound(String),
    /// Input failed validation; every failing field is listed. Nothing was stored.
    #[error("invalid input: {} problem(s)", .0.len())]
    Invalid(Vec<FieldError>),
    /// The state machine refused the command. Nothing changed.
    #[error(transparent)]
    Refused(#[from] machine::Error),
    /// The Idempotency-Key was used before with a different request.
    #[error("idempotency key `{0}` was already used with a different request")]
    KeyReused(String),
    /// A row with the same unique key exists.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The outbox row or timer behind a result was finished by someone else first: the result
    /// was discarded and nothing changed.
    #[error("superseded: {0}")]
    Superseded(String),
    /// The instance kept changing under concurrent writers, even after retries.
    #[error("the instance changed concurrently: {0}")]
    Stale(String),
    /// Definitions failed to load.
    #[error("definitions: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Definitions(Vec<DefinitionError>),
    /// The signed link was used (or ran out) while its decision was being made.
    #[error("the link was used already")]
    LinkUsed,
    /// The database failed (unreachable, or an unexpected error).
    #[error(transparent)]
    Store(partnerflow_store::Error),
}

impl From<partnerflow_store::Error> for Error {
    fn from(e: partnerflow_store::Error) -> Self {
        match e {
            partnerflow_store::Error::Conflict(msg) => Error::Conflict(msg),
            partnerflow_store::Error::Stale(msg) => Error::Stale(msg),
            partnerflow_store::Error::NotFound(what) => Error::NotFound(what),
            // A posting the balance refuses is bad input, refused with its field: nothing of
            // the transition was kept.
            partnerflow_store::Error::Ledger(l) => Error::Invalid(vec![l.field_error()]),
            other => Error::Store(other),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Tunables of the engine, all with defaults that suit the embedded mode.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a worker's lease on an outbox row (renewed while the work runs) or a sweeper's
    /// claim on a timer lasts before another may take it.
    pub lease: Duration,
    /// How long a row pushed to the queue may wait there before it is pushed again (the queue
    /// lost it: a Redis restart, a FLUSHALL).
    pub redispatch: Duration,
    /// Rows claimed per dispatcher or sweeper round.
    pub batch: i64,
    /// Idle poll interval of the dispatcher and sweeper (they are also woken on commit).
    pub poll: Duration,
    /// Delivery attempts of a notification before the row is buried.
    pub notify_attempts: i64,
    /// First retry delay; doubled per failure.
    pub retry_base: Duration,
    /// The keys the audit chain is tagged with.
    pub audit: partnerflow_core::audit::AuditKeys,
    /// How long delivery rows are kept.
    pub retention: Retention,
    /// Where uploaded attachments are kept.
    pub attachments_dir: std::path::PathBuf,
    /// Most single-instance transitions committed in one transaction (group commit); 1 commits
    /// each alone.
    pub group_commit: usize,
}

/// How long rows that only served delivery are kept before the janitor deletes them.
#[derive(Debug, Clone)]
pub struct Retention {
    /// Completed outbox rows.
    pub done_outbox: Duration,
    /// Fired and cancelled timers.
    pub closed_timers: Duration,
    /// Stored answers of Idempotency-Keys: a replay after this starts afresh.
    pub idempotency_keys: Duration,
    /// Rows deleted per statement.
    pub batch: i64,
    /// How often the janitor runs.
    pub every: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        const DAY: u64 = 24 * 3600;
        Retention {
            done_outbox: Duration::from_secs(7 * DAY),
            closed_timers: Duration::from_secs(7 * DAY),
            idempotency_keys: Duration::from_secs(30 * DAY),
            batch: 1000,
            every: Duration::from_secs(3600),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            lease: Duration::from_secs(30),
            redispatch: Duration::from_secs(60),
            batch: 256,
            poll: Duration::from_millis(200),
            notify_attempts: 8,
            retry_base: Duration::from_secs(1),
            audit: partnerflow_core::audit::AuditKeys::development(),
            retention: Retention::default(),
            attachments_dir: std::env::temp_dir().join("partnerflow-attachments"),
            group_commit: 32,
        }
    }
}

impl Engine {
    /// Checks the templates against every loaded definition and the engine's own task
    /// notifications: each must exist in every language and use only known variables.
    pub fn check_templates(&self) -> std::result::Result<(), Vec<String>> {
        let defs: Vec<Arc<WorkflowDefinition>> = self
            .inner
            .definitions
            .read()
            .map(|d| d.values().cloned().collect())
            .unwrap_or_default();
        let mut names: std::collections::BTreeSet<String> = crate::reach::BUILT_IN_TEMPLATES
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        for d in &defs {
            names.extend(d.templates().into_iter().map(str::to_owned));
        }
        self.inner
            .reach
            .templates
            .check(names.iter().map(String::as_str))
    }
}

/// Everything an engine is built from.
pub struct EngineParts {
    pub store: Store,
    pub queue: Arc<dyn Queue>,
    pub notifier: Arc<dyn Notifier>,
    pub clock: Arc<dyn Clock>,
    pub registry: HandlerRegistry,
    pub calendar: Arc<BusinessCalendar>,
    pub directory: Arc<Directory>,
    pub programme: Arc<Programme>,
    pub settings: Settings,
    pub reach: crate::Reach,
}

/// A request's Idempotency-Key and a hash of its body.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub key: String,
    pub request_hash: String,
}

/// The answer to a start.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Started {
    pub id: Uuid,
    pub workflow_id: String,
    pub version: u32,
    pub status: String,
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) queue: Arc<dyn Queue>,
    pub(crate) notifier: Arc<dyn Notifier>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) registry: HandlerRegistry,
    pub(crate) calendar: Arc<BusinessCalendar>,
    pub(crate) directory: Arc<Directory>,
    pub(crate) programme: Arc<Programme>,
    pub(crate) settings: Settings,
    pub(crate) reach: crate::Reach,
    /// Every known (workflow, version), and the version new instances start on.
    pub(crate) definitions: RwLock<HashMap<(String, u32), Arc<WorkflowDefinition>>>,
    pub(crate) latest: RwLock<HashMap<String, u32>>,
    /// Woken after every commit that wrote outbox rows or timers.
    pub(crate) wake_dispatcher: Notify,
    /// Woken after a commit that scheduled a timer due within the poll interval.
    pub(crate) wake_sweeper: Notify,
    /// Never woken: the janitor runs on its interval only.
    pub(crate) wake_janitor: Notify,
    /// Whether this process runs a dispatcher, a sweeper: when it does not, a commit that
    /// leaves them work wakes the other processes' (`store::wake`).
    pub(crate) dispatching: std::sync::atomic::AtomicBool,
    pub(crate) sweeping: std::sync::atomic::AtomicBool,
    /// The delegations made through the API, as last read, and when: read at most once a
    /// second (a delegation made in another process counts within a second), and again at
    /// once after this process made or revoked one.
    pub(crate) delegations: std::sync::Mutex<
        Option<(
            std::time::Instant,
            Arc<Vec<partnerflow_core::directory::Delegation>>,
        )>,
    >,
    /// Committed task openings and finishes, for in-process listeners (bench, dashboards).
    pub(crate) notices: tokio::sync::broadcast::Sender<Notice>,
    /// The group commit's writers and their counts.
    pub(crate) groups: crate::group::Groups,
}

/// Something a listener in this process may want to react to, sent after commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    TaskOpened { instance_id: Uuid, task_id: Uuid },
    Finished { instance_id: Uuid, status: String },
}

impl Notice {
    pub(crate) fn from_event(
        instance_id: Uuid,
        e: &partnerflow_core::machine::Event,
    ) -> Option<Self> {
        match e.kind.as_str() {
            "task_opened" => {
                let task_id = e.payload.get("task")?.as_str()?.parse().ok()?;
                Some(Notice::TaskOpened {
                    instance_id,
                    task_id,
                })
            }
            "finished" => Some(Notice::Finished {
                instance_id,
                status: e.payload.get("status")?.as_str()?.to_owned(),
            }),
            _ => None,
        }
    }
}

/// A cheap, cloneable handle to the engine.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("backend", &self.inner.store.backend)
            .finish_non_exhaustive()
    }
}

impl Engine {
    pub fn new(parts: EngineParts) -> Self {
        Engine {
            inner: Arc::new(Inner {
                store: parts.store,
                queue: parts.queue,
                notifier: parts.notifier,
                reach: parts.reach,
                clock: parts.clock,
                registry: parts.registry,
                calendar: parts.calendar,
                directory: parts.directory,
                programme: parts.programme,
                settings: parts.settings,
                definitions: RwLock::new(HashMap::new()),
                latest: RwLock::new(HashMap::new()),
                delegations: std::sync::Mutex::new(None),
                wake_dispatcher: Notify::new(),
                wake_sweeper: Notify::new(),
                wake_janitor: Notify::new(),
                dispatching: std::sync::atomic::AtomicBool::new(false),
                sweeping: std::sync::atomic::AtomicBool::new(false),
                notices: tokio::sync::broadcast::channel(16 * 1024).0,
                groups: crate::group::Groups::default(),
            }),
        }
    }

    /// A pooled connection for reads and single statements outside a transition.
    pub(crate) async fn conn(&self) -> Result<partnerflow_store::PooledConn> {
        Ok(self.inner.store.acquire().await?)
    }

    /// Task openings and finishes committed by this process from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Notice> {
        self.inner.notices.subscribe()
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn calendar(&self) -> &BusinessCalendar {
        &self.inner.calendar
    }

    pub fn programme(&self) -> &Programme {
        &self.inner.programme
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.clock.now()
    }

    /// Loads the current definitions (as `(file name, text)`), registers their versions in the
    /// record, and loads every older version running instances may still be on.
    pub async fn load_definitions(&self, files: &[(String, String)]) -> Result<()> {
        let mut errors = Vec::new();
        let mut current = Vec::new();
        for (file, text) in files {
            let overrides = Some(&self.inner.programme.workflows);
            match WorkflowDefinition::parse(file, text, overrides, &self.inner.registry) {
                Ok(def) => current.push(def),
                Err(e) => errors.extend(e),
            }
        }
        if !errors.is_empty() {
            return Err(Error::Definitions(errors));
        }
        let known: Vec<&str> = current.iter().map(|d| d.id.as_str()).collect();
        for def in &current {
            for child in def.child_workflows() {
                if !known.contains(&child) {
                    return Err(Error::Definitions(vec![DefinitionError {
                        file: def.id.clone(),
                        step: None,
                        rule: "unknown-workflow",
                        message: format!("child workflow `{child}` is not defined"),
                    }]));
                }
            }
        }
        let mut conn = self.conn().await?;
        let now = self.now();
        for def in &current {
            let stored = definitions::Stored {
                workflow_id: def.id.clone(),
                version: def.version,
                fingerprint: def.fingerprint.clone(),
                source: def.source.clone(),
            };
            definitions::register(&mut conn, &stored, now).await?;
        }
        let mut all = HashMap::new();
        for stored in definitions::all(&mut conn).await? {
            let def = WorkflowDefinition::parse(
                &format!("{}@v{}", stored.workflow_id, stored.version),
                &stored.source,
                None,
                &self.inner.registry,
            )
            .map_err(Error::Definitions)?;
            all.insert((def.id.clone(), def.version), Arc::new(def));
        }
        let mut latest = HashMap::new();
        for def in current {
            latest.insert(def.id.clone(), def.version);
        }
        *self
            .inner
            .definitions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = all;
        *self
            .inner
            .latest
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = latest;
        Ok(())
    }

    pub(crate) fn definition(
        &self,
        workflow_id: &str,
        version: u32,
    ) -> Result<Arc<WorkflowDefinition>> {
        self.inner
            .definitions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(workflow_id.to_owned(), version))
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("workflow {workflow_id} version {version}")))
    }

    pub(crate) fn latest(&self, workflow_id: &str) -> Result<Arc<WorkflowDefinition>> {
        let version = self
            .inner
            .latest
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(workflow_id)
            .copied()
            .ok_or_else(|| Error::NotFound(format!("workflow {workflow_id}")))?;
        self.definition(workflow_id, version)
    }

    /// The partner an instance belongs to (for a partner-side caller's scope).
    pub async fn partner_of(&self, instance_id: Uuid) -> Result<Option<String>> {
        let mut conn = self.conn().await?;
        instances::partner_of(&mut conn, instance_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("instance {instance_id}")))
    }

    pub fn directory(&self) -> &Directory {
        &self.inner.directory
    }

    /// Runs a named validator over input, with the facts it consults loaded first; unknown
    /// validators are a definition error caught at load.
    pub(crate) async fn validate(
        &self,
        validator: Option<&str>,
        input: &Value,
        instance: Option<&InstanceState>,
        subject: Subject<'_>,
    ) -> Result<Value> {
        let Some(name) = validator else {
            return Ok(input.clone());
        };
        // Most inputs consult nothing of the record: no connection is taken for them.
        let facts = if self.consults_record(name, input, subject) {
            let mut conn = self.conn().await?;
            self.facts_for(&mut conn, name, input, subject).await?
        } else {
            RecordFacts {
                partner: subject.partner.map(str::to_owned),
                ..RecordFacts::default()
            }
        };
        self.validate_with(name, input, instance, &facts)
            .map_err(Error::Invalid)
    }

    /// Runs a named validator over input with the facts already loaded (the hook the state
    /// machine calls for a decision's data, with facts read in the transition's transaction).
    pub(crate) fn validate_with(
        &self,
        name: &str,
        input: &Value,
        instance: Option<&InstanceState>,
        facts: &RecordFacts,
    ) -> Result<Value, Vec<FieldError>> {
        let Some((v, _)) = self.inner.registry.get_validator(name) else {
            return Err(vec![FieldError {
                field: String::new(),
                rule: "validator".to_owned(),
                message: format!("validator {name} is not registered"),
            }]);
        };
        let today = self
            .now()
            .with_timezone(&self.inner.calendar.timezone())
            .date_naive();
        let ctx = ValidationContext {
            programme: &self.inner.programme,
            calendar: &self.inner.calendar,
            today,
            instance,
            facts,
        };
        v(input, &ctx)
    }
}

pub(crate) fn started(s: &InstanceState) -> Started {
    Started {
        id: s.id,
        workflow_id: s.workflow_id.clone(),
        version: s.version,
        status: s.status.label().to_owned(),
    }
}
