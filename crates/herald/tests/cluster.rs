//! Herald nodes on one PostgreSQL database: real `herald serve` processes on loopback ports,
//! driven by Python's imaplib and smtplib.LMTP.
//!
//! Each test uses a schema of its own, dropped at the end. Outside CI a test whose PostgreSQL
//! is down is skipped with the reason; under `CI=true` it fails (`common::service`).
#![allow(clippy::unwrap_used)]

mod common;

use common::Server;
use herald_events::EventType;

/// The machine's PostgreSQL (shared/SERVICES.md); `HERALD_TEST_POSTGRES_URL` points elsewhere.
fn url() -> String {
    std::env::var("HERALD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A schema name no other test or run uses, dropped when the guard goes.
struct Schema(String);

impl Schema {
    fn new(test: &str) -> Option<Schema> {
        if !common::service("PostgreSQL", "127.0.0.1:5432") {
            return None;
        }
        Some(Schema(common::unique(test)))
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let mut pg = herald_store::postgres::PgConfig::new(url());
        pg.schema = Some(self.0.clone());
        let dropped = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(herald_store::postgres::drop_schema(&pg));
        if let Err(e) = dropped {
            eprintln!("could not drop the test schema {}: {e}", self.0);
        }
    }
}

/// `herald --data DIR/data migrate --to URL --schema SCHEMA`.
fn migrate(dir: &tempfile::TempDir, schema: &Schema) -> std::process::Output {
    common::herald()
        .arg("--data")
        .arg(dir.path().join("data"))
        .args(["migrate", "--to", &url(), "--schema", &schema.0])
        .output()
        .unwrap()
}

fn node(schema: &Schema, name: &str) -> Server {
    Server::start_postgres(
        tempfile::tempdir().unwrap(),
        &url(),
        &schema.0,
        &format!("node = \"{name}\""),
        "",
    )
}

#[test]
fn three_nodes_on_one_database_serve_one_mailbox_together() {
    let Some(schema) = Schema::new("cluster_three") else {
        return;
    };
    let one = node(&schema, "n1");
    let two = node(&schema, "n2");
    let three = node(&schema, "n3");
    one.add_user("alice", "alice-pw");
    let (imap1, lmtp1, imap2) = (one.port("imap"), one.port("lmtp"), two.port("imap"));
    let out = one.python(
        "imap_cluster.py",
        &[&imap1.to_string(), &lmtp1.to_string(), &imap2.to_string()],
    );
    assert!(out.contains("idle woke after"), "{out}");
    assert!(out.contains("appends: 60 unique UIDs"), "{out}");
    assert!(out.contains("flags: seen across nodes"), "{out}");
    eprintln!("{out}");
    // Node 3, which no client used, serves the one outbox on its event stream: node 1's
    // delivery is there, beside the IDLE session's login on node 2.
    let stream = format!(
        "http://127.0.0.1:{}/events/stream?from=0",
        three.port("http")
    );
    let sse = three.python("sse_read.py", &[&stream, "alice", "alice-pw", "5"]);
    let first: Vec<serde_json::Value> = sse
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let made_on = |event: &str, node: &str| {
        first
            .iter()
            .any(|e| e["event"] == event && e["data"]["vnd.herald.node"] == node)
    };
    assert!(
        made_on("MessageNew", "n1") && made_on("Login", "n2"),
        "{sse}"
    );

    // Each node's event log follows the one outbox: all hold the same events, in one order
    // with dense ids, whichever node made them.
    let appends = |s: &Server| {
        s.wait_for(0, |e| {
            e.iter()
                .filter(|e| e.event == EventType::MessageAppend)
                .count()
                == 60
                && e.iter().any(|e| e.event == EventType::FlagsSet)
        })
    };
    let (log1, log2, log3) = (appends(&one), appends(&two), appends(&three));
    let ids = |log: &[herald_events::Event]| -> Vec<u64> {
        log.iter().filter_map(|e| e.herald_id()).collect()
    };
    let (ids1, ids2, ids3) = (ids(&log1), ids(&log2), ids(&log3));
    let common_len = ids1.len().min(ids2.len()).min(ids3.len());
    assert_eq!(ids1[..common_len], ids2[..common_len]);
    assert_eq!(ids1[..common_len], ids3[..common_len]);
    assert_eq!(
        ids1,
        (1..=ids1.len() as u64).collect::<Vec<_>>(),
        "dense ids"
    );
    // Both nodes' sessions appear: the appends came through both.
    let pids: std::collections::BTreeSet<_> = log1
        .iter()
        .filter(|e| e.event == EventType::MessageAppend)
        .filter_map(|e| e.pid)
        .collect();
    assert_eq!(pids.len(), 2, "appends were made by both nodes: {pids:?}");
    // Each event names the node that made it; serverFQDN names the cluster.
    let named: std::collections::BTreeSet<_> = log1
        .iter()
        .filter(|e| e.event == EventType::MessageAppend)
        .filter_map(|e| e.extension(herald_events::vnd::NODE))
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        named.into_iter().collect::<Vec<_>>(),
        ["n1", "n2"],
        "vnd.herald.node"
    );
    assert!(
        log1.iter()
            .all(|e| e.server_fqdn.as_deref() == Some("mail.example.org"))
    );
    let news: Vec<_> = log1
        .iter()
        .filter(|e| e.event == EventType::MessageNew)
        .collect();
    assert_eq!(news.len(), 1, "{news:?}");
}

#[test]
fn a_killed_node_loses_nothing_and_its_successor_continues_the_uids() {
    let Some(schema) = Schema::new("cluster_kill") else {
        return;
    };
    let one = node(&schema, "n1");
    one.add_user("alice", "alice-pw");
    let deliver = |s: &Server, n: usize| {
        s.python(
            "lmtp_bulk.py",
            &[&s.port("lmtp").to_string(), "alice", &n.to_string()],
        )
    };
    deliver(&one, 5);
    // SIGKILL: no shutdown at all. Every acknowledged delivery was committed in PostgreSQL.
    let _ = one.kill();
    let two = node(&schema, "n2");
    deliver(&two, 3);
    let log = two.wait_for(0, |e| {
        e.iter()
            .filter(|e| e.event == EventType::MessageNew)
            .count()
            == 8
    });
    let uids: Vec<u32> = log
        .iter()
        .filter(|e| e.event == EventType::MessageNew)
        .filter_map(|e| e.uri.as_ref().and_then(|u| u.uid))
        .collect();
    assert_eq!(uids, (1..=8).collect::<Vec<u32>>());
    // Nothing lost, nothing doubled: the outbox ids are dense.
    let ids: Vec<u64> = log.iter().filter_map(|e| e.herald_id()).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
}

#[test]
fn an_embedded_store_moves_to_postgres_and_clients_see_the_same_mailboxes() {
    let Some(schema) = Schema::new("cluster_migrate") else {
        return;
    };
    let embedded = Server::start("");
    embedded.add_user("alice", "alice-pw");
    let imap = embedded.port("imap").to_string();
    embedded.python(
        "imap_create.py",
        &[&imap, "alice", "alice-pw", "Work/2026=\\Archive"],
    );
    embedded.python(
        "imap_fill.py",
        &[&imap, "alice", "alice-pw", "INBOX", "30", "varied"],
    );
    embedded.python(
        "imap_fill.py",
        &[&imap, "alice", "alice-pw", "Work/2026", "7", "varied"],
    );
    let before = embedded.python("imap_snapshot.py", &[&imap, "alice", "alice-pw"]);
    let last_id = embedded.wait_for(0, |e| e.iter().any(|e| e.event == EventType::Logout));
    let last_id = last_id.iter().filter_map(|e| e.herald_id()).max().unwrap();
    let (_, dir) = embedded.stop();

    let out = migrate(&dir, &schema);
    assert!(
        out.status.success(),
        "herald migrate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8(out.stdout).unwrap();
    assert!(report.contains("messages: 37 rows"), "{report}");

    // Same UIDVALIDITY, UIDNEXT, UIDs, flags, dates and content: nothing to download again.
    let node = node(&schema, "n1");
    let imap = node.port("imap").to_string();
    let after = node.python("imap_snapshot.py", &[&imap, "alice", "alice-pw"]);
    assert_eq!(after, before);
    // Event ids go on from where the data directory left them.
    node.python(
        "lmtp_bulk.py",
        &[&node.port("lmtp").to_string(), "alice", "1"],
    );
    let log = node.wait_for(0, |e| e.iter().any(|e| e.event == EventType::MessageNew));
    let new = log
        .iter()
        .find(|e| e.event == EventType::MessageNew)
        .unwrap();
    assert!(
        new.herald_id().unwrap() > last_id,
        "{new:?} after {last_id}"
    );
    // A second copy into the same place is refused: it would merge two stores.
    let again = migrate(&dir, &schema);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("not empty"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

/// The node (`host#pid` in the store) that holds subscription `name`'s lease, if any.
fn lease_holder(schema: &Schema, name: &str) -> Option<u32> {
    let (url, sql) = (
        url(),
        format!(
            "SELECT lease_node FROM {}.deliveries WHERE name = $1 AND lease_until_ms > $2",
            schema.0
        ),
    );
    let name = name.to_owned();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64;
            let row = client.query_opt(&sql, &[&name, &now]).await.unwrap()?;
            let node: Option<String> = row.get(0);
            node?.rsplit_once('#')?.1.parse().ok()
        })
}

#[test]
fn a_webhook_gets_every_event_in_order_while_its_node_is_killed_again_and_again() {
    use common::receiver::Receiver;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};
    const KILLS: usize = 4;
    const LEASE_SECS: u64 = 2;
    let Some(schema) = Schema::new("cluster_failover") else {
        return;
    };
    let ids = Arc::new(Mutex::new(Vec::new()));
    let receiver = Receiver::start(0, Arc::clone(&ids));
    let extra = format!(
        "[[subscription]]\nname = \"hook\"\nevents = [\"MessageNew\"]\n\
         retry = {{ initial_ms = 20, max_ms = 300 }}\n\
         sink = {{ type = \"webhook\", url = \"http://127.0.0.1:{}/hook\" }}\n",
        receiver.port
    );
    let server_keys = format!("lease_secs = {LEASE_SECS}");
    let start = || {
        Server::start_postgres(
            tempfile::tempdir().unwrap(),
            &url(),
            &schema.0,
            &server_keys,
            &extra,
        )
    };
    let mut nodes: Vec<Server> = (0..3).map(|_| start()).collect();
    nodes[0].add_user("kim", "pw");
    let mut takeovers = Vec::new();
    for round in 0..KILLS {
        // Wait until one node delivers, then load the others and kill that one mid-load.
        let deadline = Instant::now() + Duration::from_secs(20);
        let holder = loop {
            if let Some(pid) = lease_holder(&schema, "hook")
                && let Some(i) = nodes.iter().position(|n| n.pid() == pid)
            {
                break i;
            }
            assert!(Instant::now() < deadline, "no node took the subscription");
            std::thread::sleep(Duration::from_millis(100));
        };
        let target = nodes[(holder + 1) % nodes.len()].port("lmtp").to_string();
        let load = std::thread::spawn(move || {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/lmtp_bulk.py");
            let out = std::process::Command::new("python3")
                .args([script, &target, "kim", "60"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        });
        std::thread::sleep(Duration::from_millis(300 + 150 * round as u64));
        let killed_at = Instant::now();
        let _ = nodes.remove(holder).kill();
        // Another node takes over once the dead one's lease has run out.
        let deadline = killed_at + Duration::from_secs(LEASE_SECS * 5 / 4 + 5);
        loop {
            if lease_holder(&schema, "hook").is_some_and(|pid| nodes.iter().any(|n| n.pid() == pid))
            {
                takeovers.push(killed_at.elapsed());
                break;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: no node took over"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        load.join().unwrap();
        nodes.push(start());
    }
    // Every MessageNew committed reaches the webhook; first arrivals are in outbox order, and
    // repeats (at least once) are only of batches in flight at a kill.
    let committed: Vec<u64> = {
        let all = nodes[0].wait_for(0, |e| {
            e.iter()
                .filter(|e| e.event == EventType::MessageNew)
                .count()
                == 60 * KILLS
        });
        all.iter()
            .filter(|e| e.event == EventType::MessageNew)
            .filter_map(|e| e.herald_id())
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let first_seen = loop {
        let mut seen = std::collections::HashSet::new();
        let first: Vec<u64> = ids
            .lock()
            .unwrap()
            .iter()
            .copied()
            .filter(|id| seen.insert(*id))
            .collect();
        if first.len() >= committed.len() || Instant::now() > deadline {
            break first;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(first_seen, committed, "every MessageNew, in order");
    let requests = ids.lock().unwrap().len();
    receiver.stop();
    eprintln!(
        "failover: {KILLS} kills, {} MessageNew, {requests} webhook requests, takeovers {takeovers:?}",
        committed.len()
    );
    for t in &takeovers {
        assert!(
            *t < Duration::from_millis(LEASE_SECS * 1250 + 3000),
            "a takeover took {t:?}"
        );
    }
}

/// Logs in over POP3 with raw commands and returns the answer to PASS, keeping the session
/// open as long as the returned stream lives.
fn pop3_login(port: u16, user: &str, password: &str) -> (String, std::net::TcpStream) {
    use std::io::{BufRead, BufReader, Write};
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let mut writer = stream.try_clone().unwrap();
    for command in [format!("USER {user}\r\n"), format!("PASS {password}\r\n")] {
        writer.write_all(command.as_bytes()).unwrap();
        line.clear();
        reader.read_line(&mut line).unwrap();
    }
    (line.trim_end().to_owned(), stream)
}

#[test]
fn the_pop3_maildrop_lock_holds_across_nodes_and_goes_with_a_killed_node() {
    let Some(schema) = Schema::new("cluster_pop3") else {
        return;
    };
    let one = node(&schema, "n1");
    let two = node(&schema, "n2");
    one.add_user("alice", "alice-pw");
    let (pop1, pop2) = (one.port("pop3"), two.port("pop3"));
    // poplib: a session on node 1 keeps node 2 out with [IN-USE] until it quits.
    let out = one.python(
        "pop3_in_use.py",
        &[&pop1.to_string(), "alice", "alice-pw", &pop2.to_string()],
    );
    assert_eq!(out.trim(), "ok");
    // A node that dies holding the lock does not keep it: the database ends its session.
    let (answer, _held) = pop3_login(pop1, "alice", "alice-pw");
    assert!(answer.starts_with("+OK"), "{answer}");
    let (refused, _) = pop3_login(pop2, "alice", "alice-pw");
    assert!(refused.contains("[IN-USE]"), "{refused}");
    let _ = one.kill();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (answer, _) = pop3_login(pop2, "alice", "alice-pw");
        if answer.starts_with("+OK") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the dead node's lock stayed: {answer}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn a_pause_through_one_node_stops_the_node_that_delivers() {
    use common::receiver::Receiver;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};
    let Some(schema) = Schema::new("cluster_control") else {
        return;
    };
    let ids = Arc::new(Mutex::new(Vec::new()));
    let receiver = Receiver::start(0, Arc::clone(&ids));
    let extra = format!(
        "[[subscription]]\nname = \"hook\"\nevents = [\"MessageNew\"]\n\
         sink = {{ type = \"webhook\", url = \"http://127.0.0.1:{}/hook\" }}\n",
        receiver.port
    );
    let start = |name: &str| {
        Server::start_postgres(
            tempfile::tempdir().unwrap(),
            &url(),
            &schema.0,
            &format!("node = \"{name}\"\nlease_secs = 2"),
            &extra,
        )
    };
    let nodes = [start("n1"), start("n2")];
    nodes[0].add_user("kim", "pw");
    nodes[0].admin(&["user", "add", "root", "--password", "rootpw", "--admin"]);
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("root.pw");
    std::fs::write(&pw, "rootpw\n").unwrap();
    let deliver = |n: usize| {
        nodes[0].python(
            "lmtp_bulk.py",
            &[&nodes[0].port("lmtp").to_string(), "kim", &n.to_string()],
        );
    };
    let received = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(15);
        while ids.lock().unwrap().len() < n {
            assert!(
                Instant::now() < deadline,
                "the webhook got {:?}",
                ids.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    deliver(2);
    received(2);
    // Steer the subscription through the node that does not deliver it.
    let holder = lease_holder(&schema, "hook").unwrap();
    let other = nodes.iter().find(|n| n.pid() != holder).unwrap();
    let cli = |args: &[&str]| {
        let out = common::herald()
            .args(["subscriptions", "--url"])
            .arg(format!("http://127.0.0.1:{}", other.port("http")))
            .args(["--user", "root", "--password-file"])
            .arg(&pw)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(cli(&["pause", "hook"]).contains("paused"));
    // The holder adopts the stored state when it renews its lease (half of 2 s).
    std::thread::sleep(Duration::from_millis(1500));
    deliver(3);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        ids.lock().unwrap().len(),
        2,
        "nothing delivered while paused"
    );
    // This node does not deliver it: it says so.
    let resumed = cli(&["resume", "hook"]);
    assert!(resumed.contains("now standby"), "{resumed}");
    received(5);
    let got = ids.lock().unwrap().clone();
    let mut sorted = got.clone();
    sorted.sort_unstable();
    assert_eq!(got, sorted, "in order");
    receiver.stop();
}
