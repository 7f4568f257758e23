//! A compiled subscription: the filter and the shaping a dispatcher applies to each event before
//! handing it to the subscription's sink.
//!
//! RFC 5423 §3 asks for filtering *at generation*: turning groups of events on and off and
//! suppressing large parameters. Everything here is a pure function of the event, so the same
//! subscription gives the same output on replay, and it is tested without any sink.

use crate::config::{ContentPart, ContentPolicy, Format, SubscriptionConfig};
use crate::glob::GlobSet;
use herald_events::{Event, EventGroup, EventType, FlagNames, ParamName, vnd};

/// Why a subscription's configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The name is not 1 to [`MAX_NAME_LEN`] characters of `A-Z a-z 0-9 . _ -`.
    #[error(
        "subscription name `{0}` must be 1 to 64 characters of A-Z, a-z, 0-9, `.`, `_` and `-`"
    )]
    Name(String),
    /// Two subscriptions of the configuration file have one name (each name is its cursor's key).
    #[error("two [[subscription]] tables are named `{0}`; subscription names must be unique")]
    Duplicate(String),
    /// An `events` entry is neither a type nor a group.
    #[error(
        "subscription `{sub}`: `{name}` in events is not an event type or group (groups: message, quota, flags, access, mailbox, subscription, account, metadata)"
    )]
    Event {
        /// Subscription name.
        sub: String,
        /// The entry.
        name: String,
    },
    /// A `params` entry is not a registered or `vnd.` parameter.
    #[error("subscription `{sub}`: `{name}` in params is not an RFC 5423 or vnd. parameter")]
    Param {
        /// Subscription name.
        sub: String,
        /// The entry.
        name: String,
    },
    /// A webhook secret is malformed.
    #[error("subscription `{sub}`: {error}")]
    Secret {
        /// Subscription name.
        sub: String,
        /// What is wrong.
        error: crate::sign::SecretError,
    },
}

/// The longest subscription name.
pub const MAX_NAME_LEN: usize = 64;

/// Checks the name of a subscription being created (configured or through the API): 1 to
/// [`MAX_NAME_LEN`] characters of `A-Z a-z 0-9 . _ -`, so it is safe in a URL path, a log line
/// and a file name. [`Subscription::compile`] alone keeps the older, looser rule (printable
/// ASCII without spaces), so a subscription created through the API before keeps running.
pub fn check_name(name: &str) -> Result<(), ConfigError> {
    let ok = (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Name(name.to_owned()))
    }
}

/// Checks the subscriptions of a configuration file: every name well formed
/// ([`check_name`]) and none twice.
pub fn check_configured(configs: &[SubscriptionConfig]) -> Result<(), ConfigError> {
    let mut seen = std::collections::BTreeSet::new();
    for c in configs {
        check_name(&c.name)?;
        if !seen.insert(c.name.as_str()) {
            return Err(ConfigError::Duplicate(c.name.clone()));
        }
    }
    Ok(())
}

/// The set of event types a subscription wants.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TypeSet {
    all: bool,
    registered: u32,
    vendor: Vec<String>,
}

impl TypeSet {
    /// Adds a type: a registered one as its bit, any other (Herald's `vnd.herald.` types
    /// included) by name.
    fn insert(&mut self, t: &EventType) {
        match EventType::REGISTERED.iter().position(|r| r == t) {
            Some(i) => self.registered |= 1 << i,
            None if self.vendor.iter().any(|v| v == t.as_str()) => {}
            None => self.vendor.push(t.as_str().to_owned()),
        }
    }

    fn contains(&self, t: &EventType) -> bool {
        if self.all {
            return true;
        }
        match EventType::REGISTERED.iter().position(|r| r == t) {
            Some(i) => self.registered & (1 << i) != 0,
            None => self.vendor.iter().any(|v| v == t.as_str()),
        }
    }
}

/// A subscription ready to filter and shape events.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// The configuration it was compiled from.
    pub config: SubscriptionConfig,
    types: TypeSet,
    users: GlobSet,
    mailboxes: GlobSet,
    params: Option<(Vec<ParamName>, Vec<String>)>,
    ignore_flags: Vec<String>,
}

/// The outcome of content shaping for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentDecision {
    /// The event is not about one message, or the policy never includes content.
    NotApplicable,
    /// Content was included.
    Included,
    /// Content was left out; a reference was attached when one was given.
    Referenced,
}

impl Subscription {
    /// Checks and compiles a configuration.
    pub fn compile(config: SubscriptionConfig) -> Result<Subscription, ConfigError> {
        let name = &config.name;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::Name(name.clone()));
        }
        let mut types = TypeSet {
            all: config.events.is_empty(),
            registered: 0,
            vendor: Vec::new(),
        };
        for entry in &config.events {
            if let Some(group) = EventGroup::from_name(entry) {
                for t in group.members() {
                    types.insert(&t);
                }
                continue;
            }
            match EventType::from_name(entry) {
                t @ EventType::Vendor(_) => types.insert(&t),
                EventType::Unregistered(_) => {
                    return Err(ConfigError::Event {
                        sub: name.clone(),
                        name: entry.clone(),
                    });
                }
                t => types.insert(&t),
            }
        }
        let params = if config.params.is_empty() {
            None
        } else {
            let mut registered = Vec::new();
            let mut vendor = Vec::new();
            for p in &config.params {
                if let Some(n) = ParamName::from_name(p) {
                    registered.push(n);
                } else if p.starts_with(herald_events::VENDOR_PREFIX) {
                    vendor.push(p.clone());
                } else {
                    return Err(ConfigError::Param {
                        sub: name.clone(),
                        name: p.clone(),
                    });
                }
            }
            Some((registered, vendor))
        };
        if let crate::config::SinkConfig::Webhook {
            secret,
            secret_next,
            ..
        } = &config.sink
        {
            let secrets: Vec<&String> = secret.iter().chain(secret_next).collect();
            if !secrets.is_empty() {
                crate::sign::Signer::new(&secrets).map_err(|error| ConfigError::Secret {
                    sub: name.clone(),
                    error,
                })?;
            }
        }
        Ok(Subscription {
            types,
            users: GlobSet::new(&config.users),
            mailboxes: GlobSet::new(&config.mailboxes),
            params,
            ignore_flags: config.ignore_flags.clone(),
            config,
        })
    }

    /// The subscription's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The output format.
    pub fn format(&self) -> Format {
        self.config.format
    }

    /// Applies the filter: `None` when the subscription does not want the event, else the event
    /// with ignored flag names removed.
    pub fn filter(&self, mut event: Event) -> Option<Event> {
        if !self.types.contains(&event.event) {
            return None;
        }
        if !self.users.matches_all() {
            let user = event
                .user
                .as_deref()
                .or_else(|| event.uri.as_ref().and_then(|u| u.user.as_deref()))?;
            if !self.users.matches(user) {
                return None;
            }
        }
        if !self.config.exclude_causes.is_empty()
            && let Some(cause) = event.extension(vnd::CAUSE).and_then(|v| v.as_str())
            && self.config.exclude_causes.iter().any(|c| c == cause)
        {
            return None;
        }
        if !self.mailboxes.matches_all()
            && let Some(mailbox) = event.mailbox()
            && !self.mailboxes.matches(mailbox)
        {
            return None;
        }
        if !self.ignore_flags.is_empty()
            && let Some(flags) = &event.flag_names
        {
            let kept: Vec<String> = flags
                .names()
                .iter()
                .filter(|n| !self.ignore_flags.iter().any(|i| i.eq_ignore_ascii_case(n)))
                .cloned()
                .collect();
            if kept.len() != flags.names().len() {
                if kept.is_empty() {
                    if matches!(event.event, EventType::FlagsSet | EventType::FlagsClear) {
                        return None;
                    }
                    event.flag_names = None;
                } else {
                    event.flag_names = Some(FlagNames::new(kept));
                }
            }
        }
        Some(event)
    }

    /// True when the subscription's `params` name `bodyStructure` and the event is about one
    /// new message (MessageNew/MessageAppend): only then is the BODYSTRUCTURE computed. An
    /// empty `params` (every parameter Herald sets) does not ask for it, so it costs nothing
    /// unless a subscription asks by name.
    pub fn wants_body_structure(&self, event: &Event) -> bool {
        is_message_event(event)
            && self
                .params
                .as_ref()
                .is_some_and(|(registered, _)| registered.contains(&ParamName::BodyStructure))
    }

    /// True when [`Subscription::shape_content`] would use the message's bytes for this event:
    /// the dispatcher reads the blob only then.
    pub fn wants_content(&self, event: &Event) -> bool {
        is_message_event(event) && self.config.content.max_bytes > 0
    }

    /// Applies the content policy to a MessageNew/MessageAppend event given the raw message and
    /// an optional reference (a signed link the subscriber can fetch the message with), which
    /// is attached when the policy's `reference` includes `http`. A URLAUTH reference needs
    /// the store, so the dispatcher asks for one only after a `Referenced` decision, when
    /// [`Subscription::wants_urlauth`] says so, and attaches it with
    /// [`Subscription::add_urlauth`].
    pub fn shape_content(
        &self,
        event: &mut Event,
        message: Option<&[u8]>,
        reference: Option<&str>,
    ) -> ContentDecision {
        if !is_message_event(event) {
            return ContentDecision::NotApplicable;
        }
        let policy = &self.config.content;
        if let Some(message) = message
            && include_content(event, message, policy)
        {
            return ContentDecision::Included;
        }
        if policy.reference.http
            && let Some(url) = reference
        {
            event.set_extension(vnd::CONTENT_URL, url);
            return ContentDecision::Referenced;
        }
        if policy.max_bytes == 0 {
            ContentDecision::NotApplicable
        } else {
            ContentDecision::Referenced
        }
    }

    /// True when, after `decision`, the event should carry a `vnd.herald.urlauth` reference.
    pub fn wants_urlauth(&self, decision: &ContentDecision) -> bool {
        *decision == ContentDecision::Referenced && self.config.content.reference.urlauth
    }

    /// How long a `vnd.herald.urlauth` URL stays valid (`None`: until the key is reset).
    pub fn urlauth_lifetime(&self) -> Option<std::time::Duration> {
        let secs = self.config.content.urlauth_expire_secs;
        (secs > 0).then(|| std::time::Duration::from_secs(secs))
    }

    /// Attaches a URLAUTH-authorized IMAP URL of the event's message (`vnd.herald.urlauth`).
    pub fn add_urlauth(&self, event: &mut Event, url: &str) {
        event.set_extension(vnd::URLAUTH, url);
    }

    /// Applies the parameter allow-list, then the subscription's tags (after content shaping,
    /// so an allow-list without `messageContent` removes content too). Configured tags are the
    /// subscription's own label for its receiver (RFC 5423 §5 `tags`), so the allow-list never
    /// removes them.
    pub fn shape_params(&self, event: &mut Event) {
        if let Some((registered, vendor)) = &self.params {
            for p in ParamName::ALL {
                if !registered.contains(&p) {
                    event.remove(p);
                }
            }
            event
                .extensions
                .retain(|(n, _)| n == vnd::ID || vendor.iter().any(|v| v == n));
        }
        if !self.config.tags.is_empty() {
            event.tags = Some(self.config.tags.clone());
        }
    }
}

fn is_message_event(event: &Event) -> bool {
    matches!(
        event.event,
        EventType::MessageNew | EventType::MessageAppend
    )
}

/// The end of the header block: after the first empty line (CRLF CRLF or LF LF).
fn header_end(message: &[u8]) -> usize {
    let crlf = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    let lf = message.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => message.len(),
    }
}

/// Longest prefix of `bytes` (at most `max`) that ends on a UTF-8 character boundary.
fn utf8_prefix(bytes: &[u8], max: usize) -> Option<&str> {
    let mut end = bytes.len().min(max);
    loop {
        match std::str::from_utf8(&bytes[..end]) {
            Ok(s) => return Some(s),
            // Cut inside a character: back off to its start (at most 3 bytes).
            Err(e) if e.error_len().is_none() && end - e.valid_up_to() < 4 => end = e.valid_up_to(),
            Err(_) => return None,
        }
    }
}

fn include_content(event: &mut Event, message: &[u8], policy: &ContentPolicy) -> bool {
    let max = usize::try_from(policy.max_bytes).unwrap_or(usize::MAX);
    match policy.include {
        ContentPart::Message => {
            if message.len() > max {
                return false;
            }
            let Ok(text) = std::str::from_utf8(message) else {
                return false;
            };
            event.message_content = Some(text.to_owned());
            true
        }
        ContentPart::Headers | ContentPart::HeadersAndText => {
            let end = header_end(message);
            if end > max {
                return false;
            }
            let Ok(headers) = std::str::from_utf8(&message[..end]) else {
                return false;
            };
            event.set_extension(vnd::HEADERS, headers);
            if policy.include == ContentPart::HeadersAndText {
                let room = usize::try_from(policy.text_bytes).unwrap_or(usize::MAX);
                if let Some(prefix) = utf8_prefix(&message[end..], room) {
                    event.set_extension(vnd::BODY_PREFIX, prefix);
                }
            }
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SinkConfig;
    use herald_events::ImapUrl;
    use herald_events::UidSet;

    fn config() -> SubscriptionConfig {
        SubscriptionConfig::new("t", SinkConfig::Stdout)
    }

    fn sub(f: impl FnOnce(&mut SubscriptionConfig)) -> Subscription {
        let mut c = config();
        f(&mut c);
        Subscription::compile(c).unwrap()
    }

    fn event(t: EventType, user: &str, mailbox: Option<&str>) -> Event {
        let mut e = Event::new(t);
        e.user = Some(user.into());
        e.uri = Some(match mailbox {
            Some(m) => ImapUrl::message("h", Some(user), m, 1, 5),
            None => ImapUrl::server("h", Some(user)),
        });
        e.set_herald_id(9);
        e
    }

    #[test]
    fn types_and_groups() {
        let s = sub(|c| c.events = vec!["MessageNew".into(), "flags".into(), "vnd.acme.X".into()]);
        assert!(
            s.filter(event(EventType::MessageNew, "a", Some("INBOX")))
                .is_some()
        );
        assert!(
            s.filter(event(EventType::FlagsClear, "a", Some("INBOX")))
                .is_some()
        );
        assert!(
            s.filter(event(EventType::MessageRead, "a", Some("INBOX")))
                .is_some()
        );
        assert!(
            s.filter(event(EventType::MessageAppend, "a", Some("INBOX")))
                .is_none()
        );
        assert!(
            s.filter(event(EventType::from_name("vnd.acme.X"), "a", None))
                .is_some()
        );
        assert!(
            s.filter(event(EventType::from_name("vnd.acme.Y"), "a", None))
                .is_none()
        );
        let all = sub(|_| {});
        assert!(all.filter(event(EventType::Logout, "a", None)).is_some());
    }

    #[test]
    fn body_structure_only_when_named_in_params() {
        let new = event(EventType::MessageNew, "a", Some("INBOX"));
        assert!(!sub(|_| {}).wants_body_structure(&new), "empty params");
        let named = sub(|c| c.params = vec!["uri".into(), "bodyStructure".into()]);
        assert!(named.wants_body_structure(&new));
        assert!(!named.wants_body_structure(&event(EventType::MessageExpunge, "a", Some("INBOX"))));
        let other = sub(|c| c.params = vec!["uri".into()]);
        assert!(!other.wants_body_structure(&new));
    }

    #[test]
    fn herald_types_by_group_and_by_name() {
        let s = sub(|c| c.events = vec!["account".into(), "vnd.herald.LoginFailed".into()]);
        for t in [
            EventType::AccountCreate,
            EventType::PasswordChange,
            EventType::LoginFailed,
        ] {
            assert!(s.filter(event(t.clone(), "a", None)).is_some(), "{t}");
        }
        assert!(s.filter(event(EventType::Login, "a", None)).is_none());
        assert!(
            s.filter(event(EventType::MessageAppend, "a", Some("INBOX")))
                .is_none(),
            "a Herald type never lands on a registered type's bit"
        );
        let access = sub(|c| c.events = vec!["access".into()]);
        assert!(
            access
                .filter(event(EventType::LoginFailed, "a", None))
                .is_some()
        );
        assert!(
            access
                .filter(event(EventType::AccountDelete, "a", None))
                .is_none()
        );
    }

    #[test]
    fn users_and_mailboxes() {
        let s = sub(|c| {
            c.users = vec!["alice".into(), "team-*".into()];
            c.mailboxes = vec!["INBOX".into(), "Lists/%".into()];
        });
        assert!(
            s.filter(event(EventType::MessageNew, "alice", Some("inbox")))
                .is_some()
        );
        assert!(
            s.filter(event(EventType::MessageNew, "team-ops", Some("Lists/rust")))
                .is_some()
        );
        assert!(
            s.filter(event(EventType::MessageNew, "team-ops", Some("Lists/a/b")))
                .is_none()
        );
        assert!(
            s.filter(event(EventType::MessageNew, "bob", Some("INBOX")))
                .is_none()
        );
        // Events without a mailbox are not restricted by the mailbox list.
        assert!(s.filter(event(EventType::Login, "alice", None)).is_some());
        // An event with no user at all does not match a user restriction.
        let mut anonymous = event(EventType::Login, "x", None);
        anonymous.user = None;
        anonymous.uri = Some(ImapUrl::server("h", None));
        assert!(s.filter(anonymous).is_none());
    }

    #[test]
    fn ignored_flags_are_removed_and_empty_flag_events_dropped() {
        let s = sub(|c| c.ignore_flags = vec!["$Junk".into(), "$NotJunk".into()]);
        let mut e = event(EventType::FlagsSet, "a", Some("INBOX"));
        e.uidset = Some(UidSet::single(5));
        e.flag_names = Some(FlagNames::new(["$junk"]));
        assert!(s.filter(e.clone()).is_none());
        e.flag_names = Some(FlagNames::new(["$Junk", "\\Flagged"]));
        let kept = s.filter(e).unwrap();
        assert_eq!(kept.flag_names.unwrap().to_string(), "\\Flagged");
        let mut append = event(EventType::MessageAppend, "a", Some("INBOX"));
        append.flag_names = Some(FlagNames::new(["$Junk"]));
        assert_eq!(s.filter(append).unwrap().flag_names, None);
    }

    #[test]
    fn excluded_causes_drop_imports_only() {
        let s = sub(|c| c.exclude_causes = vec!["import".into()]);
        let with = |cause: &str| {
            let mut e = event(EventType::MessageAppend, "a", Some("INBOX"));
            e.set_extension(vnd::CAUSE, cause);
            e
        };
        assert!(s.filter(with("import")).is_none());
        assert!(s.filter(with("append")).is_some());
        assert!(s.filter(with("copy")).is_some());
        assert!(
            s.filter(event(EventType::MessageNew, "a", Some("INBOX")))
                .is_some()
        );
        // The key parses from TOML and is left out of configurations that do not use it.
        let c: SubscriptionConfig = toml::from_str(
            "name = \"x\"\nexclude_causes = [\"import\"]\nsink = { type = \"stdout\" }",
        )
        .unwrap();
        assert_eq!(c.exclude_causes, ["import"]);
        let plain = serde_json::to_string(&config()).unwrap();
        assert!(!plain.contains("exclude_causes"), "{plain}");
    }

    #[test]
    fn content_up_to_max_bytes_else_a_reference() {
        let s = sub(|c| c.content.max_bytes = 2048);
        let msg = b"Subject: hi\r\n\r\nhello\r\n";
        let url = "http://127.0.0.1:8080/messages?uri=imap%3A%2F%2Fa%40h%2FINBOX&expires=9&sig=x";
        let mut e = event(EventType::MessageNew, "a", Some("INBOX"));
        assert!(s.wants_content(&e));
        assert_eq!(
            s.shape_content(&mut e, Some(msg), Some(url)),
            ContentDecision::Included
        );
        assert_eq!(
            e.message_content.as_deref(),
            Some("Subject: hi\r\n\r\nhello\r\n")
        );

        let big = vec![b'x'; 4096];
        let mut e = event(EventType::MessageNew, "a", Some("INBOX"));
        assert_eq!(
            s.shape_content(&mut e, Some(&big), Some(url)),
            ContentDecision::Referenced
        );
        assert_eq!(e.message_content, None);
        assert_eq!(
            e.extension(vnd::CONTENT_URL).and_then(|v| v.as_str()),
            Some(url)
        );
        // 8-bit content that is not UTF-8 cannot travel in JSON: referenced instead.
        let mut e = event(EventType::MessageNew, "a", Some("INBOX"));
        let latin1 = b"Subject: caf\xe9\r\n\r\n";
        assert_eq!(
            s.shape_content(&mut e, Some(latin1), Some(url)),
            ContentDecision::Referenced
        );
        // Not a message event.
        let mut login = event(EventType::Login, "a", None);
        assert_eq!(
            s.shape_content(&mut login, Some(msg), None),
            ContentDecision::NotApplicable
        );
        // The default policy includes nothing.
        assert!(!sub(|_| {}).wants_content(&event(EventType::MessageNew, "a", Some("INBOX"))));
    }

    #[test]
    fn the_reference_choice_decides_which_references_come() {
        use crate::config::References;
        let url = "http://h/messages?x";
        let big = vec![b'x'; 4096];
        for (refs, http, urlauth) in [
            (References::HTTP, true, false),
            (References::URLAUTH, false, true),
            (References::BOTH, true, true),
            (References::NONE, false, false),
        ] {
            let s = sub(|c| {
                c.content.max_bytes = 2048;
                c.content.reference = refs;
            });
            let mut e = event(EventType::MessageNew, "a", Some("INBOX"));
            let d = s.shape_content(&mut e, Some(&big), Some(url));
            assert_eq!(d, ContentDecision::Referenced, "{refs:?}");
            assert_eq!(e.extension(vnd::CONTENT_URL).is_some(), http, "{refs:?}");
            assert_eq!(s.wants_urlauth(&d), urlauth, "{refs:?}");
            // Content that fits needs no reference of either kind.
            let mut e = event(EventType::MessageNew, "a", Some("INBOX"));
            let d = s.shape_content(&mut e, Some(b"Subject: x\r\n\r\n"), Some(url));
            assert_eq!(d, ContentDecision::Included);
            assert!(!s.wants_urlauth(&d));
        }
        let s = sub(|c| c.content.urlauth_expire_secs = 0);
        assert_eq!(s.urlauth_lifetime(), None);
        assert_eq!(
            sub(|_| {}).urlauth_lifetime(),
            Some(std::time::Duration::from_secs(
                crate::config::DEFAULT_URLAUTH_EXPIRE_SECS
            ))
        );
    }

    #[test]
    fn headers_and_text_prefix() {
        let s = sub(|c| {
            c.content.max_bytes = 100;
            c.content.include = ContentPart::HeadersAndText;
            c.content.text_bytes = 5;
        });
        let msg = "Subject: x\r\n\r\nGrüße aus Köln\r\n".as_bytes();
        let mut e = event(EventType::MessageAppend, "a", Some("INBOX"));
        assert_eq!(
            s.shape_content(&mut e, Some(msg), None),
            ContentDecision::Included
        );
        assert_eq!(
            e.extension(vnd::HEADERS).and_then(|v| v.as_str()),
            Some("Subject: x\r\n\r\n")
        );
        // Five bytes would cut `ß` in half: the prefix stops before it.
        assert_eq!(
            e.extension(vnd::BODY_PREFIX).and_then(|v| v.as_str()),
            Some("Grü")
        );
        assert_eq!(e.message_content, None);
    }

    #[test]
    fn allow_list_and_tags() {
        let s = sub(|c| {
            c.params = vec!["uri".into(), "user".into(), "vnd.herald.cause".into()];
            c.tags = vec!["audit".into()];
        });
        let mut e = event(EventType::MessageAppend, "a", Some("INBOX"));
        e.message_size = Some(10);
        e.set_extension(vnd::CAUSE, "copy");
        e.set_extension("vnd.other", 1);
        s.shape_params(&mut e);
        assert_eq!(
            e.params().collect::<Vec<_>>(),
            [ParamName::Uri, ParamName::User, ParamName::Tags]
        );
        assert_eq!(e.herald_id(), Some(9), "vnd.herald.id is always kept");
        assert!(e.extension(vnd::CAUSE).is_some() && e.extension("vnd.other").is_none());
        // Configured tags survive an allow-list that does not name `tags`.
        assert_eq!(e.tags, Some(vec!["audit".into()]));
        let tagged = sub(|c| c.tags = vec!["audit".into(), "billing".into()]);
        let mut e = event(EventType::Login, "a", None);
        tagged.shape_params(&mut e);
        assert_eq!(e.tags, Some(vec!["audit".into(), "billing".into()]));
    }

    #[test]
    fn names_are_bounded_and_configured_ones_unique() {
        for good in [
            "a",
            "api-sub",
            "audit.v2",
            "Team_Ops-1",
            &"x".repeat(MAX_NAME_LEN),
        ] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "a b",
            "a/b",
            "a:b",
            "é",
            "..\u{0}",
            &"x".repeat(MAX_NAME_LEN + 1),
        ] {
            let err = check_name(bad).unwrap_err().to_string();
            assert!(err.contains("1 to 64 characters"), "{bad}: {err}");
        }
        let named = |n: &str| SubscriptionConfig::new(n, SinkConfig::Stdout);
        assert_eq!(check_configured(&[named("a"), named("b")]), Ok(()));
        let err = check_configured(&[named("a"), named("hook"), named("hook")]).unwrap_err();
        assert_eq!(err, ConfigError::Duplicate("hook".into()));
        assert!(err.to_string().contains("`hook`"), "{err}");
        assert!(check_configured(&[named("a b")]).is_err());
    }

    #[test]
    fn configuration_errors_name_the_field() {
        let bad = |f: fn(&mut SubscriptionConfig)| {
            let mut c = config();
            f(&mut c);
            Subscription::compile(c).unwrap_err().to_string()
        };
        assert!(bad(|c| c.events = vec!["MessageNw".into()]).contains("`MessageNw` in events"));
        assert!(bad(|c| c.params = vec!["size".into()]).contains("`size` in params"));
        assert!(bad(|c| c.name = "a b".into()).contains("name"));
        assert!(
            bad(|c| {
                c.sink = SinkConfig::Webhook {
                    url: "http://127.0.0.1:1/".into(),
                    secret: Some("hunter2".into()),
                    secret_next: None,
                    batch: None,
                    timeout_ms: None,
                }
            })
            .contains("whsec_")
        );
    }
}
