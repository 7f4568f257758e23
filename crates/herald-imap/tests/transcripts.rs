//! Protocol transcripts: the client side of RFC 3501 §8 and of the RFC 9051 (and extension RFC)
//! examples, replayed through the framer and the parser (STYLE.md, tests layer 3). The server
//! side is the session's, which comes later; here each client command must come out as the
//! command the RFC means.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Outcome, one, run};
use herald_imap::proto::command::{
    CommandBody, FetchAttr, ListReturn, ListSelect, SearchKey, SearchReturn, Section, SectionText,
    StatusItem, StoreAction, parse_idle_done,
};
use herald_imap::proto::types::{Flag, LiteralData, Mailbox};
use herald_imap::proto::{Limits, ParseOptions};

/// RFC 3501 §8, "Sample IMAP4rev1 connection", client lines only.
const RFC3501_SECTION_8: &[u8] = b"a001 login mrc secret\r\n\
a002 select inbox\r\n\
a003 fetch 12 full\r\n\
a004 fetch 12 body[header]\r\n\
a005 store 12 +flags \\deleted\r\n\
a006 logout\r\n";

#[test]
fn rfc3501_section_8_whole_and_bytewise() {
    for chunk in [RFC3501_SECTION_8.len(), 1, 7] {
        let out = run(
            RFC3501_SECTION_8,
            chunk,
            Limits::default(),
            ParseOptions::default(),
        );
        let cmds: Vec<_> = out
            .into_iter()
            .map(|o| match o {
                Outcome::Ok(c) => c,
                Outcome::Err(t, e) => panic!("{t:?} {e}"),
            })
            .collect();
        let tags: Vec<_> = cmds.iter().map(|c| c.tag.as_str()).collect();
        assert_eq!(tags, ["a001", "a002", "a003", "a004", "a005", "a006"]);
        assert_eq!(
            cmds[0].body,
            CommandBody::Login {
                username: b"mrc".to_vec(),
                password: b"secret".to_vec()
            }
        );
        assert!(matches!(&cmds[1].body, CommandBody::Select { mailbox, .. } if mailbox.is_inbox()));
        let CommandBody::Fetch(f) = &cmds[2].body else {
            panic!()
        };
        assert_eq!(
            f.items,
            [
                FetchAttr::Flags,
                FetchAttr::InternalDate,
                FetchAttr::Rfc822Size,
                FetchAttr::Envelope,
                FetchAttr::Body
            ]
        );
        let CommandBody::Fetch(f) = &cmds[3].body else {
            panic!()
        };
        assert_eq!(
            f.items,
            [FetchAttr::BodySection {
                peek: false,
                section: Section {
                    part: vec![],
                    text: Some(SectionText::Header)
                },
                partial: None
            }]
        );
        let CommandBody::Store(s) = &cmds[4].body else {
            panic!()
        };
        assert_eq!(
            (s.action, &s.flags[..]),
            (StoreAction::Add, &[Flag::Deleted][..])
        );
        assert_eq!(cmds[5].body, CommandBody::Logout);
    }
}

/// (command, expected name) for examples from RFC 9051 §6 and the extension RFCs.
const EXAMPLES: &[(&str, &str)] = &[
    ("abcd CAPABILITY\r\n", "CAPABILITY"),
    ("a002 NOOP\r\n", "NOOP"),
    ("A023 LOGOUT\r\n", "LOGOUT"),
    ("a002 STARTTLS\r\n", "STARTTLS"),
    ("A001 AUTHENTICATE GSSAPI\r\n", "AUTHENTICATE"),
    (
        "A001 AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=\r\n",
        "AUTHENTICATE",
    ),
    ("a001 LOGIN SMITH SESAME\r\n", "LOGIN"),
    ("t ENABLE IMAP4rev2\r\n", "ENABLE"),
    ("A142 SELECT INBOX\r\n", "SELECT"),
    ("A932 EXAMINE blurdybloop\r\n", "EXAMINE"),
    ("A003 CREATE owatagusiam/\r\n", "CREATE"),
    ("A004 CREATE owatagusiam/blurdybloop\r\n", "CREATE"),
    ("A682 DELETE blurdybloop\r\n", "DELETE"),
    ("A683 RENAME blurdybloop sarasoop\r\n", "RENAME"),
    ("A685 RENAME foo zowie\r\n", "RENAME"),
    ("A002 SUBSCRIBE #news.comp.mail.mime\r\n", "SUBSCRIBE"),
    ("A002 UNSUBSCRIBE #news.comp.mail.mime\r\n", "UNSUBSCRIBE"),
    ("A101 LIST \"\" \"\"\r\n", "LIST"),
    ("A102 LIST #news.comp.mail.misc \"\"\r\n", "LIST"),
    ("A103 LIST /usr/staff/jones \"\"\r\n", "LIST"),
    ("A202 LIST ~/Mail/ %\r\n", "LIST"),
    ("A02 LIST (SUBSCRIBED) \"\" \"*\"\r\n", "LIST"),
    ("A03 LIST () \"\" \"%\" RETURN (CHILDREN)\r\n", "LIST"),
    ("A04 LIST (REMOTE) \"\" \"%\" RETURN (CHILDREN)\r\n", "LIST"),
    ("A05 LIST (REMOTE SUBSCRIBED) \"/\" \"*\"\r\n", "LIST"),
    (
        "A06 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\"\r\n",
        "LIST",
    ),
    (
        "A07 LIST \"\" (\"INBOX\" \"Drafts\" \"Sent/%\")\r\n",
        "LIST",
    ),
    (
        "A08 LIST \"\" % RETURN (STATUS (MESSAGES UNSEEN))\r\n",
        "LIST",
    ),
    ("t1 LIST (SPECIAL-USE) \"\" \"*\"\r\n", "LIST"),
    ("t3 LIST \"\" \"%\" RETURN (SPECIAL-USE)\r\n", "LIST"),
    ("t2 CREATE MySpecial (USE (\\Drafts \\Sent))\r\n", "CREATE"),
    ("A002 LSUB \"#news.\" \"comp.mail.*\"\r\n", "LSUB"),
    ("A001 NAMESPACE\r\n", "NAMESPACE"),
    ("A042 STATUS blurdybloop (UIDNEXT MESSAGES)\r\n", "STATUS"),
    (
        "A043 STATUS INBOX (SIZE HIGHESTMODSEQ DELETED)\r\n",
        "STATUS",
    ),
    ("A001 IDLE\r\n", "IDLE"),
    ("FXXZ CHECK\r\n", "CHECK"),
    ("A341 CLOSE\r\n", "CLOSE"),
    ("A342 UNSELECT\r\n", "UNSELECT"),
    ("A202 EXPUNGE\r\n", "EXPUNGE"),
    ("A003 UID EXPUNGE 3000:3002\r\n", "UID EXPUNGE"),
    (
        "A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n",
        "SEARCH",
    ),
    ("A283 SEARCH TEXT \"string not in mailbox\"\r\n", "SEARCH"),
    (
        "A284 SEARCH CHARSET UTF-8 TEXT {13}\r\n\u{422}\u{435}\u{441}\u{442} \u{442}\u{44b}\r\n",
        "SEARCH",
    ),
    (
        "A285 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n",
        "SEARCH",
    ),
    ("A286 SEARCH RETURN () FLAGGED\r\n", "SEARCH"),
    (
        "A301 UID SEARCH RETURN (SAVE) SINCE 1-Jan-2004 NOT FROM \"Smith\" UID 1:*\r\n",
        "UID SEARCH",
    ),
    ("A302 UID SEARCH UID $ SMALLER 4096\r\n", "UID SEARCH"),
    (
        "a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338\r\n",
        "SEARCH",
    ),
    (
        "A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])\r\n",
        "FETCH",
    ),
    ("A999 UID FETCH 4827313:4828442 FLAGS\r\n", "UID FETCH"),
    (
        "s100 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345)\r\n",
        "UID FETCH",
    ),
    (
        "s101 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n",
        "UID FETCH",
    ),
    ("A003 STORE 2:4 +FLAGS (\\Deleted)\r\n", "STORE"),
    (
        "a103 UID STORE 6,4,8 (UNCHANGEDSINCE 12121231000) FLAGS.SILENT (\\Deleted)\r\n",
        "UID STORE",
    ),
    ("A003 COPY 2:4 MEETING\r\n", "COPY"),
    ("a UID COPY 1:* \"Saved Messages\"\r\n", "UID COPY"),
    ("a MOVE 2:4 Trash\r\n", "MOVE"),
    ("a UID MOVE 42:69 Trash\r\n", "UID MOVE"),
    ("G0001 GETQUOTA \"!partition/sda4\"\r\n", "GETQUOTA"),
    ("G0002 GETQUOTAROOT INBOX\r\n", "GETQUOTAROOT"),
    (
        "S0000 SETQUOTA \"#user/alice\" (STORAGE 510)\r\n",
        "SETQUOTA",
    ),
    (
        "a023 ID (\"name\" \"sodr\" \"version\" \"19.34\" \"vendor\" \"Pink Floyd Music Limited\")\r\n",
        "ID",
    ),
    ("A01 SELECT INBOX (CONDSTORE)\r\n", "SELECT"),
    (
        "A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n",
        "SELECT",
    ),
    ("a FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])\r\n", "FETCH"),
];

#[test]
fn rfc_examples_parse() {
    let mut n = 0;
    for (cmd, name) in EXAMPLES {
        if *name == "-" {
            continue;
        }
        let c = one(cmd.as_bytes()).unwrap_or_else(|e| panic!("{cmd}: {e:?}"));
        assert_eq!(c.body.name(), *name, "{cmd}");
        n += 1;
    }
    assert!(n > 60);
}

#[test]
fn rfc_examples_details() {
    let CommandBody::List(l) = one(
        b"A06 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\" RETURN (CHILDREN STATUS (UIDNEXT))\r\n",
    )
    .unwrap()
    .body
    else {
        panic!()
    };
    assert_eq!(
        l.selection,
        [ListSelect::Subscribed, ListSelect::RecursiveMatch]
    );
    assert_eq!(
        l.returns,
        [
            ListReturn::Children,
            ListReturn::Status(vec![StatusItem::UidNext])
        ]
    );

    let CommandBody::Search(s) =
        one(b"A301 UID SEARCH RETURN (SAVE) SINCE 1-Jan-2004 NOT FROM \"Smith\" UID 1:*\r\n")
            .unwrap()
            .body
    else {
        panic!()
    };
    assert_eq!(s.returns, Some(vec![SearchReturn::Save]));
    assert_eq!(s.criteria.len(), 3);

    let CommandBody::Search(s) = one(
        "A284 SEARCH CHARSET UTF-8 TEXT {13}\r\n\u{422}\u{435}\u{441}\u{442} \u{442}\u{44b}\r\n"
            .as_bytes(),
    )
    .unwrap()
    .body
    else {
        panic!()
    };
    assert_eq!(
        s.criteria,
        [SearchKey::Text(
            "\u{422}\u{435}\u{441}\u{442} \u{442}\u{44b}"
                .as_bytes()
                .to_vec()
        )]
    );
}

#[test]
fn idle_done_and_authenticate_lines() {
    assert!(parse_idle_done(b"DONE\r\n").is_ok());
    assert!(parse_idle_done(b"done\r\n").is_ok());
    assert!(parse_idle_done(b"DONE").is_err());
    assert!(parse_idle_done(b"a NOOP\r\n").is_err());
    use herald_imap::proto::command::{AuthResponse, parse_auth_response};
    assert_eq!(parse_auth_response(b"*\r\n").unwrap(), AuthResponse::Cancel);
    assert_eq!(
        parse_auth_response(b"AGZyZWQAcHc=\r\n").unwrap(),
        AuthResponse::Data(b"AGZyZWQAcHc=".to_vec())
    );
    assert_eq!(
        parse_auth_response(b"\r\n").unwrap(),
        AuthResponse::Data(vec![])
    );
    assert!(parse_auth_response(b"a b\r\n").is_err());
}

#[test]
fn rfc3501_append_and_rfc3502_multiappend() {
    // RFC 3501 §6.3.11 (the message of the example, 310 octets with CRLFs).
    let msg: &[u8] = b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n\
From: Fred Foobar <foobar@Blurdybloop.COM>\r\n\
Subject: afternoon meeting\r\n\
To: mooch@owatagu.siam.edu\r\n\
Message-Id: <B27397-0100000@Blurdybloop.COM>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\
\r\n\
Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n";
    let mut cmd = format!("A003 APPEND saved-messages (\\Seen) {{{}}}\r\n", msg.len()).into_bytes();
    cmd.extend_from_slice(msg);
    cmd.extend_from_slice(b"\r\n");
    let CommandBody::Append { mailbox, messages } = one(&cmd).unwrap().body else {
        panic!()
    };
    assert_eq!(mailbox, Mailbox::new("saved-messages"));
    assert_eq!(messages[0].data, LiteralData::Inline(msg.to_vec()));

    // RFC 3502 §6: two messages, the second with a date, LITERAL+ for the first.
    let mut cmd =
        format!("A003 APPEND saved-messages (\\Seen) {{{}+}}\r\n", msg.len()).into_bytes();
    cmd.extend_from_slice(msg);
    cmd.extend_from_slice(
        format!(
            " (\\Seen) \" 7-Feb-1994 22:43:04 -0800\" {{{}}}\r\n",
            msg.len()
        )
        .as_bytes(),
    );
    cmd.extend_from_slice(msg);
    cmd.extend_from_slice(b"\r\n");
    for chunk in [1, 5, cmd.len()] {
        let out = run(&cmd, chunk, Limits::default(), ParseOptions::default());
        let [Outcome::Ok(c)] = &out[..] else {
            panic!("{out:?}")
        };
        let CommandBody::Append { messages, .. } = &c.body else {
            panic!()
        };
        assert_eq!(messages.len(), 2);
        assert_eq!(
            messages[1].internal_date.unwrap().to_rfc3339(),
            "1994-02-07T22:43:04-08:00"
        );
    }
}

#[test]
fn utf8_accept_mailboxes() {
    let opts = ParseOptions { utf8_accept: true };
    let input = "a SELECT \"Entw\u{fc}rfe\"\r\nb CREATE &-\r\n".as_bytes();
    let out = run(input, 3, Limits::default(), opts);
    let [Outcome::Ok(a), Outcome::Ok(b)] = &out[..] else {
        panic!("{out:?}")
    };
    assert!(
        matches!(&a.body, CommandBody::Select { mailbox, .. } if mailbox.as_str() == "Entw\u{fc}rfe")
    );
    // With UTF8=ACCEPT, '&' is just a character.
    assert!(matches!(&b.body, CommandBody::Create { mailbox, .. } if mailbox.as_str() == "&-"));
    // Without it, 8-bit is refused and "&-" means "&".
    let out = run(input, 3, Limits::default(), ParseOptions::default());
    assert!(matches!(&out[0], Outcome::Err(Some(t), _) if t == "a"));
    assert!(
        matches!(&out[1], Outcome::Ok(c) if matches!(&c.body, CommandBody::Create { mailbox, .. } if mailbox.as_str() == "&"))
    );
}
