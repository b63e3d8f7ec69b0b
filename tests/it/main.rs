//! Black-box tests: the engine with its real store.
//!
//! The workflow scenarios run on a virtual clock, each twice: on SQLite and on PostgreSQL (a
//! fresh database per test on the server at `PARTNERFLOW_TEST_PG`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`), so the two backends are proven to behave the
//! same. The fault tests (`faults`) run real `partnerflow worker` processes on PostgreSQL and
//! Redis in real time, and kill workers or flush Redis in the middle of a run.

mod api;
mod attachments;
mod connections;
mod console;
mod contract;
mod drivers;
mod durability;
mod examples;
mod faults;
mod group_commit;
mod helpers;
mod http;
mod ledger;
mod mdf;
mod mdf_gates;
mod metrics;
mod nre;
mod onboarding;
mod payments;
mod principals;
mod reach;
mod servers;
mod services;
mod settlement;
mod settlement_api;
mod settlement_periods;
mod signatures;
mod supplements;
mod timers;
mod verification;
mod wake;
