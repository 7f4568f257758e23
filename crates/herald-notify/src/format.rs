//! Output formats: how a shaped event becomes the bytes a sink sends.
//!
//! - `rfc5423`: the flat registry object of DESIGN §5, exactly `Event::to_json`.
//! - `cloudevents`: a CloudEvents 1.0 structured-mode JSON envelope (about forty lines of serde,
//!   which is why the CloudEvents SDK is not a dependency — STACK §8) with the RFC 5423 object
//!   as `data`. `id` is `vnd.herald.id`, unique within `source`, so CloudEvents consumers
//!   deduplicate on (source, id) as the spec intends.
//! - `cyrus`: the shape Cyrus IMAP writes, for consumers written for Cyrus ([`cyrus`]).

pub mod cyrus;

use crate::config::Format;
use herald_events::Event;
use serde::Serialize;

/// The CloudEvents `type` prefix: reverse-DNS style, naming the registry the type comes from.
pub const CLOUDEVENTS_TYPE_PREFIX: &str = "org.ietf.rfc5423.";

#[derive(Serialize)]
struct CloudEvent<'a> {
    specversion: &'static str,
    id: String,
    source: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    datacontenttype: &'static str,
    data: &'a Event,
}

/// The event type as a format writes it in `event` (for subjects, topics and routing keys):
/// the registry name, except that the `cyrus` format names copies and moves
/// `vnd.cmu.MessageCopy`/`vnd.cmu.MessageMove`.
pub fn event_type(event: &Event, format: Format) -> String {
    match format {
        Format::Cyrus => cyrus::event_name(event),
        Format::Rfc5423 | Format::CloudEvents => event.event.to_string(),
    }
}

/// Encodes an event in a format (no trailing newline).
pub fn encode(event: &Event, format: Format) -> Vec<u8> {
    match format {
        Format::Rfc5423 => event.to_json().into_bytes(),
        Format::Cyrus => cyrus::encode(event),
        Format::CloudEvents => {
            let host = event
                .server_fqdn
                .clone()
                .or_else(|| event.uri.as_ref().map(|u| u.host.clone()))
                .unwrap_or_else(|| "localhost".to_owned());
            let envelope = CloudEvent {
                specversion: "1.0",
                id: event
                    .herald_id()
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
                source: format!("imap://{host}"),
                kind: format!("{CLOUDEVENTS_TYPE_PREFIX}{}", event.event),
                time: event.timestamp.map(|t| t.to_string()),
                subject: event.uri.as_ref().map(ToString::to_string),
                datacontenttype: "application/json",
                data: event,
            };
            // Strings, numbers and an event: serde_json cannot fail on these.
            serde_json::to_vec(&envelope).expect("a CloudEvent always encodes")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_events::{EventType, ImapUrl};

    fn event() -> Event {
        let mut e = Event::new(EventType::MessageNew);
        e.uri = Some(ImapUrl::message(
            "mail.example.org",
            Some("alice"),
            "INBOX",
            3,
            7,
        ));
        e.timestamp = Some("2026-11-23T08:15:02.417+01:00".parse().unwrap());
        e.server_fqdn = Some("mail.example.org".into());
        e.set_herald_id(1093);
        e
    }

    #[test]
    fn rfc5423_is_the_wire_format() {
        let e = event();
        assert_eq!(encode(&e, Format::Rfc5423), e.to_json().into_bytes());
    }

    #[test]
    fn cloudevents_envelope() {
        let v: serde_json::Value =
            serde_json::from_slice(&encode(&event(), Format::CloudEvents)).unwrap();
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["id"], "1093");
        assert_eq!(v["source"], "imap://mail.example.org");
        assert_eq!(v["type"], "org.ietf.rfc5423.MessageNew");
        assert_eq!(v["time"], "2026-11-23T08:15:02.417+01:00");
        assert_eq!(
            v["subject"],
            "imap://alice@mail.example.org/INBOX;UIDVALIDITY=3/;UID=7"
        );
        assert_eq!(v["datacontenttype"], "application/json");
        // `data` is the RFC 5423 object, decodable as such.
        let data = Event::from_json(&v["data"].to_string()).unwrap();
        assert_eq!(data, event());
    }
}
