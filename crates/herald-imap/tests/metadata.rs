//! METADATA (RFC 5464) transcripts against the session and the in-memory store: GETMETADATA
//! with DEPTH and MAXSIZE, SETMETADATA with NIL, literals and literal8, server entries and who
//! may set them, and the `[METADATA …]` response codes.

#![allow(clippy::unwrap_used)]

mod harness;

use harness::{T, backend};
use herald_store::MetadataLimits;

#[tokio::test]
async fn capabilities_name_metadata_and_metadata_server() {
    let b = backend();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    let out = t.send("a CAPABILITY").await;
    assert!(
        out.contains(" METADATA ") && out.contains(" METADATA-SERVER"),
        "{out}"
    );
}

#[tokio::test]
async fn mailbox_entries_set_read_and_removed() {
    let b = backend();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    t.x(
        "a SETMETADATA INBOX (/private/Comment \"My comment\" /shared/comment {6+}\r\nshared)",
        &["a OK SETMETADATA completed"],
    )
    .await;
    t.x(
        "b GETMETADATA INBOX (/private/comment /shared/comment /shared/none)",
        &[
            "* METADATA INBOX (/private/comment \"My comment\" /shared/comment \"shared\" /shared/none NIL)",
            "b OK GETMETADATA completed",
        ],
    )
    .await;
    t.x(
        "c SETMETADATA INBOX (/private/comment NIL)",
        &["c OK SETMETADATA completed"],
    )
    .await;
    t.x(
        "d GETMETADATA (DEPTH infinity) INBOX /private",
        &["d OK GETMETADATA completed"],
    )
    .await;
    // Another user sees nothing of alice's INBOX in theirs.
    let mut bob = T::new(&b);
    bob.login("bob", "hunter2").await;
    bob.x(
        "e GETMETADATA INBOX /shared/comment",
        &[
            "* METADATA INBOX (/shared/comment NIL)",
            "e OK GETMETADATA completed",
        ],
    )
    .await;
    t.x(
        "f GETMETADATA Nope /shared/comment",
        &["f NO [NONEXISTENT] …"],
    )
    .await;
    t.x(
        "g SETMETADATA Nope (/shared/comment \"x\")",
        &["g NO [NONEXISTENT] …"],
    )
    .await;
}

#[tokio::test]
async fn depth_maxsize_and_longentries() {
    let b = backend();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    t.x(
        "a SETMETADATA INBOX (/shared/a \"1\" /shared/a/b \"22\" /shared/a/b/c \"333\")",
        &["a OK SETMETADATA completed"],
    )
    .await;
    t.x(
        "b GETMETADATA (DEPTH 1) INBOX /shared/a",
        &[
            "* METADATA INBOX (/shared/a \"1\" /shared/a/b \"22\")",
            "b OK GETMETADATA completed",
        ],
    )
    .await;
    t.x(
        "c GETMETADATA (DEPTH infinity MAXSIZE 2) INBOX (/shared)",
        &[
            "* METADATA INBOX (/shared/a \"1\" /shared/a/b \"22\")",
            "c OK [METADATA LONGENTRIES 3] GETMETADATA completed",
        ],
    )
    .await;
}

#[tokio::test]
async fn binary_values_go_both_ways_as_literal8() {
    let b = backend();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    let (out, _) = t
        .raw(b"a SETMETADATA INBOX (/private/bin ~{4+}\r\n\0\x01\r\n)\r\n")
        .await;
    assert_eq!(out, "a OK SETMETADATA completed\r\n");
    let (out, _) = t.raw_bytes(b"b GETMETADATA INBOX /private/bin\r\n").await;
    assert_eq!(
        out,
        b"* METADATA INBOX (/private/bin ~{4}\r\n\0\x01\r\n)\r\nb OK GETMETADATA completed\r\n"
    );
}

#[tokio::test]
async fn server_entries_readable_by_all_shared_ones_set_by_admins() {
    let b = backend();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    t.x(
        "a SETMETADATA \"\" (/shared/comment \"x\")",
        &["a NO [NOPERM] only administrators may change shared server metadata"],
    )
    .await;
    t.x(
        "b SETMETADATA \"\" (/private/vendor/ui \"dark\")",
        &["b OK SETMETADATA completed"],
    )
    .await;
    let mut root = T::new(&b);
    root.login("root", "toor").await;
    root.x(
        "c SETMETADATA \"\" (/shared/admin \"mailto:root@example.org\")",
        &["c OK SETMETADATA completed"],
    )
    .await;
    t.x(
        "d GETMETADATA \"\" (/shared/admin /private/vendor/ui)",
        &[
            "* METADATA \"\" (/shared/admin \"mailto:root@example.org\" /private/vendor/ui \"dark\")",
            "d OK GETMETADATA completed",
        ],
    )
    .await;
    root.x(
        "e GETMETADATA \"\" /private/vendor/ui",
        &[
            "* METADATA \"\" (/private/vendor/ui NIL)",
            "e OK GETMETADATA completed",
        ],
    )
    .await;
}

#[tokio::test]
async fn limits_answer_maxsize_and_toomany() {
    let b = backend();
    b.set_metadata_limits(MetadataLimits {
        max_value_bytes: 10,
        max_entries_per_mailbox: 2,
        max_entries_per_user: 100,
    });
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    t.x(
        "a SETMETADATA INBOX (/private/a \"12345678901\")",
        &["a NO [METADATA MAXSIZE 10] …"],
    )
    .await;
    // A synchronizing literal above the limit is refused before its bytes are sent.
    let (out, _) = t.raw(b"b SETMETADATA INBOX (/private/a {11}\r\n").await;
    assert_eq!(
        out,
        "b NO [METADATA MAXSIZE 10] metadata value too large\r\n"
    );
    t.x(
        "c SETMETADATA INBOX (/private/a \"1\" /private/b \"2\" /private/c \"3\")",
        &["c NO [METADATA TOOMANY] …"],
    )
    .await;
    t.x(
        "d GETMETADATA (DEPTH infinity) INBOX /private",
        &["d OK GETMETADATA completed"],
    )
    .await;
}

#[tokio::test]
async fn bad_names_and_syntax_are_bad() {
    let b = backend();
    let mut t = T::new(&b);
    t.x(
        "a GETMETADATA INBOX /private/comment",
        &["a BAD GETMETADATA needs authentication"],
    )
    .await;
    t.login("alice", "secret").await;
    for (cmd, want) in [
        (
            "b SETMETADATA INBOX (/comment \"x\")",
            "b BAD invalid metadata entry name …",
        ),
        (
            "c SETMETADATA INBOX (\"/private/a*\" \"x\")",
            "c BAD invalid metadata entry name …",
        ),
        (
            "d SETMETADATA INBOX (/private/a//b \"x\")",
            "d BAD invalid metadata entry name …",
        ),
        (
            "e SETMETADATA INBOX (/private/a/ \"x\")",
            "e BAD invalid metadata entry name …",
        ),
        (
            "f GETMETADATA (DEPTH 7) INBOX /private/a",
            "f BAD syntax error …",
        ),
        ("g SETMETADATA INBOX ()", "g BAD syntax error …"),
    ] {
        t.x(cmd, &[want]).await;
    }
}
