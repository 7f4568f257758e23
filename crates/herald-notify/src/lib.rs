//! `herald-notify`: what happens to an event between the outbox and a subscriber.
//!
//! - [`config`]: the `[[subscription]]` configuration (DESIGN §4).
//! - [`subscription`]: a compiled subscription — filter at generation (types and groups, user
//!   and mailbox globs, ignored flags) and shaping (content policy, parameter allow-list, tags).
//! - [`content_ref`]: signed, expiring links to messages whose content a subscription left out.
//! - [`format`]: RFC 5423 JSON or a CloudEvents 1.0 envelope.
//! - [`sign`]: Standard Webhooks signatures with key rotation.
//! - [`sink`]: the `Sink` trait and its implementations (file, stdout, …).
//! - [`glob`]: IMAP-style wildcard patterns.
//! - [`dispatch`]: the dispatcher — per-subscription cursors, retries, parking, runtime control.
//! - [`log`]: the server's own JSON-lines event log, resumable after a crash, rotated by size.
//! - [`retention`]: the background task that removes old, acknowledged events from the outbox.
//! - `jsonl`: cutting the torn last line a crash can leave in a JSON-lines file (log and file
//!   sink).
//!
//! Filtering and shaping are pure functions of the event and the configuration, so a replayed
//! event is delivered exactly as the first time; delivery reads the store's outbox.

pub mod config;
pub mod content_ref;
pub mod dispatch;
pub mod format;
pub mod glob;
mod jsonl;
pub mod log;
pub mod retention;
pub mod sign;
pub mod sink;
pub mod subscription;

pub use config::{
    ContentPart, ContentPolicy, Format, References, RetryPolicy, SinkConfig, SubscriptionConfig,
};
pub use subscription::{ConfigError, ContentDecision, Subscription};
