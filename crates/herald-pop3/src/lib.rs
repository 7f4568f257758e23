//! `herald-pop3`: POP3 (RFC 1939 with CAPA and response codes from RFC 2449, SASL PLAIN from
//! RFC 5034, STLS from RFC 2595) for Herald.
//!
//! POP3 is small enough to write by hand (no maintained Rust server crate exists, STACK §4):
//! [`command`] parses lines, [`session`] is the protocol as a state machine without I/O, and
//! [`wire`] frames lines and dot-stuffs messages; [`server`] is the tokio driver that connects
//! them to the store.

pub mod command;
pub mod server;
pub mod session;
pub mod wire;

pub use server::{Pop3Server, Timeouts};
pub use session::{
    AuthFailure, Config, Maildrop, MaildropError, MessageInfo, Session, State, Step,
};

herald_metrics::command_table!(
    /// POP3 commands counted and timed per [`command::CommandKind`] (`herald_commands_total`,
    /// `herald_command_duration_seconds` with `protocol="pop3"`).
    pub static COMMANDS = ("pop3", command::CommandKind::NAMES)
);
