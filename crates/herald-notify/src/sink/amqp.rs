//! The `amqp` sink: AMQP 0-9-1 (RabbitMQ) through `lapin`, one persistent message per event on a
//! durable topic exchange.
//!
//! **Routing.** The exchange is declared `topic` and durable on connect (declaring an existing
//! exchange with the same kind is a no-op; a different kind is a configuration error the broker
//! reports, surfaced as `Retry` with its text). The routing key is the event type, so queues bind
//! with `MessageNew`, `Message*`-style patterns (`Message#`… in AMQP: `#`, `*.MessageCopy`, or
//! exact names). Messages are `delivery_mode = 2` (persistent), `message_id` = `vnd.herald.id`
//! (consumers deduplicate on it), `content_type = application/json`, `type` = the event type.
//!
//! **Ack point.** The channel is in publisher-confirm mode (`confirm.select`): RabbitMQ confirms a
//! persistent message routed to durable queues only once those queues have it on disk. Every
//! publish is `mandatory`, so a message no queue is bound for comes back (`basic.return`) before
//! its confirm instead of vanishing. The batch is published in order, then each confirm is
//! awaited; `Ok` only when every confirm is positive and nothing came back. A nack or a returned
//! message makes the batch `Retry`: an event nobody received is not delivered, and the dispatcher
//! parks it once it is old enough rather than dropping it here.
//!
//! **Failures.** Connecting, declaring and the confirms are bounded by the timeout. On any error
//! the connection is dropped and the next `send` opens a new one; lapin's channels do not survive
//! a connection loss, and a fresh channel also resets the confirm sequence.

use super::{BuildError, Outgoing, SendFuture, Sink, SinkError};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use std::time::Duration;
use tokio::time::{timeout, timeout_at};

/// Default bound on connecting, declaring and waiting for a batch's confirms.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

struct Open {
    // Kept so the connection lives as long as the channel.
    connection: Connection,
    channel: Channel,
}

/// Publishes events to a RabbitMQ topic exchange with publisher confirms.
pub struct AmqpSink {
    url: String,
    exchange: String,
    timeout: Duration,
    conn: Option<Open>,
}

impl std::fmt::Debug for AmqpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpSink")
            .field("exchange", &self.exchange)
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

impl AmqpSink {
    /// A sink for `amqp://user:password@host:port/vhost` publishing to `exchange`; connects on the
    /// first `send`.
    pub fn new(url: &str, exchange: &str) -> Result<AmqpSink, BuildError> {
        url.parse::<lapin::uri::AMQPUri>()
            .map_err(|e| BuildError::Invalid(format!("amqp sink: bad URL: {e}")))?;
        if exchange.is_empty() || exchange.starts_with("amq.") || exchange.len() > 255 {
            return Err(BuildError::Invalid(format!(
                "amqp sink: exchange `{exchange}` must be a non-empty name of at most 255 bytes, not in the reserved `amq.` namespace"
            )));
        }
        Ok(AmqpSink {
            url: url.to_owned(),
            exchange: exchange.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            conn: None,
        })
    }

    /// Changes the bound on every network wait.
    pub fn with_timeout(mut self, timeout: Duration) -> AmqpSink {
        self.timeout = timeout;
        self
    }

    fn retry(&self, what: &str, e: &dyn std::fmt::Display) -> SinkError {
        SinkError::Retry(format!("amqp exchange {}: {what}: {e}", self.exchange))
    }

    async fn connect(&self) -> Result<Open, SinkError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let connection = timeout_at(
            deadline,
            Connection::connect(&self.url, ConnectionProperties::default()),
        )
        .await
        .map_err(|e| self.retry("connect", &e))?
        .map_err(|e| self.retry("connect", &e))?;
        let channel = timeout_at(deadline, connection.create_channel())
            .await
            .map_err(|e| self.retry("open channel", &e))?
            .map_err(|e| self.retry("open channel", &e))?;
        timeout_at(
            deadline,
            channel.confirm_select(ConfirmSelectOptions::default()),
        )
        .await
        .map_err(|e| self.retry("confirm.select", &e))?
        .map_err(|e| self.retry("confirm.select", &e))?;
        timeout_at(
            deadline,
            channel.exchange_declare(
                self.exchange.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            ),
        )
        .await
        .map_err(|e| self.retry("exchange.declare", &e))?
        .map_err(|e| self.retry("exchange.declare", &e))?;
        Ok(Open {
            connection,
            channel,
        })
    }

    async fn publish(&self, channel: &Channel, batch: &[Outgoing]) -> Result<(), SinkError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut confirms = Vec::with_capacity(batch.len());
        for o in batch {
            let properties = BasicProperties::default()
                .with_delivery_mode(2)
                .with_message_id(o.id.to_string().into())
                .with_content_type("application/json".into())
                .with_type(o.event_type.as_str().into());
            let confirm = timeout_at(
                deadline,
                channel.basic_publish(
                    self.exchange.as_str().into(),
                    o.event_type.as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    &o.body,
                    properties,
                ),
            )
            .await
            .map_err(|e| self.retry(&format!("publish {}", o.id), &e))?
            .map_err(|e| self.retry(&format!("publish {}", o.id), &e))?;
            confirms.push((o, confirm));
        }
        for (o, confirm) in confirms {
            let confirmation = timeout_at(deadline, confirm)
                .await
                .map_err(|e| self.retry(&format!("confirm for {}", o.id), &e))?
                .map_err(|e| self.retry(&format!("confirm for {}", o.id), &e))?;
            match confirmation {
                Confirmation::Ack(None) => {}
                Confirmation::Ack(Some(returned)) => {
                    return Err(SinkError::Retry(format!(
                        "amqp exchange {}: event {} ({}) was returned: {} {} (no queue is bound for that routing key)",
                        self.exchange, o.id, o.event_type, returned.reply_code, returned.reply_text
                    )));
                }
                Confirmation::Nack(_) => {
                    return Err(SinkError::Retry(format!(
                        "amqp exchange {}: broker nacked event {}",
                        self.exchange, o.id
                    )));
                }
                Confirmation::NotRequested => {
                    return Err(SinkError::Retry(format!(
                        "amqp exchange {}: channel is not in confirm mode",
                        self.exchange
                    )));
                }
            }
        }
        Ok(())
    }
}

impl Sink for AmqpSink {
    fn send<'a>(&'a mut self, batch: &'a [Outgoing]) -> SendFuture<'a> {
        Box::pin(async move {
            let open = match self.conn.take() {
                Some(open) if open.channel.status().connected() => open,
                _ => self.connect().await?,
            };
            match self.publish(&open.channel, batch).await {
                Ok(()) => {
                    self.conn = Some(open);
                    Ok(())
                }
                Err(e) => {
                    tracing::warn!(exchange = %self.exchange, error = %e, "amqp sink: batch not confirmed; reconnecting on the next send");
                    // Closing politely is best-effort and bounded; the connection is dropped anyway.
                    let _ = timeout(
                        Duration::from_secs(1),
                        open.connection.close(200, "herald reconnects".into()),
                    )
                    .await;
                    Err(e)
                }
            }
        })
    }

    fn max_batch(&self) -> usize {
        256
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_is_checked() {
        assert!(AmqpSink::new("amqp://guest:guest@127.0.0.1:5672/%2f", "herald").is_ok());
        assert!(AmqpSink::new("amqp://guest:guest@127.0.0.1:5672/%2f", "amq.topic").is_err());
        assert!(AmqpSink::new("amqp://guest:guest@127.0.0.1:5672/%2f", "").is_err());
        assert!(AmqpSink::new("http://[", "x").is_err());
    }
}
