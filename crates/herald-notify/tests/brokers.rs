//! The broker sinks against the real services on loopback (shared/SERVICES.md): NATS JetStream
//! 4222, Mosquitto 1883, RabbitMQ 5672 (guest/guest), Redis 6379.
//!
//! Each test sends batches of real events (Herald's golden events, one per type, encoded as the
//! dispatcher would), reads them back with a real consumer of that broker, and checks that every
//! event arrived once per id and in order. Names are fresh per run (subject prefix, topic,
//! exchange and queue, stream key) and removed afterwards, since tests run in parallel and the
//! services are shared. Outside CI a test whose service is down says why and passes; with
//! `CI=true` it fails. Outage tests point a sink at a closed loopback port and require
//! `SinkError::Retry` within the sink's timeout; the shared services are never stopped.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use common::{service, unique};

use herald_events::Event;
use herald_notify::Format;
use herald_notify::format::encode;
use herald_notify::sink::{Outgoing, Sink, SinkError};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Herald's golden events, one of every type it emits, with ids `first..`.
fn events(first: u64) -> Vec<Outgoing> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../herald-events/tests/golden");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let mut event = Event::from_json(&std::fs::read_to_string(path).unwrap()).unwrap();
            let id = first + i as u64;
            event.set_herald_id(id);
            Outgoing {
                id,
                event_type: event.event.as_str().to_owned(),
                user: event.user.clone(),
                body: encode(&event, Format::Rfc5423),
            }
        })
        .collect()
}

/// Two batches, the second one sent twice (a redelivery after a lost ack).
fn batches() -> (Vec<Outgoing>, Vec<Outgoing>) {
    (events(1), events(101))
}

/// Checks what a consumer read: each id once, ascending, and the bodies as sent.
fn assert_once_in_order(sent: &[Outgoing], got: &[(u64, Vec<u8>)]) {
    let mut seen = HashSet::new();
    let ids: Vec<u64> = got
        .iter()
        .filter(|(id, _)| seen.insert(*id))
        .map(|(id, _)| *id)
        .collect();
    let want: Vec<u64> = sent.iter().map(|o| o.id).collect();
    assert_eq!(ids, want, "ids in arrival order (first arrivals)");
    for (id, body) in got {
        let o = sent.iter().find(|o| o.id == *id).unwrap();
        assert_eq!(body, &o.body, "body of {id}");
    }
}

async fn assert_retry_quickly(mut sink: Box<dyn Sink>, limit: Duration) {
    let started = Instant::now();
    let result = tokio::time::timeout(limit + Duration::from_secs(5), sink.send(&events(1)[..2]))
        .await
        .expect("the sink bounds its own waits");
    assert!(
        matches!(result, Err(SinkError::Retry(_))),
        "expected Retry, got {result:?}"
    );
    assert!(started.elapsed() <= limit + Duration::from_secs(1));
    // And again: the next send reconnects (and fails the same way) instead of hanging.
    let result = sink.send(&events(1)[..1]).await;
    assert!(matches!(result, Err(SinkError::Retry(_))), "{result:?}");
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[cfg(feature = "sink-nats")]
mod nats {
    use super::*;
    use async_nats::jetstream::{self, consumer::pull};
    use futures_util::StreamExt;
    use herald_notify::sink::nats::{NatsSink, stream_name};

    const URL: &str = "nats://127.0.0.1:4222";

    #[tokio::test]
    async fn delivers_each_event_once_in_order_with_acks() {
        if !service("NATS", "127.0.0.1:4222").await {
            return;
        }
        let prefix = unique("nats").replace('-', "_");
        let mut sink = NatsSink::new(URL, &prefix).unwrap();
        let (first, second) = batches();
        sink.send(&first).await.unwrap();
        sink.send(&second).await.unwrap();
        // A redelivery within the duplicate window is dropped by the stream (Nats-Msg-Id).
        sink.send(&second).await.unwrap();

        let client = async_nats::connect(URL).await.unwrap();
        let js = jetstream::new(client);
        let stream = js.get_stream(stream_name(&prefix)).await.unwrap();
        let consumer = stream
            .create_consumer(pull::Config {
                filter_subject: format!("{prefix}.>"),
                ..Default::default()
            })
            .await
            .unwrap();
        let want = first.len() + second.len();
        let mut messages = consumer
            .fetch()
            .max_messages(want + 10)
            .expires(Duration::from_secs(2))
            .messages()
            .await
            .unwrap();
        let mut got = Vec::new();
        let mut sent = first.clone();
        sent.extend(second.iter().cloned());
        while let Some(message) = messages.next().await {
            let message = message.unwrap();
            let id: u64 = message
                .headers
                .as_ref()
                .and_then(|h| h.get("Nats-Msg-Id"))
                .unwrap()
                .as_str()
                .parse()
                .unwrap();
            let o = sent.iter().find(|o| o.id == id).unwrap();
            assert_eq!(
                message.subject.as_str(),
                format!("{prefix}.{}", o.event_type)
            );
            got.push((id, message.payload.to_vec()));
            message.ack().await.unwrap();
        }
        assert_eq!(got.len(), want, "the duplicate batch was not stored again");
        assert_once_in_order(&sent, &got);
        js.delete_stream(stream_name(&prefix)).await.unwrap();
    }

    #[tokio::test]
    async fn a_closed_port_is_retry_within_the_timeout() {
        let url = format!("nats://127.0.0.1:{}", closed_port());
        let sink = NatsSink::new(&url, "herald.outage")
            .unwrap()
            .with_timeout(Duration::from_secs(2));
        assert_retry_quickly(Box::new(sink), Duration::from_secs(2)).await;
    }
}

#[cfg(feature = "sink-mqtt")]
mod mqtt {
    use super::*;
    use herald_notify::sink::mqtt::{MqttSink, topic};
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

    #[tokio::test]
    async fn delivers_each_event_once_in_order_with_pubacks() {
        if !service("Mosquitto", "127.0.0.1:1883").await {
            return;
        }
        let prefix = format!("{}/events", unique("mqtt"));
        // The consumer subscribes first: MQTT keeps nothing for absent subscribers.
        let mut options = MqttOptions::new(unique("mqtt-consumer"), "127.0.0.1", 1883);
        options.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut eventloop) = AsyncClient::new(options, 100);
        client
            .subscribe(format!("{prefix}/#"), QoS::AtLeastOnce)
            .await
            .unwrap();
        loop {
            match tokio::time::timeout(Duration::from_secs(5), eventloop.poll())
                .await
                .unwrap()
                .unwrap()
            {
                Event::Incoming(Packet::SubAck(_)) => break,
                _ => continue,
            }
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send((p.topic, p.payload.to_vec()));
                    }
                    Ok(_) => {}
                    Err(e) => panic!("consumer: {e}"),
                }
            }
        });

        let mut sink = MqttSink::new("mqtt://127.0.0.1:1883", &prefix).unwrap();
        let (first, second) = batches();
        sink.send(&first).await.unwrap();
        sink.send(&second).await.unwrap();
        let mut sent = first.clone();
        sent.extend(second.iter().cloned());

        let mut got = Vec::new();
        while got.len() < sent.len() {
            let (topic_name, payload) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .expect("every acknowledged event reaches the subscriber")
                .unwrap();
            let id = herald_id(&payload);
            let o = sent.iter().find(|o| o.id == id).unwrap();
            assert_eq!(topic_name, topic(&prefix, o.user.as_deref(), &o.event_type));
            got.push((id, payload));
        }
        assert_once_in_order(&sent, &got);
        // Nothing more (QoS 1 may duplicate only across reconnects, and there were none).
        assert!(
            tokio::time::timeout(Duration::from_millis(300), rx.recv())
                .await
                .is_err()
        );
        reader.abort();
    }

    fn herald_id(payload: &[u8]) -> u64 {
        herald_events::Event::from_slice(payload)
            .unwrap()
            .herald_id()
            .unwrap()
    }

    #[tokio::test]
    async fn a_closed_port_is_retry_within_the_timeout() {
        let url = format!("mqtt://127.0.0.1:{}", closed_port());
        let sink = MqttSink::new(&url, "herald/outage")
            .unwrap()
            .with_timeout(Duration::from_secs(2));
        assert_retry_quickly(Box::new(sink), Duration::from_secs(2)).await;
    }
}

#[cfg(feature = "sink-amqp")]
mod amqp {
    use super::*;
    use herald_notify::sink::amqp::AmqpSink;
    use lapin::options::{
        BasicGetOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
        QueueDeleteOptions,
    };
    use lapin::types::FieldTable;
    use lapin::{Connection, ConnectionProperties};

    const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

    #[tokio::test]
    async fn delivers_each_event_once_in_order_with_confirms() {
        if !service("RabbitMQ", "127.0.0.1:5672").await {
            return;
        }
        let exchange = unique("amqp-x");
        let queue = unique("amqp-q");
        let mut sink = AmqpSink::new(URL, &exchange).unwrap();
        let (first, second) = batches();
        // No queue is bound yet: a mandatory publish comes back, and that is not delivery.
        let unroutable = sink.send(&first[..1]).await;
        assert!(
            matches!(&unroutable, Err(SinkError::Retry(m)) if m.contains("NO_ROUTE")),
            "{unroutable:?}"
        );

        let conn = Connection::connect(URL, ConnectionProperties::default())
            .await
            .unwrap();
        let channel = conn.create_channel().await.unwrap();
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        channel
            .queue_bind(
                queue.as_str().into(),
                exchange.as_str().into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();

        sink.send(&first).await.unwrap();
        sink.send(&second).await.unwrap();
        let mut sent = first.clone();
        sent.extend(second.iter().cloned());

        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.len() < sent.len() && Instant::now() < deadline {
            match channel
                .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
                .await
                .unwrap()
            {
                Some(message) => {
                    let delivery = &message.delivery;
                    let id: u64 = delivery
                        .properties
                        .message_id()
                        .as_ref()
                        .unwrap()
                        .as_str()
                        .parse()
                        .unwrap();
                    let o = sent.iter().find(|o| o.id == id).unwrap();
                    assert_eq!(delivery.routing_key.as_str(), o.event_type);
                    assert_eq!(*delivery.properties.delivery_mode(), Some(2));
                    got.push((id, delivery.data.clone()));
                }
                None => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        assert_once_in_order(&sent, &got);
        let left = channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await
            .unwrap();
        assert_eq!(left, 0, "nothing beyond the batches");
        channel
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_closed_port_is_retry_within_the_timeout() {
        let url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", closed_port());
        let sink = AmqpSink::new(&url, "herald-outage")
            .unwrap()
            .with_timeout(Duration::from_secs(2));
        assert_retry_quickly(Box::new(sink), Duration::from_secs(2)).await;
    }
}

#[cfg(feature = "sink-redis")]
mod redis_streams {
    use super::*;
    use herald_notify::sink::redis::RedisSink;
    use redis::AsyncCommands;
    use redis::streams::StreamRangeReply;

    const URL: &str = "redis://127.0.0.1:6379/";

    #[tokio::test]
    async fn delivers_each_event_once_in_order_and_trims() {
        if !service("Redis", "127.0.0.1:6379").await {
            return;
        }
        let key = unique("redis");
        let mut sink = RedisSink::new(URL, &key, Some(10_000)).unwrap();
        let (first, second) = batches();
        sink.send(&first).await.unwrap();
        sink.send(&second).await.unwrap();
        let mut sent = first.clone();
        sent.extend(second.iter().cloned());

        let client = redis::Client::open(URL).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let reply: StreamRangeReply = conn.xrange_all(&key).await.unwrap();
        let mut got = Vec::new();
        for entry in &reply.ids {
            let id: u64 = entry.get("id").unwrap();
            let event: String = entry.get("event").unwrap();
            let data: Vec<u8> = entry.get("data").unwrap();
            let o = sent.iter().find(|o| o.id == id).unwrap();
            assert_eq!(event, o.event_type);
            got.push((id, data));
        }
        assert_eq!(got.len(), sent.len());
        assert_once_in_order(&sent, &got);
        let _: () = conn.del(&key).await.unwrap();
    }

    #[tokio::test]
    async fn a_closed_port_is_retry_within_the_timeout() {
        let url = format!("redis://127.0.0.1:{}/", closed_port());
        let sink = RedisSink::new(&url, "herald-outage", None)
            .unwrap()
            .with_timeout(Duration::from_secs(2));
        assert_retry_quickly(Box::new(sink), Duration::from_secs(2)).await;
    }
}
