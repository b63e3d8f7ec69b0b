//! Delivering a notification: every address resolved, then for each the intent committed
//! under its key, the provider called outside any transaction, and the result committed.

use chrono::{DateTime, Utc};
use partnerflow_core::definition::{Channel, NotifySpec, Recipient};
use partnerflow_core::machine::InstanceState;
use partnerflow_notify::Message;
use partnerflow_store::{notifications, outbox};
use serde_json::json;

use crate::engine::{Engine, Result};

/// One resolved address of a notification.
struct Address {
    recipient: String,
    name: String,
    locale: String,
    channel: Channel,
    address: String,
}

impl Engine {
    /// Delivers each address of a notification: intent, provider call, result. The record's
    /// key makes a second delivery of the same row a no-op.
    pub(crate) async fn deliver(
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
                    .party
                    .iter()
                    .flat_map(|c| {
                        spec.channels.iter().filter_map(|ch| {
                            let address = match ch {
                                Channel::Email => c.email.clone(),
                                Channel::Sms => c.phone.clone(),
                            };
                            (!address.is_empty())
                                .then_some(address)
                                .map(|address| Address {
                                    recipient: format!(
                                        "partner:{}",
                                        state.partner_id.as_deref().unwrap_or("?")
                                    ),
                                    name: c.name.clone(),
                                    locale: c.locale.clone(),
                                    channel: *ch,
                                    address,
                                })
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
