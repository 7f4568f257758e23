//! Glob patterns for user and mailbox filters, with IMAP LIST's wildcard meaning (RFC 3501 §6.3.8):
//! `*` matches anything including the hierarchy separator `/`, `%` matches anything but `/`, and
//! `?` matches one character. Operators already write mailbox patterns this way in IMAP clients,
//! so a subscription's `mailboxes = ["Archive/%"]` means what `LIST "" Archive/%` means.
//!
//! Hand-written (forty lines) because the general glob crates give `*` shell meaning (stopping at
//! `/`) and have no `%`. Matching is a dynamic programme over (pattern position, text position):
//! O(pattern × text) whatever the pattern, so a hostile pattern cannot make it backtrack
//! exponentially.

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: Vec<char>,
    case_insensitive_inbox: bool,
}

impl Glob {
    /// Compiles a pattern. `INBOX` at the start of a pattern matches case-insensitively, as
    /// IMAP's INBOX name does.
    pub fn new(pattern: &str) -> Glob {
        let upper = pattern.get(..5).map(str::to_ascii_uppercase);
        let inbox = upper.as_deref() == Some("INBOX")
            && pattern[5..]
                .chars()
                .next()
                .is_none_or(|c| c == '/' || c == '*' || c == '%');
        let pattern = if inbox {
            format!("INBOX{}", &pattern[5..])
        } else {
            pattern.to_owned()
        };
        Glob {
            pattern: pattern.chars().collect(),
            case_insensitive_inbox: inbox,
        }
    }

    /// True when the pattern is `*`, which matches everything.
    pub fn is_match_all(&self) -> bool {
        self.pattern == ['*']
    }

    /// Matches `text` against the pattern.
    pub fn matches(&self, text: &str) -> bool {
        let normalised;
        let text = if self.case_insensitive_inbox
            && text
                .get(..5)
                .is_some_and(|h| h.eq_ignore_ascii_case("INBOX"))
        {
            normalised = format!("INBOX{}", &text[5..]);
            &normalised
        } else {
            text
        };
        let t: Vec<char> = text.chars().collect();
        // cur[j]: the pattern so far matches the first j characters of the text.
        let mut cur = vec![false; t.len() + 1];
        cur[0] = true;
        let mut next = vec![false; t.len() + 1];
        for &c in &self.pattern {
            match c {
                '*' => {
                    let mut any = false;
                    for j in 0..=t.len() {
                        any |= cur[j];
                        next[j] = any;
                    }
                }
                '%' => {
                    next[0] = cur[0];
                    for j in 1..=t.len() {
                        next[j] = cur[j] || (next[j - 1] && t[j - 1] != '/');
                    }
                }
                _ => {
                    next[0] = false;
                    for j in 1..=t.len() {
                        let one = if c == '?' {
                            t[j - 1] != '/'
                        } else {
                            t[j - 1] == c
                        };
                        next[j] = cur[j - 1] && one;
                    }
                }
            }
            std::mem::swap(&mut cur, &mut next);
        }
        cur[t.len()]
    }
}

/// A list of patterns; matches when any does. An empty list matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GlobSet(Vec<Glob>);

impl GlobSet {
    /// Compiles a list of patterns.
    pub fn new<S: AsRef<str>>(patterns: impl IntoIterator<Item = S>) -> GlobSet {
        GlobSet(
            patterns
                .into_iter()
                .map(|p| Glob::new(p.as_ref()))
                .collect(),
        )
    }

    /// True when the set places no restriction (empty, or contains `*`).
    pub fn matches_all(&self) -> bool {
        self.0.is_empty() || self.0.iter().any(Glob::is_match_all)
    }

    /// True when any pattern matches (or the set is empty).
    pub fn matches(&self, text: &str) -> bool {
        self.0.is_empty() || self.0.iter().any(|g| g.matches(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Glob::new(p).matches(t)
    }

    #[test]
    fn imap_wildcards() {
        assert!(m("*", "a/b/c"));
        assert!(m("Archive/*", "Archive/2026/Q1"));
        assert!(m("Archive/%", "Archive/2026"));
        assert!(!m("Archive/%", "Archive/2026/Q1"));
        assert!(m("%", "Sent"));
        assert!(!m("%", "a/b"));
        assert!(m("user?", "user7"));
        assert!(!m("user?", "user"));
        assert!(m("*@example.org", "alice@example.org"));
        assert!(!m("*@example.org", "alice@example.net"));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
        assert!(m("", ""));
        assert!(!m("", "x"));
    }

    #[test]
    fn a_star_may_cross_the_separator_a_percent_may_not() {
        assert!(m("*%x", "a/bx"));
        assert!(!m("%%x", "a/bx"));
        assert!(m("%/*", "a/b/c"));
        assert!(!m("%/%", "a/b/c"));
    }

    #[test]
    fn inbox_is_case_insensitive_other_names_are_not() {
        assert!(m("INBOX", "inbox"));
        assert!(m("inbox/%", "INBOX/Lists"));
        assert!(!m("Sent", "sent"));
        assert!(!m("INBOXES", "inboxes"));
    }

    #[test]
    fn sets() {
        assert!(GlobSet::default().matches("x"));
        assert!(GlobSet::new(["*"]).matches_all());
        let s = GlobSet::new(["alice", "bob*"]);
        assert!(s.matches("bobby") && s.matches("alice") && !s.matches("carol"));
        assert!(!s.matches_all());
    }

    #[test]
    fn hostile_patterns_finish_quickly() {
        let p = "*a".repeat(50) + "b";
        let t = "a".repeat(10_000);
        assert!(!m(&p, &t));
    }
}
