//! Protocol transcripts replayed against the session state machine and the in-memory store: no
//! sockets. Each exchange feeds `C:` bytes and compares every line the server wrote with the
//! expected `S:` lines (a line ending in `…` matches by prefix). Every byte the server writes is
//! also decoded with imap-codec's response codec (greeting aside), except ESEARCH, which
//! imap-codec alpha.10 cannot read (see `responses.rs`).

#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

mod harness;

use harness::{T, backend};
use herald_imap::ImapConfig;
use herald_imap::session::Control;
use herald_imap::session::memory::MemoryBackend;
use std::sync::Arc;

const MSG: &str = "From: Bob <bob@example.org>\r\nTo: alice@example.org\r\nSubject: hello there\r\nDate: Mon, 23 Nov 2026 08:15:02 +0100\r\nMessage-ID: <m1@example.org>\r\n\r\nHi Alice,\r\nlunch?\r\n";

#[tokio::test]
async fn greeting_capability_and_states() {
    let b = backend();
    let mut t = T::new(&b);
    let g = String::from_utf8(t.s.greeting()).unwrap();
    assert!(
        g.starts_with("* OK [CAPABILITY IMAP4rev1 IMAP4rev2 AUTH=PLAIN SASL-IR LITERAL+"),
        "{g}"
    );
    t.x(
        "a CAPABILITY",
        &[
            "* CAPABILITY IMAP4rev1 IMAP4rev2 AUTH=PLAIN …",
            "a OK CAPABILITY completed",
        ],
    )
    .await;
    t.x("b SELECT INBOX", &["b BAD SELECT needs authentication"])
        .await;
    t.x("c FETCH 1 FLAGS", &["c BAD FETCH needs authentication"])
        .await;
    t.x("d NOOP", &["d OK NOOP completed"]).await;
    t.x("e FROB", &["e BAD unknown command FROB"]).await;
    t.x(
        "f LOGIN alice wrong",
        &["f NO [AUTHENTICATIONFAILED] invalid user name or password"],
    )
    .await;
    t.login("alice", "secret").await;
    t.x("g FETCH 1 FLAGS", &["g BAD FETCH needs a selected mailbox"])
        .await;
    t.x("h LOGIN alice secret", &["h BAD already authenticated"])
        .await;
    t.x(
        "i ID NIL",
        &[
            "* ID (\"name\" \"Herald\" \"version\" …",
            "i OK ID completed",
        ],
    )
    .await;
    t.x(
        "j NAMESPACE",
        &[
            "* NAMESPACE ((\"\" \"/\")) ((\"user/\" \"/\")) ((\"#shared/\" \"/\"))",
            "j OK NAMESPACE completed",
        ],
    )
    .await;
    t.x(
        "k ENABLE CONDSTORE",
        &["* ENABLED CONDSTORE", "k OK ENABLE completed"],
    )
    .await;
    let (out, c) = t.raw(b"z LOGOUT\r\n").await;
    assert_eq!(out, "* BYE logging out\r\nz OK LOGOUT completed\r\n");
    assert_eq!(c, Control::Close);
    assert_eq!(
        b.access_log(),
        vec![
            ("alice".into(), "login-failed bad-credentials".into()),
            ("alice".into(), "login".into()),
            ("alice".into(), "graceful".into())
        ]
    );
}

#[tokio::test]
async fn authenticate_plain_and_admin_acting_as_user() {
    let b = backend();
    let mut t = T::new(&b);
    // \0alice\0secret, sent after the empty challenge.
    t.x("a AUTHENTICATE PLAIN", &["+ "]).await;
    t.x("AGFsaWNlAHNlY3JldA==", &["a OK [CAPABILITY …"]).await;
    assert_eq!(t.s.context().user.as_deref(), Some("alice"));
    assert_eq!(t.s.context().auth_user, None);
    // root acting as bob, SASL-IR: bob\0root\0toor
    let mut t = T::new(&b);
    t.x(
        "a AUTHENTICATE PLAIN Ym9iAHJvb3QAdG9vcg==",
        &["a OK [CAPABILITY …"],
    )
    .await;
    assert_eq!(t.s.context().user.as_deref(), Some("bob"));
    assert_eq!(t.s.context().auth_user.as_deref(), Some("root"));
    // alice may not act as bob: bob\0alice\0secret
    let mut t = T::new(&b);
    t.x(
        "a AUTHENTICATE PLAIN Ym9iAGFsaWNlAHNlY3JldA==",
        &["a NO [AUTHENTICATIONFAILED] …"],
    )
    .await;
    t.x("b AUTHENTICATE PLAIN", &["+ "]).await;
    t.x("*", &["b BAD authentication cancelled"]).await;
    t.x(
        "c AUTHENTICATE CRAM-MD5",
        &["c NO [CANNOT] unsupported mechanism"],
    )
    .await;
}

#[tokio::test]
async fn login_disabled_without_tls() {
    let b = backend();
    let mut config = ImapConfig::default();
    config.login_disabled_without_tls = true;
    let mut t = T::with(&b, config);
    t.x(
        "a CAPABILITY",
        &[
            "* CAPABILITY IMAP4rev1 IMAP4rev2 LOGINDISABLED …",
            "a OK CAPABILITY completed",
        ],
    )
    .await;
    t.x(
        "b LOGIN alice secret",
        &["b NO [PRIVACYREQUIRED] LOGIN needs TLS"],
    )
    .await;
    t.x("c STARTTLS", &["c NO [CANNOT] STARTTLS is not available"])
        .await;
    assert_eq!(
        b.access_log(),
        vec![("alice".into(), "login-failed plaintext-refused".into())]
    );
}

#[tokio::test]
async fn auth_failures_are_rate_limited_per_ip() {
    let b = backend();
    let mut config = ImapConfig::default();
    config.auth_limiter = Arc::new(herald_net::AuthLimiter::new(
        2,
        std::time::Duration::from_secs(60),
        10,
    ));
    let mut t = T::with(&b, config);
    t.x("a LOGIN alice x", &["a NO [AUTHENTICATIONFAILED] …"])
        .await;
    t.x("b LOGIN alice y", &["b NO [AUTHENTICATIONFAILED] …"])
        .await;
    t.x(
        "c LOGIN alice secret",
        &["c NO [UNAVAILABLE] too many failed attempts, try again later"],
    )
    .await;
    // One LoginFailed per refused attempt, the limiter's refusal included.
    assert_eq!(
        b.access_log(),
        vec![
            ("alice".into(), "login-failed bad-credentials".into()),
            ("alice".into(), "login-failed bad-credentials".into()),
            ("alice".into(), "login-failed rate-limited".into()),
        ]
    );
}

#[tokio::test]
async fn mailboxes_list_status_and_isolation() {
    let b = backend();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    t.x("a CREATE Work/Projects", &["a OK [MAILBOXID …"]).await;
    t.x("b CREATE Sent (USE (\\Sent))", &["b OK [MAILBOXID …"])
        .await;
    t.x(
        "c CREATE Work",
        &["c NO [ALREADYEXISTS] mailbox `Work` already exists"],
    )
    .await;
    t.x(
        "d LIST \"\" *",
        &[
            "* LIST (\\HasNoChildren) \"/\" INBOX",
            "* LIST (\\HasNoChildren \\Sent) \"/\" Sent",
            "* LIST (\\HasChildren) \"/\" Work",
            "* LIST (\\HasNoChildren) \"/\" Work/Projects",
            "d OK LIST completed",
        ],
    )
    .await;
    t.x(
        "e LIST \"\" %",
        &[
            "* LIST (\\HasNoChildren) \"/\" INBOX",
            "* LIST (\\HasNoChildren \\Sent) \"/\" Sent",
            "* LIST (\\HasChildren) \"/\" Work",
            "e OK LIST completed",
        ],
    )
    .await;
    t.x(
        "f LIST \"\" \"\"",
        &["* LIST (\\Noselect) \"/\" \"\"", "f OK LIST completed"],
    )
    .await;
    t.x("g SUBSCRIBE Work", &["g OK SUBSCRIBE completed"]).await;
    t.x(
        "h LSUB \"\" *",
        &[
            "* LSUB () \"/\" INBOX",
            "* LSUB () \"/\" Work",
            "h OK LSUB completed",
        ],
    )
    .await;
    t.x(
        "i LIST (SUBSCRIBED) \"\" * RETURN (STATUS (MESSAGES UIDNEXT))",
        &[
            "* LIST (\\HasNoChildren \\Subscribed) \"/\" INBOX",
            "* STATUS INBOX (MESSAGES 0 UIDNEXT 1)",
            "* LIST (\\HasChildren \\Subscribed) \"/\" Work",
            "* STATUS Work (MESSAGES 0 UIDNEXT 1)",
            "i OK LIST completed",
        ],
    )
    .await;
    t.x(
        "j LIST (SPECIAL-USE) \"\" *",
        &[
            "* LIST (\\HasNoChildren \\Sent) \"/\" Sent",
            "j OK LIST completed",
        ],
    )
    .await;
    t.x("k RENAME Work Job", &["k OK RENAME completed"]).await;
    t.x(
        "l LIST \"\" Job/*",
        &[
            "* LIST (\\HasNoChildren) \"/\" Job/Projects",
            "l OK LIST completed",
        ],
    )
    .await;
    t.x("m DELETE Job/Projects", &["m OK DELETE completed"])
        .await;
    t.x("n DELETE INBOX", &["n NO [CANNOT] …"]).await;
    t.x("o UNSUBSCRIBE Work", &["o OK UNSUBSCRIBE completed"])
        .await;
    t.x(
        "p STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE RECENT HIGHESTMODSEQ)",
        &["* STATUS INBOX (MESSAGES 0 UIDNEXT 1 UIDVALIDITY 1001 UNSEEN 0 DELETED 0 SIZE 0 RECENT 0 HIGHESTMODSEQ 1)", "p OK STATUS completed"],
    )
    .await;
    // Bob's mailboxes are invisible and unreachable to Alice.
    let mut bob = T::new(&b);
    bob.login("bob", "hunter2").await;
    bob.x("a CREATE Private", &["a OK [MAILBOXID …"]).await;
    t.x(
        "q SELECT Private",
        &["q NO [NONEXISTENT] mailbox `Private` does not exist"],
    )
    .await;
    t.x("r STATUS Private (MESSAGES)", &["r NO [NONEXISTENT] …"])
        .await;
    t.x("s LIST \"\" Private", &["s OK LIST completed"]).await;
    t.x("t DELETE Private", &["t NO [NONEXISTENT] …"]).await;
    bob.x(
        "b LIST \"\" Private",
        &[
            "* LIST (\\HasNoChildren) \"/\" Private",
            "b OK LIST completed",
        ],
    )
    .await;
}

#[tokio::test]
async fn append_fetch_store_search_expunge() {
    let b = backend();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    let n = MSG.len();
    t.x(
        &format!("a APPEND INBOX (\\Seen) {{{n}}}"),
        &["+ Ready for literal data"],
    )
    .await;
    let (out, _) = t.raw(format!("{MSG}\r\n").as_bytes()).await;
    assert!(
        out.starts_with("a OK [APPENDUID 1001 1] APPEND completed"),
        "{out}"
    );
    // LITERAL+: no continuation.
    let (out, _) = t
        .raw(
            format!("b APPEND INBOX {{{n}+}}\r\n{MSG}\r\nc APPEND Nope {{{n}+}}\r\n{MSG}\r\n")
                .as_bytes(),
        )
        .await;
    assert_eq!(
        out,
        "b OK [APPENDUID 1001 2] APPEND completed\r\nc NO [TRYCREATE] mailbox `Nope` does not exist\r\n"
    );
    t.x(
        "d SELECT INBOX",
        &[
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
            "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] flags permitted",
            "* 2 EXISTS",
            "* 2 RECENT",
            "* OK [UNSEEN 2] first unseen",
            "* OK [UIDVALIDITY 1001] UIDs valid",
            "* OK [UIDNEXT 3] predicted next UID",
            "* OK [HIGHESTMODSEQ 3] highest",
            "* OK [MAILBOXID …",
            "* OK [URLMECH INTERNAL] URLAUTH mechanisms",
            "d OK [READ-WRITE] SELECT completed",
        ],
    )
    .await;
    t.x(
        "e FETCH 1:2 (UID FLAGS RFC822.SIZE)",
        &[
            &format!("* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent) RFC822.SIZE {n})"),
            &format!("* 2 FETCH (UID 2 FLAGS (\\Recent) RFC822.SIZE {n})"),
            "e OK FETCH completed",
        ],
    )
    .await;
    t.x("f FETCH 1 ENVELOPE", &[
        "* 1 FETCH (ENVELOPE (\"Mon, 23 Nov 2026 08:15:02 +0100\" \"hello there\" ((\"Bob\" NIL \"bob\" \"example.org\")) ((\"Bob\" NIL \"bob\" \"example.org\")) ((\"Bob\" NIL \"bob\" \"example.org\")) ((NIL NIL \"alice\" \"example.org\")) NIL NIL NIL \"<m1@example.org>\"))",
        "f OK FETCH completed",
    ]).await;
    t.x(
        "g FETCH 2 BODY.PEEK[HEADER.FIELDS (SUBJECT)]",
        &[
            "* 2 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {24}",
            "Subject: hello there",
            "",
            ")",
            "g OK FETCH completed",
        ],
    )
    .await;
    t.x(
        "h FETCH 2 (BODY[TEXT]<0.8>)",
        &[
            "* 2 FETCH (BODY[TEXT]<0> \"Hi Alice\" FLAGS (\\Seen \\Recent))",
            "h OK FETCH completed",
        ],
    )
    .await;
    t.x("i FETCH 1 BODYSTRUCTURE", &[
        "* 1 FETCH (BODYSTRUCTURE (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 19 2 NIL NIL NIL NIL))",
        "i OK FETCH completed",
    ]).await;
    t.x(
        "j UID FETCH 2 (MODSEQ)",
        &[
            "* OK [HIGHESTMODSEQ 4] highest",
            "* 2 FETCH (UID 2 MODSEQ (4))",
            "j OK UID FETCH completed",
        ],
    )
    .await;
    t.x(
        "k STORE 1 +FLAGS (\\Deleted $Work)",
        &[
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)",
            "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work \\*)] flags permitted",
            "* 1 FETCH (FLAGS ($Work \\Deleted \\Seen \\Recent) MODSEQ (5))",
            "k OK STORE completed",
        ],
    )
    .await;
    t.x(
        "l UID STORE 1:2 (UNCHANGEDSINCE 4) -FLAGS.SILENT (\\Seen)",
        &[
            "* 2 FETCH (UID 2 MODSEQ (6))",
            "l OK [MODIFIED 1] conditional STORE failed for some messages",
        ],
    )
    .await;
    t.x("m SEARCH DELETED", &["* SEARCH 1", "m OK SEARCH completed"])
        .await;
    t.x(
        "n UID SEARCH SUBJECT \"HELLO\" NOT DELETED",
        &["* SEARCH 2", "n OK UID SEARCH completed"],
    )
    .await;
    t.x(
        "o SEARCH OR KEYWORD $Work BODY lunch",
        &["* SEARCH 1 2", "o OK SEARCH completed"],
    )
    .await;
    t.x(
        "p SEARCH LARGER 10000",
        &["* SEARCH", "p OK SEARCH completed"],
    )
    .await;
    t.x(
        "q SEARCH CHARSET KOI8-R ALL",
        &["q NO [BADCHARSET (US-ASCII UTF-8)] unsupported charset"],
    )
    .await;
    t.x(
        "r FETCH 5 FLAGS",
        &["r BAD invalid message sequence number"],
    )
    .await;
    t.x("s EXPUNGE", &["* 1 EXPUNGE", "s OK EXPUNGE completed"])
        .await;
    t.x(
        "t FETCH 1 UID",
        &["* 1 FETCH (UID 2 MODSEQ (6))", "t OK FETCH completed"],
    )
    .await;
}

#[tokio::test]
async fn copy_move_uidplus_and_other_sessions_see_changes() {
    let b = backend();
    for _ in 0..3 {
        b.deliver("alice", "INBOX", MSG.as_bytes()).unwrap();
    }
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    t.x("a CREATE Archive", &["a OK [MAILBOXID …"]).await;
    let mut other = T::new(&b);
    other.login("alice", "secret").await;
    other
        .x(
            "s SELECT INBOX",
            &[
                "* FLAGS …",
                "* OK …",
                "* 3 EXISTS",
                "* 3 RECENT",
                "* OK …",
                "* OK …",
                "* OK …",
                "* OK …",
                "* OK [MAILBOXID …",
                "* OK [URLMECH INTERNAL] URLAUTH mechanisms",
                "s OK [READ-WRITE] SELECT completed",
            ],
        )
        .await;
    t.x(
        "b SELECT INBOX",
        &[
            "* FLAGS …",
            "* OK …",
            "* 3 EXISTS",
            "* 0 RECENT",
            "* OK …",
            "* OK …",
            "* OK …",
            "* OK …",
            "* OK [MAILBOXID …",
            "* OK [URLMECH INTERNAL] URLAUTH mechanisms",
            "b OK [READ-WRITE] SELECT completed",
        ],
    )
    .await;
    t.x(
        "c COPY 1:2 Archive",
        &["c OK [COPYUID 1004 1:2 1:2] COPY completed"],
    )
    .await;
    t.x(
        "d UID MOVE 2:3 Archive",
        &[
            "* OK [COPYUID 1004 2:3 3:4] moved",
            "* 3 EXPUNGE",
            "* 2 EXPUNGE",
            "d OK MOVE completed",
        ],
    )
    .await;
    t.x(
        "e COPY 1 Nowhere",
        &["e NO [TRYCREATE] mailbox `Nowhere` does not exist"],
    )
    .await;
    // The other session learns at its next command, highest sequence number first.
    other
        .x(
            "n NOOP",
            &["* 3 EXPUNGE", "* 2 EXPUNGE", "n OK NOOP completed"],
        )
        .await;
    t.x(
        "f STORE 1 +FLAGS (\\Flagged)",
        &["* 1 FETCH (FLAGS (\\Flagged))", "f OK STORE completed"],
    )
    .await;
    b.deliver("alice", "INBOX", MSG.as_bytes()).unwrap();
    other
        .x(
            "o NOOP",
            &[
                "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))",
                "* 2 EXISTS",
                "* 2 RECENT",
                "o OK NOOP completed",
            ],
        )
        .await;
    // FETCH by sequence number must not report expunges.
    t.x(
        "g0 NOOP",
        &["* 2 EXISTS", "* 0 RECENT", "g0 OK NOOP completed"],
    )
    .await;
    t.x(
        "g UID STORE 4 +FLAGS.SILENT (\\Deleted)",
        &["g OK STORE completed"],
    )
    .await;
    t.x(
        "h UID EXPUNGE 4",
        &["* 2 EXPUNGE", "h OK EXPUNGE completed"],
    )
    .await;
    other
        .x(
            "p FETCH 1 FLAGS",
            &[
                "* 1 FETCH (FLAGS (\\Flagged \\Recent))",
                "p OK FETCH completed",
            ],
        )
        .await;
    other
        .x("q CHECK", &["* 2 EXPUNGE", "q OK CHECK completed"])
        .await;
    t.x("i CLOSE", &["i OK CLOSE completed"]).await;
    t.x(
        "j EXAMINE Archive",
        &[
            "* FLAGS …",
            "* OK [PERMANENTFLAGS ()] flags permitted",
            "* 4 EXISTS",
            "* 4 RECENT",
            "* OK …",
            "* OK …",
            "* OK …",
            "* OK …",
            "* OK [MAILBOXID …",
            "* OK [URLMECH INTERNAL] URLAUTH mechanisms",
            "j OK [READ-ONLY] EXAMINE completed",
        ],
    )
    .await;
    t.x(
        "k STORE 1 +FLAGS (\\Seen)",
        &["k NO [CANNOT] mailbox is read-only"],
    )
    .await;
    t.x("l UNSELECT", &["l OK UNSELECT completed"]).await;
}

#[tokio::test]
async fn idle_wakes_on_delivery_and_done_ends_it() {
    let b = backend();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    t.x(
        "a SELECT INBOX",
        &[
            "* FLAGS …",
            "* OK …",
            "* 0 EXISTS",
            "* 0 RECENT",
            "* OK …",
            "* OK …",
            "* OK …",
            "* OK [MAILBOXID …",
            "* OK [URLMECH INTERNAL] URLAUTH mechanisms",
            "a OK [READ-WRITE] SELECT completed",
        ],
    )
    .await;
    t.x("b IDLE", &["+ idling"]).await;
    assert!(t.s.is_idling());
    let waiter = tokio::time::timeout(std::time::Duration::from_millis(50), t.s.changed()).await;
    assert!(waiter.is_err(), "nothing changed yet");
    b.deliver("alice", "INBOX", MSG.as_bytes()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), t.s.changed())
        .await
        .unwrap();
    let mut out: Vec<u8> = Vec::new();
    t.s.idle_wakeup(&mut out).await.unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "* 1 EXISTS\r\n* 1 RECENT\r\n"
    );
    t.x("DONE", &["b OK IDLE terminated"]).await;
    t.x("c IDLE", &["+ idling"]).await;
    t.x("nonsense", &["c BAD expected DONE"]).await;
    assert!(!t.s.is_idling());
}

#[tokio::test]
async fn quota_and_overquota() {
    let b = backend();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    t.x(
        "a SETQUOTA \"\" (STORAGE 1)",
        &["a NO [NOPERM] only administrators may set quotas"],
    )
    .await;
    let mut admin = T::new(&b);
    admin
        .x("x AUTHENTICATE PLAIN YWxpY2UAcm9vdAB0b29y", &["x OK …"])
        .await;
    admin
        .x(
            "y SETQUOTA \"\" (STORAGE 1 MESSAGE 5)",
            &[
                "* QUOTA \"\" (STORAGE 0 1 MESSAGE 0 5)",
                "y OK SETQUOTA completed",
            ],
        )
        .await;
    t.x(
        "b GETQUOTAROOT INBOX",
        &[
            "* QUOTAROOT INBOX \"\"",
            "* QUOTA \"\" (STORAGE 0 1 MESSAGE 0 5)",
            "b OK GETQUOTAROOT completed",
        ],
    )
    .await;
    t.x(
        "c GETQUOTA \"\"",
        &[
            "* QUOTA \"\" (STORAGE 0 1 MESSAGE 0 5)",
            "c OK GETQUOTA completed",
        ],
    )
    .await;
    t.x(
        "d GETQUOTA other",
        &["d NO [NONEXISTENT] no such quota root"],
    )
    .await;
    let big = "x".repeat(2000);
    let (out, _) = t
        .raw(format!("e APPEND INBOX {{2000+}}\r\n{big}\r\n").as_bytes())
        .await;
    assert!(out.starts_with("e NO [OVERQUOTA] "), "{out}");
}

#[tokio::test]
async fn bad_input_keeps_the_session_going() {
    let b = backend();
    let mut config = ImapConfig::default();
    config.max_literal = 100;
    let mut t = T::with(&b, config);
    t.x("a LOGIN {3}", &["+ Ready for literal data"]).await;
    t.x("bob hunter2", &["a OK [CAPABILITY …"]).await;
    t.x(
        "b APPEND INBOX {1000}",
        &["b NO [TOOBIG] literal of 1000 bytes exceeds the limit of 100 bytes"],
    )
    .await;
    // LITERAL+ over the limit: the bytes are skipped, the next command works.
    let (out, _) = t
        .raw(
            format!(
                "c APPEND INBOX {{200+}}\r\n{}\r\nd NOOP\r\n",
                "y".repeat(200)
            )
            .as_bytes(),
        )
        .await;
    assert_eq!(
        out,
        "c NO [TOOBIG] literal of 200 bytes exceeds the limit of 100 bytes\r\nd OK NOOP completed\r\n"
    );
    t.x("e SELECT", &["e BAD syntax error at byte 8: expected SP"])
        .await;
    t.x("f FETCH", &["f BAD …"]).await;
    t.x(")(*&^", &["* BAD missing or invalid tag"]).await;
    t.x("g SEARCH ((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((ALL", &["g BAD …"]).await;
    t.x("h NOOP", &["h OK NOOP completed"]).await;
}

#[tokio::test(start_paused = true)]
async fn commands_are_rate_limited() {
    let b = backend();
    let mut config = ImapConfig::default();
    config.commands_per_second = 10;
    let mut t = T::with(&b, config);
    let start = tokio::time::Instant::now();
    let input = "n NOOP\r\n".repeat(30);
    let (out, _) = t.raw(input.as_bytes()).await;
    assert_eq!(out.matches("n OK").count(), 30);
    let took = start.elapsed();
    assert!(took >= std::time::Duration::from_millis(1900), "{took:?}");
}

#[tokio::test]
async fn search_return_options_and_saved_results() {
    let b = backend();
    for _ in 0..4 {
        b.deliver("alice", "INBOX", MSG.as_bytes()).unwrap();
    }
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    t.x(
        "a SELECT INBOX",
        &[
            "* FLAGS …",
            "* OK …",
            "* 4 EXISTS",
            "* 4 RECENT",
            "* OK …",
            "* OK …",
            "* OK …",
            "* OK …",
            "* OK [MAILBOXID …",
            "* OK [URLMECH INTERNAL] URLAUTH mechanisms",
            "a OK [READ-WRITE] SELECT completed",
        ],
    )
    .await;
    t.x(
        "b UID SEARCH RETURN (MIN MAX COUNT ALL) 2:4",
        &[
            "* ESEARCH (TAG \"b\") UID MIN 2 MAX 4 COUNT 3 ALL 2:4",
            "b OK UID SEARCH completed",
        ],
    )
    .await;
    t.x("c SEARCH RETURN (SAVE) 1,3", &["c OK SEARCH completed"])
        .await;
    t.x(
        "d FETCH $ (UID)",
        &[
            "* 1 FETCH (UID 1)",
            "* 3 FETCH (UID 3)",
            "d OK FETCH completed",
        ],
    )
    .await;
    t.x(
        "e SEARCH MODSEQ 1",
        &[
            "* OK [HIGHESTMODSEQ 5] highest",
            "* SEARCH 1 2 3 4 (MODSEQ 5)",
            "e OK SEARCH completed",
        ],
    )
    .await;
    t.x(
        "f SEARCH UID 2,4 SINCE 1-Jan-2000 BEFORE 1-Jan-2100",
        &["* SEARCH 2 4", "f OK SEARCH completed"],
    )
    .await;
    t.x(
        "g SEARCH SENTON 23-Nov-2026 FROM bob TO alice HEADER Message-ID m1",
        &["* SEARCH 1 2 3 4", "g OK SEARCH completed"],
    )
    .await;
    t.x(
        "h SEARCH TEXT lunch NOT SENTBEFORE 1-Jan-2000 SMALLER 10000",
        &["* SEARCH 1 2 3 4", "h OK SEARCH completed"],
    )
    .await;
}

/// Records, for every write, what was written and how many logins/logouts the backend had
/// recorded by then.
struct Spy {
    backend: MemoryBackend,
    writes: Vec<(String, usize)>,
}

impl tokio::io::AsyncWrite for Spy {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let recorded = self.backend.access_log().len();
        self.writes
            .push((String::from_utf8_lossy(buf).into_owned(), recorded));
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn logout_is_recorded_before_the_tagged_ok() {
    let b = backend();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    let mut spy = Spy {
        backend: b.clone(),
        writes: Vec::new(),
    };
    t.s.input(b"z LOGOUT\r\n", &mut spy).await.unwrap();
    let (_, recorded) = spy
        .writes
        .iter()
        .find(|(w, _)| w.contains("z OK LOGOUT"))
        .expect("LOGOUT answered");
    assert_eq!(
        *recorded, 2,
        "the Logout was recorded before the OK: {:?}",
        spy.writes
    );
    assert_eq!(b.access_log()[1], ("alice".into(), "graceful".into()));
}

#[tokio::test]
async fn dot_segments_are_refused_in_mailbox_names() {
    let b = backend();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    for (tag, name) in [("a", ".."), ("b", "x/../../bob/Archive"), ("c", "a/./b")] {
        let out = t
            .raw(format!("{tag} CREATE \"{name}\"\r\n").as_bytes())
            .await
            .0;
        assert!(out.starts_with(&format!("{tag} NO ")), "{name}: {out}");
    }
    t.x("d RENAME INBOX ..", &["d NO …"]).await;
    t.x("e CREATE a..b", &["e OK [MAILBOXID …"]).await;
}

#[tokio::test]
async fn before_login_only_small_literals_are_accepted() {
    let b = backend();
    let mut t = T::new(&b);
    // A 1 MiB literal before login is refused before any of it is sent…
    let (out, _) = t.raw(b"a LOGIN {1048576}\r\n").await;
    assert!(out.starts_with("a NO [TOOBIG]"), "{out}");
    assert!(!out.contains("+ "), "no continuation: {out}");
    // …and a LITERAL+ one is skipped, not held.
    let mut big = b"b LOGIN {20000+}\r\n".to_vec();
    big.extend(std::iter::repeat_n(b'x', 20000));
    big.extend_from_slice(b" secret\r\n");
    let (out, _) = t.raw(&big).await;
    assert!(out.contains("b NO [TOOBIG]"), "{out}");
    // Logging in with literals of a normal size works, and then larger ones are taken.
    t.x(
        "c LOGIN {5}\r\nalice {6}\r\nsecret",
        &[
            "+ Ready for literal data",
            "+ Ready for literal data",
            "c OK [CAPABILITY …",
        ],
    )
    .await;
    let name = "n".repeat(900);
    let (out, _) = t
        .raw(format!("d CREATE {{{}}}\r\n{name}\r\n", name.len()).as_bytes())
        .await;
    assert!(out.ends_with("CREATE completed\r\n"), "{out}");
    let long = format!("e CREATE \"{}\"\r\n", "m".repeat(9000));
    let (out, _) = t.raw(long.as_bytes()).await;
    assert!(
        !out.contains("e BAD"),
        "long lines are fine after login: {out}"
    );
}

#[tokio::test]
async fn acl_commands_grant_list_and_revoke_rights() {
    let b = backend();
    let mut alice = T::new(&b);
    alice.login("alice", "secret").await;
    alice.x("a CREATE Team", &["a OK …"]).await;
    alice
        .x(
            "b GETACL Team",
            &["* ACL Team alice lrswipkxtea", "b OK GETACL completed"],
        )
        .await;
    alice
        .x("c SETACL Team bob lr", &["c OK SETACL completed"])
        .await;
    alice
        .x("d SETACL Team bob +i", &["d OK SETACL completed"])
        .await;
    alice
        .x("e SETACL Team anyone l", &["e OK SETACL completed"])
        .await;
    alice
        .x(
            "f GETACL Team",
            &[
                "* ACL Team alice lrswipkxtea anyone l bob lri",
                "f OK GETACL completed",
            ],
        )
        .await;
    alice
        .x(
            "g LISTRIGHTS Team bob",
            &[
                "* LISTRIGHTS Team bob \"\" l r s w i p k x t e a",
                "g OK LISTRIGHTS completed",
            ],
        )
        .await;
    alice
        .x(
            "h LISTRIGHTS Team alice",
            &[
                "* LISTRIGHTS Team alice lrswipkxtea",
                "h OK LISTRIGHTS completed",
            ],
        )
        .await;
    alice
        .x(
            "i MYRIGHTS Team",
            &["* MYRIGHTS Team lrswipkxtea", "i OK MYRIGHTS completed"],
        )
        .await;
    alice.x("j SETACL Team bob lrZ", &["j BAD …"]).await;
    alice
        .x("k SETACL Nowhere bob lr", &["k NO [NONEXISTENT] …"])
        .await;
    alice
        .x("l SETACL Team alice lr", &["l NO [CANNOT] …"])
        .await;

    let mut bob = T::new(&b);
    bob.login("bob", "hunter2").await;
    bob.x(
        "a MYRIGHTS user/alice/Team",
        &["* MYRIGHTS user/alice/Team lri", "a OK MYRIGHTS completed"],
    )
    .await;
    // Seeing the mailbox does not let bob read or change its ACL.
    bob.x("b GETACL user/alice/Team", &["b NO [NOPERM] …"])
        .await;
    bob.x("c SETACL user/alice/Team bob lrswi", &["c NO [NOPERM] …"])
        .await;
    bob.x("d DELETEACL user/alice/Team bob", &["d NO [NOPERM] …"])
        .await;
    // A mailbox he may not see answers as a missing one.
    bob.x("e MYRIGHTS user/alice/INBOX", &["e NO [NONEXISTENT] …"])
        .await;

    alice
        .x("m DELETEACL Team bob", &["m OK DELETEACL completed"])
        .await;
    alice
        .x("n SETACL Team anyone -l", &["n OK SETACL completed"])
        .await;
    alice
        .x(
            "o GETACL Team",
            &["* ACL Team alice lrswipkxtea", "o OK GETACL completed"],
        )
        .await;
    bob.x("f MYRIGHTS user/alice/Team", &["f NO [NONEXISTENT] …"])
        .await;
    let (caps, _) = bob.raw(b"g CAPABILITY\r\n").await;
    assert!(caps.contains(" ACL RIGHTS=texk "), "{caps}");
}

#[tokio::test]
async fn an_admin_sets_another_users_quota_root_by_name() {
    let b = backend();
    let mut root = T::new(&b);
    root.login("root", "toor").await;
    root.x(
        "a SETQUOTA user/alice (STORAGE 100 MESSAGE 5)",
        &[
            "* QUOTA user/alice (STORAGE 0 100 MESSAGE 0 5)",
            "a OK SETQUOTA completed",
        ],
    )
    .await;
    root.x(
        "b GETQUOTA user/alice",
        &[
            "* QUOTA user/alice (STORAGE 0 100 MESSAGE 0 5)",
            "b OK GETQUOTA completed",
        ],
    )
    .await;
    root.x(
        "c SETQUOTA user/alice/INBOX (STORAGE 1)",
        &["c NO [NONEXISTENT] …"],
    )
    .await;
    let mut alice = T::new(&b);
    alice.login("alice", "secret").await;
    alice
        .x(
            "a GETQUOTA user/alice",
            &[
                "* QUOTA user/alice (STORAGE 0 100 MESSAGE 0 5)",
                "a OK GETQUOTA completed",
            ],
        )
        .await;
    alice
        .x(
            "b GETQUOTAROOT INBOX",
            &[
                "* QUOTAROOT INBOX \"\"",
                "* QUOTA \"\" (STORAGE 0 100 MESSAGE 0 5)",
                "b OK GETQUOTAROOT completed",
            ],
        )
        .await;
    alice
        .x("c GETQUOTA user/bob", &["c NO [NONEXISTENT] …"])
        .await;
    alice
        .x("d SETQUOTA user/bob (STORAGE 1)", &["d NO [NOPERM] …"])
        .await;
}
