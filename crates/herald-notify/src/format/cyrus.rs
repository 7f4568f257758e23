//! The `cyrus` output format: Herald's events in the shape Cyrus IMAP 3.x writes to its event
//! notifier, so consumers written for Cyrus (DESIGN §5) work unchanged.
//!
//! The reference is what Cyrus really emits — `imap/mboxevent.c` and the Cyrus 3.6.1 stream
//! recorded in `herald-events/tests/data/cyrus-3.6.1-events.jsonl` — and the rule is: **Cyrus's
//! names and value forms wherever both servers know a parameter; Herald's other parameters pass
//! through unchanged; Cyrus parameters Herald cannot know are absent, never invented.** JSON
//! consumers ignore keys they do not know, so an extra key is harmless, while a made-up value
//! would be a lie a consumer acts on.
//!
//! What changes from the RFC 5423 shape:
//! - `timestamp` is written in UTC with `Z` and milliseconds (`2026-11-23T07:15:02.417Z`), as
//!   Cyrus's `timeval_to_iso8601` does; the instant is the same.
//! - IMAP URLs (`uri`, `mailboxID`, `oldMailboxID`) take Cyrus's form: no user in the authority,
//!   and the mailbox named in Cyrus's admin namespace with `/` as separator, as the sample shows
//!   (`imap://host/user/alice;UIDVALIDITY=…` for INBOX, `…/user/alice/Work` for `Work`; a
//!   Herald name under INBOX, `INBOX/x`, stays `user/alice/INBOX/x` so two Herald mailboxes never
//!   share a Cyrus name). Login/Logout name the server only (`imap://host`), and quota events
//!   name the quota root (`imap://host/user/alice`). MailboxSubscribe/UnSubscribe carry no
//!   `;UIDVALIDITY=` (Cyrus builds those URLs from the name alone).
//! - Copies and moves: Herald records each copied or moved message as a `MessageAppend` with
//!   `vnd.herald.cause` = `copy`/`move` and `vnd.herald.sourceMailboxID`. With both present the
//!   event becomes `vnd.cmu.MessageCopy`/`vnd.cmu.MessageMove`, with Cyrus's parameters:
//!   `oldMailboxID` = the source mailbox URL, `uri` = the destination mailbox URL (no `;UID=`)
//!   and `uidset` = the new UID; `vnd.herald.sourceUidset` (the source UID) becomes
//!   `vnd.cmu.oldUidset`. The source half of a move stays `MessageExpunge`, as in Cyrus.
//!   Without those parameters (a subscription's `params` allow-list removed them) the event stays
//!   `MessageAppend`: nothing else tells a copy from an append.
//! - `vnd.herald.AclChange` is Cyrus's un-prefixed `AclChange`, its `vnd.herald.aclIdentifier`
//!   and `vnd.herald.aclRights` Cyrus's `aclSubject` and `aclRights` (Cyrus's whole-ACL
//!   `vnd.cmu.mailboxACL` is not known from one change, so it is absent).
//! - `vnd.cmu.mbtype` = `e` (an email mailbox) on the message, flag and mailbox events where
//!   Cyrus sends it: every Herald mailbox is an email mailbox, so this is known, not invented.
//!
//! Intentional differences a Cyrus consumer may notice (each checked by the golden tests in
//! `tests/cyrus_format.rs`):
//! - `mailboxID` is the mailbox's IMAP URL (Cyrus form), not Cyrus's opaque unique id: Herald's
//!   events carry no such id. Unlike Cyrus's, it changes when the mailbox is renamed.
//! - Absent because Herald does not know them: `vnd.cmu.unseenMessages`, `vnd.cmu.midset`,
//!   `vnd.cmu.mailboxACL`, `vnd.cmu.sessionId`, `vnd.cmu.envelope`, `bodyStructure`,
//!   `vnd.cmu.emailid`, `vnd.cmu.threadid` and the `vnd.fastmail.*` parameters.
//! - One event per copied message where Cyrus sends one per command with a UID set, because the
//!   encoder sees one event at a time and Herald's outbox holds one per message.
//! - Present in addition: `process`, `vnd.herald.*` (notably `vnd.herald.id`, the key to
//!   deduplicate and resume on), the SMTP `envelope` of MessageNew (Cyrus's `vnd.cmu.envelope`
//!   is the IMAP ENVELOPE, a different thing, so the names stay apart), `clientIP`/`clientPort`/
//!   `serverDomain`/`serverPort` on events other than Login/Logout, `messageSize`/`flagNames`
//!   on copies, and `modseq` on events about several messages (Cyrus drops it there).
//! - DESIGN §5 names Cyrus's internal `serverAddress`/`clientAddress` ("host;port"); Cyrus's
//!   JSON formatter splits them into `serverDomain`/`serverPort` and `clientIP`/`clientPort`,
//!   which is also Herald's form, so these keys are written unchanged.

use herald_events::{Event, EventGroup, EventType, ImapUrl};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

/// Cyrus's name for a copy.
pub const MESSAGE_COPY: &str = "vnd.cmu.MessageCopy";
/// Cyrus's name for a move.
pub const MESSAGE_MOVE: &str = "vnd.cmu.MessageMove";

/// A JSON object that keeps its keys in order (serde_json's map sorts them here).
#[derive(Debug, Default)]
struct Ordered(Vec<(String, Value)>);

impl Serialize for Ordered {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ordered, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Ordered, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = a.next_entry::<String, Value>()? {
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Whether Cyrus attaches `vnd.cmu.mbtype` to this event (the mailbox was looked up).
fn has_mbtype(event: &EventType) -> bool {
    matches!(
        event.group(),
        Some(EventGroup::Message | EventGroup::Flags | EventGroup::Mailbox)
    )
}

/// How an IMAP URL is rewritten.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Login/Logout: the server only.
    Server,
    /// Any other URL: the mailbox in Cyrus's namespace.
    Mailbox,
}

/// `url` in Cyrus's form (module doc).
fn cyrus_url(url: &ImapUrl, role: Role) -> ImapUrl {
    let mut out = url.clone();
    out.user = None;
    out.auth = None;
    if role == Role::Server {
        return ImapUrl {
            port: url.port,
            ..ImapUrl::server(url.host.clone(), None)
        };
    }
    if let Some(user) = &url.user {
        let root = format!("user/{user}");
        out.mailbox = Some(match url.mailbox.as_deref() {
            None => root,
            Some(m) if m.eq_ignore_ascii_case("INBOX") => root,
            Some(m) => format!("{root}/{m}"),
        });
    }
    out
}

fn cyrus_url_string(value: &Value, role: Role) -> Value {
    match value.as_str().and_then(|s| s.parse::<ImapUrl>().ok()) {
        Some(url) => Value::String(cyrus_url(&url, role).to_string()),
        None => value.clone(),
    }
}

/// A copy or move Herald can prove from the event: (Cyrus's event name, source mailbox URL).
fn copy_or_move(event: &Event) -> Option<(&'static str, ImapUrl)> {
    if event.event != EventType::MessageAppend {
        return None;
    }
    let name = match event.extension(herald_events::vnd::CAUSE)?.as_str()? {
        "copy" => MESSAGE_COPY,
        "move" => MESSAGE_MOVE,
        _ => return None,
    };
    let source = event
        .extension(herald_events::vnd::SOURCE_MAILBOX_ID)?
        .as_str()?
        .parse::<ImapUrl>()
        .ok()?;
    Some((name, source))
}

/// The event's type as the cyrus format names it (for subjects, topics and routing keys).
pub fn event_name(event: &Event) -> String {
    match copy_or_move(event) {
        Some((name, _)) => name.to_owned(),
        None => cyrus_type(&event.event),
    }
}

/// Cyrus's name of a type that is not a copy or move.
fn cyrus_type(t: &EventType) -> String {
    match t {
        EventType::AclChange => ACL_CHANGE.to_owned(),
        t => t.to_string(),
    }
}

/// Cyrus's (un-prefixed) name for a mailbox ACL change.
pub const ACL_CHANGE: &str = "AclChange";

/// Encodes one event in Cyrus's shape (no trailing newline).
pub fn encode(event: &Event) -> Vec<u8> {
    let Ok(Ordered(fields)) = serde_json::from_str::<Ordered>(&event.to_json()) else {
        // An event always encodes to an object; keep the registry shape if that ever changes.
        return event.to_json().into_bytes();
    };
    let role = match event.event {
        EventType::Login | EventType::Logout => Role::Server,
        _ => Role::Mailbox,
    };
    let copy = copy_or_move(event);
    let drop_uidvalidity = matches!(
        event.event,
        EventType::MailboxSubscribe | EventType::MailboxUnSubscribe
    );
    let mut out = Vec::with_capacity(fields.len() + 3);
    let mut copy_uid = None;
    for (key, value) in fields {
        match key.as_str() {
            "event" => {
                let name = copy
                    .as_ref()
                    .map_or_else(|| cyrus_type(&event.event), |(name, _)| (*name).to_owned());
                out.push((key, Value::String(name)));
            }
            "timestamp" => {
                let v = match &event.timestamp {
                    Some(t) => Value::String(
                        t.as_datetime()
                            .with_timezone(&chrono::Utc)
                            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                            .to_string(),
                    ),
                    None => value,
                };
                out.push((key, v));
            }
            "uri" => {
                let v = match (&event.uri, &copy) {
                    (Some(uri), Some((_, source))) => {
                        copy_uid = uri.uid;
                        let mut old = cyrus_url(&source.mailbox_url(), Role::Mailbox);
                        old.uidvalidity = source.uidvalidity;
                        out.push(("oldMailboxID".to_owned(), Value::String(old.to_string())));
                        Value::String(cyrus_url(&uri.mailbox_url(), role).to_string())
                    }
                    (Some(uri), None) => {
                        let mut u = cyrus_url(uri, role);
                        if drop_uidvalidity {
                            u.uidvalidity = None;
                        }
                        Value::String(u.to_string())
                    }
                    (None, _) => cyrus_url_string(&value, role),
                };
                out.push((key, v));
            }
            "mailboxID" | "oldMailboxID" => {
                let mut v = cyrus_url_string(&value, Role::Mailbox);
                if drop_uidvalidity
                    && let Some(mut u) = v.as_str().and_then(|s| s.parse::<ImapUrl>().ok())
                {
                    u.uidvalidity = None;
                    v = Value::String(u.to_string());
                }
                out.push((key, v));
            }
            k if k == herald_events::vnd::ACL_IDENTIFIER => {
                out.push(("aclSubject".to_owned(), value));
            }
            k if k == herald_events::vnd::ACL_RIGHTS => {
                out.push(("aclRights".to_owned(), value));
            }
            k if k == herald_events::vnd::SOURCE_UIDSET && copy.is_some() => {
                out.push(("vnd.cmu.oldUidset".to_owned(), value));
            }
            "user" => {
                out.push((key, value));
                if has_mbtype(&event.event) {
                    out.push(("vnd.cmu.mbtype".to_owned(), Value::String("e".to_owned())));
                }
            }
            _ => out.push((key, value)),
        }
    }
    if let Some(uid) = copy_uid
        && !out.iter().any(|(k, _)| k == "uidset")
    {
        let at = out
            .iter()
            .position(|(k, _)| k == "uidnext")
            .map_or(out.len(), |i| i + 1);
        out.insert(at, ("uidset".to_owned(), Value::String(uid.to_string())));
    }
    // Strings, numbers and JSON values only: serde_json cannot fail on these.
    serde_json::to_vec(&Ordered(out)).unwrap_or_else(|_| event.to_json().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(e: &Event) -> serde_json::Map<String, Value> {
        match serde_json::from_slice(&encode(e)).unwrap() {
            Value::Object(m) => m,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn urls_take_cyrus_form() {
        let url = |s: &str| s.parse::<ImapUrl>().unwrap();
        let c = |s: &str, r| cyrus_url(&url(s), r).to_string();
        assert_eq!(
            c("imap://alice@h/INBOX;UIDVALIDITY=3/;UID=7", Role::Mailbox),
            "imap://h/user/alice;UIDVALIDITY=3/;UID=7"
        );
        assert_eq!(
            c("imap://alice@h/Work/2026;UIDVALIDITY=3", Role::Mailbox),
            "imap://h/user/alice/Work/2026;UIDVALIDITY=3"
        );
        assert_eq!(
            c("imap://alice@h/INBOX/x", Role::Mailbox),
            "imap://h/user/alice/INBOX/x"
        );
        assert_eq!(c("imap://alice@h", Role::Mailbox), "imap://h/user/alice");
        assert_eq!(c("imap://alice@h:1143", Role::Server), "imap://h:1143");
    }

    #[test]
    fn a_copy_becomes_message_copy_and_an_append_stays() {
        let mut e = Event::new(EventType::MessageAppend);
        e.uri = Some(ImapUrl::message("h", Some("alice"), "Work", 9, 4));
        e.user = Some("alice".into());
        e.uidnext = Some(5);
        e.set_extension(herald_events::vnd::CAUSE, "copy");
        e.set_extension(
            herald_events::vnd::SOURCE_MAILBOX_ID,
            "imap://alice@h/INBOX;UIDVALIDITY=3",
        );
        e.set_extension(herald_events::vnd::SOURCE_UIDSET, "11");
        let v = value(&e);
        assert_eq!(v["event"], MESSAGE_COPY);
        assert_eq!(v["vnd.cmu.oldUidset"], "11");
        assert!(!v.contains_key(herald_events::vnd::SOURCE_UIDSET));
        assert_eq!(v["oldMailboxID"], "imap://h/user/alice;UIDVALIDITY=3");
        assert_eq!(v["uri"], "imap://h/user/alice/Work;UIDVALIDITY=9");
        assert_eq!(v["uidset"], "4");
        assert_eq!(v["vnd.cmu.mbtype"], "e");
        assert_eq!(event_name(&e), MESSAGE_COPY);

        e.set_extension(herald_events::vnd::CAUSE, "move");
        assert_eq!(value(&e)["event"], MESSAGE_MOVE);

        e.remove_extension(herald_events::vnd::SOURCE_MAILBOX_ID);
        let v = value(&e);
        assert_eq!(v["event"], "MessageAppend");
        assert_eq!(v["uri"], "imap://h/user/alice/Work;UIDVALIDITY=9/;UID=4");
        assert!(!v.contains_key("oldMailboxID") && !v.contains_key("uidset"));
        assert_eq!(
            v[herald_events::vnd::SOURCE_UIDSET],
            "11",
            "an append keeps Herald's name"
        );
    }

    #[test]
    fn timestamps_are_utc_with_z() {
        let mut e = Event::new(EventType::Login);
        e.timestamp = Some("2026-11-23T08:15:02.417+01:00".parse().unwrap());
        assert_eq!(value(&e)["timestamp"], "2026-11-23T07:15:02.417Z");
        e.timestamp = Some("2026-11-23T08:15:02+01:00".parse().unwrap());
        assert_eq!(value(&e)["timestamp"], "2026-11-23T07:15:02.000Z");
    }
}
