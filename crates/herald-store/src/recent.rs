//! `\Recent` claims (RFC 3501 §2.3.2) granted in memory, on a store that one process serves.
//!
//! Only the first IMAP session told of a message may see it as `\Recent`, so every SELECT and
//! every new-mail update of an IMAP4rev1 session claims the new UIDs. Through the writer, each
//! claim waited behind the durable batch being flushed, although nine claims in ten (the other
//! sessions of a shared INBOX) get nothing: under mixed load that wait was most of a LIST's
//! latency. The embedded store has one process serving it, so the claim itself can be decided
//! here, under a lock, and only its record goes to the writer, queued without waiting: it commits
//! with the next batch, in queue order. The record is what a restart starts from; losing the last
//! few to a crash shows those messages as recent again, which the RFC prefers when in doubt.
//!
//! Each claim still reads the mailbox row where the caller runs, which costs far less than the
//! writer's queue: for the right to read it, which mailbox the name is now, and its UIDNEXT
//! (only existing UIDs are claimed). An entry starts from the row's `recent_uid`. From then on
//! the entry is the truth, ahead of the row by the records still queued, so the reads that show
//! `\Recent` (SELECT's mailbox row, STATUS RECENT) take the higher of the two. Entries are keyed by
//! account and mailbox name and hold the UIDVALIDITY they are for: a mailbox deleted and
//! created again under the name starts afresh. A rename or deletion forgets the account's
//! entries once its commit returned, which is after every record queued before it committed.
//! Entries are never dropped otherwise: a dropped entry re-read from a row its queued records
//! have not reached would grant the same UIDs twice. (A claim made in the moment between a
//! rename's commit and that forgetting is recorded under the old name, which is gone, and may
//! be granted again under the new one.) Past [`MAX_MAILBOXES`] new mailboxes are
//! claimed through the writer as before.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Most mailboxes with claims kept in memory (about 100 bytes each).
pub(crate) const MAX_MAILBOXES: usize = 100_000;

/// A mailbox row's `recent_uid` (`stored`, under `uidvalidity`) raised to the claims this
/// process made beyond it (`claimed`, from [`RecentClaims::claimed`]), when they are of the
/// same mailbox.
pub(crate) fn raised(stored: u32, uidvalidity: u32, claimed: Option<(u32, u32)>) -> u32 {
    match claimed {
        Some((v, c)) if v == uidvalidity => stored.max(c),
        _ => stored,
    }
}

/// What a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// The UIDs from this one up to the claim's end are the caller's (none when it is not
    /// below the end).
    Granted(u32),
    /// Nothing is known here of the mailbox with that UIDVALIDITY: learn its row first.
    Unknown,
}

/// What learning a mailbox's row did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Learned {
    /// The entry is there now (made from the row, or by a session before).
    Kept,
    /// No room for another mailbox: claim through the writer.
    Full,
    /// The entry is of a newer mailbox under the name, with claims: the row read was older
    /// than it, and nothing is recent for the caller.
    Superseded,
}

/// The claims, by (account, mailbox): (UIDVALIDITY, first UID not yet claimed).
#[derive(Debug, Default)]
pub(crate) struct RecentClaims {
    map: Mutex<HashMap<(String, String), (u32, u32)>>,
}

impl RecentClaims {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), (u32, u32)>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Claims the UIDs below `upto` of the mailbox with `uidvalidity`.
    pub(crate) fn claim(&self, account: &str, mailbox: &str, uidvalidity: u32, upto: u32) -> Claim {
        let mut map = self.map();
        // The key is looked up by reference; a new entry is made only in `learn`.
        match map.get_mut(&(account.to_owned(), mailbox.to_owned())) {
            Some(entry) if entry.0 == uidvalidity => {
                let first = entry.1;
                entry.1 = entry.1.max(upto);
                Claim::Granted(first)
            }
            _ => Claim::Unknown,
        }
    }

    /// Starts the mailbox's entry from its row, just read: `recent_uid` `stored` under
    /// `uidvalidity`, unless a session already did.
    ///
    /// An entry of another UIDVALIDITY is of a mailbox that was replaced under the name, and
    /// gives way, unless it is of a newer one (UIDVALIDITY values only grow) that has claims:
    /// then the row was read before the replacement. The one way a mailbox's UIDVALIDITY goes
    /// down is an import into a mailbox that never held a message, whose entry has nothing
    /// claimed (UID 1 on), so it gives way too.
    pub(crate) fn learn(
        &self,
        account: &str,
        mailbox: &str,
        uidvalidity: u32,
        stored: u32,
    ) -> Learned {
        let mut map = self.map();
        let key = (account.to_owned(), mailbox.to_owned());
        let room = map.len() < MAX_MAILBOXES;
        match map.get_mut(&key) {
            Some(e) if e.0 == uidvalidity => Learned::Kept,
            Some(e) if e.0 > uidvalidity && e.1 > 1 => Learned::Superseded,
            Some(e) => {
                *e = (uidvalidity, stored);
                Learned::Kept
            }
            None if !room => Learned::Full,
            None => {
                map.insert(key, (uidvalidity, stored));
                Learned::Kept
            }
        }
    }

    /// The UIDVALIDITY of the mailbox's entry and the first UID not yet claimed under it, if
    /// this process has one: a row read for it shows the higher of its `recent_uid` and this
    /// when their UIDVALIDITY is the same.
    pub(crate) fn claimed(&self, account: &str, mailbox: &str) -> Option<(u32, u32)> {
        self.map()
            .get(&(account.to_owned(), mailbox.to_owned()))
            .copied()
    }

    /// Forgets the entries of `account` (after a rename or deletion committed).
    pub(crate) fn forget_account(&self, account: &str) {
        self.map().retain(|k, _| k.0 != account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_claim_gets_the_new_uids_and_the_next_gets_none_of_them() {
        let c = RecentClaims::default();
        assert_eq!(c.claim("a", "INBOX", 7, 10), Claim::Unknown);
        assert_eq!(c.learn("a", "INBOX", 7, 4), Learned::Kept);
        assert_eq!(c.claim("a", "INBOX", 7, 10), Claim::Granted(4));
        assert_eq!(c.claim("a", "INBOX", 7, 10), Claim::Granted(10));
        // A session behind the others claims nothing it was not told of, and moves nothing back.
        assert_eq!(c.claim("a", "INBOX", 7, 8), Claim::Granted(10));
        assert_eq!(c.claimed("a", "INBOX"), Some((7, 10)));
        assert_eq!(c.claim("a", "INBOX", 7, 12), Claim::Granted(10));
        // A second reader of the row does not undo what was claimed meanwhile.
        assert_eq!(c.learn("a", "INBOX", 7, 4), Learned::Kept);
        assert_eq!(c.claimed("a", "INBOX"), Some((7, 12)));
        // Other accounts and mailboxes are apart.
        assert_eq!(c.claim("b", "INBOX", 7, 10), Claim::Unknown);
        assert_eq!(c.claim("a", "Sent", 7, 10), Claim::Unknown);
    }

    #[test]
    fn a_mailbox_created_again_starts_afresh_and_a_late_old_row_changes_nothing() {
        let c = RecentClaims::default();
        assert_eq!(c.learn("a", "Box", 7, 1), Learned::Kept);
        assert_eq!(c.claim("a", "Box", 7, 50), Claim::Granted(1));
        // Deleted and created again: a higher UIDVALIDITY, UIDs from 1.
        assert_eq!(c.claim("a", "Box", 9, 5), Claim::Unknown);
        assert_eq!(c.learn("a", "Box", 9, 1), Learned::Kept);
        assert_eq!(c.claim("a", "Box", 9, 5), Claim::Granted(1));
        // A session of the old mailbox learns nothing from its UIDVALIDITY.
        assert_eq!(c.claim("a", "Box", 7, 60), Claim::Unknown);
        assert_ne!(c.claimed("a", "Box").map(|e| e.0), Some(7));
        // A row of the old mailbox read late does not replace the new entry.
        assert_eq!(c.learn("a", "Box", 7, 50), Learned::Superseded);
        assert_eq!(c.claimed("a", "Box"), Some((9, 5)));
    }

    #[test]
    fn an_import_may_lower_the_uidvalidity_of_a_mailbox_never_claimed_from() {
        let c = RecentClaims::default();
        // SELECTed while empty: an entry with nothing claimed.
        assert_eq!(c.learn("a", "Old", 900, 1), Learned::Kept);
        assert_eq!(c.claim("a", "Old", 900, 1), Claim::Granted(1));
        // The import kept the source's lower UIDVALIDITY and its UIDs.
        assert_eq!(c.learn("a", "Old", 42, 1), Learned::Kept);
        assert_eq!(c.claim("a", "Old", 42, 30), Claim::Granted(1));
    }

    #[test]
    fn forgetting_an_account_leaves_the_others() {
        let c = RecentClaims::default();
        assert_eq!(c.learn("a", "INBOX", 1, 3), Learned::Kept);
        assert_eq!(c.learn("b", "INBOX", 1, 3), Learned::Kept);
        c.forget_account("a");
        assert_eq!(c.claimed("a", "INBOX"), None);
        assert_eq!(c.claimed("b", "INBOX"), Some((1, 3)));
    }

    #[test]
    fn past_the_bound_new_mailboxes_are_not_kept() {
        let c = RecentClaims::default();
        for i in 0..MAX_MAILBOXES {
            assert_eq!(c.learn("a", &format!("m{i}"), 1, 1), Learned::Kept);
        }
        assert_eq!(c.learn("a", "one more", 1, 1), Learned::Full);
        // Known ones still are.
        assert_eq!(c.learn("a", "m0", 1, 1), Learned::Kept);
        assert_eq!(c.claim("a", "m0", 1, 2), Claim::Granted(1));
    }
}
