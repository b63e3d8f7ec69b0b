//! Read models: an instance with its timeline, tasks and SLA clocks; task listings.

use chrono::{DateTime, Utc};
use partnerflow_store::instances::StoredEvent;
use partnerflow_store::notifications::Sent;
use partnerflow_store::tasks::Task;
use partnerflow_store::{instances, notifications, tasks, timers};
use serde::Serialize;
use uuid::Uuid;

use crate::engine::{Engine, Error, Result};

/// An instance as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceView {
    pub id: Uuid,
    pub workflow_id: String,
    pub version: u32,
    pub business_key: String,
    pub partner_id: Option<String>,
    pub parent_id: Option<Uuid>,
    pub status: String,
    pub current_steps: Vec<String>,
    /// The open wait for an external event: an event must name its correlation id.
    pub waits: Vec<partnerflow_core::machine::OpenWait>,
    pub data: serde_json::Map<String, serde_json::Value>,
    pub tasks: Vec<Task>,
    pub sla_clocks: Vec<SlaClock>,
    pub pending_timers: Vec<PendingTimer>,
    pub timeline: Vec<StoredEvent>,
    pub notifications: Vec<Sent>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An instance's evidence bundle: everything recorded about it, the result of re-checking its
/// audit chain, and the bundles of the child workflows it started.
#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    pub instance: InstanceView,
    pub chain: ChainCheck,
    pub children: Vec<Evidence>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChainCheck {
    pub events: usize,
    pub verified: bool,
    /// The first event whose stored hash does not match, when the chain is broken.
    pub broken_at: Option<u64>,
    pub last_hash: Option<String>,
}

impl InstanceView {
    /// The child workflows this instance started, oldest first.
    pub fn children(&self) -> Vec<Uuid> {
        self.timeline
            .iter()
            .filter(|e| e.event.kind == "child_started")
            .filter_map(|e| e.event.payload.get("child")?.as_str()?.parse().ok())
            .collect()
    }
}

/// Recomputes a stored chain; the first event whose hash does not match, on failure.
fn check_chain(id: Uuid, events: &[StoredEvent]) -> Result<(), u64> {
    let sid = id.to_string();
    partnerflow_core::audit::verify(
        &sid,
        events.iter().map(|e| {
            (
                u64::try_from(e.seq).unwrap_or_default(),
                &e.event,
                e.hash.as_str(),
            )
        }),
    )
}

/// Where an open task stands against its SLA, in working time.
#[derive(Debug, Clone, Serialize)]
pub struct SlaClock {
    pub task_id: String,
    pub step: String,
    pub role: String,
    pub due_at: DateTime<Utc>,
    /// Working minutes used so far / allowed.
    pub elapsed_working_minutes: i64,
    pub allowed_working_minutes: i64,
    /// Percentage of the SLA used.
    pub percent_used: i64,
    pub overdue: bool,
    pub escalation_level: i64,
    pub beyond_calendar: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PendingTimer {
    pub kind: partnerflow_core::machine::TimerKind,
    pub due_at: DateTime<Utc>,
}

impl Engine {
    /// The full view of one instance.
    pub async fn instance(&self, id: Uuid) -> Result<InstanceView> {
        let mut conn = self.conn().await?;
        let stored = instances::load(&mut conn, id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("instance {id}")))?;
        let tasks = tasks::for_instance(&mut conn, id).await?;
        let now = self.now();
        let cal = &self.inner.calendar;
        let sla_clocks = tasks
            .iter()
            .filter(|t| t.status == tasks::OPEN)
            .map(|t| {
                let elapsed = cal.working_minutes_between(t.created_at, now);
                let allowed = cal.working_minutes_between(t.created_at, t.due_at).max(1);
                SlaClock {
                    task_id: t.id.clone(),
                    step: t.step.clone(),
                    role: t.role.clone(),
                    due_at: t.due_at,
                    elapsed_working_minutes: elapsed,
                    allowed_working_minutes: allowed,
                    percent_used: elapsed * 100 / allowed,
                    overdue: now > t.due_at,
                    escalation_level: t.escalation_level,
                    beyond_calendar: t.beyond_calendar,
                }
            })
            .collect();
        let pending_timers = timers::pending_for(&mut conn, id)
            .await?
            .into_iter()
            .map(|t| PendingTimer {
                kind: t.kind,
                due_at: t.due_at,
            })
            .collect();
        let timeline = instances::events(&mut conn, id).await?;
        let notifications = notifications::for_instance(&mut conn, id).await?;
        let s = stored.state;
        Ok(InstanceView {
            id: s.id,
            workflow_id: s.workflow_id,
            version: s.version,
            business_key: s.business_key,
            partner_id: s.partner_id,
            parent_id: s.parent.map(|p| p.instance_id),
            status: s.status.label().to_owned(),
            current_steps: s.step.into_iter().filter(|_| stored.version > 0).collect(),
            waits: s.wait.into_iter().collect(),
            data: s.data,
            tasks,
            sla_clocks,
            pending_timers,
            timeline,
            notifications,
            created_at: stored.created_at,
            updated_at: stored.updated_at,
        })
    }

    /// One task.
    pub async fn task(&self, id: Uuid) -> Result<Option<Task>> {
        let mut conn = self.conn().await?;
        Ok(tasks::get(&mut conn, id).await?)
    }

    /// The evidence bundle of an instance and of its child workflows.
    pub async fn evidence(&self, id: Uuid) -> Result<Evidence> {
        let instance = self.instance(id).await?;
        let check = check_chain(id, &instance.timeline);
        let chain = ChainCheck {
            events: instance.timeline.len(),
            verified: check.is_ok(),
            broken_at: check.err(),
            last_hash: instance.timeline.last().map(|e| e.hash.clone()),
        };
        let mut children = Vec::new();
        for child in instance.children() {
            children.push(Box::pin(self.evidence(child)).await?);
        }
        Ok(Evidence {
            instance,
            chain,
            children,
        })
    }

    /// Tasks by role, status and partner, soonest due first.
    pub async fn tasks(&self, filter: &tasks::Filter<'_>, limit: i64) -> Result<Vec<Task>> {
        let mut conn = self.conn().await?;
        Ok(tasks::list(&mut conn, filter, limit).await?)
    }

    /// Instances by status and partner, newest first.
    pub async fn instances(
        &self,
        status: Option<&str>,
        partner: Option<&str>,
        limit: i64,
    ) -> Result<Vec<instances::Summary>> {
        let mut conn = self.conn().await?;
        Ok(instances::list(&mut conn, status, partner, limit).await?)
    }

    /// Verifies the stored audit chain of an instance; the first broken sequence number on failure.
    pub async fn verify_chain(&self, id: Uuid) -> Result<Result<(), u64>> {
        let mut conn = self.conn().await?;
        Ok(check_chain(id, &instances::events(&mut conn, id).await?))
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ready(&self) -> Result<()> {
        Ok(self.inner.store.ping().await?)
    }
}
