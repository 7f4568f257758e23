//! The `mqtt` sink: MQTT 3.1.1, QoS 1, one publish per event, through `rumqttc` without TLS
//! (STACK §1, §6: its TLS features pull advisories; a plaintext loopback or LAN broker is the
//! supported shape).
//!
//! **Topic.** `<prefix>/<user>/<event type>` (`herald/events/alice/MessageNew`), so consumers
//! subscribe per user (`herald/events/alice/#`) or per type (`herald/events/+/MessageNew`). The
//! user segment is escaped so a name can never add levels or wildcards: `%` → `%25`, `/` → `%2F`,
//! `+` → `%2B`, `#` → `%23`, NUL → `%00`; an event with no user goes to the segment
//! [`NO_USER`] (`%none`), which no escaped name can equal (`%` is always followed by hex there).
//!
//! **Ack point.** A QoS 1 publish is the broker's once it answers with a PUBACK carrying the
//! publish's packet id. rumqttc assigns packet ids inside its event loop, so the sink matches
//! acks to publishes like this: a task owns the event loop (polling it also keeps the connection
//! alive between batches) and forwards two kinds of events, in the order the loop produced them:
//! `Outgoing::Publish(pkid)` — the loop wrote a publish, and requests leave the client's queue in
//! FIFO order, so the k-th of these after a batch starts is the batch's k-th event — and
//! `Incoming::PubAck(pkid)`. `send` queues the batch's publishes, then waits until it has seen
//! `batch.len()` outgoing publishes and a PUBACK for each of their packet ids; `Ok` only then.
//! Packet ids are reused only after their ack (rumqttc's in-flight window), and a batch that
//! fails tears the connection down, so no late ack from an earlier batch can be mistaken for one
//! of this batch.
//!
//! **Failures.** Connecting (until CONNACK) and waiting for a batch's acks are each bounded by the
//! timeout. On any error the event-loop task is stopped and the next `send` connects afresh with
//! a clean session: rumqttc's own reconnect would retransmit half a batch the dispatcher is
//! about to resend anyway, and a clean restart keeps the ack matching above trivially correct.

use super::{BuildError, Outgoing, SendFuture, Sink, SinkError};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use std::collections::HashSet;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Default bound on connecting and on waiting for a batch's acks.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The topic segment for an event without a user.
pub const NO_USER: &str = "%none";

/// Largest event the sink publishes (MQTT packet size limit given to rumqttc).
pub const MAX_PACKET: usize = 16 * 1024 * 1024;

/// Events per batch; also the client's request queue and the in-flight window, so queuing a
/// batch never waits for the event loop.
const BATCH: usize = 100;

/// What the event-loop task reports.
#[derive(Debug)]
enum LoopEvent {
    ConnAck,
    Published(u16),
    PubAck(u16),
    Failed(String),
}

struct Connection {
    client: AsyncClient,
    events: mpsc::UnboundedReceiver<LoopEvent>,
    task: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Publishes events to an MQTT broker at QoS 1.
pub struct MqttSink {
    host: String,
    port: u16,
    credentials: Option<(String, String)>,
    prefix: String,
    timeout: Duration,
    conn: Option<Connection>,
}

impl std::fmt::Debug for MqttSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSink")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("prefix", &self.prefix)
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

/// Escapes a user name into one topic level (see the module doc).
pub fn user_segment(user: Option<&str>) -> String {
    let Some(user) = user else {
        return NO_USER.to_owned();
    };
    let mut out = String::with_capacity(user.len());
    for c in user.chars() {
        match c {
            '%' => out.push_str("%25"),
            '/' => out.push_str("%2F"),
            '+' => out.push_str("%2B"),
            '#' => out.push_str("%23"),
            '\0' => out.push_str("%00"),
            c => out.push(c),
        }
    }
    out
}

/// Decodes `%XX` escapes of a URL's user-info (invalid escapes stay as they are).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The topic an event goes to.
pub fn topic(prefix: &str, user: Option<&str>, event_type: &str) -> String {
    format!("{prefix}/{}/{event_type}", user_segment(user))
}

impl MqttSink {
    /// A sink for `mqtt://[user[:password]@]host[:port]` publishing under `prefix`; connects on
    /// the first `send`.
    pub fn new(url: &str, prefix: &str) -> Result<MqttSink, BuildError> {
        let shown = super::redact_url(url);
        let invalid = |why: &str| BuildError::Invalid(format!("mqtt sink {shown}: {why}"));
        let parsed = url::Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
        match parsed.scheme() {
            "mqtt" | "tcp" => {}
            "mqtts" | "ssl" => {
                return Err(invalid(
                    "TLS is not supported by this sink (plaintext `mqtt://` only)",
                ));
            }
            other => return Err(invalid(&format!("unknown scheme `{other}`"))),
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| invalid("no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = parsed.port().unwrap_or(1883);
        let credentials = if parsed.username().is_empty() {
            None
        } else {
            Some((
                percent_decode(parsed.username()),
                percent_decode(parsed.password().unwrap_or("")),
            ))
        };
        if prefix.is_empty() || prefix.contains(['+', '#', '\0']) {
            return Err(invalid(&format!(
                "topic prefix `{prefix}` must be non-empty and contain no wildcards"
            )));
        }
        Ok(MqttSink {
            host,
            port,
            credentials,
            prefix: prefix.trim_end_matches('/').to_owned(),
            timeout: DEFAULT_TIMEOUT,
            conn: None,
        })
    }

    /// Changes the bound on every network wait.
    pub fn with_timeout(mut self, timeout: Duration) -> MqttSink {
        self.timeout = timeout;
        self
    }

    async fn connect(&self) -> Result<Connection, SinkError> {
        let client_id = format!(
            "herald-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        let mut options = MqttOptions::new(client_id, self.host.clone(), self.port);
        options
            .set_clean_session(true)
            .set_keep_alive(Duration::from_secs(30))
            .set_max_packet_size(MAX_PACKET, MAX_PACKET)
            .set_inflight(BATCH as u16);
        if let Some((user, password)) = &self.credentials {
            options.set_credentials(user.clone(), password.clone());
        }
        let (client, mut eventloop) = AsyncClient::new(options, BATCH);
        eventloop
            .network_options
            .set_connection_timeout(self.timeout.as_secs().max(1));
        let (tx, events) = mpsc::unbounded_channel();
        let task = tokio::spawn(drive(eventloop, tx));
        // Built before the CONNACK arrives so that dropping it on failure stops the task.
        let mut conn = Connection {
            client,
            events,
            task,
        };
        match tokio::time::timeout(self.timeout, conn.events.recv()).await {
            Ok(Some(LoopEvent::ConnAck)) => Ok(conn),
            Ok(Some(LoopEvent::Failed(e))) => Err(self.retry(&format!("connect: {e}"))),
            Ok(other) => Err(self.retry(&format!("connect: unexpected {other:?}"))),
            Err(_) => Err(self.retry("connect: timed out")),
        }
    }

    fn retry(&self, what: &str) -> SinkError {
        SinkError::Retry(format!("mqtt {}:{}: {what}", self.host, self.port))
    }

    async fn publish(&self, conn: &mut Connection, batch: &[Outgoing]) -> Result<(), SinkError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        for o in batch {
            let topic = topic(&self.prefix, o.user.as_deref(), &o.event_type);
            tokio::time::timeout_at(
                deadline,
                conn.client
                    .publish(topic, QoS::AtLeastOnce, false, o.body.clone()),
            )
            .await
            .map_err(|_| self.retry(&format!("queueing {} timed out", o.id)))?
            .map_err(|e| self.retry(&format!("queueing {}: {e}", o.id)))?;
        }
        // Match PUBACKs to the batch's publishes (module doc).
        let mut published = 0usize;
        let mut unacked: HashSet<u16> = HashSet::new();
        let mut early: HashSet<u16> = HashSet::new();
        while published < batch.len() || !unacked.is_empty() {
            let event = tokio::time::timeout_at(deadline, conn.events.recv())
                .await
                .map_err(|_| {
                    self.retry(&format!(
                        "{} of {} publishes acknowledged before the timeout",
                        published - unacked.len(),
                        batch.len()
                    ))
                })?;
            match event {
                Some(LoopEvent::Published(pkid)) => {
                    published += 1;
                    if !early.remove(&pkid) {
                        unacked.insert(pkid);
                    }
                }
                Some(LoopEvent::PubAck(pkid)) => {
                    if !unacked.remove(&pkid) {
                        // Cannot precede its publish on one ordered loop; kept for safety.
                        early.insert(pkid);
                    }
                }
                Some(LoopEvent::ConnAck) => {}
                Some(LoopEvent::Failed(e)) => return Err(self.retry(&e)),
                None => return Err(self.retry("event loop stopped")),
            }
        }
        Ok(())
    }
}

/// Polls the event loop until it fails, forwarding what `send` needs.
async fn drive(mut eventloop: EventLoop, tx: mpsc::UnboundedSender<LoopEvent>) {
    loop {
        let event = match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => LoopEvent::ConnAck,
            Ok(Event::Incoming(Packet::PubAck(ack))) => LoopEvent::PubAck(ack.pkid),
            Ok(Event::Outgoing(rumqttc::Outgoing::Publish(pkid))) => LoopEvent::Published(pkid),
            Ok(_) => continue,
            Err(e) => {
                // Stop here: rumqttc would reconnect on the next poll; the sink reconnects itself.
                let _ = tx.send(LoopEvent::Failed(e.to_string()));
                return;
            }
        };
        if tx.send(event).is_err() {
            return;
        }
    }
}

impl Sink for MqttSink {
    fn send<'a>(&'a mut self, batch: &'a [Outgoing]) -> SendFuture<'a> {
        Box::pin(async move {
            let mut conn = match self.conn.take() {
                Some(conn) => conn,
                None => self.connect().await?,
            };
            // Anything left over (a PUBACK cannot be, but a late CONNACK or a failure can) is
            // settled before the batch, so a dead connection is noticed now.
            while let Ok(event) = conn.events.try_recv() {
                if let LoopEvent::Failed(e) = event {
                    tracing::info!(host = %self.host, error = %e, "mqtt sink: connection lost while idle; reconnecting");
                    conn = self.connect().await?;
                    break;
                }
            }
            match self.publish(&mut conn, batch).await {
                Ok(()) => {
                    self.conn = Some(conn);
                    Ok(())
                }
                Err(e) => {
                    tracing::warn!(host = %self.host, error = %e, "mqtt sink: batch not acknowledged; reconnecting on the next send");
                    Err(e)
                }
            }
        })
    }

    fn max_batch(&self) -> usize {
        BATCH
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_cannot_gain_levels_or_wildcards() {
        assert_eq!(
            topic("herald/events", Some("alice"), "MessageNew"),
            "herald/events/alice/MessageNew"
        );
        assert_eq!(
            topic("p", Some("a/b+c#d%"), "Login"),
            "p/a%2Fb%2Bc%23d%25/Login"
        );
        assert_eq!(topic("p", None, "QuotaChange"), "p/%none/QuotaChange");
        assert_ne!(user_segment(Some("%none")), NO_USER);
    }

    #[test]
    fn urls() {
        let s = MqttSink::new("mqtt://u%40x:p%2Fw@127.0.0.1:1884", "herald/").unwrap();
        assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", 1884));
        assert_eq!(s.credentials, Some(("u@x".to_owned(), "p/w".to_owned())));
        assert_eq!(s.prefix, "herald");
        assert_eq!(MqttSink::new("mqtt://localhost", "h").unwrap().port, 1883);
        assert!(MqttSink::new("mqtts://localhost", "h").is_err());
        assert!(MqttSink::new("mqtt://localhost", "h/#").is_err());
    }
}
