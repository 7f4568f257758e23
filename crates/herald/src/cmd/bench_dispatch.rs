//! `herald bench dispatch`: how fast the dispatcher carries committed events to a sink, and how
//! long an event takes from its commit to a webhook receiver.
//!
//! Throughput: it fills a fresh store's outbox with `events` real events (concurrent APPENDs,
//! each a MessageAppend), then starts a subscription at the beginning of the outbox and times
//! until its durable cursor reaches the last event — so every event was read, decoded, filtered,
//! shaped, encoded, handed to the sink (written and fsynced, or acknowledged by JetStream) and
//! its cursor committed. With `--nats URL` the same runs against a NATS JetStream sink too.
//!
//! Webhook catch-up: a webhook subscription (one request per event, signed) whose receiver on
//! loopback was down while the events were committed; the time runs from the first request the
//! receiver reads once it is back until the durable cursor reaches the last event. The receiver
//! checks the order: the first time it sees an event, it has seen every earlier one (a batch
//! may come again after a failure, but never out of order). It runs twice: alone, and while 16
//! writers keep committing new mail, as on a server that fell behind — there the cursor commits
//! wait for the writer and the CPU is shared.
//!
//! Latency (`--latency`): a webhook subscription posts to a receiver on loopback while events
//! are committed at `rate` per second; for each event the time from its commit's acknowledgement
//! to the receiver reading the request is recorded, and p50/p99/max are reported.

use crate::cli::BenchDispatchArgs;
use anyhow::ensure;
use herald_notify::config::{SinkConfig, SubscriptionConfig};
use herald_notify::dispatch::Dispatcher;
use herald_store::{DeliveryRecord, SessionContext, Store, StoreConfig};
use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

async fn fill(store: &Store, events: u64) -> anyhow::Result<()> {
    let writers = 16u64;
    let admin = SessionContext::admin_cli();
    store.add_user(&admin, "bench", "bench", false).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let store = store.clone();
        let n = events / writers + u64::from(w < events % writers);
        tasks.spawn(async move {
            let ctx = SessionContext::user("imap", "bench");
            for i in 0..n {
                let body = super::bench_store::message(w * 1_000_000 + i, "bench", 2048);
                store.append(&ctx, "INBOX", body, &[], None).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(())
}

/// Stores `config` as a subscription created at run time, from the start of the outbox.
async fn register(store: &Store, config: &SubscriptionConfig) -> anyhow::Result<String> {
    store
        .put_delivery(DeliveryRecord {
            name: config.name.clone(),
            config: serde_json::to_string(config)?,
            origin: "api".into(),
            paused: false,
            disabled_reason: None,
            cursor: 0,
            stats: Default::default(),
        })
        .await?;
    Ok(config.name.clone())
}

/// Times one subscription from the start of the outbox to its last event.
async fn drain(store: &Store, config: SubscriptionConfig, last: u64) -> anyhow::Result<f64> {
    let name = register(store, &config).await?;
    let token = CancellationToken::new();
    let started = Instant::now();
    let dispatcher = Dispatcher::start(store.clone(), vec![], token.clone()).await?;
    loop {
        let status = dispatcher.get(&name).await?;
        if status.cursor >= last {
            break;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(600),
            "dispatch stalled at {}/{last}: {:?}",
            status.cursor,
            status.last_error
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    // Deleting waits for the worker, so it writes no cursor after the subscription is gone.
    dispatcher.delete(&name).await?;
    token.cancel();
    Ok(secs)
}

/// Runs `herald bench dispatch`.
pub async fn run(fqdn: &str, args: &BenchDispatchArgs) -> anyhow::Result<ExitCode> {
    ensure!(args.events > 0, "--events must be positive");
    if args.latency {
        return latency(fqdn, args).await;
    }
    let root = super::bench_store::fresh_dir(args.dir.as_deref(), "dispatch")?;
    let store = Store::open(StoreConfig::new(root.join("data")).with_fqdn(fqdn)).await?;
    eprintln!("bench dispatch: committing {} events …", args.events);
    let t = Instant::now();
    fill(&store, args.events).await?;
    let last = store.last_event_id().await?;
    eprintln!("  committed in {:.1} s", t.elapsed().as_secs_f64());

    let out = root.join("events.jsonl");
    let file = SubscriptionConfig::new(
        "bench-file",
        SinkConfig::File {
            path: out.display().to_string(),
            rotate_bytes: None,
        },
    );
    let secs = drain(&store, file, last).await?;
    let lines = std::fs::read_to_string(&out)?.lines().count() as u64;
    ensure!(
        lines == last,
        "the file holds {lines} events, the outbox {last}"
    );
    println!(
        "dispatch to file: {last} events in {secs:.2} s = {:.0} events/s (fsync per batch, cursor committed per batch)",
        last as f64 / secs
    );
    let (secs, requests) = catch_up(&store, last, false).await?;
    println!(
        "webhook catch-up: {last} events in {secs:.2} s = {:.0} events/s (one signed request per event, {requests} requests, receiver on loopback, in order)",
        last as f64 / secs
    );
    let (secs, requests) = catch_up(&store, last, true).await?;
    println!(
        "webhook catch-up while 16 writers commit: {last} events in {secs:.2} s = {:.0} events/s ({requests} requests, in order)",
        last as f64 / secs
    );
    if let Some(url) = &args.nats {
        let prefix = format!("herald.bench{}", std::process::id());
        let nats = SubscriptionConfig::new(
            "bench-nats",
            SinkConfig::Nats {
                url: url.clone(),
                subject: prefix.clone(),
            },
        );
        let result = drain(&store, nats, last).await;
        herald_notify::sink::nats::delete_stream(url, &prefix)
            .await
            .ok();
        let secs = result?;
        println!(
            "dispatch to NATS JetStream: {last} events in {secs:.2} s = {:.0} events/s (every publish acknowledged)",
            last as f64 / secs
        );
    }
    store.close().await;
    if !args.keep {
        std::fs::remove_dir_all(&root).ok();
    }
    Ok(ExitCode::SUCCESS)
}

/// Appends as 16 concurrent writers until `stop` is cancelled.
fn load(store: &Store, stop: &CancellationToken) {
    for w in 0..16u64 {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let ctx = SessionContext::user("imap", "bench");
            let mut i = 0;
            while !stop.is_cancelled() {
                let body = super::bench_store::message((w + 100) * 1_000_000 + i, "bench", 2048);
                if store.append(&ctx, "INBOX", body, &[], None).await.is_err() {
                    return;
                }
                i += 1;
            }
        });
    }
}

/// Times a webhook subscription catching up on the events up to `last`, committed while its
/// receiver was down (and, with `busy`, while writers keep committing more): seconds from the
/// receiver's first request to the cursor at `last`, and the number of requests it read.
async fn catch_up(store: &Store, last: u64, busy: bool) -> anyhow::Result<(f64, usize)> {
    // A port nothing listens on until the receiver comes back.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mut config = SubscriptionConfig::new(
        "bench-webhook",
        SinkConfig::Webhook {
            url: format!("http://{addr}/hook"),
            secret: Some(herald_notify::sign::generate_secret()),
            secret_next: None,
            batch: None,
            timeout_ms: None,
        },
    );
    // Short retries, so the worker notices the receiver soon; the time starts at its first
    // request anyway.
    config.retry.initial_ms = 10;
    config.retry.max_ms = 50;
    config.retry.park_after_secs = 0;
    let name = register(store, &config).await?;
    let token = CancellationToken::new();
    let dispatcher = Dispatcher::start(store.clone(), vec![], token.clone()).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while dispatcher.get(&name).await?.last_error.is_none() {
        ensure!(Instant::now() < deadline, "the webhook never failed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seen = Arc::new(Mutex::new(Seen::default()));
    let writers = CancellationToken::new();
    if busy {
        load(store, &writers);
    }
    let rx = tokio::spawn(receiver(
        tokio::net::TcpListener::bind(addr).await?,
        Arc::clone(&seen),
    ));
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        let status = dispatcher.get(&name).await?;
        if status.cursor >= last {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "catch-up stalled at {}/{last}: {:?}",
            status.cursor,
            status.last_error
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let done = Instant::now();
    writers.cancel();
    dispatcher.delete(&name).await?;
    token.cancel();
    rx.abort();
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner());
    let first = seen.first.ok_or_else(|| anyhow::anyhow!("no request"))?;
    let mut high = 0;
    for id in &seen.order {
        if *id > high {
            ensure!(
                *id == high + 1,
                "event {id} arrived before event {}",
                high + 1
            );
            high = *id;
        }
    }
    ensure!(
        high >= last,
        "the receiver saw events up to {high} of {last}"
    );
    Ok((done.duration_since(first).as_secs_f64(), seen.order.len()))
}

/// What the receiver saw.
#[derive(Default)]
struct Seen {
    /// When each `webhook-id` was last read.
    arrivals: HashMap<u64, Instant>,
    /// Every `webhook-id` in the order the requests were read, across connections.
    order: Vec<u64>,
    /// When the first request was read.
    first: Option<Instant>,
}

/// A minimal HTTP/1.1 receiver: records when and in which order each request's `webhook-id`
/// arrived, answers 200.
async fn receiver(listener: tokio::net::TcpListener, seen: Arc<Mutex<Seen>>) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    while let Ok((tcp, _)) = listener.accept().await {
        let seen = Arc::clone(&seen);
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let (r, mut w) = tcp.into_split();
            let mut r = BufReader::new(r);
            loop {
                let mut id = None;
                let mut length = 0usize;
                let mut line = String::new();
                loop {
                    line.clear();
                    match r.read_line(&mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    let l = line.trim_end();
                    if l.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = l.split_once(':') {
                        let v = v.trim();
                        if k.eq_ignore_ascii_case("webhook-id") {
                            id = v.parse::<u64>().ok();
                        } else if k.eq_ignore_ascii_case("content-length") {
                            length = v.parse().unwrap_or(0);
                        }
                    }
                }
                let now = Instant::now();
                if let Some(id) = id {
                    let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                    seen.first.get_or_insert(now);
                    seen.order.push(id);
                }
                let mut body = vec![0u8; length];
                if r.read_exact(&mut body).await.is_err() {
                    return;
                }
                if let Some(id) = id {
                    seen.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .arrivals
                        .insert(id, now);
                }
                if w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
    }
}

async fn latency(fqdn: &str, args: &BenchDispatchArgs) -> anyhow::Result<ExitCode> {
    let root = super::bench_store::fresh_dir(args.dir.as_deref(), "latency")?;
    let store = Store::open(StoreConfig::new(root.join("data")).with_fqdn(fqdn)).await?;
    store
        .add_user(&SessionContext::admin_cli(), "bench", "bench", false)
        .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let rx = tokio::spawn(receiver(listener, Arc::clone(&seen)));
    let token = CancellationToken::new();
    let hook = SubscriptionConfig::new(
        "latency",
        SinkConfig::Webhook {
            url,
            secret: Some(herald_notify::sign::generate_secret()),
            secret_next: None,
            batch: None,
            timeout_ms: None,
        },
    );
    let dispatcher = Dispatcher::start(store.clone(), vec![hook], token.clone()).await?;
    let rate = args.rate.max(1);
    let count = args.events.min(rate * 60);
    eprintln!("bench dispatch --latency: {count} events at {rate}/s to a webhook on loopback");
    let commits = Arc::new(Mutex::new(HashMap::new()));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        tick.tick().await;
        let (store, commits) = (store.clone(), Arc::clone(&commits));
        tasks.spawn(async move {
            let ctx = SessionContext::user("imap", "bench");
            let body = super::bench_store::message(i, "bench", 2048);
            let c = store.append(&ctx, "INBOX", body, &[], None).await?;
            let at = Instant::now();
            if let Some(id) = c.events.first().and_then(|e| e.herald_id()) {
                commits
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id, at);
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .arrivals
        .len()
        < count as usize
    {
        ensure!(
            Instant::now() < deadline,
            "the receiver got only some events"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Paused first: the worker has no batch in flight and writes nothing after the store
    // closes.
    dispatcher.pause("latency").await.ok();
    token.cancel();
    rx.abort();
    let commits = commits.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let arrivals = seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .arrivals
        .clone();
    let mut micros: Vec<u128> = commits
        .iter()
        .filter_map(|(id, at)| {
            arrivals
                .get(id)
                .map(|r| r.saturating_duration_since(*at).as_micros())
        })
        .collect();
    micros.sort_unstable();
    ensure!(!micros.is_empty(), "no latency samples");
    let pct =
        |p: f64| micros[((micros.len() as f64 * p) as usize).min(micros.len() - 1)] as f64 / 1000.0;
    println!(
        "commit → webhook at {rate} events/s: {} events, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        micros.len(),
        pct(0.50),
        pct(0.99),
        micros[micros.len() - 1] as f64 / 1000.0
    );
    store.close().await;
    if !args.keep {
        std::fs::remove_dir_all(&root).ok();
    }
    Ok(ExitCode::SUCCESS)
}
