//! `herald-metrics`: what Herald counts about itself, and its Prometheus text exposition.
//!
//! Recording must cost next to nothing on the hot paths (the IMAP server runs about 10,000
//! commands/s on two cores), so every instrument is a plain atomic, fixed when the process
//! starts, updated with `Relaxed` additions: no lock, no allocation, no lookup by name.
//!
//! - [`global`]: the process-wide instruments, in one `static` built at compile time — events
//!   committed per type, the store writer's commits, sessions, connections and logins per
//!   protocol. The crates that record them (`herald-store`, `herald-net`) reach them without
//!   any handle being passed around.
//! - [`Commands`]: a protocol's commands, counted and timed per kind. Each protocol crate owns
//!   its table as a `static` ([`command_table!`]) indexed by its own command enum, and
//!   registers it once ([`register_commands`]) so the exposition knows it.
//! - [`SubscriptionMetrics`]: one subscription's deliveries, held by the dispatcher next to the
//!   subscription, because subscriptions come and go at run time.
//! - [`expose`]: the text the `/metrics` route serves, from the instruments above plus the
//!   gauges only a scrape can read (outbox bounds, cursors, lag).
//!
//! Prometheus itself never calls into these: reading happens only at a scrape, which is rare.

pub mod expose;
pub mod histogram;

pub use expose::{OutboxGauges, Scrape, SubscriptionGauges, render};
pub use histogram::{Histogram, HistogramSnapshot};

use herald_events::EventType;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// The protocols Herald serves, as metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// IMAP and IMAPS.
    Imap,
    /// POP3 and POP3S.
    Pop3,
    /// LMTP.
    Lmtp,
    /// HTTP.
    Http,
    /// Anything else (tests name their own listeners).
    Other,
}

/// How many [`Protocol`]s there are.
const PROTOCOLS: usize = 5;

impl Protocol {
    /// Every protocol, in label order.
    pub const ALL: [Protocol; PROTOCOLS] = [
        Protocol::Imap,
        Protocol::Pop3,
        Protocol::Lmtp,
        Protocol::Http,
        Protocol::Other,
    ];

    /// The protocol a listener or service name (`imap`, `pop3`, `lmtp`, `http`) stands for.
    pub fn from_name(name: &str) -> Protocol {
        match name {
            "imap" => Protocol::Imap,
            "pop3" => Protocol::Pop3,
            "lmtp" => Protocol::Lmtp,
            "http" => Protocol::Http,
            _ => Protocol::Other,
        }
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Imap => "imap",
            Protocol::Pop3 => "pop3",
            Protocol::Lmtp => "lmtp",
            Protocol::Http => "http",
            Protocol::Other => "other",
        }
    }
}

/// How a login attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginResult {
    /// The credentials were right.
    Ok,
    /// They were wrong (or the connection went away mid-check).
    Failed,
    /// Refused before any check by the login limiter.
    Refused,
}

impl LoginResult {
    const ALL: [LoginResult; 3] = [LoginResult::Ok, LoginResult::Failed, LoginResult::Refused];

    fn as_str(self) -> &'static str {
        match self {
            LoginResult::Ok => "ok",
            LoginResult::Failed => "failed",
            LoginResult::Refused => "refused",
        }
    }
}

/// The process-wide instruments; see the crate documentation.
#[derive(Debug)]
pub struct Metrics {
    /// Committed events of each registered type, in [`EventType::REGISTERED`] order.
    events: [AtomicU64; 18],
    /// Committed events of other (vendor) types, by name. Only the store's single writer
    /// thread and a scrape touch it, and only for types outside the registry.
    other_events: Mutex<BTreeMap<String, u64>>,
    events_pruned: AtomicU64,
    commits: AtomicU64,
    failed_commits: AtomicU64,
    /// Deferred flushes of flag changes: done, failed.
    flushes: [AtomicU64; 2],
    commit_latency: Histogram,
    commit_ops: Histogram,
    sessions: [AtomicI64; PROTOCOLS],
    connections: [AtomicU64; PROTOCOLS],
    refused_connections: [AtomicU64; PROTOCOLS],
    logins: [[AtomicU64; 3]; PROTOCOLS],
    /// Certificate reloads (SIGHUP): succeeded, failed.
    tls_reloads: [AtomicU64; 2],
    commands: Mutex<Vec<&'static Commands>>,
}

static METRICS: Metrics = Metrics {
    events: [const { AtomicU64::new(0) }; 18],
    other_events: Mutex::new(BTreeMap::new()),
    events_pruned: AtomicU64::new(0),
    commits: AtomicU64::new(0),
    failed_commits: AtomicU64::new(0),
    flushes: [const { AtomicU64::new(0) }; 2],
    commit_latency: Histogram::latency(),
    commit_ops: Histogram::sizes(),
    sessions: [const { AtomicI64::new(0) }; PROTOCOLS],
    connections: [const { AtomicU64::new(0) }; PROTOCOLS],
    refused_connections: [const { AtomicU64::new(0) }; PROTOCOLS],
    logins: [const { [const { AtomicU64::new(0) }; 3] }; PROTOCOLS],
    tls_reloads: [const { AtomicU64::new(0) }; 2],
    commands: Mutex::new(Vec::new()),
};

/// The process-wide instruments.
pub fn global() -> &'static Metrics {
    &METRICS
}

/// Makes a protocol's command table part of the exposition (once; later calls are no-ops).
pub fn register_commands(table: &'static Commands) {
    let mut tables = METRICS
        .commands
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if !tables.iter().any(|t| std::ptr::eq(*t, table)) {
        tables.push(table);
    }
}

/// An open session of a protocol: counted in the sessions gauge until dropped.
#[derive(Debug)]
#[must_use = "the session counts as open until this is dropped"]
pub struct OpenSession(Protocol);

impl Drop for OpenSession {
    fn drop(&mut self) {
        METRICS.sessions[self.0 as usize].fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// One committed event.
    pub fn event_committed(&self, event: &EventType) {
        match EventType::REGISTERED.iter().position(|t| t == event) {
            Some(i) => {
                self.events[i].fetch_add(1, Ordering::Relaxed);
            }
            None => {
                let mut other = self
                    .other_events
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                // Bounded: a store that invents an unbounded number of type names is a bug,
                // and the exposition must not grow with it.
                if other.len() < 256 || other.contains_key(event.as_str()) {
                    *other.entry(event.as_str().to_owned()).or_default() += 1;
                }
            }
        }
    }

    /// Committed events of a registered type so far.
    pub fn events_committed(&self, event: &EventType) -> u64 {
        EventType::REGISTERED
            .iter()
            .position(|t| t == event)
            .map_or(0, |i| self.events[i].load(Ordering::Relaxed))
    }

    /// Events removed from the outbox by retention.
    pub fn events_pruned(&self, n: u64) {
        self.events_pruned.fetch_add(n, Ordering::Relaxed);
    }

    /// A store transaction committed `ops` operations in `elapsed` (from BEGIN to the end of
    /// COMMIT, its fsync included).
    pub fn commit(&self, ops: usize, elapsed: Duration) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.commit_latency.observe_duration(elapsed);
        self.commit_ops.observe(ops as u64);
    }

    /// A store transaction failed as a whole.
    pub fn commit_failed(&self) {
        self.failed_commits.fetch_add(1, Ordering::Relaxed);
    }

    /// The store's flush thread fsynced the WAL for deferred flag changes (`ok`), or failed to.
    pub fn flush(&self, ok: bool) {
        self.flushes[usize::from(!ok)].fetch_add(1, Ordering::Relaxed);
    }

    /// Flushes of the store's flush thread so far: done, failed.
    pub fn flushes(&self) -> [u64; 2] {
        [0, 1].map(|i| self.flushes[i].load(Ordering::Relaxed))
    }

    /// A connection was accepted; it counts as an open session until the guard is dropped.
    pub fn session_opened(&self, protocol: Protocol) -> OpenSession {
        self.connections[protocol as usize].fetch_add(1, Ordering::Relaxed);
        self.sessions[protocol as usize].fetch_add(1, Ordering::Relaxed);
        OpenSession(protocol)
    }

    /// Sessions of `protocol` open now.
    pub fn sessions(&self, protocol: Protocol) -> i64 {
        self.sessions[protocol as usize].load(Ordering::Relaxed)
    }

    /// A connection was refused (too many from one client).
    pub fn connection_refused(&self, protocol: Protocol) {
        self.refused_connections[protocol as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A login attempt ended.
    pub fn login(&self, protocol: Protocol, result: LoginResult) {
        self.logins[protocol as usize][result as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The TLS certificate was re-read (`ok`) or the attempt failed and the old one stayed.
    pub fn tls_reload(&self, ok: bool) {
        self.tls_reloads[usize::from(!ok)].fetch_add(1, Ordering::Relaxed);
    }

    /// Login attempts of `protocol` that ended with `result` so far.
    pub fn logins(&self, protocol: Protocol, result: LoginResult) -> u64 {
        self.logins[protocol as usize][result as usize].load(Ordering::Relaxed)
    }
}

/// One protocol's commands, counted and timed per kind; see [`command_table!`].
#[derive(Debug)]
pub struct Commands {
    protocol: &'static str,
    names: &'static [&'static str],
    counts: &'static [AtomicU64],
    latency: &'static [Histogram],
}

impl Commands {
    /// A table over `names` (index = the protocol's command kind); use [`command_table!`].
    pub const fn new(
        protocol: &'static str,
        names: &'static [&'static str],
        counts: &'static [AtomicU64],
        latency: &'static [Histogram],
    ) -> Commands {
        assert!(names.len() == counts.len() && names.len() == latency.len());
        Commands {
            protocol,
            names,
            counts,
            latency,
        }
    }

    /// Counts one command of kind `index` and records how long it took.
    pub fn record(&self, index: usize, elapsed: Duration) {
        self.count(index);
        self.time(index, elapsed);
    }

    /// Counts one command of kind `index` (an index out of range is ignored).
    pub fn count(&self, index: usize) {
        if let Some(c) = self.counts.get(index) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records how long a command of kind `index` took, without counting it again.
    pub fn time(&self, index: usize, elapsed: Duration) {
        if let Some(h) = self.latency.get(index) {
            h.observe_duration(elapsed);
        }
    }

    /// Commands of kind `index` so far.
    pub fn counted(&self, index: usize) -> u64 {
        self.counts
            .get(index)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

/// Declares a protocol's command table as a `static`:
///
/// ```
/// const NAMES: [&str; 2] = ["NOOP", "QUIT"];
/// herald_metrics::command_table!(pub static COMMANDS = ("pop3", NAMES));
/// COMMANDS.record(1, std::time::Duration::from_micros(40));
/// assert_eq!(COMMANDS.counted(1), 1);
/// ```
#[macro_export]
macro_rules! command_table {
    ($(#[$meta:meta])* $vis:vis static $table:ident = ($protocol:expr, $names:expr)) => {
        $(#[$meta])*
        $vis static $table: $crate::Commands = {
            // Items in a macro are not hygienic: names no caller's constant is likely to have.
            const HERALD_N: usize = $names.len();
            static HERALD_COUNTS: [::std::sync::atomic::AtomicU64; HERALD_N] =
                [const { ::std::sync::atomic::AtomicU64::new(0) }; HERALD_N];
            static HERALD_LATENCY: [$crate::Histogram; HERALD_N] =
                [const { $crate::Histogram::latency() }; HERALD_N];
            static HERALD_NAMES: [&str; HERALD_N] = $names;
            $crate::Commands::new($protocol, &HERALD_NAMES, &HERALD_COUNTS, &HERALD_LATENCY)
        };
    };
}

/// One subscription's delivery counters, shared by its worker (which records) and the
/// dispatcher (which hands them to a scrape).
#[derive(Debug, Default)]
pub struct SubscriptionMetrics {
    /// Events the sink acknowledged.
    pub delivered: AtomicU64,
    /// Sends that failed and will be retried.
    pub retries: AtomicU64,
    /// Events parked (dead-lettered).
    pub parked: AtomicU64,
    /// How long each send to the sink took, failed ones included.
    pub sink_latency: Histogram,
}

impl SubscriptionMetrics {
    /// `n` events acknowledged by the sink.
    pub fn delivered(&self, n: u64) {
        self.delivered.fetch_add(n, Ordering::Relaxed);
    }

    /// A send failed and will be retried.
    pub fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` events were parked.
    pub fn parked(&self, n: u64) {
        self.parked.fetch_add(n, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    command_table!(static TABLE = ("lib-test", ["PING", "LOGIN"]));

    #[test]
    fn commands_count_and_time_per_kind() {
        TABLE.record(0, Duration::from_micros(10));
        TABLE.count(1);
        TABLE.count(7);
        assert_eq!(
            (TABLE.counted(0), TABLE.counted(1), TABLE.counted(7)),
            (1, 1, 0)
        );
        assert_eq!(TABLE.latency[0].count(), 1);
        assert_eq!(TABLE.latency[1].count(), 0);
        register_commands(&TABLE);
        register_commands(&TABLE);
        let n = METRICS
            .commands
            .lock()
            .unwrap()
            .iter()
            .filter(|t| std::ptr::eq(**t, &TABLE))
            .count();
        assert_eq!(n, 1);
    }

    #[test]
    fn sessions_are_open_until_the_guard_drops() {
        let m = global();
        let before = m.sessions(Protocol::Other);
        let s = m.session_opened(Protocol::Other);
        assert_eq!(m.sessions(Protocol::Other), before + 1);
        drop(s);
        assert_eq!(m.sessions(Protocol::Other), before);
        assert_eq!(Protocol::from_name("pop3"), Protocol::Pop3);
        assert_eq!(Protocol::from_name("smtp"), Protocol::Other);
    }

    #[test]
    fn events_count_by_type() {
        let m = global();
        let before = m.events_committed(&EventType::MailboxRename);
        m.event_committed(&EventType::MailboxRename);
        m.event_committed(&EventType::Vendor("vnd.test.Thing".into()));
        assert_eq!(m.events_committed(&EventType::MailboxRename), before + 1);
        assert_eq!(
            m.other_events.lock().unwrap().get("vnd.test.Thing"),
            Some(&1)
        );
    }
}
