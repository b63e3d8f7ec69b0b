//! Handlers of `partner_onboarding`.

use chrono::{Datelike, NaiveTime};
use partnerflow_core::handler::{
    HandlerError, StepContext, StepHandler, StepOutput, ValidationContext,
};
use partnerflow_core::onboarding::{self, Application, FieldError};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::read;
use crate::verification::{BusinessVerifier, Verification};

/// Validator `onboarding_application`: the application with every failing field named. The
/// optional `micro_deposit_entries` (amounts the partner typed in, for the simulated provider)
/// are kept when they are all decimal strings.
pub fn validate_application(
    input: &Value,
    ctx: &ValidationContext<'_>,
) -> Result<Value, Vec<FieldError>> {
    let entries = match input.get(ENTRIES) {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            serde_json::from_value::<Vec<Decimal>>(v.clone())
                .ok()
                .filter(|_| v.as_array().is_some_and(|a| a.iter().all(Value::is_string)))
                .ok_or_else(|| vec![FieldError { field: ENTRIES.to_owned(), rule: "format".to_owned(), message: "micro_deposit_entries must be a list of decimal strings such as \"0.37\"".to_owned() }])?,
        ),
    };
    let app = onboarding::validate(input, &ctx.programme.onboarding, ctx.today)?;
    let mut value = serde_json::to_value(app).map_err(|e| {
        vec![FieldError {
            field: String::new(),
            rule: "encode".to_owned(),
            message: e.to_string(),
        }]
    })?;
    if let (Some(entries), Some(map)) = (entries, value.as_object_mut()) {
        map.insert(
            ENTRIES.to_owned(),
            json!(entries.iter().map(ToString::to_string).collect::<Vec<_>>()),
        );
    }
    Ok(value)
}

pub(crate) const ENTRIES: &str = "micro_deposit_entries";

pub struct VerifyBusiness {
    verifier: Box<dyn BusinessVerifier>,
}

impl VerifyBusiness {
    pub fn new(verifier: impl BusinessVerifier) -> Self {
        VerifyBusiness {
            verifier: Box::new(verifier),
        }
    }
}

#[async_trait::async_trait]
impl StepHandler for VerifyBusiness {
    async fn run(&self, ctx: StepContext) -> Result<StepOutput, HandlerError> {
        let app: Application = read(&ctx, "/input")?;
        let input: Value = read(&ctx, "/input")?;
        Ok(
            match self.verifier.verify(&app, &input, &ctx.programme).await? {
                Verification::Verified { reference } => {
                    StepOutput::new("verified", json!({ "reference": reference }))
                }
                Verification::Locked { reason } => {
                    StepOutput::new("locked", json!({ "reason": reason }))
                }
            },
        )
    }
}

/// All rules pass and nothing is declared → approve; otherwise a person reviews.
pub struct AutoScreen;

#[async_trait::async_trait]
impl StepHandler for AutoScreen {
    async fn run(&self, ctx: StepContext) -> Result<StepOutput, HandlerError> {
        let app: Application = read(&ctx, "/input")?;
        let s = onboarding::screen(&app, &ctx.programme.onboarding);
        let outcome = if s.auto_approve { "approve" } else { "review" };
        Ok(StepOutput::new(
            outcome,
            json!({ "auto_approve": s.auto_approve, "reasons": s.reasons }),
        ))
    }
}

/// The partner becomes active; the assessment period starts.
pub struct Activate;

#[async_trait::async_trait]
impl StepHandler for Activate {
    async fn run(&self, ctx: StepContext) -> Result<StepOutput, HandlerError> {
        Ok(StepOutput::new(
            "activated",
            json!({ "active_since": ctx.now }),
        ))
    }
}

/// Issues the electronic authorisation certificate, valid to 31 Dec of the year (of the
/// coming year for a renewal, which completes in December).
pub struct IssueCertificate {
    pub renewal: bool,
}

#[async_trait::async_trait]
impl StepHandler for IssueCertificate {
    async fn run(&self, ctx: StepContext) -> Result<StepOutput, HandlerError> {
        let cal = &ctx.calendar;
        let from = if self.renewal {
            cal.next_annual(ctx.now, 1, 1, NaiveTime::MIN)
        } else {
            ctx.now
        };
        let valid_to = cal.year_end(from);
        let year = valid_to.with_timezone(&cal.timezone()).year();
        let partner = ctx.instance.partner_id.clone().unwrap_or_default();
        let certificate_id = format!("{}-{year}-{partner}", ctx.programme.certificate.prefix);
        Ok(StepOutput::new(
            "issued",
            json!({ "certificate_id": certificate_id, "valid_from": from, "valid_to": valid_to }),
        ))
    }
}

pub struct Suspend;

#[async_trait::async_trait]
impl StepHandler for Suspend {
    async fn run(&self, ctx: StepContext) -> Result<StepOutput, HandlerError> {
        Ok(StepOutput::new(
            "suspended",
            json!({ "suspended_at": ctx.now, "reason": "agreement not renewed by 31 Dec" }),
        ))
    }
}

pub struct Terminate;

#[async_trait::async_trait]
impl StepHandler for Terminate {
    async fn run(&self, ctx: StepContext) -> Result<StepOutput, HandlerError> {
        Ok(StepOutput::new(
            "terminated",
            json!({ "terminated_at": ctx.now, "reason": "assessment failed" }),
        ))
    }
}
