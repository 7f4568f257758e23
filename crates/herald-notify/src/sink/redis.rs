//! The `redis` sink: one Redis Streams entry per event.
//!
//! **Entry.** `XADD <stream> [MAXLEN ~ <n>] * id <vnd.herald.id> event <type> data <body>`: the
//! stream assigns the entry id (`*`, time-ordered), and the event's own id travels as the `id`
//! field so consumers deduplicate on it (a redelivered batch appends the same events again — the
//! dispatcher is at-least-once, and Redis has no idempotent append). `MAXLEN ~` trims the stream
//! approximately (whole radix-tree nodes), which is what makes trimming cheap; without `maxlen`
//! the stream grows until a consumer or an operator trims it.
//!
//! **Ack point.** The batch is one pipeline of `XADD`s, sent in order on one connection (Redis
//! executes a connection's commands in order, so entries keep outbox order); `Ok` once every
//! reply is an entry id. Redis acknowledges a write once it is in memory (and in the AOF buffer
//! when persistence is on); durability beyond that is the Redis deployment's `appendfsync`
//! policy, not something a client can ask per command.
//!
//! **Failures.** `redis`'s `ConnectionManager` bounds connecting and every response with the
//! timeout; an error or timeout returns [`SinkError::Retry`] and drops the manager, so the next
//! `send` connects afresh. An error reply (wrong key type, OOM) is also `Retry`, with Redis's text.

use super::{BuildError, Outgoing, SendFuture, Sink, SinkError};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

/// Default bound on connecting and on a batch's replies.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Appends events to a Redis stream.
pub struct RedisSink {
    client: redis::Client,
    stream: String,
    maxlen: Option<u64>,
    timeout: Duration,
    conn: Option<ConnectionManager>,
}

impl std::fmt::Debug for RedisSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSink")
            .field("stream", &self.stream)
            .field("maxlen", &self.maxlen)
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

/// The pipeline a batch becomes (public so tests and tools can see the exact commands).
pub fn pipeline(stream: &str, maxlen: Option<u64>, batch: &[Outgoing]) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    for o in batch {
        let cmd = pipe.cmd("XADD").arg(stream);
        if let Some(n) = maxlen {
            cmd.arg("MAXLEN").arg("~").arg(n);
        }
        cmd.arg("*")
            .arg("id")
            .arg(o.id)
            .arg("event")
            .arg(&o.event_type)
            .arg("data")
            .arg(&o.body);
    }
    pipe
}

impl RedisSink {
    /// A sink for `redis://…` appending to `stream`; connects on the first `send`.
    pub fn new(url: &str, stream: &str, maxlen: Option<u64>) -> Result<RedisSink, BuildError> {
        let client = redis::Client::open(url)
            .map_err(|e| BuildError::Invalid(format!("redis sink: bad URL: {e}")))?;
        if stream.is_empty() {
            return Err(BuildError::Invalid(
                "redis sink: the stream key is empty".into(),
            ));
        }
        if maxlen == Some(0) {
            return Err(BuildError::Invalid(
                "redis sink: maxlen 0 would discard every event".into(),
            ));
        }
        Ok(RedisSink {
            client,
            stream: stream.to_owned(),
            maxlen,
            timeout: DEFAULT_TIMEOUT,
            conn: None,
        })
    }

    /// Changes the bound on every network wait.
    pub fn with_timeout(mut self, timeout: Duration) -> RedisSink {
        self.timeout = timeout;
        self
    }

    fn retry(&self, what: &str, e: &dyn std::fmt::Display) -> SinkError {
        SinkError::Retry(format!("redis stream {}: {what}: {e}", self.stream))
    }

    async fn connect(&self) -> Result<ConnectionManager, SinkError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(0);
        // The manager's own bounds apply inside; this one covers everything else.
        tokio::time::timeout(
            self.timeout,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await
        .map_err(|e| self.retry("connect", &e))?
        .map_err(|e| self.retry("connect", &e))
    }
}

impl Sink for RedisSink {
    fn send<'a>(&'a mut self, batch: &'a [Outgoing]) -> SendFuture<'a> {
        Box::pin(async move {
            let mut conn = match self.conn.take() {
                Some(conn) => conn,
                None => self.connect().await?,
            };
            let pipe = pipeline(&self.stream, self.maxlen, batch);
            let replies =
                tokio::time::timeout(self.timeout, pipe.query_async::<Vec<String>>(&mut conn))
                    .await;
            let result = match replies {
                Err(e) => Err(self.retry("XADD", &e)),
                Ok(Err(e)) => Err(self.retry("XADD", &e)),
                Ok(Ok(ids)) if ids.len() != batch.len() => Err(SinkError::Retry(format!(
                    "redis stream {}: {} replies for {} events",
                    self.stream,
                    ids.len(),
                    batch.len()
                ))),
                Ok(Ok(_)) => Ok(()),
            };
            match result {
                Ok(()) => {
                    self.conn = Some(conn);
                    Ok(())
                }
                Err(e) => {
                    tracing::warn!(stream = %self.stream, error = %e, "redis sink: batch not appended; reconnecting on the next send");
                    Err(e)
                }
            }
        })
    }

    fn max_batch(&self) -> usize {
        500
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_is_one_xadd_per_event() {
        let batch = [
            Outgoing {
                id: 7,
                event_type: "MessageNew".into(),
                user: Some("alice".into()),
                body: b"{}".to_vec(),
            },
            Outgoing {
                id: 8,
                event_type: "Login".into(),
                user: None,
                body: b"{\"a\":1}".to_vec(),
            },
        ];
        let packed =
            String::from_utf8(pipeline("s", Some(1000), &batch).get_packed_pipeline()).unwrap();
        assert_eq!(packed.matches("XADD").count(), 2);
        assert!(packed.contains(
            "$6\r\nMAXLEN\r\n$1\r\n~\r\n$4\r\n1000\r\n$1\r\n*\r\n$2\r\nid\r\n$1\r\n7\r\n"
        ));
        let unbounded =
            String::from_utf8(pipeline("s", None, &batch).get_packed_pipeline()).unwrap();
        assert!(!unbounded.contains("MAXLEN"));
        assert!(RedisSink::new("redis://127.0.0.1/", "s", Some(0)).is_err());
        assert!(RedisSink::new("nope://", "s", None).is_err());
    }
}
