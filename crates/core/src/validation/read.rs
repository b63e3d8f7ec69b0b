//! Reading a submitted JSON document field by field, collecting every problem, so that a
//! partner sees all failing fields of a usage application or a claim in one answer.

use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::Value;

use super::{FieldError, RecordFacts};

/// Refuses an input that is not a JSON object, before any field is read.
pub(crate) fn object(v: &Value) -> Result<(), Vec<FieldError>> {
    if v.is_object() {
        Ok(())
    } else {
        Err(vec![FieldError::new(
            "$",
            "type",
            "the input must be a JSON object".to_owned(),
        )])
    }
}

#[derive(Default)]
pub(crate) struct Reader {
    pub(crate) errors: Vec<FieldError>,
}

impl Reader {
    pub(crate) fn fail(&mut self, field: &str, rule: &str, message: String) {
        self.errors.push(FieldError::new(field, rule, message));
    }

    /// The value at the dotted `key` of `v`; a `required` problem on `field` when absent.
    fn at<'v>(&mut self, v: &'v Value, key: &str, field: &str) -> Option<&'v Value> {
        let found = v
            .pointer(&format!("/{}", key.replace('.', "/")))
            .filter(|x| !x.is_null());
        if found.is_none() {
            self.fail(field, "required", format!("{field} is required"));
        }
        found
    }

    /// A required, non-blank string, trimmed.
    pub(crate) fn text(&mut self, v: &Value, key: &str, field: &str) -> Option<String> {
        match self.at(v, key, field)? {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            _ => {
                self.fail(field, "text", format!("{field} must be a non-empty text"));
                None
            }
        }
    }

    /// An optional text: `None` when absent or blank.
    pub(crate) fn optional_text(v: &Value, field: &str) -> Option<String> {
        v.pointer(&format!("/{}", field.replace('.', "/")))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    /// A required attachment id: an upload the record holds, of this partner or an operator.
    pub(crate) fn attachment(
        &mut self,
        v: &Value,
        key: &str,
        field: &str,
        facts: &RecordFacts,
    ) -> Option<String> {
        let id = self.text(v, key, field)?;
        match facts.attachment_problem(field, &id) {
            Some(problem) => {
                self.errors.push(problem);
                None
            }
            None => Some(id),
        }
    }

    /// A required, non-empty list of attachment ids, each checked.
    pub(crate) fn attachments(&mut self, v: &Value, key: &str, field: &str, facts: &RecordFacts) {
        let Some(items) = self.list(v, key, field) else {
            return;
        };
        for (i, item) in items.iter().enumerate() {
            let at = format!("{field}[{i}]");
            match item.as_str() {
                Some(id) => {
                    if let Some(problem) = facts.attachment_problem(&at, id.trim()) {
                        self.errors.push(problem);
                    }
                }
                None => self.fail(&at, "attachment", format!("{at} must be an attachment id")),
            }
        }
    }

    pub(crate) fn date(&mut self, v: &Value, key: &str, field: &str) -> Option<NaiveDate> {
        let text = self.text(v, key, field)?;
        match NaiveDate::parse_from_str(&text, "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                self.fail(
                    field,
                    "date",
                    format!("{field} must be a date YYYY-MM-DD, not `{text}`"),
                );
                None
            }
        }
    }

    pub(crate) fn boolean(&mut self, v: &Value, key: &str, field: &str) -> Option<bool> {
        match self.at(v, key, field)? {
            Value::Bool(b) => Some(*b),
            _ => {
                self.fail(field, "boolean", format!("{field} must be true or false"));
                None
            }
        }
    }

    /// A positive amount in CNY with at most two decimals, given as text ("5600.00").
    pub(crate) fn amount(&mut self, v: &Value, key: &str, field: &str) -> Option<Decimal> {
        let raw = self.at(v, key, field)?;
        let parsed = match raw {
            Value::String(s) => Decimal::from_str(s.trim()).ok(),
            _ => None,
        };
        match parsed {
            Some(a) if a > Decimal::ZERO && a.scale() <= 2 => Some(a),
            _ => {
                self.fail(
                    field,
                    "amount",
                    format!("{field} must be a positive amount with at most two decimals, as text such as \"5600.00\", not {raw}"),
                );
                None
            }
        }
    }

    /// A required, non-empty array.
    pub(crate) fn list<'v>(
        &mut self,
        v: &'v Value,
        key: &str,
        field: &str,
    ) -> Option<&'v Vec<Value>> {
        match self.at(v, key, field)? {
            Value::Array(items) if !items.is_empty() => Some(items),
            _ => {
                self.fail(
                    field,
                    "list",
                    format!("{field} must list at least one entry"),
                );
                None
            }
        }
    }
}

/// Σ of the lines flagged `use_mdf` and Σ of the others, each line checked.
pub(crate) fn cost_lines(r: &mut Reader, v: &Value, field: &str) -> (Decimal, Decimal) {
    let (mut mdf, mut other) = (Decimal::ZERO, Decimal::ZERO);
    let Some(lines) = r.list(v, field, field) else {
        return (mdf, other);
    };
    for (i, line) in lines.iter().enumerate() {
        let at = |k: &str| format!("{field}[{i}].{k}");
        r.text(line, "item", &at("item"));
        let use_mdf = r.boolean(line, "use_mdf", &at("use_mdf"));
        let amount = r.amount(line, "amount", &at("amount"));
        match (use_mdf, amount) {
            (Some(true), Some(a)) => mdf += a,
            (Some(false), Some(a)) => other += a,
            _ => {}
        }
    }
    (mdf, other)
}
