//! Market development funds (PRODUCT §1.3, notes/mdf-nre-incentives.md §3): the rules of a
//! usage application, a claim and its invoices, and the quota of a tier. Pure: the calendar,
//! today and the programme's numbers are passed in. The money moves on the ledger, through the
//! postings `workflows/mdf_claim.toml` asks for; these functions only check and normalise what
//! a partner submits, and compute the amounts those postings read.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{Datelike, Duration, NaiveDate};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::calendar::BusinessCalendar;
use crate::validation::read::{Reader, cost_lines, object};
use crate::validation::{FieldError, RecordFacts};

/// A programme's MDF numbers (`[mdf]` of the programme file), with the seeds' defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MdfRules {
    /// Annual quota per tier, CNY tax-inclusive (`software_advanced = "80000.00"`).
    #[serde(default = "default_quotas")]
    pub quotas: BTreeMap<String, String>,
    /// A usage application later than this many working days before the activity starts
    /// needs a `late_reason`.
    #[serde(default = "default_lateness")]
    pub lateness_working_days: u32,
    /// A claim later than this many calendar days after the activity ended needs the
    /// extension approval attached.
    #[serde(default = "default_claim_days")]
    pub claim_extension_after_days: i64,
    /// Ordinary VAT invoices count as their amount divided by this (special invoices at par).
    #[serde(default = "default_factor")]
    pub ordinary_invoice_factor: String,
    /// Materials every claim must attach (attachment ids).
    #[serde(default = "default_materials")]
    pub required_materials: Vec<String>,
    /// The quota's validity window within its year, `MM-DD` to `MM-DD`: an activity starts
    /// inside it, and no application is taken for a window that has ended.
    #[serde(default = "default_window")]
    pub window: (String, String),
}

impl Default for MdfRules {
    fn default() -> Self {
        MdfRules {
            quotas: default_quotas(),
            lateness_working_days: default_lateness(),
            claim_extension_after_days: default_claim_days(),
            ordinary_invoice_factor: default_factor(),
            required_materials: default_materials(),
            window: default_window(),
        }
    }
}

fn default_quotas() -> BTreeMap<String, String> {
    [
        ("software_advanced", "50000.00"),
        ("software_leading", "80000.00"),
        ("service_advanced", "50000.00"),
        ("service_leading", "80000.00"),
        ("si_advanced", "300000.00"),
        ("si_leading", "500000.00"),
        ("le_differentiated", "80000.00"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn default_lateness() -> u32 {
    10
}

fn default_claim_days() -> i64 {
    90
}

fn default_window() -> (String, String) {
    ("01-01".to_owned(), "12-31".to_owned())
}

/// The window of `year` as dates; `None` when the rules' `MM-DD`s are not dates that year.
fn window_of(rules: &MdfRules, year: i32) -> Option<(NaiveDate, NaiveDate)> {
    let day = |md: &str| NaiveDate::parse_from_str(&format!("{year}-{md}"), "%Y-%m-%d").ok();
    Some((day(&rules.window.0)?, day(&rules.window.1)?))
}

fn default_factor() -> String {
    "1.06".to_owned()
}

fn default_materials() -> Vec<String> {
    [
        "activity_photos",
        "summary_attachment",
        "third_party_invoices",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

/// The quota account of a partner for a year: every MDF posting of that window goes there.
pub fn quota_account(partner: &str, year: i32) -> String {
    format!("mdf:{partner}:{year}")
}

/// The grant of a tier's quota: `{partner_id, tier, year}` → the input with `amount` and
/// `quota_account` added.
pub fn validate_quota_grant(input: &Value, rules: &MdfRules) -> Result<Value, Vec<FieldError>> {
    object(input)?;
    let mut r = Reader::default();
    let partner = r.text(input, "partner_id", "partner_id");
    let tier = r.text(input, "tier", "tier");
    let year = input.get("year").and_then(Value::as_i64);
    if year.is_none_or(|y| !(2000..=2100).contains(&y)) {
        r.fail(
            "year",
            "year",
            "year must be a year such as 2026".to_owned(),
        );
    }
    let amount = tier.as_ref().and_then(|t| match rules.quotas.get(t) {
        Some(a) => Decimal::from_str(a).ok(),
        None => {
            let known: Vec<&str> = rules.quotas.keys().map(String::as_str).collect();
            r.fail(
                "tier",
                "tier",
                format!("tier `{t}` has no MDF quota; known: {}", known.join(", ")),
            );
            None
        }
    });
    if !r.errors.is_empty() {
        return Err(r.errors);
    }
    let (Some(partner), Some(year), Some(amount)) = (partner, year, amount) else {
        return Err(vec![FieldError::new(
            "$",
            "internal",
            "the grant could not be read".to_owned(),
        )]);
    };
    let mut out = input.clone();
    out["amount"] = json!(amount.to_string());
    out["quota_account"] = json!(quota_account(
        &partner,
        i32::try_from(year).unwrap_or_default()
    ));
    Ok(out)
}

/// A quota supplement request: `{partner_id, year, amount, reason}` → the input with
/// `quota_account` added.
pub fn validate_supplement(input: &Value) -> Result<Value, Vec<FieldError>> {
    object(input)?;
    let mut r = Reader::default();
    let partner = r.text(input, "partner_id", "partner_id");
    let year = input
        .get("year")
        .and_then(Value::as_i64)
        .filter(|y| (2000..=2100).contains(y));
    if year.is_none() {
        r.fail(
            "year",
            "year",
            "year must be a year such as 2026".to_owned(),
        );
    }
    r.amount(input, "amount", "amount");
    r.text(input, "reason", "reason");
    if !r.errors.is_empty() {
        return Err(r.errors);
    }
    let (Some(partner), Some(year)) = (partner, year) else {
        return Err(vec![FieldError::new(
            "$",
            "internal",
            "the request could not be read".to_owned(),
        )]);
    };
    let mut out = input.clone();
    out["quota_account"] = json!(quota_account(
        &partner,
        i32::try_from(year).unwrap_or_default()
    ));
    Ok(out)
}

/// A usage application (phase A): the activity plan, the agreement, the budget lines. Returns
/// the input with `mdf_amount` (Σ lines flagged use_mdf, what is reserved on the quota),
/// `other_amount`, `total_amount` and `quota_account` added.
pub fn validate_usage(
    input: &Value,
    rules: &MdfRules,
    calendar: &BusinessCalendar,
    today: NaiveDate,
    facts: &RecordFacts,
) -> Result<Value, Vec<FieldError>> {
    object(input)?;
    let mut r = Reader::default();
    let partner = r.text(input, "partner_id", "partner_id");
    r.text(input, "activity.name", "activity.name");
    r.text(input, "activity.type", "activity.type");
    r.text(input, "activity.city", "activity.city");
    let start = r.date(input, "activity.planned_start", "activity.planned_start");
    let end = r.date(input, "activity.planned_end", "activity.planned_end");
    if let (Some(s), Some(e)) = (start, end)
        && e < s
    {
        r.fail(
            "activity.planned_end",
            "after_start",
            format!("the activity cannot end ({e}) before it starts ({s})"),
        );
    }
    if let Some(s) = start {
        match window_of(rules, s.year()) {
            Some((from, to)) if s < from || s > to => r.fail(
                "activity.planned_start",
                "window",
                format!(
                    "the activity must start within the quota window {from} to {to}, not on {s}"
                ),
            ),
            Some((_, to)) if today > to => r.fail(
                "activity.planned_start",
                "window_closed",
                format!("the quota window of {} ended on {to}", s.year()),
            ),
            Some(_) => {}
            None => r.fail(
                "activity.planned_start",
                "window",
                format!(
                    "the programme's MDF window {:?} is not a pair of MM-DD dates",
                    rules.window
                ),
            ),
        }
    }
    r.text(input, "targets.overview", "targets.overview");
    if r.boolean(input, "agreement_accepted", "agreement_accepted") == Some(false) {
        r.fail(
            "agreement_accepted",
            "accepted",
            "the MDF payment agreement must be accepted".to_owned(),
        );
    }
    let (mdf, other) = cost_lines(&mut r, input, "budget");
    if mdf == Decimal::ZERO && !r.errors.iter().any(|e| e.field.starts_with("budget")) {
        r.fail(
            "budget",
            "use_mdf",
            "at least one budget line must use MDF".to_owned(),
        );
    }
    if let Some(s) = start
        && today < s
        && working_days_until(calendar, today, s) < i64::from(rules.lateness_working_days)
        && Reader::optional_text(input, "late_reason").is_none()
    {
        r.fail(
            "late_reason",
            "required_when_late",
            format!(
                "submitted {} working days before the activity starts on {s}; fewer than {} need a late_reason",
                working_days_until(calendar, today, s),
                rules.lateness_working_days
            ),
        );
    }
    if input.get("attachments").is_some_and(|a| !a.is_null()) {
        r.attachments(input, "attachments", "attachments", facts);
    }
    if r.errors.is_empty() {
        similar::duplicate_warning(&mut r, input, &facts.siblings);
    }
    if let Some(s) = start
        && s <= today
        && Reader::optional_text(input, "late_reason").is_none()
    {
        r.fail(
            "late_reason",
            "required_when_late",
            format!(
                "the activity starts on {s}, not after today ({today}): a late_reason is needed"
            ),
        );
    }
    if !r.errors.is_empty() {
        return Err(r.errors);
    }
    let (Some(partner), Some(start)) = (partner, start) else {
        return Err(vec![FieldError::new(
            "$",
            "internal",
            "the application could not be read".to_owned(),
        )]);
    };
    let mut out = input.clone();
    out["mdf_amount"] = json!(mdf.to_string());
    out["other_amount"] = json!(other.to_string());
    out["total_amount"] = json!((mdf + other).to_string());
    out["quota_account"] = json!(quota_account(&partner, start.year()));
    Ok(out)
}

/// Working days after `from` up to and including `to`.
fn working_days_until(calendar: &BusinessCalendar, from: NaiveDate, to: NaiveDate) -> i64 {
    let mut n = 0;
    let mut d = from;
    while d < to {
        d += Duration::days(1);
        if calendar.is_working_day(d) {
            n += 1;
        }
    }
    n
}

mod claim;
mod similar;

pub use claim::{check_claim_linked, validate_activity_held, validate_claim, validate_invoices};

#[cfg(test)]
mod tests;
