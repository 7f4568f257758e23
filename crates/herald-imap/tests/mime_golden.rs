//! BODYSTRUCTURE and `BODY[section]` over a corpus of tricky messages (`tests/mime/*.eml`):
//!
//! 1. **Golden files** (`tests/mime/NAME.golden`), reviewed like code against RFC 3501, 2045,
//!    2046 and 2231: the exact BODYSTRUCTURE, BODY and ENVELOPE, the tree they describe, and the bytes of
//!    chosen sections. Each starts with `#` notes saying why the values are right; refresh with
//!    `UPDATE_GOLDEN=1` (the notes and the list of sections are kept) and review the diff.
//! 2. **Well-formedness**: every BODYSTRUCTURE and BODY is read back by a strict RFC 3501 §9
//!    parser written here (`body-type-msg` needs envelope, body and lines; `body-type-text`
//!    lines; `body-type-basic` neither; strings are 7-bit quoted or literals, no NUL), and by
//!    imap-codec where its nesting limit allows; also for every prefix of every message.
//! 3. **Invariants** on every part: `BODY[n]` is as long as BODYSTRUCTURE says, with as many
//!    lines; `BODY[n.HEADER]` + `BODY[n.TEXT]` is `BODY[n]`; `BODY[n.MIME]` is followed by
//!    `BODY[n]` in the message; `BODY[HEADER]` + `BODY[TEXT]` is the message.
//! 4. **A second implementation**: `tests/mime/mime_tree.py` prints the tree as Python's `email`
//!    package sees it; it must match the tree read back from our BODYSTRUCTURE (types, part
//!    numbers, sizes, line counts) except for the differences listed, with reasons, in
//!    [`KNOWN_DIFFERENCES`]. Without `python3` the comparison is skipped with a message, unless
//!    `CI=true`, where that is a failure.

#![allow(clippy::unwrap_used, missing_docs)]

use herald_imap::mime;
use herald_imap::proto::command::{Section, SectionText};
use imap_codec::ResponseCodec;
use imap_codec::decode::Decoder;
use std::io::Write;
use std::path::{Path, PathBuf};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mime")
}

/// The corpus: (file name, bytes), sorted by name.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    assert!(files.len() >= 12, "the corpus shrank: {}", files.len());
    files
}

/// Bytes as one line of text: `\r`, `\n`, `\t`, `\\`, and `\xNN` for anything not printable.
fn escape(v: &[u8]) -> String {
    let mut s = String::new();
    for &b in v {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s
}

// ---- a strict RFC 3501 `body` reader ------------------------------------------------------------

/// A body structure as read back: just what the tree and the invariants need.
#[derive(Debug)]
enum Node {
    Multi {
        parts: Vec<Node>,
        subtype: String,
    },
    Single {
        ty: String,
        sub: String,
        encoding: String,
        size: u32,
        lines: Option<u32>,
        message: Option<Box<Node>>,
    },
}

struct Reader<'a> {
    s: &'a [u8],
    i: usize,
    /// BODYSTRUCTURE: extension data must follow every part (Herald always sends all of it).
    ext: bool,
}

type R<T> = Result<T, String>;

impl Reader<'_> {
    fn fail<T>(&self, what: &str) -> R<T> {
        let end = (self.i + 40).min(self.s.len());
        Err(format!(
            "expected {what} at byte {}: {}",
            self.i,
            escape(&self.s[self.i.min(end)..end])
        ))
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn lit(&mut self, t: &str) -> R<()> {
        if self.s[self.i..].starts_with(t.as_bytes()) {
            self.i += t.len();
            Ok(())
        } else {
            self.fail(&format!("{t:?}"))
        }
    }

    fn sp(&mut self) -> R<()> {
        self.lit(" ")
    }

    fn nil(&mut self) -> bool {
        let hit = self.s[self.i..].starts_with(b"NIL");
        self.i += if hit { 3 } else { 0 };
        hit
    }

    fn number(&mut self) -> R<u32> {
        let n = self.s[self.i..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if n == 0 {
            return self.fail("number");
        }
        let v = std::str::from_utf8(&self.s[self.i..self.i + n]).unwrap();
        self.i += n;
        v.parse().map_err(|_| format!("number {v} out of range"))
    }

    /// `string`: a quoted string of 7-bit TEXT-CHARs, or a literal of CHAR8 (no NUL).
    fn string(&mut self) -> R<Vec<u8>> {
        match self.peek() {
            Some(b'"') => {
                self.i += 1;
                let mut v = Vec::new();
                loop {
                    match self.peek() {
                        Some(b'"') => {
                            self.i += 1;
                            return Ok(v);
                        }
                        Some(b'\\') => match self.s.get(self.i + 1) {
                            Some(&c @ (b'"' | b'\\')) => {
                                v.push(c);
                                self.i += 2;
                            }
                            _ => return self.fail("quoted-special after \\"),
                        },
                        Some(c) if (0x01..=0x7f).contains(&c) && c != b'\r' && c != b'\n' => {
                            v.push(c);
                            self.i += 1;
                        }
                        _ => return self.fail("TEXT-CHAR or closing quote"),
                    }
                }
            }
            Some(b'{') => {
                self.i += 1;
                let n = self.number()? as usize;
                self.lit("}\r\n")?;
                let Some(v) = self.s.get(self.i..self.i + n) else {
                    return self.fail("literal octets");
                };
                if v.contains(&0) {
                    return self.fail("literal without NUL");
                }
                self.i += n;
                Ok(v.to_vec())
            }
            _ => self.fail("string"),
        }
    }

    fn nstring(&mut self) -> R<Option<Vec<u8>>> {
        if self.nil() {
            Ok(None)
        } else {
            self.string().map(Some)
        }
    }

    fn upper(&mut self) -> R<String> {
        Ok(String::from_utf8_lossy(&self.string()?).to_ascii_uppercase())
    }

    /// `body-fld-param`
    fn params(&mut self) -> R<()> {
        if self.nil() {
            return Ok(());
        }
        self.lit("(")?;
        loop {
            self.string()?;
            self.sp()?;
            self.string()?;
            if self.peek() == Some(b')') {
                self.i += 1;
                return Ok(());
            }
            self.sp()?;
        }
    }

    /// `body-fld-dsp SP body-fld-lang SP body-fld-loc` (all of them, as Herald sends them).
    fn ext_tail(&mut self) -> R<()> {
        self.sp()?;
        if !self.nil() {
            self.lit("(")?;
            self.string()?;
            self.sp()?;
            self.params()?;
            self.lit(")")?;
        }
        self.sp()?;
        if self.peek() == Some(b'(') {
            self.i += 1;
            self.string()?;
            while self.peek() == Some(b' ') {
                self.i += 1;
                self.string()?;
            }
            self.lit(")")?;
        } else {
            self.nstring()?;
        }
        self.sp()?;
        self.nstring()?;
        Ok(())
    }

    fn address_list(&mut self) -> R<()> {
        if self.nil() {
            return Ok(());
        }
        self.lit("(")?;
        loop {
            self.lit("(")?;
            for i in 0..4 {
                if i > 0 {
                    self.sp()?;
                }
                self.nstring()?;
            }
            self.lit(")")?;
            if self.peek() == Some(b')') {
                self.i += 1;
                return Ok(());
            }
        }
    }

    fn envelope(&mut self) -> R<()> {
        self.lit("(")?;
        self.nstring()?;
        self.sp()?;
        self.nstring()?;
        for _ in 0..6 {
            self.sp()?;
            self.address_list()?;
        }
        self.sp()?;
        self.nstring()?;
        self.sp()?;
        self.nstring()?;
        self.lit(")")
    }

    /// `body`
    fn body(&mut self) -> R<Node> {
        self.lit("(")?;
        if self.peek() == Some(b'(') {
            let mut parts = Vec::new();
            while self.peek() == Some(b'(') {
                parts.push(self.body()?);
            }
            self.sp()?;
            let subtype = self.upper()?;
            if self.ext {
                self.sp()?;
                self.params()?;
                self.ext_tail()?;
            }
            self.lit(")")?;
            return Ok(Node::Multi { parts, subtype });
        }
        let ty = self.upper()?;
        self.sp()?;
        let sub = self.upper()?;
        self.sp()?;
        self.params()?;
        self.sp()?;
        self.nstring()?;
        self.sp()?;
        self.nstring()?;
        self.sp()?;
        let encoding = self.upper()?;
        self.sp()?;
        let size = self.number()?;
        let (mut lines, mut message) = (None, None);
        if ty == "MESSAGE" && sub == "RFC822" {
            // body-type-msg: envelope, body, lines are not optional.
            self.sp()?;
            self.envelope()?;
            self.sp()?;
            message = Some(Box::new(self.body()?));
            self.sp()?;
            lines = Some(self.number()?);
        } else if ty == "TEXT" {
            self.sp()?;
            lines = Some(self.number()?);
        }
        if self.ext {
            self.sp()?;
            self.nstring()?;
            self.ext_tail()?;
        }
        self.lit(")")?;
        Ok(Node::Single {
            ty,
            sub,
            encoding,
            size,
            lines,
            message,
        })
    }
}

/// Reads a whole BODYSTRUCTURE (`ext`) or BODY, strictly.
fn read_body(s: &[u8], ext: bool) -> R<Node> {
    let mut r = Reader { s, i: 0, ext };
    let node = r.body()?;
    if r.i != s.len() {
        return r.fail("end of the body structure");
    }
    Ok(node)
}

fn depth(n: &Node) -> usize {
    match n {
        Node::Multi { parts, .. } => 1 + parts.iter().map(depth).max().unwrap_or(0),
        Node::Single { message, .. } => 1 + message.as_deref().map_or(0, depth),
    }
}

/// imap-codec reads `body` nested at most this deep (it gives up past seven levels).
const IMAP_CODEC_MAX_DEPTH: usize = 7;

/// imap-codec must read the structure as the FETCH response it goes in.
fn imap_codec_reads(item: &str, s: &[u8]) -> R<()> {
    let mut line = format!("* 1 FETCH ({item} ").into_bytes();
    line.extend_from_slice(s);
    line.extend_from_slice(b")\r\n");
    match ResponseCodec::default().decode(&line) {
        Ok(([], _)) => Ok(()),
        Ok((rest, _)) => Err(format!("imap-codec left {}", escape(rest))),
        Err(e) => Err(format!("imap-codec: {e:?}")),
    }
}

// ---- the tree ------------------------------------------------------------------------------------

/// One node of the tree in IMAP terms: `id` is a part number (`2.1`) or `TEXT`/`N.TEXT` for
/// a multipart that is the body of the message or of embedded message N.
struct Entry<'n> {
    id: String,
    numbers: Option<Vec<u32>>,
    node: &'n Node,
    /// Inside a transfer-encoded message/rfc822: its ranges are in the decoded bytes.
    in_decoded: bool,
}

fn join(prefix: &str, tail: &str) -> String {
    if prefix.is_empty() {
        tail.to_owned()
    } else {
        format!("{prefix}.{tail}")
    }
}

fn numbers_of(id: &str) -> Vec<u32> {
    id.split('.').map(|n| n.parse().unwrap()).collect()
}

fn walk_message<'n>(root: &'n Node, prefix: &str, dec: bool, out: &mut Vec<Entry<'n>>) {
    match root {
        Node::Multi { .. } => {
            out.push(Entry {
                id: join(prefix, "TEXT"),
                numbers: None,
                node: root,
                in_decoded: dec,
            });
            walk_parts(root, prefix, dec, out);
        }
        Node::Single { .. } => walk_leaf(root, &join(prefix, "1"), dec, out),
    }
}

fn walk_parts<'n>(multi: &'n Node, prefix: &str, dec: bool, out: &mut Vec<Entry<'n>>) {
    let Node::Multi { parts, .. } = multi else {
        return;
    };
    for (i, p) in parts.iter().enumerate() {
        let id = join(prefix, &(i + 1).to_string());
        if let Node::Multi { .. } = p {
            out.push(Entry {
                numbers: Some(numbers_of(&id)),
                id: id.clone(),
                node: p,
                in_decoded: dec,
            });
            walk_parts(p, &id, dec, out);
        } else {
            walk_leaf(p, &id, dec, out);
        }
    }
}

fn walk_leaf<'n>(node: &'n Node, id: &str, dec: bool, out: &mut Vec<Entry<'n>>) {
    out.push(Entry {
        id: id.to_owned(),
        numbers: Some(numbers_of(id)),
        node,
        in_decoded: dec,
    });
    if let Node::Single {
        message: Some(inner),
        encoding,
        ..
    } = node
    {
        let encoded = !matches!(encoding.as_str(), "7BIT" | "8BIT" | "BINARY");
        walk_message(inner, id, dec || encoded, out);
    }
}

fn tree(root: &Node) -> Vec<Entry<'_>> {
    let mut out = Vec::new();
    walk_message(root, "", false, &mut out);
    out
}

/// A tree line, in the format `mime_tree.py` prints (white space collapsed).
fn describe(e: &Entry<'_>) -> String {
    match e.node {
        Node::Multi { subtype, .. } => format!("{} MULTIPART/{subtype}", e.id),
        Node::Single {
            ty,
            sub,
            size,
            lines,
            ..
        } => {
            let mut s = format!("{} {ty}/{sub} size={size}", e.id);
            if let Some(l) = lines {
                s.push_str(&format!(" lines={l}"));
            }
            s
        }
    }
}

// ---- sections ------------------------------------------------------------------------------------

/// Parses a section spec as written between the brackets (`2.1.MIME`, `HEADER.FIELDS (A B)`).
fn parse_section(spec: &str) -> Section {
    let mut part = Vec::new();
    let mut rest = spec;
    while let Some((n, tail)) = rest
        .split_once('.')
        .filter(|(n, _)| n.parse::<u32>().is_ok())
        .or_else(|| rest.parse::<u32>().is_ok().then_some((rest, "")))
    {
        part.push(n.parse().unwrap());
        rest = tail;
    }
    let names = |s: &str| -> Vec<String> {
        s.trim_matches(|c| c == '(' || c == ')' || c == ' ')
            .split(' ')
            .map(str::to_ascii_uppercase)
            .collect()
    };
    let text = match rest {
        "" => None,
        "HEADER" => Some(SectionText::Header),
        "TEXT" => Some(SectionText::Text),
        "MIME" => Some(SectionText::Mime),
        s if s.starts_with("HEADER.FIELDS.NOT ") => Some(SectionText::HeaderFieldsNot(names(
            s.trim_start_matches("HEADER.FIELDS.NOT "),
        ))),
        s if s.starts_with("HEADER.FIELDS ") => Some(SectionText::HeaderFields(names(
            s.trim_start_matches("HEADER.FIELDS "),
        ))),
        s => panic!("unknown section text {s:?}"),
    };
    Section { part, text }
}

fn section(
    m: &mail_parser::Message<'_>,
    part: &[u32],
    text: Option<SectionText>,
) -> Option<Vec<u8>> {
    mime::section(
        m,
        &Section {
            part: part.to_vec(),
            text,
        },
    )
}

fn lines(v: &[u8]) -> u32 {
    (v.iter().filter(|&&b| b == b'\n').count() + usize::from(!v.is_empty() && !v.ends_with(b"\n")))
        as u32
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

/// The invariants every part must keep; returns what broke.
fn check_invariants(
    name: &str,
    raw: &[u8],
    m: &mail_parser::Message<'_>,
    root: &Node,
) -> Vec<String> {
    let mut bad = Vec::new();
    let header = section(m, &[], Some(SectionText::Header)).unwrap();
    let text = section(m, &[], Some(SectionText::Text)).unwrap();
    if [header.clone(), text].concat() != raw {
        bad.push(format!(
            "{name}: BODY[HEADER] + BODY[TEXT] is not the message"
        ));
    }
    for e in tree(root) {
        let Some(numbers) = &e.numbers else { continue };
        let id = &e.id;
        let Some(body) = section(m, numbers, None) else {
            bad.push(format!("{name}: BODY[{id}] missing"));
            continue;
        };
        let mime_header = section(m, numbers, Some(SectionText::Mime)).unwrap_or_default();
        if !e.in_decoded && !find(raw, &[mime_header.as_slice(), &body].concat()) {
            bad.push(format!(
                "{name}: BODY[{id}.MIME] is not followed by BODY[{id}]"
            ));
        }
        let Node::Single {
            size,
            lines: n_lines,
            message,
            encoding,
            ..
        } = e.node
        else {
            continue;
        };
        if body.len() != *size as usize {
            bad.push(format!(
                "{name}: BODY[{id}] has {} octets, BODYSTRUCTURE says {size}",
                body.len()
            ));
        }
        if let Some(l) = n_lines
            && lines(&body) != *l
        {
            bad.push(format!(
                "{name}: BODY[{id}] has {} lines, BODYSTRUCTURE says {l}",
                lines(&body)
            ));
        }
        if message.is_some() {
            let h = section(m, numbers, Some(SectionText::Header)).unwrap_or_default();
            let t = section(m, numbers, Some(SectionText::Text)).unwrap_or_default();
            let whole = if matches!(encoding.as_str(), "7BIT" | "8BIT" | "BINARY") {
                body.clone()
            } else {
                mime::binary(m, numbers).unwrap_or_default()
            };
            if [h, t].concat() != whole {
                bad.push(format!(
                    "{name}: BODY[{id}.HEADER] + BODY[{id}.TEXT] is not the message in BODY[{id}]"
                ));
            }
        }
    }
    bad
}

// ---- golden files ----------------------------------------------------------------------------------

/// The golden text for one message: the notes (`#` lines) and section keys come from the
/// existing file; everything else is computed.
fn render_golden(raw: &[u8], existing: &str) -> String {
    let m = mime::parse(raw).unwrap();
    let bs = mime::body_structure(&m, true);
    let body = mime::body_structure(&m, false);
    let mut out = String::new();
    for line in existing
        .lines()
        .take_while(|l| l.starts_with('#') || l.is_empty())
    {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&format!("BODYSTRUCTURE {}\n", escape(&bs)));
    out.push_str(&format!("BODY {}\n", escape(&body)));
    out.push_str(&format!("ENVELOPE {}\n", escape(&mime::envelope(&m))));
    let root = read_body(&bs, true).unwrap();
    for e in tree(&root) {
        out.push_str(&format!("TREE {}\n", describe(&e)));
    }
    for line in existing.lines() {
        // `BODY[spec] "escaped bytes"`, `BODY[spec] NIL` or, to add one, `BODY[spec] ?`.
        if !(line.starts_with("BODY[") || line.starts_with("BINARY[")) {
            continue;
        }
        let Some(end) = line.find("] ") else { continue };
        let key = &line[..=end];
        let spec = key.split_once('[').unwrap().1.trim_end_matches(']');
        let value = if key.starts_with("BINARY[") {
            let sec = parse_section(spec);
            mime::binary(&m, &sec.part)
        } else {
            mime::section(&m, &parse_section(spec))
        };
        match value {
            Some(v) => out.push_str(&format!("{key} \"{}\"\n", escape(&v))),
            None => out.push_str(&format!("{key} NIL\n")),
        }
    }
    out
}

#[test]
fn bodystructure_and_sections_match_the_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut stale = Vec::new();
    for (name, raw) in corpus() {
        let path = corpus_dir().join(name.replace(".eml", ".golden"));
        let existing = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!(
                "{} missing: write its notes and run with UPDATE_GOLDEN=1",
                path.display()
            )
        });
        let golden = render_golden(&raw, &existing);
        if update {
            std::fs::write(&path, &golden).unwrap();
        } else if golden != existing {
            let diff: Vec<String> = existing
                .lines()
                .zip(golden.lines())
                .filter(|(a, b)| a != b)
                .take(3)
                .map(|(a, b)| format!("  golden:  {a}\n  current: {b}"))
                .collect();
            stale.push(format!("{name}:\n{}", diff.join("\n")));
        }
    }
    assert!(
        stale.is_empty(),
        "differs from the golden files (UPDATE_GOLDEN=1 to accept, then review):\n{}",
        stale.join("\n")
    );
}

/// Everything checked for one message (`at` names it in failures): both structures read back
/// strictly (and by imap-codec when not too deep), and the invariants. Returns the tree.
fn check_message(at: &str, raw: &[u8], bad: &mut Vec<String>) -> Option<Node> {
    let m = mime::parse(raw).unwrap();
    let bs = mime::body_structure(&m, true);
    let body = mime::body_structure(&m, false);
    let root = match (read_body(&bs, true), read_body(&body, false)) {
        (Ok(root), Ok(_)) => root,
        (a, b) => {
            bad.push(format!("{at}: {:?} {:?}", a.err(), b.err()));
            return None;
        }
    };
    if depth(&root) <= IMAP_CODEC_MAX_DEPTH {
        for (item, s) in [("BODYSTRUCTURE", &bs), ("BODY", &body)] {
            if let Err(e) = imap_codec_reads(item, s) {
                bad.push(format!("{at}: {item}: {e}"));
            }
        }
    }
    bad.extend(check_invariants(at, raw, &m, &root));
    Some(root)
}

#[test]
fn every_structure_is_well_formed_and_every_part_consistent() {
    let mut bad = Vec::new();
    for (name, raw) in corpus() {
        let Some(root) = check_message(&name, &raw, &mut bad) else {
            continue;
        };
        if depth(&root) > IMAP_CODEC_MAX_DEPTH {
            eprintln!("{name}: too deep for imap-codec; read by the strict reader only");
        }
        // Part numbers past the last do not exist.
        let m = mime::parse(&raw).unwrap();
        let top = tree(&root)
            .iter()
            .filter(|e| e.numbers.as_ref().is_some_and(|n| n.len() == 1))
            .count();
        if section(&m, &[top as u32 + 1], None).is_some() {
            bad.push(format!("{name}: BODY[{}] exists", top + 1));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn every_prefix_of_every_message_gives_a_well_formed_structure() {
    // Cutting a message anywhere makes unclosed multiparts, headers without bodies or without
    // their empty line, half delimiters, half 8-bit characters: the structure must stay
    // grammatical and the sizes true. (The empty prefix is a message too.)
    let mut bad = Vec::new();
    for (name, raw) in corpus() {
        for cut in 0..=raw.len() {
            check_message(&format!("{name}[..{cut}]"), &raw[..cut], &mut bad);
        }
    }
    assert!(
        bad.is_empty(),
        "{} problems, first: {}",
        bad.len(),
        bad.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
    );
}

/// A message's [`mime::Summary`] (what FETCH keeps per content) against the functions that
/// split the whole message on each call.
fn summary_differs(raw: &[u8]) -> Option<String> {
    let m = mime::wrap(raw);
    for rev in [mime::Revision::Rev1, mime::Revision::Rev2] {
        let s = mime::summary(raw, rev);
        if s.envelope != mime::envelope(&m) {
            return Some(format!("{rev:?}: ENVELOPE"));
        }
        if mime::header_summary(raw).envelope != s.envelope {
            return Some("header summary: ENVELOPE".to_owned());
        }
        for ext in [false, true] {
            if s.body(ext) != Some(mime::body_structure_for(&m, ext, rev).as_slice()) {
                return Some(format!("{rev:?}: BODY (ext {ext})"));
            }
        }
        let names = vec!["Subject".to_owned(), "FROM".to_owned(), "x-none".to_owned()];
        for text in [
            SectionText::Header,
            SectionText::HeaderFields(names.clone()),
            SectionText::HeaderFieldsNot(names),
        ] {
            let sec = Section {
                part: Vec::new(),
                text: Some(text),
            };
            if s.header_section(&sec) != mime::section_for(&m, &sec, rev) {
                return Some(format!("{rev:?}: {sec:?}"));
            }
        }
        let text = Section {
            part: Vec::new(),
            text: Some(SectionText::Text),
        };
        if s.header_section(&text).is_some() {
            return Some("TEXT is not a header section".to_owned());
        }
    }
    None
}

#[test]
fn a_summary_answers_as_the_whole_message_does() {
    // Every message of the corpus and every prefix of it (headers without their empty line,
    // torn fields, no body at all).
    let mut bad = Vec::new();
    for (name, raw) in corpus() {
        for cut in 0..=raw.len() {
            if let Some(why) = summary_differs(&raw[..cut]) {
                bad.push(format!("{name}[..{cut}]: {why}"));
            }
        }
    }
    for extra in [
        &b"Subject: x\n\nLF only\n"[..],
        b"not a header line\r\n\r\nbody",
    ] {
        if let Some(why) = summary_differs(extra) {
            bad.push(format!("{extra:?}: {why}"));
        }
    }
    assert!(
        bad.is_empty(),
        "{} differences, first: {}",
        bad.len(),
        bad.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn nesting_and_part_limits_keep_the_structure_well_formed() {
    // 40 message/rfc822 levels: 32 are described, the rest is an opaque leaf.
    let mut deep = b"Subject: leaf\r\n\r\nbody\r\n".to_vec();
    for _ in 0..40 {
        deep = [b"Content-Type: message/rfc822\r\n\r\n".as_slice(), &deep].concat();
    }
    let m = mime::parse(&deep).unwrap();
    let bs = mime::body_structure(&m, true);
    read_body(&bs, true).unwrap_or_else(|e| panic!("{e}"));
    let count = |hay: &[u8], needle: &[u8]| memchr::memmem::find_iter(hay, needle).count();
    assert_eq!(count(&bs, b"(\"MESSAGE\" \"RFC822\""), 32);
    assert_eq!(count(&bs, b"(\"APPLICATION\" \"OCTET-STREAM\""), 1);

    // 20 000 parts: 10 000 entities are split out (the multipart and 9 999 parts, the last
    // holding the rest of the body).
    let mut wide = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
    for _ in 0..20_000 {
        wide.extend_from_slice(b"--b\r\n\r\nx\r\n");
    }
    wide.extend_from_slice(b"--b--\r\n");
    let m = mime::parse(&wide).unwrap();
    let root = read_body(&mime::body_structure(&m, true), true).unwrap_or_else(|e| panic!("{e}"));
    let Node::Multi { parts, .. } = &root else {
        panic!("{root:?}")
    };
    assert_eq!(parts.len(), 9_999);
    let last = section(&m, &[9_999], None).unwrap();
    assert_eq!(
        count(&last, b"--b\r\n"),
        10_001,
        "the last part holds the rest"
    );
}

// ---- the second implementation ------------------------------------------------------------------

/// Where Python's `email` package and Herald legitimately disagree: (file, Python's line,
/// Herald's line, why). Each must still occur, so a fixed one is noticed and removed.
const KNOWN_DIFFERENCES: &[(&str, &str, &str, &str)] = &[
    (
        "missing_boundary_param.eml",
        "1 MULTIPART/MIXED size=110",
        "1 TEXT/PLAIN size=110 lines=5",
        "A multipart without a boundary has no parts. Python keeps the declared type on a leaf; \
         IMAP would then show a leaf typed MULTIPART, which clients take for a multipart. \
         Herald uses RFC 2045 §5.2's default for a Content-Type it cannot use: text/plain.",
    ),
    (
        "missing_close_boundary.eml",
        "3 TEXT/PLAIN size=74 lines=2",
        "3 TEXT/PLAIN size=76 lines=2",
        "The last part runs to the end of the message, with no close delimiter. Python drops the \
         last line break of every part; RFC 2046 §5.1.1 gives a line break to the delimiter \
         that follows it, and none follows here, so Herald keeps it in the part.",
    ),
];

fn python_trees() -> Option<std::collections::BTreeMap<String, Vec<String>>> {
    let files: Vec<PathBuf> = corpus().iter().map(|(n, _)| corpus_dir().join(n)).collect();
    let out = match std::process::Command::new("python3")
        .arg(corpus_dir().join("mime_tree.py"))
        .args(&files)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            let why = format!(
                "python3 could not run ({e}): the comparison with Python's email package is skipped"
            );
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{why}, and CI=true"
            );
            // Straight to stderr: the test harness would swallow `eprintln!`.
            let _ = writeln!(std::io::stderr(), "{why}");
            return None;
        }
    };
    assert!(
        out.status.success(),
        "mime_tree.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut trees = std::collections::BTreeMap::new();
    let mut current: Option<String> = None;
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        if let Some(name) = line.strip_prefix("== ") {
            current = Some(name.to_owned());
            trees.insert(name.to_owned(), Vec::new());
        } else if let Some(name) = &current {
            let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
            trees.get_mut(name).unwrap().push(line);
        }
    }
    Some(trees)
}

#[test]
fn the_tree_matches_pythons_email_package() {
    let Some(python) = python_trees() else { return };
    let mut unused: Vec<_> = KNOWN_DIFFERENCES.to_vec();
    let mut bad = Vec::new();
    for (name, raw) in corpus() {
        let m = mime::parse(&raw).unwrap();
        let root = read_body(&mime::body_structure(&m, true), true).unwrap();
        let ours: Vec<String> = tree(&root).iter().map(describe).collect();
        let mut theirs = python.get(&name).cloned().unwrap_or_default();
        for line in &mut theirs {
            if let Some(k) = unused
                .iter()
                .position(|(f, p, _, _)| *f == name && p == line)
            {
                *line = unused.remove(k).2.to_owned();
            }
        }
        if ours != theirs {
            bad.push(format!(
                "{name}:\n  python: {theirs:#?}\n  herald: {ours:#?}"
            ));
        }
    }
    assert!(bad.is_empty(), "trees differ:\n{}", bad.join("\n"));
    assert!(
        unused.is_empty(),
        "known differences that no longer occur: {unused:#?}"
    );
}
