//! Commands whose arguments are only mailbox names: `CREATE` (with RFC 6154 `(USE (\Sent))`),
//! `DELETE`, `RENAME`, `SUBSCRIBE`, `UNSUBSCRIBE`.

use super::Cursor;
use crate::proto::command::CommandBody;
use crate::proto::error::ProtoError;
use crate::proto::types::Mailbox;

pub(crate) fn one(c: &mut Cursor<'_>) -> Result<Mailbox, ProtoError> {
    c.sp()?;
    c.mailbox()
}

pub(crate) fn rename(c: &mut Cursor<'_>) -> Result<CommandBody, ProtoError> {
    let from = one(c)?;
    let to = one(c)?;
    Ok(CommandBody::Rename { from, to })
}

pub(crate) fn create(c: &mut Cursor<'_>) -> Result<CommandBody, ProtoError> {
    let mailbox = one(c)?;
    let mut special_use = Vec::new();
    if c.eat(b' ') {
        c.expect(b'(', "'(' before CREATE parameters")?;
        loop {
            let name = c.keyword()?;
            if name != "USE" {
                return Err(c.err("USE"));
            }
            c.sp()?;
            c.expect(b'(', "'(' before special-use attributes")?;
            if !c.eat(b')') {
                loop {
                    c.expect(b'\\', "special-use attribute")?;
                    special_use.push(c.atom()?.to_owned());
                    if c.eat(b')') {
                        break;
                    }
                    c.sp()?;
                }
            }
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
    }
    Ok(CommandBody::Create {
        mailbox,
        special_use,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::command::{ParseOptions, parse_command_bytes};

    fn p(s: &str) -> Result<CommandBody, crate::proto::command::Rejected> {
        parse_command_bytes(s.as_bytes(), ParseOptions::default()).map(|c| c.body)
    }

    #[test]
    fn mailbox_commands() {
        assert_eq!(
            p("A003 CREATE owatagusiam/\r\n").unwrap(),
            CommandBody::Create {
                mailbox: Mailbox::new("owatagusiam/"),
                special_use: vec![]
            }
        );
        assert_eq!(
            p("t1 CREATE \"Sent Mail\" (USE (\\Sent))\r\n").unwrap(),
            CommandBody::Create {
                mailbox: Mailbox::new("Sent Mail"),
                special_use: vec!["Sent".into()]
            }
        );
        assert_eq!(
            p("A683 DELETE blurdybloop\r\n").unwrap(),
            CommandBody::Delete(Mailbox::new("blurdybloop"))
        );
        assert_eq!(
            p("A683 RENAME blurdybloop sarasoop\r\n").unwrap(),
            CommandBody::Rename {
                from: Mailbox::new("blurdybloop"),
                to: Mailbox::new("sarasoop")
            }
        );
        assert_eq!(
            p("A002 SUBSCRIBE #news.comp.mail.mime\r\n").unwrap(),
            CommandBody::Subscribe(Mailbox::new("#news.comp.mail.mime"))
        );
        assert_eq!(
            p("A002 UNSUBSCRIBE \"&ZeVnLIqe-\"\r\n").unwrap(),
            CommandBody::Unsubscribe(Mailbox::new("\u{65e5}\u{672c}\u{8a9e}"))
        );
        assert!(p("a CREATE x (USE (Sent))\r\n").is_err());
        assert!(p("a CREATE x (FOO)\r\n").is_err());
        assert!(p("a RENAME x\r\n").is_err());
        assert!(p("a DELETE &Jjo\r\n").is_err());
    }
}
