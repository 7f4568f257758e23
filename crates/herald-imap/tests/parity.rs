//! Transcripts of the RFC points where clients compare Herald with Dovecot: keywords in FLAGS,
//! COPY and MOVE into the selected mailbox, LIST and LSUB corner cases, ESEARCH with
//! CONDSTORE, names that are not modified UTF-7. Each test fails without its fix.

#![allow(clippy::unwrap_used)]

mod harness;

use harness::{T, backend};
use herald_imap::ImapConfig;

const MSG: &str = "From: Bob <bob@example.org>\r\nSubject: hi\r\n\r\nbody\r\n";

const SYSTEM: &str = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

#[tokio::test]
async fn select_lists_the_mailbox_keywords_in_flags_and_permanentflags() {
    let b = backend();
    b.deliver("alice", "INBOX", MSG.as_bytes()).unwrap();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    t.x(
        "a STORE 1 +FLAGS ($Work)",
        &["a BAD STORE needs a selected mailbox"],
    )
    .await;
    let out = t.send("b SELECT INBOX").await;
    assert!(out.starts_with(&format!("* FLAGS ({SYSTEM})\r\n")), "{out}");
    t.x(
        "c STORE 1 +FLAGS.SILENT ($Work $Junk)",
        &[
            &format!("* FLAGS ({SYSTEM} $Junk $Work)"),
            &format!("* OK [PERMANENTFLAGS ({SYSTEM} $Junk $Work \\*)] flags permitted"),
            "c OK STORE completed",
        ],
    )
    .await;
    // A keyword the mailbox already has is not announced again.
    t.x(
        "d STORE 1 -FLAGS ($Junk)",
        &["* 1 FETCH (FLAGS ($Work \\Recent))", "d OK STORE completed"],
    )
    .await;
    t.x("e UNSELECT", &["e OK UNSELECT completed"]).await;
    t.x(
        "f SELECT INBOX",
        &[
            &format!("* FLAGS ({SYSTEM} $Work)"),
            &format!("* OK [PERMANENTFLAGS ({SYSTEM} $Work \\*)] flags permitted"),
            "* 1 EXISTS",
            "…",
            "…",
            "…",
            "…",
            "…",
            "* OK [MAILBOXID …",
            "* OK [URLMECH INTERNAL] URLAUTH mechanisms",
            "f OK [READ-WRITE] SELECT completed",
        ],
    )
    .await;
    t.x(
        "g EXAMINE INBOX",
        &[
            "* OK [CLOSED] previous mailbox closed",
            &format!("* FLAGS ({SYSTEM} $Work)"),
            "* OK [PERMANENTFLAGS ()] flags permitted",
            "…",
            "…",
            "…",
            "…",
            "…",
            "…",
            "* OK [MAILBOXID …",
            "* OK [URLMECH INTERNAL] URLAUTH mechanisms",
            "g OK [READ-ONLY] EXAMINE completed",
        ],
    )
    .await;
}

#[tokio::test]
async fn another_sessions_new_keyword_comes_before_the_fetch_that_shows_it() {
    let b = backend();
    b.deliver("alice", "INBOX", MSG.as_bytes()).unwrap();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    t.send("a SELECT INBOX").await;
    let mut other = T::new(&b);
    other.login("alice", "secret").await;
    other.send("a SELECT INBOX").await;
    other
        .x(
            "b STORE 1 +FLAGS.SILENT (Urgent)",
            &[
                "* FLAGS …",
                "* OK [PERMANENTFLAGS …",
                "b OK STORE completed",
            ],
        )
        .await;
    t.x(
        "b NOOP",
        &[
            &format!("* FLAGS ({SYSTEM} Urgent)"),
            &format!("* OK [PERMANENTFLAGS ({SYSTEM} Urgent \\*)] flags permitted"),
            "* 1 FETCH (UID 1 FLAGS (Urgent \\Recent))",
            "b OK NOOP completed",
        ],
    )
    .await;
    // An APPEND that brings a keyword: FLAGS before EXISTS, in the appending session too.
    let append = format!("c APPEND INBOX ($Label1) {{{}+}}\r\n{MSG}\r\n", MSG.len());
    t.x(
        &append,
        &[
            &format!("* FLAGS ({SYSTEM} $Label1 Urgent)"),
            "* OK [PERMANENTFLAGS …",
            "* 2 EXISTS",
            "* 2 RECENT",
            "c OK [APPENDUID …",
        ],
    )
    .await;
}

#[tokio::test]
async fn copy_and_move_into_the_selected_mailbox() {
    let b = backend();
    for _ in 0..2 {
        b.deliver("alice", "INBOX", MSG.as_bytes()).unwrap();
    }
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    t.send("a SELECT INBOX").await;
    t.x(
        "b COPY 1 INBOX",
        &[
            "* 3 EXISTS",
            "* 3 RECENT",
            "b OK [COPYUID 1001 1 3] COPY completed",
        ],
    )
    .await;
    t.x(
        "c UID MOVE 2 INBOX",
        &[
            "* OK [COPYUID 1001 2 4] moved",
            "* 2 EXPUNGE",
            "* 3 EXISTS",
            "* 3 RECENT",
            "c OK MOVE completed",
        ],
    )
    .await;
    t.x(
        "d UID SEARCH ALL",
        &["* SEARCH 1 3 4", "d OK UID SEARCH completed"],
    )
    .await;
}

/// RFC 5258 §5's mailboxes: Fruit/Peach was subscribed, then deleted.
async fn fruit_and_vegetables(t: &mut T) {
    for m in [
        "Fruit",
        "Fruit/Apple",
        "Fruit/Banana",
        "Fruit/Peach",
        "Tofu",
        "Vegetable",
        "Vegetable/Broccoli",
        "Vegetable/Corn",
    ] {
        t.x(&format!("c CREATE {m}"), &["c OK [MAILBOXID …"]).await;
    }
    for m in [
        "INBOX",
        "Fruit/Banana",
        "Fruit/Peach",
        "Vegetable",
        "Vegetable/Broccoli",
    ] {
        t.x(&format!("s SUBSCRIBE {m}"), &["s OK SUBSCRIBE completed"])
            .await;
    }
    t.x("d DELETE Fruit/Peach", &["d OK DELETE completed"])
        .await;
}

#[tokio::test]
async fn list_extended_recursivematch_childinfo_and_option_errors() {
    let b = backend();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    fruit_and_vegetables(&mut t).await;
    t.x(
        "a LIST (SUBSCRIBED) \"\" \"*\"",
        &[
            "* LIST (\\HasNoChildren \\Subscribed) \"/\" Fruit/Banana",
            "* LIST (\\NonExistent \\Subscribed) \"/\" Fruit/Peach",
            "* LIST (\\HasNoChildren \\Subscribed) \"/\" INBOX",
            "* LIST (\\HasChildren \\Subscribed) \"/\" Vegetable",
            "* LIST (\\HasNoChildren \\Subscribed) \"/\" Vegetable/Broccoli",
            "a OK LIST completed",
        ],
    )
    .await;
    // RFC 5258 §5 example 9: a parent that is not subscribed but has a subscribed child is
    // listed with CHILDINFO; so is a subscribed one.
    t.x(
        "b LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\" RETURN (CHILDREN)",
        &[
            "* LIST (\\HasChildren) \"/\" Fruit (\"CHILDINFO\" (\"SUBSCRIBED\"))",
            "* LIST (\\HasNoChildren \\Subscribed) \"/\" INBOX",
            "* LIST (\\HasChildren \\Subscribed) \"/\" Vegetable (\"CHILDINFO\" (\"SUBSCRIBED\"))",
            "b OK LIST completed",
        ],
    )
    .await;
    // A parent that does not exist at all is listed as \NonExistent.
    t.x("c CREATE Nuts/Pecan", &["c OK [MAILBOXID …"]).await;
    t.x("c SUBSCRIBE Nuts/Pecan", &["c OK SUBSCRIBE completed"])
        .await;
    t.x("c DELETE Nuts/Pecan", &["c OK DELETE completed"]).await;
    t.x("c DELETE Nuts", &["c OK DELETE completed"]).await;
    t.x(
        "d LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"N%\"",
        &[
            "* LIST (\\NonExistent) \"/\" Nuts (\"CHILDINFO\" (\"SUBSCRIBED\"))",
            "d OK LIST completed",
        ],
    )
    .await;
    for (cmd, why) in [
        ("e LIST (RECURSIVEMATCH) \"\" \"*\"", "syntax error …"),
        (
            "e LIST (REMOTE RECURSIVEMATCH) \"\" \"*\"",
            "syntax error …",
        ),
        (
            "e LIST (SUBSCRIBED FRESH) \"\" \"*\"",
            "unknown LIST selection option",
        ),
        (
            "e LIST \"\" \"*\" RETURN (MYRIGHTS)",
            "unknown LIST return option",
        ),
    ] {
        t.x(cmd, &[&format!("e BAD {why}")]).await;
        t.x("f NOOP", &["f OK NOOP completed"]).await;
    }
}

#[tokio::test]
async fn lsub_percent_lists_the_unsubscribed_parent_as_noselect() {
    let b = backend();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    fruit_and_vegetables(&mut t).await;
    t.x(
        "a LSUB \"\" \"%\"",
        &[
            "* LSUB (\\Noselect) \"/\" Fruit",
            "* LSUB () \"/\" INBOX",
            "* LSUB () \"/\" Vegetable",
            "a OK LSUB completed",
        ],
    )
    .await;
    t.x(
        "b LSUB \"\" \"Fruit/%\"",
        &[
            "* LSUB () \"/\" Fruit/Banana",
            "* LSUB (\\Noselect) \"/\" Fruit/Peach",
            "b OK LSUB completed",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_name_that_is_not_modified_utf7_gets_no() {
    let b = backend();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    for cmd in [
        "a CREATE \"&Jjo!\"",
        "a SELECT &-x&",
        "a STATUS \"&AGE-\" (MESSAGES)",
        "a RENAME INBOX \"&U,BTFw\"",
    ] {
        t.x(
            cmd,
            &["a NO [CANNOT] mailbox name is not valid modified UTF-7"],
        )
        .await;
    }
    // Still BAD: a command that does not parse.
    t.x("b CREATE", &["b BAD …"]).await;
}

#[tokio::test]
async fn envelope_name_from_a_trailing_comment() {
    let b = backend();
    b.deliver(
        "alice",
        "INBOX",
        b"From: bob@example.org (Bob Smith)\r\nSubject: x\r\n\r\nhi\r\n",
    )
    .unwrap();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    t.send("a SELECT INBOX").await;
    t.x(
        "b FETCH 1 ENVELOPE",
        &[
            "* 1 FETCH (ENVELOPE (NIL \"x\" ((\"Bob Smith\" NIL \"bob\" \"example.org\")) \
             ((\"Bob Smith\" NIL \"bob\" \"example.org\")) \
             ((\"Bob Smith\" NIL \"bob\" \"example.org\")) NIL NIL NIL NIL NIL))",
            "b OK FETCH completed",
        ],
    )
    .await;
}

#[tokio::test]
async fn condstore_enabling_commands_report_highestmodseq_and_esearch_min_max_modseq() {
    let b = backend();
    for _ in 0..3 {
        b.deliver("alice", "INBOX", MSG.as_bytes()).unwrap();
    }
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    t.send("a SELECT INBOX").await;
    // Each delivery and STORE bumps the mailbox MODSEQ: the messages have 2, 3, 4, then 5 and 6.
    t.x(
        "b STORE 3 +FLAGS.SILENT (\\Seen)",
        &["b OK STORE completed"],
    )
    .await;
    t.x(
        "c STORE 1 +FLAGS.SILENT (\\Seen)",
        &["c OK STORE completed"],
    )
    .await;
    // The first CONDSTORE-enabling command (FETCH MODSEQ) brings HIGHESTMODSEQ first.
    t.x(
        "d FETCH 1:3 (MODSEQ)",
        &[
            "* OK [HIGHESTMODSEQ 6] highest",
            "* 1 FETCH (MODSEQ (6))",
            "* 2 FETCH (MODSEQ (3))",
            "* 3 FETCH (MODSEQ (5))",
            "d OK FETCH completed",
        ],
    )
    .await;
    t.x(
        "e FETCH 1 (MODSEQ)",
        &["* 1 FETCH (MODSEQ (6))", "e OK FETCH completed"],
    )
    .await;
    // MIN alone: the MODSEQ of that message; MAX alone: of that one; both or ALL: highest.
    for (ret, line) in [
        ("MIN", "* ESEARCH (TAG \"f\") MIN 2 MODSEQ 3"),
        ("MAX", "* ESEARCH (TAG \"f\") MAX 3 MODSEQ 5"),
        ("MIN MAX", "* ESEARCH (TAG \"f\") MIN 2 MAX 3 MODSEQ 5"),
        ("COUNT", "* ESEARCH (TAG \"f\") COUNT 2 MODSEQ 5"),
    ] {
        t.x(
            &format!("f SEARCH RETURN ({ret}) MODSEQ 3 2:3"),
            &[line, "f OK SEARCH completed"],
        )
        .await;
    }
}

#[tokio::test]
async fn enable_condstore_while_selected_reports_highestmodseq() {
    let b = backend();
    b.deliver("alice", "INBOX", MSG.as_bytes()).unwrap();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    t.x(
        "a ENABLE CONDSTORE",
        &["* ENABLED CONDSTORE", "a OK ENABLE completed"],
    )
    .await;
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    t.send("a SELECT INBOX").await;
    t.x(
        "b ENABLE CONDSTORE",
        &[
            "* ENABLED CONDSTORE",
            "* OK [HIGHESTMODSEQ 2] highest",
            "b OK ENABLE completed",
        ],
    )
    .await;
}

#[tokio::test]
async fn recent_belongs_to_the_first_session_told_of_a_message() {
    let b = backend();
    for _ in 0..2 {
        b.deliver("alice", "INBOX", MSG.as_bytes()).unwrap();
    }
    let mut first = T::new(&b);
    first.login("alice", "secret").await;
    first
        .x(
            "a STATUS INBOX (MESSAGES RECENT)",
            &[
                "* STATUS INBOX (MESSAGES 2 RECENT 2)",
                "a OK STATUS completed",
            ],
        )
        .await;
    // EXAMINE looks without taking (RFC 3501 §6.3.2).
    let out = first.send("b EXAMINE INBOX").await;
    assert!(out.contains("* 2 RECENT\r\n"), "{out}");
    let out = first.send("c SELECT INBOX").await;
    assert!(out.contains("* 2 RECENT\r\n"), "{out}");
    let mut second = T::new(&b);
    second.login("alice", "secret").await;
    let out = second.send("a SELECT INBOX").await;
    assert!(out.contains("* 0 RECENT\r\n"), "{out}");
    second
        .x(
            "b FETCH 1:* FLAGS",
            &[
                "* 1 FETCH (FLAGS ())",
                "* 2 FETCH (FLAGS ())",
                "b OK FETCH completed",
            ],
        )
        .await;
    second
        .x("c SEARCH OLD", &["* SEARCH 1 2", "c OK SEARCH completed"])
        .await;
    first
        .x(
            "d STORE 1 +FLAGS (\\Seen \\Recent)",
            &[
                "* 1 FETCH (FLAGS (\\Seen \\Recent))",
                "d OK STORE completed",
            ],
        )
        .await;
    first
        .x(
            "e SEARCH RECENT",
            &["* SEARCH 1 2", "e OK SEARCH completed"],
        )
        .await;
    first
        .x("f SEARCH NEW", &["* SEARCH 2", "f OK SEARCH completed"])
        .await;
    first
        .x("g SEARCH OLD", &["* SEARCH", "g OK SEARCH completed"])
        .await;
    // New mail goes to whichever session hears of it first; the other sees it as old.
    b.deliver("alice", "INBOX", MSG.as_bytes()).unwrap();
    second
        .x(
            "h NOOP",
            &[
                "* 1 FETCH (UID 1 FLAGS (\\Seen))",
                "* 3 EXISTS",
                "* 1 RECENT",
                "h OK NOOP completed",
            ],
        )
        .await;
    first
        .x(
            "i NOOP",
            &["* 3 EXISTS", "* 2 RECENT", "i OK NOOP completed"],
        )
        .await;
    first
        .x(
            "j FETCH 3 FLAGS",
            &["* 3 FETCH (FLAGS ())", "j OK FETCH completed"],
        )
        .await;
    second
        .x(
            "k STATUS INBOX (RECENT)",
            &["* STATUS INBOX (RECENT 0)", "k OK STATUS completed"],
        )
        .await;
}

#[tokio::test]
async fn qresync_resynchronises_on_select_and_reports_vanished() {
    let b = backend();
    for _ in 0..5 {
        b.deliver("alice", "INBOX", MSG.as_bytes()).unwrap();
    }
    // MODSEQs after the deliveries: 2..=6. The client last saw MODSEQ 6.
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    t.x(
        "a SELECT INBOX (QRESYNC (1001 6))",
        &["a BAD QRESYNC is not enabled"],
    )
    .await;
    // Meanwhile another client flags 3 and expunges 2 and 4.
    let mut other = T::new(&b);
    other.login("alice", "secret").await;
    other.send("a SELECT INBOX").await;
    other
        .x(
            "b STORE 2,4 +FLAGS.SILENT (\\Deleted)",
            &["b OK STORE completed"],
        )
        .await;
    other
        .x(
            "c STORE 3 +FLAGS.SILENT (\\Flagged)",
            &["c OK STORE completed"],
        )
        .await;
    other.send("d EXPUNGE").await;
    t.x(
        "b ENABLE QRESYNC",
        &["* ENABLED QRESYNC", "b OK ENABLE completed"],
    )
    .await;
    t.x(
        "c SELECT INBOX (QRESYNC (1001 6 1:5))",
        &[
            "* FLAGS …",
            "* OK [PERMANENTFLAGS …",
            "* 3 EXISTS",
            "* 0 RECENT",
            "* OK [UNSEEN 1] first unseen",
            "* OK [UIDVALIDITY 1001] UIDs valid",
            "* OK [UIDNEXT 6] predicted next UID",
            "* OK [HIGHESTMODSEQ 9] highest",
            "* OK [MAILBOXID …",
            "* OK [URLMECH INTERNAL] URLAUTH mechanisms",
            "* VANISHED (EARLIER) 2,4",
            "* 2 FETCH (UID 3 FLAGS (\\Flagged) MODSEQ (8))",
            "c OK [READ-WRITE] SELECT completed",
        ],
    )
    .await;
    // A stale UIDVALIDITY: an ordinary SELECT, nothing to resynchronise.
    let out = t.send("d EXAMINE INBOX (QRESYNC (999 6 1:5))").await;
    assert!(!out.contains("VANISHED"), "{out}");
    t.send("e SELECT INBOX").await;
    // Expunges now come as VANISHED, in this session and the other's updates alike.
    t.x(
        "f STORE 1 +FLAGS.SILENT (\\Deleted)",
        &["* 1 FETCH (UID 1 MODSEQ (10))", "f OK STORE completed"],
    )
    .await;
    t.x("g EXPUNGE", &["* VANISHED 1", "g OK EXPUNGE completed"])
        .await;
    other
        .x("e NOOP", &["* 1 EXPUNGE", "e OK NOOP completed"])
        .await;
    t.x(
        "h UID FETCH 1:* (FLAGS) (CHANGEDSINCE 7 VANISHED)",
        &[
            "* VANISHED (EARLIER) 1:2,4",
            "* 1 FETCH (UID 3 FLAGS (\\Flagged) MODSEQ (8))",
            "h OK UID FETCH completed",
        ],
    )
    .await;
    t.x(
        "i FETCH 1:* (FLAGS) (CHANGEDSINCE 7 VANISHED)",
        &["i BAD syntax error …"],
    )
    .await;
    other
        .x(
            "f UID FETCH 1:* (FLAGS) (CHANGEDSINCE 7 VANISHED)",
            &["f BAD VANISHED needs ENABLE QRESYNC"],
        )
        .await;
}

#[tokio::test]
async fn readme_lists_the_capabilities_as_advertised() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let listed = readme
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("* CAPABILITY "))
        .expect("README lists the capabilities");
    let b = backend();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    t.x("a CAPABILITY", &[listed, "a OK CAPABILITY completed"])
        .await;
}

#[tokio::test]
async fn within_searches_by_age_in_seconds() {
    let b = backend();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    let n = MSG.len();
    t.send(&format!(
        "a APPEND INBOX \"01-Jan-2020 00:00:00 +0000\" {{{n}+}}\r\n{MSG}"
    ))
    .await;
    t.send(&format!("b APPEND INBOX {{{n}+}}\r\n{MSG}")).await;
    t.send("c SELECT INBOX").await;
    t.x(
        "d SEARCH OLDER 86400",
        &["* SEARCH 1", "d OK SEARCH completed"],
    )
    .await;
    t.x(
        "e SEARCH YOUNGER 3600",
        &["* SEARCH 2", "e OK SEARCH completed"],
    )
    .await;
    t.x(
        "f UID SEARCH NOT YOUNGER 3600 OLDER 1",
        &["* SEARCH 1", "f OK UID SEARCH completed"],
    )
    .await;
    t.x("g SEARCH OLDER 0", &["g BAD …"]).await;
}

/// The `(…)` value of `NAME (value)` in `line`.
fn paren_value<'a>(line: &'a str, name: &str) -> &'a str {
    let at = line.find(&format!("{name} (")).unwrap() + name.len() + 2;
    let end = at + line[at..].find(')').unwrap();
    &line[at..end]
}

#[tokio::test]
async fn objectid_mailboxid_survives_rename_and_emailid_follows_the_bytes() {
    let b = backend();
    b.deliver("alice", "INBOX", MSG.as_bytes()).unwrap();
    b.deliver("alice", "INBOX", b"Subject: other\r\n\r\nx\r\n")
        .unwrap();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    let created = t.send("a CREATE Projects").await;
    let id = paren_value(&created, "MAILBOXID").to_owned();
    assert!(
        id.len() > 1 && id.bytes().all(|c| c.is_ascii_alphanumeric()),
        "{created}"
    );
    t.x("b RENAME Projects Work", &["b OK RENAME completed"])
        .await;
    t.x(
        "c STATUS Work (MAILBOXID MESSAGES)",
        &[
            &format!("* STATUS Work (MAILBOXID ({id}) MESSAGES 0)"),
            "c OK STATUS completed",
        ],
    )
    .await;
    let inbox = t.send("d STATUS INBOX (MAILBOXID)").await;
    assert_ne!(paren_value(&inbox, "MAILBOXID"), id);
    t.send("e SELECT INBOX").await;
    let fetched = t.send("f FETCH 1:2 (EMAILID THREADID)").await;
    let lines: Vec<&str> = fetched.lines().collect();
    let (one, two) = (
        paren_value(lines[0], "EMAILID").to_owned(),
        paren_value(lines[1], "EMAILID").to_owned(),
    );
    assert_ne!(one, two);
    // Different content and no Message-IDs to link them: two threads.
    assert_ne!(
        paren_value(lines[0], "THREADID"),
        paren_value(lines[1], "THREADID"),
        "{fetched}"
    );
    t.x("g COPY 1 Work", &["g OK [COPYUID …"]).await;
    t.send("h SELECT Work").await;
    t.x(
        "i FETCH 1 (EMAILID)",
        &[
            &format!("* 1 FETCH (EMAILID ({one}))"),
            "i OK FETCH completed",
        ],
    )
    .await;
    t.x(
        &format!("j SEARCH EMAILID {one}"),
        &["* SEARCH 1", "j OK SEARCH completed"],
    )
    .await;
    t.x(
        &format!("k SEARCH EMAILID {two}"),
        &["* SEARCH", "k OK SEARCH completed"],
    )
    .await;
    t.x(
        "l SEARCH THREADID T1",
        &["* SEARCH", "l OK SEARCH completed"],
    )
    .await;
    t.x("m SEARCH EMAILID a.b", &["m BAD …"]).await;
}

#[tokio::test]
async fn multiappend_commits_all_or_nothing() {
    let b = backend();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    let n = MSG.len();
    let (out, _) = t
        .raw(
            format!(
                "a APPEND INBOX (\\Seen) {{{n}+}}\r\n{MSG} ($Work) \"01-Jan-2020 00:00:00 +0000\" {{{n}+}}\r\n{MSG} {{{n}+}}\r\n{MSG}\r\n"
            )
            .as_bytes(),
        )
        .await;
    assert_eq!(out, "a OK [APPENDUID 1001 1:3] APPEND completed\r\n");
    // root acting as alice (AUTHENTICATE PLAIN with alice as authorization identity).
    let mut admin = T::new(&b);
    admin
        .x("x AUTHENTICATE PLAIN YWxpY2UAcm9vdAB0b29y", &["x OK …"])
        .await;
    admin
        .x(
            "q SETQUOTA \"\" (MESSAGE 4)",
            &["* QUOTA …", "q OK SETQUOTA completed"],
        )
        .await;
    // Two more would make five: neither is kept.
    let (out, _) = t
        .raw(format!("b APPEND INBOX {{{n}+}}\r\n{MSG} {{{n}+}}\r\n{MSG}\r\n").as_bytes())
        .await;
    assert!(out.starts_with("b NO [OVERQUOTA]"), "{out}");
    t.x(
        "c STATUS INBOX (MESSAGES UIDNEXT)",
        &[
            "* STATUS INBOX (MESSAGES 3 UIDNEXT 4)",
            "c OK STATUS completed",
        ],
    )
    .await;
}

#[tokio::test]
async fn binary_append_and_fetch() {
    let b = backend();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    // An 8-bit body sent as a literal8, and a base64 part to decode.
    let msg = "Subject: b\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\u{e9}\r\n--X\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC/w==\r\n--X--\r\n";
    let n = msg.len();
    let (out, _) = t
        .raw(format!("a APPEND INBOX ~{{{n}+}}\r\n{msg}\r\n").as_bytes())
        .await;
    assert_eq!(out, "a OK [APPENDUID 1001 1] APPEND completed\r\n");
    let (out, _) = t.raw(b"b APPEND INBOX ~{5+}\r\nx\x00y\r\n\r\n").await;
    assert!(out.starts_with("b NO [UNKNOWN-CTE]"), "{out}");
    t.send("c SELECT INBOX").await;
    t.x(
        "d FETCH 1 (BINARY.SIZE[2] BINARY.SIZE[1])",
        &[
            "* 1 FETCH (BINARY.SIZE[2] 4 BINARY.SIZE[1] 5)",
            "d OK FETCH completed",
        ],
    )
    .await;
    let (out, _) = t.raw_bytes(b"e FETCH 1 BINARY.PEEK[2]\r\n").await;
    assert_eq!(
        out,
        b"* 1 FETCH (BINARY[2] ~{4}\r\n\x00\x01\x02\xff)\r\ne OK FETCH completed\r\n"
    );
}

#[tokio::test]
async fn preview_gives_the_start_of_the_text() {
    let b = backend();
    b.deliver(
        "alice",
        "INBOX",
        b"Subject: p\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHi Alice,\r\n\r\n  lunch at caf\xc3\xa9?\r\n",
    )
    .unwrap();
    b.deliver("alice", "INBOX", b"Subject: p\r\n\r\n\r\n")
        .unwrap();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    t.send("a SELECT INBOX").await;
    t.x(
        "b FETCH 1:2 (PREVIEW)",
        &[
            "* 1 FETCH (PREVIEW {25}",
            "Hi Alice, lunch at caf\u{e9}?)",
            "* 2 FETCH (PREVIEW \"\")",
            "b OK FETCH completed",
        ],
    )
    .await;
    // LAZY is accepted; a FETCH modifier after a lone PREVIEW is still a modifier.
    t.x(
        "c UID FETCH 2 (UID PREVIEW (LAZY))",
        &["* 2 FETCH (UID 2 PREVIEW \"\")", "c OK UID FETCH completed"],
    )
    .await;
    t.x(
        "d UID FETCH 2 PREVIEW (CHANGEDSINCE 1)",
        &[
            "* OK [HIGHESTMODSEQ …",
            "* 2 FETCH (UID 2 PREVIEW \"\" MODSEQ (3))",
            "d OK UID FETCH completed",
        ],
    )
    .await;
    t.x("e FETCH 1 (PREVIEW (EAGER))", &["e BAD …"]).await;
}

#[tokio::test]
async fn savedate_is_when_the_message_reached_the_mailbox() {
    let b = backend();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    let n = MSG.len();
    t.send(&format!(
        "a APPEND INBOX \"01-Jun-2019 10:00:00 +0000\" {{{n}+}}\r\n{MSG}"
    ))
    .await;
    t.send("b SELECT INBOX").await;
    let out = t.send("c FETCH 1 (INTERNALDATE SAVEDATE)").await;
    assert!(
        out.starts_with("* 1 FETCH (INTERNALDATE \" 1-Jun-2019 10:00:00 +0000\" SAVEDATE \""),
        "{out}"
    );
    assert!(!out.contains("SAVEDATE \" 1-Jun-2019"), "{out}");
    t.x(
        "d SEARCH BEFORE 1-Jan-2020",
        &["* SEARCH 1", "d OK SEARCH completed"],
    )
    .await;
    t.x(
        "e SEARCH SAVEDBEFORE 1-Jan-2020",
        &["* SEARCH", "e OK SEARCH completed"],
    )
    .await;
    t.x(
        "f SEARCH SAVEDSINCE 1-Jan-2020 SAVEDATESUPPORTED",
        &["* SEARCH 1", "f OK SEARCH completed"],
    )
    .await;
}

#[tokio::test]
async fn utf8_accept_names_and_append() {
    let b = backend();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    let n = MSG.len();
    // Before ENABLE: 8-bit names are refused, and UTF8 append data is a syntax error.
    t.x("a CREATE \"Donn\u{e9}es\"", &["a BAD …"]).await;
    t.x(
        &format!("b APPEND INBOX UTF8 (~{{{n}+}}\r\n{MSG})"),
        &["b BAD …"],
    )
    .await;
    t.x(
        "c ENABLE UTF8=ACCEPT",
        &["* ENABLED UTF8=ACCEPT", "c OK ENABLE completed"],
    )
    .await;
    t.x("d CREATE \"Donn\u{e9}es\"", &["d OK [MAILBOXID …"])
        .await;
    t.x(
        "e LIST \"\" \"D*\"",
        &[
            "* LIST (\\HasNoChildren) \"/\" \"Donn\u{e9}es\"",
            "e OK LIST completed",
        ],
    )
    .await;
    let msg =
        "From: =?utf-8?q?x?= <j\u{f6}rg@example.org>\r\nSubject: gr\u{fc}\u{df}e\r\n\r\nhi\r\n";
    let n8 = msg.len();
    t.x(
        &format!("f APPEND \"Donn\u{e9}es\" UTF8 (~{{{n8}+}}\r\n{msg})"),
        &["f OK [APPENDUID …"],
    )
    .await;
    // A client without UTF8=ACCEPT sees the modified UTF-7 name.
    let mut other = T::new(&b);
    other.login("alice", "secret").await;
    other
        .x(
            "a STATUS \"Donn&AOk-es\" (MESSAGES)",
            &["* STATUS Donn&AOk-es (MESSAGES 1)", "a OK STATUS completed"],
        )
        .await;
}

#[tokio::test]
async fn imap4rev2_sessions_get_esearch_and_no_recent() {
    let b = backend();
    for _ in 0..2 {
        b.deliver("alice", "INBOX", MSG.as_bytes()).unwrap();
    }
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    t.x(
        "a ENABLE IMAP4rev2",
        &["* ENABLED IMAP4rev2", "a OK ENABLE completed"],
    )
    .await;
    let out = t.send("b SELECT INBOX").await;
    assert!(!out.contains("RECENT") && !out.contains("UNSEEN"), "{out}");
    t.x(
        "c FETCH 1:2 FLAGS",
        &[
            "* 1 FETCH (FLAGS ())",
            "* 2 FETCH (FLAGS ())",
            "c OK FETCH completed",
        ],
    )
    .await;
    t.x(
        "d SEARCH ALL",
        &["* ESEARCH (TAG \"d\") ALL 1:2", "d OK SEARCH completed"],
    )
    .await;
    t.x(
        "e UID SEARCH DELETED",
        &["* ESEARCH (TAG \"e\") UID", "e OK UID SEARCH completed"],
    )
    .await;
    // The messages stay \Recent for the next IMAP4rev1 session: rev2 claimed nothing.
    let mut rev1 = T::new(&b);
    rev1.login("alice", "secret").await;
    let out = rev1.send("a SELECT INBOX").await;
    assert!(out.contains("* 2 RECENT\r\n"), "{out}");
    b.deliver("alice", "INBOX", MSG.as_bytes()).unwrap();
    t.x("f NOOP", &["* 3 EXISTS", "f OK NOOP completed"]).await;
}

#[tokio::test]
async fn catenate_builds_a_message_from_urls_and_text() {
    let b = backend();
    let original = "From: a@example.org\r\nSubject: orig\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n--B\r\nContent-Type: text/plain\r\n\r\nsecond part\r\n--B--\r\n";
    b.deliver("alice", "INBOX", original.as_bytes()).unwrap();
    b.deliver("bob", "INBOX", MSG.as_bytes()).unwrap();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    // The original's header, then new text, then its second part's body.
    let text = "\r\nForwarded:\r\n";
    let cmd = format!(
        "a APPEND INBOX (\\Draft) CATENATE (URL \"/INBOX;UIDVALIDITY=1001/;UID=1/;SECTION=HEADER\" TEXT {{{}+}}\r\n{text} URL \"imap://alice@localhost/INBOX/;UID=1/;SECTION=2\")",
        text.len()
    );
    t.x(&cmd, &["a OK [APPENDUID 1001 2] APPEND completed"])
        .await;
    t.send("b SELECT INBOX").await;
    let expected = "From: a@example.org\r\nSubject: orig\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n\r\nForwarded:\r\nsecond part";
    t.x(
        "c FETCH 2 (FLAGS BODY.PEEK[])",
        &[
            &format!(
                "* 2 FETCH (FLAGS (\\Draft \\Recent) BODY[] {{{}}}",
                expected.len()
            ),
            "From: a@example.org",
            "Subject: orig",
            "Content-Type: multipart/mixed; boundary=B",
            "",
            "",
            "Forwarded:",
            "second part)",
            "c OK FETCH completed",
        ],
    )
    .await;
    // A partial of a whole message.
    t.x(
        "d APPEND INBOX CATENATE (URL \"/INBOX/;UID=1/;PARTIAL=0.4\")",
        &[
            "* 3 EXISTS",
            "* 3 RECENT",
            "d OK [APPENDUID 1001 3] APPEND completed",
        ],
    )
    .await;
    t.x(
        "e FETCH 3 BODY.PEEK[]",
        &["* 3 FETCH (BODY[] \"From\")", "e OK FETCH completed"],
    )
    .await;
    // URLs that name nothing of alice's: BADURL, and nothing is appended.
    for url in [
        "/INBOX;UIDVALIDITY=7/;UID=1",
        "/INBOX/;UID=99",
        "/Nope/;UID=1",
        "imap://bob@localhost/INBOX/;UID=1",
        "imap://alice@elsewhere.example/INBOX/;UID=1",
        "/INBOX/;UID=1/;SECTION=9",
        "not a url",
    ] {
        t.x(
            &format!("f APPEND INBOX CATENATE (URL \"{url}\")"),
            &[&format!("f NO [BADURL {url}] …")],
        )
        .await;
    }
    t.x(
        "g STATUS INBOX (MESSAGES)",
        &["* STATUS INBOX (MESSAGES 3)", "g OK STATUS completed"],
    )
    .await;
    t.x("h APPEND INBOX CATENATE ()", &["h BAD …"]).await;
}

#[tokio::test]
async fn message_global_is_an_embedded_message_only_for_imap4rev2() {
    let b = backend();
    b.deliver(
        "alice",
        "INBOX",
        b"Subject: outer\r\nContent-Type: message/global\r\n\r\nSubject: inner\r\n\r\nhi\r\n",
    )
    .unwrap();
    // Both sessions share one server's kept summaries: what rev1 rendered first must not be
    // what rev2 is shown.
    let config = ImapConfig::default();
    let mut rev1 = T::with(&b, config.clone());
    rev1.login("alice", "secret").await;
    rev1.send("a SELECT INBOX").await;
    // IMAP4rev1 (RFC 3501) has no message/global body type: a basic part, no inner header.
    rev1.x(
        "b FETCH 1 (BODY BODY.PEEK[1.HEADER])",
        &[
            "* 1 FETCH (BODY (\"MESSAGE\" \"GLOBAL\" NIL NIL NIL \"7BIT\" 22) BODY[1.HEADER] \"\")",
            "b OK FETCH completed",
        ],
    )
    .await;
    let mut rev2 = T::with(&b, config);
    rev2.login("alice", "secret").await;
    rev2.send("a ENABLE IMAP4rev2").await;
    rev2.send("b SELECT INBOX").await;
    let out = rev2.send("c FETCH 1 (BODY BODY.PEEK[1.HEADER])").await;
    assert!(
        out.starts_with(
            "* 1 FETCH (BODY (\"MESSAGE\" \"GLOBAL\" NIL NIL NIL \"7BIT\" 22 (NIL \"inner\""
        ),
        "{out}"
    );
    assert!(
        out.contains("BODY[1.HEADER] {18}\r\nSubject: inner\r\n\r\n)"),
        "{out}"
    );
    // And rev1 still sees its own rendering, now from the kept summary.
    rev1.x(
        "c FETCH 1 (BODY)",
        &[
            "* 1 FETCH (BODY (\"MESSAGE\" \"GLOBAL\" NIL NIL NIL \"7BIT\" 22))",
            "c OK FETCH completed",
        ],
    )
    .await;
}

#[tokio::test]
async fn bodystructure_after_a_kept_envelope_is_that_of_the_message() {
    let b = backend();
    b.deliver(
        "alice",
        "INBOX",
        b"Subject: two\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\none\r\n--x\r\nContent-Type: text/html\r\n\r\n<p>2</p>\r\n--x--\r\n",
    )
    .unwrap();
    // The ENVELOPE keeps a summary without BODYSTRUCTURE; the next FETCH renders it.
    let config = ImapConfig::default();
    let mut t = T::with(&b, config.clone());
    t.login("alice", "secret").await;
    t.send("a SELECT INBOX").await;
    let env = t.send("b FETCH 1 (ENVELOPE)").await;
    assert!(env.contains("\"two\""), "{env}");
    let kept = t.send("c FETCH 1 (BODYSTRUCTURE BODY)").await;
    let mut fresh = T::new(&b);
    fresh.login("alice", "secret").await;
    fresh.send("a SELECT INBOX").await;
    let direct = fresh.send("c FETCH 1 (BODYSTRUCTURE BODY)").await;
    assert_eq!(kept, direct);
    assert!(kept.contains("(\"TEXT\" \"HTML\""), "{kept}");
}
