//! Signed links: a token of 22 characters (128 bits, URL-safe base64) per notification,
//! recipient and decision, derived with an HMAC from the notification's key so that a message
//! sent again carries the same links. Only the token's SHA-256 is stored. A link decides
//! through the same transition as a signed callback, and is used up in that transaction.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use partnerflow_core::definition::{StepKind, WorkflowDefinition};
use partnerflow_core::directory::Directory;
use partnerflow_core::machine::{Actor, Command, InstanceState};
use partnerflow_notify::context::Link;
use partnerflow_store::links;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::engine::{Engine, Error, Result};
use crate::recipients::Address;
use crate::transition::Also;

/// The SHA-256 of a token, as stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// What a link is, as its page shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LinkView {
    pub task_id: Uuid,
    pub instance_id: Uuid,
    pub workflow_id: String,
    pub business_key: String,
    pub step: String,
    pub decision: String,
    pub person: String,
    pub expires_at: DateTime<Utc>,
    /// Whether a reason must be given with this decision.
    pub reason_required: bool,
}

/// Why a link cannot decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkRefusal {
    /// No such link (mistyped, tampered with).
    Unknown,
    Used,
    Expired,
    /// The task was decided or closed meanwhile.
    TaskClosed,
}

/// Who used a link, from where: recorded on the decision event.
#[derive(Debug, Clone, Default)]
pub struct LinkEvidence {
    pub ip: String,
    pub user_agent: String,
}

impl Engine {
    /// Whether links point to an https address (their page's cookie is then `Secure`).
    pub fn links_are_https(&self) -> bool {
        self.inner.reach.public_url.starts_with("https://")
    }

    fn token(&self, key: &str, decision: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.inner.reach.link_secret)
            .unwrap_or_else(|_| Hmac::<Sha256>::new(&Default::default()));
        mac.update(key.as_bytes());
        mac.update(b"\0");
        mac.update(decision.as_bytes());
        let tag = mac.finalize().into_bytes();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tag[..16])
    }

    /// Links for each decision of the open task that `a` may take, recorded before the
    /// message goes out.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn links_for(
        &self,
        def: &WorkflowDefinition,
        state: &InstanceState,
        task_id: Uuid,
        role: &str,
        a: &Address,
        dir: &Directory,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Link>> {
        let Some(StepKind::Human(h)) = state
            .step
            .as_deref()
            .and_then(|s| def.step(s))
            .map(|s| &s.kind)
        else {
            return Ok(Vec::new());
        };
        if !dir.may_act_at(&a.recipient, role, state.partner_id.as_deref(), now) {
            return Ok(Vec::new());
        }
        let ttl = chrono::Duration::from_std(self.inner.reach.link_ttl)
            .unwrap_or(chrono::Duration::hours(72));
        let base = self.inner.reach.public_url.trim_end_matches('/');
        let mut rows = Vec::new();
        let mut out = Vec::new();
        for decision in &h.decisions {
            let token = self.token(&format!("{key}:{}", a.recipient), decision);
            rows.push(links::Link {
                token_hash: token_hash(&token),
                task_id: task_id.to_string(),
                instance_id: state.id.to_string(),
                decision: decision.clone(),
                person: a.recipient.clone(),
                created_at: now,
                expires_at: now + ttl,
                used_at: None,
            });
            out.push(Link {
                decision: decision.clone(),
                url: format!("{base}/l/{token}"),
            });
        }
        let mut conn = self.conn().await?;
        links::insert(&mut conn, &rows).await?;
        Ok(out)
    }

    /// What the link `token` would decide, or why it cannot. Changes nothing.
    pub async fn link(&self, token: &str) -> Result<std::result::Result<LinkView, LinkRefusal>> {
        let now = self.now();
        let mut conn = self.conn().await?;
        let Some(link) = links::get(&mut conn, &token_hash(token)).await? else {
            return Ok(Err(LinkRefusal::Unknown));
        };
        if link.used_at.is_some() {
            return Ok(Err(LinkRefusal::Used));
        }
        if link.expires_at <= now {
            return Ok(Err(LinkRefusal::Expired));
        }
        let (Ok(task_id), Ok(instance_id)) = (
            Uuid::parse_str(&link.task_id),
            Uuid::parse_str(&link.instance_id),
        ) else {
            return Ok(Err(LinkRefusal::Unknown));
        };
        let stored = partnerflow_store::instances::load(&mut conn, instance_id).await?;
        let Some(state) = stored
            .map(|s| s.state)
            .filter(|s| s.task.as_ref().is_some_and(|t| t.id == task_id))
        else {
            return Ok(Err(LinkRefusal::TaskClosed));
        };
        let def = self.definition(&state.workflow_id, state.version)?;
        let reason_required = state.step.as_deref().and_then(|s| def.step(s)).is_some_and(
            |s| matches!(&s.kind, StepKind::Human(h) if h.reason_required.contains(&link.decision)),
        );
        Ok(Ok(LinkView {
            task_id,
            instance_id,
            workflow_id: state.workflow_id.clone(),
            business_key: state.business_key.clone(),
            step: state.step.clone().unwrap_or_default(),
            decision: link.decision,
            person: link.person,
            expires_at: link.expires_at,
            reason_required,
        }))
    }

    /// Decides the link's task its one way, as the person it was sent to, with the request's
    /// evidence on the decision event; the link is used up in the same transaction.
    pub async fn decide_by_link(
        &self,
        token: &str,
        reason: Option<String>,
        evidence: LinkEvidence,
    ) -> Result<std::result::Result<Value, LinkRefusal>> {
        let view = match self.link(token).await? {
            Ok(v) => v,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let now = self.now();
        let hash = token_hash(token);
        let cmd = Command::Decide {
            task_id: view.task_id,
            decision: view.decision.clone(),
            reason,
            actor: Actor {
                id: view.person.clone(),
            },
            data: Value::Null,
            evidence: Some(json!({
                "via": "signed_link",
                "link": &hash[..16],
                "person": view.person,
                "at": now,
                "ip": evidence.ip,
                "user_agent": evidence.user_agent,
            })),
        };
        let also = Also {
            link_used: Some((hash, evidence)),
            ..Also::default()
        };
        match self.apply(view.instance_id, cmd, also).await {
            Ok(state) => Ok(Ok(json!({
                "task_id": view.task_id,
                "decision": view.decision,
                "instance_id": view.instance_id,
                "instance_status": state.status.label(),
                "current_step": state.step,
            }))),
            Err(Error::LinkUsed) => Ok(Err(LinkRefusal::Used)),
            Err(Error::Refused(partnerflow_core::machine::Error::TaskClosed(_))) => {
                Ok(Err(LinkRefusal::TaskClosed))
            }
            Err(e) => Err(e),
        }
    }
}
