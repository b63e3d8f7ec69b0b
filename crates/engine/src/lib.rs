//! partnerflow's engine: applies commands to instances in one transaction each, and carries
//! out what those transitions asked for.
//!
//! The database is the record. A transition checks the instance's version, appends the audit
//! events, and writes tasks, timers, outbox rows and ledger postings in the same transaction.
//! The dispatcher pushes due outbox rows onto a [`queue`]; the worker that takes one leases it,
//! runs the step handler or delivers the notification outside any transaction, and commits the
//! result through the same kind of transition, only while it still holds the lease. A row the
//! queue or a worker lost is dispatched again (the reconciler), and the timer sweeper fires
//! reminders, escalations, silence policies and waits.
//!
//! # Layout
//! - [`clock`]: the system clock and the virtual clock of tests and the demo.
//! - `engine`: [`Engine`], its parts, settings, errors and definitions.
//! - `commands`: start, decide, external events, cancel and resume; `bulk`: many starts at once.
//! - `transition`: one command → one transaction; `group`: concurrent ones committed together;
//!   `effects`: what it writes besides the instance.
//! - `work`: running one outbox row's step handler; `deliver`: its notification, to the
//!   addresses `recipients` resolves; `webhooks`: its webhook, and the events that make one.
//! - [`reach`]: templates, signed links, quiet hours and webhook subscribers; `links`: a
//!   signed link's page and decision; `delegations`: out-of-office and reassignment.
//! - `loops`: dispatcher, timer sweeper, janitor and worker loops, and [`Engine::drain`].
//! - `attachments`: uploads checked and recorded.
//! - `ledger`: an account's postings; a partner's accounts, payables and payments.
//! - `status`: a partner's instances with their summaries and SLA clocks.
//! - `facts`: what validators consult besides their input (attachments, standing).
//! - [`metrics`]: every series registered at start-up, event counters, gauges from the database.
//! - [`view`]: an instance with its timeline, tasks and SLA clocks.
//! - [`queue`]: the in-process queue and the apalis-redis queue.

mod attachments;
mod bulk;
pub mod clock;
mod commands;
mod delegations;
mod deliver;
mod effects;
mod engine;
mod facts;
mod group;
mod ledger;
mod links;
mod loops;
pub mod metrics;
pub mod queue;
pub mod reach;
mod recipients;
mod status;
mod transition;
pub mod view;
mod webhooks;
mod work;

pub use attachments::UploadMeta;
pub use bulk::BulkStart;
pub use clock::{Clock, SystemClock, VirtualClock};
pub use commands::Submitter;
pub use engine::{
    Engine, EngineParts, Error, Idempotency, Notice, Result, Retention, Settings, Started,
};
pub use group::GroupStats;
pub use ledger::{AccountBalance, LedgerFinding, PartnerLedger};
pub use links::{LinkEvidence, LinkRefusal, LinkView, token_hash};
pub use partnerflow_store::instances::Listing;
pub use partnerflow_store::tasks::Filter as TaskFilter;
pub use reach::{Reach, Subscriber, WebhookSecret};
pub use status::InstanceStatus;
