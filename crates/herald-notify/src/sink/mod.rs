//! Sinks: where a subscription's events go. One trait, one small module per kind.
//!
//! The dispatcher hands a sink a batch of [`Outgoing`] events — already filtered, shaped and
//! encoded in the subscription's format, in outbox order — and moves the subscription's cursor
//! past them only when `send` returns `Ok`: that is the at-least-once point (DESIGN §6). A sink
//! must therefore return `Ok` only once the receiver has the events (fsync for a file, a 2xx for
//! a webhook, a broker's publish acknowledgement), and may be given the same events again after
//! a failure or a crash; receivers deduplicate on `id` (`vnd.herald.id`). A sink that delivers
//! a batch event by event tells, after a failure, how many it delivered (`acknowledged`), and
//! the retry starts after them.
//!
//! The trait is object-safe (`send` returns a boxed future) so the dispatcher holds any sink as
//! `Box<dyn Sink>`; one allocation per batch is nothing next to a network round trip.

#[cfg(feature = "sink-amqp")]
pub mod amqp;
pub mod file;
#[cfg(feature = "sink-mqtt")]
pub mod mqtt;
#[cfg(feature = "sink-nats")]
pub mod nats;
#[cfg(feature = "sink-redis")]
pub mod redis;
pub mod webhook;
pub mod webpush;

use crate::config::SinkConfig;
use std::future::Future;
use std::pin::Pin;

/// One event ready for a sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// `vnd.herald.id`: unique and increasing; receivers deduplicate and resume on it.
    pub id: u64,
    /// The event type (`MessageNew`), for subjects, topics and routing keys.
    pub event_type: String,
    /// The user the event is about, for per-user topics.
    pub user: Option<String>,
    /// The encoded event (RFC 5423 JSON, CloudEvents, …), without a trailing newline.
    pub body: Vec<u8>,
}

/// Why a batch was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// Worth retrying later (network down, 5xx, broker busy): the dispatcher backs off.
    #[error("temporary: {0}")]
    Retry(String),
    /// The receiver asked to stop (a webhook's 410 Gone): the subscription is paused.
    #[error("receiver asked to stop: {0}")]
    Disable(String),
}

/// The future `Sink::send` returns.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + 'a>>;

/// A destination for events.
pub trait Sink: Send {
    /// Delivers `batch` (non-empty, ascending ids); `Ok` only once the receiver has it.
    fn send<'a>(&'a mut self, batch: &'a [Outgoing]) -> SendFuture<'a>;

    /// How many events the sink takes per call (the dispatcher never sends more). Asked before
    /// every batch, so it may change with what the sink has measured.
    fn max_batch(&self) -> usize {
        1000
    }

    /// After a failed `send`: how many events at the start of its batch the receiver had
    /// acknowledged before the failure. The dispatcher moves the cursor past them, so a retry
    /// starts at the first event not acknowledged. 0 (the default) when the sink cannot tell.
    fn acknowledged(&self) -> usize {
        0
    }
}

/// Why a sink could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The sink kind is not part of this build.
    #[error("sink type `{0}` is not available in this build")]
    NotAvailable(&'static str),
    /// The configuration is unusable (bad URL, unreadable path, bad secret…).
    #[error("{0}")]
    Invalid(String),
}

/// A sink URL as logs, errors and the API show it: without user info, query or fragment, which
/// may carry credentials (`amqp://user:password@host/vhost` shows as `amqp://host/vhost`).
pub(crate) fn redacted_url(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// A sink URL as logs, errors and the API show it: without user info, query or fragment, which
/// may carry credentials. One that does not parse shows as its scheme only (`nats://…`), since
/// where its credentials are cannot be told.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => redacted_url(&u),
        Err(_) => match url.split_once("://") {
            Some((scheme, _))
                if scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+') =>
            {
                format!("{scheme}://…")
            }
            _ => "…".to_owned(),
        },
    }
}

/// Builds the sink a subscription's configuration names. `store` is what a `webpush` sink reads
/// its users' push subscriptions from; without it such a sink cannot be built.
pub async fn build(
    config: &SinkConfig,
    store: Option<&herald_store::Store>,
) -> Result<Box<dyn Sink>, BuildError> {
    match config {
        SinkConfig::WebPush {
            vapid_key,
            subject,
            ttl_secs,
            timeout_ms,
        } => {
            let store = store.ok_or_else(|| {
                BuildError::Invalid("webpush sink: needs the server's store".into())
            })?;
            Ok(Box::new(webpush::WebPushSink::new(
                store.clone(),
                vapid_key,
                subject,
                *ttl_secs,
                timeout_ms.map(std::time::Duration::from_millis),
            )?))
        }
        SinkConfig::File { path, rotate_bytes } => {
            Ok(Box::new(file::FileSink::open(path.into(), *rotate_bytes)?))
        }
        SinkConfig::Stdout => Ok(Box::new(file::StdoutSink)),
        other => network(other),
    }
}

/// Checks a sink's configuration without touching anything outside Herald (no file opened, no
/// connection made): a URL that cannot parse, a malformed secret, an empty stream key. The
/// binary runs it on the configuration file before it opens the store, so such a mistake stops
/// `herald serve` at once instead of failing every delivery.
pub fn check(config: &SinkConfig) -> Result<(), BuildError> {
    match config {
        // Opening the file is the check; the dispatcher does it at start.
        SinkConfig::File { .. } | SinkConfig::Stdout => Ok(()),
        // The key file is read (or made) by the dispatcher at start.
        SinkConfig::WebPush { subject, .. } => webpush::check_subject(subject),
        other => network(other).map(drop),
    }
}

/// The sinks that reach a receiver over the network. Their constructors only parse and check;
/// they connect on the first `send`.
fn network(config: &SinkConfig) -> Result<Box<dyn Sink>, BuildError> {
    match config {
        SinkConfig::File { .. } | SinkConfig::Stdout | SinkConfig::WebPush { .. } => Err(
            BuildError::Invalid("a file, stdout or webpush sink is not built here".into()),
        ),
        SinkConfig::Webhook {
            url,
            secret,
            secret_next,
            batch,
            timeout_ms,
        } => {
            let secrets: Vec<&str> = secret
                .iter()
                .chain(secret_next)
                .map(String::as_str)
                .collect();
            Ok(Box::new(webhook::WebhookSink::new(
                url,
                &secrets,
                *batch,
                timeout_ms.map(std::time::Duration::from_millis),
            )?))
        }
        // Broker sinks connect on their first `send`, so a broker that is down at start-up
        // delays delivery (the dispatcher retries) instead of failing the configuration.
        #[cfg(feature = "sink-nats")]
        SinkConfig::Nats { url, subject } => Ok(Box::new(nats::NatsSink::new(url, subject)?)),
        #[cfg(not(feature = "sink-nats"))]
        SinkConfig::Nats { .. } => Err(BuildError::NotAvailable("nats")),
        #[cfg(feature = "sink-mqtt")]
        SinkConfig::Mqtt { url, topic } => Ok(Box::new(mqtt::MqttSink::new(url, topic)?)),
        #[cfg(not(feature = "sink-mqtt"))]
        SinkConfig::Mqtt { .. } => Err(BuildError::NotAvailable("mqtt")),
        #[cfg(feature = "sink-amqp")]
        SinkConfig::Amqp { url, exchange } => Ok(Box::new(amqp::AmqpSink::new(url, exchange)?)),
        #[cfg(not(feature = "sink-amqp"))]
        SinkConfig::Amqp { .. } => Err(BuildError::NotAvailable("amqp")),
        #[cfg(feature = "sink-redis")]
        SinkConfig::Redis {
            url,
            stream,
            maxlen,
        } => Ok(Box::new(redis::RedisSink::new(url, stream, *maxlen)?)),
        #[cfg(not(feature = "sink-redis"))]
        SinkConfig::Redis { .. } => Err(BuildError::NotAvailable("redis")),
    }
}
