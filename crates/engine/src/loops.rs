//! The long-running loops (dispatcher with its reconciling lease, timer sweeper, workers) and
//! [`Engine::drain`], which does all due work inline so tests and the demo advance without
//! sleeping.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use partnerflow_core::machine::Command;
use partnerflow_store::{outbox, timers};
use tokio_util::sync::CancellationToken;

use crate::engine::{Engine, Error, Result};
use crate::queue::{Job, JobSink};
use crate::transition::Also;

impl Engine {
    fn lease_until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::Duration::from_std(self.inner.settings.lease)
            .unwrap_or(chrono::Duration::seconds(30))
    }

    /// Leases a batch of due outbox rows (new ones, and ones whose lease ran out).
    async fn claim_outbox(&self) -> Result<Vec<i64>> {
        let now = self.now();
        let batch = self.inner.settings.batch;
        Ok(outbox::claim_due(&self.inner.store, now, self.lease_until(now), batch).await?)
    }

    /// Leases due outbox rows — new ones, and ones whose lease ran out because the queue or a
    /// worker lost them — and pushes them to the queue. Returns how many were pushed.
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
            // The rows stay leased and come back when the lease runs out.
            tracing::warn!(error = %e, rows = n, "queue refused jobs; they will be re-dispatched after the lease");
            return Ok(0);
        }
        metrics::counter!("partnerflow_dispatched_total").increment(n as u64);
        Ok(n)
    }

    /// Fires due timers. Returns how many fired.
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
        for t in due {
            let late = (now - t.due_at).num_milliseconds().max(0);
            metrics::histogram!("partnerflow_timer_lateness_seconds").record(late as f64 / 1000.0);
            let cmd = Command::TimerFired {
                seq: t.seq,
                timer: t.kind.clone(),
            };
            match self
                .apply(
                    t.instance_id,
                    cmd,
                    Also {
                        timer_fired: Some(t.id),
                        ..Also::default()
                    },
                )
                .await
            {
                Ok(_) => {}
                Err(Error::Refused(e)) => {
                    tracing::error!(instance = %t.instance_id, timer = t.id, error = %e, "timer refused by the state machine; marked fired");
                    let mut conn = self.conn().await?;
                    timers::mark_fired(&mut conn, t.id).await?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(n)
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

    /// The dispatcher: pushes due rows whenever a commit wakes it, and at least every poll
    /// interval (which is also when leases that ran out are noticed).
    pub async fn run_dispatcher(&self, shutdown: CancellationToken) {
        self.run_loop("dispatcher", &self.inner.wake_dispatcher, shutdown, |e| {
            Box::pin(async move { e.dispatch_once().await })
        })
        .await;
    }

    /// The timer sweeper.
    pub async fn run_sweeper(&self, shutdown: CancellationToken) {
        self.run_loop("sweeper", &self.inner.wake_sweeper, shutdown, |e| {
            Box::pin(async move { e.sweep_once().await })
        })
        .await;
    }

    async fn run_loop(
        &self,
        name: &'static str,
        wake: &tokio::sync::Notify,
        shutdown: CancellationToken,
        round: impl Fn(Engine) -> futures::future::BoxFuture<'static, Result<usize>>,
    ) {
        loop {
            let woken = wake.notified();
            match round(self.clone()).await {
                // A full batch means there may be more right now; otherwise wait for a wake-up.
                Ok(n) if n >= usize::try_from(self.inner.settings.batch).unwrap_or(usize::MAX) => {
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(loop_name = name, error = %e, "round failed; retrying after the poll interval")
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = woken => {}
                () = tokio::time::sleep(self.inner.settings.poll) => {}
            }
        }
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
                if let Err(e) = engine.run_job(job.outbox_id).await {
                    tracing::warn!(outbox = job.outbox_id, error = %e, "job failed; the outbox will hand it out again");
                }
            })
        });
        self.inner.queue.consume(sink, concurrency, shutdown).await
    }
}
