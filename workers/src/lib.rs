//! Step handlers and input validators, registered by the names definitions use.
//!
//! Handlers are plain async code over a [`StepContext`] snapshot: they compute, they may call
//! a provider, and they return an outcome. They never touch the database; the engine commits
//! their result.
//!
//! # Layout
//! - [`onboarding`]: business verification, automatic screening, activation, certificates,
//!   suspension and termination of partners.
//! - [`contract`]: agreement generation and archiving.
//! - [`verification`]: business-verification providers (simulated, HTTP).
//! - [`rebate`]: the statement, its reconciliation, threshold and invoice.
//! - [`reference`]: the reference workload's handler (bench and fault tests).
//! - [`registry`]: the names, in one place.

pub mod contract;
pub mod mdf;
pub mod nre;
pub mod onboarding;
pub mod payments;
pub mod rebate;
pub mod reference;
pub mod verification;

use partnerflow_core::handler::{HandlerError, HandlerRegistry, Needs, StepContext};
use serde::de::DeserializeOwned;

pub use payments::{HttpBank, PaymentAnswer, PaymentProvider, PaymentRequest, SimulatedBank};
pub use reference::ReferenceOptions;
pub use verification::{BusinessVerifier, HttpVerifier, SimulatedVerifier};

/// Validators gated on the partner's standing (business certification).
const STANDING: Needs = Needs {
    standing: true,
    siblings: false,
};
/// Validators that compare with the partner's other instances (duplicate activities).
const SIBLINGS: Needs = Needs {
    standing: false,
    siblings: true,
};

/// Every handler and validator, with the given verification and payment providers. `reference` slows the
/// reference workload's steps down and logs their runs (fault tests only).
pub fn registry(
    verifier: impl BusinessVerifier,
    payments: std::sync::Arc<dyn PaymentProvider>,
    reference: reference::ReferenceOptions,
) -> HandlerRegistry {
    HandlerRegistry::default()
        .handler("pay", payments::Pay::new(payments))
        .handler("reference_step", reference::ReferenceStep::new(reference))
        .validator("onboarding_application", onboarding::validate_application)
        .validator("agreement_signature", contract::validate_signature)
        .validator("mdf_quota_grant", mdf::validate_quota_grant)
        .validator("mdf_supplement_request", mdf::validate_supplement)
        .validator_needing("mdf_usage_application", mdf::validate_usage, SIBLINGS)
        .validator_needing("mdf_claim", mdf::validate_claim, STANDING)
        .validator("mdf_activity_held", mdf::validate_activity_held)
        .validator("mdf_invoices", mdf::validate_invoices)
        .validator("nre_application", nre::validate_application)
        .validator("nre_sow", nre::validate_sow)
        .validator("nre_agreement", nre::validate_agreement)
        .validator_needing("nre_milestone", nre::validate_milestone, STANDING)
        .handler("nre_next_milestone", nre::NextMilestone)
        .validator("rebate_statement", rebate::validate_statement)
        .validator("rebate_reconciliation", rebate::validate_reconciliation)
        .validator("rebate_correction", rebate::validate_correction)
        .validator("rebate_invoice", rebate::validate_invoice)
        .handler("rebate_route", rebate::Route)
        .handler("rebate_threshold", rebate::Threshold)
        .handler("verify_business", onboarding::VerifyBusiness::new(verifier))
        .handler("auto_screen", onboarding::AutoScreen)
        .handler("activate_partner", onboarding::Activate)
        .handler(
            "issue_certificate",
            onboarding::IssueCertificate { renewal: false },
        )
        .handler(
            "renew_certificate",
            onboarding::IssueCertificate { renewal: true },
        )
        .handler("suspend_partner", onboarding::Suspend)
        .handler("terminate_partner", onboarding::Terminate)
        .handler("generate_agreement", contract::GenerateAgreement)
        .handler("archive_agreement", contract::ArchiveAgreement)
}

/// Reads a part of the instance's data, failing fatally (never retried) when it is missing:
/// validation at the edge makes that a defect, not a transient condition.
pub(crate) fn read<T: DeserializeOwned>(
    ctx: &StepContext,
    pointer: &str,
) -> Result<T, HandlerError> {
    let value = serde_json::Value::Object(ctx.instance.data.clone());
    let part = value
        .pointer(pointer)
        .cloned()
        .ok_or_else(|| HandlerError::Fatal(format!("instance data has no `{pointer}`")))?;
    serde_json::from_value(part).map_err(|e| HandlerError::Fatal(format!("`{pointer}`: {e}")))
}
