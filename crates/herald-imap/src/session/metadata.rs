//! METADATA (RFC 5464): GETMETADATA and SETMETADATA, for mailboxes and (mailbox `""`) the
//! server; capabilities `METADATA` and `METADATA-SERVER`.
//!
//! The store keeps and checks everything (entry grammar, value size, entry counts, who may
//! change shared server entries) and commits `vnd.herald.MetadataChange`; this file selects
//! what a GETMETADATA asked for (named entries, DEPTH, MAXSIZE) from what the store returns
//! for the mailbox, and turns refusals into the RFC's response codes: `[METADATA MAXSIZE n]`,
//! `[METADATA TOOMANY]`, `[METADATA LONGENTRIES n]`, and `[NOPERM]` for shared server entries
//! set by a user who is not an administrator. `[METADATA NOPRIVATE]` never applies: every
//! mailbox and the server keep private entries. Entry names are case-insensitive; Herald
//! reports them in lower case.

use super::{Backend, Session};
use crate::proto::command::{GetMetadataCommand, MetadataDepth};
use crate::proto::response::{Code, Data, MetadataCode, write_data};
use crate::proto::types::{Mailbox, Tag};
use herald_store::{MetadataEntry, MetadataRefusal};

/// The store's name for a mailbox argument: `None` for `""`, the server.
fn target(mailbox: &Mailbox) -> Option<&str> {
    (!mailbox.as_str().is_empty()).then_some(mailbox.as_str())
}

/// Entry names with their values (NIL: not set), as METADATA responses carry them.
type Entries = Vec<(String, Option<Vec<u8>>)>;

/// What GETMETADATA returns: the named entries (NIL when absent) and, with a depth, the
/// entries below them; values above `max_size` left out, and the largest of those.
fn select(stored: &[MetadataEntry], cmd: &GetMetadataCommand) -> (Entries, Option<u64>) {
    let mut out: Entries = Vec::new();
    let mut longest: Option<u64> = None;
    let mut push = |name: &str, value: Option<&[u8]>| {
        if out.iter().any(|(n, _)| n == name) {
            return;
        }
        if let (Some(v), Some(max)) = (value, cmd.max_size)
            && v.len() as u64 > max
        {
            longest = Some(longest.unwrap_or(0).max(v.len() as u64));
            return;
        }
        out.push((name.to_owned(), value.map(<[u8]>::to_vec)));
    };
    for asked in &cmd.entries {
        let asked = herald_events::normalize_entry_name(asked);
        let is_scope = asked == "/private" || asked == "/shared";
        match stored.iter().find(|e| e.name == asked) {
            Some(e) => push(&e.name, Some(&e.value)),
            None if !is_scope => push(&asked, None),
            None => {}
        }
        if cmd.depth == MetadataDepth::Zero {
            continue;
        }
        let prefix = format!("{asked}/");
        for e in stored {
            let Some(rest) = e.name.strip_prefix(&prefix) else {
                continue;
            };
            if cmd.depth == MetadataDepth::Infinity || !rest.contains('/') {
                push(&e.name, Some(&e.value));
            }
        }
    }
    (out, longest)
}

impl<B: Backend> Session<B> {
    pub(super) async fn getmetadata(&mut self, tag: &Tag, cmd: GetMetadataCommand) {
        let stored = match self
            .backend
            .get_metadata(&self.ctx, target(&cmd.mailbox))
            .await
        {
            Ok(s) => s,
            Err(e) => return self.fail(tag, &e),
        };
        let (entries, longest) = select(&stored, &cmd);
        if !entries.is_empty() {
            let o = self.wopts();
            write_data(
                &mut self.out,
                &Data::Metadata {
                    mailbox: cmd.mailbox,
                    entries,
                },
                o,
            );
        }
        self.updates(true).await;
        let code = longest.map(|n| Code::Metadata(MetadataCode::LongEntries(n)));
        self.ok(tag, code, "GETMETADATA completed");
    }

    pub(super) async fn setmetadata(&mut self, tag: &Tag, mailbox: Mailbox, entries: Entries) {
        match self
            .backend
            .set_metadata(&self.ctx, target(&mailbox), entries)
            .await
        {
            Ok(_) => {
                self.updates(true).await;
                self.ok(tag, None, "SETMETADATA completed");
            }
            Err(e) => self.fail(tag, &e),
        }
    }

    /// A SETMETADATA value announced as a literal larger than the store keeps: refused before
    /// the client sends it (RFC 5464 §4.3).
    pub(super) fn metadata_literal_too_large(&self, length: u64) -> Option<u64> {
        let max = self.backend.metadata_limits().max_value_bytes;
        (length > max).then_some(max)
    }
}

/// The response code of a metadata refusal (see [`super::store_error`]).
pub(super) fn refusal_code(r: &MetadataRefusal) -> Code {
    match r {
        MetadataRefusal::TooLarge { max, .. } => Code::Metadata(MetadataCode::MaxSize(*max)),
        MetadataRefusal::TooMany { .. } => Code::Metadata(MetadataCode::TooMany),
        MetadataRefusal::NotAdmin => Code::NoPerm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(name: &str, v: &str) -> MetadataEntry {
        MetadataEntry {
            name: name.into(),
            value: v.as_bytes().to_vec(),
        }
    }

    fn cmd(depth: MetadataDepth, max_size: Option<u64>, entries: &[&str]) -> GetMetadataCommand {
        GetMetadataCommand {
            mailbox: Mailbox::new("INBOX"),
            max_size,
            depth,
            entries: entries.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn names(v: &Entries) -> Vec<&str> {
        v.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn depth_and_maxsize_select_entries() {
        let stored = [
            e("/private/a", "1"),
            e("/private/a/b", "22"),
            e("/private/a/b/c", "333"),
            e("/shared/a", "4444"),
        ];
        let (v, long) = select(
            &stored,
            &cmd(MetadataDepth::Zero, None, &["/PRIVATE/A", "/private/x"]),
        );
        assert_eq!(v[0], ("/private/a".into(), Some(b"1".to_vec())));
        assert_eq!(v[1], ("/private/x".into(), None), "absent entries are NIL");
        assert_eq!(long, None);
        let (v, _) = select(&stored, &cmd(MetadataDepth::One, None, &["/private/a"]));
        assert_eq!(names(&v), ["/private/a", "/private/a/b"]);
        let (v, _) = select(&stored, &cmd(MetadataDepth::Infinity, None, &["/private"]));
        assert_eq!(names(&v), ["/private/a", "/private/a/b", "/private/a/b/c"]);
        let (v, long) = select(
            &stored,
            &cmd(MetadataDepth::Infinity, Some(2), &["/private", "/shared"]),
        );
        assert_eq!(names(&v), ["/private/a", "/private/a/b"]);
        assert_eq!(long, Some(4));
    }
}
