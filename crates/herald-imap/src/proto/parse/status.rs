//! `STATUS mailbox (item …)` (RFC 9051 §6.3.11; SIZE from RFC 8438, HIGHESTMODSEQ from RFC 7162,
//! RECENT from RFC 3501). The item list is shared with `LIST … RETURN (STATUS (…))`.

use super::Cursor;
use crate::proto::command::{CommandBody, StatusItem};
use crate::proto::error::ProtoError;

pub(crate) fn status_items(c: &mut Cursor<'_>) -> Result<Vec<StatusItem>, ProtoError> {
    c.expect(b'(', "'(' before status items")?;
    let mut items = Vec::new();
    loop {
        let name = c.keyword()?;
        items.push(match name.as_str() {
            "MESSAGES" => StatusItem::Messages,
            "UIDNEXT" => StatusItem::UidNext,
            "UIDVALIDITY" => StatusItem::UidValidity,
            "UNSEEN" => StatusItem::Unseen,
            "DELETED" => StatusItem::Deleted,
            "SIZE" => StatusItem::Size,
            "RECENT" => StatusItem::Recent,
            "HIGHESTMODSEQ" => StatusItem::HighestModSeq,
            "MAILBOXID" => StatusItem::MailboxId,
            _ => return Err(c.err("status item")),
        });
        if c.eat(b')') {
            return Ok(items);
        }
        c.sp()?;
    }
}

pub(crate) fn parse(c: &mut Cursor<'_>) -> Result<CommandBody, ProtoError> {
    c.sp()?;
    let mailbox = c.mailbox()?;
    c.sp()?;
    let items = status_items(c)?;
    Ok(CommandBody::Status { mailbox, items })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::command::{ParseOptions, parse_command_bytes};
    use crate::proto::types::Mailbox;

    #[test]
    fn status() {
        let c = parse_command_bytes(
            b"A042 STATUS blurdybloop (UIDNEXT MESSAGES size highestmodseq DELETED RECENT UNSEEN UIDVALIDITY)\r\n",
            ParseOptions::default(),
        )
        .unwrap();
        assert_eq!(
            c.body,
            CommandBody::Status {
                mailbox: Mailbox::new("blurdybloop"),
                items: vec![
                    StatusItem::UidNext,
                    StatusItem::Messages,
                    StatusItem::Size,
                    StatusItem::HighestModSeq,
                    StatusItem::Deleted,
                    StatusItem::Recent,
                    StatusItem::Unseen,
                    StatusItem::UidValidity
                ]
            }
        );
        for bad in [
            "a STATUS x ()\r\n",
            "a STATUS x (FOO)\r\n",
            "a STATUS x MESSAGES\r\n",
            "a STATUS x (MESSAGES\r\n",
        ] {
            assert!(
                parse_command_bytes(bad.as_bytes(), ParseOptions::default()).is_err(),
                "{bad}"
            );
        }
    }
}
