//! Starting many instances at once (a scheduled run's statements): one transaction for all
//! their first steps, tasks and timers.

use partnerflow_core::machine::{Command, InstanceState};
use partnerflow_store::instances;
use serde_json::Value;
use uuid::Uuid;

use crate::commands::Submitter;
use crate::engine::{Engine, Error, Result};

/// One instance of a bulk start.
#[derive(Debug, Clone)]
pub struct BulkStart {
    pub business_key: String,
    pub input: Value,
    pub submitter: Submitter,
}

impl Engine {
    /// Starts many instances of `workflow_id` in one transaction (a scheduled run's statements):
    /// their first steps, tasks and timers commit together. Inputs come from the system, so
    /// they are validated without the record's facts (no attachments, standing or siblings).
    /// A business key taken already answers with its instance; returns, per start in order,
    /// the instance and whether it is new.
    pub async fn start_many(
        &self,
        workflow_id: &str,
        starts: Vec<BulkStart>,
    ) -> Result<Vec<(Uuid, bool)>> {
        let def = self.latest(workflow_id)?;
        let mut prepared = Vec::with_capacity(starts.len());
        for mut s in starts {
            let mut problems = s.submitter.stamp(&mut s.input);
            if let Err(e) = crate::commands::contact_phone(&mut s.input) {
                problems.push(e);
            }
            let input = match def.input_validator.as_deref() {
                Some(name) => {
                    let facts = partnerflow_core::validation::RecordFacts::default();
                    self.validate_with(name, &s.input, None, &facts)
                        .unwrap_or_else(|more| {
                            problems.extend(more);
                            Value::Null
                        })
                }
                None => s.input.clone(),
            };
            if !problems.is_empty() {
                for p in &mut problems {
                    p.field = format!("{}: {}", s.business_key, p.field);
                }
                return Err(Error::Invalid(problems));
            }
            let state = Self::new_instance(&def, &s.business_key, &input, &s.submitter);
            let cmd = Command::Start {
                input,
                actor: s.submitter.actor.clone(),
            };
            prepared.push((s.business_key, state, cmd));
        }
        // A concurrent start of the same key makes the batch conflict: read again and retry.
        for _ in 0..3 {
            let keys: Vec<String> = prepared.iter().map(|(k, _, _)| k.clone()).collect();
            let existing = {
                let mut conn = self.conn().await?;
                instances::existing_keys(&mut conn, workflow_id, &keys).await?
            };
            let new: Vec<(InstanceState, Command)> = prepared
                .iter()
                .filter(|(k, _, _)| !existing.contains_key(k))
                .map(|(_, s, c)| (s.clone(), c.clone()))
                .collect();
            match self.create_many(new).await {
                Ok(_) => {
                    return prepared
                        .iter()
                        .map(|(k, s, _)| match existing.get(k) {
                            Some(id) => Uuid::parse_str(id)
                                .map(|id| (id, false))
                                .map_err(|e| Error::Conflict(e.to_string())),
                            None => Ok((s.id, true)),
                        })
                        .collect();
                }
                Err(Error::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict(format!(
            "bulk start of {workflow_id}: business keys kept being taken concurrently"
        )))
    }
}
