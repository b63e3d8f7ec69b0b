//! Holding the activity (phase B, optional) and claiming it (phase C): the claim's facts,
//! costs and materials, the business-information gate, and the invoices that must cover it.

use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::MdfRules;
use crate::validation::read::{Reader, cost_lines, object};
use crate::validation::{FieldError, RecordFacts};

/// Holding the activity (phase B, optional): the partner links the marketing-platform
/// activity it created for the approved application; its name is the application's and
/// cannot differ. Returns the payload with `name` and `linked = true`.
pub fn validate_activity_held(
    payload: &Value,
    application: &Value,
) -> Result<Value, Vec<FieldError>> {
    object(payload)?;
    let mut r = Reader::default();
    r.text(payload, "marketing_activity_id", "marketing_activity_id");
    let name = application
        .pointer("/activity/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if let Some(given) = Reader::optional_text(payload, "name")
        && given != name
    {
        r.fail(
            "name",
            "unchanged",
            format!("the held activity keeps the application's name `{name}`, not `{given}`"),
        );
    }
    if !r.errors.is_empty() {
        return Err(r.errors);
    }
    let mut out = payload.clone();
    out["name"] = json!(name);
    out["linked"] = json!(true);
    Ok(out)
}

/// V-MDF-11: a claim for a held activity names the linked one, if it names any.
pub fn check_claim_linked(claim: &Value, held: Option<&Value>) -> Option<FieldError> {
    let linked = held?.get("marketing_activity_id")?.as_str()?;
    let named = Reader::optional_text(claim, "marketing_activity_id")?;
    (named != linked).then(|| {
        FieldError::new(
            "marketing_activity_id",
            "linked",
            format!("the activity held and linked is `{linked}`; the claim names `{named}`"),
        )
    })
}

/// A claim (phase C): what the activity actually cost, its summary and materials. Returns the
/// payload with `claimed_amount` (Σ actual lines flagged use_mdf) added.
pub fn validate_claim(
    input: &Value,
    rules: &MdfRules,
    today: NaiveDate,
    facts: &RecordFacts,
) -> Result<Value, Vec<FieldError>> {
    object(input)?;
    let mut r = Reader::default();
    if let Some(problem) = facts.business_certification_problem("an MDF claim") {
        r.errors.push(problem);
    }
    let start = r.date(input, "actual_start", "actual_start");
    let end = r.date(input, "actual_end", "actual_end");
    if let (Some(s), Some(e)) = (start, end)
        && e < s
    {
        r.fail(
            "actual_end",
            "after_start",
            format!("the activity cannot end ({e}) before it starts ({s})"),
        );
    }
    if let Some(e) = end
        && e > today
    {
        r.fail(
            "actual_end",
            "past",
            format!("a claim comes after the activity; it ends on {e}"),
        );
    }
    r.text(input, "summary.overview", "summary.overview");
    let attendees = input.get("attendees").and_then(Value::as_u64);
    if attendees.is_none_or(|n| n == 0) {
        r.fail(
            "attendees",
            "count",
            "attendees must be the number of people who attended".to_owned(),
        );
    }
    let (mdf, _) = cost_lines(&mut r, input, "actual_costs");
    if mdf == Decimal::ZERO && !r.errors.iter().any(|e| e.field.starts_with("actual_costs")) {
        r.fail(
            "actual_costs",
            "use_mdf",
            "at least one cost line must use MDF".to_owned(),
        );
    }
    for m in &rules.required_materials {
        let field = format!("materials.{m}");
        r.attachment(input, &field, &field, facts);
    }
    // Materials beyond the required ones (the extension approval) are attachments too.
    if let Some(materials) = input.get("materials").and_then(Value::as_object) {
        for name in materials
            .keys()
            .filter(|k| !rules.required_materials.contains(k))
        {
            let field = format!("materials.{name}");
            r.attachment(input, &field, &field, facts);
        }
    }
    if let Some(e) = end
        && (today - e).num_days() > rules.claim_extension_after_days
        && Reader::optional_text(input, "materials.extension_approval").is_none()
    {
        r.fail(
            "materials.extension_approval",
            "required_when_late",
            format!(
                "claimed {} days after the activity ended on {e}; after {} days the extension approval must be attached",
                (today - e).num_days(),
                rules.claim_extension_after_days
            ),
        );
    }
    if !r.errors.is_empty() {
        return Err(r.errors);
    }
    let mut out = input.clone();
    out["claimed_amount"] = json!(mdf.to_string());
    Ok(out)
}

/// The invoices for a claim of `claimed`: Σ special + Σ ordinary ÷ factor ≥ claimed, compared
/// exactly (as Σ special × factor + Σ ordinary ≥ claimed × factor, so nothing is rounded).
pub fn validate_invoices(
    data: &Value,
    claimed: Decimal,
    rules: &MdfRules,
    facts: &RecordFacts,
) -> Result<Value, Vec<FieldError>> {
    object(data)?;
    let factor = Decimal::from_str(&rules.ordinary_invoice_factor).unwrap_or(Decimal::ONE);
    let mut r = Reader::default();
    let (mut special, mut ordinary) = (Decimal::ZERO, Decimal::ZERO);
    if let Some(invoices) = r.list(data, "invoices", "invoices") {
        for (i, inv) in invoices.iter().enumerate() {
            let at = |k: &str| format!("invoices[{i}].{k}");
            r.text(inv, "number", &at("number"));
            r.attachment(inv, "attachment", &at("attachment"), facts);
            let kind = r.text(inv, "kind", &at("kind"));
            let amount = r.amount(inv, "amount", &at("amount"));
            match (kind.as_deref(), amount) {
                (Some("special"), Some(a)) => special += a,
                (Some("ordinary"), Some(a)) => ordinary += a,
                (Some(other), _) if other != "special" && other != "ordinary" => {
                    r.fail(
                        &at("kind"),
                        "kind",
                        format!("an invoice is `special` or `ordinary`, not `{other}`"),
                    );
                }
                _ => {}
            }
        }
    }
    if r.errors.is_empty() && special * factor + ordinary < claimed * factor {
        r.fail(
            "invoices",
            "coverage",
            format!(
                "special {special} + ordinary {ordinary} ÷ {factor} does not cover the claimed {claimed} (ordinary invoices alone need {})",
                claimed * factor
            ),
        );
    }
    if !r.errors.is_empty() {
        return Err(r.errors);
    }
    let mut out = data.clone();
    out["special_total"] = json!(special.to_string());
    out["ordinary_total"] = json!(ordinary.to_string());
    Ok(out)
}
