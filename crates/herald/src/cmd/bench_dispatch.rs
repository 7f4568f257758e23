//! `herald bench dispatch`: how fast the dispatcher carries committed events to a sink.
//!
//! It fills a fresh store's outbox with `events` real events (concurrent APPENDs, each a
//! MessageAppend), then starts a subscription at the beginning of the outbox and times until
//! its durable cursor reaches the last event — so every event was read, decoded, filtered,
//! shaped, encoded, written, fsynced by the sink, and acknowledged in a store commit.

use crate::cli::BenchDispatchArgs;
use anyhow::{Context as _, ensure};
use herald_notify::config::{SinkConfig, SubscriptionConfig};
use herald_notify::dispatch::Dispatcher;
use herald_store::{DeliveryRecord, SessionContext, Store, StoreConfig};
use std::path::PathBuf;
use std::process::ExitCode;
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

/// Runs `herald bench dispatch`.
pub async fn run(fqdn: &str, args: &BenchDispatchArgs) -> anyhow::Result<ExitCode> {
    ensure!(args.events > 0, "--events must be positive");
    let root = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("herald-bench-dispatch.{}", std::process::id())));
    if root.exists() {
        std::fs::remove_dir_all(&root)
            .with_context(|| format!("cannot clear {}", root.display()))?;
    }
    let store = Store::open(StoreConfig::new(root.join("data")).with_fqdn(fqdn)).await?;
    eprintln!("bench dispatch: committing {} events …", args.events);
    let t = Instant::now();
    fill(&store, args.events).await?;
    let last = store.last_event_id().await?;
    eprintln!("  committed in {:.1} s", t.elapsed().as_secs_f64());

    let out = root.join("events.jsonl");
    let config = SubscriptionConfig {
        name: "bench".into(),
        events: vec![],
        users: vec![],
        mailboxes: vec![],
        params: vec![],
        ignore_flags: vec![],
        content: Default::default(),
        tags: vec![],
        format: Default::default(),
        sink: SinkConfig::File {
            path: out.display().to_string(),
            rotate_bytes: None,
        },
        retry: Default::default(),
    };
    store
        .put_delivery(DeliveryRecord {
            name: "bench".into(),
            config: serde_json::to_string(&config)?,
            origin: "api".into(),
            paused: false,
            disabled_reason: None,
            cursor: 0,
        })
        .await?;
    let token = CancellationToken::new();
    let started = Instant::now();
    let _dispatcher = Dispatcher::start(store.clone(), vec![], token.clone()).await?;
    loop {
        let cursor = store.deliveries().await?.first().map_or(0, |d| d.cursor);
        if cursor >= last {
            break;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(600),
            "dispatch stalled at {cursor}/{last}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    token.cancel();
    let lines = std::fs::read_to_string(&out)?.lines().count() as u64;
    ensure!(
        lines == last,
        "the file holds {lines} events, the outbox {last}"
    );
    println!(
        "dispatch to file: {last} events in {secs:.2} s = {:.0} events/s (fsync per batch, cursor committed per batch)",
        last as f64 / secs
    );
    store.close().await;
    if !args.keep {
        std::fs::remove_dir_all(&root).ok();
    }
    Ok(ExitCode::SUCCESS)
}
