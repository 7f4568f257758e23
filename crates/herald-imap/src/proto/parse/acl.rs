//! ACL (RFC 4314 §3): `SETACL mailbox identifier mod-rights`, `DELETEACL mailbox identifier`,
//! `GETACL mailbox`, `LISTRIGHTS mailbox identifier`, `MYRIGHTS mailbox`. Identifiers and
//! rights are astrings; what the rights letters mean is the session's and the store's
//! business, so an unknown letter is a `NO` with the mailbox in hand, not a `BAD`.

use super::Cursor;
use crate::proto::command::CommandBody;
use crate::proto::error::ProtoError;

pub(crate) fn setacl(c: &mut Cursor<'_>) -> Result<CommandBody, ProtoError> {
    c.sp()?;
    let mailbox = c.mailbox()?;
    c.sp()?;
    let identifier = c.astring_text()?;
    c.sp()?;
    let rights = c.astring_text()?;
    Ok(CommandBody::SetAcl {
        mailbox,
        identifier,
        rights,
    })
}

pub(crate) fn deleteacl(c: &mut Cursor<'_>) -> Result<CommandBody, ProtoError> {
    c.sp()?;
    let mailbox = c.mailbox()?;
    c.sp()?;
    let identifier = c.astring_text()?;
    Ok(CommandBody::DeleteAcl {
        mailbox,
        identifier,
    })
}

pub(crate) fn getacl(c: &mut Cursor<'_>) -> Result<CommandBody, ProtoError> {
    c.sp()?;
    Ok(CommandBody::GetAcl(c.mailbox()?))
}

pub(crate) fn listrights(c: &mut Cursor<'_>) -> Result<CommandBody, ProtoError> {
    c.sp()?;
    let mailbox = c.mailbox()?;
    c.sp()?;
    let identifier = c.astring_text()?;
    Ok(CommandBody::ListRights {
        mailbox,
        identifier,
    })
}

pub(crate) fn myrights(c: &mut Cursor<'_>) -> Result<CommandBody, ProtoError> {
    c.sp()?;
    Ok(CommandBody::MyRights(c.mailbox()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::command::{ParseOptions, parse_command_bytes};
    use crate::proto::types::Mailbox;

    fn p(s: &str) -> Result<CommandBody, crate::proto::command::Rejected> {
        parse_command_bytes(s.as_bytes(), ParseOptions::default()).map(|c| c.body)
    }

    #[test]
    fn the_rfc_4314_examples_parse() {
        assert_eq!(
            p("A035 SETACL INBOX/Drafts John lrQswicdakxet\r\n").unwrap(),
            CommandBody::SetAcl {
                mailbox: Mailbox::new("INBOX/Drafts"),
                identifier: "John".into(),
                rights: "lrQswicdakxet".into(),
            }
        );
        assert_eq!(
            p("C2 SETACL INBOX/Drafts Chris +cda\r\n").unwrap(),
            CommandBody::SetAcl {
                mailbox: Mailbox::new("INBOX/Drafts"),
                identifier: "Chris".into(),
                rights: "+cda".into(),
            }
        );
        assert_eq!(
            p("A001 SETACL \"user/bob/Shared Box\" anyone \"\"\r\n").unwrap(),
            CommandBody::SetAcl {
                mailbox: Mailbox::new("user/bob/Shared Box"),
                identifier: "anyone".into(),
                rights: String::new(),
            }
        );
        assert_eq!(
            p("A002 DELETEACL INBOX Fred\r\n").unwrap(),
            CommandBody::DeleteAcl {
                mailbox: Mailbox::new("INBOX"),
                identifier: "Fred".into(),
            }
        );
        assert_eq!(
            p("A002 GETACL inbox\r\n").unwrap(),
            CommandBody::GetAcl(Mailbox::new("INBOX"))
        );
        assert_eq!(
            p("a001 LISTRIGHTS ~/Mail/saved smith\r\n").unwrap(),
            CommandBody::ListRights {
                mailbox: Mailbox::new("~/Mail/saved"),
                identifier: "smith".into(),
            }
        );
        assert_eq!(
            p("A003 MYRIGHTS INBOX\r\n").unwrap(),
            CommandBody::MyRights(Mailbox::new("INBOX"))
        );
        assert_eq!(p("A003 myrights Archive\r\n").unwrap().name(), "MYRIGHTS");
    }

    #[test]
    fn missing_arguments_are_rejected() {
        for bad in [
            "A SETACL INBOX fred\r\n",
            "A SETACL INBOX\r\n",
            "A DELETEACL INBOX\r\n",
            "A GETACL\r\n",
            "A LISTRIGHTS INBOX\r\n",
            "A MYRIGHTS\r\n",
            "A MYRIGHTS INBOX extra\r\n",
            "A SETACL INBOX fred lr x\r\n",
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
    }
}
