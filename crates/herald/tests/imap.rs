//! IMAP end to end: Python's standard `imaplib` drives the real `herald serve` through every
//! command (`tests/python/imap_session.py` checks each reply), and this test checks the events
//! the server wrote to its event log: each one caused by IMAP carries service `imap`, the user,
//! the admin when one acted for the user, the client and server addresses and a timestamp.
#![allow(clippy::unwrap_used)]

mod common;

use common::Server;
use herald_events::{Event, EventType, vnd};

fn of(events: &[Event], t: EventType) -> Vec<&Event> {
    events.iter().filter(|e| e.event == t).collect()
}

#[test]
fn imaplib_drives_every_command_and_events_follow() {
    let server = Server::start("");
    server.add_user("alice", "alice-pw");
    server.add_user("bob", "bob-pw");
    server.admin(&["user", "add", "root", "--password", "root-pw", "--admin"]);
    // The accounts' own events (AccountCreate, their INBOX) come before the sessions'.
    let accounts = server.settled();
    let port = server.port("imap");
    let out = server.python("imap_session.py", &[&port.to_string()]);
    assert!(out.ends_with("done\n"), "{out}");

    // Five logins end in five Logouts: four LOGOUTs and one dropped connection.
    let events = server.wait_for(accounts, |e| of(e, EventType::Logout).len() == 5);
    for e in &events {
        e.validate().unwrap();
        assert_eq!(e.service.as_deref(), Some("imap"), "{e:?}");
        assert_eq!(e.client_ip, Some("127.0.0.1".parse().unwrap()), "{e:?}");
        assert!(e.client_port.is_some_and(|p| p > 0), "{e:?}");
        assert_eq!(e.server_domain.as_deref(), Some("127.0.0.1"), "{e:?}");
        assert_eq!(e.server_port, Some(port), "{e:?}");
        assert!(e.timestamp.is_some(), "{e:?}");
        assert!(e.user.is_some(), "{e:?}");
    }
    let logins = of(&events, EventType::Login);
    assert_eq!(logins.len(), 5, "alice ×3, root as alice, bob: {logins:#?}");
    let by_root: Vec<_> = events
        .iter()
        .filter(|e| e.admin.as_deref() == Some("root"))
        .map(|e| e.event.to_string())
        .collect();
    assert_eq!(by_root, ["Login", "QuotaChange", "Logout"]);
    assert!(
        events
            .iter()
            .filter(|e| e.admin.as_deref() == Some("root"))
            .all(|e| e.user.as_deref() == Some("alice"))
    );
    let mut disconnects: Vec<String> = of(&events, EventType::Logout)
        .iter()
        .map(|e| {
            e.extension(vnd::DISCONNECT)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    disconnects.sort();
    assert_eq!(
        disconnects,
        ["abort", "graceful", "graceful", "graceful", "graceful"]
    );
    assert!(
        of(&events, EventType::Logout)
            .iter()
            .all(|e| e.extension(vnd::SESSION_MS).is_some())
    );

    // Mailbox commands.
    let uris = |t: EventType| -> Vec<String> {
        of(&events, t)
            .iter()
            .map(|e| e.uri.as_ref().unwrap().to_string())
            .collect()
    };
    let created = uris(EventType::MailboxCreate);
    assert_eq!(created.len(), 3, "{created:?}");
    assert!(
        created[0].contains("/Archive") && created[1].contains("/Work/Projects"),
        "{created:?}"
    );
    assert!(created[2].contains("/Trash"));
    assert_eq!(of(&events, EventType::MailboxRename).len(), 1);
    assert_eq!(of(&events, EventType::MailboxSubscribe).len(), 1);
    assert_eq!(of(&events, EventType::MailboxUnSubscribe).len(), 1);
    assert_eq!(uris(EventType::MailboxDelete).len(), 1);
    assert!(uris(EventType::MailboxDelete)[0].contains("/Work/Done"));

    // APPEND ×2, COPY of two, MOVE of one, and the writer's APPEND during IDLE.
    let causes: Vec<String> = of(&events, EventType::MessageAppend)
        .iter()
        .map(|e| {
            e.extension(vnd::CAUSE)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        causes,
        ["append", "append", "copy", "copy", "move", "append"]
    );
    // FETCH BODY[] set \Seen on the unread message; BODY.PEEK and RFC822 of a read one did not.
    assert_eq!(of(&events, EventType::MessageRead).len(), 1);
    // STORE: +\Flagged $Work, -\Flagged, -\Seen (silent), +\Deleted ×2 (INBOX, Archive).
    assert_eq!(of(&events, EventType::FlagsSet).len(), 1);
    assert_eq!(of(&events, EventType::FlagsClear).len(), 2);
    assert_eq!(of(&events, EventType::MessageTrash).len(), 2);
    // MOVE, EXPUNGE, UID EXPUNGE, CLOSE.
    assert_eq!(of(&events, EventType::MessageExpunge).len(), 4);
    // SETQUOTA by root for alice, then alice's APPEND over quota.
    assert_eq!(of(&events, EventType::QuotaChange).len(), 1);
    let exceed = of(&events, EventType::QuotaExceed);
    assert_eq!(exceed.len(), 1);
    assert_eq!(exceed[0].user.as_deref(), Some("alice"));
}

#[test]
fn starttls_logindisabled_and_imaps() {
    let certs = tempfile::tempdir().unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (c, k) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    std::fs::write(&c, cert.cert.pem()).unwrap();
    std::fs::write(&k, cert.signing_key.serialize_pem()).unwrap();
    let server = Server::start(&format!(
        "[imap]\nlisten = [\"127.0.0.1:0\"]\ntls_listen = [\"127.0.0.1:0\"]\nplaintext_auth = false\n\
         [tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        c.display(),
        k.display()
    ));
    server.add_user("erin", "pw");
    let (imap, imaps) = (
        server.port("imap").to_string(),
        server.port("imaps").to_string(),
    );
    let out = server.python("imap_tls.py", &[&imap, &imaps, "erin", "pw"]);
    assert_eq!(out.trim(), "ok");
    let events = server.wait_for(0, |e| of(e, EventType::Logout).len() == 2);
    let ports: Vec<_> = of(&events, EventType::Login)
        .iter()
        .map(|e| e.server_port.unwrap().to_string())
        .collect();
    assert_eq!(ports, [imap, imaps]);
    assert!(events.iter().all(|e| e.validate().is_ok()));
}
