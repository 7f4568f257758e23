//! [`MemoryBackend`]: an in-memory [`Backend`] for tests and the fuzz target.
//!
//! It keeps the store's observable rules that the IMAP layer depends on — canonical mailbox
//! names (`herald_store::names`), UIDs that only grow, per-mailbox MODSEQ, `\Noselect` parents,
//! canonical flags (`herald_store::flags`), quotas, admins acting as users, a change counter
//! per mailbox for IDLE, expunge tombstones (every one kept, unless a test drops them with
//! [`MemoryBackend::forget_tombstones`]) and threads by Message-ID (`herald_store::threading`;
//! a thread is never freed here), METADATA entries with the store's limits and rules — and
//! nothing else: its operations record no events and nothing is durable. Tests that assert
//! events run against the real store (`tests/` in this crate and the `herald` binary's
//! end-to-end tests). It does keep an outbox that tests fill with
//! [`MemoryBackend::push_event`], so NOTIFY sessions can be driven by the events a store
//! would commit.
//! Being plain memory, it makes a session fast enough to fuzz.
//!
//! ACLs: SETACL, DELETEACL, GETACL and MYRIGHTS follow the store's rules (owner's implicit
//! rights, `anyone`, `a` needed to read or change another account's ACL, NotFound for a
//! mailbox the user may not see) on names of the Other Users namespace, but the other
//! operations here act on the session's own account only; opening a shared mailbox is the
//! real store's job and is tested there and end to end.

use super::backend::{Backend, Result};
use herald_events::UidSet;
use herald_store::flags as sflags;
use herald_store::urlauth::{self, AccessKey};
use herald_store::{
    AclEntry, Appended, Changes, Committed, CopyResult, Disconnect, FlagMode, Identity,
    LoginFailure, MailboxCounts, MailboxInfo, MessageMeta, MetadataEntry, MetadataLimits,
    MetadataRefusal, QuotaInfo, QuotaResource, Rights, SessionContext, SpecialUse, StoreError,
    StoreResult, StoredEvent, Vanished, names, threading,
};
use std::collections::{BTreeMap, HashMap};
use std::future::{Future, ready};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, Clone)]
struct Msg {
    content: Arc<Vec<u8>>,
    flags: Vec<String>,
    date: i64,
    modseq: u64,
    saved: i64,
    thread: u64,
}

#[derive(Debug)]
struct Mbox {
    id: i64,
    uidvalidity: u32,
    uidnext: u32,
    modseq: u64,
    noselect: bool,
    special_use: Option<SpecialUse>,
    msgs: BTreeMap<u32, Msg>,
    recent_uid: u32,
    /// Expunged UIDs with the MODSEQ of their expunge.
    tombstones: Vec<(u32, u64)>,
    /// Tombstones at or below this MODSEQ may be gone.
    tombstone_floor: u64,
    /// METADATA entries: the owner's private ones, and the shared ones.
    meta: Meta,
    /// The URLAUTH access key, once one was asked for.
    access_key: Option<AccessKey>,
    /// The ACL: identifier → rights (the owner's are implicit).
    acl: BTreeMap<String, Rights>,
}

/// The METADATA entries of one mailbox or of the server, by (lower-case) name.
#[derive(Debug, Clone, Default)]
struct Meta {
    private: BTreeMap<String, Vec<u8>>,
    shared: BTreeMap<String, Vec<u8>>,
}

impl Meta {
    fn len(&self) -> usize {
        self.private.len() + self.shared.len()
    }
}

#[derive(Debug, Default)]
struct Account {
    password: String,
    admin: bool,
    disabled: bool,
    storage_kb: Option<u64>,
    max_messages: Option<u64>,
    mailboxes: BTreeMap<String, Mbox>,
    subscriptions: Vec<String>,
    /// Message-IDs seen in this account, with the thread of the message that carried them.
    thread_refs: HashMap<String, u64>,
    /// Private server METADATA entries.
    server_private: BTreeMap<String, Vec<u8>>,
}

#[derive(Debug, Default)]
struct State {
    accounts: HashMap<String, Account>,
    next_id: i64,
    next_thread: u64,
    watches: HashMap<i64, watch::Sender<u64>>,
    /// Logins and logouts recorded, for tests: (user, "login" | disconnect kind).
    access: Vec<(String, String)>,
    /// Shared server METADATA entries.
    server_shared: BTreeMap<String, Vec<u8>>,
    metadata_limits: MetadataLimits,
    /// Events tests pushed, ids from 1.
    outbox: Vec<StoredEvent>,
    /// "Outbox advanced", created on first use.
    outbox_tx: Option<watch::Sender<u64>>,
    /// The event groups generated (`[events] groups`); empty: all.
    event_groups: Vec<herald_events::EventGroup>,
}

impl State {
    fn outbox_tx(&mut self) -> &watch::Sender<u64> {
        let last = self.outbox.len() as u64;
        self.outbox_tx
            .get_or_insert_with(|| watch::Sender::new(last))
    }
}

/// An in-memory store. Cheap to clone; clones share state (like `Store`).
#[derive(Debug, Clone, Default)]
pub struct MemoryBackend {
    state: Arc<Mutex<State>>,
}

fn done<T>(value: T) -> Committed<T> {
    Committed {
        value,
        events: Vec::new(),
    }
}

fn nf(what: &'static str, name: &str) -> StoreError {
    StoreError::NotFound {
        what,
        name: name.to_owned(),
    }
}

impl State {
    fn account(&mut self, ctx: &SessionContext) -> Result<&mut Account> {
        let user = ctx.user.as_deref().ok_or(StoreError::NoUser)?;
        self.accounts
            .get_mut(user)
            .ok_or_else(|| nf("account", user))
    }

    fn bump(&mut self, id: i64) {
        if let Some(w) = self.watches.get(&id) {
            w.send_modify(|v| *v += 1);
        }
    }

    fn new_mailbox(&mut self, special_use: Option<SpecialUse>) -> Mbox {
        self.next_id += 1;
        Mbox {
            id: self.next_id,
            uidvalidity: 1000 + self.next_id as u32,
            uidnext: 1,
            modseq: 1,
            noselect: false,
            special_use,
            msgs: BTreeMap::new(),
            recent_uid: 1,
            tombstones: Vec::new(),
            tombstone_floor: 0,
            meta: Meta::default(),
            access_key: None,
            acl: BTreeMap::new(),
        }
    }

    /// The mailbox `name` names for the session's user — its own, or another account's in
    /// the Other Users namespace — with its owner and the user's rights on it. NotFound when
    /// it does not exist or the user may not see it.
    fn acl_target(
        &mut self,
        ctx: &SessionContext,
        name: &str,
    ) -> Result<(String, &mut Mbox, Rights)> {
        let me = ctx.user.clone().ok_or(StoreError::NoUser)?;
        let (owner, mailbox) = match herald_store::acl::other_user(name) {
            Some((owner, rest)) => (owner.to_owned(), rest.to_owned()),
            None => (me.clone(), name.to_owned()),
        };
        let canonical = names::mailbox(&mailbox, false).map_err(|_| nf("mailbox", name))?;
        let mb = self
            .accounts
            .get_mut(&owner)
            .and_then(|a| a.mailboxes.get_mut(&canonical))
            .filter(|m| !m.noselect)
            .ok_or_else(|| nf("mailbox", name))?;
        let rights = if owner == me {
            Rights::ALL
        } else {
            [me.as_str(), herald_store::acl::ANYONE]
                .iter()
                .filter_map(|i| mb.acl.get(*i))
                .fold(Rights::NONE, |a, r| a | *r)
        };
        if !rights.sees() {
            return Err(nf("mailbox", name));
        }
        Ok((owner, mb, rights))
    }
}

/// NoPermission naming what of `needed` the user lacks on `name`, as the store answers.
fn need(name: &str, rights: Rights, needed: Rights) -> Result<()> {
    let missing = needed.without(rights);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(StoreError::NoPermission {
            mailbox: name.to_owned(),
            needed: missing.to_string(),
        })
    }
}

fn need_read(name: &str, rights: Rights) -> Result<()> {
    need(name, rights, Rights::READ)
}

fn need_admin(name: &str, rights: Rights) -> Result<()> {
    need(name, rights, Rights::ADMIN)
}

impl Account {
    /// The thread of a new message, as the store picks it: the oldest thread any of its
    /// identifiers belongs to, else a new one (`herald_store::threading`).
    fn thread_for(&mut self, keys: &threading::ThreadKeys, next_thread: &mut u64) -> u64 {
        let found = keys.all().filter_map(|k| self.thread_refs.get(k)).min();
        let thread = match found {
            Some(t) => *t,
            None => {
                *next_thread += 1;
                *next_thread
            }
        };
        for k in keys.all() {
            self.thread_refs.entry(k.to_owned()).or_insert(thread);
        }
        thread
    }
}

/// A message's metadata as the store reports it.
fn meta(uid: u32, m: &Msg) -> MessageMeta {
    MessageMeta {
        uid,
        size: m.content.len() as u64,
        internal_date_ms: m.date,
        flags: m.flags.clone(),
        modseq: m.modseq,
        save_date_ms: Some(m.saved),
        thread_id: m.thread,
    }
}

fn info(name: &str, m: &Mbox) -> MailboxInfo {
    MailboxInfo {
        id: m.id,
        name: name.to_owned(),
        uidvalidity: m.uidvalidity,
        uidnext: m.uidnext,
        highest_modseq: m.modseq,
        messages: m.msgs.len() as u64,
        noselect: m.noselect,
        special_use: m.special_use,
        max_age_secs: None,
        recent_uid: m.recent_uid,
    }
}

fn selectable<'a>(acct: &'a mut Account, name: &str) -> Result<(String, &'a mut Mbox)> {
    let name = names::mailbox(name, false)?;
    match acct.mailboxes.get_mut(&name) {
        Some(m) if m.noselect => Err(StoreError::NoSelect(name)),
        Some(m) => Ok((name, m)),
        None => Err(nf("mailbox", &name)),
    }
}

fn usage(acct: &Account) -> (u64, u64) {
    let mut bytes = 0;
    let mut count = 0;
    for m in acct.mailboxes.values() {
        for msg in m.msgs.values() {
            bytes += msg.content.len() as u64;
            count += 1;
        }
    }
    (bytes, count)
}

fn check_quota(user: &str, acct: &Account, add_bytes: u64, add_msgs: u64) -> Result<()> {
    let (bytes, count) = usage(acct);
    if let Some(limit) = acct.storage_kb {
        let usage = (bytes + add_bytes).div_ceil(1024);
        if usage > limit {
            return Err(StoreError::OverQuota {
                user: user.to_owned(),
                resource: QuotaResource::Storage,
                limit,
                usage,
                event_id: 0,
            });
        }
    }
    if let Some(limit) = acct.max_messages
        && count + add_msgs > limit
    {
        return Err(StoreError::OverQuota {
            user: user.to_owned(),
            resource: QuotaResource::Messages,
            limit,
            usage: count + add_msgs,
            event_id: 0,
        });
    }
    Ok(())
}

impl MemoryBackend {
    /// An empty store.
    pub fn new() -> MemoryBackend {
        MemoryBackend::default()
    }

    /// Changes the METADATA limits (the store's defaults until then).
    pub fn set_metadata_limits(&self, limits: MetadataLimits) {
        let _ = self.with(|s| {
            s.metadata_limits = limits;
            Ok(())
        });
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s)
    }

    /// Adds an account with an INBOX.
    pub fn add_user(&self, name: &str, password: &str, admin: bool) {
        let _ = self.with(|s| {
            let inbox = s.new_mailbox(None);
            let mut acct = Account {
                password: password.to_owned(),
                admin,
                ..Account::default()
            };
            acct.mailboxes.insert("INBOX".to_owned(), inbox);
            acct.subscriptions.push("INBOX".to_owned());
            s.accounts.insert(name.to_owned(), acct);
            Ok(())
        });
    }

    /// Disables (or enables) an account as `herald user disable` would.
    pub fn set_disabled(&self, name: &str, disabled: bool) {
        let _ = self.with(|s| {
            if let Some(a) = s.accounts.get_mut(name) {
                a.disabled = disabled;
            }
            Ok(())
        });
    }

    /// Delivers a message to `user`'s `mailbox` as another session or LMTP would.
    pub fn deliver(&self, user: &str, mailbox: &str, content: &[u8]) -> Result<u32> {
        let ctx = SessionContext::user("lmtp", user);
        self.do_append(&ctx, mailbox, content.to_vec(), &[], None)
            .map(|c| c.value.uid)
    }

    /// Delivers a message with a given INTERNALDATE (milliseconds since the epoch), as an
    /// APPEND with a date would; tests of date order use it.
    pub fn deliver_at(
        &self,
        user: &str,
        mailbox: &str,
        content: &[u8],
        date_ms: i64,
    ) -> Result<u32> {
        let ctx = SessionContext::user("lmtp", user);
        self.do_append(&ctx, mailbox, content.to_vec(), &[], Some(date_ms))
            .map(|c| c.value.uid)
    }

    /// Moves a mailbox's next UID up to `uidnext`, as if messages below it had come and gone
    /// (tests that need large UIDs use it instead of delivering thousands of messages).
    pub fn skip_to_uid(&self, user: &str, mailbox: &str, uidnext: u32) -> Result<()> {
        let ctx = SessionContext::user("lmtp", user);
        self.with(|s| {
            let (_, mb) = selectable(s.account(&ctx)?, mailbox)?;
            mb.uidnext = mb.uidnext.max(uidnext);
            Ok(())
        })
    }

    /// Drops a mailbox's expunge tombstones, as the store does past its bound: QRESYNC
    /// answers from before now can no longer be exact.
    pub fn forget_tombstones(&self, user: &str, mailbox: &str) -> Result<()> {
        let ctx = SessionContext::user("lmtp", user);
        self.with(|s| {
            let (_, mb) = selectable(s.account(&ctx)?, mailbox)?;
            mb.tombstones.clear();
            mb.tombstone_floor = mb.modseq;
            Ok(())
        })
    }

    /// Generates only these event groups from now on, as `[events] groups` would.
    pub fn set_event_groups(&self, groups: &[herald_events::EventGroup]) {
        let mut st = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        st.event_groups = groups.to_vec();
    }

    /// Appends `event` to the outbox as the store would commit it (with its `vnd.herald.id`)
    /// and wakes the outbox's watchers; returns the id.
    pub fn push_event(&self, mut event: herald_events::Event) -> u64 {
        let mut st = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let id = st.outbox.len() as u64 + 1;
        event.set_herald_id(id);
        st.outbox.push(StoredEvent {
            id,
            json: event.to_json(),
        });
        st.outbox_tx().send_replace(id);
        id
    }

    /// The logins and logouts recorded so far: `(user, "login")` or `(user, disconnect)`.
    pub fn access_log(&self) -> Vec<(String, String)> {
        self.with(|s| Ok(s.access.clone())).unwrap_or_default()
    }

    fn do_append(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        content: Vec<u8>,
        flags: &[String],
        date: Option<i64>,
    ) -> Result<Committed<Appended>> {
        let mut flags = sflags::canonical(flags)?;
        flags.sort();
        let keys = threading::keys(&content);
        self.with(|s| {
            let user = ctx.user.clone().unwrap_or_default();
            let mut next_thread = s.next_thread;
            let acct = s.account(ctx)?;
            check_quota(&user, acct, content.len() as u64, 1)?;
            selectable(acct, mailbox)?;
            let thread = acct.thread_for(&keys, &mut next_thread);
            let (_, mb) = selectable(acct, mailbox)?;
            let uid = mb.uidnext;
            mb.uidnext += 1;
            mb.modseq += 1;
            mb.msgs.insert(
                uid,
                Msg {
                    content: Arc::new(content),
                    flags,
                    date: date.unwrap_or_else(herald_store::now_ms),
                    modseq: mb.modseq,
                    saved: herald_store::now_ms(),
                    thread,
                },
            );
            let a = Appended {
                mailbox_id: mb.id,
                uidvalidity: mb.uidvalidity,
                uid,
                modseq: mb.modseq,
            };
            s.next_thread = next_thread;
            s.bump(a.mailbox_id);
            Ok(done(a))
        })
    }

    fn do_copy(
        &self,
        ctx: &SessionContext,
        from: &str,
        uids: &UidSet,
        to: &str,
        remove: bool,
    ) -> Result<Committed<CopyResult>> {
        self.with(|s| {
            let user = ctx.user.clone().unwrap_or_default();
            let acct = s.account(ctx)?;
            let (_, src) = selectable(acct, from)?;
            let src_id = src.id;
            let picked: Vec<(u32, Msg)> = src
                .msgs
                .iter()
                .filter(|(u, _)| uids.contains(**u))
                .map(|(u, m)| (*u, m.clone()))
                .collect();
            let (_, dst) = selectable(acct, to)?;
            let mut result = CopyResult {
                uidvalidity: dst.uidvalidity,
                uids: Vec::new(),
            };
            if picked.is_empty() {
                return Ok(done(result));
            }
            if !remove {
                let bytes = picked.iter().map(|(_, m)| m.content.len() as u64).sum();
                check_quota(&user, acct, bytes, picked.len() as u64)?;
            }
            let (_, dst) = selectable(acct, to)?;
            dst.modseq += 1;
            for (uid, mut m) in picked.iter().cloned() {
                let new = dst.uidnext;
                dst.uidnext += 1;
                m.modseq = dst.modseq;
                m.saved = herald_store::now_ms();
                dst.msgs.insert(new, m);
                result.uids.push((uid, new));
            }
            let dst_id = dst.id;
            if remove {
                let (_, src) = selectable(acct, from)?;
                src.modseq += 1;
                for (uid, _) in &picked {
                    src.msgs.remove(uid);
                    src.tombstones.push((*uid, src.modseq));
                }
                s.bump(src_id);
            }
            s.bump(dst_id);
            Ok(done(result))
        })
    }
}

/// SETMETADATA on the memory store, with the store's rules: see `Store::set_metadata`.
fn set_metadata(
    s: &mut State,
    ctx: &SessionContext,
    mailbox: Option<&str>,
    entries: Vec<(String, Option<Vec<u8>>)>,
) -> Result<()> {
    let limits = s.metadata_limits;
    let acting = ctx.auth_user.as_deref().or(ctx.user.as_deref());
    let admin = acting.is_some_and(|a| s.accounts.get(a).is_some_and(|a| a.admin));
    let server_shared = &mut s.server_shared;
    let user = ctx.user.as_deref().ok_or(StoreError::NoUser)?;
    let acct = s
        .accounts
        .get_mut(user)
        .ok_or_else(|| nf("account", user))?;
    let mut held: usize =
        acct.server_private.len() + acct.mailboxes.values().map(|m| m.meta.len()).sum::<usize>();
    let mut meta = match mailbox {
        None => Meta {
            private: acct.server_private.clone(),
            shared: server_shared.clone(),
        },
        Some(name) => selectable(acct, name)?.1.meta.clone(),
    };
    if mailbox.is_some() {
        held -= meta.len();
    } else {
        held -= meta.private.len();
    }
    let mut grew = false;
    for (name, value) in entries {
        let scope = herald_events::metadata_entry_name(&name).map_err(|reason| {
            StoreError::InvalidName {
                name: name.clone(),
                reason,
            }
        })?;
        if let Some(v) = &value
            && v.len() as u64 > limits.max_value_bytes
        {
            return Err(StoreError::Metadata(MetadataRefusal::TooLarge {
                size: v.len() as u64,
                max: limits.max_value_bytes,
            }));
        }
        let map = match scope {
            herald_events::MetadataScope::Private => &mut meta.private,
            herald_events::MetadataScope::Shared if mailbox.is_none() && !admin => {
                return Err(StoreError::Metadata(MetadataRefusal::NotAdmin));
            }
            herald_events::MetadataScope::Shared => &mut meta.shared,
        };
        let key = herald_events::normalize_entry_name(&name);
        match value {
            Some(v) => grew |= map.insert(key, v).is_none(),
            None => {
                map.remove(&key);
            }
        }
    }
    if grew {
        if meta.len() as u64 > limits.max_entries_per_mailbox {
            return Err(StoreError::Metadata(MetadataRefusal::TooMany {
                max: limits.max_entries_per_mailbox,
                per: "mailbox",
            }));
        }
        let mine = if mailbox.is_some() {
            meta.len()
        } else {
            meta.private.len()
        };
        if (held + mine) as u64 > limits.max_entries_per_user {
            return Err(StoreError::Metadata(MetadataRefusal::TooMany {
                max: limits.max_entries_per_user,
                per: "user",
            }));
        }
    }
    match mailbox {
        None => {
            acct.server_private = meta.private;
            *server_shared = meta.shared;
        }
        Some(name) => selectable(acct, name)?.1.meta = meta,
    }
    Ok(())
}

impl Backend for MemoryBackend {
    fn authenticate(
        &self,
        auth_user: &str,
        password: &str,
        authz: Option<&str>,
    ) -> impl Future<Output = Result<Identity>> + Send {
        ready(self.with(|s| {
            let admin = match s.accounts.get(auth_user) {
                Some(a) if a.password == password && a.disabled => {
                    return Err(StoreError::AccountDisabled);
                }
                Some(a) if a.password == password => a.admin,
                _ => return Err(StoreError::AuthFailed),
            };
            let user = authz.unwrap_or(auth_user);
            if user != auth_user {
                match s.accounts.get(user) {
                    Some(a) if admin && a.disabled => return Err(StoreError::AccountDisabled),
                    Some(_) if admin => {}
                    _ => return Err(StoreError::AuthFailed),
                }
            }
            Ok(Identity {
                user: user.to_owned(),
                auth_user: auth_user.to_owned(),
                admin,
            })
        }))
    }

    fn login_failed(
        &self,
        _ctx: &SessionContext,
        user: &str,
        _mechanism: &str,
        failure: LoginFailure,
    ) -> impl Future<Output = Result<Committed<()>>> + Send {
        ready(self.with(|s| {
            s.access.push((
                user.to_owned(),
                format!("login-failed {}", failure.as_str()),
            ));
            Ok(done(()))
        }))
    }

    fn is_disabled(&self, user: &str) -> impl Future<Output = Result<bool>> + Send {
        ready(self.with(|s| Ok(s.accounts.get(user).is_some_and(|a| a.disabled))))
    }
    fn login(&self, ctx: &SessionContext) -> impl Future<Output = Result<Committed<()>>> + Send {
        ready(self.with(|s| {
            let user = ctx.user.clone().ok_or(StoreError::NoUser)?;
            s.access.push((user, "login".into()));
            Ok(done(()))
        }))
    }

    fn logout(
        &self,
        ctx: &SessionContext,
        disconnect: Disconnect,
        _duration: Duration,
    ) -> impl Future<Output = Result<Committed<()>>> + Send {
        ready(self.with(|s| {
            let user = ctx.user.clone().ok_or(StoreError::NoUser)?;
            s.access.push((user, disconnect.as_str().into()));
            Ok(done(()))
        }))
    }

    fn create_mailbox(
        &self,
        ctx: &SessionContext,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> impl Future<Output = Result<Committed<MailboxInfo>>> + Send {
        ready(self.with(|s| {
            let name = names::mailbox(name, true)?;
            let fresh = s.new_mailbox(special_use);
            let parents: Vec<Mbox> = names::ancestors(&name)
                .map(|_| s.new_mailbox(None))
                .collect();
            let acct = s.account(ctx)?;
            if let Some(m) = acct.mailboxes.get(&name)
                && !m.noselect
            {
                return Err(StoreError::AlreadyExists {
                    what: "mailbox",
                    name,
                });
            }
            for (p, mb) in names::ancestors(&name).zip(parents) {
                acct.mailboxes.entry(p.to_owned()).or_insert(mb);
            }
            let i = info(&name, &fresh);
            acct.mailboxes.insert(name, fresh);
            Ok(done(i))
        }))
    }

    fn delete_mailbox(
        &self,
        ctx: &SessionContext,
        name: &str,
    ) -> impl Future<Output = Result<Committed<()>>> + Send {
        ready(self.with(|s| {
            let name = names::mailbox(name, false)?;
            if names::is_inbox(&name) {
                return Err(StoreError::InvalidArgument(
                    "INBOX cannot be deleted".into(),
                ));
            }
            let acct = s.account(ctx)?;
            let has_children = acct
                .mailboxes
                .keys()
                .any(|k| k != &name && names::is_within(k, &name));
            let Some(mb) = acct.mailboxes.get_mut(&name) else {
                return Err(nf("mailbox", &name));
            };
            let id = mb.id;
            if has_children {
                if mb.noselect {
                    return Err(StoreError::NoSelect(name));
                }
                mb.noselect = true;
                mb.msgs.clear();
                mb.special_use = None;
                mb.tombstones.clear();
                mb.meta = Meta::default();
                mb.access_key = None;
            } else {
                acct.mailboxes.remove(&name);
            }
            s.bump(id);
            Ok(done(()))
        }))
    }

    fn rename_mailbox(
        &self,
        ctx: &SessionContext,
        from: &str,
        to: &str,
    ) -> impl Future<Output = Result<Committed<MailboxInfo>>> + Send {
        ready(self.with(|s| {
            let from = names::mailbox(from, false)?;
            let to = names::mailbox(to, false)?;
            let fresh = s.new_mailbox(None);
            let acct = s.account(ctx)?;
            if names::is_inbox(&to) || acct.mailboxes.contains_key(&to) {
                return Err(StoreError::AlreadyExists {
                    what: "mailbox",
                    name: to,
                });
            }
            if names::is_within(&to, &from) {
                return Err(StoreError::InvalidArgument(
                    "cannot rename a mailbox into itself".into(),
                ));
            }
            let Some(mb) = acct.mailboxes.remove(&from) else {
                return Err(nf("mailbox", &from));
            };
            let mut ids = vec![mb.id];
            let i = info(&to, &mb);
            if names::is_inbox(&from) {
                acct.mailboxes.insert(from.clone(), fresh);
            } else {
                let children: Vec<String> = acct
                    .mailboxes
                    .keys()
                    .filter(|k| names::is_within(k, &from))
                    .cloned()
                    .collect();
                for c in children {
                    if let Some(m) = acct.mailboxes.remove(&c) {
                        ids.push(m.id);
                        acct.mailboxes
                            .insert(format!("{to}{}", &c[from.len()..]), m);
                    }
                }
            }
            acct.mailboxes.insert(to, mb);
            for id in ids {
                s.bump(id);
            }
            Ok(done(i))
        }))
    }

    fn subscribe(
        &self,
        ctx: &SessionContext,
        name: &str,
        on: bool,
    ) -> impl Future<Output = Result<Committed<()>>> + Send {
        ready(self.with(|s| {
            let name = names::mailbox(name, false)?;
            let acct = s.account(ctx)?;
            if on {
                if !acct.mailboxes.contains_key(&name) {
                    return Err(nf("mailbox", &name));
                }
                if !acct.subscriptions.contains(&name) {
                    acct.subscriptions.push(name);
                    acct.subscriptions.sort();
                }
            } else {
                acct.subscriptions.retain(|n| *n != name);
            }
            Ok(done(()))
        }))
    }

    fn list_mailboxes(
        &self,
        ctx: &SessionContext,
    ) -> impl Future<Output = Result<Vec<MailboxInfo>>> + Send {
        ready(self.with(|s| {
            let acct = s.account(ctx)?;
            let mut out: Vec<MailboxInfo> =
                acct.mailboxes.iter().map(|(n, m)| info(n, m)).collect();
            // Other accounts' mailboxes shared with the user (`l`), as the store lists them
            // (without the store's `\Noselect` namespace levels, which no test here reads).
            let me = ctx.user.as_deref().unwrap_or_default();
            for (owner, a) in &s.accounts {
                if owner == me {
                    continue;
                }
                for (n, m) in &a.mailboxes {
                    let sees = [me, herald_store::acl::ANYONE]
                        .iter()
                        .filter_map(|i| m.acl.get(*i))
                        .any(|r| r.contains(Rights::LOOKUP));
                    if sees && !m.noselect {
                        out.push(info(&herald_store::acl::shared_name(owner, n), m));
                    }
                }
            }
            Ok(out)
        }))
    }

    fn mailbox(
        &self,
        ctx: &SessionContext,
        name: &str,
    ) -> impl Future<Output = Result<MailboxInfo>> + Send {
        ready(self.with(|s| {
            if herald_store::acl::other_user(name).is_some() {
                let (_, mb, rights) = s.acl_target(ctx, name)?;
                need_read(name, rights)?;
                return Ok(info(name, mb));
            }
            let name = names::mailbox(name, false)?;
            let acct = s.account(ctx)?;
            acct.mailboxes
                .get(&name)
                .map(|m| info(&name, m))
                .ok_or_else(|| nf("mailbox", &name))
        }))
    }

    fn subscriptions(
        &self,
        ctx: &SessionContext,
    ) -> impl Future<Output = Result<Vec<String>>> + Send {
        ready(self.with(|s| Ok(s.account(ctx)?.subscriptions.clone())))
    }

    fn append(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        content: Vec<u8>,
        flags: &[String],
        internal_date_ms: Option<i64>,
    ) -> impl Future<Output = Result<Committed<Appended>>> + Send {
        ready(self.do_append(ctx, mailbox, content, flags, internal_date_ms))
    }

    fn append_many(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        messages: Vec<(Vec<u8>, Vec<String>, Option<i64>)>,
    ) -> impl Future<Output = Result<Committed<Vec<Appended>>>> + Send {
        // All or none: check the whole batch against the quota and the mailbox first.
        let total: u64 = messages.iter().map(|m| m.0.len() as u64).sum();
        let checked = self.with(|s| {
            let user = ctx.user.clone().unwrap_or_default();
            let acct = s.account(ctx)?;
            check_quota(&user, acct, total, messages.len() as u64)?;
            selectable(acct, mailbox).map(|_| ())
        });
        let mut out = Vec::new();
        let result = checked.and_then(|()| {
            for (content, flags, date) in messages {
                out.push(self.do_append(ctx, mailbox, content, &flags, date)?.value);
            }
            Ok(done(out))
        });
        ready(result)
    }

    fn copy(
        &self,
        ctx: &SessionContext,
        from: &str,
        uids: &UidSet,
        to: &str,
    ) -> impl Future<Output = Result<Committed<CopyResult>>> + Send {
        ready(self.do_copy(ctx, from, uids, to, false))
    }

    fn move_messages(
        &self,
        ctx: &SessionContext,
        from: &str,
        uids: &UidSet,
        to: &str,
    ) -> impl Future<Output = Result<Committed<CopyResult>>> + Send {
        ready(self.do_copy(ctx, from, uids, to, true))
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
        ready(sflags::canonical(flags).and_then(|given| {
            self.with(|s| {
                let acct = s.account(ctx)?;
                let (_, mb) = selectable(acct, mailbox)?;
                let mut result = StoreResult::default();
                let next = mb.modseq + 1;
                let mut changed_any = false;
                for (uid, m) in mb.msgs.iter_mut().filter(|(u, _)| uids.contains(**u)) {
                    if unchanged_since.is_some_and(|u| m.modseq > u) {
                        result.modified.push(*uid);
                        continue;
                    }
                    let (mut new, added, removed) = sflags::apply(&m.flags, mode, &given);
                    if added.is_empty() && removed.is_empty() {
                        continue;
                    }
                    new.sort();
                    m.flags = new.clone();
                    m.modseq = next;
                    changed_any = true;
                    result.changed.push((*uid, new, next));
                }
                let id = mb.id;
                if changed_any {
                    mb.modseq = next;
                    s.bump(id);
                }
                Ok(done(result))
            })
        }))
    }

    fn expunge(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        uids: Option<&UidSet>,
    ) -> impl Future<Output = Result<Committed<Vec<u32>>>> + Send {
        ready(self.with(|s| {
            let acct = s.account(ctx)?;
            let (_, mb) = selectable(acct, mailbox)?;
            let gone: Vec<u32> = mb
                .msgs
                .iter()
                .filter(|(u, m)| {
                    sflags::contains(&m.flags, "\\Deleted") && uids.is_none_or(|s| s.contains(**u))
                })
                .map(|(u, _)| *u)
                .collect();
            let id = mb.id;
            if !gone.is_empty() {
                mb.modseq += 1;
                for u in &gone {
                    mb.msgs.remove(u);
                    mb.tombstones.push((*u, mb.modseq));
                }
                s.bump(id);
            }
            Ok(done(gone))
        }))
    }

    fn fetch(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        uids: Option<&UidSet>,
    ) -> impl Future<Output = Result<Vec<MessageMeta>>> + Send {
        ready(self.with(|s| {
            let acct = s.account(ctx)?;
            let (_, mb) = selectable(acct, mailbox)?;
            Ok(mb
                .msgs
                .iter()
                .filter(|(u, _)| uids.is_none_or(|s| s.contains(**u)))
                .map(|(u, m)| meta(*u, m))
                .collect())
        }))
    }

    fn read_message(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        uid: u32,
    ) -> impl Future<Output = Result<Vec<u8>>> + Send {
        ready(self.with(|s| {
            let acct = s.account(ctx)?;
            let (_, mb) = selectable(acct, mailbox)?;
            mb.msgs
                .get(&uid)
                .map(|m| m.content.to_vec())
                .ok_or_else(|| nf("message", &uid.to_string()))
        }))
    }

    fn read_messages(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        uids: &UidSet,
        _expected_bytes: Option<u64>,
    ) -> impl Future<Output = Result<Vec<(u32, Vec<u8>)>>> + Send {
        ready(self.with(|s| {
            let acct = s.account(ctx)?;
            let (_, mb) = selectable(acct, mailbox)?;
            Ok(mb
                .msgs
                .iter()
                .filter(|(u, _)| uids.contains(**u))
                .map(|(u, m)| (*u, m.content.to_vec()))
                .collect())
        }))
    }

    fn quota(&self, user: &str) -> impl Future<Output = Result<QuotaInfo>> + Send {
        ready(self.with(|s| {
            let acct = s.accounts.get(user).ok_or_else(|| nf("account", user))?;
            let (used_bytes, used_messages) = usage(acct);
            Ok(QuotaInfo {
                storage_kb: acct.storage_kb,
                max_messages: acct.max_messages,
                used_bytes,
                used_messages,
            })
        }))
    }

    fn set_quota(
        &self,
        _ctx: &SessionContext,
        user: &str,
        storage_kb: Option<u64>,
        messages: Option<u64>,
    ) -> impl Future<Output = Result<Committed<QuotaInfo>>> + Send {
        ready(self.with(|s| {
            let acct = s
                .accounts
                .get_mut(user)
                .ok_or_else(|| nf("account", user))?;
            if storage_kb.is_some() {
                acct.storage_kb = storage_kb;
            }
            if messages.is_some() {
                acct.max_messages = messages;
            }
            let (used_bytes, used_messages) = usage(acct);
            Ok(done(QuotaInfo {
                storage_kb: acct.storage_kb,
                max_messages: acct.max_messages,
                used_bytes,
                used_messages,
            }))
        }))
    }

    fn claim_recent(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        uidvalidity: u32,
        upto: u32,
    ) -> impl Future<Output = Result<u32>> + Send {
        ready(self.with(|s| {
            let (_, mb) = selectable(s.account(ctx)?, mailbox)?;
            if mb.uidvalidity != uidvalidity {
                return Ok(upto);
            }
            let first = mb.recent_uid;
            mb.recent_uid = first.max(upto.min(mb.uidnext));
            Ok(first)
        }))
    }

    fn content_ids(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        uids: Option<&UidSet>,
    ) -> impl Future<Output = Result<Vec<(u32, [u8; 32])>>> + Send {
        use std::hash::{Hash, Hasher};
        ready(self.with(|s| {
            let (_, mb) = selectable(s.account(ctx)?, mailbox)?;
            Ok(mb
                .msgs
                .iter()
                .filter(|(u, _)| uids.is_none_or(|set| set.contains(**u)))
                .map(|(u, m)| {
                    // A test double: any digest that follows the bytes will do.
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    m.content.hash(&mut h);
                    let mut id = [0u8; 32];
                    id[..8].copy_from_slice(&h.finish().to_be_bytes());
                    (*u, id)
                })
                .collect())
        }))
    }

    fn changes(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        since_modseq: u64,
        known_max_uid: u32,
        known_count: u64,
    ) -> impl Future<Output = Result<Changes>> + Send {
        let result = self.with(|s| {
            let (_, mb) = selectable(s.account(ctx)?, mailbox)?;
            let changed: Vec<MessageMeta> = mb
                .msgs
                .iter()
                .filter(|(_, m)| m.modseq > since_modseq)
                .map(|(u, m)| meta(*u, m))
                .collect();
            let new = changed.iter().filter(|m| m.uid > known_max_uid).count() as u64;
            let gone = mb.msgs.len() as u64 != known_count + new;
            // As the store answers: the tombstones when they reach back far enough, else
            // every UID.
            let complete = since_modseq >= mb.tombstone_floor;
            let mut expunged: Option<Vec<u32>> = (gone && complete).then(|| {
                mb.tombstones
                    .iter()
                    .filter(|t| t.1 > since_modseq)
                    .map(|t| t.0)
                    .collect()
            });
            if let Some(e) = expunged.as_mut() {
                e.sort_unstable();
            }
            Ok(Changes {
                highest_modseq: mb.modseq,
                uidvalidity: mb.uidvalidity,
                changed,
                uids: (gone && !complete).then(|| mb.msgs.keys().copied().collect()),
                expunged,
            })
        });
        ready(result)
    }

    fn vanished(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        since_modseq: u64,
    ) -> impl Future<Output = Result<Vanished>> + Send {
        ready(self.with(|s| {
            let (_, mb) = selectable(s.account(ctx)?, mailbox)?;
            let mut uids: Vec<u32> = mb
                .tombstones
                .iter()
                .filter(|t| t.1 > since_modseq)
                .map(|t| t.0)
                .collect();
            uids.sort_unstable();
            Ok(Vanished {
                uids,
                complete: since_modseq >= mb.tombstone_floor,
            })
        }))
    }

    fn counts(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
    ) -> impl Future<Output = Result<MailboxCounts>> + Send {
        ready(self.with(|s| {
            let mb: &Mbox = if herald_store::acl::other_user(mailbox).is_some() {
                let (_, mb, rights) = s.acl_target(ctx, mailbox)?;
                need_read(mailbox, rights)?;
                mb
            } else {
                selectable(s.account(ctx)?, mailbox)?.1
            };
            let has = |m: &Msg, f: &str| sflags::contains(&m.flags, f);
            Ok(MailboxCounts {
                messages: mb.msgs.len() as u64,
                unseen: mb.msgs.values().filter(|m| !has(m, "\\Seen")).count() as u64,
                deleted: mb.msgs.values().filter(|m| has(m, "\\Deleted")).count() as u64,
                size: mb.msgs.values().map(|m| m.content.len() as u64).sum(),
                recent: mb.msgs.keys().filter(|u| **u >= mb.recent_uid).count() as u64,
            })
        }))
    }

    fn my_rights(
        &self,
        ctx: &SessionContext,
        name: &str,
    ) -> impl Future<Output = Result<Rights>> + Send {
        ready(self.with(|s| s.acl_target(ctx, name).map(|(_, _, r)| r)))
    }

    fn get_acl(
        &self,
        ctx: &SessionContext,
        name: &str,
    ) -> impl Future<Output = Result<Vec<AclEntry>>> + Send {
        ready(self.with(|s| {
            let (owner, mb, rights) = s.acl_target(ctx, name)?;
            need_admin(name, rights)?;
            let mut out = vec![AclEntry {
                identifier: owner,
                rights: Rights::ALL,
            }];
            out.extend(mb.acl.iter().map(|(i, r)| AclEntry {
                identifier: i.clone(),
                rights: *r,
            }));
            Ok(out)
        }))
    }

    fn set_acl(
        &self,
        ctx: &SessionContext,
        name: &str,
        identifier: &str,
        rights: Option<Rights>,
    ) -> impl Future<Output = Result<Committed<()>>> + Send {
        ready(self.with(|s| {
            let (owner, mb, have) = s.acl_target(ctx, name)?;
            need_admin(name, have)?;
            if identifier == owner || identifier.is_empty() || identifier.starts_with('-') {
                return Err(StoreError::InvalidArgument(format!(
                    "identifier `{identifier}` cannot be given rights"
                )));
            }
            match rights.filter(|r| !r.is_empty()) {
                Some(r) => {
                    mb.acl.insert(identifier.to_owned(), r);
                }
                None => {
                    mb.acl.remove(identifier);
                }
            }
            Ok(done(()))
        }))
    }

    fn mailbox_watch(&self, mailbox_id: i64) -> watch::Receiver<u64> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.watches
            .entry(mailbox_id)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }
    fn get_metadata(
        &self,
        ctx: &SessionContext,
        mailbox: Option<&str>,
    ) -> impl Future<Output = Result<Vec<MetadataEntry>>> + Send {
        ready(self.with(|s| {
            let server_shared = &s.server_shared;
            let user = ctx.user.as_deref().ok_or(StoreError::NoUser)?;
            let acct = s.accounts.get(user).ok_or_else(|| nf("account", user))?;
            let (private, shared) = match mailbox {
                None => (&acct.server_private, server_shared),
                Some(name) => {
                    let name = names::mailbox(name, false)?;
                    let mb = acct
                        .mailboxes
                        .get(&name)
                        .ok_or_else(|| nf("mailbox", &name))?;
                    (&mb.meta.private, &mb.meta.shared)
                }
            };
            let mut out: Vec<MetadataEntry> = private
                .iter()
                .chain(shared)
                .map(|(name, value)| MetadataEntry {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect();
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        }))
    }

    fn set_metadata(
        &self,
        ctx: &SessionContext,
        mailbox: Option<&str>,
        entries: Vec<(String, Option<Vec<u8>>)>,
    ) -> impl Future<Output = Result<Committed<()>>> + Send {
        ready(self.with(|s| set_metadata(s, ctx, mailbox, entries).map(done)))
    }

    fn metadata_limits(&self) -> MetadataLimits {
        self.with(|s| Ok(s.metadata_limits)).unwrap_or_default()
    }

    fn access_key(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
    ) -> impl Future<Output = Result<AccessKey>> + Send {
        ready(self.with(|s| {
            let (_, mb) = selectable(s.account(ctx)?, mailbox)?;
            if let Some(k) = mb.access_key {
                return Ok(k);
            }
            let key = urlauth::new_key()
                .ok_or_else(|| StoreError::Io(std::io::Error::other("no random numbers")))?;
            mb.access_key = Some(key);
            Ok(key)
        }))
    }
    fn access_key_of(
        &self,
        owner: &str,
        mailbox: &str,
    ) -> impl Future<Output = Result<Option<AccessKey>>> + Send {
        let ctx = SessionContext::user("imap", owner);
        ready(self.with(|s| {
            let name = names::mailbox(mailbox, false)?;
            let acct = s.account(&ctx)?;
            acct.mailboxes
                .get(&name)
                .map(|m| m.access_key)
                .ok_or_else(|| nf("mailbox", &name))
        }))
    }
    fn reset_access_keys(
        &self,
        ctx: &SessionContext,
        mailbox: Option<&str>,
    ) -> impl Future<Output = Result<()>> + Send {
        ready(self.with(|s| {
            let acct = s.account(ctx)?;
            match mailbox {
                Some(m) => selectable(acct, m)?.1.access_key = None,
                None => acct
                    .mailboxes
                    .values_mut()
                    .for_each(|m| m.access_key = None),
            }
            Ok(())
        }))
    }

    fn outbox_watch(&self) -> watch::Receiver<u64> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.outbox_tx().subscribe()
    }

    fn events_after(
        &self,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredEvent>>> + Send {
        ready(self.with(|s| {
            let start = usize::try_from(after)
                .unwrap_or(usize::MAX)
                .min(s.outbox.len());
            Ok(s.outbox[start..].iter().take(limit).cloned().collect())
        }))
    }

    fn last_event_id(&self) -> impl Future<Output = Result<u64>> + Send {
        ready(self.with(|s| Ok(s.outbox.len() as u64)))
    }

    fn generates(&self, t: &herald_events::EventType) -> bool {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.event_groups.is_empty() || t.group().is_none_or(|g| s.event_groups.contains(&g))
    }
}
