//! End to end through the dispatcher: events committed in a real store travel the real outbox,
//! the dispatcher and the broker sinks to NATS JetStream and Redis Streams on loopback, and a
//! real consumer of each broker finds every event once, in outbox order, with its subject or
//! type. (The sinks alone are tested in `brokers.rs`.)
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use common::{service, unique};

use herald_notify::config::{SinkConfig, SubscriptionConfig};
use herald_notify::dispatch::Dispatcher;
use herald_store::{SessionContext, Store, StoreConfig};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A store, a subscription started at the beginning, and `n` committed events (mailbox
/// creations, subscriptions and deletions: three event types).
async fn run_dispatcher(
    dir: &std::path::Path,
    config: SubscriptionConfig,
    n: usize,
) -> (Store, CancellationToken) {
    let mut c = StoreConfig::new(dir);
    c.durable = false;
    // The account is created while its events are off, so every event in the outbox is one
    // the new subscription carries.
    c.event_groups = vec![herald_events::EventGroup::Message];
    let store = Store::open(c.clone()).await.unwrap();
    store
        .add_user(&SessionContext::admin_cli(), "alice", "pw", false)
        .await
        .unwrap();
    store.close().await;
    c.event_groups = Vec::new();
    let store = Store::open(c).await.unwrap();
    let token = CancellationToken::new();
    Dispatcher::start(store.clone(), vec![config], token.clone())
        .await
        .unwrap();
    let ctx = SessionContext::user("imap", "alice");
    for i in 0..n / 3 {
        let name = format!("box{i}");
        store.create_mailbox(&ctx, &name, None).await.unwrap();
        store.subscribe(&ctx, &name, true).await.unwrap();
        store.delete_mailbox(&ctx, &name).await.unwrap();
    }
    (store, token)
}

#[cfg(feature = "sink-nats")]
#[tokio::test]
async fn the_outbox_reaches_a_nats_consumer_once_and_in_order() {
    use async_nats::jetstream::{self, consumer::pull};
    use futures_util::StreamExt;
    const URL: &str = "nats://127.0.0.1:4222";
    if !service("NATS", "127.0.0.1:4222").await {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("nats");
    let sink = SinkConfig::Nats {
        url: URL.into(),
        subject: prefix.clone(),
    };
    let (store, token) =
        run_dispatcher(dir.path(), SubscriptionConfig::new("nats", sink), 300).await;
    let last = store.last_event_id().await.unwrap();
    let js = jetstream::new(async_nats::connect(URL).await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let stream_name = herald_notify::sink::nats::stream_name(&prefix);
    let mut stream = loop {
        if let Ok(s) = js.get_stream(&stream_name).await {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the sink never created its stream"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    while stream.info().await.unwrap().state.messages < last {
        assert!(
            Instant::now() < deadline,
            "not every event reached the stream"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let consumer = stream
        .create_consumer(pull::Config {
            filter_subject: format!("{prefix}.>"),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer
        .fetch()
        .max_messages(last as usize + 10)
        .expires(Duration::from_secs(2))
        .messages()
        .await
        .unwrap();
    let mut ids = Vec::new();
    while let Some(m) = messages.next().await {
        let m = m.unwrap();
        let event = herald_events::Event::from_slice(&m.payload).unwrap();
        assert_eq!(m.subject.as_str(), format!("{prefix}.{}", event.event));
        ids.push(event.herald_id().unwrap());
        m.ack().await.unwrap();
    }
    assert_eq!(ids, (1..=last).collect::<Vec<_>>());
    token.cancel();
    js.delete_stream(&stream_name).await.unwrap();
}

#[cfg(feature = "sink-redis")]
#[tokio::test]
async fn the_outbox_reaches_a_redis_stream_once_and_in_order() {
    use redis::AsyncCommands;
    use redis::streams::StreamRangeReply;
    const URL: &str = "redis://127.0.0.1:6379/";
    if !service("Redis", "127.0.0.1:6379").await {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = unique("redis");
    let sink = SinkConfig::Redis {
        url: URL.into(),
        stream: key.clone(),
        maxlen: Some(100_000),
    };
    let (store, token) =
        run_dispatcher(dir.path(), SubscriptionConfig::new("redis", sink), 300).await;
    let last = store.last_event_id().await.unwrap();
    let mut conn = redis::Client::open(URL)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let len: u64 = conn.xlen(&key).await.unwrap();
        if len >= last {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{len} of {last} events in the stream"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reply: StreamRangeReply = conn.xrange_all(&key).await.unwrap();
    let ids: Vec<u64> = reply
        .ids
        .iter()
        .map(|e| e.get::<u64>("id").unwrap())
        .collect();
    assert_eq!(ids, (1..=last).collect::<Vec<_>>());
    for e in &reply.ids {
        let data: Vec<u8> = e.get("data").unwrap();
        let event = herald_events::Event::from_slice(&data).unwrap();
        assert_eq!(e.get::<String>("event").unwrap(), event.event.to_string());
    }
    let _: () = conn.del(&key).await.unwrap();
    token.cancel();
}
