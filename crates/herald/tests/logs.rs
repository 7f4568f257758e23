//! What an operator's log tools see on `herald serve`'s standard error: one line per login,
//! logout and failed login for IMAP, POP3 and HTTP, with the user and the client's address in a
//! stable form (fail2ban's `authentication (failed|refused) rip=<HOST>`), no colour codes when
//! standard error is a file, and one JSON object per line with `--log-format json`. HTTP logins
//! are Login events (`service` = `http`), once per account and address, not once per request.
#![allow(clippy::unwrap_used)]

mod common;

use common::Server;
use herald_events::EventType;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

/// One HTTP/1.1 request with Basic credentials; returns the status code.
fn http_get(server: &Server, path: &str, user: &str, password: &str) -> u16 {
    use base64_free::encode;
    let mut s = TcpStream::connect(server.addrs["http"]).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: x\r\nauthorization: Basic {}\r\nconnection: close\r\n\r\n",
        encode(&format!("{user}:{password}"))
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap()
}

/// Base64 for a Basic header, without a dependency for eight lines.
mod base64_free {
    pub fn encode(text: &str) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in text.as_bytes().chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

/// A POP3 login with a wrong password; true when it was refused.
fn pop3_wrong_password(server: &Server, user: &str) -> bool {
    let s = TcpStream::connect(server.addrs["pop3"]).unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    write!(w, "USER {user}\r\n").unwrap();
    line.clear();
    reader.read_line(&mut line).unwrap();
    write!(w, "PASS wrong\r\n").unwrap();
    line.clear();
    reader.read_line(&mut line).unwrap();
    let refused = line.starts_with("-ERR");
    write!(w, "QUIT\r\n").unwrap();
    refused
}

/// alice with one message (imap_login.py fetches the INBOX's flags).
fn alice(server: &Server) {
    server.add_user("alice", "alice-pw");
    let lmtp = server.port("lmtp").to_string();
    server.python(
        "lmtp_deliver.py",
        &[
            &lmtp,
            "s@example.net",
            "alice@example.org",
            "--",
            "250",
            "--",
            "250",
        ],
    );
}

fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn one_line_per_login_logout_and_failure_for_every_protocol() {
    let server = Server::start_logged("", "text");
    alice(&server);
    let imap = server.port("imap").to_string();
    let pop3 = server.port("pop3").to_string();
    server.python("imap_login.py", &[&imap, "alice", "alice-pw"]);
    assert_eq!(
        server.python("imap_login.py", &[&imap, "alice", "nope", "--wrong"]),
        "refused\n"
    );
    server.python("pop3_session.py", &[&pop3, "alice", "alice-pw", "1"]);
    assert!(pop3_wrong_password(&server, "alice"));
    // Two requests, one login; a wrong password is a failure.
    assert_eq!(
        http_get(&server, "/subscriptions", "alice", "alice-pw"),
        403
    );
    assert_eq!(
        http_get(&server, "/subscriptions", "alice", "alice-pw"),
        403
    );
    assert_eq!(http_get(&server, "/subscriptions", "alice", "nope"), 401);
    server.settled();
    let events = server.events();
    let log = server.log();

    // The HTTP login is an event too, once for the two requests.
    let http_logins: Vec<_> = events
        .iter()
        .filter(|e| e.event == EventType::Login && e.service.as_deref() == Some("http"))
        .collect();
    assert_eq!(http_logins.len(), 1, "{events:#?}");
    let login = http_logins[0];
    login.validate().unwrap();
    assert_eq!(login.user.as_deref(), Some("alice"));
    assert_eq!(login.client_ip, Some("127.0.0.1".parse().unwrap()));
    assert_eq!(login.server_port, Some(server.port("http")));
    assert!(
        !events
            .iter()
            .any(|e| e.event == EventType::Logout && e.service.as_deref() == Some("http")),
        "HTTP has no sessions, so no Logout"
    );

    assert!(!log.contains('\u{1b}'), "no colour codes in a file:\n{log}");
    for (service, logins, logouts) in [("imap", 1, 1), ("pop", 1, 1), ("http", 1, 0)] {
        let who = format!("service={service} user=\"alice\" rip=127.0.0.1");
        assert_eq!(
            count(&log, &format!("login {who}")),
            logins,
            "{service}:\n{log}"
        );
        assert_eq!(
            count(&log, &format!("logout {who}")),
            logouts,
            "{service}:\n{log}"
        );
    }
    for service in ["imap", "pop3", "http"] {
        let failed =
            format!("authentication failed rip=127.0.0.1 user=\"alice\" service=\"{service}\"");
        assert_eq!(count(&log, &failed), 1, "{service}:\n{log}");
    }
    let (status, _dir) = server.stop();
    assert!(status.success());
}

#[test]
fn json_logs_are_one_object_per_line() {
    json_logs("", "json");
}

#[test]
fn the_config_file_can_ask_for_json_logs() {
    json_logs("[log]\nformat = \"json\"\n", "");
}

fn json_logs(config: &str, flag: &str) {
    let server = Server::start_logged(config, flag);
    alice(&server);
    let imap = server.port("imap").to_string();
    server.python("imap_login.py", &[&imap, "alice", "alice-pw"]);
    server.python("imap_login.py", &[&imap, "alice", "nope", "--wrong"]);
    server.settled();
    let log = server.log();
    let records: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let find = |message: &str| {
        records
            .iter()
            .find(|r| r["message"] == message)
            .unwrap_or_else(|| panic!("no {message}: {log}"))
    };
    let login = find("login");
    assert_eq!(login["level"], "INFO");
    assert_eq!(login["service"], "imap");
    assert_eq!(login["rip"], "127.0.0.1");
    assert!(login["timestamp"].is_string());
    let failed = find("authentication failed");
    assert_eq!(failed["level"], "WARN");
    assert_eq!(failed["rip"], "127.0.0.1");
    assert!(failed["user"].as_str().unwrap().contains("alice"));
    find("logout");
}
