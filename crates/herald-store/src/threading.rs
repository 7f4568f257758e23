//! What the store needs from a message's header to give it a thread (IMAP RFC 8474 THREADID):
//! its own Message-ID and the Message-IDs it replies to (In-Reply-To, References).
//!
//! The store threads by these identifiers alone, as RFC 8474 §5.2 allows ("a server MAY use
//! any algorithm"): a new message joins the thread of any message of the same account whose
//! Message-ID it names, or that named its Message-ID (a reply that arrived first), else starts
//! a thread of its own. Subjects are deliberately ignored, so unrelated mails called "Hello"
//! never merge. The keys are read here, off the writer thread, from the raw header block only,
//! and bounded: a header can hold thousands of references, the store keeps a few.

/// Header bytes looked at: a header block longer than this is cut (the fields that matter
/// come early in any real message).
const MAX_HEADER: usize = 64 * 1024;
/// Longest Message-ID kept (RFC 5322 puts no bound; 250 covers every real one).
const MAX_ID: usize = 250;
/// Most identifiers of one message the store remembers: its own, the root of its thread (the
/// first reference) and the nearest ancestors.
pub const MAX_KEYS: usize = 32;

/// A message's threading identifiers, each without its angle brackets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadKeys {
    /// The Message-ID field's first msg-id.
    pub message_id: Option<String>,
    /// The msg-ids it replies to: In-Reply-To first, then References from the nearest
    /// ancestor back to the root; without duplicates or its own id. At most
    /// [`MAX_KEYS`] − 1.
    pub parents: Vec<String>,
}

impl ThreadKeys {
    /// Every identifier: parents first (what the message replies to decides its thread),
    /// then its own.
    pub fn all(&self) -> impl Iterator<Item = &str> {
        self.parents
            .iter()
            .map(String::as_str)
            .chain(self.message_id.as_deref())
    }
}

/// The store's key for an identifier: the first 64 bits of its SHA-256. An index of these
/// is a third the size of one of the identifiers themselves, so each stored message dirties
/// fewer pages; two identifiers of one account sharing a key (odds about n²/2⁶⁵ for n
/// identifiers) would only thread their messages together.
pub fn key(id: &str) -> i64 {
    let digest = ring::digest::digest(&ring::digest::SHA256, id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    i64::from_be_bytes(first)
}

/// Reads the threading identifiers from a message's header block.
pub fn keys(raw: &[u8]) -> ThreadKeys {
    let mut message_id = None;
    let mut in_reply_to = Vec::new();
    let mut references = Vec::new();
    for (name, value) in fields(header_block(raw)) {
        if name.eq_ignore_ascii_case(b"Message-ID") && message_id.is_none() {
            message_id = ids(&value).into_iter().next();
        } else if name.eq_ignore_ascii_case(b"In-Reply-To") && in_reply_to.is_empty() {
            in_reply_to = ids(&value);
        } else if name.eq_ignore_ascii_case(b"References") && references.is_empty() {
            references = ids(&value);
        }
    }
    let mut parents: Vec<String> = Vec::new();
    let push = |id: String, parents: &mut Vec<String>| {
        if parents.len() < MAX_KEYS - 1
            && message_id.as_ref() != Some(&id)
            && !parents.contains(&id)
        {
            parents.push(id);
        }
    };
    for id in in_reply_to {
        push(id, &mut parents);
    }
    // The root first (it names the whole thread), then the nearest ancestors.
    let mut refs = references.into_iter();
    if let Some(root) = refs.next() {
        push(root, &mut parents);
    }
    for id in refs.rev() {
        push(id, &mut parents);
    }
    ThreadKeys {
        message_id,
        parents,
    }
}

/// The header block: up to the first empty line (`\n\n`, or `\r\n\r\n`), at most
/// [`MAX_HEADER`] bytes. One pass from the start that stops there: every delivery comes
/// through here, and the body, most of a message, is never looked at.
fn header_block(raw: &[u8]) -> &[u8] {
    let raw = &raw[..raw.len().min(MAX_HEADER)];
    let mut from = 0;
    while let Some(at) = raw[from..].iter().position(|&b| b == b'\n') {
        let nl = from + at;
        let next = &raw[nl + 1..];
        let crlf = nl > 0 && raw[nl - 1] == b'\r';
        if next.starts_with(b"\n") || (crlf && next.starts_with(b"\r\n")) {
            return &raw[..nl + 1];
        }
        from = nl + 1;
    }
    raw
}

/// Header fields as (name, unfolded value); lines that are no field are skipped.
fn fields(block: &[u8]) -> Vec<(&[u8], Vec<u8>)> {
    let mut out: Vec<(&[u8], Vec<u8>)> = Vec::new();
    for line in block.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            if let Some((_, value)) = out.last_mut() {
                value.push(b' ');
                value.extend_from_slice(line);
            }
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = &line[..colon];
        if name.is_empty() || name.iter().any(|b| b.is_ascii_whitespace()) {
            continue;
        }
        out.push((name, line[colon + 1..].to_vec()));
    }
    out
}

/// The `<…>` msg-ids in a field value, in order, without brackets; comments and anything
/// outside brackets are ignored, as are empty, over-long or non-UTF-8 ids.
fn ids(value: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.iter().position(|&b| b == b'<') {
        rest = &rest[open + 1..];
        let Some(close) = rest.iter().position(|&b| b == b'>' || b == b'<') else {
            break;
        };
        if rest[close] == b'<' {
            // An unclosed `<`: start again at the next one.
            continue;
        }
        let id: Vec<u8> = rest[..close]
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        rest = &rest[close + 1..];
        if id.is_empty() || id.len() > MAX_ID {
            continue;
        }
        if let Ok(id) = String::from_utf8(id) {
            out.push(id);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_three_fields_folded_and_in_any_case() {
        let k = keys(
            b"From: a@x\r\nmessage-id: <me@x>\r\nIn-Reply-To: <p@x> (comment)\r\n\
              References: <root@x>\r\n <mid@x>\r\n\t<p@x>\r\n\r\nBody: <not@x>\r\n",
        );
        assert_eq!(k.message_id.as_deref(), Some("me@x"));
        assert_eq!(k.parents, ["p@x", "root@x", "mid@x"]);
        assert_eq!(
            k.all().collect::<Vec<_>>(),
            ["p@x", "root@x", "mid@x", "me@x"]
        );
    }

    #[test]
    fn the_header_ends_at_the_first_empty_line_of_either_kind() {
        assert_eq!(
            header_block(b"A: 1\r\nB: 2\r\n\r\nbody\r\n\r\n"),
            b"A: 1\r\nB: 2\r\n"
        );
        assert_eq!(header_block(b"A: 1\nB: 2\n\nbody\n\n"), b"A: 1\nB: 2\n");
        // Whichever kind comes first ends it.
        assert_eq!(header_block(b"A: 1\n\nB: 2\r\n\r\n"), b"A: 1\n");
        assert_eq!(header_block(b"A: 1\r\n\r\nB: 2\n\n"), b"A: 1\r\n");
        // A bare CR line is no empty line; without one, the whole (bounded) input is header.
        assert_eq!(header_block(b"A: 1\n\r\nB: 2"), b"A: 1\n\r\nB: 2");
        assert_eq!(header_block(b"\n\nbody"), b"\n");
        assert_eq!(header_block(b""), b"");
        let long = vec![b'x'; MAX_HEADER + 10];
        assert_eq!(header_block(&long).len(), MAX_HEADER);
    }

    #[test]
    fn hostile_headers_are_bounded_and_never_panic() {
        assert_eq!(keys(b""), ThreadKeys::default());
        assert_eq!(key("a@x"), key("a@x"));
        assert_ne!(key("a@x"), key("A@x"), "local parts are case-sensitive");
        assert_eq!(keys(b"no header at all"), ThreadKeys::default());
        let k = keys(b"Message-ID: <<<a@x>\nReferences: <b@x <c@x> <> < d@x >\n\n");
        assert_eq!(k.message_id.as_deref(), Some("a@x"));
        assert_eq!(k.parents, ["c@x", "d@x"]);
        let many: String = (0..1000).map(|i| format!("<r{i}@x> ")).collect();
        let k = keys(format!("References: {many}\r\n\r\n").as_bytes());
        assert_eq!(k.parents.len(), MAX_KEYS - 1);
        assert_eq!(k.parents[0], "r0@x");
        assert_eq!(k.parents[1], "r999@x");
        let long = format!("Message-ID: <{}@x>\r\n\r\n", "a".repeat(300));
        assert_eq!(keys(long.as_bytes()).message_id, None);
        // A reply naming itself does not count itself as a parent.
        let k = keys(b"Message-ID: <a@x>\nIn-Reply-To: <a@x>\n\n");
        assert!(k.parents.is_empty());
    }
}
