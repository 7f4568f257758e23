//! The [`Store`] facade: the async API the protocol servers and the CLI call. It checks
//! arguments, hashes passwords, keeps the authentication cache and the login throttle, and turns
//! each call into one [`Op`] or [`Query`] for whichever backend is open; nothing here knows which
//! one that is.

use crate::acl::{self, AclEntry, Rights, SharedMailbox};
use crate::backend::Backend;
use crate::backend::{Answer, AnyBackend, Op, Output, Query};
use crate::config::StoreConfig;
use crate::context::{Identity, SessionContext};
use crate::embedded::Embedded;
use crate::error::{Result, StoreError};
use crate::events::PROCESS;
use crate::flags::FlagMode;
use crate::model::*;
use crate::notify::CROSS_PROCESS_POLL;
use crate::postgres::PgBackend;
use crate::recent::{Claim, Learned, RecentClaims};
use crate::snapshots::{Snapshot, Snapshots};
use crate::{auth_cache, backend, blobs, embedded, names, password, retention, threading};
use herald_events::UidSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
/// An open message store. Cheap to clone; all clones share one backend.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    backend: AnyBackend,
    config: StoreConfig,
    auth_cache: auth_cache::AuthCache,
    /// The hash verified against when a user does not exist (made with the configured cost).
    dummy: std::sync::OnceLock<String>,
    /// In-process consumers retention must wait for.
    holds: retention::Holds,
    /// When a refusal by the login rate limiter was last recorded, per client and name.
    throttled: std::sync::Mutex<
        std::collections::HashMap<(Option<std::net::IpAddr>, String), std::time::Instant>,
    >,
    /// `\Recent` claims decided in memory: on the embedded store only, which one process
    /// serves (a cluster's nodes claim through the database).
    recent: Option<RecentClaims>,
    /// SELECT snapshots kept: on the embedded store only, whose reads are one transaction.
    snapshots: Option<Snapshots>,
}

/// A client the login limiter refuses gets one `rate-limited` LoginFailed per name in this
/// window, not one per attempt: the limiter exists to make a flood of guesses cheap, and a
/// durable commit per refused guess would make each of them cost an fsync and an outbox row.
pub const RATE_LIMITED_EVENT_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);
/// Most (client, name) pairs remembered for that; past it the map starts afresh, which at worst
/// records one more event per pair.
const MAX_THROTTLED: usize = 10_000;

/// `s` cut to at most `max` bytes, on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn mismatch() -> StoreError {
    StoreError::Corrupt("the backend answered with an unexpected kind of result".into())
}

/// What a committed operation gave the caller: the part of its output `pick` wants (a backend
/// answering with another kind is corrupt) and its events.
fn committed<T>(
    applied: backend::Applied,
    pick: impl FnOnce(Output) -> Option<T>,
) -> Result<Committed<T>> {
    let value = pick(applied.output).ok_or_else(mismatch)?;
    Ok(Committed {
        value,
        events: applied.events,
    })
}

/// The output of an append or a delivery.
fn appended(output: Output) -> Option<Appended> {
    match output {
        Output::Appended(a) => Some(a),
        _ => None,
    }
}

/// The delivery of stored content to one recipient (its INBOX unless it names a mailbox).
fn delivery(
    recipient: &Recipient,
    blob: blobs::BlobRef,
    internal_date_ms: i64,
    thread: threading::ThreadKeys,
) -> Op {
    Op::Append {
        account: recipient.user.clone(),
        mailbox: recipient
            .mailbox
            .clone()
            .unwrap_or_else(|| "INBOX".to_owned()),
        blob,
        flags: Vec::new(),
        internal_date_ms,
        envelope: Some(recipient.envelope.clone()),
        thread,
    }
}

/// A client address in a log line: `-` when there is none (a local tool), so the field is
/// never empty for a log pattern to trip on.
struct LogAddr(Option<std::net::IpAddr>);

impl std::fmt::Display for LogAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => write!(f, "{ip}"),
            None => f.write_str("-"),
        }
    }
}

/// Where a mailbox name of the session's user points: (account, mailbox). Names in the Other
/// Users namespace (`user/OWNER/NAME`) point into OWNER's account, every other name into the
/// session's own; the writer then checks the session's rights there (see `acl`).
fn target(ctx: &SessionContext, name: &str) -> Result<(String, String)> {
    let me = ctx.account()?;
    if name == acl::OTHER_USERS_PREFIX.trim_end_matches('/') {
        // The namespace's root: no account can have a mailbox of that name, since LIST shows
        // the namespace there.
        return Err(StoreError::InvalidName {
            name: name.to_owned(),
            reason: "reserved for the Other Users namespace",
        });
    }
    match acl::other_user(name) {
        // `user/OWNER` is the owner's node in the namespace, never a mailbox.
        Some((_, "")) => Err(StoreError::not_found("mailbox", name)),
        Some((owner, mailbox)) => Ok((owner.to_owned(), mailbox.to_owned())),
        None => Ok((me.to_owned(), name.to_owned())),
    }
}

/// How long a session of an account may go on before asking the store again whether the
/// account was disabled: the longest an open session outlives `herald user disable`.
pub const ACCOUNT_RECHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// Refuses account-level changes to the "Shared" namespace's pseudo-account: it cannot log
/// in, and deleting it would delete every shared mailbox under the name of one account.
fn real_account(name: &str) -> Result<()> {
    if name == acl::SHARED_OWNER {
        return Err(StoreError::InvalidArgument(format!(
            "`{name}` owns the shared mailboxes and is not a user account; \
             delete or change its mailboxes one by one"
        )));
    }
    Ok(())
}

/// A `\Noselect` LIST entry for a level of the Other Users namespace (`user`, `user/OWNER`,
/// or a parent of a shared mailbox the user may not see itself).
fn namespace_node(name: String) -> MailboxInfo {
    MailboxInfo {
        id: 0,
        name,
        uidvalidity: 0,
        uidnext: 1,
        highest_modseq: 0,
        messages: 0,
        noselect: true,
        special_use: None,
        max_age_secs: None,
        recent_uid: 1,
    }
}

impl Store {
    /// Whether `path` holds a store (an embedded database); [`Store::open`] creates one where
    /// none is, which administrative commands run in the wrong directory should not do.
    pub fn exists(path: &std::path::Path) -> bool {
        path.join(embedded::DB_FILE).is_file()
    }

    /// Opens the store: the embedded one in `config.path` (created if needed), or the
    /// PostgreSQL database of `config.postgres` (its schema created or upgraded if needed).
    pub async fn open(config: StoreConfig) -> Result<Store> {
        config.password.check()?;
        password::configure(&config.password);
        let backend = match &config.postgres {
            None => AnyBackend::Embedded(Embedded::open(config.clone()).await?),
            Some(pg) => AnyBackend::Postgres(Box::new(PgBackend::open(config.clone(), pg).await?)),
        };
        let auth_cache = auth_cache::AuthCache::new(config.auth_cache_ttl);
        let embedded = matches!(backend, AnyBackend::Embedded(_));
        let recent = embedded.then(RecentClaims::default);
        let snapshots = embedded.then(Snapshots::default);
        Ok(Store {
            inner: Arc::new(Inner {
                backend,
                config,
                auth_cache,
                dummy: std::sync::OnceLock::new(),
                holds: retention::Holds::default(),
                throttled: std::sync::Mutex::new(std::collections::HashMap::new()),
                recent,
                snapshots,
            }),
        })
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// Finishes queued work and stops the writer. Other clones then fail with `Closed`.
    pub async fn close(&self) {
        self.inner.backend.close().await;
    }

    /// Takes the lock `name` across every process sharing the store (the nodes of a cluster)
    /// for as long as the guard lives; `None` while another process holds it. Callers in one
    /// process exclude each other themselves first (a process must not take one lock twice).
    pub async fn try_lock(&self, name: &str) -> Result<Option<backend::ClusterLock>> {
        self.inner.backend.try_lock(name).await
    }

    /// True while the store accepts mutations: not closed, and its writer running.
    pub fn is_open(&self) -> bool {
        self.inner.backend.is_open()
    }

    /// The lowest position an in-process consumer holds, and the backend, for tests that drive
    /// an [`Op`] the facade does not expose as it is.
    #[cfg(test)]
    pub(crate) fn test_parts(&self) -> (u64, &AnyBackend) {
        (self.inner.holds.lowest(), &self.inner.backend)
    }

    /// The in-memory `\Recent` claims (embedded store), for tests of their keys.
    #[cfg(test)]
    pub(crate) fn recent_claims(&self) -> Option<&RecentClaims> {
        self.inner.recent.as_ref()
    }

    async fn run<T>(
        &self,
        ctx: &SessionContext,
        op: Op,
        pick: impl FnOnce(Output) -> Option<T>,
    ) -> Result<Committed<T>> {
        committed(self.inner.backend.submit(ctx.clone(), op).await?, pick)
    }

    async fn query(&self, q: Query) -> Result<Answer> {
        self.inner.backend.query(q).await
    }

    // ---- accounts ---------------------------------------------------------------------------

    /// Creates an account with its INBOX: `vnd.herald.AccountCreate`, then MailboxCreate for
    /// the INBOX, in one transaction.
    pub async fn add_user(
        &self,
        ctx: &SessionContext,
        name: &str,
        password: &str,
        admin: bool,
    ) -> Result<Committed<()>> {
        names::user(name)?;
        let password_hash = self.hash_password(password).await?;
        self.add_user_hashed(ctx, name, &password_hash, admin).await
    }

    /// Creates an account whose password is given as a PHC string hashed elsewhere (e.g. by
    /// `doveadm pw -s ARGON2ID`); see [`password::check_phc`].
    pub async fn add_user_hashed(
        &self,
        ctx: &SessionContext,
        name: &str,
        password_hash: &str,
        admin: bool,
    ) -> Result<Committed<()>> {
        names::user(name)?;
        password::check_phc(password_hash)?;
        let op = Op::AddUser {
            name: name.to_owned(),
            password_hash: password_hash.to_owned(),
            admin,
        };
        self.run(ctx, op, |_| Some(())).await
    }

    /// Hashes a new password with the configured cost, off the async threads.
    async fn hash_password(&self, password: &str) -> Result<String> {
        password::check(password)?;
        let pw = password.to_owned();
        let params = self.inner.config.password;
        password::run_blocking(move || password::hash_with(&pw, &params)).await?
    }

    /// Deletes an account, its mailboxes (MailboxDelete each) and messages, then
    /// `vnd.herald.AccountDelete`, in one transaction.
    pub async fn delete_user(&self, ctx: &SessionContext, name: &str) -> Result<Committed<()>> {
        real_account(name)?;
        let op = Op::DeleteUser {
            name: name.to_owned(),
        };
        let done = self.run(ctx, op, |_| Some(())).await;
        self.inner.auth_cache.forget_user(name);
        self.forget_claims(name);
        done
    }

    /// Sets an account's password (hashed with the configured cost). Logins cached with the
    /// old one stop working at once (see `auth_cache`). Emits `vnd.herald.PasswordChange`
    /// (never with the password or its hash).
    pub async fn set_password(
        &self,
        ctx: &SessionContext,
        name: &str,
        password: &str,
    ) -> Result<Committed<()>> {
        let password_hash = self.hash_password(password).await?;
        self.set_password_hashed(ctx, name, &password_hash).await
    }

    /// Sets an account's password to a PHC string hashed elsewhere (see
    /// [`password::check_phc`]); cached logins stop working as with [`Store::set_password`].
    pub async fn set_password_hashed(
        &self,
        ctx: &SessionContext,
        name: &str,
        password_hash: &str,
    ) -> Result<Committed<()>> {
        real_account(name)?;
        password::check_phc(password_hash)?;
        let op = Op::SetPassword {
            name: name.to_owned(),
            password_hash: password_hash.to_owned(),
        };
        let done = self.run(ctx, op, |_| Some(())).await;
        self.inner.auth_cache.forget_user(name);
        done
    }

    /// Successful logins held by the authentication cache.
    pub fn auth_cache_len(&self) -> usize {
        self.inner.auth_cache.len()
    }

    /// Every account, by name.
    pub async fn list_users(&self) -> Result<Vec<UserInfo>> {
        match self.query(Query::Users).await? {
            Answer::Users(u) => Ok(u),
            _ => Err(mismatch()),
        }
    }

    /// Checks `auth_user`'s password and whether it may act as `authz` (itself, or anyone when
    /// an administrator). Costs the same time whether or not the user exists.
    pub async fn authenticate(
        &self,
        auth_user: &str,
        password: &str,
        authz: Option<&str>,
    ) -> Result<Identity> {
        if password::check(password).is_err() {
            // No account has such a password (`add_user` refuses them): no need to hash.
            return Err(StoreError::AuthFailed);
        }
        let creds = if auth_user == acl::SHARED_OWNER {
            // The "Shared" namespace's pseudo-account has no password anyone could know; it
            // answers as a missing account, after the same work.
            None
        } else {
            match self.query(Query::Credentials(auth_user.to_owned())).await? {
                Answer::Credentials(c) => c,
                _ => return Err(mismatch()),
            }
        };
        let cache = &self.inner.auth_cache;
        let ok = match &creds {
            // A login with the same password against the same stored hash succeeded lately.
            Some(c) if cache.hit(auth_user, &c.hash, password) => true,
            _ => {
                let pw = password.to_owned();
                let stored = creds.clone();
                let dummy = match stored {
                    Some(_) => String::new(),
                    None => self.dummy_hash().to_owned(),
                };
                let ok = password::run_blocking(move || match &stored {
                    Some(c) => password::verify(&pw, &c.hash),
                    None => {
                        password::verify(&pw, &dummy);
                        false
                    }
                })
                .await?;
                if let (true, Some(c)) = (ok, &creds) {
                    cache.insert(auth_user, &c.hash, password);
                }
                ok
            }
        };
        let admin = match creds {
            Some(c) if ok && c.disabled => return Err(StoreError::AccountDisabled),
            Some(c) if ok => c.admin,
            _ => return Err(StoreError::AuthFailed),
        };
        let user = authz.unwrap_or(auth_user);
        if user == acl::SHARED_OWNER {
            return Err(StoreError::AuthFailed);
        }
        if user != auth_user {
            if !admin {
                return Err(StoreError::AuthFailed);
            }
            // An administrator may not act as a disabled account either: disabling is meant to
            // stop every session of it.
            match self.query(Query::Credentials(user.to_owned())).await? {
                Answer::Credentials(Some(c)) if c.disabled => {
                    return Err(StoreError::AccountDisabled);
                }
                Answer::Credentials(Some(_)) => {}
                _ => return Err(StoreError::AuthFailed),
            }
        }
        Ok(Identity {
            user: user.to_owned(),
            auth_user: auth_user.to_owned(),
            admin,
        })
    }

    /// Disables an account, with an optional note (AccountDisable), or enables it again
    /// (AccountEnable); nothing happens, and no event, when it already is in that state.
    /// A disabled account keeps its mail and still receives deliveries; new logins as it are
    /// refused once the password is verified (whichever process disabled it: the state is read
    /// at every login), and open IMAP sessions end at a later command ([`Store::is_disabled`]).
    pub async fn set_disabled(
        &self,
        ctx: &SessionContext,
        name: &str,
        disabled: bool,
        reason: Option<&str>,
    ) -> Result<Committed<()>> {
        real_account(name)?;
        if let Some(r) = reason
            && (r.len() > 512 || r.chars().any(char::is_control))
        {
            return Err(StoreError::InvalidArgument(
                "the note must be one line of at most 512 bytes".into(),
            ));
        }
        let op = Op::SetDisabled {
            name: name.to_owned(),
            disabled,
            reason: reason.map(str::to_owned),
        };
        let done = self.run(ctx, op, |_| Some(())).await?;
        if disabled {
            self.inner.auth_cache.forget_user(name);
        }
        Ok(done)
    }

    /// Whether an account is disabled now (false for an account that does not exist). Long
    /// sessions (IMAP, POP3, event streams) ask it at most once per [`ACCOUNT_RECHECK`].
    pub async fn is_disabled(&self, name: &str) -> Result<bool> {
        Ok(self.account_state(name).await?.is_some_and(|s| s.disabled))
    }

    /// Whether `name` is an administrator and whether it is disabled, for a caller that
    /// authenticated another way (an HTTP bearer token); `None` when there is no such account.
    /// One indexed read, whatever the number of accounts.
    pub async fn account_state(&self, name: &str) -> Result<Option<AccountState>> {
        match self.query(Query::Credentials(name.to_owned())).await? {
            Answer::Credentials(c) => Ok(c.map(|c| AccountState {
                admin: c.admin,
                disabled: c.disabled,
            })),
            _ => Err(mismatch()),
        }
    }

    fn dummy_hash(&self) -> &str {
        self.inner
            .dummy
            .get_or_init(|| password::dummy(&self.inner.config.password))
    }

    /// Sets the storage (KB) and/or message-count limit of an account (`None` leaves a limit
    /// unchanged). Emits QuotaChange when a limit changed.
    pub async fn set_quota(
        &self,
        ctx: &SessionContext,
        user: &str,
        storage_kb: Option<u64>,
        messages: Option<u64>,
    ) -> Result<Committed<QuotaInfo>> {
        let op = Op::SetQuota {
            user: user.to_owned(),
            storage_kb,
            messages,
        };
        self.run(ctx, op, |o| match o {
            Output::Quota(q) => Some(q),
            _ => None,
        })
        .await
    }

    /// An account's limits and usage.
    pub async fn quota(&self, user: &str) -> Result<QuotaInfo> {
        match self.query(Query::Quota(user.to_owned())).await? {
            Answer::Quota(q) => Ok(q),
            _ => Err(mismatch()),
        }
    }

    // ---- mailboxes (of the session's user) ---------------------------------------------------

    /// CREATE, with an optional SPECIAL-USE (RFC 6154 `CREATE … USE`). Missing parents are
    /// created too; one MailboxCreate, for the leaf.
    pub async fn create_mailbox(
        &self,
        ctx: &SessionContext,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<Committed<MailboxInfo>> {
        let (account, name) = target(ctx, name)?;
        let op = Op::CreateMailbox {
            account,
            name,
            special_use,
        };
        self.run(ctx, op, |o| match o {
            Output::Mailbox(m) => Some(m),
            _ => None,
        })
        .await
    }

    /// DELETE: removes the mailbox and its messages; with children it stays as `\Noselect`.
    pub async fn delete_mailbox(&self, ctx: &SessionContext, name: &str) -> Result<Committed<()>> {
        let (account, name) = target(ctx, name)?;
        let op = Op::DeleteMailbox {
            account: account.clone(),
            name,
        };
        let done = self.run(ctx, op, |_| Some(())).await;
        self.forget_claims(&account);
        done
    }

    /// RENAME (children move along, except for INBOX, which is left new and empty).
    pub async fn rename_mailbox(
        &self,
        ctx: &SessionContext,
        from: &str,
        to: &str,
    ) -> Result<Committed<MailboxInfo>> {
        let (account, from) = target(ctx, from)?;
        let (to_account, to_name) = target(ctx, to)?;
        if to_account != account {
            return Err(StoreError::InvalidArgument(
                "a mailbox cannot be renamed into another account".into(),
            ));
        }
        let op = Op::RenameMailbox {
            account: account.clone(),
            from,
            to: to_name,
        };
        let done = self
            .run(ctx, op, |o| match o {
                Output::Mailbox(m) => Some(m),
                _ => None,
            })
            .await;
        self.forget_claims(&account);
        let mut done = done?;
        if acl::other_user(to).is_some() {
            done.value.name = to.to_owned();
        }
        Ok(done)
    }

    /// SUBSCRIBE (`on`) or UNSUBSCRIBE. Emits only when the list changed.
    pub async fn subscribe(
        &self,
        ctx: &SessionContext,
        name: &str,
        on: bool,
    ) -> Result<Committed<()>> {
        let op = Op::Subscribe {
            account: ctx.account()?.to_owned(),
            name: name.to_owned(),
            on,
        };
        self.run(ctx, op, |_| Some(())).await
    }

    /// The METADATA entries (RFC 5464) the session's user sees on one of its mailboxes, or on
    /// the server when `mailbox` is `None`: shared entries and the user's private ones,
    /// ascending by name.
    pub async fn get_metadata(
        &self,
        ctx: &SessionContext,
        mailbox: Option<&str>,
    ) -> Result<Vec<MetadataEntry>> {
        let q = Query::Metadata {
            account: ctx.account()?.to_owned(),
            mailbox: mailbox.map(str::to_owned),
        };
        match self.query(q).await? {
            Answer::Metadata(m) => Ok(m),
            _ => Err(mismatch()),
        }
    }

    /// SETMETADATA: sets (`Some`) or removes (`None`) entries of a mailbox of the session's
    /// user, or of the server (`None`), all or none, with one `vnd.herald.MetadataChange`
    /// naming the entries that changed (none when nothing did). Refusals are
    /// [`StoreError::Metadata`] (too large, too many, shared server entries by a non-admin) and
    /// [`StoreError::InvalidName`] (an entry name outside RFC 5464's grammar).
    pub async fn set_metadata(
        &self,
        ctx: &SessionContext,
        mailbox: Option<&str>,
        entries: Vec<(String, Option<Vec<u8>>)>,
    ) -> Result<Committed<()>> {
        let op = Op::SetMetadata {
            account: ctx.account()?.to_owned(),
            mailbox: mailbox.map(str::to_owned),
            entries,
        };
        self.run(ctx, op, |_| Some(())).await
    }

    /// The METADATA limits the store enforces (for `MAXSIZE` answers before a value is read).
    pub fn metadata_limits(&self) -> crate::config::MetadataLimits {
        self.inner.config.metadata
    }

    /// Claims the messages of `mailbox` below `upto` as `\Recent` for one IMAP session
    /// (RFC 3501 §2.3.2: only the first session told of a message sees it as recent).
    /// `uidvalidity` is the one the session knows the mailbox by. Returns the first UID this
    /// claim got; UIDs from there up to `upto` are the caller's. Emits no event.
    ///
    /// On the embedded store the claim is decided in memory and its record queued for the
    /// writer without waiting (see `recent`); elsewhere it commits before it returns. Either
    /// way a restart does not make old messages recent again, beyond the last few claimed
    /// before a crash.
    pub async fn claim_recent(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        uidvalidity: u32,
        upto: u32,
    ) -> Result<u32> {
        let (Some(claims), AnyBackend::Embedded(embedded)) =
            (&self.inner.recent, &self.inner.backend)
        else {
            let (account, mailbox) = target(ctx, mailbox)?;
            let op = Op::ClaimRecent {
                account,
                mailbox,
                uidvalidity,
                upto,
            };
            return self.claim_recent_committed(ctx, op).await;
        };
        // The row, read where the caller runs (no queue to wait in): the right to read it,
        // which mailbox the name is now (in its canonical spelling, the claims' key), and how
        // far its UIDs go.
        let (account, mb) = self.readable(ctx, mailbox).await?;
        let row = match self.query(Query::Mailbox(account.clone(), mb)).await? {
            Answer::Mailbox(m) => m,
            _ => return Err(mismatch()),
        };
        let name = row.name;
        if row.noselect {
            return Err(StoreError::NoSelect(name));
        }
        let op = |upto| Op::ClaimRecent {
            account: account.clone(),
            mailbox: name.clone(),
            uidvalidity,
            upto,
        };
        // Only what exists can be claimed.
        let upto = upto.min(row.uidnext);
        if row.uidvalidity != uidvalidity {
            // The session's mailbox was replaced under it: none of this one is its.
            return Ok(upto);
        }
        match claims.learn(&account, &name, uidvalidity, row.recent_uid) {
            Learned::Kept => {}
            Learned::Superseded => return Ok(upto),
            Learned::Full => return self.claim_recent_committed(ctx, op(upto)).await,
        }
        let first = match claims.claim(&account, &name, uidvalidity, upto) {
            Claim::Granted(first) => first,
            // Replaced again since the row was read: as above.
            Claim::Unknown => return Ok(upto),
        };
        if first < upto && !embedded.enqueue(ctx.clone(), op(upto)) {
            // The writer's queue is full: wait for room like any other write.
            self.claim_recent_committed(ctx, op(upto)).await?;
        }
        Ok(first)
    }

    async fn claim_recent_committed(&self, ctx: &SessionContext, op: Op) -> Result<u32> {
        self.run(ctx, op, |o| match o {
            Output::RecentFrom(u) => Some(u),
            _ => None,
        })
        .await
        .map(|c| c.value)
    }

    /// `recent_uid` of a mailbox row read from the database, raised to what this process
    /// claimed in memory beyond it.
    fn claimed_recent(&self, account: &str, mailbox: &str, uidvalidity: u32, stored: u32) -> u32 {
        let claimed = self
            .inner
            .recent
            .as_ref()
            .and_then(|c| c.claimed(account, mailbox));
        crate::recent::raised(stored, uidvalidity, claimed)
    }

    /// Forgets the in-memory `\Recent` claims of an account whose mailboxes were renamed or
    /// deleted (their records, queued before, are committed by now).
    fn forget_claims(&self, account: &str) {
        if let Some(c) = &self.inner.recent {
            c.forget_account(account);
        }
    }

    /// Sets or clears a mailbox's SPECIAL-USE attribute.
    pub async fn set_special_use(
        &self,
        ctx: &SessionContext,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<Committed<MailboxInfo>> {
        let (account, name) = target(ctx, name)?;
        let op = Op::SetMailboxAttrs {
            account,
            name,
            special_use: Some(special_use),
            max_age_secs: None,
        };
        self.run(ctx, op, |o| match o {
            Output::Mailbox(m) => Some(m),
            _ => None,
        })
        .await
    }

    /// Sets (or, with `None`, removes) `user`'s mailbox expiry policy: messages whose
    /// INTERNALDATE is older than `max_age` are removed by [`Store::expire`].
    pub async fn set_max_age(
        &self,
        ctx: &SessionContext,
        user: &str,
        mailbox: &str,
        max_age: Option<Duration>,
    ) -> Result<Committed<MailboxInfo>> {
        let op = Op::SetMailboxAttrs {
            account: user.to_owned(),
            name: mailbox.to_owned(),
            special_use: None,
            max_age_secs: Some(max_age.map(|d| d.as_secs())),
        };
        self.run(ctx, op, |o| match o {
            Output::Mailbox(m) => Some(m),
            _ => None,
        })
        .await
    }

    /// Every mailbox of the session's user (LIST), by name, then the mailboxes other accounts
    /// share with it (`l`), named `user/OWNER/NAME`, with `\Noselect` entries for the levels
    /// of that namespace above them.
    pub async fn list_mailboxes(&self, ctx: &SessionContext) -> Result<Vec<MailboxInfo>> {
        let mut own = match self
            .query(Query::Mailboxes(ctx.account()?.to_owned()))
            .await?
        {
            Answer::Mailboxes(m) => m,
            _ => return Err(mismatch()),
        };
        let shared = self.shared_mailboxes(ctx).await?;
        let mut names: std::collections::BTreeSet<String> = Default::default();
        let mut boxes = Vec::with_capacity(shared.len());
        for s in shared {
            let name = acl::shared_name(&s.owner, &s.mailbox.name);
            names.extend(crate::names::ancestors(&name).map(str::to_owned));
            boxes.push(MailboxInfo { name, ..s.mailbox });
        }
        names.retain(|n| !boxes.iter().any(|b| b.name == *n));
        boxes.extend(names.into_iter().map(namespace_node));
        boxes.sort_unstable_by(|x, y| x.name.cmp(&y.name));
        own.extend(boxes);
        Ok(own)
    }

    /// Other accounts' mailboxes the session's user may see (`l`), with its rights on each.
    pub async fn shared_mailboxes(&self, ctx: &SessionContext) -> Result<Vec<SharedMailbox>> {
        match self
            .query(Query::SharedMailboxes(ctx.account()?.to_owned()))
            .await?
        {
            Answer::Shared(s) => Ok(s),
            _ => Err(mismatch()),
        }
    }

    /// One mailbox of the session's user (SELECT, STATUS), or one shared with it that it may
    /// read (`r`), under the name given.
    pub async fn mailbox(&self, ctx: &SessionContext, name: &str) -> Result<MailboxInfo> {
        let (account, mailbox) = self.readable(ctx, name).await?;
        let q = Query::Mailbox(account.clone(), mailbox);
        match self.query(q).await? {
            Answer::Mailbox(m) => Ok(MailboxInfo {
                recent_uid: self.claimed_recent(&account, &m.name, m.uidvalidity, m.recent_uid),
                name: if acl::other_user(name).is_some() {
                    name.to_owned()
                } else {
                    m.name
                },
                ..m
            }),
            _ => Err(mismatch()),
        }
    }

    /// The session's user's rights on a mailbox (MYRIGHTS): every right on its own, its and
    /// `anyone`'s entries on another account's. A mailbox it may not see is NotFound.
    pub async fn my_rights(&self, ctx: &SessionContext, name: &str) -> Result<Rights> {
        let (account, mailbox) = target(ctx, name)?;
        let me = ctx.account()?;
        let q = Query::Rights {
            account,
            mailbox,
            user: me.to_owned(),
        };
        let rights = match self.query(q).await? {
            Answer::Rights(r) => r,
            _ => return Err(mismatch()),
        };
        if !rights.sees() {
            // The owner's own mailbox that does not exist lands here too (no rights on it).
            return Err(StoreError::not_found("mailbox", name));
        }
        Ok(rights)
    }

    /// For reads of another account's mailbox: its (account, mailbox), once the session's
    /// user is known to hold `r` on it (a mailbox it may not see is NotFound, one it sees
    /// without `r` NoPermission). Own mailboxes cost no extra read.
    async fn readable(&self, ctx: &SessionContext, name: &str) -> Result<(String, String)> {
        self.target_with(ctx, name, Rights::READ).await
    }

    /// `name`'s (account, mailbox), once a guest is known to hold `needed` on it; the
    /// session's own mailboxes pass without a read.
    async fn target_with(
        &self,
        ctx: &SessionContext,
        name: &str,
        needed: Rights,
    ) -> Result<(String, String)> {
        let (account, mailbox) = target(ctx, name)?;
        if account != ctx.account()? {
            let rights = self.my_rights(ctx, name).await?;
            if !rights.contains(needed) {
                return Err(StoreError::NoPermission {
                    mailbox: name.to_owned(),
                    needed: needed.to_string(),
                });
            }
        }
        Ok((account, mailbox))
    }

    /// GETACL (RFC 4314 §3.3): the owner's implicit entry first (none in the "Shared"
    /// namespace), then the stored ones. Needs `a` on another account's mailbox.
    pub async fn get_acl(&self, ctx: &SessionContext, name: &str) -> Result<Vec<AclEntry>> {
        let (account, mailbox) = self.target_with(ctx, name, Rights::ADMIN).await?;
        let q = Query::Acl {
            account: account.clone(),
            mailbox,
        };
        match self.query(q).await? {
            // A "Shared" namespace mailbox has no owner to list; its administrators' rights
            // come with their role, not from an entry.
            Answer::Acl(entries) if account == acl::SHARED_OWNER => Ok(entries),
            Answer::Acl(entries) => {
                let mut all = vec![AclEntry {
                    identifier: account,
                    rights: Rights::ALL,
                }];
                all.extend(entries);
                Ok(all)
            }
            _ => Err(mismatch()),
        }
    }

    /// SETACL (`Some` rights; empty rights remove the entry) or DELETEACL (`None`) on a
    /// mailbox of the session's user, or of another account where it holds `a`. Emits
    /// `vnd.herald.AclChange` and, for the identifier, MailboxCreate/MailboxDelete when the
    /// change makes the mailbox visible to it or hides it (RFC 5423 §4.4).
    pub async fn set_acl(
        &self,
        ctx: &SessionContext,
        name: &str,
        identifier: &str,
        rights: Option<Rights>,
    ) -> Result<Committed<()>> {
        let (account, mailbox) = target(ctx, name)?;
        let op = Op::SetAcl {
            account,
            mailbox,
            identifier: identifier.to_owned(),
            rights,
        };
        self.run(ctx, op, |_| Some(())).await
    }

    /// The session's user's subscriptions (LSUB), by name.
    pub async fn subscriptions(&self, ctx: &SessionContext) -> Result<Vec<String>> {
        match self
            .query(Query::Subscriptions(ctx.account()?.to_owned()))
            .await?
        {
            Answer::Subscriptions(s) => Ok(s),
            _ => Err(mismatch()),
        }
    }

    // ---- messages -------------------------------------------------------------------------

    /// APPEND: MessageAppend (`vnd.herald.cause` = append), or QuotaExceed and
    /// [`StoreError::OverQuota`]. `internal_date_ms` defaults to now.
    pub async fn append(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        content: Vec<u8>,
        flags: &[String],
        internal_date_ms: Option<i64>,
    ) -> Result<Committed<Appended>> {
        let (account, mailbox) = target(ctx, mailbox)?;
        let thread = threading::keys(&content);
        let blob = self.inner.backend.put_blob(content).await?;
        let op = Op::Append {
            account,
            mailbox,
            blob,
            flags: flags.to_vec(),
            internal_date_ms: internal_date_ms.unwrap_or_else(now_ms),
            envelope: None,
            thread,
        };
        self.run(ctx, op, appended).await
    }

    /// MULTIAPPEND (RFC 3502): appends `messages` (content, flags, INTERNALDATE) to `mailbox`
    /// atomically — one commit with one MessageAppend per message, or nothing at all (an
    /// over-quota attempt commits only its QuotaExceed).
    pub async fn append_many(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        messages: Vec<(Vec<u8>, Vec<String>, Option<i64>)>,
    ) -> Result<Committed<Vec<Appended>>> {
        let (account, mailbox) = target(ctx, mailbox)?;
        let mut items = Vec::with_capacity(messages.len());
        for (content, flags, date) in messages {
            let thread = threading::keys(&content);
            let blob = self.inner.backend.put_blob(content).await?;
            items.push((blob, flags, date.unwrap_or_else(now_ms), thread));
        }
        let op = Op::AppendMany {
            account,
            mailbox,
            messages: items,
        };
        self.run(ctx, op, |o| match o {
            Output::AppendedMany(a) => Some(a),
            _ => None,
        })
        .await
    }

    /// Messages brought in by `herald import`, in one commit (all or none): one MessageAppend
    /// each with `vnd.herald.cause` = `import`, counted against the quota. The source's
    /// `uidvalidity` and each message's `uid` are kept when the mailbox has never held a
    /// message or already has that UIDVALIDITY (a resumed import); otherwise the messages get
    /// the mailbox's next UIDs ([`Imported::uids_kept`] says which). `uidnext`, with kept UIDs,
    /// raises the mailbox's UIDNEXT afterwards to the source's. `uidnext` must only come with
    /// a mailbox's last messages: UIDs below it are not kept any more. `progress` (a key
    /// naming the source mailbox, the last position imported) is recorded in the same
    /// commit, so [`Store::import_progress`] after a crash names exactly what is in the store.
    pub async fn import(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        (uidvalidity, uidnext): (Option<u32>, Option<u32>),
        messages: Vec<ImportMessage>,
        progress: Option<(String, i64)>,
    ) -> Result<Committed<Imported>> {
        let account = ctx.account()?.to_owned();
        let mut items = Vec::with_capacity(messages.len());
        for m in messages {
            let thread = threading::keys(&m.content);
            let blob = self.inner.backend.put_blob(m.content).await?;
            items.push(backend::ImportItem {
                blob,
                flags: m.flags,
                internal_date_ms: m.internal_date_ms,
                thread,
                uid: m.uid,
            });
        }
        let op = Op::Import {
            account,
            mailbox: mailbox.to_owned(),
            uidvalidity,
            messages: items,
            uidnext,
            progress,
        };
        self.run(ctx, op, |o| match o {
            Output::Imported(i) => Some(i),
            _ => None,
        })
        .await
    }

    /// The resume point [`Store::import`] last recorded for the session's user under `key`.
    pub async fn import_progress(&self, ctx: &SessionContext, key: &str) -> Result<Option<i64>> {
        let q = Query::ImportProgress {
            account: ctx.account()?.to_owned(),
            key: key.to_owned(),
        };
        match self.query(q).await? {
            Answer::Progress(p) => Ok(p),
            _ => Err(mismatch()),
        }
    }

    /// Delivery to one recipient: MessageNew with `envelope`, or QuotaExceed and
    /// [`StoreError::OverQuota`].
    pub async fn deliver(
        &self,
        ctx: &SessionContext,
        recipient: &Recipient,
        content: Vec<u8>,
        internal_date_ms: Option<i64>,
    ) -> Result<Committed<Appended>> {
        let thread = threading::keys(&content);
        let blob = self.inner.backend.put_blob(content).await?;
        self.deliver_blob(
            ctx,
            recipient,
            blob,
            internal_date_ms.unwrap_or_else(now_ms),
            thread,
        )
        .await
    }

    async fn deliver_blob(
        &self,
        ctx: &SessionContext,
        recipient: &Recipient,
        blob: blobs::BlobRef,
        internal_date_ms: i64,
        thread: threading::ThreadKeys,
    ) -> Result<Committed<Appended>> {
        let op = delivery(recipient, blob, internal_date_ms, thread);
        self.run(ctx, op, appended).await
    }

    /// Delivery of one message to several recipients (LMTP): the content is stored once, and
    /// every recipient's delivery commits in one transaction where they fit one batch — one
    /// flush for them all — each with its own outcome (LMTP answers per recipient: one over
    /// its quota fails alone). Results are in recipient order.
    pub async fn deliver_many(
        &self,
        ctx: &SessionContext,
        recipients: &[Recipient],
        content: Vec<u8>,
    ) -> Result<Vec<Result<Committed<Appended>>>> {
        let thread = threading::keys(&content);
        let blob = self.inner.backend.put_blob(content).await?;
        let now = now_ms();
        if let [r] = recipients {
            return Ok(vec![self.deliver_blob(ctx, r, blob, now, thread).await]);
        }
        let ops = recipients
            .iter()
            .map(|r| (ctx.clone(), delivery(r, blob.clone(), now, thread.clone())))
            .collect();
        Ok(self
            .inner
            .backend
            .submit_many(ops)
            .await
            .into_iter()
            .map(|applied| committed(applied?, appended))
            .collect())
    }

    /// COPY: one MessageAppend per copied message in the target (`vnd.herald.cause` = copy,
    /// with the source mailbox and its SPECIAL-USE). Counts against the quota.
    pub async fn copy(
        &self,
        ctx: &SessionContext,
        from: &str,
        uids: &UidSet,
        to: &str,
    ) -> Result<Committed<CopyResult>> {
        self.copy_or_move(ctx, from, uids, to, false).await
    }

    /// MOVE (RFC 6851): MessageAppend per message in the target (cause move) and one
    /// MessageExpunge in the source.
    pub async fn move_messages(
        &self,
        ctx: &SessionContext,
        from: &str,
        uids: &UidSet,
        to: &str,
    ) -> Result<Committed<CopyResult>> {
        self.copy_or_move(ctx, from, uids, to, true).await
    }

    async fn copy_or_move(
        &self,
        ctx: &SessionContext,
        from: &str,
        uids: &UidSet,
        to: &str,
        remove_source: bool,
    ) -> Result<Committed<CopyResult>> {
        let (account, from) = target(ctx, from)?;
        let (to_account, to) = target(ctx, to)?;
        let op = Op::Copy {
            account,
            from,
            uids: uids.clone(),
            to_account,
            to,
            remove_source,
        };
        self.run(ctx, op, |o| match o {
            Output::Copied(c) => Some(c),
            _ => None,
        })
        .await
    }

    /// STORE / UID STORE, with RFC 7162 UNCHANGEDSINCE. Emits MessageRead, MessageTrash,
    /// FlagsSet and FlagsClear as RFC 5423 §4.2 says; nothing when nothing changed.
    pub async fn store_flags(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        uids: &UidSet,
        mode: FlagMode,
        flags: &[String],
        unchanged_since: Option<u64>,
    ) -> Result<Committed<StoreResult>> {
        let (account, mailbox) = target(ctx, mailbox)?;
        let op = Op::StoreFlags {
            account,
            mailbox,
            uids: uids.clone(),
            mode,
            flags: flags.to_vec(),
            unchanged_since,
        };
        self.run(ctx, op, |o| match o {
            Output::Flags(f) => Some(f),
            _ => None,
        })
        .await
    }

    /// EXPUNGE (all `\Deleted` messages) or UID EXPUNGE (those also in `uids`): MessageExpunge,
    /// and QuotaWithin when usage falls under a limit. Returns the expunged UIDs.
    pub async fn expunge(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        uids: Option<&UidSet>,
    ) -> Result<Committed<Vec<u32>>> {
        let (account, mailbox) = target(ctx, mailbox)?;
        let op = Op::Expunge {
            account,
            mailbox,
            uids: uids.cloned(),
            deleted_only: true,
        };
        self.run(ctx, op, |o| match o {
            Output::Expunged(u) => Some(u),
            _ => None,
        })
        .await
    }

    /// POP3 DELE followed by QUIT: removes exactly `uids` (whatever their flags) in one
    /// transaction — one MessageExpunge (RFC 5423 §4.1), and QuotaWithin when usage falls under
    /// a limit. UIDs already gone are skipped. Returns the expunged UIDs.
    pub async fn expunge_uids(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        uids: &UidSet,
    ) -> Result<Committed<Vec<u32>>> {
        let (account, mailbox) = target(ctx, mailbox)?;
        let op = Op::Expunge {
            account,
            mailbox,
            uids: Some(uids.clone()),
            deleted_only: false,
        };
        self.run(ctx, op, |o| match o {
            Output::Expunged(u) => Some(u),
            _ => None,
        })
        .await
    }

    /// Records a successful login of the session's user (RFC 5423 §4.3 Login). Call it after
    /// authentication succeeded; the context should carry serverDomain and serverPort.
    ///
    /// Every protocol's login passes here, so this is where its one log line is written, in the
    /// form of the failed and refused ones (`herald_net`'s limiter): `login service=… user=…
    /// rip=…`.
    pub async fn login(&self, ctx: &SessionContext) -> Result<Committed<()>> {
        let op = Op::Access {
            account: ctx.account()?.to_owned(),
            access: Access::Login,
        };
        let committed = self.run(ctx, op, |_| Some(())).await?;
        let user = ctx.account().unwrap_or_default();
        let rip = LogAddr(ctx.client_ip);
        match &ctx.auth_user {
            // An administrator acting as `user`: who really logged in is in the line too.
            Some(auth) => {
                tracing::info!(service = %ctx.service, user = ?user, auth = ?auth, rip = %rip, "login")
            }
            None => tracing::info!(service = %ctx.service, user = ?user, rip = %rip, "login"),
        }
        Ok(committed)
    }

    /// Records a failed or refused authentication as `vnd.herald.LoginFailed`, once per
    /// attempt — except refusals by the rate limiter, at most one per client and name per
    /// [`RATE_LIMITED_EVENT_WINDOW`] (the others commit nothing and return no event): `user`
    /// is the name tried, `mechanism` how (`LOGIN`, `PLAIN`, `USER`, `Basic`), and the context
    /// supplies the client's and server's addresses. The password never reaches this function.
    /// Overlong names are cut so a client cannot grow the outbox.
    pub async fn login_failed(
        &self,
        ctx: &SessionContext,
        user: &str,
        mechanism: &str,
        failure: LoginFailure,
    ) -> Result<Committed<()>> {
        if failure == LoginFailure::RateLimited && !self.first_refusal(ctx.client_ip, user) {
            return Ok(Committed {
                value: (),
                events: Vec::new(),
            });
        }
        let op = Op::LoginFailed {
            user: cut(user, 256).to_owned(),
            mechanism: cut(mechanism, 32).to_owned(),
            failure,
        };
        // Whoever tried, the event is not the act of an authenticated session.
        let mut ctx = ctx.clone();
        ctx.user = None;
        ctx.auth_user = None;
        self.run(&ctx, op, |_| Some(())).await
    }

    /// Whether a rate-limited attempt of `user` from `ip` is the first in the window (and
    /// remembers it if so).
    fn first_refusal(&self, ip: Option<std::net::IpAddr>, user: &str) -> bool {
        let now = std::time::Instant::now();
        let mut seen = self
            .inner
            .throttled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (ip, cut(user, 256).to_owned());
        if seen
            .get(&key)
            .is_some_and(|at| now.duration_since(*at) < RATE_LIMITED_EVENT_WINDOW)
        {
            return false;
        }
        if seen.len() >= MAX_THROTTLED {
            seen.retain(|_, at| now.duration_since(*at) < RATE_LIMITED_EVENT_WINDOW);
            if seen.len() >= MAX_THROTTLED {
                seen.clear();
            }
        }
        seen.insert(key, now);
        true
    }

    /// Records the end of the session's login (RFC 5423 §4.3 Logout) with how it ended and how
    /// long it lasted (`vnd.herald.disconnect`, `vnd.herald.sessionMillis`).
    pub async fn logout(
        &self,
        ctx: &SessionContext,
        disconnect: Disconnect,
        duration: Duration,
    ) -> Result<Committed<()>> {
        let duration_ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        let op = Op::Access {
            account: ctx.account()?.to_owned(),
            access: Access::Logout {
                disconnect,
                duration_ms,
            },
        };
        let committed = self.run(ctx, op, |_| Some(())).await?;
        tracing::info!(
            service = %ctx.service,
            user = ?ctx.account().unwrap_or_default(),
            rip = %LogAddr(ctx.client_ip),
            disconnect = ?disconnect,
            session_ms = duration_ms,
            "logout"
        );
        Ok(committed)
    }

    /// Applies every mailbox's max-age policy (of one user, or all) as of `now_ms`:
    /// MessageExpire per mailbox, QuotaWithin per account that falls under a limit.
    pub async fn expire(
        &self,
        ctx: &SessionContext,
        user: Option<&str>,
        now_ms: i64,
    ) -> Result<Committed<Vec<Expired>>> {
        let op = Op::Expire {
            account: user.map(str::to_owned),
            now_ms,
        };
        self.run(ctx, op, |o| match o {
            Output::Expired(e) => Some(e),
            _ => None,
        })
        .await
    }

    /// Metadata of the messages of a mailbox of the session's user (all, or those in `uids`).
    pub async fn fetch(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        uids: Option<&UidSet>,
    ) -> Result<Vec<MessageMeta>> {
        self.messages(ctx, mailbox, uids.cloned()).await
    }

    /// Metadata of every message of the mailbox `info` describes, as read just before
    /// (SELECT's snapshot). Its count of messages is a hint of the read's size, which lets a
    /// small mailbox be read without a hop to a blocking thread; its UIDVALIDITY and
    /// HIGHESTMODSEQ name the state a kept snapshot may stand for (see `snapshots`).
    pub async fn fetch_all(
        &self,
        ctx: &SessionContext,
        info: &MailboxInfo,
    ) -> Result<Arc<Vec<MessageMeta>>> {
        let (account, mailbox) = self.readable(ctx, &info.name).await?;
        let kept = self.inner.snapshots.as_ref();
        if let Some(kept) = kept
            && let Some(old) = kept.latest(info.id, info.uidvalidity)
        {
            if old.highest_modseq == info.highest_modseq {
                return Ok(Arc::clone(&old.messages));
            }
            if old.highest_modseq < info.highest_modseq
                && let Some(messages) = self.catch_up(ctx, info, &old).await?
            {
                return Ok(messages);
            }
        }
        let q = Query::Snapshot {
            account,
            mailbox,
            expected: info.messages,
        };
        match self.query(q).await? {
            Answer::Snapshot {
                mailbox_id,
                uidvalidity,
                highest_modseq,
                messages,
            } => {
                let messages = Arc::new(messages);
                if let Some(kept) = kept {
                    let snapshot = Snapshot {
                        uidvalidity,
                        highest_modseq,
                        messages: Arc::clone(&messages),
                    };
                    kept.put(mailbox_id, Arc::new(snapshot));
                }
                Ok(messages)
            }
            _ => Err(mismatch()),
        }
    }

    /// The kept snapshot `old` of `mailbox` brought up to date with the changes since its
    /// HIGHESTMODSEQ (see `snapshots`), and kept in its place; `None` when they do not fit it.
    async fn catch_up(
        &self,
        ctx: &SessionContext,
        info: &MailboxInfo,
        old: &Snapshot,
    ) -> Result<Option<Arc<Vec<MessageMeta>>>> {
        let mailbox = info.name.as_str();
        let known_max = old.messages.last().map_or(0, |m| m.uid);
        let changes = self
            .changes(
                ctx,
                mailbox,
                old.highest_modseq,
                known_max,
                old.messages.len() as u64,
            )
            .await?;
        let Some(messages) = crate::snapshots::catch_up(old, &changes) else {
            tracing::debug!(
                mailbox,
                "a kept snapshot did not fit its changes; reading anew"
            );
            return Ok(None);
        };
        let messages = Arc::new(messages);
        if let Some(kept) = self.inner.snapshots.as_ref() {
            kept.put(
                info.id,
                Arc::new(Snapshot {
                    uidvalidity: old.uidvalidity,
                    highest_modseq: changes.highest_modseq,
                    messages: Arc::clone(&messages),
                }),
            );
        }
        Ok(Some(messages))
    }

    async fn messages(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        uids: Option<UidSet>,
    ) -> Result<Vec<MessageMeta>> {
        let (account, mailbox) = self.readable(ctx, mailbox).await?;
        let q = Query::Messages {
            account,
            mailbox,
            uids,
        };
        match self.query(q).await? {
            Answer::Messages(m) => Ok(m),
            _ => Err(mismatch()),
        }
    }

    /// STATUS counts of `mailbox` (unseen, deleted, size, not yet recent to anyone),
    /// aggregated by the store.
    pub async fn counts(&self, ctx: &SessionContext, mailbox: &str) -> Result<MailboxCounts> {
        let (account, mailbox) = self.readable(ctx, mailbox).await?;
        // Keyed by the canonical name (`inbox` is INBOX).
        let claimed = self.inner.recent.as_ref().and_then(|c| {
            let key = names::mailbox(&mailbox, false).unwrap_or_else(|_| mailbox.clone());
            c.claimed(&account, &key)
        });
        let q = Query::Counts {
            account,
            mailbox,
            claimed,
        };
        match self.query(q).await? {
            Answer::Counts(c) => Ok(c),
            _ => Err(mismatch()),
        }
    }

    /// What changed in `mailbox` since `since_modseq` for a session that knows `known_count`
    /// messages up to UID `known_max_uid`: changed and new messages and, only when a known
    /// message is gone, the UIDs expunged since (from the tombstones) or, when those do not
    /// reach back that far, the full UID list. Costs one row read when nothing changed.
    pub async fn changes(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        since_modseq: u64,
        known_max_uid: u32,
        known_count: u64,
    ) -> Result<Changes> {
        let (account, mailbox) = self.readable(ctx, mailbox).await?;
        let q = Query::Changes {
            account,
            mailbox,
            since_modseq,
            known_max_uid,
            known_count,
        };
        match self.query(q).await? {
            Answer::Changes(c) => Ok(c),
            _ => Err(mismatch()),
        }
    }

    /// The UIDs expunged from `mailbox` after `since_modseq`, from the store's tombstones
    /// (QRESYNC's VANISHED (EARLIER), RFC 7162 §3.2.5.2). [`Vanished::complete`] says whether
    /// the tombstones reach back that far.
    pub async fn vanished(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        since_modseq: u64,
    ) -> Result<Vanished> {
        let (account, mailbox) = self.readable(ctx, mailbox).await?;
        let q = Query::Vanished {
            account,
            mailbox,
            since_modseq,
        };
        match self.query(q).await? {
            Answer::Vanished(v) => Ok(v),
            _ => Err(mismatch()),
        }
    }

    /// The SHA-256 of each message's content, by UID (all, or those in `uids`): a stable
    /// identity of the bytes, the same wherever COPY or MOVE puts them (IMAP OBJECTID's
    /// EMAILID is derived from it).
    pub async fn content_ids(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        uids: Option<&UidSet>,
    ) -> Result<Vec<(u32, [u8; 32])>> {
        let (account, mailbox) = self.readable(ctx, mailbox).await?;
        let q = Query::ContentIds {
            account,
            mailbox,
            uids: uids.cloned(),
        };
        match self.query(q).await? {
            Answer::ContentIds(c) => Ok(c),
            _ => Err(mismatch()),
        }
    }

    /// The bytes of the messages in `uids`, ascending by UID; UIDs no longer in the mailbox are
    /// left out. One read for the set instead of one per message. `expected_bytes` is their
    /// total size as the caller knows it (RFC822.SIZE): a few small messages are read without a
    /// hand-off to a blocking thread.
    pub async fn read_messages(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        uids: &UidSet,
        expected_bytes: Option<u64>,
    ) -> Result<Vec<(u32, Vec<u8>)>> {
        let (account, mailbox) = self.readable(ctx, mailbox).await?;
        let q = Query::Contents {
            account,
            mailbox,
            uids: uids.clone(),
            expected_bytes,
        };
        match self.query(q).await? {
            Answer::Contents(c) => Ok(c),
            _ => Err(mismatch()),
        }
    }

    /// The bytes of one message.
    pub async fn read_message(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        uid: u32,
    ) -> Result<Vec<u8>> {
        self.read_messages(ctx, mailbox, &UidSet::single(uid), None)
            .await?
            .pop()
            .map(|(_, c)| c)
            .ok_or_else(|| StoreError::not_found("message", format!("{mailbox} UID {uid}")))
    }

    // ---- delivery state (subscriptions, cursors, parked events) ----------------------------

    fn delivery_ctx() -> SessionContext {
        SessionContext::service(PROCESS)
    }

    async fn delivery_op(&self, op: Op) -> Result<()> {
        self.run(&Self::delivery_ctx(), op, |_| Some(()))
            .await
            .map(|_| ())
    }

    /// A user's push subscriptions (WebPush), oldest first.
    pub async fn push_subscriptions(&self, user: &str) -> Result<Vec<PushSubscription>> {
        match self
            .query(Query::PushSubscriptions(user.to_owned()))
            .await?
        {
            Answer::PushSubscriptions(s) => Ok(s),
            _ => Err(mismatch()),
        }
    }

    /// Registers or refreshes a push subscription (same user and endpoint: new keys); fails
    /// with [`StoreError::InvalidArgument`] when the account already holds `max` others.
    pub async fn put_push_subscription(&self, sub: PushSubscription, max: usize) -> Result<()> {
        self.delivery_op(Op::PutPushSubscription { sub, max }).await
    }

    /// Removes a push subscription ([`StoreError::NotFound`] when there is none).
    pub async fn delete_push_subscription(&self, user: &str, endpoint: &str) -> Result<()> {
        self.delivery_op(Op::DeletePushSubscription {
            account: user.to_owned(),
            endpoint: endpoint.to_owned(),
        })
        .await
    }

    // ---- URLAUTH mailbox access keys (RFC 4467; see `crate::urlauth`) ---------------------

    /// The URLAUTH access key of a mailbox of `owner`, if it has one. A read: URLFETCH uses
    /// it, and must never create a key for a URL that could not have been issued.
    pub async fn access_key_of(
        &self,
        owner: &str,
        mailbox: &str,
    ) -> Result<Option<crate::urlauth::AccessKey>> {
        let q = Query::AccessKey {
            account: owner.to_owned(),
            mailbox: mailbox.to_owned(),
        };
        match self.query(q).await? {
            Answer::AccessKey(k) => Ok(k),
            _ => Err(mismatch()),
        }
    }

    /// The URLAUTH access key of one of the session user's mailboxes, created (256 random
    /// bits) on first use: GENURLAUTH, and URLAUTH references in events.
    pub async fn access_key(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
    ) -> Result<crate::urlauth::AccessKey> {
        let account = ctx.account()?;
        if let Some(key) = self.access_key_of(account, mailbox).await? {
            return Ok(key);
        }
        let key = crate::urlauth::new_key().ok_or_else(|| {
            StoreError::Io(std::io::Error::other(
                "the system random number generator failed",
            ))
        })?;
        let op = Op::CreateAccessKey {
            account: account.to_owned(),
            mailbox: mailbox.to_owned(),
            key,
        };
        self.run(ctx, op, |o| match o {
            Output::AccessKey(k) => Some(k),
            _ => None,
        })
        .await
        .map(|c| c.value)
    }

    /// RESETKEY: forgets the access key of one mailbox of the session's user, or of all of
    /// them, revoking every URL authorized under it; the next use creates a new key.
    pub async fn reset_access_keys(
        &self,
        ctx: &SessionContext,
        mailbox: Option<&str>,
    ) -> Result<()> {
        let op = Op::ResetAccessKeys {
            account: ctx.account()?.to_owned(),
            mailbox: mailbox.map(str::to_owned),
        };
        self.run(ctx, op, |_| Some(())).await.map(|_| ())
    }

    /// Every subscription's delivery record.
    pub async fn deliveries(&self) -> Result<Vec<DeliveryRecord>> {
        match self.query(Query::Deliveries).await? {
            Answer::Deliveries(d) => Ok(d),
            _ => Err(mismatch()),
        }
    }

    /// Creates or replaces a subscription's record.
    pub async fn put_delivery(&self, record: DeliveryRecord) -> Result<()> {
        self.delivery_op(Op::PutDelivery(record)).await
    }

    /// Removes a subscription's record and its parked events.
    pub async fn delete_delivery(&self, name: &str) -> Result<()> {
        self.delivery_op(Op::DeleteDelivery {
            name: name.to_owned(),
        })
        .await
    }

    /// Saves a subscription's delivery counters and current failure, and moves its cursor when
    /// `cursor` is given, in one commit; with a `fence`, only as the lease holder whose cursor
    /// is still the stored one (else [`StoreError::LeaseLost`]).
    pub async fn set_delivery_stats(
        &self,
        name: &str,
        cursor: Option<u64>,
        stats: DeliveryStats,
        fence: Option<LeaseFence>,
    ) -> Result<()> {
        self.delivery_op(Op::SetDeliveryStats {
            name: name.to_owned(),
            cursor,
            stats,
            fence,
        })
        .await
    }

    /// Takes or renews the lease of subscription `name` for `node` for `ttl`: the record
    /// (cursor, state, counters) as stored when `node` holds the lease now, `None` while
    /// another node holds an unexpired one. Nodes sharing a database deliver a subscription one
    /// at a time this way; a node that dies loses its leases when they expire.
    pub async fn claim_delivery(
        &self,
        name: &str,
        node: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<DeliveryRecord>> {
        let now = now_ms();
        let op = Op::ClaimDelivery {
            name: name.to_owned(),
            node: node.to_owned(),
            now_ms: now,
            until_ms: now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)),
        };
        let applied = self.inner.backend.submit(Self::delivery_ctx(), op).await?;
        match applied.output {
            Output::Claimed(record) => Ok(record.map(|r| *r)),
            _ => Err(mismatch()),
        }
    }

    /// Gives up `node`'s lease of subscription `name` (a node stopping), so another node takes
    /// it over at once rather than when it expires.
    pub async fn release_delivery(&self, name: &str, node: &str) -> Result<()> {
        self.delivery_op(Op::ReleaseDelivery {
            name: name.to_owned(),
            node: node.to_owned(),
        })
        .await
    }

    /// Moves a subscription's cursor (the last acknowledged event id).
    pub async fn set_delivery_cursor(&self, name: &str, cursor: u64) -> Result<()> {
        self.delivery_op(Op::SetDeliveryCursor {
            name: name.to_owned(),
            cursor,
        })
        .await
    }

    /// Pauses or resumes a subscription; sets or clears its disabled reason.
    pub async fn set_delivery_state(
        &self,
        name: &str,
        paused: bool,
        disabled_reason: Option<String>,
    ) -> Result<()> {
        self.delivery_op(Op::SetDeliveryState {
            name: name.to_owned(),
            paused,
            disabled_reason,
        })
        .await
    }

    /// Parks events a subscription gave up on and moves its cursor to `cursor`, in one commit;
    /// with a `fence` as [`Store::set_delivery_stats`].
    pub async fn park_events(
        &self,
        name: &str,
        ids: Vec<u64>,
        reason: &str,
        cursor: u64,
        fence: Option<LeaseFence>,
    ) -> Result<()> {
        self.delivery_op(Op::ParkEvents {
            name: name.to_owned(),
            ids,
            reason: reason.to_owned(),
            cursor,
            now_ms: now_ms(),
            fence,
        })
        .await
    }

    /// A subscription's parked events.
    pub async fn parked_events(&self, name: &str) -> Result<Vec<ParkedEvent>> {
        match self.query(Query::Parked(name.to_owned())).await? {
            Answer::Parked(p) => Ok(p),
            _ => Err(mismatch()),
        }
    }

    /// Removes delivered events from a subscription's parked list.
    pub async fn unpark_events(&self, name: &str, ids: Vec<u64>) -> Result<()> {
        self.delivery_op(Op::UnparkEvents {
            name: name.to_owned(),
            ids,
        })
        .await
    }

    /// Outbox rows with these ids, ascending (ids that do not exist are skipped).
    pub async fn events_by_id(&self, ids: Vec<u64>) -> Result<Vec<StoredEvent>> {
        match self.query(Query::EventsById(ids)).await? {
            Answer::Events(e) => Ok(e),
            _ => Err(mismatch()),
        }
    }

    // ---- outbox and notifications -------------------------------------------------------------

    /// Outbox rows with id greater than `after`, ascending, at most `limit`.
    pub async fn events_after(&self, after: u64, limit: usize) -> Result<Vec<StoredEvent>> {
        match self.query(Query::EventsAfter { after, limit }).await? {
            Answer::Events(e) => Ok(e),
            _ => Err(mismatch()),
        }
    }

    /// The highest committed outbox id, including other processes' commits.
    pub async fn last_event_id(&self) -> Result<u64> {
        match self.query(Query::LastEventId).await? {
            Answer::Id(id) => Ok(id),
            _ => Err(mismatch()),
        }
    }

    /// The oldest event id the outbox keeps and the highest committed.
    pub async fn outbox_bounds(&self) -> Result<OutboxBounds> {
        match self.query(Query::OutboxBounds).await? {
            Answer::OutboxBounds(b) => Ok(b),
            _ => Err(mismatch()),
        }
    }

    /// When the events with these ids were committed (their `timestamp`, ms since the
    /// epoch), for those still in the outbox.
    pub async fn event_times(&self, ids: Vec<u64>) -> Result<Vec<(u64, Option<i64>)>> {
        match self.query(Query::EventTimes(ids)).await? {
            Answer::EventTimes(t) => Ok(t),
            _ => Err(mismatch()),
        }
    }

    /// How many events each subscription has parked (those with none are left out).
    pub async fn parked_counts(&self) -> Result<Vec<(String, u64)>> {
        match self.query(Query::ParkedCounts).await? {
            Answer::ParkedCounts(c) => Ok(c),
            _ => Err(mismatch()),
        }
    }

    /// Removes, oldest first, one batch of the events `policy` lets go: only events every
    /// subscription has acknowledged, none parked, none after a [`RetentionHold`], never the
    /// newest (see [`retention`]). Call again while [`PruneReport::more`] says so.
    ///
    /// [`RetentionHold`]: retention::RetentionHold
    /// [`PruneReport::more`]: retention::PruneReport::more
    pub async fn prune_events(
        &self,
        policy: &retention::RetentionPolicy,
    ) -> Result<retention::PruneReport> {
        let op = Op::PruneOutbox {
            policy: *policy,
            // Read before the operation is queued: a hold only moves forward, so this can
            // only be lower (more careful) than the hold when the operation runs.
            hold: self.inner.holds.lowest(),
            now_ms: now_ms(),
        };
        let report = self
            .run(&Self::delivery_ctx(), op, |o| match o {
                Output::Pruned(r) => Some(r),
                _ => None,
            })
            .await?
            .value;
        herald_metrics::global().events_pruned(report.pruned);
        Ok(report)
    }

    /// Sweeps one account's thread identifiers if any account is due (see schema version 6):
    /// returns the account and how many identifiers went, or `None` when none was due. Call
    /// again while it returns `Some`; each call is one short writer transaction.
    pub async fn sweep_threads(&self) -> Result<Option<(String, u64)>> {
        self.run(&Self::delivery_ctx(), Op::SweepThreads, |o| match o {
            Output::SweptThreads(r) => Some(r),
            _ => None,
        })
        .await
        .map(|a| a.value)
    }

    /// Keeps retention from removing any event after `at` until the hold moves on
    /// ([`retention::RetentionHold::release_through`]) or is dropped. For consumers in this
    /// process whose cursor lives outside the store, such as the event log.
    pub fn retention_hold(&self, at: u64) -> retention::RetentionHold {
        self.inner.holds.add(at)
    }

    /// "Outbox advanced": the last outbox id committed by this process.
    pub fn outbox_watch(&self) -> watch::Receiver<u64> {
        self.inner.backend.outbox_watch()
    }

    /// "Mailbox changed": a counter bumped after each commit that changed the mailbox
    /// ([`MailboxInfo::id`]).
    pub fn mailbox_watch(&self, mailbox_id: i64) -> watch::Receiver<u64> {
        self.inner.backend.mailbox_watch(mailbox_id)
    }

    /// Waits until the outbox holds an id greater than `after` (committed by this process or
    /// another) or `timeout` passes; returns the last id seen. In-process commits wake it at
    /// once; other processes' are seen within [`CROSS_PROCESS_POLL`].
    pub async fn wait_for_events(&self, after: u64, timeout: Duration) -> Result<u64> {
        let deadline = Instant::now() + timeout;
        let mut rx = self.outbox_watch();
        // The database is asked only when the watch stayed quiet for a poll interval (or at
        // the deadline): a reader that follows the outbox calls this after every event, and
        // in-process commits always reach the watch.
        loop {
            let local = *rx.borrow_and_update();
            if local > after {
                return Ok(local);
            }
            let now = Instant::now();
            if now >= deadline {
                return self.last_event_id().await;
            }
            let wait = CROSS_PROCESS_POLL.min(deadline - now);
            match tokio::time::timeout(wait, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(StoreError::Closed),
                Err(_) => {
                    let last = self.last_event_id().await?;
                    if last > after {
                        return Ok(last);
                    }
                }
            }
        }
    }

    /// Recomputes counters, refcounts and outbox invariants (for tests, `herald` checks and
    /// after a crash), decoding and validating every outbox row.
    pub async fn check_consistency(&self) -> Result<Consistency> {
        self.check_consistency_since(0).await
    }

    /// As [`Store::check_consistency`], but decodes only the outbox rows after `after` (the
    /// counters and the outbox's density are always checked in full).
    pub async fn check_consistency_since(&self, after: u64) -> Result<Consistency> {
        match self.query(Query::Consistency(after)).await? {
            Answer::Consistency(c) => Ok(c),
            _ => Err(mismatch()),
        }
    }
}
