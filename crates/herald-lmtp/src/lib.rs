//! `herald-lmtp`: how mail arrives in Herald — LMTP (RFC 2033) with PIPELINING, SIZE,
//! 8BITMIME, ENHANCEDSTATUSCODES and STARTTLS.
//!
//! [`session`] is the protocol without I/O; [`server`] is the tokio driver that connects it to
//! the store.

pub mod server;
pub mod session;

pub use server::{DetailDelivery, LmtpServer, Options, Timeouts};
pub use session::{
    Config, Delivery, DeliveryError, Recipient, RecipientError, Session, Step, trace_headers,
};
