//! The response writer: typed responses in, wire bytes out.
//!
//! Everything appends to a caller-owned `Vec<u8>` so a session can batch responses and flush
//! once. Strings are written in the cheapest form the grammar allows — atom, quoted string, or
//! literal — and never as a quoted string holding CR, LF, NUL or (unless UTF-8 is enabled)
//! 8-bit bytes. Large FETCH bodies need not be in memory: [`FetchWriter::literal_header`] writes
//! `BODY[…]<o> {n}` CRLF, the caller copies the `n` bytes from disk to the socket, then goes on
//! writing the rest of the FETCH into the buffer.
//!
//! The types mirror what the session knows (UTF-8 mailbox names, `herald_events::UidSet`s,
//! pre-rendered ENVELOPE/BODYSTRUCTURE from the store's metadata). Every response this module
//! can produce is checked in tests by decoding it with imap-codec's `ResponseCodec` (STACK.md
//! §2); where imap-codec cannot represent a response the test says so.

use herald_events::UidSet;

use super::command::{PartialRange, Section, SectionText, StatusItem};
use super::error::ProtoError;
use super::mutf7;
use super::types::{DateTime, Flag, MONTHS, Mailbox, Tag, is_astring_char};
pub use crate::thread::{ThreadNode, Threads};

/// How strings are encoded for this connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// UTF8=ACCEPT enabled (or IMAP4rev2): mailbox names are sent as UTF-8 and quoted strings may
    /// hold UTF-8. Otherwise mailbox names are modified UTF-7 and 8-bit text goes in literals.
    pub utf8: bool,
}

/// Longest string written as a quoted string; longer ones become literals.
const MAX_QUOTED: usize = 1024;

fn quotable(s: &[u8], opts: WriteOptions) -> bool {
    s.len() <= MAX_QUOTED
        && s.iter()
            .all(|&b| b != 0 && b != b'\r' && b != b'\n' && (b < 0x80 || opts.utf8))
        && (s.is_ascii() || std::str::from_utf8(s).is_ok())
}

/// Writes a `string`: quoted if possible, else a literal.
pub fn write_string(out: &mut Vec<u8>, s: &[u8], opts: WriteOptions) {
    if quotable(s, opts) {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        write_literal(out, s);
    }
}

/// Writes a literal `{n}` CRLF and the bytes.
pub fn write_literal(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

/// Writes an `astring`: an atom when possible (never the atom `NIL`, which would read as nil).
pub fn write_astring(out: &mut Vec<u8>, s: &[u8], opts: WriteOptions) {
    if !s.is_empty() && s.iter().all(|&b| is_astring_char(b)) && !s.eq_ignore_ascii_case(b"NIL") {
        out.extend_from_slice(s);
    } else {
        write_string(out, s, opts);
    }
}

/// Writes an `nstring`.
pub fn write_nstring(out: &mut Vec<u8>, s: Option<&[u8]>, opts: WriteOptions) {
    match s {
        Some(s) => write_string(out, s, opts),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// Writes a mailbox name (modified UTF-7 unless UTF-8 is enabled).
pub fn write_mailbox(out: &mut Vec<u8>, m: &Mailbox, opts: WriteOptions) {
    if opts.utf8 {
        write_astring(out, m.as_str().as_bytes(), opts);
    } else {
        write_astring(out, mutf7::encode(m.as_str()).as_bytes(), opts);
    }
}

/// Writes a `date-time` (`"17-Jul-1996 02:44:25 -0700"`).
pub fn write_date_time(out: &mut Vec<u8>, d: &DateTime) {
    use chrono::{Datelike, Timelike};
    let off = d.offset().local_minus_utc();
    let (sign, off) = if off < 0 { ('-', -off) } else { ('+', off) };
    let month = MONTHS.get(d.month0() as usize).copied().unwrap_or("Jan");
    out.extend_from_slice(
        format!(
            "\"{:2}-{}-{:04} {:02}:{:02}:{:02} {}{:02}{:02}\"",
            d.day(),
            month,
            d.year(),
            d.hour(),
            d.minute(),
            d.second(),
            sign,
            off / 3600,
            (off / 60) % 60
        )
        .as_bytes(),
    );
}

/// Free text after a status or code: no CR/LF, not empty, not starting with `[`.
fn write_text(out: &mut Vec<u8>, text: &str, opts: WriteOptions) {
    let text = if text.is_empty() { "done" } else { text };
    for (i, ch) in text.chars().enumerate() {
        match ch {
            '\r' | '\n' | '\0' => out.push(b' '),
            '[' if i == 0 => out.push(b'('),
            c if c.is_ascii() => out.push(c as u8),
            c if opts.utf8 => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            _ => out.push(b'?'),
        }
    }
}

fn write_flags(out: &mut Vec<u8>, flags: &[Flag]) {
    out.push(b'(');
    for (i, f) in flags.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(f.to_string().as_bytes());
    }
    out.push(b')');
}

fn write_atoms(out: &mut Vec<u8>, atoms: &[String]) {
    for a in atoms {
        out.push(b' ');
        out.extend_from_slice(a.as_bytes());
    }
}

/// The status of a status response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `OK`
    Ok,
    /// `NO`
    No,
    /// `BAD`
    Bad,
    /// `PREAUTH` (greeting only)
    PreAuth,
    /// `BYE`
    Bye,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
            Status::PreAuth => "PREAUTH",
            Status::Bye => "BYE",
        }
    }
}

/// The `METADATA` response code's forms (RFC 5464 §4.2.1, §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataCode {
    /// `LONGENTRIES n`: GETMETADATA left out values; the largest was `n` octets.
    LongEntries(u64),
    /// `MAXSIZE n`: SETMETADATA refused a value; the largest kept is `n` octets.
    MaxSize(u64),
    /// `TOOMANY`: SETMETADATA would exceed the number of entries allowed.
    TooMany,
    /// `NOPRIVATE`: the server keeps no private entries there.
    NoPrivate,
}

/// Response codes (RFC 9051 §7.1, RFC 4315 UIDPLUS, RFC 5530, RFC 7162, RFC 9208).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// `ALERT`
    Alert,
    /// `BADCHARSET (charsets)`
    BadCharset(Vec<String>),
    /// `CAPABILITY caps…`
    Capability(Vec<String>),
    /// `PARSE`
    Parse,
    /// `PERMANENTFLAGS (flags [\*])`
    PermanentFlags {
        /// Flags that can be stored permanently.
        flags: Vec<Flag>,
        /// Whether new keywords may be created (`\*`).
        allow_new: bool,
    },
    /// `READ-ONLY`
    ReadOnly,
    /// `READ-WRITE`
    ReadWrite,
    /// `TRYCREATE`
    TryCreate,
    /// `UIDNEXT n`
    UidNext(u32),
    /// `UIDVALIDITY n`
    UidValidity(u32),
    /// `UNSEEN n` (IMAP4rev1)
    Unseen(u32),
    /// `APPENDUID uidvalidity uids`
    AppendUid {
        /// UIDVALIDITY of the target mailbox.
        uidvalidity: u32,
        /// UIDs assigned, in APPEND order.
        uids: UidSet,
    },
    /// `COPYUID uidvalidity source-uids dest-uids`. Both sets are canonical (ascending); the
    /// server must assign destination UIDs in ascending source-UID order so they correspond.
    CopyUid {
        /// UIDVALIDITY of the destination.
        uidvalidity: u32,
        /// Source UIDs.
        source: UidSet,
        /// Destination UIDs.
        dest: UidSet,
    },
    /// `UIDNOTSTICKY`
    UidNotSticky,
    /// `HIGHESTMODSEQ n`
    HighestModSeq(u64),
    /// `NOMODSEQ`
    NoModSeq,
    /// `MODIFIED set`
    Modified(UidSet),
    /// `CLOSED`
    Closed,
    /// `OVERQUOTA`
    OverQuota,
    /// `TOOBIG`
    TooBig,
    /// `NONEXISTENT`
    NonExistent,
    /// `ALREADYEXISTS`
    AlreadyExists,
    /// `CANNOT`
    Cannot,
    /// `LIMIT`
    Limit,
    /// `INUSE`
    InUse,
    /// `EXPUNGEISSUED`
    ExpungeIssued,
    /// `SERVERBUG`
    ServerBug,
    /// `CLIENTBUG`
    ClientBug,
    /// `AUTHENTICATIONFAILED`
    AuthenticationFailed,
    /// `AUTHORIZATIONFAILED`
    AuthorizationFailed,
    /// `EXPIRED`
    Expired,
    /// `PRIVACYREQUIRED`
    PrivacyRequired,
    /// `CONTACTADMIN`
    ContactAdmin,
    /// `NOPERM`
    NoPerm,
    /// `UNAVAILABLE`
    Unavailable,
    /// `CORRUPTION`
    Corruption,
    /// `HASCHILDREN`
    HasChildren,
    /// `UNKNOWN-CTE`
    UnknownCte,
    /// `NOUPDATE "tag"` (RFC 5267 §4.3.1): no update context for that searching command.
    NoUpdate(Tag),
    /// `METADATA …` (RFC 5464 §4.2, §4.3).
    Metadata(MetadataCode),
    /// Any other code: an atom and optional text (no `]`).
    Other(String, Option<String>),
}

fn write_code(out: &mut Vec<u8>, code: &Code) {
    let simple = |s: &str, out: &mut Vec<u8>| out.extend_from_slice(s.as_bytes());
    match code {
        Code::Alert => simple("ALERT", out),
        Code::BadCharset(cs) => {
            simple("BADCHARSET", out);
            if !cs.is_empty() {
                out.extend_from_slice(b" (");
                for (i, c) in cs.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    write_astring(out, c.as_bytes(), WriteOptions::default());
                }
                out.push(b')');
            }
        }
        Code::Capability(caps) => {
            simple("CAPABILITY", out);
            write_atoms(out, caps);
        }
        Code::Parse => simple("PARSE", out),
        Code::PermanentFlags { flags, allow_new } => {
            simple("PERMANENTFLAGS ", out);
            let mut f = flags.clone();
            if *allow_new {
                f.push(Flag::Extension("*".into()));
            }
            write_flags(out, &f);
        }
        Code::ReadOnly => simple("READ-ONLY", out),
        Code::ReadWrite => simple("READ-WRITE", out),
        Code::TryCreate => simple("TRYCREATE", out),
        Code::UidNext(n) => simple(&format!("UIDNEXT {n}"), out),
        Code::UidValidity(n) => simple(&format!("UIDVALIDITY {n}"), out),
        Code::Unseen(n) => simple(&format!("UNSEEN {n}"), out),
        Code::AppendUid { uidvalidity, uids } => {
            simple(&format!("APPENDUID {uidvalidity} {uids}"), out)
        }
        Code::CopyUid {
            uidvalidity,
            source,
            dest,
        } => simple(&format!("COPYUID {uidvalidity} {source} {dest}"), out),
        Code::UidNotSticky => simple("UIDNOTSTICKY", out),
        Code::HighestModSeq(n) => simple(&format!("HIGHESTMODSEQ {n}"), out),
        Code::NoModSeq => simple("NOMODSEQ", out),
        Code::Modified(set) => simple(&format!("MODIFIED {set}"), out),
        Code::Closed => simple("CLOSED", out),
        Code::OverQuota => simple("OVERQUOTA", out),
        Code::TooBig => simple("TOOBIG", out),
        Code::NonExistent => simple("NONEXISTENT", out),
        Code::AlreadyExists => simple("ALREADYEXISTS", out),
        Code::Cannot => simple("CANNOT", out),
        Code::Limit => simple("LIMIT", out),
        Code::InUse => simple("INUSE", out),
        Code::ExpungeIssued => simple("EXPUNGEISSUED", out),
        Code::ServerBug => simple("SERVERBUG", out),
        Code::ClientBug => simple("CLIENTBUG", out),
        Code::AuthenticationFailed => simple("AUTHENTICATIONFAILED", out),
        Code::AuthorizationFailed => simple("AUTHORIZATIONFAILED", out),
        Code::Expired => simple("EXPIRED", out),
        Code::PrivacyRequired => simple("PRIVACYREQUIRED", out),
        Code::ContactAdmin => simple("CONTACTADMIN", out),
        Code::NoPerm => simple("NOPERM", out),
        Code::Unavailable => simple("UNAVAILABLE", out),
        Code::Corruption => simple("CORRUPTION", out),
        Code::HasChildren => simple("HASCHILDREN", out),
        Code::UnknownCte => simple("UNKNOWN-CTE", out),
        Code::NoUpdate(tag) => {
            simple("NOUPDATE ", out);
            write_string(out, tag.as_str().as_bytes(), WriteOptions::default());
        }
        Code::Metadata(m) => match m {
            MetadataCode::LongEntries(n) => simple(&format!("METADATA LONGENTRIES {n}"), out),
            MetadataCode::MaxSize(n) => simple(&format!("METADATA MAXSIZE {n}"), out),
            MetadataCode::TooMany => simple("METADATA TOOMANY", out),
            MetadataCode::NoPrivate => simple("METADATA NOPRIVATE", out),
        },
        Code::Other(atom, text) => {
            out.extend(atom.bytes().filter(|&b| super::types::is_atom_char(b)));
            if let Some(t) = text {
                out.push(b' ');
                out.extend(
                    t.bytes()
                        .filter(|&b| (0x20..0x7f).contains(&b) && b != b']'),
                );
            }
        }
    }
}

/// Writes a status response: `tag|* OK|NO|BAD|PREAUTH|BYE [code] text` CRLF.
pub fn write_status(
    out: &mut Vec<u8>,
    tag: Option<&Tag>,
    status: Status,
    code: Option<&Code>,
    text: &str,
    opts: WriteOptions,
) {
    match tag {
        Some(t) => out.extend_from_slice(t.as_str().as_bytes()),
        None => out.push(b'*'),
    }
    out.push(b' ');
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    if let Some(c) = code {
        out.push(b'[');
        write_code(out, c);
        out.extend_from_slice(b"] ");
    }
    write_text(out, text, opts);
    out.extend_from_slice(b"\r\n");
}

/// Writes a continuation request `+ text` CRLF.
pub fn write_continuation(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"+ ");
    write_text(out, text, WriteOptions::default());
    out.extend_from_slice(b"\r\n");
}

/// Writes a SASL challenge `+ base64` CRLF (the caller encodes; empty for `+ `).
pub fn write_challenge(out: &mut Vec<u8>, base64: &[u8]) {
    out.extend_from_slice(b"+ ");
    out.extend(
        base64
            .iter()
            .copied()
            .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')),
    );
    out.extend_from_slice(b"\r\n");
}

/// Maps a framing or parse error to the reply the protocol prescribes (STYLE.md: one function
/// per protocol): `tag NO [TOOBIG]` for an oversized literal, `tag BAD` otherwise, `* BAD` when
/// no tag could be read.
pub fn error_response(out: &mut Vec<u8>, tag: Option<&Tag>, error: &ProtoError) {
    let (status, code) = match error {
        ProtoError::LiteralTooLarge { .. } => (Status::No, Some(Code::TooBig)),
        // The command is well formed; the name is one no mailbox can have (as Dovecot answers).
        ProtoError::BadMailboxName => (Status::No, Some(Code::Cannot)),
        ProtoError::LineTooLong { .. } | ProtoError::CommandTooLarge { .. } => {
            (Status::Bad, Some(Code::TooBig))
        }
        _ => (Status::Bad, None),
    };
    let tag = if matches!(error, ProtoError::BadTag) {
        None
    } else {
        tag
    };
    write_status(
        out,
        tag,
        status,
        code.as_ref(),
        &error.to_string(),
        WriteOptions::default(),
    );
}

/// A LIST or LSUB entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// Attributes with their backslash (`\HasNoChildren`, `\Subscribed`, `\Sent`).
    pub attributes: Vec<String>,
    /// Hierarchy delimiter, or `None` for a flat namespace (NIL).
    pub delimiter: Option<char>,
    /// The mailbox.
    pub mailbox: Mailbox,
    /// `("CHILDINFO" ("SUBSCRIBED"))` (RFC 5258 RECURSIVEMATCH).
    pub child_info_subscribed: bool,
    /// `("OLDNAME" (name))` (RFC 9051 §7.3.1, after a RENAME).
    pub old_name: Option<Mailbox>,
}

/// ESEARCH data (RFC 4731 / RFC 9051 §7.3.4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Esearch {
    /// The tag of the SEARCH this answers.
    pub tag: Option<Tag>,
    /// `UID` indicator.
    pub uid: bool,
    /// `MIN n`
    pub min: Option<u32>,
    /// `MAX n`
    pub max: Option<u32>,
    /// `COUNT n`
    pub count: Option<u32>,
    /// `ALL set` (omitted when empty, as the RFC requires).
    pub all: Option<UidSet>,
    /// `ALL` in a given order (ESORT, RFC 5267 §3.1): the numbers in sort order, ascending
    /// runs written as ranges (§3.2 lets a range stand only for increasing numbers).
    pub all_sorted: Option<Vec<u32>>,
    /// `MODSEQ n` (RFC 7162)
    pub modseq: Option<u64>,
    /// `PARTIAL (range set)` (RFC 5267 §4.4, RFC 9394): the requested range as written and
    /// the numbers in it, in the requested order (NIL when none).
    pub partial: Option<(PartialRange, Vec<u32>)>,
    /// `ADDTO (…)` and `REMOVEFROM (…)` (RFC 5267 §4.3): changes to an update context's
    /// result, in the order the client must apply them.
    pub updates: Vec<ContextUpdate>,
}

/// One change to an update context's result (RFC 5267 §4.3.3, §4.3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextUpdate {
    /// Insert these numbers (in the requested order) at this position (0: anywhere, SEARCH).
    AddTo(u32, Vec<u32>),
    /// Remove these numbers starting at this position (0: wherever they are, SEARCH).
    RemoveFrom(u32, Vec<u32>),
}

/// A namespace descriptor: prefix and delimiter.
pub type NamespaceEntry = (String, Option<char>);

/// Untagged data responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// `* CAPABILITY …`
    Capability(Vec<String>),
    /// `* ENABLED …`
    Enabled(Vec<String>),
    /// `* LIST …`
    List(ListEntry),
    /// `* LSUB …`
    Lsub(ListEntry),
    /// `* STATUS mailbox (item n …)`
    Status {
        /// Mailbox.
        mailbox: Mailbox,
        /// Item values.
        items: Vec<(StatusItem, u64)>,
    },
    /// `* SEARCH n… [(MODSEQ m)]` (IMAP4rev1)
    Search {
        /// Matching numbers.
        ids: Vec<u32>,
        /// Highest mod-sequence of the matches (RFC 7162).
        modseq: Option<u64>,
    },
    /// `* ESEARCH …`
    Esearch(Esearch),
    /// `* SORT n… [(MODSEQ m)]` (RFC 5256; MODSEQ per RFC 7162 §3.1.5)
    Sort {
        /// The numbers in sort order.
        ids: Vec<u32>,
        /// Highest mod-sequence of the matches, when the search used MODSEQ.
        modseq: Option<u64>,
    },
    /// `* THREAD (…)…` (RFC 5256)
    Thread(Threads),
    /// `* FLAGS (…)`
    Flags(Vec<Flag>),
    /// `* n EXISTS`
    Exists(u32),
    /// `* n RECENT` (IMAP4rev1)
    Recent(u32),
    /// `* n EXPUNGE`
    Expunge(u32),
    /// `* VANISHED [(EARLIER)] uids` (RFC 7162)
    Vanished {
        /// `(EARLIER)`
        earlier: bool,
        /// The UIDs.
        uids: UidSet,
    },
    /// `* QUOTA root (resource usage limit …)` (RFC 9208)
    Quota {
        /// Quota root.
        root: String,
        /// Resource name, usage, limit.
        resources: Vec<(String, u64, u64)>,
    },
    /// `* METADATA mailbox (entry value …)` (RFC 5464 §4.4.1); a value is NIL for an entry
    /// that does not exist, and a literal8 when it holds NUL.
    Metadata {
        /// Mailbox, or `""` for the server.
        mailbox: Mailbox,
        /// Entry names and values.
        entries: Vec<(String, Option<Vec<u8>>)>,
    },
    /// `* QUOTAROOT mailbox root…`
    QuotaRoot {
        /// Mailbox.
        mailbox: Mailbox,
        /// Roots.
        roots: Vec<String>,
    },
    /// `* NAMESPACE personal other shared`
    Namespace {
        /// Personal namespaces.
        personal: Vec<NamespaceEntry>,
        /// Other users' namespaces.
        other: Vec<NamespaceEntry>,
        /// Shared namespaces.
        shared: Vec<NamespaceEntry>,
    },
    /// `* ACL mailbox identifier rights …` (RFC 4314 §3.6)
    Acl {
        /// Mailbox.
        mailbox: Mailbox,
        /// (identifier, rights) pairs.
        entries: Vec<(String, String)>,
    },
    /// `* LISTRIGHTS mailbox identifier required optional…` (RFC 4314 §3.7)
    ListRights {
        /// Mailbox.
        mailbox: Mailbox,
        /// The identifier asked about.
        identifier: String,
        /// Rights always granted (may be empty).
        required: String,
        /// Rights that may be granted, each group independently.
        optional: Vec<String>,
    },
    /// `* MYRIGHTS mailbox rights` (RFC 4314 §3.8)
    MyRights {
        /// Mailbox.
        mailbox: Mailbox,
        /// The session's rights.
        rights: String,
    },
    /// `* ID (…)` / `* ID NIL`
    Id(Option<Vec<(String, Option<String>)>>),
    /// `* METADATA mailbox entry…` (RFC 5464 §4.4.2): the unsolicited form that names
    /// changed entries without their values (NOTIFY's metadata events); `""` is the server.
    MetadataEntries {
        /// The mailbox, or the empty name for server entries.
        mailbox: Mailbox,
        /// Entry names (`/private/comment`).
        entries: Vec<String>,
    },
    /// `* n FETCH (…)` with every item in memory; see [`FetchWriter`] to stream.
    Fetch {
        /// Message sequence number.
        seq: u32,
        /// Items.
        items: Vec<FetchItem>,
    },
    /// `* GENURLAUTH url …` (RFC 4467): the authorized URLs, in the order asked.
    GenUrlAuth(Vec<String>),
    /// `* URLFETCH url data …` (RFC 4467, RFC 5524).
    UrlFetch(Vec<UrlFetchData>),
}

/// One URL of a `* URLFETCH` response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlFetchData {
    /// The URL as the client sent it.
    pub url: String,
    /// What it names.
    pub value: UrlFetchValue,
}

/// The data of one URLFETCH URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlFetchValue {
    /// RFC 4467's `nstring`: the data, or `NIL` for a URL that is not valid (also the answer
    /// to an extended request for such a URL).
    Simple(Option<Vec<u8>>),
    /// RFC 5524's metadata items, each present only when asked for.
    Extended {
        /// `(BODYPARTSTRUCTURE body)`, already written in BODYSTRUCTURE syntax.
        body_part_structure: Option<Vec<u8>>,
        /// `(BODY nstring)`.
        body: Option<Option<Vec<u8>>>,
        /// `(BINARY nstring / literal8)`.
        binary: Option<Option<Vec<u8>>>,
    },
}

fn write_urlfetch(out: &mut Vec<u8>, items: &[UrlFetchData], opts: WriteOptions) {
    out.extend_from_slice(b"* URLFETCH");
    for item in items {
        out.push(b' ');
        write_string(out, item.url.as_bytes(), opts);
        match &item.value {
            UrlFetchValue::Simple(data) => {
                out.push(b' ');
                write_nstring(out, data.as_deref(), opts);
            }
            UrlFetchValue::Extended {
                body_part_structure,
                body,
                binary,
            } => {
                if let Some(s) = body_part_structure {
                    out.extend_from_slice(b" (BODYPARTSTRUCTURE ");
                    out.extend_from_slice(s);
                    out.push(b')');
                }
                if let Some(d) = body {
                    out.extend_from_slice(b" (BODY ");
                    write_nstring(out, d.as_deref(), opts);
                    out.push(b')');
                }
                if let Some(d) = binary {
                    out.extend_from_slice(b" (BINARY ");
                    match d {
                        Some(d) if d.contains(&0) => {
                            out.push(b'~');
                            write_literal(out, d);
                        }
                        d => write_nstring(out, d.as_deref(), opts),
                    }
                    out.push(b')');
                }
            }
        }
    }
}

fn write_namespaces(out: &mut Vec<u8>, ns: &[NamespaceEntry], opts: WriteOptions) {
    if ns.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (prefix, delim) in ns {
        out.push(b'(');
        let prefix = if opts.utf8 {
            prefix.clone()
        } else {
            mutf7::encode(prefix)
        };
        write_string(out, prefix.as_bytes(), opts);
        out.push(b' ');
        write_delimiter(out, *delim);
        out.push(b')');
    }
    out.push(b')');
}

fn write_delimiter(out: &mut Vec<u8>, d: Option<char>) {
    match d {
        Some(c) if c.is_ascii() && c != '\r' && c != '\n' && c != '\0' => {
            write_string(out, c.to_string().as_bytes(), WriteOptions::default())
        }
        _ => out.extend_from_slice(b"NIL"),
    }
}

fn write_list_entry(out: &mut Vec<u8>, name: &str, e: &ListEntry, opts: WriteOptions) {
    out.extend_from_slice(b"* ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b" (");
    for (i, a) in e.attributes.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(a.as_bytes());
    }
    out.extend_from_slice(b") ");
    write_delimiter(out, e.delimiter);
    out.push(b' ');
    write_mailbox(out, &e.mailbox, opts);
    if e.child_info_subscribed || e.old_name.is_some() {
        out.extend_from_slice(b" (");
        if e.child_info_subscribed {
            out.extend_from_slice(b"\"CHILDINFO\" (\"SUBSCRIBED\")");
        }
        if let Some(old) = &e.old_name {
            if e.child_info_subscribed {
                out.push(b' ');
            }
            out.extend_from_slice(b"\"OLDNAME\" (");
            write_mailbox(out, old, opts);
            out.push(b')');
        }
        out.push(b')');
    }
}

/// Writes an untagged data response.
pub fn write_data(out: &mut Vec<u8>, data: &Data, opts: WriteOptions) {
    match data {
        Data::Capability(caps) => {
            out.extend_from_slice(b"* CAPABILITY");
            write_atoms(out, caps);
        }
        Data::Enabled(caps) => {
            out.extend_from_slice(b"* ENABLED");
            write_atoms(out, caps);
        }
        Data::List(e) => write_list_entry(out, "LIST", e, opts),
        Data::Lsub(e) => write_list_entry(out, "LSUB", e, opts),
        Data::Status { mailbox, items } => {
            out.extend_from_slice(b"* STATUS ");
            write_mailbox(out, mailbox, opts);
            out.extend_from_slice(b" (");
            for (i, (item, v)) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                if *item == StatusItem::MailboxId {
                    out.extend_from_slice(format!("MAILBOXID ({})", mailbox_id(*v)).as_bytes());
                } else {
                    out.extend_from_slice(format!("{} {v}", item.as_str()).as_bytes());
                }
            }
            out.push(b')');
        }
        Data::Search { ids, modseq } => {
            out.extend_from_slice(b"* SEARCH");
            for id in ids {
                out.extend_from_slice(format!(" {id}").as_bytes());
            }
            if let Some(m) = modseq {
                out.extend_from_slice(format!(" (MODSEQ {m})").as_bytes());
            }
        }
        Data::Sort { ids, modseq } => {
            out.extend_from_slice(b"* SORT");
            for id in ids {
                out.extend_from_slice(format!(" {id}").as_bytes());
            }
            if let Some(m) = modseq {
                out.extend_from_slice(format!(" (MODSEQ {m})").as_bytes());
            }
        }
        Data::Thread(t) => {
            out.extend_from_slice(b"* THREAD");
            if !t.roots.is_empty() {
                out.push(b' ');
                write_threads(out, t);
            }
        }
        Data::Esearch(e) => {
            out.extend_from_slice(b"* ESEARCH");
            if let Some(t) = &e.tag {
                out.extend_from_slice(b" (TAG ");
                write_string(out, t.as_str().as_bytes(), opts);
                out.push(b')');
            }
            if e.uid {
                out.extend_from_slice(b" UID");
            }
            for (name, v) in [("MIN", e.min), ("MAX", e.max), ("COUNT", e.count)] {
                if let Some(v) = v {
                    out.extend_from_slice(format!(" {name} {v}").as_bytes());
                }
            }
            if let Some(all) = e.all.as_ref().filter(|s| !s.is_empty()) {
                out.extend_from_slice(format!(" ALL {all}").as_bytes());
            }
            if let Some(all) = e.all_sorted.as_ref().filter(|s| !s.is_empty()) {
                out.extend_from_slice(b" ALL ");
                write_ordered_set(out, all);
            }
            if let Some((range, ids)) = &e.partial {
                out.extend_from_slice(format!(" PARTIAL ({range} ").as_bytes());
                if ids.is_empty() {
                    out.extend_from_slice(b"NIL");
                } else {
                    write_ordered_set(out, ids);
                }
                out.push(b')');
            }
            if let Some(m) = e.modseq {
                out.extend_from_slice(format!(" MODSEQ {m}").as_bytes());
            }
            // Consecutive changes of one kind share one data item: `ADDTO (p1 s1 p2 s2)`.
            let mut i = 0;
            while let Some(first) = e.updates.get(i) {
                let add = matches!(first, ContextUpdate::AddTo(..));
                out.extend_from_slice(if add { b" ADDTO (" } else { b" REMOVEFROM (" });
                let mut n = 0;
                while let Some(u) = e.updates.get(i) {
                    let (pos, ids) = match u {
                        ContextUpdate::AddTo(p, ids) if add => (p, ids),
                        ContextUpdate::RemoveFrom(p, ids) if !add => (p, ids),
                        _ => break,
                    };
                    if n > 0 {
                        out.push(b' ');
                    }
                    out.extend_from_slice(format!("{pos} ").as_bytes());
                    write_ordered_set(out, ids);
                    n += 1;
                    i += 1;
                }
                out.push(b')');
            }
        }
        Data::Flags(flags) => {
            out.extend_from_slice(b"* FLAGS ");
            write_flags(out, flags);
        }
        Data::Exists(n) => out.extend_from_slice(format!("* {n} EXISTS").as_bytes()),
        Data::Recent(n) => out.extend_from_slice(format!("* {n} RECENT").as_bytes()),
        Data::Expunge(n) => out.extend_from_slice(format!("* {n} EXPUNGE").as_bytes()),
        Data::Vanished { earlier, uids } => {
            out.extend_from_slice(b"* VANISHED ");
            if *earlier {
                out.extend_from_slice(b"(EARLIER) ");
            }
            out.extend_from_slice(uids.to_string().as_bytes());
        }
        Data::Quota { root, resources } => {
            out.extend_from_slice(b"* QUOTA ");
            write_astring(out, root.as_bytes(), opts);
            out.extend_from_slice(b" (");
            for (i, (name, usage, limit)) in resources.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                out.extend(name.bytes().filter(|&b| super::types::is_atom_char(b)));
                out.extend_from_slice(format!(" {usage} {limit}").as_bytes());
            }
            out.push(b')');
        }
        Data::Metadata { mailbox, entries } => {
            out.extend_from_slice(b"* METADATA ");
            write_mailbox(out, mailbox, opts);
            out.extend_from_slice(b" (");
            for (i, (name, value)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_astring(out, name.as_bytes(), opts);
                out.push(b' ');
                match value {
                    Some(v) if v.contains(&0) => {
                        out.push(b'~');
                        write_literal(out, v);
                    }
                    Some(v) => write_string(out, v, opts),
                    None => out.extend_from_slice(b"NIL"),
                }
            }
            out.push(b')');
        }
        Data::QuotaRoot { mailbox, roots } => {
            out.extend_from_slice(b"* QUOTAROOT ");
            write_mailbox(out, mailbox, opts);
            for r in roots {
                out.push(b' ');
                write_astring(out, r.as_bytes(), opts);
            }
        }
        Data::Namespace {
            personal,
            other,
            shared,
        } => {
            out.extend_from_slice(b"* NAMESPACE ");
            write_namespaces(out, personal, opts);
            out.push(b' ');
            write_namespaces(out, other, opts);
            out.push(b' ');
            write_namespaces(out, shared, opts);
        }
        Data::Acl { mailbox, entries } => {
            out.extend_from_slice(b"* ACL ");
            write_mailbox(out, mailbox, opts);
            for (identifier, rights) in entries {
                out.push(b' ');
                write_astring(out, identifier.as_bytes(), opts);
                out.push(b' ');
                write_astring(out, rights.as_bytes(), opts);
            }
        }
        Data::ListRights {
            mailbox,
            identifier,
            required,
            optional,
        } => {
            out.extend_from_slice(b"* LISTRIGHTS ");
            write_mailbox(out, mailbox, opts);
            out.push(b' ');
            write_astring(out, identifier.as_bytes(), opts);
            out.push(b' ');
            write_astring(out, required.as_bytes(), opts);
            for o in optional {
                out.push(b' ');
                write_astring(out, o.as_bytes(), opts);
            }
        }
        Data::MyRights { mailbox, rights } => {
            out.extend_from_slice(b"* MYRIGHTS ");
            write_mailbox(out, mailbox, opts);
            out.push(b' ');
            write_astring(out, rights.as_bytes(), opts);
        }
        Data::Id(params) => {
            out.extend_from_slice(b"* ID ");
            match params {
                None => out.extend_from_slice(b"NIL"),
                Some(p) => {
                    out.push(b'(');
                    for (i, (k, v)) in p.iter().enumerate() {
                        if i > 0 {
                            out.push(b' ');
                        }
                        write_string(out, k.as_bytes(), opts);
                        out.push(b' ');
                        write_nstring(out, v.as_deref().map(str::as_bytes), opts);
                    }
                    out.push(b')');
                }
            }
        }
        Data::GenUrlAuth(urls) => {
            out.extend_from_slice(b"* GENURLAUTH");
            for u in urls {
                out.push(b' ');
                write_string(out, u.as_bytes(), opts);
            }
        }
        Data::UrlFetch(items) => write_urlfetch(out, items, opts),
        Data::MetadataEntries { mailbox, entries } => {
            out.extend_from_slice(b"* METADATA ");
            // The server's empty name comes out as `""`, as in the solicited form.
            write_mailbox(out, mailbox, opts);
            for e in entries {
                out.push(b' ');
                write_astring(out, e.as_bytes(), opts);
            }
        }
        Data::Fetch { seq, items } => {
            let mut w = FetchWriter::begin(out, *seq);
            for item in items {
                w.item(out, item, opts);
            }
            w.end(out);
            return;
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes numbers in the given order as a sequence-set: each ascending run of consecutive
/// numbers becomes `a:b`, everything else stays in place (`5,3:4,1`).
pub fn write_ordered_set(out: &mut Vec<u8>, ids: &[u32]) {
    let mut i = 0;
    while i < ids.len() {
        if i > 0 {
            out.push(b',');
        }
        let start = ids[i];
        let mut end = start;
        while ids
            .get(i + 1)
            .is_some_and(|&n| Some(n) == end.checked_add(1))
        {
            end += 1;
            i += 1;
        }
        if start == end {
            out.extend_from_slice(start.to_string().as_bytes());
        } else {
            out.extend_from_slice(format!("{start}:{end}").as_bytes());
        }
        i += 1;
    }
}

/// Writes the thread lists of a forest (RFC 5256 §5):
///
/// ```text
/// thread-list    = "(" (thread-members / thread-nested) ")"
/// thread-members = nz-number *(SP nz-number) [SP thread-nested]
/// thread-nested  = 2*thread-list
/// ```
///
/// A chain of single children is one list of numbers; where a node has several children each
/// becomes a nested list. A dummy with one child is passed through (the grammar has no way to
/// show it), so the output is valid whatever the forest. Iterative: a reply chain may be as
/// deep as the mailbox is long.
pub fn write_threads(out: &mut Vec<u8>, t: &Threads) {
    enum Step {
        Open(usize),
        Close,
    }
    let mut stack: Vec<Step> = t.roots.iter().rev().map(|&r| Step::Open(r)).collect();
    while let Some(step) = stack.pop() {
        let Step::Open(n) = step else {
            out.push(b')');
            continue;
        };
        out.push(b'(');
        let mut at = n;
        let mut first = true;
        let mut nested = false;
        // A bound on the chain walk: every node is visited at most once in a forest.
        for _ in 0..=t.nodes.len() {
            let Some(node) = t.nodes.get(at) else {
                break;
            };
            if let Some(id) = node.id {
                if !first {
                    out.push(b' ');
                }
                out.extend_from_slice(id.to_string().as_bytes());
                first = false;
            }
            match node.children.as_slice() {
                [] => break,
                [only] => at = *only,
                kids => {
                    if !first {
                        out.push(b' ');
                    }
                    stack.push(Step::Close);
                    stack.extend(kids.iter().rev().map(|&k| Step::Open(k)));
                    nested = true;
                    break;
                }
            }
        }
        if !nested {
            out.push(b')');
        }
    }
}

/// The name of a FETCH item whose value is message data (an nstring).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyName {
    /// `BODY[section]<origin>`
    Section {
        /// Section.
        section: Section,
        /// Origin octet of a partial fetch.
        origin: Option<u32>,
    },
    /// `BINARY[part]<origin>` (the value is written as a literal8 when it holds NUL).
    Binary {
        /// Part numbers.
        part: Vec<u32>,
        /// Origin octet.
        origin: Option<u32>,
    },
    /// `RFC822`
    Rfc822,
    /// `RFC822.HEADER`
    Rfc822Header,
    /// `RFC822.TEXT`
    Rfc822Text,
}

fn write_parts(out: &mut Vec<u8>, part: &[u32]) {
    for (i, p) in part.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        out.extend_from_slice(p.to_string().as_bytes());
    }
}

fn write_body_name(out: &mut Vec<u8>, name: &BodyName) {
    match name {
        BodyName::Section { section, origin } => {
            out.extend_from_slice(b"BODY[");
            write_parts(out, &section.part);
            if let Some(t) = &section.text {
                if !section.part.is_empty() {
                    out.push(b'.');
                }
                match t {
                    SectionText::Header => out.extend_from_slice(b"HEADER"),
                    SectionText::Text => out.extend_from_slice(b"TEXT"),
                    SectionText::Mime => out.extend_from_slice(b"MIME"),
                    SectionText::HeaderFields(f) | SectionText::HeaderFieldsNot(f) => {
                        out.extend_from_slice(if matches!(t, SectionText::HeaderFields(_)) {
                            b"HEADER.FIELDS ("
                        } else {
                            b"HEADER.FIELDS.NOT ("
                        });
                        for (i, name) in f.iter().enumerate() {
                            if i > 0 {
                                out.push(b' ');
                            }
                            write_astring(out, name.as_bytes(), WriteOptions::default());
                        }
                        out.push(b')');
                    }
                }
            }
            out.push(b']');
            if let Some(o) = origin {
                out.extend_from_slice(format!("<{o}>").as_bytes());
            }
        }
        BodyName::Binary { part, origin } => {
            out.extend_from_slice(b"BINARY[");
            write_parts(out, part);
            out.push(b']');
            if let Some(o) = origin {
                out.extend_from_slice(format!("<{o}>").as_bytes());
            }
        }
        BodyName::Rfc822 => out.extend_from_slice(b"RFC822"),
        BodyName::Rfc822Header => out.extend_from_slice(b"RFC822.HEADER"),
        BodyName::Rfc822Text => out.extend_from_slice(b"RFC822.TEXT"),
    }
}

/// A FETCH response item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchItem {
    /// `FLAGS (…)`
    Flags(Vec<Flag>),
    /// `UID n`
    Uid(u32),
    /// `INTERNALDATE "…"`
    InternalDate(DateTime),
    /// `RFC822.SIZE n`
    Rfc822Size(u64),
    /// `MODSEQ (n)`
    ModSeq(u64),
    /// `EMAILID (id)` (RFC 8474)
    EmailId(String),
    /// `PREVIEW "text"` (RFC 8970)
    Preview(String),
    /// `SAVEDATE "date-time"`, or NIL when unknown (RFC 8514)
    SaveDate(Option<DateTime>),
    /// `THREADID (id)`, or NIL where messages are not threaded (RFC 8474 §5.2)
    ThreadId(Option<String>),
    /// `ENVELOPE (…)`, already rendered by the store's metadata layer.
    Envelope(Vec<u8>),
    /// `BODYSTRUCTURE (…)`, already rendered.
    BodyStructure(Vec<u8>),
    /// `BODY (…)` (non-extensible structure), already rendered.
    Body(Vec<u8>),
    /// `BINARY.SIZE[part] n`
    BinarySize {
        /// Part numbers.
        part: Vec<u32>,
        /// Decoded size.
        size: u64,
    },
    /// Message data in memory (`BODY[…]`, `BINARY[…]`, `RFC822*`); `None` writes NIL.
    Data(BodyName, Option<Vec<u8>>),
}

/// The RFC 8474 MAILBOXID of a mailbox, from the number the session derives from the store's
/// never-reused mailbox id and its UIDVALIDITY (see `session::select::mailbox_id`).
pub fn mailbox_id(v: u64) -> String {
    format!("F{v:016x}")
}

/// Writes a `* n FETCH (…)` response item by item, so a body can be streamed in the middle:
///
/// ```
/// # use herald_imap::proto::response::*;
/// let mut out = Vec::new();
/// let mut w = FetchWriter::begin(&mut out, 3);
/// w.item(&mut out, &FetchItem::Uid(42), WriteOptions::default());
/// w.literal_header(&mut out, &BodyName::Rfc822, 5, false);
/// // send `out`, then copy the 5 body bytes to the socket, then clear `out` and go on:
/// out.extend_from_slice(b"hello");
/// w.end(&mut out);
/// assert_eq!(out, b"* 3 FETCH (UID 42 RFC822 {5}\r\nhello)\r\n");
/// ```
#[derive(Debug)]
pub struct FetchWriter {
    items: usize,
}

impl FetchWriter {
    /// Writes `* seq FETCH (`.
    pub fn begin(out: &mut Vec<u8>, seq: u32) -> FetchWriter {
        out.extend_from_slice(format!("* {seq} FETCH (").as_bytes());
        FetchWriter { items: 0 }
    }

    fn sep(&mut self, out: &mut Vec<u8>) {
        if self.items > 0 {
            out.push(b' ');
        }
        self.items += 1;
    }

    /// Writes one item.
    pub fn item(&mut self, out: &mut Vec<u8>, item: &FetchItem, opts: WriteOptions) {
        self.sep(out);
        match item {
            FetchItem::Flags(f) => {
                out.extend_from_slice(b"FLAGS ");
                write_flags(out, f);
            }
            FetchItem::Uid(u) => out.extend_from_slice(format!("UID {u}").as_bytes()),
            FetchItem::InternalDate(d) => {
                out.extend_from_slice(b"INTERNALDATE ");
                write_date_time(out, d);
            }
            FetchItem::Rfc822Size(n) => {
                out.extend_from_slice(format!("RFC822.SIZE {n}").as_bytes())
            }
            FetchItem::ModSeq(n) => out.extend_from_slice(format!("MODSEQ ({n})").as_bytes()),
            FetchItem::EmailId(id) => out.extend_from_slice(format!("EMAILID ({id})").as_bytes()),
            FetchItem::SaveDate(Some(d)) => {
                out.extend_from_slice(b"SAVEDATE ");
                write_date_time(out, d);
            }
            FetchItem::SaveDate(None) => out.extend_from_slice(b"SAVEDATE NIL"),
            FetchItem::Preview(text) => {
                out.extend_from_slice(b"PREVIEW ");
                write_string(out, text.as_bytes(), opts);
            }
            FetchItem::ThreadId(None) => out.extend_from_slice(b"THREADID NIL"),
            FetchItem::ThreadId(Some(id)) => {
                out.extend_from_slice(format!("THREADID ({id})").as_bytes())
            }
            FetchItem::Envelope(e) => {
                out.extend_from_slice(b"ENVELOPE ");
                out.extend_from_slice(e);
            }
            FetchItem::BodyStructure(b) => {
                out.extend_from_slice(b"BODYSTRUCTURE ");
                out.extend_from_slice(b);
            }
            FetchItem::Body(b) => {
                out.extend_from_slice(b"BODY ");
                out.extend_from_slice(b);
            }
            FetchItem::BinarySize { part, size } => {
                out.extend_from_slice(b"BINARY.SIZE[");
                write_parts(out, part);
                out.extend_from_slice(format!("] {size}").as_bytes());
            }
            FetchItem::Data(name, data) => {
                write_body_name(out, name);
                out.push(b' ');
                match data {
                    None => out.extend_from_slice(b"NIL"),
                    Some(d) if matches!(name, BodyName::Binary { .. }) && d.contains(&0) => {
                        out.push(b'~');
                        write_literal(out, d);
                    }
                    Some(d) => write_string(out, d, opts),
                }
            }
        }
    }

    /// Writes `NAME {n}` CRLF (or `~{n}` for a literal8 when `binary`); the caller must then
    /// send exactly `length` bytes before writing anything else for this response.
    pub fn literal_header(
        &mut self,
        out: &mut Vec<u8>,
        name: &BodyName,
        length: u64,
        binary: bool,
    ) {
        self.sep(out);
        write_body_name(out, name);
        out.push(b' ');
        if binary {
            out.push(b'~');
        }
        out.extend_from_slice(format!("{{{length}}}\r\n").as_bytes());
    }

    /// Writes `)` CRLF.
    pub fn end(self, out: &mut Vec<u8>) {
        out.extend_from_slice(b")\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn unsolicited_metadata_names_entries_without_values() {
        let o = WriteOptions::default();
        let data = |mailbox: &str, entries: &[&str]| Data::MetadataEntries {
            mailbox: Mailbox::new(mailbox),
            entries: entries.iter().map(|e| (*e).to_owned()).collect(),
        };
        assert_eq!(
            s(|out| write_data(out, &data("INBOX", &["/private/comment", "/shared/x"]), o)),
            "* METADATA INBOX /private/comment /shared/x\r\n"
        );
        assert_eq!(
            s(|out| write_data(out, &data("", &["/shared/motd"]), o)),
            "* METADATA \"\" /shared/motd\r\n"
        );
        assert_eq!(
            s(|out| write_data(out, &data("Ünï cödé", &["/shared/a b"]), o)),
            "* METADATA \"&ANw-n&AO8- c&APY-d&AOk-\" \"/shared/a b\"\r\n"
        );
    }

    #[test]
    fn acl_responses() {
        let o = WriteOptions::default();
        let acl = Data::Acl {
            mailbox: Mailbox::new("user/bob/Team Box"),
            entries: vec![
                ("bob".into(), "lrswipkxtea".into()),
                ("anyone".into(), "".into()),
            ],
        };
        assert_eq!(
            s(|out| write_data(out, &acl, o)),
            "* ACL \"user/bob/Team Box\" bob lrswipkxtea anyone \"\"\r\n"
        );
        let lr = Data::ListRights {
            mailbox: Mailbox::new("INBOX"),
            identifier: "smith".into(),
            required: String::new(),
            optional: vec!["l".into(), "r".into()],
        };
        assert_eq!(
            s(|out| write_data(out, &lr, o)),
            "* LISTRIGHTS INBOX smith \"\" l r\r\n"
        );
        let my = Data::MyRights {
            mailbox: Mailbox::new("INBOX"),
            rights: "lr".into(),
        };
        assert_eq!(s(|out| write_data(out, &my, o)), "* MYRIGHTS INBOX lr\r\n");
    }

    #[test]
    fn strings() {
        let o = WriteOptions::default();
        assert_eq!(s(|b| write_astring(b, b"INBOX", o)), "INBOX");
        assert_eq!(s(|b| write_astring(b, b"nil", o)), "\"nil\"");
        assert_eq!(s(|b| write_astring(b, b"", o)), "\"\"");
        assert_eq!(s(|b| write_astring(b, b"a b\"c\\", o)), "\"a b\\\"c\\\\\"");
        assert_eq!(s(|b| write_string(b, b"a\r\nb", o)), "{4}\r\na\r\nb");
        assert_eq!(
            s(|b| write_string(b, "caf\u{e9}".as_bytes(), o)),
            "{5}\r\ncaf\u{e9}"
        );
        assert_eq!(
            s(|b| write_string(b, "caf\u{e9}".as_bytes(), WriteOptions { utf8: true })),
            "\"caf\u{e9}\""
        );
        assert_eq!(
            s(|b| write_string(b, b"\xff", WriteOptions { utf8: true })),
            "{1}\r\n\u{fffd}"
        );
        let m = Mailbox::new("\u{65e5}\u{672c}\u{8a9e} x");
        assert_eq!(s(|b| write_mailbox(b, &m, o)), "\"&ZeVnLIqe- x\"");
        assert_eq!(
            s(|b| write_mailbox(b, &m, WriteOptions { utf8: true })),
            "\"\u{65e5}\u{672c}\u{8a9e} x\""
        );
    }

    #[test]
    fn urlauth_data() {
        let o = WriteOptions::default();
        assert_eq!(
            s(|b| write_data(
                b,
                &Data::GenUrlAuth(vec![
                    "imap://a@h/I/;UID=1;URLAUTH=anonymous:INTERNAL:ab".into()
                ]),
                o
            )),
            "* GENURLAUTH \"imap://a@h/I/;UID=1;URLAUTH=anonymous:INTERNAL:ab\"\r\n"
        );
        let items = vec![
            UrlFetchData {
                url: "u1".into(),
                value: UrlFetchValue::Simple(Some(b"a\r\nb".to_vec())),
            },
            UrlFetchData {
                url: "u2".into(),
                value: UrlFetchValue::Simple(None),
            },
            UrlFetchData {
                url: "u3".into(),
                value: UrlFetchValue::Extended {
                    body_part_structure: Some(
                        b"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1)".to_vec(),
                    ),
                    body: None,
                    binary: Some(Some(b"x\0y".to_vec())),
                },
            },
        ];
        assert_eq!(
            s(|b| write_data(b, &Data::UrlFetch(items), o)),
            "* URLFETCH \"u1\" {4}\r\na\r\nb \"u2\" NIL \"u3\" \
             (BODYPARTSTRUCTURE (\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1)) \
             (BINARY ~{3}\r\nx\0y)\r\n"
        );
    }

    #[test]
    fn status_and_text() {
        let t = Tag::new("a1").unwrap();
        assert_eq!(
            s(|b| write_status(
                b,
                Some(&t),
                Status::Ok,
                Some(&Code::UidNext(5)),
                "done\r\nX",
                WriteOptions::default()
            )),
            "a1 OK [UIDNEXT 5] done  X\r\n"
        );
        assert_eq!(
            s(|b| write_status(b, None, Status::Bye, None, "[x", WriteOptions::default())),
            "* BYE (x\r\n"
        );
        assert_eq!(
            s(|b| error_response(
                b,
                Some(&t),
                &ProtoError::LiteralTooLarge { length: 9, max: 1 }
            )),
            "a1 NO [TOOBIG] literal of 9 bytes exceeds the limit of 1 bytes\r\n"
        );
    }

    #[test]
    fn date_time() {
        let d = chrono::DateTime::parse_from_rfc3339("1996-07-07T02:44:25-07:00").unwrap();
        assert_eq!(
            s(|b| write_date_time(b, &d)),
            "\" 7-Jul-1996 02:44:25 -0700\""
        );
    }
}
