//! The validators and the milestone handler of `workflows/nre_milestones.toml`, over the rules
//! in `partnerflow_core::nre`.

use partnerflow_core::handler::{
    HandlerError, StepContext, StepHandler, StepOutput, ValidationContext,
};
use partnerflow_core::nre;
use partnerflow_core::validation::FieldError;
use serde_json::{Value, json};

/// `nre_application`: the start input.
pub fn validate_application(
    input: &Value,
    ctx: &ValidationContext<'_>,
) -> Result<Value, Vec<FieldError>> {
    nre::validate_application(input, &ctx.programme.nre, ctx.facts)
}

/// `nre_sow`: the `sow_submitted` payload.
pub fn validate_sow(
    payload: &Value,
    ctx: &ValidationContext<'_>,
) -> Result<Value, Vec<FieldError>> {
    nre::validate_sow(payload, ctx.facts)
}

/// `nre_agreement`: the `agreement_uploaded` payload and its milestone schedule.
pub fn validate_agreement(
    payload: &Value,
    ctx: &ValidationContext<'_>,
) -> Result<Value, Vec<FieldError>> {
    nre::validate_agreement(payload, ctx.facts)
}

/// `nre_milestone`: an acceptance names the milestone the instance is at, for a partner
/// whose business information is certified.
pub fn validate_milestone(
    data: &Value,
    ctx: &ValidationContext<'_>,
) -> Result<Value, Vec<FieldError>> {
    let current = ctx
        .instance
        .and_then(|i| i.value_at("/steps/next_milestone/number"))
        .and_then(Value::as_u64);
    let gate = ctx
        .facts
        .business_certification_problem("accepting an NRE milestone");
    match (nre::validate_milestone_in_order(data, current), gate) {
        (Ok(data), None) => Ok(data),
        (Ok(_), Some(gate)) => Err(vec![gate]),
        (Err(mut problems), gate) => {
            problems.extend(gate);
            Err(problems)
        }
    }
}

/// `nre_next_milestone`: the milestone after the one just paid (`milestone`, with its number,
/// name and amount), or `done` when the schedule is complete.
#[derive(Debug, Default)]
pub struct NextMilestone;

#[async_trait::async_trait]
impl StepHandler for NextMilestone {
    async fn run(&self, ctx: StepContext) -> Result<StepOutput, HandlerError> {
        let schedule = ctx
            .instance
            .value_at("/events/agreement_uploaded/schedule")
            .ok_or_else(|| HandlerError::Fatal("no agreed milestone schedule".to_owned()))?;
        let done = ctx
            .instance
            .value_at("/steps/next_milestone/number")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        Ok(match nre::next_milestone(schedule, done) {
            Some(m) => StepOutput::new("milestone", m),
            None => StepOutput::new("done", json!({ "number": done, "all_paid": true })),
        })
    }
}
