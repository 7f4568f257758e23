//! Herald's IMAP server.
//!
//! * [`proto`]: the sans-I/O protocol core — bytes in, typed commands out; typed responses in,
//!   bytes out.
//! * [`session`]: the session state machine, which calls the store through a small trait and
//!   does no socket I/O (tests drive it with byte strings against an in-memory store).
//! * [`mime`]: ENVELOPE, BODYSTRUCTURE and body sections from raw message bytes.
//! * [`subject`] and [`thread`]: RFC 5256 base subjects, collation and threading, as pure
//!   functions over extracted data (SORT and THREAD use them).
//! * [`server`]: the thin tokio driver (socket, timers, IDLE wake-ups, STARTTLS).
//! * [`config`]: the service's settings.

pub mod config;
pub mod mime;
pub mod preview;
pub mod proto;
pub mod server;
pub mod session;
pub mod subject;
pub mod thread;

pub use config::{DEFAULT_COMMANDS_PER_SECOND, ImapConfig};
pub use server::ImapServer;
pub use session::summaries::{DEFAULT_SUMMARY_BYTES, Summaries};

herald_metrics::command_table!(
    /// IMAP commands counted and timed per [`proto::command::CommandKind`] (`herald_commands_total`,
    /// `herald_command_duration_seconds` with `protocol="imap"`).
    pub static COMMANDS = ("imap", proto::command::CommandKind::NAMES)
);
