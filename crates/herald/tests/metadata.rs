//! IMAP METADATA (RFC 5464) end to end: the real `herald serve` with `[metadata]` limits,
//! driven by Python's imaplib (`python/imap_metadata.py`), and the `vnd.herald.MetadataChange`
//! events its changes commit, as the event log holds them and `herald events check` judges them.
#![allow(clippy::unwrap_used)]

mod common;

use common::Server;
use herald_events::{Event, EventType, vnd};

fn entries(e: &Event) -> Vec<String> {
    serde_json::from_value(e.extension(vnd::METADATA_ENTRIES).unwrap().clone()).unwrap()
}

#[test]
fn metadata_commands_answers_and_events() {
    let server = Server::start("[metadata]\nmax_value_bytes = 64\nmax_entries_per_mailbox = 4\n");
    server.add_user("alice", "alice-pw");
    server.admin(&["user", "add", "root", "--password", "root-pw", "--admin"]);
    let mark = server.settled();
    let imap = server.port("imap").to_string();
    let out = server.python(
        "imap_metadata.py",
        &[&imap, "alice", "alice-pw", "root", "root-pw"],
    );
    assert_eq!(out.trim(), "ok");
    let all = server.wait_for(mark, |e| {
        e.iter()
            .filter(|e| e.event == EventType::MetadataChange)
            .count()
            >= 6
    });
    let changes: Vec<&Event> = all
        .iter()
        .filter(|e| e.event == EventType::MetadataChange)
        .collect();
    // One event per SETMETADATA that changed something; refused ones left none.
    let named: Vec<(&str, Vec<String>)> = changes
        .iter()
        .map(|e| (e.user.as_deref().unwrap(), entries(e)))
        .collect();
    assert_eq!(
        named,
        [
            (
                "alice",
                vec!["/private/comment".to_owned(), "/shared/vendor/x".to_owned()]
            ),
            ("alice", vec!["/private/bin".to_owned()]),
            ("alice", vec!["/private/comment".to_owned()]),
            ("alice", vec!["/private/vendor/ui".to_owned()]),
            ("alice", vec!["/shared/comment".to_owned()]),
            ("root", vec!["/shared/admin".to_owned()]),
        ]
    );
    for e in &changes {
        e.validate().unwrap();
        assert_eq!(e.service.as_deref(), Some("imap"));
        assert_eq!(e.client_ip, Some("127.0.0.1".parse().unwrap()));
        assert!(e.timestamp.is_some() && e.herald_id().is_some());
    }
    // Mailbox entries name the mailbox with its UIDVALIDITY, server entries the server only.
    let inbox = changes[0].mailbox_id.as_ref().unwrap();
    assert_eq!(inbox.mailbox.as_deref(), Some("INBOX"));
    assert!(inbox.uidvalidity.is_some());
    assert_eq!(changes[0].uri.as_ref(), Some(inbox));
    let work = changes[4].mailbox_id.as_ref().unwrap();
    assert_eq!(work.mailbox.as_deref(), Some("Work"));
    for server_change in [changes[3], changes[5]] {
        let uri = server_change.uri.as_ref().unwrap();
        assert_eq!(uri.mailbox, None);
        assert_eq!(uri.host, "mail.example.org");
        assert!(server_change.mailbox_id.is_none());
    }
    // Values never reach the event stream.
    let log = std::fs::read_to_string(server.data.join("events.jsonl")).unwrap();
    assert!(!log.contains("My comment") && !log.contains("mailto:root"));
    // The whole log passes `herald events check`.
    let checked = common::herald()
        .args(["events", "check", "-q"])
        .arg(server.data.join("events.jsonl"))
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stdout)
    );
}

#[test]
fn events_check_rejects_a_metadata_change_without_its_entries() {
    let line = r#"{"event":"vnd.herald.MetadataChange","timestamp":"2026-11-23T08:15:02.417+01:00","service":"imap","uri":"imap://alice@mail.example.org/INBOX;UIDVALIDITY=1","user":"alice"}"#;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    std::fs::write(&path, format!("{line}\n")).unwrap();
    let out = common::herald()
        .args(["events", "check"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("vnd.herald.metadataEntries"), "{text}");
    assert!(text.contains("mailboxID"), "{text}");
}
