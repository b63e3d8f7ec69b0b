//! One command → one transaction: version check, audit events, tasks, timers and outbox rows,
//! and — in the same transaction — the starts of child workflows and the resumption of a
//! waiting parent, so a parent/child hand-over can never be half done.

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use partnerflow_core::machine::{self, Command, Ctx, InstanceState};
use partnerflow_store::{Conn, idempotency, instances, outbox, tasks, timers};
use serde_json::Value;
use uuid::Uuid;

use crate::effects::{Deferred, Pending};
use crate::engine::{Engine, Error, Idempotency, Notice, Result, Started, started};
use crate::group::Reply;

/// What else commits with the transition.
#[derive(Debug, Default, Clone)]
pub(crate) struct Also {
    /// The outbox row whose work this transition completes, under the worker's lease.
    pub(crate) outbox_done: Option<outbox::Lease>,
    /// The timers this transition fires (one, or a sweep's group).
    pub(crate) timers_fired: Vec<i64>,
    /// The answer to store under the request's Idempotency-Key.
    pub(crate) idem: Option<(String, Idempotency)>,
    /// The instance as the caller just read it: the first attempt works from it instead of
    /// reading again (the version check still catches a concurrent writer).
    pub(crate) preloaded: Option<instances::Stored>,
    /// The signed link (its token's hash) this transition's decision uses up.
    pub(crate) link_used: Option<(String, crate::links::LinkEvidence)>,
}

impl Also {
    pub(crate) fn idem(mut self, idem: Option<(String, Idempotency)>) -> Self {
        self.idem = idem;
        self
    }
}

/// Which loops a committed transition should wake.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Woke {
    pub(crate) jobs: bool,
    pub(crate) timers: bool,
}

impl std::ops::BitOrAssign for Woke {
    fn bitor_assign(&mut self, other: Self) {
        self.jobs |= other.jobs;
        self.timers |= other.timers;
    }
}

#[derive(Clone)]
pub(crate) enum Target {
    Existing(Uuid),
    Loaded(Box<instances::Stored>),
    New(Box<InstanceState>),
}

/// Events of one committed instance that metrics count: (workflow, status after, events).
type Tally = (String, String, Vec<partnerflow_core::machine::Event>);

/// The audit events `Engine::count_events` counts.
const COUNTED: &[&str] = &[
    "started",
    "finished",
    "failed",
    "cancelled",
    "reminder",
    "escalated",
    "sla_breached",
];

/// Version conflicts are retried this many times before the caller sees one.
const MAX_ATTEMPTS: u32 = 8;

impl Engine {
    /// Applies `cmd` to an existing instance; returns its state after the transition.
    pub(crate) async fn apply(&self, id: Uuid, cmd: Command, also: Also) -> Result<InstanceState> {
        self.apply_storing(id, cmd, also, Arc::new(|_: &InstanceState| Value::Null))
            .await
    }

    /// Applies `cmd` and answers with `reply` of the new state; the same answer is stored under
    /// the request's Idempotency-Key in the same transaction.
    pub(crate) async fn apply_answering(
        &self,
        id: Uuid,
        cmd: Command,
        also: Also,
        reply: impl Fn(&InstanceState) -> Value + Send + Sync + 'static,
    ) -> Result<Value> {
        let reply: Reply = Arc::new(reply);
        let state = self.apply_storing(id, cmd, also, reply.clone()).await?;
        Ok(reply(&state))
    }

    /// Applies `cmd` to an existing instance, storing `reply` under the Idempotency-Key if any.
    /// The first attempt works from the preloaded instance, if the caller has one.
    async fn apply_storing(
        &self,
        id: Uuid,
        cmd: Command,
        also: Also,
        reply: Reply,
    ) -> Result<InstanceState> {
        let target = |attempt| match also.preloaded.as_ref().filter(|_| attempt == 1) {
            Some(stored) => Target::Loaded(Box::new(stored.clone())),
            None => Target::Existing(id),
        };
        self.transact(target, cmd, &also, reply).await
    }

    /// Creates an instance and applies its first command.
    pub(crate) async fn create(
        &self,
        state: InstanceState,
        cmd: Command,
        idem: Option<(String, Idempotency)>,
    ) -> Result<Started> {
        let also = Also::default().idem(idem);
        let state = self
            .transact(
                |_| Target::New(Box::new(state.clone())),
                cmd,
                &also,
                Arc::new(|s: &InstanceState| {
                    serde_json::to_value(started(s)).unwrap_or(Value::Null)
                }),
            )
            .await?;
        Ok(started(&state))
    }

    /// One command: through a group commit when it is on, else (or when the group hands it
    /// back) in a transaction of its own.
    async fn transact(
        &self,
        target: impl Fn(u32) -> Target,
        cmd: Command,
        also: &Also,
        reply: Reply,
    ) -> Result<InstanceState> {
        if let Some(done) = self.grouped(target(1), cmd.clone(), also, &reply).await {
            return done;
        }
        let states = self
            .transact_all(
                |attempt| vec![(target(attempt), cmd.clone())],
                also,
                &*reply,
            )
            .await?;
        states
            .into_iter()
            .next()
            .ok_or_else(|| Error::Conflict("empty transition".to_owned()))
    }

    /// The loops of other processes a commit must wake: those this process does not run.
    fn remote_wakes(&self, woke: Woke) -> Vec<partnerflow_store::wake::Loop> {
        use std::sync::atomic::Ordering::Relaxed;
        let mut out = Vec::new();
        if woke.jobs && !self.inner.dispatching.load(Relaxed) {
            out.push(partnerflow_store::wake::Loop::Dispatcher);
        }
        if woke.timers && !self.inner.sweeping.load(Relaxed) {
            out.push(partnerflow_store::wake::Loop::Sweeper);
        }
        out
    }

    /// Applies every command of `initial` (and what their effects start) in one transaction,
    /// retried whole on a version conflict; the states of the initial targets, in order.
    async fn transact_all(
        &self,
        initial: impl Fn(u32) -> Vec<(Target, Command)>,
        also: &Also,
        reply: &(dyn Fn(&InstanceState) -> Value + Send + Sync),
    ) -> Result<Vec<InstanceState>> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let now = self.now();
            let mut tx = self.inner.store.begin().await?;
            match self.run(&mut tx, initial(attempt), also, reply, now).await {
                Ok(ran) => {
                    let states = ran.states.clone();
                    let mut committed = Committed::default();
                    committed.add(ran);
                    self.commit(tx, committed).await?;
                    return Ok(states);
                }
                Err(Error::Stale(msg)) if attempt < MAX_ATTEMPTS => {
                    drop(tx);
                    tracing::debug!(attempt, %msg, "version conflict, retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(u64::from(attempt) * 3))
                        .await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Commits `tx`, waking the loops its transitions left work for (another process's by
    /// `NOTIFY`, delivered with the commit), then counts and announces what committed.
    pub(crate) async fn commit(
        &self,
        mut tx: partnerflow_store::Tx,
        committed: Committed,
    ) -> Result<()> {
        let Committed {
            woke,
            notices,
            tallies,
            transitions,
        } = committed;
        for target in self.remote_wakes(woke) {
            let backend = self.inner.store.backend;
            partnerflow_store::wake::notify(&mut tx, backend, target).await?;
        }
        tx.commit().await.map_err(partnerflow_store::Error::from)?;
        for (workflow, status, events) in &tallies {
            Engine::count_events(workflow, status, events);
        }
        metrics::counter!("partnerflow_transitions_total").increment(transitions);
        if woke.jobs {
            self.inner.wake_dispatcher.notify_waiters();
        }
        if woke.timers {
            self.inner.wake_sweeper.notify_waiters();
        }
        for notice in notices {
            // Nobody listening is normal; notices are a convenience, not a record.
            let _ = self.inner.notices.send(notice);
        }
        Ok(())
    }

    /// Fires a group of claimed timers (of different instances, or one instance's in due
    /// order) in one transaction: one commit for the group, each instance saved under its own
    /// version check.
    pub(crate) async fn fire_all(&self, fired: Vec<(i64, Uuid, Command)>) -> Result<()> {
        let also = Also {
            timers_fired: fired.iter().map(|(id, _, _)| *id).collect(),
            ..Also::default()
        };
        self.transact_all(
            |_| {
                fired
                    .iter()
                    .map(|(_, instance, cmd)| (Target::Existing(*instance), cmd.clone()))
                    .collect()
            },
            &also,
            &|_| Value::Null,
        )
        .await
        .map(|_| ())
    }

    /// Creates instances and applies their first commands, all in one transaction (a bulk
    /// start: many instances, their first steps, tasks and timers, one commit).
    pub(crate) async fn create_many(
        &self,
        starts: Vec<(InstanceState, Command)>,
    ) -> Result<Vec<InstanceState>> {
        if starts.is_empty() {
            return Ok(Vec::new());
        }
        let also = Also::default();
        self.transact_all(
            |_| {
                starts
                    .iter()
                    .map(|(state, cmd)| (Target::New(Box::new(state.clone())), cmd.clone()))
                    .collect()
            },
            &also,
            &|_| Value::Null,
        )
        .await
    }

    pub(crate) async fn run(
        &self,
        tx: &mut Conn,
        initial: Vec<(Target, Command)>,
        also: &Also,
        reply: &(dyn Fn(&InstanceState) -> Value + Send + Sync),
        now: DateTime<Utc>,
    ) -> Result<Ran> {
        // Fencing, first (before the transition's own effects can cancel the timer that caused
        // it): the row or timer must still be ours to finish. When another worker or sweeper
        // finished it first, this result is discarded whole.
        if let Some(lease) = &also.outbox_done
            && !outbox::complete(tx, lease, now).await?
        {
            return Err(Error::Superseded(format!(
                "outbox row {} is no longer leased to this worker",
                lease.id
            )));
        }
        for id in &also.timers_fired {
            if !timers::mark_fired(tx, *id, now).await? {
                return Err(Error::Superseded(format!(
                    "timer {id} fired or was cancelled already"
                )));
            }
        }
        if let Some((hash, evidence)) = &also.link_used
            && !partnerflow_store::links::consume(tx, hash, now, &evidence.ip, &evidence.user_agent)
                .await?
        {
            return Err(Error::LinkUsed);
        }
        let initial_count = initial.len();
        let mut work = VecDeque::from(initial);
        let mut states = Vec::with_capacity(initial_count);
        let mut woke = Woke::default();
        let mut notices = Vec::new();
        let mut tallies = Vec::new();
        // New instances (a bulk start, a parent and its child) are written together, each table
        // in one statement, before anything reads them back: before the next existing
        // instance is loaded, and at the end.
        let mut deferred = Deferred::default();
        while let Some((target, cmd)) = work.pop_front() {
            let is_new = matches!(target, Target::New(_));
            if !is_new {
                self.flush(tx, &mut deferred, now).await?;
            }
            let stored = match target {
                Target::Loaded(stored) => *stored,
                Target::Existing(id) => instances::load(tx, id)
                    .await?
                    .ok_or_else(|| Error::NotFound(format!("instance {id}")))?,
                Target::New(state) => instances::Stored {
                    state: *state,
                    version: 0,
                    event_count: 0,
                    last_hash: partnerflow_core::audit::GENESIS.to_owned(),
                    created_at: now,
                    updated_at: now,
                },
            };
            let def = self.definition(&stored.state.workflow_id, stored.state.version)?;
            let facts = self.decision_facts(tx, &def, &stored.state, &cmd).await?;
            let directory = self.directory_for(tx, &cmd, now).await?;
            let mut state = stored.state.clone();
            let applied = {
                let mut new_id = Uuid::now_v7;
                let mut ctx = Ctx {
                    now,
                    calendar: &self.inner.calendar,
                    directory: &directory,
                    new_id: &mut new_id,
                    validate: &|name, data, instance| {
                        self.validate_with(name, data, Some(instance), &facts)
                    },
                };
                machine::apply(&def, &mut state, cmd, &mut ctx)?
            };
            if applied.changed {
                for e in applied
                    .events
                    .iter()
                    .filter(|e| e.kind == "calendar_exceeded")
                {
                    tracing::warn!(instance = %state.id, payload = %e.payload, "due time beyond the loaded business calendar; computed on weekdays only");
                    metrics::counter!("partnerflow_calendar_exceeded_total").increment(1);
                }
                notices.extend(
                    applied
                        .events
                        .iter()
                        .filter_map(|e| Notice::from_event(state.id, e)),
                );
                let counted: Vec<_> = applied
                    .events
                    .iter()
                    .filter(|e| COUNTED.contains(&e.kind.as_str()))
                    .cloned()
                    .collect();
                if !counted.is_empty() {
                    tallies.push((
                        state.workflow_id.clone(),
                        state.status.label().to_owned(),
                        counted,
                    ));
                }
                if !is_new {
                    let keys = &self.inner.settings.audit;
                    instances::save(tx, &state, &stored, &applied.events, keys, now).await?;
                }
                let mut pending = self
                    .effects(tx, &state, applied.effects, &mut work, now)
                    .await?;
                pending
                    .jobs
                    .extend(self.webhook_jobs(&state, &applied.events, stored.event_count));
                woke |= pending.woke(now, self.inner.settings.poll);
                if is_new {
                    deferred.add(&state, applied.events, pending);
                } else {
                    tasks::insert_many(tx, &pending.tasks, now).await?;
                    outbox::insert_many(tx, state.id, &pending.jobs, now).await?;
                    timers::insert_many(tx, state.id, &pending.timers).await?;
                }
            } else if is_new {
                deferred.add(&state, Vec::new(), Pending::default());
            }
            if states.len() < initial_count {
                states.push(state);
            }
        }
        self.flush(tx, &mut deferred, now).await?;
        if let (Some((scope, idem)), Some(state)) = (&also.idem, states.first()) {
            let answer = idempotency::Answer {
                request_hash: idem.request_hash.clone(),
                status: 200,
                body: reply(state).to_string(),
            };
            idempotency::put(tx, scope, &idem.key, &answer, now).await?;
        }
        Ok(Ran {
            states,
            woke,
            notices,
            tallies,
        })
    }
}

/// What one run of commands did, before commit.
pub(crate) struct Ran {
    /// The states of the initial targets, in order.
    pub(crate) states: Vec<InstanceState>,
    woke: Woke,
    notices: Vec<Notice>,
    tallies: Vec<Tally>,
}

/// What the runs of one transaction did, for after its commit.
#[derive(Default)]
pub(crate) struct Committed {
    woke: Woke,
    notices: Vec<Notice>,
    tallies: Vec<Tally>,
    transitions: u64,
}

impl Committed {
    /// Adds a run; the state of its first target.
    pub(crate) fn add(&mut self, ran: Ran) -> Option<InstanceState> {
        self.woke |= ran.woke;
        self.notices.extend(ran.notices);
        self.tallies.extend(ran.tallies);
        self.transitions += ran.states.len() as u64;
        ran.states.into_iter().next()
    }
}
