//! `APPEND mailbox [flag-list] [date-time] literal` repeated for MULTIAPPEND (RFC 3502). The
//! message literal may be a literal8 (`~{n}`, RFC 3516), or `UTF8 (~{n})` after UTF8=ACCEPT
//! (RFC 6855), and may have been streamed by the
//! framer, in which case the command carries only where it went ([`LiteralData::Streamed`]).
//!
//! [`LiteralData::Streamed`]: crate::proto::types::LiteralData::Streamed

use super::Cursor;
use crate::proto::command::{AppendMessage, CatPart, CommandBody};
use crate::proto::error::ProtoError;
use crate::proto::types::LiteralData;

/// At most this many messages in one MULTIAPPEND.
pub const MAX_APPEND_MESSAGES: usize = 1000;

pub(crate) fn parse(c: &mut Cursor<'_>) -> Result<CommandBody, ProtoError> {
    c.sp()?;
    let mailbox = c.mailbox()?;
    let mut messages = Vec::new();
    while c.eat(b' ') {
        if messages.len() == MAX_APPEND_MESSAGES {
            return Err(c.err("at most 1000 messages in one APPEND"));
        }
        let flags = if c.peek() == Some(b'(') {
            let f = c.flag_list()?;
            c.sp()?;
            f
        } else {
            Vec::new()
        };
        let internal_date = if c.peek() == Some(b'"') {
            let d = c.date_time()?;
            c.sp()?;
            Some(d)
        } else {
            None
        };
        if c.eat_keyword("CATENATE") {
            messages.push(AppendMessage {
                flags,
                internal_date,
                data: LiteralData::Inline(Vec::new()),
                binary: false,
                catenate: Some(catenate(c)?),
            });
            continue;
        }
        // RFC 6855 §4: `UTF8 (literal8)` carries a message with UTF-8 headers, once the
        // client enabled UTF8=ACCEPT.
        let (data, binary) = if c.eat_keyword("UTF8") {
            if !c.utf8 {
                return Err(c.err("UTF8 append data only after ENABLE UTF8=ACCEPT"));
            }
            c.sp()?;
            c.expect(b'(', "'(' after UTF8")?;
            let (data, binary) = c.message_literal()?;
            if !binary {
                return Err(c.err("a literal8 inside UTF8 (…)"));
            }
            c.expect(b')', "')' after the UTF8 literal")?;
            (data, binary)
        } else {
            c.message_literal()?
        };
        messages.push(AppendMessage {
            flags,
            internal_date,
            data,
            binary,
            catenate: None,
        });
    }
    if messages.is_empty() {
        return Err(c.err("message literal"));
    }
    Ok(CommandBody::Append { mailbox, messages })
}

/// At most this many parts in one CATENATE.
pub const MAX_CATENATE_PARTS: usize = 100;

/// `SP "(" cat-part *(SP cat-part) ")"`, cat-part = `TEXT SP literal` / `URL SP astring`
/// (RFC 4469 §5).
fn catenate(c: &mut Cursor<'_>) -> Result<Vec<CatPart>, ProtoError> {
    c.sp()?;
    c.expect(b'(', "'(' after CATENATE")?;
    let mut parts = Vec::new();
    loop {
        if parts.len() == MAX_CATENATE_PARTS {
            return Err(c.err("at most 100 CATENATE parts"));
        }
        if c.eat_keyword("TEXT") {
            c.sp()?;
            let (data, binary) = c.message_literal()?;
            if binary {
                return Err(c.err("a literal, not a literal8, after TEXT"));
            }
            parts.push(CatPart::Text(data));
        } else if c.eat_keyword("URL") {
            c.sp()?;
            let url = c.astring_text()?;
            parts.push(CatPart::Url(url));
        } else {
            return Err(c.err("TEXT or URL"));
        }
        if c.eat(b')') {
            return Ok(parts);
        }
        c.sp()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::command::{ParseOptions, parse_command, parse_command_bytes};
    use crate::proto::framer::CommandBytes;
    use crate::proto::types::{Flag, LiteralData, Mailbox};

    fn p(s: &[u8]) -> Result<CommandBody, crate::proto::command::Rejected> {
        parse_command_bytes(s, ParseOptions::default()).map(|c| c.body)
    }

    #[test]
    fn rfc3501_append() {
        let msg = b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\nSubject: afternoon meeting\r\n\r\nHello Joe\r\n";
        let mut cmd =
            format!("A003 APPEND saved-messages (\\Seen) {{{}}}\r\n", msg.len()).into_bytes();
        cmd.extend_from_slice(msg);
        cmd.extend_from_slice(b"\r\n");
        let CommandBody::Append { mailbox, messages } = p(&cmd).unwrap() else {
            panic!()
        };
        assert_eq!(mailbox, Mailbox::new("saved-messages"));
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].flags, vec![Flag::Seen]);
        assert_eq!(messages[0].data, LiteralData::Inline(msg.to_vec()));
    }

    #[test]
    fn multiappend_date_binary() {
        let cmd = b"a APPEND INBOX (\\Seen $x) \"05-Jan-2024 10:00:00 +0100\" {3+}\r\nabc \"06-Jan-2024 10:00:00 +0100\" ~{2}\r\n\x00b\r\n";
        let CommandBody::Append { messages, .. } = p(cmd).unwrap() else {
            panic!()
        };
        assert_eq!(messages.len(), 2);
        assert!(messages[0].internal_date.is_some() && !messages[0].binary);
        assert_eq!(messages[1].data, LiteralData::Inline(b"\x00b".to_vec()));
        assert!(messages[1].binary && messages[1].flags.is_empty());
    }

    #[test]
    fn streamed() {
        let bytes = b"a APPEND INBOX {300}\r\n ~{5}\r\n\r\n";
        let c = parse_command(
            CommandBytes {
                bytes,
                streamed: &[0, 1],
            },
            ParseOptions::default(),
        )
        .unwrap();
        let CommandBody::Append { messages, .. } = c.body else {
            panic!()
        };
        assert_eq!(
            messages[0].data,
            LiteralData::Streamed {
                index: 0,
                length: 300
            }
        );
        assert_eq!(
            messages[1].data,
            LiteralData::Streamed {
                index: 1,
                length: 5
            }
        );
    }

    #[test]
    fn bad() {
        assert!(p(b"a APPEND INBOX\r\n").is_err());
        assert!(p(b"a APPEND INBOX (\\Seen)\r\n").is_err());
        assert!(p(b"a APPEND INBOX {3}\r\nab\r\n").is_err());
        assert!(
            p(b"a APPEND INBOX {2}\r\na\x00\r\n").is_err(),
            "NUL needs literal8"
        );
        assert!(p(b"a APPEND INBOX \"bad date\" {1}\r\na\r\n").is_err());
        assert!(p(b"a APPEND INBOX {1}\r\na \r\n").is_err());
    }
}
