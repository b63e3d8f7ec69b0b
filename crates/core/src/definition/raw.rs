//! The permissive shape of a `workflows/*.toml` file, exactly as serde reads it.
//!
//! Nothing here is trusted: [`super::WorkflowDefinition::parse`] checks references, reachability,
//! handlers and SLAs and builds the validated model.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDefinition {
    pub(crate) id: String,
    pub(crate) version: u32,
    #[serde(default)]
    pub(crate) title: String,
    pub(crate) start: String,
    /// Name of the validator applied to the start input.
    pub(crate) input: Option<String>,
    /// What a listing shows of each instance: name → JSON pointer into its data.
    #[serde(default)]
    pub(crate) summary: BTreeMap<String, String>,
    pub(crate) steps: Vec<RawStep>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStep {
    pub(crate) id: String,
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) title: String,
    // automated
    pub(crate) handler: Option<String>,
    pub(crate) params: Option<toml::Table>,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) poll_every: Option<String>,
    pub(crate) poll_for: Option<String>,
    // human
    pub(crate) role: Option<String>,
    pub(crate) sla: Option<String>,
    pub(crate) reminders: Option<Vec<String>>,
    pub(crate) escalations: Option<Vec<RawEscalation>>,
    pub(crate) breach: Option<String>,
    pub(crate) silence: Option<String>,
    pub(crate) silence_decision: Option<String>,
    pub(crate) decisions: Option<Vec<String>>,
    pub(crate) reason_required: Option<Vec<String>>,
    pub(crate) quorum: Option<super::votes::RawQuorum>,
    pub(crate) two_approvals_above: Option<super::votes::RawDualApproval>,
    pub(crate) four_eyes: Option<bool>,
    pub(crate) moves_money: Option<bool>,
    // timer / wait / child
    pub(crate) after: Option<String>,
    pub(crate) until: Option<String>,
    pub(crate) event: Option<String>,
    pub(crate) validator: Option<String>,
    pub(crate) replaces_input: Option<bool>,
    pub(crate) correlate: Option<String>,
    pub(crate) timeout: Option<String>,
    pub(crate) timeout_until: Option<String>,
    pub(crate) workflow: Option<String>,
    // end
    pub(crate) status: Option<String>,
    #[serde(default)]
    pub(crate) notify: Vec<RawNotify>,
    #[serde(default)]
    pub(crate) post: Vec<super::postings::RawPosting>,
    #[serde(default)]
    pub(crate) interrupts: Vec<String>,
    #[serde(default)]
    pub(crate) accepts: Vec<RawAccepted>,
    #[serde(default)]
    pub(crate) on: BTreeMap<String, RawTransition>,
}

/// An event a step records without leaving it (`accepts = [{ event, validator }]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAccepted {
    pub(crate) event: String,
    pub(crate) validator: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEscalation {
    pub(crate) at: String,
    pub(crate) to: String,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNotify {
    pub(crate) to: String,
    pub(crate) template: String,
    #[serde(default = "default_channels")]
    pub(crate) channels: Vec<String>,
    #[serde(default)]
    pub(crate) urgent: bool,
}

fn default_channels() -> Vec<String> {
    vec!["email".to_owned()]
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawTransition {
    To(String),
    Full {
        to: String,
        #[serde(default)]
        notify: Vec<RawNotify>,
        #[serde(default)]
        post: Vec<super::postings::RawPosting>,
        #[serde(default)]
        record: BTreeMap<String, String>,
    },
}
