//! Rebate policies as data (`config/policies/*.toml`): each file is one version of a policy,
//! effective from a date (until the next version takes over), with a rate per product family,
//! flat or tiered by the partner's net performance of the family in the month, optionally per
//! partner type. The seeds give no real rates, only samples (5/10/15/20/40 %).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// How a family's sales count (the seeds' product strategies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Performance that earns the rebate.
    Standard,
    /// Counts as performance, earns nothing (有业绩无返点).
    PerformanceNoRebate,
    /// Neither performance nor rebate (无业绩无返点).
    NoPerformanceNoRebate,
}

/// One step of a tiered rate: from this net performance of the month (tax excluded) on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub from: Decimal,
    pub rate: Decimal,
}

/// The rate of one product family (for some partner types, or all).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FamilyRule {
    pub family: String,
    /// The partner types it applies to; all when empty.
    #[serde(default)]
    pub partner_types: Vec<String>,
    #[serde(default = "standard")]
    pub strategy: Strategy,
    /// A flat rate, or `tiers` (exactly one of them for a standard family).
    pub rate: Option<Decimal>,
    #[serde(default)]
    pub tiers: Vec<Tier>,
}

fn standard() -> Strategy {
    Strategy::Standard
}

/// One version of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub id: String,
    pub version: u32,
    pub title: Option<String>,
    pub effective_from: NaiveDate,
    /// The tax rate of the partner's invoice the rebate is grossed up by (`× (1 + rate)`),
    /// unless the partner's standing names its own (`invoice_tax_rate`).
    #[serde(default = "default_invoice_rate")]
    pub partner_invoice_rate: Decimal,
    pub families: Vec<FamilyRule>,
}

fn default_invoice_rate() -> Decimal {
    Decimal::new(6, 2)
}

/// A rule's rate for a month's net performance, and the tier reached (1-based; 0 for a flat
/// rate or a family that earns nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rate {
    pub rate: Decimal,
    pub tier: usize,
}

impl FamilyRule {
    pub fn applies_to(&self, family: &str, partner_type: Option<&str>) -> bool {
        self.family == family
            && (self.partner_types.is_empty()
                || partner_type.is_some_and(|t| self.partner_types.iter().any(|p| p == t)))
    }

    /// The rate for `performance` (the month's net, tax excluded).
    pub fn rate_for(&self, performance: Decimal) -> Rate {
        if self.strategy != Strategy::Standard {
            return Rate {
                rate: Decimal::ZERO,
                tier: 0,
            };
        }
        if let Some(rate) = self.rate {
            return Rate { rate, tier: 0 };
        }
        let reached = self
            .tiers
            .iter()
            .enumerate()
            .rev()
            .find(|(_, t)| performance >= t.from);
        match reached {
            Some((i, t)) => Rate {
                rate: t.rate,
                tier: i + 1,
            },
            None => Rate {
                rate: Decimal::ZERO,
                tier: 0,
            },
        }
    }
}

impl Policy {
    /// Parses and checks one policy file; every problem at once.
    pub fn parse(file: &str, text: &str) -> Result<Policy, Vec<String>> {
        let policy: Policy = toml::from_str(text).map_err(|e| vec![format!("{file}: {e}")])?;
        let mut problems = Vec::new();
        let rate_ok = |r: Decimal| r >= Decimal::ZERO && r <= Decimal::ONE;
        if !rate_ok(policy.partner_invoice_rate) {
            problems.push(format!(
                "{file}: partner_invoice_rate {} is not between 0 and 1",
                policy.partner_invoice_rate
            ));
        }
        if policy.families.is_empty() {
            problems.push(format!(
                "{file}: a policy needs at least one [[families]] rule"
            ));
        }
        let mut seen = BTreeMap::new();
        for (i, f) in policy.families.iter().enumerate() {
            let at = format!("{file}: families[{i}] ({})", f.family);
            let mut types = f.partner_types.clone();
            types.sort();
            if let Some(j) = seen.insert((f.family.clone(), types), i) {
                problems.push(format!(
                    "{at}: the same family and partner types as families[{j}]"
                ));
            }
            match (f.strategy, f.rate, f.tiers.is_empty()) {
                (Strategy::Standard, Some(_), false) => {
                    problems.push(format!("{at}: either a flat rate or tiers, not both"));
                }
                (Strategy::Standard, None, true) => {
                    problems.push(format!("{at}: a standard family needs a rate or tiers"));
                }
                (Strategy::Standard, _, _) => {}
                (_, None, true) => {}
                (_, _, _) => {
                    problems.push(format!("{at}: a family that earns no rebate has no rate"))
                }
            }
            if f.rate.is_some_and(|r| !rate_ok(r)) || f.tiers.iter().any(|t| !rate_ok(t.rate)) {
                problems.push(format!("{at}: rates are between 0 and 1 (0.10 is 10 %)"));
            }
            if f.tiers.first().is_some_and(|t| t.from != Decimal::ZERO) {
                problems.push(format!("{at}: the first tier starts from 0"));
            }
            if f.tiers.windows(2).any(|w| w[1].from <= w[0].from) {
                problems.push(format!("{at}: tiers start from increasing amounts"));
            }
        }
        if problems.is_empty() {
            Ok(policy)
        } else {
            Err(problems)
        }
    }

    /// The rule for a family and partner type: one naming the type before one for all.
    pub fn rule(&self, family: &str, partner_type: Option<&str>) -> Option<&FamilyRule> {
        let specific = self
            .families
            .iter()
            .find(|f| !f.partner_types.is_empty() && f.applies_to(family, partner_type));
        specific.or_else(|| {
            self.families
                .iter()
                .find(|f| f.partner_types.is_empty() && f.family == family)
        })
    }
}

/// Every version of every policy; the one in force on a day is the latest effective by then.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    versions: Vec<Policy>,
}

impl PolicySet {
    /// Checks that versions of one policy have distinct numbers and dates, increasing together.
    pub fn new(mut versions: Vec<Policy>) -> Result<PolicySet, Vec<String>> {
        versions.sort_by_key(|p| (p.effective_from, p.version));
        let mut problems = Vec::new();
        for w in versions.windows(2) {
            if w[0].effective_from == w[1].effective_from {
                problems.push(format!(
                    "policies {} v{} and {} v{} take effect on the same day {}",
                    w[0].id, w[0].version, w[1].id, w[1].version, w[0].effective_from
                ));
            }
            if w[0].id == w[1].id && w[1].version <= w[0].version {
                problems.push(format!(
                    "policy {}: version {} takes effect after version {}",
                    w[0].id, w[0].version, w[1].version
                ));
            }
        }
        if problems.is_empty() {
            Ok(PolicySet { versions })
        } else {
            Err(problems)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }

    /// The policy in force on `day`.
    pub fn in_force(&self, day: NaiveDate) -> Option<&Policy> {
        self.versions.iter().rev().find(|p| p.effective_from <= day)
    }

    /// The days within `[from, to)` on which another policy takes over, ascending.
    pub fn changes_within(&self, from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
        self.versions
            .iter()
            .map(|p| p.effective_from)
            .filter(|d| *d > from && *d < to)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
id = "base-monthly"
version = 1
effective_from = "2026-01-01"
[[families]]
family = "compute"
tiers = [{ from = "0", rate = "0.05" }, { from = "100000.00", rate = "0.10" }, { from = "500000.00", rate = "0.15" }]
[[families]]
family = "database"
rate = "0.20"
[[families]]
family = "database"
partner_types = ["development"]
rate = "0.40"
[[families]]
family = "domains"
strategy = "performance_no_rebate"
"#;

    fn d(s: &str) -> Decimal {
        s.parse().expect("decimal")
    }

    #[test]
    fn a_tier_is_reached_by_the_months_net_performance() {
        let p = Policy::parse("p.toml", SAMPLE).expect("policy");
        let compute = p.rule("compute", None).expect("rule");
        assert_eq!(
            compute.rate_for(d("99999.99")),
            Rate {
                rate: d("0.05"),
                tier: 1
            }
        );
        assert_eq!(
            compute.rate_for(d("100000.00")),
            Rate {
                rate: d("0.10"),
                tier: 2
            }
        );
        assert_eq!(
            compute.rate_for(d("750000")),
            Rate {
                rate: d("0.15"),
                tier: 3
            }
        );
        assert_eq!(
            compute.rate_for(d("-5")).rate,
            Decimal::ZERO,
            "a net refund month"
        );
        assert_eq!(
            p.rule("database", Some("integration")).and_then(|r| r.rate),
            Some(d("0.20"))
        );
        assert_eq!(
            p.rule("database", Some("development")).and_then(|r| r.rate),
            Some(d("0.40"))
        );
        assert_eq!(
            p.rule("domains", None).map(|r| r.rate_for(d("1000")).rate),
            Some(Decimal::ZERO)
        );
        assert!(p.rule("storage", None).is_none());
    }

    #[test]
    fn a_policy_with_bad_rates_or_tiers_is_refused_with_every_problem() {
        let bad = SAMPLE
            .replace(r#"rate = "0.20""#, r#"rate = "20""#)
            .replace(r#"{ from = "0", rate = "0.05" }, "#, "")
            .replace(
                r#"strategy = "performance_no_rebate""#,
                "strategy = \"performance_no_rebate\"\nrate = \"0.1\"",
            );
        let problems = Policy::parse("p.toml", &bad).expect_err("refused");
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(
            problems[0].contains("first tier starts from 0"),
            "{problems:#?}"
        );
        assert!(problems[1].contains("between 0 and 1"), "{problems:#?}");
        assert!(
            problems[2].contains("earns no rebate has no rate"),
            "{problems:#?}"
        );
    }

    #[test]
    fn the_policy_in_force_is_the_latest_effective() {
        let v1 = Policy::parse("v1", SAMPLE).expect("v1");
        let v2 = Policy::parse(
            "v2",
            &SAMPLE
                .replace("version = 1", "version = 2")
                .replace("2026-01-01", "2026-11-16"),
        )
        .expect("v2");
        let set = PolicySet::new(vec![v2, v1]).expect("set");
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("day");
        assert_eq!(set.in_force(day("2026-11-15")).map(|p| p.version), Some(1));
        assert_eq!(set.in_force(day("2026-11-16")).map(|p| p.version), Some(2));
        assert!(set.in_force(day("2025-12-31")).is_none());
        assert_eq!(
            set.changes_within(day("2026-11-01"), day("2026-12-01")),
            vec![day("2026-11-16")]
        );
    }
}
