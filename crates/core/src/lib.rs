//! partnerflow's domain core: everything that decides, nothing that does I/O.
//!
//! Time, ids and configuration are passed in; decisions come back as data (events and
//! effects) that the engine persists in one transaction and carries out afterwards.
//!
//! # Layout
//! - [`span`]: durations as programmes write them (`3WD`, `30CD`, `3M`, `50%`).
//! - [`calendar`]: the business calendar and working-day arithmetic.
//! - [`definition`]: workflow definitions, parsed from TOML and validated.
//! - [`machine`]: the instance state machine: command in, new state + events + effects out.
//! - [`directory`]: people, roles, partner contacts and integration scopes.
//! - [`onboarding`]: the partner application and its per-type thresholds.
//! - [`mdf`]: market development funds: usage applications, claims, invoices, tier quotas.
//! - [`nre`]: one-time engineering fees: the application and the milestone schedule.
//! - [`rebate`]: monthly rebate settlement: periods, policies, transactions, statements.
//! - [`handler`]: the contract between the engine and the step handlers in `workers/`.
//! - [`programme`]: a programme's rules and definition overrides.
//! - [`attachments`]: the rules an uploaded file must satisfy.
//! - [`audit`]: the per-instance hash chain of events.
//! - [`money`]: amounts with currency and the one rounding rule.
//! - [`ledger`]: postings and account balances, the one ledger of MDF, NRE and rebates.
//! - [`signature`]: the HMAC over a whole request, inbound callbacks and outbound webhooks.
//! - [`phone`]: phone numbers in E.164, with the programme's default country code.
//! - [`validation`]: the failing-field list every validator returns.

pub mod attachments;
pub mod audit;
pub mod calendar;
pub mod definition;
pub mod directory;
pub mod handler;
pub mod ledger;
pub mod machine;
pub mod mdf;
pub mod money;
pub mod nre;
pub mod onboarding;
pub mod phone;
pub mod programme;
pub mod rebate;
pub mod signature;
pub mod span;
pub mod validation;

pub use calendar::BusinessCalendar;
pub use definition::WorkflowDefinition;
