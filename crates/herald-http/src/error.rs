//! API errors and their one mapping to HTTP: a status and a JSON body `{"error": "…"}`.
//!
//! Keeping the mapping in one function means every route answers the same way for the same
//! failure, and a store or dispatcher error never leaks a panic or an HTML page.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use herald_notify::dispatch::DispatchError;
use std::time::Duration;

/// The `WWW-Authenticate` challenges of a 401: both schemes the API accepts.
pub const CHALLENGES: [&str; 2] = [
    r#"Basic realm="herald", charset="UTF-8""#,
    r#"Bearer realm="herald""#,
];

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No or wrong credentials.
    #[error("authentication required")]
    Unauthorized,
    /// Too many failed attempts from this address.
    #[error("too many failed authentication attempts; retry later")]
    TooManyFailures(Duration),
    /// Authenticated, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// No such thing.
    #[error("{0}")]
    NotFound(String),
    /// It conflicts with what exists.
    #[error("{0}")]
    Conflict(String),
    /// A part of the server is not running or is at its limit.
    #[error("{0}")]
    Unavailable(String),
    /// The account has as many live streams open as it may.
    #[error("{0}")]
    TooManyStreams(String),
    /// A receiver refused what the server sent it on the client's behalf.
    #[error("{0}")]
    BadGateway(String),
    /// The client took too long to send its request.
    #[error("the request took too long")]
    RequestTimeout,
    /// The server failed.
    #[error("internal error")]
    Internal(String),
}

impl From<DispatchError> for ApiError {
    fn from(e: DispatchError) -> Self {
        match e {
            DispatchError::NotFound(_) => ApiError::NotFound(e.to_string()),
            DispatchError::Exists(_)
            | DispatchError::FromConfig(_)
            | DispatchError::Pruned { .. } => ApiError::Conflict(e.to_string()),
            DispatchError::Config(_) | DispatchError::Sink { .. } => {
                ApiError::BadRequest(e.to_string())
            }
            DispatchError::Store(s) => ApiError::Internal(s.to_string()),
        }
    }
}

impl From<herald_store::StoreError> for ApiError {
    fn from(e: herald_store::StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::TooManyFailures(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::TooManyStreams(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(detail) => {
                // The detail goes to the log, not to the client.
                tracing::error!(error = %detail, "http: internal error");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let mut response = (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response();
        let headers = response.headers_mut();
        match &self {
            ApiError::Unauthorized => {
                for c in CHALLENGES {
                    headers.append(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
                }
            }
            ApiError::TooManyFailures(wait) => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(wait.as_secs().max(1)),
                );
            }
            _ => {}
        }
        response
    }
}

/// The fallback route.
pub(crate) async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}
