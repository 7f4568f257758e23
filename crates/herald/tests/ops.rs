//! Operating the real `herald serve`: `/metrics` moves after an LMTP delivery and IMAP logins
//! (Python's smtplib and imaplib), `/healthz` and `/readyz` answer without credentials,
//! retention prunes what every subscription acknowledged and nothing a lagging one still
//! needs, `herald events tail --from` names the oldest event kept, and `events.jsonl`
//! rotates by size.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Server, herald};
use herald_events::Event;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

const TOKEN: &str = "metrics-token-0123456789";

/// `[http]` with a bearer token for `root` (an administrator once the test creates it).
fn http_section(extra: &str) -> String {
    format!(
        "[http]\nlisten = [\"127.0.0.1:0\"]\ntokens = [{{ user = \"root\", token = \"{TOKEN}\" }}]\n{extra}"
    )
}

/// One HTTP/1.1 request; returns the status code and the body.
fn request(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(server.addrs["http"]).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let kind = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/json\r\n".to_owned()
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}{kind}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, body.to_owned())
}

fn scrape(server: &Server) -> String {
    let (code, body) = request(server, "GET", "/metrics", Some(TOKEN), "");
    assert_eq!(code, 200, "{body}");
    body
}

/// The value of the sample whose name and labels are exactly `series` (0 when absent: a
/// counter not yet touched is left out).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().unwrap())
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ready(server: &Server) {
    wait_until("/readyz", || {
        request(server, "GET", "/readyz", None, "").0 == 200
    });
}

#[test]
fn metrics_move_with_lmtp_and_imap_and_probes_need_no_credentials() {
    let server = Server::start(&http_section(""));
    server.add_user("alice", "alice-pw");
    server.admin(&["user", "add", "root", "--password", "root-pw", "--admin"]);
    assert_eq!(
        request(&server, "GET", "/healthz", None, ""),
        (200, "ok\n".into())
    );
    ready(&server);
    assert_eq!(
        request(&server, "GET", "/readyz", None, ""),
        (200, "ready\n".into())
    );
    // Metrics need an administrator by default.
    assert_eq!(request(&server, "GET", "/metrics", None, "").0, 401);

    let before = scrape(&server);
    let lmtp = server.port("lmtp").to_string();
    server.python(
        "lmtp_deliver.py",
        &[
            &lmtp,
            "bob@example.net",
            "alice@example.org",
            "--",
            "250",
            "--",
            "250",
        ],
    );
    let imap = server.port("imap").to_string();
    assert_eq!(
        server
            .python("imap_login.py", &[&imap, "alice", "alice-pw"])
            .trim(),
        "ok"
    );
    assert_eq!(
        server
            .python(
                "imap_login.py",
                &[&imap, "alice", "not-her-password", "--wrong"]
            )
            .trim(),
        "refused"
    );
    // The Logout of the session commits as the connection closes.
    server.settled();
    let head = last_id(&server);
    let after = scrape(&server);
    let moved = |series: &str| value(&after, series) - value(&before, series);

    assert_eq!(
        moved("herald_events_committed_total{type=\"MessageNew\"}"),
        1.0
    );
    assert_eq!(moved("herald_events_committed_total{type=\"Login\"}"), 1.0);
    assert_eq!(
        moved("herald_commands_total{protocol=\"lmtp\",command=\"DATA\"}"),
        1.0
    );
    assert_eq!(
        moved("herald_commands_total{protocol=\"lmtp\",command=\"RCPT\"}"),
        1.0
    );
    assert_eq!(
        moved("herald_command_duration_seconds_count{protocol=\"lmtp\",command=\"DATA\"}"),
        1.0
    );
    assert_eq!(
        moved("herald_logins_total{protocol=\"imap\",result=\"ok\"}"),
        1.0
    );
    assert_eq!(
        moved("herald_logins_total{protocol=\"imap\",result=\"failed\"}"),
        1.0
    );
    assert_eq!(
        moved("herald_commands_total{protocol=\"imap\",command=\"LOGIN\"}"),
        2.0
    );
    assert_eq!(
        moved("herald_commands_total{protocol=\"imap\",command=\"SELECT\"}"),
        1.0
    );
    assert_eq!(
        moved("herald_command_duration_seconds_count{protocol=\"imap\",command=\"FETCH\"}"),
        1.0
    );
    assert_eq!(moved("herald_connections_total{protocol=\"imap\"}"), 2.0);
    assert_eq!(moved("herald_connections_total{protocol=\"lmtp\"}"), 1.0);
    assert!(moved("herald_store_commits_total") >= 3.0);
    assert!(moved("herald_store_commit_duration_seconds_count") >= 3.0);
    assert_eq!(value(&after, "herald_outbox_head_id"), head as f64);
    assert_eq!(value(&after, "herald_outbox_oldest_id"), 1.0);
    assert_eq!(value(&after, "herald_ready"), 1.0);
    // The clients have gone: no IMAP session open.
    wait_until("the IMAP sessions to close", || {
        value(&scrape(&server), "herald_sessions{protocol=\"imap\"}") == 0.0
    });
    // The event log has written and synced everything.
    wait_until("the event log cursor", || {
        value(&scrape(&server), "herald_event_log_cursor") >= head as f64
    });
}

#[test]
fn metrics_public_serves_without_credentials() {
    let server = Server::start(&http_section("metrics_public = true\n"));
    let (code, body) = request(&server, "GET", "/metrics", None, "");
    assert_eq!(code, 200);
    assert!(
        body.contains("# TYPE herald_outbox_head_id gauge"),
        "{body}"
    );
}

/// A message for several recipients is delivered to each in one store transaction, so one
/// fsync serves them all, while each still gets its own answer: one over its quota is refused
/// alone.
#[test]
fn one_lmtp_delivery_to_several_recipients_is_one_commit() {
    let server = Server::start(&http_section("metrics_public = true\n"));
    for user in ["alice", "bob", "carol", "dave"] {
        server.add_user(user, "pw");
    }
    server.admin(&["quota", "set", "dave", "--messages", "1"]);
    ready(&server);
    let lmtp = server.port("lmtp").to_string();
    let commits = || {
        let text = scrape(&server);
        (
            value(&text, "herald_store_commit_batch_operations_count"),
            value(&text, "herald_store_commit_batch_operations_sum"),
        )
    };
    // Delivers one message to `users`, checks each recipient's reply after DATA against
    // `codes`, and returns the store's commits and operations meanwhile.
    let deliver = |users: &[&str], codes: &[&str]| {
        let rcpts: Vec<String> = users.iter().map(|u| format!("{u}@example.org")).collect();
        let mut args = vec![lmtp.as_str(), "list@example.net"];
        args.extend(rcpts.iter().map(String::as_str));
        args.push("--");
        args.extend(users.iter().map(|_| "250"));
        args.push("--");
        args.extend_from_slice(codes);
        let before = commits();
        server.python("lmtp_deliver.py", &args);
        let after = commits();
        (after.0 - before.0, after.1 - before.1)
    };
    assert_eq!(
        deliver(&["alice", "bob", "carol", "dave"], &["250"; 4]),
        (1.0, 4.0),
        "(commits, operations) of the delivery"
    );
    // dave is at his quota now: his delivery fails alone, and its QuotaExceed commits with
    // the others' MessageNew, in recipient order.
    let mark = server.settled();
    assert_eq!(
        deliver(&["alice", "dave", "bob"], &["250", "452", "250"]),
        (1.0, 3.0),
        "(commits, operations) of the delivery with a failure"
    );
    let events = server.wait_for(mark, |e| e.len() >= 3);
    let tail: Vec<_> = events
        .iter()
        .map(|e| (e.event.to_string(), e.user.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        tail,
        [
            ("MessageNew".to_owned(), "alice".to_owned()),
            ("QuotaExceed".to_owned(), "dave".to_owned()),
            ("MessageNew".to_owned(), "bob".to_owned()),
        ]
    );
}

/// Runs `herald events tail ARGS` on the server's data; returns (success, stdout, stderr).
fn tail(server: &Server, args: &[&str]) -> (bool, String, String) {
    let out = herald()
        .args(["events", "tail"])
        .args(args)
        .arg("--config")
        .arg(&server.config)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The newest event id in the outbox.
fn last_id(server: &Server) -> u64 {
    let (ok, out, err) = tail(server, &[]);
    assert!(ok, "{err}");
    ids(&out).last().copied().unwrap_or(0)
}

fn ids(lines: &str) -> Vec<u64> {
    lines
        .lines()
        .map(|l| Event::from_json(l).unwrap().herald_id().unwrap())
        .collect()
}

#[test]
fn retention_prunes_only_what_every_subscription_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    // Account and mailbox events off: the ids below are the twelve deliveries'.
    let server = Server::start_in(
        dir,
        &format!(
            "{}[events]\nretain_events = 5\nprune_interval_secs = 1\n\
             groups = [\"message\", \"quota\", \"flags\", \"access\", \"subscription\"]\n\
             [[subscription]]\nname = \"audit\"\nsink = {{ type = \"file\", path = {:?} }}\n",
            http_section(""),
            audit.display().to_string()
        ),
    );
    server.add_user("olga", "olga-pw");
    server.admin(&["user", "add", "root", "--password", "root-pw", "--admin"]);
    // A second subscription whose receiver is down: it acknowledges nothing.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (code, body) = request(
        &server,
        "POST",
        "/subscriptions",
        Some(TOKEN),
        &format!(
            r#"{{"name":"down","sink":{{"type":"webhook","url":"http://127.0.0.1:{port}/hook"}}}}"#
        ),
    );
    assert_eq!(code, 201, "{body}");
    let lmtp = server.port("lmtp").to_string();
    server.python("lmtp_bulk.py", &[&lmtp, "olga", "12"]);
    server.settled();
    assert_eq!(last_id(&server), 12);
    // `audit` has everything; retention has run a few times meanwhile.
    wait_until("audit to acknowledge", || {
        std::fs::read_to_string(&audit)
            .unwrap_or_default()
            .lines()
            .count()
            == 12
    });
    std::thread::sleep(Duration::from_millis(2500));
    let text = scrape(&server);
    assert_eq!(
        value(&text, "herald_outbox_oldest_id"),
        1.0,
        "`down` still needs them"
    );
    assert_eq!(value(&text, "herald_outbox_events"), 12.0);
    assert_eq!(
        value(
            &text,
            "herald_subscription_lag_events{subscription=\"down\"}"
        ),
        12.0
    );
    assert_eq!(
        value(
            &text,
            "herald_subscription_lag_events{subscription=\"audit\"}"
        ),
        0.0
    );
    assert!(
        value(
            &text,
            "herald_subscription_retries_total{subscription=\"down\"}"
        ) >= 1.0
    );
    assert!(
        value(
            &text,
            "herald_subscription_lag_seconds{subscription=\"down\"}"
        ) >= 1.0
    );
    assert_eq!(
        ids(&tail(&server, &["--from", "1"]).1),
        (1..=12).collect::<Vec<_>>()
    );

    // Without it, only the newest five stay.
    assert_eq!(
        request(&server, "DELETE", "/subscriptions/down", Some(TOKEN), "").0,
        204
    );
    wait_until("retention", || {
        value(&scrape(&server), "herald_outbox_oldest_id") == 8.0
    });
    let text = scrape(&server);
    assert_eq!(value(&text, "herald_outbox_events"), 5.0);
    assert_eq!(value(&text, "herald_events_pruned_total"), 7.0);
    let (ok, out, err) = tail(&server, &["--from", "1"]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("event 1 has been pruned") && err.contains("the oldest event kept is 8"),
        "{err}"
    );
    let (ok, out, _) = tail(&server, &[]);
    assert!(ok);
    assert_eq!(ids(&out), [8, 9, 10, 11, 12]);
    assert_eq!(ids(&tail(&server, &["--from", "10"]).1), [10, 11, 12]);
    // A replay from a pruned event is refused with the same news.
    let (code, body) = request(
        &server,
        "POST",
        "/subscriptions/audit/replay?from=3",
        Some(TOKEN),
        "",
    );
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("oldest event kept is 8"), "{body}");
    // The event log is the operator's record: retention of the outbox leaves it whole.
    assert_eq!(
        server
            .events()
            .iter()
            .map(|e| e.herald_id().unwrap())
            .collect::<Vec<_>>(),
        (1..=12).collect::<Vec<_>>()
    );
    let (status, _) = server.stop();
    assert!(status.success());
}

fn log_ids(path: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    assert!(text.is_empty() || text.ends_with('\n'));
    ids(&text)
}

#[test]
fn the_event_log_rotates_by_size() {
    let server = Server::start("[events]\nlog_max_bytes = 2048\nlog_keep = 2\n");
    server.add_user("olga", "olga-pw");
    let lmtp = server.port("lmtp").to_string();
    server.python("lmtp_bulk.py", &[&lmtp, "olga", "30"]);
    server.settled();
    let head = last_id(&server);
    let log = server.data.join("events.jsonl");
    let data = server.data.clone();
    let rotated = |n: usize| data.join(format!("events.jsonl.{n}"));
    assert!(rotated(1).exists() && rotated(2).exists());
    assert!(!rotated(3).exists(), "only log_keep rotated files stay");
    for n in [1, 2] {
        let len = std::fs::metadata(rotated(n)).unwrap().len();
        assert!(len > 0 && len <= 2048, "events.jsonl.{n}: {len} bytes");
    }
    // Oldest file first, every event once, in order, up to the newest.
    let all: Vec<u64> = [rotated(2), rotated(1), log.clone()]
        .iter()
        .flat_map(|p| log_ids(p))
        .collect();
    assert!(all.windows(2).all(|w| w[1] == w[0] + 1), "{all:?}");
    assert_eq!(all.last(), Some(&head));
    // A restart continues after the last line, wherever it is.
    let (_, dir) = server.stop();
    let server = Server::start_in(dir, "[events]\nlog_max_bytes = 2048\nlog_keep = 2\n");
    let lmtp = server.port("lmtp").to_string();
    server.python("lmtp_bulk.py", &[&lmtp, "olga", "1"]);
    server.settled();
    let head2 = last_id(&server);
    assert_eq!(head2, head + 1);
    let all: Vec<u64> = [rotated(2), rotated(1), log]
        .iter()
        .flat_map(|p| log_ids(p))
        .collect();
    assert!(all.windows(2).all(|w| w[1] == w[0] + 1), "{all:?}");
    assert_eq!(all.last(), Some(&head2));
}
