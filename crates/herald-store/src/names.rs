//! Mailbox and account names.
//!
//! IMAP mailbox names here are UTF-8 with `/` as the hierarchy separator (the IMAP layer converts
//! modified UTF-7 at its edge, RFC 5092 URLs carry UTF-8). `INBOX` is case-insensitive (RFC 3501
//! §5.1), also as the first level of a hierarchy (`inbox/x` is `INBOX/x`), so it is normalised
//! here once and every table stores the canonical spelling. Wildcards `*` and `%` are refused
//! because LIST could never name such a mailbox unambiguously; `.` and `..` levels are refused
//! because URLs resolve them (RFC 3986 §5.2.4), which would make one user's event name another's
//! mailbox.

use crate::error::{Result, StoreError};

/// The hierarchy separator.
pub const SEPARATOR: char = '/';
/// Longest mailbox name in bytes.
pub const MAX_MAILBOX_NAME: usize = 1024;
/// Deepest hierarchy.
pub const MAX_DEPTH: usize = 64;
/// Longest account name in bytes.
pub const MAX_USER_NAME: usize = 255;

fn invalid(name: &str, reason: &'static str) -> StoreError {
    StoreError::InvalidName {
        name: name.to_owned(),
        reason,
    }
}

/// Checks a mailbox name and returns its canonical form (INBOX upper-case). A trailing
/// separator is removed when `allow_trailing` (CREATE `a/b/` means `a/b`, RFC 3501 §6.3.3).
pub fn mailbox(name: &str, allow_trailing: bool) -> Result<String> {
    let trimmed = if allow_trailing {
        name.strip_suffix(SEPARATOR).unwrap_or(name)
    } else {
        name
    };
    if trimmed.is_empty() {
        return Err(invalid(name, "empty"));
    }
    if trimmed.len() > MAX_MAILBOX_NAME {
        return Err(invalid(name, "too long"));
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() || c == '*' || c == '%')
    {
        return Err(invalid(
            name,
            "control characters and wildcards are not allowed",
        ));
    }
    let mut parts: Vec<&str> = trimmed.split(SEPARATOR).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(invalid(name, "empty hierarchy level"));
    }
    if parts.iter().any(|p| *p == "." || *p == "..") {
        // Kept, `x/../../alice/Archive` would name, once a URL library resolves the dot
        // segments of an event's `mailboxID`, another user's mailbox.
        return Err(invalid(
            name,
            "`.` and `..` are not allowed as hierarchy levels",
        ));
    }
    if parts.len() > MAX_DEPTH {
        return Err(invalid(name, "hierarchy too deep"));
    }
    if parts[0].eq_ignore_ascii_case("INBOX") {
        parts[0] = "INBOX";
    }
    Ok(parts.join("/"))
}

/// True for the canonical name `INBOX`.
pub fn is_inbox(canonical: &str) -> bool {
    canonical == "INBOX"
}

/// The proper ancestors of a canonical name, outermost first (`a/b/c` → `a`, `a/b`).
pub fn ancestors(canonical: &str) -> impl Iterator<Item = &str> {
    canonical
        .match_indices(SEPARATOR)
        .map(move |(i, _)| &canonical[..i])
}

/// True when `name` is `parent` or below it.
pub fn is_within(name: &str, parent: &str) -> bool {
    name == parent
        || (name.len() > parent.len()
            && name.starts_with(parent)
            && name[parent.len()..].starts_with(SEPARATOR))
}

/// Checks an account name: printable, no whitespace, no `/`, not starting with `#`, at most
/// 255 bytes.
pub fn user(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(invalid(name, "empty"));
    }
    if name == "." || name == ".." {
        return Err(invalid(name, "`.` and `..` are not account names"));
    }
    if name.len() > MAX_USER_NAME {
        return Err(invalid(name, "too long"));
    }
    if name.starts_with('#') {
        // `#shared` owns the "Shared" namespace's mailboxes (see `acl`); the whole `#` range
        // stays free for namespaces to come.
        return Err(invalid(name, "names starting with `#` are reserved"));
    }
    if name
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '/' || c == '*' || c == '%')
    {
        return Err(invalid(
            name,
            "whitespace, control characters, `/` and wildcards are not allowed",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbox_is_case_insensitive_also_as_a_parent() {
        assert_eq!(mailbox("inbox", false).unwrap(), "INBOX");
        assert_eq!(mailbox("InBoX/Sub", false).unwrap(), "INBOX/Sub");
        assert_eq!(mailbox("Inboxes", false).unwrap(), "Inboxes");
        assert_eq!(mailbox("Work/inbox", false).unwrap(), "Work/inbox");
    }

    #[test]
    fn rejects_bad_names() {
        for bad in [
            "",
            "/a",
            "a//b",
            "a/",
            "a*",
            "b%",
            "x\ny",
            &"x".repeat(2000),
            ".",
            "..",
            "a/../b",
            "x/../../alice/Archive",
            "a/./b",
            "a/..",
        ] {
            assert!(mailbox(bad, false).is_err(), "{bad:?}");
        }
        assert_eq!(mailbox("a/b/", true).unwrap(), "a/b");
        assert!(mailbox("/", true).is_err());
        assert!(mailbox("../", true).is_err());
        assert_eq!(mailbox("a.b/..c/d..", false).unwrap(), "a.b/..c/d..");
    }

    #[test]
    fn ancestors_and_within() {
        assert_eq!(ancestors("a/b/c").collect::<Vec<_>>(), ["a", "a/b"]);
        assert_eq!(ancestors("a").count(), 0);
        assert!(is_within("a/b", "a"));
        assert!(is_within("a", "a"));
        assert!(!is_within("ab", "a"));
    }

    #[test]
    fn user_names() {
        assert!(user("alice@example.org").is_ok());
        assert!(user("a b").is_err());
        assert!(user("").is_err());
        assert!(user("a/b").is_err());
        assert!(user("..").is_err());
        assert!(user("#shared").is_err());
        assert!(user("a#b").is_ok());
    }
}
