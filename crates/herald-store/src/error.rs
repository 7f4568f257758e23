//! [`StoreError`]: the one error type of the crate.
//!
//! Each variant carries what a protocol layer needs to answer precisely — IMAP `NO [NONEXISTENT]`,
//! `NO [ALREADYEXISTS]`, `NO [OVERQUOTA]`, LMTP `452 4.2.2` — so the mapping to replies lives in
//! one function per protocol and never parses messages. Database and I/O failures are kept
//! apart from the caller's mistakes: the former are the server's fault, the latter the client's.

use std::fmt;

/// Which quota an operation would exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaResource {
    /// Storage, counted in kilobytes (1024 octets).
    Storage,
    /// Number of messages.
    Messages,
}

impl fmt::Display for QuotaResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QuotaResource::Storage => "storage",
            QuotaResource::Messages => "messages",
        })
    }
}

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An account, mailbox or message does not exist.
    #[error("{what} `{name}` does not exist")]
    NotFound {
        /// `account`, `mailbox` or `message`.
        what: &'static str,
        /// Its name.
        name: String,
    },
    /// The name is taken.
    #[error("{what} `{name}` already exists")]
    AlreadyExists {
        /// `account` or `mailbox`.
        what: &'static str,
        /// Its name.
        name: String,
    },
    /// A mailbox or account name breaks the naming rules.
    #[error("invalid name `{name}`: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// An argument is not acceptable (a flag that cannot be set, an empty quota change…).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The mailbox exists but is `\Noselect` (a deleted parent that still has children).
    #[error("mailbox `{0}` is not selectable")]
    NoSelect(String),
    /// The session's user lacks a right the operation needs on another account's mailbox
    /// (RFC 4314; IMAP `NO [NOPERM]`). A mailbox the user may not even see is
    /// [`StoreError::NotFound`] instead, so its existence is not revealed.
    #[error("no permission: `{mailbox}` needs the `{needed}` right")]
    NoPermission {
        /// The mailbox as the caller named it.
        mailbox: String,
        /// The rights missing, as RFC 4314 letters.
        needed: String,
    },
    /// The operation needs an authenticated user and the session has none.
    #[error("the session has no user")]
    NoUser,
    /// Wrong user name or password, or an authorization identity the user may not assume.
    #[error("authentication failed")]
    AuthFailed,
    /// The credentials are right but the account is disabled; only said after the password
    /// was verified, so it tells a guesser nothing.
    #[error("the account is disabled")]
    AccountDisabled,
    /// The operation would exceed a quota. Nothing was changed, but the QuotaExceed event was
    /// committed: its outbox id is `event_id`.
    #[error("over quota: {user}'s {resource} limit is {limit}, usage would be {usage}")]
    OverQuota {
        /// The account.
        user: String,
        /// Which limit.
        resource: QuotaResource,
        /// The limit (kilobytes or messages).
        limit: u64,
        /// The usage the operation would have reached.
        usage: u64,
        /// `vnd.herald.id` of the committed QuotaExceed event (0 until it is committed).
        event_id: u64,
    },
    /// A METADATA rule or limit refused a SETMETADATA (RFC 5464 §4.3); nothing was changed.
    #[error("{0}")]
    Metadata(MetadataRefusal),
    /// A subscription's delivery state was not written: another node holds its lease now, or
    /// its cursor was moved (a replay) since this node read it.
    #[error("subscription `{0}` is delivered elsewhere now, or its cursor was moved")]
    LeaseLost(String),
    /// The store is closed (the writer thread has stopped).
    #[error("the store is closed")]
    Closed,
    /// A file operation failed (blob files, the data directory).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    /// The data on disk is not what this version expects (schema version, corrupt row).
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The database server did not answer: refused, timed out, or the connection broke.
    #[error("PostgreSQL at {target} is unreachable: {reason}")]
    Unreachable {
        /// `host:port/database` (never the password).
        target: String,
        /// What failed, as the driver said it.
        reason: String,
    },
    /// The database's schema was made by a newer Herald; this one refuses to touch it.
    #[error(
        "the database schema is at version {found}, newer than this Herald knows ({known}): \
         upgrade Herald"
    )]
    SchemaTooNew {
        /// The version found in the database.
        found: i64,
        /// The newest version this code creates and understands.
        known: i64,
    },
    /// A PostgreSQL statement failed.
    #[error("PostgreSQL error: {0}")]
    Postgres(#[from] tokio_postgres::Error),
}

impl StoreError {
    pub(crate) fn not_found(what: &'static str, name: impl Into<String>) -> StoreError {
        StoreError::NotFound {
            what,
            name: name.into(),
        }
    }

    pub(crate) fn exists(what: &'static str, name: impl Into<String>) -> StoreError {
        StoreError::AlreadyExists {
            what,
            name: name.into(),
        }
    }
}

/// Why the store refused to change metadata; each maps to the RFC 5464 response code of the
/// same name (`[METADATA MAXSIZE n]`, `[METADATA TOOMANY]`) or to a refused permission.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataRefusal {
    /// A value is larger than the configured maximum.
    #[error("metadata value of {size} octets exceeds the limit of {max}")]
    TooLarge {
        /// The value's size.
        size: u64,
        /// The largest value the store keeps (`MAXSIZE`).
        max: u64,
    },
    /// The change would leave more entries than allowed on the mailbox (or server) or for the
    /// user.
    #[error("too many metadata entries: at most {max} per {per}")]
    TooMany {
        /// The limit.
        max: u64,
        /// `mailbox` or `user`.
        per: &'static str,
    },
    /// Shared server entries are set by administrators only.
    #[error("only administrators may change shared server metadata")]
    NotAdmin,
}

/// The crate's result type.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl From<crate::sql::Error> for StoreError {
    fn from(e: crate::sql::Error) -> StoreError {
        use crate::sql::Error;
        match e {
            Error::Sqlite(e) => StoreError::Db(e),
            Error::Postgres(e) => StoreError::Postgres(e),
            Error::Pool(reason) => StoreError::Unreachable {
                target: "the PostgreSQL pool".into(),
                reason,
            },
            e @ (Error::NoRow | Error::Type { .. }) => StoreError::Corrupt(e.to_string()),
        }
    }
}
