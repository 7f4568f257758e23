//! The sans-I/O IMAP protocol core: bytes ⇄ types, no sockets, no store.
//!
//! Two input stages and one output stage, each in its own module:
//! * [`framer`] cuts the byte stream into commands under size limits and hands literal bytes to
//!   the caller incrementally (so an APPEND can stream to disk);
//! * [`command`] (grammar in `parse/`) turns one framed command into a typed [`command::Command`];
//! * [`response`] writes typed responses, choosing atom/quoted/literal encodings and letting the
//!   caller stream large FETCH bodies.
//!
//! The grammar is Herald's own rather than imap-codec's (STACK.md §2): imap-codec cannot stream
//! literals and rejects several IMAP4rev2 requirements (ESEARCH, LIST-EXTENDED/LIST-STATUS,
//! SEARCHRES, MULTIAPPEND, `CREATE (USE …)`). imap-codec remains a dev-dependency used to check
//! every response we write and to differential-test the parser.

pub mod command;
pub mod error;
pub mod framer;
pub mod mutf7;
mod parse;
pub mod response;
pub mod types;

pub use command::{
    Command, CommandBody, ParseOptions, Rejected, parse_command, parse_command_bytes,
};
pub use error::ProtoError;
pub use framer::{CommandBytes, Frame, Framer, Limits, LiteralAction, LiteralFound};
pub use parse::MAX_DEPTH;
pub use parse::append::MAX_APPEND_MESSAGES;
