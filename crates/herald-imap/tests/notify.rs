//! NOTIFY (RFC 5465) against the in-memory store: the memory backend's operations commit no
//! events, so each test makes a change with the backend and then pushes the event the real
//! store would commit for it ([`MemoryBackend::push_event`]), and calls the session's wake-up
//! the way the driver does when the outbox watch ticks. The real store and the real binary are
//! exercised by `crates/herald/tests/notify.rs`.

#![allow(clippy::unwrap_used)]

mod harness;

use harness::{T, backend, check_codec};
use herald_events::{Event, EventType, ImapUrl};
use herald_imap::session::memory::MemoryBackend;
use herald_imap::session::notify::{METADATA_CHANGE, METADATA_ENTRIES, OVERFLOW_AT};

const HOST: &str = "mail.example.org";

fn msg(subject: &str) -> Vec<u8> {
    format!("From: a@example.org\r\nSubject: {subject}\r\n\r\nbody\r\n").into_bytes()
}

/// An event about `user`'s `mailbox` as a delivery (service `lmtp`) would commit it.
fn event(t: EventType, user: &str, mailbox: Option<&str>) -> Event {
    let mut e = Event::new(t);
    e.user = Some(user.into());
    e.service = Some("lmtp".into());
    if let Some(m) = mailbox {
        let url = ImapUrl::mailbox(HOST, Some(user), m, Some(1));
        e.mailbox_id = Some(url.clone());
        e.uri = Some(url);
    }
    e
}

/// The same event as committed by the session under test (its service and addresses).
fn own(mut e: Event) -> Event {
    let p = harness::peer();
    e.service = Some("imap".into());
    e.client_ip = Some(p.client.ip());
    e.client_port = Some(p.client.port());
    e.server_domain = Some(p.server.ip().to_string());
    e.server_port = Some(p.server.port());
    e
}

/// What the driver's wake-up writes now, line by line.
async fn wake(t: &mut T) -> Vec<String> {
    let mut out: Vec<u8> = Vec::new();
    t.s.notify_wakeup(&mut out).await.unwrap();
    // imap-codec is built without METADATA (RFC 5464) support.
    if !out.starts_with(b"* METADATA") {
        check_codec(&out);
    }
    String::from_utf8(out)
        .unwrap()
        .split_terminator("\r\n")
        .map(str::to_owned)
        .collect()
}

async fn alice(b: &MemoryBackend) -> T {
    let mut t = T::new(b);
    t.login("alice", "secret").await;
    t
}

#[tokio::test]
async fn capability_and_bad_requests() {
    let b = backend();
    let mut t = alice(&b).await;
    let out = t.send("a CAPABILITY").await;
    assert!(
        out.lines()
            .next()
            .unwrap()
            .split(' ')
            .any(|c| c == "NOTIFY")
    );
    t.x(
        "b NOTIFY SET (personal (MessageNew))",
        &["b BAD MessageNew and MessageExpunge must be given together"],
    )
    .await;
    t.x(
        "c NOTIFY SET (selected (MessageNew MessageExpunge SubscriptionChange))",
        &["c BAD only message events may be given for the selected mailbox"],
    )
    .await;
    t.x(
        "d NOTIFY SET (inboxes (MessageNew MessageExpunge AnnotationChange))",
        &[
            "d NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange \
           MailboxMetadataChange ServerMetadataChange)] unsupported event",
        ],
    )
    .await;
    t.x("e NOTIFY SET (personal (x-Future))", &["e NO [BADEVENT (…"])
        .await;
    t.x("f NOTIFY SET (anything NONE)", &["f BAD syntax error…"])
        .await;
    assert!(!t.s.notifying());
    let mut n = T::new(&b);
    n.x("g NOTIFY NONE", &["g BAD NOTIFY needs authentication"])
        .await;
}

#[tokio::test]
async fn other_mailboxes_get_status_and_other_users_events_are_ignored() {
    let b = backend();
    let mut t = alice(&b).await;
    t.send("a CREATE Work").await;
    t.send("b CREATE Lists/imap").await;
    b.deliver("alice", "Work", &msg("old")).unwrap();
    // STATUS: the current state of every mailbox the message events cover, before the OK.
    t.x(
        "c NOTIFY SET STATUS (subtree Lists (MessageNew MessageExpunge)) \
         (mailboxes (Work Nowhere) (MessageNew MessageExpunge FlagChange))",
        &[
            "* STATUS Lists (MESSAGES 0 UIDNEXT 1 UIDVALIDITY …",
            "* STATUS Lists/imap (MESSAGES 0 UIDNEXT 1 UIDVALIDITY …",
            "* STATUS Work (MESSAGES 1 UIDNEXT 2 UIDVALIDITY …",
            "c OK NOTIFY completed",
        ],
    )
    .await;
    assert!(wake(&mut t).await.is_empty());
    b.deliver("alice", "Work", &msg("new")).unwrap();
    b.push_event(event(EventType::MessageNew, "alice", Some("Work")));
    b.deliver("bob", "INBOX", &msg("bob's")).unwrap();
    b.push_event(event(EventType::MessageNew, "bob", Some("INBOX")));
    // INBOX is not covered: nothing for it.
    b.deliver("alice", "INBOX", &msg("inbox")).unwrap();
    b.push_event(event(EventType::MessageNew, "alice", Some("INBOX")));
    let lines = wake(&mut t).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("* STATUS Work (MESSAGES 2 UIDNEXT 3 UIDVALIDITY ")
            && lines[0].ends_with(" UNSEEN 2)"),
        "{lines:?}"
    );
    // `inboxes`: INBOX and the subscribed folders `user+folder@` deliveries reach.
    t.x(
        "i NOTIFY SET (inboxes (MessageNew MessageExpunge))",
        &["i OK NOTIFY completed"],
    )
    .await;
    t.send("j SUBSCRIBE Lists/imap").await;
    // Its own subscription is not notified, but the filter follows it.
    b.push_event(own(event(
        EventType::MailboxSubscribe,
        "alice",
        Some("Lists/imap"),
    )));
    for m in ["INBOX", "Work", "Lists/imap"] {
        b.push_event(event(EventType::MessageNew, "alice", Some(m)));
    }
    let lines = wake(&mut t).await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("* STATUS INBOX (MESSAGES 1 ")
            && lines[1].starts_with("* STATUS Lists/imap (MESSAGES 0 "),
        "{lines:?}"
    );
    // The session's own APPEND is answered by its command, not notified again.
    t.send("x APPEND Work {5+}\r\nhello").await;
    b.push_event(own(event(EventType::MessageAppend, "alice", Some("Work"))));
    assert!(wake(&mut t).await.is_empty());
    // Flag changes count where asked for, with HIGHESTMODSEQ once CONDSTORE is on.
    t.send("d ENABLE CONDSTORE").await;
    t.x(
        "k NOTIFY SET (subtree Lists (MessageNew MessageExpunge)) \
         (mailboxes (Work Nowhere) (MessageNew MessageExpunge FlagChange))",
        &["k OK NOTIFY completed"],
    )
    .await;
    b.push_event(event(EventType::FlagsSet, "alice", Some("Work")));
    b.push_event(event(EventType::FlagsSet, "alice", Some("Lists/imap")));
    let lines = wake(&mut t).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("* STATUS Work (") && lines[0].contains(" HIGHESTMODSEQ "),
        "{lines:?}"
    );
    // NOTIFY NONE: nothing more.
    t.x("e NOTIFY NONE", &["e OK NOTIFY completed"]).await;
    assert!(!t.s.notifying());
    b.push_event(event(EventType::MessageNew, "alice", Some("Work")));
    assert!(wake(&mut t).await.is_empty());
}

#[tokio::test]
async fn the_selected_mailbox_gets_exists_and_the_requested_fetch() {
    let b = backend();
    let mut t = alice(&b).await;
    t.send("a SELECT INBOX").await;
    t.x(
        "b NOTIFY SET (selected (MessageNew (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)]) \
         MessageExpunge))",
        &["b OK NOTIFY completed"],
    )
    .await;
    b.deliver("alice", "INBOX", &msg("hello")).unwrap();
    b.push_event(event(EventType::MessageNew, "alice", Some("INBOX")));
    let lines = wake(&mut t).await;
    assert_eq!(
        lines,
        [
            "* 1 EXISTS",
            "* 1 RECENT",
            "* 1 FETCH (UID 1 FLAGS (\\Recent) BODY[HEADER.FIELDS (SUBJECT)] {18}",
            "Subject: hello",
            "",
            ")",
        ],
    );
    // Another session's expunge: EXPUNGE at once, with no command in progress.
    b.deliver("alice", "INBOX", &msg("second")).unwrap();
    b.push_event(event(EventType::MessageNew, "alice", Some("INBOX")));
    wake(&mut t).await;
    let mut other = alice(&b).await;
    other.send("x SELECT INBOX").await;
    other.send("y STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    other.send("z EXPUNGE").await;
    // The flag change alone was not asked for: it wakes nothing.
    b.push_event(event(EventType::MessageTrash, "alice", Some("INBOX")));
    assert!(wake(&mut t).await.is_empty());
    b.push_event(event(EventType::MessageExpunge, "alice", Some("INBOX")));
    assert_eq!(wake(&mut t).await, ["* 1 EXPUNGE"]);
}

#[tokio::test]
async fn selected_delayed_keeps_expunges_for_the_next_command() {
    let b = backend();
    b.deliver("alice", "INBOX", &msg("one")).unwrap();
    let mut t = alice(&b).await;
    t.send("a SELECT INBOX").await;
    t.x(
        "b NOTIFY SET (selected-delayed (MessageNew MessageExpunge))",
        &["b OK NOTIFY completed"],
    )
    .await;
    let mut other = alice(&b).await;
    other.send("x SELECT INBOX").await;
    other.send("y STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    other.send("z EXPUNGE").await;
    b.push_event(event(EventType::MessageExpunge, "alice", Some("INBOX")));
    assert!(wake(&mut t).await.is_empty());
    // A new message waits behind the expunge too, so sequence numbers never shift early.
    b.deliver("alice", "INBOX", &msg("two")).unwrap();
    b.push_event(event(EventType::MessageNew, "alice", Some("INBOX")));
    assert!(wake(&mut t).await.is_empty());
    t.x(
        "c NOOP",
        &[
            "* 1 EXPUNGE",
            "* 1 EXISTS",
            "* 1 RECENT",
            "c OK NOOP completed",
        ],
    )
    .await;
    // With nothing pending, new messages are reported between commands again.
    b.deliver("alice", "INBOX", &msg("three")).unwrap();
    b.push_event(event(EventType::MessageNew, "alice", Some("INBOX")));
    assert_eq!(wake(&mut t).await, ["* 2 EXISTS", "* 2 RECENT"]);
    // An expunge committed after the events the wake-up read is held back as well: the
    // message stays in the snapshot, so the new one is number 3.
    other.send("v NOOP").await;
    other.send("w STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    other.send("x EXPUNGE").await;
    b.deliver("alice", "INBOX", &msg("four")).unwrap();
    b.push_event(event(EventType::MessageNew, "alice", Some("INBOX")));
    assert_eq!(wake(&mut t).await, ["* 3 EXISTS", "* 3 RECENT"]);
    b.push_event(event(EventType::MessageExpunge, "alice", Some("INBOX")));
    assert!(wake(&mut t).await.is_empty());
    t.x("d NOOP", &["* 1 EXPUNGE", "d OK NOOP completed"]).await;
}

#[tokio::test]
async fn mailbox_names_and_subscriptions_become_list_responses() {
    let b = backend();
    let mut t = alice(&b).await;
    t.x(
        "a NOTIFY SET (personal (MailboxName SubscriptionChange))",
        &["a OK NOTIFY completed"],
    )
    .await;
    let mut other = alice(&b).await;
    other.send("b CREATE Projects").await;
    b.push_event(event(EventType::MailboxCreate, "alice", Some("Projects")));
    other.send("c RENAME Projects Plans").await;
    let mut rename = event(EventType::MailboxRename, "alice", Some("Plans"));
    rename.old_mailbox_id = Some(ImapUrl::mailbox(HOST, Some("alice"), "Projects", Some(1)));
    b.push_event(rename);
    other.send("d SUBSCRIBE Plans").await;
    b.push_event(event(EventType::MailboxSubscribe, "alice", Some("Plans")));
    other.send("e DELETE Plans").await;
    b.push_event(event(EventType::MailboxDelete, "alice", Some("Plans")));
    // One wake-up for the four events: each LIST shows the name as it is now.
    assert_eq!(
        wake(&mut t).await,
        [
            "* LIST (\\NonExistent) \"/\" Projects",
            "* LIST (\\NonExistent \\Subscribed) \"/\" Plans (\"OLDNAME\" (Projects))",
            "* LIST (\\NonExistent \\Subscribed) \"/\" Plans",
            "* LIST (\\NonExistent \\Subscribed) \"/\" Plans",
        ]
    );
    // One at a time, each shows the change it reports.
    other.send("g CREATE Drafts2").await;
    b.push_event(event(EventType::MailboxCreate, "alice", Some("Drafts2")));
    assert_eq!(
        wake(&mut t).await,
        ["* LIST (\\HasNoChildren) \"/\" Drafts2"]
    );
    // The session's own changes are not reported back to it.
    t.send("f CREATE Mine").await;
    b.push_event(own(event(EventType::MailboxCreate, "alice", Some("Mine"))));
    assert!(wake(&mut t).await.is_empty());
}

#[tokio::test]
async fn subscribed_filter_follows_subscription_changes() {
    let b = backend();
    let mut t = alice(&b).await;
    t.send("a CREATE News").await;
    t.x(
        "b NOTIFY SET (subscribed (MessageNew MessageExpunge))",
        &["b OK NOTIFY completed"],
    )
    .await;
    b.deliver("alice", "News", &msg("n1")).unwrap();
    b.push_event(event(EventType::MessageNew, "alice", Some("News")));
    assert!(wake(&mut t).await.is_empty());
    let mut other = alice(&b).await;
    other.send("c SUBSCRIBE News").await;
    b.push_event(event(EventType::MailboxSubscribe, "alice", Some("News")));
    b.deliver("alice", "News", &msg("n2")).unwrap();
    b.push_event(event(EventType::MessageNew, "alice", Some("News")));
    let lines = wake(&mut t).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("* STATUS News (MESSAGES 2 "),
        "{lines:?}"
    );
}

/// A `vnd.herald.MetadataChange` as the metadata work commits it: `uri` the mailbox (or the
/// server), `mailboxID` the mailbox with UIDVALIDITY, the entries' names as a JSON array.
fn metadata(user: &str, mailbox: Option<&str>, entries: &[&str]) -> Event {
    let mut e = Event::new(EventType::from_name(METADATA_CHANGE));
    e.user = Some(user.into());
    e.service = Some("imap".into());
    match mailbox {
        Some(m) => {
            e.uri = Some(ImapUrl::mailbox(HOST, Some(user), m, None));
            e.mailbox_id = Some(ImapUrl::mailbox(HOST, Some(user), m, Some(7)));
        }
        None => e.uri = Some(ImapUrl::server(HOST, Some(user))),
    }
    e.set_extension(METADATA_ENTRIES, entries.to_vec());
    e
}

#[tokio::test]
async fn metadata_changes_become_metadata_responses_private_entries_to_their_owner() {
    let b = backend();
    let mut a = alice(&b).await;
    let mut o = T::new(&b);
    o.login("bob", "hunter2").await;
    for t in [&mut a, &mut o] {
        t.x(
            "m NOTIFY SET (personal (MailboxMetadataChange ServerMetadataChange))",
            &["m OK NOTIFY completed"],
        )
        .await;
    }
    b.push_event(metadata(
        "alice",
        Some("INBOX"),
        &["/private/comment", "/shared/comment"],
    ));
    b.push_event(metadata("alice", None, &["/private/motd", "/shared/motd"]));
    assert_eq!(
        wake(&mut a).await,
        [
            "* METADATA INBOX /private/comment /shared/comment",
            "* METADATA \"\" /private/motd /shared/motd",
        ]
    );
    // Bob sees neither alice's mailbox nor her private server entry; the shared one is his too.
    assert_eq!(wake(&mut o).await, ["* METADATA \"\" /shared/motd"]);
    // Without the server event, server entries are not reported.
    a.x(
        "n NOTIFY SET (personal (MailboxMetadataChange))",
        &["n OK NOTIFY completed"],
    )
    .await;
    b.push_event(metadata("alice", None, &["/shared/motd"]));
    b.push_event(metadata("alice", Some("INBOX"), &["/shared/x"]));
    assert_eq!(wake(&mut a).await, ["* METADATA INBOX /shared/x"]);
}

#[tokio::test]
async fn a_session_far_behind_is_told_of_the_overflow_and_notify_stops() {
    let b = backend();
    let mut t = alice(&b).await;
    t.x(
        "a NOTIFY SET (personal (MailboxName))",
        &["a OK NOTIFY completed"],
    )
    .await;
    for _ in 0..=OVERFLOW_AT {
        b.push_event(event(EventType::Login, "bob", None));
    }
    assert_eq!(
        wake(&mut t).await,
        ["* OK [NOTIFICATIONOVERFLOW] too many notifications, NOTIFY is off"]
    );
    assert!(!t.s.notifying());
}

#[tokio::test]
async fn only_events_the_outbox_holds_are_supported() {
    // `[events] groups = ["message"]`: no flag, mailbox, subscription or metadata events are
    // committed, so NOTIFY cannot report those.
    let b = backend();
    b.set_event_groups(&[herald_events::EventGroup::Message]);
    let mut t = alice(&b).await;
    t.x(
        "a NOTIFY SET (personal (MessageNew MessageExpunge MailboxName))",
        &["a NO [BADEVENT (MessageNew MessageExpunge)] unsupported event"],
    )
    .await;
    t.x(
        "b NOTIFY SET (selected (MessageNew MessageExpunge FlagChange))",
        &["b NO [BADEVENT (…"],
    )
    .await;
    t.x(
        "c NOTIFY SET (selected (MessageNew MessageExpunge)) (inboxes (MessageNew MessageExpunge))",
        &["c OK NOTIFY completed"],
    )
    .await;
}

/// A mailbox another account shares with the user is reported under the user's name for it
/// when a filter names it, and only while the user may read it; the owner hears of changes a
/// guest makes to its mailbox; `personal` stays the user's own namespace.
#[tokio::test]
async fn shared_mailboxes_are_reported_to_readers_under_their_names() {
    let b = backend();
    let mut a = alice(&b).await;
    a.send("a CREATE Team").await;
    a.send("b CREATE Secret").await;
    a.x("c SETACL Team bob lr", &["c OK SETACL completed"])
        .await;
    let mut t = T::new(&b);
    t.login("bob", "hunter2").await;
    t.x(
        "n NOTIFY SET (mailboxes (user/alice/Team user/alice/Secret) (MessageNew MessageExpunge)) \
         (personal (MessageNew MessageExpunge))",
        &["n OK NOTIFY completed"],
    )
    .await;
    b.deliver("alice", "Team", &msg("plans")).unwrap();
    b.push_event(event(EventType::MessageNew, "alice", Some("Team")));
    b.deliver("alice", "Secret", &msg("secret")).unwrap();
    b.push_event(event(EventType::MessageNew, "alice", Some("Secret")));
    b.deliver("alice", "INBOX", &msg("mine")).unwrap();
    b.push_event(event(EventType::MessageNew, "alice", Some("INBOX")));
    let lines = wake(&mut t).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("* STATUS user/alice/Team (MESSAGES 1 "),
        "{lines:?}"
    );

    // alice hears of what bob does in her mailbox although the event's `user` is bob.
    a.x(
        "d NOTIFY SET (mailboxes Team (MessageNew MessageExpunge FlagChange))",
        &["d OK NOTIFY completed"],
    )
    .await;
    let mut by_bob = Event::new(EventType::FlagsSet);
    by_bob.user = Some("bob".into());
    by_bob.service = Some("imap".into());
    by_bob.uri = Some(ImapUrl::mailbox(HOST, Some("alice"), "Team", Some(1)));
    b.push_event(by_bob);
    let lines = wake(&mut a).await;
    assert!(
        lines.len() == 1 && lines[0].starts_with("* STATUS Team (MESSAGES 1 "),
        "{lines:?}"
    );

    // Revoked: the next delivery is not reported to bob.
    a.x("e DELETEACL Team bob", &["e OK DELETEACL completed"])
        .await;
    let mut acl = event(EventType::AclChange, "alice", Some("Team"));
    acl.set_extension(herald_events::vnd::ACL_IDENTIFIER, "bob");
    acl.set_extension(herald_events::vnd::ACL_RIGHTS, "");
    b.push_event(acl);
    b.deliver("alice", "Team", &msg("more plans")).unwrap();
    b.push_event(event(EventType::MessageNew, "alice", Some("Team")));
    assert!(wake(&mut t).await.is_empty());
}

/// A session that could see no other account's mailbox when NOTIFY was set starts hearing of
/// one as soon as an ACL change opens it, also through `anyone` (whose grant names no user).
#[tokio::test]
async fn a_mailbox_shared_after_notify_set_is_reported_from_the_grant_on() {
    let b = backend();
    let mut a = alice(&b).await;
    a.send("a CREATE Team").await;
    let mut t = T::new(&b);
    t.login("bob", "hunter2").await;
    t.x(
        "n NOTIFY SET (subtree user (MessageNew MessageExpunge))",
        &["n OK NOTIFY completed"],
    )
    .await;
    a.x("c SETACL Team anyone lr", &["c OK SETACL completed"])
        .await;
    let mut acl = event(EventType::AclChange, "alice", Some("Team"));
    acl.set_extension(herald_events::vnd::ACL_IDENTIFIER, "anyone");
    acl.set_extension(herald_events::vnd::ACL_RIGHTS, "lr");
    b.push_event(acl);
    b.deliver("alice", "Team", &msg("plans")).unwrap();
    b.push_event(event(EventType::MessageNew, "alice", Some("Team")));
    let lines = wake(&mut t).await;
    assert!(
        lines.len() == 1 && lines[0].starts_with("* STATUS user/alice/Team (MESSAGES 1 "),
        "{lines:?}"
    );
}
