//! The session transcript harness: a [`Session`] on the in-memory store, fed `C:` lines and
//! checked line by line against expected `S:` lines (a line ending in `…` matches by prefix).
//! Every byte the server writes is also decoded with imap-codec's response codec (greeting
//! aside), except ESEARCH, LIST extended data, RFC 8474 object ids and URLAUTH's responses,
//! which imap-codec alpha.10 cannot read (see `responses.rs`).

#![allow(dead_code, clippy::unwrap_used)]

use herald_imap::ImapConfig;
use herald_imap::session::memory::MemoryBackend;
use herald_imap::session::{Control, Peer, Session};
use imap_codec::ResponseCodec;
use imap_codec::decode::Decoder;
use std::sync::Arc;

pub fn peer() -> Peer {
    Peer {
        client: "192.0.2.7:40000".parse().unwrap(),
        server: "127.0.0.1:1143".parse().unwrap(),
    }
}

pub fn backend() -> MemoryBackend {
    let b = MemoryBackend::new();
    b.add_user("alice", "secret", false);
    b.add_user("bob", "hunter2", false);
    b.add_user("root", "toor", true);
    b
}

pub struct T {
    pub s: Session<MemoryBackend>,
}

pub fn check_codec(out: &[u8]) {
    let mut rest = out;
    while !rest.is_empty() {
        // imap-codec's known gaps (`responses.rs`, EXPECTED_GAPS): ESEARCH, LIST's extended
        // data (CHILDINFO, OLDNAME), RFC 8474 object ids, RFC 8970 PREVIEW,
        // RFC 8514 SAVEDATE, and IMAP4rev2's message/global.
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .unwrap_or(rest.len());
        let line = &rest[..line_end];
        let list_extended = line.starts_with(b"* LIST") && line.ends_with(b"))");
        let unknown_item = [
            &b"MAILBOXID ("[..],
            b"EMAILID (",
            b"THREADID ",
            b"PREVIEW ",
            b"SAVEDATE ",
            b"\"MESSAGE\" \"GLOBAL\"",
        ]
        .iter()
        .any(|n| line.windows(n.len()).any(|w| w == *n));
        // Nor URLAUTH's GENURLAUTH and URLFETCH data (RFC 4467, RFC 5524).
        let urlauth = rest.starts_with(b"* GENURLAUTH") || rest.starts_with(b"* URLFETCH");
        // RFC 4314's ACL, LISTRIGHTS and MYRIGHTS: imap-codec has no ACL extension; their
        // exact bytes are unit-tested beside the writer.
        let acl = [&b"* ACL "[..], b"* LISTRIGHTS ", b"* MYRIGHTS "]
            .iter()
            .any(|p| line.starts_with(p));
        if rest.starts_with(b"* ESEARCH") || list_extended || unknown_item || urlauth || acl {
            rest = skip_response(rest);
            continue;
        }
        match ResponseCodec::default().decode(rest) {
            Ok((r, _)) => rest = r,
            Err(e) => panic!(
                "imap-codec rejects {:?}: {e:?}",
                String::from_utf8_lossy(rest)
            ),
        }
    }
}

/// `rest` after its first response: through CRLF, and through every literal `{n}` that ends
/// a line, with the line after it.
fn skip_response(mut rest: &[u8]) -> &[u8] {
    loop {
        let end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
        let line = &rest[..end];
        rest = &rest[end + 2..];
        let literal = line
            .strip_suffix(b"}")
            .and_then(|l| l.iter().rposition(|&b| b == b'{').map(|at| &l[at + 1..]))
            .and_then(|n| std::str::from_utf8(n).ok()?.parse::<usize>().ok());
        match literal {
            Some(n) => rest = &rest[n..],
            None => return rest,
        }
    }
}

impl T {
    pub fn new(b: &MemoryBackend) -> T {
        T::with(b, ImapConfig::default())
    }
    pub fn with(b: &MemoryBackend, config: ImapConfig) -> T {
        T {
            s: Session::new(b.clone(), Arc::new(config), peer(), false, false),
        }
    }
    pub async fn raw(&mut self, input: &[u8]) -> (String, Control) {
        let (out, c) = self.raw_bytes(input).await;
        (String::from_utf8(out).unwrap(), c)
    }
    /// As [`T::raw`], for answers that are not UTF-8 (literal8 data).
    pub async fn raw_bytes(&mut self, input: &[u8]) -> (Vec<u8>, Control) {
        let mut out: Vec<u8> = Vec::new();
        let c = self.s.input(input, &mut out).await.unwrap();
        check_codec(&out);
        (out, c)
    }
    /// Sends `c` (CRLF added per line) and checks the lines written.
    pub async fn x(&mut self, c: &str, expected: &[&str]) -> String {
        let mut input = String::new();
        for l in c.lines() {
            input.push_str(l);
            input.push_str("\r\n");
        }
        let (out, _) = self.raw(input.as_bytes()).await;
        let lines: Vec<&str> = out.split_terminator("\r\n").collect();
        let ok = lines.len() == expected.len()
            && lines
                .iter()
                .zip(expected)
                .all(|(l, e)| match e.strip_suffix('…') {
                    Some(prefix) => l.starts_with(prefix),
                    None => l == e,
                });
        assert!(
            ok,
            "C: {c}\nexpected:\n{}\ngot:\n{}",
            expected.join("\n"),
            lines.join("\n")
        );
        out
    }
    /// Sends one command line and returns what the server wrote, unchecked.
    pub async fn send(&mut self, c: &str) -> String {
        self.raw(format!("{c}\r\n").as_bytes()).await.0
    }
    pub async fn login(&mut self, user: &str, pw: &str) {
        self.x(
            &format!("L LOGIN {user} {pw}"),
            &["L OK [CAPABILITY IMAP4rev1 …"],
        )
        .await;
    }
}
