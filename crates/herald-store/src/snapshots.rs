//! The messages of recently selected mailboxes, kept for the next SELECT of the same state.
//!
//! A SELECT reads every message's UID, flags and MODSEQ: for a folder of a few hundred
//! messages that read was half of the command's CPU, and the sessions of one account (a phone,
//! a laptop, a webmail, each with several connections) select the same INBOX over and over.
//! A snapshot is kept under the mailbox's id with the UIDVALIDITY and HIGHESTMODSEQ its mailbox
//! row had in the same read transaction. Every change to a mailbox's messages (new, expunged,
//! re-flagged) raises its HIGHESTMODSEQ in the commit that makes it, and a mailbox created
//! again has a new UIDVALIDITY, so a SELECT whose mailbox row shows the same two values would
//! read exactly these messages: it takes the kept ones instead. Nothing is ever invalidated,
//! only replaced or dropped.
//!
//! Only snapshots read in one transaction are kept (the embedded store's reads; a PostgreSQL
//! read of the row and the messages may see two commits), and only of mailboxes small enough
//! to be read without a hand-off ([`MAX_MESSAGES`]), so at most [`MAX_MAILBOXES`] ×
//! [`MAX_MESSAGES`] messages are held.

use crate::model::MessageMeta;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Most mailboxes kept.
pub(crate) const MAX_MAILBOXES: usize = 256;
/// Most messages of a kept snapshot.
pub(crate) const MAX_MESSAGES: usize = 512;

/// A mailbox's messages as of one read.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub uidvalidity: u32,
    pub highest_modseq: u64,
    pub messages: Arc<Vec<MessageMeta>>,
}

/// The kept snapshots, by mailbox id.
#[derive(Debug, Default)]
pub(crate) struct Snapshots {
    map: Mutex<HashMap<i64, Arc<Snapshot>>>,
}

impl Snapshots {
    /// The kept messages of mailbox `id` if they are of this UIDVALIDITY and HIGHESTMODSEQ.
    pub(crate) fn get(
        &self,
        id: i64,
        uidvalidity: u32,
        highest_modseq: u64,
    ) -> Option<Arc<Snapshot>> {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .filter(|s| s.uidvalidity == uidvalidity && s.highest_modseq == highest_modseq)
            .cloned()
    }

    /// Keeps `snapshot` of mailbox `id`, unless it is too large or older than the one kept.
    pub(crate) fn put(&self, id: i64, snapshot: Arc<Snapshot>) {
        if snapshot.messages.len() > MAX_MESSAGES {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(kept) = map.get(&id)
            && kept.uidvalidity == snapshot.uidvalidity
            && kept.highest_modseq > snapshot.highest_modseq
        {
            return;
        }
        if map.len() >= MAX_MAILBOXES && !map.contains_key(&id) {
            // Any one goes: the mailboxes selected most often come back at their next SELECT.
            if let Some(&victim) = map.keys().next() {
                map.remove(&victim);
            }
        }
        map.insert(id, snapshot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(uidvalidity: u32, highest_modseq: u64, n: u32) -> Arc<Snapshot> {
        Arc::new(Snapshot {
            uidvalidity,
            highest_modseq,
            messages: Arc::new(
                (1..=n)
                    .map(|uid| MessageMeta {
                        uid,
                        size: 10,
                        internal_date_ms: 0,
                        flags: Vec::new(),
                        modseq: u64::from(uid),
                        save_date_ms: None,
                        thread_id: 1,
                    })
                    .collect(),
            ),
        })
    }

    #[test]
    fn only_the_same_uidvalidity_and_modseq_is_served() {
        let s = Snapshots::default();
        s.put(1, snap(7, 10, 3));
        assert_eq!(s.get(1, 7, 10).map(|x| x.messages.len()), Some(3));
        assert!(s.get(1, 7, 11).is_none(), "a change since");
        assert!(s.get(1, 8, 10).is_none(), "created again");
        assert!(s.get(2, 7, 10).is_none());
        // A newer read replaces it; an older one read late does not.
        s.put(1, snap(7, 12, 4));
        s.put(1, snap(7, 11, 5));
        assert_eq!(s.get(1, 7, 12).map(|x| x.messages.len()), Some(4));
        // A mailbox created again replaces it whatever its MODSEQ.
        s.put(1, snap(9, 1, 0));
        assert!(s.get(1, 9, 1).is_some());
    }

    #[test]
    fn large_mailboxes_are_not_kept_and_the_count_is_bounded() {
        let s = Snapshots::default();
        s.put(1, snap(1, 1, MAX_MESSAGES as u32 + 1));
        assert!(s.get(1, 1, 1).is_none());
        for id in 0..(MAX_MAILBOXES as i64 + 10) {
            s.put(id, snap(1, 1, 1));
        }
        assert_eq!(s.map.lock().unwrap().len(), MAX_MAILBOXES);
    }
}
