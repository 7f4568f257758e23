//! SORT, ESORT, SORT=DISPLAY and THREAD transcripts: the examples of RFC 5256 and RFC 5267 §3
//! replayed against mailboxes built so the RFC's answers are the right ones, and hand-worked
//! expectations for every sort key (the comment above each answer says why it is right).
//!
//! RFC 5267 §4 (CONTEXT=SEARCH, CONTEXT=SORT) has its examples in `context.rs`.

#![allow(clippy::unwrap_used)]

mod harness;

use chrono::{TimeZone, Utc};
use harness::{T, backend};
use herald_imap::session::memory::MemoryBackend;

fn ms(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .unwrap()
        .timestamp_millis()
}

/// A message with these header fields and a body of `pad` bytes.
fn msg(headers: &[(&str, &str)], pad: usize) -> Vec<u8> {
    let mut m = String::new();
    for (n, v) in headers {
        m.push_str(&format!("{n}: {v}\r\n"));
    }
    m.push_str("\r\n");
    m.push_str(&"x".repeat(pad));
    m.push_str("\r\n");
    m.into_bytes()
}

async fn select(t: &mut T, mailbox: &str) {
    let out = t.send(&format!("s SELECT {mailbox}")).await;
    assert!(out.contains("s OK [READ-WRITE]"), "{out}");
}

async fn create(t: &mut T, mailbox: &str) {
    t.x(&format!("c CREATE {mailbox}"), &["c OK [MAILBOXID …"])
        .await;
}

/// The five messages behind RFC 5256's `SORT (SUBJECT REVERSE DATE) UTF-8 ALL` → `5 3 4 1 2`:
/// base subjects CCC (1, 2), BBB (3, 4), AAA (5); within a subject the later Date first.
fn five(b: &MemoryBackend) {
    let day = |d: u32| {
        format!(
            "{}, {d} Jan 2000 10:00:00 +0000",
            ["Sat", "Sun", "Mon", "Tue", "Wed"][d as usize - 1]
        )
    };
    for (subject, d) in [
        ("ccc", 2),
        ("Re: [fwd: ccc]", 1),
        ("[x] bbb", 5),
        ("Fwd: BBB", 3),
        ("Re: AAA", 4),
    ] {
        b.deliver_at(
            "alice",
            "Five",
            &msg(&[("Subject", subject), ("Date", &day(d))], 10),
            ms(2000, 1, 10, 0, 0),
        )
        .unwrap();
    }
}

#[tokio::test]
async fn rfc5256_sort_examples() {
    let b = backend();
    // INBOX: 882 messages; only 2, 84 and 882 arrived since 1 Feb 1994. Their base subjects
    // are APPLES, BANANAS and CHERRIES; compared raw (casemapped) they would come out
    // "CHERRIES (FWD)", "RE: APPLES", "[FRUIT] BANANAS", i.e. 882 2 84.
    for n in 1..=882u32 {
        let (subject, date) = match n {
            2 => ("Re: apples", ms(1994, 2, 7, 9, 0)),
            84 => ("[fruit] Bananas", ms(1994, 2, 7, 9, 0)),
            882 => ("cherries (fwd)", ms(1994, 2, 7, 9, 0)),
            _ => ("aardvark", ms(1994, 1, 15, 9, 0)),
        };
        b.deliver_at("alice", "INBOX", &msg(&[("Subject", subject)], 1), date)
            .unwrap();
    }
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    create(&mut t, "Five").await;
    five(&b);
    select(&mut t, "INBOX").await;
    t.x(
        "A282 SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994",
        &["* SORT 2 84 882", "A282 OK SORT completed"],
    )
    .await;
    select(&mut t, "Five").await;
    t.x(
        "A283 SORT (SUBJECT REVERSE DATE) UTF-8 ALL",
        &["* SORT 5 3 4 1 2", "A283 OK SORT completed"],
    )
    .await;
    t.x(
        "A284 SORT (SUBJECT) US-ASCII TEXT \"not in mailbox\"",
        &["* SORT", "A284 OK SORT completed"],
    )
    .await;
}

/// The ORDEREDSUBJECT answer of RFC 5256 §3, thread by thread, as (members in order).
const ORDERED: &[&[u32]] = &[
    &[166],
    &[167],
    &[168],
    &[169],
    &[172],
    &[170],
    &[171],
    &[173],
    &[174, 175, 176, 178, 181, 180],
    &[179],
    &[177, 183, 182, 188, 184, 185, 186, 187, 189],
    &[190],
    &[191],
    &[192],
    &[193],
    &[194, 195],
    &[196, 197, 198],
    &[199],
    &[200, 202],
    &[201],
    &[203],
    &[204],
    &[205],
    &[206, 207],
    &[208],
];

#[tokio::test]
async fn rfc5256_thread_examples() {
    let b = backend();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    // ORDEREDSUBJECT: messages 1–165 arrived before 5 Mar 2000 and are not searched. Thread g
    // of the RFC's answer gets base subject "topic g" (written with and without Re:/[list]
    // decoration) and its members Date headers g*10 minutes after midnight plus their rank:
    // so the threads' first messages are in the RFC's order and each thread's children too,
    // though sequence order differs (170 and 171 come after 172, 177's thread after 179).
    create(&mut t, "Ordered").await;
    let mut plan = std::collections::BTreeMap::new();
    for (g, members) in ORDERED.iter().enumerate() {
        for (j, &seq) in members.iter().enumerate() {
            let subject = match j % 3 {
                0 => format!("topic {g}"),
                1 => format!("Re: Topic {g}"),
                _ => format!("[list] Fwd: TOPIC {g}"),
            };
            let minutes = g * 10 + j;
            let date = format!(
                "Mon, 6 Mar 2000 {:02}:{:02}:00 +0000",
                minutes / 60,
                minutes % 60
            );
            plan.insert(seq, (subject, date));
        }
    }
    for seq in 1..=208u32 {
        let (m, arrived) = match plan.get(&seq) {
            Some((subject, date)) => (
                msg(&[("Subject", subject), ("Date", date)], 1),
                ms(2000, 3, 6, 12, 0),
            ),
            None => (msg(&[("Subject", "topic 3")], 1), ms(2000, 3, 1, 12, 0)),
        };
        b.deliver_at("alice", "Ordered", &m, arrived).unwrap();
    }
    select(&mut t, "Ordered").await;
    t.x(
        "A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000",
        &[
            "* THREAD (166)(167)(168)(169)(172)(170)(171)(173)(174 (175)(176)(178)(181)(180))(179)(177 (183)(182)(188)(184)(185)(186)(187)(189))(190)(191)(192)(193)(194 195)(196 (197)(198))(199)(200 202)(201)(203)(204)(205)(206 207)(208)",
            "A283 OK THREAD completed",
        ],
    )
    .await;
    t.x(
        "A284 THREAD ORDEREDSUBJECT US-ASCII TEXT \"gewp\"",
        &["* THREAD", "A284 OK THREAD completed"],
    )
    .await;

    // REFERENCES: UIDs 3, 4, 6, 7, 23, 44 and 96 survive in "Refs". 3 starts the thread; 6
    // replies to 3; 4 and 44 reply to 6 (4 is earlier); 23 replies to 4 (naming it in quoted
    // form, the same Message-ID); 7 replies to 44; 96 has only In-Reply-To: <7@…>. So the tree
    // is the RFC's: 3 → 6 → {4 → 23, 44 → 7 → 96}.
    create(&mut t, "Refs").await;
    let id = |n: u32| format!("<{n}@example.org>");
    for uid in 1..=96u32 {
        let at = |h: u32, m: u32| format!("Mon, 6 Mar 2000 {h:02}:{m:02}:00 +0000");
        let headers: Vec<(&str, String)> = match uid {
            3 => vec![("Subject", "Meeting".into()), ("Date", at(1, 0))],
            6 => vec![
                ("Subject", "Re: Meeting".into()),
                ("Date", at(2, 0)),
                ("References", id(3)),
            ],
            4 => vec![
                ("Subject", "Re: Meeting".into()),
                ("Date", at(3, 0)),
                ("References", format!("{} {}", id(3), id(6))),
            ],
            44 => vec![
                ("Subject", "Re: Meeting".into()),
                ("Date", at(3, 30)),
                ("In-Reply-To", id(6)),
                ("References", format!("{}\r\n {}", id(3), id(6))),
            ],
            23 => vec![
                ("Subject", "Re: Meeting".into()),
                ("Date", at(4, 0)),
                (
                    "References",
                    format!("{} {} <\"4\"@example.org>", id(3), id(6)),
                ),
            ],
            7 => vec![
                ("Subject", "Re: Meeting".into()),
                ("Date", at(5, 0)),
                ("References", format!("{} {} {}", id(3), id(6), id(44))),
            ],
            96 => vec![
                ("Subject", "Re: Meeting".into()),
                ("Date", at(6, 0)),
                ("In-Reply-To", format!("\"Joe\" {}", id(7))),
            ],
            _ => vec![("Subject", "filler".into())],
        };
        let mut headers: Vec<(&str, &str)> =
            headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let own = id(uid);
        headers.push(("Message-ID", &own));
        b.deliver("alice", "Refs", &msg(&headers, 1)).unwrap();
    }
    select(&mut t, "Refs").await;
    t.x(
        "d UID STORE 1:96 +FLAGS.SILENT (\\Deleted)",
        &["d OK STORE completed"],
    )
    .await;
    t.x(
        "e UID STORE 3,4,6,7,23,44,96 -FLAGS.SILENT (\\Deleted)",
        &["e OK STORE completed"],
    )
    .await;
    let out = t.send("f EXPUNGE").await;
    assert!(out.ends_with("f OK EXPUNGE completed\r\n"), "{out}");
    t.x(
        "A285 UID THREAD REFERENCES US-ASCII ALL",
        &["* THREAD (3 6 (4 23)(44 7 96))", "A285 OK THREAD completed"],
    )
    .await;
    // The same by sequence number: 3 4 6 7 23 44 96 are now 1 2 3 4 5 6 7.
    t.x(
        "g THREAD REFERENCES UTF-8 ALL",
        &["* THREAD (1 3 (2 5)(6 4 7))", "g OK THREAD completed"],
    )
    .await;

    // RFC 5256 §5's "((3)(5))": 3 and 5 reply to a message that is not in the mailbox, so a
    // dummy parent holds them; with 1, 2 and 4 searched too, the dummy sorts by its first
    // child (3, dated between 2 and 4).
    create(&mut t, "Lost").await;
    for n in 1..=5u32 {
        let date = format!(
            "{}, {n} Jan 2000 10:00:00 +0000",
            ["Sat", "Sun", "Mon", "Tue", "Wed"][n as usize - 1]
        );
        let subject = format!("subject {n}");
        let mut h = vec![("Subject", subject.as_str()), ("Date", date.as_str())];
        if n == 3 || n == 5 {
            h.push(("In-Reply-To", "<gone@example.org>"));
        }
        b.deliver("alice", "Lost", &msg(&h, 1)).unwrap();
    }
    select(&mut t, "Lost").await;
    t.x(
        "h THREAD REFERENCES UTF-8 3,5",
        &["* THREAD ((3)(5))", "h OK THREAD completed"],
    )
    .await;
    t.x(
        "i THREAD REFERENCES UTF-8 ALL",
        &["* THREAD (1)(2)((3)(5))(4)", "i OK THREAD completed"],
    )
    .await;
}

#[tokio::test]
async fn rfc5267_extended_sort_example() {
    // §3.3: `UID SORT RETURN () (REVERSE DATE) UTF-8 UNDELETED UNKEYWORD $Junk` answers
    // `ALL 23765,23764,23763,23761,[...]`. Here the mailbox holds UIDs 23757–23765; 23757 and
    // 23758 are \Deleted and 23762 is $Junk. The rest are dated 23765 newest, then 23764,
    // 23763, 23761, then 23759 and 23760 at the same minute (a tie, kept in UID order): the
    // first four are descending, so no range may stand for them (§3.2), and the last two are
    // an ascending run, written 23759:23760.
    let b = backend();
    b.skip_to_uid("alice", "INBOX", 23757).unwrap();
    for uid in 23757..=23765u32 {
        let hour = match uid {
            23765 => 10,
            23764 => 9,
            23763 => 8,
            23761 => 7,
            _ => 6,
        };
        let date = format!("Mon, 6 Mar 2000 {hour:02}:00:00 +0000");
        let got = b
            .deliver("alice", "INBOX", &msg(&[("Date", &date)], 0))
            .unwrap();
        assert_eq!(got, uid);
    }
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    select(&mut t, "INBOX").await;
    t.x(
        "d UID STORE 23757:23758 +FLAGS.SILENT (\\Deleted)",
        &["d OK STORE completed"],
    )
    .await;
    t.x(
        "e UID STORE 23762 +FLAGS.SILENT ($Junk)",
        &[
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Junk)",
            "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Junk \\*)] flags permitted",
            "e OK STORE completed",
        ],
    )
    .await;
    t.x(
        "E01 UID SORT RETURN () (REVERSE DATE) UTF-8 UNDELETED UNKEYWORD $Junk",
        &[
            "* ESEARCH (TAG \"E01\") UID ALL 23765,23764,23763,23761,23759:23760",
            "E01 OK SORT completed",
        ],
    )
    .await;
}

#[tokio::test]
async fn esort_return_options() {
    let b = backend();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    create(&mut t, "Five").await;
    five(&b);
    select(&mut t, "Five").await;
    // The order is 5 3 4 1 2 (see `five`): MIN and MAX are the first and last in that order,
    // not the lowest and highest numbers (RFC 5267 §3.1).
    t.x(
        "a SORT RETURN (MIN MAX COUNT) (SUBJECT REVERSE DATE) UTF-8 ALL",
        &[
            "* ESEARCH (TAG \"a\") MIN 5 MAX 2 COUNT 5",
            "a OK SORT completed",
        ],
    )
    .await;
    // ALL in sort order: 3,4 and 1,2 are ascending runs.
    t.x(
        "b SORT RETURN (ALL) (SUBJECT REVERSE DATE) UTF-8 ALL",
        &["* ESEARCH (TAG \"b\") ALL 5,3:4,1:2", "b OK SORT completed"],
    )
    .await;
    // REVERSE SUBJECT: CCC (1, 2), BBB (3, 4), AAA (5), ties in sequence order: 1 2 3 4 5,
    // one ascending run. This mailbox's UIDs are 1–5, and the UID indicator is set.
    t.x(
        "c UID SORT RETURN (MIN ALL) (REVERSE SUBJECT) UTF-8 ALL",
        &[
            "* ESEARCH (TAG \"c\") UID MIN 1 ALL 1:5",
            "c OK SORT completed",
        ],
    )
    .await;
    // Nothing matches: COUNT 0, and no MIN, MAX or ALL (RFC 4731 §3.1).
    t.x(
        "d SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 TEXT nothing",
        &["* ESEARCH (TAG \"d\") COUNT 0", "d OK SORT completed"],
    )
    .await;
    // MODSEQ (RFC 7162 §3.1.5): message k of this new mailbox has MODSEQ k+1, so MODSEQ 4
    // finds 3, 4 and 5. The first MODSEQ search enables CONDSTORE (HIGHESTMODSEQ 6). SORT
    // reports the highest MODSEQ of the result; ESORT with only MAX that of the MAX message
    // (4, MODSEQ 5).
    t.x(
        "e SORT (SUBJECT REVERSE DATE) UTF-8 MODSEQ 4",
        &[
            "* OK [HIGHESTMODSEQ 6] highest",
            "* SORT 5 3 4 (MODSEQ 6)",
            "e OK SORT completed",
        ],
    )
    .await;
    t.x(
        "f SORT RETURN (MAX) (SUBJECT REVERSE DATE) UTF-8 MODSEQ 4",
        &[
            "* ESEARCH (TAG \"f\") MAX 4 MODSEQ 5",
            "f OK SORT completed",
        ],
    )
    .await;
}

/// Header fields, body padding, INTERNALDATE.
type Spec<'a> = (&'a [(&'a str, &'a str)], usize, i64);

/// Four messages (UIDs 2–5 after a first one is expunged, so sequence numbers 1–4 and UIDs
/// differ) whose keys are worked out in each answer's comment.
async fn keys_mailbox(b: &MemoryBackend, t: &mut T) {
    create(t, "Keys").await;
    b.deliver("alice", "Keys", b"Subject: gone\r\n\r\n")
        .unwrap();
    let specs: [Spec; 4] = [
        (
            &[
                ("From", "Zoe Zed <bob@example.org>"),
                ("To", "=?utf-8?q?=C3=89mile?= <zed@example.org>"),
                ("Date", "Tue, 4 Jan 2000 12:00:00 +0000"),
                ("Subject", "=?utf-8?q?Re=3A_?= =?utf-8?q?hello?="),
            ],
            4000,
            ms(2000, 1, 10, 0, 0),
        ),
        (
            &[
                ("From", "alice@example.org"),
                ("To", "\"Abe\" <amy@example.org>"),
                ("Cc", "Team: carl@example.org;"),
                ("Date", "Tue, 4 Jan 2000 13:00:00 +0100"),
                ("Subject", "[list] Apple"),
            ],
            1000,
            ms(2000, 1, 9, 0, 0),
        ),
        (
            &[
                ("From", "\"adam\" <Carl@example.org>"),
                ("Cc", "bob@example.org"),
                ("Subject", "Fwd: apple (fwd)"),
            ],
            3000,
            ms(2000, 1, 3, 0, 0),
        ),
        (
            &[
                ("From", "Bob Brown <BOB@example.org>"),
                ("To", "alf@example.org"),
                ("Cc", "Al <al@example.org>, zz@example.org"),
                ("Date", "Mon, 3 Jan 2000 23:00:00 -0200"),
                ("Subject", "Banana"),
            ],
            2000,
            ms(2000, 1, 1, 0, 0),
        ),
    ];
    for (h, pad, at) in specs {
        b.deliver_at("alice", "Keys", &msg(h, pad), at).unwrap();
    }
    select(t, "Keys").await;
    t.x(
        "x UID STORE 1 +FLAGS.SILENT (\\Deleted)",
        &["x OK STORE completed"],
    )
    .await;
    t.x("y EXPUNGE", &["* 1 EXPUNGE", "y OK EXPUNGE completed"])
        .await;
}

#[tokio::test]
async fn every_sort_key() {
    let b = backend();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    keys_mailbox(&b, &mut t).await;
    let cases: &[(&str, &str)] = &[
        // addr-mailbox of the first From: BOB, ALICE, CARL, BOB (case-insensitive): ALICE 2,
        // BOB 1 and 4 (tie: sequence order), CARL 3.
        ("(FROM)", "2 1 4 3"),
        // REVERSE flips the key only; the tie stays in sequence order.
        ("(REVERSE FROM)", "3 1 4 2"),
        // First To: ZED, AMY, none (empty, first), ALF.
        ("(TO)", "3 4 2 1"),
        // First Cc: none, CARL (the group's first member; the group name is no address),
        // BOB, AL (first of two).
        ("(CC)", "1 4 3 2"),
        // Sent date in UTC: 1 = Jan 4 12:00; 2 = 13:00+0100 = Jan 4 12:00 (tie with 1);
        // 3 has no Date, so its INTERNALDATE, Jan 3; 4 = Jan 3 23:00-0200 = Jan 4 01:00.
        ("(DATE)", "3 4 1 2"),
        // INTERNALDATE: Jan 10, Jan 9, Jan 3, Jan 1.
        ("(ARRIVAL)", "4 3 2 1"),
        // Bodies of 4000, 1000, 3000 and 2000 bytes dominate the sizes.
        ("(SIZE)", "2 4 3 1"),
        ("(REVERSE SIZE)", "1 3 4 2"),
        // Base subjects: "Re: hello" once decoded → HELLO; APPLE; APPLE; BANANA.
        ("(SUBJECT)", "2 3 4 1"),
        // The APPLE tie broken by ARRIVAL: 3 (Jan 3) before 2 (Jan 9).
        ("(SUBJECT ARRIVAL)", "3 2 4 1"),
        // RFC 5957: display names ZOE ZED, none (so the addr-spec ALICE@EXAMPLE.ORG), ADAM,
        // BOB BROWN.
        ("(DISPLAYFROM)", "3 2 4 1"),
        // Display names of the first To: Émile (decoded; É is not ASCII so sorts after Z),
        // ABE, none at all (empty), none (ALF@EXAMPLE.ORG).
        ("(DISPLAYTO)", "3 2 4 1"),
        ("(REVERSE DISPLAYTO)", "1 4 2 3"),
    ];
    for (criteria, expected) in cases {
        t.x(
            &format!("k SORT {criteria} UTF-8 ALL"),
            &[&format!("* SORT {expected}"), "k OK SORT completed"],
        )
        .await;
    }
    // UID SORT answers UIDs: sequence k is UID k+1.
    t.x(
        "u UID SORT (FROM) UTF-8 ALL",
        &["* SORT 3 2 5 4", "u OK SORT completed"],
    )
    .await;
    // Search keys narrow first: From contains "example" everywhere, SMALLER 2500 keeps 2, 4.
    t.x(
        "v SORT (REVERSE ARRIVAL) UTF-8 FROM example SMALLER 2500",
        &["* SORT 2 4", "v OK SORT completed"],
    )
    .await;
}

#[tokio::test]
async fn bad_input_gets_bad_or_no() {
    let b = backend();
    b.deliver("alice", "INBOX", b"Subject: x\r\n\r\n").unwrap();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    t.x(
        "a SORT (DATE) UTF-8 ALL",
        &["a BAD SORT needs a selected mailbox"],
    )
    .await;
    t.x(
        "b THREAD REFERENCES UTF-8 ALL",
        &["b BAD THREAD needs a selected mailbox"],
    )
    .await;
    select(&mut t, "INBOX").await;
    t.x(
        "c SORT (DATE) KOI8-R ALL",
        &["c NO [BADCHARSET (US-ASCII UTF-8)] unsupported charset"],
    )
    .await;
    t.x(
        "d UID THREAD ORDEREDSUBJECT X-UNKNOWN ALL",
        &["d NO [BADCHARSET (US-ASCII UTF-8)] unsupported charset"],
    )
    .await;
    for bad in [
        "e SORT (DATE) ALL",
        "e SORT () UTF-8 ALL",
        "e SORT (NAME) UTF-8 ALL",
        "e SORT RETURN (SAVE) (DATE) UTF-8 ALL",
        "e SORT (DATE) UTF-8",
        "e THREAD SUBJECT UTF-8 ALL",
        "e THREAD REFERENCES UTF-8 (ALL",
    ] {
        let out = t.send(bad).await;
        assert!(out.starts_with("e BAD "), "{bad}: {out}");
    }
    // The session goes on.
    t.x(
        "f THREAD REFERENCES UTF-8 ALL",
        &["* THREAD (1)", "f OK THREAD completed"],
    )
    .await;
}

#[tokio::test]
async fn capabilities_name_what_is_implemented() {
    let b = backend();
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    let out = t.send("a CAPABILITY").await;
    let caps: Vec<&str> = out.lines().next().unwrap().split(' ').collect();
    for c in [
        "SORT",
        "SORT=DISPLAY",
        "THREAD=ORDEREDSUBJECT",
        "THREAD=REFERENCES",
        "ESORT",
        "CONTEXT=SORT",
    ] {
        assert!(caps.contains(&c), "{c} missing: {out}");
    }
}

/// Hostile headers: cycles in References, a message naming itself, group-only address lists,
/// unclosed blobs and encoded-words, 8-bit bytes, no header block at all.
const HOSTILE: &[&[u8]] = &[
    b"Message-ID: <a@x>\r\nReferences: <b@x> <a@x> <b@x>\r\nSubject: [[[[\r\n\r\n",
    b"Message-ID: <b@x>\r\nReferences: <a@x>\r\nIn-Reply-To: <<<>>>\r\nSubject: Re: [fwd: [fwd:\r\n\r\n",
    b"Message-ID: <a@x>\r\nFrom: g: ;\r\nTo: ;;,,<>\r\nSubject: =?x?q?\xff\xfe?= (fwd)(fwd)\r\n\r\n",
    b"From: \"unterminated\r\nCc: (((\r\nDate: 99 Foo 99999 99:99:99 +9999\r\nSubject: \xc3\x28 Re:\r\n\r\n",
    b"no header block at all",
    b"",
];

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, .. proptest::prelude::ProptestConfig::default() })]

    /// Mutated SORT and THREAD commands over hostile messages: every command gets a tagged
    /// answer (OK, NO or BAD) and the session goes on.
    #[test]
    fn mutated_sort_and_thread_commands_are_answered(
        base in proptest::prop_oneof![
            proptest::strategy::Just("z UID SORT RETURN (MIN MAX COUNT ALL) (REVERSE SUBJECT DATE FROM TO CC DISPLAYFROM DISPLAYTO ARRIVAL SIZE) UTF-8 ALL"),
            proptest::strategy::Just("z THREAD REFERENCES UTF-8 OR (SUBJECT x) NOT 1:*"),
            proptest::strategy::Just("z UID THREAD ORDEREDSUBJECT \"US-ASCII\" UNDELETED"),
        ],
        edits in proptest::collection::vec((0usize..120, proptest::prelude::any::<u8>()), 0..4),
    ) {
        let mut v = base.as_bytes().to_vec();
        for (pos, b) in edits {
            let p = pos % v.len();
            // Keep the command one line: a CR or LF would split it.
            v[p] = if b == b'\r' || b == b'\n' { b'x' } else { b };
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        rt.block_on(async {
            let b = backend();
            for m in HOSTILE {
                b.deliver("alice", "INBOX", m).unwrap();
            }
            let mut t = T::new(&b);
            t.login("alice", "secret").await;
            select(&mut t, "INBOX").await;
            let mut input = v.clone();
            input.extend_from_slice(b"\r\nn NOOP\r\n");
            let (out, _) = t.raw(&input).await;
            assert!(out.ends_with("n OK NOOP completed\r\n"), "{out}");
        });
    }
}

#[tokio::test]
async fn hostile_messages_sort_and_thread() {
    let b = backend();
    for m in HOSTILE {
        b.deliver("alice", "INBOX", m).unwrap();
    }
    let mut t = T::new(&b);
    t.login("alice", "secret").await;
    select(&mut t, "INBOX").await;
    for c in [
        "a SORT (SUBJECT FROM TO CC DATE DISPLAYFROM DISPLAYTO) UTF-8 ALL",
        "b THREAD REFERENCES UTF-8 ALL",
        "c THREAD ORDEREDSUBJECT UTF-8 ALL",
    ] {
        let out = t.send(c).await;
        let tag = &c[..1];
        assert!(out.contains(&format!("{tag} OK ")), "{c}: {out}");
    }
}
