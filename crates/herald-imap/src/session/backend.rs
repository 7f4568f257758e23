//! [`Backend`]: the part of the store an IMAP session uses, as a trait.
//!
//! The session calls the store directly (async) instead of returning a request for every store
//! call the way the LMTP session does: an IMAP command often needs several dependent store calls
//! (FETCH reads metadata, then message bodies; COPY resolves sequence numbers, copies, then
//! reports COPYUID; every command ends by diffing the selected mailbox), and spelling each as a
//! request/answer pair would multiply the states without making anything more testable. The
//! session still does no socket I/O; tests and the fuzz target drive it with bytes against
//! [`super::memory::MemoryBackend`], and the server runs it on [`herald_store::Store`].
//!
//! Every method mirrors the `Store` method of the same name and returns the store's own types
//! and [`StoreError`], so mapping errors to IMAP response codes happens once, in the session.

use herald_events::UidSet;
use herald_store::urlauth::AccessKey;
use herald_store::{
    AclEntry, Appended, Changes, Committed, CopyResult, Disconnect, FlagMode, Identity,
    LoginFailure, MailboxCounts, MailboxInfo, MessageMeta, MetadataEntry, MetadataLimits,
    QuotaInfo, Rights, SessionContext, SpecialUse, Store, StoreError, StoreResult, StoredEvent,
    Vanished,
};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The store result type.
pub type Result<T> = std::result::Result<T, StoreError>;

/// The store operations an IMAP session needs. See the module docs.
#[allow(missing_docs)]
pub trait Backend: Send + Sync + 'static {
    fn authenticate(
        &self,
        auth_user: &str,
        password: &str,
        authz: Option<&str>,
    ) -> impl Future<Output = Result<Identity>> + Send;
    fn login(&self, ctx: &SessionContext) -> impl Future<Output = Result<Committed<()>>> + Send;
    /// Whether the account has been disabled since (an open session then ends).
    fn is_disabled(&self, user: &str) -> impl Future<Output = Result<bool>> + Send;
    /// Records a failed or refused authentication (`vnd.herald.LoginFailed`).
    fn login_failed(
        &self,
        ctx: &SessionContext,
        user: &str,
        mechanism: &str,
        failure: LoginFailure,
    ) -> impl Future<Output = Result<Committed<()>>> + Send;
    fn logout(
        &self,
        ctx: &SessionContext,
        disconnect: Disconnect,
        duration: Duration,
    ) -> impl Future<Output = Result<Committed<()>>> + Send;
    fn create_mailbox(
        &self,
        ctx: &SessionContext,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> impl Future<Output = Result<Committed<MailboxInfo>>> + Send;
    fn delete_mailbox(
        &self,
        ctx: &SessionContext,
        name: &str,
    ) -> impl Future<Output = Result<Committed<()>>> + Send;
    fn rename_mailbox(
        &self,
        ctx: &SessionContext,
        from: &str,
        to: &str,
    ) -> impl Future<Output = Result<Committed<MailboxInfo>>> + Send;
    fn subscribe(
        &self,
        ctx: &SessionContext,
        name: &str,
        on: bool,
    ) -> impl Future<Output = Result<Committed<()>>> + Send;
    fn list_mailboxes(
        &self,
        ctx: &SessionContext,
    ) -> impl Future<Output = Result<Vec<MailboxInfo>>> + Send;
    fn mailbox(
        &self,
        ctx: &SessionContext,
        name: &str,
    ) -> impl Future<Output = Result<MailboxInfo>> + Send;
    fn subscriptions(
        &self,
        ctx: &SessionContext,
    ) -> impl Future<Output = Result<Vec<String>>> + Send;
    fn append(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        content: Vec<u8>,
        flags: &[String],
        internal_date_ms: Option<i64>,
    ) -> impl Future<Output = Result<Committed<Appended>>> + Send;
    fn append_many(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        messages: Vec<(Vec<u8>, Vec<String>, Option<i64>)>,
    ) -> impl Future<Output = Result<Committed<Vec<Appended>>>> + Send;
    fn copy(
        &self,
        ctx: &SessionContext,
        from: &str,
        uids: &UidSet,
        to: &str,
    ) -> impl Future<Output = Result<Committed<CopyResult>>> + Send;
    fn move_messages(
        &self,
        ctx: &SessionContext,
        from: &str,
        uids: &UidSet,
        to: &str,
    ) -> impl Future<Output = Result<Committed<CopyResult>>> + Send;
    fn store_flags(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        uids: &UidSet,
        mode: FlagMode,
        flags: &[String],
        unchanged_since: Option<u64>,
    ) -> impl Future<Output = Result<Committed<StoreResult>>> + Send;
    fn expunge(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        uids: Option<&UidSet>,
    ) -> impl Future<Output = Result<Committed<Vec<u32>>>> + Send;
    fn fetch(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        uids: Option<&UidSet>,
    ) -> impl Future<Output = Result<Vec<MessageMeta>>> + Send;
    /// Every message of `mailbox` (SELECT), `expected` being how many the mailbox held when
    /// last looked at: a hint of the read's size only.
    /// Every message of the mailbox `info` was just read of (SELECT's snapshot), shared with
    /// other sessions when the store keeps it.
    fn fetch_all(
        &self,
        ctx: &SessionContext,
        info: &MailboxInfo,
    ) -> impl Future<Output = Result<Arc<Vec<MessageMeta>>>> + Send {
        let all = self.fetch(ctx, &info.name, None);
        async move { all.await.map(Arc::new) }
    }
    fn read_message(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        uid: u32,
    ) -> impl Future<Output = Result<Vec<u8>>> + Send;
    /// The bytes of the messages in `uids`, ascending by UID, leaving out those gone;
    /// `expected_bytes` is their total RFC822.SIZE as the session knows it.
    fn read_messages(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        uids: &UidSet,
        expected_bytes: Option<u64>,
    ) -> impl Future<Output = Result<Vec<(u32, Vec<u8>)>>> + Send;
    fn content_ids(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        uids: Option<&UidSet>,
    ) -> impl Future<Output = Result<Vec<(u32, [u8; 32])>>> + Send;
    fn changes(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        since_modseq: u64,
        known_max_uid: u32,
        known_count: u64,
    ) -> impl Future<Output = Result<Changes>> + Send;
    fn counts(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
    ) -> impl Future<Output = Result<MailboxCounts>> + Send;
    fn vanished(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        since_modseq: u64,
    ) -> impl Future<Output = Result<Vanished>> + Send;
    fn quota(&self, user: &str) -> impl Future<Output = Result<QuotaInfo>> + Send;
    fn set_quota(
        &self,
        ctx: &SessionContext,
        user: &str,
        storage_kb: Option<u64>,
        messages: Option<u64>,
    ) -> impl Future<Output = Result<Committed<QuotaInfo>>> + Send;
    fn claim_recent(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        uidvalidity: u32,
        upto: u32,
    ) -> impl Future<Output = Result<u32>> + Send;
    /// "Mailbox changed" notifications (a counter bumped after each commit touching it).
    fn mailbox_watch(&self, mailbox_id: i64) -> watch::Receiver<u64>;
    /// METADATA entries the user sees on a mailbox, or on the server (`None`).
    fn get_metadata(
        &self,
        ctx: &SessionContext,
        mailbox: Option<&str>,
    ) -> impl Future<Output = Result<Vec<MetadataEntry>>> + Send;
    /// SETMETADATA: all or none; `None` values remove.
    fn set_metadata(
        &self,
        ctx: &SessionContext,
        mailbox: Option<&str>,
        entries: Vec<(String, Option<Vec<u8>>)>,
    ) -> impl Future<Output = Result<Committed<()>>> + Send;
    /// The METADATA limits the store enforces.
    fn metadata_limits(&self) -> MetadataLimits;
    /// The URLAUTH access key of a mailbox of the session's user, created on first use
    /// (GENURLAUTH).
    fn access_key(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
    ) -> impl Future<Output = Result<AccessKey>> + Send;
    /// The access key of `owner`'s mailbox if it has one; never creates one (URLFETCH).
    fn access_key_of(
        &self,
        owner: &str,
        mailbox: &str,
    ) -> impl Future<Output = Result<Option<AccessKey>>> + Send;
    /// RESETKEY: forgets the key of one mailbox of the session's user, or of all.
    fn reset_access_keys(
        &self,
        ctx: &SessionContext,
        mailbox: Option<&str>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// "Outbox advanced": the last outbox id committed (NOTIFY follows the outbox).
    fn outbox_watch(&self) -> watch::Receiver<u64>;
    /// Outbox rows after `after`, ascending, at most `limit`.
    fn events_after(
        &self,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredEvent>>> + Send;
    /// The highest committed outbox id.
    fn last_event_id(&self) -> impl Future<Output = Result<u64>> + Send;
    /// Whether the store commits events of type `t` (`[events] groups`): NOTIFY can report
    /// only what the outbox holds.
    fn generates(&self, t: &herald_events::EventType) -> bool;
    /// MYRIGHTS: the session's rights on a mailbox (NotFound when it may not see it).
    fn my_rights(
        &self,
        ctx: &SessionContext,
        name: &str,
    ) -> impl Future<Output = Result<Rights>> + Send;
    /// GETACL: the owner's implicit entry, then the stored ones (needs `a`).
    fn get_acl(
        &self,
        ctx: &SessionContext,
        name: &str,
    ) -> impl Future<Output = Result<Vec<AclEntry>>> + Send;
    /// SETACL (`Some`) or DELETEACL (`None`) (needs `a`).
    fn set_acl(
        &self,
        ctx: &SessionContext,
        name: &str,
        identifier: &str,
        rights: Option<Rights>,
    ) -> impl Future<Output = Result<Committed<()>>> + Send;
}

impl Backend for Store {
    fn authenticate(
        &self,
        auth_user: &str,
        password: &str,
        authz: Option<&str>,
    ) -> impl Future<Output = Result<Identity>> + Send {
        Store::authenticate(self, auth_user, password, authz)
    }
    fn login(&self, ctx: &SessionContext) -> impl Future<Output = Result<Committed<()>>> + Send {
        Store::login(self, ctx)
    }
    fn is_disabled(&self, user: &str) -> impl Future<Output = Result<bool>> + Send {
        Store::is_disabled(self, user)
    }
    fn login_failed(
        &self,
        ctx: &SessionContext,
        user: &str,
        mechanism: &str,
        failure: LoginFailure,
    ) -> impl Future<Output = Result<Committed<()>>> + Send {
        Store::login_failed(self, ctx, user, mechanism, failure)
    }
    fn logout(
        &self,
        ctx: &SessionContext,
        disconnect: Disconnect,
        duration: Duration,
    ) -> impl Future<Output = Result<Committed<()>>> + Send {
        Store::logout(self, ctx, disconnect, duration)
    }
    fn create_mailbox(
        &self,
        ctx: &SessionContext,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> impl Future<Output = Result<Committed<MailboxInfo>>> + Send {
        Store::create_mailbox(self, ctx, name, special_use)
    }
    fn delete_mailbox(
        &self,
        ctx: &SessionContext,
        name: &str,
    ) -> impl Future<Output = Result<Committed<()>>> + Send {
        Store::delete_mailbox(self, ctx, name)
    }
    fn rename_mailbox(
        &self,
        ctx: &SessionContext,
        from: &str,
        to: &str,
    ) -> impl Future<Output = Result<Committed<MailboxInfo>>> + Send {
        Store::rename_mailbox(self, ctx, from, to)
    }
    fn subscribe(
        &self,
        ctx: &SessionContext,
        name: &str,
        on: bool,
    ) -> impl Future<Output = Result<Committed<()>>> + Send {
        Store::subscribe(self, ctx, name, on)
    }
    fn list_mailboxes(
        &self,
        ctx: &SessionContext,
    ) -> impl Future<Output = Result<Vec<MailboxInfo>>> + Send {
        Store::list_mailboxes(self, ctx)
    }
    fn mailbox(
        &self,
        ctx: &SessionContext,
        name: &str,
    ) -> impl Future<Output = Result<MailboxInfo>> + Send {
        Store::mailbox(self, ctx, name)
    }
    fn subscriptions(
        &self,
        ctx: &SessionContext,
    ) -> impl Future<Output = Result<Vec<String>>> + Send {
        Store::subscriptions(self, ctx)
    }
    fn append(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        content: Vec<u8>,
        flags: &[String],
        internal_date_ms: Option<i64>,
    ) -> impl Future<Output = Result<Committed<Appended>>> + Send {
        Store::append(self, ctx, mailbox, content, flags, internal_date_ms)
    }
    fn copy(
        &self,
        ctx: &SessionContext,
        from: &str,
        uids: &UidSet,
        to: &str,
    ) -> impl Future<Output = Result<Committed<CopyResult>>> + Send {
        Store::copy(self, ctx, from, uids, to)
    }
    fn move_messages(
        &self,
        ctx: &SessionContext,
        from: &str,
        uids: &UidSet,
        to: &str,
    ) -> impl Future<Output = Result<Committed<CopyResult>>> + Send {
        Store::move_messages(self, ctx, from, uids, to)
    }
    fn store_flags(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        uids: &UidSet,
        mode: FlagMode,
        flags: &[String],
        unchanged_since: Option<u64>,
    ) -> impl Future<Output = Result<Committed<StoreResult>>> + Send {
        Store::store_flags(self, ctx, mailbox, uids, mode, flags, unchanged_since)
    }
    fn expunge(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        uids: Option<&UidSet>,
    ) -> impl Future<Output = Result<Committed<Vec<u32>>>> + Send {
        Store::expunge(self, ctx, mailbox, uids)
    }
    fn fetch(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        uids: Option<&UidSet>,
    ) -> impl Future<Output = Result<Vec<MessageMeta>>> + Send {
        Store::fetch(self, ctx, mailbox, uids)
    }
    fn fetch_all(
        &self,
        ctx: &SessionContext,
        info: &MailboxInfo,
    ) -> impl Future<Output = Result<Arc<Vec<MessageMeta>>>> + Send {
        Store::fetch_all(self, ctx, info)
    }
    fn read_message(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        uid: u32,
    ) -> impl Future<Output = Result<Vec<u8>>> + Send {
        Store::read_message(self, ctx, mailbox, uid)
    }
    fn read_messages(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        uids: &UidSet,
        expected_bytes: Option<u64>,
    ) -> impl Future<Output = Result<Vec<(u32, Vec<u8>)>>> + Send {
        Store::read_messages(self, ctx, mailbox, uids, expected_bytes)
    }
    fn quota(&self, user: &str) -> impl Future<Output = Result<QuotaInfo>> + Send {
        Store::quota(self, user)
    }
    fn set_quota(
        &self,
        ctx: &SessionContext,
        user: &str,
        storage_kb: Option<u64>,
        messages: Option<u64>,
    ) -> impl Future<Output = Result<Committed<QuotaInfo>>> + Send {
        Store::set_quota(self, ctx, user, storage_kb, messages)
    }
    fn claim_recent(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        uidvalidity: u32,
        upto: u32,
    ) -> impl Future<Output = Result<u32>> + Send {
        Store::claim_recent(self, ctx, mailbox, uidvalidity, upto)
    }
    fn append_many(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        messages: Vec<(Vec<u8>, Vec<String>, Option<i64>)>,
    ) -> impl Future<Output = Result<Committed<Vec<Appended>>>> + Send {
        Store::append_many(self, ctx, mailbox, messages)
    }
    fn content_ids(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        uids: Option<&UidSet>,
    ) -> impl Future<Output = Result<Vec<(u32, [u8; 32])>>> + Send {
        Store::content_ids(self, ctx, mailbox, uids)
    }
    fn changes(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        since_modseq: u64,
        known_max_uid: u32,
        known_count: u64,
    ) -> impl Future<Output = Result<Changes>> + Send {
        Store::changes(self, ctx, mailbox, since_modseq, known_max_uid, known_count)
    }
    fn counts(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
    ) -> impl Future<Output = Result<MailboxCounts>> + Send {
        Store::counts(self, ctx, mailbox)
    }
    fn vanished(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        since_modseq: u64,
    ) -> impl Future<Output = Result<Vanished>> + Send {
        Store::vanished(self, ctx, mailbox, since_modseq)
    }
    fn my_rights(
        &self,
        ctx: &SessionContext,
        name: &str,
    ) -> impl Future<Output = Result<Rights>> + Send {
        Store::my_rights(self, ctx, name)
    }
    fn get_acl(
        &self,
        ctx: &SessionContext,
        name: &str,
    ) -> impl Future<Output = Result<Vec<AclEntry>>> + Send {
        Store::get_acl(self, ctx, name)
    }
    fn set_acl(
        &self,
        ctx: &SessionContext,
        name: &str,
        identifier: &str,
        rights: Option<Rights>,
    ) -> impl Future<Output = Result<Committed<()>>> + Send {
        Store::set_acl(self, ctx, name, identifier, rights)
    }
    fn mailbox_watch(&self, mailbox_id: i64) -> watch::Receiver<u64> {
        Store::mailbox_watch(self, mailbox_id)
    }
    fn get_metadata(
        &self,
        ctx: &SessionContext,
        mailbox: Option<&str>,
    ) -> impl Future<Output = Result<Vec<MetadataEntry>>> + Send {
        Store::get_metadata(self, ctx, mailbox)
    }
    fn set_metadata(
        &self,
        ctx: &SessionContext,
        mailbox: Option<&str>,
        entries: Vec<(String, Option<Vec<u8>>)>,
    ) -> impl Future<Output = Result<Committed<()>>> + Send {
        Store::set_metadata(self, ctx, mailbox, entries)
    }
    fn metadata_limits(&self) -> MetadataLimits {
        Store::metadata_limits(self)
    }
    fn access_key(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
    ) -> impl Future<Output = Result<AccessKey>> + Send {
        Store::access_key(self, ctx, mailbox)
    }
    fn access_key_of(
        &self,
        owner: &str,
        mailbox: &str,
    ) -> impl Future<Output = Result<Option<AccessKey>>> + Send {
        Store::access_key_of(self, owner, mailbox)
    }
    fn reset_access_keys(
        &self,
        ctx: &SessionContext,
        mailbox: Option<&str>,
    ) -> impl Future<Output = Result<()>> + Send {
        Store::reset_access_keys(self, ctx, mailbox)
    }
    fn outbox_watch(&self) -> watch::Receiver<u64> {
        Store::outbox_watch(self)
    }
    fn events_after(
        &self,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredEvent>>> + Send {
        Store::events_after(self, after, limit)
    }
    fn last_event_id(&self) -> impl Future<Output = Result<u64>> + Send {
        Store::last_event_id(self)
    }
    fn generates(&self, t: &herald_events::EventType) -> bool {
        self.config().generates(t)
    }
}
