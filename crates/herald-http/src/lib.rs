//! `herald-http`: Herald's HTTP side — live event streams and the subscription admin API.
//!
//! - [`stream`]: reads committed events from the store's outbox for one client, in order, in
//!   bounded batches, keeping only those the client may see. The outbox is the buffer: a slow
//!   client falls behind in the outbox, never in memory.
//! - [`sse`] (`GET /events/stream`) and [`ws`] (`GET /events/ws`) put that feed on the wire.
//! - [`auth`]: HTTP Basic with an account's password, or a bearer token from `[http] tokens`;
//!   failures are rate-limited per client IP with the servers' shared [`AuthLimiter`].
//! - [`admin`]: `/subscriptions…`, a JSON face on the dispatcher (administrators only).
//! - [`config`]: the `[http]` section.
//!
//! [`serve`] runs the router on a listener until the shutdown token fires; live streams watch
//! the same token and end, so a graceful shutdown is not held up by clients that never hang up.

pub mod admin;
pub mod auth;
pub mod config;
mod error;
mod messages;
pub mod sse;
pub mod stream;
pub mod ws;

pub use config::{HttpConfig, TokenConfig};
pub use error::ApiError;

use axum::Router;
use axum::routing::{get, post};
use herald_net::AuthLimiter;
use herald_notify::dispatch::Dispatcher;
use herald_store::Store;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Default listener (DESIGN §3).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// How often an idle stream sends a keep-alive (an SSE comment, a WebSocket ping), so proxies
/// and clients can tell a quiet stream from a dead one.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(15);

/// Default bound on concurrent live streams.
pub const DEFAULT_MAX_STREAMS: usize = 1000;

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct HttpState {
    pub(crate) store: Store,
    pub(crate) dispatcher: Option<Arc<Dispatcher>>,
    pub(crate) sink_policy: Arc<admin::SinkPolicy>,
    pub(crate) tokens: Arc<auth::Tokens>,
    pub(crate) limiter: Arc<AuthLimiter>,
    pub(crate) streams: Arc<Semaphore>,
    pub(crate) keepalive: Duration,
    pub(crate) shutdown: CancellationToken,
    pub(crate) content_links: Option<herald_notify::content_ref::ContentSigner>,
}

impl std::fmt::Debug for HttpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpState")
            .field("dispatcher", &self.dispatcher.is_some())
            .field("tokens", &self.tokens.len())
            .field("keepalive", &self.keepalive)
            .finish_non_exhaustive()
    }
}

impl HttpState {
    /// State for `config`. Without a dispatcher the admin API answers 503.
    pub fn new(
        store: Store,
        dispatcher: Option<Arc<Dispatcher>>,
        config: &HttpConfig,
        limiter: Arc<AuthLimiter>,
    ) -> Result<HttpState, config::ConfigError> {
        Ok(HttpState {
            store,
            dispatcher,
            sink_policy: Arc::new(admin::SinkPolicy::new(config)),
            tokens: Arc::new(auth::Tokens::new(&config.tokens)?),
            limiter,
            streams: Arc::new(Semaphore::new(
                config.max_streams.unwrap_or(DEFAULT_MAX_STREAMS).max(1),
            )),
            keepalive: config
                .keepalive_secs
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_KEEPALIVE)
                .max(Duration::from_secs(1)),
            shutdown: CancellationToken::new(),
            content_links: None,
        })
    }

    /// Serves `GET /messages` for links signed with `signer` (the dispatcher's content links).
    pub fn with_content_links(
        mut self,
        signer: herald_notify::content_ref::ContentSigner,
    ) -> HttpState {
        self.content_links = Some(signer);
        self
    }

    /// Changes the keep-alive interval (tests use short ones).
    pub fn with_keepalive(mut self, keepalive: Duration) -> HttpState {
        self.keepalive = keepalive;
        self
    }
}

/// The routes, for embedding or testing; [`serve`] is the usual entry point.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/events/stream", get(sse::stream))
        .route("/events/ws", get(ws::upgrade))
        .route("/messages", get(messages::get))
        .route("/subscriptions", get(admin::list).post(admin::create))
        .route(
            "/subscriptions/{name}",
            get(admin::get).delete(admin::delete),
        )
        .route("/subscriptions/{name}/pause", post(admin::pause))
        .route("/subscriptions/{name}/resume", post(admin::resume))
        .route("/subscriptions/{name}/replay", post(admin::replay))
        .route("/subscriptions/{name}/parked", get(admin::parked))
        .route(
            "/subscriptions/{name}/parked/replay",
            post(admin::replay_parked),
        )
        .fallback(error::not_found)
        .with_state(state)
}

/// Serves HTTP on `listener` until `shutdown` is cancelled; open streams end then too.
pub async fn serve(
    listener: TcpListener,
    mut state: HttpState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    state.shutdown = shutdown.clone();
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
