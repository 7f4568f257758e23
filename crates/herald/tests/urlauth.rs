//! URLAUTH end to end (RFC 4467, RFC 5423 §4.1), on the real server, store and dispatcher,
//! driven by Python's `imaplib` (`tests/python/imap_urlauth.py`):
//!
//! - one user authorizes a URL with GENURLAUTH and another fetches it with URLFETCH; access
//!   identifiers, tampering, expiry and RESETKEY behave as a client would notice;
//! - the proof: a message delivered over LMTP that is larger than a subscription's
//!   `max_bytes`, with `reference = "urlauth"`, reaches a webhook as an event carrying
//!   `vnd.herald.urlauth`, which **another user's** imaplib session fetches with URLFETCH,
//!   getting exactly the message's bytes; the owner's RESETKEY then revokes it.
#![allow(clippy::unwrap_used)]

mod common;

use common::Server;
use herald_events::Event;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn users(server: &Server) {
    server.add_user("alice", "alice-pw");
    server.add_user("bob", "bob-pw");
    server.admin(&["user", "add", "root", "--password", "root-pw", "--admin"]);
}

#[test]
fn imaplib_generates_fetches_expires_and_revokes_urlauth_urls() {
    let server = Server::start("");
    users(&server);
    let out = server.python(
        "imap_urlauth.py",
        &[&server.port("imap").to_string(), "flows"],
    );
    assert!(out.ends_with("done\n"), "{out}");
}

/// A loopback webhook receiver: answers every POST 200 and keeps the bodies.
fn receiver() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&bodies);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let kept = Arc::clone(&kept);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                loop {
                    let mut length = 0usize;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let l = line.trim_end();
                        if l.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = l.split_once(':')
                            && k.eq_ignore_ascii_case("content-length")
                        {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0u8; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    kept.lock().unwrap().push(String::from_utf8(body).unwrap());
                    if writer
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (port, bodies)
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn a_large_delivery_carries_a_urlauth_url_another_user_fetches() {
    let (port, bodies) = receiver();
    let server = Server::start(&format!(
        "[[subscription]]\nname = \"big\"\nevents = [\"MessageNew\"]\n\
         content = {{ max_bytes = 64, reference = \"urlauth\", urlauth_expire_secs = 3600 }}\n\
         sink = {{ type = \"webhook\", url = \"http://127.0.0.1:{port}/hook\" }}\n"
    ));
    users(&server);
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
    let deadline = Instant::now() + Duration::from_secs(20);
    let event = loop {
        if let Some(b) = bodies.lock().unwrap().first() {
            break Event::from_json(b).unwrap();
        }
        assert!(Instant::now() < deadline, "no webhook request");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(event.message_content.is_none(), "over max_bytes");
    assert!(
        event.extension(herald_events::vnd::CONTENT_URL).is_none(),
        "reference = \"urlauth\" only"
    );
    let url = event
        .extension(herald_events::vnd::URLAUTH)
        .and_then(|v| v.as_str())
        .unwrap()
        .to_owned();
    let uri = event.uri.as_ref().unwrap().to_string();
    assert!(
        url.starts_with(&format!("{uri};EXPIRE=")) && url.contains(";URLAUTH=authuser:INTERNAL:"),
        "{url} names {uri}"
    );
    assert!(event.validate().is_ok(), "{:?}", event.validate());

    // Bob, another user, fetches it and gets exactly the stored message.
    let imap = server.port("imap").to_string();
    let fetched = server.python("imap_urlauth.py", &[&imap, "fetch", "bob", "bob-pw", &url]);
    let fetched = unhex(fetched.trim());
    let stored = server.python(
        "imap_urlauth.py",
        &[&imap, "body", "alice", "alice-pw", "INBOX", "1"],
    );
    assert_eq!(fetched, unhex(stored.trim()));
    assert_eq!(fetched.len() as u64, event.message_size.unwrap());
    assert!(String::from_utf8_lossy(&fetched).contains("Subject: Herald end-to-end"));

    // Tampered: NIL. The owner's RESETKEY revokes the event's URL too.
    let other = url.replace(";UID=1;", ";UID=2;");
    let nil = server.python(
        "imap_urlauth.py",
        &[&imap, "fetch", "bob", "bob-pw", &other],
    );
    assert_eq!(nil.trim(), "NIL");
    server.python("imap_urlauth.py", &[&imap, "reset", "alice", "alice-pw"]);
    let nil = server.python("imap_urlauth.py", &[&imap, "fetch", "bob", "bob-pw", &url]);
    assert_eq!(nil.trim(), "NIL");
}
