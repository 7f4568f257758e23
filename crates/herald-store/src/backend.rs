//! The backend contract: what a storage engine must provide so the [`Store`](crate::Store) API,
//! and every protocol above it, work unchanged on it.
//!
//! The contract is narrow and batch-oriented (the lesson of Stalwart's store, STACK §9):
//!
//! - [`Backend::submit`] takes one mutation ([`Op`], plain data) with its session and resolves
//!   once the mutation **and its events** are durable in the outbox, or it failed and nothing of
//!   it is left (except a QuotaExceed event, which is the record of the failure). How mutations
//!   are grouped into physical transactions is the backend's business: the embedded backend
//!   group-commits everything queued; a PostgreSQL backend can pipeline.
//! - [`Backend::query`] answers reads ([`Query`]) from a snapshot, never through the writer.
//! - [`Backend::put_blob`] makes message content durable before the mutation referencing it.
//! - Notifications: the last outbox id and per-mailbox change counters.
//! - An expunge leaves a tombstone (UID and the MODSEQ of the expunge) that
//!   [`Query::Vanished`] reads back, at least for the expunges after the mailbox's tombstone
//!   floor ([`crate::Vanished::complete`]); a backend may prune older ones, never newer. A new
//!   message gets a thread ([`crate::MessageMeta::thread_id`]) from the identifiers in
//!   [`crate::threading::ThreadKeys`], kept by COPY and MOVE.
//!
//! Dispatch is an enum ([`AnyBackend`]), not a trait object: `async fn` in traits is not
//! object-safe, and the set of backends is closed and known at compile time (STACK §9).
//! Each backend is a variant; callers keep using `Store`.

use crate::blobs::BlobRef;
use crate::context::SessionContext;
use crate::embedded::Embedded;
use crate::error::Result;
use crate::flags::FlagMode;
use crate::model::*;
use crate::postgres::PgBackend;
use crate::threading::ThreadKeys;
use herald_events::{Event, UidSet};
use std::future::Future;
use tokio::sync::watch;

/// One mutation. Account-level operations name their account explicitly; the store facade
/// fills it from the session for mailbox operations.
#[derive(Debug, Clone)]
pub enum Op {
    /// Creates an account and its INBOX.
    AddUser {
        /// Account name.
        name: String,
        /// Argon2 PHC string (hashed by the caller, off the writer thread).
        password_hash: String,
        /// Administrator.
        admin: bool,
    },
    /// Replaces an account's password hash.
    SetPassword {
        /// Account name.
        name: String,
        /// Argon2 PHC string (hashed by the caller, off the writer thread).
        password_hash: String,
    },
    /// Disables an account (no session may authenticate as it; its mail stays and deliveries
    /// continue) or enables it again. A no-op when it already is in that state.
    SetDisabled {
        /// Account name.
        name: String,
        /// Disable (true) or enable (false).
        disabled: bool,
        /// The operator's note, kept with the account and put in AccountDisable.
        reason: Option<String>,
    },
    /// Deletes an account with its mailboxes and messages.
    DeleteUser {
        /// Account name.
        name: String,
    },
    /// Changes a quota (None = unchanged).
    SetQuota {
        /// Account.
        user: String,
        /// New storage limit in KB.
        storage_kb: Option<u64>,
        /// New message-count limit.
        messages: Option<u64>,
    },
    /// CREATE.
    CreateMailbox {
        /// Account.
        account: String,
        /// Name as given.
        name: String,
        /// SPECIAL-USE.
        special_use: Option<SpecialUse>,
    },
    /// DELETE.
    DeleteMailbox {
        /// Account.
        account: String,
        /// Name as given.
        name: String,
    },
    /// RENAME.
    RenameMailbox {
        /// Account.
        account: String,
        /// Old name.
        from: String,
        /// New name.
        to: String,
    },
    /// SUBSCRIBE (`true`) or UNSUBSCRIBE.
    Subscribe {
        /// Account.
        account: String,
        /// Mailbox name.
        name: String,
        /// Subscribe or unsubscribe.
        on: bool,
    },
    /// Sets mailbox attributes (None = unchanged; Some(None) = clear).
    SetMailboxAttrs {
        /// Account.
        account: String,
        /// Mailbox.
        name: String,
        /// SPECIAL-USE.
        special_use: Option<Option<SpecialUse>>,
        /// Expiry policy in seconds.
        max_age_secs: Option<Option<u64>>,
    },
    /// APPEND (no envelope) or delivery (with envelope).
    Append {
        /// Account.
        account: String,
        /// Target mailbox.
        mailbox: String,
        /// Content.
        blob: BlobRef,
        /// Flags to set.
        flags: Vec<String>,
        /// INTERNALDATE in ms.
        internal_date_ms: i64,
        /// SMTP envelope for a delivery (MessageNew); None for APPEND (MessageAppend).
        envelope: Option<String>,
        /// The content's threading identifiers (read by the caller, off the writer).
        thread: ThreadKeys,
    },
    /// MULTIAPPEND (RFC 3502): several messages into one mailbox, all or none.
    AppendMany {
        /// Account.
        account: String,
        /// Target mailbox.
        mailbox: String,
        /// Content, flags, INTERNALDATE (ms) and threading identifiers of each message, in
        /// order.
        messages: Vec<(BlobRef, Vec<String>, i64, ThreadKeys)>,
    },
    /// Messages brought in by `herald import`: like [`Op::AppendMany`] (all or none, each
    /// message a MessageAppend) with `vnd.herald.cause` = `import`, and the source's UIDs kept
    /// when the mailbox is new and empty (it then takes the source's UIDVALIDITY) or already
    /// has the source's UIDVALIDITY (an import resumed); otherwise appended normally.
    Import {
        /// Account.
        account: String,
        /// Target mailbox.
        mailbox: String,
        /// The source mailbox's UIDVALIDITY, when the source has one.
        uidvalidity: Option<u32>,
        /// The messages, ascending by source UID when they have one.
        messages: Vec<ImportItem>,
        /// When UIDs are kept: raise UIDNEXT to at least this afterwards (the source's
        /// UIDNEXT, so UIDs the source had already used are never given out again).
        uidnext: Option<u32>,
        /// The importer's resume point, recorded in the same commit as the messages:
        /// (a key naming the source mailbox, the last position imported).
        progress: Option<(String, i64)>,
    },
    /// COPY, or MOVE when `remove_source`.
    Copy {
        /// Account.
        account: String,
        /// Source mailbox.
        from: String,
        /// UIDs.
        uids: UidSet,
        /// The target mailbox's account (another account's mailbox shared with the caller,
        /// or `account`).
        to_account: String,
        /// Target mailbox.
        to: String,
        /// MOVE.
        remove_source: bool,
    },
    /// STORE.
    StoreFlags {
        /// Account.
        account: String,
        /// Mailbox.
        mailbox: String,
        /// UIDs.
        uids: UidSet,
        /// Add, remove, replace.
        mode: FlagMode,
        /// Flags.
        flags: Vec<String>,
        /// RFC 7162 UNCHANGEDSINCE.
        unchanged_since: Option<u64>,
    },
    /// EXPUNGE / UID EXPUNGE, or POP3's DELE+QUIT.
    Expunge {
        /// Account.
        account: String,
        /// Mailbox.
        mailbox: String,
        /// Restrict to these UIDs (UID EXPUNGE; POP3).
        uids: Option<UidSet>,
        /// Only messages flagged `\Deleted` (IMAP). POP3 removes the DELE'd messages whatever
        /// their flags: DELE marks in the session, not in the store.
        deleted_only: bool,
    },
    /// SETACL (`rights` given) or DELETEACL (`None`) on a mailbox (RFC 4314): AclChange, and
    /// MailboxCreate/MailboxDelete for an identifier the change makes the mailbox visible or
    /// invisible to (RFC 5423 §4.4).
    SetAcl {
        /// The mailbox's account.
        account: String,
        /// Mailbox.
        mailbox: String,
        /// An account name or `anyone`.
        identifier: String,
        /// The identifier's new rights; `None` removes its entry.
        rights: Option<crate::acl::Rights>,
    },
    /// A Login or Logout: no state changes, but the event is part of the ordered outbox like
    /// every other (RFC 5423 §4.3).
    Access {
        /// Account.
        account: String,
        /// Which event.
        access: Access,
    },
    /// A failed or refused authentication (`vnd.herald.LoginFailed`): no state changes.
    LoginFailed {
        /// The user name the client tried (authentication identity).
        user: String,
        /// How the client authenticated (`LOGIN`, `PLAIN`, `USER`, `Basic`).
        mechanism: String,
        /// Why it failed.
        failure: LoginFailure,
    },
    /// An IMAP session claims the messages below `upto` as its `\Recent` ones.
    ClaimRecent {
        /// Account.
        account: String,
        /// Mailbox.
        mailbox: String,
        /// The UIDVALIDITY the session knows the mailbox by: a session of a mailbox replaced
        /// under the name claims nothing.
        uidvalidity: u32,
        /// First UID not claimed.
        upto: u32,
    },
    /// Creates or replaces a subscription's delivery record (cursor included).
    PutDelivery(DeliveryRecord),
    /// Removes a subscription's record and its parked events.
    DeleteDelivery {
        /// Subscription name.
        name: String,
    },
    /// Moves a subscription's cursor.
    SetDeliveryCursor {
        /// Subscription name.
        name: String,
        /// Last acknowledged event id.
        cursor: u64,
    },
    /// Saves a subscription's delivery counters, and its cursor when given, atomically.
    SetDeliveryStats {
        /// Subscription name.
        name: String,
        /// The new cursor, if it moves.
        cursor: Option<u64>,
        /// The counters and current failure.
        stats: crate::model::DeliveryStats,
        /// Write only as the lease holder with this cursor.
        fence: Option<crate::model::LeaseFence>,
    },
    /// Pauses/resumes or disables a subscription.
    SetDeliveryState {
        /// Subscription name.
        name: String,
        /// Paused by an operator.
        paused: bool,
        /// Disabled by the receiver, with the reason; None clears it.
        disabled_reason: Option<String>,
    },
    /// Parks events and moves the cursor past them, atomically.
    ParkEvents {
        /// Subscription name.
        name: String,
        /// Event ids.
        ids: Vec<u64>,
        /// The last delivery error.
        reason: String,
        /// The new cursor.
        cursor: u64,
        /// Now, ms since the epoch.
        now_ms: i64,
        /// Write only as the lease holder with this cursor.
        fence: Option<crate::model::LeaseFence>,
    },
    /// Takes or renews a subscription's lease for `node` until `until_ms`, unless another node
    /// holds one that has not expired at `now_ms`: [`Output::Claimed`] with the record when
    /// `node` holds it now, `None` when another does.
    ClaimDelivery {
        /// Subscription name.
        name: String,
        /// The claiming node.
        node: String,
        /// Now, ms since the epoch.
        now_ms: i64,
        /// The lease's end, ms since the epoch.
        until_ms: i64,
    },
    /// Gives a subscription's lease up (a node stopping), if `node` holds it.
    ReleaseDelivery {
        /// Subscription name.
        name: String,
        /// The node giving it up.
        node: String,
    },
    /// Removes events from the parked list (after they were delivered by a replay).
    UnparkEvents {
        /// Subscription name.
        name: String,
        /// Event ids.
        ids: Vec<u64>,
    },
    /// Applies expiry policies.
    Expire {
        /// One account, or all.
        account: Option<String>,
        /// "Now", in ms since the epoch.
        now_ms: i64,
    },
    /// Removes the oldest events retention allows (see `retention`), at most `policy.batch`.
    PruneOutbox {
        /// What may go.
        policy: crate::retention::RetentionPolicy,
        /// The lowest in-process hold: nothing after it goes.
        hold: u64,
        /// "Now", in ms since the epoch.
        now_ms: i64,
    },
    /// Registers (or refreshes) a user's push subscription; at most `max` per account.
    PutPushSubscription {
        /// The subscription (its `user` is the account).
        sub: PushSubscription,
        /// Most push subscriptions one account may hold.
        max: usize,
    },
    /// Removes a user's push subscription (not found is an error).
    DeletePushSubscription {
        /// Account.
        account: String,
        /// Push service URL.
        endpoint: String,
    },
    /// SETMETADATA (RFC 5464): sets (`Some`) or removes (`None`) entries of one mailbox, or of
    /// the server when `mailbox` is `None`, all or none; one MetadataChange naming the entries
    /// that changed.
    SetMetadata {
        /// Account (private entries are its own; a mailbox is one of its mailboxes).
        account: String,
        /// Mailbox name, or `None` for server entries.
        mailbox: Option<String>,
        /// Entry names and new values, in the order given.
        entries: Vec<(String, Option<Vec<u8>>)>,
    },
    /// Removes the thread identifiers left by gone messages of one account whose expunges
    /// since its last sweep make it worth it (see `SweptThreads`).
    SweepThreads,
    /// Gives a mailbox its URLAUTH access key (`crate::urlauth`) unless it already has one;
    /// answers with the key in force ([`Output::AccessKey`]). No events.
    CreateAccessKey {
        /// Account.
        account: String,
        /// Mailbox.
        mailbox: String,
        /// The key to store when the mailbox has none.
        key: crate::urlauth::AccessKey,
    },
    /// RESETKEY: deletes the access key of one mailbox, or of every mailbox of the account, so
    /// every URL authorized under it stops working. No events (`crate::urlauth` says why).
    ResetAccessKeys {
        /// Account.
        account: String,
        /// One mailbox (which must exist), or all.
        mailbox: Option<String>,
    },
}

/// One message of [`Op::Import`].
#[derive(Debug, Clone)]
pub struct ImportItem {
    /// Content.
    pub blob: BlobRef,
    /// Flags and keywords.
    pub flags: Vec<String>,
    /// INTERNALDATE in ms.
    pub internal_date_ms: i64,
    /// The content's threading identifiers.
    pub thread: ThreadKeys,
    /// The message's UID in the source, if it has one.
    pub uid: Option<u32>,
}

/// What a mutation produced.
#[derive(Debug, Clone)]
pub enum Output {
    /// Nothing beyond the events.
    None,
    /// A mailbox.
    Mailbox(MailboxInfo),
    /// A new message.
    Appended(Appended),
    /// New messages, in the order given.
    AppendedMany(Vec<Appended>),
    /// What an import added.
    Imported(Imported),
    /// COPY/MOVE.
    Copied(CopyResult),
    /// STORE.
    Flags(StoreResult),
    /// Expunged UIDs.
    Expunged(Vec<u32>),
    /// Expired messages.
    Expired(Vec<Expired>),
    /// Quota after the change.
    Quota(QuotaInfo),
    /// The first UID a `\Recent` claim got (it got those from here to its `upto`).
    RecentFrom(u32),
    /// What a pruning transaction removed.
    Pruned(crate::retention::PruneReport),
    /// What a thread sweep did: the account swept (none: no account needed it) and how many
    /// identifiers went.
    SweptThreads(Option<(String, u64)>),
    /// A mailbox's URLAUTH access key.
    AccessKey(crate::urlauth::AccessKey),
    /// A lease claim: the subscription's record when the claimant holds it now.
    Claimed(Option<Box<DeliveryRecord>>),
}

/// A committed mutation.
#[derive(Debug, Clone)]
pub struct Applied {
    /// What it produced.
    pub output: Output,
    /// Its events, `vnd.herald.id` set.
    pub events: Vec<Event>,
}

/// One read.
#[derive(Debug, Clone)]
pub enum Query {
    /// Every account.
    Users,
    /// Password hash and admin bit of one account.
    Credentials(String),
    /// One account's quota.
    Quota(String),
    /// Every mailbox of an account.
    Mailboxes(String),
    /// A mailbox's ACL (the owner's implicit rights not included).
    Acl {
        /// Account.
        account: String,
        /// Mailbox.
        mailbox: String,
    },
    /// What `user` may do on a mailbox: everything for its owner, else the union of the
    /// user's and `anyone`'s entries (an empty set also when the mailbox does not exist).
    Rights {
        /// Account.
        account: String,
        /// Mailbox.
        mailbox: String,
        /// The user asking.
        user: String,
    },
    /// Other accounts' mailboxes `user` may see (`l` through its own or `anyone`'s entry).
    SharedMailboxes(String),
    /// One mailbox.
    Mailbox(String, String),
    /// Subscriptions of an account.
    Subscriptions(String),
    /// Message metadata (all messages when `uids` is None).
    Messages {
        /// Account.
        account: String,
        /// Mailbox.
        mailbox: String,
        /// UIDs.
        uids: Option<UidSet>,
    },
    /// STATUS counts of one mailbox.
    Counts {
        /// Account.
        account: String,
        /// Mailbox.
        mailbox: String,
        /// (UIDVALIDITY, first UID not yet claimed) of the `\Recent` claims this process
        /// made in memory: RECENT counts from the higher of this and the row's `recent_uid`.
        claimed: Option<(u32, u32)>,
    },
    /// Changes since a MODSEQ (see [`crate::Changes`]).
    Changes {
        /// Account.
        account: String,
        /// Mailbox.
        mailbox: String,
        /// MODSEQ the caller is up to date with.
        since_modseq: u64,
        /// Highest UID the caller knows.
        known_max_uid: u32,
        /// How many messages the caller knows.
        known_count: u64,
    },
    /// UIDs expunged after a MODSEQ (see [`crate::Vanished`]).
    Vanished {
        /// Account.
        account: String,
        /// Mailbox.
        mailbox: String,
        /// MODSEQ the caller is up to date with.
        since_modseq: u64,
    },
    /// The content digests (SHA-256) of messages, by UID (all when `uids` is None).
    ContentIds {
        /// Account.
        account: String,
        /// Mailbox.
        mailbox: String,
        /// UIDs.
        uids: Option<UidSet>,
    },
    /// Every message of a mailbox with the mailbox row's UIDVALIDITY and HIGHESTMODSEQ, read
    /// together (SELECT's snapshot).
    Snapshot {
        /// Account.
        account: String,
        /// Mailbox.
        mailbox: String,
        /// How many messages the caller expects (see [`Query::is_bounded`]).
        expected: u64,
    },
    /// The content of several messages, by UID; UIDs no longer in the mailbox are left out.
    Contents {
        /// Account.
        account: String,
        /// Mailbox.
        mailbox: String,
        /// UIDs.
        uids: UidSet,
        /// Their total size as the caller knows it from their metadata: a few small
        /// messages are read where the caller runs (see [`Query::is_bounded`]).
        expected_bytes: Option<u64>,
    },
    /// Outbox rows with id > after, at most `limit`.
    EventsAfter {
        /// Cursor.
        after: u64,
        /// Maximum rows.
        limit: usize,
    },
    /// Highest committed outbox id (seen by any process).
    LastEventId,
    /// The oldest outbox id kept and the highest committed.
    OutboxBounds,
    /// When the events with these ids were committed (their `timestamp`), in ms since the
    /// epoch; ids not in the outbox are left out, unreadable times are `None`.
    EventTimes(Vec<u64>),
    /// How many events each subscription has parked.
    ParkedCounts,
    /// Outbox rows with these ids (missing ids are skipped), ascending.
    EventsById(Vec<u64>),
    /// Every subscription's delivery record.
    Deliveries,
    /// A subscription's parked events, ascending.
    Parked(String),
    /// The resume point an import recorded for (account, source key) ([`Op::Import`]).
    ImportProgress {
        /// Account.
        account: String,
        /// The importer's key for the source mailbox.
        key: String,
    },
    /// An account's push subscriptions, oldest first.
    PushSubscriptions(String),
    /// The METADATA entries an account sees on one of its mailboxes, or on the server when the
    /// mailbox is `None`: the shared ones and its own private ones, by name.
    Metadata {
        /// Account.
        account: String,
        /// Mailbox name, or `None` for server entries.
        mailbox: Option<String>,
    },
    /// A mailbox's URLAUTH access key, if it has one.
    AccessKey {
        /// Account.
        account: String,
        /// Mailbox.
        mailbox: String,
    },
    /// Cross-checks counters, refcounts and the outbox; decodes and validates the outbox rows
    /// with ids above the given one.
    Consistency(u64),
}

/// Most messages a metadata read may name and still count as bounded.
const BOUNDED_MESSAGES: u64 = 256;

/// Most content bytes a bounded [`Query::Contents`] may expect to copy.
const BOUNDED_CONTENT_BYTES: u64 = 64 << 10;

/// Most messages a whole mailbox's metadata may be expected to hold and still count as
/// bounded: about half a millisecond of SQLite rows, less than a round trip to a blocking
/// thread costs on a busy server.
const BOUNDED_SNAPSHOT: u64 = 512;

impl Query {
    /// True for reads whose cost does not depend on what a client asks for: one account or
    /// mailbox row, a mailbox's changes or counts (which scan its rows inside SQLite but
    /// return little), its tombstones (bounded per mailbox), or the metadata of a few
    /// messages. A backend may run these where it
    /// is called instead of on a blocking thread.
    pub fn is_bounded(&self) -> bool {
        match self {
            Query::Credentials(_)
            | Query::Quota(_)
            | Query::Mailbox(..)
            | Query::Mailboxes(_)
            // An index lookup of the ACL entries naming the user (or anyone): as many rows as
            // mailboxes shared with it, like its own list. Every LIST asks it.
            | Query::SharedMailboxes(_)
            | Query::Acl { .. }
            | Query::Rights { .. }
            | Query::Subscriptions(_)
            | Query::Counts { .. }
            | Query::Changes { .. }
            | Query::Vanished { .. }
            | Query::LastEventId
            | Query::ImportProgress { .. }
            | Query::PushSubscriptions(_)
            | Query::Metadata { .. }
            | Query::AccessKey { .. }
            | Query::OutboxBounds => true,
            Query::EventTimes(ids) => ids.len() <= BOUNDED_MESSAGES as usize,
            // A whole mailbox the caller knows to be small (SELECT of an ordinary folder) is
            // bounded too; a whole mailbox of unknown size is not.
            Query::Snapshot { expected, .. } => *expected <= BOUNDED_SNAPSHOT,
            // A few small messages: copying them out of SQLite's page cache (or reading a
            // small blob file) costs less than the hand-off. FETCH BODY[] of one message, and
            // a FETCH of a few, read this way.
            Query::Contents {
                uids,
                expected_bytes,
                ..
            } => {
                uids.len() <= BOUNDED_MESSAGES
                    && expected_bytes.is_some_and(|b| b <= BOUNDED_CONTENT_BYTES)
            }
            Query::Messages { uids, .. } | Query::ContentIds { uids, .. } => {
                uids.as_ref().is_some_and(|u| u.len() <= BOUNDED_MESSAGES)
            }
            _ => false,
        }
    }
}

/// The answer to a [`Query`].
#[derive(Debug, Clone)]
pub enum Answer {
    /// Accounts.
    Users(Vec<UserInfo>),
    /// PHC string and admin bit (None when the account does not exist).
    Credentials(Option<Credentials>),
    /// Quota.
    Quota(QuotaInfo),
    /// Mailboxes.
    Mailboxes(Vec<MailboxInfo>),
    /// One mailbox.
    Mailbox(MailboxInfo),
    /// A mailbox's ACL, by identifier.
    Acl(Vec<crate::acl::AclEntry>),
    /// A user's rights on a mailbox.
    Rights(crate::acl::Rights),
    /// Mailboxes shared with a user.
    Shared(Vec<crate::acl::SharedMailbox>),
    /// Subscribed names.
    Subscriptions(Vec<String>),
    /// Message metadata.
    Messages(Vec<MessageMeta>),
    /// Changes since a MODSEQ.
    Changes(Changes),
    /// Expunged UIDs since a MODSEQ.
    Vanished(Vanished),
    /// STATUS counts.
    Counts(MailboxCounts),
    /// (UID, SHA-256 of the content) pairs, ascending by UID.
    ContentIds(Vec<(u32, [u8; 32])>),
    /// (UID, content) pairs, ascending by UID.
    Contents(Vec<(u32, Vec<u8>)>),
    /// A mailbox's messages with its row's UIDVALIDITY and HIGHESTMODSEQ.
    Snapshot {
        /// The mailbox's id.
        mailbox_id: i64,
        /// UIDVALIDITY.
        uidvalidity: u32,
        /// HIGHESTMODSEQ.
        highest_modseq: u64,
        /// The messages, ascending by UID.
        messages: Vec<MessageMeta>,
    },
    /// Outbox rows.
    Events(Vec<StoredEvent>),
    /// Delivery records.
    Deliveries(Vec<DeliveryRecord>),
    /// Parked events.
    Parked(Vec<ParkedEvent>),
    /// An id.
    Id(u64),
    /// An import's resume point, if one was recorded.
    Progress(Option<i64>),
    /// The outbox's bounds.
    OutboxBounds(OutboxBounds),
    /// `(id, ms since the epoch)` per event found.
    EventTimes(Vec<(u64, Option<i64>)>),
    /// `(subscription, parked events)`.
    ParkedCounts(Vec<(String, u64)>),
    /// Push subscriptions.
    PushSubscriptions(Vec<PushSubscription>),
    /// METADATA entries, ascending by name.
    Metadata(Vec<MetadataEntry>),
    /// A mailbox's URLAUTH access key (None: it has none yet).
    AccessKey(Option<crate::urlauth::AccessKey>),
    /// Consistency report.
    Consistency(Consistency),
}

/// What a storage engine provides; see the module documentation.
pub trait Backend: Send + Sync {
    /// Commits one mutation with its events; resolves after it is durable.
    fn submit(&self, ctx: SessionContext, op: Op) -> impl Future<Output = Result<Applied>> + Send;
    /// Commits mutations submitted together (one message to several recipients), each with
    /// its own outcome, in order, and in one transaction where they fit one; resolves after
    /// they are durable.
    fn submit_many(
        &self,
        ops: Vec<(SessionContext, Op)>,
    ) -> impl Future<Output = Vec<Result<Applied>>> + Send;
    /// Answers one read.
    fn query(&self, q: Query) -> impl Future<Output = Result<Answer>> + Send;
    /// Makes content durable and returns the reference a mutation can carry.
    fn put_blob(&self, data: Vec<u8>) -> impl Future<Output = Result<BlobRef>> + Send;
    /// The last committed outbox id, updated by this process's commits.
    fn outbox_watch(&self) -> watch::Receiver<u64>;
    /// A change counter for one mailbox id.
    fn mailbox_watch(&self, mailbox_id: i64) -> watch::Receiver<u64>;
    /// Stops accepting work and waits until everything submitted is finished.
    fn close(&self) -> impl Future<Output = ()> + Send;
    /// True while mutations can be submitted (not closed, the writer running).
    fn is_open(&self) -> bool;
    /// Takes the lock `name` for as long as the returned guard lives, unless another process
    /// sharing the store holds it (`None`). Within one process callers exclude each other
    /// themselves.
    fn try_lock(&self, name: &str) -> impl Future<Output = Result<Option<ClusterLock>>> + Send;
}

/// A lock of [`Backend::try_lock`]; released when dropped.
#[derive(Debug)]
pub enum ClusterLock {
    /// Nothing to hold beyond the process (the embedded store has one server process).
    Local,
    /// A PostgreSQL advisory lock of this process's session.
    Postgres(crate::postgres::HeldLock),
}

/// Every backend, dispatched statically.
#[derive(Debug)]
pub enum AnyBackend {
    /// SQLite in the data directory.
    Embedded(Embedded),
    /// A PostgreSQL database, possibly shared with other processes.
    Postgres(Box<PgBackend>),
}

impl Backend for AnyBackend {
    async fn submit(&self, ctx: SessionContext, op: Op) -> Result<Applied> {
        match self {
            AnyBackend::Embedded(b) => b.submit(ctx, op).await,
            AnyBackend::Postgres(b) => b.submit(ctx, op).await,
        }
    }
    async fn submit_many(&self, ops: Vec<(SessionContext, Op)>) -> Vec<Result<Applied>> {
        match self {
            AnyBackend::Embedded(b) => b.submit_many(ops).await,
            AnyBackend::Postgres(b) => b.submit_many(ops).await,
        }
    }
    async fn query(&self, q: Query) -> Result<Answer> {
        match self {
            AnyBackend::Embedded(b) => b.query(q).await,
            AnyBackend::Postgres(b) => b.query(q).await,
        }
    }
    async fn put_blob(&self, data: Vec<u8>) -> Result<BlobRef> {
        match self {
            AnyBackend::Embedded(b) => b.put_blob(data).await,
            AnyBackend::Postgres(b) => b.put_blob(data).await,
        }
    }
    fn outbox_watch(&self) -> watch::Receiver<u64> {
        match self {
            AnyBackend::Embedded(b) => b.outbox_watch(),
            AnyBackend::Postgres(b) => b.outbox_watch(),
        }
    }
    fn mailbox_watch(&self, mailbox_id: i64) -> watch::Receiver<u64> {
        match self {
            AnyBackend::Embedded(b) => b.mailbox_watch(mailbox_id),
            AnyBackend::Postgres(b) => b.mailbox_watch(mailbox_id),
        }
    }
    async fn close(&self) {
        match self {
            AnyBackend::Embedded(b) => b.close().await,
            AnyBackend::Postgres(b) => b.close().await,
        }
    }
    fn is_open(&self) -> bool {
        match self {
            AnyBackend::Embedded(b) => b.is_open(),
            AnyBackend::Postgres(b) => b.is_open(),
        }
    }
    async fn try_lock(&self, name: &str) -> Result<Option<ClusterLock>> {
        match self {
            AnyBackend::Embedded(b) => b.try_lock(name).await,
            AnyBackend::Postgres(b) => b.try_lock(name).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(uids: Option<UidSet>) -> Query {
        Query::Messages {
            account: "a".into(),
            mailbox: "INBOX".into(),
            uids,
        }
    }

    fn snapshot(expected: u64) -> Query {
        Query::Snapshot {
            account: "a".into(),
            mailbox: "INBOX".into(),
            expected,
        }
    }

    #[test]
    fn a_whole_mailbox_is_a_bounded_read_only_when_known_to_be_small() {
        assert!(snapshot(0).is_bounded());
        assert!(snapshot(200).is_bounded());
        assert!(snapshot(BOUNDED_SNAPSHOT).is_bounded());
        assert!(!snapshot(BOUNDED_SNAPSHOT + 1).is_bounded());
        // A size nobody knows goes to the blocking pool.
        assert!(!messages(None).is_bounded());
        assert!(messages(Some(UidSet::from_uids(1..=10))).is_bounded());
        assert!(!messages(Some(UidSet::from_uids(1..=1000))).is_bounded());
        // What LIST asks besides the mailbox rows.
        assert!(Query::SharedMailboxes("a".into()).is_bounded());
    }
}
