//! Robustness: malformed input gives errors (with the tag when one was readable), never panics,
//! and the framer's results do not depend on how the input was split into reads.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Outcome, run};
use herald_imap::proto::command::peek_command_name;
use herald_imap::proto::{
    Frame, Framer, Limits, LiteralAction, ParseOptions, ProtoError, parse_command,
};
use proptest::prelude::*;

fn small() -> Limits {
    Limits {
        max_line: 200,
        max_literal: 1000,
        max_command: 2000,
        strict_crlf: true,
    }
}

#[test]
fn malformed_inputs_are_errors_and_the_next_command_survives() {
    let long = format!("t9 SEARCH {}\r\n", "1,".repeat(300));
    let cases: Vec<(Vec<u8>, Option<&str>)> = vec![
        (b"t1 SEARCH (SEEN\r\n".to_vec(), Some("t1")),
        (b"t1 FETCH 1 (FLAGS))\r\n".to_vec(), Some("t1")),
        (b"t2 APPEND INBOX {999999999}\r\n".to_vec(), Some("t2")),
        // (A LITERAL+ `{999999999+}` swallows what follows as its data: tested in framer.rs.)
        (b"t4 LOGIN {99999999999}\r\n".to_vec(), Some("t4")),
        (b"t5 LOGIN {3}x\r\n".to_vec(), Some("t5")),
        (b"t6 SELECT caf\xc3\xa9\r\n".to_vec(), Some("t6")),
        (b"t7 NO\xffOP\r\n".to_vec(), Some("t7")),
        (b"t8 NOOP\n".to_vec(), Some("t8")),
        (long.into_bytes(), Some("t9")),
        (b"\xff\xfe garbage\r\n".to_vec(), None),
        (b"(((((\r\n".to_vec(), None),
        (b"t10\r\n".to_vec(), None),
        (b"t11 SEARCH CHARSET\r\n".to_vec(), Some("t11")),
        (b"t12 FETCH 1 BODY[1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24.25.26.27.28.29.30.31.32.33]\r\n".to_vec(), Some("t12")),
    ];
    for (bad, tag) in cases {
        let mut input = bad.clone();
        input.extend_from_slice(b"z1 NOOP\r\n");
        for chunk in [1, 3, input.len()] {
            let out = run(&input, chunk, small(), ParseOptions::default());
            let shown = String::from_utf8_lossy(&bad);
            assert_eq!(out.len(), 2, "{shown}: {out:?}");
            match &out[0] {
                Outcome::Err(t, _) => assert_eq!(t.as_deref(), tag, "{shown}"),
                Outcome::Ok(c) => panic!("{shown} parsed as {c:?}"),
            }
            assert!(
                matches!(&out[1], Outcome::Ok(c) if c.tag.as_str() == "z1"),
                "{shown}: {out:?}"
            );
        }
    }
}

#[test]
fn specific_errors() {
    let out = run(
        b"t APPEND INBOX {999999999}\r\n",
        100,
        small(),
        ParseOptions::default(),
    );
    assert_eq!(
        out,
        [Outcome::Err(
            Some("t".into()),
            ProtoError::LiteralTooLarge {
                length: 999_999_999,
                max: 1000
            }
        )]
    );
    let out = run(
        b"t SELECT caf\xc3\xa9\r\n",
        100,
        small(),
        ParseOptions::default(),
    );
    assert!(matches!(
        &out[..],
        [Outcome::Err(_, ProtoError::EightBit { .. })]
    ));
    // Missing CRLF: nothing yet, which is not an error.
    assert!(run(b"t NOOP", 1, small(), ParseOptions::default()).is_empty());
}

#[test]
fn streaming_append_through_the_framer() {
    let body: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let mut input = format!("A1 APPEND INBOX (\\Seen) ~{{{}}}\r\n", body.len()).into_bytes();
    input.extend_from_slice(&body);
    input.extend_from_slice(b"\r\n");
    let mut f = Framer::new(Limits {
        max_command: 100,
        ..Limits::default()
    });
    let mut sink = Vec::new();
    let mut cmd = None;
    for piece in input.chunks(333) {
        f.push(piece);
        loop {
            match f.next_frame() {
                Frame::NeedMore => break,
                Frame::LiteralFound(l) => {
                    assert_eq!(peek_command_name(l.prefix).as_deref(), Some("APPEND"));
                    assert!(l.binary && l.synchronizing);
                    f.accept_literal(LiteralAction::Stream).unwrap();
                }
                Frame::LiteralChunk(b) => sink.extend_from_slice(b),
                Frame::LiteralEnd => {}
                Frame::Command(c) => cmd = Some(parse_command(c, ParseOptions::default()).unwrap()),
                Frame::Rejected { error, .. } => panic!("{error}"),
            }
        }
    }
    assert_eq!(sink, body);
    let cmd = cmd.unwrap();
    let herald_imap::proto::CommandBody::Append { messages, .. } = cmd.body else {
        panic!()
    };
    assert_eq!(
        messages[0].data,
        herald_imap::proto::types::LiteralData::Streamed {
            index: 0,
            length: 5000
        }
    );
}

/// Owned, normalised framer events: adjacent literal chunks merged.
#[derive(Debug, PartialEq, Eq, Clone)]
enum Ev {
    Cmd(Vec<u8>, Vec<u32>),
    Lit(Option<String>, u64, bool, bool),
    Bytes(Vec<u8>),
    End,
    Rej(Option<String>, ProtoError),
    AcceptErr(ProtoError),
}

/// Drives the framer like a session: stream APPEND literals, refuse literals over 300 bytes
/// otherwise, buffer the rest.
fn events(input: &[u8], splits: &[usize], limits: Limits) -> Vec<Ev> {
    let mut f = Framer::new(limits);
    let mut out: Vec<Ev> = Vec::new();
    let mut pieces = Vec::new();
    let mut start = 0;
    for &s in splits {
        let end = (start + s).min(input.len());
        pieces.push(&input[start..end]);
        start = end;
    }
    pieces.push(&input[start..]);
    for piece in pieces {
        f.push(piece);
        loop {
            match f.next_frame() {
                Frame::NeedMore => break,
                Frame::Command(c) => out.push(Ev::Cmd(c.bytes.to_vec(), c.streamed.to_vec())),
                Frame::LiteralChunk(b) => match out.last_mut() {
                    Some(Ev::Bytes(v)) => v.extend_from_slice(b),
                    _ => out.push(Ev::Bytes(b.to_vec())),
                },
                Frame::LiteralEnd => out.push(Ev::End),
                Frame::Rejected { tag, error } => out.push(Ev::Rej(tag.map(str::to_owned), error)),
                Frame::LiteralFound(l) => {
                    out.push(Ev::Lit(
                        l.tag.map(str::to_owned),
                        l.length,
                        l.synchronizing,
                        l.binary,
                    ));
                    let stream = peek_command_name(l.prefix).as_deref() == Some("APPEND");
                    if stream {
                        f.accept_literal(LiteralAction::Stream).unwrap();
                    } else if l.length > 300 {
                        f.reject_literal();
                    } else if let Err(e) = f.accept_literal(LiteralAction::Buffer) {
                        out.push(Ev::AcceptErr(e));
                    }
                }
            }
        }
    }
    out
}

/// Pieces of IMAP-ish input, valid and not.
fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"a NOOP\r\n".to_vec()),
        Just(b"b LOGIN {5}\r\nfred! pw\r\n".to_vec()),
        Just(b"c LOGIN {4+}\r\nfred {2+}\r\npw\r\n".to_vec()),
        Just(b"d APPEND INBOX {10}\r\n0123456789\r\n".to_vec()),
        Just(b"e APPEND INBOX ~{3+}\r\na\0b {2}\r\nxy\r\n".to_vec()),
        Just(b"f APPEND INBOX {400+}\r\n".to_vec()),
        Just(b"g LOGIN {400+}\r\n".to_vec()),
        Just(b"h LOGIN {999999}\r\n".to_vec()),
        Just(b"i SEARCH 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41\r\n".to_vec()),
        Just(b"j NOOP\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"{3}\r\n".to_vec()),
        Just(b"k X {12345678901}\r\n".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..40),
        proptest::collection::vec(prop_oneof![Just(b'{'), Just(b'}'), Just(b'+'), Just(b'1'), Just(b'\r'), Just(b'\n'), Just(b' '), Just(b'a')], 0..30),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    /// Whole, byte by byte, or split anywhere: the same events.
    #[test]
    fn framing_is_independent_of_read_boundaries(
        frags in proptest::collection::vec(fragment(), 1..12),
        splits in proptest::collection::vec(1usize..20, 0..40),
    ) {
        let input: Vec<u8> = frags.concat();
        let limits = Limits { max_line: 100, max_literal: 1000, max_command: 300, strict_crlf: true };
        let whole = events(&input, &[], limits);
        let bytewise = events(&input, &vec![1; input.len()], limits);
        let split = events(&input, &splits, limits);
        prop_assert_eq!(&whole, &bytewise);
        prop_assert_eq!(&whole, &split);
    }

    /// Arbitrary bytes through framer and parser: errors at most, never a panic.
    #[test]
    fn no_panics(input in proptest::collection::vec(any::<u8>(), 0..400), chunk in 1usize..50) {
        let _ = run(&input, chunk, small(), ParseOptions::default());
        let _ = run(&input, chunk, small(), ParseOptions { utf8_accept: true });
    }

    /// Mutated valid commands: errors at most, never a panic.
    #[test]
    fn mutated_commands_do_not_panic(
        base in prop_oneof![
            Just(&b"a UID FETCH 1:* (FLAGS BODY.PEEK[1.2.HEADER.FIELDS (From)]<0.10>) (CHANGEDSINCE 5 VANISHED)\r\n"[..]),
            Just(&b"a SEARCH RETURN (MIN) CHARSET UTF-8 OR (FROM \"x\" NOT SEEN) UID 1:5,* MODSEQ 4\r\n"[..]),
            Just(&b"a LIST (SUBSCRIBED) \"\" (\"a\" \"b\") RETURN (STATUS (MESSAGES))\r\n"[..]),
            Just(&b"a SELECT INBOX (QRESYNC (1 2 1:5 (1,2 3,4)))\r\n"[..]),
            Just(&b"a APPEND INBOX (\\Seen) \" 1-Jan-2000 00:00:00 +0000\" {1+}\r\nx\r\n"[..]),
            Just(&b"a STORE 1:2 (UNCHANGEDSINCE 4) -FLAGS.SILENT (\\Seen)\r\n"[..]),
            Just(&b"a UID SORT RETURN (MIN ALL) (REVERSE DATE DISPLAYFROM) \"UTF-8\" OR (SUBJECT x) NOT 1:*\r\n"[..]),
            Just(&b"a THREAD REFERENCES US-ASCII (UNSEEN FROM {1}\r\nx) MODSEQ 4\r\n"[..]),
        ],
        edits in proptest::collection::vec((0usize..120, any::<u8>()), 1..6),
    ) {
        let mut v = base.to_vec();
        for (pos, b) in edits {
            let p = pos % v.len();
            v[p] = b;
        }
        let _ = run(&v, v.len(), Limits::default(), ParseOptions::default());
    }
}
