//! mbsync (isync) against the real `herald serve`: a 1,000-message account is synchronised
//! down to a Maildir, local additions go back up, and a further run changes nothing — neither
//! on the server (no message events) nor in the Maildir.
//!
//! Runs only when `mbsync` is installed (`.ci/install` installs it); otherwise it says why and
//! passes, except under `CI=true`, where a missing mbsync fails the test.
#![allow(clippy::unwrap_used)]

mod common;

use common::Server;
use herald_events::EventType;
use std::path::Path;
use std::process::Command;

fn mbsync_available() -> bool {
    let found = Command::new("mbsync").arg("--version").output().is_ok();
    if !found {
        common::skip("mbsync is not installed (Debian package isync; see .ci/install)");
    }
    found
}

fn run_mbsync(rc: &Path) -> String {
    let out = Command::new("mbsync")
        .arg("-c")
        .arg(rc)
        .args(["-a", "-V"])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "mbsync failed:\n{text}");
    text
}

fn maildir_files(dir: &Path) -> usize {
    ["cur", "new"]
        .iter()
        .map(|d| std::fs::read_dir(dir.join(d)).map_or(0, |r| r.count()))
        .sum()
}

fn message_events(events: &[herald_events::Event]) -> Vec<String> {
    events
        .iter()
        .filter(|e| !matches!(e.event, EventType::Login | EventType::Logout))
        .map(|e| e.event.to_string())
        .collect()
}

#[test]
fn mbsync_round_trips_a_thousand_messages() {
    if !mbsync_available() {
        return;
    }
    let server = Server::start("");
    server.add_user("alice", "alice-pw");
    let port = server.port("imap");
    server.python(
        "imap_fill.py",
        &[&port.to_string(), "alice", "alice-pw", "INBOX", "1000"],
    );
    let local = tempfile::tempdir().unwrap();
    let mail = local.path().join("mail");
    std::fs::create_dir_all(&mail).unwrap();
    let rc = local.path().join("mbsyncrc");
    std::fs::write(
        &rc,
        format!(
            "IMAPAccount herald\nHost 127.0.0.1\nPort {port}\nUser alice\nPass alice-pw\n\
             SSLType None\nAuthMechs PLAIN\n\n\
             IMAPStore remote\nAccount herald\n\n\
             MaildirStore local\nPath {m}/\nInbox {m}/INBOX\nSubFolders Verbatim\n\n\
             Channel sync\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\n\
             Expunge Both\nSync All\nSyncState *\n",
            m = mail.display()
        ),
    )
    .unwrap();

    // Down: every message arrives.
    run_mbsync(&rc);
    let inbox = mail.join("INBOX");
    assert_eq!(maildir_files(&inbox), 1000);
    let seen = std::fs::read_dir(inbox.join("cur"))
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().ends_with(",S")
        })
        .count();
    assert_eq!(seen, 334, "\\Seen came down as Maildir flag S");

    // Up: three local messages and a local flag change go to the server.
    for i in 0..3 {
        std::fs::write(
            inbox.join("new").join(format!("local{i}.herald:2,")),
            format!("From: me@example.org\r\nSubject: local {i}\r\n\r\nwritten offline\r\n"),
        )
        .unwrap();
    }
    let mark = server.events().len();
    run_mbsync(&rc);
    let events = server.wait_for(mark, |e| {
        e.iter().filter(|e| e.event == EventType::Logout).count() >= 1
    });
    let appended = events
        .iter()
        .filter(|e| e.event == EventType::MessageAppend)
        .count();
    assert_eq!(appended, 3, "{:?}", message_events(&events));
    assert_eq!(maildir_files(&inbox), 1003);

    // Again: nothing to do, on either side.
    let mark = server.events().len();
    run_mbsync(&rc);
    let events = server.wait_for(mark, |e| {
        e.iter().filter(|e| e.event == EventType::Logout).count() >= 1
    });
    assert!(
        message_events(&events).is_empty(),
        "the second run changed the server: {:?}",
        message_events(&events)
    );
    assert_eq!(maildir_files(&inbox), 1003);
    // And once more after a pause, as a periodic sync would.
    let mark = server.events().len();
    run_mbsync(&rc);
    let events = server.wait_for(mark, |e| {
        e.iter().filter(|e| e.event == EventType::Logout).count() >= 1
    });
    assert!(
        message_events(&events).is_empty(),
        "{:?}",
        message_events(&events)
    );
    assert_eq!(maildir_files(&inbox), 1003);
}
