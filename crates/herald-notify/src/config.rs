//! Subscription configuration: the `[[subscription]]` tables of DESIGN §4, as serde types.
//!
//! These are the contract operators write; [`crate::Subscription::compile`] turns one into the
//! filter and shaper the dispatcher runs, and rejects what cannot work (unknown event or
//! parameter names, malformed secrets) with a message naming the subscription and the field.

use serde::{Deserialize, Serialize};

/// One `[[subscription]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionConfig {
    /// Unique name, 1 to 64 characters of `A-Z a-z 0-9 . _ -`; also the cursor's key.
    pub name: String,
    /// Event type names (`MessageNew`, `vnd.acme.X`) or group names (`flags`); empty = all.
    #[serde(default)]
    pub events: Vec<String>,
    /// User glob patterns (authorization identity); empty or `*` = all.
    #[serde(default)]
    pub users: Vec<String>,
    /// Mailbox glob patterns (IMAP LIST wildcards `*` and `%`); empty or `*` = all. Events that
    /// concern no mailbox (Login, quota events) are not restricted by this list.
    #[serde(default)]
    pub mailboxes: Vec<String>,
    /// Parameter allow-list; empty = all. `event` and `vnd.herald.id` are always kept.
    #[serde(default)]
    pub params: Vec<String>,
    /// Flag and keyword names whose changes this subscriber does not want (e.g. `$Junk` churn):
    /// they are removed from `flagNames`, and a flag event left with none is dropped.
    #[serde(default)]
    pub ignore_flags: Vec<String>,
    /// Values of `vnd.herald.cause` whose events this subscriber does not want (`append`,
    /// `copy`, `move`, `import`): e.g. `["import"]` leaves out the MessageAppends of
    /// `herald import`. Events without the parameter always pass.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_causes: Vec<String>,
    /// Message content policy.
    #[serde(default)]
    pub content: ContentPolicy,
    /// Tags attached to every event of this subscription (the `tags` parameter).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Output format.
    #[serde(default)]
    pub format: Format,
    /// Where events go.
    pub sink: SinkConfig,
    /// Retries and parking when the sink fails.
    #[serde(default)]
    pub retry: RetryPolicy,
}

/// How a failing sink is retried: exponential backoff with jitter from `initial_ms` up to
/// `max_ms`; a batch still undelivered `park_after_secs` after its first failed attempt is
/// parked (dead-lettered) so the subscription moves on, and can be replayed later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// First wait after a failure.
    pub initial_ms: u64,
    /// Longest wait between attempts.
    pub max_ms: u64,
    /// Park a batch that has kept failing this long since its first failed attempt; 0 = never
    /// park.
    pub park_after_secs: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_ms: 500,
            max_ms: 60_000,
            park_after_secs: 86_400,
        }
    }
}

impl SubscriptionConfig {
    /// A subscription of every event to `sink`, with the defaults of an empty table.
    pub fn new(name: impl Into<String>, sink: SinkConfig) -> SubscriptionConfig {
        SubscriptionConfig {
            name: name.into(),
            events: Vec::new(),
            users: Vec::new(),
            mailboxes: Vec::new(),
            params: Vec::new(),
            ignore_flags: Vec::new(),
            exclude_causes: Vec::new(),
            content: ContentPolicy::default(),
            tags: Vec::new(),
            format: Format::default(),
            sink,
            retry: RetryPolicy::default(),
        }
    }
}

/// What [`SinkConfig::redacted`] shows instead of a webhook secret.
pub const REDACTED_SECRET: &str = "whsec_…redacted";

impl SubscriptionConfig {
    /// The configuration as the API shows it: see [`SinkConfig::redacted`].
    pub fn redacted(&self) -> SubscriptionConfig {
        SubscriptionConfig {
            sink: self.sink.redacted(),
            ..self.clone()
        }
    }
}

impl SinkConfig {
    /// The sink as the API shows it: webhook secrets replaced by [`REDACTED_SECRET`], and user
    /// info, query and fragment taken out of every URL (they may carry credentials).
    pub fn redacted(&self) -> SinkConfig {
        let url = |u: &String| crate::sink::redact_url(u);
        let secret = |s: &Option<String>| s.as_ref().map(|_| REDACTED_SECRET.to_owned());
        match self {
            SinkConfig::File { .. } | SinkConfig::Stdout | SinkConfig::WebPush { .. } => {
                self.clone()
            }
            SinkConfig::Webhook {
                url: u,
                secret: s,
                secret_next,
                batch,
                timeout_ms,
            } => SinkConfig::Webhook {
                url: url(u),
                secret: secret(s),
                secret_next: secret(secret_next),
                batch: *batch,
                timeout_ms: *timeout_ms,
            },
            SinkConfig::Nats { url: u, subject } => SinkConfig::Nats {
                url: url(u),
                subject: subject.clone(),
            },
            SinkConfig::Mqtt { url: u, topic } => SinkConfig::Mqtt {
                url: url(u),
                topic: topic.clone(),
            },
            SinkConfig::Amqp { url: u, exchange } => SinkConfig::Amqp {
                url: url(u),
                exchange: exchange.clone(),
            },
            SinkConfig::Redis {
                url: u,
                stream,
                maxlen,
            } => SinkConfig::Redis {
                url: url(u),
                stream: stream.clone(),
                maxlen: *maxlen,
            },
        }
    }
}

/// How events are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The RFC 5423 registry shape (DESIGN §5).
    #[default]
    Rfc5423,
    /// CloudEvents 1.0 structured JSON with the RFC 5423 object as `data`.
    CloudEvents,
    /// The shape Cyrus IMAP emits (field names, URL and time forms, `vnd.cmu.*` event names),
    /// for consumers written for Cyrus; see [`crate::format::cyrus`].
    Cyrus,
}

/// What part of a message a subscription receives, when it is small enough.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContentPart {
    /// The whole message as `messageContent` (RFC 5423 §5).
    #[default]
    Message,
    /// The header block only, as `vnd.herald.headers`.
    Headers,
    /// The header block and the first `text_bytes` of the body (`vnd.herald.headers`,
    /// `vnd.herald.bodyPrefix`).
    HeadersAndText,
}

/// Message content policy (RFC 5423 §4.1: "include messages up to 2K in size with the
/// notification, but … a URLAUTH reference for larger messages").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContentPolicy {
    /// Include content only when the included part is at most this many bytes; 0 = never.
    pub max_bytes: u64,
    /// Which part to include.
    pub include: ContentPart,
    /// For `headers-and-text`: how many body bytes.
    pub text_bytes: u64,
    /// When content is left out (too big, not UTF-8), which references to the message the
    /// event carries instead: `"http"` (the default, `vnd.herald.contentURL`), `"urlauth"`
    /// (`vnd.herald.urlauth`), `"both"` or a list of those; `false` for none (`true` is
    /// `"http"`, the meaning it had before URLAUTH references existed).
    pub reference: References,
    /// Lifetime of a `vnd.herald.urlauth` URL (its `;EXPIRE=`), in seconds; 0 for no expiry
    /// (the URL then works until the owner's RESETKEY).
    pub urlauth_expire_secs: u64,
}

/// The default lifetime of `vnd.herald.urlauth` URLs: a week, long enough for a consumer that
/// was down over a weekend to catch up, short enough that a leaked event stops being a key.
pub const DEFAULT_URLAUTH_EXPIRE_SECS: u64 = 7 * 24 * 3600;

impl Default for ContentPolicy {
    fn default() -> Self {
        ContentPolicy {
            max_bytes: 0,
            include: ContentPart::Message,
            text_bytes: 512,
            reference: References::HTTP,
            urlauth_expire_secs: DEFAULT_URLAUTH_EXPIRE_SECS,
        }
    }
}

/// Which references to a left-out message an event carries (RFC 5423 §4.1's "URLAUTH
/// reference for larger messages").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct References {
    /// `vnd.herald.contentURL`: a signed HTTP link (needs Herald's HTTP listener).
    pub http: bool,
    /// `vnd.herald.urlauth`: a URLAUTH-authorized IMAP URL (RFC 4467) that any authenticated
    /// IMAP session on Herald can URLFETCH.
    pub urlauth: bool,
}

impl References {
    /// No reference.
    pub const NONE: References = References {
        http: false,
        urlauth: false,
    };
    /// The signed HTTP link only (the default).
    pub const HTTP: References = References {
        http: true,
        urlauth: false,
    };
    /// The URLAUTH URL only.
    pub const URLAUTH: References = References {
        http: false,
        urlauth: true,
    };
    /// Both.
    pub const BOTH: References = References {
        http: true,
        urlauth: true,
    };
}

impl Default for References {
    fn default() -> Self {
        References::HTTP
    }
}

impl Serialize for References {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (self.http, self.urlauth) {
            (false, false) => s.serialize_bool(false),
            (true, false) => s.serialize_str("http"),
            (false, true) => s.serialize_str("urlauth"),
            (true, true) => s.serialize_str("both"),
        }
    }
}

impl<'de> Deserialize<'de> for References {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl V {
            fn name<E: serde::de::Error>(s: &str) -> Result<References, E> {
                match s {
                    "http" => Ok(References::HTTP),
                    "urlauth" => Ok(References::URLAUTH),
                    "both" => Ok(References::BOTH),
                    "none" => Ok(References::NONE),
                    other => Err(E::invalid_value(
                        serde::de::Unexpected::Str(other),
                        &"\"http\", \"urlauth\", \"both\" or \"none\"",
                    )),
                }
            }
        }
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = References;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"http\", \"urlauth\", \"both\", a list of them, or a boolean")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<References, E> {
                Ok(if v {
                    References::HTTP
                } else {
                    References::NONE
                })
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<References, E> {
                V::name(v)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<References, A::Error> {
                let mut r = References::NONE;
                while let Some(name) = seq.next_element::<String>()? {
                    let one: References = V::name(&name)?;
                    r.http |= one.http;
                    r.urlauth |= one.urlauth;
                }
                Ok(r)
            }
        }
        d.deserialize_any(V)
    }
}

/// Where a subscription's events go (DESIGN §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum SinkConfig {
    /// JSON lines appended to a file.
    File {
        /// File path.
        path: String,
        /// Rotate when the file exceeds this size.
        #[serde(default)]
        rotate_bytes: Option<u64>,
    },
    /// JSON lines on standard output.
    Stdout,
    /// HTTP POST, signed per Standard Webhooks.
    Webhook {
        /// Receiver URL.
        url: String,
        /// `whsec_` secret.
        #[serde(default)]
        secret: Option<String>,
        /// A second secret during rotation.
        #[serde(default)]
        secret_next: Option<String>,
        /// Send up to this many events per request as a JSON array (1 = one object per request).
        #[serde(default)]
        batch: Option<usize>,
        /// Request timeout in milliseconds.
        #[serde(default)]
        timeout_ms: Option<u64>,
    },
    /// NATS JetStream.
    Nats {
        /// Server URL.
        url: String,
        /// Subject prefix; the event type is appended.
        subject: String,
    },
    /// MQTT.
    Mqtt {
        /// Broker URL.
        url: String,
        /// Topic prefix; user and event type are appended.
        topic: String,
    },
    /// AMQP 0-9-1 (RabbitMQ).
    Amqp {
        /// Broker URL.
        url: String,
        /// Topic exchange; the routing key is the event type.
        exchange: String,
    },
    /// WebPush (RFC 8030/8291/8292) to the push subscriptions of each event's user.
    #[serde(rename = "webpush")]
    WebPush {
        /// File with the VAPID private key (PEM or base64url raw scalar); generated when missing.
        vapid_key: String,
        /// VAPID contact: a `mailto:` or `https:` URL (RFC 8292 §2.1).
        subject: String,
        /// How long a push service keeps an undelivered message, in seconds (default a day).
        #[serde(default)]
        ttl_secs: Option<u32>,
        /// Request timeout in milliseconds.
        #[serde(default)]
        timeout_ms: Option<u64>,
    },
    /// Redis Streams.
    Redis {
        /// Server URL.
        url: String,
        /// Stream key.
        stream: String,
        /// Approximate maximum stream length (`XADD … MAXLEN ~`).
        #[serde(default)]
        maxlen: Option<u64>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Doc {
        subscription: Vec<SubscriptionConfig>,
    }

    #[test]
    fn design_example_parses() {
        let doc: Doc = toml::from_str(
            r#"
[[subscription]]
name   = "audit"
events = ["MessageNew", "flags"]
users  = ["*"]
mailboxes = ["*"]
params = []
content = { max_bytes = 2048 }
tags   = ["audit"]
sink   = { type = "webhook", url = "http://127.0.0.1:9000/hook", secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }

[[subscription]]
name = "bus"
format = "cloudevents"
sink = { type = "nats", url = "nats://127.0.0.1:4222", subject = "herald.events" }
"#,
        )
        .unwrap();
        let audit = &doc.subscription[0];
        assert_eq!(audit.content.max_bytes, 2048);
        assert_eq!(audit.content.include, ContentPart::Message);
        assert!(matches!(audit.sink, SinkConfig::Webhook { .. }));
        assert_eq!(doc.subscription[1].format, Format::CloudEvents);
    }

    #[test]
    fn content_reference_forms() {
        #[derive(Debug, Deserialize)]
        struct C {
            content: ContentPolicy,
        }
        let read = |t: &str| toml::from_str::<C>(t).map(|c| c.content);
        let c = read("content = { max_bytes = 2048 }").unwrap();
        assert_eq!(c.reference, References::HTTP, "today's meaning by default");
        assert_eq!(c.urlauth_expire_secs, DEFAULT_URLAUTH_EXPIRE_SECS);
        for (text, want) in [
            ("true", References::HTTP),
            ("false", References::NONE),
            ("\"http\"", References::HTTP),
            ("\"urlauth\"", References::URLAUTH),
            ("\"both\"", References::BOTH),
            ("[\"http\", \"urlauth\"]", References::BOTH),
            ("[\"urlauth\"]", References::URLAUTH),
            ("[]", References::NONE),
        ] {
            let c = read(&format!(
                "content = {{ max_bytes = 1, reference = {text} }}"
            ))
            .unwrap();
            assert_eq!(c.reference, want, "{text}");
            // What the API and the store keep reads back the same.
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(serde_json::from_str::<ContentPolicy>(&json).unwrap(), c);
        }
        for bad in ["\"ftp\"", "[\"http\", 3]", "7"] {
            let err = read(&format!("content = {{ reference = {bad} }}")).unwrap_err();
            assert!(err.to_string().contains("http"), "{bad}: {err}");
        }
        let c = read("content = { reference = \"urlauth\", urlauth_expire_secs = 60 }").unwrap();
        assert_eq!(c.urlauth_expire_secs, 60);
    }

    #[test]
    fn redaction_hides_secrets_and_url_credentials() {
        let webhook = SinkConfig::Webhook {
            url: "https://u:pw@hooks.example.net/h?token=t0k#frag".into(),
            secret: Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()),
            secret_next: Some("whsec_dGhpcyBpcyBhIHNlY29uZCBrZXkgZm9yIHRlc3Rz".into()),
            batch: Some(5),
            timeout_ms: None,
        };
        let shown = SubscriptionConfig::new("hook", webhook).redacted();
        let json = serde_json::to_string(&shown).unwrap();
        for secret in ["MfKQ9r8", "dGhpcyBp", "pw", "t0k", "frag", "u:"] {
            assert!(!json.contains(secret), "{secret} in {json}");
        }
        assert_eq!(
            shown.sink,
            SinkConfig::Webhook {
                url: "https://hooks.example.net/h".into(),
                secret: Some(REDACTED_SECRET.into()),
                secret_next: Some(REDACTED_SECRET.into()),
                batch: Some(5),
                timeout_ms: None,
            }
        );
        let unsigned = SinkConfig::Webhook {
            url: "http://h/".into(),
            secret: None,
            secret_next: None,
            batch: None,
            timeout_ms: None,
        };
        assert_eq!(unsigned.redacted(), unsigned);
        for (sink, want) in [
            (
                SinkConfig::Amqp {
                    url: "amqp://guest:s3cret@127.0.0.1:5672/%2f".into(),
                    exchange: "x".into(),
                },
                "amqp://127.0.0.1:5672/%2f",
            ),
            (
                SinkConfig::Redis {
                    url: "redis://:s3cret@127.0.0.1:6379/0".into(),
                    stream: "s".into(),
                    maxlen: None,
                },
                "redis://127.0.0.1:6379/0",
            ),
            (
                SinkConfig::Nats {
                    url: "nats://tok:s3cret@n1:4222,nats://n2:4222".into(),
                    subject: "s".into(),
                },
                "nats://…",
            ),
            (
                SinkConfig::Mqtt {
                    url: "mqtt://user:s3cret@broker:1883".into(),
                    topic: "t".into(),
                },
                "mqtt://broker:1883",
            ),
        ] {
            let json = serde_json::to_value(sink.redacted()).unwrap();
            assert_eq!(json["url"], want, "{json}");
        }
    }

    #[test]
    fn typos_are_errors_not_silently_ignored() {
        let err = toml::from_str::<Doc>(
            r#"
[[subscription]]
name = "x"
evnts = ["MessageNew"]
sink = { type = "stdout" }
"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("evnts"), "{err}");
        let err = toml::from_str::<Doc>(
            "[[subscription]]\nname = \"x\"\nsink = { type = \"carrier-pigeon\" }\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("carrier-pigeon"), "{err}");
    }
}
