//! Carrying out one outbox row: running a step handler or delivering a notification.
//!
//! Whatever the queue delivers, the row decides: a row that is no longer pending, or a step
//! entry the instance has left, is acknowledged and nothing happens. Handlers run outside any
//! transaction; their result commits through a transition that also completes the row.

use chrono::{DateTime, Utc};
use partnerflow_core::definition::{Channel, NotifySpec, Recipient};
use partnerflow_core::handler::{HandlerError, StepContext};
use partnerflow_core::machine::{Command, InstanceState, Status};
use partnerflow_notify::Message;
use partnerflow_store::{instances, notifications, outbox};
use serde_json::json;
use uuid::Uuid;

use crate::engine::{Engine, Error, Result};
use crate::transition::Also;

/// One resolved address of a notification.
struct Address {
    recipient: String,
    name: String,
    locale: String,
    channel: Channel,
    address: String,
}

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
            if !outbox::take(&mut conn, &lease, now, self.lease_until(now)).await? {
                return Ok(());
            }
            outbox::get_pending(&mut conn, id).await?
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
        let attempts = self.max_attempts(&stored.state, step);
        let ctx = StepContext {
            idempotency_key: format!("{}:{seq}:{step}", stored.state.id),
            instance: stored.state.clone(),
            step: step.to_owned(),
            now,
            calendar: self.inner.calendar.clone(),
            programme: self.inner.programme.clone(),
        };
        match h.run(ctx).await {
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
            Err(HandlerError::Retryable(msg)) => {
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

    /// Attempts the step's definition allows, from the instance the worker already read.
    fn max_attempts(&self, state: &InstanceState, step: &str) -> i64 {
        self.definition(&state.workflow_id, state.version)
            .ok()
            .and_then(|d| match d.step(step).map(|s| &s.kind) {
                Some(partnerflow_core::definition::StepKind::Automated {
                    max_attempts, ..
                }) => Some(i64::from(*max_attempts)),
                _ => None,
            })
            .unwrap_or(1)
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

    async fn retry_later(
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

    async fn finish_row(&self, lease: &outbox::Lease, now: DateTime<Utc>) -> Result<()> {
        let mut conn = self.conn().await?;
        outbox::complete(&mut conn, lease, now).await?;
        Ok(())
    }

    /// Delivers each address of a notification: intent, provider call, result. The record's
    /// key makes a second delivery of the same row a no-op.
    async fn deliver(
        &self,
        row: &outbox::OutboxRow,
        state: Option<partnerflow_core::machine::InstanceState>,
        key: &str,
        spec: &NotifySpec,
    ) -> Result<()> {
        let now = self.now();
        let Some(state) = state else {
            return self.finish_row(&row.lease, now).await;
        };
        let addresses = self.resolve(&state, spec);
        if addresses.is_empty() {
            tracing::warn!(instance = %state.id, template = %spec.template, to = ?spec.to, "notification has no address; recorded as undeliverable");
        }
        // Per address: the intent is committed (claimed under its key), the provider called
        // outside any transaction, the result committed. An address another sender holds right
        // now leaves the row for later, so it is not completed while that send may still fail.
        let until = self.lease_until(now);
        for a in &addresses {
            let sent = notifications::Sent {
                key: format!("{key}:{}:{:?}", a.recipient, a.channel).to_lowercase(),
                instance_id: state.id.to_string(),
                channel: format!("{:?}", a.channel).to_lowercase(),
                recipient: a.recipient.clone(),
                address: a.address.clone(),
                template: spec.template.clone(),
                payload: json!({ "workflow": state.workflow_id, "business_key": state.business_key, "step": state.step, "status": state.status.label() }),
                sent_at: now,
                status: notifications::SENDING.to_owned(),
                attempts: 0,
                last_error: None,
            };
            let claim = {
                let mut conn = self.conn().await?;
                notifications::claim(&mut conn, &sent, now, until).await?
            };
            match claim {
                notifications::Claim::Sent => continue,
                notifications::Claim::Busy => return Ok(()),
                notifications::Claim::Send => {}
            }
            let message = Message {
                key: sent.key.clone(),
                channel: a.channel,
                address: a.address.clone(),
                recipient_name: a.name.clone(),
                locale: a.locale.clone(),
                template: spec.template.clone(),
                vars: sent.payload.clone(),
            };
            let result = self.inner.notifier.send(&message).await;
            let mut conn = self.conn().await?;
            match result {
                Ok(()) => notifications::mark_sent(&mut conn, &sent.key, self.now()).await?,
                Err(e) => {
                    notifications::release(&mut conn, &sent.key, &e.to_string()).await?;
                    drop(conn);
                    return self.notify_failed(row, &e, now).await;
                }
            }
        }
        self.finish_row(&row.lease, now).await
    }

    async fn notify_failed(
        &self,
        row: &outbox::OutboxRow,
        e: &partnerflow_notify::Error,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let retryable = matches!(e, partnerflow_notify::Error::Retryable(_));
        if retryable && row.failures + 1 < self.inner.settings.notify_attempts {
            return self.retry_later(row, &e.to_string(), now).await;
        }
        tracing::error!(outbox = row.id, error = %e, "notification undeliverable");
        let mut conn = self.conn().await?;
        outbox::bury(&mut conn, &row.lease, &e.to_string(), now).await?;
        Ok(())
    }

    fn resolve(&self, state: &InstanceState, spec: &NotifySpec) -> Vec<Address> {
        let dir = &self.inner.directory;
        let people: Vec<&partnerflow_core::directory::Person> = match &spec.to {
            Recipient::Partner => {
                return state
                    .contact
                    .iter()
                    .flat_map(|c| {
                        spec.channels.iter().map(|ch| Address {
                            recipient: format!(
                                "partner:{}",
                                state.partner_id.as_deref().unwrap_or("?")
                            ),
                            name: c.name.clone(),
                            locale: "zh-CN".to_owned(),
                            channel: *ch,
                            address: match ch {
                                Channel::Email => c.email.clone(),
                                Channel::Sms => c.phone.clone(),
                            },
                        })
                    })
                    .collect();
            }
            Recipient::Role(r) => dir.holders(r).collect(),
            Recipient::EscalationTarget => Vec::new(),
            Recipient::ProgrammeDirector => {
                dir.person(&dir.programme_director).into_iter().collect()
            }
            Recipient::Person(id) => dir.person(id).into_iter().collect(),
        };
        people
            .into_iter()
            .flat_map(|p| {
                spec.channels.iter().filter_map(|ch| {
                    let address = match ch {
                        Channel::Email => p.email.clone(),
                        Channel::Sms => p.phone.clone(),
                    }?;
                    Some(Address {
                        recipient: p.id.clone(),
                        name: p.name.clone(),
                        locale: p.locale.clone(),
                        channel: *ch,
                        address,
                    })
                })
            })
            .collect()
    }
}

fn kind_label(w: &outbox::Work) -> &'static str {
    match w {
        outbox::Work::RunStep { .. } => "run_step",
        outbox::Work::Notify { .. } => "notify",
    }
}
