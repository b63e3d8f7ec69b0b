//! partnerflow's HTTP API: an axum [`Router`] over the engine, built by [`router`] for both
//! `partnerflow serve` and the tests (which drive it with `tower::ServiceExt::oneshot`).
//!
//! Handlers extract, call the engine and map the result; they never parse headers or make
//! business decisions. Authentication lives in extractors: operators send a named bearer
//! token, integrations (review portals, e-signature providers, bank feeds, partners' systems)
//! sign the whole request with HMAC-SHA256 ([`sign`]), and are held to their scopes. Every error is
//! `{"error": {"code", "message", "details"}}` with its status, mapped once in `error`.
//!
//! # Layout
//! - `auth`: [`AuthConfig`], [`Operator`], [`Integration`] and its scopes, [`sign`], signature
//!   checks and the `Caller` / `SignedIntegration` extractors.
//! - `error`: [`ApiError`], the exhaustive mapping of engine errors, JSON for every error answer.
//! - `extract`: path, query and `Idempotency-Key` extractors, and the raw body as JSON.
//! - `attachments`: uploads, streamed into the attachment store.
//! - `instances`: start, show and list instances.
//! - `tasks`: task listings and reviewer decisions.
//! - `events`: external events delivered to waiting instances.
//! - `ledger`: account balances and their postings.
//! - `settlement`: transactions in, settlement runs, statements and their explanations.
//! - `links`: the pages of signed links (`/l/{token}`): confirm, then decide.
//! - `delegations`: out-of-office delegations and task reassignment (operators).
//! - `webhooks`: the outbound webhooks' delivery log and replay (operators).
//! - `console`: the operator console (`/ui`), server-rendered, with sessions and CSRF.
//! - `health`: `/healthz`, `/readyz`, `/metrics`.

#![warn(clippy::wildcard_enum_match_arm)]

mod attachments;
mod auth;
mod console;
mod delegations;
mod error;
mod events;
mod extract;
mod health;
mod instances;
mod ledger;
mod links;
mod settlement;
mod tasks;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use partnerflow_engine::{Clock, Engine};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultMakeSpan, TraceLayer};

pub use auth::{
    AuthConfig, DEFAULT_TOLERANCE_SECS, INTEGRATION_HEADER, Integration, Operator, Read,
    SIGNATURE_HEADER, SignedRequest, sign,
};
pub use error::ApiError;

/// A request that takes longer is answered 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What every handler can reach. Cheap to clone: handles and `Arc`s only.
#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub auth: Arc<AuthConfig>,
    /// Renders the Prometheus text for `/metrics`; `None` answers 404 there.
    pub metrics: Option<Arc<dyn Fn() -> String + Send + Sync>>,
    /// Signature timestamps are judged against this clock (virtual in tests and the demo).
    pub clock: Arc<dyn Clock>,
    /// The programme's rebate settlement (`None`: its endpoints answer 404).
    pub settlement: Option<partnerflow_settlement::Settlement>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("engine", &self.engine)
            .field("auth", &self.auth)
            .field("metrics", &self.metrics.is_some())
            .field("now", &self.clock.now())
            .finish()
    }
}

/// The whole API, with its layers: sensitive headers kept out of traces, a trace span per
/// request, JSON for every error answer, a 10 s timeout and panics answered as JSON 500s.
pub fn router(state: AppState) -> Router {
    let sensitive = [
        header::AUTHORIZATION,
        header::HeaderName::from_static(SIGNATURE_HEADER),
    ];
    Router::new()
        .merge(instances::router())
        .merge(attachments::router())
        .merge(tasks::router())
        .merge(events::router())
        .merge(ledger::router())
        .merge(settlement::router())
        .merge(links::router())
        .merge(delegations::router())
        .merge(webhooks::router())
        .merge(console::router())
        .merge(health::router())
        .fallback(error::no_route)
        .layer((
            SetSensitiveRequestHeadersLayer::new(sensitive),
            // 5xx answers are logged once, with their cause, by `error`; not again here.
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(tracing::Level::INFO))
                .on_failure(()),
            axum::middleware::from_fn(error::json_errors),
            TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, REQUEST_TIMEOUT),
            CatchPanicLayer::custom(error::panic_response),
        ))
        .with_state(state)
}
