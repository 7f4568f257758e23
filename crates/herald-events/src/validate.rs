//! The rules RFC 5423 states about events, each a named [`Violation`].
//!
//! RFC 5423 §3 leaves mandatory parameters to bindings, but §4 and §5 state what each event's
//! parameters "include" and several MUSTs. Herald treats those statements as requirements,
//! because consumers rely on them (a MessageExpunge without `uidset` cannot be acted upon):
//!
//! | rule | source |
//! |---|---|
//! | type and parameter names are registered or `vnd.`, US-ASCII printable | §3, §6 |
//! | every event has `uri` | §5 `uri`: "Included with all notifications" |
//! | MessageNew/MessageAppend `uri` has UIDVALIDITY and UID | §4.1 |
//! | MessageExpire/MessageExpunge name a mailbox with UIDVALIDITY, and a `uidset` | §4.1 |
//! | MessageRead/MessageTrash name a mailbox and a `uidset` | §4.2 |
//! | FlagsSet/FlagsClear add `flagNames` | §4.2 |
//! | `flagNames` never holds `\Recent` | §4.2, §5 |
//! | MessageAppend carries no `envelope` | §4.1 |
//! | Login has `serverDomain`, `serverPort`, `user`; Logout `serverDomain`, `user` | §4.3 |
//! | Mailbox events name the mailbox; MailboxCreate with UIDVALIDITY; MailboxRename `oldMailboxID` | §4.4 |
//! | MailboxSubscribe/MailboxUnSubscribe have `user` | §4.4 |
//! | QuotaExceed/QuotaWithin have `user` and a quota; QuotaChange a quota | §4.1, §5 |
//! | `admin` is absent when equal to `user` | §5 `admin` |
//! | `modseq` fits 63 bits | RFC 7162 §3.1.1 |
//! | `messageSize` equals the length of `messageContent` when both are present | §5 |
//! | no parameter is named like a password or secret (`password`, `passwd`, `secret`) | §7 |
//! | `vnd.herald.LoginFailed` has `user`, `service`, `clientIP`, `vnd.herald.mechanism` and a known `vnd.herald.reason` | Appendix A |
//! | `vnd.herald.Account*`/`PasswordChange` have `user` | Appendix A |
//! | `vnd.herald.MetadataChange` has `user`, `service` and `vnd.herald.metadataEntries`, a non-empty array of `/private/…` or `/shared/…` entry names; a mailbox's change also has `mailboxID` with UIDVALIDITY, a server's has none | Appendix A, RFC 5464 §3.2 |
//! | `vnd.herald.urlauth` is a URLAUTH-authorized IMAP URL (RFC 4467) of the event's message | §4.1 |
//! | `vnd.herald.AclChange` names a mailbox, has `user`, `vnd.herald.aclIdentifier` and `vnd.herald.aclRights` (RFC 4314 letters) | Appendix A |

use crate::{Event, EventType, ParamName};
use std::fmt;

/// One way an event breaks the rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// The event type is neither registered nor `vnd.`.
    #[error("unregistered event type `{0}` (vendor types start with `vnd.`)")]
    UnregisteredEvent(String),
    /// A parameter name is neither registered nor `vnd.`.
    #[error("unregistered parameter `{0}` (vendor parameters start with `vnd.`)")]
    UnregisteredParam(String),
    /// A name has characters outside US-ASCII printable, or is `vnd.` alone.
    #[error("bad name `{0}`: names are printable US-ASCII, vendor names `vnd.` and more")]
    BadName(String),
    /// A registered parameter has a value of the wrong type or syntax.
    #[error("{param}: {reason}")]
    Malformed {
        /// Which parameter.
        param: ParamName,
        /// What is wrong with it.
        reason: String,
    },
    /// A parameter the event must carry is absent.
    #[error("{param}: missing")]
    Missing {
        /// Which parameter.
        param: ParamName,
    },
    /// The mailbox identifier lacks something the rules require.
    #[error("{param}: {what}")]
    Incomplete {
        /// The URL parameter at fault.
        param: ParamName,
        /// What it lacks.
        what: &'static str,
    },
    /// A quota event carries neither `diskQuota` nor `maxMessages`.
    #[error("diskQuota/maxMessages: a quota event names at least one quota")]
    NoQuota,
    /// MessageAppend carries an SMTP envelope.
    #[error("envelope: not included with MessageAppend (only MessageNew has an SMTP envelope)")]
    EnvelopeOnAppend,
    /// `admin` equals `user`.
    #[error("admin: present but equal to user (include it only when the identities differ)")]
    AdminSameAsUser,
    /// A `vnd.` parameter the event must carry is absent.
    #[error("{0}: missing")]
    MissingVendor(&'static str),
    /// `vnd.herald.reason` is not one of the documented reasons.
    #[error(
        "vnd.herald.reason: `{0}` is not one of bad-credentials, no-such-user, rate-limited, plaintext-refused, account-disabled"
    )]
    BadReason(String),
    /// `vnd.herald.metadataEntries` is not a non-empty array of entry names.
    #[error("vnd.herald.metadataEntries: {0}")]
    BadMetadataEntries(String),
    /// `vnd.herald.aclRights` is not a string of RFC 4314 rights.
    #[error("vnd.herald.aclRights: `{0}` is not a string of RFC 4314 rights (lrswipkxtea)")]
    BadRights(String),
    /// A parameter looks like it carries a password or another secret.
    #[error("{0}: an event never carries a password or secret")]
    Secret(String),
    /// `vnd.herald.urlauth` is not a URLAUTH-authorized URL of the event's own message.
    #[error("vnd.herald.urlauth: {0}")]
    BadUrlauth(&'static str),
    /// `messageSize` disagrees with the length of `messageContent`.
    #[error("messageSize: {size} but messageContent has {actual} octets")]
    SizeMismatch {
        /// The stated size.
        size: u64,
        /// The content's length in octets.
        actual: u64,
    },
}

/// All violations of one event; empty means valid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations(pub Vec<Violation>);

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{v}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Violations {}

fn printable_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic())
}

fn check_vendor_name(name: &str, out: &mut Vec<Violation>) {
    let ok = printable_name(name) && name.len() > crate::VENDOR_PREFIX.len();
    if !ok {
        out.push(Violation::BadName(name.to_owned()));
    }
}

impl EventType {
    /// Parameters the event must carry (RFC 5423 §4, §5). Further rules about their content
    /// (UIDVALIDITY, UID, a mailbox) are in [`Event::validate`].
    pub fn required(&self) -> &'static [ParamName] {
        use EventType::*;
        use ParamName as P;
        match self {
            MessageAppend | MessageNew | QuotaChange | MailboxCreate | MailboxDelete => &[P::Uri],
            MessageExpire | MessageExpunge | MessageRead | MessageTrash => &[P::Uri, P::Uidset],
            FlagsSet | FlagsClear => &[P::Uri, P::Uidset, P::FlagNames],
            QuotaExceed | QuotaWithin | MailboxSubscribe | MailboxUnSubscribe => &[P::Uri, P::User],
            Login => &[P::Uri, P::ServerDomain, P::ServerPort, P::User],
            Logout => &[P::Uri, P::ServerDomain, P::User],
            MailboxRename => &[P::Uri, P::OldMailboxId],
            LoginFailed => &[P::Uri, P::Service, P::User, P::ClientIp],
            AccountCreate | AccountDelete | AccountDisable | AccountEnable | PasswordChange => {
                &[P::Uri, P::User]
            }
            MetadataChange => &[P::Uri, P::User, P::Service],
            AclChange => &[P::Uri, P::User],
            Vendor(_) | Unregistered(_) => &[],
        }
    }
}

impl Event {
    /// Every rule this event breaks; `Ok` when it breaks none.
    pub fn validate(&self) -> Result<(), Violations> {
        let mut out = Vec::new();
        self.collect_violations(&mut out);
        if out.is_empty() {
            Ok(())
        } else {
            Err(Violations(out))
        }
    }

    /// MetadataChange: the entry names, and `mailboxID` exactly when `uri` names a mailbox.
    fn check_metadata_change(&self, out: &mut Vec<Violation>) {
        use ParamName as P;
        let bad = |why: String| Violation::BadMetadataEntries(why);
        match self.extension(crate::vnd::METADATA_ENTRIES) {
            None => out.push(Violation::MissingVendor(crate::vnd::METADATA_ENTRIES)),
            Some(serde_json::Value::Array(names)) if names.is_empty() => {
                out.push(bad("an empty list".into()))
            }
            Some(serde_json::Value::Array(names)) => {
                for n in names {
                    match n.as_str() {
                        Some(name) if crate::metadata_entry_name(name).is_ok() => {}
                        Some(name) => out.push(bad(format!("`{name}` is not an entry name"))),
                        None => out.push(bad(format!("{n} is not a string"))),
                    }
                }
            }
            Some(v) => out.push(bad(format!("{v} is not an array"))),
        }
        let on_mailbox = self.uri.as_ref().is_some_and(|u| u.mailbox.is_some());
        match &self.mailbox_id {
            None if on_mailbox => out.push(Violation::Missing {
                param: P::MailboxId,
            }),
            Some(_) if !on_mailbox && self.uri.is_some() => out.push(Violation::Incomplete {
                param: P::MailboxId,
                what: "must be absent for server entries (uri names no mailbox)",
            }),
            Some(m) if m.uidvalidity.is_none() => out.push(Violation::Incomplete {
                param: P::MailboxId,
                what: "must include UIDVALIDITY",
            }),
            _ => {}
        }
    }

    fn collect_violations(&self, out: &mut Vec<Violation>) {
        use EventType::*;
        use ParamName as P;
        match &self.event {
            Unregistered(name) => {
                if printable_name(name) {
                    out.push(Violation::UnregisteredEvent(name.clone()));
                } else {
                    out.push(Violation::BadName(name.clone()));
                }
            }
            Vendor(name) => check_vendor_name(name, out),
            _ => {}
        }
        for (name, _) in &self.extensions {
            let lower = name.to_ascii_lowercase();
            if ["password", "passwd", "secret"]
                .iter()
                .any(|w| lower.contains(w))
            {
                out.push(Violation::Secret(name.clone()));
            }
            if name.starts_with(crate::VENDOR_PREFIX) {
                check_vendor_name(name, out);
            } else if printable_name(name) {
                out.push(Violation::UnregisteredParam(name.clone()));
            } else {
                out.push(Violation::BadName(name.clone()));
            }
        }
        for m in &self.malformed {
            out.push(Violation::Malformed {
                param: m.name,
                reason: m.reason.clone(),
            });
        }
        let malformed = |p: ParamName| self.malformed.iter().any(|m| m.name == p);
        for &param in self.event.required() {
            if !self.has(param) && !malformed(param) {
                out.push(Violation::Missing { param });
            }
        }

        // Structural rules on the URLs.
        for (param, url) in [
            (P::Uri, &self.uri),
            (P::MailboxId, &self.mailbox_id),
            (P::OldMailboxId, &self.old_mailbox_id),
        ] {
            if let Some(Err(e)) = url.as_ref().map(|u| u.check()) {
                out.push(Violation::Malformed {
                    param,
                    reason: e.to_string(),
                });
            }
        }
        let uri = self.uri.as_ref();
        let incomplete = |param, what| Violation::Incomplete { param, what };
        match &self.event {
            MessageNew | MessageAppend => {
                if let Some(u) = uri {
                    if u.mailbox.is_none() {
                        out.push(incomplete(P::Uri, "must name a mailbox"));
                    }
                    if u.uidvalidity.is_none() {
                        out.push(incomplete(P::Uri, "must include UIDVALIDITY"));
                    }
                    if u.uid.is_none() {
                        out.push(incomplete(P::Uri, "must include the message's UID"));
                    }
                }
            }
            MessageExpire | MessageExpunge | MessageRead | MessageTrash | FlagsSet | FlagsClear => {
                let needs_validity = matches!(self.event, MessageExpire | MessageExpunge);
                match self.mailbox_url() {
                    Some((param, u)) if needs_validity && u.uidvalidity.is_none() => {
                        out.push(incomplete(param, "must include UIDVALIDITY"));
                    }
                    Some(_) => {}
                    None if uri.is_some() => out.push(incomplete(P::Uri, "must name a mailbox")),
                    None => {}
                }
            }
            AclChange if self.mailbox_url().is_none() && uri.is_some() => {
                out.push(incomplete(P::Uri, "must name a mailbox"));
            }
            MailboxCreate | MailboxDelete | MailboxRename | MailboxSubscribe
            | MailboxUnSubscribe => match self.mailbox_url() {
                Some((param, u)) if self.event == MailboxCreate && u.uidvalidity.is_none() => {
                    out.push(incomplete(
                        param,
                        "must include the new mailbox's UIDVALIDITY",
                    ));
                }
                Some(_) => {}
                None if uri.is_some() => out.push(incomplete(P::Uri, "must name a mailbox")),
                None => {}
            },
            _ => {}
        }
        if let Some(old) = &self.old_mailbox_id
            && old.mailbox.is_none()
        {
            out.push(incomplete(P::OldMailboxId, "must name a mailbox"));
        }

        if let Some(flags) = &self.flag_names
            && let Err(e) = flags.check()
        {
            out.push(Violation::Malformed {
                param: P::FlagNames,
                reason: e.to_string(),
            });
        }
        if let Some(set) = &self.uidset
            && set.is_empty()
        {
            out.push(Violation::Malformed {
                param: P::Uidset,
                reason: "empty UID set".to_owned(),
            });
        }
        if matches!(self.event, QuotaExceed | QuotaWithin | QuotaChange)
            && self.disk_quota.is_none()
            && self.max_messages.is_none()
        {
            out.push(Violation::NoQuota);
        }
        if self.event == LoginFailed {
            if self.extension(crate::vnd::MECHANISM).is_none() {
                out.push(Violation::MissingVendor(crate::vnd::MECHANISM));
            }
            match self.extension(crate::vnd::REASON) {
                None => out.push(Violation::MissingVendor(crate::vnd::REASON)),
                Some(v) => {
                    let known = v
                        .as_str()
                        .is_some_and(|r| crate::vnd::LOGIN_FAILURE_REASONS.contains(&r));
                    if !known {
                        out.push(Violation::BadReason(v.to_string()));
                    }
                }
            }
        }
        if self.event == MetadataChange {
            self.check_metadata_change(out);
        }
        if let Some(v) = self.extension(crate::vnd::URLAUTH)
            && let Err(why) = self.check_urlauth(v)
        {
            out.push(Violation::BadUrlauth(why));
        }
        if self.event == AclChange {
            if self.extension(crate::vnd::ACL_IDENTIFIER).is_none() {
                out.push(Violation::MissingVendor(crate::vnd::ACL_IDENTIFIER));
            }
            match self.extension(crate::vnd::ACL_RIGHTS) {
                None => out.push(Violation::MissingVendor(crate::vnd::ACL_RIGHTS)),
                Some(v) => {
                    let ok = v
                        .as_str()
                        .is_some_and(|r| r.chars().all(|c| crate::vnd::ACL_LETTERS.contains(c)));
                    if !ok {
                        out.push(Violation::BadRights(v.to_string()));
                    }
                }
            }
        }
        if self.event == MessageAppend && self.envelope.is_some() {
            out.push(Violation::EnvelopeOnAppend);
        }
        if self.admin.is_some() && self.admin == self.user {
            out.push(Violation::AdminSameAsUser);
        }
        if let Some(m) = self.modseq
            && m > i64::MAX as u64
        {
            out.push(Violation::Malformed {
                param: P::Modseq,
                reason: format!("{m} exceeds the 63-bit mod-sequence range"),
            });
        }
        if let (Some(size), Some(content)) = (self.message_size, &self.message_content) {
            let actual = content.len() as u64;
            if size != actual {
                out.push(Violation::SizeMismatch { size, actual });
            }
        }
    }

    /// A `vnd.herald.urlauth` value: an authorized URL (mechanism and token) naming the same
    /// message as `uri` (host, UIDVALIDITY and UID), with an access identifier.
    fn check_urlauth(&self, v: &serde_json::Value) -> Result<(), &'static str> {
        let text = v.as_str().ok_or("not a string")?;
        let url: crate::ImapUrl = text.parse().map_err(|_| "not an IMAP URL")?;
        let auth = url.urlauth.as_ref().ok_or("no ;URLAUTH=")?;
        if auth.verifier.is_none() {
            return Err("not authorized (no mechanism and token)");
        }
        if crate::Access::parse(&auth.access).is_none() {
            return Err("unknown access identifier");
        }
        if url.user.is_none() || url.uidvalidity.is_none() {
            return Err("must name the owner and UIDVALIDITY");
        }
        let Some(uri) = &self.uri else {
            return Ok(());
        };
        // Not the mailbox name: the `cyrus` format renames `uri`'s mailbox into Cyrus's
        // namespace, while the URLAUTH URL must stay as it was signed.
        let same = url.uidvalidity == uri.uidvalidity
            && url.uid == uri.uid
            && url.host.eq_ignore_ascii_case(&uri.host);
        if same {
            Ok(())
        } else {
            Err("names another message than uri")
        }
    }

    /// The URL that identifies the event's mailbox: `mailboxID` when it names one, else `uri`.
    fn mailbox_url(&self) -> Option<(ParamName, &crate::ImapUrl)> {
        if let Some(u) = &self.mailbox_id
            && u.mailbox.is_some()
        {
            return Some((ParamName::MailboxId, u));
        }
        self.uri
            .as_ref()
            .filter(|u| u.mailbox.is_some())
            .map(|u| (ParamName::Uri, u))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FlagNames, ImapUrl, UidSet};

    const H: &str = "mail.example.org";

    fn violations(e: &Event) -> Vec<Violation> {
        e.validate().err().map(|v| v.0).unwrap_or_default()
    }

    fn mailbox() -> ImapUrl {
        ImapUrl::mailbox(H, Some("alice"), "INBOX", Some(17))
    }

    fn valid(t: EventType) -> Event {
        use EventType::*;
        let mut e = Event::new(t.clone());
        e.user = Some("alice".into());
        e.uri = Some(mailbox());
        match t {
            MessageNew | MessageAppend => e.uri = Some(ImapUrl::message(H, None, "INBOX", 17, 3)),
            MessageExpire | MessageExpunge | MessageRead | MessageTrash => {
                e.uidset = Some(UidSet::single(3))
            }
            FlagsSet | FlagsClear => {
                e.uidset = Some(UidSet::single(3));
                e.flag_names = Some(FlagNames::new(["$Junk"]));
            }
            QuotaExceed | QuotaWithin | QuotaChange => e.disk_quota = Some(1024),
            Login | Logout => {
                e.uri = Some(ImapUrl::server(H, None));
                e.server_domain = Some(H.into());
                e.server_port = Some(143);
            }
            MailboxRename => e.old_mailbox_id = Some(ImapUrl::mailbox(H, None, "Old", Some(2))),
            LoginFailed => {
                e.uri = Some(ImapUrl::server(H, None));
                e.service = Some("imap".into());
                e.client_ip = Some(std::net::IpAddr::from([192, 0, 2, 1]));
                e.set_extension(crate::vnd::MECHANISM, "PLAIN");
                e.set_extension(crate::vnd::REASON, "bad-credentials");
            }
            AccountCreate | AccountDelete | AccountDisable | AccountEnable | PasswordChange => {
                e.uri = Some(ImapUrl::server(H, Some("alice")));
            }
            MetadataChange => {
                e.service = Some("imap".into());
                e.mailbox_id = Some(mailbox());
                e.set_extension(
                    crate::vnd::METADATA_ENTRIES,
                    serde_json::json!(["/private/comment"]),
                );
            }
            AclChange => {
                e.set_extension(crate::vnd::ACL_IDENTIFIER, "bob");
                e.set_extension(crate::vnd::ACL_RIGHTS, "lr");
            }
            _ => {}
        }
        e
    }

    #[test]
    fn metadata_change_names_entries_and_its_mailbox() {
        let mut server = valid(EventType::MetadataChange);
        server.uri = Some(ImapUrl::server(H, Some("alice")));
        server.mailbox_id = None;
        assert_eq!(violations(&server), []);
        server.mailbox_id = Some(mailbox());
        assert!(matches!(
            violations(&server)[..],
            [Violation::Incomplete {
                param: ParamName::MailboxId,
                ..
            }]
        ));
        let mut e = valid(EventType::MetadataChange);
        e.mailbox_id = None;
        e.set_extension(
            crate::vnd::METADATA_ENTRIES,
            serde_json::json!(["/private/comment", "/other/x", 3]),
        );
        assert_eq!(
            violations(&e),
            [
                Violation::BadMetadataEntries("`/other/x` is not an entry name".into()),
                Violation::BadMetadataEntries("3 is not a string".into()),
                Violation::Missing {
                    param: ParamName::MailboxId
                },
            ]
        );
        e.set_extension(crate::vnd::METADATA_ENTRIES, serde_json::json!([]));
        e.mailbox_id = Some(mailbox());
        assert_eq!(
            violations(&e),
            [Violation::BadMetadataEntries("an empty list".into())]
        );
        e.extensions.clear();
        assert_eq!(
            violations(&e),
            [Violation::MissingVendor(crate::vnd::METADATA_ENTRIES)]
        );
    }

    #[test]
    fn a_urlauth_reference_must_name_the_events_message() {
        let mut e = valid(EventType::MessageNew);
        let good = "imap://alice@mail.example.org/INBOX;UIDVALIDITY=17/;UID=3;EXPIRE=2026-11-24T10:00:00.000+00:00;URLAUTH=authuser:INTERNAL:0a1b";
        e.set_extension(crate::vnd::URLAUTH, good);
        assert_eq!(violations(&e), []);
        for (bad, why) in [
            (
                good.replace("UID=3", "UID=4"),
                "names another message than uri",
            ),
            (
                good.replace("UIDVALIDITY=17", "UIDVALIDITY=18"),
                "names another message than uri",
            ),
            (
                good.replace(":INTERNAL:0a1b", ""),
                "not authorized (no mechanism and token)",
            ),
            (
                good.replace("authuser", "someone"),
                "unknown access identifier",
            ),
            (
                good.replace("alice@", ""),
                "must name the owner and UIDVALIDITY",
            ),
            ("https://example.org/".to_owned(), "not an IMAP URL"),
        ] {
            e.set_extension(crate::vnd::URLAUTH, bad.as_str());
            assert_eq!(violations(&e), [Violation::BadUrlauth(why)], "{bad}");
        }
        e.set_extension(crate::vnd::URLAUTH, 7);
        assert_eq!(violations(&e), [Violation::BadUrlauth("not a string")]);
        // The `cyrus` format names the mailbox in Cyrus's namespace; the URL stays as signed.
        e.uri = Some(ImapUrl::message(H, None, "user/alice", 17, 3));
        e.set_extension(crate::vnd::URLAUTH, good);
        assert_eq!(violations(&e), []);
    }

    #[test]
    fn acl_change_needs_a_mailbox_an_identifier_and_rights() {
        assert_eq!(violations(&valid(EventType::AclChange)), []);
        let mut e = valid(EventType::AclChange);
        e.uri = Some(ImapUrl::server(H, Some("alice")));
        e.mailbox_id = None;
        e.set_extension(crate::vnd::ACL_RIGHTS, "lrZ");
        e.remove_extension(crate::vnd::ACL_IDENTIFIER);
        assert_eq!(
            violations(&e),
            [
                Violation::Incomplete {
                    param: ParamName::Uri,
                    what: "must name a mailbox"
                },
                Violation::MissingVendor(crate::vnd::ACL_IDENTIFIER),
                Violation::BadRights("\"lrZ\"".into()),
            ]
        );
        // Removing an identifier leaves it no rights: an empty string is valid.
        let mut e = valid(EventType::AclChange);
        e.set_extension(crate::vnd::ACL_RIGHTS, "");
        assert_eq!(violations(&e), []);
    }

    #[test]
    fn login_failed_needs_its_parameters_and_never_a_password() {
        let mut e = valid(EventType::LoginFailed);
        e.set_extension("vnd.herald.password", "hunter2");
        e.user = None;
        e.set_extension(crate::vnd::REASON, "wrong");
        assert_eq!(
            violations(&e),
            [
                Violation::Secret("vnd.herald.password".into()),
                Violation::Missing {
                    param: ParamName::User
                },
                Violation::BadReason("\"wrong\"".into()),
            ]
        );
        let mut e = valid(EventType::LoginFailed);
        e.extensions.clear();
        assert_eq!(
            violations(&e),
            [
                Violation::MissingVendor(crate::vnd::MECHANISM),
                Violation::MissingVendor(crate::vnd::REASON),
            ]
        );
        let mut p = valid(EventType::PasswordChange);
        p.set_extension("vnd.acme.newPassword", "x");
        assert_eq!(
            violations(&p),
            [Violation::Secret("vnd.acme.newPassword".into())]
        );
    }

    #[test]
    fn a_minimal_valid_event_of_every_type() {
        for t in EventType::REGISTERED.into_iter().chain(EventType::HERALD) {
            let e = valid(t.clone());
            assert_eq!(violations(&e), [], "{t}");
            for &p in t.required() {
                let mut missing = e.clone();
                missing.remove(p);
                assert!(
                    violations(&missing).contains(&Violation::Missing { param: p }),
                    "{t} without {p}"
                );
            }
        }
    }

    #[test]
    fn unregistered_and_bad_names() {
        let mut e = valid(EventType::Login);
        e.event = EventType::from_name("MailboxModseq");
        e.set_extension("aclRights", "lr");
        e.set_extension("vnd.", 1);
        e.set_extension("vnd.x y", 1);
        e.set_extension("vnd.cmu.sessionId", "s");
        assert_eq!(
            violations(&e),
            [
                Violation::UnregisteredEvent("MailboxModseq".into()),
                Violation::UnregisteredParam("aclRights".into()),
                Violation::BadName("vnd.".into()),
                Violation::BadName("vnd.x y".into()),
            ]
        );
        let vendor = Event::new(EventType::from_name("vnd.cmu.MessageMove"));
        assert_eq!(violations(&vendor), []);
        let bad = Event::new(EventType::from_name("Message\tNew"));
        assert_eq!(
            violations(&bad),
            [Violation::BadName("Message\tNew".into())]
        );
    }

    #[test]
    fn message_new_and_append_need_uidvalidity_and_uid() {
        for t in [EventType::MessageNew, EventType::MessageAppend] {
            let mut e = valid(t);
            e.uri = Some(ImapUrl::mailbox(H, None, "INBOX", None));
            let v = violations(&e);
            assert!(v.contains(&Violation::Incomplete {
                param: ParamName::Uri,
                what: "must include UIDVALIDITY"
            }));
            assert!(v.contains(&Violation::Incomplete {
                param: ParamName::Uri,
                what: "must include the message's UID"
            }));
        }
    }

    #[test]
    fn expunge_and_expire_need_uidvalidity_and_a_uidset() {
        for t in [EventType::MessageExpunge, EventType::MessageExpire] {
            let mut e = valid(t);
            e.uri = Some(ImapUrl::mailbox(H, None, "INBOX", None));
            assert_eq!(
                violations(&e),
                [Violation::Incomplete {
                    param: ParamName::Uri,
                    what: "must include UIDVALIDITY"
                }]
            );
            e.uri = Some(ImapUrl::server(H, None));
            assert!(violations(&e).contains(&Violation::Incomplete {
                param: ParamName::Uri,
                what: "must name a mailbox"
            }));
        }
    }

    #[test]
    fn recent_is_never_reported() {
        for t in [
            EventType::FlagsSet,
            EventType::FlagsClear,
            EventType::MessageNew,
        ] {
            let mut e = valid(t);
            e.flag_names = Some(FlagNames::new(["\\Seen", "\\Recent"]));
            assert_eq!(
                violations(&e),
                [Violation::Malformed {
                    param: ParamName::FlagNames,
                    reason: "\\Recent is not permitted in flagNames".into()
                }]
            );
        }
        let mut empty = valid(EventType::FlagsSet);
        empty.flag_names = Some(FlagNames::default());
        assert!(!violations(&empty).is_empty());
    }

    #[test]
    fn append_has_no_envelope() {
        let mut e = valid(EventType::MessageAppend);
        e.envelope = Some("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n".into());
        assert_eq!(violations(&e), [Violation::EnvelopeOnAppend]);
        let mut n = valid(EventType::MessageNew);
        n.envelope = e.envelope.clone();
        assert_eq!(violations(&n), []);
    }

    #[test]
    fn login_logout_parameters() {
        let mut login = valid(EventType::Login);
        login.server_port = None;
        assert_eq!(
            violations(&login),
            [Violation::Missing {
                param: ParamName::ServerPort
            }]
        );
        let mut logout = valid(EventType::Logout);
        logout.server_port = None;
        assert_eq!(violations(&logout), []);
    }

    #[test]
    fn mailbox_events_name_a_mailbox() {
        let mut create = valid(EventType::MailboxCreate);
        create.uri = Some(ImapUrl::mailbox(H, None, "Work", None));
        assert_eq!(
            violations(&create),
            [Violation::Incomplete {
                param: ParamName::Uri,
                what: "must include the new mailbox's UIDVALIDITY"
            }]
        );
        // A mailboxID URL satisfies the rule even when uri names only the server.
        create.uri = Some(ImapUrl::server(H, None));
        create.mailbox_id = Some(ImapUrl::mailbox(H, None, "Work", Some(9)));
        assert_eq!(violations(&create), []);

        let mut rename = valid(EventType::MailboxRename);
        rename.old_mailbox_id = Some(ImapUrl::server(H, None));
        assert_eq!(
            violations(&rename),
            [Violation::Incomplete {
                param: ParamName::OldMailboxId,
                what: "must name a mailbox"
            }]
        );
        let mut sub = valid(EventType::MailboxUnSubscribe);
        sub.user = None;
        assert_eq!(
            violations(&sub),
            [Violation::Missing {
                param: ParamName::User
            }]
        );
    }

    #[test]
    fn quota_events_name_a_quota() {
        for t in [
            EventType::QuotaExceed,
            EventType::QuotaWithin,
            EventType::QuotaChange,
        ] {
            let mut e = valid(t);
            e.disk_quota = None;
            assert_eq!(violations(&e), [Violation::NoQuota]);
            e.max_messages = Some(100);
            assert_eq!(violations(&e), []);
        }
    }

    #[test]
    fn admin_modseq_size() {
        let mut e = valid(EventType::MessageNew);
        e.admin = Some("alice".into());
        e.modseq = Some(u64::MAX);
        e.message_size = Some(10);
        e.message_content = Some("12345".into());
        let v = violations(&e);
        assert!(v.contains(&Violation::AdminSameAsUser));
        assert!(v.iter().any(|x| matches!(
            x,
            Violation::Malformed {
                param: ParamName::Modseq,
                ..
            }
        )));
        assert!(v.contains(&Violation::SizeMismatch {
            size: 10,
            actual: 5
        }));
        e.admin = Some("root".into());
        e.modseq = Some(i64::MAX as u64);
        e.message_size = Some(5);
        assert_eq!(violations(&e), []);
    }

    #[test]
    fn malformed_values_are_reported_once() {
        let e = Event::from_json(
            r#"{"event":"MessageExpunge","uri":"imap://h/INBOX;UIDVALIDITY=1","uidset":"1:*"}"#,
        )
        .unwrap();
        assert_eq!(
            violations(&e),
            [Violation::Malformed {
                param: ParamName::Uidset,
                reason: "`*` is not allowed in an event's UID set".into()
            }]
        );
    }
}
