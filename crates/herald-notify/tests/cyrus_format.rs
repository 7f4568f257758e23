//! The `cyrus` format against what Cyrus IMAP 3.6.1 really emits.
//!
//! Every Herald golden event (`herald-events/tests/golden/*.json`) is encoded in the cyrus format
//! and compared, field by field, with the first event of the same type in the recorded Cyrus
//! stream (`herald-events/tests/data/cyrus-3.6.1-events.jsonl`): each Cyrus key is present or on
//! the documented list of what Herald cannot know, each extra key is on the documented list of
//! what Herald adds, and shared keys have Cyrus's value form (JSON type, UTC `Z` timestamps, URL
//! shape). A copy and a move derived from the MessageAppend golden are compared with Cyrus's
//! `vnd.cmu.MessageCopy`/`vnd.cmu.MessageMove`. The encoded events are also kept as golden files
//! in `tests/golden/cyrus/` (refresh with `UPDATE_GOLDEN=1`), reviewed like code.
#![allow(missing_docs, clippy::unwrap_used)]

use herald_events::{Event, ImapUrl};
use herald_notify::Format;
use herald_notify::format::encode;
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::path::PathBuf;

const EVENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../herald-events/tests");

/// Cyrus parameters Herald cannot fill (module doc of `format::cyrus`).
const CYRUS_ONLY: &[&str] = &[
    "vnd.cmu.unseenMessages",
    "vnd.cmu.midset",
    "vnd.cmu.mailboxACL",
    "vnd.cmu.sessionId",
    "vnd.cmu.envelope",
    "bodyStructure",
    "vnd.cmu.emailid",
    "vnd.cmu.threadid",
    "vnd.fastmail.cid",
    "vnd.fastmail.clientId",
    "vnd.fastmail.sessionId",
    "vnd.fastmail.jmapEmail",
];

/// Parameters Herald adds that the Cyrus sample of that type lacks.
const HERALD_EXTRA: &[&str] = &[
    "process",
    "vnd.herald.id",
    "vnd.herald.cause",
    "vnd.herald.sourceMailboxID",
    "vnd.herald.disconnect",
    "vnd.herald.sessionMillis",
    "envelope",
    "clientIP",
    "clientPort",
    "serverDomain",
    "serverPort",
    "messageSize",
    "flagNames",
];

/// Per type: Cyrus keys the Herald golden lacks for a reason other than "cannot know".
fn conditional(kind: &str) -> &'static [&'static str] {
    match kind {
        // Cyrus: modseq only for an event about one message; the goldens name several UIDs.
        "FlagsSet" | "FlagsClear" | "MessageRead" | "MessageTrash" | "MessageExpunge" => {
            &["modseq"]
        }
        // Herald's copy/move golden is derived from MessageAppend without a modseq change here.
        _ => &[],
    }
}

fn cyrus_sample() -> Vec<Map<String, Value>> {
    std::fs::read_to_string(format!("{EVENTS}/data/cyrus-3.6.1-events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn cyrus_event<'a>(sample: &'a [Map<String, Value>], kind: &str) -> Option<&'a Map<String, Value>> {
    sample.iter().find(|e| e["event"] == kind)
}

fn golden(kind: &str) -> Event {
    Event::from_json(&std::fs::read_to_string(format!("{EVENTS}/golden/{kind}.json")).unwrap())
        .unwrap()
}

fn cyrus_encoded(event: &Event) -> Map<String, Value> {
    serde_json::from_slice(&encode(event, Format::Cyrus)).unwrap()
}

fn is_utc_millis(v: &Value) -> bool {
    let s = v.as_str().unwrap_or("");
    s.len() == 24
        && s.ends_with('Z')
        && s.as_bytes()[19] == b'.'
        && chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

/// The parts of an IMAP URL whose presence makes up its form.
fn url_shape(v: &Value) -> (bool, bool, bool, bool) {
    let url: ImapUrl = v.as_str().unwrap().parse().unwrap();
    (
        url.user.is_some(),
        url.mailbox
            .as_deref()
            .is_some_and(|m| m.starts_with("user/")),
        url.uidvalidity.is_some(),
        url.uid.is_some(),
    )
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Compares one encoded event with Cyrus's event of the same type.
fn compare(kind: &str, ours: &Map<String, Value>, theirs: &Map<String, Value>) {
    let ours_keys: BTreeSet<&str> = ours.keys().map(String::as_str).collect();
    let theirs_keys: BTreeSet<&str> = theirs.keys().map(String::as_str).collect();
    for missing in theirs_keys.difference(&ours_keys) {
        assert!(
            CYRUS_ONLY.contains(missing) || conditional(kind).contains(missing),
            "{kind}: Cyrus sends `{missing}`, Herald's cyrus format does not, and no documented reason says why"
        );
    }
    for extra in ours_keys.difference(&theirs_keys) {
        assert!(
            HERALD_EXTRA.contains(extra),
            "{kind}: Herald adds `{extra}`, which is not on the documented list"
        );
    }
    for key in ours_keys.intersection(&theirs_keys) {
        let (a, b) = (&ours[*key], &theirs[*key]);
        assert_eq!(json_type(a), json_type(b), "{kind}.{key}: {a} vs {b}");
        match *key {
            "event" => assert_eq!(a, b),
            "timestamp" => assert!(is_utc_millis(a) && is_utc_millis(b), "{a} vs {b}"),
            "uri" | "oldMailboxID" => {
                assert_eq!(url_shape(a), url_shape(b), "{kind}.{key}: {a} vs {b}")
            }
            // Documented difference: Herald's mailboxID is a URL (Cyrus form), Cyrus's opaque.
            "mailboxID" => {
                let (user, cyrus_name, ..) = url_shape(a);
                assert!(!user && cyrus_name, "{kind}.mailboxID: {a}");
            }
            "vnd.cmu.mbtype" => assert_eq!(a, b),
            _ => {}
        }
    }
}

/// Compares the encoder's exact output for `event` with `tests/golden/cyrus/<kind>.json`.
fn check_golden_file(kind: &str, event: &Event) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/cyrus");
    let path = dir.join(format!("{kind}.json"));
    let encoded = encode(event, Format::Cyrus);
    let text = String::from_utf8(encoded.clone()).unwrap() + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
    assert_eq!(
        text,
        want,
        "{kind}: differs from {} (UPDATE_GOLDEN=1 to accept)",
        path.display()
    );
}

#[test]
fn every_golden_event_has_cyrus_shape() {
    let sample = cyrus_sample();
    let mut compared = 0;
    let mut paths: Vec<_> = std::fs::read_dir(format!("{EVENTS}/golden"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for path in paths {
        let kind = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let event = golden(&kind);
        let ours = cyrus_encoded(&event);
        // A second golden of one type is named `<Type>-<variant>` (a server MetadataChange);
        // Herald's ACL change is Cyrus's un-prefixed AclChange.
        let type_name = kind.split_once('-').map_or(kind.as_str(), |(t, _)| t);
        let cyrus_kind = match type_name {
            "vnd.herald.AclChange" => "AclChange",
            k => k,
        };
        assert_eq!(ours["event"], cyrus_kind);
        assert!(is_utc_millis(&ours["timestamp"]), "{kind}");
        check_golden_file(&kind, &event);
        match cyrus_event(&sample, cyrus_kind) {
            Some(theirs) => {
                compare(cyrus_kind, &ours, theirs);
                compared += 1;
            }
            // MessageExpire and QuotaExceed do not occur in the recorded stream.
            None => eprintln!("{kind}: no Cyrus sample to compare with"),
        }
    }
    assert!(compared >= 15, "only {compared} types compared");
}

fn copied(cause: &str) -> Event {
    let mut e = golden("MessageAppend");
    e.set_extension(herald_events::vnd::CAUSE, cause);
    e.set_extension(
        herald_events::vnd::SOURCE_MAILBOX_ID,
        "imap://alice@mail.example.org/INBOX;UIDVALIDITY=1732345678",
    );
    e.set_extension(herald_events::vnd::SOURCE_UIDSET, "7");
    e
}

#[test]
fn copies_and_moves_have_cyrus_shape() {
    let sample = cyrus_sample();
    for (cause, kind) in [
        ("copy", "vnd.cmu.MessageCopy"),
        ("move", "vnd.cmu.MessageMove"),
    ] {
        let event = copied(cause);
        let ours = cyrus_encoded(&event);
        assert_eq!(ours["event"], kind);
        assert_eq!(
            ours["oldMailboxID"],
            "imap://mail.example.org/user/alice;UIDVALIDITY=1732345678"
        );
        assert_eq!(
            ours["uri"],
            "imap://mail.example.org/user/alice/Sent;UIDVALIDITY=1732345679"
        );
        assert_eq!(ours["uidset"], "3");
        assert_eq!(ours["vnd.cmu.oldUidset"], "7");
        check_golden_file(kind, &event);
        compare(kind, &ours, cyrus_event(&sample, kind).unwrap());
    }
}

#[test]
fn the_routing_name_follows_the_format() {
    use herald_notify::format::event_type;
    assert_eq!(
        event_type(&copied("move"), Format::Cyrus),
        "vnd.cmu.MessageMove"
    );
    assert_eq!(
        event_type(&copied("move"), Format::Rfc5423),
        "MessageAppend"
    );
    assert_eq!(
        event_type(&golden("MessageNew"), Format::Cyrus),
        "MessageNew"
    );
}

#[test]
fn a_subscription_asks_for_it_by_name() {
    #[derive(serde::Deserialize)]
    struct Doc {
        format: Format,
    }
    let doc: Doc = toml::from_str("format = \"cyrus\"").unwrap();
    assert_eq!(doc.format, Format::Cyrus);
}
