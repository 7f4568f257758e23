//! The IMAP points clients compare with Dovecot, on the real server and store, driven by
//! Python's standard `imaplib` (`tests/python/imap_parity.py` checks each reply): keywords in
//! FLAGS, `\Recent`, MOVE into the selected mailbox, LSUB and LIST-EXTENDED, ESEARCH MODSEQ.
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
