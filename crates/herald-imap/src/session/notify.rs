//! NOTIFY (RFC 5465): unsolicited responses about the selected mailbox and the user's other
//! mailboxes, read from the store's outbox.
//!
//! **Why the outbox.** The outbox is the one durable, ordered record of every change, the
//! stream every other subscriber (the dispatcher, HTTP streams, the event log) reads; a NOTIFY
//! session is one more reader of it, so what a client is told matches the RFC 5423 stream
//! exactly and no change made by another session, a delivery or the CLI is missed. While
//! NOTIFY is set the driver waits on [`Backend::outbox_watch`] (no polling) besides the socket,
//! and between commands — never inside one or inside a literal — calls
//! [`Session::notify_wakeup`], which reads the events after the session's cursor
//! ([`Backend::events_after`], served from the store's memory of recent commits) and turns
//! those about the session's user that the filters match into responses:
//!
//! * the selected mailbox (`selected`, `selected-delayed`): the snapshot is diffed against the
//!   store as at command completion (EXPUNGE or VANISHED, EXISTS, FETCH FLAGS), then
//!   MessageNew's fetch attributes are fetched for the new messages. The events decide *when*;
//!   the store's state decides *what*, so sequence numbers stay those of the snapshot. A diff
//!   reports every change it finds, so a flag change that comes with a requested new message
//!   or expunge is reported too, though FlagChange alone wakes nothing unless requested.
//!   `selected-delayed` never sends an expunge between commands: once one is pending, the
//!   selected mailbox waits for the next command, which reports everything in order;
//! * other mailboxes: one `STATUS (MESSAGES UIDNEXT UIDVALIDITY UNSEEN [HIGHESTMODSEQ])` per
//!   mailbox a batch of message events touched, read after the batch;
//! * MailboxName and SubscriptionChange: a `LIST` per name with its attributes as they are
//!   now (`\NonExistent` for a deleted name, `OLDNAME` after a rename, `\Subscribed` iff
//!   subscribed, RFC 5465 §5.4–5.5);
//! * `vnd.herald.MetadataChange`: `* METADATA "mailbox" entry…` (MailboxMetadataChange) or
//!   `* METADATA "" entry…` (ServerMetadataChange); private entries only to their owner.
//!
//! Mailboxes of other accounts the user may read (`user/OWNER/NAME`, `#shared/NAME`) are
//! reported like its own, under the name the user knows them by, when a filter names them
//! (`selected`, `subscribed`, `subtree`, `mailboxes`; `personal` and `inboxes` are the user's
//! own namespace, RFC 5465 §6). Their events carry the owner's URL and the actor as `user`, so
//! the session asks the store for its rights on such a mailbox once and keeps the answer until
//! an ACL change passes by. Events about the user's own mailboxes count whoever acted, also a
//! user it shared them with.
//!
//! Events this session caused are not reported (RFC 5465 §5: "The server SHOULD omit notifying
//! the client if the event is caused by this client"): the command's own responses told it.
//!
//! **Cost per event.** Most sessions are not interested in most events, so an event is first
//! checked for the user's name in its JSON text (a substring search: `"user":"NAME"` or the
//! URL prefix `imap://NAME@`), and decoded only when it may be about the user; metadata
//! changes are the exception, as shared server entries concern everyone. A user who may see
//! other accounts' mailboxes gets no substring test (their events name the owner, not the
//! user): it is dropped at NOTIFY SET when LIST shows such a mailbox, and later as soon as an
//! event grants one (a MailboxCreate for the user, or an ACL change for `anyone`). A session that falls more than [`OVERFLOW_AT`] events behind, or whose cursor
//! retention passed, gets `* OK [NOTIFICATIONOVERFLOW]` and NOTIFY is switched off (§5.8).

use super::{Backend, Session, State, Writer};
use crate::proto::command::{
    FetchAttr, FetchCommand, NotifyCommand, NotifyEvent, NotifyFilter, NotifySet, StatusItem,
};
use crate::proto::response::{Code, Data, ListEntry, write_data};
use crate::proto::types::{Mailbox, SeqNum, SeqRange, SequenceSet, Tag};
use herald_events::{Event, EventType, ImapUrl};
use herald_store::{MailboxInfo, names};
use std::collections::BTreeSet;
use std::num::NonZeroU32;
use tokio::sync::watch;

/// Events read from the outbox at once.
const BATCH: usize = 256;

/// A session this many events behind the outbox's head is told NOTIFICATIONOVERFLOW.
pub const OVERFLOW_AT: u64 = 16 * 1024;

/// The name of `EventType::MetadataChange` (RFC 5423 Appendix A), for the substring test that
/// lets every other user's events be skipped before they are decoded.
pub const METADATA_CHANGE: &str = "vnd.herald.MetadataChange";

/// The extension parameter holding the changed entries' names (a JSON array of strings).
pub use herald_events::vnd::METADATA_ENTRIES;

/// The events Herald can report, each with the store event it is read from (the outbox holds
/// only the groups `[events] groups` generates).
const SUPPORTED: [(&str, EventType); 7] = [
    ("MessageNew", EventType::MessageNew),
    ("MessageExpunge", EventType::MessageExpunge),
    ("FlagChange", EventType::FlagsSet),
    ("MailboxName", EventType::MailboxCreate),
    ("SubscriptionChange", EventType::MailboxSubscribe),
    ("MailboxMetadataChange", EventType::MetadataChange),
    ("ServerMetadataChange", EventType::MetadataChange),
];

/// Why [`Session::next_wakeup`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wakeup {
    /// The selected mailbox changed during IDLE: call [`Session::idle_wakeup`].
    Mailbox,
    /// The outbox advanced under NOTIFY: call [`Session::notify_wakeup`].
    Outbox,
}

/// Which events a group asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Wants {
    new: bool,
    expunge: bool,
    flags: bool,
    name: bool,
    subscription: bool,
    mailbox_metadata: bool,
    server_metadata: bool,
}

impl Wants {
    fn message_events(self) -> bool {
        self.new || self.expunge || self.flags
    }
}

/// What the selected-mailbox filter asks for.
#[derive(Debug, Clone)]
struct SelectedPlan {
    delayed: bool,
    wants: Wants,
    /// MessageNew's fetch attributes.
    fetch: Vec<FetchAttr>,
}

/// A NOTIFY SET in force.
#[derive(Debug)]
pub(crate) struct Notify {
    selected: Option<SelectedPlan>,
    groups: Vec<(NotifyFilter, Wants)>,
    /// The subscription list, kept for `subscribed` and `inboxes` (RFC 5465 §6.4: re-evaluated
    /// when subscriptions change).
    subscribed: Option<BTreeSet<String>>,
    /// The last outbox id read.
    cursor: u64,
    watch: watch::Receiver<u64>,
    /// Substrings one of which an event's JSON must hold to be about the user (see the
    /// module doc); `None` when every event must be decoded.
    needles: Option<Vec<String>>,
    /// The user's rights on other accounts' mailboxes, by the user's name for them, as last
    /// read; cleared by any ACL change.
    rights: std::collections::HashMap<String, bool>,
    /// `selected-delayed`: an expunge of the selected mailbox waits for a command.
    expunge_pending: bool,
}

/// The kind of message event an outbox event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MessageKind {
    New,
    Expunge,
    Flags,
}

/// One LIST or METADATA report, in event order.
#[derive(Debug)]
enum Report {
    /// A name's LIST (created, renamed to it from `old`, or its subscription changed).
    List { name: String, old: Option<String> },
    /// `* METADATA`.
    Metadata {
        mailbox: String,
        entries: Vec<String>,
    },
}

/// What a batch of events asks the session to send.
#[derive(Debug, Default)]
struct Batch {
    /// The selected mailbox had a change the client asked for: `Some(true)` when one of them
    /// was an expunge (which `selected-delayed` holds back).
    selected: Option<bool>,
    status: BTreeSet<String>,
    reports: Vec<Report>,
}

fn wants(events: &[NotifyEvent]) -> Wants {
    let mut w = Wants::default();
    for e in events {
        match e {
            NotifyEvent::MessageNew(_) => w.new = true,
            NotifyEvent::MessageExpunge => w.expunge = true,
            NotifyEvent::FlagChange => w.flags = true,
            NotifyEvent::MailboxName => w.name = true,
            NotifyEvent::SubscriptionChange => w.subscription = true,
            NotifyEvent::MailboxMetadataChange => w.mailbox_metadata = true,
            NotifyEvent::ServerMetadataChange => w.server_metadata = true,
            NotifyEvent::AnnotationChange | NotifyEvent::Other(_) => {}
        }
    }
    w
}

/// The event JSON's `"user":"name"` for a name serde_json writes without escapes.
fn user_needle(user: &str) -> Option<String> {
    user.chars()
        .all(|c| c != '"' && c != '\\' && !c.is_control())
        .then(|| format!("\"user\":\"{user}\""))
}

/// What an event's JSON holds when it may concern `user`: its name as actor, its URLs'
/// `imap://user@` (the URL form escapes nothing JSON would), and an ACL change for `anyone`,
/// which may open another account's mailbox to it. `None` when the name cannot be searched.
fn needles(user: &str) -> Option<Vec<String>> {
    let url = ImapUrl::server("h", Some(user)).to_string();
    let prefix = &url[..=url.find('@')?];
    Some(vec![
        user_needle(user)?,
        prefix.to_owned(),
        format!(
            "\"{}\":\"{}\"",
            herald_events::vnd::ACL_IDENTIFIER,
            herald_store::acl::ANYONE
        ),
    ])
}

/// Whether a mailbox name is in another account's namespace (Other Users or Shared).
fn foreign(name: &str) -> bool {
    herald_store::acl::other_user(name).is_some()
}

fn mailbox_of(url: Option<&ImapUrl>) -> Option<&str> {
    url.and_then(|u| u.mailbox.as_deref())
}

fn is_private(entry: &str) -> bool {
    entry
        .get(..9)
        .is_some_and(|p| p.eq_ignore_ascii_case("/private/"))
}

impl Notify {
    /// Whether a non-selected mailbox filter matches `name`.
    fn matches(&self, filter: &NotifyFilter, name: &str) -> bool {
        let subscribed = |n: &str| self.subscribed.as_ref().is_some_and(|s| s.contains(n));
        match filter {
            NotifyFilter::Selected | NotifyFilter::SelectedDelayed => false,
            NotifyFilter::Personal => !foreign(name),
            // Deliveries reach INBOX, and a `user+detail` address reaches the subscribed
            // folders (the LMTP server's default detail policy).
            NotifyFilter::Inboxes => names::is_inbox(name) || (subscribed(name) && !foreign(name)),
            NotifyFilter::Subscribed => subscribed(name),
            NotifyFilter::Subtree(roots) => {
                roots.iter().any(|r| names::is_within(name, r.as_str()))
            }
            NotifyFilter::Mailboxes(list) => list.iter().any(|m| m.as_str() == name),
        }
    }

    /// The union of what the non-selected groups matching `name` ask for.
    fn wants_for(&self, name: &str) -> Wants {
        let mut w = Wants::default();
        for (filter, g) in &self.groups {
            if self.matches(filter, name) {
                w.new |= g.new;
                w.expunge |= g.expunge;
                w.flags |= g.flags;
                w.name |= g.name;
                w.subscription |= g.subscription;
                w.mailbox_metadata |= g.mailbox_metadata;
            }
        }
        w
    }

    fn wants_server_metadata(&self) -> bool {
        self.groups.iter().any(|(_, w)| w.server_metadata)
    }

    fn needs_subscriptions(&self) -> bool {
        self.groups
            .iter()
            .any(|(f, _)| matches!(f, NotifyFilter::Subscribed | NotifyFilter::Inboxes))
    }
}

impl<B: Backend> Session<B> {
    /// NOTIFY NONE / NOTIFY SET.
    pub(super) async fn notify(&mut self, tag: &Tag, cmd: NotifyCommand) {
        let set = match cmd {
            NotifyCommand::None => {
                self.notify = None;
                self.updates(true).await;
                self.ok(tag, None, "NOTIFY completed");
                return;
            }
            NotifyCommand::Set(set) => set,
        };
        if let Err(why) = set.check() {
            self.bad(tag, why);
            return;
        }
        let supported: Vec<&str> = SUPPORTED
            .iter()
            .filter(|(_, t)| self.backend.generates(t))
            .map(|(name, _)| *name)
            .collect();
        if set
            .groups
            .iter()
            .any(|g| g.events.iter().any(|e| !supported.contains(&e.name())))
        {
            let list = format!("({})", supported.join(" "));
            self.no(
                tag,
                Some(Code::Other("BADEVENT".into(), Some(list))),
                "unsupported event",
            );
            return;
        }
        let mut watch = self.backend.outbox_watch();
        watch.borrow_and_update();
        // The cursor is read before anything is reported, so a change racing this command is
        // reported (perhaps twice, never lost).
        let cursor = match self.backend.last_event_id().await {
            Ok(id) => id,
            Err(e) => {
                self.fail(tag, &e);
                return;
            }
        };
        let user = self.ctx.user.clone().unwrap_or_default();
        let mut notify = plan(&set, cursor, watch, &user);
        if notify.needs_subscriptions() {
            match self.backend.subscriptions(&self.ctx).await {
                Ok(s) => notify.subscribed = Some(s.into_iter().collect()),
                Err(e) => {
                    self.fail(tag, &e);
                    return;
                }
            }
        }
        // A successful NOTIFY SET is an implicit NOOP (RFC 5465 §3.1).
        self.notify = None;
        self.updates(true).await;
        let boxes = match self.backend.list_mailboxes(&self.ctx).await {
            Ok(b) => b,
            Err(e) => {
                self.fail(tag, &e);
                return;
            }
        };
        if boxes.iter().any(|b| !b.noselect && foreign(&b.name)) {
            notify.needles = None;
        }
        if set.status {
            let selected = self.selected().map(|s| s.name.clone());
            for b in boxes {
                if b.noselect || Some(&b.name) == selected.as_ref() {
                    continue;
                }
                if notify.wants_for(&b.name).message_events() {
                    self.write_status(&b.name).await;
                }
            }
        }
        self.notify = Some(notify);
        self.ok(tag, None, "NOTIFY completed");
    }

    /// Whether NOTIFY is set (the driver then also waits on [`Session::next_wakeup`]).
    pub fn notifying(&self) -> bool {
        self.notify.is_some()
    }

    /// Waits for what the driver must act on between commands: the selected mailbox changed
    /// (`idle`: during IDLE) or the outbox moved past this session's cursor (`notify`: NOTIFY
    /// is set and no command is half-read). Forever when neither is asked for.
    pub async fn next_wakeup(&mut self, idle: bool, notify: bool) -> Wakeup {
        let outbox = async {
            match self.notify.as_mut().filter(|_| notify) {
                Some(n) => {
                    if *n.watch.borrow() <= n.cursor && n.watch.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
                None => std::future::pending::<()>().await,
            }
        };
        let mailbox = async {
            match &mut self.state {
                State::Selected(sel) if idle => {
                    if !sel.dirty {
                        if sel.watch.changed().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                        sel.dirty = true;
                    }
                }
                _ => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = outbox => Wakeup::Outbox,
            () = mailbox => Wakeup::Mailbox,
        }
    }

    /// Reads the new outbox events and writes what NOTIFY asks for, then flushes. The driver
    /// calls it between commands only.
    pub async fn notify_wakeup(&mut self, w: &mut Writer<'_>) -> std::io::Result<()> {
        self.notify_process(w).await?;
        self.flush(w).await
    }

    async fn notify_process(&mut self, w: &mut Writer<'_>) -> std::io::Result<()> {
        let Some(n) = self.notify.as_mut() else {
            return Ok(());
        };
        let head = *n.watch.borrow_and_update();
        if head.saturating_sub(n.cursor) > OVERFLOW_AT {
            self.overflow();
            return Ok(());
        }
        let mut batch = Batch::default();
        loop {
            let Some(cursor) = self.notify.as_ref().map(|n| n.cursor) else {
                return Ok(());
            };
            let rows = match self.backend.events_after(cursor, BATCH).await {
                Ok(r) => r,
                Err(e) => {
                    // Waiting would spin on a head this session cannot read up to; the
                    // client is told, as for any notification it cannot be given.
                    tracing::warn!(error = %e, "NOTIFY: could not read the outbox");
                    self.overflow();
                    return Ok(());
                }
            };
            // Ids are dense: a gap means retention removed events this session never read.
            if rows.first().is_some_and(|r| r.id != cursor + 1) {
                self.overflow();
                return Ok(());
            }
            let full = rows.len() == BATCH;
            for row in rows {
                if let Some(n) = self.notify.as_mut() {
                    n.cursor = row.id;
                }
                self.notify_event(&row.json, &mut batch).await;
            }
            if !full {
                break;
            }
        }
        self.notify_report(batch, w).await
    }

    /// NOTIFICATIONOVERFLOW: tell the client, then behave as after NOTIFY NONE (§5.8).
    fn overflow(&mut self) {
        self.notify = None;
        self.untagged_ok(
            Some(Code::Other("NOTIFICATIONOVERFLOW".into(), None)),
            "too many notifications, NOTIFY is off",
        );
    }

    /// Whether the user may read another account's mailbox, named as the user names it; one
    /// store read per mailbox until the next ACL change.
    async fn may_read(&mut self, name: &str) -> bool {
        if let Some(&known) = self.notify.as_ref().and_then(|n| n.rights.get(name)) {
            return known;
        }
        let ok = match self.backend.my_rights(&self.ctx, name).await {
            Ok(r) => r.contains(herald_store::Rights::READ),
            Err(_) => false,
        };
        if let Some(n) = self.notify.as_mut() {
            n.rights.insert(name.to_owned(), ok);
        }
        ok
    }

    /// Whether an event was caused by this very connection (the store copies the session's
    /// service and addresses into every event it commits).
    fn caused_here(&self, e: &Event) -> bool {
        e.service.as_deref() == Some(self.ctx.service.as_str())
            && e.client_ip.is_some()
            && e.client_ip == self.ctx.client_ip
            && e.client_port == self.ctx.client_port
            && e.server_port == self.ctx.server_port
    }

    /// Classifies one outbox row into `batch`.
    async fn notify_event(&mut self, json: &str, batch: &mut Batch) {
        let Some(n) = self.notify.as_ref() else {
            return;
        };
        let metadata = json.contains(METADATA_CHANGE);
        if let Some(needles) = &n.needles
            && !metadata
            && !needles.iter().any(|needle| json.contains(needle.as_str()))
        {
            return;
        }
        let Ok(event) = Event::from_json(json) else {
            return;
        };
        let user = self.ctx.user.clone().unwrap_or_default();
        let mine = event.user.as_deref() == Some(user.as_str());
        let kind = event.event.as_str().to_owned();
        if kind == METADATA_CHANGE {
            self.metadata_event(&event, mine, batch);
            return;
        }
        if event.event == EventType::AclChange {
            // Rights may have changed anywhere; a grant to `anyone` may open a mailbox to this
            // user without naming it.
            if let Some(n) = self.notify.as_mut() {
                n.rights.clear();
                if event
                    .extension(herald_events::vnd::ACL_IDENTIFIER)
                    .and_then(|v| v.as_str())
                    == Some(herald_store::acl::ANYONE)
                {
                    n.needles = None;
                }
            }
            return;
        }
        let here = self.caused_here(&event);
        let Some((owner, name)) = event.uri.as_ref().and_then(herald_store::acl::url_mailbox)
        else {
            return;
        };
        let message = match kind.as_str() {
            "MessageNew" | "MessageAppend" => Some(MessageKind::New),
            "MessageExpunge" | "MessageExpire" => Some(MessageKind::Expunge),
            "FlagsSet" | "FlagsClear" | "MessageRead" | "MessageTrash" => Some(MessageKind::Flags),
            _ => None,
        };
        let mailbox = if owner == user {
            if foreign(name) && kind == "MailboxCreate" {
                // A grant made another account's mailbox visible: its events name the owner
                // from now on, so the substring test would miss them.
                if let Some(n) = self.notify.as_mut() {
                    n.needles = None;
                    n.rights.clear();
                }
            }
            name.to_owned()
        } else {
            // Another account's mailbox: only its messages, and only if this user may read it
            // (its LIST changes reach the user as events of its own, RFC 5423 §4.4).
            if message.is_none() {
                return;
            }
            let name = herald_store::acl::shared_name(owner, name);
            if !self.may_read(&name).await {
                return;
            }
            name
        };
        if let Some(m) = message {
            if here {
                return;
            }
            let selected = self.selected().is_some_and(|s| s.name == mailbox);
            let Some(n) = self.notify.as_ref() else {
                return;
            };
            if selected {
                if let Some(plan) = &n.selected {
                    let wanted = match m {
                        MessageKind::New => plan.wants.new,
                        MessageKind::Expunge => plan.wants.expunge,
                        MessageKind::Flags => plan.wants.flags,
                    };
                    if wanted {
                        let expunged = batch.selected.unwrap_or(false);
                        batch.selected = Some(expunged || m == MessageKind::Expunge);
                    }
                }
                return;
            }
            let w = n.wants_for(&mailbox);
            let wanted = match m {
                MessageKind::New => w.new,
                MessageKind::Expunge => w.expunge,
                MessageKind::Flags => w.flags,
            };
            if wanted {
                batch.status.insert(mailbox);
            }
            return;
        }
        match kind.as_str() {
            "MailboxCreate" | "MailboxDelete"
                if !here && self.notify_wants(&mailbox, |w| w.name) =>
            {
                batch.reports.push(Report::List {
                    name: mailbox,
                    old: None,
                });
            }
            "MailboxRename" => {
                let old = mailbox_of(event.old_mailbox_id.as_ref()).map(str::to_owned);
                // Subscriptions may follow the name: read them again.
                self.refresh_subscriptions().await;
                let matched = self.notify_wants(&mailbox, |w| w.name)
                    || old
                        .as_deref()
                        .is_some_and(|o| self.notify_wants(o, |w| w.name));
                if !here && matched {
                    batch.reports.push(Report::List { name: mailbox, old });
                }
            }
            "MailboxSubscribe" | "MailboxUnSubscribe" => {
                let on = kind == "MailboxSubscribe";
                if let Some(s) = self.notify.as_mut().and_then(|n| n.subscribed.as_mut()) {
                    if on {
                        s.insert(mailbox.clone());
                    } else {
                        s.remove(&mailbox);
                    }
                }
                if !here && self.notify_wants(&mailbox, |w| w.subscription) {
                    batch.reports.push(Report::List {
                        name: mailbox,
                        old: None,
                    });
                }
            }
            _ => {}
        }
    }

    fn notify_wants(&self, mailbox: &str, f: impl Fn(Wants) -> bool) -> bool {
        self.notify
            .as_ref()
            .is_some_and(|n| f(n.wants_for(mailbox)))
    }

    async fn refresh_subscriptions(&mut self) {
        if !self
            .notify
            .as_ref()
            .is_some_and(Notify::needs_subscriptions)
        {
            return;
        }
        if let Ok(s) = self.backend.subscriptions(&self.ctx).await
            && let Some(n) = self.notify.as_mut()
        {
            n.subscribed = Some(s.into_iter().collect());
        }
    }

    /// `vnd.herald.MetadataChange`: a mailbox entry (`mailboxID` names the mailbox) or a
    /// server entry (`uri` names the server). Private entries go to their owner only; a
    /// mailbox's entries to the mailbox's owner; shared server entries to everyone.
    fn metadata_event(&self, event: &Event, mine: bool, batch: &mut Batch) {
        let Some(n) = self.notify.as_ref() else {
            return;
        };
        if self.caused_here(event) {
            return;
        }
        let entries: Vec<String> = event
            .extension(METADATA_ENTRIES)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str())
                    .filter(|e| mine || !is_private(e))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if entries.is_empty() {
            return;
        }
        let user = self.ctx.user.as_deref().unwrap_or_default();
        let mailbox = mailbox_of(event.mailbox_id.as_ref()).or(mailbox_of(event.uri.as_ref()));
        match mailbox {
            Some(m) => {
                let owner = event
                    .mailbox_id
                    .as_ref()
                    .or(event.uri.as_ref())
                    .and_then(|u| u.user.as_deref());
                if owner == Some(user) && n.wants_for(m).mailbox_metadata {
                    batch.reports.push(Report::Metadata {
                        mailbox: m.to_owned(),
                        entries,
                    });
                }
            }
            None if n.wants_server_metadata() => batch.reports.push(Report::Metadata {
                mailbox: String::new(),
                entries,
            }),
            None => {}
        }
    }

    /// Writes what a batch asks for: the selected mailbox's changes, LIST and METADATA in
    /// event order, then one STATUS per other mailbox touched.
    async fn notify_report(&mut self, batch: Batch, w: &mut Writer<'_>) -> std::io::Result<()> {
        if let Some(expunged) = batch.selected {
            self.report_selected(expunged, w).await?;
        }
        if !batch.reports.is_empty() {
            let (boxes, subs) = match (
                self.backend.list_mailboxes(&self.ctx).await,
                self.backend.subscriptions(&self.ctx).await,
            ) {
                (Ok(b), Ok(s)) => (b, s),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(error = %e, "NOTIFY: could not list mailboxes");
                    return Ok(());
                }
            };
            let o = self.wopts();
            for r in batch.reports {
                match r {
                    Report::List { name, old } => {
                        let entry = list_entry(&name, old, &boxes, &subs);
                        write_data(&mut self.out, &Data::List(entry), o);
                    }
                    Report::Metadata { mailbox, entries } => write_data(
                        &mut self.out,
                        &Data::MetadataEntries {
                            mailbox: Mailbox::new(mailbox),
                            entries,
                        },
                        o,
                    ),
                }
                self.flush_if_full(w).await?;
            }
        }
        let selected = self.selected().map(|s| s.name.clone());
        for name in batch.status {
            if Some(&name) != selected.as_ref() {
                self.write_status(&name).await;
                self.flush_if_full(w).await?;
            }
        }
        Ok(())
    }

    /// The selected mailbox changed in ways the client asked to hear of: report the diff now,
    /// then MessageNew's fetch attributes for the messages that arrived.
    async fn report_selected(&mut self, expunged: bool, w: &mut Writer<'_>) -> std::io::Result<()> {
        let Some(plan) = self.notify.as_ref().and_then(|n| n.selected.clone()) else {
            return Ok(());
        };
        if let Some(sel) = self.selected_mut() {
            // The mailbox watch may tick after the outbox's: the event is proof enough.
            sel.dirty = true;
        }
        if plan.delayed
            && let Some(n) = self.notify.as_mut()
        {
            n.expunge_pending |= expunged;
            if n.expunge_pending {
                // Reported by the next command that may shift sequence numbers.
                return Ok(());
            }
        }
        let last = self
            .selected()
            .and_then(|s| s.msgs.last())
            .map_or(0, |m| m.uid);
        if !plan.delayed {
            self.updates(true).await;
        } else if self.updates_holding_expunges().await
            && let Some(n) = self.notify.as_mut()
        {
            // An expunge committed after the events read: it waits like the others.
            n.expunge_pending = true;
        }
        if plan.fetch.is_empty() {
            return Ok(());
        }
        let new: Vec<u32> = self
            .selected()
            .map(|s| {
                let start = s.msgs.partition_point(|m| m.uid <= last);
                s.msgs[start..].iter().map(|m| m.uid).collect()
            })
            .unwrap_or_default();
        if new.is_empty() {
            return Ok(());
        }
        let set = SequenceSet::Ranges(
            herald_events::UidSet::from_uids(new)
                .ranges()
                .iter()
                .filter_map(|&(a, b)| {
                    Some(SeqRange {
                        start: SeqNum::Value(NonZeroU32::new(a)?),
                        end: SeqNum::Value(NonZeroU32::new(b)?),
                    })
                })
                .collect(),
        );
        let cmd = FetchCommand {
            uid: true,
            set,
            items: plan.fetch,
            changed_since: None,
            vanished: false,
        };
        self.fetch_for(None, cmd, w).await
    }

    /// `* STATUS name (MESSAGES UIDNEXT UIDVALIDITY UNSEEN [HIGHESTMODSEQ])`; nothing for a
    /// mailbox that is gone or not selectable.
    async fn write_status(&mut self, name: &str) {
        let mut items = vec![
            StatusItem::Messages,
            StatusItem::UidNext,
            StatusItem::UidValidity,
            StatusItem::Unseen,
        ];
        if self.enabled.condstore {
            items.push(StatusItem::HighestModSeq);
        }
        if let Ok(values) = self.status_values(name, &items).await {
            let o = self.wopts();
            write_data(
                &mut self.out,
                &Data::Status {
                    mailbox: Mailbox::new(name),
                    items: values,
                },
                o,
            );
        }
    }

    /// A command that may report expunges ran: a delayed expunge has been reported.
    pub(crate) fn notify_expunges_reported(&mut self) {
        if let Some(n) = self.notify.as_mut() {
            n.expunge_pending = false;
        }
    }
}

/// Compiles a checked NOTIFY SET.
fn plan(set: &NotifySet, cursor: u64, watch: watch::Receiver<u64>, user: &str) -> Notify {
    let mut selected = None;
    let mut groups = Vec::new();
    for g in &set.groups {
        let w = wants(&g.events);
        if g.filter.is_selected() {
            let fetch = g
                .events
                .iter()
                .find_map(|e| match e {
                    NotifyEvent::MessageNew(atts) => Some(atts.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            selected = Some(SelectedPlan {
                delayed: g.filter == NotifyFilter::SelectedDelayed,
                wants: w,
                fetch,
            });
        } else {
            groups.push((g.filter.clone(), w));
        }
    }
    Notify {
        selected,
        groups,
        subscribed: None,
        cursor,
        watch,
        needles: needles(user),
        rights: Default::default(),
        expunge_pending: false,
    }
}

/// A name's LIST entry as it is now: `\NonExistent` when gone, `\Noselect`,
/// `\HasChildren`/`\HasNoChildren`, its special use, `\Subscribed` iff subscribed, and
/// `OLDNAME` after a rename.
fn list_entry(
    name: &str,
    old: Option<String>,
    boxes: &[MailboxInfo],
    subs: &[String],
) -> ListEntry {
    let mut attributes = super::mailbox::name_attributes(name, boxes);
    if subs.iter().any(|s| s == name) {
        attributes.push("\\Subscribed".into());
    }
    ListEntry {
        attributes,
        delimiter: Some('/'),
        mailbox: Mailbox::new(name),
        child_info_subscribed: false,
        old_name: old.map(Mailbox::new),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needles_and_private_entries() {
        assert_eq!(user_needle("alice").as_deref(), Some("\"user\":\"alice\""));
        assert_eq!(user_needle("a\"b"), None);
        // The URL prefix as the event JSON spells it: `@` of the name escaped, the separator not.
        let n = needles("bob@example.org").unwrap();
        assert_eq!(n[1], "imap://bob%40example.org@");
        let mut e = Event::new(EventType::MessageNew);
        e.user = Some("alice".into());
        e.uri = Some(ImapUrl::mailbox(
            "h",
            Some("bob@example.org"),
            "INBOX",
            Some(1),
        ));
        assert!(n.iter().any(|n| e.to_json().contains(n.as_str())));
        assert!(is_private("/private/comment"));
        assert!(is_private("/PRIVATE/x"));
        assert!(!is_private("/shared/comment"));
        assert!(!is_private("/priv"));
    }

    #[test]
    fn the_metadata_needle_is_the_registered_name() {
        assert_eq!(EventType::MetadataChange.as_str(), METADATA_CHANGE);
    }
}
