//! Push subscriptions (WebPush): where the `webpush` sink pushes a user's events.
//!
//! | method and path | does | answers |
//! |---|---|---|
//! | `GET /push/subscriptions` | the caller's push subscriptions | 200 `[PushSubscriptionJson]` |
//! | `POST /push/subscriptions` | register what a browser's `PushManager.subscribe()` returned (`subscription.toJSON()`: `endpoint`, `keys.p256dh`, `keys.auth`); the same endpoint again replaces its keys | 201 the stored subscription; 400 invalid; 409 too many |
//! | `DELETE /push/subscriptions?endpoint=URL` | remove one of the caller's | 204; 404 |
//! | `GET /push/vapid` | the `applicationServerKey` of each `webpush` subscription | 200 `[{"subscription", "applicationServerKey"}]` |
//!
//! Every route acts for the authenticated user (HTTP Basic or a bearer token): an account sees and
//! changes only its own push subscriptions, administrators included. The endpoint must be an
//! `https` URL (`http` is accepted for loopback hosts only, for a local test push service), and
//! the keys a valid P-256 point and a 16-byte secret, so the sink never holds one it cannot
//! encrypt for. An account holds at most [`MAX_PER_USER`] push subscriptions.

use crate::auth::Caller;
use crate::{ApiError, HttpState};
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use herald_notify::SinkConfig;
use herald_notify::sink::webpush::{MAX_PER_USER, VapidKey, check_subscription};
use herald_store::{PushSubscription, StoreError};
use serde::{Deserialize, Serialize};

/// The keys of a browser's push subscription.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PushKeys {
    /// The browser's P-256 public key, base64url.
    pub p256dh: String,
    /// The browser's authentication secret, base64url.
    pub auth: String,
}

/// A push subscription as browsers write it (`PushSubscription.toJSON()`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PushSubscriptionJson {
    /// The push service URL.
    pub endpoint: String,
    /// Its keys.
    pub keys: PushKeys,
    /// Browsers send `expirationTime` (usually null); it is accepted and not used.
    #[serde(default, rename = "expirationTime", skip_serializing)]
    pub expiration_time: Option<serde_json::Value>,
    /// When it was registered, ms since the epoch (answers only).
    #[serde(default, skip_deserializing)]
    pub created_ms: i64,
}

impl From<PushSubscription> for PushSubscriptionJson {
    fn from(s: PushSubscription) -> Self {
        PushSubscriptionJson {
            endpoint: s.endpoint,
            keys: PushKeys {
                p256dh: s.p256dh,
                auth: s.auth,
            },
            expiration_time: None,
            created_ms: s.created_ms,
        }
    }
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound { .. } => ApiError::NotFound(e.to_string()),
        StoreError::InvalidArgument(_) => ApiError::Conflict(e.to_string()),
        e => e.into(),
    }
}

/// `GET /push/subscriptions`.
pub async fn list(
    State(state): State<HttpState>,
    caller: Caller,
) -> Result<Json<Vec<PushSubscriptionJson>>, ApiError> {
    let subs = state
        .store
        .push_subscriptions(&caller.user)
        .await
        .map_err(store_error)?;
    Ok(Json(subs.into_iter().map(Into::into).collect()))
}

/// `POST /push/subscriptions`.
pub async fn create(
    State(state): State<HttpState>,
    caller: Caller,
    body: Result<Json<PushSubscriptionJson>, JsonRejection>,
) -> Result<(StatusCode, Json<PushSubscriptionJson>), ApiError> {
    let Json(sub) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let endpoint = check_subscription(&sub.endpoint, &sub.keys.p256dh, &sub.keys.auth)
        .map_err(ApiError::BadRequest)?;
    let host = endpoint.host_str().unwrap_or_default().to_owned();
    state.sink_policy.admit_push_host(&host)?;
    let created_ms = herald_store::now_ms();
    let record = PushSubscription {
        user: caller.user.clone(),
        endpoint: sub.endpoint,
        p256dh: sub.keys.p256dh,
        auth: sub.keys.auth,
        created_ms,
    };
    state
        .store
        .put_push_subscription(record.clone(), MAX_PER_USER)
        .await
        .map_err(store_error)?;
    tracing::info!(
        user = %caller.user,
        endpoint = %herald_notify::sink::redact_url(&record.endpoint),
        "http: push subscription registered"
    );
    Ok((StatusCode::CREATED, Json(record.into())))
}

/// `DELETE /push/subscriptions` query.
#[derive(Debug, Deserialize)]
pub struct DeleteQuery {
    /// The endpoint to remove.
    pub endpoint: String,
}

/// `DELETE /push/subscriptions?endpoint=URL`.
pub async fn delete(
    State(state): State<HttpState>,
    caller: Caller,
    query: Result<Query<DeleteQuery>, QueryRejection>,
) -> Result<StatusCode, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    state
        .store
        .delete_push_subscription(&caller.user, &q.endpoint)
        .await
        .map_err(store_error)?;
    tracing::info!(
        user = %caller.user,
        endpoint = %herald_notify::sink::redact_url(&q.endpoint),
        "http: push subscription removed"
    );
    Ok(StatusCode::NO_CONTENT)
}

/// One `webpush` subscription's public key.
#[derive(Debug, Serialize)]
pub struct VapidInfo {
    /// The subscription's name.
    pub subscription: String,
    /// What a page passes to `PushManager.subscribe()`.
    #[serde(rename = "applicationServerKey")]
    pub application_server_key: String,
}

/// `GET /push/vapid`.
pub async fn vapid(
    State(state): State<HttpState>,
    _caller: Caller,
) -> Result<Json<Vec<VapidInfo>>, ApiError> {
    let Some(dispatcher) = state.dispatcher.clone() else {
        return Ok(Json(Vec::new()));
    };
    let mut out = Vec::new();
    for s in dispatcher.list().await? {
        if let SinkConfig::WebPush { vapid_key, .. } = &s.config.sink {
            // The sink created the file when it started; a subscription whose sink could not
            // start has none and is left out.
            let Ok(text) = tokio::fs::read_to_string(vapid_key).await else {
                continue;
            };
            if let Ok(key) = VapidKey::parse(&text) {
                out.push(VapidInfo {
                    subscription: s.name,
                    application_server_key: key.public_key().to_owned(),
                });
            }
        }
    }
    Ok(Json(out))
}
