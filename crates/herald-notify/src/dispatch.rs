//! The dispatcher: carries committed events from the outbox to every subscription, in order,
//! at least once (DESIGN §6).
//!
//! Each subscription runs as its own task:
//!
//! 1. read the events after its cursor (in batches of the sink's size), waking on the store's
//!    "outbox advanced" signal rather than polling;
//! 2. filter and shape each event ([`Subscription`]), encode it in the subscription's format;
//! 3. hand the batch to the sink; only on `Ok` move the cursor past it, in a store commit — so a
//!    crash at any instant re-sends at most the batch in flight, and never skips one. A sink that
//!    delivers event by event tells after a failure how many events it delivered; the cursor
//!    moves past those, and the retry carries the rest;
//! 4. on `Retry`, back off exponentially with jitter; once the batch has kept failing for
//!    `park_after_secs` since its first failed attempt, park it (dead letter) and move on, in
//!    one commit; on `Disable` (a webhook's 410), mark the subscription disabled until an
//!    operator resumes it. The time counts from the first failure, not from the events'
//!    commit: a backlog that waited through a pause or a stopped server is not parked at its
//!    first failure. The count is kept in memory, so it starts again after a restart, a pause
//!    or a replay.
//!
//! Events wait in the outbox, never in memory only. Subscriptions from the configuration file
//! are reconciled with the store at start (added, updated, removed); two of one name are refused
//! (a name is its cursor's key), and one named like a subscription created through the API
//! replaces it. Those created through the API persist until deleted; a name already taken is
//! refused. A new subscription starts at the current end of the outbox;
//! `replay` moves it back, and bumps a generation number so a batch in flight when the cursor
//! was moved does not overwrite the new cursor.
//!
//! Nodes sharing a PostgreSQL store ([`Options::lease`]) deliver each subscription one at a
//! time: a worker delivers only while its node holds the subscription's lease in the store
//! ([`Store::claim_delivery`]), renews it at half its time, and writes its cursor fenced by it
//! (a node that lost the lease cannot move the cursor). A worker without the lease asks again
//! every quarter of the lease time, so when the holder dies another node takes over within
//! the lease time and a quarter, from the committed cursor: nothing is skipped, and only the
//! batch in flight can be sent twice. On taking (or renewing) the lease the worker adopts the
//! stored record, so a pause, resume or replay made through another node's API reaches it
//! within half a lease time. A worker that stops gives its lease up.
//!
//! A subscription has one sink, owned by its worker: what needs the sink (replaying parked
//! events) is a request the worker carries out between two batches or while it waits, so two
//! sends to one receiver are never in flight at once (a second file sink on the same file, a
//! receiver seeing old and live requests interleaved).

use crate::config::SubscriptionConfig;
use crate::content_ref::ContentSigner;
use crate::format;
use crate::sink::{self, Outgoing, Sink, SinkError};
use crate::subscription::{ConfigError, Subscription};
use herald_events::{Event, EventType};
use herald_metrics::SubscriptionMetrics;
use herald_store::{DeliveryRecord, DeliveryStats, LeaseFence, SessionContext, Store, StoreError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Why a dispatcher operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The subscription's configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Its sink cannot be built.
    #[error("subscription `{name}`: {error}")]
    Sink {
        /// Subscription name.
        name: String,
        /// Why.
        error: sink::BuildError,
    },
    /// No subscription of that name.
    #[error("no subscription `{0}`")]
    NotFound(String),
    /// A subscription of that name exists.
    #[error("subscription `{0}` already exists")]
    Exists(String),
    /// A subscription from the configuration file cannot be changed through the API.
    #[error("subscription `{0}` comes from the configuration file; change it there")]
    FromConfig(String),
    /// A replay from an event retention has already removed.
    #[error(
        "event {id} has been pruned from the outbox by retention; the oldest event kept is {oldest}"
    )]
    Pruned {
        /// The event asked for.
        id: u64,
        /// The oldest event kept (0: none).
        oldest: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A subscription's state as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SubscriptionStatus {
    /// Name.
    pub name: String,
    /// `config` or `api`.
    pub origin: String,
    /// `active`, `failing` (sends keep failing and are retried), `paused` or `disabled`.
    pub state: &'static str,
    /// Why the receiver disabled it.
    pub disabled_reason: Option<String>,
    /// Last acknowledged event id.
    pub cursor: u64,
    /// Since when sends have kept failing (RFC 3339), while failing.
    pub failing_since: Option<String>,
    /// The latest delivery error, while failing.
    pub last_error: Option<String>,
    /// Events the sink acknowledged (kept across restarts, like the next two).
    pub delivered: u64,
    /// Failed sends that were tried again.
    pub retries: u64,
    /// Failed sends.
    pub failures: u64,
    /// Parked events.
    pub parked: usize,
    /// The configuration, without its secrets ([`SubscriptionConfig::redacted`]).
    pub config: SubscriptionConfig,
}

/// A subscription as a metrics scrape sees it: cheap to take (no store read).
#[derive(Debug, Clone)]
pub struct SubscriptionSnapshot {
    /// Name.
    pub name: String,
    /// `active`, `failing`, `paused` or `disabled`.
    pub state: &'static str,
    /// Last acknowledged event id.
    pub cursor: u64,
    /// Its delivery counters.
    pub metrics: Arc<SubscriptionMetrics>,
}

/// A parked event as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Parked {
    /// `vnd.herald.id`.
    pub id: u64,
    /// The last delivery error.
    pub reason: String,
    /// When it was parked (ms since the epoch).
    pub parked_ms: i64,
    /// The event, if it is still in the outbox.
    pub event: Option<serde_json::Value>,
}

#[derive(Debug)]
struct State {
    /// Another node of the cluster delivers this subscription now (see [`Options::lease`]).
    standby: bool,
    paused: bool,
    disabled: Option<String>,
    cursor: u64,
    generation: u64,
    /// Counters and the current failure, as last saved (or about to be) in the store.
    stats: DeliveryStats,
}

struct Running {
    origin: String,
    subscription: Subscription,
    state: Arc<Mutex<State>>,
    /// Delivery counters, recorded by the worker and read by scrapes.
    metrics: Arc<SubscriptionMetrics>,
    /// Held while a change of delivery state is written to the store, by the worker (cursor,
    /// parking, disabling) and by control operations alike, so memory and store agree in order.
    ops: Arc<tokio::sync::Mutex<()>>,
    wake: Arc<Notify>,
    /// Requests the worker carries out with its sink (see [`Control`]).
    control: mpsc::Sender<Control>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// A request that needs the subscription's sink, so its worker carries it out between two
/// batches: a subscription has one sink, and never two sends in flight.
enum Control {
    /// Send the parked events again; answer how many were delivered.
    ReplayParked {
        reply: oneshot::Sender<Result<usize, DispatchError>>,
    },
    /// Send one [`TEST_EVENT`] about `user`; answer once the sink has it.
    SendTest {
        user: String,
        reply: oneshot::Sender<Result<(), DispatchError>>,
    },
}

/// The type of the event [`Dispatcher::send_test`] sends. It is never committed: its
/// `vnd.herald.id` is 0, which no outbox event has, so a receiver can tell it apart.
pub const TEST_EVENT: &str = "vnd.herald.test";

/// Control requests waiting for a worker; more make the caller wait.
const CONTROL_QUEUE: usize = 8;

/// Builds a sink from its configuration ([`sink::build`] in production; tests inject sinks
/// whose failures they control).
pub type SinkFactory = Arc<
    dyn Fn(
            crate::config::SinkConfig,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<Box<dyn Sink>, sink::BuildError>> + Send>,
        > + Send
        + Sync,
>;

/// The factory without a store: every sink but `webpush`.
pub fn default_sinks() -> SinkFactory {
    Arc::new(|config| Box::pin(async move { sink::build(&config, None).await }))
}

/// The production factory: every sink, `webpush` reading push subscriptions from `store`.
pub fn store_sinks(store: Store) -> SinkFactory {
    Arc::new(move |config| {
        let store = store.clone();
        Box::pin(async move { sink::build(&config, Some(&store)).await })
    })
}

/// Computes a message's IMAP BODYSTRUCTURE from its raw bytes (`None`: not a message it can
/// read). The IMAP server owns MIME parsing; the binary hands its function to the dispatcher so
/// events and FETCH describe a message the same way, and this crate needs no MIME code.
pub type BodyStructureFn = Arc<dyn Fn(&[u8]) -> Option<String> + Send + Sync>;

/// How the dispatcher builds sinks and references.
#[derive(Clone)]
pub struct Options {
    /// Builds sinks from their configuration.
    pub sinks: SinkFactory,
    /// Signs links to messages a content policy leaves out; without it no link is given.
    pub content_links: Option<ContentSigner>,
    /// Fills `bodyStructure` on MessageNew/MessageAppend for subscriptions whose `params`
    /// name it; without it the parameter is never set.
    pub body_structure: Option<BodyStructureFn>,
    /// Deliver each subscription only while this node holds its lease (nodes sharing a
    /// store); `None`: this process is the only one delivering.
    pub lease: Option<LeaseOptions>,
}

/// How a node of a cluster leases the subscriptions it delivers.
#[derive(Debug, Clone)]
pub struct LeaseOptions {
    /// This node's name, unique in the cluster.
    pub node: String,
    /// How long a lease lasts without renewal: a dead node's subscriptions move to another
    /// node within this time and a quarter.
    pub ttl: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sinks: default_sinks(),
            content_links: None,
            body_structure: None,
            lease: None,
        }
    }
}

/// A worker's lease of its subscription.
struct Lease {
    options: LeaseOptions,
    /// Until when this node holds it, as far as it knows; `None`: it does not.
    held_until: Mutex<Option<Instant>>,
}

/// What shaping needs besides the subscription: the link signer and the BODYSTRUCTURE function.
#[derive(Clone, Default)]
struct Shapers {
    links: Option<ContentSigner>,
    body_structure: Option<BodyStructureFn>,
}

/// Runs every subscription.
pub struct Dispatcher {
    store: Store,
    sinks: SinkFactory,
    shapers: Shapers,
    lease: Option<LeaseOptions>,
    running: tokio::sync::Mutex<BTreeMap<String, Running>>,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").finish_non_exhaustive()
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

fn lock_lease(lease: &Lease) -> std::sync::MutexGuard<'_, Option<Instant>> {
    lease.held_until.lock().unwrap_or_else(|p| p.into_inner())
}

fn state_name(s: &State) -> &'static str {
    if s.disabled.is_some() {
        "disabled"
    } else if s.paused {
        "paused"
    } else if s.standby {
        "standby"
    } else if s.stats.failing_since_ms.is_some() {
        "failing"
    } else {
        "active"
    }
}

/// A time in ms since the epoch as RFC 3339 (UTC, milliseconds).
fn rfc3339_ms(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

fn to_json(config: &SubscriptionConfig) -> String {
    // A derived Serialize of strings, numbers and enums: cannot fail.
    serde_json::to_string(config).expect("a subscription configuration always encodes")
}

impl Dispatcher {
    /// Reconciles the configured subscriptions with the store and starts every subscription.
    pub async fn start(
        store: Store,
        configured: Vec<SubscriptionConfig>,
        shutdown: CancellationToken,
    ) -> Result<Arc<Dispatcher>, DispatchError> {
        Dispatcher::start_with(store, configured, shutdown, Options::default()).await
    }

    /// [`Dispatcher::start`] with chosen options.
    pub async fn start_with(
        store: Store,
        configured: Vec<SubscriptionConfig>,
        shutdown: CancellationToken,
        options: Options,
    ) -> Result<Arc<Dispatcher>, DispatchError> {
        // Two tables of one name would run two workers on one cursor.
        crate::subscription::check_configured(&configured)?;
        let mut compiled = Vec::new();
        for c in configured {
            compiled.push(Subscription::compile(c)?);
        }
        let records: BTreeMap<String, DeliveryRecord> = store
            .deliveries()
            .await?
            .into_iter()
            .map(|r| (r.name.clone(), r))
            .collect();
        let end = store.last_event_id().await?;
        let dispatcher = Arc::new(Dispatcher {
            store: store.clone(),
            sinks: options.sinks,
            shapers: Shapers {
                links: options.content_links,
                body_structure: options.body_structure,
            },
            lease: options.lease,
            running: tokio::sync::Mutex::new(BTreeMap::new()),
            shutdown,
        });
        let configured_names: Vec<String> = compiled.iter().map(|s| s.name().to_owned()).collect();
        for sub in compiled {
            if records
                .get(sub.name())
                .is_some_and(|r| r.origin != "config")
            {
                tracing::warn!(
                    subscription = %sub.name(),
                    "the configuration file now defines a subscription created through the API; the configured one replaces it"
                );
            }
            let record = match records.get(sub.name()) {
                Some(r) => DeliveryRecord {
                    config: to_json(&sub.config),
                    origin: "config".into(),
                    ..r.clone()
                },
                None => DeliveryRecord {
                    name: sub.name().to_owned(),
                    config: to_json(&sub.config),
                    origin: "config".into(),
                    paused: false,
                    disabled_reason: None,
                    cursor: end,
                    stats: DeliveryStats::default(),
                },
            };
            store.put_delivery(record.clone()).await?;
            let mut running = dispatcher.running.lock().await;
            dispatcher.launch(&mut running, sub, &record).await?;
        }
        for (name, record) in records {
            if configured_names.contains(&name) {
                continue;
            }
            if record.origin == "config" {
                // Removed from the configuration file: its state goes too.
                store.delete_delivery(&name).await?;
                tracing::info!(subscription = %name, "removed (no longer configured)");
                continue;
            }
            let config: SubscriptionConfig = match serde_json::from_str(&record.config) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(subscription = %name, "stored configuration unreadable: {e}");
                    continue;
                }
            };
            match Subscription::compile(config) {
                Ok(sub) => {
                    let mut running = dispatcher.running.lock().await;
                    // One stored subscription whose sink cannot be built (a directory gone, a
                    // broker feature not compiled in) must not keep the server from starting.
                    if let Err(e) = dispatcher.launch(&mut running, sub, &record).await {
                        tracing::error!(subscription = %name, "not started: {e}");
                    }
                }
                Err(e) => {
                    tracing::error!(subscription = %name, "stored configuration invalid: {e}")
                }
            }
        }
        Ok(dispatcher)
    }

    /// Builds the sink and starts the worker; the caller holds the `running` map, so a name is
    /// checked and inserted atomically.
    async fn launch(
        &self,
        running: &mut BTreeMap<String, Running>,
        sub: Subscription,
        record: &DeliveryRecord,
    ) -> Result<(), DispatchError> {
        let sink = (self.sinks)(sub.config.sink.clone())
            .await
            .map_err(|error| DispatchError::Sink {
                name: sub.name().to_owned(),
                error,
            })?;
        let state = Arc::new(Mutex::new(State {
            // With leases, nothing is delivered here until this node holds one.
            standby: self.lease.is_some(),
            paused: record.paused,
            disabled: record.disabled_reason.clone(),
            cursor: record.cursor,
            generation: 0,
            stats: record.stats.clone(),
        }));
        let wake = Arc::new(Notify::new());
        let ops = Arc::new(tokio::sync::Mutex::new(()));
        let metrics = Arc::new(SubscriptionMetrics::default());
        let (control, requests) = mpsc::channel(CONTROL_QUEUE);
        let stop = self.shutdown.child_token();
        let worker = Worker {
            store: self.store.clone(),
            shapers: self.shapers.clone(),
            sub: sub.clone(),
            state: Arc::clone(&state),
            ops: Arc::clone(&ops),
            wake: Arc::clone(&wake),
            stop: stop.clone(),
            metrics: Arc::clone(&metrics),
            lease: self.lease.clone().map(|options| Lease {
                options,
                held_until: Mutex::new(None),
            }),
        };
        let task = tokio::spawn(worker.run(Owned { sink, requests }));
        tracing::info!(subscription = %sub.name(), cursor = record.cursor, "delivering");
        running.insert(
            sub.name().to_owned(),
            Running {
                origin: record.origin.clone(),
                subscription: sub,
                state,
                metrics,
                ops,
                wake,
                control,
                stop,
                task,
            },
        );
        Ok(())
    }

    /// Waits, at most `limit`, until every worker has stopped after the shutdown token was
    /// cancelled: a node of a cluster gives its leases up as its workers stop, which needs the
    /// store still open.
    pub async fn stopped(&self, limit: Duration) {
        let tasks: Vec<tokio::task::JoinHandle<()>> = {
            let mut running = self.running.lock().await;
            std::mem::take(&mut *running)
                .into_values()
                .map(|r| r.task)
                .collect()
        };
        let all = async {
            for t in tasks {
                let _ = t.await;
            }
        };
        if tokio::time::timeout(limit, all).await.is_err() {
            tracing::warn!("subscriptions did not stop within {limit:?}");
        }
    }

    /// Every subscription's state, cursor and delivery counters, for a metrics scrape.
    pub async fn snapshot(&self) -> Vec<SubscriptionSnapshot> {
        let running = self.running.lock().await;
        running
            .iter()
            .map(|(name, r)| {
                let s = lock(&r.state);
                SubscriptionSnapshot {
                    name: name.clone(),
                    state: state_name(&s),
                    cursor: s.cursor,
                    metrics: Arc::clone(&r.metrics),
                }
            })
            .collect()
    }

    async fn status_of(
        &self,
        name: &str,
        r: &Running,
    ) -> Result<SubscriptionStatus, DispatchError> {
        let parked = self.store.parked_events(name).await?.len();
        let s = lock(&r.state);
        Ok(SubscriptionStatus {
            name: name.to_owned(),
            origin: r.origin.clone(),
            state: state_name(&s),
            disabled_reason: s.disabled.clone(),
            cursor: s.cursor,
            failing_since: s.stats.failing_since_ms.and_then(rfc3339_ms),
            last_error: s.stats.last_error.clone(),
            delivered: s.stats.delivered,
            retries: s.stats.retries,
            failures: s.stats.failures,
            parked,
            config: r.subscription.config.redacted(),
        })
    }

    /// Every subscription.
    pub async fn list(&self) -> Result<Vec<SubscriptionStatus>, DispatchError> {
        let running = self.running.lock().await;
        let mut out = Vec::with_capacity(running.len());
        for (name, r) in running.iter() {
            out.push(self.status_of(name, r).await?);
        }
        Ok(out)
    }

    /// One subscription.
    pub async fn get(&self, name: &str) -> Result<SubscriptionStatus, DispatchError> {
        let running = self.running.lock().await;
        let r = running
            .get(name)
            .ok_or_else(|| DispatchError::NotFound(name.to_owned()))?;
        self.status_of(name, r).await
    }

    /// Creates a subscription at run time (it persists across restarts); it starts at the
    /// current end of the outbox.
    pub async fn create(
        &self,
        config: SubscriptionConfig,
    ) -> Result<SubscriptionStatus, DispatchError> {
        crate::subscription::check_name(&config.name)?;
        let sub = Subscription::compile(config)?;
        let name = sub.name().to_owned();
        {
            // Held from the name check to the insert: two creates of one name cannot both run.
            let mut running = self.running.lock().await;
            if running.contains_key(&name) {
                return Err(DispatchError::Exists(name));
            }
            let record = DeliveryRecord {
                name: name.clone(),
                config: to_json(&sub.config),
                origin: "api".into(),
                paused: false,
                disabled_reason: None,
                cursor: self.store.last_event_id().await?,
                stats: DeliveryStats::default(),
            };
            // Check the sink first (a bad one leaves nothing behind), persist, then start: the
            // worker's first cursor write finds its record.
            (self.sinks)(sub.config.sink.clone())
                .await
                .map_err(|error| DispatchError::Sink {
                    name: name.clone(),
                    error,
                })?;
            self.store.put_delivery(record.clone()).await?;
            self.launch(&mut running, sub, &record).await?;
        }
        self.get(&name).await
    }

    /// Deletes a subscription created through the API, with its cursor and parked events.
    pub async fn delete(&self, name: &str) -> Result<(), DispatchError> {
        let mut running = self.running.lock().await;
        let r = running
            .get(name)
            .ok_or_else(|| DispatchError::NotFound(name.to_owned()))?;
        if r.origin == "config" {
            return Err(DispatchError::FromConfig(name.to_owned()));
        }
        let Some(r) = running.remove(name) else {
            return Err(DispatchError::NotFound(name.to_owned()));
        };
        drop(running);
        r.stop.cancel();
        r.wake.notify_one();
        // Wait for the worker, so no late cursor write can touch a subscription re-created
        // under the same name.
        let _ = r.task.await;
        self.store.delete_delivery(name).await?;
        Ok(())
    }

    async fn set_state(
        &self,
        name: &str,
        f: impl FnOnce(&mut State),
    ) -> Result<SubscriptionStatus, DispatchError> {
        {
            let running = self.running.lock().await;
            let r = running
                .get(name)
                .ok_or_else(|| DispatchError::NotFound(name.to_owned()))?;
            let _ops = r.ops.lock().await;
            // Pausing does not move the cursor: a batch in flight that the receiver accepts is
            // still acknowledged, so nothing is sent twice after a resume.
            let (paused, disabled) = {
                let mut s = lock(&r.state);
                f(&mut s);
                (s.paused, s.disabled.clone())
            };
            self.store
                .set_delivery_state(name, paused, disabled)
                .await?;
            r.wake.notify_one();
        }
        self.get(name).await
    }

    /// Stops delivering until resumed (events keep accumulating in the outbox).
    pub async fn pause(&self, name: &str) -> Result<SubscriptionStatus, DispatchError> {
        self.set_state(name, |s| s.paused = true).await
    }

    /// Resumes a paused or disabled subscription where its cursor is.
    pub async fn resume(&self, name: &str) -> Result<SubscriptionStatus, DispatchError> {
        self.set_state(name, |s| {
            s.paused = false;
            s.disabled = None;
        })
        .await
    }

    /// Re-delivers from event `from_id` on (inclusive).
    pub async fn replay(
        &self,
        name: &str,
        from_id: u64,
    ) -> Result<SubscriptionStatus, DispatchError> {
        let cursor = from_id.saturating_sub(1);
        let bounds = self.store.outbox_bounds().await?;
        if bounds.pruned(from_id) {
            return Err(DispatchError::Pruned {
                id: from_id,
                oldest: bounds.oldest.unwrap_or(0),
            });
        }
        {
            let running = self.running.lock().await;
            let r = running
                .get(name)
                .ok_or_else(|| DispatchError::NotFound(name.to_owned()))?;
            let _ops = r.ops.lock().await;
            self.store.set_delivery_cursor(name, cursor).await?;
            {
                let mut s = lock(&r.state);
                s.cursor = cursor;
                // A batch in flight must not overwrite the moved cursor.
                s.generation += 1;
            }
            r.wake.notify_one();
        }
        self.get(name).await
    }

    /// A subscription's parked events, with their JSON when still in the outbox.
    pub async fn parked(&self, name: &str) -> Result<Vec<Parked>, DispatchError> {
        if !self.running.lock().await.contains_key(name) {
            return Err(DispatchError::NotFound(name.to_owned()));
        }
        let parked = self.store.parked_events(name).await?;
        let events: BTreeMap<u64, String> = self
            .store
            .events_by_id(parked.iter().map(|p| p.event_id).collect())
            .await?
            .into_iter()
            .map(|e| (e.id, e.json))
            .collect();
        Ok(parked
            .into_iter()
            .map(|p| Parked {
                event: events
                    .get(&p.event_id)
                    .and_then(|j| serde_json::from_str(j).ok()),
                id: p.event_id,
                reason: p.reason,
                parked_ms: p.parked_ms,
            })
            .collect())
    }

    /// Tries the parked events again, in order, through the subscription's shaping and its
    /// sink; those delivered leave the parked list. Returns how many were delivered.
    ///
    /// The subscription's worker sends them, between two live batches (or while it waits), so
    /// they go through the one sink the subscription has and never while a live batch is in
    /// flight. The call waits for that: at most one live batch, or a retry of it.
    pub async fn replay_parked(&self, name: &str) -> Result<usize, DispatchError> {
        self.ask_worker(name, |reply| Control::ReplayParked { reply })
            .await
    }

    /// Sends `request` to the subscription's worker and waits for its answer. The worker is
    /// gone only if the subscription was deleted or the dispatcher stopped: NotFound then.
    async fn ask_worker<T>(
        &self,
        name: &str,
        request: impl FnOnce(oneshot::Sender<Result<T, DispatchError>>) -> Control,
    ) -> Result<T, DispatchError> {
        let control = {
            let running = self.running.lock().await;
            running
                .get(name)
                .ok_or_else(|| DispatchError::NotFound(name.to_owned()))?
                .control
                .clone()
        };
        let gone = || DispatchError::NotFound(name.to_owned());
        let (reply, answer) = oneshot::channel();
        control.send(request(reply)).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// Sends one [`TEST_EVENT`] about `user` straight to the subscription's sink, paused or
    /// not, bypassing its filters and its cursor: an operator's check that the receiver is
    /// reachable. Waits until the sink took it (or refused: a `Sink` error naming why).
    pub async fn send_test(&self, name: &str, user: &str) -> Result<(), DispatchError> {
        self.ask_worker(name, |reply| Control::SendTest {
            user: user.to_owned(),
            reply,
        })
        .await
    }
}

/// Filters, shapes and encodes stored events for a subscription.
async fn prepare(
    store: &Store,
    shapers: &Shapers,
    sub: &Subscription,
    stored: &[herald_store::StoredEvent],
) -> Vec<Outgoing> {
    let mut out = Vec::new();
    for row in stored {
        let event = match Event::from_json(&row.json) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(id = row.id, "undecodable outbox row skipped: {e}");
                continue;
            }
        };
        let Some(mut event) = sub.filter(event) else {
            continue;
        };
        // The message is read only for a subscription that wants its content or its
        // structure, so deliveries nobody asked either of cost nothing more.
        let structure = shapers
            .body_structure
            .as_ref()
            .filter(|_| sub.wants_body_structure(&event));
        let wants_content = sub.wants_content(&event);
        if wants_content || structure.is_some() {
            let message = read_content(store, &event).await;
            if let (Some(compute), Some(raw)) = (structure, message.as_deref()) {
                event.body_structure = compute(raw);
            }
            if wants_content {
                let link = shapers
                    .links
                    .as_ref()
                    .zip(event.uri.as_ref())
                    .map(|(signer, uri)| signer.reference(uri, herald_store::now_ms() / 1000));
                let decision = sub.shape_content(&mut event, message.as_deref(), link.as_deref());
                // Only for a message that is still there (a replayed event may name one gone).
                if sub.wants_urlauth(&decision)
                    && message.is_some()
                    && let Some(url) = urlauth_reference(store, sub, &event).await
                {
                    sub.add_urlauth(&mut event, &url);
                }
            }
        }
        sub.shape_params(&mut event);
        out.push(Outgoing {
            id: row.id,
            event_type: format::event_type(&event, sub.format()),
            user: event.user.clone(),
            body: format::encode(&event, sub.format()),
        });
    }
    out
}

/// A URLAUTH-authorized IMAP URL of the event's message (`vnd.herald.urlauth`), signed with
/// the owner's mailbox access key, which the store creates on first use; `None` (logged) when
/// the store cannot give one.
async fn urlauth_reference(store: &Store, sub: &Subscription, event: &Event) -> Option<String> {
    let uri = event.uri.as_ref()?;
    let owner = uri.user.clone().or_else(|| event.user.clone())?;
    let mailbox = uri.mailbox.as_deref()?;
    if uri.user.is_none() && herald_store::acl::url_mailbox(uri).is_some() {
        // A "Shared" namespace mailbox has no owner whose access key could sign the URL
        // (RFC 4467 keys are per user); the event keeps its other references.
        tracing::debug!(
            subscription = sub.name(),
            "no URLAUTH reference for a shared-namespace mailbox"
        );
        return None;
    }
    let ctx = SessionContext::user(herald_store::PROCESS, owner.clone());
    let key = match store.access_key(&ctx, mailbox).await {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(subscription = sub.name(), "no URLAUTH reference: {e}");
            return None;
        }
    };
    let expire = sub.urlauth_lifetime().map(|ttl| {
        herald_store::now_ms().saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX))
    });
    crate::content_ref::urlauth_url(uri, &owner, &key, expire)
}

/// The message a MessageNew/MessageAppend event names, if it is still there.
async fn read_content(store: &Store, event: &Event) -> Option<Vec<u8>> {
    if !matches!(
        event.event,
        EventType::MessageNew | EventType::MessageAppend
    ) {
        return None;
    }
    let uri = event.uri.as_ref()?;
    // Read as the mailbox's owner (the "Shared" namespace's pseudo-account for an owner-less
    // URL): the dispatcher is the store's own reader, not the user who acted.
    let (owner, mailbox) = match herald_store::acl::url_mailbox(uri) {
        Some((owner, mailbox)) => (owner.to_owned(), mailbox),
        None => (event.user.clone()?, uri.mailbox.as_deref()?),
    };
    let ctx = SessionContext::user(herald_store::PROCESS, owner);
    // A replayed event may name a mailbox deleted and recreated since: same name and UID, another
    // message. Only the mailbox the event was about can give its content.
    let current = store.mailbox(&ctx, mailbox).await.ok()?;
    if Some(current.uidvalidity) != uri.uidvalidity {
        return None;
    }
    store.read_message(&ctx, mailbox, uri.uid?).await.ok()
}

/// One subscription's delivery loop. The sink is passed alongside rather than held, so the
/// worker is `Sync` and can be borrowed across awaits while the sink is borrowed mutably.
struct Worker {
    store: Store,
    shapers: Shapers,
    sub: Subscription,
    state: Arc<Mutex<State>>,
    ops: Arc<tokio::sync::Mutex<()>>,
    wake: Arc<Notify>,
    stop: CancellationToken,
    metrics: Arc<SubscriptionMetrics>,
    lease: Option<Lease>,
}

/// What only the worker touches: the subscription's sink, and the requests that need it.
struct Owned {
    sink: Box<dyn Sink>,
    requests: mpsc::Receiver<Control>,
}

/// Exponential backoff with ±50 % jitter, so many subscriptions of one receiver do not retry in
/// lock step.
fn backoff(policy: &crate::config::RetryPolicy, attempt: u32) -> Duration {
    let base = policy
        .initial_ms
        .max(1)
        .saturating_mul(1u64 << attempt.min(20))
        .min(policy.max_ms.max(policy.initial_ms.max(1)));
    let mut seed = [0u8; 2];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed);
    let jitter = u64::from(u16::from_le_bytes(seed)) % (base / 2 + 1);
    Duration::from_millis(base / 2 + jitter + base / 4)
}

impl Worker {
    async fn run(self, own: Owned) {
        self.run_loop(own).await;
        if let Some(lease) = &self.lease
            && lock_lease(lease).take().is_some()
        {
            // Another node takes over at once instead of when the lease expires.
            let name = self.sub.name();
            if let Err(e) = self.store.release_delivery(name, &lease.options.node).await {
                tracing::warn!(subscription = %name, "cannot give the lease up: {e}");
            }
        }
    }

    /// How long a wait may last before the lease needs renewing (`max` without a lease).
    fn wait_limit(&self, max: Duration) -> Duration {
        match &self.lease {
            Some(l) => max.min(l.options.ttl / 4),
            None => max,
        }
    }

    /// True when this node may deliver now: no lease needed, or it holds the subscription's
    /// lease (taken or renewed here when less than half its time is left). Taking or renewing
    /// adopts the stored record: the cursor, state and counters another node or an operator
    /// wrote.
    async fn hold_lease(&self) -> bool {
        let Some(lease) = &self.lease else {
            return true;
        };
        let half = lease.options.ttl / 2;
        if lock_lease(lease)
            .is_some_and(|until| until.saturating_duration_since(Instant::now()) > half)
        {
            return true;
        }
        let name = self.sub.name();
        let _ops = self.ops.lock().await;
        let asked = Instant::now();
        match self
            .store
            .claim_delivery(name, &lease.options.node, lease.options.ttl)
            .await
        {
            Ok(Some(record)) => {
                let was_held = lock_lease(lease)
                    .replace(asked + lease.options.ttl)
                    .is_some();
                let mut s = lock(&self.state);
                if !was_held || s.cursor != record.cursor {
                    tracing::info!(subscription = %name, cursor = record.cursor, node = %lease.options.node, "delivering from this node");
                    s.generation += 1;
                }
                s.standby = false;
                s.cursor = record.cursor;
                s.paused = record.paused;
                s.disabled = record.disabled_reason;
                s.stats = record.stats;
                true
            }
            Ok(None) => {
                if self.forget_lease(lease) {
                    tracing::warn!(subscription = %name, "another node delivers this subscription now");
                }
                false
            }
            Err(e) => {
                tracing::error!(subscription = %name, "cannot claim the subscription's lease: {e}");
                self.forget_lease(lease);
                false
            }
        }
    }

    /// The fence of a delivery-state write: this node's lease and the cursor it holds.
    fn fence(&self) -> Option<LeaseFence> {
        self.lease.as_ref().map(|l| LeaseFence {
            node: l.options.node.clone(),
            cursor: lock(&self.state).cursor,
        })
    }

    /// This node no longer holds the lease: it delivers nothing (`standby`) until it takes it
    /// again. True when it held it until now.
    fn forget_lease(&self, lease: &Lease) -> bool {
        lock(&self.state).standby = true;
        lock_lease(lease).take().is_some()
    }

    /// After a fenced write was refused: the lease (or the cursor) moved elsewhere; the next
    /// turn claims again and adopts what is stored.
    fn lost_lease(&self, name: &str) {
        if let Some(lease) = &self.lease {
            self.forget_lease(lease);
            tracing::warn!(subscription = %name, "the lease or the cursor moved elsewhere; not writing");
        }
    }

    async fn run_loop(&self, mut own: Owned) {
        let name = self.sub.name().to_owned();
        loop {
            if self.stop.is_cancelled() {
                return;
            }
            // Between two batches: the sink is idle.
            while let Ok(request) = own.requests.try_recv() {
                self.handle(request, own.sink.as_mut()).await;
            }
            if !self.hold_lease().await {
                let wait = self.wait_limit(Duration::from_secs(30));
                if self.sleep(wait, &mut own).await {
                    return;
                }
                continue;
            }
            let (paused, cursor, generation) = {
                let s = lock(&self.state);
                (s.paused || s.disabled.is_some(), s.cursor, s.generation)
            };
            if paused {
                tokio::select! {
                    _ = self.stop.cancelled() => return,
                    _ = self.wake.notified() => continue,
                    Some(request) = own.requests.recv() => {
                        self.handle(request, own.sink.as_mut()).await;
                        continue;
                    }
                    // Only with a lease: it is renewed even while paused.
                    _ = tokio::time::sleep(self.wait_limit(Duration::MAX)), if self.lease.is_some() => continue,
                }
            }
            let limit = own.sink.max_batch().clamp(1, 5000);
            let stored = match self.store.events_after(cursor, limit).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(subscription = %name, "cannot read the outbox: {e}");
                    if self.sleep(Duration::from_secs(1), &mut own).await {
                        return;
                    }
                    continue;
                }
            };
            let Some(last) = stored.last().map(|e| e.id) else {
                tokio::select! {
                    _ = self.stop.cancelled() => return,
                    _ = self.wake.notified() => {}
                    Some(request) = own.requests.recv() => {
                        self.handle(request, own.sink.as_mut()).await;
                    }
                    r = self.store.wait_for_events(cursor, self.wait_limit(Duration::from_secs(30))) => match r {
                        Err(StoreError::Closed) => return,
                        Err(e) => {
                            // A passing store error must not end delivery for good.
                            tracing::error!(subscription = %name, "cannot watch the outbox: {e}");
                            if self.sleep(Duration::from_secs(1), &mut own).await {
                                return;
                            }
                        }
                        Ok(_) => {}
                    },
                }
                continue;
            };
            let batch = prepare(&self.store, &self.shapers, &self.sub, &stored).await;
            let delivered = if batch.is_empty() {
                0
            } else {
                match self.deliver(&mut own, &name, &batch, generation).await {
                    Some(n) => n,
                    None => continue,
                }
            };
            self.advance(&name, generation, last, delivered).await;
        }
    }

    /// Waits, unless stopped (true) or woken by a control change. Requests that arrive meanwhile
    /// are carried out (the sink is idle) without cutting the wait short.
    async fn sleep(&self, d: Duration, own: &mut Owned) -> bool {
        let until = tokio::time::Instant::now() + d;
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return true,
                _ = self.wake.notified() => return false,
                _ = tokio::time::sleep_until(until) => return false,
                Some(request) = own.requests.recv() => {
                    self.handle(request, own.sink.as_mut()).await;
                }
            }
        }
    }

    /// Carries out a control request with the idle sink.
    async fn handle(&self, request: Control, sink: &mut dyn Sink) {
        match request {
            Control::ReplayParked { reply } => {
                let result = self.replay_parked(sink).await;
                // The caller may have gone away; the replay stands.
                let _ = reply.send(result);
            }
            Control::SendTest { user, reply } => {
                let _ = reply.send(self.send_test(sink, user).await);
            }
        }
    }

    /// Encodes a [`TEST_EVENT`] in the subscription's format and sends it once, no retry.
    async fn send_test(&self, sink: &mut dyn Sink, user: String) -> Result<(), DispatchError> {
        let mut event = Event::new(EventType::Vendor(TEST_EVENT.to_owned()));
        event.timestamp = Some(herald_events::Timestamp::now());
        event.service = Some("http".to_owned());
        event.user = Some(user);
        event.set_herald_id(0);
        self.sub.shape_params(&mut event);
        let outgoing = Outgoing {
            id: 0,
            event_type: format::event_type(&event, self.sub.format()),
            user: event.user.clone(),
            body: format::encode(&event, self.sub.format()),
        };
        sink.send(std::slice::from_ref(&outgoing))
            .await
            .map_err(|e| DispatchError::Sink {
                name: self.sub.name().to_owned(),
                error: sink::BuildError::Invalid(e.to_string()),
            })
    }

    /// Sends the parked events again, in order and in batches of the sink's size; those
    /// delivered, filtered out or gone from the outbox leave the parked list. A failure leaves
    /// all of them parked, for another replay (at least once).
    async fn replay_parked(&self, sink: &mut dyn Sink) -> Result<usize, DispatchError> {
        let name = self.sub.name();
        let ids: Vec<u64> = self
            .store
            .parked_events(name)
            .await?
            .into_iter()
            .map(|p| p.event_id)
            .collect();
        if ids.is_empty() {
            return Ok(0);
        }
        let mut stored = self.store.events_by_id(ids.clone()).await?;
        stored.sort_unstable_by_key(|e| e.id);
        let batch = prepare(&self.store, &self.shapers, &self.sub, &stored).await;
        for chunk in batch.chunks(sink.max_batch().clamp(1, 5000)) {
            let started = Instant::now();
            let sent = sink.send(chunk).await;
            self.metrics
                .sink_latency
                .observe_duration(started.elapsed());
            sent.map_err(|e| DispatchError::Sink {
                name: name.to_owned(),
                error: sink::BuildError::Invalid(e.to_string()),
            })?;
            self.metrics.delivered(chunk.len() as u64);
        }
        self.store.unpark_events(name, ids).await?;
        Ok(batch.len())
    }

    fn generation_changed(&self, generation: u64) -> bool {
        lock(&self.state).generation != generation
    }

    /// Sends until delivered (`Some`: how many events the last, successful send carried), or
    /// until the batch was parked or the subscription disabled, paused or moved (`None`: the
    /// caller re-reads its state).
    ///
    /// When a send fails after the receiver acknowledged some of its events, the cursor moves
    /// past those at once, and the retry carries only the rest: a long batch failing near its
    /// end is not sent again from its start, and a receiver refusing now and then cannot keep a
    /// long batch from ever completing.
    async fn deliver(
        &self,
        own: &mut Owned,
        name: &str,
        batch: &[Outgoing],
        generation: u64,
    ) -> Option<u64> {
        let mut rest = batch;
        let mut attempt = 0u32;
        // When the first event of `rest` first failed: parking counts from here.
        let mut failing_since: Option<Instant> = None;
        loop {
            let started = Instant::now();
            let sent = own.sink.send(rest).await;
            self.metrics
                .sink_latency
                .observe_duration(started.elapsed());
            let error = match sent {
                Ok(()) => {
                    self.metrics.delivered(rest.len() as u64);
                    // Saved with the cursor by `advance`.
                    let mut s = lock(&self.state);
                    s.stats.last_error = None;
                    s.stats.failing_since_ms = None;
                    return Some(rest.len() as u64);
                }
                Err(e) => e,
            };
            let acknowledged = own.sink.acknowledged().min(rest.len());
            self.metrics.delivered(acknowledged as u64);
            if let Some(done) = rest[..acknowledged].last() {
                if !self
                    .advance(name, generation, done.id, acknowledged as u64)
                    .await
                {
                    return None;
                }
                rest = &rest[acknowledged..];
                if rest.is_empty() {
                    // Everything arrived although the send failed afterwards.
                    return Some(0);
                }
                // The receiver is taking events: the next one's failures count afresh.
                attempt = 0;
                failing_since = None;
            }
            let retried =
                matches!(error, SinkError::Retry(_)) && !self.should_park_next(failing_since);
            self.record_failure(name, &error, retried).await;
            match error {
                SinkError::Disable(reason) => {
                    tracing::warn!(subscription = %name, %reason, "receiver disabled the subscription");
                    let _ops = self.ops.lock().await;
                    // Keep an operator's pause as it is; only the disabled reason is new. Saved
                    // first, so what the API shows is what survives a restart.
                    let paused = lock(&self.state).paused;
                    if let Err(e) = self
                        .store
                        .set_delivery_state(name, paused, Some(reason.clone()))
                        .await
                    {
                        tracing::error!(subscription = %name, "cannot save the disabled state: {e}");
                    }
                    lock(&self.state).disabled = Some(reason);
                    return None;
                }
                SinkError::Retry(reason) => {
                    tracing::warn!(subscription = %name, attempt, %reason, "delivery failed; will retry");
                    self.metrics.retried();
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    if self.should_park(since) {
                        let ids: Vec<u64> = rest.iter().map(|o| o.id).collect();
                        let last = ids.last().copied().unwrap_or(0);
                        tracing::error!(subscription = %name, count = ids.len(), "parking undeliverable events");
                        let parked = {
                            let _ops = self.ops.lock().await;
                            // Checked under the lock: a replay meanwhile wins over this parking.
                            if self.generation_changed(generation) {
                                return None;
                            }
                            let count = ids.len() as u64;
                            let result = self
                                .store
                                .park_events(name, ids, &reason, last, self.fence())
                                .await;
                            match &result {
                                Ok(()) => {
                                    lock(&self.state).cursor = last;
                                    self.metrics.parked(count);
                                }
                                Err(StoreError::LeaseLost(_)) => {
                                    self.lost_lease(name);
                                    return None;
                                }
                                Err(_) => {}
                            }
                            result
                        };
                        if let Err(e) = parked {
                            tracing::error!(subscription = %name, "cannot park: {e}");
                            // The batch comes back on the next turn: wait first (without the
                            // lock), so a receiver that refuses at once and a failing store
                            // cannot spin.
                            self.sleep(backoff(&self.sub.config.retry, attempt), own)
                                .await;
                        }
                        return None;
                    }
                    let wait = backoff(&self.sub.config.retry, attempt);
                    attempt = attempt.saturating_add(1);
                    if self.sleep(wait, own).await || self.generation_changed(generation) {
                        return None;
                    }
                }
            }
        }
    }

    /// Whether a failure now, of a batch failing since `since` (`None`: this is its first),
    /// parks it rather than retrying it.
    fn should_park_next(&self, since: Option<Instant>) -> bool {
        self.should_park(since.unwrap_or_else(Instant::now))
    }

    /// Counts a failed send and saves the counters with the failure, so that the API shows a
    /// subscription that keeps failing as `failing` (since its first failure) across restarts.
    async fn record_failure(&self, name: &str, error: &SinkError, retried: bool) {
        let reason = match error {
            SinkError::Retry(r) | SinkError::Disable(r) => r.clone(),
        };
        let _ops = self.ops.lock().await;
        let stats = {
            let mut s = lock(&self.state);
            s.stats.failures += 1;
            if retried {
                s.stats.retries += 1;
            }
            s.stats
                .failing_since_ms
                .get_or_insert_with(herald_store::now_ms);
            s.stats.last_error = Some(reason);
            s.stats.clone()
        };
        match self
            .store
            .set_delivery_stats(name, None, stats, self.fence())
            .await
        {
            Ok(()) => {}
            Err(StoreError::LeaseLost(_)) => self.lost_lease(name),
            Err(e) => {
                tracing::error!(subscription = %name, "cannot save the delivery counters: {e}")
            }
        }
    }

    /// True when a batch failing since `since` has failed for `park_after_secs` (0: never).
    fn should_park(&self, since: Instant) -> bool {
        let after = self.sub.config.retry.park_after_secs;
        after != 0 && since.elapsed() >= Duration::from_secs(after)
    }

    /// Moves the cursor to `last` past `delivered` events (a delivered or fully filtered batch,
    /// or the part of one the receiver acknowledged), unless an operator moved it meanwhile
    /// (false).
    async fn advance(&self, name: &str, generation: u64, last: u64, delivered: u64) -> bool {
        let _ops = self.ops.lock().await;
        if self.generation_changed(generation) {
            return false;
        }
        let stats = {
            let mut s = lock(&self.state).stats.clone();
            s.delivered += delivered;
            s
        };
        // The cursor and the counters in one commit: a restart neither re-counts nor loses a
        // delivery.
        match self
            .store
            .set_delivery_stats(name, Some(last), stats.clone(), self.fence())
            .await
        {
            Ok(()) => {}
            Err(StoreError::LeaseLost(_)) => {
                // Another node delivers from the stored cursor now: this one must not move it.
                self.lost_lease(name);
                return false;
            }
            // Not saved: the batch is sent again after a restart (at least once).
            Err(e) => tracing::error!(subscription = %name, "cannot save the cursor: {e}"),
        }
        let mut s = lock(&self.state);
        s.cursor = last;
        s.stats = stats;
        true
    }
}
