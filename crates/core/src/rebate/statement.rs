//! A partner's month as statement lines. The record hands in the month's sums (tax included,
//! per family, sales tax rate, policy segment and kind of line); each line is computed at full
//! precision and rounded once, to the fen with banker's rounding:
//!
//! `amount = round(Σ amount_incl / (1 + tax_rate) × rate × (1 + partner_invoice_rate))`
//!
//! (the seeds: 85.00 / 1.06 × 10 % × 1.03 = 8.2594 → 8.26). The rate is the family rule's of
//! the policy in force for the segment, at the tier the family's net performance of the month
//! (tax excluded) reached. Late transactions (booked in a month already settled) and refunds of
//! orders of a settled month are lines of their own, at the rate that month's statement used.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::Period;
use super::policy::{Policy, Strategy};
use crate::money::round_fen;

/// What kind of line a sum belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LineKind {
    /// The month's own transactions.
    Current,
    /// Transactions of an earlier, already settled month, imported after it was settled.
    Adjustment { booked: Period },
    /// Refunds of orders of an earlier, already settled month.
    Clawback { original: Period },
}

/// The record's sum of one group of transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sum {
    pub family: String,
    /// Index into the policies in force during the month (a policy change mid-month starts a
    /// new segment).
    pub segment: usize,
    pub tax_rate: Decimal,
    pub kind: LineKind,
    /// Σ amounts, tax included (refunds negative).
    pub amount: Decimal,
    pub count: u64,
}

/// The rate an earlier month's statement used for a family, for its adjustment and clawback
/// lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarlierRate {
    pub rate: Decimal,
    pub tier: usize,
    pub policy_id: String,
    pub policy_version: u32,
}

/// What a statement needs besides the sums.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// The policies in force during the month, one per segment.
    pub segments: &'a [&'a Policy],
    pub partner_type: Option<&'a str>,
    /// The partner's own invoice tax rate, when its standing names one.
    pub invoice_rate: Option<Decimal>,
    /// Rates of earlier statements, by (month, family).
    pub earlier: &'a BTreeMap<(Period, String), EarlierRate>,
}

/// One statement line, explainable: its policy version, tier, rate and the figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub n: usize,
    pub family: String,
    #[serde(flatten)]
    pub kind: LineKind,
    pub segment: usize,
    pub policy_id: String,
    pub policy_version: u32,
    pub tier: usize,
    pub rate: Decimal,
    /// Net performance of the line, tax excluded, at full precision.
    pub performance: Decimal,
    pub partner_invoice_rate: Decimal,
    /// The rebate, rounded once.
    pub amount: Decimal,
    /// The rebate without the partner's invoice tax: round(amount / (1 + partner rate)).
    pub amount_excl: Decimal,
    pub transactions: u64,
}

/// The month's lines and their total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Computed {
    pub lines: Vec<Line>,
    pub total: Decimal,
}

/// An amount that includes `rate` of tax without it, rounded once (3.10 at 3 % is 3.01).
pub fn without_tax(amount: Decimal, rate: Decimal) -> Decimal {
    round_fen(amount / (Decimal::ONE + rate))
}

fn excl(sum: &Sum) -> Decimal {
    sum.amount / (Decimal::ONE + sum.tax_rate)
}

/// The statement lines of one partner's month.
pub fn compute(sums: &[Sum], ctx: &Context<'_>) -> Computed {
    // The tier each family reached: its net performance of the month, all segments together.
    let mut performance: BTreeMap<&str, Decimal> = BTreeMap::new();
    for s in sums.iter().filter(|s| s.kind == LineKind::Current) {
        *performance.entry(s.family.as_str()).or_default() += excl(s);
    }
    let mut groups: BTreeMap<(LineKind, &str, usize), (Decimal, u64)> = BTreeMap::new();
    for s in sums {
        let g = groups
            .entry((s.kind, s.family.as_str(), s.segment))
            .or_default();
        g.0 += excl(s);
        g.1 += s.count;
    }
    let mut lines = Vec::new();
    for ((kind, family, segment), (perf, count)) in groups {
        let Some(policy) = ctx.segments.get(segment).or_else(|| ctx.segments.last()) else {
            continue;
        };
        let rule = policy.rule(family, ctx.partner_type);
        if rule.is_some_and(|r| r.strategy == Strategy::NoPerformanceNoRebate) {
            continue;
        }
        let current =
            rule.map(|r| r.rate_for(performance.get(family).copied().unwrap_or_default()));
        let (rate, tier, policy_id, policy_version) = match kind {
            LineKind::Adjustment { booked: p } | LineKind::Clawback { original: p }
                if ctx.earlier.contains_key(&(p, family.to_owned())) =>
            {
                let e = &ctx.earlier[&(p, family.to_owned())];
                (e.rate, e.tier, e.policy_id.clone(), e.policy_version)
            }
            _ => (
                current.map_or(Decimal::ZERO, |r| r.rate),
                current.map_or(0, |r| r.tier),
                policy.id.clone(),
                policy.version,
            ),
        };
        let partner_rate = ctx.invoice_rate.unwrap_or(policy.partner_invoice_rate);
        let gross_up = Decimal::ONE + partner_rate;
        let amount = round_fen(perf * rate * gross_up);
        lines.push(Line {
            n: lines.len() + 1,
            family: family.to_owned(),
            kind,
            segment,
            policy_id,
            policy_version,
            tier,
            rate,
            performance: perf.round_dp(8),
            partner_invoice_rate: partner_rate,
            amount,
            amount_excl: without_tax(amount, partner_rate),
            transactions: count,
        });
    }
    let total = lines.iter().map(|l| l.amount).sum();
    Computed { lines, total }
}

#[cfg(test)]
mod tests;
