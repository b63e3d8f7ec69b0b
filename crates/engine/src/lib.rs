//! partnerflow's engine: applies commands to instances in one transaction each, and carries
//! out what those transitions asked for.
//!
//! The database is the record. A transition checks the instance's version, appends the audit
//! events, and writes tasks, timers and outbox rows in the same transaction. The dispatcher
//! leases due outbox rows and pushes pointers to them onto a [`queue`]; workers run the step
//! handler or deliver the notification and commit the result through the same kind of
//! transition, so a duplicate delivery finds nothing left to do. A row whose lease runs out is
//! dispatched again (the reconciler), and the timer sweeper fires reminders, escalations,
//! silence policies and waits.
//!
//! # Layout
//! - [`clock`]: the system clock and the virtual clock of tests and the demo.
//! - [`engine`]: [`Engine`], its settings, and the commands the API calls.
//! - `transition`: one command → one transaction, effects included.
//! - `work`: running one outbox row (a step handler or a notification).
//! - `loops`: dispatcher, timer sweeper and worker loops, and [`Engine::drain`] for tests.
//! - [`view`]: an instance with its timeline, tasks and SLA clocks.
//! - [`queue`]: the in-process queue and the apalis-redis queue.

mod attachments;
pub mod clock;
mod commands;
mod deliver;
mod engine;
mod loops;
pub mod queue;
mod transition;
pub mod view;
mod work;

pub use attachments::UploadMeta;
pub use clock::{Clock, SystemClock, VirtualClock};
pub use commands::Submitter;
pub use engine::{
    Engine, EngineParts, Error, Idempotency, Notice, Result, Retention, Settings, Started,
};
pub use partnerflow_store::tasks::Filter as TaskFilter;
