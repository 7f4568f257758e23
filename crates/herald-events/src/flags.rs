//! `flagNames`: IMAP flags (`\Seen`) and keywords (`$Junk`), space-separated on the wire
//! (RFC 5423 §5: "a list (likely to be space-separated)").
//!
//! Decoding keeps every name as written, `\Recent` included, so that a foreign event survives a
//! round trip; [`FlagNames::check`] applies the rules.

use std::fmt;
use std::str::FromStr;

/// The five system flags a client may set (RFC 3501 §2.3.2), in their canonical spelling.
pub const SYSTEM_FLAGS: [&str; 5] = ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"];

/// Why a list of flag names is not acceptable in an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    /// RFC 5423 §4.2 and §5: `\Recent` is never reported.
    #[error("\\Recent is not permitted in flagNames")]
    Recent,
    /// Not a flag (`\` atom) or keyword (atom).
    #[error("`{0}` is not an IMAP flag or keyword")]
    Malformed(String),
    /// The same name twice (case-insensitive, as IMAP compares flags).
    #[error("`{0}` is listed twice")]
    Duplicate(String),
    /// The list is empty where names are required.
    #[error("no flag names")]
    Empty,
}

/// A list of flag and keyword names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FlagNames(Vec<String>);

/// RFC 3501 `atom-specials` plus CTL and non-ASCII: what an atom may not contain.
fn is_atom_char(c: char) -> bool {
    c.is_ascii_graphic() && !matches!(c, '(' | ')' | '{' | '%' | '*' | '"' | '\\' | ']')
}

impl FlagNames {
    /// Builds the list from names, keeping their order.
    pub fn new<S: Into<String>>(names: impl IntoIterator<Item = S>) -> FlagNames {
        FlagNames(names.into_iter().map(Into::into).collect())
    }

    /// The names, in order.
    pub fn names(&self) -> &[String] {
        &self.0
    }

    /// True when there is no name.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when a name equals `flag` (case-insensitive).
    pub fn contains(&self, flag: &str) -> bool {
        self.0.iter().any(|n| n.eq_ignore_ascii_case(flag))
    }

    /// Checks the list: non-empty, well-formed, no `\Recent`, no duplicates.
    pub fn check(&self) -> Result<(), FlagError> {
        if self.0.is_empty() {
            return Err(FlagError::Empty);
        }
        for (i, name) in self.0.iter().enumerate() {
            if name.eq_ignore_ascii_case("\\Recent") {
                return Err(FlagError::Recent);
            }
            let atom = name.strip_prefix('\\').unwrap_or(name);
            if atom.is_empty() || !atom.chars().all(is_atom_char) {
                return Err(FlagError::Malformed(name.clone()));
            }
            if self.0[..i].iter().any(|n| n.eq_ignore_ascii_case(name)) {
                return Err(FlagError::Duplicate(name.clone()));
            }
        }
        Ok(())
    }
}

impl FromStr for FlagNames {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(FlagNames(
            s.split_ascii_whitespace().map(str::to_owned).collect(),
        ))
    }
}

impl fmt::Display for FlagNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, n) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(n)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(s: &str) -> FlagNames {
        s.parse().unwrap()
    }

    #[test]
    fn flags_and_keywords() {
        let f = flags("\\Answered $Label1 \\Seen");
        assert!(f.check().is_ok());
        assert!(f.contains("\\seen"));
        assert_eq!(f.to_string(), "\\Answered $Label1 \\Seen");
    }

    #[test]
    fn recent_is_refused_in_any_case() {
        assert_eq!(flags("\\Seen \\Recent").check(), Err(FlagError::Recent));
        assert_eq!(flags("\\RECENT").check(), Err(FlagError::Recent));
    }

    #[test]
    fn malformed_duplicate_empty() {
        assert!(matches!(flags("a(b").check(), Err(FlagError::Malformed(_))));
        assert!(matches!(flags("\\").check(), Err(FlagError::Malformed(_))));
        assert!(matches!(
            flags("caf\u{e9}").check(),
            Err(FlagError::Malformed(_))
        ));
        assert!(matches!(
            flags("$Junk $junk").check(),
            Err(FlagError::Duplicate(_))
        ));
        assert_eq!(flags("").check(), Err(FlagError::Empty));
    }
}
