//! What every validator returns: the failing fields, each with its rule and a sentence.

use std::fmt;

use serde::{Deserialize, Serialize};

pub(crate) mod read;
mod record;

pub use record::{AttachmentFact, BUSINESS_INFO, CERTIFIED, RecordFacts, Sibling};

/// One failing field of an input; a 422 response carries the whole list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// JSON path such as `company.registered_capital` or `contacts[0].email` (`$` = the root).
    pub field: String,
    /// Short machine code (`required`, `format`, `min_registered_capital`, …) for clients.
    pub rule: String,
    /// A sentence for people, naming the value and the threshold.
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, rule: &str, message: String) -> Self {
        Self {
            field: field.to_owned(),
            rule: rule.to_owned(),
            message,
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.field, self.rule, self.message)
    }
}
