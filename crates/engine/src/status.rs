//! A partner's instances as a status list: each MDF activity, NRE project (with its current
//! milestone), agreement or onboarding with its step, what its definition's `summary` names,
//! and the SLA clock of its open task.

use partnerflow_store::instances::{self, Listing};
use partnerflow_store::tasks;
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::engine::{Engine, Result};
use crate::view::SlaClock;

/// One instance in a partner's status list.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceStatus {
    pub id: String,
    pub workflow_id: String,
    pub business_key: String,
    pub status: String,
    pub current_step: Option<String>,
    /// The values the definition's `summary` points at (absent ones left out).
    pub summary: Map<String, Value>,
    pub sla_clocks: Vec<SlaClock>,
}

impl Engine {
    /// `partner`'s instances passing `filter` (its partner is `partner`), newest first.
    pub async fn partner_status(
        &self,
        partner: &str,
        filter: Listing<'_>,
        limit: i64,
    ) -> Result<Vec<InstanceStatus>> {
        let filter = Listing {
            partner: Some(partner),
            ..filter
        };
        let mut conn = self.conn().await?;
        let now = self.now();
        let listed = instances::list(&mut conn, filter, limit).await?;
        let mut out = Vec::with_capacity(listed.len());
        for s in listed {
            let Ok(id) = Uuid::parse_str(&s.id) else {
                continue;
            };
            let Some(stored) = instances::load(&mut conn, id).await? else {
                continue;
            };
            let state = &stored.state;
            let mut summary = Map::new();
            if let Ok(def) = self.definition(&state.workflow_id, state.version) {
                for (name, pointer) in &def.summary {
                    if let Some(v) = state.value_at(pointer) {
                        summary.insert(name.clone(), v.clone());
                    }
                }
            }
            let sla_clocks = tasks::for_instance(&mut conn, id)
                .await?
                .iter()
                .filter(|t| t.status == tasks::OPEN)
                .map(|t| self.sla_clock(t, now))
                .collect();
            out.push(InstanceStatus {
                id: s.id,
                workflow_id: s.workflow_id,
                business_key: s.business_key,
                status: s.status,
                current_step: s.current_step,
                summary,
                sla_clocks,
            });
        }
        Ok(out)
    }
}
