//! Reads events from Dovecot's push-notification Lua driver into Herald's model.
//!
//! Dovecot writes its own shape (`name`, `mailbox`, `uid`, `uid_validity`, `flags`, …), spells
//! `MailboxUnsubscribe` with a small s, and its quota-warning script writes yet another shape
//! (`source: "quota_warning"`, `direction: "over"|"under"`). Operators moving from Dovecot want to
//! replay and compare those streams, so this module maps what has an RFC 5423 meaning onto the
//! registered parameters and keeps **every other field** as `vnd.dovecot.<field>`: nothing read is
//! lost, and nothing is invented except the host of the IMAP URL, which Dovecot does not send and
//! the caller supplies.

use crate::{Event, EventType, FlagNames, ImapUrl, Timestamp, UidSet};
use serde_json::{Map, Value};

/// Why a Dovecot line could not be mapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DovecotError {
    /// The line is not a JSON object.
    #[error("not a JSON object")]
    NotObject,
    /// Neither `name` (push notification) nor `source: "quota_warning"`.
    #[error("neither a push-notification event (`name`) nor a quota warning")]
    Unrecognised,
    /// A field that must have a certain type does not.
    #[error("field `{0}` has the wrong type")]
    Field(&'static str),
}

/// True when a decoded JSON object looks like Dovecot's rather than RFC 5423's shape.
pub fn looks_like_dovecot(obj: &Map<String, Value>) -> bool {
    !obj.contains_key("event")
        && (obj.get("name").is_some_and(Value::is_string)
            || obj.get("source").and_then(Value::as_str) == Some("quota_warning"))
}

fn take_u32(obj: &mut Map<String, Value>, key: &'static str) -> Result<Option<u32>, DovecotError> {
    match obj.get(key) {
        None => Ok(None),
        Some(v) => {
            let n = v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|&n| n > 0)
                .ok_or(DovecotError::Field(key))?;
            obj.remove(key);
            Ok(Some(n))
        }
    }
}

fn string_list(obj: &Map<String, Value>, key: &str) -> Vec<String> {
    obj.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Maps one Dovecot event object; `host` becomes the host of the IMAP URLs.
pub fn from_dovecot(value: Value, host: &str) -> Result<Event, DovecotError> {
    let Value::Object(mut obj) = value else {
        return Err(DovecotError::NotObject);
    };
    let event_type = match obj.get("name") {
        Some(Value::String(name)) => {
            let t = match name.as_str() {
                "MailboxUnsubscribe" => EventType::MailboxUnSubscribe,
                other => EventType::from_name(other),
            };
            obj.remove("name");
            t
        }
        Some(_) => return Err(DovecotError::Field("name")),
        None if obj.get("source").and_then(Value::as_str) == Some("quota_warning") => {
            match obj.get("direction").and_then(Value::as_str) {
                Some("over") => EventType::QuotaExceed,
                Some("under") => EventType::QuotaWithin,
                _ => return Err(DovecotError::Field("direction")),
            }
        }
        None => return Err(DovecotError::Unrecognised),
    };
    let mut e = Event::new(event_type.clone());

    // `user` is the quota script's; `_user` the Lua driver's.
    for key in ["user", "_user"] {
        if e.user.is_none()
            && let Some(Value::String(u)) = obj.get(key)
        {
            e.user = Some(u.clone());
            obj.remove(key);
        }
    }
    if event_type.group() == Some(crate::EventGroup::Quota)
        && let Some(Value::String(t)) = obj.get("time")
        && let Ok(ts) = t.parse::<Timestamp>()
    {
        e.timestamp = Some(ts);
        obj.remove("time");
    }

    let uid_validity = take_u32(&mut obj, "uid_validity")?;
    let uid = take_u32(&mut obj, "uid")?;
    let user = e.user.clone();
    match obj.get("mailbox") {
        Some(Value::String(mailbox)) => {
            use EventType::*;
            let mailbox_url =
                ImapUrl::mailbox(host, user.as_deref(), mailbox.clone(), uid_validity);
            match (&event_type, uid) {
                (MessageNew | MessageAppend, Some(uid)) => {
                    e.uri = Some(ImapUrl {
                        uid: Some(uid),
                        ..mailbox_url
                    });
                }
                (_, Some(uid)) => {
                    e.uri = Some(mailbox_url);
                    e.uidset = Some(UidSet::single(uid));
                }
                (_, None) => {
                    if event_type.group() == Some(crate::EventGroup::Mailbox)
                        || event_type.group() == Some(crate::EventGroup::Subscription)
                    {
                        e.mailbox_id = Some(mailbox_url.clone());
                    }
                    e.uri = Some(mailbox_url);
                }
            }
            obj.remove("mailbox");
        }
        Some(_) => return Err(DovecotError::Field("mailbox")),
        None => {
            e.uri = Some(ImapUrl::server(host, user.as_deref()));
            // Nothing consumed the numbers: keep them.
            if let Some(v) = uid_validity {
                obj.insert("uid_validity".into(), v.into());
            }
            if let Some(v) = uid {
                obj.insert("uid".into(), v.into());
            }
        }
    }
    if let Some(Value::String(old)) = obj.get("mailbox_old") {
        e.old_mailbox_id = Some(ImapUrl::mailbox(host, user.as_deref(), old.clone(), None));
        obj.remove("mailbox_old");
    }

    // Flags stay as vnd.dovecot.* too (the old/new split is Dovecot's own information); the
    // registered flagNames is derived from them, without \Recent which RFC 5423 never reports.
    let flags = string_list(&obj, "flags");
    let keywords = string_list(&obj, "keywords");
    let names: Vec<String> = match event_type {
        EventType::FlagsClear => {
            let (now_f, now_k) = (flags, keywords);
            let old_f = string_list(&obj, "flags_old");
            let old_k = string_list(&obj, "keywords_old");
            old_f
                .into_iter()
                .filter(|f| !now_f.contains(f))
                .chain(old_k.into_iter().filter(|k| !now_k.contains(k)))
                .collect()
        }
        EventType::FlagsSet | EventType::MessageNew | EventType::MessageAppend => {
            flags.into_iter().chain(keywords).collect()
        }
        _ => Vec::new(),
    };
    let names: Vec<String> = names
        .into_iter()
        .filter(|n| !n.eq_ignore_ascii_case("\\Recent"))
        .collect();
    if !names.is_empty() {
        e.flag_names = Some(FlagNames::new(names));
    }

    for (key, value) in obj {
        e.extensions.push((format!("vnd.dovecot.{key}"), value));
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(line: &str) -> Event {
        from_dovecot(serde_json::from_str(line).unwrap(), "mail.example.org").unwrap()
    }

    #[test]
    fn message_new_keeps_every_field() {
        let e = map(
            r#"{"name":"MessageNew","date":1795428000,"flags":[],"keywords":["$Important"],"mailbox":"INBOX","message_id":"<m1@x>","subject":"Hi","uid":1,"uid_validity":1795424339,"_success":true,"_txn":2,"_user":"test"}"#,
        );
        assert_eq!(e.event, EventType::MessageNew);
        assert_eq!(
            e.uri.as_ref().unwrap().to_string(),
            "imap://test@mail.example.org/INBOX;UIDVALIDITY=1795424339/;UID=1"
        );
        assert_eq!(e.user.as_deref(), Some("test"));
        assert_eq!(e.flag_names.as_ref().unwrap().to_string(), "$Important");
        for key in [
            "date",
            "flags",
            "keywords",
            "message_id",
            "subject",
            "_success",
            "_txn",
        ] {
            assert!(
                e.extension(&format!("vnd.dovecot.{key}")).is_some(),
                "{key}"
            );
        }
        assert_eq!(e.validate(), Ok(()));
    }

    #[test]
    fn flags_clear_is_the_difference_without_recent() {
        let e = map(
            r#"{"name":"FlagsClear","flags":["\\Seen"],"flags_old":["\\Seen","\\Flagged","\\Recent"],"keywords":[],"keywords_old":["$Label1"],"mailbox":"INBOX","uid":3,"uid_validity":7,"_user":"test"}"#,
        );
        assert_eq!(
            e.flag_names.as_ref().unwrap().to_string(),
            "\\Flagged $Label1"
        );
        assert_eq!(e.uidset.as_ref().unwrap().to_string(), "3");
        assert_eq!(e.validate(), Ok(()));
    }

    #[test]
    fn unsubscribe_spelling_rename_and_quota_warning() {
        assert_eq!(
            map(r#"{"name":"MailboxUnsubscribe","mailbox":"Work","_user":"t"}"#).event,
            EventType::MailboxUnSubscribe
        );
        let r =
            map(r#"{"name":"MailboxRename","mailbox":"Archive","mailbox_old":"Work","_user":"t"}"#);
        assert_eq!(r.old_mailbox_id.unwrap().mailbox.as_deref(), Some("Work"));
        let q = map(
            r#"{"source":"quota_warning","direction":"over","rule":"messages=100%","user":"quser","time":"2026-11-23T08:59:21.827Z"}"#,
        );
        assert_eq!(q.event, EventType::QuotaExceed);
        assert_eq!(
            q.extension("vnd.dovecot.rule"),
            Some(&Value::from("messages=100%"))
        );
        assert!(q.timestamp.is_some());
    }

    #[test]
    fn unrecognised_shapes() {
        assert_eq!(
            from_dovecot(serde_json::json!({"x": 1}), "h"),
            Err(DovecotError::Unrecognised)
        );
        assert_eq!(
            from_dovecot(serde_json::json!([1]), "h"),
            Err(DovecotError::NotObject)
        );
        assert_eq!(
            from_dovecot(serde_json::json!({"name":"MessageNew","uid":"x"}), "h"),
            Err(DovecotError::Field("uid"))
        );
    }
}
