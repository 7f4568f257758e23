//! The command grammar, one file per command or close group (STYLE.md: "a reader finds FETCH in
//! one place"), over a shared [`Cursor`] that knows the RFC 3501/9051 lexical rules: atoms,
//! quoted strings, literals (inline or streamed by the framer), numbers, sequence sets, flags,
//! dates and mailbox names.
//!
//! The grammar is hand-written rather than taken from imap-codec (STACK.md §2): imap-codec
//! buffers every literal, and rejects ESEARCH, LIST-EXTENDED/LIST-STATUS, SEARCHRES,
//! MULTIAPPEND and `CREATE … (USE …)`, all of which IMAP4rev2 or our clients need. imap-codec
//! stays as a test oracle. The parser is recursive descent over a complete command held in
//! memory (the framer bounded its size); nesting is capped at [`MAX_DEPTH`] so hostile input
//! cannot exhaust the stack.

pub(crate) mod acl;
pub(crate) mod append;
pub(crate) mod auth;
pub(crate) mod enable;
pub(crate) mod fetch;
pub(crate) mod id;
pub(crate) mod list;
pub(crate) mod mailbox;
pub(crate) mod message;
pub(crate) mod metadata;
pub(crate) mod notify;
pub(crate) mod quota;
pub(crate) mod search;
pub(crate) mod select;
pub(crate) mod sort;
pub(crate) mod status;
pub(crate) mod store;
pub(crate) mod urlauth;

use std::num::NonZeroU32;

use super::error::ProtoError;
use super::mutf7;
use super::types::{
    Date, DateTime, Flag, LiteralData, MONTHS, Mailbox, SeqNum, SeqRange, SequenceSet,
    is_astring_char, is_atom_char, is_list_char,
};

/// Deepest nesting of parentheses / NOT / OR the parser follows.
pub const MAX_DEPTH: usize = 32;

/// Largest mod-sequence value (RFC 7162: 63 bits).
pub(crate) const MAX_MODSEQ: u64 = i64::MAX as u64;

type Result<T> = std::result::Result<T, ProtoError>;

/// A literal as the cursor sees it.
pub(crate) enum Literal<'a> {
    Inline(&'a [u8]),
    Streamed { index: u32, length: u64 },
}

/// Position in a complete command (bytes as produced by the framer).
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    streamed: &'a [u32],
    literal_index: u32,
    /// `UTF8=ACCEPT` is enabled: mailbox names are raw UTF-8, not modified UTF-7.
    pub(crate) utf8: bool,
    pub(crate) depth: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8], streamed: &'a [u32], utf8: bool) -> Cursor<'a> {
        Cursor {
            buf,
            pos: 0,
            streamed,
            literal_index: 0,
            utf8,
            depth: 0,
        }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn err(&self, expected: &'static str) -> ProtoError {
        ProtoError::Syntax {
            at: self.pos,
            expected,
        }
    }

    pub(crate) fn skip(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    pub(crate) fn peek_at(&self, off: usize) -> Option<u8> {
        self.buf.get(self.pos + off).copied()
    }

    pub(crate) fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(crate) fn expect(&mut self, b: u8, what: &'static str) -> Result<()> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(self.err(what))
        }
    }

    pub(crate) fn sp(&mut self) -> Result<()> {
        self.expect(b' ', "SP")
    }

    /// Whether the command ends here (CRLF follows).
    pub(crate) fn at_eol(&self) -> bool {
        self.buf[self.pos.min(self.buf.len())..].starts_with(b"\r\n")
    }

    /// The final CRLF, which must end the buffer.
    pub(crate) fn crlf(&mut self) -> Result<()> {
        if self.at_eol() && self.pos + 2 == self.buf.len() {
            self.pos += 2;
            Ok(())
        } else {
            Err(self.err("CRLF at end of command"))
        }
    }

    /// Enters a nested construct.
    pub(crate) fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ProtoError::TooDeep { max: MAX_DEPTH });
        }
        Ok(())
    }

    pub(crate) fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.pos < self.buf.len() && f(self.buf[self.pos]) {
            self.pos += 1;
        }
        &self.buf[start..self.pos]
    }

    fn check_7bit(&self) -> Result<()> {
        match self.peek() {
            Some(b) if b >= 0x80 => Err(ProtoError::EightBit { at: self.pos }),
            _ => Ok(()),
        }
    }

    /// 1*ATOM-CHAR.
    pub(crate) fn atom(&mut self) -> Result<&'a str> {
        let a = self.take_while(is_atom_char);
        if a.is_empty() {
            self.check_7bit()?;
            return Err(self.err("atom"));
        }
        self.check_7bit()?;
        // ATOM-CHARs are ASCII.
        std::str::from_utf8(a).map_err(|_| ProtoError::EightBit { at: self.pos })
    }

    /// An atom, upper-cased (command names, keywords).
    pub(crate) fn keyword(&mut self) -> Result<String> {
        Ok(self.atom()?.to_ascii_uppercase())
    }

    /// Consumes `kw` (case-insensitive) if it is next and not followed by more atom characters.
    pub(crate) fn eat_keyword(&mut self, kw: &str) -> bool {
        let end = self.pos + kw.len();
        if end <= self.buf.len()
            && self.buf[self.pos..end].eq_ignore_ascii_case(kw.as_bytes())
            && !self.buf.get(end).is_some_and(|&b| is_atom_char(b))
        {
            self.pos = end;
            true
        } else {
            false
        }
    }

    /// `number` (u32).
    pub(crate) fn number(&mut self) -> Result<u32> {
        let at = self.pos;
        let v = self.number64()?;
        u32::try_from(v).map_err(|_| ProtoError::NumberRange { at })
    }

    /// `nz-number`.
    pub(crate) fn nz_number(&mut self) -> Result<NonZeroU32> {
        let at = self.pos;
        NonZeroU32::new(self.number()?).ok_or(ProtoError::NumberRange { at })
    }

    /// A decimal number up to 63 bits (`number64`, `mod-sequence-value`).
    pub(crate) fn number64(&mut self) -> Result<u64> {
        let at = self.pos;
        let d = self.take_while(|b| b.is_ascii_digit());
        if d.is_empty() {
            return Err(self.err("number"));
        }
        let mut v: u64 = 0;
        for &c in d {
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(c - b'0')))
                .filter(|&v| v <= MAX_MODSEQ)
                .ok_or(ProtoError::NumberRange { at })?;
        }
        Ok(v)
    }

    /// A quoted string's content, unescaped. 8-bit is accepted only as valid UTF-8 (IMAP4rev2 /
    /// UTF8=ACCEPT); CR and LF never.
    pub(crate) fn quoted(&mut self) -> Result<Vec<u8>> {
        let start = self.pos;
        self.expect(b'"', "quoted string")?;
        let mut out = Vec::new();
        let mut eight = false;
        loop {
            match self.peek() {
                None | Some(b'\r') | Some(b'\n') | Some(0) => return Err(self.err("closing quote")),
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    match self.peek_at(1) {
                        Some(c @ (b'"' | b'\\')) => out.push(c),
                        _ => return Err(self.err("quoted-special after backslash")),
                    }
                    self.pos += 2;
                }
                Some(c) => {
                    eight |= c >= 0x80;
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
        if eight && std::str::from_utf8(&out).is_err() {
            return Err(ProtoError::EightBit { at: start });
        }
        Ok(out)
    }

    /// `{n}` / `{n+}` / `~{n}` CRLF and its bytes (unless the framer streamed them).
    pub(crate) fn literal(&mut self, allow_binary: bool) -> Result<(Literal<'a>, bool)> {
        let binary = allow_binary && self.eat(b'~');
        self.expect(b'{', "literal")?;
        let length = self.number64()?;
        self.eat(b'+');
        self.expect(b'}', "'}'")?;
        if !self.buf[self.pos..].starts_with(b"\r\n") {
            return Err(self.err("CRLF after literal announcement"));
        }
        self.pos += 2;
        let index = self.literal_index;
        self.literal_index += 1;
        if self.streamed.contains(&index) {
            return Ok((Literal::Streamed { index, length }, binary));
        }
        let len = usize::try_from(length).map_err(|_| self.err("literal data"))?;
        let end = self.pos.checked_add(len).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            return Err(self.err("literal data"));
        };
        let data = &self.buf[self.pos..end];
        if !binary && data.contains(&0) {
            return Err(self.err("literal without NUL (use literal8)"));
        }
        self.pos = end;
        Ok((Literal::Inline(data), binary))
    }

    /// A literal whose bytes must be in the buffer.
    fn inline_literal(&mut self) -> Result<&'a [u8]> {
        let at = self.pos;
        match self.literal(false)?.0 {
            Literal::Inline(d) => Ok(d),
            Literal::Streamed { .. } => Err(ProtoError::StreamedLiteral { at }),
        }
    }

    /// Message data for APPEND: a literal or literal8, possibly streamed.
    pub(crate) fn message_literal(&mut self) -> Result<(LiteralData, bool)> {
        let (lit, binary) = self.literal(true)?;
        Ok((
            match lit {
                Literal::Inline(d) => LiteralData::Inline(d.to_vec()),
                Literal::Streamed { index, length } => LiteralData::Streamed { index, length },
            },
            binary,
        ))
    }

    /// `string` = quoted / literal.
    pub(crate) fn string(&mut self) -> Result<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => Ok(self.inline_literal()?.to_vec()),
            _ => Err(self.err("string")),
        }
    }

    /// `astring` = 1*ASTRING-CHAR / string.
    pub(crate) fn astring(&mut self) -> Result<Vec<u8>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(),
            _ => {
                let a = self.take_while(is_astring_char);
                self.check_7bit()?;
                if a.is_empty() {
                    return Err(self.err("astring"));
                }
                Ok(a.to_vec())
            }
        }
    }

    /// An astring that must be UTF-8 text.
    pub(crate) fn astring_text(&mut self) -> Result<String> {
        let at = self.pos;
        String::from_utf8(self.astring()?).map_err(|_| ProtoError::EightBit { at })
    }

    /// A string that must be UTF-8 text.
    pub(crate) fn string_text(&mut self) -> Result<String> {
        let at = self.pos;
        String::from_utf8(self.string()?).map_err(|_| ProtoError::EightBit { at })
    }

    /// `nstring` = string / NIL.
    pub(crate) fn nstring(&mut self) -> Result<Option<Vec<u8>>> {
        if self.eat_keyword("NIL") {
            Ok(None)
        } else {
            self.string().map(Some)
        }
    }

    /// Turns wire bytes of a mailbox name into UTF-8.
    fn decode_mailbox_bytes(&self, raw: Vec<u8>, at: usize) -> Result<String> {
        if self.utf8 {
            String::from_utf8(raw).map_err(|_| ProtoError::EightBit { at })
        } else {
            if raw.iter().any(|&b| b >= 0x80) {
                return Err(ProtoError::EightBit { at });
            }
            mutf7::decode(&raw)
        }
    }

    /// `mailbox` = "INBOX" / astring, decoded.
    pub(crate) fn mailbox(&mut self) -> Result<Mailbox> {
        let at = self.pos;
        let raw = self.astring()?;
        Ok(Mailbox::new(self.decode_mailbox_bytes(raw, at)?))
    }

    /// `list-mailbox` = 1*list-char / string, decoded (wildcards kept).
    pub(crate) fn list_mailbox(&mut self) -> Result<String> {
        let at = self.pos;
        let raw = match self.peek() {
            Some(b'"' | b'{') => self.string()?,
            _ => {
                let a = self.take_while(is_list_char);
                self.check_7bit()?;
                if a.is_empty() {
                    return Err(self.err("list-mailbox"));
                }
                a.to_vec()
            }
        };
        self.decode_mailbox_bytes(raw, at)
    }

    fn seq_number(&mut self) -> Result<SeqNum> {
        if self.eat(b'*') {
            Ok(SeqNum::Largest)
        } else {
            Ok(SeqNum::Value(self.nz_number()?))
        }
    }

    /// `sequence-set` with `*`, or `$` (RFC 5182).
    pub(crate) fn sequence_set(&mut self) -> Result<SequenceSet> {
        if self.eat(b'$') {
            return Ok(SequenceSet::Saved);
        }
        let mut ranges = Vec::new();
        loop {
            let start = self.seq_number()?;
            let end = if self.eat(b':') {
                self.seq_number()?
            } else {
                start
            };
            ranges.push(SeqRange { start, end });
            if !self.eat(b',') {
                break;
            }
        }
        Ok(SequenceSet::Ranges(ranges))
    }

    /// Whether a sequence set starts here.
    pub(crate) fn at_sequence_set(&self) -> bool {
        matches!(self.peek(), Some(b'0'..=b'9' | b'*' | b'$'))
    }

    /// `flag` (system flags, keywords, `\Extension`).
    pub(crate) fn flag(&mut self) -> Result<Flag> {
        if self.eat(b'\\') {
            let name = self.atom()?;
            Ok(Flag::from_wire(&format!("\\{name}")))
        } else {
            Ok(Flag::Keyword(self.atom()?.to_owned()))
        }
    }

    /// `flag-list` = "(" [flag *(SP flag)] ")".
    pub(crate) fn flag_list(&mut self) -> Result<Vec<Flag>> {
        self.expect(b'(', "'(' before flags")?;
        let mut flags = Vec::new();
        if !self.eat(b')') {
            loop {
                flags.push(self.flag()?);
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        }
        Ok(flags)
    }

    fn digits(&mut self, min: usize, max: usize) -> Result<u32> {
        let start = self.pos;
        while self.pos - start < max && self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        let d = &self.buf[start..self.pos];
        if d.len() < min {
            return Err(ProtoError::BadDate { at: self.pos });
        }
        Ok(d.iter().fold(0u32, |a, &c| a * 10 + u32::from(c - b'0')))
    }

    fn month(&mut self) -> Result<u32> {
        let at = self.pos;
        let m = self
            .buf
            .get(self.pos..self.pos + 3)
            .ok_or(ProtoError::BadDate { at })?;
        let i = MONTHS
            .iter()
            .position(|n| n.as_bytes().eq_ignore_ascii_case(m))
            .ok_or(ProtoError::BadDate { at })?;
        self.pos += 3;
        Ok(i as u32 + 1)
    }

    fn date_text(&mut self) -> Result<Date> {
        let at = self.pos;
        let day = self.digits(1, 2)?;
        self.expect(b'-', "'-' in date")?;
        let month = self.month()?;
        self.expect(b'-', "'-' in date")?;
        let year = self.digits(4, 4)?;
        Date::from_ymd_opt(year as i32, month, day).ok_or(ProtoError::BadDate { at })
    }

    /// `date` = date-text / DQUOTE date-text DQUOTE.
    pub(crate) fn date(&mut self) -> Result<Date> {
        if self.eat(b'"') {
            let d = self.date_text()?;
            self.expect(b'"', "closing quote of date")?;
            Ok(d)
        } else {
            self.date_text()
        }
    }

    /// `date-time` = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE.
    pub(crate) fn date_time(&mut self) -> Result<DateTime> {
        let at = self.pos;
        self.expect(b'"', "date-time")?;
        self.eat(b' '); // date-day-fixed: SP DIGIT
        let day = self.digits(1, 2)?;
        self.expect(b'-', "'-' in date-time")?;
        let month = self.month()?;
        self.expect(b'-', "'-' in date-time")?;
        let year = self.digits(4, 4)?;
        self.sp()?;
        let h = self.digits(2, 2)?;
        self.expect(b':', "':' in time")?;
        let mi = self.digits(2, 2)?;
        self.expect(b':', "':' in time")?;
        let s = self.digits(2, 2)?;
        self.sp()?;
        let sign = match self.peek() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Err(ProtoError::BadDate { at: self.pos }),
        };
        self.pos += 1;
        let zh = self.digits(2, 2)?;
        let zm = self.digits(2, 2)?;
        self.expect(b'"', "closing quote of date-time")?;
        let bad = ProtoError::BadDate { at };
        if zm >= 60 {
            return Err(bad);
        }
        let offset = chrono::FixedOffset::east_opt(sign * (zh as i32 * 3600 + zm as i32 * 60))
            .ok_or(bad.clone())?;
        let naive = Date::from_ymd_opt(year as i32, month, day)
            .and_then(|d| d.and_hms_opt(h, mi, s))
            .ok_or(bad.clone())?;
        naive.and_local_timezone(offset).single().ok_or(bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(s: &[u8]) -> Cursor<'_> {
        Cursor::new(s, &[], false)
    }

    #[test]
    fn strings() {
        assert_eq!(cur(b"\"a\\\"b\\\\c\"").quoted().unwrap(), b"a\"b\\c");
        assert!(cur(b"\"a\r\"").quoted().is_err());
        assert!(cur(b"\"a\\x\"").quoted().is_err());
        assert_eq!(
            cur("\"caf\u{e9}\"".as_bytes()).quoted().unwrap(),
            "caf\u{e9}".as_bytes()
        );
        assert!(cur(b"\"caf\xe9\"").quoted().is_err());
        assert_eq!(cur(b"{3}\r\nabc").astring().unwrap(), b"abc");
        assert_eq!(cur(b"{3+}\r\nabc").astring().unwrap(), b"abc");
        assert!(cur(b"{4}\r\nabc").astring().is_err());
        assert_eq!(cur(b"foo]bar").astring().unwrap(), b"foo]bar");
        assert!(cur(b"caf\xc3\xa9").astring().is_err());
        assert!(cur(b"(x").astring().is_err());
    }

    #[test]
    fn streamed_literal_is_not_a_value() {
        let mut c = Cursor::new(b"{3}\r\n", &[0], false);
        assert!(matches!(
            c.astring(),
            Err(ProtoError::StreamedLiteral { .. })
        ));
        let mut c = Cursor::new(b"~{3}\r\n", &[0], false);
        let (d, bin) = c.message_literal().unwrap();
        assert_eq!(
            d,
            LiteralData::Streamed {
                index: 0,
                length: 3
            }
        );
        assert!(bin);
    }

    #[test]
    fn sequence_sets() {
        let s = cur(b"1,3:5,7:*,*").sequence_set().unwrap();
        assert_eq!(s.to_string(), "1,3:5,7:*,*");
        assert_eq!(s.resolve(9).unwrap(), vec![(1, 1), (3, 5), (7, 9), (9, 9)]);
        assert_eq!(cur(b"$").sequence_set().unwrap(), SequenceSet::Saved);
        assert!(cur(b"0").sequence_set().is_err());
        assert!(cur(b"4294967296").sequence_set().is_err());
        assert!(cur(b",1").sequence_set().is_err());
    }

    #[test]
    fn dates() {
        let d = cur(b"\"17-Jul-1996 02:44:25 -0700\"").date_time().unwrap();
        assert_eq!(d.to_rfc3339(), "1996-07-17T02:44:25-07:00");
        let d = cur(b"\" 7-jul-1996 02:44:25 +0000\"").date_time().unwrap();
        assert_eq!(d.to_rfc3339(), "1996-07-07T02:44:25+00:00");
        assert!(cur(b"\"31-Feb-1996 02:44:25 -0700\"").date_time().is_err());
        assert!(cur(b"\"17-Jul-1996 24:44:25 -0700\"").date_time().is_err());
        assert!(cur(b"\"17-Jul-1996 02:44:25 0700\"").date_time().is_err());
        assert_eq!(
            cur(b"1-Feb-1994").date().unwrap(),
            Date::from_ymd_opt(1994, 2, 1).unwrap()
        );
        assert_eq!(
            cur(b"\"01-feb-1994\"").date().unwrap(),
            Date::from_ymd_opt(1994, 2, 1).unwrap()
        );
        assert!(cur(b"1-Foo-1994").date().is_err());
    }

    #[test]
    fn mailboxes() {
        assert_eq!(cur(b"inbox").mailbox().unwrap().as_str(), "INBOX");
        assert_eq!(
            cur(b"\"&ZeVnLIqe-\"").mailbox().unwrap().as_str(),
            "\u{65e5}\u{672c}\u{8a9e}"
        );
        assert!(cur("\u{65e5}".as_bytes()).mailbox().is_err());
        let mut c = Cursor::new("\"\u{65e5}&\"".as_bytes(), &[], true);
        assert_eq!(c.mailbox().unwrap().as_str(), "\u{65e5}&");
        assert_eq!(cur(b"foo/%").list_mailbox().unwrap(), "foo/%");
    }

    #[test]
    fn flags() {
        let f = cur(b"(\\Seen \\flagged $Junk \\X-Custom)")
            .flag_list()
            .unwrap();
        assert_eq!(
            f,
            vec![
                Flag::Seen,
                Flag::Flagged,
                Flag::Keyword("$Junk".into()),
                Flag::Extension("X-Custom".into())
            ]
        );
        assert!(cur(b"(\\Seen").flag_list().is_err());
        assert_eq!(cur(b"()").flag_list().unwrap(), vec![]);
    }
}
