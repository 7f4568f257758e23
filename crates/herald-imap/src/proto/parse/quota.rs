//! QUOTA (RFC 9208): `GETQUOTA root`, `GETQUOTAROOT mailbox`, `SETQUOTA root (resource limit …)`.

use super::Cursor;
use crate::proto::command::CommandBody;
use crate::proto::error::ProtoError;

pub(crate) fn getquota(c: &mut Cursor<'_>) -> Result<CommandBody, ProtoError> {
    c.sp()?;
    Ok(CommandBody::GetQuota(c.astring_text()?))
}

pub(crate) fn getquotaroot(c: &mut Cursor<'_>) -> Result<CommandBody, ProtoError> {
    c.sp()?;
    Ok(CommandBody::GetQuotaRoot(c.mailbox()?))
}

pub(crate) fn setquota(c: &mut Cursor<'_>) -> Result<CommandBody, ProtoError> {
    c.sp()?;
    let root = c.astring_text()?;
    c.sp()?;
    c.expect(b'(', "'(' before quota limits")?;
    let mut limits = Vec::new();
    if !c.eat(b')') {
        loop {
            let name = c.keyword()?;
            c.sp()?;
            let limit = c.number64()?;
            limits.push((name, limit));
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
    }
    Ok(CommandBody::SetQuota { root, limits })
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
    fn quota() {
        assert_eq!(
            p("G0001 GETQUOTA \"!partition/sda4\"\r\n").unwrap(),
            CommandBody::GetQuota("!partition/sda4".into())
        );
        assert_eq!(
            p("A003 GETQUOTAROOT INBOX\r\n").unwrap(),
            CommandBody::GetQuotaRoot(Mailbox::new("INBOX"))
        );
        assert_eq!(
            p("S0000 SETQUOTA \"#user/alice\" (Storage 510 MESSAGE 10)\r\n").unwrap(),
            CommandBody::SetQuota {
                root: "#user/alice".into(),
                limits: vec![("STORAGE".into(), 510), ("MESSAGE".into(), 10)]
            }
        );
        assert_eq!(
            p("S SETQUOTA \"\" ()\r\n").unwrap(),
            CommandBody::SetQuota {
                root: String::new(),
                limits: vec![]
            }
        );
        assert!(p("S SETQUOTA x (STORAGE)\r\n").is_err());
        assert!(p("S SETQUOTA x (STORAGE -1)\r\n").is_err());
    }
}
