//! Handlers of `contract_signing`.

use partnerflow_core::handler::{HandlerError, StepContext, StepHandler, StepOutput};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::read;

/// Renders the programme agreement with the partner's data and fingerprints it.
pub struct GenerateAgreement;

#[async_trait::async_trait]
impl StepHandler for GenerateAgreement {
    async fn run(&self, ctx: StepContext) -> Result<StepOutput, HandlerError> {
        let application: Value = read(&ctx, "/input/parent")?;
        let env = minijinja::Environment::new();
        let text = env
            .render_str(&ctx.programme.contract.agreement_template, json!({ "application": application, "programme": ctx.programme.name, "date": ctx.now.date_naive() }))
            .map_err(|e| HandlerError::Fatal(format!("agreement template: {e}")))?;
        let sha256 = hex::encode(Sha256::digest(text.as_bytes()));
        Ok(StepOutput::new(
            "generated",
            json!({ "document_sha256": sha256, "length": text.len() }),
        ))
    }
}

/// Archives the signed agreement: the signed hash, the effective date and the expiry on
/// 31 Dec of the year.
pub struct ArchiveAgreement;

#[async_trait::async_trait]
impl StepHandler for ArchiveAgreement {
    async fn run(&self, ctx: StepContext) -> Result<StepOutput, HandlerError> {
        let document: String = read(&ctx, "/steps/generate_agreement/document_sha256")?;
        let signature: Value = read(&ctx, "/steps/partner_sign/data")?;
        let effective = ctx.now;
        let expires = ctx.calendar.year_end(effective);
        Ok(StepOutput::new(
            "archived",
            json!({ "document_sha256": document, "signature": signature, "effective_at": effective, "expires_at": expires }),
        ))
    }
}
