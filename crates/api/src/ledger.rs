//! The ledger (`GET /v1/ledger/accounts/{account}`): an account's balance per bucket and every
//! posting with the instance and step that caused it. Operators only for now: an account's
//! name does not say which partner's it is in a way scopes could check.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{Caller, Who};
use crate::error::ApiError;
use crate::extract::AppPath;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/ledger/accounts/{account}", get(account))
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
