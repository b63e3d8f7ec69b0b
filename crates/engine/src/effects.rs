//! Writing a transition's effects: ledger postings, standing, children and parents at once;
//! new tasks, outbox rows and timers handed back so that new instances' rows are written
//! together ([`Deferred`]), each table in one statement.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use partnerflow_core::machine::{
    Actor, Command, Effect, Event, InstanceState, ParentRef, TimerKind,
};
use partnerflow_store::{Conn, instances, outbox, tasks, timers};
use uuid::Uuid;

use crate::engine::{Engine, Result};
use crate::transition::{Target, Woke};

/// The tasks, outbox rows and timers a transition's effects ask for.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    pub(crate) tasks: Vec<tasks::NewTask>,
    pub(crate) jobs: Vec<outbox::Work>,
    pub(crate) timers: Vec<(u64, TimerKind, DateTime<Utc>)>,
}

impl Pending {
    /// Which loops should look: the dispatcher for jobs, the sweeper for timers due soon.
    pub(crate) fn woke(&self, now: DateTime<Utc>, poll: std::time::Duration) -> Woke {
        let soon = now + chrono::Duration::from_std(poll).unwrap_or_default();
        Woke {
            jobs: !self.jobs.is_empty(),
            timers: self.timers.iter().any(|(_, _, due)| *due <= soon),
        }
    }
}

/// New instances of a transaction, written together by [`Engine::flush`].
#[derive(Debug, Default)]
pub(crate) struct Deferred {
    instances: Vec<(InstanceState, Vec<Event>)>,
    tasks: Vec<tasks::NewTask>,
    jobs: Vec<(Uuid, outbox::Work)>,
    timers: Vec<(Uuid, u64, TimerKind, DateTime<Utc>)>,
}

impl Deferred {
    pub(crate) fn add(&mut self, state: &InstanceState, events: Vec<Event>, p: Pending) {
        self.tasks.extend(p.tasks);
        self.jobs.extend(p.jobs.into_iter().map(|j| (state.id, j)));
        self.timers.extend(
            p.timers
                .into_iter()
                .map(|(seq, kind, at)| (state.id, seq, kind, at)),
        );
        self.instances.push((state.clone(), events));
    }
}

impl Engine {
    /// Writes the effects, except the new tasks, outbox rows and timers, which it returns for
    /// the caller to write (for a new instance, together with the others of the transaction).
    pub(crate) async fn effects(
        &self,
        tx: &mut Conn,
        state: &InstanceState,
        effects: Vec<Effect>,
        work: &mut VecDeque<(Target, Command)>,
        now: DateTime<Utc>,
    ) -> Result<Pending> {
        let mut jobs = Vec::new();
        let mut new_timers = Vec::new();
        let mut new_tasks = Vec::new();
        for effect in effects {
            // A task opened earlier in this transition is written before it is changed.
            if matches!(
                effect,
                Effect::CloseTask { .. } | Effect::EscalateTask { .. } | Effect::AssignTask { .. }
            ) && !new_tasks.is_empty()
            {
                tasks::insert_many(tx, &std::mem::take(&mut new_tasks), now).await?;
            }
            match effect {
                Effect::RunStep { seq, step, handler } => {
                    jobs.push(outbox::Work::RunStep { seq, step, handler });
                }
                Effect::Notify { spec, key } => jobs.push(outbox::Work::Notify { key, spec }),
                Effect::OpenTask {
                    task_id,
                    seq,
                    step,
                    role,
                    due,
                } => new_tasks.push(tasks::NewTask {
                    id: task_id,
                    instance_id: state.id,
                    step,
                    seq,
                    role,
                    due,
                }),
                Effect::CloseTask { task_id, outcome } => {
                    tasks::close(tx, task_id, &outcome, now).await?
                }
                Effect::EscalateTask { task_id, level } => {
                    tasks::escalate(tx, task_id, i64::try_from(level).unwrap_or(i64::MAX)).await?
                }
                Effect::AssignTask { task_id, person } => {
                    tasks::assign(tx, task_id, Some(&person)).await?
                }
                Effect::ScheduleTimer { seq, kind, due } => new_timers.push((seq, kind, due.at)),
                Effect::CancelTimers { seq } => timers::cancel(tx, state.id, seq, now).await?,
                Effect::StartChild {
                    child_id,
                    workflow,
                    business_key,
                    input,
                    parent,
                } => {
                    let child =
                        self.child_instance(state, child_id, &workflow, business_key, parent)?;
                    work.push_back((
                        Target::New(Box::new(child)),
                        Command::Start {
                            input,
                            actor: Actor::system(),
                        },
                    ));
                }
                Effect::Post {
                    seq,
                    step,
                    postings,
                } => {
                    let source = partnerflow_store::ledger::Source {
                        instance_id: state.id,
                        seq,
                        step: step.as_deref(),
                    };
                    let backend = self.inner.store.backend;
                    partnerflow_store::ledger::post(tx, backend, &postings, source, now).await?;
                }
                Effect::RecordStanding { partner, facts } => {
                    partnerflow_store::standing::record(tx, &partner, &facts, state.id, now)
                        .await?;
                }
                Effect::CancelChild { child_id } => {
                    work.push_back((
                        Target::Existing(child_id),
                        Command::Cancel {
                            actor: Actor::system(),
                            reason: format!("parent {} left the step that waited for it", state.id),
                            by_parent: true,
                        },
                    ));
                }
                Effect::NotifyParent { parent, status } => {
                    work.push_back((
                        Target::Existing(parent.instance_id),
                        Command::ChildFinished {
                            seq: parent.seq,
                            child_id: state.id,
                            status,
                        },
                    ));
                }
            }
        }
        Ok(Pending {
            tasks: new_tasks,
            jobs,
            timers: new_timers,
        })
    }

    /// Writes the new instances gathered so far, with their events, tasks, outbox rows and
    /// timers.
    pub(crate) async fn flush(
        &self,
        tx: &mut Conn,
        d: &mut Deferred,
        now: DateTime<Utc>,
    ) -> Result<()> {
        if d.instances.is_empty() {
            return Ok(());
        }
        let keys = &self.inner.settings.audit;
        instances::insert_new(tx, &d.instances, keys, now).await?;
        tasks::insert_many(tx, &d.tasks, now).await?;
        outbox::insert_for_many(tx, &d.jobs, now).await?;
        timers::insert_for_many(tx, &d.timers).await?;
        *d = Deferred::default();
        Ok(())
    }

    fn child_instance(
        &self,
        parent: &InstanceState,
        id: Uuid,
        workflow: &str,
        business_key: String,
        parent_ref: ParentRef,
    ) -> Result<InstanceState> {
        let def = self.latest(workflow)?;
        Ok(InstanceState {
            partner_id: parent.partner_id.clone(),
            submitted_by: parent.submitted_by.clone(),
            party: parent.party.clone(),
            parent: Some(parent_ref),
            ..InstanceState::new(id, &def, &business_key)
        })
    }
}
