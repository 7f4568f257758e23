//! `herald-http`: Herald's HTTP side — live event streams and the subscription admin API.
//!
//! - [`stream`]: reads committed events from the store's outbox for one client, in order, in
//!   bounded batches, keeping only those the client may see. The outbox is the buffer: a slow
//!   client falls behind in the outbox, never in memory.
//! - [`sse`] (`GET /events/stream`) and [`ws`] (`GET /events/ws`) put that feed on the wire.
//! - [`auth`]: HTTP Basic with an account's password, or a bearer token from `[http] tokens`;
//!   failures are rate-limited per client IP with the servers' shared [`AuthLimiter`].
//! - [`admin`]: `/subscriptions…`, a JSON face on the dispatcher (administrators only).
//! - [`push`]: `/push/subscriptions`, each user's WebPush subscriptions for the `webpush` sink,
//!   and `/push/vapid`, the key pages subscribe with.
//! - [`dashboard`]: `GET /`, a live page for administrators over the streams and the admin
//!   API, its assets compiled in; cross-site requests that change something are refused.
//! - [`health`]: `/metrics` (Prometheus text; administrators unless `[http] metrics_public`),
//!   `/healthz` and `/readyz` (no authentication), for operators and orchestrators.
//! - [`config`]: the `[http]` section.
//!
//! [`serve`] (HTTP) and [`serve_tls`] (HTTPS) run the router on a listener until the shutdown token fires; live streams watch
//! the same token and end, so a graceful shutdown is not held up by clients that never hang up.

pub mod admin;
pub mod auth;
pub mod config;
pub mod dashboard;
mod error;
pub mod health;
mod messages;
pub mod push;
pub mod sse;
pub mod stream;
pub mod ws;

pub use config::{HttpConfig, LinkBase, TokenConfig};
pub use error::ApiError;
pub use health::Readiness;

use axum::Router;
use axum::routing::{get, post};
use herald_net::AuthLimiter;
use herald_notify::dispatch::Dispatcher;
use herald_store::Store;
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

/// Default bound on the concurrent live streams of one account.
pub const DEFAULT_MAX_STREAMS_PER_USER: usize = 10;

/// Default bound on concurrent connections per listener.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// Default bound on concurrent connections from one client address.
pub const DEFAULT_MAX_PER_CLIENT: usize = 64;

/// What a connection over the per-client bound reads before it is closed.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 5\r\n\
content-length: 0\r\nconnection: close\r\n\r\n";

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct HttpState {
    pub(crate) store: Store,
    pub(crate) dispatcher: Option<Arc<Dispatcher>>,
    pub(crate) sink_policy: Arc<admin::SinkPolicy>,
    pub(crate) tokens: Arc<auth::Tokens>,
    pub(crate) limiter: Arc<AuthLimiter>,
    /// Which accounts logged in from which addresses lately (one Login event per window).
    pub(crate) logins: Arc<auth::RecentLogins>,
    pub(crate) streams: Arc<Semaphore>,
    pub(crate) user_streams: Arc<herald_net::Slots<String>>,
    pub(crate) max_streams_per_user: usize,
    pub(crate) keepalive: Duration,
    pub(crate) shutdown: CancellationToken,
    pub(crate) content_links: Option<herald_notify::content_ref::ContentSigner>,
    /// Why no link is signed ([`LinkBase::refusal`]), for the API to answer a subscription
    /// whose content policy would need links.
    pub(crate) link_refusal: Option<Arc<str>>,
    pub(crate) limits: Limits,
    pub(crate) plaintext_auth: bool,
    pub(crate) readiness: Readiness,
    pub(crate) metrics_public: bool,
    /// The event log's hold: how far it has written and synced (a metric).
    pub(crate) event_log: Option<herald_store::retention::RetentionHold>,
}

/// Bounds on the connections of one listener (`[http]`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    max_connections: usize,
    max_per_client: usize,
    header_timeout: Duration,
    request_timeout: Duration,
}

/// How a request reached the server, as its handlers need to know.
#[derive(Debug, Clone, Copy)]
pub struct Transport {
    /// True on an HTTPS listener.
    pub tls: bool,
    /// The local address the client connected to (serverDomain and serverPort of its Login).
    pub local: std::net::SocketAddr,
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
            logins: Arc::default(),
            streams: Arc::new(Semaphore::new(
                config.max_streams.unwrap_or(DEFAULT_MAX_STREAMS).max(1),
            )),
            user_streams: Arc::default(),
            max_streams_per_user: config
                .max_streams_per_user
                .unwrap_or(DEFAULT_MAX_STREAMS_PER_USER)
                .max(1),
            keepalive: config
                .keepalive_secs
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_KEEPALIVE)
                .max(Duration::from_secs(1)),
            shutdown: CancellationToken::new(),
            content_links: None,
            link_refusal: None,
            limits: Limits {
                max_connections: config
                    .max_connections
                    .unwrap_or(DEFAULT_MAX_CONNECTIONS)
                    .max(1),
                max_per_client: config
                    .max_connections_per_ip
                    .unwrap_or(DEFAULT_MAX_PER_CLIENT)
                    .max(1),
                header_timeout: Duration::from_secs(
                    config.header_timeout_secs.unwrap_or(10).max(1),
                ),
                request_timeout: Duration::from_secs(
                    config.request_timeout_secs.unwrap_or(30).max(1),
                ),
            },
            plaintext_auth: config
                .plaintext_auth
                .unwrap_or_else(|| config.listen.iter().all(|a| a.ip().is_loopback())),
            readiness: Readiness::new(),
            metrics_public: config.metrics_public.unwrap_or(false),
            event_log: None,
        })
    }

    /// The readiness `/readyz` reports (not ready until set).
    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// Reports the event log's progress (`herald_event_log_cursor`) from its retention hold.
    pub fn with_event_log(mut self, hold: herald_store::retention::RetentionHold) -> HttpState {
        self.event_log = Some(hold);
        self
    }

    /// Serves `GET /messages` for links signed with `signer` (the dispatcher's content links).
    pub fn with_content_links(
        mut self,
        signer: herald_notify::content_ref::ContentSigner,
    ) -> HttpState {
        self.content_links = Some(signer);
        self
    }

    /// Records why message links are off: the API then refuses subscriptions that need them,
    /// saying so, instead of creating one whose events would silently lack their link.
    pub fn with_link_refusal(mut self, reason: &str) -> HttpState {
        self.link_refusal = Some(Arc::from(reason));
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
        .route("/", get(dashboard::page))
        .route("/dashboard/app.js", get(dashboard::script))
        .route("/dashboard/style.css", get(dashboard::style))
        .route("/dashboard/summary", get(dashboard::summary))
        .route("/events/stream", get(sse::stream))
        .route("/events/ws", get(ws::upgrade))
        .route("/messages", get(messages::get))
        .route("/metrics", get(health::metrics))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
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
        .route("/subscriptions/{name}/test", post(admin::send_test))
        .route(
            "/push/subscriptions",
            get(push::list).post(push::create).delete(push::delete),
        )
        .route("/push/vapid", get(push::vapid))
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn(dashboard::same_origin))
        .with_state(state)
}

/// Serves HTTP on `listener` until `shutdown` is cancelled; open streams end then too.
///
/// Connections go through [`herald_net::serve`]: at most `max_connections` at once (the rest
/// wait in the backlog, so a flood of idle connections cannot use up the process's file
/// descriptors and starve the other protocols), at most `max_connections_per_ip` from one
/// address (the rest get 503 and are closed). Each connection is HTTP/1.1 on hyper with a
/// deadline for the request head (`header_timeout_secs`: a client trickling headers is cut
/// off) and, per request, for the body and the answer's head (`request_timeout_secs`).
pub async fn serve(
    listener: TcpListener,
    state: HttpState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_with(listener, state, None, shutdown).await
}

/// Serves HTTPS on `listener` with `tls` (the `[tls]` certificate, reloaded in place on
/// SIGHUP), as [`serve`] serves HTTP: the same routes, limits and deadlines; the TLS handshake
/// has its own deadline in [`herald_net::serve`].
pub async fn serve_tls(
    listener: TcpListener,
    state: HttpState,
    tls: herald_net::TlsAcceptor,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_with(listener, state, Some(tls), shutdown).await
}

async fn serve_with(
    listener: TcpListener,
    mut state: HttpState,
    tls: Option<herald_net::TlsAcceptor>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    state.shutdown = shutdown.clone();
    let limits = state.limits;
    let app = router(state).layer(axum::middleware::from_fn_with_state(
        limits.request_timeout,
        request_deadline,
    ));
    let config = herald_net::ListenerConfig {
        max_per_client: Some(limits.max_per_client),
        refusal: REFUSAL,
        implicit_tls: tls,
        ..herald_net::ListenerConfig::new("http", limits.max_connections)
    };
    herald_net::serve(listener, config, shutdown, move |conn| {
        serve_connection(app.clone(), conn, limits.header_timeout)
    })
    .await;
    Ok(())
}

/// Answers 408 when a request's body and handling take longer than `deadline`. Streams are
/// not cut: their answer's head comes at once and the body follows outside this bound.
async fn request_deadline(
    axum::extract::State(deadline): axum::extract::State<Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match tokio::time::timeout(deadline, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::RequestTimeout.into_response(),
    }
}

/// Runs one HTTP/1.1 connection until it closes or the server stops.
async fn serve_connection(app: Router, conn: herald_net::Conn, header_timeout: Duration) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;
    let peer = conn.peer;
    let transport = Transport {
        tls: conn.stream.is_tls(),
        local: conn.local,
    };
    let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        request.extensions_mut().insert(transport);
        app.clone().oneshot(request.map(axum::body::Body::new))
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(conn.stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        r = connection.as_mut() => r,
        _ = conn.shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "http: connection ended with an error");
    }
}
