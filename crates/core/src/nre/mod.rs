//! One-time engineering fees (PRODUCT §1.4, notes/mdf-nre-incentives.md §6): the rules of an
//! NRE application, and the milestone schedule of its agreement, split so that the paid total
//! always equals the agreed total to the fen (the rounding remainder goes to the last
//! milestone). Pure; the money moves on the ledger through `workflows/nre_milestones.toml`.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::money::round_fen;
use crate::validation::read::{Reader, object};
use crate::validation::{FieldError, RecordFacts};

/// A programme's NRE numbers (`[nre]` of the programme file), with the seeds' defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NreRules {
    #[serde(default = "default_higher_order")]
    pub min_higher_order_services: usize,
    #[serde(default = "default_key")]
    pub min_key_services: usize,
    /// The business-value statement, in characters.
    #[serde(default = "default_value_chars")]
    pub max_value_statement_chars: usize,
}

impl Default for NreRules {
    fn default() -> Self {
        NreRules {
            min_higher_order_services: default_higher_order(),
            min_key_services: default_key(),
            max_value_statement_chars: default_value_chars(),
        }
    }
}

fn default_higher_order() -> usize {
    3
}

fn default_key() -> usize {
    1
}

fn default_value_chars() -> usize {
    1000
}

/// The qualification (step 1): services used, the business value, attachments, declaration.
/// Returns the input with `ledger_account` (`nre:<partner>:<project_id>`) added.
pub fn validate_application(
    input: &Value,
    rules: &NreRules,
    facts: &RecordFacts,
) -> Result<Value, Vec<FieldError>> {
    object(input)?;
    let mut r = Reader::default();
    let partner = r.text(input, "partner_id", "partner_id");
    let project = r.text(input, "project_id", "project_id");
    r.text(input, "project_name", "project_name");
    let count = |key: &str| {
        input
            .get("services")
            .and_then(|s| s.get(key))
            .and_then(Value::as_array)
            .map_or(0, |l| {
                l.iter()
                    .filter(|x| x.as_str().is_some_and(|s| !s.trim().is_empty()))
                    .count()
            })
    };
    if count("higher_order") < rules.min_higher_order_services {
        r.fail(
            "services.higher_order",
            "min_higher_order_services",
            format!(
                "at least {} higher-order cloud services are needed, not {}",
                rules.min_higher_order_services,
                count("higher_order")
            ),
        );
    }
    if count("key") < rules.min_key_services {
        r.fail(
            "services.key",
            "min_key_services",
            format!(
                "at least {} key cloud service is needed, not {}",
                rules.min_key_services,
                count("key")
            ),
        );
    }
    if let Some(text) = r.text(input, "value_statement", "value_statement") {
        let chars = text.chars().count();
        if chars > rules.max_value_statement_chars {
            r.fail(
                "value_statement",
                "max_chars",
                format!(
                    "the business value is {chars} characters; at most {} are allowed",
                    rules.max_value_statement_chars
                ),
            );
        }
    }
    r.attachments(input, "attachments", "attachments", facts);
    if r.boolean(input, "declaration_accepted", "declaration_accepted") == Some(false) {
        r.fail(
            "declaration_accepted",
            "accepted",
            "the declaration must be accepted".to_owned(),
        );
    }
    if !r.errors.is_empty() {
        return Err(r.errors);
    }
    let (Some(partner), Some(project)) = (partner, project) else {
        return Err(vec![FieldError::new(
            "$",
            "internal",
            "the application could not be read".to_owned(),
        )]);
    };
    let mut out = input.clone();
    out["ledger_account"] = json!(format!("nre:{partner}:{project}"));
    Ok(out)
}

/// The statement of work (the `sow_submitted` payload): the SOW attachment, aligned with the
/// partner solution architect.
pub fn validate_sow(payload: &Value, facts: &RecordFacts) -> Result<Value, Vec<FieldError>> {
    object(payload)?;
    let mut r = Reader::default();
    r.attachment(payload, "sow_attachment", "sow_attachment", facts);
    if r.boolean(payload, "psa_aligned", "psa_aligned") == Some(false) {
        r.fail(
            "psa_aligned",
            "aligned",
            "the SOW must be aligned with the PSA before the technical evaluation".to_owned(),
        );
    }
    if r.errors.is_empty() {
        Ok(payload.clone())
    } else {
        Err(r.errors)
    }
}

/// The milestone a decision names must be the one the instance is at: milestones are
/// accepted strictly in order.
pub fn validate_milestone_in_order(
    data: &Value,
    current: Option<u64>,
) -> Result<Value, Vec<FieldError>> {
    let named = data.get("milestone").and_then(Value::as_u64);
    match (named, current) {
        (Some(n), Some(c)) if n == c => Ok(data.clone()),
        (Some(n), Some(c)) => Err(vec![FieldError::new(
            "milestone",
            "in_order",
            format!(
                "milestone {c} is the one to accept now, not {n}: milestones are accepted in order"
            ),
        )]),
        (None, _) => Err(vec![FieldError::new(
            "milestone",
            "required",
            "milestone must name the milestone's number".to_owned(),
        )]),
        (_, None) => Err(vec![FieldError::new(
            "milestone",
            "in_order",
            "no milestone is due".to_owned(),
        )]),
    }
}

/// The next milestone after `done` of the schedule an agreement produced, or `None` when all
/// are done.
pub fn next_milestone(schedule: &Value, done: u64) -> Option<Value> {
    schedule
        .as_array()?
        .iter()
        .find(|m| m.get("number").and_then(Value::as_u64) == Some(done + 1))
        .cloned()
}

/// One milestone of the schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Milestone {
    pub number: usize,
    pub name: String,
    pub amount: Decimal,
}

/// The agreement (the `agreement_uploaded` payload): the signed `agreement_attachment`, `total` and either
/// `milestones` with a `ratio` each (Σ = 1 exactly), `milestones` with an `amount` each
/// (Σ = total exactly), or `equal_parts`. Ratios and equal parts are rounded to the fen per
/// milestone with banker's rounding, and the last milestone takes the remainder. Returns the
/// payload with `schedule` (`[{number, name, amount}]`) and `count` added.
pub fn validate_agreement(payload: &Value, facts: &RecordFacts) -> Result<Value, Vec<FieldError>> {
    object(payload)?;
    let mut r = Reader::default();
    r.attachment(
        payload,
        "agreement_attachment",
        "agreement_attachment",
        facts,
    );
    let total = r.amount(payload, "total", "total");
    let milestones = schedule(&mut r, payload, total);
    if !r.errors.is_empty() {
        return Err(r.errors);
    }
    let milestones = milestones.unwrap_or_default();
    let mut out = payload.clone();
    out["count"] = json!(milestones.len());
    out["schedule"] =
        json!(milestones
        .iter()
        .map(|m| json!({ "number": m.number, "name": m.name, "amount": m.amount.to_string() }))
        .collect::<Vec<_>>());
    Ok(out)
}

fn schedule(r: &mut Reader, payload: &Value, total: Option<Decimal>) -> Option<Vec<Milestone>> {
    let total = total?;
    if let Some(parts) = payload.get("equal_parts") {
        let n = parts.as_u64().filter(|n| (1..=100).contains(n));
        let Some(n) = n else {
            r.fail(
                "equal_parts",
                "count",
                "equal_parts must be a number of milestones from 1 to 100".to_owned(),
            );
            return None;
        };
        let ratio = Decimal::ONE / Decimal::from(n);
        let names: Vec<String> = (1..=n).map(|i| format!("Milestone {i}")).collect();
        return Some(split(total, &vec![ratio; names.len()], names));
    }
    let lines = r.list(payload, "milestones", "milestones")?;
    let names: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, m)| {
            Reader::optional_text(m, "name").unwrap_or_else(|| format!("Milestone {}", i + 1))
        })
        .collect();
    let by_ratio = lines.iter().all(|m| m.get("ratio").is_some());
    let by_amount = lines.iter().all(|m| m.get("amount").is_some());
    if by_ratio == by_amount {
        r.fail(
            "milestones",
            "one_form",
            "every milestone has a ratio, or every milestone has an amount".to_owned(),
        );
        return None;
    }
    if by_amount {
        let amounts: Vec<Option<Decimal>> = lines
            .iter()
            .enumerate()
            .map(|(i, m)| r.amount(m, "amount", &format!("milestones[{i}].amount")))
            .collect();
        let amounts: Vec<Decimal> = amounts.into_iter().collect::<Option<_>>()?;
        let sum: Decimal = amounts.iter().sum();
        if sum != total {
            r.fail(
                "milestones",
                "sum",
                format!("the milestones add up to {sum}, not the agreed total {total}"),
            );
            return None;
        }
        return Some(
            amounts
                .into_iter()
                .zip(names)
                .enumerate()
                .map(|(i, (amount, name))| Milestone {
                    number: i + 1,
                    name,
                    amount,
                })
                .collect(),
        );
    }
    let mut ratios = Vec::with_capacity(lines.len());
    for (i, m) in lines.iter().enumerate() {
        let ratio = m
            .get("ratio")
            .and_then(Value::as_str)
            .and_then(|s| Decimal::from_str(s.trim()).ok())
            .filter(|d| *d > Decimal::ZERO && *d <= Decimal::ONE);
        match ratio {
            Some(d) => ratios.push(d),
            None => r.fail(
                &format!("milestones[{i}].ratio"),
                "ratio",
                "a ratio is a decimal above 0 and at most 1, as text such as \"0.3\"".to_owned(),
            ),
        }
    }
    if ratios.len() != lines.len() {
        return None;
    }
    let sum: Decimal = ratios.iter().sum();
    if sum != Decimal::ONE {
        r.fail(
            "milestones",
            "sum",
            format!("the ratios add up to {sum}, not 1"),
        );
        return None;
    }
    Some(split(total, &ratios, names))
}

/// `total` by `ratios`, each rounded to the fen, the last taking what is left.
fn split(total: Decimal, ratios: &[Decimal], names: Vec<String>) -> Vec<Milestone> {
    let mut paid = Decimal::ZERO;
    let last = ratios.len().saturating_sub(1);
    names
        .into_iter()
        .zip(ratios)
        .enumerate()
        .map(|(i, (name, ratio))| {
            let amount = if i == last {
                total - paid
            } else {
                round_fen(total * ratio)
            };
            paid += amount;
            Milestone {
                number: i + 1,
                name,
                amount,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
