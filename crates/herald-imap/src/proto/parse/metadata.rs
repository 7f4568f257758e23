//! METADATA (RFC 5464 §4): `GETMETADATA [(MAXSIZE n DEPTH d)] mailbox entries` and
//! `SETMETADATA mailbox (entry value …)`, where a value is an nstring or a literal8 (binary
//! values may hold NUL). Entry names are checked here against RFC 5464 §3.2 (the rules live in
//! `herald_events::metadata_entry_name`), so a bad name is a `BAD` before the session acts.

use super::{Cursor, Literal};
use crate::proto::command::{CommandBody, GetMetadataCommand, MetadataDepth};
use crate::proto::error::ProtoError;

/// An entry name for SETMETADATA: a full name.
fn entry(c: &mut Cursor<'_>) -> Result<String, ProtoError> {
    let at = c.pos();
    let name = c.astring_text()?;
    herald_events::metadata_entry_name(&name)
        .map_err(|reason| ProtoError::BadEntryName { at, reason })?;
    Ok(name)
}

/// An entry name for GETMETADATA: a full name, or a bare scope (`/private`, `/shared`) to ask
/// for what lies below it with a DEPTH.
fn get_entry(c: &mut Cursor<'_>) -> Result<String, ProtoError> {
    let at = c.pos();
    let name = c.astring_text()?;
    if name.eq_ignore_ascii_case("/private") || name.eq_ignore_ascii_case("/shared") {
        return Ok(name);
    }
    herald_events::metadata_entry_name(&name)
        .map_err(|reason| ProtoError::BadEntryName { at, reason })?;
    Ok(name)
}

pub(crate) fn getmetadata(c: &mut Cursor<'_>) -> Result<CommandBody, ProtoError> {
    c.sp()?;
    let (mut max_size, mut depth) = (None, None);
    if c.eat(b'(') {
        loop {
            let option = c.keyword()?;
            c.sp()?;
            match option.as_str() {
                "MAXSIZE" if max_size.is_none() => max_size = Some(c.number64()?),
                "DEPTH" if depth.is_none() => {
                    depth = Some(if c.eat(b'0') {
                        MetadataDepth::Zero
                    } else if c.eat(b'1') {
                        MetadataDepth::One
                    } else if c.eat_keyword("INFINITY") {
                        MetadataDepth::Infinity
                    } else {
                        return Err(c.err("0, 1 or infinity"));
                    });
                }
                _ => return Err(c.err("MAXSIZE or DEPTH, once each")),
            }
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
        c.sp()?;
    }
    let mailbox = c.mailbox()?;
    c.sp()?;
    let mut entries = Vec::new();
    if c.eat(b'(') {
        loop {
            entries.push(get_entry(c)?);
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
    } else {
        entries.push(get_entry(c)?);
    }
    Ok(CommandBody::GetMetadata(GetMetadataCommand {
        mailbox,
        max_size,
        depth: depth.unwrap_or_default(),
        entries,
    }))
}

/// `value = nstring / literal8`.
fn value(c: &mut Cursor<'_>) -> Result<Option<Vec<u8>>, ProtoError> {
    match c.peek() {
        Some(b'{' | b'~') => {
            let at = c.pos();
            match c.literal(true)?.0 {
                Literal::Inline(d) => Ok(Some(d.to_vec())),
                Literal::Streamed { .. } => Err(ProtoError::StreamedLiteral { at }),
            }
        }
        _ => c.nstring(),
    }
}

pub(crate) fn setmetadata(c: &mut Cursor<'_>) -> Result<CommandBody, ProtoError> {
    c.sp()?;
    let mailbox = c.mailbox()?;
    c.sp()?;
    c.expect(b'(', "'(' before entries and values")?;
    let mut entries = Vec::new();
    loop {
        let name = entry(c)?;
        c.sp()?;
        entries.push((name, value(c)?));
        if c.eat(b')') {
            break;
        }
        c.sp()?;
    }
    Ok(CommandBody::SetMetadata { mailbox, entries })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::command::{ParseOptions, Rejected, parse_command_bytes};
    use crate::proto::types::Mailbox;

    fn p(s: &[u8]) -> Result<CommandBody, Rejected> {
        parse_command_bytes(s, ParseOptions::default()).map(|c| c.body)
    }

    fn get(mailbox: &str, max_size: Option<u64>, depth: MetadataDepth, e: &[&str]) -> CommandBody {
        CommandBody::GetMetadata(GetMetadataCommand {
            mailbox: Mailbox::new(mailbox),
            max_size,
            depth,
            entries: e.iter().map(|s| (*s).to_owned()).collect(),
        })
    }

    #[test]
    fn getmetadata_rfc_5464_examples() {
        assert_eq!(
            p(b"a GETMETADATA \"\" /shared/comment\r\n").unwrap(),
            get("", None, MetadataDepth::Zero, &["/shared/comment"])
        );
        assert_eq!(
            p(b"a GETMETADATA INBOX (/shared/comment /private/comment)\r\n").unwrap(),
            get(
                "INBOX",
                None,
                MetadataDepth::Zero,
                &["/shared/comment", "/private/comment"]
            )
        );
        assert_eq!(
            p(b"a GETMETADATA (MAXSIZE 1024) INBOX /shared/comment\r\n").unwrap(),
            get(
                "INBOX",
                Some(1024),
                MetadataDepth::Zero,
                &["/shared/comment"]
            )
        );
        assert_eq!(
            p(b"a GETMETADATA (DEPTH 1 MAXSIZE 5) INBOX (/shared/a)\r\n").unwrap(),
            get("INBOX", Some(5), MetadataDepth::One, &["/shared/a"])
        );
        assert_eq!(
            p(b"a getmetadata (depth infinity) \"\" /Private\r\n").unwrap(),
            get("", None, MetadataDepth::Infinity, &["/Private"])
        );
    }

    #[test]
    fn setmetadata_values_nil_literal_and_literal8() {
        assert_eq!(
            p(b"a SETMETADATA INBOX (/private/comment {4}\r\nab\"c /shared/x NIL /shared/y \"q\")\r\n")
                .unwrap(),
            CommandBody::SetMetadata {
                mailbox: Mailbox::new("INBOX"),
                entries: vec![
                    ("/private/comment".into(), Some(b"ab\"c".to_vec())),
                    ("/shared/x".into(), None),
                    ("/shared/y".into(), Some(b"q".to_vec())),
                ]
            }
        );
        assert_eq!(
            p(b"a SETMETADATA \"\" (/shared/bin ~{3}\r\n\0\x01\xff)\r\n").unwrap(),
            CommandBody::SetMetadata {
                mailbox: Mailbox::new(""),
                entries: vec![("/shared/bin".into(), Some(vec![0, 1, 255]))]
            }
        );
        assert!(
            p(b"a SETMETADATA INBOX (/shared/x {1}\r\n\0)\r\n").is_err(),
            "NUL needs literal8"
        );
    }

    #[test]
    fn bad_entry_names_and_syntax_are_rejected() {
        for bad in [
            &b"a SETMETADATA INBOX (/comment \"x\")\r\n"[..],
            b"a SETMETADATA INBOX (/private/a//b \"x\")\r\n",
            b"a SETMETADATA INBOX (/private/a/ \"x\")\r\n",
            b"a SETMETADATA INBOX (\"/private/a*\" \"x\")\r\n",
            b"a SETMETADATA INBOX (\"/shared/%\" \"x\")\r\n",
            b"a SETMETADATA INBOX (/private \"x\")\r\n",
            b"a GETMETADATA INBOX \"/shared/*\"\r\n",
            b"a GETMETADATA INBOX /vendor/x\r\n",
        ] {
            let e = p(bad).unwrap_err();
            assert!(
                matches!(e.error, ProtoError::BadEntryName { .. }),
                "{}: {:?}",
                String::from_utf8_lossy(bad),
                e.error
            );
        }
        for bad in [
            &b"a SETMETADATA INBOX ()\r\n"[..],
            b"a SETMETADATA INBOX (/private/a)\r\n",
            b"a SETMETADATA INBOX /private/a \"x\"\r\n",
            b"a GETMETADATA (DEPTH 2) INBOX /private/a\r\n",
            b"a GETMETADATA (MAXSIZE 1 MAXSIZE 2) INBOX /private/a\r\n",
            b"a GETMETADATA (FOO 1) INBOX /private/a\r\n",
            b"a GETMETADATA INBOX ()\r\n",
            b"a GETMETADATA INBOX\r\n",
        ] {
            assert!(p(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
