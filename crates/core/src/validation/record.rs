//! What the record says about the things an input names, loaded by the engine before a
//! validator runs, so validators stay pure functions of their input and these facts: the
//! uploaded attachments the input names, the partner's standing (its business certification),
//! and, for validators that compare, the partner's other instances of the workflow.

use std::collections::BTreeMap;

use serde_json::Value;

use super::FieldError;

/// An uploaded attachment, as a validator needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentFact {
    pub screen: String,
    pub filename: String,
    /// The partner whose portal uploaded it (`None`: an operator did).
    pub partner_id: Option<String>,
}

/// Another instance of the same workflow for the same partner.
#[derive(Debug, Clone, PartialEq)]
pub struct Sibling {
    pub instance_id: String,
    pub business_key: String,
    /// `running`, or the end status (`paid`, `revoked`, …).
    pub status: String,
    pub input: Value,
}

/// The facts a validator may consult. Empty by default: nothing uploaded, no standing, no
/// siblings.
#[derive(Debug, Clone, Default)]
pub struct RecordFacts {
    /// The partner the input belongs to, when known.
    pub partner: Option<String>,
    /// The partner's standing, fact → state (`business_info` → `certified`).
    pub standing: BTreeMap<String, String>,
    /// The recorded attachments among the texts of the input, by id.
    pub attachments: BTreeMap<String, AttachmentFact>,
    /// The partner's other instances of the workflow, newest first (loaded only for
    /// validators that compare an input with them).
    pub siblings: Vec<Sibling>,
}

/// The standing fact that gates money leaving for a partner.
pub const BUSINESS_INFO: &str = "business_info";
/// Its state once certified (`recertifying` while a change is under certification).
pub const CERTIFIED: &str = "certified";

impl RecordFacts {
    /// Facts about `partner` with nothing recorded yet.
    pub fn for_partner(partner: &str) -> Self {
        RecordFacts {
            partner: Some(partner.to_owned()),
            ..RecordFacts::default()
        }
    }

    /// These facts with `id` an upload of their partner.
    pub fn with_upload(mut self, id: &str) -> Self {
        let fact = AttachmentFact {
            screen: String::new(),
            filename: String::new(),
            partner_id: self.partner.clone(),
        };
        self.attachments.insert(id.to_owned(), fact);
        self
    }

    /// These facts with the partner's business information certified.
    pub fn certified(mut self) -> Self {
        self.standing
            .insert(BUSINESS_INFO.to_owned(), CERTIFIED.to_owned());
        self
    }

    /// A problem on `field` unless `id` names an upload of this partner (or of an operator).
    pub fn attachment_problem(&self, field: &str, id: &str) -> Option<FieldError> {
        match self.attachments.get(id) {
            None => Some(FieldError::new(
                field,
                "attachment",
                format!(
                    "{field} must be the id of an uploaded attachment (POST /v1/attachments); `{id}` is none"
                ),
            )),
            Some(a) => match (&a.partner_id, &self.partner) {
                (Some(owner), Some(partner)) if owner != partner => Some(FieldError::new(
                    field,
                    "attachment_owner",
                    format!("{field}: attachment `{id}` was uploaded for another partner"),
                )),
                _ => None,
            },
        }
    }

    /// A problem on `partner_id` unless the partner's business information is certified (not
    /// missing, not being recertified); `what` names the act it gates.
    pub fn business_certification_problem(&self, what: &str) -> Option<FieldError> {
        let state = self.standing.get(BUSINESS_INFO).map(String::as_str);
        if state == Some(CERTIFIED) {
            return None;
        }
        let partner = self.partner.as_deref().unwrap_or("the partner");
        let now = match state {
            Some(s) => format!("its business information is `{s}`"),
            None => "its business information was never certified".to_owned(),
        };
        Some(FieldError::new(
            "partner_id",
            "business_info_not_certified",
            format!("{what} needs {partner}'s business-information certification; {now}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> RecordFacts {
        let mut f = RecordFacts {
            partner: Some("P-1".to_owned()),
            ..RecordFacts::default()
        };
        for (id, owner) in [
            ("mine", Some("P-1")),
            ("theirs", Some("P-2")),
            ("ops", None),
        ] {
            f.attachments.insert(
                id.to_owned(),
                AttachmentFact {
                    screen: "mdf_claim".to_owned(),
                    filename: "x.pdf".to_owned(),
                    partner_id: owner.map(str::to_owned),
                },
            );
        }
        f
    }

    #[test]
    fn an_attachment_must_exist_and_belong_to_the_partner_or_an_operator() {
        let f = facts();
        assert_eq!(f.attachment_problem("a", "mine"), None);
        assert_eq!(f.attachment_problem("a", "ops"), None);
        let rule = |id| f.attachment_problem("a", id).map(|e| e.rule);
        assert_eq!(rule("theirs").as_deref(), Some("attachment_owner"));
        assert_eq!(rule("nowhere").as_deref(), Some("attachment"));
    }

    #[test]
    fn only_a_certified_partner_passes_the_business_gate() {
        let mut f = facts();
        assert!(f.business_certification_problem("a claim").is_some());
        f.standing
            .insert(BUSINESS_INFO.to_owned(), "recertifying".to_owned());
        let e = f
            .business_certification_problem("a claim")
            .expect("refused");
        assert_eq!(e.rule, "business_info_not_certified");
        assert!(e.message.contains("recertifying"), "{}", e.message);
        f.standing
            .insert(BUSINESS_INFO.to_owned(), CERTIFIED.to_owned());
        assert_eq!(f.business_certification_problem("a claim"), None);
    }
}
