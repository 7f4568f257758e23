//! Golden files: the exact wire form of one event of every registered type and of Herald's own
//! `vnd.herald.` types, as Herald emits them (DESIGN §5). A change to the encoding shows up as a diff to review in
//! `tests/golden/<EventType>.json`; refresh deliberately with `UPDATE_GOLDEN=1 cargo test`.
#![allow(clippy::unwrap_used)]

use herald_events::{Event, EventType, FlagNames, ImapUrl, Timestamp, UidSet, vnd};
use std::net::IpAddr;

const HOST: &str = "mail.example.org";
const VALIDITY: u32 = 1_732_345_678;

fn base(t: EventType, service: &str) -> Event {
    let mut e = Event::new(t);
    e.timestamp = Some(
        "2026-11-23T08:15:02.417+01:00"
            .parse::<Timestamp>()
            .unwrap(),
    );
    e.service = Some(service.into());
    e.user = Some("alice".into());
    e.server_fqdn = Some(HOST.into());
    e.pid = Some(4242);
    e.process = Some("herald".into());
    if service != "lmtp" && service != "admincli" {
        e.client_ip = Some("192.0.2.10".parse::<IpAddr>().unwrap());
        e.client_port = Some(50_123);
        e.server_domain = Some(HOST.into());
        e.server_port = Some(993);
    }
    e
}

fn inbox() -> ImapUrl {
    ImapUrl::mailbox(HOST, Some("alice"), "INBOX", Some(VALIDITY))
}

fn golden_event(t: &EventType) -> Event {
    use EventType::*;
    let service = match t {
        MessageNew => "lmtp",
        QuotaChange | MessageExpire | AccountCreate | AccountDelete | AccountDisable
        | AccountEnable | PasswordChange => "admincli",
        _ => "imap",
    };
    let mut e = base(t.clone(), service);
    match t {
        MessageNew => {
            e.uri = Some(ImapUrl::message(HOST, Some("alice"), "INBOX", VALIDITY, 7));
            e.mailbox_id = Some(inbox());
            e.messages = Some(7);
            e.uidnext = Some(8);
            e.message_size = Some(2113);
            e.modseq = Some(42);
            e.envelope = Some(
                "MAIL FROM:<bob@example.net> SIZE=2113\r\nRCPT TO:<alice@example.org>\r\n".into(),
            );
        }
        MessageAppend => {
            let sent = ImapUrl::mailbox(HOST, Some("alice"), "Sent", Some(VALIDITY + 1));
            e.uri = Some(ImapUrl::message(
                HOST,
                Some("alice"),
                "Sent",
                VALIDITY + 1,
                3,
            ));
            e.mailbox_id = Some(sent);
            e.flag_names = Some(FlagNames::new(["\\Seen"]));
            e.messages = Some(3);
            e.uidnext = Some(4);
            e.message_size = Some(1804);
            e.modseq = Some(12);
            e.set_extension(vnd::CAUSE, "append");
        }
        MessageExpire | MessageExpunge | MessageRead | MessageTrash | FlagsSet | FlagsClear => {
            e.uri = Some(inbox());
            e.mailbox_id = Some(inbox());
            e.uidset = Some(UidSet::from_uids([1, 2, 3, 5, 9, 10, 11, 12]));
            e.messages = Some(20);
            e.uidnext = Some(21);
            if matches!(t, FlagsSet | FlagsClear) {
                e.flag_names = Some(FlagNames::new(["\\Flagged", "$Label1"]));
            }
        }
        QuotaExceed | QuotaWithin | QuotaChange => {
            e.uri = Some(ImapUrl::server(HOST, Some("alice")));
            e.disk_quota = Some(102_400);
            e.disk_used = Some(if *t == QuotaExceed { 102_399 } else { 51_200 });
            e.max_messages = Some(10_000);
            e.messages = Some(812);
            if *t == QuotaExceed {
                e.mailbox_id = Some(inbox());
            }
            if *t == QuotaWithin {
                e.set_extension(vnd::CAUSE, "expunge");
            }
        }
        Login | Logout => {
            e.uri = Some(ImapUrl::server(HOST, Some("alice")));
            if *t == Logout {
                e.set_extension(vnd::DISCONNECT, "graceful");
                e.set_extension(vnd::SESSION_MS, 93_412);
            }
        }
        MailboxCreate | MailboxDelete | MailboxSubscribe | MailboxUnSubscribe => {
            let work =
                ImapUrl::mailbox(HOST, Some("alice"), "Projects/Entwürfe", Some(VALIDITY + 2));
            e.uri = Some(work.clone());
            e.mailbox_id = Some(work);
        }
        MailboxRename => {
            let new = ImapUrl::mailbox(HOST, Some("alice"), "Archive/2026", Some(VALIDITY + 3));
            e.uri = Some(new.clone());
            e.mailbox_id = Some(new);
            e.old_mailbox_id = Some(ImapUrl::mailbox(
                HOST,
                Some("alice"),
                "Work",
                Some(VALIDITY + 3),
            ));
        }
        LoginFailed => {
            e.uri = Some(ImapUrl::server(HOST, None));
            e.set_extension(vnd::MECHANISM, "PLAIN");
            e.set_extension(vnd::REASON, "bad-credentials");
        }
        AccountCreate | AccountDelete | AccountDisable | AccountEnable | PasswordChange => {
            e.uri = Some(ImapUrl::server(HOST, Some("alice")));
        }
        MetadataChange => {
            e.uri = Some(inbox());
            e.mailbox_id = Some(inbox());
            e.set_extension(
                vnd::METADATA_ENTRIES,
                serde_json::json!(["/private/comment", "/shared/vendor/x"]),
            );
        }
        AclChange => {
            let shared = ImapUrl::mailbox(HOST, Some("alice"), "Projects", Some(VALIDITY + 4));
            e.uri = Some(shared.clone());
            e.mailbox_id = Some(shared);
            e.set_extension(vnd::ACL_IDENTIFIER, "bob");
            e.set_extension(vnd::ACL_RIGHTS, "lrsi");
        }
        Vendor(_) | Unregistered(_) => unreachable!(),
    }
    e.set_herald_id(1093);
    e
}

/// A MetadataChange of server entries: `uri` names the server, no `mailboxID`.
fn golden_server_metadata() -> Event {
    let mut e = golden_event(&EventType::MetadataChange);
    e.uri = Some(ImapUrl::server(HOST, Some("alice")));
    e.mailbox_id = None;
    e.set_extension(vnd::METADATA_ENTRIES, serde_json::json!(["/shared/admin"]));
    e
}

#[test]
fn every_registered_event_matches_its_golden_file() {
    let dir = format!("{}/tests/golden", env!("CARGO_MANIFEST_DIR"));
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut stale = Vec::new();
    let all = EventType::REGISTERED
        .into_iter()
        .chain(EventType::HERALD)
        .map(|t| (t.to_string(), golden_event(&t)))
        .chain([(
            "vnd.herald.MetadataChange-server".to_owned(),
            golden_server_metadata(),
        )]);
    for (t, event) in all {
        event.validate().unwrap_or_else(|v| panic!("{t}: {v}"));
        let line = format!("{}\n", event.to_json());
        let path = format!("{dir}/{t}.json");
        if update {
            std::fs::write(&path, &line).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("{path} missing: run with UPDATE_GOLDEN=1"));
        if expected != line {
            stale.push(format!("{t}:\n  golden:  {expected}  current: {line}"));
        }
        // The golden text decodes back to the same event.
        assert_eq!(Event::from_json(expected.trim_end()).unwrap(), event, "{t}");
    }
    assert!(
        stale.is_empty(),
        "wire format changed (UPDATE_GOLDEN=1 to accept):\n{}",
        stale.join("\n")
    );
}
