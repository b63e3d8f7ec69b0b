//! Group commit: single-instance transitions submitted at the same time (decisions, external
//! events, step results, starts) commit together, up to `Settings::group_commit` of them in one
//! transaction, each instance still saved under its own version check.
//!
//! A few writers take whatever has queued while they were busy, so an idle engine commits a
//! transition alone and at once, and a loaded one pays one begin, commit and WAL flush per
//! group instead of per transition. When a transition of a group fails, the group is rolled
//! back whole, that transition is handed back to run alone (with the retries of the direct
//! path), and the others are tried again as a group: one refused command never costs another
//! its result, and nothing of a failed transition is kept.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use partnerflow_core::machine::{Command, InstanceState};
use serde_json::Value;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::engine::{Engine, Error, Inner, Result};
use crate::transition::{Also, Committed, Target};

/// The answer a request's Idempotency-Key stores, from the state after the transition.
pub(crate) type Reply = Arc<dyn Fn(&InstanceState) -> Value + Send + Sync>;

/// Writers committing groups at the same time: enough to keep the database busy while one
/// group waits for its commit, few enough that groups fill under load.
const WRITERS: usize = 4;

/// One transition waiting for a group.
struct Request {
    target: Target,
    cmd: Command,
    also: Also,
    reply: Reply,
    done: oneshot::Sender<Outcome>,
}

/// What became of a request.
enum Outcome {
    Committed(Box<InstanceState>),
    /// Refused for good (nothing of it was kept): the same error as the direct path gives.
    Failed(Error),
    /// Not committed: run it alone, on the direct path.
    Alone,
}

/// The queue the writers take groups from, started with the first request.
#[derive(Default)]
pub(crate) struct Groups {
    sender: std::sync::OnceLock<mpsc::UnboundedSender<Request>>,
    submitted: AtomicU64,
    /// Transactions committed by the writers, and the transitions in them.
    commits: AtomicU64,
    transitions: AtomicU64,
}

/// How group commit has gone in this process so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupStats {
    /// Transitions handed to the writers.
    pub submitted: u64,
    /// Transactions the writers committed, and the transitions in them (a transition handed
    /// back to run alone is in neither).
    pub commits: u64,
    pub transitions: u64,
}

impl Groups {
    /// Queues `request`, starting the writers on first use; false when the writers are gone
    /// (the engine is being dropped).
    fn submit(&self, inner: &Arc<Inner>, request: Request) -> bool {
        let sender = self.sender.get_or_init(|| {
            let (sender, receiver) = mpsc::unbounded_channel();
            let receiver = Arc::new(Mutex::new(receiver));
            for _ in 0..WRITERS {
                tokio::spawn(write_groups(Arc::downgrade(inner), receiver.clone()));
            }
            sender
        });
        if sender.send(request).is_err() {
            return false;
        }
        self.submitted.fetch_add(1, Ordering::Relaxed);
        true
    }
}

/// One writer: takes what has queued (up to the group size) and commits it as a group.
async fn write_groups(
    inner: std::sync::Weak<Inner>,
    receiver: Arc<Mutex<mpsc::UnboundedReceiver<Request>>>,
) {
    loop {
        let (engine, group) = {
            let mut receiver = receiver.lock().await;
            let Some(first) = receiver.recv().await else {
                return;
            };
            let Some(inner) = inner.upgrade() else {
                return;
            };
            let max = inner.settings.group_commit.max(1);
            let mut group = vec![first];
            while group.len() < max {
                match receiver.try_recv() {
                    Ok(r) => group.push(r),
                    Err(_) => break,
                }
            }
            (Engine { inner }, group)
        };
        engine.commit_group(group).await;
    }
}

impl Engine {
    /// How group commit has gone in this process so far.
    pub fn group_stats(&self) -> GroupStats {
        let g = &self.inner.groups;
        GroupStats {
            submitted: g.submitted.load(Ordering::Relaxed),
            commits: g.commits.load(Ordering::Relaxed),
            transitions: g.transitions.load(Ordering::Relaxed),
        }
    }

    /// Commits `cmd` through a group when group commit is on; `None` when it must run alone.
    pub(crate) async fn grouped(
        &self,
        target: Target,
        cmd: Command,
        also: &Also,
        reply: &Reply,
    ) -> Option<Result<InstanceState>> {
        if self.inner.settings.group_commit <= 1 {
            return None;
        }
        let (done, outcome) = oneshot::channel();
        let request = Request {
            target,
            cmd,
            also: also.clone(),
            reply: reply.clone(),
            done,
        };
        if !self.inner.groups.submit(&self.inner, request) {
            return None;
        }
        match outcome.await.ok()? {
            Outcome::Committed(state) => Some(Ok(*state)),
            Outcome::Failed(e) => Some(Err(e)),
            Outcome::Alone => None,
        }
    }

    /// Commits `group` in one transaction; a transition that fails leaves the group (to run
    /// alone) and the rest is tried again.
    async fn commit_group(&self, mut group: Vec<Request>) {
        while !group.is_empty() {
            match self.try_group(&group).await {
                Ok(states) => {
                    self.inner.groups.commits.fetch_add(1, Ordering::Relaxed);
                    self.inner
                        .groups
                        .transitions
                        .fetch_add(group.len() as u64, Ordering::Relaxed);
                    for (request, state) in group.into_iter().zip(states) {
                        let _ = request.done.send(Outcome::Committed(Box::new(state)));
                    }
                    return;
                }
                Err(GroupError::At(i, e)) => {
                    let request = group.remove(i);
                    // The refusal of a transition that was alone in its group is final; any
                    // other failure is run again on the direct path, with its retries.
                    let outcome = match e {
                        Error::Stale(_) | Error::Store(_) | Error::Conflict(_) => Outcome::Alone,
                        e if group.is_empty() => Outcome::Failed(e),
                        _ => Outcome::Alone,
                    };
                    let _ = request.done.send(outcome);
                }
                Err(GroupError::Whole(e)) => {
                    tracing::debug!(error = %e, size = group.len(), "group not committed; each runs alone");
                    for request in group {
                        let _ = request.done.send(Outcome::Alone);
                    }
                    return;
                }
            }
        }
    }

    /// One attempt at the whole group: every transition, then one commit.
    async fn try_group(
        &self,
        group: &[Request],
    ) -> std::result::Result<Vec<InstanceState>, GroupError> {
        let now = self.now();
        let mut tx = self
            .inner
            .store
            .begin()
            .await
            .map_err(|e| GroupError::Whole(e.into()))?;
        let mut committed = Committed::default();
        let mut states = Vec::with_capacity(group.len());
        for (i, r) in group.iter().enumerate() {
            let initial = vec![(r.target.clone(), r.cmd.clone())];
            let ran = self
                .run(&mut tx, initial, &r.also, &*r.reply, now)
                .await
                .map_err(|e| GroupError::At(i, e))?;
            let state = committed
                .add(ran)
                .ok_or_else(|| GroupError::At(i, Error::Conflict("empty transition".to_owned())))?;
            states.push(state);
        }
        self.commit(tx, committed)
            .await
            .map_err(GroupError::Whole)?;
        Ok(states)
    }
}

enum GroupError {
    /// The transition at this index failed: the group was rolled back.
    At(usize, Error),
    /// The group as a whole failed (begin, commit).
    Whole(Error),
}
