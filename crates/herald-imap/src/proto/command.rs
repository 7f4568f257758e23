//! Typed IMAP commands and the entry point that parses one.
//!
//! [`parse_command`] takes the bytes of one complete command as the framer delivered them
//! ([`super::framer::CommandBytes`]: lines with buffered literals inline, streamed literals as
//! announcements only) and returns a [`Command`]. The types here are the session's whole view of
//! the client: they are owned, carry UTF-8 mailbox names, and keep extension syntax
//! (CONDSTORE, QRESYNC, ESEARCH, SEARCHRES, LIST-EXTENDED, MULTIAPPEND, LITERAL+, BINARY) as
//! explicit fields rather than raw text, so the session never re-parses. The grammar for each
//! command lives in `parse/<command>.rs`.

use super::error::ProtoError;
use super::framer::CommandBytes;
use super::parse::{self, Cursor};
use super::types::{Date, DateTime, Flag, LiteralData, Mailbox, SequenceSet, Tag};
use std::num::NonZeroU32;

/// Options that change how commands are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// `ENABLE UTF8=ACCEPT` (RFC 6855) is in force: mailbox names are raw UTF-8.
    pub utf8_accept: bool,
}

/// A parsed command: its tag and what it asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The client's tag, echoed in the completion response.
    pub tag: Tag,
    /// The command proper.
    pub body: CommandBody,
}

/// A command that could not be parsed, with the tag if it could be read (for `tag BAD`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The tag, if the command started with one.
    pub tag: Option<Tag>,
    /// What was wrong.
    pub error: ProtoError,
}

/// Every command the server understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandBody {
    // --- any state (RFC 9051 §6.1) ---
    /// `CAPABILITY`
    Capability,
    /// `NOOP`
    Noop,
    /// `LOGOUT`
    Logout,
    /// `ID (…)` / `ID NIL` (RFC 2971): field/value pairs.
    Id(Option<Vec<(String, Option<String>)>>),

    // --- not authenticated (§6.2) ---
    /// `STARTTLS`
    StartTls,
    /// `AUTHENTICATE mechanism [initial-response]` (SASL-IR, RFC 4959).
    Authenticate {
        /// Mechanism name, upper-cased.
        mechanism: String,
        /// The initial response, still base64 as sent; `Some(empty)` for `=`.
        initial_response: Option<Vec<u8>>,
    },
    /// `LOGIN user password`
    Login {
        /// User name bytes.
        username: Vec<u8>,
        /// Password bytes.
        password: Vec<u8>,
    },

    // --- authenticated (§6.3) ---
    /// `ENABLE cap…` (RFC 5161), capability names upper-cased.
    Enable(Vec<String>),
    /// `SELECT mailbox [(params)]`
    Select {
        /// Mailbox.
        mailbox: Mailbox,
        /// CONDSTORE/QRESYNC parameters.
        params: SelectParams,
    },
    /// `EXAMINE mailbox [(params)]`
    Examine {
        /// Mailbox.
        mailbox: Mailbox,
        /// CONDSTORE/QRESYNC parameters.
        params: SelectParams,
    },
    /// `CREATE mailbox [(USE (attrs))]` (RFC 6154 special-use).
    Create {
        /// Mailbox.
        mailbox: Mailbox,
        /// Special-use attributes requested, as written without the backslash (`Sent`).
        special_use: Vec<String>,
    },
    /// `DELETE mailbox`
    Delete(Mailbox),
    /// `RENAME from to`
    Rename {
        /// Existing name.
        from: Mailbox,
        /// New name.
        to: Mailbox,
    },
    /// `SUBSCRIBE mailbox`
    Subscribe(Mailbox),
    /// `UNSUBSCRIBE mailbox`
    Unsubscribe(Mailbox),
    /// `LIST` in all its LIST-EXTENDED forms (RFC 5258, 5819, 6154).
    List(ListCommand),
    /// `LSUB reference pattern` (IMAP4rev1).
    Lsub {
        /// Reference name.
        reference: String,
        /// Pattern with `%`/`*`.
        pattern: String,
    },
    /// `NAMESPACE`
    Namespace,
    /// `STATUS mailbox (items)`
    Status {
        /// Mailbox.
        mailbox: Mailbox,
        /// Requested items.
        items: Vec<StatusItem>,
    },
    /// `APPEND mailbox [flags] [date] literal` — one or more messages (MULTIAPPEND, RFC 3502).
    Append {
        /// Target mailbox.
        mailbox: Mailbox,
        /// The messages, in order.
        messages: Vec<AppendMessage>,
    },
    /// `IDLE` (RFC 2177); the session then waits for `DONE` ([`parse_idle_done`]).
    Idle,
    /// `GETQUOTA root` (RFC 9208)
    GetQuota(String),
    /// `GETQUOTAROOT mailbox`
    GetQuotaRoot(Mailbox),
    /// `SETQUOTA root (resource limit …)`
    SetQuota {
        /// Quota root.
        root: String,
        /// Resource names (upper-cased) and limits.
        limits: Vec<(String, u64)>,
    },
    /// `GETMETADATA [(options)] mailbox entries` (RFC 5464); mailbox `""` is the server.
    GetMetadata(GetMetadataCommand),
    /// `SETMETADATA mailbox (entry value …)` (RFC 5464): `None` (NIL) removes an entry.
    SetMetadata {
        /// Mailbox, or `""` for the server.
        mailbox: Mailbox,
        /// Entry names (checked, as written) and values, in the order given.
        entries: Vec<(String, Option<Vec<u8>>)>,
    },
    /// `GENURLAUTH url mechanism …` (RFC 4467 §7.1): rump URLs with their mechanisms
    /// (upper-cased), in order.
    GenUrlAuth(Vec<(String, String)>),
    /// `URLFETCH url …` (RFC 4467 §7.2, RFC 5524's extended form).
    UrlFetch(Vec<UrlFetchArg>),
    /// `RESETKEY [mailbox [mechanism …]]` (RFC 4467 §7.3).
    ResetKey {
        /// One mailbox, or every mailbox of the user.
        mailbox: Option<Mailbox>,
        /// Mechanisms (upper-cased); empty for all.
        mechanisms: Vec<String>,
    },
    /// `SETACL mailbox identifier rights` (RFC 4314 §3.1); `rights` may start with `+`/`-`.
    SetAcl {
        /// Mailbox.
        mailbox: Mailbox,
        /// An account name or `anyone`.
        identifier: String,
        /// Mod-rights as sent: letters, optionally after `+` (add) or `-` (remove).
        rights: String,
    },
    /// `DELETEACL mailbox identifier` (RFC 4314 §3.2)
    DeleteAcl {
        /// Mailbox.
        mailbox: Mailbox,
        /// An account name or `anyone`.
        identifier: String,
    },
    /// `GETACL mailbox` (RFC 4314 §3.3)
    GetAcl(Mailbox),
    /// `LISTRIGHTS mailbox identifier` (RFC 4314 §3.4)
    ListRights {
        /// Mailbox.
        mailbox: Mailbox,
        /// An account name or `anyone`.
        identifier: String,
    },
    /// `MYRIGHTS mailbox` (RFC 4314 §3.5)
    MyRights(Mailbox),

    // --- selected (§6.4) ---
    /// `CHECK` (IMAP4rev1)
    Check,
    /// `CLOSE`
    Close,
    /// `UNSELECT` (RFC 3691)
    Unselect,
    /// `EXPUNGE`
    Expunge,
    /// `UID EXPUNGE set` (UIDPLUS)
    UidExpunge(SequenceSet),
    /// `[UID] SEARCH`
    Search(SearchCommand),
    /// `[UID] SORT` (RFC 5256, with RFC 5267 ESORT return options)
    Sort(SortCommand),
    /// `[UID] THREAD` (RFC 5256)
    Thread(ThreadCommand),
    /// `[UID] FETCH`
    Fetch(FetchCommand),
    /// `[UID] STORE`
    Store(StoreCommand),
    /// `[UID] COPY set mailbox`
    Copy {
        /// UID (true) or sequence numbers.
        uid: bool,
        /// Messages.
        set: SequenceSet,
        /// Destination.
        mailbox: Mailbox,
    },
    /// `[UID] MOVE set mailbox` (RFC 6851)
    Move {
        /// UID (true) or sequence numbers.
        uid: bool,
        /// Messages.
        set: SequenceSet,
        /// Destination.
        mailbox: Mailbox,
    },
    /// `CANCELUPDATE "tag" …` (RFC 5267 §4.3.5): the tags of searching commands whose
    /// updates should stop.
    CancelUpdate(Vec<String>),
    /// `NOTIFY NONE` / `NOTIFY SET [STATUS] (filter events) …` (RFC 5465).
    Notify(NotifyCommand),
}

impl CommandBody {
    /// The command's name as it would be written (for logs, `BAD` texts and metrics).
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// What kind of command this is.
    pub fn kind(&self) -> CommandKind {
        match self {
            CommandBody::Capability => CommandKind::Capability,
            CommandBody::Noop => CommandKind::Noop,
            CommandBody::Logout => CommandKind::Logout,
            CommandBody::Id(_) => CommandKind::Id,
            CommandBody::StartTls => CommandKind::StartTls,
            CommandBody::Authenticate { .. } => CommandKind::Authenticate,
            CommandBody::Login { .. } => CommandKind::Login,
            CommandBody::Enable(_) => CommandKind::Enable,
            CommandBody::Select { .. } => CommandKind::Select,
            CommandBody::Examine { .. } => CommandKind::Examine,
            CommandBody::Create { .. } => CommandKind::Create,
            CommandBody::Delete(_) => CommandKind::Delete,
            CommandBody::Rename { .. } => CommandKind::Rename,
            CommandBody::Subscribe(_) => CommandKind::Subscribe,
            CommandBody::Unsubscribe(_) => CommandKind::Unsubscribe,
            CommandBody::List(_) => CommandKind::List,
            CommandBody::Lsub { .. } => CommandKind::Lsub,
            CommandBody::Namespace => CommandKind::Namespace,
            CommandBody::Status { .. } => CommandKind::Status,
            CommandBody::Append { .. } => CommandKind::Append,
            CommandBody::Idle => CommandKind::Idle,
            CommandBody::GetQuota(_) => CommandKind::GetQuota,
            CommandBody::GetQuotaRoot(_) => CommandKind::GetQuotaRoot,
            CommandBody::SetQuota { .. } => CommandKind::SetQuota,
            CommandBody::GetMetadata(_) => CommandKind::GetMetadata,
            CommandBody::SetMetadata { .. } => CommandKind::SetMetadata,
            CommandBody::GenUrlAuth(_) => CommandKind::GenUrlAuth,
            CommandBody::UrlFetch(_) => CommandKind::UrlFetch,
            CommandBody::ResetKey { .. } => CommandKind::ResetKey,
            CommandBody::SetAcl { .. } => CommandKind::SetAcl,
            CommandBody::DeleteAcl { .. } => CommandKind::DeleteAcl,
            CommandBody::GetAcl(_) => CommandKind::GetAcl,
            CommandBody::ListRights { .. } => CommandKind::ListRights,
            CommandBody::MyRights(_) => CommandKind::MyRights,
            CommandBody::Check => CommandKind::Check,
            CommandBody::Close => CommandKind::Close,
            CommandBody::Unselect => CommandKind::Unselect,
            CommandBody::Expunge => CommandKind::Expunge,
            CommandBody::UidExpunge(_) => CommandKind::UidExpunge,
            CommandBody::Search(s) if s.uid => CommandKind::UidSearch,
            CommandBody::Search(_) => CommandKind::Search,
            CommandBody::Sort(s) if s.uid => CommandKind::UidSort,
            CommandBody::Sort(_) => CommandKind::Sort,
            CommandBody::Thread(t) if t.uid => CommandKind::UidThread,
            CommandBody::Thread(_) => CommandKind::Thread,
            CommandBody::Fetch(f) if f.uid => CommandKind::UidFetch,
            CommandBody::Fetch(_) => CommandKind::Fetch,
            CommandBody::Store(s) if s.uid => CommandKind::UidStore,
            CommandBody::Store(_) => CommandKind::Store,
            CommandBody::Copy { uid: true, .. } => CommandKind::UidCopy,
            CommandBody::Copy { .. } => CommandKind::Copy,
            CommandBody::Move { uid: true, .. } => CommandKind::UidMove,
            CommandBody::Move { .. } => CommandKind::Move,
            CommandBody::CancelUpdate(_) => CommandKind::CancelUpdate,
            CommandBody::Notify(_) => CommandKind::Notify,
        }
    }
}

/// The kinds of command, one per name a client can send (`UID FETCH` apart from `FETCH`): the
/// index of a command's counter and latency histogram in [`crate::COMMANDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    /// `CAPABILITY`
    Capability,
    /// `NOOP`
    Noop,
    /// `LOGOUT`
    Logout,
    /// `ID`
    Id,
    /// `STARTTLS`
    StartTls,
    /// `AUTHENTICATE`
    Authenticate,
    /// `LOGIN`
    Login,
    /// `ENABLE`
    Enable,
    /// `SELECT`
    Select,
    /// `EXAMINE`
    Examine,
    /// `CREATE`
    Create,
    /// `DELETE`
    Delete,
    /// `RENAME`
    Rename,
    /// `SUBSCRIBE`
    Subscribe,
    /// `UNSUBSCRIBE`
    Unsubscribe,
    /// `LIST`
    List,
    /// `LSUB`
    Lsub,
    /// `NAMESPACE`
    Namespace,
    /// `STATUS`
    Status,
    /// `APPEND`
    Append,
    /// `IDLE`
    Idle,
    /// `GETQUOTA`
    GetQuota,
    /// `GETQUOTAROOT`
    GetQuotaRoot,
    /// `SETQUOTA`
    SetQuota,
    /// `CHECK`
    Check,
    /// `CLOSE`
    Close,
    /// `UNSELECT`
    Unselect,
    /// `EXPUNGE`
    Expunge,
    /// `UID EXPUNGE`
    UidExpunge,
    /// `UID SEARCH`
    UidSearch,
    /// `SEARCH`
    Search,
    /// `UID SORT`
    UidSort,
    /// `SORT`
    Sort,
    /// `UID THREAD`
    UidThread,
    /// `THREAD`
    Thread,
    /// `UID FETCH`
    UidFetch,
    /// `FETCH`
    Fetch,
    /// `UID STORE`
    UidStore,
    /// `STORE`
    Store,
    /// `UID COPY`
    UidCopy,
    /// `COPY`
    Copy,
    /// `UID MOVE`
    UidMove,
    /// `MOVE`
    Move,
    /// `CANCELUPDATE`
    CancelUpdate,
    /// `GETMETADATA`
    GetMetadata,
    /// `SETMETADATA`
    SetMetadata,
    /// `GENURLAUTH`
    GenUrlAuth,
    /// `URLFETCH`
    UrlFetch,
    /// `RESETKEY`
    ResetKey,
    /// `NOTIFY`
    Notify,
    /// `SETACL`
    SetAcl,
    /// `DELETEACL`
    DeleteAcl,
    /// `GETACL`
    GetAcl,
    /// `LISTRIGHTS`
    ListRights,
    /// `MYRIGHTS`
    MyRights,
}

impl CommandKind {
    /// Every kind's name, indexed by the kind.
    pub const NAMES: [&'static str; 55] = [
        "CAPABILITY",
        "NOOP",
        "LOGOUT",
        "ID",
        "STARTTLS",
        "AUTHENTICATE",
        "LOGIN",
        "ENABLE",
        "SELECT",
        "EXAMINE",
        "CREATE",
        "DELETE",
        "RENAME",
        "SUBSCRIBE",
        "UNSUBSCRIBE",
        "LIST",
        "LSUB",
        "NAMESPACE",
        "STATUS",
        "APPEND",
        "IDLE",
        "GETQUOTA",
        "GETQUOTAROOT",
        "SETQUOTA",
        "CHECK",
        "CLOSE",
        "UNSELECT",
        "EXPUNGE",
        "UID EXPUNGE",
        "UID SEARCH",
        "SEARCH",
        "UID SORT",
        "SORT",
        "UID THREAD",
        "THREAD",
        "UID FETCH",
        "FETCH",
        "UID STORE",
        "STORE",
        "UID COPY",
        "COPY",
        "UID MOVE",
        "MOVE",
        "CANCELUPDATE",
        "GETMETADATA",
        "SETMETADATA",
        "GENURLAUTH",
        "URLFETCH",
        "RESETKEY",
        "NOTIFY",
        "SETACL",
        "DELETEACL",
        "GETACL",
        "LISTRIGHTS",
        "MYRIGHTS",
    ];

    /// The command's name as it would be written.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// `GETMETADATA` (RFC 5464 §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetMetadataCommand {
    /// Mailbox, or `""` for the server.
    pub mailbox: Mailbox,
    /// `MAXSIZE n`: leave out values larger than this.
    pub max_size: Option<u64>,
    /// `DEPTH 0|1|infinity`: also entries below each named one.
    pub depth: MetadataDepth,
    /// Entry names, as written: full names, or the bare scopes `/private` and `/shared` (which
    /// are roots to search below with a depth).
    pub entries: Vec<String>,
}

/// The `DEPTH` option of GETMETADATA.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MetadataDepth {
    /// `0` (the default): only the named entries.
    #[default]
    Zero,
    /// `1`: also the entries one level below.
    One,
    /// `infinity`: also every entry below.
    Infinity,
}

/// `NOTIFY` (RFC 5465 §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyCommand {
    /// `NOTIFY NONE`: no notifications at all.
    None,
    /// `NOTIFY SET [STATUS] event-group…`
    Set(NotifySet),
}

/// The event groups of a `NOTIFY SET`, as written (the session checks RFC 5465's
/// composition rules with [`NotifySet::check`] and the supported events itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySet {
    /// `STATUS`: send the initial STATUS of every mailbox the message events cover.
    pub status: bool,
    /// One or more `(filter events)` groups, in order.
    pub groups: Vec<NotifyGroup>,
}

/// One `(filter-mailboxes events)` group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyGroup {
    /// Which mailboxes.
    pub filter: NotifyFilter,
    /// Which events; empty for `NONE`.
    pub events: Vec<NotifyEvent>,
}

/// `filter-mailboxes` (RFC 5465 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyFilter {
    /// `selected`: the selected mailbox, expunges reported at once.
    Selected,
    /// `selected-delayed`: the selected mailbox, expunges only when a command allows them.
    SelectedDelayed,
    /// `inboxes`: the mailboxes deliveries reach.
    Inboxes,
    /// `personal`: every mailbox of the user's own namespace.
    Personal,
    /// `subscribed`: the subscribed mailboxes, re-evaluated when subscriptions change.
    Subscribed,
    /// `subtree mailbox…`: these mailboxes and every mailbox below them.
    Subtree(Vec<Mailbox>),
    /// `mailboxes mailbox…`: exactly these mailboxes (no wildcards).
    Mailboxes(Vec<Mailbox>),
}

impl NotifyFilter {
    /// `selected` or `selected-delayed`.
    pub fn is_selected(&self) -> bool {
        matches!(self, NotifyFilter::Selected | NotifyFilter::SelectedDelayed)
    }
}

/// One `event` of a group (RFC 5465 §5, §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyEvent {
    /// `MessageNew [(fetch-att…)]`: the attributes to FETCH for a new message in the
    /// selected mailbox.
    MessageNew(Vec<FetchAttr>),
    /// `MessageExpunge`
    MessageExpunge,
    /// `FlagChange`
    FlagChange,
    /// `AnnotationChange` (RFC 5257 annotations; Herald has none).
    AnnotationChange,
    /// `MailboxName`: create, delete, rename.
    MailboxName,
    /// `SubscriptionChange`
    SubscriptionChange,
    /// `MailboxMetadataChange` (RFC 5464 mailbox entries).
    MailboxMetadataChange,
    /// `ServerMetadataChange` (RFC 5464 server entries).
    ServerMetadataChange,
    /// Another event name (`event-ext`), as written.
    Other(String),
}

impl NotifyEvent {
    /// The event's name as RFC 5465 spells it.
    pub fn name(&self) -> &str {
        match self {
            NotifyEvent::MessageNew(_) => "MessageNew",
            NotifyEvent::MessageExpunge => "MessageExpunge",
            NotifyEvent::FlagChange => "FlagChange",
            NotifyEvent::AnnotationChange => "AnnotationChange",
            NotifyEvent::MailboxName => "MailboxName",
            NotifyEvent::SubscriptionChange => "SubscriptionChange",
            NotifyEvent::MailboxMetadataChange => "MailboxMetadataChange",
            NotifyEvent::ServerMetadataChange => "ServerMetadataChange",
            NotifyEvent::Other(name) => name,
        }
    }

    /// A `message-event`, the only kind a `selected` group may hold (RFC 5465 §6.1).
    pub fn is_message_event(&self) -> bool {
        matches!(
            self,
            NotifyEvent::MessageNew(_)
                | NotifyEvent::MessageExpunge
                | NotifyEvent::FlagChange
                | NotifyEvent::AnnotationChange
        )
    }
}

impl NotifySet {
    /// RFC 5465's composition rules, whose breach is a `BAD` (§5, §6.1): MessageNew and
    /// MessageExpunge come together, FlagChange and AnnotationChange need both, at most one
    /// selected filter, and only message events with it.
    pub fn check(&self) -> Result<(), &'static str> {
        if self
            .groups
            .iter()
            .filter(|g| g.filter.is_selected())
            .count()
            > 1
        {
            return Err("only one of selected and selected-delayed may be given");
        }
        for g in &self.groups {
            let has = |f: fn(&NotifyEvent) -> bool| g.events.iter().any(f);
            let new = has(|e| matches!(e, NotifyEvent::MessageNew(_)));
            let expunge = has(|e| matches!(e, NotifyEvent::MessageExpunge));
            if new != expunge {
                return Err("MessageNew and MessageExpunge must be given together");
            }
            if has(|e| matches!(e, NotifyEvent::FlagChange | NotifyEvent::AnnotationChange)) && !new
            {
                return Err("FlagChange and AnnotationChange need MessageNew and MessageExpunge");
            }
            // An unknown event is the session's `NO [BADEVENT]`, not a composition error.
            let misplaced =
                |e: &NotifyEvent| !e.is_message_event() && !matches!(e, NotifyEvent::Other(_));
            if g.filter.is_selected() && g.events.iter().any(misplaced) {
                return Err("only message events may be given for the selected mailbox");
            }
        }
        Ok(())
    }
}

/// SELECT/EXAMINE parameters (RFC 7162).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectParams {
    /// `(CONDSTORE)`
    pub condstore: bool,
    /// `(QRESYNC (…))`
    pub qresync: Option<Qresync>,
}

/// QRESYNC parameters: `(uidvalidity modseq [known-uids] [(seq-match-data)])`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qresync {
    /// Last known UIDVALIDITY.
    pub uidvalidity: u32,
    /// Last known mod-sequence.
    pub modseq: u64,
    /// UIDs the client knows.
    pub known_uids: Option<SequenceSet>,
    /// Message sequence numbers and their UIDs, for the server's binary search.
    pub seq_match: Option<(SequenceSet, SequenceSet)>,
}

/// LIST with its LIST-EXTENDED parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCommand {
    /// Selection options (`(SUBSCRIBED REMOTE RECURSIVEMATCH SPECIAL-USE)`).
    pub selection: Vec<ListSelect>,
    /// Reference name.
    pub reference: String,
    /// One or more patterns.
    pub patterns: Vec<String>,
    /// Return options.
    pub returns: Vec<ListReturn>,
}

/// LIST selection options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListSelect {
    /// `SUBSCRIBED`
    Subscribed,
    /// `REMOTE`
    Remote,
    /// `RECURSIVEMATCH`
    RecursiveMatch,
    /// `SPECIAL-USE` (RFC 6154)
    SpecialUse,
    /// Another option (upper-cased).
    Other(String),
}

/// LIST return options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListReturn {
    /// `SUBSCRIBED`
    Subscribed,
    /// `CHILDREN`
    Children,
    /// `SPECIAL-USE`
    SpecialUse,
    /// `STATUS (items)` (RFC 5819)
    Status(Vec<StatusItem>),
    /// Another option (upper-cased).
    Other(String),
}

/// STATUS data items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusItem {
    /// `MESSAGES`
    Messages,
    /// `UIDNEXT`
    UidNext,
    /// `UIDVALIDITY`
    UidValidity,
    /// `UNSEEN`
    Unseen,
    /// `DELETED` (IMAP4rev2)
    Deleted,
    /// `SIZE` (RFC 8438 / IMAP4rev2)
    Size,
    /// `RECENT` (IMAP4rev1)
    Recent,
    /// `HIGHESTMODSEQ` (RFC 7162)
    HighestModSeq,
    /// `MAILBOXID` (RFC 8474)
    MailboxId,
}

impl StatusItem {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusItem::Messages => "MESSAGES",
            StatusItem::UidNext => "UIDNEXT",
            StatusItem::UidValidity => "UIDVALIDITY",
            StatusItem::Unseen => "UNSEEN",
            StatusItem::Deleted => "DELETED",
            StatusItem::Size => "SIZE",
            StatusItem::Recent => "RECENT",
            StatusItem::HighestModSeq => "HIGHESTMODSEQ",
            StatusItem::MailboxId => "MAILBOXID",
        }
    }
}

/// One message of an APPEND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    /// Flags to set.
    pub flags: Vec<Flag>,
    /// INTERNALDATE to set.
    pub internal_date: Option<DateTime>,
    /// The message bytes (or where the framer streamed them).
    pub data: LiteralData,
    /// Sent as `~{n}` literal8 (may contain NUL; RFC 3516).
    pub binary: bool,
    /// `CATENATE (…)` (RFC 4469): the message is built from these parts, and `data` is
    /// empty.
    pub catenate: Option<Vec<CatPart>>,
}

/// One URL of a URLFETCH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlFetchArg {
    /// The URL as sent (URLAUTH signs its exact bytes).
    pub url: String,
    /// RFC 5524's parenthesised form and what it asks for; `None` for a bare URL.
    pub extended: Option<UrlFetchParams>,
}

/// What an extended URLFETCH asks for one URL (RFC 5524 §3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UrlFetchParams {
    /// `BODYPARTSTRUCTURE`: the structure of the part the URL names.
    pub body_part_structure: bool,
    /// `BODY`: the data as stored.
    pub body: bool,
    /// `BINARY`: the data with its transfer encoding undone.
    pub binary: bool,
}

/// One part of a CATENATE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatPart {
    /// `TEXT literal`: bytes given in the command.
    Text(LiteralData),
    /// `URL "…"`: an IMAP URL (absolute or relative) of a message or part of one.
    Url(String),
}

/// `[UID] SEARCH [RETURN (…)] [CHARSET x] criteria`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchCommand {
    /// `UID SEARCH`
    pub uid: bool,
    /// ESEARCH return options (RFC 4731/5182); `None` when no `RETURN` was given (classic
    /// `* SEARCH` reply in IMAP4rev1), `Some(empty)` for `RETURN ()`.
    pub returns: Option<Vec<SearchReturn>>,
    /// `CHARSET` name, upper-cased.
    pub charset: Option<String>,
    /// The criteria, AND-ed.
    pub criteria: Vec<SearchKey>,
}

/// `[UID] SORT [RETURN (…)] (criteria) charset key…` (RFC 5256 §3, RFC 5267 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortCommand {
    /// `UID SORT`
    pub uid: bool,
    /// ESORT return options (`MIN`, `MAX`, `ALL`, `COUNT`); `None` without `RETURN` (a
    /// `* SORT` reply), `Some(empty)` for `RETURN ()` (ESEARCH with `ALL`).
    pub returns: Option<Vec<SearchReturn>>,
    /// The sort criteria, most significant first (at least one).
    pub criteria: Vec<SortCriterion>,
    /// The mandatory charset, upper-cased.
    pub charset: String,
    /// The search keys, AND-ed.
    pub search: Vec<SearchKey>,
}

/// One sort criterion: a key, optionally reversed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortCriterion {
    /// `REVERSE` given: descending order for this key only.
    pub reverse: bool,
    /// The key.
    pub key: SortKey,
}

/// Sort keys (RFC 5256 §3, RFC 5957).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortKey {
    /// `ARRIVAL`: INTERNALDATE.
    Arrival,
    /// `CC`: addr-mailbox of the first Cc address.
    Cc,
    /// `DATE`: sent date (Date header, else INTERNALDATE).
    Date,
    /// `FROM`: addr-mailbox of the first From address.
    From,
    /// `SIZE`: RFC822.SIZE.
    Size,
    /// `SUBJECT`: base subject.
    Subject,
    /// `TO`: addr-mailbox of the first To address.
    To,
    /// `DISPLAYFROM` (RFC 5957): display name of the first From address, else its addr-spec.
    DisplayFrom,
    /// `DISPLAYTO` (RFC 5957): display name of the first To address, else its addr-spec.
    DisplayTo,
}

/// `[UID] THREAD algorithm charset key…` (RFC 5256 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadCommand {
    /// `UID THREAD`
    pub uid: bool,
    /// The threading algorithm.
    pub algorithm: ThreadAlgorithm,
    /// The mandatory charset, upper-cased.
    pub charset: String,
    /// The search keys, AND-ed.
    pub search: Vec<SearchKey>,
}

/// Threading algorithms (RFC 5256 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadAlgorithm {
    /// `ORDEREDSUBJECT`
    OrderedSubject,
    /// `REFERENCES`
    References,
}

/// ESEARCH return options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SearchReturn {
    /// `MIN`
    Min,
    /// `MAX`
    Max,
    /// `ALL`
    All,
    /// `COUNT`
    Count,
    /// `SAVE` (RFC 5182)
    Save,
    /// `CONTEXT` (RFC 5267 §4.2): a hint that the client will search again; nothing to do.
    Context,
    /// `UPDATE` (RFC 5267 §4.3): keep the result and report changes to it.
    Update,
    /// `PARTIAL range` (RFC 5267 §4.4, RFC 9394): only these positions of the result.
    Partial(PartialRange),
}

impl SearchReturn {
    /// Whether the option asks for result data (the rest only modify what is done).
    pub fn is_data(self) -> bool {
        matches!(
            self,
            SearchReturn::Min
                | SearchReturn::Max
                | SearchReturn::All
                | SearchReturn::Count
                | SearchReturn::Partial(_)
        )
    }
}

/// A `partial-range` (RFC 9394 §3.1): positions `first:last` in the result counted from 1, or
/// `-first:-last` counted back from the last result (`-1` is the last). Either end may be
/// the larger; the range is the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PartialRange {
    /// The first number as written, without its sign.
    pub first: NonZeroU32,
    /// The second number as written, without its sign.
    pub last: NonZeroU32,
    /// Negative: counted from the end of the result.
    pub from_end: bool,
}

impl PartialRange {
    /// The indexes (from 0) of a result of `len` entries that the range names; empty when it
    /// lies beyond the result.
    pub fn indexes(&self, len: usize) -> std::ops::Range<usize> {
        let lo = self.first.min(self.last).get() as usize;
        let hi = self.first.max(self.last).get() as usize;
        if self.from_end {
            len.saturating_sub(hi)..len.saturating_sub(lo - 1)
        } else {
            (lo - 1).min(len)..hi.min(len)
        }
    }
}

impl std::fmt::Display for PartialRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.from_end { "-" } else { "" };
        write!(f, "{sign}{}:{sign}{}", self.first, self.last)
    }
}

/// A search key (RFC 3501 §6.4.4, RFC 9051 §6.4.4, RFC 7162 MODSEQ). Strings are bytes in the
/// command's CHARSET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    /// `ALL`
    All,
    /// `ANSWERED`
    Answered,
    /// `BCC string`
    Bcc(Vec<u8>),
    /// `BEFORE date`
    Before(Date),
    /// `BODY string`
    Body(Vec<u8>),
    /// `CC string`
    Cc(Vec<u8>),
    /// `DELETED`
    Deleted,
    /// `DRAFT`
    Draft,
    /// `FLAGGED`
    Flagged,
    /// `FROM string`
    From(Vec<u8>),
    /// `HEADER field-name string`
    Header(String, Vec<u8>),
    /// `KEYWORD flag-keyword`
    Keyword(String),
    /// `LARGER n`
    Larger(u64),
    /// `NEW`
    New,
    /// `NOT key`
    Not(Box<SearchKey>),
    /// `OLD`
    Old,
    /// `ON date`
    On(Date),
    /// `OR key key`
    Or(Box<SearchKey>, Box<SearchKey>),
    /// `RECENT`
    Recent,
    /// `SEEN`
    Seen,
    /// `SENTBEFORE date`
    SentBefore(Date),
    /// `SENTON date`
    SentOn(Date),
    /// `SAVEDBEFORE date` (RFC 8514)
    SavedBefore(Date),
    /// `SAVEDON date` (RFC 8514)
    SavedOn(Date),
    /// `SAVEDSINCE date` (RFC 8514)
    SavedSince(Date),
    /// `SAVEDATESUPPORTED` (RFC 8514): every message, where save dates are kept
    SaveDateSupported,
    /// `SENTSINCE date`
    SentSince(Date),
    /// `SINCE date`
    Since(Date),
    /// `SMALLER n`
    Smaller(u64),
    /// `EMAILID objectid` (RFC 8474)
    EmailId(String),
    /// `THREADID objectid` (RFC 8474)
    ThreadId(String),
    /// `OLDER n`: INTERNALDATE at least `n` seconds ago (RFC 5032 WITHIN)
    Older(u32),
    /// `YOUNGER n`: INTERNALDATE at most `n` seconds ago (RFC 5032 WITHIN)
    Younger(u32),
    /// `SUBJECT string`
    Subject(Vec<u8>),
    /// `TEXT string`
    Text(Vec<u8>),
    /// `TO string`
    To(Vec<u8>),
    /// `UID set`
    Uid(SequenceSet),
    /// `UNANSWERED`
    Unanswered,
    /// `UNDELETED`
    Undeleted,
    /// `UNDRAFT`
    Undraft,
    /// `UNFLAGGED`
    Unflagged,
    /// `UNKEYWORD flag-keyword`
    Unkeyword(String),
    /// `UNSEEN`
    Unseen,
    /// A message sequence set (or `$`).
    SequenceSet(SequenceSet),
    /// `( key … )`
    And(Vec<SearchKey>),
    /// `MODSEQ [entry-name entry-type] n` (RFC 7162).
    ModSeq {
        /// `"/flags/\\Seen" priv|shared|all`, if given.
        entry: Option<(String, String)>,
        /// The mod-sequence.
        modseq: u64,
    },
}

/// `[UID] FETCH set items [(modifiers)]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchCommand {
    /// `UID FETCH`
    pub uid: bool,
    /// Messages.
    pub set: SequenceSet,
    /// Items, macros expanded (`ALL`, `FAST`, `FULL`).
    pub items: Vec<FetchAttr>,
    /// `(CHANGEDSINCE n)` (RFC 7162)
    pub changed_since: Option<u64>,
    /// `(VANISHED)` (RFC 7162 QRESYNC, UID FETCH only)
    pub vanished: bool,
}

/// A FETCH data item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAttr {
    /// `ENVELOPE`
    Envelope,
    /// `FLAGS`
    Flags,
    /// `INTERNALDATE`
    InternalDate,
    /// `RFC822` (IMAP4rev1)
    Rfc822,
    /// `RFC822.HEADER` (IMAP4rev1)
    Rfc822Header,
    /// `RFC822.SIZE`
    Rfc822Size,
    /// `RFC822.TEXT` (IMAP4rev1)
    Rfc822Text,
    /// `BODY` (non-extensible BODYSTRUCTURE)
    Body,
    /// `BODYSTRUCTURE`
    BodyStructure,
    /// `UID`
    Uid,
    /// `MODSEQ` (RFC 7162)
    ModSeq,
    /// `EMAILID` (RFC 8474)
    EmailId,
    /// `THREADID` (RFC 8474)
    ThreadId,
    /// `PREVIEW` or `PREVIEW (LAZY)` (RFC 8970); Herald always computes it.
    Preview,
    /// `SAVEDATE` (RFC 8514)
    SaveDate,
    /// `BODY[section]<partial>` or `BODY.PEEK[…]`
    BodySection {
        /// `.PEEK`: do not set `\Seen`.
        peek: bool,
        /// The section.
        section: Section,
        /// `<origin.count>`
        partial: Option<(u32, u32)>,
    },
    /// `BINARY[part]<partial>` or `BINARY.PEEK[…]` (RFC 3516)
    Binary {
        /// `.PEEK`
        peek: bool,
        /// Part numbers (empty: whole message).
        part: Vec<u32>,
        /// `<origin.count>`
        partial: Option<(u32, u32)>,
    },
    /// `BINARY.SIZE[part]`
    BinarySize {
        /// Part numbers.
        part: Vec<u32>,
    },
}

/// `section` = "[" [section-spec] "]".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Section {
    /// Part numbers (`1.2.3`); empty for the whole message.
    pub part: Vec<u32>,
    /// What of that part.
    pub text: Option<SectionText>,
}

/// The textual part of a section spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    /// `HEADER`
    Header,
    /// `HEADER.FIELDS (names)`, names upper-cased.
    HeaderFields(Vec<String>),
    /// `HEADER.FIELDS.NOT (names)`, names upper-cased.
    HeaderFieldsNot(Vec<String>),
    /// `TEXT`
    Text,
    /// `MIME` (only after part numbers)
    Mime,
}

/// `[UID] STORE set [(UNCHANGEDSINCE n)] (+|-)FLAGS[.SILENT] flags`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreCommand {
    /// `UID STORE`
    pub uid: bool,
    /// Messages.
    pub set: SequenceSet,
    /// `(UNCHANGEDSINCE n)` (RFC 7162)
    pub unchanged_since: Option<u64>,
    /// Replace, add or remove.
    pub action: StoreAction,
    /// `.SILENT`
    pub silent: bool,
    /// The flags.
    pub flags: Vec<Flag>,
}

/// How STORE changes flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreAction {
    /// `FLAGS`
    Replace,
    /// `+FLAGS`
    Add,
    /// `-FLAGS`
    Remove,
}

/// Parses one complete command from framer output.
pub fn parse_command(frame: CommandBytes<'_>, opts: ParseOptions) -> Result<Command, Rejected> {
    let mut c = Cursor::new(frame.bytes, frame.streamed, opts.utf8_accept);
    let tag = read_tag(&mut c).map_err(|error| Rejected { tag: None, error })?;
    match parse_body(&mut c) {
        Ok(body) => Ok(Command { tag, body }),
        Err(error) => Err(Rejected {
            tag: Some(tag),
            error,
        }),
    }
}

/// Parses a complete command whose literals are all inline (tests, tools).
pub fn parse_command_bytes(bytes: &[u8], opts: ParseOptions) -> Result<Command, Rejected> {
    parse_command(
        CommandBytes {
            bytes,
            streamed: &[],
        },
        opts,
    )
}

fn read_tag(c: &mut Cursor<'_>) -> Result<Tag, ProtoError> {
    let mut s = String::new();
    while let Some(b) = c.peek_at(s.len()).filter(|&b| super::types::is_tag_char(b)) {
        s.push(char::from(b));
    }
    if s.is_empty() || c.peek_at(s.len()) != Some(b' ') {
        return Err(ProtoError::BadTag);
    }
    c.skip(s.len() + 1);
    Ok(Tag(s))
}

fn parse_body(c: &mut Cursor<'_>) -> Result<CommandBody, ProtoError> {
    let name = c.keyword()?;
    let body = match name.as_str() {
        "CAPABILITY" => CommandBody::Capability,
        "NOOP" => CommandBody::Noop,
        "LOGOUT" => CommandBody::Logout,
        "STARTTLS" => CommandBody::StartTls,
        "NAMESPACE" => CommandBody::Namespace,
        "IDLE" => CommandBody::Idle,
        "CHECK" => CommandBody::Check,
        "CLOSE" => CommandBody::Close,
        "UNSELECT" => CommandBody::Unselect,
        "EXPUNGE" => CommandBody::Expunge,
        "CANCELUPDATE" => parse::search::cancel_update(c)?,
        "NOTIFY" => parse::notify::parse(c)?,
        "ID" => parse::id::parse(c)?,
        "AUTHENTICATE" => parse::auth::authenticate(c)?,
        "LOGIN" => parse::auth::login(c)?,
        "ENABLE" => parse::enable::parse(c)?,
        "SELECT" | "EXAMINE" => parse::select::parse(c, name == "EXAMINE")?,
        "CREATE" => parse::mailbox::create(c)?,
        "DELETE" => CommandBody::Delete(parse::mailbox::one(c)?),
        "RENAME" => parse::mailbox::rename(c)?,
        "SUBSCRIBE" => CommandBody::Subscribe(parse::mailbox::one(c)?),
        "UNSUBSCRIBE" => CommandBody::Unsubscribe(parse::mailbox::one(c)?),
        "LIST" => parse::list::list(c)?,
        "LSUB" => parse::list::lsub(c)?,
        "STATUS" => parse::status::parse(c)?,
        "APPEND" => parse::append::parse(c)?,
        "GETQUOTA" => parse::quota::getquota(c)?,
        "GETQUOTAROOT" => parse::quota::getquotaroot(c)?,
        "SETQUOTA" => parse::quota::setquota(c)?,
        "GETMETADATA" => parse::metadata::getmetadata(c)?,
        "SETMETADATA" => parse::metadata::setmetadata(c)?,
        "GENURLAUTH" => parse::urlauth::genurlauth(c)?,
        "URLFETCH" => parse::urlauth::urlfetch(c)?,
        "RESETKEY" => parse::urlauth::resetkey(c)?,
        "SETACL" => parse::acl::setacl(c)?,
        "DELETEACL" => parse::acl::deleteacl(c)?,
        "GETACL" => parse::acl::getacl(c)?,
        "LISTRIGHTS" => parse::acl::listrights(c)?,
        "MYRIGHTS" => parse::acl::myrights(c)?,
        "SEARCH" => parse::search::parse(c, false)?,
        "SORT" => parse::sort::sort(c, false)?,
        "THREAD" => parse::sort::thread(c, false)?,
        "FETCH" => parse::fetch::parse(c, false)?,
        "STORE" => parse::store::parse(c, false)?,
        "COPY" | "MOVE" => parse::message::copy_move(c, false, name == "MOVE")?,
        "UID" => {
            c.sp()?;
            let sub = c.keyword()?;
            match sub.as_str() {
                "SEARCH" => parse::search::parse(c, true)?,
                "SORT" => parse::sort::sort(c, true)?,
                "THREAD" => parse::sort::thread(c, true)?,
                "FETCH" => parse::fetch::parse(c, true)?,
                "STORE" => parse::store::parse(c, true)?,
                "COPY" | "MOVE" => parse::message::copy_move(c, true, sub == "MOVE")?,
                "EXPUNGE" => parse::message::uid_expunge(c)?,
                _ => return Err(ProtoError::UnknownCommand(format!("UID {sub}"))),
            }
        }
        _ => return Err(ProtoError::UnknownCommand(name)),
    };
    c.crlf()?;
    Ok(body)
}

/// Recognises the `DONE` line that ends IDLE (case-insensitive, RFC 2177).
pub fn parse_idle_done(line: &[u8]) -> Result<(), ProtoError> {
    let l = line.strip_suffix(b"\r\n").ok_or(ProtoError::Syntax {
        at: 0,
        expected: "DONE CRLF",
    })?;
    if l.eq_ignore_ascii_case(b"DONE") {
        Ok(())
    } else {
        Err(ProtoError::Syntax {
            at: 0,
            expected: "DONE",
        })
    }
}

/// A client's answer to an AUTHENTICATE challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthResponse {
    /// `*`: the client cancels the exchange (answer `tag BAD`).
    Cancel,
    /// The base64 text as sent (possibly empty).
    Data(Vec<u8>),
}

/// Reads a line sent in answer to an AUTHENTICATE `+` challenge.
pub fn parse_auth_response(line: &[u8]) -> Result<AuthResponse, ProtoError> {
    let l = line.strip_suffix(b"\r\n").ok_or(ProtoError::Syntax {
        at: 0,
        expected: "CRLF",
    })?;
    if l == b"*" {
        return Ok(AuthResponse::Cancel);
    }
    if let Some(at) = l
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')))
    {
        return Err(ProtoError::Syntax {
            at,
            expected: "base64",
        });
    }
    Ok(AuthResponse::Data(l.to_vec()))
}

/// Reads just the command name (upper-cased; `UID X` as `UID X`) from the start of a command,
/// e.g. from [`super::framer::LiteralFound::prefix`] to decide whether to stream a literal.
pub fn peek_command_name(prefix: &[u8]) -> Option<String> {
    let mut words = prefix.split(|&b| b == b' ' || b == b'\r');
    let _tag = words.next()?;
    let name = std::str::from_utf8(words.next()?)
        .ok()?
        .to_ascii_uppercase();
    if name == "UID" {
        let sub = std::str::from_utf8(words.next()?)
            .ok()?
            .to_ascii_uppercase();
        return Some(format!("UID {sub}"));
    }
    Some(name)
}
