//! Operators' routes: `GET /metrics` (Prometheus text), `GET /healthz` and `GET /readyz`.
//!
//! - `/healthz` answers 200 whenever the process can answer at all: a liveness probe, so a
//!   supervisor restarts only a process that has stopped responding. No authentication.
//! - `/readyz` answers 200 once the binary has bound every listener and while the store
//!   accepts work (its writer running, a read answered); 503 otherwise — before start-up has
//!   finished, after a stop signal (so a load balancer drains Herald first), or when the store
//!   has failed. No authentication: it says nothing an unauthenticated client could not learn
//!   by connecting.
//! - `/metrics` serves [`herald_metrics::render`]: the process-wide instruments plus what a
//!   scrape reads from the store and the dispatcher (the outbox's bounds, each subscription's
//!   cursor, lag and parked events). It needs an administrator, as the admin API does (HTTP
//!   Basic or a bearer token of an admin account), because subscription names and event counts
//!   describe the installation; `[http] metrics_public = true` opens it to anyone who can reach
//!   the listener, for a Prometheus on a private network without credentials.
//!
//! A scrape costs a handful of indexed reads whatever the outbox's size: the outbox's size is
//! computed from its bounds (its ids are dense), and each subscription's lag from the time of
//! one event.

use crate::auth::Caller;
use crate::{ApiError, HttpState};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use herald_metrics::{OutboxGauges, Scrape, SubscriptionGauges};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the server has finished starting (every listener bound) and is not stopping. The
/// binary sets it; `/readyz` and the `herald_ready` metric read it.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Not ready yet.
    pub fn new() -> Readiness {
        Readiness::default()
    }

    /// Marks the server ready (or, when stopping, not).
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Release);
    }

    /// As last set.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// `GET /healthz`.
pub async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n".into())
}

/// Why the server is not ready, if it is not.
async fn not_ready(state: &HttpState) -> Option<&'static str> {
    if !state.readiness.get() {
        return Some("starting or stopping");
    }
    if !state.store.is_open() {
        return Some("the store is closed");
    }
    if state.store.last_event_id().await.is_err() {
        return Some("the store does not answer");
    }
    None
}

/// `GET /readyz`.
pub async fn readyz(State(state): State<HttpState>) -> Response {
    match not_ready(&state).await {
        None => text(StatusCode::OK, "ready\n".into()),
        Some(why) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<HttpState>, request: Request) -> Response {
    if !state.metrics_public {
        let (mut parts, _) = request.into_parts();
        match Caller::from_request_parts(&mut parts, &state).await {
            Ok(caller) => {
                if let Err(e) = caller.require_admin() {
                    return e.into_response();
                }
            }
            Err(e) => return e.into_response(),
        }
    }
    let scrape = scrape(&state).await;
    match herald_metrics::render(scrape) {
        Ok(body) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(herald_metrics::expose::CONTENT_TYPE),
            )],
            body,
        )
            .into_response(),
        Err(e) => ApiError::Internal(format!("metrics: {e}")).into_response(),
    }
}

/// How far subscriptions are behind the outbox — the events after a cursor and the age of the
/// first of them — read once for all of them; `/metrics` and the dashboard show the same.
pub(crate) struct Lag {
    head: u64,
    oldest: u64,
    times: HashMap<u64, Option<i64>>,
    now_ms: i64,
}

impl Lag {
    /// Reads the commit time of the next event each cursor waits for.
    pub(crate) async fn read(
        store: &herald_store::Store,
        bounds: Option<herald_store::OutboxBounds>,
        cursors: impl Iterator<Item = u64>,
    ) -> Result<Lag, herald_store::StoreError> {
        let mut lag = Lag::without_times(bounds);
        let mut wanted: Vec<u64> = cursors
            .filter(|c| *c < lag.head)
            .map(|c| lag.next(c))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        if !wanted.is_empty() {
            lag.times = store.event_times(wanted).await?.into_iter().collect();
        }
        Ok(lag)
    }

    /// Events behind only (ages unknown: 0).
    pub(crate) fn without_times(bounds: Option<herald_store::OutboxBounds>) -> Lag {
        let head = bounds.map_or(0, |b| b.head);
        Lag {
            head,
            oldest: bounds.and_then(|b| b.oldest).unwrap_or(head),
            times: HashMap::new(),
            now_ms: herald_store::now_ms(),
        }
    }

    /// The oldest event a cursor still has to deliver (a cursor left before the oldest event
    /// kept, by a replay, waits for that one).
    fn next(&self, cursor: u64) -> u64 {
        (cursor + 1).max(self.oldest)
    }

    /// (events behind, seconds the first of them has waited) for `cursor`.
    pub(crate) fn of(&self, cursor: u64) -> (u64, f64) {
        let events = self.head.saturating_sub(cursor);
        let seconds = if events == 0 {
            0.0
        } else {
            self.times
                .get(&self.next(cursor))
                .copied()
                .flatten()
                .map_or(0.0, |at| (self.now_ms - at).max(0) as f64 / 1000.0)
        };
        (events, seconds)
    }
}

/// What only a scrape can read: readiness, the outbox, the subscriptions. A part that cannot be
/// read is left out (and logged) rather than failing the whole scrape.
async fn scrape(state: &HttpState) -> Scrape {
    let store = &state.store;
    let ready = not_ready(state).await.is_none();
    let bounds = match store.outbox_bounds().await {
        Ok(b) => Some(b),
        Err(e) => {
            tracing::warn!("metrics: cannot read the outbox bounds: {e}");
            None
        }
    };
    let outbox = bounds.map(|b| OutboxGauges {
        head: b.head,
        oldest: b.oldest,
        events: b.events(),
    });
    let snapshot = match &state.dispatcher {
        Some(d) => d.snapshot().await,
        None => Vec::new(),
    };
    let lag = match Lag::read(store, bounds, snapshot.iter().map(|s| s.cursor)).await {
        Ok(lag) => lag,
        Err(e) => {
            tracing::warn!("metrics: cannot read event times: {e}");
            Lag::without_times(bounds)
        }
    };
    let parked: HashMap<String, u64> = if snapshot.is_empty() {
        HashMap::new()
    } else {
        match store.parked_counts().await {
            Ok(p) => p.into_iter().collect(),
            Err(e) => {
                tracing::warn!("metrics: cannot count parked events: {e}");
                HashMap::new()
            }
        }
    };
    let subscriptions = snapshot
        .into_iter()
        .map(|s| {
            let (lag_events, lag_seconds) = lag.of(s.cursor);
            SubscriptionGauges {
                parked_now: parked.get(&s.name).copied().unwrap_or(0),
                name: s.name,
                state: s.state,
                cursor: s.cursor,
                lag_events,
                lag_seconds,
                counters: s.metrics,
            }
        })
        .collect();
    Scrape {
        ready,
        outbox,
        subscriptions,
        event_log_cursor: state.event_log.as_ref().map(|h| h.position()),
    }
}
