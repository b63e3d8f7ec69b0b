//! The commands the API and the CLI call: start, decide, post an event, cancel, resume. Each
//! applies one command through a transition; a request's Idempotency-Key is answered once.

use partnerflow_core::definition::WorkflowDefinition;
use partnerflow_core::machine::{self, Actor, Command, InstanceState};
use partnerflow_core::validation::FieldError;
use partnerflow_store::{idempotency, instances};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::engine::{Engine, Error, Idempotency, Result, Started, started};
use crate::facts::Subject;

/// Who submits a start, as authentication established it: the actor (the operator, or the
/// person an integration asserted and the directory confirmed) and, for a partner-side caller,
/// the partner it is bound to. The input may repeat them but never contradict them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitter {
    pub actor: Actor,
    pub partner: Option<String>,
}

impl Submitter {
    /// The submitter as the instance's input records it: `submitted_by` (and `partner_id` for a
    /// partner-side caller) are filled in when absent; the fields that name someone else.
    pub(crate) fn stamp(&self, input: &mut Value) -> Vec<FieldError> {
        let Some(map) = input.as_object_mut() else {
            return Vec::new();
        };
        let mut problems = Vec::new();
        let mut claim = |field: &str, fact: &str| {
            match map.get(field) {
            None | Some(Value::Null) => {
                map.insert(field.to_owned(), Value::String(fact.to_owned()));
            }
            Some(Value::String(s)) if s == fact => {}
            Some(other) => problems.push(FieldError {
                field: field.to_owned(),
                rule: "principal".to_owned(),
                message: format!(
                    "{field} is {other}, but the request was authenticated as `{fact}`; it may be omitted, never differ"
                ),
            }),
        }
        };
        claim("submitted_by", &self.actor.id);
        if let Some(partner) = &self.partner {
            claim("partner_id", partner);
        }
        problems
    }
}

/// The phone of the contact partner notifications go to (`contacts[0].phone`), put in
/// E.164; refused with the field named when it is not a phone number, so that an SMS is never
/// dropped at send time for a number taken at submission.
pub(crate) fn contact_phone(input: &mut Value) -> std::result::Result<(), FieldError> {
    let Some(phone) = input.pointer_mut("/contacts/0/phone") else {
        return Ok(());
    };
    let Some(raw) = phone.as_str().filter(|p| !p.trim().is_empty()) else {
        return Ok(());
    };
    use partnerflow_core::phone;
    match phone::normalize(raw, phone::DEFAULT_COUNTRY_CODE) {
        Ok(e164) => {
            *phone = Value::String(e164);
            Ok(())
        }
        Err(rule) => Err(FieldError::new(
            "contacts[0].phone",
            "format",
            format!("contacts[0].phone \"{raw}\" is not a phone number in E.164: {rule}"),
        )),
    }
}

impl Engine {
    /// A fresh instance of `def`, from validated input, submitted by `submitter`.
    pub(crate) fn new_instance(
        def: &WorkflowDefinition,
        business_key: &str,
        input: &Value,
        submitter: &Submitter,
    ) -> InstanceState {
        let party = machine::party_in(input);
        let partner = submitter.partner.clone().or_else(|| {
            input
                .get("partner_id")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        InstanceState {
            partner_id: partner,
            submitted_by: Some(submitter.actor.id.clone()),
            party,
            ..InstanceState::new(Uuid::now_v7(), def, business_key)
        }
    }

    /// Starts an instance. The same Idempotency-Key returns the first answer; the same business
    /// key returns the existing instance.
    pub async fn start(
        &self,
        workflow_id: &str,
        business_key: &str,
        mut input: Value,
        submitter: Submitter,
        idem: Option<Idempotency>,
    ) -> Result<(Started, bool)> {
        let scope = format!("start:{workflow_id}");
        if let Some(answer) = self.replayed(&scope, idem.as_ref()).await? {
            return Ok((
                serde_json::from_value(answer).map_err(|e| Error::Conflict(e.to_string()))?,
                false,
            ));
        }
        let def = self.latest(workflow_id)?;
        // Every problem at once: the principal's and the validator's.
        let mut problems = submitter.stamp(&mut input);
        if let Err(e) = contact_phone(&mut input) {
            problems.push(e);
        }
        let partner = submitter.partner.clone().or_else(|| {
            input
                .get("partner_id")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        let subject = Subject {
            workflow_id,
            partner: partner.as_deref(),
            instance: None,
        };
        let validated = self
            .validate(def.input_validator.as_deref(), &input, None, subject)
            .await;
        let input = match validated {
            Ok(input) if problems.is_empty() => input,
            Ok(_) => return Err(Error::Invalid(problems)),
            Err(Error::Invalid(more)) => {
                // A field refused twice (the contact's phone, by the validator too) once.
                for m in more {
                    if !problems.iter().any(|p| p.field == m.field) {
                        problems.push(m);
                    }
                }
                return Err(Error::Invalid(problems));
            }
            Err(e) => return Err(e),
        };
        let state = Self::new_instance(&def, business_key, &input, &submitter);
        let idem = idem.map(|i| (scope, i));
        let actor = submitter.actor;
        match self
            .create(state, Command::Start { input, actor }, idem)
            .await
        {
            Ok(reply) => Ok((reply, true)),
            // The business key is taken (earlier, or by a concurrent start): answer with its
            // instance. The unique key decides, so there is no lookup before the insert.
            Err(Error::Conflict(_)) => {
                let mut conn = self.conn().await?;
                match instances::find_by_key(&mut conn, workflow_id, business_key).await? {
                    Some(existing) => Ok((started(&existing.state), false)),
                    None => Err(Error::Conflict(format!(
                        "starting {workflow_id} {business_key}"
                    ))),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Decides a human task.
    pub async fn decide(
        &self,
        task_id: Uuid,
        decision: &str,
        reason: Option<String>,
        actor: Actor,
        data: Value,
        idem: Option<Idempotency>,
    ) -> Result<Value> {
        let scope = "decision".to_owned();
        if let Some(answer) = self.replayed(&scope, idem.as_ref()).await? {
            return Ok(answer);
        }
        let task = {
            let mut conn = self.conn().await?;
            partnerflow_store::tasks::get(&mut conn, task_id)
                .await?
                .ok_or_else(|| Error::NotFound(format!("task {task_id}")))?
        };
        let instance_id =
            Uuid::parse_str(&task.instance_id).map_err(|e| Error::Conflict(e.to_string()))?;
        let cmd = Command::Decide {
            task_id,
            decision: decision.to_owned(),
            reason,
            actor,
            data,
            evidence: None,
        };
        let decision = decision.to_owned();
        let reply = move |s: &InstanceState| {
            json!({ "task_id": task_id, "decision": decision, "instance_id": instance_id,
                    "instance_status": s.status.label(), "current_step": s.step })
        };
        self.answer_once(instance_id, cmd, scope, idem, None, reply)
            .await
    }

    /// Delivers an external event (with its payload) to the wait it names by `correlation`.
    pub async fn post_event(
        &self,
        instance_id: Uuid,
        name: &str,
        correlation: &str,
        payload: Value,
        actor: Actor,
        idem: Option<Idempotency>,
    ) -> Result<Value> {
        let scope = format!("event:{instance_id}");
        if let Some(answer) = self.replayed(&scope, idem.as_ref()).await? {
            return Ok(answer);
        }
        let stored = {
            let mut conn = self.conn().await?;
            instances::load(&mut conn, instance_id)
                .await?
                .ok_or_else(|| Error::NotFound(format!("instance {instance_id}")))?
        };
        let def = self.definition(&stored.state.workflow_id, stored.state.version)?;
        let step = stored.state.step.as_deref().and_then(|s| def.step(s));
        let (validator, replaces_input) = step
            .and_then(|s| match &s.kind {
                partnerflow_core::definition::StepKind::WaitEvent {
                    event,
                    validator,
                    replaces_input,
                    ..
                } if event == name => Some((validator.clone(), *replaces_input)),
                _ => s
                    .accepts
                    .iter()
                    .find(|a| a.event == name)
                    .map(|a| (a.validator.clone(), false)),
            })
            .unwrap_or((None, false));
        let subject = Subject {
            workflow_id: &stored.state.workflow_id,
            partner: stored.state.partner_id.as_deref(),
            instance: Some(instance_id),
        };
        let payload = self
            .validate(validator.as_deref(), &payload, Some(&stored.state), subject)
            .await?;
        // A new input may bring new contacts, never another partner: the instance's scope
        // and everything already decided about it belong to its partner.
        let named = payload.get("partner_id").and_then(Value::as_str);
        if replaces_input
            && let (Some(named), Some(own)) = (named, stored.state.partner_id.as_deref())
            && named != own
        {
            return Err(Error::Invalid(vec![FieldError {
                field: "partner_id".to_owned(),
                rule: "unchanged".to_owned(),
                message: format!(
                    "a resubmission belongs to partner `{own}`; it may not name `{named}`"
                ),
            }]));
        }
        let cmd = Command::ExternalEvent {
            name: name.to_owned(),
            correlation: correlation.to_owned(),
            payload,
            actor,
        };
        let name = name.to_owned();
        let reply = move |s: &InstanceState| {
            json!({ "instance_id": instance_id, "event": name,
                    "instance_status": s.status.label(), "current_step": s.step })
        };
        self.answer_once(instance_id, cmd, scope, idem, Some(stored), reply)
            .await
    }

    /// Cancels a running instance (and the child it waits for), audited under `actor`.
    pub async fn cancel(
        &self,
        instance_id: Uuid,
        reason: &str,
        actor: Actor,
        idem: Option<Idempotency>,
    ) -> Result<Value> {
        let scope = format!("cancel:{instance_id}");
        if let Some(answer) = self.replayed(&scope, idem.as_ref()).await? {
            return Ok(answer);
        }
        let cmd = Command::Cancel {
            actor,
            reason: reason.to_owned(),
            by_parent: false,
        };
        let reply = move |s: &InstanceState| json!({ "instance_id": instance_id, "instance_status": s.status.label(), "current_step": s.step });
        self.answer_once(instance_id, cmd, scope, idem, None, reply)
            .await
    }

    /// Resumes a failed instance by entering its failed step again, audited under `actor`.
    pub async fn resume(
        &self,
        instance_id: Uuid,
        actor: Actor,
        idem: Option<Idempotency>,
    ) -> Result<Value> {
        let scope = format!("resume:{instance_id}");
        if let Some(answer) = self.replayed(&scope, idem.as_ref()).await? {
            return Ok(answer);
        }
        let reply = move |s: &InstanceState| json!({ "instance_id": instance_id, "instance_status": s.status.label(), "current_step": s.step });
        self.answer_once(
            instance_id,
            Command::Resume { actor },
            scope,
            idem,
            None,
            reply,
        )
        .await
    }

    /// Applies a request's command and stores its answer under its Idempotency-Key. When a
    /// concurrent request with the same key commits first, its answer is returned.
    async fn answer_once(
        &self,
        instance_id: Uuid,
        cmd: Command,
        scope: String,
        idem: Option<Idempotency>,
        preloaded: Option<instances::Stored>,
        reply: impl Fn(&InstanceState) -> Value + Send + Sync + 'static,
    ) -> Result<Value> {
        let also = crate::transition::Also {
            preloaded,
            ..crate::transition::Also::default().idem(idem.clone().map(|i| (scope.clone(), i)))
        };
        match self.apply_answering(instance_id, cmd, also, reply).await {
            // A concurrent request with the same key may have committed first: then the
            // refusal (task closed, key in use) is ours only, and its answer is the answer.
            Err(e @ (Error::Conflict(_) | Error::Refused(_))) if idem.is_some() => {
                match self.replayed(&scope, idem.as_ref()).await? {
                    Some(answer) => Ok(answer),
                    None => Err(e),
                }
            }
            other => other,
        }
    }

    /// The stored first answer for a replayed key, or a refusal when the body differs.
    async fn replayed(&self, scope: &str, idem: Option<&Idempotency>) -> Result<Option<Value>> {
        let Some(idem) = idem else {
            return Ok(None);
        };
        let mut conn = self.conn().await?;
        match idempotency::get(&mut conn, scope, &idem.key).await? {
            Some(a) if a.request_hash == idem.request_hash => {
                Ok(Some(serde_json::from_str(&a.body).unwrap_or(Value::Null)))
            }
            Some(_) => Err(Error::KeyReused(idem.key.clone())),
            None => Ok(None),
        }
    }
}
