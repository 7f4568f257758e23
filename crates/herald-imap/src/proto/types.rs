//! Value types shared by commands and responses: tags, flags, mailbox names, sequence sets,
//! literal payloads and dates.
//!
//! They are owned (no borrow of the input buffer) so that a parsed command can outlive the
//! framer's buffer and cross an `.await` in the session. Mailbox names are UTF-8 here; the
//! modified-UTF-7 form exists only on the wire ([`super::mutf7`]).

use std::fmt;
use std::num::NonZeroU32;

/// A command tag: 1*<ASTRING-CHAR except "+">.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag(pub(crate) String);

impl Tag {
    /// Checks and wraps a tag.
    pub fn new(s: &str) -> Option<Tag> {
        (!s.is_empty() && s.bytes().all(is_tag_char)).then(|| Tag(s.to_owned()))
    }
    /// The tag text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// ATOM-CHAR: any CHAR except atom-specials (`(){ %*"\]`, CTL, SP, 8-bit).
pub(crate) fn is_atom_char(b: u8) -> bool {
    matches!(b, 0x21..=0x7e) && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// ASTRING-CHAR: ATOM-CHAR or `]`.
pub(crate) fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// Tag characters: ASTRING-CHAR except `+`.
pub(crate) fn is_tag_char(b: u8) -> bool {
    is_astring_char(b) && b != b'+'
}

/// list-char: ATOM-CHAR, list-wildcards, resp-specials.
pub(crate) fn is_list_char(b: u8) -> bool {
    is_atom_char(b) || matches!(b, b'%' | b'*' | b']')
}

/// A message flag or keyword.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Flag {
    /// `\Answered`
    Answered,
    /// `\Flagged`
    Flagged,
    /// `\Deleted`
    Deleted,
    /// `\Seen`
    Seen,
    /// `\Draft`
    Draft,
    /// `\Recent` (IMAP4rev1 only; never stored by a client)
    Recent,
    /// Another system flag, `\Name`, kept without the backslash.
    Extension(String),
    /// A keyword (an atom, e.g. `$Forwarded`).
    Keyword(String),
}

impl Flag {
    /// Builds a flag from its wire spelling (`\Seen`, `$Junk`); system flags are case-insensitive.
    pub fn from_wire(s: &str) -> Flag {
        match s.strip_prefix('\\') {
            Some(sys) => match sys.to_ascii_lowercase().as_str() {
                "answered" => Flag::Answered,
                "flagged" => Flag::Flagged,
                "deleted" => Flag::Deleted,
                "seen" => Flag::Seen,
                "draft" => Flag::Draft,
                "recent" => Flag::Recent,
                _ => Flag::Extension(sys.to_owned()),
            },
            None => Flag::Keyword(s.to_owned()),
        }
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Flag::Answered => f.write_str("\\Answered"),
            Flag::Flagged => f.write_str("\\Flagged"),
            Flag::Deleted => f.write_str("\\Deleted"),
            Flag::Seen => f.write_str("\\Seen"),
            Flag::Draft => f.write_str("\\Draft"),
            Flag::Recent => f.write_str("\\Recent"),
            Flag::Extension(s) => write!(f, "\\{s}"),
            Flag::Keyword(s) => f.write_str(s),
        }
    }
}

/// A mailbox name, decoded to UTF-8. `INBOX` is normalised to upper case (it is
/// case-insensitive, RFC 3501 §5.1); other names are case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mailbox(pub(crate) String);

impl Mailbox {
    /// Wraps a UTF-8 name, normalising any case of `INBOX`.
    pub fn new(name: impl Into<String>) -> Mailbox {
        let name = name.into();
        if name.eq_ignore_ascii_case("INBOX") {
            Mailbox("INBOX".to_owned())
        } else {
            Mailbox(name)
        }
    }
    /// The UTF-8 name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Whether this is the INBOX.
    pub fn is_inbox(&self) -> bool {
        self.0 == "INBOX"
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One end of a sequence range: a number or `*` (the largest number in use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeqNum {
    /// A message sequence number or UID.
    Value(NonZeroU32),
    /// `*`
    Largest,
}

impl SeqNum {
    /// Resolves `*` against the largest number in use.
    pub fn resolve(self, largest: u32) -> u32 {
        match self {
            SeqNum::Value(v) => v.get(),
            SeqNum::Largest => largest,
        }
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeqNum::Value(v) => write!(f, "{v}"),
            SeqNum::Largest => f.write_str("*"),
        }
    }
}

/// `a` or `a:b` as written (`b` may be below `a`; the range is the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeqRange {
    /// First end as written.
    pub start: SeqNum,
    /// Second end as written (equal to `start` for a single number).
    pub end: SeqNum,
}

/// A sequence set as a client writes it: ranges that may use `*`, or `$` (the saved search
/// result, RFC 5182). Distinct from `herald_events::UidSet`, which is canonical and has no `*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SequenceSet {
    /// Comma-separated numbers and ranges.
    Ranges(Vec<SeqRange>),
    /// `$`: the result saved by `SEARCH RETURN (SAVE)`.
    Saved,
}

impl SequenceSet {
    /// Resolves `*` and yields inclusive `(low, high)` ranges, in the order written.
    pub fn resolve(&self, largest: u32) -> Option<Vec<(u32, u32)>> {
        match self {
            SequenceSet::Saved => None,
            SequenceSet::Ranges(r) => Some(
                r.iter()
                    .map(|r| {
                        let (a, b) = (r.start.resolve(largest), r.end.resolve(largest));
                        (a.min(b), a.max(b))
                    })
                    .collect(),
            ),
        }
    }
}

impl fmt::Display for SequenceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SequenceSet::Saved => f.write_str("$"),
            SequenceSet::Ranges(ranges) => {
                for (i, r) in ranges.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    if r.start == r.end {
                        write!(f, "{}", r.start)?;
                    } else {
                        write!(f, "{}:{}", r.start, r.end)?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// The bytes of a literal that carries message data (APPEND).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiteralData {
    /// The framer buffered the literal; here are its bytes.
    Inline(Vec<u8>),
    /// The caller asked the framer to stream this literal to a sink; the bytes are there.
    Streamed {
        /// 0-based index of the literal within the command, as counted by the framer.
        index: u32,
        /// Its length in bytes.
        length: u64,
    },
}

impl LiteralData {
    /// The length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            LiteralData::Inline(v) => v.len() as u64,
            LiteralData::Streamed { length, .. } => *length,
        }
    }
    /// Whether the literal is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An RFC 3501 `date-time` (`"17-Jul-1996 02:44:25 -0700"`).
pub type DateTime = chrono::DateTime<chrono::FixedOffset>;

/// An RFC 3501 `date` (`1-Feb-1994`), as used by SEARCH.
pub type Date = chrono::NaiveDate;

pub(crate) const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
