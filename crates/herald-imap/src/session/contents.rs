//! Message bytes for a command that walks many messages (FETCH, SEARCH BODY/TEXT, SORT),
//! read a chunk at a time.
//!
//! One store read per message costs a query and, for content, a hand-off to a blocking thread
//! and back: FETCH 1:1000 BODY[] paid a thousand of them. [`Contents`] is told up front which
//! messages the command will read, in order, and brings them in chunks of at most
//! [`CHUNK_MESSAGES`] messages or about [`CHUNK_BYTES`] of content (by RFC822.SIZE), so a
//! session holds one chunk at a time however large the set.

use super::Backend;
use herald_events::UidSet;
use herald_store::{Result, SessionContext};
use std::collections::HashMap;

/// Most messages one read brings.
pub(super) const CHUNK_MESSAGES: usize = 256;
/// Content bytes after which a chunk takes no more messages: what a session holds at once
/// besides the message that passes it.
pub(super) const CHUNK_BYTES: u64 = 4 << 20;

/// The messages a command will read, with the chunk read last.
pub(super) struct Contents {
    /// `(UID, RFC822.SIZE)` in the order the command asks for them.
    wanted: Vec<(u32, u64)>,
    /// Index in `wanted` of the first message not yet read.
    next: usize,
    chunk: HashMap<u32, Vec<u8>>,
}

impl Contents {
    /// `wanted`: `(UID, size)` of every message the command will ask for, in that order.
    pub(super) fn new(wanted: Vec<(u32, u64)>) -> Contents {
        Contents {
            wanted,
            next: 0,
            chunk: HashMap::new(),
        }
    }

    /// The bytes of `uid`, reading the chunk that starts with it when it is not in the current
    /// one; `None` when the message is gone (expunged since the command's metadata was read)
    /// or was not announced to [`Contents::new`].
    pub(super) async fn take(
        &mut self,
        backend: &impl Backend,
        ctx: &SessionContext,
        mailbox: &str,
        uid: u32,
    ) -> Result<Option<Vec<u8>>> {
        if let Some(raw) = self.chunk.remove(&uid) {
            return Ok(Some(raw));
        }
        let Some(at) = self.wanted[self.next..]
            .iter()
            .position(|&(u, _)| u == uid)
            .map(|p| self.next + p)
        else {
            return Ok(None);
        };
        let mut end = at;
        let mut bytes = 0u64;
        while end < self.wanted.len() && end - at < CHUNK_MESSAGES && bytes < CHUNK_BYTES {
            bytes = bytes.saturating_add(self.wanted[end].1);
            end += 1;
        }
        let uids = UidSet::from_uids(self.wanted[at..end].iter().map(|&(u, _)| u));
        self.next = end;
        self.chunk = backend
            .read_messages(ctx, mailbox, &uids, Some(bytes))
            .await?
            .into_iter()
            .collect();
        Ok(self.chunk.remove(&uid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::memory::MemoryBackend;
    use herald_store::FlagMode;

    fn message(n: u32) -> Vec<u8> {
        format!("Subject: m{n}\r\n\r\nbody {n}\r\n").into_bytes()
    }

    #[tokio::test]
    async fn brings_every_message_in_order_a_chunk_at_a_time() {
        let b = MemoryBackend::new();
        b.add_user("u", "pw", false);
        for n in 1..=600 {
            b.deliver("u", "INBOX", &message(n)).unwrap();
        }
        let ctx = SessionContext::user("imap", "u");
        // UID 300 is expunged after the command read its metadata: it is skipped, nothing else.
        let gone = UidSet::single(300);
        b.store_flags(
            &ctx,
            "INBOX",
            &gone,
            FlagMode::Add,
            &["\\Deleted".into()],
            None,
        )
        .await
        .unwrap();
        b.expunge(&ctx, "INBOX", Some(&gone)).await.unwrap();
        let mut c = Contents::new((1..=600).map(|u| (u, 30)).collect());
        for uid in 1..=600 {
            let raw = c.take(&b, &ctx, "INBOX", uid).await.unwrap();
            if uid == 300 {
                assert_eq!(raw, None);
            } else {
                assert_eq!(raw, Some(message(uid)), "UID {uid}");
            }
            // One read per chunk of CHUNK_MESSAGES: the first brought 1..=256.
            if uid == 1 {
                assert_eq!(
                    (c.next, c.chunk.len()),
                    (CHUNK_MESSAGES, CHUNK_MESSAGES - 1)
                );
            }
        }
        // A UID never announced is not read.
        assert_eq!(c.take(&b, &ctx, "INBOX", 5).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_chunk_stops_at_its_byte_budget() {
        let b = MemoryBackend::new();
        b.add_user("u", "pw", false);
        for n in 1..=5 {
            b.deliver("u", "INBOX", &message(n)).unwrap();
        }
        let ctx = SessionContext::user("imap", "u");
        // As their sizes claim, three messages of 2 MiB pass the budget after the second.
        let mut c = Contents::new((1..=5).map(|u| (u, 2 << 20)).collect());
        assert_eq!(
            c.take(&b, &ctx, "INBOX", 1).await.unwrap(),
            Some(message(1))
        );
        assert_eq!((c.next, c.chunk.len()), (2, 1));
        assert_eq!(
            c.take(&b, &ctx, "INBOX", 2).await.unwrap(),
            Some(message(2))
        );
        // Skipping a message the client no longer needs starts the next chunk at the one asked.
        assert_eq!(
            c.take(&b, &ctx, "INBOX", 4).await.unwrap(),
            Some(message(4))
        );
        assert_eq!(c.next, 5);
        assert_eq!(
            c.take(&b, &ctx, "INBOX", 5).await.unwrap(),
            Some(message(5))
        );
    }
}
