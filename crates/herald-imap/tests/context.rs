//! CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 §4): the RFC's examples replayed against mailboxes
//! built so that its answers are the right ones (its UIDs reached with `skip_to_uid`), and the
//! cases the examples leave out — message numbers, positions in a SORT result, changes made by
//! this session, another session and a delivery, IDLE, limits and CANCELUPDATE.
//!
//! Where an RFC example is not well formed (B01's second command and B02 have no sort
//! criteria) or contradicts itself (ADDTO's flags do not match B01's program), the comment
//! says what was changed.

#![allow(clippy::unwrap_used)]

mod harness;

use harness::{T, backend};
use herald_imap::session::memory::MemoryBackend;

fn msg(subject: &str) -> Vec<u8> {
    format!("From: a@example.org\r\nSubject: {subject}\r\n\r\nbody\r\n").into_bytes()
}

async fn session(b: &MemoryBackend) -> T {
    let mut t = T::new(b);
    t.login("alice", "secret").await;
    let out = t.send("s SELECT INBOX").await;
    assert!(out.contains("s OK [READ-WRITE]"), "{out}");
    t
}

#[tokio::test]
async fn capabilities_include_context_search_and_sort() {
    let b = backend();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    let out = t.send("a CAPABILITY").await;
    let caps: Vec<&str> = out.lines().next().unwrap().split(' ').collect();
    for c in ["ESEARCH", "ESORT", "CONTEXT=SEARCH", "CONTEXT=SORT"] {
        assert!(caps.contains(&c), "{c} missing: {out}");
    }
}

#[tokio::test]
async fn rfc5267_context_hint_count_and_tag_reuse() {
    let b = backend();
    for i in 0..5 {
        b.deliver("alice", "INBOX", &msg(&format!("m{i}"))).unwrap();
    }
    let mut t = session(&b).await;
    t.send("f STORE 2 +FLAGS.SILENT ($Junk)").await;
    t.send("g STORE 3,4 +FLAGS.SILENT (\\Deleted)").await;
    t.send("h STORE 4 +FLAGS.SILENT ($Junk)").await;
    // §4.2: CONTEXT is a hint; the answer is COUNT's.
    t.x(
        "A01 SEARCH RETURN (CONTEXT COUNT) UNDELETED UNKEYWORD $Junk",
        &["* ESEARCH (TAG \"A01\") COUNT 2", "A01 OK SEARCH completed"],
    )
    .await;
    // §4.3: UPDATE with COUNT; a second searching command with UPDATE under the same tag is
    // refused and has no effect. (The RFC's `B01 SORT RETURN (UPDATE) FLAGGED` lacks the
    // sort criteria; here it has them, so the refusal is for the tag alone.)
    t.x(
        "B01 UID SEARCH RETURN (UPDATE COUNT) DELETED KEYWORD $Junk",
        &[
            "* ESEARCH (TAG \"B01\") UID COUNT 1",
            "B01 OK UID SEARCH completed",
        ],
    )
    .await;
    t.x(
        "B01 SORT RETURN (UPDATE) (DATE) UTF-8 FLAGGED",
        &["B01 BAD tag reuse: an update context already has this tag"],
    )
    .await;
    t.x(
        "B01 SEARCH RETURN (UPDATE) FLAGGED",
        &["B01 BAD tag reuse: an update context already has this tag"],
    )
    .await;
    // A searching command without UPDATE may carry any tag.
    t.x(
        "B01 SEARCH RETURN (COUNT) FLAGGED",
        &["* ESEARCH (TAG \"B01\") COUNT 0", "B01 OK SEARCH completed"],
    )
    .await;
}

#[tokio::test]
async fn rfc5267_addto_and_removefrom_examples() {
    let b = backend();
    b.deliver("alice", "INBOX", &msg("first")).unwrap();
    b.skip_to_uid("alice", "INBOX", 32768).unwrap();
    b.deliver("alice", "INBOX", &msg("second")).unwrap();
    b.deliver("alice", "INBOX", &msg("third")).unwrap();
    let mut t = session(&b).await;
    t.x(
        "B01 UID SEARCH RETURN (UPDATE COUNT) DELETED KEYWORD $Junk",
        &[
            "* ESEARCH (TAG \"B01\") UID COUNT 0",
            "B01 OK UID SEARCH completed",
        ],
    )
    .await;
    // §4.3.3: another client sets the flags; the ADDTO follows the FETCHes that carry the
    // change. (The RFC gives one message \Deleted and the other $Junk, which B01's program
    // would not match; here both get both.)
    let mut other = session(&b).await;
    other
        .send("a UID STORE 32768:32769 +FLAGS.SILENT (\\Deleted $Junk \\Seen)")
        .await;
    t.x(
        "n NOOP",
        &[
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Junk)",
            "* OK [PERMANENTFLAGS …",
            "* 2 FETCH (UID 32768 FLAGS ($Junk \\Deleted \\Seen \\Recent))",
            "* 3 FETCH (UID 32769 FLAGS ($Junk \\Deleted \\Seen \\Recent))",
            "* ESEARCH (TAG \"B01\") UID ADDTO (0 32768:32769)",
            "n OK NOOP completed",
        ],
    )
    .await;
    // §4.3.4: a message in the result is expunged. REMOVEFROM comes before the EXPUNGE, while
    // the message still has its number.
    other.send("b UID EXPUNGE 32768").await;
    t.x(
        "B03 NOOP",
        &[
            "* ESEARCH (TAG \"B01\") UID REMOVEFROM (0 32768)",
            "* 2 EXPUNGE",
            "B03 OK NOOP completed",
        ],
    )
    .await;
    // §4.3.5: after CANCELUPDATE, nothing more.
    t.x("B04 CANCELUPDATE \"B01\"", &["B04 OK no further updates"])
        .await;
    other.send("c UID EXPUNGE 32769").await;
    t.x("n NOOP", &["* 2 EXPUNGE", "n OK NOOP completed"]).await;
}

#[tokio::test]
async fn rfc5267_sorted_addto_uses_the_preferred_representation() {
    // "If the searching command C01 initially generated a result list of 2734:2735", three
    // results entering before them are one ADDTO (1 2731:2733).
    let b = backend();
    b.skip_to_uid("alice", "INBOX", 2731).unwrap();
    for s in ["a", "b", "c", "d", "e"] {
        b.deliver("alice", "INBOX", &msg(s)).unwrap();
    }
    let mut t = session(&b).await;
    t.send("f UID STORE 2734:2735 +FLAGS.SILENT (\\Flagged)")
        .await;
    t.x(
        "C01 UID SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 FLAGGED",
        &[
            "* ESEARCH (TAG \"C01\") UID ALL 2734:2735",
            "C01 OK SORT completed",
        ],
    )
    .await;
    let mut other = session(&b).await;
    other
        .send("a UID STORE 2731:2733 +FLAGS.SILENT (\\Flagged)")
        .await;
    t.x(
        "n NOOP",
        &[
            "* 1 FETCH (UID 2731 FLAGS (\\Flagged \\Recent))",
            "* 2 FETCH (UID 2732 FLAGS (\\Flagged \\Recent))",
            "* 3 FETCH (UID 2733 FLAGS (\\Flagged \\Recent))",
            "* ESEARCH (TAG \"C01\") UID ADDTO (1 2731:2733)",
            "n OK NOOP completed",
        ],
    )
    .await;
}

#[tokio::test]
async fn rfc5267_refusing_a_context_past_the_limit() {
    let b = backend();
    b.deliver("alice", "INBOX", &msg("x")).unwrap();
    let mut t = session(&b).await;
    t.send("k STORE 1 +FLAGS.SILENT ($Junk)").await;
    for i in 0..herald_imap::session::context::MAX_CONTEXTS {
        let out = t
            .send(&format!("c{i} SEARCH RETURN (UPDATE COUNT) ALL"))
            .await;
        assert!(!out.contains("NOUPDATE"), "{out}");
    }
    // The RFC's B02 has no sort criteria; (DATE) added. Other return options are honoured.
    t.x(
        "B02 UID SORT RETURN (UPDATE COUNT) (DATE) UTF-8 KEYWORD $Junk",
        &[
            "* ESEARCH (TAG \"B02\") UID COUNT 1",
            "* NO [NOUPDATE \"B02\"] too many update contexts",
            "B02 OK SORT completed",
        ],
    )
    .await;
    // Cancelling one makes room again.
    t.x("d CANCELUPDATE \"c0\" \"c1\"", &["d OK no further updates"])
        .await;
    t.x(
        "B03 UID SORT RETURN (UPDATE COUNT) (DATE) UTF-8 KEYWORD $Junk",
        &[
            "* ESEARCH (TAG \"B03\") UID COUNT 1",
            "B03 OK SORT completed",
        ],
    )
    .await;
    // CANCELUPDATE needs a selected mailbox and quoted tags.
    t.x("e CANCELUPDATE c2", &["e BAD …"]).await;
    t.send("u UNSELECT").await;
    t.x(
        "f CANCELUPDATE \"c2\"",
        &["f BAD CANCELUPDATE needs a selected mailbox"],
    )
    .await;
}

#[tokio::test]
async fn rfc5267_partial_results() {
    let b = backend();
    for i in 0..30 {
        b.deliver("alice", "INBOX", &msg(&format!("m{i:02}")))
            .unwrap();
    }
    let mut t = session(&b).await;
    // "Recall from A01 that there are 23764 results": here 28, UIDs 3:30 (1 and 2 are
    // $Junk). A02 spans the end of the results, A03 is the first page, A04 lies beyond.
    t.send("j STORE 1:2 +FLAGS.SILENT ($Junk)").await;
    t.x(
        "A02 UID SEARCH RETURN (PARTIAL 20:40) UNDELETED UNKEYWORD $Junk",
        &[
            "* ESEARCH (TAG \"A02\") UID PARTIAL (20:40 22:30)",
            "A02 OK UID SEARCH completed",
        ],
    )
    .await;
    t.x(
        "A03 UID SEARCH RETURN (PARTIAL 1:5) UNDELETED UNKEYWORD $Junk",
        &[
            "* ESEARCH (TAG \"A03\") UID PARTIAL (1:5 3:7)",
            "A03 OK UID SEARCH completed",
        ],
    )
    .await;
    t.x(
        "A04 UID SEARCH RETURN (PARTIAL 40:50) UNDELETED UNKEYWORD $Junk",
        &[
            "* ESEARCH (TAG \"A04\") UID PARTIAL (40:50 NIL)",
            "A04 OK UID SEARCH completed",
        ],
    )
    .await;
    // RFC 9394: a negative range counts from the end; with COUNT and message numbers.
    t.x(
        "A05 SEARCH RETURN (COUNT PARTIAL -1:-3) UNKEYWORD $Junk",
        &[
            "* ESEARCH (TAG \"A05\") COUNT 28 PARTIAL (-1:-3 28:30)",
            "A05 OK SEARCH completed",
        ],
    )
    .await;
    // In a SORT, PARTIAL is a page of the sort order.
    t.x(
        "A06 SORT RETURN (PARTIAL 1:3) (REVERSE SUBJECT) UTF-8 ALL",
        &[
            "* ESEARCH (TAG \"A06\") PARTIAL (1:3 30,29,28)",
            "A06 OK SORT completed",
        ],
    )
    .await;
    // PARTIAL with SAVE and MODSEQ: MODSEQ covers the messages named (UID 2, changed by the
    // $Junk STORE at 32, and UID 3, delivered at 4), not UID 5's later change; SAVE keeps
    // only them (RFC 9394).
    t.send("k STORE 5 +FLAGS.SILENT (\\Flagged)").await;
    t.x(
        "A07 UID SEARCH RETURN (SAVE PARTIAL 2:3) MODSEQ 1",
        &[
            "* OK [HIGHESTMODSEQ 33] highest",
            "* ESEARCH (TAG \"A07\") UID PARTIAL (2:3 2:3) MODSEQ 32",
            "A07 OK UID SEARCH completed",
        ],
    )
    .await;
    t.x(
        "A08 UID SEARCH UID $",
        &["* SEARCH 2 3", "A08 OK UID SEARCH completed"],
    )
    .await;
    // One PARTIAL or one ALL (§4.4).
    t.x("A09 SEARCH RETURN (PARTIAL 1:5 ALL) ALL", &["A09 BAD …"])
        .await;
}

#[tokio::test]
async fn sort_context_positions_follow_new_mail_flags_and_expunges() {
    let b = backend();
    for s in ["b", "d", "f"] {
        b.deliver("alice", "INBOX", &msg(s)).unwrap();
    }
    let mut t = session(&b).await;
    // Message numbers, sorted by subject: b(1) d(2) f(3).
    t.x(
        "S1 SORT RETURN (UPDATE) (SUBJECT) UTF-8 UNDELETED",
        &["* ESEARCH (TAG \"S1\") ALL 1:3", "S1 OK SORT completed"],
    )
    .await;
    // Deliveries: "e" goes to position 3 and "a" to position 1; each number is valid once
    // EXISTS is out.
    b.deliver("alice", "INBOX", &msg("e")).unwrap();
    b.deliver("alice", "INBOX", &msg("a")).unwrap();
    t.x(
        "n NOOP",
        &[
            "* 5 EXISTS",
            "* 5 RECENT",
            "* ESEARCH (TAG \"S1\") ADDTO (1 5 4 4)",
            "n OK NOOP completed",
        ],
    )
    .await;
    // Now a(5) b(1) d(2) e(4) f(3). This session marks d and e \Deleted: they leave the
    // result as one run at position 3.
    t.x(
        "s UID STORE 2,4 +FLAGS.SILENT (\\Deleted)",
        &[
            "* ESEARCH (TAG \"S1\") REMOVEFROM (3 2,4)",
            "s OK STORE completed",
        ],
    )
    .await;
    // Clearing e's \Deleted brings it back at position 3; expunging d (not in the result)
    // renumbers the rest and says nothing to the context.
    t.x(
        "u UID STORE 4 -FLAGS.SILENT (\\Deleted)",
        &["* ESEARCH (TAG \"S1\") ADDTO (3 4)", "u OK STORE completed"],
    )
    .await;
    t.x("v EXPUNGE", &["* 2 EXPUNGE", "v OK EXPUNGE completed"])
        .await;
    // a(4) b(1) e(3) f(2): expunging f from another session removes position 4, before the
    // EXPUNGE renumbers anything.
    let mut other = session(&b).await;
    other.send("a UID STORE 3 +FLAGS.SILENT (\\Deleted)").await;
    other.send("b UID EXPUNGE 3").await;
    t.x(
        "w NOOP",
        &[
            "* ESEARCH (TAG \"S1\") REMOVEFROM (4 2)",
            "* 2 EXPUNGE",
            "w OK NOOP completed",
        ],
    )
    .await;
    // What is left: a(3) b(1) e(2).
    t.x(
        "y SORT RETURN (ALL) (SUBJECT) UTF-8 UNDELETED",
        &["* ESEARCH (TAG \"y\") ALL 3,1:2", "y OK SORT completed"],
    )
    .await;
}

#[tokio::test]
async fn search_contexts_in_message_numbers_keep_to_the_numbers_of_the_command() {
    let b = backend();
    for i in 0..4 {
        b.deliver("alice", "INBOX", &msg(&format!("m{i}"))).unwrap();
    }
    let mut t = session(&b).await;
    // Messages 2:3 are fixed when the command runs (§4.3); they are UIDs 2 and 3 from then
    // on, whatever numbers they get.
    t.x(
        "N1 SEARCH RETURN (UPDATE COUNT) 2:3 UNSEEN",
        &["* ESEARCH (TAG \"N1\") COUNT 2", "N1 OK SEARCH completed"],
    )
    .await;
    t.x(
        "N2 SEARCH RETURN (UPDATE) UNSEEN",
        &["* ESEARCH (TAG \"N2\") ALL 1:4", "N2 OK SEARCH completed"],
    )
    .await;
    let mut other = session(&b).await;
    other.send("a STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    other.send("b EXPUNGE").await;
    b.deliver("alice", "INBOX", &msg("new")).unwrap();
    // The expunged message leaves N2 (before the EXPUNGE, as 1); the new one, now message 4,
    // joins N2 but is not among N1's messages.
    t.x(
        "n NOOP",
        &[
            "* ESEARCH (TAG \"N2\") REMOVEFROM (0 1)",
            "* 1 EXPUNGE",
            "* 4 EXISTS",
            "* 4 RECENT",
            "* ESEARCH (TAG \"N2\") ADDTO (0 4)",
            "n OK NOOP completed",
        ],
    )
    .await;
    // Reading message 1 (UID 2) sets \Seen: it leaves both results, as message 1.
    let out = t.send("f FETCH 1 (BODY[TEXT])").await;
    assert!(out.contains("FLAGS (\\Seen"), "{out}");
    t.x(
        "g NOOP",
        &[
            "* ESEARCH (TAG \"N1\") REMOVEFROM (0 1)",
            "* ESEARCH (TAG \"N2\") REMOVEFROM (0 1)",
            "g OK NOOP completed",
        ],
    )
    .await;
    // Selecting again ends every context.
    t.send("h SELECT INBOX").await;
    other.send("c STORE 1:* +FLAGS.SILENT (\\Seen)").await;
    let out = t.send("i NOOP").await;
    assert!(!out.contains("ESEARCH"), "{out}");
}

#[tokio::test]
async fn idle_reports_context_updates_as_they_happen() {
    let b = backend();
    b.deliver("alice", "INBOX", &msg("one")).unwrap();
    let mut t = session(&b).await;
    t.x(
        "U1 UID SEARCH RETURN (UPDATE) FLAGGED",
        &["* ESEARCH (TAG \"U1\") UID", "U1 OK UID SEARCH completed"],
    )
    .await;
    t.x("i IDLE", &["+ idling"]).await;
    let mut other = session(&b).await;
    other.send("a STORE 1 +FLAGS.SILENT (\\Flagged)").await;
    t.s.changed().await;
    let mut out = Vec::new();
    t.s.idle_wakeup(&mut out).await.unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))\r\n* ESEARCH (TAG \"U1\") UID ADDTO (0 1)\r\n"
    );
    t.x("DONE", &["i OK IDLE terminated"]).await;
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, .. proptest::prelude::ProptestConfig::default() })]

    /// Whatever changes arrive, a client that applies every ADDTO and REMOVEFROM in order to
    /// the first result holds what the same command would answer now.
    #[test]
    fn applied_updates_equal_a_fresh_search(
        ops in proptest::collection::vec((0u8..5, 1u32..12), 1..25),
        mode in 0u8..4,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        rt.block_on(async {
            let b = backend();
            for i in 0..6u32 {
                b.deliver("alice", "INBOX", &msg(&format!("s{}", (i * 7) % 5))).unwrap();
            }
            let mut t = session(&b).await;
            let mut other = session(&b).await;
            let cmd = [
                "P1 UID SORT RETURN (UPDATE ALL) (SUBJECT REVERSE ARRIVAL) UTF-8 UNFLAGGED",
                "P1 UID SEARCH RETURN (UPDATE ALL) UNFLAGGED",
                "P1 SORT RETURN (UPDATE ALL) (SUBJECT REVERSE ARRIVAL) UTF-8 UNFLAGGED",
                "P1 SEARCH RETURN (UPDATE ALL) UNFLAGGED",
            ][mode as usize];
            let by_uid = mode < 2;
            let first = t.send(cmd).await;
            let mut list = parse_all(&first);
            for (op, uid) in ops {
                let c = match op {
                    0 => format!("x UID STORE {uid} +FLAGS.SILENT (\\Flagged)"),
                    1 => format!("x UID STORE {uid} -FLAGS.SILENT (\\Flagged)"),
                    2 => format!("x UID STORE {uid} +FLAGS.SILENT (\\Deleted)"),
                    3 => "x EXPUNGE".to_owned(),
                    _ => {
                        b.deliver("alice", "INBOX", &msg(&format!("s{}", uid % 5))).unwrap();
                        "x NOOP".to_owned()
                    }
                };
                other.send(&c).await;
                let out = t.send("n NOOP").await;
                apply(&mut list, &out, by_uid);
            }
            let fresh = parse_all(&t.send(&cmd.replace("P1", "P2").replace("UPDATE ", "")).await);
            assert_eq!(list, fresh);
        });
    }
}

/// The numbers of `ALL` in an ESEARCH answer, expanded in order.
fn parse_all(out: &str) -> Vec<u32> {
    let line = out.lines().find(|l| l.starts_with("* ESEARCH")).unwrap();
    match line.split(" ALL ").nth(1) {
        Some(set) => expand(set.split(' ').next().unwrap()),
        None => Vec::new(),
    }
}

fn expand(set: &str) -> Vec<u32> {
    set.split(',')
        .flat_map(|r| match r.split_once(':') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().unwrap(), b.parse().unwrap());
                (a.min(b)..=a.max(b)).collect::<Vec<_>>()
            }
            None => vec![r.parse().unwrap()],
        })
        .collect()
}

/// Applies the ADDTO and REMOVEFROM pairs of every `* ESEARCH (TAG "P1")` line, in order, and
/// for message numbers (not `uid`) renumbers on every EXPUNGE as a client does.
fn apply(list: &mut Vec<u32>, out: &str, uid: bool) {
    for line in out.lines() {
        if let Some(n) = line
            .strip_prefix("* ")
            .and_then(|l| l.strip_suffix(" EXPUNGE"))
            .filter(|_| !uid)
        {
            let n: u32 = n.parse().unwrap();
            assert!(
                !list.contains(&n),
                "EXPUNGE {n} of a result not removed first"
            );
            for x in list.iter_mut().filter(|x| **x > n) {
                *x -= 1;
            }
            continue;
        }
        if !line.starts_with("* ESEARCH (TAG \"P1\")") {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find(" ADDTO (").or_else(|| rest.find(" REMOVEFROM (")) {
            let add = rest[at..].starts_with(" ADDTO");
            let open = at + rest[at..].find('(').unwrap();
            let close = open + rest[open..].find(')').unwrap();
            let items: Vec<&str> = rest[open + 1..close].split(' ').collect();
            for pair in items.chunks(2) {
                let pos: usize = pair[0].parse().unwrap();
                let ids = expand(pair[1]);
                if add {
                    if pos == 0 {
                        list.extend(ids);
                        list.sort_unstable();
                    } else {
                        for (k, id) in ids.into_iter().enumerate() {
                            list.insert(pos - 1 + k, id);
                        }
                    }
                } else if pos == 0 {
                    list.retain(|u| !ids.contains(u));
                } else {
                    for id in ids {
                        assert_eq!(list[pos - 1], id, "REMOVEFROM at the wrong position");
                        list.remove(pos - 1);
                    }
                }
            }
            rest = &rest[close..];
        }
    }
}
