//! [`Event`]: one RFC 5423 notification — a type, the registered parameters as typed fields,
//! and everything else kept verbatim.
//!
//! Two extra lists make decoding lossless: `extensions` holds `vnd.*` parameters and names
//! outside the registry (Cyrus's `aclRights`), and `malformed` holds registered parameters whose
//! value does not have the registered type (Cyrus's opaque `mailboxID`). Both are written back
//! unchanged when the event is encoded; [`Event::validate`](crate::validate) reports them.

use crate::{EventType, ParamName};
use serde_json::Value;

/// A registered parameter whose value did not decode to its type; kept as it came.
#[derive(Debug, Clone, PartialEq)]
pub struct MalformedParam {
    /// Which parameter.
    pub name: ParamName,
    /// The value exactly as decoded from JSON.
    pub value: Value,
    /// Why it did not decode.
    pub reason: String,
}

macro_rules! define_event {
    ($($variant:ident, $field:ident, $wire:literal, $ty:ty, $doc:literal;)*) => {
        /// One message store event.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Event {
            /// The event type (`event` on the wire).
            pub event: EventType,
            $(
                #[doc = concat!("`", $wire, "`: ", $doc)]
                pub $field: Option<$ty>,
            )*
            /// `vnd.*` parameters and unregistered names, in the order they were added or read.
            pub extensions: Vec<(String, Value)>,
            /// Registered parameters whose value did not decode; see [`MalformedParam`].
            pub malformed: Vec<MalformedParam>,
        }

        impl Event {
            /// An event of this type with no parameters.
            pub fn new(event: EventType) -> Event {
                Event {
                    event,
                    $($field: None,)*
                    extensions: Vec::new(),
                    malformed: Vec::new(),
                }
            }

            /// True when the parameter is present with a well-typed value.
            pub fn has(&self, name: ParamName) -> bool {
                match name {
                    $(ParamName::$variant => self.$field.is_some(),)*
                }
            }

            /// Removes a registered parameter (typed or malformed); shaping uses this.
            pub fn remove(&mut self, name: ParamName) {
                match name {
                    $(ParamName::$variant => self.$field = None,)*
                }
                self.malformed.retain(|m| m.name != name);
            }

            /// The registered parameters present with a well-typed value, in canonical order.
            pub fn params(&self) -> impl Iterator<Item = ParamName> + '_ {
                ParamName::ALL.into_iter().filter(|p| self.has(*p))
            }

            /// Writes the typed parameters in canonical order.
            pub(crate) fn serialize_params<M: serde::ser::SerializeMap>(
                &self,
                map: &mut M,
            ) -> Result<(), M::Error> {
                $(
                    if let Some(v) = &self.$field {
                        map.serialize_entry($wire, &crate::json::Wire(v))?;
                    }
                )*
                Ok(())
            }

            /// Stores a decoded value in its field; on a type mismatch returns the reason.
            pub(crate) fn decode_param(
                &mut self,
                name: ParamName,
                value: &crate::json::Scalar<'_>,
            ) -> Result<(), String> {
                match name {
                    $(ParamName::$variant => {
                        self.$field = Some(crate::json::FromScalar::from_scalar(value)?);
                    })*
                }
                Ok(())
            }
        }
    };
}

crate::for_each_param!(define_event);

impl Event {
    /// The value of a `vnd.*` or unregistered parameter.
    pub fn extension(&self, name: &str) -> Option<&Value> {
        self.extensions
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// Sets a `vnd.*` or unregistered parameter, replacing an earlier value of the same name.
    pub fn set_extension(&mut self, name: impl Into<String>, value: impl Into<Value>) {
        let name = name.into();
        let value = value.into();
        match self.extensions.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.extensions.push((name, value)),
        }
    }

    /// Removes a `vnd.*` or unregistered parameter.
    pub fn remove_extension(&mut self, name: &str) -> Option<Value> {
        let i = self.extensions.iter().position(|(n, _)| n == name)?;
        Some(self.extensions.remove(i).1)
    }

    /// The outbox sequence number (`vnd.herald.id`), once the event is committed.
    pub fn herald_id(&self) -> Option<u64> {
        self.extension(crate::vnd::ID).and_then(Value::as_u64)
    }

    /// Sets `vnd.herald.id`.
    pub fn set_herald_id(&mut self, id: u64) {
        self.set_extension(crate::vnd::ID, id);
    }

    /// The mailbox the event is about: the `mailboxID` URL, else `uri`, when it names one.
    pub fn mailbox(&self) -> Option<&str> {
        [&self.mailbox_id, &self.uri]
            .into_iter()
            .flatten()
            .find_map(|u| u.mailbox.as_deref())
    }

    /// Encodes the event as one line of JSON (no trailing newline).
    pub fn to_json(&self) -> String {
        // Every value is a string, number, array or JSON value, and every key a string:
        // serde_json cannot fail on that.
        serde_json::to_string(self).expect("an event always encodes")
    }

    /// Decodes one JSON object; see [`crate::json`] for what is and is not an error.
    pub fn from_json(text: &str) -> Result<Event, crate::DecodeError> {
        Event::from_slice(text.as_bytes())
    }

    /// Decodes one JSON object from bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Event, crate::DecodeError> {
        serde_json::from_slice(bytes).map_err(crate::DecodeError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ImapUrl, UidSet};

    #[test]
    fn has_remove_and_params() {
        let mut e = Event::new(EventType::MessageExpunge);
        e.uri = Some(ImapUrl::mailbox("h", None, "INBOX", Some(4)));
        e.uidset = Some(UidSet::from_uids([1, 2]));
        assert_eq!(
            e.params().collect::<Vec<_>>(),
            [ParamName::Uri, ParamName::Uidset]
        );
        e.remove(ParamName::Uidset);
        assert!(!e.has(ParamName::Uidset));
        assert_eq!(e.mailbox(), Some("INBOX"));
    }

    #[test]
    fn extensions_replace_by_name() {
        let mut e = Event::new(EventType::Login);
        e.set_herald_id(7);
        e.set_herald_id(8);
        assert_eq!(e.herald_id(), Some(8));
        assert_eq!(e.extensions.len(), 1);
        assert_eq!(e.remove_extension(crate::vnd::ID), Some(Value::from(8)));
    }
}
