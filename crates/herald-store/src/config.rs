//! [`StoreConfig`]: a plain struct, so the binary can fill it from TOML (DESIGN §4 keys
//! `[store] path`, `[server] hostname`, `[events] seen_deleted_as_flags`) and tests can build
//! it in one line. The store reads no files or environment of its own.

use std::path::PathBuf;

/// Default lifetime of a cached successful login: ten minutes, the reconnect interval of
/// a phone in the background is well within it.
pub const DEFAULT_AUTH_CACHE_SECS: u64 = 600;

/// Messages up to this size are stored inside the database; see the `blobs` module.
pub const DEFAULT_INLINE_BLOB_MAX: usize = 128 * 1024;

/// See [`StoreConfig::inline_commit_budget`]: about what a FETCH of a few large messages holds
/// a runtime worker for.
pub const DEFAULT_INLINE_COMMIT_BUDGET: std::time::Duration = std::time::Duration::from_millis(1);

/// Expunge tombstones kept per mailbox (see [`StoreConfig::tombstones_per_mailbox`]).
pub const DEFAULT_TOMBSTONES_PER_MAILBOX: u32 = 10_000;

/// Limits on METADATA (RFC 5464) the store enforces; see [`StoreConfig::metadata`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataLimits {
    /// Largest value in octets (`MAXSIZE`; `[metadata] max_value_bytes`).
    pub max_value_bytes: u64,
    /// Most entries one mailbox, or the server, holds as one user sees it: its shared entries
    /// and that user's private ones (`[metadata] max_entries_per_mailbox`).
    pub max_entries_per_mailbox: u64,
    /// Most entries one user holds: their private entries anywhere and the shared entries of
    /// their mailboxes (`[metadata] max_entries_per_user`).
    pub max_entries_per_user: u64,
}

/// 64 KiB per value, 100 entries per mailbox, 1000 per user: room for every client annotation
/// in use (comments, special-use hints, vendor settings) while a hostile client can make an
/// account hold at most about 64 MB of metadata.
impl Default for MetadataLimits {
    fn default() -> MetadataLimits {
        MetadataLimits {
            max_value_bytes: 64 * 1024,
            max_entries_per_mailbox: 100,
            max_entries_per_user: 1000,
        }
    }
}

/// How the store is opened.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The data directory (`[store] path`): holds `herald.db` and `blobs/`. Created if missing.
    pub path: PathBuf,
    /// `serverFQDN` of every event and the host of every IMAP URL (`[server] hostname`).
    pub server_fqdn: String,
    /// RFC 5423 §4.2: when true, setting `\Seen`/`\Deleted` emits FlagsSet instead of
    /// MessageRead/MessageTrash (`[events] seen_deleted_as_flags`).
    pub seen_deleted_as_flags: bool,
    /// Largest message stored inside the database; larger ones are files under `blobs/`.
    pub inline_blob_max: usize,
    /// Most operations the writer commits in one transaction (one fsync).
    pub max_batch: usize,
    /// How long a writer waits for another process's write lock (the CLI and the server may
    /// share a data directory).
    pub busy_timeout: std::time::Duration,
    /// RFC 5423 §3 "the ability to turn on and off groups of related events" (`[events]
    /// groups`): events of other groups are not generated at all. Empty means every group.
    pub event_groups: Vec<herald_events::EventGroup>,
    /// Durability: `true` (the default) fsyncs every commit (`synchronous=FULL`), so an
    /// acknowledged change survives power loss. `false` (`NORMAL`) survives process crashes only.
    pub durable: bool,
    /// `[store] flag_sync = "deferred"` (the default, `true`): with `durable`, a batch of flag
    /// changes is answered once committed and flushed to disk within 10 ms, its events published
    /// only once flushed (see the embedded backend's `flush`). `false` (`"commit"`): answered
    /// after the flush, as every other write. PostgreSQL always does the latter.
    pub defer_flag_sync: bool,
    /// One message appended or delivered while the writer thread is idle is committed, flush
    /// included, on the caller's runtime thread instead, sparing two thread hand-offs, while
    /// the recent durable commits took under this on average; a slow or busy disk sends every
    /// commit back to the writer thread. Zero always uses the thread. Embedded store only.
    pub inline_commit_budget: std::time::Duration,
    /// Argon2id cost of new password hashes (`[auth] argon2_*`); never below OWASP's floor.
    pub password: crate::password::PasswordParams,
    /// How long a successful login is remembered so the same credentials skip argon2
    /// (`[auth] cache_ttl_secs`); zero turns the cache off. See `auth_cache`.
    pub auth_cache_ttl: std::time::Duration,
    /// Expunged UIDs remembered per mailbox (with the MODSEQ of their expunge) for QRESYNC's
    /// VANISHED (EARLIER). Past this, the older half is dropped and a client resynchronising
    /// from before what is left gets the conservative answer (every UID it cannot see).
    pub tombstones_per_mailbox: u32,
    /// METADATA limits (`[metadata]`).
    pub metadata: MetadataLimits,
    /// `[store] backend = "postgres"`: keep everything in this PostgreSQL database instead of
    /// the data directory (`None`, the default: the embedded SQLite store in `path`).
    pub postgres: Option<crate::postgres::PgConfig>,
    /// This process's name in a cluster (`[server] node`), put in every event it makes as
    /// `vnd.herald.node`; `None` on a single server.
    pub node: Option<String>,
}

impl StoreConfig {
    /// The defaults for a data directory: host `localhost`, RFC 5423 default event forms,
    /// durable commits.
    pub fn new(path: impl Into<PathBuf>) -> StoreConfig {
        StoreConfig {
            path: path.into(),
            server_fqdn: "localhost".to_owned(),
            seen_deleted_as_flags: false,
            inline_blob_max: DEFAULT_INLINE_BLOB_MAX,
            max_batch: 512,
            busy_timeout: std::time::Duration::from_secs(10),
            durable: true,
            defer_flag_sync: true,
            inline_commit_budget: DEFAULT_INLINE_COMMIT_BUDGET,
            event_groups: Vec::new(),
            password: crate::password::PasswordParams::default(),
            auth_cache_ttl: std::time::Duration::from_secs(DEFAULT_AUTH_CACHE_SECS),
            tombstones_per_mailbox: DEFAULT_TOMBSTONES_PER_MAILBOX,
            metadata: MetadataLimits::default(),
            postgres: None,
            node: None,
        }
    }

    /// True when events of type `t` are generated under `event_groups`.
    pub fn generates(&self, t: &herald_events::EventType) -> bool {
        self.event_groups.is_empty() || t.group().is_none_or(|g| self.event_groups.contains(&g))
    }

    /// Sets `server_fqdn`.
    pub fn with_fqdn(mut self, fqdn: impl Into<String>) -> StoreConfig {
        self.server_fqdn = fqdn.into();
        self
    }
}
