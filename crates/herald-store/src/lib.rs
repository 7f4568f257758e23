//! `herald-store`: the only code that changes mail state.
//!
//! Every mutation is one transaction that returns the events it caused and persists them, in
//! the same commit, in a durable and totally ordered **outbox**: a committed change always has
//! its events, a rolled-back or crashed change has none (DESIGN §1, §6). The model follows
//! IMAP4rev1/rev2 (RFC 3501, RFC 9051) with CONDSTORE (RFC 7162) and SPECIAL-USE (RFC 6154);
//! the events follow RFC 5423 §4 (see `embedded::ops` for each rule) and the `herald-events`
//! model, and every one passes `Event::validate`.
//!
//! The crate reads top-down: the facade (`store`) over the contract ([`backend`]) over the
//! backends ([`embedded`], [`postgres`]) over the model (`model`, `error`, `context`); lower modules import
//! from their own modules, never back up through this root.
//!
//! Shape:
//! - [`Store`]: the async API the protocol servers and the CLI call. Mutations take a
//!   [`SessionContext`] and return [`Committed`] values carrying the events, with
//!   `vnd.herald.id` set, only once they are durable.
//! - [`backend::Backend`]: the narrow, batch-oriented contract a storage engine implements;
//!   [`embedded`] is the default (SQLite, group commit). [`postgres`] holds the PostgreSQL
//!   backend's foundation (pool, self-migrating schema, commit-ordered outbox); it becomes
//!   another variant of [`backend::AnyBackend`], without touching callers, once its operations
//!   exist.
//! - [`blobs`]: content-addressed message bodies, stored once, small ones inside the database.
//! - [`urlauth`]: mailbox access keys and the `INTERNAL` URLAUTH mechanism (RFC 4467).
//! - [`retention`]: which old events may leave the outbox ([`Store::prune_events`]) and the
//!   holds of in-process consumers that keep their cursor elsewhere.
//! - Notifications: [`Store::outbox_watch`] ("outbox advanced") and [`Store::mailbox_watch`]
//!   ("mailbox X changed") wake IDLE sessions and the dispatcher without polling; across
//!   processes [`Store::wait_for_events`] falls back to a short poll.

pub mod acl;
pub mod auth_cache;
pub mod backend;
pub mod blobs;
mod config;
mod context;
pub mod embedded;
mod error;
mod events;
pub mod flags;
mod model;
pub mod names;
mod notify;
pub mod password;
pub mod postgres;
mod recent;
pub mod retention;
mod snapshots;
mod sql;
mod store;
pub mod threading;
pub mod urlauth;

#[cfg(test)]
mod conformance;

pub use acl::{AclEntry, Rights, SharedMailbox};
pub use backend::{Backend, Op};
pub use config::{
    DEFAULT_AUTH_CACHE_SECS, DEFAULT_INLINE_BLOB_MAX, DEFAULT_TOMBSTONES_PER_MAILBOX,
    MetadataLimits, StoreConfig,
};
pub use context::{Identity, SessionContext};
pub use error::{MetadataRefusal, QuotaResource, Result, StoreError};
pub use events::PROCESS;
pub use flags::FlagMode;
pub use model::*;
pub use notify::CROSS_PROCESS_POLL;
pub use store::{ACCOUNT_RECHECK, RATE_LIMITED_EVENT_WINDOW, Store};
