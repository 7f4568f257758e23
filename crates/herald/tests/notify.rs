//! IMAP NOTIFY (RFC 5465) end to end, the proof: Python's `imaplib` sets NOTIFY on the
//! real `herald serve` and then sends nothing, while LMTP deliveries and a second session
//! change the account; `tests/python/imap_notify.py` checks that EXISTS + FETCH, STATUS, LIST
//! and EXPUNGE arrive within a second, that the session's own changes and everything after
//! NOTIFY NONE do not, that IDLE under NOTIFY reports what NOTIFY asks for (VANISHED under
//! QRESYNC), and that bad filters and events get BAD and NO [BADEVENT].
#![allow(clippy::unwrap_used)]

mod common;

use common::Server;

#[test]
fn an_idle_less_session_hears_of_deliveries_and_mailbox_changes_at_once() {
    let server = Server::start("");
    server.add_user("alice", "alice-pw");
    let imap = server.port("imap").to_string();
    let lmtp = server.port("lmtp").to_string();
    let out = server.python("imap_notify.py", &[&imap, &lmtp]);
    assert!(out.ends_with("done\n"), "{out}");
    assert!(out.contains("inbox: ['* 1 EXISTS'"), "{out}");
    assert!(out.contains("idle: ok"), "{out}");
}
