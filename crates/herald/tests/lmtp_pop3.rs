//! Mail arrives over LMTP and leaves over POP3, driven by Python's standard `smtplib.LMTP` and
//! `poplib` against the real `herald serve`; every reply is checked by the client script and
//! every event in the server's event log by the test.
#![allow(clippy::unwrap_used)]

mod common;

use common::Server;
use herald_events::{EventType, vnd};

fn types(events: &[herald_events::Event]) -> Vec<String> {
    events.iter().map(|e| e.event.to_string()).collect()
}

#[test]
fn lmtp_delivers_per_recipient_and_pop3_reads_and_expunges() {
    let server = Server::start("");
    server.add_user("alice", "alice-pw");
    server.add_user("bob", "bob-pw");
    server.admin(&["quota", "set", "bob", "--messages", "1"]);
    let lmtp = server.port("lmtp").to_string();
    let pop3 = server.port("pop3").to_string();
    // The QuotaChange of `quota set` is the first event; everything after it is LMTP's.
    let start = server
        .wait_for(0, |e| e.iter().any(|e| e.event == EventType::QuotaChange))
        .len();

    // alice: delivered; nobody: 550 at RCPT; bob: delivered (his one-message quota).
    server.python(
        "lmtp_deliver.py",
        &[
            &lmtp,
            "sender@example.net",
            "alice@example.org",
            "nobody@example.org",
            "bob@example.org",
            "--",
            "250",
            "550",
            "250",
            "--",
            "250",
            "250",
        ],
    );
    // bob again: over his message quota now, 452 for him only; alice still gets it.
    server.python(
        "lmtp_deliver.py",
        &[
            &lmtp,
            "sender@example.net",
            "bob@example.org",
            "alice@example.org",
            "--",
            "250",
            "250",
            "--",
            "452",
            "250",
        ],
    );
    let events = server.wait_for(start, |e| e.len() >= 4);
    let mut kinds = types(&events);
    kinds.sort();
    assert_eq!(
        kinds,
        ["MessageNew", "MessageNew", "MessageNew", "QuotaExceed"]
    );
    let news: Vec<_> = events
        .iter()
        .filter(|e| e.event == EventType::MessageNew)
        .collect();
    assert_eq!(news.len(), 3);
    for e in &news {
        e.validate().unwrap();
        assert_eq!(e.service.as_deref(), Some("lmtp"));
        let env = e.envelope.as_deref().unwrap();
        assert!(
            env.starts_with("MAIL FROM:<sender@example.net> SIZE="),
            "{env}"
        );
        assert!(
            env.ends_with(&format!(
                "RCPT TO:<{}@example.org>\r\n",
                e.user.as_deref().unwrap()
            )),
            "{env}"
        );
        assert!(
            e.uri.as_ref().unwrap().uid.is_some() && e.uri.as_ref().unwrap().uidvalidity.is_some()
        );
    }
    let exceed = events
        .iter()
        .find(|e| e.event == EventType::QuotaExceed)
        .unwrap();
    assert_eq!(exceed.user.as_deref(), Some("bob"));
    assert_eq!(exceed.max_messages, Some(1));

    // POP3: alice has two messages; she deletes the first and quits.
    let before_pop = server.events().len();
    let out = server.python("pop3_session.py", &[&pop3, "alice", "alice-pw", "2", "1"]);
    assert!(out.starts_with("+OK"), "{out}");
    // The store already holds the Logout when the client has read QUIT's "+OK".
    let stored = server.admin(&["events", "tail"]);
    let last = herald_events::Event::from_json(stored.lines().last().unwrap()).unwrap();
    assert_eq!(
        (last.event, last.service.as_deref()),
        (EventType::Logout, Some("pop"))
    );
    let events = server.wait_for(before_pop, |e| {
        e.iter().any(|e| e.event == EventType::Logout)
    });
    assert_eq!(types(&events), ["Login", "MessageExpunge", "Logout"]);
    for e in &events {
        e.validate().unwrap();
        assert_eq!(e.service.as_deref(), Some("pop"));
        assert_eq!(e.user.as_deref(), Some("alice"));
        assert_eq!(e.client_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(e.server_port, Some(server.port("pop3")));
    }
    assert_eq!(events[1].uidset.as_ref().unwrap().to_string(), "1");
    assert_eq!(events[2].extension(vnd::DISCONNECT).unwrap(), "graceful");
    // RETR did not mark anything read: no MessageRead (RFC 5423 §4.2).
    assert!(
        !server
            .events()
            .iter()
            .any(|e| e.event == EventType::MessageRead)
    );

    // QUIT without DELE expunges nothing; a dropped connection after DELE expunges nothing.
    let mark = server.events().len();
    server.python("pop3_session.py", &[&pop3, "alice", "alice-pw", "1"]);
    server.python(
        "pop3_session.py",
        &[&pop3, "alice", "alice-pw", "1", "1", "--drop"],
    );
    let events = server.wait_for(mark, |e| {
        e.iter().filter(|e| e.event == EventType::Logout).count() == 2
    });
    assert_eq!(types(&events), ["Login", "Logout", "Login", "Logout"]);
    assert_eq!(events[3].extension(vnd::DISCONNECT).unwrap(), "abort");
    server.python("pop3_session.py", &[&pop3, "alice", "alice-pw", "1"]);
}

#[test]
fn a_second_pop3_session_for_the_same_user_is_refused() {
    let server = Server::start("");
    server.add_user("carol", "pw");
    let pop3 = server.port("pop3").to_string();
    assert_eq!(
        server
            .python("pop3_in_use.py", &[&pop3, "carol", "pw"])
            .trim(),
        "ok"
    );
}

#[test]
fn serve_stops_gracefully_and_the_log_resumes_after_a_restart() {
    let server = Server::start("");
    server.add_user("dave", "pw");
    let deliver = |server: &Server| {
        let lmtp = server.port("lmtp").to_string();
        server.python(
            "lmtp_deliver.py",
            &[
                &lmtp,
                "s@example.net",
                "dave@example.org",
                "--",
                "250",
                "--",
                "250",
            ],
        );
    };
    // dave's AccountCreate and INBOX, then the delivery.
    deliver(&server);
    server.wait_for(0, |e| e.len() == 3);
    let (status, dir) = server.stop();
    assert!(status.success(), "SIGTERM is a clean stop: {status:?}");

    let server = Server::start_in(dir, "");
    deliver(&server);
    let events = server.wait_for(0, |e| e.len() == 4);
    let ids: Vec<u64> = events.iter().map(|e| e.herald_id().unwrap()).collect();
    assert_eq!(
        ids,
        [1, 2, 3, 4],
        "no event lost or repeated across the restart"
    );
    let users = server.admin(&["user", "list"]);
    assert!(
        !users.contains("demo"),
        "no demo account when a configuration is given: {users}"
    );
}

#[test]
fn serve_keeps_running_when_its_stdout_is_closed() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("herald.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\npath = \"{}\"\n[imap]\nlisten = [\"127.0.0.1:0\"]\n[pop3]\nlisten = [\"127.0.0.1:0\"]\n\
             [lmtp]\nlisten = [\"127.0.0.1:0\"]\n[http]\nlisten = [\"127.0.0.1:0\"]\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("HERALD_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Read only the first line (IMAP), then close the pipe as `| head -1` would.
    let first = {
        let mut r = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        line
    };
    assert!(first.starts_with("listening: imap"), "{first}");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "herald serve died when its stdout was closed"
    );
    let _ = child.kill();
    let _ = child.wait();
}
