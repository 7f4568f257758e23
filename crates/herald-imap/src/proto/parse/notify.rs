//! `NOTIFY NONE` and `NOTIFY SET [STATUS] (filter events) …` (RFC 5465 §3.1, §8).
//!
//! Only the syntax is checked here; the composition rules (MessageNew with MessageExpunge, one
//! selected filter, …) are [`NotifySet::check`], and which events Herald supports is the
//! session's question, because their breach is answered `BAD` and `NO [BADEVENT]`, not a
//! syntax error. Keywords and event names are case-insensitive (§8).

use super::Cursor;
use super::fetch::attr;
use crate::proto::command::{
    CommandBody, NotifyCommand, NotifyEvent, NotifyFilter, NotifyGroup, NotifySet,
};
use crate::proto::error::ProtoError;
use crate::proto::types::Mailbox;

/// Most event groups in one NOTIFY, and mailboxes named in one group: a client asking for
/// more is abusive, and each is checked against every event the session sees.
pub const MAX_NOTIFY_ITEMS: usize = 256;

/// Most fetch attributes of one `MessageNew`.
const MAX_FETCH_ATTS: usize = 32;

pub(crate) fn parse(c: &mut Cursor<'_>) -> Result<CommandBody, ProtoError> {
    c.sp()?;
    if c.eat_keyword("NONE") {
        return Ok(CommandBody::Notify(NotifyCommand::None));
    }
    if !c.eat_keyword("SET") {
        return Err(c.err("SET or NONE"));
    }
    c.sp()?;
    let status = c.eat_keyword("STATUS");
    if status {
        c.sp()?;
    }
    let mut groups = Vec::new();
    loop {
        groups.push(group(c)?);
        if groups.len() > MAX_NOTIFY_ITEMS {
            return Err(c.err("at most 256 event groups"));
        }
        if !c.eat(b' ') {
            break;
        }
    }
    Ok(CommandBody::Notify(NotifyCommand::Set(NotifySet {
        status,
        groups,
    })))
}

/// `event-group = "(" filter-mailboxes SP events ")"`
fn group(c: &mut Cursor<'_>) -> Result<NotifyGroup, ProtoError> {
    c.expect(b'(', "'(' before an event group")?;
    let filter = filter(c)?;
    c.sp()?;
    let events = events(c)?;
    c.expect(b')', "')' after an event group")?;
    Ok(NotifyGroup { filter, events })
}

fn filter(c: &mut Cursor<'_>) -> Result<NotifyFilter, ProtoError> {
    let at = c.pos();
    let name = c.keyword()?;
    Ok(match name.as_str() {
        "SELECTED" => NotifyFilter::Selected,
        "SELECTED-DELAYED" => NotifyFilter::SelectedDelayed,
        "INBOXES" => NotifyFilter::Inboxes,
        "PERSONAL" => NotifyFilter::Personal,
        "SUBSCRIBED" => NotifyFilter::Subscribed,
        "SUBTREE" => NotifyFilter::Subtree(mailboxes(c)?),
        "MAILBOXES" => NotifyFilter::Mailboxes(mailboxes(c)?),
        _ => {
            return Err(ProtoError::Syntax {
                at,
                expected: "selected, selected-delayed, inboxes, personal, subscribed, subtree or mailboxes",
            });
        }
    })
}

/// `SP one-or-more-mailbox`: one mailbox or a parenthesised list of them.
fn mailboxes(c: &mut Cursor<'_>) -> Result<Vec<Mailbox>, ProtoError> {
    c.sp()?;
    if !c.eat(b'(') {
        return Ok(vec![c.mailbox()?]);
    }
    let mut out = Vec::new();
    loop {
        out.push(c.mailbox()?);
        if out.len() > MAX_NOTIFY_ITEMS {
            return Err(c.err("at most 256 mailboxes in a filter"));
        }
        if c.eat(b')') {
            return Ok(out);
        }
        c.sp()?;
    }
}

/// `events = ( "(" event *(SP event) ")" ) / "NONE"`; `NONE` is an empty list.
fn events(c: &mut Cursor<'_>) -> Result<Vec<NotifyEvent>, ProtoError> {
    if c.eat_keyword("NONE") {
        return Ok(Vec::new());
    }
    c.expect(b'(', "'(' before events, or NONE")?;
    let mut out = Vec::new();
    loop {
        out.push(event(c)?);
        if out.len() > MAX_NOTIFY_ITEMS {
            return Err(c.err("at most 256 events in a group"));
        }
        if c.eat(b')') {
            return Ok(out);
        }
        c.sp()?;
    }
}

fn event(c: &mut Cursor<'_>) -> Result<NotifyEvent, ProtoError> {
    let name = c.atom()?;
    Ok(match name.to_ascii_uppercase().as_str() {
        "MESSAGENEW" => {
            let mut atts = Vec::new();
            // ` (` starts the fetch attributes; a ` ` followed by anything else is the next
            // event.
            if c.peek() == Some(b' ') && c.peek_at(1) == Some(b'(') {
                c.skip(2);
                loop {
                    atts.push(attr(c)?);
                    if atts.len() > MAX_FETCH_ATTS {
                        return Err(c.err("at most 32 fetch attributes"));
                    }
                    if c.eat(b')') {
                        break;
                    }
                    c.sp()?;
                }
            }
            NotifyEvent::MessageNew(atts)
        }
        "MESSAGEEXPUNGE" => NotifyEvent::MessageExpunge,
        "FLAGCHANGE" => NotifyEvent::FlagChange,
        "ANNOTATIONCHANGE" => NotifyEvent::AnnotationChange,
        "MAILBOXNAME" => NotifyEvent::MailboxName,
        "SUBSCRIPTIONCHANGE" => NotifyEvent::SubscriptionChange,
        "MAILBOXMETADATACHANGE" => NotifyEvent::MailboxMetadataChange,
        "SERVERMETADATACHANGE" => NotifyEvent::ServerMetadataChange,
        _ => NotifyEvent::Other(name.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use crate::proto::command::{
        CommandBody, FetchAttr, NotifyCommand, NotifyEvent, NotifyFilter, NotifyGroup, NotifySet,
        ParseOptions, Section, SectionText, parse_command_bytes,
    };
    use crate::proto::types::Mailbox;

    fn set(s: &str) -> NotifySet {
        match parse_command_bytes(s.as_bytes(), ParseOptions::default()) {
            Ok(c) => match c.body {
                CommandBody::Notify(NotifyCommand::Set(set)) => set,
                other => panic!("{other:?}"),
            },
            Err(e) => panic!("{s}: {e:?}"),
        }
    }

    fn rejected(s: &str) -> bool {
        parse_command_bytes(s.as_bytes(), ParseOptions::default()).is_err()
    }

    #[test]
    fn none_and_the_issue_s_command() {
        let c = parse_command_bytes(b"a notify none\r\n", ParseOptions::default()).unwrap();
        assert_eq!(c.body, CommandBody::Notify(NotifyCommand::None));
        let s = set(
            "a NOTIFY SET (selected (MessageNew (UID FLAGS) MessageExpunge)) \
             (personal (MessageNew MessageExpunge MailboxName SubscriptionChange))\r\n",
        );
        assert!(!s.status);
        assert_eq!(
            s.groups,
            vec![
                NotifyGroup {
                    filter: NotifyFilter::Selected,
                    events: vec![
                        NotifyEvent::MessageNew(vec![FetchAttr::Uid, FetchAttr::Flags]),
                        NotifyEvent::MessageExpunge
                    ],
                },
                NotifyGroup {
                    filter: NotifyFilter::Personal,
                    events: vec![
                        NotifyEvent::MessageNew(vec![]),
                        NotifyEvent::MessageExpunge,
                        NotifyEvent::MailboxName,
                        NotifyEvent::SubscriptionChange
                    ],
                },
            ]
        );
        assert_eq!(s.check(), Ok(()));
    }

    #[test]
    fn the_rfc_example_with_status_subtree_and_mailboxes() {
        // RFC 5465 §3.1 as corrected by errata 1804 and 2318.
        let s = set("b notify set status (selected (MessageNew (uid \
             body.peek[header.fields (from to subject)]) MessageExpunge)) \
             (subtree Lists (MessageNew)) (mailboxes (misc \"Other Box\") (MessageNew MessageExpunge))\r\n");
        assert!(s.status);
        assert_eq!(
            s.groups[0].events[0],
            NotifyEvent::MessageNew(vec![
                FetchAttr::Uid,
                FetchAttr::BodySection {
                    peek: true,
                    section: Section {
                        part: vec![],
                        text: Some(SectionText::HeaderFields(vec![
                            "FROM".into(),
                            "TO".into(),
                            "SUBJECT".into()
                        ])),
                    },
                    partial: None,
                }
            ])
        );
        assert_eq!(
            s.groups[1].filter,
            NotifyFilter::Subtree(vec![Mailbox::new("Lists")])
        );
        assert_eq!(
            s.groups[2].filter,
            NotifyFilter::Mailboxes(vec![Mailbox::new("misc"), Mailbox::new("Other Box")])
        );
        // `(subtree Lists (MessageNew))` breaks the MessageNew/MessageExpunge rule.
        assert!(s.check().is_err());
    }

    #[test]
    fn every_filter_and_event_parses() {
        let s = set(
            "t NOTIFY SET (selected-delayed NONE) (inboxes (MessageNew MessageExpunge \
             FlagChange)) (subscribed (MailboxMetadataChange ServerMetadataChange)) \
             (INBOXES (AnnotationChange x-Unknown))\r\n",
        );
        assert_eq!(s.groups[0].filter, NotifyFilter::SelectedDelayed);
        assert!(s.groups[0].events.is_empty());
        assert_eq!(s.groups[1].events[2], NotifyEvent::FlagChange);
        assert_eq!(
            s.groups[2].events,
            vec![
                NotifyEvent::MailboxMetadataChange,
                NotifyEvent::ServerMetadataChange
            ]
        );
        assert_eq!(
            s.groups[3].events,
            vec![
                NotifyEvent::AnnotationChange,
                NotifyEvent::Other("x-Unknown".into())
            ]
        );
    }

    #[test]
    fn syntax_errors_are_rejected() {
        for bad in [
            "a NOTIFY\r\n",
            "a NOTIFY SET\r\n",
            "a NOTIFY SET STATUS\r\n",
            "a NOTIFY SET ()\r\n",
            "a NOTIFY SET (personal)\r\n",
            "a NOTIFY SET (personal ())\r\n",
            "a NOTIFY SET (everything (MessageNew MessageExpunge))\r\n",
            "a NOTIFY SET (subtree (MessageNew MessageExpunge))\r\n",
            "a NOTIFY SET (mailboxes () (MailboxName))\r\n",
            "a NOTIFY SET (personal (MessageNew (NOSUCHATT) MessageExpunge))\r\n",
            "a NOTIFY SET (personal (MailboxName)\r\n",
            "a NOTIFY SET (personal (MailboxName))  (selected NONE)\r\n",
            "a NOTIFY NONE extra\r\n",
            "a NOTIFY SOME\r\n",
        ] {
            assert!(rejected(bad), "{bad}");
        }
    }

    #[test]
    fn composition_rules() {
        let check = |s: &str| set(s).check();
        assert!(check("a NOTIFY SET (personal (MessageNew))\r\n").is_err());
        assert!(check("a NOTIFY SET (personal (MessageExpunge))\r\n").is_err());
        assert!(check("a NOTIFY SET (personal (FlagChange))\r\n").is_err());
        assert!(check("a NOTIFY SET (personal (MessageNew FlagChange))\r\n").is_err());
        assert!(
            check("a NOTIFY SET (selected (MessageNew MessageExpunge MailboxName))\r\n").is_err()
        );
        assert!(check("a NOTIFY SET (selected NONE) (selected-delayed NONE)\r\n").is_err());
        assert!(
            check("a NOTIFY SET (selected (MessageNew MessageExpunge FlagChange))\r\n").is_ok()
        );
        assert!(check("a NOTIFY SET (selected (x-Future))\r\n").is_ok());
        assert!(check("a NOTIFY SET (personal (MailboxName SubscriptionChange))\r\n").is_ok());
    }

    #[test]
    fn bounds() {
        let many = " (personal NONE)".repeat(257);
        assert!(rejected(&format!("a NOTIFY SET{many}\r\n")));
        let boxes = vec!["x"; 257].join(" ");
        assert!(rejected(&format!(
            "a NOTIFY SET (mailboxes ({boxes}) (MailboxName))\r\n"
        )));
    }
}
