//! The long-running loops (dispatcher with its reconciling lease, timer sweeper, workers) and
//! [`Engine::drain`], which does all due work inline so tests and the demo advance without
//! sleeping.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use partnerflow_core::machine::Command;
use partnerflow_store::{outbox, timers, wake};
use tokio_util::sync::CancellationToken;

use futures::{FutureExt, StreamExt};
use std::sync::atomic::Ordering;

use crate::engine::{Engine, Error, Result};

/// Timers of one sweep fired at once: enough to hide each transition's commit latency, few
/// enough to leave connections for the API and the workers.
const SWEEP_CONCURRENCY: usize = 16;
/// Instances whose timers fire in one transaction.
const FIRE_GROUP: usize = 32;
use crate::queue::{Job, JobSink};
use crate::transition::Also;

/// What a loop's round did: how many rows or timers it took, and how soon the next round
/// should run at the latest when nothing wakes the loop (`None`: after the poll interval).
type Round = (usize, Option<std::time::Duration>);

impl Engine {
    pub(crate) fn lease_until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::Duration::from_std(self.inner.settings.lease)
            .unwrap_or(chrono::Duration::seconds(30))
    }

    /// Marks a batch of due outbox rows dispatched: new ones, ones the queue did not hand to a
    /// worker in time, and ones whose worker's lease ran out.
    async fn claim_outbox(&self) -> Result<Vec<i64>> {
        let now = self.now();
        let batch = self.inner.settings.batch;
        let redispatch_at = now
            + chrono::Duration::from_std(self.inner.settings.redispatch)
                .unwrap_or(chrono::Duration::seconds(60));
        Ok(outbox::claim_due(&self.inner.store, now, redispatch_at, batch).await?)
    }

    /// Pushes due outbox rows — new ones, and ones the queue or a worker lost — to the queue.
    /// Returns how many were pushed.
    pub async fn dispatch_once(&self) -> Result<usize> {
        let ids = self.claim_outbox().await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let n = ids.len();
        if let Err(e) = self
            .inner
            .queue
            .push(ids.into_iter().map(|outbox_id| Job { outbox_id }).collect())
            .await
        {
            // The rows come back when their dispatch deadline runs out.
            tracing::warn!(error = %e, rows = n, "queue refused jobs; they will be re-dispatched after the lease");
            return Ok(0);
        }
        metrics::counter!("partnerflow_dispatched_total").increment(n as u64);
        Ok(n)
    }

    /// Fires due timers: the instances concurrently (up to `SWEEP_CONCURRENCY` at once), each
    /// instance's timers in due order. Returns how many were claimed. A timer whose firing fails
    /// is left to its claim running out (then claimed again), without holding up the rest.
    pub async fn sweep_once(&self) -> Result<usize> {
        let now = self.now();
        let due = timers::claim_due(
            &self.inner.store,
            now,
            self.lease_until(now),
            self.inner.settings.batch,
        )
        .await?;
        let n = due.len();
        let mut by_instance: Vec<Vec<timers::Timer>> = Vec::new();
        let mut index = std::collections::HashMap::new();
        for t in due {
            let slot = *index.entry(t.instance_id).or_insert_with(|| {
                by_instance.push(Vec::new());
                by_instance.len() - 1
            });
            by_instance[slot].push(t);
        }
        // Groups of instances fire in one transaction each (one commit for many timers); a
        // group that fails for any reason fires its timers one by one instead, so one bad
        // instance holds up none of the others.
        let groups: Vec<Vec<timers::Timer>> = by_instance
            .chunks(FIRE_GROUP)
            .map(|g| g.iter().flatten().cloned().collect())
            .collect();
        futures::stream::iter(groups)
            .for_each_concurrent(SWEEP_CONCURRENCY, |group| async move {
                let commands = group
                    .iter()
                    .map(|t| {
                        let cmd = Command::TimerFired {
                            seq: t.seq,
                            timer: t.kind.clone(),
                        };
                        (t.id, t.instance_id, cmd)
                    })
                    .collect();
                match self.fire_all(commands).await {
                    Ok(()) => {
                        for t in &group {
                            Self::count_lateness(t, now);
                        }
                    }
                    Err(e) => {
                        tracing::debug!(timers = group.len(), error = %e, "a group of timers fired one by one");
                        for t in group {
                            if let Err(e) = self.fire_timer(&t, now).await {
                                tracing::warn!(instance = %t.instance_id, timer = t.id, error = %e, "timer not fired; it is claimed again when its claim runs out");
                                metrics::counter!("partnerflow_timer_failures_total").increment(1);
                            }
                        }
                    }
                }
            })
            .await;
        Ok(n)
    }

    fn count_lateness(t: &timers::Timer, now: DateTime<Utc>) {
        let late = (now - t.due_at).num_milliseconds().max(0);
        metrics::histogram!("partnerflow_timer_lateness_seconds").record(late as f64 / 1000.0);
    }

    /// Fires one claimed timer. A timer that another sweeper fired first (its claim outlived
    /// ours) changes nothing.
    pub async fn fire_timer(&self, t: &timers::Timer, now: DateTime<Utc>) -> Result<()> {
        Self::count_lateness(t, now);
        let cmd = Command::TimerFired {
            seq: t.seq,
            timer: t.kind.clone(),
        };
        let also = Also {
            timers_fired: vec![t.id],
            ..Also::default()
        };
        match self.apply(t.instance_id, cmd, also).await {
            // Fired by another sweeper whose claim outlived ours: nothing to do.
            Ok(_) | Err(Error::Superseded(_)) => Ok(()),
            Err(Error::Refused(e)) => {
                tracing::error!(instance = %t.instance_id, timer = t.id, error = %e, "timer refused by the state machine; marked fired");
                let mut conn = self.conn().await?;
                timers::mark_fired(&mut conn, t.id, now).await?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Runs every piece of due work inline, without the queue, until none is left at the
    /// current clock. Returns how much was done.
    pub async fn drain(&self) -> Result<usize> {
        let mut total = 0;
        loop {
            let ids = self.claim_outbox().await?;
            for id in &ids {
                self.run_job(*id).await?;
            }
            let fired = self.sweep_once().await?;
            if ids.is_empty() && fired == 0 {
                return Ok(total);
            }
            total += ids.len() + fired;
        }
    }

    /// The next moment a timer or a delayed outbox row becomes due.
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>> {
        let mut conn = self.conn().await?;
        let t = timers::next_due(&mut conn).await?;
        let o = outbox::next_available(&mut conn).await?;
        Ok(match (t, o) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// Rows not yet carried out.
    pub async fn backlog(&self) -> Result<i64> {
        let mut conn = self.conn().await?;
        Ok(outbox::pending_count(&mut conn).await?)
    }

    /// Deletes delivery rows older than the retention settings, in batches until none is
    /// left. Returns how many rows were deleted.
    pub async fn purge_once(&self) -> Result<usize> {
        let r = &self.inner.settings.retention;
        let now = self.now();
        let ago = |d: std::time::Duration| {
            now - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(36500))
        };
        let cutoffs = partnerflow_store::retention::Cutoffs {
            done_outbox: ago(r.done_outbox),
            closed_timers: ago(r.closed_timers),
            idempotency_keys: ago(r.idempotency_keys),
        };
        let mut total = 0;
        loop {
            let purged =
                partnerflow_store::retention::purge(&self.inner.store, cutoffs, r.batch).await?;
            total += purged.total();
            metrics::counter!("partnerflow_purged_rows_total").increment(purged.total());
            let full = |n: u64| i64::try_from(n).unwrap_or(i64::MAX) >= r.batch;
            if !(full(purged.outbox) || full(purged.timers) || full(purged.idempotency_keys)) {
                return Ok(usize::try_from(total).unwrap_or(usize::MAX));
            }
        }
    }

    /// The dispatcher: pushes due rows whenever a commit wakes it (in this process, or in
    /// another through `store::wake`), and at least every poll interval (which is also when
    /// rows the queue or a worker lost are noticed).
    pub async fn run_dispatcher(&self, shutdown: CancellationToken) {
        let poll = self.inner.settings.poll;
        self.inner.dispatching.store(true, Ordering::Relaxed);
        self.run_loop(
            "dispatcher",
            (&self.inner.wake_dispatcher, Some(wake::Loop::Dispatcher)),
            poll,
            shutdown,
            |e| Box::pin(async move { e.dispatch_once().await.map(|n| (n, None)) }),
        )
        .await;
    }

    /// The timer sweeper, woken like the dispatcher.
    pub async fn run_sweeper(&self, shutdown: CancellationToken) {
        let poll = self.inner.settings.poll;
        self.inner.sweeping.store(true, Ordering::Relaxed);
        self.run_loop(
            "sweeper",
            (&self.inner.wake_sweeper, Some(wake::Loop::Sweeper)),
            poll,
            shutdown,
            |e| {
                Box::pin(async move {
                    let n = e.sweep_once().await?;
                    Ok((n, e.until_next_timer().await?))
                })
            },
        )
        .await;
    }

    /// The janitor: deletes old delivery rows every `retention.every`.
    pub async fn run_janitor(&self, shutdown: CancellationToken) {
        let every = self.inner.settings.retention.every;
        self.run_loop(
            "janitor",
            (&self.inner.wake_janitor, None),
            every,
            shutdown,
            |e| {
                Box::pin(async move {
                    // A round that deleted rows is not a reason to run again at once.
                    e.purge_once().await.map(|_| (0, None))
                })
            },
        )
        .await;
    }

    /// Listens for another process's wake-ups of `target`; none (polling only) on SQLite or
    /// while PostgreSQL cannot be reached.
    async fn listen(&self, name: &'static str, target: wake::Loop) -> Option<wake::Listener> {
        match wake::Listener::connect(&self.inner.store, target).await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::warn!(loop_name = name, error = %e, "cannot listen for wake-ups from other processes; polling only until it can");
                None
            }
        }
    }

    /// Runs `round` whenever this process's `wake` is notified, another process's wake-up for
    /// the loop arrives, or `interval` has passed. The listener is connected before the first
    /// round, so work committed elsewhere is either found by that round or announced after it.
    async fn run_loop(
        &self,
        name: &'static str,
        (wake, remote): (&tokio::sync::Notify, Option<wake::Loop>),
        interval: std::time::Duration,
        shutdown: CancellationToken,
        round: impl Fn(Engine) -> futures::future::BoxFuture<'static, Result<Round>>,
    ) {
        // Only PostgreSQL carries wake-ups between processes.
        let remote = remote.filter(|_| self.inner.store.url().is_some());
        let mut listener = None;
        let mut deaf = false;
        loop {
            if let (None, Some(target)) = (&listener, remote) {
                listener = self.listen(name, target).await;
            }
            let woken = wake.notified();
            let mut wait = interval;
            // A panic in a round is caught here, logged and counted; the loop goes on, so a
            // dispatcher or sweeper never dies silently.
            match std::panic::AssertUnwindSafe(round(self.clone()))
                .catch_unwind()
                .await
            {
                // A full batch means there may be more right now; otherwise wait for a wake-up.
                Ok(Ok((n, _)))
                    if n >= usize::try_from(self.inner.settings.batch).unwrap_or(usize::MAX) =>
                {
                    continue;
                }
                Ok(Ok((_, next))) => wait = next.map_or(interval, |next| next.min(interval)),
                Ok(Err(e)) => {
                    tracing::error!(loop_name = name, error = %e, "round failed; retrying after the poll interval")
                }
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    tracing::error!(loop_name = name, panic = %what, "round panicked; the loop goes on after the poll interval");
                    metrics::counter!("partnerflow_loop_panics_total", "loop" => name).increment(1);
                }
            }
            // After a failed wait for a wake-up, one whole interval passes before the next, so a
            // lost server is not asked again in a busy loop.
            let listening = !std::mem::take(&mut deaf);
            let heard = async {
                match listener.as_mut().filter(|_| listening) {
                    Some(l) => l.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = woken => {}
                r = heard => {
                    if let Err(e) = r {
                        tracing::warn!(loop_name = name, error = %e, "lost the wake-up listener; polling until it reconnects");
                        deaf = true;
                    }
                }
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// How long until the next pending timer not yet due comes due; `None` when there is
    /// none.
    async fn until_next_timer(&self) -> Result<Option<std::time::Duration>> {
        let now = self.now();
        let mut conn = self.conn().await?;
        Ok(timers::next_due_after(&mut conn, now)
            .await?
            .map(|at| (at - now).to_std().unwrap_or_default()))
    }

    /// Workers: consume the queue, `concurrency` jobs at a time, until shutdown.
    pub async fn run_workers(
        &self,
        concurrency: usize,
        shutdown: CancellationToken,
    ) -> Result<(), crate::queue::Error> {
        let engine = self.clone();
        let sink: JobSink = Arc::new(move |job: Job| {
            let engine = engine.clone();
            Box::pin(async move {
                // A panicking handler is contained here, on either queue: the row's lease runs
                // out and it is handed out again, and the worker goes on with other jobs.
                let run = std::panic::AssertUnwindSafe(engine.run_job(job.outbox_id));
                match run.catch_unwind().await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(outbox = job.outbox_id, error = %e, "job failed; the outbox will hand it out again");
                    }
                    Err(_) => {
                        tracing::error!(
                            outbox = job.outbox_id,
                            "job panicked; the outbox will hand it out again after its lease"
                        );
                        metrics::counter!("partnerflow_job_panics_total").increment(1);
                    }
                }
            })
        });
        self.inner.queue.consume(sink, concurrency, shutdown).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    use super::*;

    async fn engine() -> Engine {
        let db = std::env::temp_dir().join(format!("pf-loops-{}.db", uuid::Uuid::now_v7()));
        let store = partnerflow_store::Store::connect(&format!("sqlite:{}", db.display()), 2)
            .await
            .expect("store");
        store.migrate().await.expect("migrate");
        Engine::new(crate::EngineParts {
            store,
            queue: Arc::new(crate::queue::MemoryQueue::default()),
            notifier: Arc::new(partnerflow_notify::LogNotifier),
            clock: Arc::new(crate::SystemClock),
            registry: partnerflow_core::handler::HandlerRegistry::default(),
            calendar: Arc::new(partnerflow_core::BusinessCalendar::weekdays_only(
                chrono_tz::Asia::Shanghai,
            )),
            directory: Arc::new(partnerflow_core::directory::Directory::default()),
            programme: Arc::new(
                partnerflow_core::programme::Programme::parse(include_str!(
                    "../../../config/programme.toml"
                ))
                .expect("programme"),
            ),
            settings: crate::Settings::default(),
            reach: crate::Reach::development().expect("shipped templates"),
        })
    }

    /// Runs a loop that nothing wakes, on `interval`, whose rounds are `round(n)` for the n-th
    /// round; the third round shuts it down. How many rounds ran, or `None` if the loop did not
    /// end within 10 s.
    async fn three_rounds(
        interval: std::time::Duration,
        round: impl Fn(usize) -> Result<Round> + Send + Sync + Copy + 'static,
    ) -> Option<usize> {
        let engine = engine().await;
        let rounds = Arc::new(AtomicUsize::new(0));
        let shutdown = CancellationToken::new();
        let (r, s) = (rounds.clone(), shutdown.clone());
        let never_woken = tokio::sync::Notify::new();
        let looping = engine.run_loop(
            "test",
            (&never_woken, None),
            interval,
            shutdown,
            move |_| {
                let (r, s) = (r.clone(), s.clone());
                Box::pin(async move {
                    let n = r.fetch_add(1, SeqCst);
                    if n == 2 {
                        s.cancel();
                    }
                    round(n)
                })
            },
        );
        tokio::time::timeout(std::time::Duration::from_secs(10), looping)
            .await
            .ok()
            .map(|()| rounds.load(SeqCst))
    }

    #[tokio::test]
    async fn a_round_that_names_its_next_moment_runs_again_then_not_after_the_interval() {
        // An hour's poll: only the rounds' own next moment (a timer 5 ms away) brings them on.
        let ran = three_rounds(std::time::Duration::from_secs(3600), |_| {
            Ok((0, Some(std::time::Duration::from_millis(5))))
        })
        .await;
        assert_eq!(ran, Some(3), "three rounds well within the poll interval");
    }

    #[tokio::test]
    async fn a_round_that_panics_is_caught_and_the_loop_goes_on() {
        let ran = three_rounds(std::time::Duration::from_millis(1), |n| match n {
            0 => panic!("a defect in a round"),
            1 => Err(Error::Conflict("a failed round".to_owned())),
            _ => Ok((0, None)),
        })
        .await;
        assert_eq!(
            ran,
            Some(3),
            "the loop ends at shutdown, not at the panic, after the panic and the error"
        );
    }
}
