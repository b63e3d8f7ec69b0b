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
    /// The open wait for an external event, and the events that may interrupt the current
    /// step: an event must name its correlation id.
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
    /// The uploaded attachments the instance's data names (materials, invoices, documents).
    pub attachments: Vec<partnerflow_store::attachments::Attachment>,
    pub children: Vec<Evidence>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChainCheck {
    pub events: usize,
    /// What the instance records: the chain must end there.
    pub expected_events: i64,
    pub verified: bool,
    /// The first event whose stored tag does not match (one past the last stored event when
    /// events are missing), when the chain is broken.
    pub broken_at: Option<u64>,
    pub last_hash: Option<String>,
    /// The audit key versions that tagged the events (0: the unkeyed chain of earlier events).
    pub key_versions: Vec<u32>,
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

/// Recomputes a stored chain against what the instance records as its end; the first event
/// that does not match, on failure.
fn check_chain(
    keys: &partnerflow_core::audit::AuditKeys,
    stored: &instances::Stored,
    events: &[StoredEvent],
) -> Result<(), u64> {
    use partnerflow_core::audit::{Head, Link};
    let sid = stored.state.id.to_string();
    partnerflow_core::audit::verify(
        keys,
        &sid,
        events.iter().map(|e| Link {
            seq: u64::try_from(e.seq).unwrap_or_default(),
            event: &e.event,
            tag: e.hash.as_str(),
            key_version: e.key_version,
        }),
        Head {
            event_count: u64::try_from(stored.event_count).unwrap_or_default(),
            last_tag: &stored.last_hash,
        },
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
    /// An open task's clock at `now`, in working minutes of the business calendar.
    pub(crate) fn sla_clock(&self, t: &Task, now: DateTime<Utc>) -> SlaClock {
        let cal = &self.inner.calendar;
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
    }

    /// The full view of one instance.
    pub async fn instance(&self, id: Uuid) -> Result<InstanceView> {
        let mut conn = self.conn().await?;
        let stored = instances::load(&mut conn, id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("instance {id}")))?;
        let tasks = tasks::for_instance(&mut conn, id).await?;
        let now = self.now();
        let sla_clocks = tasks
            .iter()
            .filter(|t| t.status == tasks::OPEN)
            .map(|t| self.sla_clock(t, now))
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
        // The open wait, and the events that may interrupt the current step or that it accepts,
        // each with the correlation id an event must name.
        let mut waits: Vec<partnerflow_core::machine::OpenWait> =
            s.wait.clone().into_iter().collect();
        if let (Some(step), partnerflow_core::machine::Status::Running) =
            (s.step.as_deref(), &s.status)
            && let Ok(def) = self.definition(&s.workflow_id, s.version)
            && let Some(current) = def.step(step)
        {
            let accepted = current.accepts.iter().map(|a| &a.event);
            waits.extend(current.interrupts.iter().chain(accepted).map(|event| {
                partnerflow_core::machine::OpenWait {
                    step: step.to_owned(),
                    event: event.clone(),
                    correlation: s.seq.to_string(),
                }
            }));
        }
        Ok(InstanceView {
            id: s.id,
            workflow_id: s.workflow_id,
            version: s.version,
            business_key: s.business_key,
            partner_id: s.partner_id,
            parent_id: s.parent.map(|p| p.instance_id),
            status: s.status.label().to_owned(),
            current_steps: s.step.into_iter().filter(|_| stored.version > 0).collect(),
            waits,
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
        let (stored, events) = self.chain_snapshot(id).await?;
        let check = check_chain(&self.inner.settings.audit, &stored, &events);
        let mut key_versions: Vec<u32> = events.iter().map(|e| e.key_version).collect();
        key_versions.sort_unstable();
        key_versions.dedup();
        let chain = ChainCheck {
            events: events.len(),
            expected_events: stored.event_count,
            verified: check.is_ok(),
            broken_at: check.err(),
            last_hash: events.last().map(|e| e.hash.clone()),
            key_versions,
        };
        let mut named = Vec::new();
        crate::facts::uuid_texts(
            &serde_json::Value::Object(instance.data.clone()),
            &mut named,
        );
        let attachments = {
            let mut conn = self.conn().await?;
            partnerflow_store::attachments::among(&mut conn, &named).await?
        };
        let mut children = Vec::new();
        for child in instance.children() {
            children.push(Box::pin(self.evidence(child)).await?);
        }
        Ok(Evidence {
            instance,
            chain,
            attachments,
            children,
        })
    }

    /// Tasks by role, status and partner, soonest due first.
    pub async fn tasks(&self, filter: &tasks::Filter<'_>, limit: i64) -> Result<Vec<Task>> {
        let mut conn = self.conn().await?;
        Ok(tasks::list(&mut conn, filter, limit).await?)
    }

    /// A page of tasks after the cursor `after` (due time and id), soonest due first, each
    /// with its SLA clock now.
    pub async fn tasks_page(
        &self,
        filter: &tasks::Filter<'_>,
        after: Option<(DateTime<Utc>, &str)>,
        limit: i64,
    ) -> Result<Vec<(Task, SlaClock)>> {
        let now = self.now();
        let mut conn = self.conn().await?;
        let page = tasks::page(&mut conn, filter, after, limit).await?;
        Ok(page
            .into_iter()
            .map(|t| {
                let clock = self.sla_clock(&t, now);
                (t, clock)
            })
            .collect())
    }

    /// Running instances that nothing will move: unchanged for `quiet`, with no pending job,
    /// timer, open task, open wait or running child (lost work an operator should look at).
    pub async fn stuck(
        &self,
        quiet: std::time::Duration,
        limit: i64,
    ) -> Result<Vec<instances::Summary>> {
        let before =
            self.now() - chrono::Duration::from_std(quiet).unwrap_or(chrono::Duration::hours(1));
        let mut conn = self.conn().await?;
        let candidates = instances::quiet_running(&mut conn, before, limit).await?;
        let mut out = Vec::new();
        for c in candidates {
            let Ok(id) = Uuid::parse_str(&c.id) else {
                continue;
            };
            let waiting = instances::load(&mut conn, id)
                .await?
                .is_some_and(|s| s.state.wait.is_some() || s.state.child.is_some());
            if !waiting {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// Instances by status and partner, newest first.
    pub async fn instances(
        &self,
        filter: instances::Listing<'_>,
        limit: i64,
    ) -> Result<Vec<instances::Summary>> {
        let mut conn = self.conn().await?;
        Ok(instances::list(&mut conn, filter, limit).await?)
    }

    /// Verifies the stored audit chain of an instance against the end the instance records;
    /// the first broken sequence number on failure.
    pub async fn verify_chain(&self, id: Uuid) -> Result<Result<(), u64>> {
        let (stored, events) = self.chain_snapshot(id).await?;
        Ok(check_chain(&self.inner.settings.audit, &stored, &events))
    }

    /// The instance and its events as of one version: read again when a transition committed
    /// in between, so a concurrent write is never mistaken for a broken chain.
    async fn chain_snapshot(&self, id: Uuid) -> Result<(instances::Stored, Vec<StoredEvent>)> {
        let mut conn = self.conn().await?;
        let load = |stored: Option<instances::Stored>| {
            stored.ok_or_else(|| Error::NotFound(format!("instance {id}")))
        };
        let mut before = load(instances::load(&mut conn, id).await?)?;
        loop {
            let events = instances::events(&mut conn, id).await?;
            let after = load(instances::load(&mut conn, id).await?)?;
            if after.version == before.version {
                return Ok((before, events));
            }
            before = after;
        }
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ready(&self) -> Result<()> {
        Ok(self.inner.store.ping().await?)
    }
}
