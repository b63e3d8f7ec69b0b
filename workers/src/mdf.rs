//! The validators of `workflows/mdf_claim.toml` and `workflows/mdf_quota.toml`: thin adapters
//! from the engine's validator contract to the rules in `partnerflow_core::mdf`.

use std::str::FromStr;

use partnerflow_core::handler::ValidationContext;
use partnerflow_core::mdf;
use partnerflow_core::validation::FieldError;
use rust_decimal::Decimal;
use serde_json::Value;

/// `mdf_quota_grant`: a tier's quota for a partner and year.
pub fn validate_quota_grant(
    input: &Value,
    ctx: &ValidationContext<'_>,
) -> Result<Value, Vec<FieldError>> {
    mdf::validate_quota_grant(input, &ctx.programme.mdf)
}

/// `mdf_supplement_request`: more quota for a partner's year, with the reason.
pub fn validate_supplement(
    input: &Value,
    _ctx: &ValidationContext<'_>,
) -> Result<Value, Vec<FieldError>> {
    mdf::validate_supplement(input)
}

/// `mdf_usage_application`: the start input of `mdf_claim`, and its resubmissions.
pub fn validate_usage(
    input: &Value,
    ctx: &ValidationContext<'_>,
) -> Result<Value, Vec<FieldError>> {
    let usage = mdf::validate_usage(
        input,
        &ctx.programme.mdf,
        ctx.calendar,
        ctx.today,
        ctx.facts,
    )?;
    // A resubmission stays on the quota account of the first submission.
    if let Some(account) = ctx
        .instance
        .and_then(|i| i.data.get("input"))
        .and_then(|i| i.get("quota_account"))
        .filter(|a| **a != usage["quota_account"])
    {
        return Err(vec![FieldError::new(
            "activity.planned_start",
            "same_window",
            format!("a resubmission stays within the quota window of the application ({account})"),
        )]);
    }
    Ok(usage)
}

/// `mdf_claim`: the `claim_submitted` event's payload (naming the held activity, if any).
pub fn validate_claim(
    input: &Value,
    ctx: &ValidationContext<'_>,
) -> Result<Value, Vec<FieldError>> {
    let held = ctx
        .instance
        .and_then(|i| i.value_at("/events/activity_held"));
    let linked = mdf::check_claim_linked(input, held);
    match (
        mdf::validate_claim(input, &ctx.programme.mdf, ctx.today, ctx.facts),
        linked,
    ) {
        (Ok(claim), None) => Ok(claim),
        (Ok(_), Some(problem)) => Err(vec![problem]),
        (Err(mut problems), linked) => {
            problems.extend(linked);
            Err(problems)
        }
    }
}

/// `mdf_activity_held`: the optional `activity_held` event while the claim is awaited.
pub fn validate_activity_held(
    payload: &Value,
    ctx: &ValidationContext<'_>,
) -> Result<Value, Vec<FieldError>> {
    let application = ctx
        .instance
        .and_then(|i| i.data.get("input"))
        .cloned()
        .unwrap_or(Value::Null);
    mdf::validate_activity_held(payload, &application)
}

/// `mdf_invoices`: the invoices the partner submits for the approved claim.
pub fn validate_invoices(
    data: &Value,
    ctx: &ValidationContext<'_>,
) -> Result<Value, Vec<FieldError>> {
    let claimed = ctx
        .instance
        .and_then(|i| i.value_at("/events/claim_submitted/claimed_amount"))
        .and_then(Value::as_str)
        .and_then(|a| Decimal::from_str(a).ok())
        .ok_or_else(|| {
            vec![FieldError::new(
                "$",
                "claim",
                "there is no approved claim to invoice".to_owned(),
            )]
        })?;
    mdf::validate_invoices(data, claimed, &ctx.programme.mdf, ctx.facts)
}
