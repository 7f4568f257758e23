//! The crate's one error type.
//!
//! Every way a client's bytes can fail — in the framer or in a command parser — is a variant of
//! [`ProtoError`]. None of them is fatal to the connection: the framer has already resynchronised
//! on the next command when one is reported, and the session maps each to a tagged (or untagged)
//! `BAD`/`NO` with [`crate::proto::response::error_response`]. "Need more input" is not an error
//! anywhere in this module (it is [`crate::proto::framer::Frame::NeedMore`]).

/// What went wrong while framing or parsing client input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// A line (between literals) was longer than the configured maximum; it was skipped.
    #[error("line longer than {max} bytes")]
    LineTooLong {
        /// The configured maximum.
        max: usize,
    },
    /// A literal announced a length above the configured maximum.
    #[error("literal of {length} bytes exceeds the limit of {max} bytes")]
    LiteralTooLarge {
        /// The announced length.
        length: u64,
        /// The configured maximum.
        max: u64,
    },
    /// The command (lines plus buffered literals) grew above the configured maximum.
    #[error("command larger than {max} bytes")]
    CommandTooLarge {
        /// The configured maximum.
        max: usize,
    },
    /// A `{n}` literal announcement that is not well formed (digits, `+`, closing brace).
    #[error("malformed literal announcement")]
    BadLiteral,
    /// A line ended in LF without the CR the protocol requires.
    #[error("line ends in a bare LF, CRLF required")]
    BareLineFeed,
    /// A literal decision was made while no literal was pending.
    #[error("no literal is waiting for a decision")]
    NoLiteralPending,
    /// The command had no valid tag.
    #[error("missing or invalid tag")]
    BadTag,
    /// The command name is not one this server knows.
    #[error("unknown command {0}")]
    UnknownCommand(String),
    /// The arguments do not follow the grammar.
    #[error("syntax error at byte {at}: expected {expected}")]
    Syntax {
        /// Offset into the command bytes.
        at: usize,
        /// What the grammar wanted there.
        expected: &'static str,
    },
    /// A byte above 0x7F where only 7-bit characters are allowed (atoms, or mailbox names
    /// before `ENABLE UTF8=ACCEPT`), or invalid UTF-8 in a string.
    #[error("8-bit or invalid UTF-8 data at byte {at}")]
    EightBit {
        /// Offset into the command bytes.
        at: usize,
    },
    /// A mailbox name that is not valid modified UTF-7 (RFC 3501 §5.1.3).
    #[error("mailbox name is not valid modified UTF-7")]
    BadMailboxName,
    /// A number outside the range the grammar allows (zero where non-zero is required, or too large).
    #[error("number out of range at byte {at}")]
    NumberRange {
        /// Offset into the command bytes.
        at: usize,
    },
    /// A date or date-time that is not a real date in the RFC 3501 syntax.
    #[error("invalid date at byte {at}")]
    BadDate {
        /// Offset into the command bytes.
        at: usize,
    },
    /// A literal the caller chose to stream appeared where the parser needs the bytes.
    #[error("streamed literal where a value is required at byte {at}")]
    StreamedLiteral {
        /// Offset into the command bytes.
        at: usize,
    },
    /// A METADATA entry name outside RFC 5464 §3.2's rules.
    #[error("invalid metadata entry name at byte {at}: {reason}")]
    BadEntryName {
        /// Offset into the command bytes.
        at: usize,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// Nesting (search parentheses, `NOT`/`OR` chains) deeper than the parser allows.
    #[error("nesting deeper than {max}")]
    TooDeep {
        /// The maximum depth.
        max: usize,
    },
}
