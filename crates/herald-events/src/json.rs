//! The JSON wire format (DESIGN §5): one flat object per event, `event` holding the type and
//! every other key a registry parameter name verbatim or a `vnd.` name.
//!
//! Decoding is lossless and lenient about *meaning* but strict about *shape*: the input must be
//! one JSON object with a string `event` and no key twice; anything else it carries — unknown
//! names, vendor values of any JSON type, registered names with ill-typed values — is kept and
//! written back on encoding. Deciding whether the event obeys RFC 5423 is
//! [`crate::validate`]'s job, so `herald events check` can report every fault of a line instead
//! of the first one.
//!
//! The decoder is a hand-written serde visitor rather than a `serde_json::Value` walk: keys and
//! unescaped strings are borrowed from the input, and registered values go straight to their
//! typed field. That keeps `herald events check` well above 200 MB/s.

use crate::{Event, EventType, FlagNames, ImapUrl, MalformedParam, ParamName, Timestamp, UidSet};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

/// Why a line could not be decoded as an event at all.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(#[source] pub serde_json::Error);

impl DecodeError {
    /// True when the input is not JSON (as opposed to JSON that is not an event object).
    pub fn is_syntax(&self) -> bool {
        matches!(
            self.0.classify(),
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof
        )
    }
}

/// Serializes a typed parameter value in its wire form.
pub(crate) struct Wire<'a, T: ?Sized>(pub &'a T);

macro_rules! wire_via_display {
    ($($t:ty),*) => {$(
        impl Serialize for Wire<'_, $t> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self.0)
            }
        }
    )*};
}
wire_via_display!(Timestamp, ImapUrl, UidSet, FlagNames, IpAddr);

macro_rules! wire_via_serde {
    ($($t:ty),*) => {$(
        impl Serialize for Wire<'_, $t> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.0.serialize(s)
            }
        }
    )*};
}
wire_via_serde!(String, u64, u32, u16, Vec<String>);

/// A decoded JSON value before it is typed: strings borrowed where possible.
#[derive(Debug)]
pub(crate) enum Scalar<'a> {
    Str(Cow<'a, str>),
    UInt(u64),
    Other(Value),
}

impl Scalar<'_> {
    fn into_value(self) -> Value {
        match self {
            Scalar::Str(s) => Value::String(s.into_owned()),
            Scalar::UInt(n) => Value::from(n),
            Scalar::Other(v) => v,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Scalar::Str(_) => "a string",
            Scalar::UInt(_) => "a number",
            Scalar::Other(Value::Array(_)) => "an array",
            Scalar::Other(Value::Object(_)) => "an object",
            Scalar::Other(Value::Bool(_)) => "a boolean",
            Scalar::Other(Value::Null) => "null",
            Scalar::Other(_) => "a negative or fractional number",
        }
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Scalar::UInt(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(match u64::try_from(v) {
                    Ok(u) => Scalar::UInt(u),
                    Err(_) => Scalar::Other(Value::from(v)),
                })
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Scalar::Other(Value::from(v)))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Other(Value::Bool(v)))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Other(Value::Null))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Value::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Scalar::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                Value::deserialize(de::value::MapAccessDeserializer::new(map)).map(Scalar::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// Converts a decoded JSON value to a parameter's Rust type.
pub(crate) trait FromScalar: Sized {
    fn from_scalar(v: &Scalar<'_>) -> Result<Self, String>;
}

fn expect_str<'a>(v: &'a Scalar<'_>) -> Result<&'a str, String> {
    match v {
        Scalar::Str(s) => Ok(s),
        other => Err(format!("expected a string, found {}", other.kind())),
    }
}

fn expect_uint(v: &Scalar<'_>) -> Result<u64, String> {
    match v {
        Scalar::UInt(n) => Ok(*n),
        other => Err(format!(
            "expected a non-negative integer, found {}",
            other.kind()
        )),
    }
}

impl FromScalar for String {
    fn from_scalar(v: &Scalar<'_>) -> Result<Self, String> {
        expect_str(v).map(str::to_owned)
    }
}

impl FromScalar for u64 {
    fn from_scalar(v: &Scalar<'_>) -> Result<Self, String> {
        expect_uint(v)
    }
}

impl FromScalar for u32 {
    fn from_scalar(v: &Scalar<'_>) -> Result<Self, String> {
        let n = expect_uint(v)?;
        u32::try_from(n).map_err(|_| format!("{n} does not fit in 32 bits"))
    }
}

impl FromScalar for u16 {
    fn from_scalar(v: &Scalar<'_>) -> Result<Self, String> {
        match u16::try_from(expect_uint(v)?) {
            Ok(p) if p > 0 => Ok(p),
            _ => Err("not a port number (1-65535)".to_owned()),
        }
    }
}

macro_rules! from_scalar_via_parse {
    ($($t:ty),*) => {$(
        impl FromScalar for $t {
            fn from_scalar(v: &Scalar<'_>) -> Result<Self, String> {
                expect_str(v)?.parse::<$t>().map_err(|e| e.to_string())
            }
        }
    )*};
}
from_scalar_via_parse!(Timestamp, ImapUrl, UidSet, FlagNames, IpAddr);

impl FromScalar for Vec<String> {
    /// Tags: a JSON array of strings, or the comma-separated string RFC 5423 §5 suggests.
    fn from_scalar(v: &Scalar<'_>) -> Result<Self, String> {
        match v {
            Scalar::Str(s) => Ok(s
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect()),
            Scalar::Other(Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| "tags must be strings".to_owned())
                })
                .collect(),
            other => Err(format!(
                "expected an array of strings, found {}",
                other.kind()
            )),
        }
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("event", self.event.as_str())?;
        self.serialize_params(&mut map)?;
        for m in &self.malformed {
            map.serialize_entry(m.name.as_str(), &m.value)?;
        }
        for (name, value) in &self.extensions {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// A map key, borrowed from the input when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a parameter name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Event;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an event object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
                let mut event = Event::new(EventType::Unregistered(String::new()));
                let mut has_type = false;
                let mut seen: u32 = 0;
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    if key == "event" {
                        if has_type {
                            return Err(de::Error::custom("duplicate key `event`"));
                        }
                        let Scalar::Str(name) = map.next_value::<Scalar<'de>>()? else {
                            return Err(de::Error::custom("`event` must be a string"));
                        };
                        event.event = EventType::from_name(&name);
                        has_type = true;
                    } else if let Some(param) = ParamName::from_name(&key) {
                        let bit = 1u32 << param.index();
                        if seen & bit != 0 {
                            return Err(de::Error::custom(format!("duplicate key `{key}`")));
                        }
                        seen |= bit;
                        let value = map.next_value::<Scalar<'de>>()?;
                        if let Err(reason) = event.decode_param(param, &value) {
                            event.malformed.push(MalformedParam {
                                name: param,
                                value: value.into_value(),
                                reason,
                            });
                        }
                    } else {
                        if event.extension(&key).is_some() {
                            return Err(de::Error::custom(format!("duplicate key `{key}`")));
                        }
                        let value = map.next_value::<Value>()?;
                        event.extensions.push((key.into_owned(), value));
                    }
                }
                if !has_type {
                    return Err(de::Error::custom("missing `event`"));
                }
                Ok(event)
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DESIGN_EXAMPLE: &str = r#"{"event":"MessageNew","timestamp":"2026-11-23T08:15:02.417+01:00","service":"lmtp","uri":"imap://alice@mail.example.org/INBOX;UIDVALIDITY=1732345678/;UID=7","user":"alice","messages":7,"uidnext":8,"messageSize":2113,"modseq":42,"envelope":"MAIL FROM:<bob@example.net>\r\nRCPT TO:<alice@example.org>\r\n","serverFQDN":"mail.example.org","pid":4242,"vnd.herald.id":1093}"#;

    #[test]
    fn design_example_decodes_typed_and_encodes_byte_for_byte() {
        let e = Event::from_json(DESIGN_EXAMPLE).unwrap();
        assert_eq!(e.event, EventType::MessageNew);
        assert_eq!(e.uri.as_ref().unwrap().uid, Some(7));
        assert_eq!(e.modseq, Some(42));
        assert_eq!(e.herald_id(), Some(1093));
        assert!(e.malformed.is_empty());
        assert_eq!(e.to_json(), DESIGN_EXAMPLE);
    }

    #[test]
    fn shape_errors() {
        for (input, message) in [
            ("not json", "expected"),
            ("[1,2]", "an event object"),
            (r#"{"user":"a"}"#, "missing `event`"),
            (r#"{"event":7}"#, "`event` must be a string"),
            (
                r#"{"event":"Login","user":"a","user":"b"}"#,
                "duplicate key `user`",
            ),
            (
                r#"{"event":"Login","event":"Login"}"#,
                "duplicate key `event`",
            ),
            (
                r#"{"event":"Login","vnd.x":1,"vnd.x":2}"#,
                "duplicate key `vnd.x`",
            ),
            (r#"{"event":"Login""#, "EOF"),
        ] {
            let err = Event::from_json(input).unwrap_err().to_string();
            assert!(err.contains(message), "{input}: {err}");
        }
        assert!(Event::from_json("nope").unwrap_err().is_syntax());
        assert!(!Event::from_json("[]").unwrap_err().is_syntax());
    }

    #[test]
    fn ill_typed_registered_values_are_kept_not_dropped() {
        let input = r#"{"event":"MailboxCreate","mailboxID":"bkyc1ifhio8pgvg4aqqzvio6","messages":-1,"clientPort":0}"#;
        let e = Event::from_json(input).unwrap();
        assert_eq!(e.mailbox_id, None);
        let names: Vec<_> = e.malformed.iter().map(|m| m.name).collect();
        assert_eq!(
            names,
            [
                ParamName::MailboxId,
                ParamName::Messages,
                ParamName::ClientPort
            ]
        );
        let back: Value = serde_json::from_str(&e.to_json()).unwrap();
        let orig: Value = serde_json::from_str(input).unwrap();
        assert_eq!(back, orig);
    }

    #[test]
    fn vendor_numbers_survive_a_round_trip() {
        // Found by fuzzing: without exact float parsing this re-encoded as ...334e72.
        let input = r#"{"event":"vnd.x","vnd.n":3333333333333333333333333333333333333333333333333333333333333333333333331}"#;
        let once = Event::from_json(input).unwrap().to_json();
        let twice = Event::from_json(&once).unwrap().to_json();
        assert_eq!(once, twice);
    }

    #[test]
    fn escaped_strings_and_tags() {
        let e = Event::from_json(
            r#"{"event":"vnd.acme.Ping","user":"\u00e9lise","tags":"audit, billing","vnd.acme.n":{"a":[1,null]}}"#,
        )
        .unwrap();
        assert_eq!(e.user.as_deref(), Some("élise"));
        assert_eq!(e.tags, Some(vec!["audit".to_owned(), "billing".to_owned()]));
        assert_eq!(e.event, EventType::Vendor("vnd.acme.Ping".into()));
        assert!(e.to_json().contains(r#""tags":["audit","billing"]"#));
        assert!(e.to_json().contains(r#""vnd.acme.n":{"a":[1,null]}"#));
    }
}
