//! Handlers of `contract_signing`.

use partnerflow_core::handler::{
    HandlerError, StepContext, StepHandler, StepOutput, ValidationContext,
};
use partnerflow_core::onboarding::FieldError;
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

/// Validator `agreement_signature`: the data of a partner's `sign` decision. An electronic
/// signature names the signer and the SHA-256 of the agreement it signed, which must be the
/// generated one; a paper signature gives the tracking number of the two stamped copies.
pub fn validate_signature(
    data: &Value,
    ctx: &ValidationContext<'_>,
) -> Result<Value, Vec<FieldError>> {
    let text = |key: &str| {
        data.get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let problem = |field: &str, rule: &str, message: String| FieldError {
        field: format!("data.{field}"),
        rule: rule.to_owned(),
        message,
    };
    let mut problems = Vec::new();
    match text("method") {
        Some("electronic") => {
            if text("signer").is_none() {
                problems.push(problem(
                    "signer",
                    "required",
                    "an electronic signature names its signer".to_owned(),
                ));
            }
            let generated = ctx.instance.and_then(|i| {
                i.data
                    .get("steps")?
                    .get("generate_agreement")?
                    .get("document_sha256")?
                    .as_str()
            });
            match (text("document_sha256"), generated) {
                (None, _) => problems.push(problem(
                    "document_sha256",
                    "required",
                    "an electronic signature carries the SHA-256 of the signed agreement".to_owned(),
                )),
                (Some(signed), Some(generated)) if !signed.eq_ignore_ascii_case(generated) => problems.push(problem(
                    "document_sha256",
                    "mismatch",
                    format!("the signed document {signed} is not the generated agreement {generated}"),
                )),
                (Some(_), _) => {}
            }
        }
        Some("paper") => {
            if text("tracking_number").is_none() {
                problems.push(problem(
                    "tracking_number",
                    "required",
                    "a paper signature gives the tracking number of the two stamped copies"
                        .to_owned(),
                ));
            }
        }
        _ => problems.push(problem(
            "method",
            "one_of",
            "method must be `electronic` or `paper`".to_owned(),
        )),
    }
    if problems.is_empty() {
        Ok(data.clone())
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use partnerflow_core::definition::{AnyNames, WorkflowDefinition};
    use partnerflow_core::machine::InstanceState;
    use partnerflow_core::programme::Programme;
    use serde_json::json;

    use super::*;

    fn programme() -> Programme {
        Programme::parse(include_str!("../../config/programme.toml")).expect("programme")
    }

    fn contract_instance(hash: &str) -> InstanceState {
        let text = include_str!("../../workflows/contract_signing.toml");
        let def = WorkflowDefinition::parse("contract_signing.toml", text, None, &AnyNames)
            .expect("definition");
        let mut state = InstanceState::new(uuid::Uuid::nil(), &def, "P-1/contract/1");
        state.data.insert(
            "steps".to_owned(),
            json!({ "generate_agreement": { "document_sha256": hash } }),
        );
        state
    }

    fn check(data: Value, instance: &InstanceState) -> Result<Value, Vec<(String, String)>> {
        let programme = programme();
        let calendar = partnerflow_core::BusinessCalendar::weekdays_only(chrono_tz::Asia::Shanghai);
        let ctx = ValidationContext {
            programme: &programme,
            calendar: &calendar,
            today: chrono::NaiveDate::MIN,
            instance: Some(instance),
            facts: &partnerflow_core::validation::RecordFacts::default(),
        };
        validate_signature(&data, &ctx)
            .map_err(|e| e.into_iter().map(|f| (f.field, f.rule)).collect())
    }

    #[test]
    fn an_electronic_signature_must_name_the_signer_and_the_generated_document() {
        let hash = "ab".repeat(32);
        let instance = contract_instance(&hash);
        let good = json!({ "method": "electronic", "signer": "Zhang San", "document_sha256": hash.to_uppercase() });
        assert!(check(good, &instance).is_ok(), "hex case does not matter");
        let other = json!({ "method": "electronic", "signer": "Zhang San", "document_sha256": "cd".repeat(32) });
        assert_eq!(
            check(other, &instance),
            Err(vec![(
                "data.document_sha256".to_owned(),
                "mismatch".to_owned()
            )])
        );
        let bare = json!({ "method": "electronic" });
        assert_eq!(
            check(bare, &instance),
            Err(vec![
                ("data.signer".to_owned(), "required".to_owned()),
                ("data.document_sha256".to_owned(), "required".to_owned())
            ])
        );
    }

    #[test]
    fn a_paper_signature_needs_the_tracking_number_and_other_methods_are_refused() {
        let instance = contract_instance("00");
        assert!(
            check(
                json!({ "method": "paper", "tracking_number": "SF1" }),
                &instance
            )
            .is_ok()
        );
        assert_eq!(
            check(
                json!({ "method": "paper", "tracking_number": " " }),
                &instance
            ),
            Err(vec![(
                "data.tracking_number".to_owned(),
                "required".to_owned()
            )])
        );
        assert_eq!(
            check(json!({ "method": "fax" }), &instance),
            Err(vec![("data.method".to_owned(), "one_of".to_owned())])
        );
    }
}
