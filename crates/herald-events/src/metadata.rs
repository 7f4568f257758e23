//! RFC 5464 METADATA entry names, checked in one place: the IMAP grammar rejects a bad name with
//! `BAD`, the store refuses to keep one, and `herald events check` refuses a
//! `vnd.herald.MetadataChange` naming one, all by the same rules.
//!
//! RFC 5464 §3.2: a name is a slash-separated path under `/private/` (the user's own value) or
//! `/shared/` (one value for everyone who can see the mailbox or server); it never contains `*`
//! or `%` (they are LIST-style wildcards), consecutive slashes, a trailing slash, or control
//! characters. Names compare case-insensitively, so Herald keeps and reports them in lower case.

/// The longest entry name Herald accepts, in octets: a bound on what one row of the store holds
/// besides its value.
pub const MAX_ENTRY_NAME: usize = 1024;

/// Whether an entry is the user's own or shared (RFC 5464 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetadataScope {
    /// `/private/…`: one value per user.
    Private,
    /// `/shared/…`: one value for all.
    Shared,
}

/// Checks an entry name; `Ok` with its scope, `Err` with the rule it breaks.
pub fn metadata_entry_name(name: &str) -> Result<MetadataScope, &'static str> {
    if name.len() > MAX_ENTRY_NAME {
        return Err("entry name too long");
    }
    let lower = name.to_ascii_lowercase();
    let (scope, rest) = if let Some(r) = lower.strip_prefix("/private/") {
        (MetadataScope::Private, r)
    } else if let Some(r) = lower.strip_prefix("/shared/") {
        (MetadataScope::Shared, r)
    } else {
        return Err("entry names begin with /private/ or /shared/");
    };
    if rest.is_empty() {
        return Err("entry name has nothing after its scope");
    }
    if name.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("entry names contain no control characters");
    }
    if name.contains(['*', '%']) {
        return Err("entry names contain no '*' or '%'");
    }
    if name.contains("//") {
        return Err("entry names contain no consecutive '/'");
    }
    if name.ends_with('/') {
        return Err("entry names do not end with '/'");
    }
    Ok(scope)
}

/// The form Herald keeps and reports a valid entry name in (lower case).
pub fn normalize_entry_name(name: &str) -> String {
    name.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_5464_names() {
        for ok in [
            "/private/comment",
            "/shared/comment",
            "/shared/vendor/acme/x y",
            "/PRIVATE/Specialuse",
        ] {
            assert!(metadata_entry_name(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            metadata_entry_name("/Shared/Admin"),
            Ok(MetadataScope::Shared)
        );
        for bad in [
            "",
            "/comment",
            "private/comment",
            "/private/",
            "/private",
            "/shared/a//b",
            "/shared/a/",
            "/shared/a*",
            "/shared/%",
            "/shared/a\u{1}",
            "/shared/a\u{7f}",
        ] {
            assert!(metadata_entry_name(bad).is_err(), "{bad:?}");
        }
        assert!(metadata_entry_name(&format!("/shared/{}", "a".repeat(MAX_ENTRY_NAME))).is_err());
        assert_eq!(normalize_entry_name("/Shared/Comment"), "/shared/comment");
    }
}
