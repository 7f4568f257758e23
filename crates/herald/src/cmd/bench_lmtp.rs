//! `herald bench lmtp`: durable delivery throughput over LMTP, through the real protocol stack
//! (sockets, the LMTP session, trace headers, the store with fsynced commits).
//!
//! For each connection count C it opens a fresh store, starts an LMTP listener on loopback and
//! runs C clients, each on its own connection, delivering its share of `count` messages of
//! `size` bytes the way an MTA does: MAIL, RCPT and DATA pipelined in one write, then the
//! message. A delivery counts when its 250 reply arrived, which Herald sends only after the
//! message and its MessageNew event are on disk.

use super::bench_store::{fresh_dir, message};
use crate::cli::BenchLmtpArgs;
use anyhow::{Context as _, bail, ensure};
use herald_net::{CancellationToken, ListenerConfig};
use herald_store::{SessionContext, Store, StoreConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

async fn read_reply(
    r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    line: &mut String,
) -> anyhow::Result<String> {
    loop {
        line.clear();
        if r.read_line(line).await? == 0 {
            bail!("the server closed the connection");
        }
        if line.len() < 4 || line.as_bytes()[3] != b'-' {
            return Ok(line.clone());
        }
    }
}

async fn client(
    addr: SocketAddr,
    user: String,
    n: u64,
    size: usize,
    done: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let tcp = TcpStream::connect(addr).await?;
    // An MTA's client writes whole commands; without NODELAY, Nagle and delayed ACKs would add
    // 40 ms to every message and measure TCP, not Herald.
    tcp.set_nodelay(true)?;
    let (r, mut w) = tcp.into_split();
    let mut r = BufReader::new(r);
    let mut line = String::new();
    read_reply(&mut r, &mut line).await?;
    w.write_all(b"LHLO bench.example.net\r\n").await?;
    read_reply(&mut r, &mut line).await?;
    for i in 0..n {
        let body = message(i, &user, size);
        let envelope = format!(
            "MAIL FROM:<bench@example.net> SIZE={}\r\nRCPT TO:<{user}@example.org>\r\nDATA\r\n",
            body.len()
        );
        w.write_all(envelope.as_bytes()).await?;
        for expect in ["250", "250", "354"] {
            let reply = read_reply(&mut r, &mut line).await?;
            ensure!(
                reply.starts_with(expect),
                "expected {expect}, got {reply:?}"
            );
        }
        let mut data = body;
        data.extend_from_slice(b".\r\n");
        w.write_all(&data).await?;
        let reply = read_reply(&mut r, &mut line).await?;
        ensure!(reply.starts_with("250"), "delivery refused: {reply:?}");
        done.fetch_add(1, Ordering::Relaxed);
    }
    w.write_all(b"QUIT\r\n").await?;
    Ok(())
}

/// Runs `herald bench lmtp`.
pub async fn run(fqdn: &str, args: &BenchLmtpArgs) -> anyhow::Result<ExitCode> {
    ensure!(args.count > 0, "--count must be positive");
    if args.connections.is_empty() || args.connections.contains(&0) {
        bail!("--connections needs positive counts, e.g. 1,8");
    }
    let root = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("herald-bench-lmtp.{}", std::process::id())));
    eprintln!(
        "bench lmtp: {} deliveries of {} bytes per run, durable commits, in {}",
        args.count,
        args.size,
        root.display()
    );
    for &conns in &args.connections {
        let dir = fresh_dir(Some(&root.join(format!("connections-{conns}"))), "")?;
        let store = Store::open(StoreConfig::new(&dir).with_fqdn(fqdn)).await?;
        let admin = SessionContext::admin_cli();
        for c in 0..conns {
            store
                .add_user(&admin, &format!("bench{c}"), "bench", false)
                .await?;
        }
        // Creating the accounts committed events of their own (AccountCreate, the INBOX's
        // MailboxCreate): the check below counts from here.
        let before = store.last_event_id().await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = herald_lmtp::LmtpServer::new(
            store.clone(),
            herald_lmtp::Config {
                hostname: fqdn.to_owned(),
                max_message_size: 50 << 20,
                starttls_available: false,
            },
            None,
        );
        let token = CancellationToken::new();
        let serving = tokio::spawn(herald_net::serve(
            listener,
            ListenerConfig::new("lmtp", conns + 1),
            token.clone(),
            move |c| server.clone().handle(c),
        ));
        let done = Arc::new(AtomicU64::new(0));
        let progress = {
            let (done, count) = (Arc::clone(&done), args.count);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    eprintln!(
                        "  {conns} connections: {}/{count}",
                        done.load(Ordering::Relaxed)
                    );
                }
            })
        };
        let started = Instant::now();
        let mut clients = tokio::task::JoinSet::new();
        let per = args.count / conns as u64;
        let extra = args.count % conns as u64;
        for c in 0..conns {
            let n = per + u64::from((c as u64) < extra);
            clients.spawn(client(
                addr,
                format!("bench{c}"),
                n,
                args.size,
                Arc::clone(&done),
            ));
        }
        while let Some(r) = clients.join_next().await {
            r.context("a client task failed")??;
        }
        let secs = started.elapsed().as_secs_f64();
        progress.abort();
        token.cancel();
        let _ = serving.await;
        let events = store.last_event_id().await? - before;
        store.close().await;
        ensure!(
            events == args.count,
            "the deliveries committed {events} events for {} deliveries",
            args.count
        );
        println!(
            "lmtp, {conns} connection(s): {} deliveries in {secs:.2} s = {:.0} deliveries/s",
            args.count,
            args.count as f64 / secs
        );
        if !args.keep {
            std::fs::remove_dir_all(&dir).ok();
        }
    }
    if !args.keep {
        std::fs::remove_dir(&root).ok();
    }
    Ok(ExitCode::SUCCESS)
}
