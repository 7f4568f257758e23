//! `herald-events`: the RFC 5423 "Internet Message Store Events" model that every part of
//! Herald speaks, and the only place the event wire format is defined.
//!
//! - [`EventType`] and [`EventGroup`]: the 18 registered types, Herald's `vnd.herald.` types for
//!   RFC 5423 Appendix A's future events, and the groups subscriptions filter on.
//! - [`ParamName`] and the typed fields of [`Event`]: the 27 registered parameters.
//! - [`ImapUrl`] (RFC 5092), [`UidSet`], [`FlagNames`], [`Timestamp`] (RFC 3339): parameter values.
//! - [`json`]: the flat JSON encoding of DESIGN §5; decoding loses nothing, whoever wrote the event.
//! - [`validate`]: the RFC's rules, each a named [`Violation`].
//! - [`dovecot`]: reads Dovecot's push-notification events into the same model.
//! - [`reference`]: the events reference table the README embeds.
//!
//! The crate does no I/O; it is pure data and rules, so the store, the protocol servers, the
//! dispatcher and external tools agree on one definition.

pub mod dovecot;
mod event;
mod event_type;
mod flags;
pub mod json;
mod metadata;
mod param;
pub mod reference;
mod time;
mod uidset;
mod url;
pub mod validate;

pub use event::{Event, MalformedParam};
pub use event_type::{EventGroup, EventType};
pub use flags::{FlagError, FlagNames, SYSTEM_FLAGS};
pub use json::DecodeError;
pub use metadata::{MAX_ENTRY_NAME, MetadataScope, metadata_entry_name, normalize_entry_name};
pub use param::ParamName;
pub use time::{Timestamp, TimestampError};
pub use uidset::{UidSet, UidSetError};
pub use url::{Access, ImapUrl, Partial, UrlAuth, UrlError, Verifier};
pub use validate::{Violation, Violations};

/// The prefix of vendor event types and parameters (RFC 5423 §6).
pub const VENDOR_PREFIX: &str = "vnd.";

/// Herald's own `vnd.herald.*` parameter names.
pub mod vnd {
    /// The outbox sequence number: unique, strictly increasing; consumers dedupe and resume on it.
    pub const ID: &str = "vnd.herald.id";
    /// Why a message was added: `append`, `copy`, `move` or `import`; for QuotaWithin, what
    /// brought usage under the limit: `expunge`, `expire`, `mailbox-delete` or `quota-change`.
    pub const CAUSE: &str = "vnd.herald.cause";
    /// For copies and moves: IMAP URL of the source mailbox.
    pub const SOURCE_MAILBOX_ID: &str = "vnd.herald.sourceMailboxID";
    /// For copies and moves: SPECIAL-USE attribute of the source mailbox (e.g. `\Junk`).
    pub const SOURCE_SPECIAL_USE: &str = "vnd.herald.sourceSpecialUse";
    /// The node of a cluster (several Herald processes on one database) that made the change;
    /// `serverFQDN` names the cluster. Absent on a single server.
    pub const NODE: &str = "vnd.herald.node";
    /// For Logout: `graceful`, `abort` or `timeout`.
    pub const DISCONNECT: &str = "vnd.herald.disconnect";
    /// For Logout: the session's duration in milliseconds.
    pub const SESSION_MS: &str = "vnd.herald.sessionMillis";
    /// A signed HTTP link to fetch a message whose content the subscription left out.
    pub const CONTENT_URL: &str = "vnd.herald.contentURL";
    /// A URLAUTH-authorized IMAP URL (RFC 4467, access `authuser`) of a message whose content
    /// the subscription left out: any user of the server can fetch it with URLFETCH.
    pub const URLAUTH: &str = "vnd.herald.urlauth";
    /// The message's header block, when a subscription asks for headers only.
    pub const HEADERS: &str = "vnd.herald.headers";
    /// The first bytes of the message body, when a subscription asks for them.
    pub const BODY_PREFIX: &str = "vnd.herald.bodyPrefix";
    /// For copies and moves: the source messages' UIDs, in the order of `uidset` (a UID set).
    pub const SOURCE_UIDSET: &str = "vnd.herald.sourceUidset";
    /// For AccountDisable: the operator's note on why, when one was given.
    pub const COMMENT: &str = "vnd.herald.comment";
    /// For LoginFailed: how the client authenticated (`LOGIN`, `PLAIN`, `USER`, `Basic`, ...).
    pub const MECHANISM: &str = "vnd.herald.mechanism";
    /// For MetadataChange: the names of the entries a SETMETADATA set or removed, a JSON array
    /// of strings (`["/private/comment", "/shared/vendor/x"]`); never their values.
    pub const METADATA_ENTRIES: &str = "vnd.herald.metadataEntries";
    /// For LoginFailed: why, one of [`LOGIN_FAILURE_REASONS`].
    pub const REASON: &str = "vnd.herald.reason";
    /// For AclChange: the ACL identifier whose rights changed (an account name or `anyone`).
    pub const ACL_IDENTIFIER: &str = "vnd.herald.aclIdentifier";
    /// For AclChange: the identifier's rights after the change, RFC 4314 letters in canonical
    /// order (`lrswipkxtea`); empty when the identifier was removed from the ACL.
    pub const ACL_RIGHTS: &str = "vnd.herald.aclRights";
    /// Every RFC 4314 right, in the canonical order `vnd.herald.aclRights` lists them.
    pub const ACL_LETTERS: &str = "lrswipkxtea";
    /// The values of [`REASON`]: wrong password, unknown account, refused by the login rate
    /// limiter, a plaintext login refused before TLS, a disabled account.
    pub const LOGIN_FAILURE_REASONS: [&str; 5] = [
        "bad-credentials",
        "no-such-user",
        "rate-limited",
        "plaintext-refused",
        "account-disabled",
    ];
}
