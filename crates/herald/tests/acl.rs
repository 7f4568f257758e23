//! Shared mailboxes end to end (RFC 4314 with RFC 5423 §4.4): Python's `imaplib` shares a
//! mailbox between two users of the real `herald serve` (`tests/python/imap_acl.py` checks
//! every reply), this test checks the events each step committed, and a grantee's SSE stream
//! shows a shared mailbox's deliveries until the moment access is revoked.
#![allow(clippy::unwrap_used)]

mod common;

use common::Server;
use herald_events::{Event, EventType, vnd};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn of(events: &[Event], t: EventType) -> Vec<&Event> {
    events.iter().filter(|e| e.event == t).collect()
}

fn url(e: &Event) -> String {
    e.mailbox_id.as_ref().unwrap().to_string()
}

#[test]
fn imaplib_shares_a_mailbox_and_the_events_follow_each_step() {
    let server = Server::start("");
    server.add_user("alice", "alice-pw");
    server.add_user("bob", "bob-pw");
    let mark = server.settled();
    let port = server.port("imap").to_string();
    let out = server.python("imap_acl.py", &[&port]);
    let out: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(
        out["acl_after_grant"]
            .as_str()
            .unwrap()
            .ends_with("alice lrswipkxtea bob lr"),
        "{out}"
    );

    let events = server.wait_for(mark, |e| of(e, EventType::Logout).len() == 2);
    for e in &events {
        e.validate().unwrap();
    }
    // Three ACL changes: grant lr, add i, delete; each names bob and his rights after it.
    let acl = of(&events, EventType::AclChange);
    let rights: Vec<&str> = acl
        .iter()
        .map(|e| e.extension(vnd::ACL_RIGHTS).unwrap().as_str().unwrap())
        .collect();
    assert_eq!(rights, ["lr", "lri", ""]);
    for e in &acl {
        assert_eq!(e.extension(vnd::ACL_IDENTIFIER).unwrap(), "bob");
        assert_eq!(e.user.as_deref(), Some("alice"));
        assert!(url(e).starts_with("imap://alice@"), "{e:?}");
        assert!(url(e).contains("/Team;UIDVALIDITY="), "{e:?}");
    }
    // bob's consumers learn of the mailbox when it becomes visible to him, and of its end
    // when it no longer is: MailboxCreate and MailboxDelete with user bob, named as he sees it.
    let for_bob = |t| -> Vec<&Event> {
        of(&events, t)
            .into_iter()
            .filter(|e| e.user.as_deref() == Some("bob"))
            .collect()
    };
    let created = for_bob(EventType::MailboxCreate);
    let deleted = for_bob(EventType::MailboxDelete);
    assert_eq!((created.len(), deleted.len()), (1, 1), "{events:#?}");
    assert!(
        url(created[0]).starts_with("imap://bob@")
            && url(created[0]).contains("/user/alice/Team;UIDVALIDITY="),
        "{:?}",
        created[0]
    );
    assert_eq!(url(created[0]), url(deleted[0]));
    // The grant comes right before its MailboxCreate, in one transaction.
    let pos = |e: &Event| {
        events
            .iter()
            .position(|x| x.herald_id() == e.herald_id())
            .unwrap()
    };
    assert_eq!(pos(created[0]), pos(acl[0]) + 1);
    assert_eq!(pos(deleted[0]), pos(acl[2]) + 1);
    // bob's append into alice's mailbox: his event, alice's mailbox. His refused STORE and
    // APPEND committed nothing, and his FETCH set no \Seen (he has no `s`).
    let appends = of(&events, EventType::MessageAppend);
    assert_eq!(appends.len(), 2, "alice's and bob's: {appends:#?}");
    assert_eq!(appends[1].user.as_deref(), Some("bob"));
    assert!(
        appends[1]
            .uri
            .as_ref()
            .unwrap()
            .to_string()
            .starts_with("imap://alice@"),
        "{:?}",
        appends[1]
    );
    assert!(of(&events, EventType::FlagsSet).is_empty());
    assert!(of(&events, EventType::MessageRead).is_empty());
}

/// The proof: bob's SSE stream shows a delivery into alice's INBOX while it is shared
/// with him, and not one made after alice revoked his access.
#[test]
fn a_revoked_acl_removes_the_mailbox_from_the_grantees_stream() {
    let server = Server::start("");
    server.add_user("alice", "alice-pw");
    server.add_user("bob", "bob-pw");
    let imap = server.port("imap").to_string();
    let lmtp = server.port("lmtp").to_string();
    let deliver = |rcpt: &str| {
        server.python(
            "lmtp_deliver.py",
            &[&lmtp, "s@example.net", rcpt, "--", "250", "--", "250"],
        );
    };
    server.python(
        "imap_setacl.py",
        &[&imap, "alice", "alice-pw", "set", "INBOX", "bob", "lr"],
    );
    // bob's live stream of MessageNew after everything so far, read by a reader that prints
    // each event as it arrives; the revocation waits for the first line, so bob's feed has
    // passed the first delivery before the ACL changes, however late the reader connects.
    let last = server.admin(&["events", "tail"]);
    let from = Event::from_json(last.lines().last().unwrap())
        .unwrap()
        .herald_id()
        .unwrap();
    let url = format!(
        "http://{}/events/stream?events=MessageNew&from={from}",
        server.addrs["http"]
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/sse_read.py");
    let mut reader = Command::new("python3")
        .args([script, &url, "bob", "bob-pw", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(reader.stdout.take().unwrap()).lines();

    deliver("alice@example.org");
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["data"]["event"], "MessageNew");
    assert!(
        first["data"]["uri"]
            .as_str()
            .unwrap()
            .starts_with("imap://alice@"),
        "shared with bob, so in his stream: {first}"
    );

    server.python(
        "imap_setacl.py",
        &[&imap, "alice", "alice-pw", "delete", "INBOX", "bob"],
    );
    deliver("alice@example.org");
    deliver("bob@example.org");
    let second: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert!(
        second["data"]["uri"]
            .as_str()
            .unwrap()
            .starts_with("imap://bob@"),
        "after the revocation alice's delivery is not in bob's stream: {second}"
    );
    assert!(reader.wait().unwrap().success());

    // Both of alice's deliveries happened, in order around the revocation.
    let events = server.events();
    let news: Vec<&Event> = of(&events, EventType::MessageNew)
        .into_iter()
        .filter(|e| e.user.as_deref() == Some("alice"))
        .collect();
    assert_eq!(news.len(), 2);
    let revoked = of(&events, EventType::AclChange)
        .last()
        .unwrap()
        .herald_id()
        .unwrap();
    assert!(news[0].herald_id().unwrap() < revoked && revoked < news[1].herald_id().unwrap());
    assert_eq!(
        first["data"]["vnd.herald.id"].as_u64(),
        news[0].herald_id(),
        "the delivery before the revocation reached bob"
    );
}

/// An administrator's SETQUOTA on `user/NAME` (the Other Users namespace) sets that account's
/// limit and commits QuotaChange naming the account's quota root.
#[test]
fn an_admin_sets_another_users_quota_by_root_name() {
    let server = Server::start("");
    server.add_user("alice", "alice-pw");
    server.add_user("bob", "bob-pw");
    server.admin(&["user", "add", "root", "--password", "root-pw", "--admin"]);
    let mark = server.settled();
    let port = server.port("imap").to_string();
    assert_eq!(server.python("imap_quota_root.py", &[&port]), "done\n");
    let events = server.wait_for(mark, |e| of(e, EventType::Logout).len() == 3);
    let changes = of(&events, EventType::QuotaChange);
    assert_eq!(changes.len(), 1, "bob's refused SETQUOTA changed nothing");
    let e = changes[0];
    e.validate().unwrap();
    assert_eq!(e.user.as_deref(), Some("root"));
    assert_eq!(
        e.uri.as_ref().unwrap().to_string(),
        format!("imap://alice@{}", e.server_fqdn.as_deref().unwrap())
    );
    assert_eq!(e.disk_quota, Some(1000));
}

/// The "Shared" namespace end to end: an administrator creates `#shared/support` and opens
/// it with SETACL; bob appends, carol reads (`tests/python/imap_shared_ns.py` checks every
/// reply). The events name the mailbox by an owner-less URL and the user who acted, and
/// carol's SSE stream shows bob's ticket because she may read the mailbox.
#[test]
fn an_administrator_runs_a_shared_namespace_mailbox_others_use() {
    let server = Server::start("");
    server.admin(&["user", "add", "root", "--password", "root-pw", "--admin"]);
    server.add_user("bob", "bob-pw");
    server.add_user("carol", "carol-pw");
    let mark = server.settled();
    let port = server.port("imap").to_string();
    let out = server.python("imap_shared_ns.py", &[&port]);
    let out: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    // GETACL lists the grants and no owner: the namespace has none.
    assert!(
        out["acl"]
            .as_str()
            .unwrap()
            .ends_with("#shared/support anyone lr bob lrsi"),
        "{out}"
    );

    let events = server.wait_for(mark, |e| of(e, EventType::Logout).len() == 4);
    for e in &events {
        e.validate().unwrap();
    }
    let fqdn = events[0].server_fqdn.clone().unwrap();
    let create = of(&events, EventType::MailboxCreate);
    let root_create: Vec<_> = create
        .iter()
        .filter(|e| e.user.as_deref() == Some("root"))
        .collect();
    assert_eq!(root_create.len(), 1, "{create:#?}");
    assert!(
        url(root_create[0]).starts_with(&format!("imap://{fqdn}/%23shared/support;UIDVALIDITY=")),
        "{:?}",
        root_create[0]
    );
    // bob learns of the mailbox when `l` reaches him, under the name he uses for it.
    assert!(
        create.iter().any(|e| e.user.as_deref() == Some("bob")
            && url(e).starts_with("imap://bob@")
            && url(e).contains("/%23shared/support;UIDVALIDITY=")),
        "{create:#?}"
    );
    let appends = of(&events, EventType::MessageAppend);
    assert_eq!(appends.len(), 1, "carol's refused APPEND committed nothing");
    assert_eq!(appends[0].user.as_deref(), Some("bob"));
    let uri = appends[0].uri.as_ref().unwrap();
    assert_eq!(uri.user, None);
    assert_eq!(uri.mailbox.as_deref(), Some("#shared/support"));

    // carol's stream, from the start, holds bob's ticket (readable through `anyone`).
    let url = format!(
        "http://{}/events/stream?events=MessageAppend&from=0",
        server.addrs["http"]
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/sse_read.py");
    let got = Command::new("python3")
        .args([script, &url, "carol", "carol-pw", "1"])
        .output()
        .unwrap();
    assert!(got.status.success());
    let first: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&got.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(
        first["data"]["vnd.herald.id"].as_u64(),
        appends[0].herald_id(),
        "{first}"
    );
    // The pseudo-account is no user an operator manages.
    let users = server.admin(&["user", "list"]);
    assert!(!users.contains("#shared"), "{users}");
}
