//! The MQTT and AMQP sinks end to end: the real `herald serve` with a `[[subscription]]` whose
//! sink is the real Mosquitto (127.0.0.1:1883) or RabbitMQ (127.0.0.1:5672, guest/guest) of
//! the machine, a message delivered over LMTP, and a real subscriber of the broker that receives
//! the MessageNew event under the topic or routing key a consumer would bind to.
//!
//! Names are fresh per run (topic prefix, exchange, queue) and removed afterwards: the brokers
//! are shared by tests running in parallel. Outside CI a broker that is down skips its test with
//! a printed reason; with `CI=true` it fails (shared/SERVICES.md).
#![allow(clippy::unwrap_used)]

mod common;

use common::{Server, service, unique};
use herald_events::{Event, EventType};
use std::time::Duration;

/// Delivers one message to alice over LMTP.
fn deliver_to_alice(server: &Server) {
    let lmtp = server.port("lmtp").to_string();
    server.python(
        "lmtp_deliver.py",
        &[
            &lmtp,
            "bob@example.net",
            "alice@example.org",
            "--",
            "250",
            "--",
            "250",
        ],
    );
}

/// What every broker test checks of the event a subscriber received.
fn assert_message_new_for_alice(payload: &[u8]) -> Event {
    let event = Event::from_slice(payload).unwrap();
    assert_eq!(event.event, EventType::MessageNew);
    assert_eq!(event.user.as_deref(), Some("alice"));
    assert_eq!(event.service.as_deref(), Some("lmtp"));
    assert!(event.herald_id().is_some(), "vnd.herald.id is there");
    let uri = event.uri.as_ref().unwrap().to_string();
    assert!(uri.contains("/INBOX;UIDVALIDITY="), "{uri}");
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_lmtp_delivery_reaches_an_mqtt_subscriber() {
    use rumqttc::{AsyncClient, Event as MqttEvent, MqttOptions, Packet, QoS};
    if !service("Mosquitto", "127.0.0.1:1883") {
        return;
    }
    let prefix = format!("{}/mail", unique("mqtt"));
    // The subscriber is there first: MQTT keeps nothing for a topic nobody subscribes to.
    let mut options = MqttOptions::new(unique("mqtt-sub"), "127.0.0.1", 1883);
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    client
        .subscribe(format!("{prefix}/#"), QoS::AtLeastOnce)
        .await
        .unwrap();
    loop {
        let polled = tokio::time::timeout(Duration::from_secs(5), eventloop.poll()).await;
        if let MqttEvent::Incoming(Packet::SubAck(_)) = polled.unwrap().unwrap() {
            break;
        }
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        while let Ok(e) = eventloop.poll().await {
            if let MqttEvent::Incoming(Packet::Publish(p)) = e {
                let _ = tx.send((p.topic, p.payload.to_vec()));
            }
        }
    });

    let server = tokio::task::block_in_place(|| {
        let server = Server::start(&format!(
            r#"
[[subscription]]
name = "phones"
events = ["MessageNew"]
sink = {{ type = "mqtt", url = "mqtt://127.0.0.1:1883", topic = "{prefix}" }}
"#
        ));
        server.add_user("alice", "pw");
        deliver_to_alice(&server);
        server
    });

    let (topic, payload) = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("the MessageNew event reaches the MQTT subscriber")
        .unwrap();
    assert_eq!(topic, format!("{prefix}/alice/MessageNew"));
    assert_message_new_for_alice(&payload);
    // The subscription asks for MessageNew only, and the delivery made one.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), rx.recv())
            .await
            .is_err(),
        "one event, once"
    );
    reader.abort();
    tokio::task::block_in_place(|| drop(server));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_lmtp_delivery_reaches_an_amqp_queue() {
    use lapin::options::{
        BasicGetOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
        QueueDeclareOptions, QueueDeleteOptions,
    };
    use lapin::types::FieldTable;
    use lapin::{Connection, ConnectionProperties, ExchangeKind};
    const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
    if !service("RabbitMQ", "127.0.0.1:5672") {
        return;
    }
    let exchange = unique("amqp-x");
    let queue = unique("amqp-q");
    // A consumer's own set-up: the exchange as Herald declares it (durable topic), and a queue
    // bound to the one event type it wants.
    let conn = Connection::connect(URL, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel
        .exchange_declare(
            exchange.as_str().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
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
            "MessageNew".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();

    let server = tokio::task::block_in_place(|| {
        let server = Server::start(&format!(
            r#"
[[subscription]]
name = "bus"
events = ["MessageNew"]
sink = {{ type = "amqp", url = "{URL}", exchange = "{exchange}" }}
"#
        ));
        server.add_user("alice", "pw");
        deliver_to_alice(&server);
        server
    });

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let message = loop {
        if let Some(m) = channel
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            break m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the MessageNew event never reached the queue"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let delivery = &message.delivery;
    assert_eq!(delivery.routing_key.as_str(), "MessageNew");
    assert_eq!(delivery.exchange.as_str(), exchange);
    let event = assert_message_new_for_alice(&delivery.data);
    let id = event.herald_id().unwrap().to_string();
    assert_eq!(
        delivery
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.as_str()),
        Some(id.as_str()),
        "message_id is vnd.herald.id, for deduplication"
    );
    assert_eq!(*delivery.properties.delivery_mode(), Some(2), "persistent");

    tokio::task::block_in_place(|| drop(server));
    let left = channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    assert_eq!(left, 0, "one event, once");
    channel
        .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
        .await
        .unwrap();
}
