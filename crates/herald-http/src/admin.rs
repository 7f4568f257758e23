//! The subscription admin API: a JSON face on the dispatcher, for administrators only.
//!
//! | method and path | does | answers |
//! |---|---|---|
//! | `GET /subscriptions` | list | 200 `[SubscriptionStatus]` |
//! | `POST /subscriptions` | create from a `SubscriptionConfig` (the `[[subscription]]` keys as JSON) | 201 status; 400 invalid; 409 exists |
//! | `GET /subscriptions/{name}` | one | 200 status; 404 |
//! | `DELETE /subscriptions/{name}` | delete (API-created only) | 204; 404; 409 from the config file |
//! | `POST /subscriptions/{name}/pause` · `/resume` | stop / restart delivery (resume also clears a 410 disable) | 200 status |
//! | `POST /subscriptions/{name}/replay?from=ID` | re-deliver from event `ID` on (inclusive) | 200 status; 400 without `from` |
//! | `GET /subscriptions/{name}/parked` | dead-lettered events | 200 `[Parked]` |
//! | `POST /subscriptions/{name}/parked/replay` | retry them | 200 `{"delivered": n}` |
//!
//! Errors are `{"error": "…"}` with the status [`crate::ApiError`] maps to. The handlers hold no
//! state of their own: the dispatcher persists every change in the store, so what the API says
//! is what survives a restart.

use crate::auth::Caller;
use crate::{ApiError, HttpState};
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use herald_notify::SubscriptionConfig;
use herald_notify::dispatch::{Dispatcher, Parked, SubscriptionStatus};
use serde::Deserialize;
use std::sync::Arc;

fn dispatcher(state: &HttpState, caller: &Caller) -> Result<Arc<Dispatcher>, ApiError> {
    caller.require_admin()?;
    state
        .dispatcher
        .clone()
        .ok_or_else(|| ApiError::Unavailable("event delivery is not running".into()))
}

/// `GET /subscriptions`.
pub async fn list(
    State(state): State<HttpState>,
    caller: Caller,
) -> Result<Json<Vec<SubscriptionStatus>>, ApiError> {
    Ok(Json(dispatcher(&state, &caller)?.list().await?))
}

/// `POST /subscriptions`.
pub async fn create(
    State(state): State<HttpState>,
    caller: Caller,
    body: Result<Json<SubscriptionConfig>, JsonRejection>,
) -> Result<(StatusCode, Json<SubscriptionStatus>), ApiError> {
    let d = dispatcher(&state, &caller)?;
    let Json(config) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let status = d.create(config).await?;
    tracing::info!(by = %caller.user, name = %status.name, "http: subscription created");
    Ok((StatusCode::CREATED, Json(status)))
}

/// `GET /subscriptions/{name}`.
pub async fn get(
    State(state): State<HttpState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<SubscriptionStatus>, ApiError> {
    Ok(Json(dispatcher(&state, &caller)?.get(&name).await?))
}

/// `DELETE /subscriptions/{name}`.
pub async fn delete(
    State(state): State<HttpState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    dispatcher(&state, &caller)?.delete(&name).await?;
    tracing::info!(by = %caller.user, %name, "http: subscription deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /subscriptions/{name}/pause`.
pub async fn pause(
    State(state): State<HttpState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<SubscriptionStatus>, ApiError> {
    Ok(Json(dispatcher(&state, &caller)?.pause(&name).await?))
}

/// `POST /subscriptions/{name}/resume`.
pub async fn resume(
    State(state): State<HttpState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<SubscriptionStatus>, ApiError> {
    Ok(Json(dispatcher(&state, &caller)?.resume(&name).await?))
}

/// The query of `replay`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayQuery {
    /// First event id to deliver again.
    pub from: u64,
}

/// `POST /subscriptions/{name}/replay?from=ID`.
pub async fn replay(
    State(state): State<HttpState>,
    caller: Caller,
    Path(name): Path<String>,
    q: Result<Query<ReplayQuery>, QueryRejection>,
) -> Result<Json<SubscriptionStatus>, ApiError> {
    let d = dispatcher(&state, &caller)?;
    let Query(q) = q.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let status = d.replay(&name, q.from).await?;
    tracing::info!(by = %caller.user, %name, from = q.from, "http: subscription replay");
    Ok(Json(status))
}

/// `GET /subscriptions/{name}/parked`.
pub async fn parked(
    State(state): State<HttpState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Vec<Parked>>, ApiError> {
    Ok(Json(dispatcher(&state, &caller)?.parked(&name).await?))
}

/// `POST /subscriptions/{name}/parked/replay`.
pub async fn replay_parked(
    State(state): State<HttpState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let delivered = dispatcher(&state, &caller)?.replay_parked(&name).await?;
    Ok(Json(serde_json::json!({ "delivered": delivered })))
}
