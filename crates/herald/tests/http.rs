//! The HTTP side of the real `herald serve`: Server-Sent Events read by Python's urllib
//! (visibility per user, resumption with Last-Event-ID, 401 without credentials) after real
//! LMTP deliveries, and the admin API answering an administrator.
#![allow(clippy::unwrap_used)]

mod common;

use common::Server;
use std::io::{Read, Write};

fn sse(
    server: &Server,
    path: &str,
    user: &str,
    pw: &str,
    n: usize,
    last: Option<u64>,
) -> Vec<serde_json::Value> {
    let url = format!("http://{}{path}", server.addrs["http"]);
    let n = n.to_string();
    let last = last.map(|l| l.to_string());
    let mut args = vec![url.as_str(), user, pw, n.as_str()];
    if let Some(l) = &last {
        args.push(l);
    }
    server
        .python("sse_read.py", &args)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A minimal HTTP/1.1 GET with Basic credentials; returns the status line and the body.
fn get(server: &Server, path: &str, basic: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(server.addrs["http"]).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {basic}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

#[test]
fn sse_streams_committed_events_per_user_and_resumes() {
    let server = Server::start("");
    assert!(server.addrs.contains_key("http"), "{:?}", server.addrs);
    server.add_user("alice", "alice-pw");
    server.add_user("bob", "bob-pw");
    server.admin(&["user", "add", "root", "--password", "root-pw", "--admin"]);
    let lmtp = server.port("lmtp").to_string();
    server.python(
        "lmtp_deliver.py",
        &[
            &lmtp,
            "s@example.net",
            "bob@example.org",
            "alice@example.org",
            "--",
            "250",
            "250",
            "--",
            "250",
            "250",
        ],
    );

    // alice sees her MessageNew only.
    let got = sse(
        &server,
        "/events/stream?from=0&events=MessageNew",
        "alice",
        "alice-pw",
        1,
        None,
    );
    assert_eq!(got[0]["event"], "MessageNew");
    assert_eq!(got[0]["data"]["event"], "MessageNew");
    assert_eq!(got[0]["data"]["user"], "alice");
    let alice_id = got[0]["data"]["vnd.herald.id"].as_u64().unwrap();
    assert_eq!(got[0]["id"], alice_id.to_string());

    // The admin sees both; resuming after the first gives the second.
    let all = sse(
        &server,
        "/events/stream?from=0&events=MessageNew",
        "root",
        "root-pw",
        2,
        None,
    );
    let mut users: Vec<&str> = all
        .iter()
        .map(|e| e["data"]["user"].as_str().unwrap())
        .collect();
    users.sort_unstable();
    assert_eq!(users, ["alice", "bob"]);
    let first = all[0]["data"]["vnd.herald.id"].as_u64().unwrap();
    let resumed = sse(
        &server,
        "/events/stream?events=MessageNew",
        "root",
        "root-pw",
        1,
        Some(first),
    );
    assert_eq!(resumed[0]["data"], all[1]["data"]);

    // No credentials: 401 with challenges.
    let refused = sse(&server, "/events/stream", "-", "-", 0, None);
    assert_eq!(refused[0]["status"], 401);
    assert!(
        refused[0]["challenges"].to_string().contains("Basic"),
        "{refused:?}"
    );

    // The admin API answers the administrator only.
    let (status, body) = get(&server, "/subscriptions", "cm9vdDpyb290LXB3"); // root:root-pw
    assert!(status.contains(" 200 "), "{status}");
    assert!(body.contains('['), "{body}");
    let (status, _) = get(&server, "/subscriptions", "YWxpY2U6YWxpY2UtcHc="); // alice:alice-pw
    assert!(status.contains(" 403 "), "{status}");
}
