//! RFC 5256 §2.1 base-subject extraction and the i;ascii-casemap collation that SORT and
//! THREAD compare strings with.
//!
//! The RFC says every server and disconnected client MUST use exactly this algorithm, so it is
//! written step by step as the RFC numbers them rather than as a regular expression, over the
//! subject's bytes after RFC 2047 decoding to UTF-8 (step 1 is done by the caller, which has the
//! raw header; [`normalize_space`] finishes it). Each step removes at least one byte or stops,
//! so the loop ends, and nothing indexes past the string: hostile subjects cannot panic it.
//!
//! The grammar (RFC 5256 §5):
//!
//! ```text
//! subj-refwd   = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
//! subj-blob    = "[" *BLOBCHAR "]" *WSP
//! subj-fwd-hdr = "[fwd:"
//! subj-fwd-trl = "]"
//! subj-leader  = (*subj-blob subj-refwd) / WSP
//! subj-trailer = "(fwd)" / WSP
//! BLOBCHAR     = %x01-5a / %x5c / %x5e-ff   ; any byte but NUL, "[" and "]"
//! ```
//!
//! ABNF literals are case-insensitive, so `RE:`, `Fwd:` and `(FWD)` match too.

/// The base subject and whether the message is a reply or forward: RFC 5256 §2.1 calls it one
/// when extraction removed a subj-refwd, a `(fwd)` trailer, or a subj-fwd-hdr/trl pair (a
/// `[list]` blob alone does not count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseSubject {
    /// The base subject text (UTF-8, single spaces, no leading or trailing space).
    pub text: String,
    /// Extraction removed a reply/forward marker.
    pub reply_or_forward: bool,
}

/// Step 1's second half: tabs and line breaks (continuations) become spaces and runs of
/// spaces become one.
pub fn normalize_space(decoded: &str) -> String {
    let mut out = String::with_capacity(decoded.len());
    let mut space = false;
    for ch in decoded.chars() {
        if matches!(ch, ' ' | '\t' | '\r' | '\n') {
            if !space {
                out.push(' ');
            }
            space = true;
        } else {
            out.push(ch);
            space = false;
        }
    }
    out
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Length of the `subj-blob` at the start of `s` (`[` … `]` and trailing WSP), if any.
fn blob_len(s: &[u8]) -> Option<usize> {
    if s.first() != Some(&b'[') {
        return None;
    }
    let close = s[1..]
        .iter()
        .position(|&b| b == b']' || b == b'[' || b == 0)?
        + 1;
    if s[close] != b']' {
        return None;
    }
    let mut end = close + 1;
    while s.get(end).copied().is_some_and(is_wsp) {
        end += 1;
    }
    Some(end)
}

/// Length of a `subj-refwd` at the start of `s`, if any.
fn refwd_len(s: &[u8]) -> Option<usize> {
    let prefix = |p: &[u8]| s.len() >= p.len() && s[..p.len()].eq_ignore_ascii_case(p);
    let mut i = if prefix(b"re") {
        2
    } else if prefix(b"fwd") {
        3
    } else if prefix(b"fw") {
        2
    } else {
        return None;
    };
    while s.get(i).copied().is_some_and(is_wsp) {
        i += 1;
    }
    if let Some(n) = blob_len(&s[i..]) {
        i += n;
    }
    (s.get(i) == Some(&b':')).then_some(i + 1)
}

/// Length of a `subj-leader` at the start of `s`, and whether it held a subj-refwd.
fn leader_len(s: &[u8]) -> Option<(usize, bool)> {
    if s.first().copied().is_some_and(is_wsp) {
        return Some((1, false));
    }
    // *subj-blob subj-refwd: try the refwd after each successive blob.
    let mut i = 0;
    loop {
        if let Some(n) = refwd_len(&s[i..]) {
            return Some((i + n, true));
        }
        i += blob_len(&s[i..])?;
    }
}

/// Extracts the base subject from a subject already decoded to UTF-8 (RFC 5256 §2.1 steps
/// 1–7; the RFC 2047 decoding of step 1 is the caller's).
pub fn base_subject(decoded: &str) -> BaseSubject {
    // (1) whitespace normalisation.
    let s = normalize_space(decoded);
    let b = s.as_bytes();
    let (mut start, mut end) = (0, b.len());
    let mut reply = false;
    loop {
        // (2) trailing subj-trailer ("(fwd)" / WSP), until none is left.
        loop {
            if end > start && is_wsp(b[end - 1]) {
                end -= 1;
            } else if end - start >= 5 && b[end - 5..end].eq_ignore_ascii_case(b"(fwd)") {
                end -= 5;
                reply = true;
            } else {
                break;
            }
        }
        // (3) leaders, (4) a blob that leaves a non-empty subj-base, (5) until neither.
        loop {
            if let Some((n, refwd)) = leader_len(&b[start..end]) {
                start += n;
                reply |= refwd;
                continue;
            }
            if let Some(n) = blob_len(&b[start..end])
                && start + n < end
            {
                start += n;
                continue;
            }
            break;
        }
        // (6) "[fwd:" … "]": unwrap and go again from (2).
        let rest = &b[start..end];
        if rest.len() >= 6
            && rest[..5].eq_ignore_ascii_case(b"[fwd:")
            && rest[rest.len() - 1] == b']'
        {
            start += 5;
            end -= 1;
            reply = true;
            continue;
        }
        break;
    }
    // Every cut is at an ASCII byte, so the slice is on character boundaries; `get` keeps
    // that an invariant rather than a panic.
    BaseSubject {
        text: s.get(start..end).unwrap_or_default().to_owned(),
        reply_or_forward: reply,
    }
}

/// The i;ascii-casemap collation key of `s` (RFC 4790 §9.2): octets with a–z mapped to A–Z,
/// compared as i;octet. Two strings are equal under the collation iff their keys are.
pub fn casemap_key(s: &[u8]) -> Vec<u8> {
    s.to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each expectation below is worked out by hand from the RFC 5256 §2.1 steps, not taken
    /// from this code's output; the comment on a row names the step that decides it.
    #[test]
    fn base_subject_table() {
        let table: &[(&str, &str, bool)] = &[
            // Plain text: only whitespace normalisation applies.
            ("Hello World", "Hello World", false),
            ("  Hello \t  World  ", "Hello World", false),
            ("", "", false),
            ("   ", "", false),
            // (3) subj-refwd, any case, with or without space before the colon.
            ("Re: Hello", "Hello", true),
            ("RE: Hello", "Hello", true),
            ("re:Hello", "Hello", true),
            ("Re : Hello", "Hello", true),
            ("Fw: Hello", "Hello", true),
            ("FWD: Hello", "Hello", true),
            // (3)+(5) repeated leaders.
            ("Re: Re: Fwd: re:Hello", "Hello", true),
            // subj-refwd may carry a blob before the colon: "Re[2]:".
            ("Re[2]: Hello", "Hello", true),
            ("Re [2] : Hello", "Hello", true),
            // A leader is *subj-blob subj-refwd: the list tag goes with the Re.
            ("[list] Re: Hello", "Hello", true),
            ("[a][b] Re: [c] Fwd: Hello", "Hello", true),
            // (4) a blob alone is removed when text remains, and is not a reply.
            ("[list] Hello", "Hello", false),
            ("[a] [b] Hello", "Hello", false),
            // (4) ... but not when it would leave nothing: the blob is the base subject.
            ("[list]", "[list]", false),
            ("Re: [list]", "[list]", true),
            ("[a] [b]", "[b]", false),
            // Not a leader: "Re" must be followed by *WSP [blob] ":".
            ("Reply: Hello", "Reply: Hello", false),
            ("Re Hello", "Re Hello", false),
            ("Fwx: Hello", "Fwx: Hello", false),
            ("Hello Re: World", "Hello Re: World", false),
            // An unclosed blob is no blob.
            ("[list Hello", "[list Hello", false),
            ("[a[b] Hello", "[a[b] Hello", false),
            // (2) trailing "(fwd)" and whitespace, repeatedly, any case.
            ("Hello (fwd)", "Hello", true),
            ("Hello (FWD) (fwd)  ", "Hello", true),
            ("Hello(fwd)", "Hello", true),
            ("(fwd)", "", true),
            ("Hello (fwd) x", "Hello (fwd) x", false),
            // (6) "[fwd: …]" wrapping, then from (2) again.
            ("[fwd: Hello]", "Hello", true),
            ("[Fwd: Re: Hello (fwd)]", "Hello", true),
            ("[fwd: [fwd: Hello]]", "Hello", true),
            ("Re: [fwd: Hello]", "Hello", true),
            ("[fwd: Hello] world", "world", false),
            ("[fwd: Hello", "[fwd: Hello", false),
            ("[fwd:]", "", true),
            // Everything at once.
            (
                "Re: [list] Fwd[3]: [fwd: RE: Meeting  \t notes (fwd)] (fwd)",
                "Meeting notes",
                true,
            ),
            // UTF-8 survives, and counts as text in (4).
            ("[liste] Café", "Café", false),
            ("Re: 日本語", "日本語", true),
            ("[日本] 語", "語", false),
        ];
        for &(input, text, reply) in table {
            assert_eq!(
                base_subject(input),
                BaseSubject {
                    text: text.to_owned(),
                    reply_or_forward: reply
                },
                "{input:?}"
            );
        }
    }

    #[test]
    fn casemap_is_ascii_only() {
        assert_eq!(casemap_key(b"Hello"), casemap_key(b"hELLO"));
        assert!(casemap_key(b"apple") < casemap_key(b"Banana"));
        // Non-ASCII bytes are compared as octets, not case-folded.
        assert_ne!(casemap_key("é".as_bytes()), casemap_key("É".as_bytes()));
    }

    #[test]
    fn never_panics_on_odd_bytes() {
        for s in [
            "[", "]", "[]", "[[", "re", "re[", "re[]", "fw", "\0[\0]", "[fwd:", "(fwd",
        ] {
            let _ = base_subject(s);
        }
    }
}
