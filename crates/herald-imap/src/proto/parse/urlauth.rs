//! URLAUTH (RFC 4467 §9) and extended URLFETCH (RFC 5524 §5):
//!
//! ```text
//! genurlauth    = "GENURLAUTH" 1*(SP url-rump SP mechanism)
//! urlfetch      = "URLFETCH" 1*(SP url-fetch-arg)
//! url-fetch-arg = url-full / "(" url-full *(SP url-fetch-param) ")"
//! url-fetch-param = "BODY" / "BINARY" / "BODYPARTSTRUCTURE"
//! resetkey      = "RESETKEY" [SP mailbox *(SP mechanism)]
//! ```
//!
//! URLs stay text here (the session reads them with `herald_events::ImapUrl`, and URLAUTH
//! signs their exact bytes). A parameter given twice, or BODY with BINARY (RFC 5524 §3.1 says a
//! client MUST NOT), is a syntax error, as is an unknown one: Herald defines no other.

use super::Cursor;
use crate::proto::command::{CommandBody, UrlFetchArg, UrlFetchParams};
use crate::proto::error::ProtoError;

pub(crate) fn genurlauth(c: &mut Cursor<'_>) -> Result<CommandBody, ProtoError> {
    let mut pairs = Vec::new();
    loop {
        c.sp()?;
        let url = c.astring_text()?;
        c.sp()?;
        let mechanism = c.keyword()?;
        pairs.push((url, mechanism));
        if c.at_eol() {
            return Ok(CommandBody::GenUrlAuth(pairs));
        }
    }
}

pub(crate) fn urlfetch(c: &mut Cursor<'_>) -> Result<CommandBody, ProtoError> {
    let mut args = Vec::new();
    loop {
        c.sp()?;
        if c.eat(b'(') {
            let url = c.astring_text()?;
            let mut p = UrlFetchParams::default();
            while c.eat(b' ') {
                let at = c.pos();
                let flag = match c.keyword()?.as_str() {
                    "BODYPARTSTRUCTURE" => &mut p.body_part_structure,
                    "BODY" => &mut p.body,
                    "BINARY" => &mut p.binary,
                    _ => {
                        return Err(ProtoError::Syntax {
                            at,
                            expected: "BODY, BINARY or BODYPARTSTRUCTURE",
                        });
                    }
                };
                if std::mem::replace(flag, true) {
                    return Err(ProtoError::Syntax {
                        at,
                        expected: "each URLFETCH parameter once",
                    });
                }
            }
            if p.body && p.binary {
                return Err(c.err("BODY or BINARY, not both"));
            }
            c.expect(b')', "')' after URLFETCH parameters")?;
            args.push(UrlFetchArg {
                url,
                extended: Some(p),
            });
        } else {
            args.push(UrlFetchArg {
                url: c.astring_text()?,
                extended: None,
            });
        }
        if c.at_eol() {
            return Ok(CommandBody::UrlFetch(args));
        }
    }
}

pub(crate) fn resetkey(c: &mut Cursor<'_>) -> Result<CommandBody, ProtoError> {
    if c.at_eol() {
        return Ok(CommandBody::ResetKey {
            mailbox: None,
            mechanisms: Vec::new(),
        });
    }
    c.sp()?;
    let mailbox = c.mailbox()?;
    let mut mechanisms = Vec::new();
    while !c.at_eol() {
        c.sp()?;
        mechanisms.push(c.keyword()?);
    }
    Ok(CommandBody::ResetKey {
        mailbox: Some(mailbox),
        mechanisms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::command::{ParseOptions, parse_command_bytes};
    use crate::proto::types::Mailbox;

    fn p(s: &str) -> Result<CommandBody, crate::proto::command::Rejected> {
        parse_command_bytes(s.as_bytes(), ParseOptions::default()).map(|c| c.body)
    }

    const RUMP: &str = "imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred";

    #[test]
    fn genurlauth() {
        assert_eq!(
            p(&format!("a001 GENURLAUTH \"{RUMP}\" INTERNAL\r\n")).unwrap(),
            CommandBody::GenUrlAuth(vec![(RUMP.into(), "INTERNAL".into())])
        );
        assert_eq!(
            p("a GENURLAUTH \"u1\" internal {2}\r\nu2 INTERNAL\r\n").unwrap(),
            CommandBody::GenUrlAuth(vec![
                ("u1".into(), "INTERNAL".into()),
                ("u2".into(), "INTERNAL".into())
            ])
        );
        for bad in [
            "a GENURLAUTH\r\n",
            "a GENURLAUTH \"u\"\r\n",
            "a GENURLAUTH \"u\" \r\n",
            "a GENURLAUTH \"u\" INTERNAL \"v\"\r\n",
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn urlfetch() {
        assert_eq!(
            p("a URLFETCH \"imap://h/INBOX/;UID=1;URLAUTH=anonymous:INTERNAL:ab\"\r\n").unwrap(),
            CommandBody::UrlFetch(vec![UrlFetchArg {
                url: "imap://h/INBOX/;UID=1;URLAUTH=anonymous:INTERNAL:ab".into(),
                extended: None,
            }])
        );
        assert_eq!(
            p("a URLFETCH (\"u1\" BINARY BODYPARTSTRUCTURE) \"u2\" (\"u3\")\r\n").unwrap(),
            CommandBody::UrlFetch(vec![
                UrlFetchArg {
                    url: "u1".into(),
                    extended: Some(UrlFetchParams {
                        body_part_structure: true,
                        body: false,
                        binary: true,
                    }),
                },
                UrlFetchArg {
                    url: "u2".into(),
                    extended: None,
                },
                UrlFetchArg {
                    url: "u3".into(),
                    extended: Some(UrlFetchParams::default()),
                },
            ])
        );
        for bad in [
            "a URLFETCH\r\n",
            "a URLFETCH (\"u\" BODY BINARY)\r\n",
            "a URLFETCH (\"u\" BODY BODY)\r\n",
            "a URLFETCH (\"u\" TEXT)\r\n",
            "a URLFETCH (\"u\" BODY\r\n",
            "a URLFETCH \"u\" \r\n",
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn resetkey() {
        assert_eq!(
            p("a RESETKEY\r\n").unwrap(),
            CommandBody::ResetKey {
                mailbox: None,
                mechanisms: vec![]
            }
        );
        assert_eq!(
            p("a RESETKEY INBOX internal\r\n").unwrap(),
            CommandBody::ResetKey {
                mailbox: Some(Mailbox::new("INBOX")),
                mechanisms: vec!["INTERNAL".into()]
            }
        );
        assert_eq!(
            p("a RESETKEY \"Sent Items\"\r\n").unwrap(),
            CommandBody::ResetKey {
                mailbox: Some(Mailbox::new("Sent Items")),
                mechanisms: vec![]
            }
        );
        assert!(p("a RESETKEY \r\n").is_err());
        assert!(p("a RESETKEY INBOX \r\n").is_err());
    }
}
