//! The values the store returns: plain data, no handles, so they cross threads and backends
//! unchanged. Mutations return a [`Committed`] pairing their result with the events that were
//! committed with it (each with `vnd.herald.id` set).

use herald_events::Event;
use std::fmt;
use std::str::FromStr;

/// The result of a committed mutation and the events committed with it, in outbox order.
#[derive(Debug, Clone)]
pub struct Committed<T> {
    /// What the operation produced.
    pub value: T,
    /// The events of the transaction, each with `vnd.herald.id` set. Empty for a no-op.
    pub events: Vec<Event>,
}

/// A SPECIAL-USE mailbox attribute (RFC 6154).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpecialUse {
    /// `\Drafts`.
    Drafts,
    /// `\Sent`.
    Sent,
    /// `\Trash`.
    Trash,
    /// `\Junk`.
    Junk,
    /// `\Archive`.
    Archive,
}

impl SpecialUse {
    /// Every attribute.
    pub const ALL: [SpecialUse; 5] = [
        SpecialUse::Drafts,
        SpecialUse::Sent,
        SpecialUse::Trash,
        SpecialUse::Junk,
        SpecialUse::Archive,
    ];

    /// The attribute as IMAP spells it (`\Junk`).
    pub fn as_str(self) -> &'static str {
        match self {
            SpecialUse::Drafts => "\\Drafts",
            SpecialUse::Sent => "\\Sent",
            SpecialUse::Trash => "\\Trash",
            SpecialUse::Junk => "\\Junk",
            SpecialUse::Archive => "\\Archive",
        }
    }
}

impl fmt::Display for SpecialUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SpecialUse {
    type Err = crate::error::StoreError;
    /// Parses `\Junk` or `Junk`, any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bare = s.strip_prefix('\\').unwrap_or(s);
        SpecialUse::ALL
            .into_iter()
            .find(|u| u.as_str()[1..].eq_ignore_ascii_case(bare))
            .ok_or_else(|| {
                crate::error::StoreError::InvalidArgument(format!("unknown SPECIAL-USE `{s}`"))
            })
    }
}

/// An account as `herald user list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// Account name.
    pub name: String,
    /// May act as any user.
    pub admin: bool,
    /// Quota and usage.
    pub quota: QuotaInfo,
    /// The outbox id after which this account's events begin: earlier events that name it
    /// belong to an account of the same name that was deleted.
    pub first_event: u64,
    /// Set while the account is disabled.
    pub disabled: Option<Disabled>,
    /// The operator's note given when it was disabled.
    pub disabled_reason: Option<String>,
}

/// When an account was disabled ([`crate::Store::set_disabled`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disabled {
    /// Milliseconds since the Unix epoch.
    pub since_ms: i64,
}

/// An account's standing ([`crate::Store::account_state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountState {
    /// May act as any user.
    pub admin: bool,
    /// Disabled: no login as it is accepted.
    pub disabled: bool,
}

/// What authentication needs to know of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Argon2 PHC string.
    pub hash: String,
    /// May act as any user.
    pub admin: bool,
    /// Disabled: the password may be right, the login is still refused.
    pub disabled: bool,
}

/// An account's limits and exact usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuotaInfo {
    /// Storage limit in kilobytes, if any.
    pub storage_kb: Option<u64>,
    /// Message-count limit, if any.
    pub max_messages: Option<u64>,
    /// Octets used (sum of RFC822.SIZE over all messages of all mailboxes).
    pub used_bytes: u64,
    /// Messages stored.
    pub used_messages: u64,
}

impl QuotaInfo {
    /// Usage in kilobytes, rounded up (what `diskUsed` reports).
    pub fn used_kb(&self) -> u64 {
        self.used_bytes.div_ceil(1024)
    }
}

/// A mailbox's state (SELECT, STATUS, LIST).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxInfo {
    /// Stable internal id (never reused); key for change notifications.
    pub id: i64,
    /// Canonical name.
    pub name: String,
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// UIDNEXT.
    pub uidnext: u32,
    /// HIGHESTMODSEQ (RFC 7162).
    pub highest_modseq: u64,
    /// Messages in the mailbox.
    pub messages: u64,
    /// `\Noselect`: a deleted mailbox kept because it has children.
    pub noselect: bool,
    /// SPECIAL-USE attribute.
    pub special_use: Option<SpecialUse>,
    /// Expiry policy: messages older than this many seconds are expired by `herald expire`.
    pub max_age_secs: Option<u64>,
    /// The first UID no IMAP session has been told of yet: messages from here up are
    /// `\Recent` to the next session that selects the mailbox (RFC 3501 §2.3.2).
    pub recent_uid: u32,
}

/// Per-message metadata (FETCH UID FLAGS INTERNALDATE RFC822.SIZE MODSEQ).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    /// UID.
    pub uid: u32,
    /// RFC822.SIZE in octets.
    pub size: u64,
    /// INTERNALDATE, milliseconds since the Unix epoch.
    pub internal_date_ms: i64,
    /// Flags and keywords, system flags in canonical spelling.
    pub flags: Vec<String>,
    /// MODSEQ.
    pub modseq: u64,
    /// When the message was saved to this mailbox (APPEND, delivery, COPY, MOVE), ms since
    /// the Unix epoch (RFC 8514 SAVEDATE); None for messages stored before Herald kept it.
    pub save_date_ms: Option<i64>,
    /// The message's thread (RFC 8474 THREADID): never reused, the same for every copy of the
    /// message and every message of the account that replies to it (see `threading`).
    pub thread_id: u64,
}

/// A message added by append, delivery, copy or move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The mailbox's id.
    pub mailbox_id: i64,
    /// UIDVALIDITY of the target mailbox (APPENDUID).
    pub uidvalidity: u32,
    /// The new UID.
    pub uid: u32,
    /// The new message's MODSEQ.
    pub modseq: u64,
}

/// One message for [`crate::Store::import`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportMessage {
    /// The raw message.
    pub content: Vec<u8>,
    /// Flags and keywords.
    pub flags: Vec<String>,
    /// INTERNALDATE, ms since the Unix epoch.
    pub internal_date_ms: i64,
    /// The message's UID in the source, if it has one.
    pub uid: Option<u32>,
}

/// What [`crate::Store::import`] added.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Imported {
    /// The target mailbox's UIDVALIDITY after the import.
    pub uidvalidity: u32,
    /// True when the source's UIDVALIDITY and UIDs were kept; false when the messages were
    /// appended with the mailbox's own next UIDs.
    pub uids_kept: bool,
    /// The messages added, in the order given.
    pub appended: Vec<Appended>,
}

/// Result of COPY or MOVE: (source UID, new UID) pairs for COPYUID.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopyResult {
    /// UIDVALIDITY of the target mailbox.
    pub uidvalidity: u32,
    /// Source UID → new UID, ascending by source UID.
    pub uids: Vec<(u32, u32)>,
}

/// What changed in a mailbox since a MODSEQ, for a session that knows its first
/// `known_count` messages up to `known_max_uid` ([`crate::Store::changes`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Changes {
    /// The mailbox's HIGHESTMODSEQ when the changes were read (read first, so nothing
    /// committed after it is missed by the next call).
    pub highest_modseq: u64,
    /// The mailbox's UIDVALIDITY at that read: the changes of a mailbox created again under
    /// the name are no changes to what a caller knew of the one before.
    pub uidvalidity: u32,
    /// Messages whose MODSEQ is above the one given — changed flags, and new messages —
    /// ascending by UID.
    pub changed: Vec<MessageMeta>,
    /// Every UID in the mailbox, ascending, but only when some known message is gone and
    /// the tombstones cannot say which (see `expunged`); `None` otherwise.
    pub uids: Option<Vec<u32>>,
    /// The UIDs expunged after the MODSEQ given, ascending, when some known message is gone
    /// and the tombstones reach back that far — a read proportional to the change, not to
    /// the mailbox. May name UIDs the caller never knew (appended and expunged since).
    pub expunged: Option<Vec<u32>>,
}

/// The UIDs expunged from a mailbox after a MODSEQ, from the store's tombstones
/// ([`crate::Store::vanished`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Vanished {
    /// Expunged UIDs, ascending.
    pub uids: Vec<u32>,
    /// True when `uids` names every UID expunged after the MODSEQ asked about; false when
    /// the tombstones do not reach back that far (pruned, or older than the store's
    /// tombstones), and a caller must assume any UID it cannot see may have gone.
    pub complete: bool,
}

/// Per-mailbox counts for STATUS, computed by the store without reading every message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MailboxCounts {
    /// The mailbox itself (MESSAGES, UIDNEXT, …).
    pub messages: u64,
    /// Messages without `\Seen`.
    pub unseen: u64,
    /// Messages with `\Deleted`.
    pub deleted: u64,
    /// Sum of RFC822.SIZE.
    pub size: u64,
    /// Messages no IMAP session was told of yet (`\Recent` to the next one).
    pub recent: u64,
}

/// Result of STORE.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoreResult {
    /// Messages whose flags changed: UID, new flags, new MODSEQ.
    pub changed: Vec<(u32, Vec<String>, u64)>,
    /// UIDs that failed the UNCHANGEDSINCE test (RFC 7162 `MODIFIED`).
    pub modified: Vec<u32>,
}

/// One mailbox's expired messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    /// Account.
    pub user: String,
    /// Mailbox name.
    pub mailbox: String,
    /// Expired UIDs, ascending.
    pub uids: Vec<u32>,
}

/// One row of the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// `vnd.herald.id`.
    pub id: u64,
    /// The event's JSON exactly as committed (DESIGN §5).
    pub json: String,
}

/// The ids the outbox holds: `oldest ..= head` with none missing (ids are dense, and retention
/// removes only the oldest), so its size is `head - oldest + 1` without counting rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxBounds {
    /// The oldest event id kept; `None` when the outbox holds no event.
    pub oldest: Option<u64>,
    /// The highest event id ever committed (events up to it were committed, some perhaps
    /// removed since by retention).
    pub head: u64,
}

impl OutboxBounds {
    /// Events in the outbox.
    pub fn events(&self) -> u64 {
        self.oldest.map_or(0, |o| (self.head + 1).saturating_sub(o))
    }

    /// True when event `id` was committed once and has been removed by retention.
    pub fn pruned(&self, id: u64) -> bool {
        id >= 1 && id <= self.head && self.oldest.is_none_or(|oldest| id < oldest)
    }
}

/// What `Store::check_consistency` found; empty `problems` means consistent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Consistency {
    /// Highest outbox id.
    pub last_event_id: u64,
    /// Outbox rows.
    pub events: u64,
    /// Messages in all mailboxes.
    pub messages: u64,
    /// Distinct blobs.
    pub blobs: u64,
    /// Each inconsistency, described.
    pub problems: Vec<String>,
}

/// How a session ended (RFC 5423 §4.3 suggests graceful, abort, timeout, security layer error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disconnect {
    /// The client logged out (LOGOUT, QUIT).
    Graceful,
    /// The connection dropped.
    Abort,
    /// The server closed an idle session.
    Timeout,
    /// TLS failed mid-session.
    SecurityLayerError,
    /// The server shut down.
    Shutdown,
}

impl Disconnect {
    /// The `vnd.herald.disconnect` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Disconnect::Graceful => "graceful",
            Disconnect::Abort => "abort",
            Disconnect::Timeout => "timeout",
            Disconnect::SecurityLayerError => "security layer error",
            Disconnect::Shutdown => "shutdown",
        }
    }
}

/// Why an authentication attempt failed (`vnd.herald.reason` of `vnd.herald.LoginFailed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    /// The password was wrong. The store reports [`LoginFailure::NoSuchUser`] instead when
    /// the account does not exist; the client is told the same either way.
    BadCredentials,
    /// The account does not exist (set by the store, not the caller).
    NoSuchUser,
    /// The login rate limiter refused the attempt before the password was checked.
    RateLimited,
    /// A plaintext login was refused because the connection is not encrypted.
    PlaintextRefused,
    /// The account is disabled.
    AccountDisabled,
}

impl LoginFailure {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            LoginFailure::BadCredentials => "bad-credentials",
            LoginFailure::NoSuchUser => "no-such-user",
            LoginFailure::RateLimited => "rate-limited",
            LoginFailure::PlaintextRefused => "plaintext-refused",
            LoginFailure::AccountDisabled => "account-disabled",
        }
    }
}

/// An access event to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A successful login.
    Login,
    /// The end of a logged-in session.
    Logout {
        /// How it ended.
        disconnect: Disconnect,
        /// How long the session lasted, in milliseconds.
        duration_ms: u64,
    },
}

/// A subscription's durable delivery state (the dispatcher's; the store keeps it so it commits
/// like everything else).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// Subscription name.
    pub name: String,
    /// Its configuration, as JSON.
    pub config: String,
    /// `config` (from the configuration file) or `api` (created at run time).
    pub origin: String,
    /// Paused by an operator.
    pub paused: bool,
    /// Disabled by its receiver (e.g. a webhook's 410), with the reason.
    pub disabled_reason: Option<String>,
    /// Last acknowledged `vnd.herald.id`.
    pub cursor: u64,
    /// Delivery counters and the current failure. A new record starts with these;
    /// [`crate::Store::put_delivery`] on an existing one keeps the stored ones.
    pub stats: DeliveryStats,
}

/// What a node that delivers a subscription knows of it when it writes its delivery state:
/// the write happens only if that node still holds the subscription's lease and the cursor is
/// still the one it read (else [`crate::StoreError::LeaseLost`]), so a node that lost its
/// lease (paused too long, cut off) cannot move a cursor another node now moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseFence {
    /// The node's name.
    pub node: String,
    /// The cursor the node last read or wrote.
    pub cursor: u64,
}

/// A subscription's delivery counters and its current failure, written by the dispatcher as
/// they change so that what an operator sees survives a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    /// Events the sink acknowledged.
    pub delivered: u64,
    /// Failed sends that were tried again.
    pub retries: u64,
    /// Failed sends (retried, parked after, or refused for good).
    pub failures: u64,
    /// Since when (ms since the epoch) sends have kept failing; `None` once one succeeds.
    pub failing_since_ms: Option<i64>,
    /// The latest delivery error, while failing.
    pub last_error: Option<String>,
}

/// One METADATA entry (RFC 5464) as a user sees it: its name (lower case, `/private/…` or
/// `/shared/…`) and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataEntry {
    /// Entry name.
    pub name: String,
    /// Value octets (any bytes: RFC 5464 allows binary values).
    pub value: Vec<u8>,
}

/// A push subscription a user registered (RFC 8030 endpoint, RFC 8291 keys), for the WebPush
/// sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSubscription {
    /// The account it belongs to.
    pub user: String,
    /// The push service URL the browser gave.
    pub endpoint: String,
    /// The browser's P-256 public key, base64url (`keys.p256dh`).
    pub p256dh: String,
    /// The browser's 16-byte authentication secret, base64url (`keys.auth`).
    pub auth: String,
    /// When it was registered (or last re-registered), ms since the epoch.
    pub created_ms: i64,
}

/// An event a subscription gave up delivering (dead letter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedEvent {
    /// Its `vnd.herald.id`.
    pub event_id: u64,
    /// The last delivery error.
    pub reason: String,
    /// When it was parked, ms since the epoch.
    pub parked_ms: i64,
}

/// Values of `vnd.herald.cause` on MessageAppend (and on a move's MessageExpunge), and on
/// QuotaWithin: what brought the account back under its quota.
pub mod vnd_cause {
    /// QuotaWithin: a client expunged messages (IMAP, POP3).
    pub const EXPUNGE: &str = "expunge";
    /// QuotaWithin: the expiry policy removed messages.
    pub const EXPIRE: &str = "expire";
    /// QuotaWithin: a mailbox was deleted with its messages.
    pub const MAILBOX_DELETE: &str = "mailbox-delete";
    /// QuotaWithin: an administrator raised or removed a limit.
    pub const QUOTA_CHANGE: &str = "quota-change";
    /// IMAP APPEND.
    pub const APPEND: &str = "append";
    /// IMAP COPY.
    pub const COPY: &str = "copy";
    /// IMAP MOVE.
    pub const MOVE: &str = "move";
    /// `herald import` (Maildir, mbox, another IMAP server).
    pub const IMPORT: &str = "import";
}

/// One recipient of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The account.
    pub user: String,
    /// Target mailbox; `None` is INBOX.
    pub mailbox: Option<String>,
    /// The SMTP envelope as the `envelope` parameter carries it: the MAIL FROM line and this
    /// recipient's RCPT TO line, CRLF-terminated.
    pub envelope: String,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
