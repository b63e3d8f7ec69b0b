//! The validators and handlers of `workflows/rebate_settlement.toml`: a partner's statement as
//! the settlement run starts it, the partner's confirmation or disputed lines, the corrected
//! statement, the payout threshold and the invoice.

use std::str::FromStr;

use partnerflow_core::handler::{
    HandlerError, StepContext, StepHandler, StepOutput, ValidationContext,
};
use partnerflow_core::machine::InstanceState;
use partnerflow_core::rebate::invoice;
use partnerflow_core::validation::FieldError;
use rust_decimal::Decimal;
use serde_json::{Value, json};

fn problem(field: &str, rule: &str, message: String) -> Vec<FieldError> {
    vec![FieldError::new(field, rule, message)]
}

fn amount(v: Option<&Value>) -> Option<Decimal> {
    v.and_then(Value::as_str)
        .and_then(|s| Decimal::from_str(s).ok())
}

/// The statement as it stands: the last correction's, or the one the run computed.
pub fn current_statement(instance: &InstanceState) -> Value {
    instance
        .value_at("/steps/resolve_dispute/data/statement")
        .or_else(|| instance.value_at("/input"))
        .cloned()
        .unwrap_or(Value::Null)
}

/// `rebate_statement`: the start input the settlement run gives.
pub fn validate_statement(
    input: &Value,
    _ctx: &ValidationContext<'_>,
) -> Result<Value, Vec<FieldError>> {
    let mut problems = Vec::new();
    for field in ["statement_id", "partner_id", "period", "programme"] {
        if input
            .get(field)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            problems.push(FieldError::new(
                field,
                "required",
                format!("{field} is required"),
            ));
        }
    }
    for field in ["total", "carried_in", "payable"] {
        if amount(input.get(field)).is_none() {
            problems.push(FieldError::new(
                field,
                "amount",
                format!("{field} must be an amount as text"),
            ));
        }
    }
    if !input.get("lines").is_some_and(Value::is_array) {
        problems.push(FieldError::new(
            "lines",
            "list",
            "lines must list the statement's lines".to_owned(),
        ));
    }
    if problems.is_empty() {
        Ok(input.clone())
    } else {
        Err(problems)
    }
}

fn line_numbers(statement: &Value) -> Vec<u64> {
    statement
        .get("lines")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|x| x.get("n").and_then(Value::as_u64))
                .collect()
        })
        .unwrap_or_default()
}

/// `rebate_reconciliation`: a dispute names the lines it disputes (`lines: [n, …]`), each a
/// line of the statement; a confirmation carries nothing.
pub fn validate_reconciliation(
    data: &Value,
    ctx: &ValidationContext<'_>,
) -> Result<Value, Vec<FieldError>> {
    let Some(disputed) = data.get("lines") else {
        return Ok(data.clone());
    };
    let known = ctx
        .instance
        .map(current_statement)
        .map(|s| line_numbers(&s))
        .unwrap_or_default();
    let Some(list) = disputed.as_array().filter(|l| !l.is_empty()) else {
        return Err(problem(
            "lines",
            "list",
            "lines must list the disputed line numbers".to_owned(),
        ));
    };
    let mut problems = Vec::new();
    for (i, n) in list.iter().enumerate() {
        if !n.as_u64().is_some_and(|n| known.contains(&n)) {
            problems.push(FieldError::new(
                &format!("lines[{i}]"),
                "line",
                format!("{n} is not a line of the statement (lines {known:?})"),
            ));
        }
    }
    if problems.is_empty() {
        Ok(data.clone())
    } else {
        Err(problems)
    }
}

/// `rebate_correction`: the resolution of a dispute, `corrections: [{n, amount}]` (none when
/// the statement is upheld). Returns the data with the corrected `statement` (lines, total,
/// payable), which the rest of the workflow settles.
pub fn validate_correction(
    data: &Value,
    ctx: &ValidationContext<'_>,
) -> Result<Value, Vec<FieldError>> {
    let mut statement = ctx.instance.map(current_statement).unwrap_or(Value::Null);
    let corrections = data
        .get("corrections")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut problems = Vec::new();
    for (i, c) in corrections.iter().enumerate() {
        let n = c.get("n").and_then(Value::as_u64);
        let new = amount(c.get("amount")).filter(|a| a.scale() <= 2);
        let line = statement
            .get_mut("lines")
            .and_then(Value::as_array_mut)
            .and_then(|l| {
                l.iter_mut()
                    .find(|x| x.get("n").and_then(Value::as_u64) == n)
            });
        match (line, new) {
            (Some(line), Some(a)) => {
                line["corrected_from"] = line["amount"].clone();
                line["amount"] = json!(a.to_string());
            }
            (None, _) => problems.push(FieldError::new(
                &format!("corrections[{i}].n"),
                "line",
                format!(
                    "{} is not a line of the statement",
                    c.get("n").unwrap_or(&Value::Null)
                ),
            )),
            (_, None) => problems.push(FieldError::new(
                &format!("corrections[{i}].amount"),
                "amount",
                "the corrected amount is text with at most two decimals, such as \"8.26\""
                    .to_owned(),
            )),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let total: Decimal = statement
        .get("lines")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(|x| amount(x.get("amount"))).sum())
        .unwrap_or_default();
    let carried = amount(statement.get("carried_in")).unwrap_or_default();
    statement["total"] = json!(total.to_string());
    statement["payable"] = json!((total + carried).to_string());
    let mut out = data.clone();
    out["statement"] = statement;
    Ok(out)
}

/// `rebate_invoice`: the partner's invoice for the payable of the statement as it stands.
pub fn validate_invoice(
    data: &Value,
    ctx: &ValidationContext<'_>,
) -> Result<Value, Vec<FieldError>> {
    let payable = ctx
        .instance
        .map(current_statement)
        .and_then(|s| amount(s.get("payable")))
        .ok_or_else(|| {
            problem(
                "$",
                "statement",
                "there is no statement to invoice".to_owned(),
            )
        })?;
    invoice::validate_invoice(
        data,
        payable,
        ctx.programme.settlement.ordinary_invoice_share,
        ctx.facts,
    )
}

/// `rebate_route`: `publish` a statement with lines or a carry, `nothing` for an empty one.
#[derive(Debug, Default)]
pub struct Route;

#[async_trait::async_trait]
impl StepHandler for Route {
    async fn run(&self, ctx: StepContext) -> Result<StepOutput, HandlerError> {
        let s = current_statement(&ctx.instance);
        let empty = line_numbers(&s).is_empty()
            && amount(s.get("carried_in")).unwrap_or_default().is_zero();
        Ok(StepOutput::new(
            if empty { "nothing" } else { "publish" },
            Value::Null,
        ))
    }
}

/// `rebate_threshold`: the confirmed statement's payable, `payable` at or above the
/// programme's payout threshold, `carried` to the next period below it.
#[derive(Debug, Default)]
pub struct Threshold;

#[async_trait::async_trait]
impl StepHandler for Threshold {
    async fn run(&self, ctx: StepContext) -> Result<StepOutput, HandlerError> {
        let payable = amount(current_statement(&ctx.instance).get("payable"))
            .ok_or_else(|| HandlerError::Fatal("the statement has no payable".to_owned()))?;
        let threshold = ctx.programme.settlement.payout_threshold;
        let outcome = if payable >= threshold {
            "payable"
        } else {
            "carried"
        };
        Ok(StepOutput::new(
            outcome,
            json!({ "payable": payable.to_string(), "threshold": threshold.to_string() }),
        ))
    }
}
