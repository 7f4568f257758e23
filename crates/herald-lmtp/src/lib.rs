//! `herald-lmtp`: how mail arrives in Herald — LMTP (RFC 2033) with PIPELINING, SIZE,
//! 8BITMIME, ENHANCEDSTATUSCODES and STARTTLS.
//!
//! [`session`] is the protocol without I/O; the tokio driver that connects it to the store is in
//! the server wiring.

pub mod session;

pub use session::{
    Config, Delivery, DeliveryError, Recipient, RecipientError, Session, Step, trace_headers,
};
