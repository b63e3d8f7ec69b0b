//! Partner onboarding: the application a partner submits, the per-type admission rules, and the
//! pure checks behind the `partner_onboarding` workflow's first three steps (PRODUCT §1.1).
//!
//! - [`validate`] is `submit_application`'s gate. It reads the submitted JSON field by field
//!   and returns every failing field at once (a 422 must name them all), or the typed
//!   [`Application`] when nothing fails. Hard rules live here.
//! - [`screen`] is `auto_screen`: soft rules (documents, deposit, sensitive relationships)
//!   that decide between automatic approval and `qualification_review`.
//! - [`micro_deposit_amount`] and [`MicroDepositCheck`] are the deterministic core of the
//!   simulated `verify_business` provider (¥0.01–0.99, 3 attempts then locked).
//!
//! Every threshold comes from [`OnboardingRules`] (the programme's `[onboarding]` table;
//! defaults in `config/programme.toml`). Nothing here reads a clock or does I/O:
//! "today" is a parameter. Money is [`Decimal`], never a float.

use std::fmt;
use std::str::FromStr;

use chrono::{Months, NaiveDate};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub use crate::validation::FieldError;

/// The currency an application is in when it names none (PRODUCT §2: CNY by default).
const DEFAULT_CURRENCY: &str = "CNY";

fn default_currency() -> String {
    DEFAULT_CURRENCY.to_owned()
}

/// The JSON a partner submits as the `input` of a `partner_onboarding` instance.
///
/// Unknown fields are ignored so that partner portals can send extra context without breaking
/// submission. Build it through [`validate`]; the `Deserialize` impl is for reading back input
/// that was validated when it was stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Application {
    /// The partner the application is for; scopes which partner-side actors may act on it.
    pub partner_id: String,
    /// The legal entity, as on its business licence.
    pub company: Company,
    /// Chooses which threshold set in [`OnboardingRules`] applies.
    pub partner_type: PartnerType,
    /// At least one; the first is the primary contact that notifications go to.
    pub contacts: Vec<Contact>,
    /// Team sizes, compared with the per-type staff thresholds.
    #[serde(default)]
    pub headcount: Headcount,
    /// People holding the vendor's sales-manager certification (integration, development).
    #[serde(default)]
    pub certified_staff: u32,
    /// People who passed the partner sales foundation exam (agents).
    #[serde(default)]
    pub exam_passers: u32,
    /// Registered software copyrights (development partners).
    #[serde(default)]
    pub software_copyrights: u32,
    /// Cooperation deposit already paid, in the company's currency.
    #[serde(default, with = "rust_decimal::serde::str")]
    pub deposit_paid: Decimal,
    /// Uploaded documents by kind; the files themselves live in the document store.
    #[serde(default)]
    pub documents: Vec<Document>,
    /// The partner declared a relationship with vendor employees; never auto-approved.
    #[serde(default)]
    pub sensitive_relationship_declared: bool,
    /// The partner-side person id who submitted; the four-eyes rule excludes them from approving.
    pub submitted_by: String,
}

impl Application {
    /// The contact notifications go to. `None` only for input that skipped [`validate`].
    #[must_use]
    pub fn primary_contact(&self) -> Option<&Contact> {
        self.contacts.first()
    }
}

/// The applying company, as on its business licence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Company {
    /// Must match the real-name verification and the licence (002:190, 002:192).
    pub name: String,
    /// 18-character unified social credit code, upper-case, check character verified.
    pub uscc: String,
    /// Registered capital in `currency`.
    #[serde(with = "rust_decimal::serde::str")]
    pub registered_capital: Decimal,
    /// ISO 4217 code; must be the programme's currency so thresholds compare like with like.
    #[serde(default = "default_currency")]
    pub currency: String,
    /// Registration date; company age is counted from it.
    pub established_on: NaiveDate,
    /// Registered address, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// The three cooperation types of the Tencent form (002:134).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartnerType {
    /// 代理合作: resells cloud products.
    Agent,
    /// 集成合作: integrates cloud products into customer projects.
    Integration,
    /// 开发合作: builds its own cloud-based solutions.
    Development,
}

impl PartnerType {
    /// The wire name, as accepted in the application JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Integration => "integration",
            Self::Development => "development",
        }
    }
}

impl fmt::Display for PartnerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PartnerType {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "agent" => Ok(Self::Agent),
            "integration" => Ok(Self::Integration),
            "development" => Ok(Self::Development),
            _ => Err(()),
        }
    }
}

/// A person at the partner whom partnerflow emails and texts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Used in the salutation of notifications.
    pub name: String,
    /// Checked for shape only; deliverability is the notifier's concern.
    pub email: String,
    /// Stored in E.164; a number without a country code is taken as mainland China's.
    pub phone: String,
    /// The language notifications to this contact are written in (`zh-CN` when not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

/// Team sizes as declared by the partner. Missing counts are 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Headcount {
    /// Whole company.
    pub total: u32,
    /// Technical team.
    pub technical: u32,
    /// Full-time sales team.
    pub sales: u32,
    /// Research and development team.
    pub rnd: u32,
    /// Delivery / service team.
    pub delivery: u32,
}

/// One uploaded document. `kind` is matched against [`TypeRules::required_documents`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    /// Machine name such as `business_licence`; compared case-insensitively.
    pub kind: String,
    /// Original file name, kept for the reviewer.
    pub file_name: String,
}

/// The programme's `[onboarding]` table. Unknown keys are tolerated here because the same
/// table may carry settings other modules read; the per-type tables reject unknown keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnboardingRules {
    /// The currency thresholds are written in; applications must use it.
    #[serde(default = "default_currency")]
    pub currency: String,
    /// Whether the agent deposit is refused at submission or sent to manual review.
    #[serde(default)]
    pub deposit_check: RuleStrength,
    /// Wrong micro-deposit entries allowed before business verification locks (004:3102).
    pub micro_deposit_attempts: u32,
    /// Thresholds for agents (代理).
    pub agent: TypeRules,
    /// Thresholds for integration partners (集成).
    pub integration: TypeRules,
    /// Thresholds for development partners (开发).
    pub development: TypeRules,
}

impl OnboardingRules {
    /// The threshold set for one partner type.
    #[must_use]
    pub fn for_type(&self, partner_type: PartnerType) -> &TypeRules {
        match partner_type {
            PartnerType::Agent => &self.agent,
            PartnerType::Integration => &self.integration,
            PartnerType::Development => &self.development,
        }
    }
}

/// Whether a rule refuses the application ([`validate`]) or only routes it to a human ([`screen`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleStrength {
    /// Refused at submission with the field named.
    Hard,
    /// Accepted, but `auto_screen` sends it to `qualification_review`.
    #[default]
    Soft,
}

/// Admission thresholds for one partner type. A 0 (or missing key) means "no requirement";
/// unknown keys are refused so that a misspelt threshold cannot silently switch a rule off.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TypeRules {
    /// Minimum registered capital (inclusive), a decimal string in the programme currency.
    #[serde(with = "rust_decimal::serde::str")]
    pub min_registered_capital: Decimal,
    /// Whole years since registration, counted in calendar months (29 Feb → 28 Feb).
    pub min_company_age_years: u32,
    /// Minimum `headcount.total`.
    pub min_staff: u32,
    /// Minimum `headcount.technical`.
    pub min_technical: u32,
    /// Minimum `headcount.sales`.
    pub min_sales: u32,
    /// Minimum `headcount.rnd`.
    pub min_rnd: u32,
    /// Minimum `headcount.delivery`.
    pub min_delivery: u32,
    /// Minimum `certified_staff`.
    pub min_certified_staff: u32,
    /// Minimum `exam_passers`.
    pub min_exam_passers: u32,
    /// Minimum `software_copyrights`.
    pub min_software_copyrights: u32,
    /// Cooperation deposit to be paid in full; checked per [`OnboardingRules::deposit_check`].
    #[serde(with = "rust_decimal::serde::str")]
    pub deposit: Decimal,
    /// Document kinds that must be uploaded for auto-approval (soft rule).
    pub required_documents: Vec<String>,
}

/// The outcome of `auto_screen`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Screening {
    /// True only when every soft check passed and nothing was declared.
    pub auto_approve: bool,
    /// Why a human must look at it; empty when `auto_approve`.
    pub reasons: Vec<String>,
}

mod deposit;
mod screen;
mod validate;

pub use deposit::*;
pub use screen::screen;
pub use validate::validate;

#[cfg(test)]
mod tests;
