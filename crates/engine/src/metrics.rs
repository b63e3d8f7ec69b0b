//! The service's metrics: every series registered at start-up (zeros are visible before the
//! first event), counters from the audit events a committed transition appended, and gauges
//! read from the database on an interval by the dispatching process.

use std::time::Duration;

use partnerflow_core::definition::StepKind;
use partnerflow_core::machine::Event;
use tokio_util::sync::CancellationToken;

use crate::engine::{Engine, Result};

/// Every counter, with what it counts (the README's table is made from the same list).
pub const COUNTERS: &[(&str, &str)] = &[
    (
        "partnerflow_workflows_started_total",
        "instances started, by workflow",
    ),
    (
        "partnerflow_workflows_finished_total",
        "instances ended, by workflow and end status (failed and cancelled included)",
    ),
    (
        "partnerflow_sla_reminders_total",
        "reminders sent on open tasks, by role",
    ),
    (
        "partnerflow_sla_escalations_total",
        "escalations of late tasks, by role",
    ),
    ("partnerflow_sla_breaches_total", "SLA breaches, by role"),
    (
        "partnerflow_notifications_sent_total",
        "messages a provider accepted, by channel",
    ),
    (
        "partnerflow_notifications_failed_total",
        "addresses given up after the last attempt, by channel",
    ),
    (
        "partnerflow_notification_fallbacks_total",
        "messages sent by the other channel after a failure",
    ),
    (
        "partnerflow_notifications_held_total",
        "notification rows held for quiet hours",
    ),
    (
        "partnerflow_webhooks_delivered_total",
        "webhook events a receiver accepted",
    ),
    (
        "partnerflow_webhook_failures_total",
        "webhook attempts a receiver refused or did not answer",
    ),
    ("partnerflow_transitions_total", "committed transitions"),
    ("partnerflow_jobs_total", "outbox rows carried out, by kind"),
];

/// Every gauge.
pub const GAUGES: &[(&str, &str)] = &[
    ("partnerflow_open_tasks", "open tasks, by role"),
    (
        "partnerflow_overdue_tasks",
        "open tasks past their due time, by role",
    ),
    ("partnerflow_outbox_backlog", "outbox rows not yet done"),
    (
        "partnerflow_outbox_oldest_age_seconds",
        "age of the oldest pending outbox row",
    ),
    (
        "partnerflow_queue_depth",
        "rows pushed to the queue and not yet taken by a worker",
    ),
    ("partnerflow_due_timers", "timers due and not yet fired"),
    (
        "partnerflow_failed_instances",
        "instances failed and waiting for an operator",
    ),
];

/// How often the gauges are read.
const EVERY: Duration = Duration::from_secs(5);

fn role_of(e: &Event) -> String {
    e.payload
        .get("role")
        .and_then(|r| r.as_str())
        .unwrap_or("")
        .to_owned()
}

impl Engine {
    /// Registers every series with its description and zero values for the workflows, end
    /// statuses, roles and channels the loaded definitions and directory know.
    pub fn register_metrics(&self) {
        for (name, help) in COUNTERS {
            metrics::describe_counter!(*name, *help);
        }
        for (name, help) in GAUGES {
            metrics::describe_gauge!(*name, *help);
        }
        metrics::describe_histogram!("partnerflow_timer_lateness_seconds", "how late timers fire");
        metrics::describe_histogram!(
            "partnerflow_step_seconds",
            "how long automated steps' handlers run, by handler"
        );
        let defs: Vec<_> = self
            .inner
            .definitions
            .read()
            .map(|d| d.values().cloned().collect())
            .unwrap_or_default();
        let mut roles = std::collections::BTreeSet::new();
        for d in &defs {
            let workflow = d.id.clone();
            metrics::counter!("partnerflow_workflows_started_total", "workflow" => workflow.clone()).absolute(0);
            let mut statuses =
                std::collections::BTreeSet::from(["failed".to_owned(), "cancelled".to_owned()]);
            for s in d.steps.values() {
                match &s.kind {
                    StepKind::End { status } => {
                        statuses.insert(status.clone());
                    }
                    StepKind::Human(h) => {
                        roles.insert(h.role.clone());
                    }
                    _ => {}
                }
            }
            for status in statuses {
                metrics::counter!("partnerflow_workflows_finished_total", "workflow" => workflow.clone(), "status" => status).absolute(0);
            }
        }
        for role in &roles {
            for name in [
                "partnerflow_sla_reminders_total",
                "partnerflow_sla_escalations_total",
                "partnerflow_sla_breaches_total",
            ] {
                metrics::counter!(name, "role" => role.clone()).absolute(0);
            }
            metrics::gauge!("partnerflow_open_tasks", "role" => role.clone()).set(0.0);
            metrics::gauge!("partnerflow_overdue_tasks", "role" => role.clone()).set(0.0);
        }
        for channel in ["email", "sms"] {
            metrics::counter!("partnerflow_notifications_sent_total", "channel" => channel)
                .absolute(0);
            metrics::counter!("partnerflow_notifications_failed_total", "channel" => channel)
                .absolute(0);
        }
        for name in [
            "partnerflow_notification_fallbacks_total",
            "partnerflow_notifications_held_total",
            "partnerflow_webhooks_delivered_total",
            "partnerflow_webhook_failures_total",
            "partnerflow_transitions_total",
        ] {
            metrics::counter!(name).absolute(0);
        }
        for (name, _) in GAUGES.iter().filter(|(n, _)| !n.ends_with("_tasks")) {
            metrics::gauge!(*name).set(0.0);
        }
    }

    /// Counts what committed events say happened.
    pub(crate) fn count_events(workflow: &str, status: &str, events: &[Event]) {
        for e in events {
            match e.kind.as_str() {
                "started" => metrics::counter!("partnerflow_workflows_started_total", "workflow" => workflow.to_owned()).increment(1),
                "finished" | "failed" | "cancelled" => {
                    let status = if e.kind == "finished" { status } else { e.kind.as_str() };
                    metrics::counter!("partnerflow_workflows_finished_total", "workflow" => workflow.to_owned(), "status" => status.to_owned()).increment(1);
                }
                "reminder" => metrics::counter!("partnerflow_sla_reminders_total", "role" => role_of(e)).increment(1),
                "escalated" | "sla_breached" => {
                    let name = if e.kind == "escalated" { "partnerflow_sla_escalations_total" } else { "partnerflow_sla_breaches_total" };
                    metrics::counter!(name, "role" => role_of(e)).increment(1);
                }
                _ => {}
            }
        }
    }

    /// Reads the gauges from the database and publishes them.
    pub async fn publish_gauges(&self) -> Result<partnerflow_store::gauges::Gauges> {
        let now = self.now();
        let g = {
            let mut conn = self.conn().await?;
            partnerflow_store::gauges::read(&mut conn, now).await?
        };
        metrics::gauge!("partnerflow_outbox_backlog").set(g.backlog as f64);
        metrics::gauge!("partnerflow_queue_depth").set(g.queued as f64);
        let age = g
            .oldest_pending
            .map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0);
        metrics::gauge!("partnerflow_outbox_oldest_age_seconds").set(age);
        metrics::gauge!("partnerflow_due_timers").set(g.due_timers as f64);
        metrics::gauge!("partnerflow_failed_instances").set(g.failed_instances as f64);
        for (role, open, overdue) in &g.tasks {
            metrics::gauge!("partnerflow_open_tasks", "role" => role.clone()).set(*open as f64);
            metrics::gauge!("partnerflow_overdue_tasks", "role" => role.clone())
                .set(*overdue as f64);
        }
        Ok(g)
    }

    /// Publishes the gauges every few seconds until `shutdown`.
    pub async fn run_gauges(&self, shutdown: CancellationToken) {
        loop {
            if let Err(e) = self.publish_gauges().await {
                tracing::warn!(error = %e, "gauges not read");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(EVERY) => {}
            }
        }
    }
}
