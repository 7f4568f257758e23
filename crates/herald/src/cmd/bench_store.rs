//! `herald bench store`: durable delivery throughput of the embedded store, and of the
//! PostgreSQL one (`--backend postgres`).
//!
//! For each writer count W it opens a fresh store (commits fsynced: `synchronous=FULL`, so an
//! acknowledged delivery survives power loss), creates W recipients, and lets W concurrent
//! tasks deliver `count` distinct messages of `size` bytes (2 KiB by default) — each a full
//! delivery: content hashed and stored, message row, counters, quota check, MessageNew event
//! in the outbox. One writer pays one fsync per delivery; many writers share fsyncs through
//! the store's group commit, which is what the second figure shows. The stores live on the
//! disk being measured (the current directory by default), never on a tmpfs. A PostgreSQL run
//! works in a fresh schema of the database at `--url` (the same commits, durable as the
//! server's `synchronous_commit` makes them), dropped afterwards.

use crate::cli::{BenchBackend, BenchStoreArgs};
use anyhow::{Context as _, bail, ensure};
use herald_store::{Recipient, SessionContext, Store, StoreConfig};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A realistic message of exactly `size` bytes (at least the headers).
pub(crate) fn message(n: u64, user: &str, size: usize) -> Vec<u8> {
    let mut m = format!(
        "From: Sender {n} <sender{n}@example.net>\r\nTo: {user}@example.org\r\n\
         Subject: benchmark message {n}\r\nMessage-ID: <{n}.{}@bench.example.net>\r\n\
         Date: Mon, 23 Nov 2026 08:15:02 +0100\r\n\r\n",
        std::process::id()
    )
    .into_bytes();
    let line = b"The quick brown fox jumps over the lazy dog; pack my box with five dozen jugs.";
    while m.len() < size {
        let take = (size - m.len()).min(line.len() + 2);
        let mut l = line[..take.saturating_sub(2).min(line.len())].to_vec();
        l.extend_from_slice(&b"\r\n"[..take - l.len()]);
        m.extend_from_slice(&l);
    }
    m
}

/// The directory a benchmark works in: `dir`, or `./herald-bench-<name>.<pid>`, emptied first.
pub(crate) fn fresh_dir(dir: Option<&std::path::Path>, name: &str) -> anyhow::Result<PathBuf> {
    let root = dir
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(format!("herald-bench-{name}.{}", std::process::id())));
    if root.exists() {
        std::fs::remove_dir_all(&root)
            .with_context(|| format!("cannot clear {}", root.display()))?;
    }
    Ok(root)
}

/// Runs `herald bench store`.
pub async fn run(fqdn: &str, args: &BenchStoreArgs) -> anyhow::Result<ExitCode> {
    ensure!(args.count > 0, "--count must be positive");
    if args.writers.is_empty() || args.writers.contains(&0) {
        bail!("--writers needs positive counts, e.g. 1,16");
    }
    let root = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("herald-bench.{}", std::process::id())));
    eprintln!(
        "bench store: {} deliveries of {} bytes per run, durable commits (synchronous=FULL), in {}",
        args.count,
        args.size,
        root.display()
    );
    for &backend in &args.backend {
        for &writers in &args.writers {
            run_one(fqdn, args, &root, backend, writers).await?;
        }
    }
    if !args.keep {
        std::fs::remove_dir_all(&root)
            .with_context(|| format!("cannot remove {}", root.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One measurement: `writers` concurrent writers delivering `args.count` messages.
async fn run_one(
    fqdn: &str,
    args: &BenchStoreArgs,
    root: &std::path::Path,
    backend: BenchBackend,
    writers: usize,
) -> anyhow::Result<()> {
    {
        let dir = fresh_dir(Some(&root.join(format!("writers-{writers}"))), "")?;
        let mut config = StoreConfig::new(&dir).with_fqdn(fqdn);
        config.durable = true;
        let label = match backend {
            BenchBackend::Embedded => String::new(),
            BenchBackend::Postgres => {
                let mut pg = herald_store::postgres::PgConfig::new(args.url.clone());
                pg.schema = Some(format!("herald_bench_{}_{writers}", std::process::id()));
                pg.pool_size = (writers + 2).min(32);
                herald_store::postgres::drop_schema(&pg).await?;
                config.postgres = Some(pg);
                "postgres ".to_owned()
            }
        };
        let pg = config.postgres.clone();
        let store = Store::open(config).await?;
        let admin = SessionContext::admin_cli();
        for w in 0..writers {
            store
                .add_user(&admin, &format!("bench{w}"), "bench", false)
                .await?;
        }
        // Each account announced itself and its INBOX before the run.
        let setup_events = store.last_event_id().await?;
        let done = Arc::new(AtomicU64::new(0));
        let progress = {
            let (done, count) = (Arc::clone(&done), args.count);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    eprintln!(
                        "  {writers} writers: {}/{count}",
                        done.load(Ordering::Relaxed)
                    );
                }
            })
        };
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for w in 0..writers as u64 {
            let n = args.count / writers as u64 + u64::from(w < args.count % writers as u64);
            let (store, done, size) = (store.clone(), Arc::clone(&done), args.size);
            tasks.spawn(async move {
                let user = format!("bench{w}");
                let lmtp = SessionContext::service("lmtp");
                let rcpt = Recipient {
                    user: user.clone(),
                    mailbox: None,
                    envelope: format!(
                        "MAIL FROM:<sender@example.net>\r\nRCPT TO:<{user}@example.org>\r\n"
                    ),
                };
                for i in 0..n {
                    let body = message(w << 32 | i, &user, size);
                    store.deliver(&lmtp, &rcpt, body, None).await?;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                anyhow::Ok(())
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.context("a writer task failed")??;
        }
        let elapsed = start.elapsed();
        progress.abort();
        let events = store.last_event_id().await? - setup_events;
        ensure!(
            events == args.count,
            "expected {} events, the outbox has {events}",
            args.count
        );
        store.close().await;
        let rate = args.count as f64 / elapsed.as_secs_f64();
        println!(
            "{label}writers={writers}: {} deliveries in {:.2} s = {rate:.0} deliveries/s",
            args.count,
            elapsed.as_secs_f64()
        );
        if let Some(pg) = pg
            && !args.keep
        {
            herald_store::postgres::drop_schema(&pg).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_the_requested_size() {
        for size in [300, 2048, 2049, 5000] {
            assert_eq!(message(7, "bench0", size).len(), size);
        }
        // Smaller than the headers: the headers alone.
        assert!(message(7, "bench0", 10).ends_with(b"\r\n\r\n"));
        assert_ne!(message(1, "u", 2048), message(2, "u", 2048));
    }
}
