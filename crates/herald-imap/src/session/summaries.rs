//! The message summaries FETCH keeps: a message's header block, ENVELOPE, BODY and
//! BODYSTRUCTURE ([`mime::Summary`]), computed the first time a session asks for any of them
//! and kept for every session of the server.
//!
//! Without them every `FETCH 1:50 (ENVELOPE)` of a webmail page or a client's list view read
//! each whole message from the store and split it again: 75 µs a message of 60 KiB, ten times
//! what a server with a cache file takes. A summary is keyed by the content's SHA-256 (the
//! store's content id, one query per FETCH for all its messages) and the IMAP revision whose
//! rules rendered it. Content never changes under its digest, so a kept summary is never stale
//! and nothing needs to invalidate it: expunged content just stops being asked for and ages
//! out. The cache is bounded by the bytes it holds; moka's admission policy keeps what is
//! asked for often.

use crate::mime::{Revision, Summary};
use std::sync::Arc;

/// Default bound of the kept summaries: about 20,000 messages of ordinary mail (a summary is
/// the header block plus three short renderings, 2–4 KiB).
pub const DEFAULT_SUMMARY_BYTES: u64 = 64 << 20;

/// Summaries by (content id, revision), shared by clones.
#[derive(Clone)]
pub struct Summaries {
    cache: moka::sync::Cache<([u8; 32], Revision), Arc<Summary>>,
}

impl Summaries {
    /// A cache holding at most `max_bytes` of summaries.
    pub fn new(max_bytes: u64) -> Summaries {
        Summaries {
            cache: moka::sync::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_, s: &Arc<Summary>| {
                    u32::try_from(s.weight().saturating_add(64)).unwrap_or(u32::MAX)
                })
                .build(),
        }
    }

    /// The kept summary of content `id` under `rev`, if any.
    pub fn get(&self, id: &[u8; 32], rev: Revision) -> Option<Arc<Summary>> {
        self.cache.get(&(*id, rev))
    }

    /// Keeps `summary` for content `id` under `rev`.
    pub fn insert(&self, id: [u8; 32], rev: Revision, summary: Arc<Summary>) {
        self.cache.insert((id, rev), summary);
    }
}

impl Default for Summaries {
    fn default() -> Summaries {
        Summaries::new(DEFAULT_SUMMARY_BYTES)
    }
}

impl std::fmt::Debug for Summaries {
    /// Counts only: the entries are message headers.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Summaries")
            .field("entries", &self.cache.entry_count())
            .field("bytes", &self.cache.weighted_size())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mime;

    #[test]
    fn summaries_are_kept_per_content_and_revision_within_their_bound() {
        let raw = b"Subject: hi\r\nMessage-ID: <a@b>\r\n\r\nbody\r\n";
        let cache = Summaries::new(1 << 20);
        let id = [7u8; 32];
        assert!(cache.get(&id, Revision::Rev1).is_none());
        cache.insert(
            id,
            Revision::Rev1,
            Arc::new(mime::summary(raw, Revision::Rev1)),
        );
        let kept = cache.get(&id, Revision::Rev1).expect("kept");
        assert_eq!(kept.header, b"Subject: hi\r\nMessage-ID: <a@b>\r\n\r\n");
        assert!(cache.get(&id, Revision::Rev2).is_none());
        assert!(cache.get(&[8u8; 32], Revision::Rev1).is_none());

        // A bound of 64 KiB holds a few summaries of 10 KiB headers, never all 100.
        let small = Summaries::new(64 << 10);
        let big = format!("Subject: {}\r\n\r\nx", "y".repeat(10_000));
        for n in 0..100u8 {
            let s = Arc::new(mime::summary(big.as_bytes(), Revision::Rev1));
            small.insert([n; 32], Revision::Rev1, s);
        }
        small.cache.run_pending_tasks();
        assert!(small.cache.weighted_size() <= 64 << 10);
        assert!(small.cache.entry_count() < 100);
    }
}
