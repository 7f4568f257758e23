//! The IMAP points clients compare with Dovecot, on the real server and store, driven by
//! Python's standard `imaplib` (`tests/python/imap_parity.py` checks each reply): keywords in
//! FLAGS, `\Recent`, MOVE into the selected mailbox, LSUB and LIST-EXTENDED, ESEARCH MODSEQ;
//! and (`tests/python/imap_context.py`) THREADID, VANISHED (EARLIER) from tombstones and
//! CONTEXT=SEARCH/SORT update contexts across two connections.
#![allow(clippy::unwrap_used)]

mod common;

use common::Server;

#[test]
fn imaplib_sees_keywords_recent_and_the_rfc_corner_cases() {
    let server = Server::start("");
    server.add_user("carol", "carol-pw");
    let port = server.port("imap");
    let out = server.python("imap_parity.py", &[&port.to_string()]);
    assert!(out.ends_with("done\n"), "{out}");
    // \Recent is committed: after a restart the messages are not recent again.
    let (status, dir) = server.stop();
    assert!(status.success(), "{status}");
    let server = Server::start_in(dir, "");
    let port = server.port("imap");
    let out = server.python("imap_recent_after_restart.py", &[&port.to_string()]);
    assert!(out.ends_with("done\n"), "{out}");
}

#[test]
fn imaplib_threads_resynchronises_and_follows_update_contexts() {
    let server = Server::start("");
    server.add_user("erin", "erin-pw");
    let port = server.port("imap");
    let out = server.python("imap_context.py", &[&port.to_string()]);
    assert!(out.ends_with("done\n"), "{out}");
}

/// One LOGIN on a fresh connection; true if it was accepted.
fn login(port: u16, user: &str, password: &str) -> bool {
    use std::io::{BufRead, BufReader, Write};
    let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    (&s).write_all(format!("a LOGIN {user} {password}\r\n").as_bytes())
        .unwrap();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if let Some(rest) = line.strip_prefix("a ") {
            return rest.starts_with("OK");
        }
    }
}

#[test]
fn a_password_changed_with_the_cli_ends_cached_logins_at_once() {
    let server = Server::start("");
    server.add_user("dave", "first-pw");
    let port = server.port("imap");
    // The second login is served from the authentication cache.
    assert!(login(port, "dave", "first-pw"));
    assert!(login(port, "dave", "first-pw"));
    // `herald user passwd` is another process writing the same data directory.
    server.admin(&["user", "passwd", "dave", "--password", "second-pw"]);
    assert!(
        !login(port, "dave", "first-pw"),
        "the old password still worked"
    );
    assert!(login(port, "dave", "second-pw"));
}
