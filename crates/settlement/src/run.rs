//! A period's settlement: the run (once per programme and period, with the cutoff it settles
//! up to), the statements (once per partner), and their workflows, started in bulk. Every step
//! can be repeated: a re-run, a second concurrent run or a restart after a crash computes the
//! same figures from the run's cutoff, records no second statement and starts no second
//! workflow.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use partnerflow_core::machine::Actor;
use partnerflow_core::rebate::policy::{Policy, PolicySet};
use partnerflow_core::rebate::statement::{self, Context, EarlierRate, Line, LineKind, Sum};
use partnerflow_core::rebate::{Period, SettlementRules};
use partnerflow_engine::{BulkStart, Engine, Submitter};
use partnerflow_store::settlement::{self as record, Run, Statement};
use partnerflow_store::transactions::{self, Window};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{Error, Result, schedule};

/// The workflow each statement runs.
pub const WORKFLOW: &str = "rebate_settlement";

/// Where a run stands, as it goes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub partners_total: u64,
    pub partners_done: u64,
    pub started: u64,
}

/// A programme's settlement: its rules and policies, on the engine that runs the statements.
#[derive(Clone)]
pub struct Settlement {
    engine: Engine,
    programme: String,
    rules: SettlementRules,
    policies: PolicySet,
}

/// One partner's month before it is recorded.
struct Draft {
    partner: String,
    sums: Vec<Sum>,
}

impl Settlement {
    pub fn new(
        engine: Engine,
        programme: &str,
        rules: SettlementRules,
        policies: PolicySet,
    ) -> Self {
        Settlement {
            engine,
            programme: programme.to_owned(),
            rules,
            policies,
        }
    }

    pub fn rules(&self) -> &SettlementRules {
        &self.rules
    }

    pub fn programme(&self) -> &str {
        &self.programme
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    async fn conn(&self) -> Result<partnerflow_store::PooledConn> {
        Ok(self.engine.store().acquire().await?)
    }

    /// Settles every period the schedule has made due and no run has finished (catching up
    /// ticks missed while the service was down); the runs, oldest first.
    pub async fn settle_due(&self) -> Result<Vec<Run>> {
        let runs = {
            let mut conn = self.conn().await?;
            record::runs(&mut conn, &self.programme, 10_000).await?
        };
        let parse = |r: &Run| r.period.parse::<Period>().ok();
        let recorded: BTreeSet<Period> = runs.iter().filter_map(parse).collect();
        let finished: BTreeSet<Period> = runs
            .iter()
            .filter(|r| r.status == "finished")
            .filter_map(parse)
            .collect();
        let mut out = Vec::new();
        for period in schedule::due(&self.rules, self.engine.now(), &recorded, &finished)? {
            tracing::info!(programme = %self.programme, %period, "settling a due period");
            out.push(self.settle(period, &mut |_| {}).await?);
        }
        Ok(out)
    }

    /// Settles `period` (a month that is over): statements for every partner with
    /// transactions or a carried payable, and their workflows. A finished run is answered as
    /// it is; an unfinished one (a crash, a concurrent run) is completed.
    pub async fn settle(
        &self,
        period: Period,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<Run> {
        let tz = self.rules.timezone;
        let now = self.engine.now();
        if period >= Period::of(now, tz) {
            return Err(Error::Invalid(format!(
                "period {period} is not over yet; a month is settled once it has ended"
            )));
        }
        let segments = self.segments(period)?;
        let run = self.open_run(period, now).await?;
        if run.status == "finished" {
            return Ok(run);
        }
        let changes: Vec<DateTime<Utc>> = segments.iter().skip(1).map(|(from, _)| *from).collect();
        let window = Window {
            start: period.start(tz),
            end: period.end(tz),
            cutoff: run.cutoff,
            changes: &changes,
        };
        let drafts = self.drafts(window, run.previous_cutoff).await?;
        let policies: Vec<&Policy> = segments.iter().map(|(_, p)| p).collect();
        let mut state = Progress {
            partners_total: drafts.len() as u64,
            ..Progress::default()
        };
        progress(state);
        let (facts, carries) = {
            let mut conn = self.conn().await?;
            let facts =
                record::partner_facts(&mut conn, &["partner_type", "invoice_tax_rate"]).await?;
            let mut carries: BTreeMap<String, Vec<(String, Decimal)>> = BTreeMap::new();
            for (partner, id, payable) in
                record::open_carries(&mut conn, &self.programme, &period.to_string()).await?
            {
                carries.entry(partner).or_default().push((id, payable));
            }
            (facts, carries)
        };
        let mut drafts = drafts;
        // Partners with nothing this month but a payable carried from before settle it too.
        for partner in carries.keys() {
            if !drafts.iter().any(|d| &d.partner == partner) {
                drafts.push(Draft {
                    partner: partner.clone(),
                    sums: Vec::new(),
                });
            }
        }
        drafts.sort_by(|a, b| a.partner.cmp(&b.partner));
        state.partners_total = drafts.len() as u64;
        for batch in drafts.chunks(self.rules.batch.max(1)) {
            let mut rows = Vec::with_capacity(batch.len());
            for d in batch {
                let earlier = self.earlier_rates(&d.partner, &d.sums).await?;
                let partner_facts = facts.get(&d.partner);
                let ctx = Context {
                    segments: &policies,
                    partner_type: partner_facts
                        .and_then(|f| f.get("partner_type"))
                        .map(String::as_str),
                    invoice_rate: partner_facts
                        .and_then(|f| f.get("invoice_tax_rate"))
                        .and_then(|r| r.parse().ok()),
                    earlier: &earlier,
                };
                let computed = statement::compute(&d.sums, &ctx);
                let carried: Vec<(String, Decimal)> =
                    carries.get(&d.partner).cloned().unwrap_or_default();
                let carried_in: Decimal = carried.iter().map(|(_, a)| *a).sum();
                let lines: Vec<Value> = computed
                    .lines
                    .iter()
                    .map(|l| line_json(l, window, &segments, run.previous_cutoff, tz))
                    .collect();
                rows.push((
                    Statement {
                        id: Uuid::now_v7().to_string(),
                        programme: self.programme.clone(),
                        partner_id: d.partner.clone(),
                        period: period.to_string(),
                        run_id: run.id.clone(),
                        total: computed.total,
                        carried_in,
                        payable: computed.total + carried_in,
                        lines: Value::Array(lines),
                        instance_id: None,
                        carried_into: None,
                        created_at: now,
                    },
                    carried,
                ));
            }
            let mut tx = self.engine.store().begin().await?;
            let statements: Vec<Statement> = rows.iter().map(|(s, _)| s.clone()).collect();
            let inserted: BTreeSet<String> = record::insert_statements(&mut tx, &statements)
                .await?
                .into_iter()
                .collect();
            for (s, carried) in &rows {
                if inserted.contains(&s.id) && !carried.is_empty() {
                    let ids: Vec<String> = carried.iter().map(|(id, _)| id.clone()).collect();
                    record::carry_into(&mut tx, &ids, &s.period).await?;
                }
            }
            state.partners_done += batch.len() as u64;
            record::progress(
                &mut tx,
                &run.id,
                state.partners_total as i64,
                state.partners_done as i64,
            )
            .await?;
            tx.commit().await.map_err(partnerflow_store::Error::from)?;
            progress(state);
        }
        self.start_workflows(&run, &mut state, progress).await?;
        let mut conn = self.conn().await?;
        let total = record::run_total(&mut conn, &run.id).await?;
        record::finish_run(&mut conn, &run.id, total, self.engine.now()).await?;
        Ok(record::run(&mut conn, &self.programme, &period.to_string())
            .await?
            .unwrap_or(run))
    }

    /// The run of the period, created with the current cutoff when there is none.
    async fn open_run(&self, period: Period, now: DateTime<Utc>) -> Result<Run> {
        let mut conn = self.conn().await?;
        if let Some(run) = record::run(&mut conn, &self.programme, &period.to_string()).await? {
            return Ok(run);
        }
        let previous = record::run(&mut conn, &self.programme, &period.prev().to_string())
            .await?
            .map(|r| r.cutoff);
        let cutoff = transactions::cutoff(self.engine.store()).await?;
        let id = Uuid::now_v7().to_string();
        Ok(record::open_run(
            &mut conn,
            &id,
            &self.programme,
            &period.to_string(),
            cutoff,
            previous,
            now,
        )
        .await?)
    }

    /// The policies in force during the month, each from the instant it takes over.
    fn segments(&self, period: Period) -> Result<Vec<(DateTime<Utc>, Policy)>> {
        let tz = self.rules.timezone;
        let (first, next) = (period.first_day(), period.next().first_day());
        let Some(opening) = self.policies.in_force(first) else {
            return Err(Error::Config(format!(
                "no rebate policy is in force on {first} (config/policies/)"
            )));
        };
        let mut out = vec![(period.start(tz), opening.clone())];
        for day in self.policies.changes_within(first, next) {
            if let Some(p) = self.policies.in_force(day) {
                out.push((partnerflow_core::rebate::local_midnight(day, tz), p.clone()));
            }
        }
        Ok(out)
    }

    /// Each partner's sums of the window: the month's own, its adjustments and clawbacks.
    async fn drafts(&self, w: Window<'_>, previous_cutoff: Option<i64>) -> Result<Vec<Draft>> {
        let tz = self.rules.timezone;
        let store = self.engine.store();
        let mut conn = self.conn().await?;
        let mut by_partner: BTreeMap<String, Vec<Sum>> = BTreeMap::new();
        for g in transactions::month_sums(&mut conn, store.backend, w).await? {
            by_partner.entry(g.partner_id).or_default().push(Sum {
                family: g.family,
                segment: g.segment,
                tax_rate: g.tax_rate,
                kind: LineKind::Current,
                amount: g.amount,
                count: g.count,
            });
        }
        for r in transactions::earlier_rows(&mut conn, w, previous_cutoff).await? {
            let kind = match r.original_booked_at {
                Some(original) if r.booked_at >= w.start => LineKind::Clawback {
                    original: Period::of(original, tz),
                },
                _ => LineKind::Adjustment {
                    booked: Period::of(r.booked_at, tz),
                },
            };
            let segment = w.changes.iter().filter(|c| r.booked_at >= **c).count();
            by_partner.entry(r.partner_id).or_default().push(Sum {
                family: r.family,
                segment: if r.booked_at >= w.start { segment } else { 0 },
                tax_rate: r.tax_rate,
                kind,
                amount: r.amount,
                count: 1,
            });
        }
        Ok(by_partner
            .into_iter()
            .map(|(partner, sums)| Draft { partner, sums })
            .collect())
    }

    /// The rates earlier statements used, for a partner's adjustment and clawback lines.
    async fn earlier_rates(
        &self,
        partner: &str,
        sums: &[Sum],
    ) -> Result<BTreeMap<(Period, String), EarlierRate>> {
        let months: BTreeSet<Period> = sums
            .iter()
            .filter_map(|s| match s.kind {
                LineKind::Adjustment { booked: p } | LineKind::Clawback { original: p } => Some(p),
                LineKind::Current => None,
            })
            .collect();
        let mut out = BTreeMap::new();
        if months.is_empty() {
            return Ok(out);
        }
        let mut conn = self.conn().await?;
        for month in months {
            let Some(lines) =
                record::lines_of(&mut conn, &self.programme, partner, &month.to_string()).await?
            else {
                continue;
            };
            for l in lines.as_array().into_iter().flatten() {
                let Ok(line) = serde_json::from_value::<Line>(l.clone()) else {
                    continue;
                };
                if line.kind == LineKind::Current {
                    out.insert(
                        (month, line.family.clone()),
                        EarlierRate {
                            rate: line.rate,
                            tier: line.tier,
                            policy_id: line.policy_id.clone(),
                            policy_version: line.policy_version,
                        },
                    );
                }
            }
        }
        Ok(out)
    }

    /// Starts the workflow of every statement of the run that has none yet, in bulk.
    async fn start_workflows(
        &self,
        run: &Run,
        state: &mut Progress,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<()> {
        let batch = i64::try_from(self.rules.batch.max(1)).unwrap_or(500);
        loop {
            let began = std::time::Instant::now();
            let pending = {
                let mut conn = self.conn().await?;
                record::unstarted(&mut conn, &run.id, batch).await?
            };
            let read = began.elapsed();
            if pending.is_empty() {
                return Ok(());
            }
            let starts: Vec<BulkStart> = pending
                .iter()
                .map(|s| BulkStart {
                    business_key: format!("rebate:{}:{}:{}", s.programme, s.partner_id, s.period),
                    input: self.input_of(s),
                    submitter: Submitter {
                        actor: Actor::system(),
                        partner: Some(s.partner_id.clone()),
                    },
                })
                .collect();
            let started = self.engine.start_many(WORKFLOW, starts).await?;
            let start = began.elapsed() - read;
            let pairs: Vec<(String, String)> = pending
                .iter()
                .zip(&started)
                .map(|(s, (instance, _))| (s.id.clone(), instance.to_string()))
                .collect();
            let mut conn = self.conn().await?;
            record::set_instances(&mut conn, &pairs).await?;
            tracing::debug!(
                statements = pending.len(),
                read_ms = read.as_millis() as u64,
                start_ms = start.as_millis() as u64,
                total_ms = began.elapsed().as_millis() as u64,
                "statement workflows started"
            );
            state.started += pending.len() as u64;
            progress(*state);
        }
    }

    /// The workflow's input: the statement and where the partner's notifications go.
    fn input_of(&self, s: &Statement) -> Value {
        let contacts: Vec<Value> = self
            .engine
            .directory()
            .people
            .iter()
            .filter(|p| p.partner.as_deref() == Some(s.partner_id.as_str()))
            .take(1)
            .map(|p| json!({ "name": p.name, "email": p.email, "phone": p.phone }))
            .collect();
        let lines: Vec<Value> = s
            .lines
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| {
                json!({ "n": l["n"], "family": l["family"], "kind": l["kind"], "rate": l["rate"],
                        "tier": l["tier"], "amount": l["amount"] })
            })
            .collect();
        json!({
            "statement_id": s.id, "programme": s.programme, "partner_id": s.partner_id,
            "period": s.period, "total": s.total.to_string(), "carried_in": s.carried_in.to_string(),
            "payable": s.payable.to_string(), "lines": lines, "contacts": contacts,
        })
    }
}

/// A line as recorded: the computed line and which transactions it came from.
fn line_json(
    l: &Line,
    w: Window<'_>,
    segments: &[(DateTime<Utc>, Policy)],
    previous_cutoff: Option<i64>,
    tz: chrono_tz::Tz,
) -> Value {
    let (from, to, after) = match l.kind {
        LineKind::Current | LineKind::Clawback { .. } => {
            let from = segments.get(l.segment).map_or(w.start, |(f, _)| *f);
            let to = segments.get(l.segment + 1).map_or(w.end, |(f, _)| *f);
            (from, to, 0)
        }
        LineKind::Adjustment { booked } => (
            booked.start(tz),
            booked.end(tz),
            previous_cutoff.unwrap_or(0),
        ),
    };
    let mut v = serde_json::to_value(l).unwrap_or(Value::Null);
    v["selection"] = json!({ "from": from, "to": to, "ids_after": after, "ids_upto": w.cutoff });
    v
}
