//! Herald's IMAP server.
//!
//! For now this crate holds only [`proto`], the sans-I/O protocol core: bytes in, typed commands
//! out; typed responses in, bytes out. The session state machine that calls the store, and the
//! thin tokio glue around it, come later and will live beside it.

pub mod proto;
