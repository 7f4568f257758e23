//! `herald bench imap --mix`: many long-lived IMAP sessions doing what mail clients do, with
//! latency per command kind and the server's CPU time per command.
//!
//! `users × clients` sessions run at once (10 × 10 by default: ten clients per mailbox, as
//! phones, laptops and webmail share one account). Each loops over the commands clients send
//! most — LIST, STATUS, SELECT, UID FETCH of a random range with random items, UID FETCH
//! BODY.PEEK[], UID STORE ±\Seen, APPEND, UID STORE +\Deleted of the message it appended the
//! round before, EXPUNGE — so every mailbox keeps its size while each session sees the others'
//! changes. With `--reconnect` each round also connects, logs in and logs out (phones that
//! reconnect often).
//!
//! By default every session sends its next command as soon as the last is answered (a closed
//! loop): the figures are those of a saturated server, and by Little's law the mean latency is
//! then the number of sessions over the throughput, so a faster server shows each command
//! waiting behind more of the others. `--rate R` offers R commands per second in all instead,
//! each session starting its rounds on a fixed schedule (staggered, so they do not arrive
//! together): two servers then compare at the same load, below both their saturation points.
//! A round that starts late because the last one was slow is counted, and the schedule is not
//! caught up in a burst.
//!
//! The server's CPU time is read from `/proc/<pid>/stat` before and after: the process and all
//! its live descendants, plus what it collected from children that exited (a server that
//! forks per connection is measured whole). Without a pid (an outside server and no
//! `--server-pid`) only client-side figures are given.
//!
//! With `--port` the bench drives any IMAP server (accounts from `--user-format` with
//! `{u}` replaced by 0…users-1, all with `--password`); otherwise it starts `herald serve` on a
//! fresh data directory. Before the clock starts, each INBOX is filled to `--prefill`
//! messages. The last line is the contract other tools read:
//! `imap mix: N commands in S s = R commands/s, server CPU X ms per command`.

use super::bench_store::message;
use crate::cli::BenchImapArgs;
use anyhow::{Context as _, bail, ensure};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// The command kinds, in the order a round sends them.
const KINDS: [&str; 9] = [
    "LIST",
    "STATUS",
    "SELECT",
    "FETCH",
    "FETCH BODY[]",
    "STORE",
    "APPEND",
    "STORE \\Deleted",
    "EXPUNGE",
];

/// Items a random UID FETCH asks for (one set per command).
const ITEMS: [&str; 5] = [
    "(FLAGS)",
    "(UID FLAGS RFC822.SIZE INTERNALDATE)",
    "(ENVELOPE)",
    "(BODYSTRUCTURE FLAGS)",
    "(FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE)])",
];

/// A small xorshift generator: the bench needs spread, not quality, and no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u32) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % u64::from(n.max(1))) as u32
    }
}

/// A minimal IMAP client: sends a command, reads to its tagged reply (literals included).
struct Client {
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
    tag: u64,
    line: Vec<u8>,
    /// Untagged lines of the last command (without literal bytes).
    untagged: Vec<String>,
    /// Text after the tag of the last tagged reply.
    status: String,
}

impl Client {
    async fn connect(addr: SocketAddr, user: &str, password: &str) -> anyhow::Result<Client> {
        let tcp = TcpStream::connect(addr).await.context("connect")?;
        tcp.set_nodelay(true)?;
        let (r, w) = tcp.into_split();
        let mut c = Client {
            r: BufReader::with_capacity(64 * 1024, r),
            w,
            tag: 0,
            line: Vec::new(),
            untagged: Vec::new(),
            status: String::new(),
        };
        c.read_line().await?;
        c.cmd(format!("LOGIN {user} {password}").as_bytes())
            .await
            .with_context(|| format!("LOGIN {user}"))?;
        Ok(c)
    }

    async fn read_line(&mut self) -> anyhow::Result<()> {
        self.line.clear();
        if self.r.read_until(b'\n', &mut self.line).await? == 0 {
            bail!("the server closed the connection");
        }
        Ok(())
    }

    /// Sends `body` after a new tag; fails unless the tagged reply is OK.
    async fn cmd(&mut self, body: &[u8]) -> anyhow::Result<()> {
        self.tag += 1;
        let tag = format!("m{}", self.tag);
        let mut out = Vec::with_capacity(body.len() + 16);
        out.extend_from_slice(tag.as_bytes());
        out.push(b' ');
        out.extend_from_slice(body);
        out.extend_from_slice(b"\r\n");
        self.w.write_all(&out).await?;
        self.untagged.clear();
        loop {
            self.read_line().await?;
            // A line ending in {n} announces n bytes of literal, then the line goes on.
            while let Some(n) = literal_len(&self.line) {
                let mut skip = vec![0; n];
                self.r.read_exact(&mut skip).await?;
                let mut more = Vec::new();
                self.r.read_until(b'\n', &mut more).await?;
                self.line.extend_from_slice(&more);
            }
            let text = String::from_utf8_lossy(&self.line).trim_end().to_owned();
            if let Some(rest) = text.strip_prefix(&tag) {
                let rest = rest.trim_start();
                ensure!(
                    rest.starts_with("OK"),
                    "{} failed: {rest}",
                    String::from_utf8_lossy(&body[..body.len().min(60)])
                );
                self.status = rest.to_owned();
                return Ok(());
            }
            self.untagged.push(text);
        }
    }
}

/// The `n` of a line ending in `{n}` CRLF (or `{n+}`).
fn literal_len(line: &[u8]) -> Option<usize> {
    let l = line.strip_suffix(b"\r\n")?.strip_suffix(b"}")?;
    let l = l.strip_suffix(b"+").unwrap_or(l);
    let open = l.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&l[open + 1..]).ok()?.parse().ok()
}

/// `NAME n` from lines like `* OK [UIDNEXT 42] …` or `* STATUS INBOX (UIDNEXT 42)`.
fn number_after(lines: &[String], name: &str) -> Option<u32> {
    lines.iter().find_map(|l| {
        let at = l.find(name)? + name.len();
        let digits: String = l[at..]
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    })
}

/// CPU time (user + system) of `pid`, its live descendants, and its reaped children, in
/// clock ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = |p: u32| -> Option<(u32, u64, u64)> {
        let s = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = &s[s.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        // rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
        Some((num(1) as u32, num(11) + num(12), num(13) + num(14)))
    };
    let (_, own, reaped) = stat(pid).context("the server process is gone")?;
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    let mut times: BTreeMap<u32, u64> = BTreeMap::new();
    for e in std::fs::read_dir("/proc")?.flatten() {
        let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if let Some((ppid, t, _)) = stat(p) {
            children.entry(ppid).or_default().push(p);
            times.insert(p, t);
        }
    }
    let mut total = own + reaped;
    let mut stack = children.get(&pid).cloned().unwrap_or_default();
    while let Some(p) = stack.pop() {
        total += times.get(&p).copied().unwrap_or(0);
        stack.extend(children.get(&p).cloned().unwrap_or_default());
    }
    Ok(total)
}

/// Per-kind latencies in microseconds, and the number of rounds.
type Samples = Vec<Vec<u32>>;

struct Plan {
    client: Client,
    /// Bounds logins in flight: servers limit concurrent password checks per client address
    /// (Herald: 8), and every session here comes from one.
    logins: std::sync::Arc<tokio::sync::Semaphore>,
    addr: SocketAddr,
    user: String,
    password: String,
    size: usize,
    until: Instant,
    reconnect: bool,
    seed: u64,
    /// With `--rate`: this session's time between round starts, and its first start.
    pace: Option<(Duration, Instant)>,
}

/// What one session measured.
struct Measured {
    samples: Samples,
    /// Rounds that started behind their schedule (`--rate` only).
    late: u64,
}

async fn client_loop(p: Plan) -> anyhow::Result<Measured> {
    let mut rng = Rng(p.seed | 1);
    let mut samples: Samples = vec![Vec::new(); KINDS.len()];
    let mut client = p.client;
    let mut to_delete: Option<u32> = None;
    let mut round = 0u64;
    let mut late = 0u64;
    let mut next_start = p.pace.map(|(_, first)| first);
    while Instant::now() < p.until {
        if let (Some((every, _)), Some(at)) = (p.pace, next_start) {
            let now = Instant::now();
            if at > now {
                tokio::time::sleep_until(at.into()).await;
                next_start = Some(at + every);
            } else {
                // Behind: start now and keep the spacing from here, rather than sending the
                // missed rounds back to back.
                late += u64::from(round > 0);
                next_start = Some(now + every);
            }
            if Instant::now() >= p.until {
                break;
            }
        }
        round += 1;
        if p.reconnect && round > 1 {
            client.cmd(b"LOGOUT").await.ok();
            let _permit = p.logins.acquire().await?;
            client = Client::connect(p.addr, &p.user, &p.password).await?;
        }
        let mut timed = |kind: usize, t: Instant| {
            samples[kind].push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        };
        let t = Instant::now();
        client.cmd(b"LIST \"\" \"*\"").await?;
        timed(0, t);
        let t = Instant::now();
        client
            .cmd(b"STATUS INBOX (MESSAGES UNSEEN UIDNEXT)")
            .await?;
        timed(1, t);
        let t = Instant::now();
        client.cmd(b"SELECT INBOX").await?;
        timed(2, t);
        let uidnext = number_after(&client.untagged, "UIDNEXT")
            .unwrap_or(1)
            .max(2);
        let exists: u32 = client
            .untagged
            .iter()
            .find_map(|l| l.strip_suffix(" EXISTS")?.strip_prefix("* ")?.parse().ok())
            .unwrap_or(1)
            .max(1);
        // Recent UIDs are the live ones (older ones were expunged rounds ago).
        let span = exists.min(uidnext - 1).max(1);
        let lo = uidnext - 1 - rng.below(span);
        let hi = lo.saturating_add(rng.below(20)).min(uidnext - 1);
        let items = ITEMS[rng.below(ITEMS.len() as u32) as usize];
        let t = Instant::now();
        client
            .cmd(format!("UID FETCH {lo}:{hi} {items}").as_bytes())
            .await?;
        timed(3, t);
        let one = uidnext - 1 - rng.below(span);
        let t = Instant::now();
        client
            .cmd(format!("UID FETCH {one} BODY.PEEK[]").as_bytes())
            .await?;
        timed(4, t);
        let sign = if round.is_multiple_of(2) { '+' } else { '-' };
        let t = Instant::now();
        client
            .cmd(format!("UID STORE {one} {sign}FLAGS (\\Seen)").as_bytes())
            .await?;
        timed(5, t);
        let body = message(round, &p.user, p.size);
        let mut append = format!("APPEND INBOX {{{}}}", body.len()).into_bytes();
        let t = Instant::now();
        // A synchronizing literal: every server takes it (not all offer LITERAL+).
        append_sync(&mut client, &mut append, &body).await?;
        timed(6, t);
        let appended = client
            .status
            .split("APPENDUID ")
            .nth(1)
            .and_then(|r| r.split_whitespace().nth(1))
            .and_then(|u| u.trim_end_matches(']').parse::<u32>().ok());
        if let Some(uid) = to_delete.take() {
            let t = Instant::now();
            client
                .cmd(format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)").as_bytes())
                .await?;
            timed(7, t);
            let t = Instant::now();
            client.cmd(b"EXPUNGE").await?;
            timed(8, t);
        }
        to_delete = appended;
    }
    client.cmd(b"LOGOUT").await.ok();
    Ok(Measured { samples, late })
}

/// APPEND with a synchronizing literal: the command line, the continuation, the message.
async fn append_sync(c: &mut Client, line: &mut Vec<u8>, body: &[u8]) -> anyhow::Result<()> {
    c.tag += 1;
    let tag = format!("m{}", c.tag);
    let mut out = format!("{tag} ").into_bytes();
    out.append(line);
    out.extend_from_slice(b"\r\n");
    c.w.write_all(&out).await?;
    c.read_line().await?;
    ensure!(
        c.line.starts_with(b"+"),
        "APPEND literal refused: {}",
        String::from_utf8_lossy(&c.line)
    );
    c.w.write_all(body).await?;
    c.w.write_all(b"\r\n").await?;
    c.untagged.clear();
    loop {
        c.read_line().await?;
        let text = String::from_utf8_lossy(&c.line).trim_end().to_owned();
        if let Some(rest) = text.strip_prefix(&tag) {
            let rest = rest.trim_start();
            ensure!(rest.starts_with("OK"), "APPEND failed: {rest}");
            c.status = rest.to_owned();
            return Ok(());
        }
        c.untagged.push(text);
    }
}

/// Fills each user's INBOX to `prefill` messages (by APPEND, so any server works).
async fn prefill(
    addr: SocketAddr,
    users: &[String],
    password: &str,
    n: u32,
    size: usize,
) -> anyhow::Result<()> {
    for user in users {
        let mut c = Client::connect(addr, user, password).await?;
        c.cmd(b"STATUS INBOX (MESSAGES)").await?;
        let have = number_after(&c.untagged, "MESSAGES").unwrap_or(0);
        for i in have..n {
            let body = message(u64::from(i), user, size);
            let mut line = format!("APPEND INBOX {{{}}}", body.len()).into_bytes();
            append_sync(&mut c, &mut line, &body).await?;
        }
        c.cmd(b"LOGOUT").await.ok();
        eprintln!("  {user}: {} messages", have.max(n));
    }
    Ok(())
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

/// Runs the mixed workload against `addr`; `server_pid` for CPU figures.
pub async fn run(
    args: &BenchImapArgs,
    addr: SocketAddr,
    users: Vec<String>,
    server_pid: Option<u32>,
) -> anyhow::Result<()> {
    ensure!(
        args.clients > 0 && !users.is_empty(),
        "--users and --clients must be positive"
    );
    eprintln!(
        "imap mix: filling {} mailboxes to {} messages",
        users.len(),
        args.prefill
    );
    prefill(addr, &users, &args.password, args.prefill, args.size).await?;
    let secs = Duration::from_secs(args.secs.max(1));
    let sessions = users.len() * args.clients;
    // A round is KINDS.len() commands (two fewer in a session's first).
    let round_every = args.rate.map(|rate| {
        Duration::from_secs_f64(sessions as f64 * KINDS.len() as f64 / f64::from(rate))
    });
    eprintln!(
        "imap mix: {} users × {} clients for {} s{}{}",
        users.len(),
        args.clients,
        secs.as_secs(),
        if args.reconnect {
            ", reconnecting every round"
        } else {
            ""
        },
        match (args.rate, round_every) {
            (Some(rate), Some(every)) => format!(
                ", paced at {rate} commands/s (a round every {:.1} ms per session)",
                every.as_secs_f64() * 1000.0
            ),
            _ => String::new(),
        }
    );
    // Log every session in first, a few at a time, as a fleet of clients would arrive.
    let logins = std::sync::Arc::new(tokio::sync::Semaphore::new(4));
    let mut clients = Vec::with_capacity(sessions);
    for user in &users {
        for _ in 0..args.clients {
            clients.push(Client::connect(addr, user, &args.password).await?);
        }
    }
    let mut clients = clients.into_iter();
    let ticks_before = server_pid.map(cpu_ticks).transpose()?;
    let started = Instant::now();
    let until = started + secs;
    let mut set = tokio::task::JoinSet::new();
    let seed = u64::from(std::process::id()) << 20;
    for (u, user) in users.iter().enumerate() {
        for c in 0..args.clients {
            let Some(client) = clients.next() else {
                bail!("fewer sessions than planned");
            };
            let plan = Plan {
                client,
                logins: logins.clone(),
                addr,
                user: user.clone(),
                password: args.password.clone(),
                size: args.size,
                until,
                reconnect: args.reconnect,
                seed: seed ^ ((u * 1000 + c) as u64 * 0x9E37_79B9),
                // Sessions start spread over one round's time, not all at once.
                pace: round_every.map(|every| {
                    let nth = (u * args.clients + c) as u32;
                    (every, started + every * nth / sessions as u32)
                }),
            };
            set.spawn(client_loop(plan));
        }
    }
    let progress = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            eprintln!("  {} s left", left.as_secs());
        }
    });
    let mut all: Samples = vec![Vec::new(); KINDS.len()];
    let mut late = 0u64;
    while let Some(r) = set.join_next().await {
        let measured = r.context("a client task panicked")??;
        late += measured.late;
        for (a, s) in all.iter_mut().zip(measured.samples) {
            a.extend(s);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    progress.abort();
    let ticks_after = server_pid.map(cpu_ticks).transpose()?;
    let total: usize = all.iter().map(Vec::len).sum();
    let rounds = all.first().map_or(0, Vec::len);
    println!(
        "{:<16} {:>9} {:>10} {:>9} {:>9} {:>9}",
        "command", "count", "per s", "p50 ms", "p90 ms", "p99 ms"
    );
    for (kind, mut s) in KINDS.iter().zip(all) {
        s.sort_unstable();
        println!(
            "{:<16} {:>9} {:>10.0} {:>9.2} {:>9.2} {:>9.2}",
            kind,
            s.len(),
            s.len() as f64 / elapsed,
            percentile(&s, 0.50),
            percentile(&s, 0.90),
            percentile(&s, 0.99),
        );
    }
    let cpu = match (ticks_before, ticks_after) {
        (Some(a), Some(b)) => {
            let hz = rustix::param::clock_ticks_per_second().max(1) as f64;
            let ms = b.saturating_sub(a) as f64 * 1000.0 / hz;
            format!("{:.3}", ms / total.max(1) as f64)
        }
        _ => "n/a".to_owned(),
    };
    if let Some(rate) = args.rate {
        println!(
            "paced at {rate} commands/s: {late} of {rounds} rounds started late{}",
            if late * 20 > rounds as u64 {
                " (more than 5 %: the server did not keep up; latencies are those of an overload)"
            } else {
                ""
            }
        );
    }
    println!(
        "imap mix: {total} commands in {elapsed:.1} s = {:.0} commands/s, server CPU {cpu} ms per command",
        total as f64 / elapsed
    );
    Ok(())
}

/// Creates `users` with password `bench` and nothing else, for the built-in server.
pub async fn create_users(data: &Path, fqdn: &str, users: &[String]) -> anyhow::Result<()> {
    use herald_store::{SessionContext, Store, StoreConfig};
    let store = Store::open(StoreConfig::new(data).with_fqdn(fqdn)).await?;
    let admin = SessionContext::admin_cli();
    for u in users {
        store.add_user(&admin, u, "bench", false).await?;
    }
    store.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_lengths_and_numbers() {
        assert_eq!(literal_len(b"* 1 FETCH (BODY[] {42}\r\n"), Some(42));
        assert_eq!(literal_len(b"* 1 FETCH (BODY[] {42+}\r\n"), Some(42));
        assert_eq!(literal_len(b"* 1 FETCH (FLAGS ())\r\n"), None);
        let lines = vec![
            "* 12 EXISTS".to_owned(),
            "* OK [UIDNEXT 99] Predicted next UID".to_owned(),
            "* STATUS INBOX (MESSAGES 7 UIDNEXT 8)".to_owned(),
        ];
        assert_eq!(number_after(&lines, "UIDNEXT"), Some(99));
        assert_eq!(number_after(&lines, "MESSAGES"), Some(7));
        assert_eq!(number_after(&lines, "UNSEEN"), None);
    }

    #[test]
    fn own_cpu_time_is_readable() {
        // This test process has used some CPU by now; the reading must not fail.
        assert!(cpu_ticks(std::process::id()).is_ok());
    }
}
