//! One client's live feed of committed events, shared by SSE and WebSocket.
//!
//! **Order and resumption.** The feed walks the outbox by `vnd.herald.id` from a starting
//! cursor: the id the client last saw (`Last-Event-ID`, or `?from=`), else the current end of
//! the outbox, so a new client gets what happens from now on and a reconnecting one loses
//! nothing and sees nothing twice.
//!
//! **Memory.** Events are read with [`Store::events_after`] in batches of at most
//! [`BATCH`] and the next batch is read only when the client has taken the previous one, so a
//! slow client costs one batch of memory however far behind it falls; the outbox is the
//! buffer. There is no per-client queue for a writer to overflow.
//!
//! **Waking.** With nothing new the feed waits in [`Store::wait_for_events`]: commits by this
//! process wake it at once through the outbox watch (no polling), commits by another process
//! sharing the data directory (`herald quota set`) are seen within the store's cross-process
//! poll. The wait is bounded by the keep-alive interval, after which the feed reports
//! [`Next::Idle`] so the transport can send a keep-alive; a feed that skips many events the
//! client may not see reports `Idle` on the same schedule.
//!
//! **Bounds.** At most `max_streams` feeds are open in all, and at most
//! `max_streams_per_user` for one account (429 beyond it), so one user cannot take every slot.
//!
//! **Visibility.** An administrator sees every event; anyone else only events about their own
//! account — its `user` parameter, or the user of its `uri`, `mailboxID` or `oldMailboxID` IMAP URL
//! — from the account's creation on: a deleted account's events stay with it, even when its name is
//! given to a new account. A user also sees the events of other accounts' mailboxes shared with
//! them with the `r` right (RFC 4314): their events carry message data (sizes, flags,
//! envelopes, content), which `l` alone does not give. Rights are checked when the event is
//! about to be sent, through a per-feed cache that every `vnd.herald.AclChange`,
//! MailboxDelete, MailboxRename or AccountDelete passing the feed clears (whoever it is
//! about, so it reaches the feed before the events it affects, in outbox order): once access
//! is revoked, nothing that follows the revocation in the outbox is shown. `?events=` and `?mailboxes=` narrow further with the same semantics as a
//! `[[subscription]]`'s `events` and `mailboxes` (they compile into a [`Subscription`]).

use crate::auth::Caller;
use crate::{ApiError, HttpState};
use herald_events::Event;
use herald_notify::Subscription;
use herald_store::{Store, StoreError, StoredEvent};
use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

/// Most events read from the outbox at once for one client.
pub const BATCH: usize = 256;

/// The query string both stream endpoints accept.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// Resume after this `vnd.herald.id` (`Last-Event-ID` wins when both are given: it is what
    /// a reconnecting client last saw). `0` starts at the beginning of the outbox.
    pub from: Option<u64>,
    /// Only this account's events (an administrator may name anyone; others only themselves).
    pub user: Option<String>,
    /// Comma-separated event types or groups, as in `[[subscription]] events`.
    pub events: Option<String>,
    /// Comma-separated mailbox patterns, as in `[[subscription]] mailboxes`.
    pub mailboxes: Option<String>,
}

/// One event for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// `vnd.herald.id`.
    pub id: u64,
    /// The event type (`MessageNew`).
    pub event_type: String,
    /// The event's JSON exactly as committed (DESIGN §5).
    pub json: String,
}

/// What the feed has next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// An event.
    Event(Item),
    /// Nothing for a keep-alive interval.
    Idle,
    /// The server is shutting down.
    End,
}

/// A client's position in the outbox and what it may see.
pub struct Feed {
    store: Store,
    only_user: Option<String>,
    filter: Option<Subscription>,
    cursor: u64,
    pending: VecDeque<StoredEvent>,
    /// Whether `only_user` may read (`r`) another account's mailbox: (owner, mailbox) →
    /// yes/no, cleared by the events that can change it.
    shared: HashMap<(String, String), bool>,
    keepalive: Duration,
    last_output: Instant,
    /// The authenticated account, whose disabling ends the feed.
    caller: String,
    /// When `caller` was last found enabled.
    enabled_at: Instant,
    shutdown: CancellationToken,
    _permit: OwnedSemaphorePermit,
    _user_slot: herald_net::Slot<String>,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("only_user", &self.only_user)
            .field("cursor", &self.cursor)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

fn list(csv: &Option<String>) -> Vec<String> {
    csv.iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn compile_filter(query: &StreamQuery) -> Result<Option<Subscription>, ApiError> {
    let events = list(&query.events);
    let mailboxes = list(&query.mailboxes);
    if events.is_empty() && mailboxes.is_empty() {
        return Ok(None);
    }
    let config = serde_json::from_value(serde_json::json!({
        "name": "http-stream",
        "events": events,
        "mailboxes": mailboxes,
        "sink": { "type": "stdout" },
    }))
    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Subscription::compile(config)
        .map(Some)
        .map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// Parses a `Last-Event-ID` header value.
pub fn parse_last_event_id(value: &[u8]) -> Result<u64, ApiError> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| ApiError::BadRequest("Last-Event-ID must be a vnd.herald.id".into()))
}

/// Most (owner, mailbox) verdicts a feed remembers; past it the cache starts afresh.
const SHARED_CACHE: usize = 1024;

/// Events after which a user's rights on a mailbox may differ: the cache is cleared.
fn changes_access(t: &herald_events::EventType) -> bool {
    use herald_events::EventType::*;
    matches!(t, AclChange | MailboxDelete | MailboxRename | AccountDelete)
}

/// The (owner, mailbox) an event is about, from `mailboxID` or else `uri`.
fn mailbox_of(event: &Event) -> Option<(&str, &str)> {
    [&event.mailbox_id, &event.uri]
        .into_iter()
        .flatten()
        .find_map(herald_store::acl::url_mailbox)
}

fn about(event: &Event, user: &str) -> bool {
    event.user.as_deref() == Some(user)
        || [&event.uri, &event.mailbox_id, &event.old_mailbox_id]
            .into_iter()
            .flatten()
            .any(|u| u.user.as_deref() == Some(user))
}

impl Feed {
    /// Opens a feed for `caller` resuming after `last_event_id` (or the query's `from`).
    pub async fn open(
        state: &HttpState,
        caller: &Caller,
        query: &StreamQuery,
        last_event_id: Option<u64>,
    ) -> Result<Feed, ApiError> {
        let only_user = match &query.user {
            Some(u) if caller.admin || *u == caller.user => Some(u.clone()),
            Some(u) => {
                return Err(ApiError::Forbidden(format!(
                    "`{}` may not read `{u}`'s events",
                    caller.user
                )));
            }
            None if caller.admin => None,
            None => Some(caller.user.clone()),
        };
        let filter = compile_filter(query)?;
        // One account cannot take every shared slot: its own bound comes first.
        let user_slot = state
            .user_streams
            .take(caller.user.clone(), state.max_streams_per_user)
            .ok_or_else(|| {
                ApiError::TooManyStreams(format!(
                    "`{}` has {} event streams open already",
                    caller.user, state.max_streams_per_user
                ))
            })?;
        let permit = state
            .streams
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::Unavailable("too many open event streams".into()))?;
        let mut cursor = match last_event_id.or(query.from) {
            Some(id) => id,
            None => state.store.last_event_id().await?,
        };
        if let Some(user) = &only_user {
            // Events before the account existed belong to a deleted account of the same name.
            let users = state.store.list_users().await?;
            if let Some(account) = users.iter().find(|a| a.name == *user) {
                cursor = cursor.max(account.first_event);
            }
        }
        Ok(Feed {
            store: state.store.clone(),
            only_user,
            filter,
            cursor,
            pending: VecDeque::new(),
            shared: HashMap::new(),
            keepalive: state.keepalive,
            last_output: Instant::now(),
            caller: caller.user.clone(),
            enabled_at: Instant::now(),
            shutdown: state.shutdown.clone(),
            _permit: permit,
            _user_slot: user_slot,
        })
    }

    /// The last outbox id the feed has passed (sent or skipped).
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// The client's next event, or `Idle` after a quiet keep-alive interval.
    ///
    /// Cancel-safe: the cursor and the pending batch change only between awaits, so a caller
    /// may drop this future (in a `select!`) and call again without losing or repeating events.
    pub async fn next(&mut self) -> Result<Next, StoreError> {
        loop {
            if self.shutdown.is_cancelled() || self.caller_disabled().await? {
                return Ok(Next::End);
            }
            // Popped only once admitted or refused: a rights read may await, and a caller
            // dropping this future then must find the event still pending.
            while let Some(stored) = self.pending.front().cloned() {
                let admitted = self.admit(stored).await?;
                self.pending.pop_front();
                if let Some(item) = admitted {
                    self.last_output = Instant::now();
                    return Ok(Next::Event(item));
                }
            }
            if self.last_output.elapsed() >= self.keepalive {
                self.last_output = Instant::now();
                return Ok(Next::Idle);
            }
            let batch = self.store.events_after(self.cursor, BATCH).await?;
            if let Some(last) = batch.last() {
                self.cursor = last.id;
                self.pending.extend(batch);
                continue;
            }
            // Woken at least once per recheck, so a quiet stream of a disabled account ends
            // as soon as a busy one.
            let wait = self
                .keepalive
                .saturating_sub(self.last_output.elapsed())
                .min(herald_store::ACCOUNT_RECHECK);
            tokio::select! {
                _ = self.shutdown.cancelled() => return Ok(Next::End),
                r = self.store.wait_for_events(self.cursor, wait) => { r?; }
            }
        }
    }

    /// Whether an operator disabled the caller's account since the feed opened: asked of
    /// the store at most once per [`herald_store::ACCOUNT_RECHECK`], so a disabled account's
    /// stream ends within about twice that time, busy or quiet.
    async fn caller_disabled(&mut self) -> Result<bool, StoreError> {
        if self.enabled_at.elapsed() < herald_store::ACCOUNT_RECHECK {
            return Ok(false);
        }
        if self.store.is_disabled(&self.caller).await? {
            tracing::info!(user = %self.caller, "ending the event stream of a disabled account");
            return Ok(true);
        }
        self.enabled_at = Instant::now();
        Ok(false)
    }

    async fn admit(&mut self, stored: StoredEvent) -> Result<Option<Item>, StoreError> {
        let event = match Event::from_json(&stored.json) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(id = stored.id, error = %e, "http stream: skipping an undecodable outbox row");
                return Ok(None);
            }
        };
        if changes_access(&event.event) {
            self.shared.clear();
        }
        if let Some(user) = self.only_user.clone()
            && !about(&event, &user)
            && !self.shared_with(&event, &user).await?
        {
            return Ok(None);
        }
        let event_type = event.event.to_string();
        if let Some(filter) = &self.filter
            && filter.filter(event).is_none()
        {
            return Ok(None);
        }
        Ok(Some(Item {
            id: stored.id,
            event_type,
            json: stored.json,
        }))
    }

    /// Whether `event` is about a mailbox of another account that `user` may read now.
    async fn shared_with(&mut self, event: &Event, user: &str) -> Result<bool, StoreError> {
        let Some((owner, mailbox)) = mailbox_of(event) else {
            return Ok(false);
        };
        if owner == user {
            return Ok(false);
        }
        let key = (owner.to_owned(), mailbox.to_owned());
        if let Some(&ok) = self.shared.get(&key) {
            return Ok(ok);
        }
        let ctx = herald_store::SessionContext::user("http", user);
        let name = herald_store::acl::shared_name(owner, mailbox);
        let ok = match self.store.my_rights(&ctx, &name).await {
            Ok(r) => r.contains(herald_store::Rights::READ),
            Err(StoreError::NotFound { .. } | StoreError::InvalidName { .. }) => false,
            Err(e) => return Err(e),
        };
        if self.shared.len() >= SHARED_CACHE {
            self.shared.clear();
        }
        self.shared.insert(key, ok);
        Ok(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_events::{EventType, ImapUrl};

    #[test]
    fn events_about_a_user() {
        let mut e = Event::new(EventType::MessageNew);
        e.uri = Some(ImapUrl::message("h", Some("alice"), "INBOX", 1, 2));
        assert!(about(&e, "alice"));
        assert!(!about(&e, "bob"));
        let mut login = Event::new(EventType::Login);
        login.user = Some("bob".into());
        assert!(about(&login, "bob"));
        assert!(!about(&Event::new(EventType::Login), "bob"));
        let mut rename = Event::new(EventType::MailboxRename);
        rename.old_mailbox_id = Some(ImapUrl::mailbox("h", Some("carol"), "A", Some(1)));
        assert!(about(&rename, "carol"));
    }

    #[test]
    fn the_mailbox_an_event_is_about() {
        let mut e = Event::new(EventType::MessageNew);
        e.uri = Some(ImapUrl::message("h", Some("alice"), "Team", 1, 2));
        assert_eq!(mailbox_of(&e), Some(("alice", "Team")));
        e.mailbox_id = Some(ImapUrl::mailbox("h", Some("bob"), "X", Some(1)));
        assert_eq!(mailbox_of(&e), Some(("bob", "X")));
        let mut login = Event::new(EventType::Login);
        login.uri = Some(ImapUrl::server("h", Some("bob")));
        assert_eq!(mailbox_of(&login), None);
        assert!(changes_access(&EventType::AclChange));
        assert!(!changes_access(&EventType::MessageNew));
    }

    #[test]
    fn last_event_id() {
        assert_eq!(parse_last_event_id(b" 42 ").unwrap(), 42);
        assert!(parse_last_event_id(b"x").is_err());
        assert!(parse_last_event_id(b"-1").is_err());
    }

    #[test]
    fn filters_compile_or_are_bad_requests() {
        let q = StreamQuery {
            events: Some("MessageNew, flags".into()),
            ..StreamQuery::default()
        };
        assert!(compile_filter(&q).unwrap().is_some());
        assert!(compile_filter(&StreamQuery::default()).unwrap().is_none());
        let q = StreamQuery {
            events: Some("NoSuchEvent".into()),
            ..StreamQuery::default()
        };
        assert!(matches!(compile_filter(&q), Err(ApiError::BadRequest(_))));
    }
}
