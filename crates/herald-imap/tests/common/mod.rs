//! Helpers shared by the integration tests: drive the framer and the parser together the way a
//! session will.

#![allow(dead_code)]

use herald_imap::proto::{
    Command, Frame, Framer, Limits, LiteralAction, ParseOptions, ProtoError, parse_command,
};

/// What the framer + parser made of one command.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Parsed.
    Ok(Command),
    /// Rejected by the framer or the parser, with the tag if any.
    Err(Option<String>, ProtoError),
}

/// Feeds `input` in `chunk`-sized pieces, buffering every literal; returns one outcome per
/// command.
pub fn run(input: &[u8], chunk: usize, limits: Limits, opts: ParseOptions) -> Vec<Outcome> {
    let mut f = Framer::new(limits);
    let mut out = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        f.push(piece);
        loop {
            match f.next_frame() {
                Frame::NeedMore => break,
                Frame::Command(c) => out.push(match parse_command(c, opts) {
                    Ok(cmd) => Outcome::Ok(cmd),
                    Err(r) => Outcome::Err(r.tag.map(|t| t.as_str().to_owned()), r.error),
                }),
                Frame::Rejected { tag, error } => {
                    out.push(Outcome::Err(tag.map(str::to_owned), error))
                }
                Frame::LiteralFound(l) => {
                    let tag = l.tag.map(str::to_owned);
                    if let Err(e) = f.accept_literal(LiteralAction::Buffer) {
                        out.push(Outcome::Err(tag, e));
                    }
                }
                Frame::LiteralChunk(_) | Frame::LiteralEnd => unreachable!("nothing is streamed"),
            }
        }
    }
    out
}

/// Parses one complete command through the framer, fed whole.
pub fn one(input: &[u8]) -> Result<Command, (Option<String>, ProtoError)> {
    let mut v = run(
        input,
        input.len(),
        Limits::default(),
        ParseOptions::default(),
    );
    assert_eq!(
        v.len(),
        1,
        "expected one command from {:?}: {v:?}",
        String::from_utf8_lossy(input)
    );
    match v.remove(0) {
        Outcome::Ok(c) => Ok(c),
        Outcome::Err(t, e) => Err((t, e)),
    }
}
