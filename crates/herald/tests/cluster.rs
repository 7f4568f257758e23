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
        let (url, name) = (url(), self.0.clone());
        let dropped = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let (client, connection) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .await
            });
        if let Err(e) = dropped {
            eprintln!("could not drop the test schema {}: {e}", self.0);
        }
    }
}

fn node(schema: &Schema) -> Server {
    Server::start_postgres(tempfile::tempdir().unwrap(), &url(), &schema.0, "")
}

#[test]
fn two_nodes_on_one_database_serve_one_mailbox_together() {
    let Some(schema) = Schema::new("cluster_two") else {
        return;
    };
    let one = node(&schema);
    let two = node(&schema);
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

    // Each node's event log follows the one outbox: both hold the same events, in one order
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
    let (log1, log2) = (appends(&one), appends(&two));
    let ids = |log: &[herald_events::Event]| -> Vec<u64> {
        log.iter().filter_map(|e| e.herald_id()).collect()
    };
    let (ids1, ids2) = (ids(&log1), ids(&log2));
    let common_len = ids1.len().min(ids2.len());
    assert_eq!(ids1[..common_len], ids2[..common_len]);
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
    let one = node(&schema);
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
    let two = node(&schema);
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

    let out = common::herald()
        .arg("--data")
        .arg(dir.path().join("data"))
        .args(["migrate", "--to", &url(), "--schema", &schema.0])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "herald migrate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8(out.stdout).unwrap();
    assert!(report.contains("messages: 37 rows"), "{report}");

    // Same UIDVALIDITY, UIDNEXT, UIDs, flags, dates and content: nothing to download again.
    let node = node(&schema);
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
    let again = common::herald()
        .arg("--data")
        .arg(dir.path().join("data"))
        .args(["migrate", "--to", &url(), "--schema", &schema.0])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("not empty"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}
