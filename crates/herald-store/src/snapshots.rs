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
//! A snapshot of an older HIGHESTMODSEQ is brought up to date with what changed since
//! ([`catch_up`]: the messages of a higher MODSEQ and the expunged UIDs, read through the
//! MODSEQ index and the tombstones), so a busy mailbox's SELECT reads its changes, not every
//! message again.
//!
//! Only snapshots read in one transaction are kept (the embedded store's reads; a PostgreSQL
//! read of the row and the messages may see two commits), each of at most [`MAX_MESSAGES`],
//! at most [`MAX_MAILBOXES`] of them and [`MAX_TOTAL`] messages in all.

use crate::model::MessageMeta;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Most mailboxes kept.
pub(crate) const MAX_MAILBOXES: usize = 256;
/// Most messages of a kept snapshot.
pub(crate) const MAX_MESSAGES: usize = 65_536;
/// Most messages kept in all (about 100 bytes each, with their flags).
pub(crate) const MAX_TOTAL: usize = 262_144;

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

/// `old` (the messages as of a MODSEQ) with `changes` since that MODSEQ applied: the
/// messages as of `changes.highest_modseq`, or `None` when the two do not fit together (a
/// changed message of a UID the snapshot should hold but does not), and the caller reads the
/// mailbox instead.
pub(crate) fn catch_up(old: &Snapshot, changes: &crate::Changes) -> Option<Vec<MessageMeta>> {
    if changes.uidvalidity != old.uidvalidity || changes.highest_modseq < old.highest_modseq {
        return None;
    }
    let old = &old.messages[..];
    let known_max = old.last().map_or(0, |m| m.uid);
    let mut out: Vec<MessageMeta> = match (&changes.uids, &changes.expunged) {
        // Every UID there is: keep the known ones still among them.
        (Some(uids), _) => old
            .iter()
            .filter(|m| uids.binary_search(&m.uid).is_ok())
            .cloned()
            .collect(),
        (None, Some(gone)) => old
            .iter()
            .filter(|m| gone.binary_search(&m.uid).is_err())
            .cloned()
            .collect(),
        (None, None) => old.to_vec(),
    };
    for m in &changes.changed {
        if m.uid <= known_max {
            let i = out.binary_search_by_key(&m.uid, |k| k.uid).ok()?;
            out[i] = m.clone();
        } else {
            // New since: above every known UID, and `changed` is ascending.
            if out.last().is_some_and(|k| k.uid >= m.uid) {
                return None;
            }
            out.push(m.clone());
        }
    }
    Some(out)
}

impl Snapshots {
    /// The kept messages of mailbox `id` of this UIDVALIDITY, whatever their HIGHESTMODSEQ.
    pub(crate) fn latest(&self, id: i64, uidvalidity: u32) -> Option<Arc<Snapshot>> {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .filter(|s| s.uidvalidity == uidvalidity)
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
        map.insert(id, snapshot);
        // Any others go: the mailboxes selected most often come back at their next SELECT.
        let mut total: usize = map.values().map(|s| s.messages.len()).sum();
        while map.len() > MAX_MAILBOXES || total > MAX_TOTAL {
            let Some(&victim) = map.keys().find(|&&k| k != id) else {
                break;
            };
            if let Some(gone) = map.remove(&victim) {
                total -= gone.messages.len();
            }
        }
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

    fn kept(s: &Snapshots, id: i64, uidvalidity: u32) -> Option<(u64, usize)> {
        s.latest(id, uidvalidity)
            .map(|x| (x.highest_modseq, x.messages.len()))
    }

    #[test]
    fn only_the_same_uidvalidity_is_served_and_the_newest_read_kept() {
        let s = Snapshots::default();
        s.put(1, snap(7, 10, 3));
        assert_eq!(kept(&s, 1, 7), Some((10, 3)));
        assert!(kept(&s, 1, 8).is_none(), "created again");
        assert!(kept(&s, 2, 7).is_none());
        // A newer read replaces it; an older one read late does not.
        s.put(1, snap(7, 12, 4));
        s.put(1, snap(7, 11, 5));
        assert_eq!(kept(&s, 1, 7), Some((12, 4)));
        // A mailbox created again replaces it whatever its MODSEQ.
        s.put(1, snap(9, 1, 0));
        assert_eq!(kept(&s, 1, 9), Some((1, 0)));
    }

    #[test]
    fn large_mailboxes_are_not_kept_and_the_count_is_bounded() {
        let s = Snapshots::default();
        s.put(1, snap(1, 1, MAX_MESSAGES as u32 + 1));
        assert!(kept(&s, 1, 1).is_none());
        for id in 0..(MAX_MAILBOXES as i64 + 10) {
            s.put(id, snap(1, 1, 1));
        }
        assert_eq!(s.map.lock().unwrap().len(), MAX_MAILBOXES);
        // The total too: the newest stays, older ones go.
        let big = MAX_MESSAGES as u32;
        for id in 0..(MAX_TOTAL / MAX_MESSAGES) as i64 + 2 {
            s.put(1000 + id, snap(1, 1, big));
        }
        let total: usize = s
            .map
            .lock()
            .unwrap()
            .values()
            .map(|x| x.messages.len())
            .sum();
        assert!(total <= MAX_TOTAL, "{total}");
        assert!(kept(&s, 1000 + (MAX_TOTAL / MAX_MESSAGES) as i64 + 1, 1).is_some());
    }

    fn meta(uid: u32, modseq: u64, flag: &str) -> MessageMeta {
        MessageMeta {
            uid,
            size: 10,
            internal_date_ms: 0,
            flags: if flag.is_empty() {
                Vec::new()
            } else {
                vec![flag.to_owned()]
            },
            modseq,
            save_date_ms: None,
            thread_id: 1,
        }
    }

    fn changes(highest: u64, changed: Vec<MessageMeta>) -> crate::Changes {
        crate::Changes {
            highest_modseq: highest,
            uidvalidity: 7,
            changed,
            uids: None,
            expunged: None,
        }
    }

    fn uids(v: &[MessageMeta]) -> Vec<u32> {
        v.iter().map(|m| m.uid).collect()
    }

    #[test]
    fn a_snapshot_catches_up_with_flags_new_messages_and_expunges() {
        let old = snap(7, 5, 5); // UIDs 1..=5
        // \Seen on 2, UID 6 and 7 new, 3 expunged (from the tombstones, with an 8 appended
        // and expunged since, which the snapshot never knew).
        let mut c = changes(
            9,
            vec![meta(2, 6, "\\Seen"), meta(6, 7, ""), meta(7, 8, "")],
        );
        c.expunged = Some(vec![3, 8]);
        let new = catch_up(&old, &c).unwrap();
        assert_eq!(uids(&new), [1, 2, 4, 5, 6, 7]);
        assert_eq!(new[1].flags, ["\\Seen"]);
        assert_eq!(new[1].modseq, 6);
        // The same from the full UID list, when the tombstones do not reach back.
        let mut c = changes(9, vec![meta(6, 7, "")]);
        c.uids = Some(vec![1, 5, 6]);
        assert_eq!(uids(&catch_up(&old, &c).unwrap()), [1, 5, 6]);
        // Nothing changed: the same messages.
        assert_eq!(
            uids(&catch_up(&old, &changes(5, Vec::new())).unwrap()),
            [1, 2, 3, 4, 5]
        );
    }

    #[test]
    fn changes_that_do_not_fit_the_snapshot_are_refused() {
        let old = snap(7, 5, 5);
        // A known UID the snapshot lacks: it is not what the changes were read against.
        let gapped = Snapshot {
            uidvalidity: 7,
            highest_modseq: 5,
            messages: Arc::new(vec![meta(1, 1, ""), meta(3, 3, "")]),
        };
        assert!(catch_up(&gapped, &changes(6, vec![meta(2, 6, "")])).is_none());
        // Another mailbox under the name, or an older state.
        let mut other = changes(9, Vec::new());
        other.uidvalidity = 8;
        assert!(catch_up(&old, &other).is_none());
        assert!(catch_up(&old, &changes(4, Vec::new())).is_none());
        // New messages out of order.
        assert!(catch_up(&old, &changes(9, vec![meta(7, 7, ""), meta(6, 8, "")])).is_none());
    }
}
