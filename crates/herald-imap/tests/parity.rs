//! Transcripts of the RFC points where clients compare Herald with Dovecot: keywords in FLAGS,
//! COPY and MOVE into the selected mailbox, LIST and LSUB corner cases, ESEARCH with
//! CONDSTORE, names that are not modified UTF-7. Each test fails without its fix.

#![allow(clippy::unwrap_used)]

mod harness;

use harness::{T, backend};

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
        &["* 1 FETCH (FLAGS ($Work))", "d OK STORE completed"],
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
            "* 1 FETCH (UID 1 FLAGS (Urgent))",
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
        &["* 3 EXISTS", "b OK [COPYUID 1001 1 3] COPY completed"],
    )
    .await;
    t.x(
        "c UID MOVE 2 INBOX",
        &[
            "* OK [COPYUID 1001 2 4] moved",
            "* 2 EXPUNGE",
            "* 3 EXISTS",
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
