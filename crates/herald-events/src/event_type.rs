//! Event types: the 18 names of the IANA "Internet Message Store Events" registry (RFC 5423 §4),
//! Herald's own `vnd.herald.*` types for the events RFC 5423 Appendix A leaves for the future
//! (authentication failure, account and password changes, metadata and mailbox ACL changes), the groups a subscription turns on
//! and off (RFC 5423 §3 asks for "groups of related events"), and a lossless place for names
//! from other systems.
//!
//! Decoding never fails on an unknown name: Cyrus emits `MailboxModseq` and `AclChange`, and a
//! consumer must be able to read, re-encode and forward them. Whether a name is acceptable is the
//! validator's question ([`crate::validate`]), not the decoder's.

use std::fmt;

/// A group of related event types, the unit a subscription switches on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventGroup {
    /// Messages added or removed: MessageAppend, MessageExpire, MessageExpunge, MessageNew.
    Message,
    /// Quota limits crossed or changed: QuotaExceed, QuotaWithin, QuotaChange.
    Quota,
    /// Flags and keywords: MessageRead, MessageTrash, FlagsSet, FlagsClear.
    Flags,
    /// Access accounting: Login, Logout, `vnd.herald.LoginFailed`.
    Access,
    /// Mailbox management: MailboxCreate, MailboxDelete, MailboxRename, `vnd.herald.AclChange`.
    Mailbox,
    /// The subscription list: MailboxSubscribe, MailboxUnSubscribe.
    Subscription,
    /// Account management (RFC 5423 Appendix A): `vnd.herald.AccountCreate`, `AccountDelete`,
    /// `AccountDisable`, `AccountEnable`, `PasswordChange`.
    Account,
    /// Annotations (RFC 5423 Appendix A "annotations ... metadata change", RFC 5464 METADATA):
    /// `vnd.herald.MetadataChange`.
    Metadata,
}

impl EventGroup {
    /// Every group, in the order the configuration documents them.
    pub const ALL: [EventGroup; 8] = [
        EventGroup::Message,
        EventGroup::Quota,
        EventGroup::Flags,
        EventGroup::Access,
        EventGroup::Mailbox,
        EventGroup::Subscription,
        EventGroup::Account,
        EventGroup::Metadata,
    ];

    /// The name used in configuration (`[events] groups`, a subscription's `events`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventGroup::Message => "message",
            EventGroup::Quota => "quota",
            EventGroup::Flags => "flags",
            EventGroup::Access => "access",
            EventGroup::Mailbox => "mailbox",
            EventGroup::Subscription => "subscription",
            EventGroup::Account => "account",
            EventGroup::Metadata => "metadata",
        }
    }

    /// Looks a group up by its configuration name (case-insensitive).
    pub fn from_name(name: &str) -> Option<EventGroup> {
        EventGroup::ALL
            .into_iter()
            .find(|g| g.as_str().eq_ignore_ascii_case(name))
    }

    /// The event types in this group: registered types first, then Herald's own.
    pub fn members(self) -> impl Iterator<Item = EventType> {
        EventType::REGISTERED
            .into_iter()
            .chain(EventType::HERALD)
            .filter(move |t| t.group() == Some(self))
    }
}

impl fmt::Display for EventGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The type of an event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// A client appended a message (IMAP APPEND, COPY, MOVE).
    MessageAppend,
    /// Server policy expired messages from a mailbox.
    MessageExpire,
    /// A client expunged messages.
    MessageExpunge,
    /// A delivery agent delivered a message.
    MessageNew,
    /// An operation failed because a quota would be exceeded.
    QuotaExceed,
    /// Usage fell back under a quota limit.
    QuotaWithin,
    /// A quota limit was changed.
    QuotaChange,
    /// Messages were marked `\Seen`.
    MessageRead,
    /// Messages were marked `\Deleted`.
    MessageTrash,
    /// Flags or keywords were set.
    FlagsSet,
    /// Flags or keywords were cleared.
    FlagsClear,
    /// A user logged in.
    Login,
    /// A user logged out or was disconnected.
    Logout,
    /// A mailbox was created.
    MailboxCreate,
    /// A mailbox was deleted.
    MailboxDelete,
    /// A mailbox was renamed.
    MailboxRename,
    /// A mailbox was added to the subscription list.
    MailboxSubscribe,
    /// A mailbox was removed from the subscription list (registry spelling, capital S).
    MailboxUnSubscribe,
    /// `vnd.herald.LoginFailed`: an authentication attempt failed or was refused.
    LoginFailed,
    /// `vnd.herald.AccountCreate`: an account was created.
    AccountCreate,
    /// `vnd.herald.AccountDelete`: an account was deleted.
    AccountDelete,
    /// `vnd.herald.AccountDisable`: an account was disabled.
    AccountDisable,
    /// `vnd.herald.AccountEnable`: a disabled account was enabled again.
    AccountEnable,
    /// `vnd.herald.PasswordChange`: an account's password was changed.
    PasswordChange,
    /// `vnd.herald.MetadataChange`: SETMETADATA changed mailbox or server annotations.
    MetadataChange,
    /// `vnd.herald.AclChange`: a mailbox's access control list changed (RFC 4314 SETACL or
    /// DELETEACL).
    AclChange,
    /// A vendor type: the name starts with `vnd.` and is kept verbatim.
    Vendor(String),
    /// A name that is neither registered nor `vnd.`: kept so that decoding loses nothing,
    /// rejected by validation.
    Unregistered(String),
}

impl EventType {
    /// The 18 registered types, in registry order (RFC 5423 §4).
    pub const REGISTERED: [EventType; 18] = [
        EventType::MessageAppend,
        EventType::MessageExpire,
        EventType::MessageExpunge,
        EventType::MessageNew,
        EventType::QuotaExceed,
        EventType::QuotaWithin,
        EventType::QuotaChange,
        EventType::MessageRead,
        EventType::MessageTrash,
        EventType::FlagsSet,
        EventType::FlagsClear,
        EventType::Login,
        EventType::Logout,
        EventType::MailboxCreate,
        EventType::MailboxDelete,
        EventType::MailboxRename,
        EventType::MailboxSubscribe,
        EventType::MailboxUnSubscribe,
    ];

    /// Herald's own types (RFC 5423 Appendix A's future events), in reference order. They are
    /// `vnd.herald.` names, so any consumer of the registry accepts them as vendor types.
    pub const HERALD: [EventType; 8] = [
        EventType::LoginFailed,
        EventType::AccountCreate,
        EventType::AccountDelete,
        EventType::AccountDisable,
        EventType::AccountEnable,
        EventType::PasswordChange,
        EventType::MetadataChange,
        EventType::AclChange,
    ];

    /// Classifies a name: a registered type (exact spelling), one of Herald's own types, another
    /// `vnd.` type, or unregistered.
    pub fn from_name(name: &str) -> EventType {
        if let Some(t) = Self::registered(name) {
            return t;
        }
        if let Some(t) = Self::HERALD.into_iter().find(|t| t.as_str() == name) {
            return t;
        }
        if name.starts_with(crate::VENDOR_PREFIX) {
            EventType::Vendor(name.to_owned())
        } else {
            EventType::Unregistered(name.to_owned())
        }
    }

    /// The registered type with exactly this spelling, if any.
    pub fn registered(name: &str) -> Option<EventType> {
        Some(match name {
            "MessageAppend" => EventType::MessageAppend,
            "MessageExpire" => EventType::MessageExpire,
            "MessageExpunge" => EventType::MessageExpunge,
            "MessageNew" => EventType::MessageNew,
            "QuotaExceed" => EventType::QuotaExceed,
            "QuotaWithin" => EventType::QuotaWithin,
            "QuotaChange" => EventType::QuotaChange,
            "MessageRead" => EventType::MessageRead,
            "MessageTrash" => EventType::MessageTrash,
            "FlagsSet" => EventType::FlagsSet,
            "FlagsClear" => EventType::FlagsClear,
            "Login" => EventType::Login,
            "Logout" => EventType::Logout,
            "MailboxCreate" => EventType::MailboxCreate,
            "MailboxDelete" => EventType::MailboxDelete,
            "MailboxRename" => EventType::MailboxRename,
            "MailboxSubscribe" => EventType::MailboxSubscribe,
            "MailboxUnSubscribe" => EventType::MailboxUnSubscribe,
            _ => return None,
        })
    }

    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            EventType::MessageAppend => "MessageAppend",
            EventType::MessageExpire => "MessageExpire",
            EventType::MessageExpunge => "MessageExpunge",
            EventType::MessageNew => "MessageNew",
            EventType::QuotaExceed => "QuotaExceed",
            EventType::QuotaWithin => "QuotaWithin",
            EventType::QuotaChange => "QuotaChange",
            EventType::MessageRead => "MessageRead",
            EventType::MessageTrash => "MessageTrash",
            EventType::FlagsSet => "FlagsSet",
            EventType::FlagsClear => "FlagsClear",
            EventType::Login => "Login",
            EventType::Logout => "Logout",
            EventType::MailboxCreate => "MailboxCreate",
            EventType::MailboxDelete => "MailboxDelete",
            EventType::MailboxRename => "MailboxRename",
            EventType::MailboxSubscribe => "MailboxSubscribe",
            EventType::MailboxUnSubscribe => "MailboxUnSubscribe",
            EventType::LoginFailed => "vnd.herald.LoginFailed",
            EventType::AccountCreate => "vnd.herald.AccountCreate",
            EventType::AccountDelete => "vnd.herald.AccountDelete",
            EventType::AccountDisable => "vnd.herald.AccountDisable",
            EventType::AccountEnable => "vnd.herald.AccountEnable",
            EventType::PasswordChange => "vnd.herald.PasswordChange",
            EventType::MetadataChange => "vnd.herald.MetadataChange",
            EventType::AclChange => "vnd.herald.AclChange",
            EventType::Vendor(name) | EventType::Unregistered(name) => name,
        }
    }

    /// True for the 18 registered types.
    pub fn is_registered(&self) -> bool {
        !matches!(self, EventType::Vendor(_) | EventType::Unregistered(_)) && !self.is_herald()
    }

    /// True for Herald's own `vnd.herald.` types ([`EventType::HERALD`]).
    pub fn is_herald(&self) -> bool {
        use EventType::*;
        matches!(
            self,
            LoginFailed
                | AccountCreate
                | AccountDelete
                | AccountDisable
                | AccountEnable
                | PasswordChange
                | MetadataChange
                | AclChange
        )
    }

    /// The group a registered or Herald type belongs to; `None` for other vendor types and
    /// unregistered types.
    pub fn group(&self) -> Option<EventGroup> {
        use EventType::*;
        Some(match self {
            MessageAppend | MessageExpire | MessageExpunge | MessageNew => EventGroup::Message,
            QuotaExceed | QuotaWithin | QuotaChange => EventGroup::Quota,
            MessageRead | MessageTrash | FlagsSet | FlagsClear => EventGroup::Flags,
            Login | Logout | LoginFailed => EventGroup::Access,
            AccountCreate | AccountDelete | AccountDisable | AccountEnable | PasswordChange => {
                EventGroup::Account
            }
            MailboxCreate | MailboxDelete | MailboxRename | AclChange => EventGroup::Mailbox,
            MailboxSubscribe | MailboxUnSubscribe => EventGroup::Subscription,
            MetadataChange => EventGroup::Metadata,
            Vendor(_) | Unregistered(_) => return None,
        })
    }

    /// What the event means and when Herald emits it: the text of the README's events reference.
    pub fn description(&self) -> &'static str {
        use EventType::*;
        match self {
            MessageAppend => {
                "A client added a message: IMAP APPEND, the target side of COPY and MOVE, or \
                 `herald import` (`vnd.herald.cause` says which)."
            }
            MessageExpire => {
                "Herald's expiry policy (per-mailbox maximum age) removed messages; `uidset` lists them."
            }
            MessageExpunge => {
                "A client removed messages: IMAP EXPUNGE, UID EXPUNGE, CLOSE, the source side of MOVE, \
                 or POP3 DELE followed by QUIT."
            }
            MessageNew => {
                "A message was delivered over LMTP; one event per recipient, with the SMTP `envelope`."
            }
            QuotaExceed => {
                "A delivery or append was refused because it would exceed the account's storage or \
                 message quota."
            }
            QuotaWithin => {
                "Usage went from at-or-over a limit to under it; `vnd.herald.cause` says why: \
                 `expunge`, `expire`, `mailbox-delete` or `quota-change` (a raised limit)."
            }
            QuotaChange => "An administrator changed an account's quota.",
            MessageRead => "Messages were marked `\\Seen` (unless `seen_deleted_as_flags` is on).",
            MessageTrash => {
                "Messages were marked `\\Deleted` (unless `seen_deleted_as_flags` is on)."
            }
            FlagsSet => "Flags or keywords other than `\\Seen`/`\\Deleted` were set.",
            FlagsClear => "Flags or keywords were cleared.",
            Login => "A user authenticated over IMAP, POP3 or HTTP.",
            Logout => {
                "A session ended: logout, dropped connection or timeout (the kind of disconnect and \
                 the session's duration are in `vnd.herald.*` parameters)."
            }
            MailboxCreate => {
                "A mailbox was created (one event for the leaf; implied parents get none), or an \
                 ACL change made another account's mailbox visible to `user` (RFC 5423 §4.4; \
                 named as that user sees it, `user/OWNER/NAME`)."
            }
            MailboxDelete => {
                "A mailbox was deleted (a mailbox with children stays as `\\Noselect`), or an \
                 ACL change hid another account's mailbox from `user`."
            }
            MailboxRename => {
                "A mailbox was renamed, children included; `oldMailboxID` holds the old name."
            }
            MailboxSubscribe => "A mailbox was added to the user's subscription list.",
            MailboxUnSubscribe => "A mailbox was removed from the user's subscription list.",
            LoginFailed => {
                "An IMAP, POP3 or HTTP authentication failed or was refused, once per attempt \
                 (refusals by the login limiter: once a minute per client and name): `user` tried, `clientIP`/`clientPort`, `service`, `vnd.herald.mechanism` and \
                 `vnd.herald.reason` (`bad-credentials`, `no-such-user`, `rate-limited`, \
                 `plaintext-refused`, `account-disabled`). Never the password."
            }
            AccountCreate => {
                "An account was created (`herald user add`); followed in the same transaction by \
                 MailboxCreate for its INBOX."
            }
            AccountDelete => {
                "An account was deleted (`herald user del`), after MailboxDelete for each of its \
                 mailboxes."
            }
            AccountDisable => {
                "An account was disabled (`herald user disable`): its logins are refused, its \
                 mail and deliveries go on; `vnd.herald.comment` holds the operator's note."
            }
            AccountEnable => "A disabled account was enabled again (`herald user enable`).",
            PasswordChange => {
                "An account's password was changed (`herald user passwd`); never carries the \
                 password or its hash."
            }
            MetadataChange => {
                "SETMETADATA (RFC 5464) set or removed annotations, one event per command: for a \
                 mailbox's entries `uri` and `mailboxID` name the mailbox, for server entries \
                 `uri` names the server; `vnd.herald.metadataEntries` lists the entry names \
                 changed (a JSON array). Never the values."
            }
            AclChange => {
                "A mailbox's access control list changed (IMAP SETACL or DELETEACL, RFC 4314): \
                 `uri`/`mailboxID` name the mailbox as its owner sees it, `user` is who changed it \
                 (the owner or a user with the `a` right), `vnd.herald.aclIdentifier` the \
                 identifier changed and `vnd.herald.aclRights` its \
                 rights now (empty when removed). When the change makes the mailbox visible to \
                 a user (or hides it), MailboxCreate (or MailboxDelete) for that user follows \
                 in the same transaction (RFC 5423 §4.4)."
            }
            Vendor(_) => "A vendor-specific event.",
            Unregistered(_) => "A name outside the registry.",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for EventType {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(EventType::from_name(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_name_round_trips() {
        for t in EventType::REGISTERED {
            assert_eq!(EventType::from_name(t.as_str()), t);
            assert!(t.is_registered());
            assert!(t.group().is_some());
        }
    }

    #[test]
    fn registry_spelling_is_exact() {
        assert_eq!(
            EventType::from_name("MailboxUnSubscribe"),
            EventType::MailboxUnSubscribe
        );
        // Dovecot's spelling is not the registry's.
        assert_eq!(
            EventType::from_name("MailboxUnsubscribe"),
            EventType::Unregistered("MailboxUnsubscribe".into())
        );
        assert_eq!(
            EventType::from_name("vnd.cmu.MessageMove"),
            EventType::Vendor("vnd.cmu.MessageMove".into())
        );
    }

    #[test]
    fn herald_types_are_vendor_names_with_a_group() {
        for t in EventType::HERALD {
            assert!(t.as_str().starts_with("vnd.herald."), "{t}");
            assert_eq!(EventType::from_name(t.as_str()), t);
            assert!(!t.is_registered());
            assert!(t.is_herald());
            assert!(t.group().is_some());
        }
        assert_eq!(EventType::LoginFailed.group(), Some(EventGroup::Access));
        assert_eq!(EventGroup::Account.members().count(), 5);
        assert_eq!(EventGroup::from_name("account"), Some(EventGroup::Account));
        assert_eq!(
            EventType::MetadataChange.group(),
            Some(EventGroup::Metadata)
        );
        assert_eq!(
            EventGroup::from_name("metadata").map(|g| g.members().collect::<Vec<_>>()),
            Some(vec![EventType::MetadataChange])
        );
    }

    #[test]
    fn groups_partition_the_registry() {
        let total: usize = EventGroup::ALL.iter().map(|g| g.members().count()).sum();
        assert_eq!(total, 18 + EventType::HERALD.len());
        assert_eq!(EventGroup::Flags.members().count(), 4);
        assert_eq!(EventGroup::from_name("QUOTA"), Some(EventGroup::Quota));
        assert_eq!(EventGroup::from_name("nope"), None);
    }
}
