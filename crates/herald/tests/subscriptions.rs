//! Subscriptions configured in the file, delivered by the real `herald serve`: filters, shaping
//! and formats as a consumer receives them, and cursors that survive a SIGKILL.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Server, read_log};
use herald_events::{Event, EventType};
use std::time::{Duration, Instant};

fn wait_lines(path: &std::path::Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{} has {} lines, want {n}",
            path.display(),
            lines.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn file_subscriptions_filter_shape_and_format_events() {
    let out = tempfile::tempdir().unwrap();
    let news = out.path().join("news.jsonl");
    let cloud = out.path().join("cloud.jsonl");
    let server = Server::start(&format!(
        r#"
[[subscription]]
name = "badges"
events = ["MessageNew"]
users = ["alice"]
params = ["uri", "user", "messages"]
tags = ["mobile"]
content = {{ max_bytes = 4096 }}
sink = {{ type = "file", path = "{}" }}

[[subscription]]
name = "bus"
events = ["quota"]
format = "cloudevents"
sink = {{ type = "file", path = "{}" }}
"#,
        news.display(),
        cloud.display()
    ));
    server.add_user("alice", "pw");
    server.add_user("bob", "pw");
    server.admin(&["quota", "set", "bob", "--messages", "10"]);
    let lmtp = server.port("lmtp").to_string();
    server.python(
        "lmtp_deliver.py",
        &[
            &lmtp,
            "s@example.net",
            "alice@example.org",
            "bob@example.org",
            "--",
            "250",
            "250",
            "--",
            "250",
            "250",
        ],
    );
    let lines = wait_lines(&news, 1);
    let e = Event::from_json(&lines[0]).unwrap();
    assert_eq!(e.event, EventType::MessageNew);
    assert_eq!(e.user.as_deref(), Some("alice"), "bob is not in users");
    assert_eq!(e.tags.as_deref(), Some(&["mobile".to_owned()][..]));
    assert!(
        e.envelope.is_none() && e.message_size.is_none(),
        "not in the allow-list"
    );
    assert!(
        e.message_content.is_none(),
        "messageContent is not in the allow-list either"
    );
    assert!(e.herald_id().is_some(), "vnd.herald.id is always kept");

    let lines = wait_lines(&cloud, 1);
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(v["specversion"], "1.0");
    assert_eq!(v["type"], "org.ietf.rfc5423.QuotaChange");
    assert_eq!(v["data"]["user"], "bob");
    // Only the one badge line: MessageNew for bob and all non-quota events were filtered.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(std::fs::read_to_string(&news).unwrap().lines().count(), 1);
}

#[test]
fn a_sigkilled_server_neither_loses_nor_invents_deliveries() {
    let out = tempfile::tempdir().unwrap();
    let all = out.path().join("all.jsonl");
    let extra = format!(
        "[[subscription]]\nname = \"all\"\nsink = {{ type = \"file\", path = \"{}\" }}\n",
        all.display()
    );
    let server = Server::start(&extra);
    server.add_user("carol", "pw");
    let lmtp = server.port("lmtp").to_string();
    for _ in 0..5 {
        server.python(
            "lmtp_deliver.py",
            &[
                &lmtp,
                "s@example.net",
                "carol@example.org",
                "--",
                "250",
                "--",
                "250",
            ],
        );
    }
    wait_lines(&all, 5);
    let (dir, data) = server.kill();
    // Commits made while Herald is down (admin CLI) are delivered after the restart.
    let server = Server::start_in(dir, &extra);
    server.admin(&["quota", "set", "carol", "--messages", "100"]);
    let lines = wait_lines(&all, 6);
    let ids: Vec<u64> = lines
        .iter()
        .map(|l| Event::from_json(l).unwrap().herald_id().unwrap())
        .collect();
    let mut dedup = ids.clone();
    dedup.dedup();
    // The event log is written by a task of its own, which may trail the subscription's sink.
    wait_lines(&data.join("events.jsonl"), dedup.len());
    let outbox: Vec<u64> = read_log(&data.join("events.jsonl"))
        .iter()
        .map(|e| e.herald_id().unwrap())
        .collect();
    assert_eq!(
        dedup, outbox,
        "every committed event, in order (a batch may repeat after a kill)"
    );
}

/// A plain HTTP/1.0 GET; returns (status, body).
fn http_get(url: &str) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut tcp = std::net::TcpStream::connect(host).unwrap();
    write!(tcp, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, raw[split + 4..].to_vec())
}

#[test]
fn a_large_message_is_given_as_a_signed_link_that_http_serves() {
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("content.jsonl");
    let server = Server::start(&format!(
        "[[subscription]]\nname = \"content\"\nevents = [\"MessageNew\"]\n\
         content = {{ max_bytes = 64 }}\nsink = {{ type = \"file\", path = \"{}\" }}\n",
        path.display()
    ));
    server.add_user("paul", "pw");
    let lmtp = server.port("lmtp").to_string();
    server.python(
        "lmtp_deliver.py",
        &[
            &lmtp,
            "s@example.net",
            "paul@example.org",
            "--",
            "250",
            "--",
            "250",
        ],
    );
    let line = wait_lines(&path, 1).remove(0);
    let e = Event::from_json(&line).unwrap();
    assert!(e.message_content.is_none(), "over max_bytes");
    let link = e
        .extension(herald_events::vnd::CONTENT_URL)
        .and_then(|v| v.as_str())
        .unwrap()
        .to_owned();
    let http = server.addrs["http"];
    assert!(
        link.starts_with(&format!("http://{http}/messages?uri=")),
        "{link}"
    );
    let (status, body) = http_get(&link);
    assert_eq!(status, 200);
    assert_eq!(body.len() as u64, e.message_size.unwrap());
    assert!(String::from_utf8_lossy(&body).contains("Subject: Herald end-to-end"));
    // Another UID under the same signature is refused.
    let forged = link.replace("UID%3D1", "UID%3D2").replace("UID=1", "UID=2");
    assert_ne!(forged, link);
    assert_eq!(http_get(&forged).0, 403);
}

#[test]
fn events_a_receiver_never_takes_are_parked_and_listed() {
    // A webhook to a port nobody listens on, parking after one second.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Server::start(&format!(
        "[[subscription]]\nname = \"dead\"\nevents = [\"MessageNew\"]\n\
         retry = {{ initial_ms = 20, max_ms = 100, park_after_secs = 1 }}\n\
         sink = {{ type = \"webhook\", url = \"http://127.0.0.1:{closed}/hook\", timeout_ms = 500 }}\n"
    ));
    server.add_user("quinn", "pw");
    let lmtp = server.port("lmtp").to_string();
    server.python(
        "lmtp_deliver.py",
        &[
            &lmtp,
            "s@example.net",
            "quinn@example.org",
            "--",
            "250",
            "--",
            "250",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let parked = loop {
        let out = server.admin(&["events", "tail", "--parked"]);
        if !out.trim().is_empty() {
            break out;
        }
        assert!(Instant::now() < deadline, "nothing was parked");
        std::thread::sleep(Duration::from_millis(200));
    };
    let e = Event::from_json(parked.lines().next().unwrap()).unwrap();
    assert_eq!(e.event, EventType::MessageNew);
    let info = e.extension("vnd.herald.parked").unwrap();
    assert_eq!(info["subscription"], "dead");
    assert!(
        info["reason"].as_str().unwrap().contains("127.0.0.1"),
        "{info}"
    );
}

#[test]
fn the_subscriptions_command_lists_pauses_resumes_and_replays_through_the_server() {
    let out = tempfile::tempdir().unwrap();
    let feed = out.path().join("feed.jsonl");
    let server = Server::start(&format!(
        "[[subscription]]\nname = \"feed\"\nevents = [\"MessageNew\"]\n\
         sink = {{ type = \"file\", path = \"{}\" }}\n",
        feed.display()
    ));
    server.add_user("rita", "pw");
    server.admin(&["user", "add", "root", "--password", "rootpw", "--admin"]);
    let pw = out.path().join("root.pw");
    std::fs::write(&pw, "rootpw\n").unwrap();
    let url = format!("http://127.0.0.1:{}", server.port("http"));
    let cli = |args: &[&str]| {
        common::herald()
            .args([
                "subscriptions",
                "--url",
                &url,
                "--user",
                "root",
                "--password-file",
            ])
            .arg(&pw)
            .args(args)
            .output()
            .unwrap()
    };
    let ok = |args: &[&str]| {
        let o = cli(args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    };
    let lmtp = server.port("lmtp").to_string();
    let deliver = || {
        server.python(
            "lmtp_deliver.py",
            &[
                &lmtp,
                "s@example.net",
                "rita@example.org",
                "--",
                "250",
                "--",
                "250",
            ],
        );
    };
    deliver();
    wait_lines(&feed, 1);
    let list = ok(&["list"]);
    let row = list.lines().find(|l| l.starts_with("feed ")).unwrap();
    assert!(row.contains("active"), "{list}");
    assert!(list.lines().next().unwrap().contains("lag"), "{list}");

    assert!(ok(&["pause", "feed"]).contains("now paused"));
    deliver();
    // Paused: the event waits in the outbox and the list shows it behind.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = ok(&["list"]);
        let row = list
            .lines()
            .find(|l| l.starts_with("feed "))
            .unwrap()
            .to_owned();
        let cells: Vec<&str> = row.split_whitespace().collect();
        if cells[1] == "paused" && cells[3] != "0" && cells[3] != "-" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no lag shown while paused: {list}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        wait_lines(&feed, 1).len(),
        1,
        "nothing delivered while paused"
    );
    assert!(ok(&["resume", "feed"]).contains("now active"));
    wait_lines(&feed, 2);
    // Replay from the first event: both MessageNew events again.
    let json: serde_json::Value = serde_json::from_str(&ok(&["--json", "list"])).unwrap();
    assert_eq!(json[0]["name"], "feed");
    ok(&["replay", "feed", "--from", "1"]);
    let lines = wait_lines(&feed, 4);
    assert_eq!(lines[2], lines[0]);

    // Mistakes get an answer that says what is wrong.
    let unknown = cli(&["pause", "nope"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("nope"));
    std::fs::write(&pw, "wrong\n").unwrap();
    let refused = cli(&["list"]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("refused the credentials"));
    let nobody = common::herald()
        .args([
            "subscriptions",
            "--url",
            "http://127.0.0.1:1",
            "--token-file",
        ])
        .arg(&pw)
        .arg("list")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("is `herald serve` running"));
}
