//! Carrying out one outbox row: running a step handler (delivering a notification is in
//! `deliver`).
//!
//! Whatever the queue delivers, the row decides: a row that is no longer pending, or a step
//! entry the instance has left, is acknowledged and nothing happens. Handlers run outside any
//! transaction; their result commits through a transition that also completes the row.

use chrono::{DateTime, Utc};
use partnerflow_core::definition::{Poll, StepKind};
use partnerflow_core::handler::{HandlerError, StepContext};
use partnerflow_core::machine::{Command, InstanceState, Status};
use partnerflow_store::{instances, outbox};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::engine::{Engine, Error, Result};
use crate::transition::Also;

impl Engine {
    /// Runs the outbox row `id` if it is still pending and no other worker holds its lease.
    /// Safe to call any number of times, concurrently too: the lease is taken first, renewed
    /// while the work runs, and the result commits only while it is still held.
    pub async fn run_job(&self, id: i64) -> Result<()> {
        let lease = outbox::Lease {
            id,
            token: Uuid::now_v7().to_string(),
        };
        let found = {
            let now = self.now();
            let mut conn = self.conn().await?;
            let backend = self.inner.store.backend;
            outbox::take(&mut conn, backend, &lease, now, self.lease_until(now)).await?
        };
        let Some((row, stored)) = found else {
            return Ok(());
        };
        let work = async {
            match &row.work {
                outbox::Work::RunStep { seq, step, handler } => {
                    self.run_step(&row, stored, *seq, step, handler).await
                }
                outbox::Work::Notify { key, spec } => {
                    self.deliver(&row, stored.map(|s| s.state), key, spec).await
                }
                outbox::Work::Webhook {
                    subscriber,
                    id,
                    event,
                    body,
                } => {
                    self.deliver_webhook(&row, subscriber, id, event, body)
                        .await
                }
            }
        };
        let result = tokio::select! {
            result = work => result,
            never = self.keep_leased(&row.lease) => match never {},
        };
        metrics::counter!("partnerflow_jobs_total", "kind" => kind_label(&row.work)).increment(1);
        match result {
            // Another worker finished the row first (a duplicate delivery): our result is void.
            Err(Error::Superseded(why)) => {
                tracing::debug!(outbox = id, %why, "result discarded");
                metrics::counter!("partnerflow_results_discarded_total").increment(1);
                Ok(())
            }
            other => other,
        }
    }

    /// Renews `lease` every third of the lease period for as long as it is polled. A lost
    /// lease is only logged: the work's result will then be discarded at commit.
    async fn keep_leased(&self, lease: &outbox::Lease) -> std::convert::Infallible {
        let period = self.inner.settings.lease / 3;
        loop {
            tokio::time::sleep(period).await;
            let until = self.lease_until(self.now());
            let renewed = match self.conn().await {
                Ok(mut conn) => outbox::renew(&mut conn, lease, until).await,
                Err(e) => Err(partnerflow_store::Error::NotFound(e.to_string())),
            };
            match renewed {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(
                        outbox = lease.id,
                        "lease lost; the result will be discarded"
                    )
                }
                Err(e) => tracing::warn!(outbox = lease.id, error = %e, "lease not renewed"),
            }
        }
    }

    async fn run_step(
        &self,
        row: &outbox::OutboxRow,
        stored: Option<instances::Stored>,
        seq: u64,
        step: &str,
        handler: &str,
    ) -> Result<()> {
        let now = self.now();
        let Some(stored) =
            stored.filter(|s| s.state.status == Status::Running && s.state.seq == seq)
        else {
            return self.finish_row(&row.lease, now).await;
        };
        let Some(h) = self.inner.registry.get_handler(handler) else {
            return self
                .step_failed(row, seq, format!("handler `{handler}` is not registered"))
                .await;
        };
        let (attempts, poll, params) = self.retry_policy(&stored.state, step);
        let ctx = StepContext {
            idempotency_key: format!("{}:{seq}:{step}", stored.state.id),
            params,
            instance: stored.state.clone(),
            step: step.to_owned(),
            now,
            calendar: self.inner.calendar.clone(),
            programme: self.inner.programme.clone(),
        };
        let ran = std::time::Instant::now();
        let result = h.run(ctx).await;
        metrics::histogram!("partnerflow_step_seconds", "handler" => handler.to_owned())
            .record(ran.elapsed().as_secs_f64());
        match result {
            Ok(out) => {
                let cmd = Command::StepCompleted {
                    seq,
                    outcome: out.outcome,
                    output: out.output,
                };
                match self
                    .apply(
                        row.instance_id,
                        cmd,
                        Also {
                            outbox_done: Some(row.lease.clone()),
                            preloaded: Some(stored),
                            ..Also::default()
                        },
                    )
                    .await
                {
                    Err(Error::Refused(e)) => self.step_failed(row, seq, e.to_string()).await,
                    other => other.map(drop),
                }
            }
            Err(HandlerError::Fatal(msg)) => self.step_failed(row, seq, msg).await,
            Err(HandlerError::Pending(msg)) if poll.is_some() => {
                self.still_pending(row, stored, seq, &msg, poll, now).await
            }
            Err(HandlerError::Retryable(msg) | HandlerError::Pending(msg)) => {
                if row.failures + 1 >= attempts {
                    self.step_failed(
                        row,
                        seq,
                        format!("gave up after {attempts} attempts: {msg}"),
                    )
                    .await
                } else {
                    self.retry_later(row, &msg, now).await
                }
            }
        }
    }

    /// Attempts the step's definition allows, how it polls a pending provider and the
    /// handler's parameters, from the instance the worker already read.
    fn retry_policy(&self, state: &InstanceState, step: &str) -> (i64, Option<Poll>, Value) {
        self.definition(&state.workflow_id, state.version)
            .ok()
            .and_then(|d| match d.step(step).map(|s| &s.kind) {
                Some(StepKind::Automated {
                    max_attempts,
                    poll,
                    params,
                    ..
                }) => Some((i64::from(*max_attempts), *poll, params.clone())),
                _ => None,
            })
            .unwrap_or((1, None, Value::Null))
    }

    /// A provider still deciding: ask again after `poll.every`, until `poll.deadline` after
    /// the step was entered; then the step follows `timeout` (or fails without one).
    async fn still_pending(
        &self,
        row: &outbox::OutboxRow,
        stored: instances::Stored,
        seq: u64,
        msg: &str,
        poll: Option<Poll>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let Some(poll) = poll else {
            return self.retry_later(row, msg, now).await;
        };
        let cal = &self.inner.calendar;
        let deadline = poll.deadline.after(row.created_at, None, cal).at;
        if now < deadline {
            let next = poll.every.after(now, None, cal).at.min(deadline);
            let mut conn = self.conn().await?;
            outbox::poll_later(&mut conn, &row.lease, next, msg).await?;
            return Ok(());
        }
        let def = self.definition(&stored.state.workflow_id, stored.state.version)?;
        let has_timeout = stored
            .state
            .step
            .as_deref()
            .and_then(|s| def.step(s))
            .is_some_and(|s| s.on.contains_key("timeout"));
        if !has_timeout {
            return self
                .step_failed(row, seq, format!("still pending at its deadline: {msg}"))
                .await;
        }
        let cmd = Command::StepCompleted {
            seq,
            outcome: "timeout".to_owned(),
            output: json!({ "pending": msg, "deadline": deadline }),
        };
        let also = Also {
            outbox_done: Some(row.lease.clone()),
            preloaded: Some(stored),
            ..Also::default()
        };
        self.apply(row.instance_id, cmd, also).await.map(drop)
    }

    async fn step_failed(&self, row: &outbox::OutboxRow, seq: u64, error: String) -> Result<()> {
        tracing::warn!(instance = %row.instance_id, %error, "step failed");
        self.apply(
            row.instance_id,
            Command::StepFailed { seq, error },
            Also {
                outbox_done: Some(row.lease.clone()),
                ..Also::default()
            },
        )
        .await
        .map(drop)
    }

    pub(crate) async fn retry_later(
        &self,
        row: &outbox::OutboxRow,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let backoff = self.inner.settings.retry_base
            * 2u32.saturating_pow(u32::try_from(row.failures).unwrap_or(16).min(16));
        let at = now + chrono::Duration::from_std(backoff).unwrap_or(chrono::Duration::hours(1));
        let mut conn = self.conn().await?;
        outbox::retry(&mut conn, &row.lease, at, error).await?;
        Ok(())
    }

    pub(crate) async fn finish_row(&self, lease: &outbox::Lease, now: DateTime<Utc>) -> Result<()> {
        let mut conn = self.conn().await?;
        outbox::complete(&mut conn, lease, now).await?;
        Ok(())
    }
}

fn kind_label(w: &outbox::Work) -> &'static str {
    match w {
        outbox::Work::RunStep { .. } => "run_step",
        outbox::Work::Notify { .. } => "notify",
        outbox::Work::Webhook { .. } => "webhook",
    }
}
