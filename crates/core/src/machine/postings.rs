//! Turning a definition's posting specs into ledger postings for this instance: the account
//! template filled in, the amount read from the instance's data.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::{Actor, Effect, Error, Machine};
use crate::definition::PostingSpec;
use crate::ledger::Posting;
use crate::money::Money;
use crate::validation::FieldError;

impl Machine<'_, '_> {
    /// Asks for `specs` to be posted in this transition; refused with the field named when an
    /// amount is missing or not an amount, or the account names a partner the instance has not.
    pub(super) fn post(&mut self, specs: &[PostingSpec]) -> Result<(), Error> {
        if specs.is_empty() {
            return Ok(());
        }
        let mut postings = Vec::with_capacity(specs.len());
        let mut problems = Vec::new();
        for spec in specs {
            let field = field_of(&spec.amount);
            let amount = self.state.value_at(&spec.amount).and_then(|v| match v {
                Value::String(s) => Decimal::from_str(s.trim()).ok(),
                Value::Number(n) => Decimal::from_str(&n.to_string()).ok(),
                _ => None,
            });
            let Some(amount) = amount else {
                problems.push(FieldError::new(
                    &field,
                    "amount",
                    format!("{field} must be an amount such as \"1000.00\""),
                ));
                continue;
            };
            let Some(account) = self.account_of(&spec.account, &mut problems) else {
                continue;
            };
            let payable = match &spec.payable {
                Some(template) => match self.account_of(template, &mut problems) {
                    Some(p) => Some(p),
                    None => continue,
                },
                None => None,
            };
            postings.push(Posting {
                account,
                movement: spec.movement,
                amount: Money::cny(amount),
                field,
                payable,
            });
        }
        if !problems.is_empty() {
            return Err(Error::InvalidData(problems));
        }
        for p in &postings {
            self.event(
                "posting",
                &Actor::system(),
                json!({ "account": p.account, "movement": p.movement, "amount": p.amount.amount,
                        "currency": p.amount.currency, "step": self.state.step }),
            );
        }
        self.out.effects.push(Effect::Post {
            seq: self.state.seq,
            step: self.state.step.clone(),
            postings,
        });
        Ok(())
    }

    /// The account a template names (see [`InstanceState::fill`]); a missing placeholder is
    /// a problem on the field it names.
    fn account_of(&self, template: &str, problems: &mut Vec<FieldError>) -> Option<String> {
        match self.state.fill(template) {
            Ok(account) => Some(account),
            Err(name) => {
                let field = if name == "partner" {
                    "partner_id".to_owned()
                } else {
                    field_of(&name)
                };
                problems.push(FieldError::new(
                    &field,
                    "required",
                    format!("account `{template}` needs {field}, which the instance has not"),
                ));
                None
            }
        }
    }
}

/// The field an amount pointer names, as a validation error names fields: `/input/budget` is
/// `budget`, `/steps/claim/actual` is `steps.claim.actual`.
fn field_of(pointer: &str) -> String {
    pointer
        .trim_start_matches('/')
        .trim_start_matches("input/")
        .replace('/', ".")
}
