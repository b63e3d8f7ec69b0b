//! Loading what a validator consults besides its input ([`RecordFacts`]): the uploaded
//! attachments the input names, and, when the validator needs them, the partner's standing
//! and its other instances of the workflow.

use partnerflow_core::definition::{StepKind, WorkflowDefinition};
use partnerflow_core::handler::Needs;
use partnerflow_core::machine::{Command, InstanceState};
use partnerflow_core::validation::{AttachmentFact, RecordFacts, Sibling};
use partnerflow_store::{Conn, attachments, instances, standing};
use serde_json::Value;
use uuid::Uuid;

use crate::engine::{Engine, Result};

/// How many of a partner's instances a duplicate check compares with (the newest).
const SIBLINGS_COMPARED: i64 = 200;

/// What an input is for: its workflow, its partner, and the instance (absent for a start).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subject<'a> {
    pub workflow_id: &'a str,
    pub partner: Option<&'a str>,
    pub instance: Option<Uuid>,
}

/// Every text in `v` that could be an attachment id (a UUID), once each.
pub(crate) fn uuid_texts(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if Uuid::parse_str(s).is_ok() && !out.contains(s) => {
            out.push(s.clone());
        }
        Value::Array(items) => items.iter().for_each(|i| uuid_texts(i, out)),
        Value::Object(map) => map.values().for_each(|i| uuid_texts(i, out)),
        _ => {}
    }
}

impl Engine {
    /// What `validator` needs loaded (nothing for an unknown one: validation reports it).
    pub(crate) fn needs_of(&self, validator: &str) -> Needs {
        self.inner
            .registry
            .get_validator(validator)
            .map(|(_, needs)| needs)
            .unwrap_or_default()
    }

    /// Whether `validator` consults the record for `input`: it names possible uploads, or the
    /// validator needs the partner's standing or siblings and the partner is known.
    pub(crate) fn consults_record(
        &self,
        validator: &str,
        input: &Value,
        subject: Subject<'_>,
    ) -> bool {
        let mut ids = Vec::new();
        uuid_texts(input, &mut ids);
        !ids.is_empty()
            || (subject.partner.is_some() && self.needs_of(validator) != Needs::default())
    }

    /// The facts `validator` consults for `input` of `subject`, read on `conn` (the
    /// transition's own transaction when there is one).
    pub(crate) async fn facts_for(
        &self,
        conn: &mut Conn,
        validator: &str,
        input: &Value,
        subject: Subject<'_>,
    ) -> Result<RecordFacts> {
        let needs = self.needs_of(validator);
        let mut facts = RecordFacts {
            partner: subject.partner.map(str::to_owned),
            ..RecordFacts::default()
        };
        let mut ids = Vec::new();
        uuid_texts(input, &mut ids);
        for a in attachments::among(conn, &ids).await? {
            let fact = AttachmentFact {
                screen: a.screen,
                filename: a.filename,
                partner_id: a.partner_id,
            };
            facts.attachments.insert(a.id, fact);
        }
        if let Some(partner) = subject.partner {
            if needs.standing {
                facts.standing = standing::of_partner(conn, partner).await?;
            }
            if needs.siblings {
                let rows = instances::siblings(
                    conn,
                    subject.workflow_id,
                    partner,
                    subject.instance,
                    SIBLINGS_COMPARED,
                )
                .await?;
                facts.siblings = rows
                    .into_iter()
                    .map(|(instance_id, business_key, status, input)| Sibling {
                        instance_id,
                        business_key,
                        status,
                        input,
                    })
                    .collect();
            }
        }
        Ok(facts)
    }
}

impl Engine {
    /// The facts the validator of a decision's data consults, read in the transition's own
    /// transaction (empty for every other command, and for steps without a validator).
    pub(crate) async fn decision_facts(
        &self,
        tx: &mut Conn,
        def: &WorkflowDefinition,
        state: &InstanceState,
        cmd: &Command,
    ) -> Result<RecordFacts> {
        let Command::Decide { data, .. } = cmd else {
            return Ok(RecordFacts::default());
        };
        let validator = state
            .step
            .as_deref()
            .and_then(|s| def.step(s))
            .and_then(|s| match &s.kind {
                StepKind::Human(h) => h.validator.clone(),
                _ => None,
            });
        let Some(validator) = validator else {
            return Ok(RecordFacts::default());
        };
        let subject = Subject {
            workflow_id: &state.workflow_id,
            partner: state.partner_id.as_deref(),
            instance: Some(state.id),
        };
        self.facts_for(tx, &validator, data, subject).await
    }

    /// A partner's standing: every fact recorded about it, fact → state.
    pub async fn standing(
        &self,
        partner: &str,
    ) -> Result<std::collections::BTreeMap<String, String>> {
        let mut conn = self.conn().await?;
        Ok(standing::of_partner(&mut conn, partner).await?)
    }
}
