//! The composition root of partnerflow: settings, wiring, and the commands of the binary.
//!
//! # Layout
//! - [`settings`]: layered configuration (files, environment).
//! - [`app`]: builds an engine from settings; the one place that picks backends.
//! - [`demo`]: a simulated programme on a virtual clock.
//! - [`bench`]: the reference workload of PRODUCT §6 (in process; [`bench_http`] over HTTP,
//!   both on the client pool of [`workload`]); [`bench_settlement`]: the settlement at scale.
//! - [`operate`]: operator commands (cancel, resume).
//! - [`report`]: text reports (a partner's ledger).
//! - [`settle`]: transaction import, settlement runs and their schedule.
//! - [`harness`]: an engine on a virtual clock, for the demo and the tests.

pub mod app;
pub mod bench;
pub mod bench_driver;
pub mod bench_http;
pub mod bench_settlement;
pub mod bench_timers;
pub mod demo;
pub mod harness;
pub mod measure;
pub mod operate;
pub mod progress;
pub mod reach;
pub mod report;
pub mod settings;
pub mod settle;
pub mod workload;
