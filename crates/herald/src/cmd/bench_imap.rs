//! `herald bench imap`: IMAP throughput and per-connection memory against the real server.
//!
//! It starts `herald serve` (this executable) as a child process on a fresh data directory with
//! IMAP on an ephemeral loopback port, so the memory figures are the server's alone, and then:
//! * APPENDs `count` messages of `size` bytes over 1 and 8 connections (LITERAL+, one command
//!   in flight per connection; each tagged OK means the message and its MessageAppend event are
//!   durable) and reports messages/s;
//! * FETCHes `1:1000 ENVELOPE` from a 1,000-message mailbox and reports messages/s;
//! * opens `idle` connections that LOGIN, SELECT INBOX and IDLE, reads the server's resident
//!   memory (`/proc/<pid>/status`) before and after, and reports the delta per connection; it
//!   then appends one message and checks that every IDLE connection is told `* n EXISTS`.
//!
//! Progress goes to standard error, results to standard output.

use super::bench_store::message;
use crate::cli::BenchImapArgs;
use anyhow::{Context as _, bail, ensure};
use herald_store::{SessionContext, Store, StoreConfig};
use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitCode, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

struct Client {
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
    line: String,
    tag: u64,
}

impl Client {
    async fn connect(addr: SocketAddr, user: &str) -> anyhow::Result<Client> {
        let tcp = TcpStream::connect(addr)
            .await
            .context("connect (is `ulimit -n` high enough?)")?;
        tcp.set_nodelay(true)?;
        let (r, w) = tcp.into_split();
        let mut c = Client {
            r: BufReader::with_capacity(4096, r),
            w,
            line: String::new(),
            tag: 0,
        };
        c.read_line().await?;
        c.cmd(&format!("LOGIN {user} bench")).await?;
        Ok(c)
    }

    async fn read_line(&mut self) -> anyhow::Result<&str> {
        self.line.clear();
        if self.r.read_line(&mut self.line).await? == 0 {
            bail!("the server closed the connection");
        }
        Ok(&self.line)
    }

    /// Sends a command (bytes after the tag) and reads to its tagged reply, which must be OK.
    /// Returns how many untagged lines came before it.
    async fn send_raw(&mut self, body: &[u8]) -> anyhow::Result<usize> {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        let mut out = Vec::with_capacity(body.len() + 16);
        out.extend_from_slice(tag.as_bytes());
        out.push(b' ');
        out.extend_from_slice(body);
        out.extend_from_slice(b"\r\n");
        self.w.write_all(&out).await?;
        let mut untagged = 0;
        let prefix = format!("{tag} ");
        loop {
            let line = self.read_line().await?;
            if let Some(rest) = line.strip_prefix(&prefix) {
                ensure!(rest.starts_with("OK"), "{tag} failed: {line:?}");
                return Ok(untagged);
            }
            untagged += 1;
        }
    }

    async fn cmd(&mut self, s: &str) -> anyhow::Result<usize> {
        self.send_raw(s.as_bytes()).await
    }
}

/// Resident memory of a process: (VmRSS, RssAnon) in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("reading /proc/<pid>/status (Linux only)")?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("RssAnon:")))
}

struct ServerProcess {
    child: Child,
    addr: SocketAddr,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(dir: &Path, fqdn: &str, max_connections: usize) -> anyhow::Result<ServerProcess> {
    let config = dir.join("herald.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nhostname = \"{fqdn}\"\n[store]\npath = \"{}\"\n\
             [imap]\nlisten = [\"127.0.0.1:0\"]\nmax_connections = {max_connections}\n\
             max_connections_per_ip = {max_connections}\n\
             [pop3]\nlisten = []\n[lmtp]\nlisten = []\n[events]\nlog = false\n",
            dir.join("data").display()
        ),
    )?;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["serve", "--config"])
        .arg(&config)
        .env("HERALD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start herald serve")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut addr = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line?;
        if let Some(a) = line.strip_prefix("listening: imap ") {
            addr = a.split_whitespace().next().and_then(|a| a.parse().ok());
            break;
        }
    }
    let Some(addr) = addr else {
        let _ = child.kill();
        bail!("herald serve did not report an IMAP listener");
    };
    Ok(ServerProcess { child, addr })
}

async fn append_run(
    addr: SocketAddr,
    conns: usize,
    count: u64,
    size: usize,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let per = count / conns as u64;
    let extra = count % conns as u64;
    for c in 0..conns {
        let n = per + u64::from((c as u64) < extra);
        set.spawn(async move {
            let user = format!("append{conns}x{c}");
            let mut client = Client::connect(addr, &user).await?;
            for i in 0..n {
                let body = message(i, &user, size);
                let mut cmd = format!("APPEND INBOX {{{}+}}\r\n", body.len()).into_bytes();
                cmd.extend_from_slice(&body);
                client.send_raw(&cmd).await?;
                if c == 0 && (i + 1) % 500 == 0 {
                    eprintln!(
                        "  {conns} connection(s): ~{} appended",
                        (i + 1) * conns as u64
                    );
                }
            }
            client.cmd("LOGOUT").await.ok();
            anyhow::Ok(())
        });
    }
    while let Some(r) = set.join_next().await {
        r.context("a client task failed")??;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// `herald bench imap --mix`: against `--port`, or a Herald started here.
async fn run_mix(fqdn: &str, args: &BenchImapArgs) -> anyhow::Result<ExitCode> {
    ensure!(args.users > 0, "--users must be positive");
    let users: Vec<String> = (0..args.users)
        .map(|u| args.user_format.replace("{u}", &u.to_string()))
        .collect();
    if let Some(port) = args.port {
        let addr = tokio::net::lookup_host((args.host.as_str(), port))
            .await?
            .next()
            .context("--host does not resolve")?;
        super::bench_imap_mix::run(args, addr, users, args.server_pid).await?;
        return Ok(ExitCode::SUCCESS);
    }
    ensure!(
        args.password == "bench",
        "the built-in server's accounts have the password `bench`"
    );
    let root = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("herald-bench-imap.{}", std::process::id())));
    if root.exists() {
        std::fs::remove_dir_all(&root)
            .with_context(|| format!("cannot clear {}", root.display()))?;
    }
    std::fs::create_dir_all(&root)?;
    let root = root.canonicalize()?;
    eprintln!("bench imap --mix: data in {}", root.display());
    super::bench_imap_mix::create_users(&root.join("data"), fqdn, &users).await?;
    let server = start_server(&root, fqdn, args.users * args.clients + 64)?;
    eprintln!("  server pid {} on {}", server.child.id(), server.addr);
    let result =
        super::bench_imap_mix::run(args, server.addr, users, Some(server.child.id())).await;
    drop(server);
    if !args.keep {
        std::fs::remove_dir_all(&root).ok();
    }
    result.map(|()| ExitCode::SUCCESS)
}

/// Runs `herald bench imap`.
pub async fn run(fqdn: &str, args: &BenchImapArgs) -> anyhow::Result<ExitCode> {
    if args.mix {
        return run_mix(fqdn, args).await;
    }
    ensure!(args.count > 0, "--count must be positive");
    ensure!(
        !args.connections.is_empty() && !args.connections.contains(&0),
        "--connections needs positive counts, e.g. 1,8"
    );
    let root = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("herald-bench-imap.{}", std::process::id())));
    if root.exists() {
        std::fs::remove_dir_all(&root)
            .with_context(|| format!("cannot clear {}", root.display()))?;
    }
    std::fs::create_dir_all(&root)?;
    let root = root.canonicalize()?;
    eprintln!("bench imap: data in {}", root.display());
    {
        let store = Store::open(StoreConfig::new(root.join("data")).with_fqdn(fqdn)).await?;
        let admin = SessionContext::admin_cli();
        let mut users = vec!["fetch".to_owned(), "idle".to_owned()];
        for &conns in &args.connections {
            users.extend((0..conns).map(|c| format!("append{conns}x{c}")));
        }
        for u in users {
            store.add_user(&admin, &u, "bench", false).await?;
        }
        store.close().await;
    }
    let server = start_server(&root, fqdn, args.idle + 64)?;
    let addr = server.addr;
    let pid = server.child.id();
    eprintln!("  server pid {pid} on {addr}");

    for &conns in &args.connections {
        eprintln!(
            "APPEND of {} × {} B over {conns} connection(s)",
            args.count, args.size
        );
        let rate = append_run(addr, conns, args.count, args.size).await?;
        println!(
            "imap append, {conns} connection(s): {} messages of {} B, {rate:.0} messages/s",
            args.count, args.size
        );
    }

    eprintln!("FETCH 1:1000 ENVELOPE: filling a 1,000-message mailbox");
    let mut c = Client::connect(addr, "fetch").await?;
    for i in 0..1000u64 {
        let body = message(i, "fetch", args.size);
        let mut cmd = format!("APPEND INBOX {{{}+}}\r\n", body.len()).into_bytes();
        cmd.extend_from_slice(&body);
        c.send_raw(&cmd).await?;
    }
    c.cmd("SELECT INBOX").await?;
    // The first round reads and splits every message; the later ones are answered from the
    // summaries the server keeps, as a client's second look at a mailbox is.
    let mut best = f64::MAX;
    let mut first = 0.0;
    for round in 0..3 {
        let t = Instant::now();
        let lines = c.cmd("FETCH 1:1000 ENVELOPE").await?;
        ensure!(lines >= 1000, "FETCH returned {lines} lines");
        let secs = t.elapsed().as_secs_f64();
        eprintln!("  round {}: {secs:.3} s", round + 1);
        if round == 0 {
            first = secs;
        }
        best = best.min(secs);
    }
    println!(
        "imap fetch 1:1000 ENVELOPE: first {first:.3} s = {:.0} messages/s",
        1000.0 / first
    );
    println!(
        "imap fetch 1:1000 ENVELOPE: best of 3 {best:.3} s = {:.0} messages/s",
        1000.0 / best
    );
    c.cmd("LOGOUT").await.ok();

    if args.idle > 0 {
        eprintln!(
            "{} IDLE connections: measuring the server's memory",
            args.idle
        );
        // Warm up: one full IDLE session first, so one-time allocations are not counted.
        let mut warm = Client::connect(addr, "idle").await?;
        warm.cmd("SELECT INBOX").await?;
        warm.cmd("LOGOUT").await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (before, anon_before) = rss_kib(pid)?;
        let mut idlers = Vec::with_capacity(args.idle);
        for i in 0..args.idle {
            let mut c = Client::connect(addr, "idle").await?;
            c.cmd("SELECT INBOX").await?;
            c.w.write_all(b"i IDLE\r\n").await?;
            let l = c.read_line().await?;
            ensure!(l.starts_with("+ "), "IDLE refused: {l:?}");
            idlers.push(c);
            if (i + 1) % 250 == 0 {
                eprintln!("  {} idling", i + 1);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (after, anon_after) = rss_kib(pid)?;
        let n = args.idle as f64;
        println!(
            "imap idle: {} connections, server VmRSS {before} -> {after} KiB = {:.1} KiB per connection (anonymous {anon_before} -> {anon_after} KiB = {:.1} KiB)",
            args.idle,
            after.saturating_sub(before) as f64 / n,
            anon_after.saturating_sub(anon_before) as f64 / n,
        );
        // One delivery wakes every IDLE session, without polling.
        let t = Instant::now();
        let mut w = Client::connect(addr, "idle").await?;
        w.send_raw(b"APPEND INBOX {22+}\r\nSubject: x\r\n\r\nwake up\r\n")
            .await?;
        for c in &mut idlers {
            let l = tokio::time::timeout(Duration::from_secs(30), c.read_line())
                .await
                .context("an IDLE connection was not woken")??;
            ensure!(l == "* 1 EXISTS\r\n", "unexpected IDLE update {l:?}");
        }
        println!(
            "imap idle: one APPEND woke all {} IDLE connections in {:.3} s",
            args.idle,
            t.elapsed().as_secs_f64()
        );
    }
    drop(server);
    if !args.keep {
        std::fs::remove_dir_all(&root).ok();
    }
    Ok(ExitCode::SUCCESS)
}
