//! Black-box tests: the engine with its real store, driven on a virtual clock.
//!
//! Every scenario runs twice, on SQLite and on PostgreSQL (a fresh database per test on the
//! server at `PARTNERFLOW_TEST_PG`, default `postgres://postgres@127.0.0.1:5432/postgres`), so
//! the two backends are proven to behave the same.

mod contract;
mod durability;
mod helpers;
mod onboarding;
