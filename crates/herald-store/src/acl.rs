//! Access control lists (RFC 4314) and the "Other Users" namespace that makes them useful.
//!
//! A mailbox's ACL maps identifiers (account names, or `anyone`) to rights. The owner has every
//! right implicitly and is never stored; what others may do is the union of their own entry
//! and `anyone`'s. Negative rights (`-name`) are not supported: RFC 4314 §2 makes them
//! optional, and without them "who may see this mailbox" is a plain union that LIST and the
//! event streams can answer with one indexed read.
//!
//! Other users' mailboxes are addressed as `user/OWNER/NAME` (the "Other Users" namespace
//! NAMESPACE announces, RFC 2342). [`other_user`] is the one parser of that form: the facade
//! resolves such a name to (owner, mailbox) and the writer checks the caller's rights inside
//! the operation's transaction, so IMAP, POP3 and HTTP reach other users' mail only through
//! the same check. Account names cannot contain `/`, so the form is unambiguous.
//!
//! Mailboxes no user owns — a team's `support` queue, a company's `announcements` — live in
//! the "Shared" namespace, `#shared/NAME` (RFC 2342 §5's example prefix). They belong to the
//! reserved pseudo-account [`SHARED_OWNER`], which no one can log in as or create (account
//! names cannot start with `#`), and which [`other_user`] treats as one more owner, so every
//! path that resolves `user/OWNER/NAME` resolves `#shared/NAME` the same way and runs the same
//! rights check. Administrators hold every right there (they create the top level and grant
//! the rest with SETACL); everyone else holds what the ACL gives them. Their events name the
//! mailbox with an owner-less URL, `imap://host/%23shared/NAME`, which is how any user
//! selects it.

use crate::error::{Result, StoreError};
use std::fmt;

/// The prefix of the "Other Users" namespace (with the `/` separator).
pub const OTHER_USERS_PREFIX: &str = "user/";

/// The pseudo-account that owns the "Shared" namespace's mailboxes.
pub const SHARED_OWNER: &str = "#shared";

/// The prefix of the "Shared" namespace (with the `/` separator).
pub const SHARED_PREFIX: &str = "#shared/";

/// The identifier that stands for every authenticated user.
pub const ANYONE: &str = "anyone";

/// A set of RFC 4314 rights.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Rights(u16);

impl Rights {
    /// Every right, in canonical order: lookup, read, keep seen, write, insert, post, create
    /// (`k`), delete mailbox (`x`), delete messages (`t`), expunge, administer.
    pub const LETTERS: &'static str = herald_events::vnd::ACL_LETTERS;
    /// No rights.
    pub const NONE: Rights = Rights(0);
    /// Every right (the owner's).
    pub const ALL: Rights = Rights((1 << 11) - 1);
    /// `l`: the mailbox is visible to LIST.
    pub const LOOKUP: Rights = Rights(1 << 0);
    /// `r`: SELECT, EXAMINE, STATUS, FETCH, SEARCH, COPY from.
    pub const READ: Rights = Rights(1 << 1);
    /// `s`: keep `\Seen`.
    pub const SEEN: Rights = Rights(1 << 2);
    /// `w`: flags and keywords other than `\Seen` and `\Deleted`.
    pub const WRITE: Rights = Rights(1 << 3);
    /// `i`: APPEND, COPY/MOVE into.
    pub const INSERT: Rights = Rights(1 << 4);
    /// `p`: submission to the mailbox (no protocol here uses it; kept for GETACL).
    pub const POST: Rights = Rights(1 << 5);
    /// `k`: CREATE below it, RENAME into it.
    pub const CREATE: Rights = Rights(1 << 6);
    /// `x`: DELETE, RENAME from.
    pub const DELETE_MAILBOX: Rights = Rights(1 << 7);
    /// `t`: `\Deleted`, and the source side of MOVE.
    pub const DELETE_MESSAGES: Rights = Rights(1 << 8);
    /// `e`: EXPUNGE.
    pub const EXPUNGE: Rights = Rights(1 << 9);
    /// `a`: SETACL, DELETEACL, GETACL, LISTRIGHTS.
    pub const ADMIN: Rights = Rights(1 << 10);

    /// Parses RFC 4314 letters, also the obsolete `c` (= `k`, `x`) and `d` (= `t`, `e`) of
    /// RFC 2086 that RFC 4314 §2.1.1 asks servers to accept.
    pub fn parse(s: &str) -> Result<Rights> {
        let mut r = Rights::NONE;
        for c in s.chars() {
            r = r | match c {
                'c' => Rights::CREATE | Rights::DELETE_MAILBOX,
                'd' => Rights::DELETE_MESSAGES | Rights::EXPUNGE,
                _ => match Self::LETTERS.find(c) {
                    Some(i) => Rights(1 << i),
                    None => {
                        return Err(StoreError::InvalidArgument(format!(
                            "`{c}` is not an ACL right (rights are {})",
                            Self::LETTERS
                        )));
                    }
                },
            };
        }
        Ok(r)
    }

    /// True when every right of `other` is in `self`.
    pub fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }

    /// True for no rights.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The rights in `self` and not in `other`.
    pub fn without(self, other: Rights) -> Rights {
        Rights(self.0 & !other.0)
    }

    /// Whether a user with these rights may know the mailbox exists: `l` shows it in LIST,
    /// `r` lets them open it by name. Without either it answers as if it did not exist
    /// (RFC 4314 §6 asks not to reveal it).
    pub fn sees(self) -> bool {
        self.contains(Rights::LOOKUP) || self.contains(Rights::READ)
    }
}

impl std::ops::BitOr for Rights {
    type Output = Rights;
    fn bitor(self, o: Rights) -> Rights {
        Rights(self.0 | o.0)
    }
}

impl fmt::Display for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in Self::LETTERS.chars().enumerate() {
            if self.0 & (1 << i) != 0 {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// The rights a STORE of `flags` needs (RFC 4314 §4): `s` for `\Seen`, `t` for `\Deleted`,
/// `w` for any other flag or keyword; a replacement may change every kind, so it needs all
/// three.
pub fn store_rights(flags: &[String], replace: bool) -> Rights {
    if replace {
        return Rights::SEEN | Rights::WRITE | Rights::DELETE_MESSAGES;
    }
    flags.iter().fold(Rights::NONE, |r, f| {
        r | if f.eq_ignore_ascii_case("\\Seen") {
            Rights::SEEN
        } else if f.eq_ignore_ascii_case("\\Deleted") {
            Rights::DELETE_MESSAGES
        } else {
            Rights::WRITE
        }
    })
}

/// The flags of an APPEND or COPY a user with `rights` may set (RFC 4314 §4: the others are
/// dropped silently, the message still goes in).
pub fn allowed_flags(flags: &[String], rights: Rights) -> Vec<String> {
    flags
        .iter()
        .filter(|f| rights.contains(store_rights(std::slice::from_ref(f), false)))
        .cloned()
        .collect()
}

/// `user/OWNER/NAME` → (`OWNER`, `NAME`); `user/OWNER` alone → (`OWNER`, "") — the owner's
/// node in the namespace, not a mailbox. `None` for a name outside the namespace.
/// `#shared/NAME` → ([`SHARED_OWNER`], `NAME`) and `#shared` → ([`SHARED_OWNER`], ""), the
/// same way.
pub fn other_user(name: &str) -> Option<(&str, &str)> {
    if name == SHARED_OWNER {
        return Some((SHARED_OWNER, ""));
    }
    if let Some(rest) = name.strip_prefix(SHARED_PREFIX) {
        return Some((SHARED_OWNER, rest));
    }
    let rest = name.strip_prefix(OTHER_USERS_PREFIX)?;
    match rest.split_once('/') {
        Some((owner, mailbox)) if !owner.is_empty() => Some((owner, mailbox)),
        None if !rest.is_empty() => Some((rest, "")),
        _ => None,
    }
}

/// How `owner`'s mailbox `name` is called by another user: `user/OWNER/NAME`, or
/// `#shared/NAME` for a mailbox of the "Shared" namespace.
pub fn shared_name(owner: &str, name: &str) -> String {
    if owner == SHARED_OWNER {
        format!("{SHARED_PREFIX}{name}")
    } else {
        format!("{OTHER_USERS_PREFIX}{owner}/{name}")
    }
}

/// The owner and mailbox an event's IMAP URL names: `imap://OWNER@host/NAME`, or the
/// owner-less `imap://host/%23shared/NAME` of a "Shared" namespace mailbox.
pub fn url_mailbox(url: &herald_events::ImapUrl) -> Option<(&str, &str)> {
    let mailbox = url.mailbox.as_deref()?;
    match url.user.as_deref() {
        Some(owner) => Some((owner, mailbox)),
        None => mailbox
            .strip_prefix(SHARED_PREFIX)
            .map(|rest| (SHARED_OWNER, rest)),
    }
}

/// One ACL entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclEntry {
    /// An account name or `anyone`.
    pub identifier: String,
    /// Its rights.
    pub rights: Rights,
}

/// A mailbox of another account that a user may see, as LIST shows it.
#[derive(Debug, Clone)]
pub struct SharedMailbox {
    /// The owning account.
    pub owner: String,
    /// The mailbox, named as its owner names it.
    pub mailbox: crate::model::MailboxInfo,
    /// The user's rights on it.
    pub rights: Rights,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_parse_and_print_in_canonical_order() {
        let r = Rights::parse("ail").unwrap();
        assert_eq!(r.to_string(), "lia");
        assert_eq!(Rights::ALL.to_string(), "lrswipkxtea");
        assert_eq!(Rights::parse("cd").unwrap().to_string(), "kxte");
        assert!(Rights::parse("lz").is_err());
        assert!(Rights::parse("").unwrap().is_empty());
        assert!(r.contains(Rights::LOOKUP | Rights::INSERT));
        assert!(!r.contains(Rights::READ));
        assert!(r.sees());
        assert!(!Rights::INSERT.sees());
    }

    #[test]
    fn store_needs_a_right_per_kind_of_flag() {
        let f = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(store_rights(&f(&["\\Seen"]), false), Rights::SEEN);
        assert_eq!(
            store_rights(&f(&["\\deleted", "$Junk"]), false),
            Rights::DELETE_MESSAGES | Rights::WRITE
        );
        assert_eq!(store_rights(&[], true).to_string(), "swt");
        assert_eq!(
            allowed_flags(&f(&["\\Seen", "\\Flagged", "\\Deleted"]), Rights::SEEN),
            f(&["\\Seen"])
        );
    }

    #[test]
    fn other_users_names() {
        assert_eq!(other_user("user/bob/Shared/x"), Some(("bob", "Shared/x")));
        assert_eq!(other_user("user/bob"), Some(("bob", "")));
        assert_eq!(other_user("user/"), None);
        assert_eq!(other_user("user//x"), None);
        assert_eq!(other_user("users/bob/x"), None);
        assert_eq!(other_user("INBOX"), None);
        assert_eq!(shared_name("bob", "Shared"), "user/bob/Shared");
        assert_eq!(
            other_user("#shared/support/2026"),
            Some((SHARED_OWNER, "support/2026"))
        );
        assert_eq!(other_user("#shared"), Some((SHARED_OWNER, "")));
        assert_eq!(other_user("#sharedx/a"), None);
        assert_eq!(shared_name(SHARED_OWNER, "support"), "#shared/support");
    }
}
