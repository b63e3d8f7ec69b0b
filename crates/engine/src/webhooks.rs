//! Outbound webhooks: the audit events a transition appends become, for each subscriber that
//! asked for their type, outbox rows written in the same transaction. Rows of one instance and
//! subscriber are delivered one at a time in order (the outbox's ordering key); each attempt is
//! logged before the receiver is called and its answer after.

use partnerflow_core::machine::{Event, InstanceState};
use partnerflow_notify::webhook::Outgoing;
use partnerflow_store::{outbox, webhooks};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::engine::{Engine, Error, Result};

/// The webhook type of an audit event, if it is one subscribers may receive.
fn webhook_type(e: &Event) -> Option<&'static str> {
    Some(match e.kind.as_str() {
        "task_opened" => "task.created",
        "escalated" => "task.escalated",
        "step_completed" => "step.completed",
        "sla_breached" => "sla.breached",
        "finished" | "failed" | "cancelled" => "workflow.finished",
        "posting" if e.payload.get("movement").and_then(Value::as_str) == Some("consume") => {
            "payment.made"
        }
        _ => return None,
    })
}

impl Engine {
    /// The webhook rows for `events`, appended after `event_count` earlier events.
    pub(crate) fn webhook_jobs(
        &self,
        state: &InstanceState,
        events: &[Event],
        event_count: i64,
    ) -> Vec<outbox::Work> {
        let subscribers = &self.inner.reach.webhooks;
        if subscribers.is_empty() {
            return Vec::new();
        }
        let mut jobs = Vec::new();
        for (i, e) in events.iter().enumerate() {
            let Some(kind) = webhook_type(e) else {
                continue;
            };
            let sequence = event_count + i64::try_from(i).unwrap_or(0) + 1;
            let id = format!("{}:{sequence}", state.id);
            let mut data = e.payload.clone();
            if let Some(map) = data.as_object_mut() {
                map.insert("actor".to_owned(), Value::String(e.actor.clone()));
                if kind == "workflow.finished" {
                    map.insert(
                        "status".to_owned(),
                        Value::String(state.status.label().to_owned()),
                    );
                }
            }
            let body = json!({
                "id": id,
                "type": kind,
                "created_at": e.at,
                "instance_id": state.id,
                "workflow_id": state.workflow_id,
                "business_key": state.business_key,
                "partner_id": state.partner_id,
                "sequence": sequence,
                "data": data,
            });
            for s in subscribers.iter().filter(|s| s.wants(kind)) {
                jobs.push(outbox::Work::Webhook {
                    subscriber: s.id.clone(),
                    id: id.clone(),
                    event: kind.to_owned(),
                    body: body.clone(),
                });
            }
        }
        jobs
    }

    /// Delivers one webhook row: logged, sent signed, answered; retried with backoff, and
    /// recorded as failed after the last attempt (a replay sends it again).
    pub(crate) async fn deliver_webhook(
        &self,
        row: &outbox::OutboxRow,
        subscriber: &str,
        id: &str,
        event: &str,
        body: &Value,
    ) -> Result<()> {
        let now = self.now();
        let log_id = format!("{subscriber}:{id}");
        let Some(s) = self
            .inner
            .reach
            .webhooks
            .iter()
            .find(|s| s.id == subscriber)
        else {
            let mut conn = self.conn().await?;
            outbox::bury(
                &mut conn,
                &row.lease,
                &format!("webhook subscriber `{subscriber}` is no longer configured"),
                now,
            )
            .await?;
            return Ok(());
        };
        {
            let mut conn = self.conn().await?;
            webhooks::attempt(
                &mut conn,
                &log_id,
                subscriber,
                &row.instance_id.to_string(),
                event,
                body,
                now,
            )
            .await?;
        }
        let bytes = body.to_string().into_bytes();
        let secrets = s.secrets_at(now);
        let answer = self
            .inner
            .reach
            .webhook_client
            .post(&Outgoing {
                url: &s.url,
                event,
                delivery_id: id,
                body: &bytes,
                secrets: &secrets,
                timestamp: now.timestamp(),
            })
            .await;
        let mut conn = self.conn().await?;
        let Some(error) = answer.error else {
            let backend = self.inner.store.backend;
            webhooks::delivered(
                &mut conn,
                backend,
                &log_id,
                answer.status,
                &row.lease,
                self.now(),
            )
            .await?;
            metrics::counter!("partnerflow_webhooks_delivered_total").increment(1);
            return Ok(());
        };
        metrics::counter!("partnerflow_webhook_failures_total").increment(1);
        if row.failures + 1 < self.inner.reach.webhook_attempts {
            webhooks::answered(
                &mut conn,
                &log_id,
                webhooks::SENDING,
                answer.status,
                Some(&error),
                self.now(),
            )
            .await?;
            drop(conn);
            return self.retry_later(row, &error, now).await;
        }
        tracing::error!(subscriber, id, %error, "webhook undeliverable after its last attempt");
        webhooks::answered(
            &mut conn,
            &log_id,
            webhooks::FAILED,
            answer.status,
            Some(&error),
            self.now(),
        )
        .await?;
        outbox::bury(&mut conn, &row.lease, &error, now).await?;
        Ok(())
    }

    /// A subscriber's delivery log, newest first.
    pub async fn webhook_deliveries(
        &self,
        subscriber: &str,
        failed_only: bool,
        limit: i64,
    ) -> Result<Vec<webhooks::Delivery>> {
        if !self.inner.reach.webhooks.iter().any(|s| s.id == subscriber) {
            return Err(Error::NotFound(format!("webhook subscriber {subscriber}")));
        }
        let mut conn = self.conn().await?;
        Ok(webhooks::list(&mut conn, subscriber, failed_only, limit).await?)
    }

    /// Sends a logged delivery again, with the same event id (after its instance's pending
    /// deliveries to the same subscriber).
    pub async fn replay_webhook(&self, subscriber: &str, id: &str) -> Result<Value> {
        let mut conn = self.conn().await?;
        let log_id = format!("{subscriber}:{id}");
        let d = webhooks::get(&mut conn, &log_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("webhook delivery {id} to {subscriber}")))?;
        let instance_id =
            Uuid::parse_str(&d.instance_id).map_err(|e| Error::Conflict(e.to_string()))?;
        let work = outbox::Work::Webhook {
            subscriber: d.subscriber.clone(),
            id: id.to_owned(),
            event: d.event.clone(),
            body: d.body.clone(),
        };
        outbox::insert_many(&mut conn, instance_id, &[work], self.now()).await?;
        drop(conn);
        self.inner.wake_dispatcher.notify_waiters();
        Ok(json!({ "replayed": id, "subscriber": subscriber, "event": d.event }))
    }
}
