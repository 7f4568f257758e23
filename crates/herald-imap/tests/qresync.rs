//! QRESYNC's VANISHED (EARLIER) from the store's expunge tombstones (RFC 7162 §3.2.5.2,
//! §3.2.6), with and without the client's sequence match data, and RFC 8474 THREADID.
//!
//! Each test fails without its fix: before tombstones, VANISHED (EARLIER) named every UID the
//! client listed that the mailbox lacked, including those the client had been told of long
//! ago; before threads, THREADID was NIL and SEARCH THREADID matched nothing.

#![allow(clippy::unwrap_used)]

mod harness;

use harness::{T, backend};
use herald_imap::session::memory::MemoryBackend;

const MSG: &str = "From: Bob <bob@example.org>\r\nSubject: hi\r\n\r\nbody\r\n";

/// A session with QRESYNC enabled.
async fn qresync_session(b: &MemoryBackend) -> T {
    let mut t = T::new(b);
    t.login("alice", "secret").await;
    t.x(
        "e ENABLE QRESYNC",
        &["* ENABLED QRESYNC", "e OK ENABLE completed"],
    )
    .await;
    t
}

/// Another client deletes and expunges `uids` (a UID set) in INBOX; returns the mailbox's
/// HIGHESTMODSEQ after it.
async fn expunge_elsewhere(b: &MemoryBackend, uids: &str) -> u64 {
    let mut other = T::new(b);
    other.login("alice", "secret").await;
    other.send("a SELECT INBOX").await;
    other
        .x(
            &format!("b UID STORE {uids} +FLAGS.SILENT (\\Deleted)"),
            &["b OK STORE completed"],
        )
        .await;
    other.send(&format!("c UID EXPUNGE {uids}")).await;
    let status = other.send("d STATUS INBOX (HIGHESTMODSEQ)").await;
    let at = status.find("HIGHESTMODSEQ ").unwrap() + "HIGHESTMODSEQ ".len();
    status[at..].split(')').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn select_names_only_what_was_expunged_since_the_clients_modseq() {
    let b = backend();
    for _ in 0..6 {
        b.deliver("alice", "INBOX", MSG.as_bytes()).unwrap();
    }
    // UID 2 went before the client last synchronised (it was told then), 4 after.
    let synced = expunge_elsewhere(&b, "2").await;
    expunge_elsewhere(&b, "4").await;
    let mut t = qresync_session(&b).await;
    let out = t
        .send(&format!("s SELECT INBOX (QRESYNC (1001 {synced} 1:6))"))
        .await;
    assert!(out.contains("\r\n* VANISHED (EARLIER) 4\r\n"), "{out}");
    // Without known UIDs the client is taken to know 1:UIDNEXT-1; the answer is the same.
    let out = t
        .send(&format!("t EXAMINE INBOX (QRESYNC (1001 {synced}))"))
        .await;
    assert!(out.contains("\r\n* VANISHED (EARLIER) 4\r\n"), "{out}");
    // Known UIDs narrow it further.
    let out = t
        .send(&format!(
            "u EXAMINE INBOX (QRESYNC (1001 {synced} 1:3,5:6))"
        ))
        .await;
    assert!(!out.contains("VANISHED"), "{out}");
    // From before both expunges, both.
    let out = t.send("v EXAMINE INBOX (QRESYNC (1001 1 1:6))").await;
    assert!(out.contains("\r\n* VANISHED (EARLIER) 2,4\r\n"), "{out}");
}

#[tokio::test]
async fn uid_fetch_vanished_names_only_expunges_after_changedsince() {
    let b = backend();
    for _ in 0..6 {
        b.deliver("alice", "INBOX", MSG.as_bytes()).unwrap();
    }
    let synced = expunge_elsewhere(&b, "2").await;
    let mut t = qresync_session(&b).await;
    t.send("s SELECT INBOX").await;
    expunge_elsewhere(&b, "4").await;
    // RFC 7162 §3.2.6: the expunges in the UID set with a MODSEQ above CHANGEDSINCE. UID 4
    // is still in this session's view (not yet reported): it comes as a plain VANISHED once
    // the session may report expunges, never as EARLIER while sequence numbers stand.
    t.x(
        &format!("f UID FETCH 1:6 (FLAGS) (CHANGEDSINCE {synced} VANISHED)"),
        &["* VANISHED 4", "f OK UID FETCH completed"],
    )
    .await;
    t.x(
        &format!("g UID FETCH 1:6 (FLAGS) (CHANGEDSINCE {synced} VANISHED)"),
        &["* VANISHED (EARLIER) 4", "g OK UID FETCH completed"],
    )
    .await;
    t.x(
        "h UID FETCH 3:6 (FLAGS) (CHANGEDSINCE 1 VANISHED)",
        &[
            "* VANISHED (EARLIER) 4",
            "* 2 FETCH (UID 3 FLAGS () MODSEQ (4))",
            "* 3 FETCH (UID 5 FLAGS () MODSEQ (6))",
            "* 4 FETCH (UID 6 FLAGS () MODSEQ (7))",
            "h OK UID FETCH completed",
        ],
    )
    .await;
    // `*` reaches the largest UID ever given out, expunged or not.
    expunge_elsewhere(&b, "6").await;
    t.x("i NOOP", &["* VANISHED 6", "i OK NOOP completed"])
        .await;
    t.x(
        "j UID FETCH 5:* (FLAGS) (CHANGEDSINCE 1 VANISHED)",
        &[
            "* VANISHED (EARLIER) 6",
            "* 3 FETCH (UID 5 FLAGS () MODSEQ (6))",
            "j OK UID FETCH completed",
        ],
    )
    .await;
}

#[tokio::test]
async fn without_tombstones_vanished_stays_conservative_and_sequence_match_narrows_it() {
    let b = backend();
    for _ in 0..9 {
        b.deliver("alice", "INBOX", MSG.as_bytes()).unwrap();
    }
    let synced = expunge_elsewhere(&b, "2").await;
    expunge_elsewhere(&b, "7").await;
    // The server no longer remembers these expunges (pruned tombstones, or expunges from
    // before the store kept them).
    b.forget_tombstones("alice", "INBOX").unwrap();
    let mut t = qresync_session(&b).await;
    let out = t
        .send(&format!("s EXAMINE INBOX (QRESYNC (1001 {synced} 1:9))"))
        .await;
    assert!(out.contains("\r\n* VANISHED (EARLIER) 2,7\r\n"), "{out}");
    // RFC 7162 §3.2.5.2 sequence match data: the client's message 3 was UID 4 and its
    // message 5 was UID 6, and they still are, so it knows of every expunge up to UID 6;
    // its message 7 was UID 8, which now is message 6: something at or below UID 8 went.
    let out = t
        .send(&format!(
            "t EXAMINE INBOX (QRESYNC (1001 {synced} 1:9 (3,5,7 4,6,8)))"
        ))
        .await;
    assert!(out.contains("\r\n* VANISHED (EARLIER) 7\r\n"), "{out}");
    // Sets of different lengths are no match data at all.
    let out = t
        .send(&format!(
            "u EXAMINE INBOX (QRESYNC (1001 {synced} 1:9 (3,5 4,6,8)))"
        ))
        .await;
    assert!(out.contains("\r\n* VANISHED (EARLIER) 2,7\r\n"), "{out}");
    // Huge ranges cost what the mailbox holds, not what the client wrote.
    let out = t
        .send(&format!(
            "v EXAMINE INBOX (QRESYNC (1001 {synced} 1:4294967295 (1:4294967295 1:4294967295)))"
        ))
        .await;
    assert!(out.contains("\r\n* VANISHED (EARLIER) 2,7\r\n"), "{out}");
    // With tombstones gone, UID FETCH falls back the same way.
    t.send("w SELECT INBOX").await;
    t.x(
        &format!("x UID FETCH 1:9 (UID) (CHANGEDSINCE {synced} VANISHED)"),
        &["* VANISHED (EARLIER) 2,7", "x OK UID FETCH completed"],
    )
    .await;
}

/// A message with a Message-ID, replying to `parents` (oldest first).
fn mail(id: &str, parents: &[&str], subject: &str) -> String {
    let mut m = format!("Message-ID: <{id}>\r\nSubject: {subject}\r\n");
    if let Some(p) = parents.last() {
        m.push_str(&format!("In-Reply-To: <{p}>\r\n"));
        let refs: Vec<String> = parents.iter().map(|p| format!("<{p}>")).collect();
        m.push_str(&format!("References: {}\r\n", refs.join(" ")));
    }
    m.push_str("\r\nbody\r\n");
    m
}

/// The `THREADID (…)` value of each FETCH line in `out`.
fn thread_ids(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.contains(" FETCH ("))
        .map(|l| {
            let at = l.find("THREADID (").unwrap() + "THREADID (".len();
            l[at..].split(')').next().unwrap().to_owned()
        })
        .collect()
}

#[tokio::test]
async fn threadid_groups_replies_and_survives_copy_move_and_rename() {
    let b = backend();
    b.deliver("alice", "INBOX", mail("a@x", &[], "plan").as_bytes())
        .unwrap();
    b.deliver(
        "alice",
        "INBOX",
        mail("b@x", &["a@x"], "Re: plan").as_bytes(),
    )
    .unwrap();
    // Same subject, no reference: not the same thread.
    b.deliver("alice", "INBOX", mail("c@x", &[], "plan").as_bytes())
        .unwrap();
    b.deliver(
        "alice",
        "INBOX",
        mail("d@x", &["a@x", "b@x"], "Re: Re: plan").as_bytes(),
    )
    .unwrap();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    t.send("s SELECT INBOX").await;
    let out = t.send("f FETCH 1:4 (THREADID)").await;
    let ids = thread_ids(&out);
    assert_eq!(ids.len(), 4, "{out}");
    assert!(
        ids[0].len() > 1
            && ids[0]
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-'),
        "RFC 8474 objectid: {out}"
    );
    assert_eq!(ids[1], ids[0]);
    assert_eq!(ids[3], ids[0]);
    assert_ne!(ids[2], ids[0]);
    let thread = ids[0].clone();
    t.x(
        &format!("g SEARCH THREADID {thread}"),
        &["* SEARCH 1 2 4", "g OK SEARCH completed"],
    )
    .await;
    t.x(
        &format!("h UID SEARCH NOT THREADID {thread}"),
        &["* SEARCH 3", "h OK UID SEARCH completed"],
    )
    .await;
    // COPY keeps the thread, MOVE keeps it, RENAME changes nothing.
    t.send("i CREATE Work").await;
    t.x("j COPY 1 Work", &["j OK [COPYUID …"]).await;
    t.x(
        "k MOVE 2 Work",
        &["* OK [COPYUID …", "* 2 EXPUNGE", "k OK MOVE completed"],
    )
    .await;
    t.x("l RENAME Work Done", &["l OK RENAME completed"]).await;
    t.send("m SELECT Done").await;
    let out = t.send("n FETCH 1:2 (THREADID)").await;
    assert_eq!(thread_ids(&out), [thread.clone(), thread.clone()], "{out}");
    // A reply delivered now joins the thread it replies to.
    b.deliver(
        "alice",
        "Done",
        mail("e@x", &["a@x", "d@x"], "Re: plan").as_bytes(),
    )
    .unwrap();
    let out = t.send("o NOOP").await;
    assert!(out.contains("* 3 EXISTS"), "{out}");
    let out = t.send("p FETCH 3 (THREADID)").await;
    assert_eq!(thread_ids(&out), [thread.as_str()], "{out}");
    t.x(
        &format!("q SEARCH THREADID {thread}"),
        &["* SEARCH 1 2 3", "q OK SEARCH completed"],
    )
    .await;
}
