//! `[UID] FETCH set items [(CHANGEDSINCE n [VANISHED])]` (RFC 9051 §6.4.5, RFC 3516 BINARY,
//! RFC 7162 CONDSTORE/QRESYNC). Macros are expanded here so the session sees only items.

use super::Cursor;
use crate::proto::command::{CommandBody, FetchAttr, FetchCommand, Section, SectionText};
use crate::proto::error::ProtoError;

/// Most items in one FETCH (a client listing hundreds of items is abusive, not useful).
const MAX_ITEMS: usize = 64;

pub(crate) fn parse(c: &mut Cursor<'_>, uid: bool) -> Result<CommandBody, ProtoError> {
    c.sp()?;
    let set = c.sequence_set()?;
    c.sp()?;
    let mut items = Vec::new();
    if c.eat(b'(') {
        loop {
            items.push(attr(c)?);
            if items.len() > MAX_ITEMS {
                return Err(c.err("at most 64 fetch items"));
            }
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
    } else if c.eat_keyword("ALL") {
        items = vec![
            FetchAttr::Flags,
            FetchAttr::InternalDate,
            FetchAttr::Rfc822Size,
            FetchAttr::Envelope,
        ];
    } else if c.eat_keyword("FAST") {
        items = vec![
            FetchAttr::Flags,
            FetchAttr::InternalDate,
            FetchAttr::Rfc822Size,
        ];
    } else if c.eat_keyword("FULL") {
        items = vec![
            FetchAttr::Flags,
            FetchAttr::InternalDate,
            FetchAttr::Rfc822Size,
            FetchAttr::Envelope,
            FetchAttr::Body,
        ];
    } else {
        items.push(attr(c)?);
    }
    let mut cmd = FetchCommand {
        uid,
        set,
        items,
        changed_since: None,
        vanished: false,
    };
    if c.eat(b' ') {
        c.expect(b'(', "'(' before fetch modifiers")?;
        loop {
            let m = c.keyword()?;
            match m.as_str() {
                "CHANGEDSINCE" => {
                    c.sp()?;
                    cmd.changed_since = Some(c.number64()?);
                }
                "VANISHED" => cmd.vanished = true,
                _ => return Err(c.err("CHANGEDSINCE or VANISHED")),
            }
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
        // RFC 7162 §3.2.6: VANISHED only with UID FETCH and CHANGEDSINCE.
        if cmd.vanished && (!uid || cmd.changed_since.is_none()) {
            return Err(c.err("VANISHED only in UID FETCH with CHANGEDSINCE"));
        }
    }
    Ok(CommandBody::Fetch(cmd))
}

fn name(c: &mut Cursor<'_>) -> String {
    let mut s = String::new();
    while let Some(b) = c.peek().filter(|b| b.is_ascii_alphanumeric() || *b == b'.') {
        s.push(char::from(b.to_ascii_uppercase()));
        c.skip(1);
    }
    s
}

pub(crate) fn attr(c: &mut Cursor<'_>) -> Result<FetchAttr, ProtoError> {
    let at = c.pos();
    let n = name(c);
    Ok(match n.as_str() {
        "ENVELOPE" => FetchAttr::Envelope,
        "FLAGS" => FetchAttr::Flags,
        "INTERNALDATE" => FetchAttr::InternalDate,
        "RFC822" => FetchAttr::Rfc822,
        "RFC822.HEADER" => FetchAttr::Rfc822Header,
        "RFC822.SIZE" => FetchAttr::Rfc822Size,
        "RFC822.TEXT" => FetchAttr::Rfc822Text,
        "BODYSTRUCTURE" => FetchAttr::BodyStructure,
        "UID" => FetchAttr::Uid,
        "MODSEQ" => FetchAttr::ModSeq,
        "EMAILID" => FetchAttr::EmailId,
        "SAVEDATE" => FetchAttr::SaveDate,
        "PREVIEW" => {
            // RFC 8970: PREVIEW [SP "(" preview-mod *(SP preview-mod) ")"], preview-mod LAZY.
            // ` (LAZY` and not a FETCH modifier list such as ` (CHANGEDSINCE 5)`.
            let lazy_next = b" (LAZY"
                .iter()
                .enumerate()
                .all(|(i, &b)| c.peek_at(i).map(|x| x.to_ascii_uppercase()) == Some(b))
                && matches!(c.peek_at(6), Some(b')' | b' '));
            if lazy_next {
                c.skip(2);
                loop {
                    if !c.eat_keyword("LAZY") {
                        return Err(c.err("LAZY"));
                    }
                    if c.eat(b')') {
                        break;
                    }
                    c.sp()?;
                }
            }
            FetchAttr::Preview
        }
        "THREADID" => FetchAttr::ThreadId,
        "BODY" if c.peek() != Some(b'[') => FetchAttr::Body,
        "BODY" | "BODY.PEEK" => {
            let section = section(c)?;
            let partial = partial(c)?;
            FetchAttr::BodySection {
                peek: n == "BODY.PEEK",
                section,
                partial,
            }
        }
        "BINARY" | "BINARY.PEEK" => {
            let part = binary_part(c)?;
            let partial = partial(c)?;
            FetchAttr::Binary {
                peek: n == "BINARY.PEEK",
                part,
                partial,
            }
        }
        "BINARY.SIZE" => FetchAttr::BinarySize {
            part: binary_part(c)?,
        },
        _ => {
            return Err(ProtoError::Syntax {
                at,
                expected: "fetch item",
            });
        }
    })
}

fn part_numbers(c: &mut Cursor<'_>, part: &mut Vec<u32>) -> Result<(), ProtoError> {
    loop {
        part.push(c.nz_number()?.get());
        if part.len() > 32 {
            return Err(ProtoError::TooDeep { max: 32 });
        }
        if !(c.peek() == Some(b'.') && c.peek_at(1).is_some_and(|b| b.is_ascii_digit())) {
            return Ok(());
        }
        c.skip(1);
    }
}

fn binary_part(c: &mut Cursor<'_>) -> Result<Vec<u32>, ProtoError> {
    c.expect(b'[', "'['")?;
    let mut part = Vec::new();
    if !c.eat(b']') {
        part_numbers(c, &mut part)?;
        c.expect(b']', "']'")?;
    }
    Ok(part)
}

fn section(c: &mut Cursor<'_>) -> Result<Section, ProtoError> {
    c.expect(b'[', "'['")?;
    let mut s = Section::default();
    if c.eat(b']') {
        return Ok(s);
    }
    if c.peek().is_some_and(|b| b.is_ascii_digit()) {
        part_numbers(c, &mut s.part)?;
        if !c.eat(b'.') {
            c.expect(b']', "']'")?;
            return Ok(s);
        }
    }
    let at = c.pos();
    let t = name(c);
    s.text = Some(match t.as_str() {
        "HEADER" => SectionText::Header,
        "TEXT" => SectionText::Text,
        "MIME" if !s.part.is_empty() => SectionText::Mime,
        "HEADER.FIELDS" | "HEADER.FIELDS.NOT" => {
            c.sp()?;
            c.expect(b'(', "'(' before header names")?;
            let mut names = Vec::new();
            loop {
                names.push(c.astring_text()?.to_ascii_uppercase());
                if names.len() > 256 {
                    return Err(c.err("at most 256 header names"));
                }
                if c.eat(b')') {
                    break;
                }
                c.sp()?;
            }
            if t == "HEADER.FIELDS" {
                SectionText::HeaderFields(names)
            } else {
                SectionText::HeaderFieldsNot(names)
            }
        }
        _ => {
            return Err(ProtoError::Syntax {
                at,
                expected: "section text",
            });
        }
    });
    c.expect(b']', "']'")?;
    Ok(s)
}

fn partial(c: &mut Cursor<'_>) -> Result<Option<(u32, u32)>, ProtoError> {
    if !c.eat(b'<') {
        return Ok(None);
    }
    let origin = c.number()?;
    c.expect(b'.', "'.' in partial")?;
    let count = c.nz_number()?.get();
    c.expect(b'>', "'>'")?;
    Ok(Some((origin, count)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::command::{ParseOptions, parse_command_bytes};

    fn p(s: &str) -> Result<FetchCommand, ProtoError> {
        match parse_command_bytes(s.as_bytes(), ParseOptions::default())
            .map_err(|r| r.error)?
            .body
        {
            CommandBody::Fetch(f) => Ok(f),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rfc_examples() {
        let f = p("A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])\r\n").unwrap();
        assert_eq!(f.set.to_string(), "2:4");
        assert_eq!(
            f.items,
            vec![
                FetchAttr::Flags,
                FetchAttr::BodySection {
                    peek: false,
                    section: Section {
                        part: vec![],
                        text: Some(SectionText::HeaderFields(vec![
                            "DATE".into(),
                            "FROM".into()
                        ]))
                    },
                    partial: None
                }
            ]
        );
        assert_eq!(p("a FETCH 1:* ALL\r\n").unwrap().items.len(), 4);
        assert_eq!(p("a FETCH 1 fast\r\n").unwrap().items.len(), 3);
        assert_eq!(p("a FETCH 1 FULL\r\n").unwrap().items.len(), 5);
        assert_eq!(
            p("a FETCH 1 body\r\n").unwrap().items,
            vec![FetchAttr::Body]
        );
        let f = p("a UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n").unwrap();
        assert!(f.uid && f.vanished);
        assert_eq!(f.changed_since, Some(12345));
    }

    #[test]
    fn sections() {
        let f = p("a FETCH 1 (BODY.PEEK[1.2.MIME] BODY[3.TEXT]<0.100> BODY[]<5.10> BODY[4.1] BINARY.PEEK[1]<0.5> \
                   BINARY[] BINARY.SIZE[2.1] RFC822 RFC822.HEADER RFC822.TEXT RFC822.SIZE ENVELOPE BODYSTRUCTURE \
                   INTERNALDATE MODSEQ BODY[HEADER.FIELDS.NOT (\"X-A\" b)])\r\n")
        .unwrap();
        assert_eq!(f.items.len(), 16);
        assert_eq!(
            f.items[0],
            FetchAttr::BodySection {
                peek: true,
                section: Section {
                    part: vec![1, 2],
                    text: Some(SectionText::Mime)
                },
                partial: None
            }
        );
        assert_eq!(
            f.items[1],
            FetchAttr::BodySection {
                peek: false,
                section: Section {
                    part: vec![3],
                    text: Some(SectionText::Text)
                },
                partial: Some((0, 100))
            }
        );
        assert_eq!(
            f.items[3],
            FetchAttr::BodySection {
                peek: false,
                section: Section {
                    part: vec![4, 1],
                    text: None
                },
                partial: None
            }
        );
        assert_eq!(
            f.items[4],
            FetchAttr::Binary {
                peek: true,
                part: vec![1],
                partial: Some((0, 5))
            }
        );
        assert_eq!(f.items[6], FetchAttr::BinarySize { part: vec![2, 1] });
    }

    #[test]
    fn malformed() {
        for bad in [
            "a FETCH 1 (FLAGS\r\n",
            "a FETCH 1 FLAGS)\r\n",
            "a FETCH 1 BODY[MIME]\r\n",
            "a FETCH 1 BODY[1.FOO]\r\n",
            "a FETCH 1 BODY[HEADER.FIELDS ()]\r\n",
            "a FETCH 1 BODY[]<1.0>\r\n",
            "a FETCH 1 BODY[0]\r\n",
            "a FETCH 1 BINARY[TEXT]\r\n",
            "a FETCH 1 FOO\r\n",
            "a FETCH 1 ()\r\n",
            "a FETCH (FLAGS)\r\n",
            "a FETCH 1 FLAGS (VANISHED)\r\n",
            "a FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED)\r\n",
            "a FETCH 1 FLAGS (CHANGEDSINCE)\r\n",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }
}
