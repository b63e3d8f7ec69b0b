//! Monthly rebate settlement (PRODUCT §1.5): transactions imported once, policies loaded and
//! checked, and the run that settles a programme's period exactly once per partner, by hand
//! (`partnerflow settle --period`) or on the programme's schedule, both through [`Settlement::settle`].
//!
//! # Layout
//! - [`policies`]: the policy files of `config/policies/`, checked.
//! - [`import`]: a CSV file or a batch of rows into the record, all or nothing.
//! - `run`: a period's statements computed, recorded once, and their workflows started.
//! - [`schedule`]: which periods are due (the programme's cron schedule, missed ones caught up).
//! - `explain`: runs and statements read back, and a statement line with the transactions it
//!   came from.

pub mod explain;
pub mod import;
pub mod policies;
mod run;
pub mod schedule;

pub use partnerflow_store::settlement::{Run, Statement};
pub use run::{Progress, Settlement, WORKFLOW};

/// Why a settlement operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is not acceptable (a bad period, a file with bad rows): nothing was changed.
    #[error("{0}")]
    Invalid(String),
    /// The programme's configuration cannot settle (no policy in force, a bad schedule).
    #[error("settlement configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] partnerflow_store::Error),
    #[error(transparent)]
    Engine(#[from] partnerflow_engine::Error),
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
