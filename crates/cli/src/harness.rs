//! An embedded engine on a virtual clock, driven step by step: used by the demo and the tests.

use std::sync::Arc;

use anyhow::Result;
use chrono::{DateTime, TimeZone, Utc};
use partnerflow_core::machine::Actor;
use partnerflow_engine::view::InstanceView;
use partnerflow_engine::{Engine, VirtualClock};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::settings::Settings;

/// An engine whose clock moves only when told to.
#[derive(Debug, Clone)]
pub struct Harness {
    pub engine: Engine,
    pub clock: Arc<VirtualClock>,
}

/// A moment in Asia/Shanghai local time.
pub fn shanghai(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai
        .with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

impl Harness {
    /// An engine on `database_url` (and the in-process queue) starting at `start`.
    pub async fn new(database_url: &str, start: DateTime<Utc>) -> Result<Self> {
        Self::with_settings(database_url, start, |_| {}).await
    }

    /// Like [`Harness::new`], with settings adjusted by `adjust`.
    pub async fn with_settings(
        database_url: &str,
        start: DateTime<Utc>,
        adjust: impl FnOnce(&mut Settings),
    ) -> Result<Self> {
        let providers = crate::app::Providers::default();
        Self::with_providers(database_url, start, adjust, providers).await
    }

    /// Like [`Harness::with_settings`], delivering and paying through `providers`.
    pub async fn with_providers(
        database_url: &str,
        start: DateTime<Utc>,
        adjust: impl FnOnce(&mut Settings),
        providers: crate::app::Providers,
    ) -> Result<Self> {
        let mut settings = Settings::load(std::path::Path::new("config"))?;
        settings.database.url = database_url.to_owned();
        settings.queue.kind = "memory".to_owned();
        adjust(&mut settings);
        let clock = Arc::new(VirtualClock::new(start));
        let engine = crate::app::build_with(&settings, clock.clone(), providers).await?;
        Ok(Harness { engine, clock })
    }

    pub fn now(&self) -> DateTime<Utc> {
        use partnerflow_engine::Clock;
        self.clock.now()
    }

    /// Does all work due now, then checks that the ledger still holds together (every
    /// account's balance is what its postings add up to, none below zero), so every scenario
    /// driven through the harness checks the ledger's invariant after every step.
    pub async fn settle(&self) -> Result<()> {
        self.engine.drain().await?;
        let findings = self.engine.verify_ledger().await?;
        if let Some(f) = findings.first() {
            anyhow::bail!(
                "the ledger does not hold together on {}: {} (stored {:?}, postings {:?})",
                f.account,
                f.problem,
                f.stored,
                f.replayed
            );
        }
        Ok(())
    }

    /// Moves the clock to `until`, stopping at every due timer on the way and doing its work.
    /// Fails when something is due but nothing can run (a timer or row claimed and never
    /// finished), rather than spinning at the same moment for ever.
    pub async fn advance_to(&self, until: DateTime<Utc>) -> Result<()> {
        self.settle().await?;
        while let Some(next) = self.engine.next_due().await? {
            if next > until {
                break;
            }
            if next > self.now() {
                self.clock.set(next);
            } else if self.engine.drain().await? == 0 {
                anyhow::bail!(
                    "work due at {next} cannot run at {}: it is claimed and was never finished",
                    self.now()
                );
            }
            self.settle().await?;
        }
        if until > self.now() {
            self.clock.set(until);
        }
        self.settle().await
    }

    /// Starts onboarding for `application`, keyed by its partner id and submitted by the
    /// person it names, as a partner-side integration of that partner would.
    pub async fn apply(&self, application: Value) -> Result<Uuid, partnerflow_engine::Error> {
        let field = |name: &str| {
            application
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let (key, submitter) = (field("partner_id"), field("submitted_by"));
        let submitter = partnerflow_engine::Submitter {
            actor: Actor { id: submitter },
            partner: Some(key.clone()),
        };
        let (started, _) = self
            .engine
            .start("partner_onboarding", &key, application, submitter, None)
            .await?;
        Ok(started.id)
    }

    /// Certifies `partner`'s business information the way production does: an onboarding
    /// (of an integration partner, submitted by `person`) whose business verification passes.
    pub async fn certify_business(&self, partner: &str, person: &str) -> Result<Uuid> {
        let id = self
            .apply(application(partner, "integration", person))
            .await?;
        self.settle().await?;
        Ok(id)
    }

    /// Uploads `bytes` as `filename` on `screen` for `partner`'s portal; the attachment's id.
    pub async fn upload(
        &self,
        partner: &str,
        screen: &str,
        filename: &str,
        bytes: &[u8],
    ) -> Result<String> {
        let mut upload = self.engine.begin_upload(screen, filename).await?;
        upload.write(bytes).await?;
        let meta = partnerflow_engine::UploadMeta {
            screen: screen.to_owned(),
            filename: filename.to_owned(),
            uploaded_by: format!(
                "integration:portal-{}",
                partner.to_lowercase().replace('-', "")
            ),
            partner_id: Some(partner.to_owned()),
        };
        Ok(self.engine.finish_upload(upload, meta).await?.id)
    }

    /// Posts `event` to the open wait of `id` (naming its correlation id) and does the work
    /// that follows.
    pub async fn post_event(
        &self,
        id: Uuid,
        event: &str,
        payload: Value,
        actor: &str,
    ) -> Result<Value> {
        let correlation = self
            .view(id)
            .await?
            .waits
            .into_iter()
            .find(|w| w.event == event)
            .map(|w| w.correlation)
            .ok_or_else(|| anyhow::anyhow!("{id} is not waiting for `{event}`"))?;
        let actor = Actor {
            id: actor.to_owned(),
        };
        let answer = self
            .engine
            .post_event(id, event, &correlation, payload, actor, None)
            .await?;
        self.settle().await?;
        Ok(answer)
    }

    pub async fn view(&self, id: Uuid) -> Result<InstanceView> {
        Ok(self.engine.instance(id).await?)
    }

    /// The open task of an instance (or of its running child), if any.
    pub async fn open_task(&self, id: Uuid) -> Result<Option<(Uuid, String)>> {
        let v = self.view(id).await?;
        if let Some(t) = v.tasks.iter().find(|t| t.status == "open") {
            return Ok(Some((Uuid::parse_str(&t.id)?, t.step.clone())));
        }
        for child in self.children(id).await? {
            if let Some(found) = Box::pin(self.open_task(child)).await? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// Child instances started by `id`, oldest first.
    pub async fn children(&self, id: Uuid) -> Result<Vec<Uuid>> {
        Ok(self.view(id).await?.children())
    }

    /// Decides the open task of `id` (or its child) and does the work that follows.
    pub async fn decide(
        &self,
        id: Uuid,
        actor: &str,
        decision: &str,
        reason: Option<&str>,
        data: Value,
    ) -> Result<Value, anyhow::Error> {
        let (task, _) = self
            .open_task(id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no open task on {id}"))?;
        let answer = self
            .engine
            .decide(
                task,
                decision,
                reason.map(str::to_owned),
                Actor {
                    id: actor.to_owned(),
                },
                data,
                None,
            )
            .await?;
        self.settle().await?;
        Ok(answer)
    }

    /// The partner signs the agreement electronically, then legal countersigns.
    pub async fn sign_contract(&self, id: Uuid, partner_user: &str) -> Result<()> {
        let contract = *self
            .children(id)
            .await?
            .last()
            .ok_or_else(|| anyhow::anyhow!("no contract started by {id}"))?;
        let generated =
            self.view(contract).await?.data["steps"]["generate_agreement"]["document_sha256"]
                .clone();
        let sig =
            json!({ "method": "electronic", "signer": partner_user, "document_sha256": generated });
        self.decide(id, partner_user, "sign", None, sig).await?;
        self.decide(id, "legal.sun", "approve", None, Value::Null)
            .await?;
        Ok(())
    }
}

/// A complete application of the given type that passes every rule.
pub fn application(partner_id: &str, partner_type: &str, submitted_by: &str) -> Value {
    let (capital, headcount, extra) = match partner_type {
        "integration" => (
            "5000000.00",
            json!({ "total": 25, "technical": 5, "sales": 6 }),
            json!({ "certified_staff": 3 }),
        ),
        "development" => (
            "12000000.00",
            json!({ "total": 60, "technical": 30, "rnd": 25, "delivery": 12 }),
            json!({ "certified_staff": 6, "software_copyrights": 2 }),
        ),
        _ => (
            "1500000.00",
            json!({ "total": 22, "technical": 3 }),
            json!({ "exam_passers": 3, "deposit_paid": "10000.00" }),
        ),
    };
    let mut app = json!({
        "partner_id": partner_id,
        "company": { "name": format!("{partner_id} Technology Co., Ltd."), "uscc": "91350100M000100Y43", "registered_capital": capital, "established_on": "2019-03-01" },
        "partner_type": partner_type,
        "contacts": [{ "name": "Contact", "email": format!("{}@partner.example", partner_id.to_lowercase()), "phone": "13900009999" }],
        "headcount": headcount,
        "documents": [{ "kind": "business_licence", "file_name": "licence.pdf" }, { "kind": "bank_account_proof", "file_name": "bank.pdf" }],
        "submitted_by": submitted_by
    });
    if let (Some(a), Some(e)) = (app.as_object_mut(), extra.as_object()) {
        a.extend(e.clone());
    }
    app
}
