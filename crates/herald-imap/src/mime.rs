//! Message structure for FETCH and SEARCH: ENVELOPE, BODY/BODYSTRUCTURE, `BODY[section]`,
//! BINARY, and header and text matching.
//!
//! Two readers of the same bytes, each for what it is good at:
//!
//! * **Structure** (ENVELOPE, BODY/BODYSTRUCTURE, `BODY[section]`, BINARY) comes from the small
//!   MIME splitter in this module, which works on the **raw bytes** and records byte ranges.
//!   IMAP shows bytes, not decoded values: sizes and line counts are of bodies as stored,
//!   `BODY[2.TEXT]` is a range of the message, and ENVELOPE strings and parameter values keep
//!   their RFC 2047 encoded-words as written (clients decode them; imaptest compares exact
//!   strings). mail-parser's part offsets were used for this before, and they do not fit IMAP:
//!   an enclosing boundary did not end an unclosed inner multipart, an embedded message's
//!   epilogue fell out of `BODY[n.TEXT]`, parameters came back RFC 2047-decoded and with
//!   invented `*-language` names. Owning the splitting makes every range explainable by one of
//!   the rules below.
//! * **Search** (header and body text) uses `mail-parser` 0.11 (STACK §3): SEARCH matches
//!   decoded, charset-converted text, which is what mail-parser is for. [`parse`] is still the
//!   entry point, and the structure functions take its [`Message`] for its `raw_message`.
//!
//! The splitting rules, with their sources (tests: `tests/mime_golden.rs` over `tests/mime/`,
//! cross-checked against Python's `email` package):
//!
//! * A header block ends after its first empty line; a line that is neither a field nor a
//!   continuation ends it without one and is the first line of the body (as Python's email
//!   package does). `BODY[HEADER]`/`BODY[n.MIME]` include the empty line.
//! * A delimiter line is exactly `--boundary`, then `--` for the close delimiter, then only
//!   spaces or tabs (RFC 2046 §5.1.1); the line break before it belongs to it, not to the part.
//!   Each multipart searches only its own region, outside-in, so a delimiter of an enclosing
//!   multipart ends every part inside it, closed or not. Delimiter lines with nothing between
//!   them make no part (the §5.1.1 grammar has no empty body part there); without a close
//!   delimiter the last part runs to the end of the enclosing region; text before the first
//!   and after the close delimiter (preamble, epilogue) belongs to no part but is in the
//!   multipart's body: `BODY[TEXT]` is everything after the header's empty line, `BODY[n.TEXT]`
//!   is `BODY[n]` without the embedded message's header block (RFC 3501 §6.4.5).
//! * Content types: no Content-Type means text/plain, or message/rfc822 for a part directly in
//!   a multipart/digest (RFC 2046 §5.1.5). A Content-Type that cannot be parsed, a multipart
//!   without a boundary parameter and one whose boundary never occurs are text/plain (RFC 2045
//!   §5.2's default for a Content-Type that cannot be used).
//! * message/rfc822 (RFC 3501's only `body-type-msg`; for an IMAP4rev2 session also
//!   message/global, [`Revision::Rev2`]) is parsed as a message. A
//!   transfer-encoded one (RFC 2046 §5.2.1 forbids it; it is sent anyway) is decoded first: its
//!   size and lines stay those of the encoded body, and `BODY[n.HEADER]`, `BODY[n.1]`, … address
//!   the decoded message.
//! * Parameters: RFC 2231 continuations are joined ("IMAP4 servers SHOULD decode parameter value
//!   continuations when generating the BODY and BODYSTRUCTURE fetch attributes"). A value with
//!   a charset stays percent-encoded under `name*`, as Dovecot does: RFC 9051 would decode it to
//!   UTF-8, which only an IMAP4rev2 or UTF8=ACCEPT session could carry, and `body_structure`
//!   does not know the session.
//! * Limits: `MAX_DEPTH` nesting, `MAX_PARTS` entities and `MAX_DECODED` nested decodes;
//!   beyond them a multipart or message is an opaque application/octet-stream leaf, so neither
//!   the output nor the work grows without bound. No input panics; NUL bytes, which no IMAP
//!   string may hold, are dropped from strings.
//!
//! The functions split the message again on every call, from the bytes `read_message`
//! returns. What FETCH asks of most messages without their body — the header block, ENVELOPE,
//! BODY, BODYSTRUCTURE — is also kept as a [`Summary`], computed once per content by
//! [`summary`] and kept by `session::summaries`.

use std::borrow::Cow;
use std::ops::Range;

use crate::proto::command::{Section, SectionText};
use crate::proto::response::{WriteOptions, write_string};
use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::{HeaderValue, Message, MessageParser, MessagePart, PartType};

/// Deepest MIME nesting described; deeper multiparts and messages are opaque leaves
/// (BODYSTRUCTURE stays finite and the stack bounded whatever a message contains).
const MAX_DEPTH: usize = 32;

/// Most MIME entities split out of one message (BODYSTRUCTURE stays a bounded size); past it, multiparts and messages are opaque leaves and a multipart's last part takes the
/// rest of its body.
const MAX_PARTS: usize = 10_000;

/// Most transfer-encoded message/rfc822 parts decoded along one path (each decode copies).
const MAX_DECODED: usize = 3;

/// Parses a message for SEARCH, and as the handle the other functions take. Always `Some`:
/// where mail-parser finds no header at all (an empty message, one starting with its empty
/// line), the handle has no parts for SEARCH and the structure functions still describe the
/// bytes (a header-less text/plain message).
pub fn parse(raw: &[u8]) -> Option<Message<'_>> {
    Some(
        MessageParser::default()
            .parse(raw)
            .unwrap_or_else(|| Message {
                raw_message: Cow::Borrowed(raw),
                ..Message::default()
            }),
    )
}

/// The handle for `raw` without parsing it: enough for [`envelope`], [`body_structure`],
/// [`section`] and [`binary`], which read the raw bytes themselves. FETCH uses it so a message
/// is not parsed twice (mail-parser's full parse is only needed by SEARCH and PREVIEW).
pub fn wrap(raw: &[u8]) -> Message<'_> {
    Message {
        raw_message: Cow::Borrowed(raw),
        ..Message::default()
    }
}

/// `raw[a..b]` for mail-parser's offsets, clamped (never panics).
fn slice(raw: &[u8], a: u32, b: u32) -> &[u8] {
    let (a, b) = (a as usize, b as usize);
    raw.get(a.min(raw.len())..b.min(raw.len()).max(a.min(raw.len())))
        .unwrap_or(&[])
}

/// `buf[r]`, or nothing when the range does not fit (never panics).
fn bytes<'a>(buf: &'a [u8], r: &Range<usize>) -> &'a [u8] {
    buf.get(r.clone()).unwrap_or(&[])
}

/// A header value as written, unfolded (CR and LF removed) and trimmed.
fn unfold(v: &[u8]) -> Vec<u8> {
    let out: Vec<u8> = v
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    trim(&out).to_vec()
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    v.get(start..end).unwrap_or(&[])
}

/// Raw values of the header fields named `name` (case-insensitive) in a part's header block,
/// by mail-parser's offsets (SEARCH).
fn raw_headers<'a>(raw: &'a [u8], part: &MessagePart<'_>, name: &str) -> Vec<&'a [u8]> {
    part.headers
        .iter()
        .filter(|h| h.name.as_str().eq_ignore_ascii_case(name))
        .map(|h| slice(raw, h.offset_start, h.offset_end))
        .collect()
}

// ---- header blocks -----------------------------------------------------------------------------

/// Whether `line` starts a header field: a name of printable characters other than `:`, then
/// (RFC 5322 §4.5.1's obsolete form) optional white space, then `:`.
fn is_field_line(line: &[u8]) -> bool {
    let name = line
        .iter()
        .take_while(|&&b| (33..=126).contains(&b) && b != b':')
        .count();
    let rest = line.get(name..).unwrap_or(&[]);
    let ws = rest
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    rest.get(ws) == Some(&b':')
}

/// Where the header block starting at `start` ends (after its empty line), at most `end`.
fn header_end(buf: &[u8], start: usize, end: usize) -> usize {
    let end = end.min(buf.len());
    let mut pos = start.min(end);
    while let Some(rest) = buf.get(pos..end).filter(|r| !r.is_empty()) {
        let line_end = memchr::memchr(b'\n', rest).map_or(end, |i| pos + i + 1);
        let line = bytes(buf, &(pos..line_end));
        if line == b"\n" || line == b"\r\n" {
            return line_end;
        }
        if !matches!(line.first(), Some(b' ' | b'\t')) && !is_field_line(line) {
            return pos;
        }
        pos = line_end;
    }
    end
}

/// The fields of a header block: name (trimmed) and raw value (folding kept), in order.
fn fields(block: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut spans: Vec<(&[u8], usize, usize)> = Vec::new();
    let mut pos = 0;
    for line in block.split_inclusive(|&b| b == b'\n') {
        let start = pos;
        pos += line.len();
        if line == b"\n" || line == b"\r\n" {
            break;
        }
        if matches!(line.first(), Some(b' ' | b'\t')) {
            if let Some(last) = spans.last_mut() {
                last.2 = pos;
            }
        } else if let Some(colon) = line.iter().position(|&b| b == b':') {
            spans.push((
                trim(line.get(..colon).unwrap_or(&[])),
                start + colon + 1,
                pos,
            ));
        }
    }
    spans
        .into_iter()
        .map(|(name, a, b)| (name, bytes(block, &(a..b))))
        .collect()
}

/// The first field named `name` (case-insensitive) of a header block, unfolded and trimmed.
fn field(block: &[u8], name: &str) -> Option<Vec<u8>> {
    fields(block)
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| unfold(v))
}

// ---- structured values (RFC 2045 Content-Type and friends) -------------------------------------

/// RFC 2045 `tspecials`.
const TSPECIALS: &[u8] = b"()<>@,;:\\\"/[]?=";

/// A cursor over an unfolded structured header value.
struct Lexer<'a> {
    v: &'a [u8],
    i: usize,
}

impl<'a> Lexer<'a> {
    fn new(v: &'a [u8]) -> Self {
        Lexer { v, i: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.v.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        self.i += usize::from(hit);
        hit
    }

    /// Skips white space and (nested, escaped) comments.
    fn cfws(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\r' | b'\n' => self.i += 1,
                b'(' => {
                    let mut depth = 0usize;
                    while let Some(c) = self.peek() {
                        self.i += 1;
                        match c {
                            b'\\' => self.i += 1,
                            b'(' => depth += 1,
                            b')' => {
                                depth = depth.saturating_sub(1);
                                if depth == 0 {
                                    break;
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => break,
            }
        }
        self.i = self.i.min(self.v.len());
    }

    /// An RFC 2045 `token` (a type, subtype or attribute name: ASCII only).
    fn token(&mut self) -> &'a [u8] {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c > b' ' && c < 0x7f && !TSPECIALS.contains(&c))
        {
            self.i += 1;
        }
        self.v.get(start..self.i).unwrap_or(&[])
    }

    /// A parameter value: a quoted string (unescaped), or an unquoted run. The run is read
    /// leniently, up to `;`, white space or a comment, because mailers write `name=a/b.pdf`
    /// and 8-bit names unquoted.
    fn value(&mut self) -> Vec<u8> {
        if self.eat(b'"') {
            let mut s = Vec::new();
            while let Some(c) = self.peek() {
                self.i += 1;
                match c {
                    b'"' => break,
                    b'\\' => {
                        if let Some(n) = self.peek() {
                            s.push(n);
                            self.i += 1;
                        }
                    }
                    b'\r' | b'\n' => {}
                    c => s.push(c),
                }
            }
            s
        } else {
            let start = self.i;
            while self
                .peek()
                .is_some_and(|c| !matches!(c, b';' | b' ' | b'\t' | b'\r' | b'\n' | b'(' | b'"'))
            {
                self.i += 1;
            }
            self.v.get(start..self.i).unwrap_or(&[]).to_vec()
        }
    }

    /// Skips past the next `c` (recovery from a malformed parameter).
    fn skip_past(&mut self, c: u8) {
        let rest = self.v.get(self.i..).unwrap_or(&[]);
        self.i = memchr::memchr(c, rest).map_or(self.v.len(), |p| self.i + p + 1);
    }
}

/// A parameter: name and value as written (continuations joined).
type Param = (Vec<u8>, Vec<u8>);

/// A parsed Content-Type (`type/subtype; params`) or Content-Disposition (`type; params`).
struct Media {
    ty: Vec<u8>,
    sub: Vec<u8>,
    params: Vec<Param>,
}

/// Parses a Content-Type (`with_subtype`) or Content-Disposition value; `None` when the type
/// (or subtype) is missing, the RFC 2045 §5.2 case of a field that cannot be used.
fn parse_media(v: &[u8], with_subtype: bool) -> Option<Media> {
    let mut lx = Lexer::new(v);
    lx.cfws();
    let ty = lx.token().to_vec();
    let mut sub = Vec::new();
    if with_subtype {
        lx.cfws();
        if !lx.eat(b'/') {
            return None;
        }
        lx.cfws();
        sub = lx.token().to_vec();
    }
    if ty.is_empty() || (with_subtype && sub.is_empty()) {
        return None;
    }
    let mut params = Vec::new();
    loop {
        lx.cfws();
        match lx.peek() {
            None => break,
            Some(b';') => {
                lx.i += 1;
                continue;
            }
            Some(_) => {}
        }
        let name = lx.token().to_vec();
        lx.cfws();
        if name.is_empty() || !lx.eat(b'=') {
            lx.skip_past(b';');
            continue;
        }
        lx.cfws();
        params.push((name, lx.value()));
        lx.cfws();
        if !matches!(lx.peek(), None | Some(b';')) {
            lx.skip_past(b';');
        }
    }
    Some(Media {
        ty,
        sub,
        params: join_continuations(params),
    })
}

/// RFC 2231 `attribute-char`: what an extended value may hold unencoded.
fn is_attribute_char(b: u8) -> bool {
    b > b' ' && b < 0x7f && !b"*'%".contains(&b) && !TSPECIALS.contains(&b)
}

/// Joins RFC 2231 continuations (`name*0`, `name*1*`, …) into one parameter, in section order,
/// where the first section appeared. If any section is extended (has a charset), the result is
/// `name*` with the value still percent-encoded (plain sections are percent-encoded into it);
/// otherwise `name` with the sections concatenated. Other parameters pass unchanged.
fn join_continuations(raw: Vec<Param>) -> Vec<Param> {
    /// A plain parameter, or the sections (number, extended, value) of a continued one.
    enum Slot {
        Plain(Param),
        Continued(Vec<u8>, Vec<(u32, bool, Vec<u8>)>),
    }
    let mut slots: Vec<Slot> = Vec::new();
    for (name, value) in raw {
        let (base, extended) = match name.strip_suffix(b"*") {
            Some(b) => (b, true),
            None => (name.as_slice(), false),
        };
        let section = base.iter().rposition(|&b| b == b'*').and_then(|star| {
            let digits = base.get(star + 1..)?;
            let n = std::str::from_utf8(digits).ok()?.parse::<u32>().ok()?;
            let base = base.get(..star).filter(|b| !b.is_empty())?;
            digits.iter().all(u8::is_ascii_digit).then_some((base, n))
        });
        let Some((base, n)) = section else {
            slots.push(Slot::Plain((name, value)));
            continue;
        };
        let at = slots
            .iter()
            .position(|s| matches!(s, Slot::Continued(b, _) if b.eq_ignore_ascii_case(base)));
        let at = at.unwrap_or_else(|| {
            slots.push(Slot::Continued(base.to_vec(), Vec::new()));
            slots.len() - 1
        });
        if let Some(Slot::Continued(_, sections)) = slots.get_mut(at)
            && !sections.iter().any(|s| s.0 == n)
        {
            sections.push((n, extended, value));
        }
    }
    slots
        .into_iter()
        .map(|slot| match slot {
            Slot::Plain(p) => p,
            Slot::Continued(mut name, mut sections) => {
                sections.sort_by_key(|s| s.0);
                let extended = sections.iter().any(|s| s.1);
                let mut value = Vec::new();
                for (i, (_, ext, v)) in sections.iter().enumerate() {
                    if !extended || *ext {
                        value.extend_from_slice(v);
                        continue;
                    }
                    if i == 0 {
                        // No charset'language' given: RFC 2231 leaves both empty.
                        value.extend_from_slice(b"''");
                    }
                    for &b in v {
                        if is_attribute_char(b) {
                            value.push(b);
                        } else {
                            value.extend_from_slice(format!("%{b:02X}").as_bytes());
                        }
                    }
                }
                if extended {
                    name.push(b'*');
                }
                (name, value)
            }
        })
        .collect()
}

/// The value of parameter `name`, decoded if given in RFC 2231 extended form (for `boundary`).
fn param(params: &[Param], name: &str) -> Option<Vec<u8>> {
    params.iter().find_map(|(n, v)| {
        if n.eq_ignore_ascii_case(name.as_bytes()) {
            return Some(v.clone());
        }
        let base = n.strip_suffix(b"*")?;
        if !base.eq_ignore_ascii_case(name.as_bytes()) {
            return None;
        }
        // charset'language'percent-encoded
        let mut quotes = v.iter().enumerate().filter(|(_, b)| **b == b'\'');
        let start = quotes.nth(1).map_or(0, |(i, _)| i + 1);
        Some(percent_decode(v.get(start..).unwrap_or(&[])))
    })
}

fn percent_decode(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while let Some(&b) = v.get(i) {
        let hex = v
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(h)) => {
                out.push(h);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// The transfer encoding's mechanism, upper-case; `None` when absent (7BIT, RFC 2045 §6.1).
fn transfer_encoding(header: &[u8]) -> Option<String> {
    let v = field(header, "Content-Transfer-Encoding")?;
    let mut lx = Lexer::new(&v);
    lx.cfws();
    let t = String::from_utf8_lossy(lx.token()).to_ascii_uppercase();
    (!t.is_empty()).then_some(t)
}

/// The body decoded from base64 or quoted-printable; `None` for other encodings or bad data.
fn decode(encoding: Option<&str>, body: &[u8]) -> Option<Vec<u8>> {
    match encoding {
        Some("BASE64") => base64_decode(body),
        Some("QUOTED-PRINTABLE") => quoted_printable_decode(body),
        _ => None,
    }
}

// ---- addresses ---------------------------------------------------------------------------------

#[derive(Debug, PartialEq)]
enum Tok {
    Word(Vec<u8>),
    Quoted(Vec<u8>),
    Angle(Vec<u8>),
    Special(u8),
    /// A comment's text, without its outer parentheses.
    Comment(Vec<u8>),
}

fn tokenize(v: &[u8]) -> Vec<Tok> {
    let mut toks = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let c = v[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'(' => {
                let start = i;
                let mut depth = 0;
                while i < v.len() {
                    match v[i] {
                        b'\\' => i += 1,
                        b'(' => depth += 1,
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                i += 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                let end = if depth == 0 { i - 1 } else { v.len() };
                toks.push(Tok::Comment(v[start + 1..end.max(start + 1)].to_vec()));
            }
            b'"' => {
                let mut s = Vec::new();
                i += 1;
                while i < v.len() && v[i] != b'"' {
                    if v[i] == b'\\' && i + 1 < v.len() {
                        i += 1;
                    }
                    s.push(v[i]);
                    i += 1;
                }
                i += 1;
                toks.push(Tok::Quoted(s));
            }
            b'<' => {
                let end = v[i..]
                    .iter()
                    .position(|&b| b == b'>')
                    .map_or(v.len(), |p| i + p);
                let inner: Vec<u8> = v[i + 1..end]
                    .iter()
                    .copied()
                    .filter(|b| !b.is_ascii_whitespace())
                    .collect();
                toks.push(Tok::Angle(inner));
                i = end + 1;
            }
            b',' | b':' | b';' | b'@' | b'.' | b'>' => {
                toks.push(Tok::Special(c));
                i += 1;
            }
            _ => {
                let start = i;
                while i < v.len()
                    && !matches!(
                        v[i],
                        b' ' | b'\t'
                            | b'\r'
                            | b'\n'
                            | b'('
                            | b'"'
                            | b'<'
                            | b','
                            | b':'
                            | b';'
                            | b'@'
                            | b'.'
                            | b'>'
                    )
                {
                    i += 1;
                }
                toks.push(Tok::Word(v[start..i].to_vec()));
            }
        }
    }
    toks
}

/// One ENVELOPE address: (name, route, mailbox, host); group markers have mailbox/host NIL.
type Addr = (
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
);

/// (route, mailbox, host) of an addr-spec.
type Spec = (Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>);

fn split_spec(spec: &[u8]) -> Spec {
    // Source route: `@a,@b:mailbox@host`.
    let (route, spec) = match (spec.first(), spec.iter().position(|&b| b == b':')) {
        (Some(b'@'), Some(colon)) => (Some(spec[..colon].to_vec()), &spec[colon + 1..]),
        _ => (None, spec),
    };
    match spec.iter().rposition(|&b| b == b'@') {
        Some(at) => (
            route,
            Some(spec[..at].to_vec()),
            Some(spec[at + 1..].to_vec()),
        ),
        None => (route, Some(spec.to_vec()), None),
    }
}

fn finish(item: &mut Vec<Tok>, out: &mut Vec<Addr>) {
    if item.is_empty() {
        return;
    }
    let angle = item.iter().position(|t| matches!(t, Tok::Angle(_)));
    if let Some(ai) = angle {
        let phrase: Vec<Vec<u8>> = item[..ai]
            .iter()
            .filter_map(|t| match t {
                Tok::Word(w) | Tok::Quoted(w) => Some(w.clone()),
                Tok::Special(b'.') => Some(b".".to_vec()),
                _ => None,
            })
            .collect();
        let name = (!phrase.is_empty()).then(|| phrase.join(&b' '));
        if let Tok::Angle(spec) = &item[ai] {
            let (route, mailbox, host) = split_spec(spec);
            out.push((name, route, mailbox, host));
        }
    } else {
        let mut spec = Vec::new();
        for t in item.iter() {
            match t {
                Tok::Word(w) => spec.extend_from_slice(w),
                Tok::Quoted(w) => {
                    spec.push(b'"');
                    spec.extend_from_slice(w);
                    spec.push(b'"');
                }
                Tok::Special(c) => spec.push(*c),
                Tok::Angle(_) | Tok::Comment(_) => {}
            }
        }
        // `user@example.org (Real Name)`: the old form of a display name. The trailing
        // comment becomes the name, as Dovecot and the clients reading it expect.
        let name = match item.last() {
            Some(Tok::Comment(c)) => Some(unfold(c)).filter(|c| !c.is_empty()),
            _ => None,
        };
        if !spec.is_empty() {
            let (route, mailbox, host) = split_spec(&spec);
            out.push((name, route, mailbox, host));
        }
    }
    item.clear();
}

/// One item of an address list: an address, or a group's start or end.
enum Item {
    Addr(Addr),
    GroupStart(Vec<u8>),
    GroupEnd,
}

/// Splits a raw address-list header value into addresses and group markers.
fn address_items(v: &[u8]) -> Vec<Item> {
    let mut out = Vec::new();
    let mut addrs = Vec::new();
    let mut item = Vec::new();
    let mut in_group = false;
    for t in tokenize(v) {
        match t {
            Tok::Special(b',') => finish(&mut item, &mut addrs),
            Tok::Special(b':') if !in_group && !item.iter().any(|t| matches!(t, Tok::Angle(_))) => {
                let name: Vec<Vec<u8>> = item
                    .drain(..)
                    .filter_map(|t| match t {
                        Tok::Word(w) | Tok::Quoted(w) => Some(w),
                        _ => None,
                    })
                    .collect();
                out.extend(addrs.drain(..).map(Item::Addr));
                out.push(Item::GroupStart(name.join(&b' ')));
                in_group = true;
            }
            Tok::Special(b';') if in_group => {
                finish(&mut item, &mut addrs);
                out.extend(addrs.drain(..).map(Item::Addr));
                out.push(Item::GroupEnd);
                in_group = false;
            }
            t => item.push(t),
        }
    }
    finish(&mut item, &mut addrs);
    out.extend(addrs.drain(..).map(Item::Addr));
    if in_group {
        out.push(Item::GroupEnd);
    }
    out
}

/// Splits a raw address-list header value into ENVELOPE addresses, with group markers.
fn addresses(v: &[u8]) -> Vec<Addr> {
    address_items(v)
        .into_iter()
        .map(|i| match i {
            Item::Addr(a) => a,
            Item::GroupStart(name) => (None, None, Some(name), None),
            Item::GroupEnd => (None, None, None, None),
        })
        .collect()
}

/// An address as SORT sees it: ENVELOPE's addr-name, addr-mailbox and addr-host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    /// The display name as written (RFC 2047 encoded-words not decoded).
    pub name: Option<Vec<u8>>,
    /// The local part.
    pub mailbox: Option<Vec<u8>>,
    /// The domain.
    pub host: Option<Vec<u8>>,
}

/// The first address of header `name` (RFC 5256 "the first From address"): group markers are
/// not addresses and are skipped, a group's members are.
pub fn first_address(msg: &Message<'_>, name: &str) -> Option<Address> {
    let v = first_header(msg, name)?;
    address_items(&v).into_iter().find_map(|i| match i {
        Item::Addr((name, _, mailbox, host)) => Some(Address {
            name,
            mailbox,
            host,
        }),
        _ => None,
    })
}

/// The first header field `name` of the message, unfolded and trimmed, as written.
pub fn first_header(msg: &Message<'_>, name: &str) -> Option<Vec<u8>> {
    let raw: &[u8] = &msg.raw_message;
    field(bytes(raw, &(0..header_end(raw, 0, raw.len()))), name)
}

/// Decodes RFC 2047 encoded-words in an unstructured header value to UTF-8 (whitespace
/// between adjacent encoded-words dropped, as RFC 2047 §6.2 says).
pub fn decode_words(raw: &[u8]) -> String {
    let mut v = raw.to_vec();
    v.push(b'\n');
    match mail_parser::parsers::MessageStream::new(&v).parse_unstructured() {
        HeaderValue::Text(t) => t.into_owned(),
        _ => String::new(),
    }
}

/// The Date header as milliseconds since the epoch, if present and valid.
pub fn sent_timestamp_ms(msg: &Message<'_>) -> Option<i64> {
    // `Message::date` indexes the first part, which a header-less message lacks.
    msg.parts.first()?;
    let d = msg.date().filter(|d| d.is_valid())?;
    d.to_timestamp().checked_mul(1000)
}

fn write_addresses(out: &mut Vec<u8>, v: Option<&[u8]>) {
    let list = v.map(addresses).unwrap_or_default();
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (name, route, mailbox, host) in list {
        out.push(b'(');
        write_nstr(out, name.as_deref());
        out.push(b' ');
        write_nstr(out, route.as_deref());
        out.push(b' ');
        write_nstr(out, mailbox.as_deref());
        out.push(b' ');
        write_nstr(out, host.as_deref());
        out.push(b')');
    }
    out.push(b')');
}

/// The ENVELOPE of the message whose header block is `header`, rendered.
fn envelope_of(header: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let h = |name: &str| field(header, name);
    out.push(b'(');
    write_nstr(&mut out, h("Date").as_deref());
    out.push(b' ');
    write_nstr(&mut out, h("Subject").as_deref());
    let from = h("From");
    for (i, name) in ["From", "Sender", "Reply-To", "To", "Cc", "Bcc"]
        .iter()
        .enumerate()
    {
        out.push(b' ');
        let mut v = h(name);
        // RFC 3501 §7.4.2: Sender and Reply-To default to From.
        if (i == 1 || i == 2) && v.as_ref().is_none_or(|v| addresses(v).is_empty()) {
            v = from.clone();
        }
        write_addresses(&mut out, v.as_deref());
    }
    out.push(b' ');
    write_nstr(&mut out, h("In-Reply-To").as_deref());
    out.push(b' ');
    write_nstr(&mut out, h("Message-ID").as_deref());
    out.push(b')');
    out
}

/// `ENVELOPE` for a raw message.
pub fn envelope(msg: &Message<'_>) -> Vec<u8> {
    let raw: &[u8] = &msg.raw_message;
    envelope_of(bytes(raw, &(0..header_end(raw, 0, raw.len()))))
}

// ---- structure ---------------------------------------------------------------------------------

/// What a MIME entity holds, for IMAP.
enum Body {
    /// A leaf: text, an attachment, or anything not descended into.
    Leaf,
    /// A multipart's parts (at least one).
    Multipart(Vec<Entity>),
    /// A message/rfc822 part's embedded message.
    Message(Box<Embedded>),
}

/// A message inside a message/rfc822 part.
struct Embedded {
    /// The part's decoded body when it was transfer-encoded; `None` when the message lies in
    /// the enclosing buffer, over the part's body range.
    decoded: Option<Vec<u8>>,
    /// The message as an entity: its header block, and its body up to the end of the part.
    root: Entity,
}

/// One MIME entity: where its header block and body lie in their buffer, and its type.
struct Entity {
    /// The header block, with its empty line.
    header: Range<usize>,
    /// The body: up to the line break before the next delimiter, or the end of the region.
    body: Range<usize>,
    /// Type and subtype as BODYSTRUCTURE shows them (upper-case).
    ty: String,
    sub: String,
    /// Content-Type parameters (empty: none, or a default type).
    params: Vec<Param>,
    kind: Body,
}

impl Entity {
    fn is(&self, ty: &str, sub: &str) -> bool {
        self.ty == ty && self.sub == sub
    }

    /// Makes this a leaf of type `ty/sub` without parameters (a default, or opaque).
    fn demote(&mut self, ty: &str, sub: &str) {
        ty.clone_into(&mut self.ty);
        sub.clone_into(&mut self.sub);
        self.params.clear();
        self.kind = Body::Leaf;
    }
}

/// Whether `line` is a delimiter line of `boundary`: `Some(true)` for the close delimiter.
fn delimiter(line: &[u8], boundary: &[u8]) -> Option<bool> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let rest = line.strip_prefix(b"--")?.strip_prefix(boundary)?;
    let (close, rest) = match rest.strip_prefix(b"--") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    rest.iter()
        .all(|&b| b == b' ' || b == b'\t')
        .then_some(close)
}

/// Splits a multipart body (`region` of `buf`) into its parts' ranges, at most `limit` of them
/// (the last then takes the rest). `None` when no delimiter line occurs at all.
fn split(
    buf: &[u8],
    region: Range<usize>,
    boundary: &[u8],
    limit: usize,
) -> Option<Vec<Range<usize>>> {
    let end = region.end.min(buf.len());
    let mut parts = Vec::new();
    let mut open: Option<usize> = None;
    let mut seen = false;
    let mut pos = region.start;
    while let Some(rest) = buf.get(pos..end).filter(|r| !r.is_empty()) {
        let line_end = memchr::memchr(b'\n', rest).map_or(end, |i| pos + i + 1);
        if let Some(close) = delimiter(bytes(buf, &(pos..line_end)), boundary) {
            seen = true;
            if let Some(start) = open.take()
                && start < pos
            {
                // The line break before the delimiter belongs to the delimiter.
                let crlf = bytes(buf, &(start..pos)).ends_with(b"\r\n");
                parts.push(start..pos - 1 - usize::from(crlf));
            }
            if close {
                return Some(parts);
            }
            if parts.len() + 1 >= limit {
                parts.push(line_end..end);
                return Some(parts);
            }
            open = Some(line_end);
        }
        pos = line_end;
    }
    if let Some(start) = open {
        parts.push(start..end);
    }
    seen.then_some(parts)
}

/// Splits a message into entities, counting them against [`MAX_PARTS`].
struct Splitter {
    budget: usize,
    /// IMAP4rev2 describes message/global (RFC 6532) as an embedded message too.
    global_is_message: bool,
}

/// Which IMAP revision's rules describe the structure: IMAP4rev2 (RFC 9051) treats
/// message/global like message/rfc822; IMAP4rev1 (RFC 3501) knows only message/rfc822 and
/// shows message/global as a basic part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Revision {
    /// RFC 3501.
    #[default]
    Rev1,
    /// RFC 9051.
    Rev2,
}

impl Splitter {
    /// The entity in `buf[start..end]`. `in_digest`: its parent is a multipart/digest;
    /// `decoded`: how many encoded messages enclose it.
    fn entity(
        &mut self,
        buf: &[u8],
        (start, end): (usize, usize),
        in_digest: bool,
        depth: usize,
        decoded: usize,
    ) -> Entity {
        self.budget = self.budget.saturating_sub(1);
        let end = end.min(buf.len());
        let start = start.min(end);
        let body_start = header_end(buf, start, end);
        let header = bytes(buf, &(start..body_start));
        let media = field(header, "Content-Type").and_then(|v| parse_media(&v, true));
        let upper = |v: &[u8]| String::from_utf8_lossy(v).to_ascii_uppercase();
        let (ty, sub, params) = match media {
            Some(m) => (upper(&m.ty), upper(&m.sub), m.params),
            None if in_digest => ("MESSAGE".to_owned(), "RFC822".to_owned(), Vec::new()),
            None => ("TEXT".to_owned(), "PLAIN".to_owned(), Vec::new()),
        };
        let mut e = Entity {
            header: start..body_start,
            body: body_start..end,
            ty,
            sub,
            params,
            kind: Body::Leaf,
        };
        let opaque = depth >= MAX_DEPTH || self.budget == 0;
        if e.ty == "MULTIPART" {
            let boundary = param(&e.params, "boundary").map(|b| trim(&b).to_vec());
            let parts = boundary
                .filter(|b| !b.is_empty() && !opaque)
                .and_then(|b| split(buf, e.body.clone(), &b, self.budget));
            match parts {
                _ if opaque => e.demote("APPLICATION", "OCTET-STREAM"),
                Some(parts) if !parts.is_empty() => {
                    let digest = e.sub == "DIGEST";
                    let children = parts
                        .into_iter()
                        .map(|r| self.entity(buf, (r.start, r.end), digest, depth + 1, decoded))
                        .collect();
                    e.kind = Body::Multipart(children);
                }
                _ => e.demote("TEXT", "PLAIN"),
            }
        } else if e.is("MESSAGE", "RFC822") || (self.global_is_message && e.is("MESSAGE", "GLOBAL"))
        {
            let body = bytes(buf, &e.body);
            match transfer_encoding(header).as_deref() {
                _ if opaque => e.demote("APPLICATION", "OCTET-STREAM"),
                None | Some("7BIT" | "8BIT" | "BINARY") => {
                    let root = self.entity(buf, (body_start, end), false, depth + 1, decoded);
                    e.kind = Body::Message(Box::new(Embedded {
                        decoded: None,
                        root,
                    }));
                }
                enc => match decode(enc, body).filter(|_| decoded < MAX_DECODED) {
                    Some(d) => {
                        let root = self.entity(&d, (0, d.len()), false, depth + 1, decoded + 1);
                        e.kind = Body::Message(Box::new(Embedded {
                            decoded: Some(d),
                            root,
                        }));
                    }
                    // Undecodable, or an unknown encoding: nothing to describe inside.
                    None => e.demote("APPLICATION", "OCTET-STREAM"),
                },
            }
        }
        e
    }
}

/// The structure of the message in `raw`.
fn structure(raw: &[u8], rev: Revision) -> Entity {
    Splitter {
        budget: MAX_PARTS,
        global_is_message: rev == Revision::Rev2,
    }
    .entity(raw, (0, raw.len()), false, 0, 0)
}

/// Size in lines as BODYSTRUCTURE counts them: line feeds, plus an unterminated last line.
fn lines(body: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', body).count()
        + usize::from(!body.is_empty() && !body.ends_with(b"\n"))
}

// ---- writing -----------------------------------------------------------------------------------

/// Writes an IMAP `string` (a literal when 8-bit), without NUL bytes, which none may hold.
fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    if s.contains(&0) {
        let clean: Vec<u8> = s.iter().copied().filter(|&b| b != 0).collect();
        write_string(out, &clean, WriteOptions::default());
    } else {
        write_string(out, s, WriteOptions::default());
    }
}

fn write_nstr(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => write_str(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

fn write_params(out: &mut Vec<u8>, params: &[Param]) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        write_str(out, name);
        out.push(b' ');
        write_str(out, value);
    }
    out.push(b')');
}

/// Disposition, language and location: the extension data every part ends with.
fn write_ext_tail(out: &mut Vec<u8>, header: &[u8]) {
    out.push(b' ');
    match field(header, "Content-Disposition").and_then(|v| parse_media(&v, false)) {
        Some(d) => {
            out.push(b'(');
            write_str(out, &d.ty);
            out.push(b' ');
            write_params(out, &d.params);
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    let mut tags = Vec::new();
    if let Some(v) = field(header, "Content-Language") {
        let mut lx = Lexer::new(&v);
        loop {
            lx.cfws();
            let tag = lx.token();
            if !tag.is_empty() {
                tags.push(tag.to_vec());
            }
            lx.cfws();
            if lx.peek().is_none() {
                break;
            }
            lx.skip_past(b',');
        }
    }
    if tags.is_empty() {
        out.extend_from_slice(b"NIL");
    } else {
        out.push(b'(');
        for (i, t) in tags.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            write_str(out, t);
        }
        out.push(b')');
    }
    out.push(b' ');
    write_nstr(out, field(header, "Content-Location").as_deref());
}

/// Writes entity `e` of `buf` as RFC 3501 `body`: `body-type-mpart`, or `body-type-1part` as
/// `body-type-msg` (message/rfc822), `body-type-text` (TEXT/*) or `body-type-basic`.
fn write_entity(out: &mut Vec<u8>, buf: &[u8], e: &Entity, ext: bool) {
    let header = bytes(buf, &e.header);
    out.push(b'(');
    if let Body::Multipart(parts) = &e.kind {
        for p in parts {
            write_entity(out, buf, p, ext);
        }
        out.push(b' ');
        write_str(out, e.sub.as_bytes());
        if ext {
            out.push(b' ');
            write_params(out, &e.params);
            write_ext_tail(out, header);
        }
        out.push(b')');
        return;
    }
    write_str(out, e.ty.as_bytes());
    out.push(b' ');
    write_str(out, e.sub.as_bytes());
    out.push(b' ');
    if e.params.is_empty() && e.ty == "TEXT" {
        // RFC 2045 §5.2's default.
        out.extend_from_slice(b"(\"CHARSET\" \"US-ASCII\")");
    } else {
        write_params(out, &e.params);
    }
    for name in ["Content-ID", "Content-Description"] {
        out.push(b' ');
        write_nstr(out, field(header, name).as_deref());
    }
    out.push(b' ');
    let encoding = transfer_encoding(header);
    write_str(out, encoding.as_deref().unwrap_or("7BIT").as_bytes());
    let body = bytes(buf, &e.body);
    out.extend_from_slice(format!(" {}", body.len()).as_bytes());
    match &e.kind {
        Body::Message(m) => {
            let inner = m.decoded.as_deref().unwrap_or(buf);
            out.push(b' ');
            out.extend_from_slice(&envelope_of(bytes(inner, &m.root.header)));
            out.push(b' ');
            write_entity(out, inner, &m.root, ext);
            out.extend_from_slice(format!(" {}", lines(body)).as_bytes());
        }
        _ if e.ty == "TEXT" => out.extend_from_slice(format!(" {}", lines(body)).as_bytes()),
        _ => {}
    }
    if ext {
        out.push(b' ');
        write_nstr(out, field(header, "Content-MD5").as_deref());
        write_ext_tail(out, header);
    }
    out.push(b')');
}

/// What FETCH answers about a message from its header and structure alone, rendered under one
/// [`Revision`]: equal to what [`envelope`], [`body_structure_for`] and [`section_for`]'s
/// `HEADER`, `HEADER.FIELDS` and `HEADER.FIELDS.NOT` give for the whole message. BODY and
/// BODYSTRUCTURE need a split of the whole message, which a FETCH of only ENVELOPE or header
/// fields need not pay: they are rendered the first time one is asked for
/// ([`Summary::render_structure`]) and kept from then on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The top-level header block, its empty line included (`BODY[HEADER]`).
    pub header: Vec<u8>,
    /// ENVELOPE.
    pub envelope: Vec<u8>,
    /// BODY and BODYSTRUCTURE, once rendered.
    structure: std::sync::OnceLock<(Vec<u8>, Vec<u8>)>,
}

/// Bytes a summary counts for its BODY and BODYSTRUCTURE before they are rendered, so that a
/// cache bounded by weight stays near its bound when they are.
const STRUCTURE_RESERVE: usize = 1024;

impl Summary {
    /// Bytes held (with room for a later BODY and BODYSTRUCTURE), for a cache's bound.
    pub fn weight(&self) -> usize {
        let structure = self
            .structure
            .get()
            .map_or(STRUCTURE_RESERVE, |(b, s)| b.len() + s.len());
        self.header.len() + self.envelope.len() + structure
    }

    /// BODYSTRUCTURE (`ext`) or BODY, if rendered yet.
    pub fn body(&self, ext: bool) -> Option<&[u8]> {
        self.structure
            .get()
            .map(|(body, bs)| if ext { bs.as_slice() } else { body.as_slice() })
    }

    /// Renders BODY and BODYSTRUCTURE from the message's bytes under `rev`, unless done.
    pub fn render_structure(&self, raw: &[u8], rev: Revision) {
        self.structure.get_or_init(|| {
            let root = structure(raw, rev);
            let mut body = Vec::new();
            write_entity(&mut body, raw, &root, false);
            let mut body_structure = Vec::new();
            write_entity(&mut body_structure, raw, &root, true);
            (body, body_structure)
        });
    }

    /// `BODY[HEADER]`, `BODY[HEADER.FIELDS (…)]` or `BODY[HEADER.FIELDS.NOT (…)]` of the
    /// message; `None` for a section that needs more than the top-level header.
    pub fn header_section(&self, section: &Section) -> Option<Vec<u8>> {
        if !section.part.is_empty() {
            return None;
        }
        match section.text.as_ref()? {
            SectionText::Header => Some(self.header.clone()),
            SectionText::HeaderFields(names) => Some(filter_headers(&self.header, names, false)),
            SectionText::HeaderFieldsNot(names) => Some(filter_headers(&self.header, names, true)),
            SectionText::Text | SectionText::Mime => None,
        }
    }
}

/// The header part of a [`Summary`] of `raw`: its header block and ENVELOPE, from the header
/// alone (no revision's rules enter them).
pub fn header_summary(raw: &[u8]) -> Summary {
    let header = bytes(raw, &(0..header_end(raw, 0, raw.len())));
    Summary {
        header: header.to_vec(),
        envelope: envelope_of(header),
        structure: std::sync::OnceLock::new(),
    }
}

/// The whole [`Summary`] of `raw` under `rev`'s rules.
pub fn summary(raw: &[u8], rev: Revision) -> Summary {
    let s = header_summary(raw);
    s.render_structure(raw, rev);
    s
}

/// `BODYSTRUCTURE` (`ext`) or `BODY` for a parsed message.
pub fn body_structure(msg: &Message<'_>, ext: bool) -> Vec<u8> {
    body_structure_for(msg, ext, Revision::Rev1)
}

/// [`body_structure`] under `rev`'s rules.
pub fn body_structure_for(msg: &Message<'_>, ext: bool, rev: Revision) -> Vec<u8> {
    let raw: &[u8] = &msg.raw_message;
    let mut out = Vec::new();
    write_entity(&mut out, raw, &structure(raw, rev), ext);
    out
}

/// The BODYSTRUCTURE of part `numbers` of a message (the whole message when empty): what
/// URLFETCH's `BODYPARTSTRUCTURE` returns (RFC 5524 §3.1). `None` for a missing part.
pub fn part_structure(msg: &Message<'_>, numbers: &[u32]) -> Option<Vec<u8>> {
    let raw: &[u8] = &msg.raw_message;
    let root = structure(raw, Revision::Rev1);
    let mut out = Vec::new();
    if numbers.is_empty() {
        write_entity(&mut out, raw, &root, true);
    } else {
        let (buf, part) = locate(raw, &root, numbers)?;
        write_entity(&mut out, buf, part, true);
    }
    Some(out)
}

// ---- sections ----------------------------------------------------------------------------------

/// Part `n` of a message whose root entity is `root` (RFC 3501 §6.4.5): a part of its
/// multipart, or, for a message that is not multipart, its body as part 1.
fn part_of_message(root: &Entity, n: u32) -> Option<&Entity> {
    match &root.kind {
        Body::Multipart(parts) => parts.get((n as usize).checked_sub(1)?),
        _ => (n == 1).then_some(root),
    }
}

/// Finds the part named by `numbers`, with the buffer its ranges refer to.
fn locate<'a>(raw: &'a [u8], root: &'a Entity, numbers: &[u32]) -> Option<(&'a [u8], &'a Entity)> {
    let (&first, rest) = numbers.split_first()?;
    let mut at = (raw, part_of_message(root, first)?);
    for &n in rest {
        let (buf, e) = at;
        at = match &e.kind {
            Body::Multipart(parts) => (buf, parts.get((n as usize).checked_sub(1)?)?),
            Body::Message(m) => {
                let inner = m.decoded.as_deref().unwrap_or(buf);
                (inner, part_of_message(&m.root, n)?)
            }
            Body::Leaf => return None,
        };
    }
    Some(at)
}

/// Header lines of `block` whose names are (or, with `not`, are not) in `names` (upper-case),
/// followed by the blank line.
fn filter_headers(block: &[u8], names: &[String], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut keep = false;
    for line in block.split_inclusive(|&b| b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if !matches!(line.first(), Some(b' ' | b'\t')) {
            let name = line.split(|&b| b == b':').next().unwrap_or(&[]);
            let name = String::from_utf8_lossy(name).trim().to_ascii_uppercase();
            keep = names.contains(&name) != not;
        }
        if keep {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// HEADER, TEXT or HEADER.FIELDS of the message whose root entity is `root`.
fn message_text(buf: &[u8], root: &Entity, text: &SectionText) -> Vec<u8> {
    let header = bytes(buf, &root.header);
    match text {
        SectionText::Header | SectionText::Mime => header.to_vec(),
        SectionText::Text => bytes(buf, &root.body).to_vec(),
        SectionText::HeaderFields(names) => filter_headers(header, names, false),
        SectionText::HeaderFieldsNot(names) => filter_headers(header, names, true),
    }
}

/// The bytes of `BODY[section]`, or `None` when the section does not exist.
pub fn section(msg: &Message<'_>, section: &Section) -> Option<Vec<u8>> {
    section_for(msg, section, Revision::Rev1)
}

/// [`section`] under `rev`'s rules.
pub fn section_for(msg: &Message<'_>, section: &Section, rev: Revision) -> Option<Vec<u8>> {
    let raw: &[u8] = &msg.raw_message;
    let root = structure(raw, rev);
    if section.part.is_empty() {
        return Some(match &section.text {
            None => raw.to_vec(),
            Some(t) => message_text(raw, &root, t),
        });
    }
    let (buf, part) = locate(raw, &root, &section.part)?;
    match &section.text {
        None => Some(bytes(buf, &part.body).to_vec()),
        Some(SectionText::Mime) => Some(bytes(buf, &part.header).to_vec()),
        Some(t) => match &part.kind {
            Body::Message(m) => Some(message_text(
                m.decoded.as_deref().unwrap_or(buf),
                &m.root,
                t,
            )),
            _ => None,
        },
    }
}

/// The content of part `numbers` with its transfer encoding undone (BINARY, RFC 3516): octets,
/// not charset-converted text. `None` for a multipart or missing part.
pub fn binary(msg: &Message<'_>, numbers: &[u32]) -> Option<Vec<u8>> {
    binary_for(msg, numbers, Revision::Rev1)
}

/// [`binary`] under `rev`'s rules.
pub fn binary_for(msg: &Message<'_>, numbers: &[u32], rev: Revision) -> Option<Vec<u8>> {
    let raw: &[u8] = &msg.raw_message;
    if numbers.is_empty() {
        return Some(raw.to_vec());
    }
    let root = structure(raw, rev);
    let (buf, part) = locate(raw, &root, numbers)?;
    let body = bytes(buf, &part.body);
    match &part.kind {
        Body::Multipart(_) => None,
        Body::Message(m) => Some(m.decoded.clone().unwrap_or_else(|| body.to_vec())),
        Body::Leaf => {
            let encoding = transfer_encoding(bytes(buf, &part.header));
            Some(decode(encoding.as_deref(), body).unwrap_or_else(|| body.to_vec()))
        }
    }
}

// ---- search ------------------------------------------------------------------------------------

/// Case-insensitive substring test (ASCII and Unicode lower-casing).
pub fn contains_ci(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// The text a SEARCH header key looks in: every field named `name`, raw and RFC 2047-decoded.
pub fn header_text(msg: &Message<'_>, name: &str) -> Option<String> {
    let root = msg.parts.first()?;
    let raws = raw_headers(&msg.raw_message, root, name);
    if raws.is_empty() {
        return None;
    }
    let mut s = String::new();
    for r in raws {
        s.push_str(&String::from_utf8_lossy(&unfold(r)));
        s.push('\n');
    }
    for h in root
        .headers
        .iter()
        .filter(|h| h.name.as_str().eq_ignore_ascii_case(name))
    {
        match &h.value {
            HeaderValue::Text(t) => s.push_str(t),
            HeaderValue::TextList(l) => s.push_str(&l.join(" ")),
            HeaderValue::Address(a) => {
                for addr in a.iter() {
                    if let Some(n) = &addr.name {
                        s.push_str(n);
                        s.push(' ');
                    }
                    if let Some(e) = &addr.address {
                        s.push_str(e);
                        s.push(' ');
                    }
                }
            }
            _ => {}
        }
        s.push('\n');
    }
    Some(s)
}

/// The decoded text of the message's text parts, nested messages included (SEARCH BODY).
pub fn body_text(msg: &Message<'_>) -> String {
    let mut s = String::new();
    collect_text(msg, &mut s, 0);
    s
}

fn collect_text(msg: &Message<'_>, s: &mut String, depth: usize) {
    for p in &msg.parts {
        match &p.body {
            PartType::Text(t) | PartType::Html(t) => {
                s.push_str(t);
                s.push('\n');
            }
            PartType::Message(nested) if depth < MAX_DEPTH => {
                s.push_str(&header_block_text(nested));
                collect_text(nested, s, depth + 1);
            }
            _ => {}
        }
    }
}

/// The header block of part `idx` by mail-parser's offsets (SEARCH).
fn header_block<'a>(msg: &'a Message<'_>, idx: usize) -> &'a [u8] {
    match msg.parts.get(idx) {
        Some(p) => slice(&msg.raw_message, p.offset_header, p.offset_body),
        None => &[],
    }
}

/// The whole header block as text (SEARCH TEXT looks there too).
pub fn header_block_text(msg: &Message<'_>) -> String {
    String::from_utf8_lossy(header_block(msg, 0)).into_owned()
}

/// The Date header as a calendar date (SENTBEFORE/SENTON/SENTSINCE).
pub fn sent_date(msg: &Message<'_>) -> Option<chrono::NaiveDate> {
    // `Message::date` indexes the first part, which a header-less message lacks.
    msg.parts.first()?;
    let d = msg.date()?;
    chrono::NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NESTED: &[u8] = b"From: \"Doe, John\" <john@example.org>\r\nTo: a@b.c, Team: x@y.z, <p@q.r>;\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800\r\nMessage-ID: <1@x>\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\npre\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n--XX\r\nContent-Type: message/rfc822\r\n\r\nFrom: c@d\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n--YY\r\nContent-Type: text/plain\r\n\r\ninner text\r\n--YY--\r\n\r\n--XX--\r\n";

    fn s(v: Vec<u8>) -> String {
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn a_trailing_comment_is_the_name_of_a_bare_address() {
        let names = |v: &[u8]| -> Vec<Option<String>> {
            addresses(v).into_iter().map(|a| a.0.map(s)).collect()
        };
        assert_eq!(
            names(b"user@example.org (Real Name)"),
            [Some("Real Name".to_owned())]
        );
        assert_eq!(
            names(b"a@b.c (A (nested)), c@d.e, (lead) f@g.h, x@y.z ()"),
            [Some("A (nested)".to_owned()), None, None, None]
        );
        // A phrase wins over a comment.
        assert_eq!(
            names(b"Jo (work) <jo@example.org>"),
            [Some("Jo".to_owned())]
        );
        // An unterminated comment does not panic and yields no address part.
        assert_eq!(addresses(b"a@b.c (open").len(), 1);
    }

    #[test]
    fn envelope_keeps_raw_values_and_groups() {
        let m = parse(NESTED).unwrap();
        assert_eq!(
            s(envelope(&m)),
            "(\"Mon, 7 Feb 1994 21:52:25 -0800\" \"=?utf-8?q?caf=C3=A9?=\" \
             ((\"Doe, John\" NIL \"john\" \"example.org\")) \
             ((\"Doe, John\" NIL \"john\" \"example.org\")) \
             ((\"Doe, John\" NIL \"john\" \"example.org\")) \
             ((NIL NIL \"a\" \"b.c\")(NIL NIL \"Team\" NIL)(NIL NIL \"x\" \"y.z\")(NIL NIL \"p\" \"q.r\")(NIL NIL NIL NIL)) \
             NIL NIL NIL \"<1@x>\")"
        );
    }

    #[test]
    fn sections_and_structure() {
        let m = parse(NESTED).unwrap();
        let sec = |part: &[u32], text: Option<SectionText>| {
            section(
                &m,
                &Section {
                    part: part.to_vec(),
                    text,
                },
            )
            .map(s)
        };
        assert_eq!(sec(&[1], None).unwrap(), "hello");
        assert_eq!(
            sec(&[1], Some(SectionText::Mime)).unwrap(),
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        );
        assert_eq!(sec(&[2, 1], None).unwrap(), "inner text");
        assert!(
            sec(&[2], Some(SectionText::Header))
                .unwrap()
                .starts_with("From: c@d\r\n")
        );
        assert!(sec(&[3], None).is_none());
        assert!(sec(&[1, 1], None).is_none());
        assert_eq!(
            sec(&[], Some(SectionText::HeaderFields(vec!["SUBJECT".into()]))).unwrap(),
            "Subject: =?utf-8?q?caf=C3=A9?=\r\n\r\n"
        );
        let bs = s(body_structure(&m, true));
        assert!(bs.starts_with("((\"TEXT\" \"PLAIN\" (\"charset\" \"utf-8\") NIL NIL \"7BIT\" 5 1 NIL NIL NIL NIL)(\"MESSAGE\" \"RFC822\""), "{bs}");
        assert!(
            bs.ends_with(" \"MIXED\" (\"boundary\" \"XX\") NIL NIL NIL)"),
            "{bs}"
        );
        let simple = parse(b"Subject: x\r\n\r\nbody\r\n").unwrap();
        assert_eq!(
            section(
                &simple,
                &Section {
                    part: vec![1],
                    text: None
                }
            )
            .map(s)
            .unwrap(),
            "body\r\n"
        );
        assert_eq!(
            s(body_structure(&simple, false)),
            "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 6 1)"
        );
    }

    fn structure_of(raw: &[u8]) -> String {
        s(body_structure(&parse(raw).unwrap(), false))
    }

    #[test]
    fn parameters_keep_encoded_words_and_join_rfc2231_continuations() {
        // RFC 2045's own example: a comment after the value is not part of it.
        let m = parse_media(b"text/plain; charset=us-ascii (Plain text)", true).unwrap();
        assert_eq!(m.params, [(b"charset".to_vec(), b"us-ascii".to_vec())]);
        // RFC 2047 §5: no encoded-words in parameters, so none is decoded.
        let m = parse_media(b"application/x; name=\"=?utf-8?q?a=C3=A9?=\"", true).unwrap();
        assert_eq!(m.params[0].1, b"=?utf-8?q?a=C3=A9?=");
        // RFC 2231 §3 and §4: sections joined in order; an extended one keeps its charset and
        // percent-encoding, plain sections joining it are percent-encoded.
        let m = parse_media(
            b"attachment; b*1=\" two\"; a=1; b*0=\"one\"; c*0*=utf-8'en'%E2%82%AC; c*1=\" x\"",
            false,
        )
        .unwrap();
        let params: Vec<(String, String)> =
            m.params.into_iter().map(|(n, v)| (s(n), s(v))).collect();
        assert_eq!(
            params,
            [
                ("b".to_owned(), "one two".to_owned()),
                ("a".to_owned(), "1".to_owned()),
                ("c*".to_owned(), "utf-8'en'%E2%82%AC%20x".to_owned()),
            ]
        );
        assert_eq!(
            param(
                &[(b"boundary*".to_vec(), b"us-ascii''a%20b".to_vec())],
                "BOUNDARY"
            ),
            Some(b"a b".to_vec())
        );
        // No type, no subtype: not a usable Content-Type.
        assert!(parse_media(b"text", true).is_none());
        assert!(parse_media(b"/plain", true).is_none());
        assert!(parse_media(b"; charset=x", false).is_none());
    }

    #[test]
    fn delimiters_match_whole_lines_only() {
        assert_eq!(delimiter(b"--ab\r\n", b"ab"), Some(false));
        assert_eq!(delimiter(b"--ab-- \t\r\n", b"ab"), Some(true));
        assert_eq!(delimiter(b"--ab", b"ab"), Some(false));
        // A longer boundary that starts with this one is another boundary.
        assert_eq!(delimiter(b"--abc\r\n", b"ab"), None);
        assert_eq!(delimiter(b"--ab--x\r\n", b"ab"), None);
        assert_eq!(delimiter(b" --ab\r\n", b"ab"), None);
        // Delimiter lines with nothing between make no part; the line break before a
        // delimiter is the delimiter's.
        let body = b"pre\r\n--b\r\n--b\r\nA: 1\r\n\r\nx\r\n\r\n--b--\r\nepi";
        let parts = split(body, 0..body.len(), b"b", MAX_PARTS).unwrap();
        let parts: Vec<&[u8]> = parts.iter().map(|r| bytes(body, r)).collect();
        assert_eq!(parts, [b"A: 1\r\n\r\nx\r\n".as_slice()]);
        assert!(split(b"no delimiter\r\n", 0..15, b"b", MAX_PARTS).is_none());
    }

    #[test]
    fn a_header_ends_at_its_empty_line_or_at_a_line_that_is_no_field() {
        let m = b"A: 1\r\n folded\r\nB : 2\r\n\r\nbody";
        assert_eq!(header_end(m, 0, m.len()), 24);
        let m = b"A: 1\r\nnot a field\r\n";
        assert_eq!(header_end(m, 0, m.len()), 6);
        assert_eq!(header_end(b"A: 1", 0, 4), 4);
        assert_eq!(header_end(b"\nbody", 0, 5), 1);
    }

    #[test]
    fn odd_content_types_give_grammatical_structures() {
        // Missing boundary, boundary never used, unparsable type: RFC 2045 §5.2's text/plain.
        for ct in [
            "multipart/mixed",
            "multipart/mixed; boundary=zz",
            "multipart/mixed; boundary=\"\"",
            "text",
        ] {
            let raw = format!("Content-Type: {ct}\r\n\r\n--b\r\nx\r\n--b--\r\n");
            assert_eq!(
                structure_of(raw.as_bytes()),
                "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 15 3)",
                "{ct}"
            );
        }
        // message/rfc822 with an encoding that cannot be undone: an opaque leaf, never a
        // MESSAGE without envelope.
        let raw =
            b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin";
        assert_eq!(
            structure_of(raw),
            "(\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"X-UUENCODE\" 5)"
        );
        // message/global is not RFC 3501's body-type-msg: basic.
        let raw = b"Content-Type: message/global\r\n\r\nSubject: x\r\n\r\ny";
        assert_eq!(
            structure_of(raw),
            "(\"MESSAGE\" \"GLOBAL\" NIL NIL NIL \"7BIT\" 15)"
        );
        // No header at all, and NULs, which no IMAP string may hold.
        assert_eq!(
            structure_of(b""),
            "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0)"
        );
        let raw = b"Content-Type: text/plain; name=\"a\0b\"\r\n\r\n";
        assert!(structure_of(raw).contains("(\"name\" \"ab\")"));
    }

    #[test]
    fn binary_undoes_the_transfer_encoding_only() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
            Content-Type: text/plain; charset=iso-8859-1\r\n\
            Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9\r\n--b\r\n\
            Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nx\r\n--b--\r\n";
        let m = parse(raw).unwrap();
        // Octets, not text converted to UTF-8.
        assert_eq!(binary(&m, &[1]).unwrap(), b"caf\xe9");
        // The embedded message, not the whole buffer it lies in.
        assert_eq!(binary(&m, &[2]).unwrap(), b"Subject: in\r\n\r\nx");
        assert_eq!(binary(&m, &[2, 1]).unwrap(), b"x");
        assert!(binary(&m, &[3]).is_none());
        assert_eq!(sent_date(&parse(b"").unwrap()), None);
    }

    #[test]
    fn search_text() {
        let m = parse(NESTED).unwrap();
        assert!(contains_ci(&header_text(&m, "subject").unwrap(), "CAFÉ"));
        assert!(contains_ci(&header_text(&m, "From").unwrap(), "doe"));
        assert!(header_text(&m, "Cc").is_none());
        assert!(contains_ci(&body_text(&m), "INNER TEXT"));
    }
}
