//! Delivering a notification: every address resolved, then for each the message rendered in
//! the recipient's language, the intent committed under its key, the provider called outside
//! any transaction, and the result committed. Quiet hours hold non-urgent messages until the
//! recipient's working hours; a channel that failed for good falls back to the other one.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use partnerflow_core::definition::{Channel, NotifySpec};
use partnerflow_core::directory::Directory;
use partnerflow_core::machine::InstanceState;
use partnerflow_notify::context::{Detail, InstanceVars, RecipientVars, TaskVars};
use partnerflow_notify::{Context, Message};
use partnerflow_store::{notifications, outbox};
use serde_json::{Value, json};

use crate::engine::{Engine, Result};
use crate::recipients::{Address, resolve, task_role};

/// How one address went.
enum Sent {
    Done,
    /// Another sender holds it right now: the row is left for later.
    Busy,
    /// Failed, to retry later.
    Retry(String),
    /// Failed for good (fallback tried where there is one).
    Failed(String),
}

impl Engine {
    /// Delivers each address of a notification. The record's key makes a second delivery of
    /// the same row a no-op.
    pub(crate) async fn deliver(
        &self,
        row: &outbox::OutboxRow,
        state: Option<InstanceState>,
        key: &str,
        spec: &NotifySpec,
    ) -> Result<()> {
        let now = self.now();
        let Some(state) = state else {
            return self.finish_row(&row.lease, now).await;
        };
        let def = self.definition(&state.workflow_id, state.version)?;
        let role = task_role(&def, &state);
        // Partner contacts come from the instance; only directory recipients need the
        // delegations in force.
        let dir = if spec.to == partnerflow_core::definition::Recipient::Partner {
            Cow::Borrowed(&*self.inner.directory)
        } else {
            self.directory_now(now).await?
        };
        let tz = self.inner.calendar.timezone().name().to_owned();
        let addresses = resolve(&dir, &state, role.as_deref(), spec, now, &tz);
        if addresses.is_empty() {
            tracing::warn!(instance = %state.id, template = %spec.template, to = ?spec.to, "notification has no address; recorded as undeliverable");
        }
        let last_attempt = row.failures + 1 >= self.inner.settings.notify_attempts;
        let mut held_until: Option<DateTime<Utc>> = None;
        let mut failures = Vec::new();
        for a in &addresses {
            if !spec.urgent
                && let Some(open) = self.quiet_until(a, now)
            {
                held_until = Some(held_until.map_or(open, |h| h.min(open)));
                continue;
            }
            let ctx = self
                .context(
                    &def,
                    &state,
                    role.as_deref(),
                    a,
                    &dir,
                    key,
                    &spec.template,
                    now,
                )
                .await?;
            match self
                .send_one(&state, spec, key, a, &ctx, last_attempt, now)
                .await?
            {
                Sent::Done => {}
                Sent::Busy => return Ok(()),
                Sent::Retry(e) => return self.retry_later(row, &e, now).await,
                Sent::Failed(e) => failures.push(e),
            }
        }
        let mut conn = self.conn().await?;
        if let Some(at) = held_until {
            metrics::counter!("partnerflow_notifications_held_total").increment(1);
            outbox::poll_later(&mut conn, &row.lease, at, "quiet hours").await?;
            return Ok(());
        }
        if !failures.is_empty() {
            let error = failures.join("; ");
            tracing::error!(outbox = row.id, %error, "notification undeliverable");
            outbox::bury(&mut conn, &row.lease, &error, now).await?;
            return Ok(());
        }
        outbox::complete(&mut conn, &row.lease, now).await?;
        Ok(())
    }

    /// One address: claim, send, record; on a failure for good, the other channel once.
    #[allow(clippy::too_many_arguments)]
    async fn send_one(
        &self,
        state: &InstanceState,
        spec: &NotifySpec,
        key: &str,
        a: &Address,
        ctx: &Context,
        last_attempt: bool,
        now: DateTime<Utc>,
    ) -> Result<Sent> {
        let akey = address_key(key, a);
        let first = self
            .attempt(state, spec, &akey, a, a.channel, &a.address, ctx, now)
            .await?;
        let error = match first {
            Attempt::Sent => return Ok(Sent::Done),
            Attempt::Busy => return Ok(Sent::Busy),
            Attempt::Failed(partnerflow_notify::Error::Retryable(e)) if !last_attempt => {
                let mut conn = self.conn().await?;
                notifications::release(&mut conn, &akey, &e).await?;
                return Ok(Sent::Retry(e));
            }
            Attempt::Failed(e) => e.to_string(),
        };
        {
            let mut conn = self.conn().await?;
            notifications::mark_failed(&mut conn, &akey, &error).await?;
        }
        metrics::counter!("partnerflow_notifications_failed_total", "channel" => channel_label(a.channel)).increment(1);
        let Some(other_address) = a.other.as_deref() else {
            return Ok(Sent::Failed(format!("{}: {error}", a.address)));
        };
        let other = match a.channel {
            Channel::Email => Channel::Sms,
            Channel::Sms => Channel::Email,
        };
        if spec.channels.contains(&other) {
            // The message goes by the other channel anyway.
            return Ok(Sent::Done);
        }
        let fkey = format!("{akey}:fallback");
        let fallback = Address {
            channel: other,
            address: other_address.to_owned(),
            ..a.clone()
        };
        let outcome = self
            .attempt(
                state,
                spec,
                &fkey,
                &fallback,
                other,
                other_address,
                ctx,
                now,
            )
            .await?;
        let mut conn = self.conn().await?;
        notifications::mark_fallback(&mut conn, &fkey, &akey).await?;
        tracing::warn!(instance = %state.id, failed = %akey, fallback = %fkey, %error, "notification fell back to the other channel");
        metrics::counter!("partnerflow_notification_fallbacks_total").increment(1);
        Ok(match outcome {
            Attempt::Sent => Sent::Done,
            Attempt::Busy => Sent::Busy,
            Attempt::Failed(e) => {
                notifications::mark_failed(&mut conn, &fkey, &e.to_string()).await?;
                Sent::Failed(format!(
                    "{}: {error}; fallback {other_address}: {e}",
                    a.address
                ))
            }
        })
    }

    /// Claims `akey`, renders and sends; the record says `sent` after the provider accepted.
    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        state: &InstanceState,
        spec: &NotifySpec,
        akey: &str,
        a: &Address,
        channel: Channel,
        address: &str,
        ctx: &Context,
        now: DateTime<Utc>,
    ) -> Result<Attempt> {
        let sent = notifications::Sent {
            key: akey.to_owned(),
            instance_id: state.id.to_string(),
            channel: channel_label(channel).to_owned(),
            recipient: a.recipient.clone(),
            address: address.to_owned(),
            template: spec.template.clone(),
            payload: json!({ "workflow": state.workflow_id, "business_key": state.business_key, "step": state.step, "status": state.status.label(), "copy": a.copy, "links": ctx.links.len() }),
            sent_at: now,
            status: notifications::SENDING.to_owned(),
            attempts: 0,
            last_error: None,
            fallback_for: None,
        };
        let claim = {
            let mut conn = self.conn().await?;
            notifications::claim(&mut conn, &sent, now, self.lease_until(now)).await?
        };
        match claim {
            notifications::Claim::Sent => return Ok(Attempt::Sent),
            notifications::Claim::Busy => return Ok(Attempt::Busy),
            notifications::Claim::Send => {}
        }
        let content = match self
            .inner
            .reach
            .templates
            .render(&spec.template, &a.locale, ctx)
        {
            Ok(c) => c,
            Err(e) => {
                return Ok(Attempt::Failed(partnerflow_notify::Error::Permanent(
                    e.to_string(),
                )));
            }
        };
        let message = Message {
            key: akey.to_owned(),
            channel,
            address: address.to_owned(),
            recipient_name: a.name.clone(),
            template: spec.template.clone(),
            params: partnerflow_notify::sms_params(ctx),
            content,
        };
        match self.inner.notifier.send(&message).await {
            Ok(()) => {
                let mut conn = self.conn().await?;
                notifications::mark_sent(&mut conn, akey, self.now()).await?;
                metrics::counter!("partnerflow_notifications_sent_total", "channel" => channel_label(channel)).increment(1);
                Ok(Attempt::Sent)
            }
            Err(e) => Ok(Attempt::Failed(e)),
        }
    }

    /// The variables of the message to `a`, with signed links when `a` may decide the open
    /// task (recorded before the message is sent, so they work when it arrives).
    #[allow(clippy::too_many_arguments)]
    async fn context(
        &self,
        def: &partnerflow_core::definition::WorkflowDefinition,
        state: &InstanceState,
        role: Option<&str>,
        a: &Address,
        dir: &Directory,
        key: &str,
        template: &str,
        now: DateTime<Utc>,
    ) -> Result<Context> {
        let tz: chrono_tz::Tz = a
            .time_zone
            .parse()
            .unwrap_or(self.inner.calendar.timezone());
        let task = match (&state.task, role) {
            (Some(t), Some(role)) => TaskVars {
                id: t.id.to_string(),
                role: role.to_owned(),
                step: state.step.clone().unwrap_or_default(),
                due_at: format!(
                    "{} ({tz})",
                    t.due.at.with_timezone(&tz).format("%Y-%m-%d %H:%M")
                ),
            },
            _ => TaskVars::default(),
        };
        let links = match (&state.task, role) {
            // Task messages (assigned, reminder, escalation) carry the links.
            (Some(t), Some(role)) if a.person && !a.copy && template.starts_with("task.") => {
                self.links_for(def, state, t.id, role, a, dir, key, now)
                    .await?
            }
            _ => Vec::new(),
        };
        let details = def
            .summary
            .iter()
            .filter_map(|(name, pointer)| {
                let v = state.value_at(pointer)?;
                let value = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => return None,
                    other => other.to_string(),
                };
                Some(Detail {
                    name: name.clone(),
                    value,
                })
            })
            .collect();
        Ok(Context {
            recipient: RecipientVars {
                name: a.name.clone(),
            },
            instance: InstanceVars {
                id: state.id.to_string(),
                workflow: state.workflow_id.clone(),
                business_key: state.business_key.clone(),
                step: state.step.clone().unwrap_or_default(),
                status: state.status.label().to_owned(),
                partner_id: state.partner_id.clone().unwrap_or_default(),
            },
            task,
            level: level_of(key),
            links,
            details,
        })
    }

    /// When `a`'s working hours next begin, if they have not (a working day of the business
    /// calendar, in `a`'s time zone); `None` inside them, or without quiet hours.
    fn quiet_until(&self, a: &Address, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let (start, end) = self.inner.reach.working_hours?;
        let tz: chrono_tz::Tz = a
            .time_zone
            .parse()
            .unwrap_or(self.inner.calendar.timezone());
        let local = now.with_timezone(&tz);
        let cal = &self.inner.calendar;
        let time = local.time();
        if cal.is_working_day(local.date_naive()) && time >= start && time < end {
            return None;
        }
        let mut day = local.date_naive();
        if !(cal.is_working_day(day) && time < start) {
            day = day.succ_opt()?;
        }
        for _ in 0..60 {
            if cal.is_working_day(day) {
                let at = day.and_time(start).and_local_timezone(tz).earliest()?;
                return Some(at.with_timezone(&Utc));
            }
            day = day.succ_opt()?;
        }
        None
    }

    /// The directory with the delegations made through the API added, as they stand now.
    pub(crate) async fn directory_now(&self, now: DateTime<Utc>) -> Result<Cow<'_, Directory>> {
        let mut conn = self.conn().await?;
        self.with_delegations(&mut conn, now).await
    }
}

enum Attempt {
    Sent,
    Busy,
    Failed(partnerflow_notify::Error),
}

fn address_key(key: &str, a: &Address) -> String {
    format!("{key}:{}:{:?}", a.recipient, a.channel).to_lowercase()
}

fn channel_label(c: Channel) -> &'static str {
    match c {
        Channel::Email => "email",
        Channel::Sms => "sms",
    }
}

/// The escalation level or reminder rung from the key's cause (`escalate0` → 1).
fn level_of(key: &str) -> u32 {
    let mut parts = key.rsplit(':');
    let _template = parts.next();
    let _index = parts.next();
    let cause = parts.next().unwrap_or("");
    ["escalate", "remind"]
        .iter()
        .find_map(|p| cause.strip_prefix(p))
        .and_then(|n| n.parse::<u32>().ok())
        .map_or(0, |n| n + 1)
}
