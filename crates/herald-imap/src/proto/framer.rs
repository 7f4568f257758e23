//! The framer: cuts a client's byte stream into command frames, incrementally.
//!
//! This is the first of two stages (the second is [`super::command::parse_command`]). It knows
//! only lines, CRLF and literal announcements (`{n}`, `{n+}` LITERAL+, `~{n}` literal8), never
//! the command grammar, so a command that is too big or malformed is skipped here without
//! disturbing the next one, and the session can answer `tag BAD` with the tag it read.
//!
//! Shape, following imap-next and mini-redis (STYLE.md, "Sans-I/O protocol cores"):
//! * the caller [`push`](Framer::push)es bytes read from the socket and calls
//!   [`next_frame`](Framer::next_frame) until it returns [`Frame::NeedMore`], which is a normal outcome;
//! * a literal is announced as [`Frame::LiteralFound`] *before* its bytes are read, and nothing
//!   moves until the caller decides: [`accept_literal`](Framer::accept_literal) with
//!   [`LiteralAction::Buffer`] (the bytes become part of the command) or
//!   [`LiteralAction::Stream`] (they come out as [`Frame::LiteralChunk`]s and a
//!   [`Frame::LiteralEnd`], so an APPEND can go straight to a blob file), or
//!   [`reject_literal`](Framer::reject_literal) (after a tagged `NO`/`BAD`; for a LITERAL+
//!   literal the bytes still arrive and are skipped). For a synchronizing literal the session
//!   sends `+` after accepting;
//! * limits: [`Limits::max_line`] per line, [`Limits::max_literal`] per literal, and
//!   [`Limits::max_command`] for everything buffered for one command. Memory held by the framer
//!   is at most one line plus one command plus what the caller pushed and has not yet consumed;
//!   callers push a read buffer at a time, only after `NeedMore`.
//!
//! Events borrow the framer; the next call to `next_frame` releases them.

use memchr::memchr;

use super::error::ProtoError;
use super::types::is_tag_char;

/// Size limits, all enforced before memory is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest line (between literals), excluding CRLF.
    pub max_line: usize,
    /// Largest literal the framer announces; larger ones are rejected outright.
    pub max_literal: u64,
    /// Most bytes buffered for one command: its lines plus its buffered literals.
    /// Streamed literals do not count.
    pub max_command: usize,
    /// Whether a line must end in CRLF (true) or a bare LF is tolerated (false).
    pub strict_crlf: bool,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_line: 64 * 1024,
            max_literal: 64 * 1024 * 1024,
            max_command: 1024 * 1024,
            strict_crlf: true,
        }
    }
}

/// A complete command as bytes: its lines (each ending in CRLF) with buffered literals inline.
/// A streamed literal appears as its announcement only (`{n}` CRLF, no bytes after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandBytes<'a> {
    /// The command's bytes.
    pub bytes: &'a [u8],
    /// Indexes (0-based, in order of appearance) of the literals that were streamed.
    pub streamed: &'a [u32],
}

/// A literal announced at the end of a line, waiting for the caller's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiteralFound<'a> {
    /// The command's tag, if the first line had one.
    pub tag: Option<&'a str>,
    /// Announced length in bytes.
    pub length: u64,
    /// `{n}` (true: the client waits for `+`) or `{n+}` (false: LITERAL+, bytes follow at once).
    pub synchronizing: bool,
    /// `~{n}`: a literal8 (RFC 3516 BINARY), which may contain NUL.
    pub binary: bool,
    /// 0-based index of this literal within the command.
    pub index: u32,
    /// The command so far (lines and earlier buffered literals), so the caller can see which
    /// command this is (e.g. APPEND, to stream) before deciding.
    pub prefix: &'a [u8],
}

/// What [`Framer::next_frame`] produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Nothing more can be done until more bytes are pushed.
    NeedMore,
    /// A complete command; parse it with [`super::command::parse_command`].
    Command(CommandBytes<'a>),
    /// A literal was announced; call [`Framer::accept_literal`] or [`Framer::reject_literal`].
    /// Until then `next_frame` keeps returning this.
    LiteralFound(LiteralFound<'a>),
    /// Bytes of a streamed literal, in order.
    LiteralChunk(&'a [u8]),
    /// The streamed literal is complete; the command continues.
    LiteralEnd,
    /// A command was dropped (too long, bad literal, missing CR). The stream is in sync again;
    /// answer `tag BAD` (or `* BAD` without a tag).
    Rejected {
        /// The command's tag, if one could be read.
        tag: Option<&'a str>,
        /// Why.
        error: ProtoError,
    },
}

/// How to take an announced literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiteralAction {
    /// Keep the bytes in the command (counts against [`Limits::max_command`]).
    Buffer,
    /// Hand the bytes out as [`Frame::LiteralChunk`]s.
    Stream,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a line of the current command.
    Line,
    /// A literal was announced; waiting for the caller.
    Pending {
        length: u64,
        synchronizing: bool,
        binary: bool,
    },
    /// Copying literal bytes into the command.
    Buffer { remaining: u64 },
    /// Handing literal bytes out; `remaining == 0` means "emit LiteralEnd".
    Stream { remaining: u64 },
    /// Discarding the rest of a rejected command's line.
    SkipLine,
    /// Discarding the bytes of a rejected LITERAL+ literal.
    SkipLiteral { remaining: u64 },
}

/// Longest literal announcement kept while skipping a line: `~{4294967295+}`.
const TAIL: usize = 24;

/// The incremental framer. See the module docs.
#[derive(Debug)]
pub struct Framer {
    limits: Limits,
    state: State,
    input: Vec<u8>,
    pos: usize,
    cmd: Vec<u8>,
    streamed: Vec<u32>,
    literals: u32,
    tag: Option<String>,
    /// The last bytes of a line being skipped (for a literal announcement at its end).
    tail: Vec<u8>,
    /// Error to report once the skipped command has been read to its end.
    deferred: Option<ProtoError>,
    /// The previous event borrowed the command buffer; reset it before going on.
    reset_on_next: bool,
}

/// A literal announcement at the end of a line.
struct Announcement {
    length: u64,
    synchronizing: bool,
    binary: bool,
}

/// Parses `{n}`, `{n+}`, `~{n}` at the end of `line` (without CRLF). `Ok(None)`: no literal.
fn announcement(line: &[u8]) -> Result<Option<Announcement>, ProtoError> {
    let Some(body) = line.strip_suffix(b"}") else {
        return Ok(None);
    };
    let Some(open) = body.iter().rposition(|&b| b == b'{') else {
        return Ok(None);
    };
    let inner = &body[open + 1..];
    let (digits, synchronizing) = match inner.strip_suffix(b"+") {
        Some(d) => (d, false),
        None => (inner, true),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        // `{` ... `}` that is not a literal: an atom may end in `}` (e.g. a keyword).
        if inner.iter().all(|b| b.is_ascii_digit() || *b == b'+') && !inner.is_empty() {
            return Err(ProtoError::BadLiteral);
        }
        return Ok(None);
    }
    if digits.len() > 10 {
        return Err(ProtoError::BadLiteral);
    }
    let mut length: u64 = 0;
    for d in digits {
        length = length * 10 + u64::from(d - b'0');
    }
    if length > u64::from(u32::MAX) {
        return Err(ProtoError::BadLiteral);
    }
    let binary = open > 0 && body[open - 1] == b'~';
    Ok(Some(Announcement {
        length,
        synchronizing,
        binary,
    }))
}

/// The tag at the start of a command's first line, if it is followed by a space.
fn leading_tag(line: &[u8]) -> Option<String> {
    let n = line.iter().take_while(|&&b| is_tag_char(b)).count();
    (n > 0 && line.get(n) == Some(&b' ')).then(|| String::from_utf8_lossy(&line[..n]).into_owned())
}

impl Default for Framer {
    fn default() -> Framer {
        Framer::new(Limits::default())
    }
}

impl Framer {
    /// A framer with the given limits.
    pub fn new(limits: Limits) -> Framer {
        Framer {
            limits,
            state: State::Line,
            input: Vec::new(),
            pos: 0,
            cmd: Vec::new(),
            streamed: Vec::new(),
            literals: 0,
            tag: None,
            tail: Vec::new(),
            deferred: None,
            reset_on_next: false,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Changes the limits for what is read from now on (a session widens them after login).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Appends bytes read from the client.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.pos > 0 {
            self.input.drain(..self.pos);
            self.pos = 0;
        }
        self.input.extend_from_slice(bytes);
    }

    /// Bytes pushed but not yet consumed.
    pub fn buffered(&self) -> usize {
        self.input.len() - self.pos
    }

    /// Whether the framer is between commands: nothing of a next command read or pushed.
    pub fn is_idle(&self) -> bool {
        self.state == State::Line
            && (self.cmd.is_empty() || self.reset_on_next)
            && self.buffered() == 0
    }

    fn reset_command(&mut self) {
        self.cmd.clear();
        self.streamed.clear();
        self.literals = 0;
        self.tag = None;
        self.reset_on_next = false;
    }

    /// Drops the current command: skips what the client still sends for it (the rest of the
    /// line and any LITERAL+ literals) and, if `error` is given, reports it when done.
    fn abandon(&mut self, skip_literal: Option<u64>, error: Option<ProtoError>) {
        self.cmd.clear();
        self.streamed.clear();
        self.deferred = error;
        self.tail.clear();
        self.state = match skip_literal {
            Some(remaining) => State::SkipLiteral { remaining },
            None => State::Line,
        };
    }

    /// Takes the pending literal as `action`. Fails (and drops the command, as
    /// [`reject_literal`](Framer::reject_literal) would) if buffering it would exceed
    /// [`Limits::max_command`]; the caller then answers `tag BAD`/`NO [TOOBIG]`.
    pub fn accept_literal(&mut self, action: LiteralAction) -> Result<(), ProtoError> {
        let State::Pending { length, .. } = self.state else {
            return Err(ProtoError::NoLiteralPending);
        };
        match action {
            LiteralAction::Buffer => {
                let max = self.limits.max_command;
                if (self.cmd.len() as u64).saturating_add(length) > max as u64 {
                    self.reject_literal();
                    return Err(ProtoError::CommandTooLarge { max });
                }
                self.state = State::Buffer { remaining: length };
            }
            LiteralAction::Stream => {
                self.streamed.push(self.literals);
                self.state = State::Stream { remaining: length };
            }
        }
        self.literals += 1;
        Ok(())
    }

    /// Refuses the pending literal: the command is dropped. A LITERAL+ literal's bytes (and the
    /// rest of its command) are skipped as they arrive.
    pub fn reject_literal(&mut self) {
        if let State::Pending {
            length,
            synchronizing,
            ..
        } = self.state
        {
            let skip = (!synchronizing).then_some(length);
            self.abandon(skip, None);
            if skip.is_none() {
                self.reset_command();
            }
        }
    }

    /// Advances as far as the pushed bytes allow and reports what happened.
    pub fn next_frame(&mut self) -> Frame<'_> {
        if self.reset_on_next {
            self.reset_command();
        }
        loop {
            match self.state {
                State::Line => {
                    let avail = &self.input[self.pos..];
                    let Some(lf) = memchr(b'\n', avail) else {
                        if avail.len() > self.limits.max_line + 1 {
                            self.too_long_line();
                            continue;
                        }
                        return Frame::NeedMore;
                    };
                    let (content, has_cr) = match avail[..lf].strip_suffix(b"\r") {
                        Some(c) => (c, true),
                        None => (&avail[..lf], false),
                    };
                    if content.len() > self.limits.max_line {
                        self.too_long_line();
                        continue;
                    }
                    let first = self.cmd.is_empty() && self.literals == 0;
                    if first {
                        self.tag = leading_tag(content);
                    }
                    let consumed = lf + 1;
                    if !has_cr && self.limits.strict_crlf {
                        // The command ends here; a LITERAL+ literal it announced still arrives.
                        let skip = match announcement(content) {
                            Ok(Some(a)) if !a.synchronizing => Some(a.length),
                            _ => None,
                        };
                        self.pos += consumed;
                        self.abandon(skip, None);
                        return self.reject_now(ProtoError::BareLineFeed);
                    }
                    let ann = announcement(content);
                    if self.cmd.len() + content.len() + 2 > self.limits.max_command {
                        let max = self.limits.max_command;
                        let skip = match ann {
                            Ok(Some(Announcement {
                                synchronizing: false,
                                length,
                                ..
                            })) => Some(length),
                            _ => None,
                        };
                        self.pos += consumed;
                        self.abandon(skip, None);
                        return self.reject_now(ProtoError::CommandTooLarge { max });
                    }
                    self.cmd.extend_from_slice(content);
                    self.cmd.extend_from_slice(b"\r\n");
                    self.pos += consumed;
                    match ann {
                        Err(e) => return self.reject_now(e),
                        Ok(None) => {
                            self.reset_on_next = true;
                            return Frame::Command(CommandBytes {
                                bytes: &self.cmd,
                                streamed: &self.streamed,
                            });
                        }
                        Ok(Some(a)) => {
                            if a.length > self.limits.max_literal {
                                let max = self.limits.max_literal;
                                let skip = (!a.synchronizing).then_some(a.length);
                                self.abandon(skip, None);
                                return self.reject_now(ProtoError::LiteralTooLarge {
                                    length: a.length,
                                    max,
                                });
                            }
                            self.state = State::Pending {
                                length: a.length,
                                synchronizing: a.synchronizing,
                                binary: a.binary,
                            };
                        }
                    }
                }
                State::Pending {
                    length,
                    synchronizing,
                    binary,
                } => {
                    return Frame::LiteralFound(LiteralFound {
                        tag: self.tag.as_deref(),
                        length,
                        synchronizing,
                        binary,
                        index: self.literals,
                        prefix: &self.cmd,
                    });
                }
                State::Buffer { remaining } => {
                    let avail = self.input.len() - self.pos;
                    if remaining == 0 {
                        self.state = State::Line;
                        continue;
                    }
                    if avail == 0 {
                        return Frame::NeedMore;
                    }
                    let take = (avail as u64).min(remaining) as usize;
                    self.cmd
                        .extend_from_slice(&self.input[self.pos..self.pos + take]);
                    self.pos += take;
                    self.state = State::Buffer {
                        remaining: remaining - take as u64,
                    };
                }
                State::Stream { remaining } => {
                    if remaining == 0 {
                        self.state = State::Line;
                        return Frame::LiteralEnd;
                    }
                    let avail = self.input.len() - self.pos;
                    if avail == 0 {
                        return Frame::NeedMore;
                    }
                    let take = (avail as u64).min(remaining) as usize;
                    let start = self.pos;
                    self.pos += take;
                    self.state = State::Stream {
                        remaining: remaining - take as u64,
                    };
                    return Frame::LiteralChunk(&self.input[start..start + take]);
                }
                State::SkipLiteral { remaining } => {
                    if remaining == 0 {
                        self.state = State::SkipLine;
                        self.tail.clear();
                        continue;
                    }
                    let avail = self.input.len() - self.pos;
                    if avail == 0 {
                        return Frame::NeedMore;
                    }
                    let take = (avail as u64).min(remaining) as usize;
                    self.pos += take;
                    self.state = State::SkipLiteral {
                        remaining: remaining - take as u64,
                    };
                }
                State::SkipLine => {
                    let avail = &self.input[self.pos..];
                    let (chunk, done) = match memchr(b'\n', avail) {
                        Some(lf) => (&avail[..lf], true),
                        None => (avail, false),
                    };
                    // Keep only the last TAIL bytes: enough to see a literal announcement.
                    if chunk.len() >= TAIL {
                        self.tail.clear();
                        self.tail.extend_from_slice(&chunk[chunk.len() - TAIL..]);
                    } else {
                        self.tail.extend_from_slice(chunk);
                        if self.tail.len() > TAIL {
                            self.tail.drain(..self.tail.len() - TAIL);
                        }
                    }
                    self.pos += chunk.len() + usize::from(done);
                    if !done {
                        return Frame::NeedMore;
                    }
                    let line = self.tail.strip_suffix(b"\r").unwrap_or(&self.tail);
                    match announcement(line) {
                        Ok(Some(Announcement {
                            synchronizing: false,
                            length,
                            ..
                        })) => {
                            self.state = State::SkipLiteral { remaining: length };
                        }
                        _ => {
                            self.state = State::Line;
                            if let Some(error) = self.deferred.take() {
                                self.reset_on_next = true;
                                return Frame::Rejected {
                                    tag: self.tag.as_deref(),
                                    error,
                                };
                            }
                            self.reset_command();
                        }
                    }
                }
            }
        }
    }

    /// The line at `pos` is over the limit: remember its tag and skip it (and the rest of the
    /// command); report when done.
    fn too_long_line(&mut self) {
        let avail = &self.input[self.pos..];
        if self.cmd.is_empty() && self.literals == 0 {
            let head = &avail[..avail.len().min(self.limits.max_line)];
            self.tag = leading_tag(head);
        }
        let max = self.limits.max_line;
        self.abandon(None, Some(ProtoError::LineTooLong { max }));
        self.state = State::SkipLine;
    }

    /// Reports a rejected command now (the stream position is already past what must be
    /// skipped, or the skipping state is set).
    fn reject_now(&mut self, error: ProtoError) -> Frame<'_> {
        self.cmd.clear();
        self.streamed.clear();
        if !matches!(self.state, State::SkipLiteral { .. }) {
            self.state = State::Line;
        }
        self.reset_on_next = true;
        Frame::Rejected {
            tag: self.tag.as_deref(),
            error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Owned copy of a frame, for assertions.
    #[derive(Debug, PartialEq, Eq)]
    enum Ev {
        Cmd(Vec<u8>, Vec<u32>),
        Lit {
            tag: Option<String>,
            length: u64,
            sync: bool,
            binary: bool,
        },
        Chunk(Vec<u8>),
        End,
        Rej(Option<String>, ProtoError),
    }

    /// Drives the framer over `input` until it needs more, deciding literals with `decide`.
    fn run(
        f: &mut Framer,
        input: &[u8],
        decide: &mut dyn FnMut(&LiteralFound<'_>) -> Option<LiteralAction>,
    ) -> Vec<Ev> {
        f.push(input);
        let mut out = Vec::new();
        loop {
            match f.next_frame() {
                Frame::NeedMore => return out,
                Frame::Command(c) => out.push(Ev::Cmd(c.bytes.to_vec(), c.streamed.to_vec())),
                Frame::LiteralChunk(b) => out.push(Ev::Chunk(b.to_vec())),
                Frame::LiteralEnd => out.push(Ev::End),
                Frame::Rejected { tag, error } => out.push(Ev::Rej(tag.map(str::to_owned), error)),
                Frame::LiteralFound(l) => {
                    out.push(Ev::Lit {
                        tag: l.tag.map(str::to_owned),
                        length: l.length,
                        sync: l.synchronizing,
                        binary: l.binary,
                    });
                    match decide(&l) {
                        Some(a) => {
                            if let Err(e) = f.accept_literal(a) {
                                out.push(Ev::Rej(None, e));
                            }
                        }
                        None => f.reject_literal(),
                    }
                }
            }
        }
    }

    fn buffer_all(_: &LiteralFound<'_>) -> Option<LiteralAction> {
        Some(LiteralAction::Buffer)
    }

    fn cmd(s: &[u8]) -> Ev {
        Ev::Cmd(s.to_vec(), vec![])
    }

    #[test]
    fn lines_and_need_more() {
        let mut f = Framer::default();
        assert_eq!(
            run(&mut f, b"a NOOP\r\nb CAPA", &mut buffer_all),
            vec![cmd(b"a NOOP\r\n")]
        );
        assert!(!f.is_idle());
        assert_eq!(run(&mut f, b"BILITY\r", &mut buffer_all), vec![]);
        assert_eq!(
            run(&mut f, b"\n", &mut buffer_all),
            vec![cmd(b"b CAPABILITY\r\n")]
        );
        assert!(f.is_idle());
    }

    #[test]
    fn buffered_literal() {
        let mut f = Framer::default();
        let ev = run(&mut f, b"a LOGIN {4}\r\n", &mut buffer_all);
        assert_eq!(
            ev,
            vec![Ev::Lit {
                tag: Some("a".into()),
                length: 4,
                sync: true,
                binary: false
            }]
        );
        let ev = run(&mut f, b"fred {3+}\r\npw\n \"x\"\r\n", &mut buffer_all);
        assert_eq!(
            ev,
            vec![
                Ev::Lit {
                    tag: Some("a".into()),
                    length: 3,
                    sync: false,
                    binary: false
                },
                cmd(b"a LOGIN {4}\r\nfred {3+}\r\npw\n \"x\"\r\n")
            ]
        );
    }

    #[test]
    fn streamed_literal() {
        let mut f = Framer::default();
        let mut stream = |_: &LiteralFound<'_>| Some(LiteralAction::Stream);
        let ev = run(&mut f, b"A APPEND INBOX ~{10}\r\n01234", &mut stream);
        assert_eq!(
            ev,
            vec![
                Ev::Lit {
                    tag: Some("A".into()),
                    length: 10,
                    sync: true,
                    binary: true
                },
                Ev::Chunk(b"01234".to_vec())
            ]
        );
        let ev = run(&mut f, b"56789\r\nB NOOP\r\n", &mut stream);
        assert_eq!(
            ev,
            vec![
                Ev::Chunk(b"56789".to_vec()),
                Ev::End,
                Ev::Cmd(b"A APPEND INBOX ~{10}\r\n\r\n".to_vec(), vec![0]),
                cmd(b"B NOOP\r\n")
            ]
        );
    }

    #[test]
    fn pending_literal_is_repeated_until_decided() {
        let mut f = Framer::default();
        f.push(b"a LOGIN {1}\r\n");
        assert!(matches!(f.next_frame(), Frame::LiteralFound(_)));
        assert!(matches!(
            f.next_frame(),
            Frame::LiteralFound(LiteralFound { index: 0, .. })
        ));
        assert_eq!(f.accept_literal(LiteralAction::Buffer), Ok(()));
        assert_eq!(
            f.accept_literal(LiteralAction::Buffer),
            Err(ProtoError::NoLiteralPending)
        );
    }

    #[test]
    fn oversized_literals_are_rejected_and_skipped() {
        let mut f = Framer::new(Limits {
            max_literal: 100,
            ..Limits::default()
        });
        let ev = run(
            &mut f,
            b"t1 APPEND INBOX {999999999}\r\nt2 NOOP\r\n",
            &mut buffer_all,
        );
        assert_eq!(
            ev,
            vec![
                Ev::Rej(
                    Some("t1".into()),
                    ProtoError::LiteralTooLarge {
                        length: 999_999_999,
                        max: 100
                    }
                ),
                cmd(b"t2 NOOP\r\n")
            ]
        );
        // LITERAL+: the bytes arrive anyway and must be skipped, with the rest of the command.
        let ev = run(&mut f, b"t3 APPEND INBOX {101+}\r\n", &mut buffer_all);
        assert_eq!(
            ev,
            vec![Ev::Rej(
                Some("t3".into()),
                ProtoError::LiteralTooLarge {
                    length: 101,
                    max: 100
                }
            )]
        );
        let mut rest = vec![b'x'; 101];
        rest.extend_from_slice(b" {2+}\r\nzz\r\nt4 NOOP\r\n");
        assert_eq!(
            run(&mut f, &rest, &mut buffer_all),
            vec![cmd(b"t4 NOOP\r\n")]
        );
    }

    #[test]
    fn malformed_literals() {
        let mut f = Framer::default();
        let ev = run(
            &mut f,
            b"t1 LOGIN {12345678901}\r\nt2 LOGIN {1x}\r\nt3 NOOP {+}\r\n",
            &mut buffer_all,
        );
        assert_eq!(
            ev,
            vec![
                Ev::Rej(Some("t1".into()), ProtoError::BadLiteral),
                // Not a literal at all: the parser will reject it.
                cmd(b"t2 LOGIN {1x}\r\n"),
                Ev::Rej(Some("t3".into()), ProtoError::BadLiteral),
            ]
        );
    }

    #[test]
    fn overlong_line_keeps_tag_and_next_command() {
        let mut f = Framer::new(Limits {
            max_line: 20,
            ..Limits::default()
        });
        let mut input = b"tag1 SEARCH ".to_vec();
        input.extend(std::iter::repeat_n(b'1', 100));
        input.extend_from_slice(b"\r\ntag2 NOOP\r\n");
        assert_eq!(
            run(&mut f, &input, &mut buffer_all),
            vec![
                Ev::Rej(Some("tag1".into()), ProtoError::LineTooLong { max: 20 }),
                cmd(b"tag2 NOOP\r\n")
            ]
        );
        // Fed in pieces: the same result.
        let mut f = Framer::new(Limits {
            max_line: 20,
            ..Limits::default()
        });
        let mut ev = Vec::new();
        for chunk in input.chunks(7) {
            ev.extend(run(&mut f, chunk, &mut buffer_all));
        }
        assert_eq!(
            ev,
            vec![
                Ev::Rej(Some("tag1".into()), ProtoError::LineTooLong { max: 20 }),
                cmd(b"tag2 NOOP\r\n")
            ]
        );
        // An overlong line ending in a LITERAL+ announcement: its bytes are skipped too.
        let mut f = Framer::new(Limits {
            max_line: 20,
            ..Limits::default()
        });
        let mut input = b"t APPEND ".to_vec();
        input.extend(std::iter::repeat_n(b'x', 30));
        input.extend_from_slice(b" {5+}\r\nhello\r\nu NOOP\r\n");
        assert_eq!(
            run(&mut f, &input, &mut buffer_all),
            vec![
                Ev::Rej(Some("t".into()), ProtoError::LineTooLong { max: 20 }),
                cmd(b"u NOOP\r\n")
            ]
        );
    }

    #[test]
    fn bare_lf() {
        let mut f = Framer::default();
        assert_eq!(
            run(&mut f, b"a NOOP\nb NOOP\r\n", &mut buffer_all),
            vec![
                Ev::Rej(Some("a".into()), ProtoError::BareLineFeed),
                cmd(b"b NOOP\r\n")
            ]
        );
        let mut f = Framer::new(Limits {
            strict_crlf: false,
            ..Limits::default()
        });
        assert_eq!(
            run(&mut f, b"a NOOP\n", &mut buffer_all),
            vec![cmd(b"a NOOP\r\n")]
        );
    }

    #[test]
    fn command_size_limit() {
        let mut f = Framer::new(Limits {
            max_command: 40,
            ..Limits::default()
        });
        let ev = run(&mut f, b"a LOGIN {30}\r\n", &mut buffer_all);
        assert_eq!(
            ev,
            vec![
                Ev::Lit {
                    tag: Some("a".into()),
                    length: 30,
                    sync: true,
                    binary: false
                },
                Ev::Rej(None, ProtoError::CommandTooLarge { max: 40 })
            ]
        );
        assert!(f.is_idle());
        assert_eq!(
            run(&mut f, b"b NOOP\r\n", &mut buffer_all),
            vec![cmd(b"b NOOP\r\n")]
        );
        // Lines add up too.
        let ev = run(&mut f, b"c LOGIN {5}\r\n", &mut buffer_all);
        assert_eq!(ev.len(), 1);
        let ev = run(&mut f, b"12345 {1}\r\n", &mut buffer_all);
        assert_eq!(ev.len(), 1);
        let ev = run(
            &mut f,
            b"1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nd NOOP\r\n",
            &mut buffer_all,
        );
        assert_eq!(
            ev,
            vec![
                Ev::Rej(Some("c".into()), ProtoError::CommandTooLarge { max: 40 }),
                cmd(b"d NOOP\r\n")
            ]
        );
    }

    #[test]
    fn rejected_literal() {
        let mut f = Framer::default();
        let mut no = |_: &LiteralFound<'_>| None;
        // Synchronizing: the client sends nothing more for this command.
        let ev = run(&mut f, b"a APPEND x {5}\r\nb NOOP\r\n", &mut no);
        assert_eq!(ev[1], cmd(b"b NOOP\r\n"));
        // Non-synchronizing: the bytes and the rest of the command are skipped.
        let ev = run(
            &mut f,
            b"a APPEND x {5+}\r\nhello {2+}\r\nhi\r\nb NOOP\r\n",
            &mut no,
        );
        assert_eq!(ev[1], cmd(b"b NOOP\r\n"));
        assert_eq!(ev.len(), 2);
    }
}
