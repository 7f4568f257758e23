//! Framer + parser on arbitrary client bytes: no panic, bounded memory, and the same framing
//! whether the input arrives whole or split at the point the first byte chooses.

#![no_main]

use herald_imap::proto::{
    Frame, Framer, Limits, LiteralAction, ParseOptions, command::peek_command_name, parse_command,
};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, PartialEq)]
enum Ev {
    Cmd(Vec<u8>, Vec<u32>, bool),
    Lit(u64, bool, bool),
    Bytes(usize),
    End,
    Rej(Option<String>),
}

fn drive(pieces: &[&[u8]], utf8: bool) -> Vec<Ev> {
    let limits = Limits {
        max_line: 256,
        max_literal: 4096,
        max_command: 2048,
        strict_crlf: true,
    };
    let mut f = Framer::new(limits);
    let mut out = Vec::new();
    for piece in pieces {
        f.push(piece);
        loop {
            match f.next_frame() {
                Frame::NeedMore => break,
                Frame::Command(c) => {
                    let ok = parse_command(c, ParseOptions { utf8_accept: utf8 }).is_ok();
                    out.push(Ev::Cmd(c.bytes.to_vec(), c.streamed.to_vec(), ok));
                }
                Frame::LiteralChunk(b) => match out.last_mut() {
                    Some(Ev::Bytes(n)) => *n += b.len(),
                    _ => out.push(Ev::Bytes(b.len())),
                },
                Frame::LiteralEnd => out.push(Ev::End),
                Frame::Rejected { tag, .. } => out.push(Ev::Rej(tag.map(str::to_owned))),
                Frame::LiteralFound(l) => {
                    out.push(Ev::Lit(l.length, l.synchronizing, l.binary));
                    if peek_command_name(l.prefix).as_deref() == Some("APPEND") {
                        let _ = f.accept_literal(LiteralAction::Stream);
                    } else if l.length > 1024 {
                        f.reject_literal();
                    } else {
                        let _ = f.accept_literal(LiteralAction::Buffer);
                    }
                }
            }
        }
        // After NeedMore the framer holds at most one partial line.
        assert!(
            f.buffered() <= limits.max_line + 1,
            "framer holds unconsumed input"
        );
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let split = usize::from(first) % (input.len() + 1);
    let whole = drive(&[input], first & 1 == 1);
    let parts = drive(&[&input[..split], &input[split..]], first & 1 == 1);
    assert_eq!(whole, parts);
});
