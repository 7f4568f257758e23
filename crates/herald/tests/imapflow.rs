//! ImapFlow, the Node IMAP client, against the real `herald serve`: `tests/js/imapflow_session.mjs`
//! lists mailboxes with their special-use, opens INBOX under CONDSTORE/QRESYNC, appends, fetches
//! (ENVELOPE, FLAGS, BODYSTRUCTURE, source, UID ranges), changes flags and sees them with
//! CHANGEDSINCE, moves, deletes and searches, hears a second connection's APPEND in IDLE, and
//! reopens INBOX with QRESYNC to learn what vanished meanwhile. The script checks each answer;
//! this test checks that it finished and that the server logged what it did.
//!
//! Runs only when `node` is installed and `tests/js/node_modules` holds ImapFlow (`.ci/install`
//! runs `npm ci` there); otherwise it says why and passes, except under `CI=true`, where it
//! fails. `IMAPFLOW_DEBUG=1` prints the IMAP exchange as it happens.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Server, run_bounded};
use herald_events::{EventType, vnd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js")
}

/// Whether node and the locked ImapFlow are there; under CI=true their absence fails the test.
fn imapflow_available() -> bool {
    let node = Command::new("node").arg("--version").output().is_ok();
    let module = js_dir().join("node_modules/imapflow/package.json").exists();
    let missing = if !node {
        "node is not installed (the ImapFlow test needs Node.js 20 and npm)"
    } else if !module {
        "ImapFlow is not installed in tests/js (npm ci there; see .ci/install)"
    } else {
        return true;
    };
    common::skip(missing);
    false
}

#[test]
fn imapflow_session_against_herald() {
    if !imapflow_available() {
        return;
    }
    let server = Server::start("");
    server.add_user("dora", "dora-pw");
    let port = server.port("imap").to_string();
    server.python(
        "imap_create.py",
        &[
            &port,
            "dora",
            "dora-pw",
            "Kept=\\Archive",
            "Outgoing=\\Sent",
        ],
    );
    let mark = server.settled();

    let ran = run_bounded(
        Command::new("node")
            .arg(js_dir().join("imapflow_session.mjs"))
            .args([&port, "dora", "dora-pw"])
            .current_dir(js_dir()),
        Duration::from_secs(90),
    );
    assert!(ran.success(), "imapflow_session.mjs failed: {ran}");
    assert_eq!(ran.stdout, "done\n", "{ran}");

    // What the script did, as the server recorded it: two sessions, each logged out.
    let end = server.settled();
    let events = server.events()[mark..end].to_vec();
    let count = |t: EventType| events.iter().filter(|e| e.event == t).count();
    let cause = |c: &str| {
        events
            .iter()
            .filter(|e| e.event == EventType::MessageAppend)
            .filter(|e| e.extension(vnd::CAUSE).is_some_and(|v| v == c))
            .count()
    };
    assert_eq!(count(EventType::Login), 2, "{events:#?}");
    assert_eq!(count(EventType::Logout), 2, "{events:#?}");
    assert_eq!(count(EventType::MailboxCreate), 1, "Work");
    // Three APPENDs by the first connection, four by the second; one MOVE.
    assert_eq!(cause("append"), 7, "{events:#?}");
    assert_eq!(cause("move"), 1, "{events:#?}");
    assert_eq!(count(EventType::MessageAppend), 8, "{events:#?}");
    // Expunged: 1 (moved) and 2 by the first connection; 3, 4+6 and 5 by the second.
    let expunged: Vec<u32> = events
        .iter()
        .filter(|e| e.event == EventType::MessageExpunge)
        .flat_map(|e| e.uidset.as_ref().unwrap().iter().collect::<Vec<_>>())
        .collect();
    assert_eq!(expunged, [1, 2, 3, 4, 6, 5], "{events:#?}");
}
