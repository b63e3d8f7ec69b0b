//! The ledger: an account's balance per bucket and every posting with the instance and step
//! that caused it (`GET /v1/ledger/accounts/{account}`, operators), and a partner's accounts
//! with their balances, postings, payables and payments (`GET /v1/partners/{partner}/ledger`,
//! operators and the partner's own integration).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{Caller, Read, Who};
use crate::error::ApiError;
use crate::extract::AppPath;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/ledger/accounts/{account}", get(account))
        .route("/v1/partners/{partner}/ledger", get(partner))
}

async fn account(
    State(state): State<AppState>,
    AppPath(account): AppPath<String>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    if let Who::Integration(i) = &caller.who {
        return Err(ApiError::forbidden(
            "operators_only",
            format!("integration `{}` may not read the ledger", i.id),
        ));
    }
    let (balance, entries) = state.engine.ledger_account(&account).await?;
    Ok(Json(json!({
        "account": account,
        "currency": balance.currency,
        "quota": balance.quota,
        "supplements": balance.supplements,
        "reserved": balance.reserved,
        "consumed": balance.consumed,
        "available": balance.available(),
        "postings": entries,
    })))
}

async fn partner(
    State(state): State<AppState>,
    AppPath(partner): AppPath<String>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.who.may_read(Read::Ledger)?;
    caller
        .who
        .may_see(&format!("partner {partner}"), Some(partner.as_str()))?;
    let ledger = state.engine.partner_ledger(&partner).await?;
    Ok(Json(serde_json::to_value(ledger).map_err(|e| {
        ApiError::from(partnerflow_engine::Error::Conflict(e.to_string()))
    })?))
}
