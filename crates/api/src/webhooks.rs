//! The outbound webhooks' delivery log and replay, for operators:
//! `GET /v1/webhooks/{subscriber}/deliveries[?failed=true]` and
//! `POST /v1/webhooks/{subscriber}/deliveries/{id}/replay`.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::delegations::operator;
use crate::error::ApiError;
use crate::extract::{AppPath, AppQuery, limit};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/webhooks/{subscriber}/deliveries", get(list))
        .route(
            "/v1/webhooks/{subscriber}/deliveries/{id}/replay",
            post(replay),
        )
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    #[serde(default)]
    failed: bool,
    limit: Option<i64>,
}

async fn list(
    State(state): State<AppState>,
    AppPath(subscriber): AppPath<String>,
    AppQuery(q): AppQuery<ListQuery>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    operator(&caller.who)?;
    let limit = limit(q.limit)?;
    let deliveries = state
        .engine
        .webhook_deliveries(&subscriber, q.failed, limit)
        .await?;
    Ok(Json(json!(deliveries)))
}

async fn replay(
    State(state): State<AppState>,
    AppPath((subscriber, id)): AppPath<(String, String)>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    operator(&caller.who)?;
    Ok(Json(state.engine.replay_webhook(&subscriber, &id).await?))
}
