//! The client side of the reference workload, shared by `bench` (in process) and `bench http`
//! (over HTTP): the pool of clients that run the workflows, and what each workflow waits for
//! (its task, its end), told by whoever learns of them first — the engine's notices in
//! process, the webhooks over HTTP.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::sync::oneshot;

/// How long a workflow may wait for its task or its end.
const WITHIN: Duration = Duration::from_secs(60);

struct Slot<T> {
    task: Option<T>,
    finished: bool,
    task_waiter: Option<oneshot::Sender<T>>,
    done_waiter: Option<oneshot::Sender<()>>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot {
            task: None,
            finished: false,
            task_waiter: None,
            done_waiter: None,
        }
    }
}

/// Per running workflow (by `K`), its task (`T`) and its end, whichever side comes first.
pub struct Waiters<K, T> {
    slots: Mutex<HashMap<K, Slot<T>>>,
}

impl<K: Hash + Eq + Clone, T> Default for Waiters<K, T> {
    fn default() -> Self {
        Waiters {
            slots: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone, T> Waiters<K, T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Slot<T>>> {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `k`'s task opened.
    pub fn task_opened(&self, k: K, task: T) {
        let mut map = self.lock();
        let slot = map.entry(k).or_default();
        match slot.task_waiter.take() {
            Some(w) => drop(w.send(task)),
            None => slot.task = Some(task),
        }
    }

    /// `k` finished.
    pub fn finished(&self, k: K) {
        let mut map = self.lock();
        let slot = map.entry(k).or_default();
        match slot.done_waiter.take() {
            Some(w) => drop(w.send(())),
            None => slot.finished = true,
        }
    }

    /// `k`'s task, once it is open; `what` names what failed to come.
    pub async fn task(&self, k: &K, what: &str) -> Result<T> {
        let waiting = {
            let mut map = self.lock();
            let slot = map.entry(k.clone()).or_default();
            match slot.task.take() {
                Some(t) => Err(t),
                None => {
                    let (tx, rx) = oneshot::channel();
                    slot.task_waiter = Some(tx);
                    Ok(rx)
                }
            }
        };
        match waiting {
            Err(t) => Ok(t),
            Ok(rx) => tokio::time::timeout(WITHIN, rx)
                .await
                .with_context(|| format!("{what} within 60 s"))?
                .context("listener gone"),
        }
    }

    /// Starts listening for `k`'s end: call before the request that ends it.
    pub fn expect_finish(&self, k: &K) -> oneshot::Receiver<()> {
        let mut map = self.lock();
        let slot = map.entry(k.clone()).or_default();
        let (tx, rx) = oneshot::channel();
        slot.done_waiter = Some(tx);
        rx
    }

    /// Waits for `k`'s end (unless it was told already) and forgets `k`.
    pub async fn finish(&self, k: &K, rx: oneshot::Receiver<()>, what: &str) -> Result<()> {
        let finished_early = self.lock().get(k).is_some_and(|s| s.finished);
        if !finished_early {
            tokio::time::timeout(WITHIN, rx)
                .await
                .with_context(|| format!("{what} within 60 s"))?
                .context("listener gone")?;
        }
        self.lock().remove(k);
        Ok(())
    }
}

/// Latencies of one workflow: from the approval to its end, from its start to its end.
pub type Latency = (Duration, Duration);

/// Runs `workflows` workflows, `concurrency` at a time, each by `one(key)` with keys
/// `<prefix>-<n>`, showing progress as `what`; the elapsed time and both latency lists.
pub async fn run_clients<F, Fut>(
    workflows: usize,
    concurrency: usize,
    prefix: &str,
    what: &'static str,
    one: F,
) -> Result<(Duration, Vec<Duration>, Vec<Duration>)>
where
    F: Fn(String) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Latency>> + Send,
{
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let bar = Arc::new(crate::progress::Progress::new(
        workflows as u64,
        "{bar:40} {pos}/{len} workflows · {per_sec} · ETA {eta}",
        what,
    ));
    let started = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (next, bar, one, prefix) = (next.clone(), bar.clone(), one.clone(), prefix.to_owned());
        clients.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= workflows {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                latencies.push(one(format!("{prefix}-{i}")).await?);
                bar.inc(1);
            }
        });
    }
    let mut to_done = Vec::new();
    let mut end_to_end = Vec::new();
    while let Some(joined) = clients.join_next().await {
        for (a, e) in joined.context("client task")?? {
            to_done.push(a);
            end_to_end.push(e);
        }
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    Ok((elapsed, to_done, end_to_end))
}
