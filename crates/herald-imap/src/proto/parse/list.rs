//! `LIST` with LIST-EXTENDED (RFC 5258): selection options, several patterns, return options
//! including `STATUS (…)` (RFC 5819) and `SPECIAL-USE` (RFC 6154) — all required by IMAP4rev2,
//! and all rejected by imap-codec alpha.10 (STACK.md §2) — and IMAP4rev1 `LSUB`.

use super::Cursor;
use super::status::status_items;
use crate::proto::command::{CommandBody, ListCommand, ListReturn, ListSelect};
use crate::proto::error::ProtoError;

pub(crate) fn list(c: &mut Cursor<'_>) -> Result<CommandBody, ProtoError> {
    c.sp()?;
    let mut selection = Vec::new();
    if c.eat(b'(') {
        if !c.eat(b')') {
            loop {
                let opt = c.keyword()?;
                selection.push(match opt.as_str() {
                    "SUBSCRIBED" => ListSelect::Subscribed,
                    "REMOTE" => ListSelect::Remote,
                    "RECURSIVEMATCH" => ListSelect::RecursiveMatch,
                    "SPECIAL-USE" => ListSelect::SpecialUse,
                    _ => ListSelect::Other(opt),
                });
                if c.eat(b')') {
                    break;
                }
                c.sp()?;
            }
        }
        c.sp()?;
    }
    // RFC 5258 §3: RECURSIVEMATCH alone is an error.
    if selection.contains(&ListSelect::RecursiveMatch)
        && !selection
            .iter()
            .any(|s| !matches!(s, ListSelect::RecursiveMatch | ListSelect::Remote))
    {
        return Err(c.err("a base selection option with RECURSIVEMATCH"));
    }
    let reference = c.mailbox()?.0;
    c.sp()?;
    let mut patterns = Vec::new();
    if c.eat(b'(') {
        loop {
            patterns.push(c.list_mailbox()?);
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
    } else {
        patterns.push(c.list_mailbox()?);
    }
    let mut returns = Vec::new();
    if c.eat(b' ') {
        if !c.eat_keyword("RETURN") {
            return Err(c.err("RETURN"));
        }
        c.sp()?;
        c.expect(b'(', "'(' after RETURN")?;
        if !c.eat(b')') {
            loop {
                let opt = c.keyword()?;
                returns.push(match opt.as_str() {
                    "SUBSCRIBED" => ListReturn::Subscribed,
                    "CHILDREN" => ListReturn::Children,
                    "SPECIAL-USE" => ListReturn::SpecialUse,
                    "STATUS" => {
                        c.sp()?;
                        ListReturn::Status(status_items(c)?)
                    }
                    _ => ListReturn::Other(opt),
                });
                if c.eat(b')') {
                    break;
                }
                c.sp()?;
            }
        }
    }
    Ok(CommandBody::List(ListCommand {
        selection,
        reference,
        patterns,
        returns,
    }))
}

pub(crate) fn lsub(c: &mut Cursor<'_>) -> Result<CommandBody, ProtoError> {
    c.sp()?;
    let reference = c.mailbox()?.0;
    c.sp()?;
    let pattern = c.list_mailbox()?;
    Ok(CommandBody::Lsub { reference, pattern })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::command::{ParseOptions, StatusItem, parse_command_bytes};

    fn p(s: &str) -> Result<ListCommand, crate::proto::command::Rejected> {
        match parse_command_bytes(s.as_bytes(), ParseOptions::default())?.body {
            CommandBody::List(l) => Ok(l),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn basic() {
        let l = p("A101 LIST \"\" \"\"\r\n").unwrap();
        assert_eq!(
            (l.reference.as_str(), l.patterns),
            ("", vec![String::new()])
        );
        let l = p("A202 LIST ~/Mail/ %\r\n").unwrap();
        assert_eq!(
            (l.reference.as_str(), l.patterns),
            ("~/Mail/", vec!["%".to_owned()])
        );
        let l = p("A102 LIST #news.comp.mail.misc *\r\n").unwrap();
        assert_eq!(l.patterns, vec!["*".to_owned()]);
    }

    #[test]
    fn extended() {
        let l = p("A01 LIST (SUBSCRIBED REMOTE RECURSIVEMATCH) \"\" (\"a\" \"b/%\") RETURN (CHILDREN SUBSCRIBED)\r\n")
            .unwrap();
        assert_eq!(
            l.selection,
            vec![
                ListSelect::Subscribed,
                ListSelect::Remote,
                ListSelect::RecursiveMatch
            ]
        );
        assert_eq!(l.patterns, vec!["a".to_owned(), "b/%".to_owned()]);
        assert_eq!(
            l.returns,
            vec![ListReturn::Children, ListReturn::Subscribed]
        );
        let l =
            p("A02 LIST (SPECIAL-USE) \"\" * RETURN (SPECIAL-USE STATUS (MESSAGES UNSEEN))\r\n")
                .unwrap();
        assert_eq!(l.selection, vec![ListSelect::SpecialUse]);
        assert_eq!(
            l.returns,
            vec![
                ListReturn::SpecialUse,
                ListReturn::Status(vec![StatusItem::Messages, StatusItem::Unseen])
            ]
        );
        let l = p("A03 LIST () \"\" % RETURN ()\r\n").unwrap();
        assert!(l.selection.is_empty() && l.returns.is_empty());
        assert!(p("A04 LIST (RECURSIVEMATCH) \"\" %\r\n").is_err());
        assert!(p("A05 LIST \"\" (\"a\"\r\n").is_err());
        assert!(p("A06 LIST \"\" % FOO (X)\r\n").is_err());
        assert!(p("A07 LIST \"\"\r\n").is_err());
    }

    #[test]
    fn lsub() {
        let c = parse_command_bytes(
            b"A002 LSUB \"#news.\" \"comp.mail.*\"\r\n",
            ParseOptions::default(),
        )
        .unwrap();
        assert_eq!(
            c.body,
            CommandBody::Lsub {
                reference: "#news.".into(),
                pattern: "comp.mail.*".into()
            }
        );
    }
}
