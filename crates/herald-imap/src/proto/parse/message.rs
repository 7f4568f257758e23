//! Commands that name messages and a destination or nothing else: `[UID] COPY`, `[UID] MOVE`
//! (RFC 6851) and `UID EXPUNGE` (RFC 4315).

use super::Cursor;
use crate::proto::command::CommandBody;
use crate::proto::error::ProtoError;

pub(crate) fn copy_move(
    c: &mut Cursor<'_>,
    uid: bool,
    is_move: bool,
) -> Result<CommandBody, ProtoError> {
    c.sp()?;
    let set = c.sequence_set()?;
    c.sp()?;
    let mailbox = c.mailbox()?;
    Ok(if is_move {
        CommandBody::Move { uid, set, mailbox }
    } else {
        CommandBody::Copy { uid, set, mailbox }
    })
}

pub(crate) fn uid_expunge(c: &mut Cursor<'_>) -> Result<CommandBody, ProtoError> {
    c.sp()?;
    Ok(CommandBody::UidExpunge(c.sequence_set()?))
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
    fn copy_move_expunge() {
        let CommandBody::Copy { uid, set, mailbox } = p("A003 COPY 2:4 MEETING\r\n").unwrap()
        else {
            panic!()
        };
        assert!(!uid);
        assert_eq!(
            (set.to_string(), mailbox),
            ("2:4".into(), Mailbox::new("MEETING"))
        );
        let CommandBody::Move { uid, .. } = p("a UID MOVE 42:69 foo\r\n").unwrap() else {
            panic!()
        };
        assert!(uid);
        let CommandBody::UidExpunge(set) = p("A003 UID EXPUNGE 3000:3002\r\n").unwrap() else {
            panic!()
        };
        assert_eq!(set.to_string(), "3000:3002");
        assert!(p("a COPY 1\r\n").is_err());
        assert!(p("a UID BOGUS 1\r\n").is_err());
        assert!(p("a MOVE 1:2 \r\n").is_err());
    }
}
