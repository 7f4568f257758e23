//! Message flags: validation, canonical spelling and the set arithmetic of STORE.
//!
//! Flags are case-insensitive in IMAP (RFC 3501 §2.3.2). System flags are stored in their
//! canonical spelling (`\Seen`), keywords as first written; comparisons ignore ASCII case, so
//! `$junk` and `$Junk` are one keyword. A message's flags are kept as one space-separated text
//! column, which is all FETCH FLAGS needs and keeps a delivery to one row; `\Recent` is a
//! session property, never stored, and may not be set by a client.

use crate::error::{Result, StoreError};
use herald_events::{FlagNames, SYSTEM_FLAGS};

/// How STORE combines the given flags with a message's flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagMode {
    /// `+FLAGS`: add.
    Add,
    /// `-FLAGS`: remove.
    Remove,
    /// `FLAGS`: replace.
    Replace,
}

/// Longest keyword, in bytes (Dovecot allows 50; clients' `$Label…` keywords fit easily).
pub const MAX_KEYWORD: usize = 128;

/// Most flags and keywords on one message, and in one STORE or APPEND.
pub const MAX_FLAGS: usize = 128;

/// Validates flags given by a client and returns them canonical, without duplicates.
pub fn canonical(flags: &[String]) -> Result<Vec<String>> {
    if flags.len() > MAX_FLAGS {
        return Err(StoreError::InvalidArgument(format!(
            "at most {MAX_FLAGS} flags at once"
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(flags.len());
    for f in flags {
        if f.len() > MAX_KEYWORD {
            return Err(StoreError::InvalidArgument(format!(
                "a keyword is at most {MAX_KEYWORD} bytes long"
            )));
        }
        let name = if f.starts_with('\\') {
            match SYSTEM_FLAGS.iter().find(|s| s.eq_ignore_ascii_case(f)) {
                Some(s) => (*s).to_owned(),
                None => {
                    return Err(StoreError::InvalidArgument(format!(
                        "`{f}` is not a flag a client may set"
                    )));
                }
            }
        } else {
            f.clone()
        };
        if let Err(e) = FlagNames::new([name.as_str()]).check() {
            return Err(StoreError::InvalidArgument(e.to_string()));
        }
        if !contains(&out, &name) {
            out.push(name);
        }
    }
    Ok(out)
}

/// True when `flags` holds `flag` (ASCII case-insensitive).
pub fn contains(flags: &[String], flag: &str) -> bool {
    flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
}

/// Parses the stored column.
pub fn parse(column: &str) -> Vec<String> {
    column.split_ascii_whitespace().map(str::to_owned).collect()
}

/// Formats for the stored column.
pub fn format(flags: &[String]) -> String {
    flags.join(" ")
}

/// Applies a STORE to one message's flags: the new flags, and which were added and removed.
pub fn apply(
    old: &[String],
    mode: FlagMode,
    given: &[String],
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let new: Vec<String> = match mode {
        FlagMode::Add => {
            let mut v = old.to_vec();
            for f in given {
                if !contains(&v, f) {
                    v.push(f.clone());
                }
            }
            v
        }
        FlagMode::Remove => old
            .iter()
            .filter(|f| !contains(given, f))
            .cloned()
            .collect(),
        FlagMode::Replace => given.to_vec(),
    };
    let added = new.iter().filter(|f| !contains(old, f)).cloned().collect();
    let removed = old.iter().filter(|f| !contains(&new, f)).cloned().collect();
    (new, added, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn canonical_spelling_and_refusals() {
        assert_eq!(
            canonical(&v(&["\\seen", "$Junk", "\\SEEN", "$junk"])).unwrap(),
            v(&["\\Seen", "$Junk"])
        );
        assert!(canonical(&v(&["\\Recent"])).is_err());
        assert!(canonical(&v(&["\\Bogus"])).is_err());
        assert!(canonical(&v(&["a(b"])).is_err());
        assert!(canonical(&["k".repeat(60_000)]).is_err());
        assert!(canonical(&["k".repeat(MAX_KEYWORD)]).is_ok());
        let many: Vec<String> = (0..=MAX_FLAGS).map(|i| format!("k{i}")).collect();
        assert!(canonical(&many).is_err());
    }

    #[test]
    fn store_arithmetic() {
        let old = v(&["\\Seen", "$A"]);
        let (new, added, removed) = apply(&old, FlagMode::Add, &v(&["\\Seen", "$B"]));
        assert_eq!(
            (new, added, removed),
            (v(&["\\Seen", "$A", "$B"]), v(&["$B"]), v(&[]))
        );
        let (new, added, removed) = apply(&old, FlagMode::Remove, &v(&["$a"]));
        assert_eq!((new, added, removed), (v(&["\\Seen"]), v(&[]), v(&["$A"])));
        let (new, added, removed) = apply(&old, FlagMode::Replace, &v(&["$A", "\\Flagged"]));
        assert_eq!(
            (new, added, removed),
            (v(&["$A", "\\Flagged"]), v(&["\\Flagged"]), v(&["\\Seen"]))
        );
    }
}
