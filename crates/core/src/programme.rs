//! A programme's configuration: its rules and the per-step overrides of the definitions.
//! Loaded from `config/programme.toml` by the CLI; every SLA and threshold lives there or in
//! the definitions, never in code.

use serde::Deserialize;

use crate::onboarding::OnboardingRules;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Programme {
    pub id: String,
    pub name: String,
    /// Calendar files under `config/calendars/`.
    pub calendars: Vec<String>,
    pub onboarding: OnboardingRules,
    pub contract: ContractSettings,
    pub certificate: CertificateSettings,
    /// Market development funds; the seeds' numbers when absent.
    #[serde(default)]
    pub mdf: crate::mdf::MdfRules,
    /// One-time engineering fees; the seeds' numbers when absent.
    #[serde(default)]
    pub nre: crate::nre::NreRules,
    /// Monthly rebate settlement: schedule, threshold, invoice rules.
    #[serde(default)]
    pub settlement: crate::rebate::SettlementRules,
    /// Uploads; the seeds' rules when absent.
    #[serde(default)]
    pub attachments: crate::attachments::AttachmentRules,
    /// `[workflows.<id>.steps.<step>]` overrides merged into the definitions.
    #[serde(default)]
    pub workflows: toml::Table,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractSettings {
    /// The programme agreement, a minijinja template over the application.
    pub agreement_template: String,
    /// Salt of the simulated verification provider (embedded default only).
    #[serde(default = "default_salt")]
    pub verification_salt: String,
}

fn default_salt() -> String {
    "partnerflow-dev".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateSettings {
    /// Prefix of certificate ids (`<prefix>-<year>-<partner>`).
    pub prefix: String,
}

impl Programme {
    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }
}
