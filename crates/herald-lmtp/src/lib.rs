//! `herald-lmtp`: how mail arrives in Herald — LMTP (RFC 2033) with PIPELINING, SIZE,
//! 8BITMIME, ENHANCEDSTATUSCODES and STARTTLS.
//!
//! [`session`] is the protocol without I/O; [`server`] is the tokio driver that connects it to
//! the store.

pub mod server;
pub mod session;

pub use server::{DetailDelivery, LmtpServer, Options, Timeouts};
pub use session::{
    CommandKind, Config, Delivery, DeliveryError, Recipient, RecipientError, Session, Step,
    trace_headers,
};

herald_metrics::command_table!(
    /// LMTP commands counted per [`CommandKind`], RCPT and DATA timed too
    /// (`herald_commands_total`, `herald_command_duration_seconds` with `protocol="lmtp"`).
    pub static COMMANDS = ("lmtp", CommandKind::NAMES)
);
