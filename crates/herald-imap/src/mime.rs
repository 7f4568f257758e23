//! Message structure for FETCH and SEARCH: ENVELOPE, BODY/BODYSTRUCTURE, `BODY[section]`,
//! header and text matching.
//!
//! `mail-parser` 0.11 (STACK §3) finds the MIME parts and their byte offsets; everything IMAP
//! shows is then taken from the **raw bytes** at those offsets, never from decoded values:
//! ENVELOPE strings keep their RFC 2047 encoded-words and address phrases as written (clients
//! decode them; imaptest compares exact strings), sizes and line counts are of the encoded
//! body as stored. Addresses are split here by a small RFC 5322 tokenizer over the raw value
//! (groups, quoted phrases, comments, angle addresses, source routes).
//!
//! The message is parsed on every FETCH that needs structure, from the bytes `read_message`
//! returns. That is simple and fast enough for now (a 2 KiB message parses in microseconds); a
//! metadata record computed once at delivery, as Stalwart keeps, would save the work later.
//!
//! Offsets: for a nested `message/rfc822` part that is not transfer-encoded, mail-parser keeps
//! the outer buffer with absolute offsets; for an encoded one, the decoded bytes with their own
//! offsets. Using each nested message's own `raw_message` with its own parts' offsets is right
//! in both cases.

use crate::proto::command::{Section, SectionText};
use crate::proto::response::{WriteOptions, write_nstring, write_string};
use mail_parser::{HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType};

/// Deepest MIME nesting rendered; deeper structure is cut off (BODYSTRUCTURE stays finite and
/// the stack bounded whatever a message contains).
const MAX_DEPTH: usize = 32;

/// Parses a message (never fails: unparsable input is treated as a header-less text body).
pub fn parse(raw: &[u8]) -> Option<Message<'_>> {
    MessageParser::default().parse(raw)
}

fn slice(raw: &[u8], a: u32, b: u32) -> &[u8] {
    let (a, b) = (a as usize, b as usize);
    raw.get(a.min(raw.len())..b.min(raw.len()).max(a.min(raw.len())))
        .unwrap_or(&[])
}

/// A header value as written, unfolded (CRLF before whitespace removed) and trimmed.
fn unfold(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        match v[i] {
            b'\r' | b'\n' => {}
            b => out.push(b),
        }
        i += 1;
    }
    let start = out
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(out.len());
    let end = out
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    out[start..end].to_vec()
}

/// Raw values of the header fields named `name` (case-insensitive) in a part's header block.
fn raw_headers<'a>(raw: &'a [u8], part: &MessagePart<'_>, name: &str) -> Vec<&'a [u8]> {
    part.headers
        .iter()
        .filter(|h| h.name.as_str().eq_ignore_ascii_case(name))
        .map(|h| slice(raw, h.offset_start, h.offset_end))
        .collect()
}

fn first_raw(raw: &[u8], part: &MessagePart<'_>, name: &str) -> Option<Vec<u8>> {
    raw_headers(raw, part, name).first().map(|v| unfold(v))
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
    first_raw(&msg.raw_message, msg.parts.first()?, name)
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
    let d = msg.date().filter(|d| d.is_valid())?;
    d.to_timestamp().checked_mul(1000)
}

fn write_addresses(out: &mut Vec<u8>, v: Option<&[u8]>) {
    let o = WriteOptions::default();
    let list = v.map(addresses).unwrap_or_default();
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (name, route, mailbox, host) in list {
        out.push(b'(');
        write_nstring(out, name.as_deref(), o);
        out.push(b' ');
        write_nstring(out, route.as_deref(), o);
        out.push(b' ');
        write_nstring(out, mailbox.as_deref(), o);
        out.push(b' ');
        write_nstring(out, host.as_deref(), o);
        out.push(b')');
    }
    out.push(b')');
}

/// The ENVELOPE of the message whose root part is `parts[0]` in `raw`, rendered.
fn envelope_of(msg: &Message<'_>) -> Vec<u8> {
    let raw: &[u8] = &msg.raw_message;
    let mut out = Vec::new();
    let o = WriteOptions::default();
    let Some(root) = msg.parts.first() else {
        out.extend_from_slice(b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
        return out;
    };
    let h = |name: &str| first_raw(raw, root, name);
    out.push(b'(');
    write_nstring(&mut out, h("Date").as_deref(), o);
    out.push(b' ');
    write_nstring(&mut out, h("Subject").as_deref(), o);
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
    write_nstring(&mut out, h("In-Reply-To").as_deref(), o);
    out.push(b' ');
    write_nstring(&mut out, h("Message-ID").as_deref(), o);
    out.push(b')');
    out
}

/// `ENVELOPE` for a raw message.
pub fn envelope(msg: &Message<'_>) -> Vec<u8> {
    envelope_of(msg)
}

// ---- body structure ----------------------------------------------------------------------------

fn write_str(out: &mut Vec<u8>, s: &str) {
    write_string(out, s.as_bytes(), WriteOptions::default());
}

fn write_params(out: &mut Vec<u8>, attrs: Option<&Vec<mail_parser::Attribute<'_>>>) {
    match attrs.filter(|a| !a.is_empty()) {
        None => out.extend_from_slice(b"NIL"),
        Some(attrs) => {
            out.push(b'(');
            for (i, a) in attrs.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_str(out, &a.name);
                out.push(b' ');
                write_str(out, &a.value);
            }
            out.push(b')');
        }
    }
}

fn write_opt(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => write_str(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// Disposition, language and location (the tail shared by every extension).
fn write_ext_tail(out: &mut Vec<u8>, part: &MessagePart<'_>) {
    out.push(b' ');
    match part.content_disposition() {
        Some(d) => {
            out.push(b'(');
            write_str(out, &d.c_type);
            out.push(b' ');
            write_params(out, d.attributes.as_ref());
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    match part.content_language() {
        HeaderValue::Text(t) => {
            out.push(b'(');
            write_str(out, t);
            out.push(b')');
        }
        HeaderValue::TextList(l) if !l.is_empty() => {
            out.push(b'(');
            for (i, t) in l.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_str(out, t);
            }
            out.push(b')');
        }
        _ => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    write_opt(out, part.content_location());
}

fn write_part(out: &mut Vec<u8>, msg: &Message<'_>, idx: usize, ext: bool, depth: usize) {
    let Some(part) = msg.parts.get(idx) else {
        out.extend_from_slice(b"NIL");
        return;
    };
    let raw: &[u8] = &msg.raw_message;
    let ct = part.content_type();
    let subtype = ct
        .and_then(|c| c.c_subtype.as_deref())
        .unwrap_or("plain")
        .to_ascii_uppercase();
    if let PartType::Multipart(children) = &part.body {
        out.push(b'(');
        if children.is_empty() || depth >= MAX_DEPTH {
            // RFC 3501 requires at least one body part; describe an empty text part.
            out.extend_from_slice(b"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0)");
        } else {
            for &c in children {
                write_part(out, msg, c as usize, ext, depth + 1);
            }
        }
        out.push(b' ');
        write_str(out, &subtype);
        if ext {
            out.push(b' ');
            write_params(out, ct.and_then(|c| c.attributes.as_ref()));
            write_ext_tail(out, part);
        }
        out.push(b')');
        return;
    }
    let ctype = ct.map_or("TEXT".to_owned(), |c| c.c_type.to_ascii_uppercase());
    let (ctype, subtype) = if ct.is_none() {
        ("TEXT".to_owned(), "PLAIN".to_owned())
    } else {
        (ctype, subtype)
    };
    out.push(b'(');
    write_str(out, &ctype);
    out.push(b' ');
    write_str(out, &subtype);
    out.push(b' ');
    match ct
        .and_then(|c| c.attributes.as_ref())
        .filter(|a| !a.is_empty())
    {
        Some(a) => write_params(out, Some(a)),
        None if ctype == "TEXT" => out.extend_from_slice(b"(\"CHARSET\" \"US-ASCII\")"),
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    write_opt(
        out,
        first_raw(raw, part, "Content-ID")
            .as_deref()
            .map(String::from_utf8_lossy)
            .as_deref(),
    );
    out.push(b' ');
    write_opt(
        out,
        first_raw(raw, part, "Content-Description")
            .as_deref()
            .map(String::from_utf8_lossy)
            .as_deref(),
    );
    out.push(b' ');
    let enc = part
        .content_transfer_encoding()
        .map_or("7BIT".to_owned(), str::to_ascii_uppercase);
    write_str(out, &enc);
    let body = slice(raw, part.offset_body, part.offset_end);
    out.extend_from_slice(format!(" {}", body.len()).as_bytes());
    let lines = body.iter().filter(|&&b| b == b'\n').count()
        + usize::from(!body.is_empty() && !body.ends_with(b"\n"));
    if let PartType::Message(nested) = &part.body {
        if depth < MAX_DEPTH {
            out.push(b' ');
            out.extend_from_slice(&envelope_of(nested));
            out.push(b' ');
            write_part(out, nested, 0, ext, depth + 1);
        } else {
            out.extend_from_slice(b" (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) (\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0)");
        }
        out.extend_from_slice(format!(" {lines}").as_bytes());
    } else if ctype == "TEXT" {
        out.extend_from_slice(format!(" {lines}").as_bytes());
    }
    if ext {
        out.push(b' ');
        write_opt(
            out,
            first_raw(raw, part, "Content-MD5")
                .as_deref()
                .map(String::from_utf8_lossy)
                .as_deref(),
        );
        write_ext_tail(out, part);
    }
    out.push(b')');
}

/// `BODYSTRUCTURE` (`ext`) or `BODY` for a parsed message.
pub fn body_structure(msg: &Message<'_>, ext: bool) -> Vec<u8> {
    let mut out = Vec::new();
    write_part(&mut out, msg, 0, ext, 0);
    out
}

// ---- sections ----------------------------------------------------------------------------------

/// Finds the part named by `numbers`: the message it lives in and its index there.
fn locate<'m, 'x>(msg: &'m Message<'x>, numbers: &[u32]) -> Option<(&'m Message<'x>, usize)> {
    let mut m = msg;
    let mut idx = 0usize;
    let mut at_root = true;
    for (k, &n) in numbers.iter().enumerate() {
        let container = m.parts.get(idx)?;
        idx = match &container.body {
            PartType::Multipart(children) => *children.get((n as usize).checked_sub(1)?)? as usize,
            _ if at_root && n == 1 => idx,
            _ => return None,
        };
        at_root = false;
        if k + 1 < numbers.len()
            && let Some(PartType::Message(nested)) = m.parts.get(idx).map(|p| &p.body)
        {
            m = nested;
            idx = 0;
            at_root = true;
        }
    }
    Some((m, idx))
}

fn header_block<'a>(msg: &'a Message<'_>, idx: usize) -> &'a [u8] {
    match msg.parts.get(idx) {
        Some(p) => slice(&msg.raw_message, p.offset_header, p.offset_body),
        None => &[],
    }
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

/// The bytes of `BODY[section]`, or `None` when the section does not exist.
pub fn section(msg: &Message<'_>, section: &Section) -> Option<Vec<u8>> {
    let raw: &[u8] = &msg.raw_message;
    if section.part.is_empty() {
        let root = msg.parts.first();
        return Some(match &section.text {
            None => raw.to_vec(),
            Some(t) => message_text(msg, t, root.map_or(0, |_| 0))?,
        });
    }
    let (m, idx) = locate(msg, &section.part)?;
    let part = m.parts.get(idx)?;
    match &section.text {
        None => Some(slice(&m.raw_message, part.offset_body, part.offset_end).to_vec()),
        Some(SectionText::Mime) => Some(header_block(m, idx).to_vec()),
        Some(t) => match &part.body {
            PartType::Message(nested) => message_text(nested, t, 0),
            _ => None,
        },
    }
}

fn message_text(msg: &Message<'_>, text: &SectionText, idx: usize) -> Option<Vec<u8>> {
    let part = msg.parts.get(idx)?;
    Some(match text {
        SectionText::Header | SectionText::Mime => header_block(msg, idx).to_vec(),
        SectionText::Text => slice(&msg.raw_message, part.offset_body, part.offset_end).to_vec(),
        SectionText::HeaderFields(names) => filter_headers(header_block(msg, idx), names, false),
        SectionText::HeaderFieldsNot(names) => filter_headers(header_block(msg, idx), names, true),
    })
}

/// The decoded content of part `numbers` (BINARY), or `None` for a multipart or missing part.
pub fn binary(msg: &Message<'_>, numbers: &[u32]) -> Option<Vec<u8>> {
    if numbers.is_empty() {
        return Some(msg.raw_message.to_vec());
    }
    let (m, idx) = locate(msg, numbers)?;
    let part = m.parts.get(idx)?;
    match &part.body {
        PartType::Text(t) | PartType::Html(t) => Some(t.as_bytes().to_vec()),
        PartType::Binary(b) | PartType::InlineBinary(b) => Some(b.to_vec()),
        PartType::Message(n) => Some(n.raw_message.to_vec()),
        PartType::Multipart(_) => None,
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

/// The whole header block as text (SEARCH TEXT looks there too).
pub fn header_block_text(msg: &Message<'_>) -> String {
    String::from_utf8_lossy(header_block(msg, 0)).into_owned()
}

/// The Date header as a calendar date (SENTBEFORE/SENTON/SENTSINCE).
pub fn sent_date(msg: &Message<'_>) -> Option<chrono::NaiveDate> {
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

    #[test]
    fn search_text() {
        let m = parse(NESTED).unwrap();
        assert!(contains_ci(&header_text(&m, "subject").unwrap(), "CAFÉ"));
        assert!(contains_ci(&header_text(&m, "From").unwrap(), "doe"));
        assert!(header_text(&m, "Cc").is_none());
        assert!(contains_ci(&body_text(&m), "INNER TEXT"));
    }
}
