//! The `nats` sink: NATS JetStream, one message per event, acknowledged by the stream.
//!
//! **Subject.** `<prefix>.<event type>` (`herald.events.MessageNew`), so consumers filter by
//! type with subject wildcards; vendor types keep their dots (`herald.events.vnd.cmu.MessageCopy`)
//! and still match `<prefix>.>`.
//!
//! **Ack point.** Core NATS publishes are fire-and-forget, so the sink publishes through
//! JetStream: `publish` returns once the message is written to the socket, and awaiting the
//! returned future waits for the stream's `PubAck`, which the server sends only after the message
//! is stored (and replicated, for replicated streams). The whole batch is published first
//! (pipelined, in order, on one connection, so the stream stores it in order) and then every ack
//! is awaited; `Ok` only when all of them arrived.
//!
//! **De-duplication.** Each message carries `Nats-Msg-Id` = `vnd.herald.id`. A batch redelivered
//! after a lost ack (the dispatcher is at-least-once) is dropped by the server within the
//! stream's duplicate window (two minutes by default) and acknowledged with `duplicate: true`, so
//! within that window the stream holds each event once.
//!
//! **The stream.** A stream must capture the subjects or JetStream refuses the publish (`no
//! responders`). On connect the sink looks for a stream that already captures `<prefix>.>`
//! (operators may create their own, with their own limits and replicas) and otherwise creates one
//! named after the prefix (`herald.events` → `HERALD_EVENTS`) with subjects `<prefix>.>`, file
//! storage and the server's default limits.
//!
//! **Failures.** Every network wait has a timeout. A failure or timeout returns
//! [`SinkError::Retry`] and drops the connection; the next `send` connects afresh, so a broken
//! client never lingers (async-nats would otherwise buffer publishes while it reconnects).

use super::{BuildError, Outgoing, SendFuture, Sink, SinkError};
use async_nats::HeaderMap;
use async_nats::jetstream::{self, Context, stream};
use std::time::Duration;
use tokio::time::timeout;

/// Default bound on connecting, creating the stream and waiting for a batch's acks.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Publishes events to a NATS JetStream stream.
pub struct NatsSink {
    url: String,
    /// The URL without credentials, for messages.
    shown: String,
    prefix: String,
    timeout: Duration,
    conn: Option<Context>,
}

impl std::fmt::Debug for NatsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsSink")
            .field("url", &self.shown)
            .field("prefix", &self.prefix)
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

/// The stream name Herald creates for a subject prefix: NATS stream names may not contain
/// `.`, `*`, `>`, `/`, `\` or whitespace.
pub fn stream_name(prefix: &str) -> String {
    prefix
        .chars()
        .map(|c| match c {
            '.' | '*' | '>' | '/' | '\\' => '_',
            c if c.is_whitespace() => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

/// Deletes the stream Herald created for `prefix` (benchmarks and tests clean up after
/// themselves on a shared server).
pub async fn delete_stream(url: &str, prefix: &str) -> Result<(), BuildError> {
    let shown = super::redact_url(url);
    let fail = |e: &dyn std::fmt::Display| BuildError::Invalid(format!("nats {shown}: {e}"));
    let client = timeout(DEFAULT_TIMEOUT, async_nats::connect(url))
        .await
        .map_err(|e| fail(&e))?
        .map_err(|e| fail(&e))?;
    let js = jetstream::new(client);
    timeout(DEFAULT_TIMEOUT, js.delete_stream(stream_name(prefix)))
        .await
        .map_err(|e| fail(&e))?
        .map_err(|e| fail(&e))?;
    Ok(())
}

/// The subject an event goes to.
pub fn subject(prefix: &str, event_type: &str) -> String {
    format!("{prefix}.{event_type}")
}

fn valid_prefix(prefix: &str) -> bool {
    !prefix.is_empty()
        && !prefix.starts_with('.')
        && !prefix.ends_with('.')
        && !prefix.contains("..")
        && !prefix
            .chars()
            .any(|c| c == '*' || c == '>' || c.is_whitespace())
}

impl NatsSink {
    /// A sink for `url` publishing under `prefix`; connects on the first `send`.
    pub fn new(url: &str, prefix: &str) -> Result<NatsSink, BuildError> {
        // Parsed now, as `connect` will parse it, so a URL that can never work stops the
        // configuration at start instead of failing every delivery attempt.
        url.parse::<async_nats::ServerAddr>().map_err(|e| {
            BuildError::Invalid(format!(
                "nats sink {}: bad URL: {e}",
                super::redact_url(url)
            ))
        })?;
        if !valid_prefix(prefix) {
            return Err(BuildError::Invalid(format!(
                "nats sink: subject prefix `{prefix}` must be dot-separated tokens without wildcards or spaces"
            )));
        }
        Ok(NatsSink {
            url: url.to_owned(),
            shown: super::redact_url(url),
            prefix: prefix.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            conn: None,
        })
    }

    /// Changes the bound on every network wait.
    pub fn with_timeout(mut self, timeout: Duration) -> NatsSink {
        self.timeout = timeout;
        self
    }

    async fn connect(&self) -> Result<Context, SinkError> {
        let retry = |what: &str, e: &dyn std::fmt::Display| {
            SinkError::Retry(format!("nats {}: {what}: {e}", self.shown))
        };
        let options = async_nats::ConnectOptions::new()
            .connection_timeout(self.timeout)
            .request_timeout(Some(self.timeout));
        let client = timeout(self.timeout, options.connect(self.url.as_str()))
            .await
            .map_err(|e| retry("connect", &e))?
            .map_err(|e| retry("connect", &e))?;
        let mut js = jetstream::new(client);
        js.set_timeout(self.timeout);
        let wildcard = format!("{}.>", self.prefix);
        match timeout(self.timeout, js.stream_by_subject(wildcard.clone())).await {
            Ok(Ok(name)) => {
                tracing::debug!(stream = %name, subjects = %wildcard, "nats sink: using existing stream");
            }
            _ => {
                let name = stream_name(&self.prefix);
                let config = stream::Config {
                    name: name.clone(),
                    subjects: vec![wildcard.clone()],
                    ..Default::default()
                };
                timeout(self.timeout, js.get_or_create_stream(config))
                    .await
                    .map_err(|e| retry("create stream", &e))?
                    .map_err(|e| retry(&format!("create stream {name}"), &e))?;
                tracing::info!(stream = %name, subjects = %wildcard, "nats sink: stream ready");
            }
        }
        Ok(js)
    }

    async fn publish(&self, js: &Context, batch: &[Outgoing]) -> Result<(), SinkError> {
        let retry =
            |what: &str, e: &dyn std::fmt::Display| SinkError::Retry(format!("nats {what}: {e}"));
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut acks = Vec::with_capacity(batch.len());
        for o in batch {
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", o.id.to_string().as_str());
            let subject = subject(&self.prefix, &o.event_type);
            let ack = tokio::time::timeout_at(
                deadline,
                js.publish_with_headers(subject, headers, o.body.clone().into()),
            )
            .await
            .map_err(|e| retry(&format!("publish {}", o.id), &e))?
            .map_err(|e| retry(&format!("publish {}", o.id), &e))?;
            acks.push((o.id, ack));
        }
        for (id, ack) in acks {
            let ack = tokio::time::timeout_at(deadline, ack)
                .await
                .map_err(|e| retry(&format!("ack for {id}"), &e))?
                .map_err(|e| retry(&format!("ack for {id}"), &e))?;
            if ack.duplicate {
                tracing::debug!(id, stream = %ack.stream, "nats sink: duplicate dropped by the stream");
            }
        }
        Ok(())
    }
}

impl Sink for NatsSink {
    fn send<'a>(&'a mut self, batch: &'a [Outgoing]) -> SendFuture<'a> {
        Box::pin(async move {
            let js = match self.conn.take() {
                Some(js) => js,
                None => self.connect().await?,
            };
            match self.publish(&js, batch).await {
                Ok(()) => {
                    self.conn = Some(js);
                    Ok(())
                }
                Err(e) => {
                    tracing::warn!(url = %self.shown, error = %e, "nats sink: batch not acknowledged; reconnecting on the next send");
                    Err(e)
                }
            }
        })
    }

    fn max_batch(&self) -> usize {
        // Bounded so a batch's acks arrive well within the timeout.
        256
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(stream_name("herald.events"), "HERALD_EVENTS");
        assert_eq!(
            subject("herald.events", "MessageNew"),
            "herald.events.MessageNew"
        );
        assert!(NatsSink::new("nats://127.0.0.1:4222", "a.>").is_err());
        assert!(NatsSink::new("nats://127.0.0.1:4222", "a..b").is_err());
        assert!(NatsSink::new("nats://127.0.0.1:4222", "").is_err());
        assert!(NatsSink::new("nats://127.0.0.1:4222", "herald.events").is_ok());
    }

    #[test]
    fn a_url_that_cannot_parse_is_refused_at_build() {
        for url in [
            "nats://[::1",
            "not a url",
            "http://127.0.0.1:4222",
            "nats://h:99999",
        ] {
            let err = NatsSink::new(url, "herald").unwrap_err().to_string();
            assert!(err.contains("bad URL"), "{url}: {err}");
        }
        // A password in a URL that does not parse is not shown.
        let err = NatsSink::new("nats://u:s3cret@[::1", "herald")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cret"), "{err}");
        for url in ["nats://u:p@127.0.0.1:4222", "127.0.0.1", "tls://n1:4222"] {
            assert!(NatsSink::new(url, "herald").is_ok(), "{url}");
        }
    }
}
