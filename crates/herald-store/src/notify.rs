//! Change notification without polling, within one process.
//!
//! - "Outbox advanced": a `tokio::sync::watch` of the last committed outbox id. The dispatcher
//!   and live streams wait on it; a watch keeps only the latest value, so a slow waiter never
//!   accumulates a backlog (it re-reads the outbox from its cursor).
//! - "Mailbox X changed": one `watch` per mailbox id that someone waits on (IDLE), holding a
//!   change counter. Senders are created on first subscription and dropped when the last
//!   receiver is gone, so the map stays as small as the set of idling mailboxes.
//!
//! - "What was just committed": the last [`RECENT`] committed events, so the readers that follow
//!   the outbox closely (the event log, the dispatcher, live streams) get a new event from
//!   memory instead of reading back from the database the row the writer has just written. The
//!   profile of one client delivering over LMTP showed that read-back, through a read
//!   connection whose page cache every commit invalidates, at a tenth of the server's CPU.
//!
//! - "What is on disk": a batch of flag changes may commit before it is flushed to disk (see
//!   `writer`, deferred flushes), and its events must not leave the process before the flush:
//!   a power cut would undo the change after a consumer saw its event. Until a flush covers
//!   them, those outbox ids are hidden from every reader of the outbox — the watch, the
//!   memory window and the database reads ([`Notifier::visible`]) — while the change itself is
//!   visible to IMAP at once, as any committed change.
//!
//! The writer thread feeds all of them after each commit, before it answers the callers, so a
//! caller that sees its commit can rely on waiters having been woken. Another process writing to the
//! same data directory (the CLI while the server runs) cannot reach these channels;
//! `Store::wait_for_events` therefore also polls the database every
//! [`CROSS_PROCESS_POLL`].

use crate::model::StoredEvent;
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::watch;

/// How often [`Store::wait_for_events`](crate::Store::wait_for_events) looks for commits made by another process.
pub const CROSS_PROCESS_POLL: Duration = Duration::from_millis(250);

/// Committed events kept in memory: a few seconds of a busy server, about 2 MiB.
pub(crate) const RECENT: usize = 2048;

/// The notification hub of one open store.
#[derive(Debug)]
pub(crate) struct Notifier {
    outbox: watch::Sender<u64>,
    mailboxes: Mutex<HashMap<i64, watch::Sender<u64>>>,
    recent: Mutex<Recent>,
    unflushed: Mutex<Unflushed>,
}

/// Deferred commits not yet known to be on disk. The writer alone begins and ends them, one at
/// a time; a flush (another thread) or a durable commit covers them.
#[derive(Debug, Default)]
struct Unflushed {
    /// Readers see outbox ids up to this one; `None`: every committed id.
    visible: Option<u64>,
    /// The last outbox id a deferred commit wrote.
    high: u64,
    /// Deferred commits made so far, and how many of the first ones a flush or a durable
    /// commit covers.
    made: u64,
    covered: u64,
    /// A deferred batch is between its beginning and the end of its commit.
    open: bool,
    /// The highest id announced while hidden, announced once visible.
    held_back: u64,
}

/// What a flush must cover: the deferred commits made, up to the last id they wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FlushTarget {
    made: u64,
    high: u64,
}

/// Every outbox row with an id in `(floor, high]`, ascending. Rows of that range committed by
/// another process would break this, so a commit whose ids do not follow `high` starts the
/// window afresh, and [`Notifier::recent_after`] does not answer while the outbox is known to
/// reach beyond `high`.
#[derive(Debug)]
struct Recent {
    floor: u64,
    high: u64,
    events: VecDeque<StoredEvent>,
}

impl Notifier {
    pub fn new(last_id: u64) -> Notifier {
        Notifier {
            outbox: watch::Sender::new(last_id),
            mailboxes: Mutex::new(HashMap::new()),
            recent: Mutex::new(Recent {
                floor: last_id,
                high: last_id,
                events: VecDeque::with_capacity(RECENT),
            }),
            unflushed: Mutex::new(Unflushed::default()),
        }
    }

    fn unflushed(&self) -> std::sync::MutexGuard<'_, Unflushed> {
        self.unflushed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The highest outbox id readers may see: ids above it are committed but not yet flushed.
    pub fn visible(&self) -> u64 {
        self.unflushed().visible.unwrap_or(u64::MAX)
    }

    /// A deferred batch is about to commit ids after `before`: hides them from readers from
    /// now on, before the database could show them.
    pub fn defer_begin(&self, before: u64) {
        let mut u = self.unflushed();
        u.visible.get_or_insert(before);
        u.open = true;
    }

    /// The deferred batch begun last ended: `events` (the ids after `before`) committed, or
    /// nothing did (`None`). Remembers committed events; waiters hear of them after the flush.
    pub fn defer_end(&self, before: u64, events: Option<Vec<StoredEvent>>) {
        let last = events.map(|events| {
            let last = events.last().map_or(before, |e| e.id);
            self.remember(before, events);
            last
        });
        let mut u = self.unflushed();
        u.open = false;
        match last {
            Some(last) => {
                u.made += 1;
                u.high = u.high.max(last);
                u.held_back = u.held_back.max(last);
            }
            None if u.covered == u.made => u.visible = None,
            None => {}
        }
    }

    /// What a flush started now must cover; `None` when every deferred commit is covered
    /// already (a durable commit's flush came first).
    pub fn flush_target(&self) -> Option<FlushTarget> {
        let u = self.unflushed();
        (u.covered < u.made).then_some(FlushTarget {
            made: u.made,
            high: u.high,
        })
    }

    /// A flush begun after `target` was taken has returned: what it covers is on disk.
    pub fn flushed(&self, target: FlushTarget) {
        let announce = {
            let mut u = self.unflushed();
            u.covered = u.covered.max(target.made);
            if u.covered == u.made && !u.open {
                u.visible = None;
                std::mem::take(&mut u.held_back)
            } else {
                // Later deferred commits wrote only ids above `target.high`.
                if let Some(v) = &mut u.visible {
                    *v = (*v).max(target.high);
                }
                target.high
            }
        };
        self.outbox_advanced(announce);
    }

    /// A durable commit of this process: `events` got the ids after `before` (the outbox's last
    /// id when the transaction began). Remembers them, then wakes the outbox's waiters. Its
    /// flush covered every deferred commit before it too.
    pub fn committed(&self, before: u64, events: Vec<StoredEvent>) {
        let last = events.last().map_or(before, |e| e.id);
        self.remember(before, events);
        let held_back = {
            let mut u = self.unflushed();
            debug_assert!(!u.open, "a durable commit inside a deferred batch");
            u.covered = u.made;
            u.visible = None;
            std::mem::take(&mut u.held_back)
        };
        self.outbox_advanced(last.max(held_back));
    }

    /// Adds committed events to the memory window.
    fn remember(&self, before: u64, events: Vec<StoredEvent>) {
        let last = events.last().map_or(before, |e| e.id);
        {
            let mut r = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
            if before != r.high {
                // Another process committed in between: what it wrote is not here.
                r.events.clear();
                r.floor = before;
            }
            for e in events {
                if r.events.len() == RECENT
                    && let Some(old) = r.events.pop_front()
                {
                    r.floor = old.id;
                }
                r.events.push_back(e);
            }
            r.high = last;
        }
    }

    /// Retention removed every event before `oldest`: forgets them here too, so a reader
    /// behind them is sent to the database, which says what is gone.
    pub fn forget_before(&self, oldest: u64) {
        let mut r = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        while r.events.front().is_some_and(|e| e.id < oldest) {
            r.events.pop_front();
        }
        r.floor = r.floor.max(oldest.saturating_sub(1));
        r.high = r.high.max(r.floor);
    }

    /// The outbox rows after `after` (at most `limit`) when memory holds all of them, which is
    /// the case for a reader that follows the outbox closely; `None` sends it to the database.
    pub fn recent_after(&self, after: u64, limit: usize) -> Option<Vec<StoredEvent>> {
        let known = *self.outbox.borrow();
        let r = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        if after < r.floor || known > r.high {
            return None;
        }
        // Read under the window's lock: a deferred batch hides its ids before its events
        // enter the window, so whatever of one the window holds now is hidden now.
        let visible = self.visible();
        let start = r.events.partition_point(|e| e.id <= after);
        Some(
            r.events
                .range(start..)
                .take_while(|e| e.id <= visible)
                .take(limit)
                .cloned()
                .collect(),
        )
    }

    pub fn outbox(&self) -> watch::Receiver<u64> {
        self.outbox.subscribe()
    }

    /// Raises the last id (never lowers it: another process's commits may be seen first), as
    /// far as it is visible; the rest is announced when the flush makes it so.
    pub fn outbox_advanced(&self, id: u64) {
        let id = {
            let mut u = self.unflushed();
            match u.visible {
                Some(v) if id > v => {
                    u.held_back = u.held_back.max(id);
                    v
                }
                _ => id,
            }
        };
        self.outbox.send_if_modified(|cur| {
            if id > *cur {
                *cur = id;
                true
            } else {
                false
            }
        });
    }

    pub fn mailbox(&self, id: i64) -> watch::Receiver<u64> {
        let mut map = self
            .mailboxes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(id)
            .or_insert_with(|| watch::Sender::new(0))
            .subscribe()
    }

    /// Wakes every mailbox's waiters: after a gap in what this process heard of other
    /// processes' commits, any mailbox may have changed.
    pub fn all_mailboxes_changed(&self) {
        let mut map = self
            .mailboxes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, tx| tx.receiver_count() > 0);
        for tx in map.values() {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    pub fn mailboxes_changed(&self, ids: impl IntoIterator<Item = i64>) {
        let mut map = self
            .mailboxes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.is_empty() {
            return;
        }
        for id in ids {
            if let Some(tx) = map.get(&id) {
                if tx.receiver_count() == 0 {
                    map.remove(&id);
                } else {
                    tx.send_modify(|n| *n = n.wrapping_add(1));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_only_moves_forward_and_mailboxes_wake() {
        let n = Notifier::new(5);
        let mut rx = n.outbox();
        n.outbox_advanced(4);
        assert!(!rx.has_changed().unwrap());
        n.outbox_advanced(9);
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), 9);

        let a = n.mailbox(1);
        let b = n.mailbox(2);
        n.mailboxes_changed([1]);
        assert!(a.has_changed().unwrap());
        assert!(!b.has_changed().unwrap());
        drop(a);
        n.mailboxes_changed([1]);
        assert!(!n.mailboxes.lock().unwrap().contains_key(&1));
    }

    fn rows(ids: impl IntoIterator<Item = u64>) -> Vec<StoredEvent> {
        ids.into_iter()
            .map(|id| StoredEvent {
                id,
                json: format!("{{\"id\":{id}}}"),
            })
            .collect()
    }

    fn ids(rows: Option<Vec<StoredEvent>>) -> Option<Vec<u64>> {
        rows.map(|r| r.into_iter().map(|e| e.id).collect())
    }

    #[test]
    fn recent_events_answer_only_what_memory_holds_completely() {
        let n = Notifier::new(10);
        // Nothing committed since open: a reader at the head gets "nothing new" from memory,
        // one behind it must ask the database.
        assert_eq!(ids(n.recent_after(10, 100)), Some(vec![]));
        assert_eq!(ids(n.recent_after(9, 100)), None);
        n.committed(10, rows(11..=13));
        assert_eq!(*n.outbox().borrow(), 13);
        assert_eq!(ids(n.recent_after(10, 100)), Some(vec![11, 12, 13]));
        assert_eq!(ids(n.recent_after(11, 1)), Some(vec![12]));
        assert_eq!(ids(n.recent_after(13, 100)), Some(vec![]));

        // Another process committed 14 and 15, and this one learned of it from the database:
        // memory no longer answers until its own next commit starts the window afresh.
        n.outbox_advanced(15);
        assert_eq!(ids(n.recent_after(13, 100)), None);
        n.committed(15, rows([16]));
        assert_eq!(ids(n.recent_after(13, 100)), None);
        assert_eq!(ids(n.recent_after(15, 100)), Some(vec![16]));

        // A commit with no events moves nothing; one after a foreign commit still resets.
        n.committed(16, Vec::new());
        assert_eq!(ids(n.recent_after(15, 100)), Some(vec![16]));
        n.committed(20, Vec::new());
        assert_eq!(ids(n.recent_after(15, 100)), None);
        assert_eq!(ids(n.recent_after(20, 100)), Some(vec![]));
    }

    #[test]
    fn deferred_events_stay_hidden_until_a_flush_or_a_durable_commit_covers_them() {
        let n = Notifier::new(10);
        let rx = n.outbox();
        n.committed(10, rows([11]));
        // Hidden from the batch's beginning, before a database read could see its rows.
        n.defer_begin(11);
        assert_eq!(n.visible(), 11);
        n.outbox_advanced(13);
        assert_eq!(*rx.borrow(), 11);
        n.defer_end(11, Some(rows(12..=13)));
        assert_eq!(*rx.borrow(), 11);
        assert_eq!(ids(n.recent_after(10, 100)), Some(vec![11]));

        // A flush covers what was committed when it started, not a batch committed during it.
        let first = n.flush_target().unwrap();
        n.defer_begin(13);
        n.defer_end(13, Some(rows([14])));
        n.flushed(first);
        assert_eq!((*rx.borrow(), n.visible()), (13, 13));
        assert_eq!(ids(n.recent_after(10, 100)), Some(vec![11, 12, 13]));

        // A durable commit's flush covers everything before it.
        n.committed(14, rows([15]));
        assert_eq!((*rx.borrow(), n.visible()), (15, u64::MAX));
        assert_eq!(n.flush_target(), None, "nothing is left to flush");

        // A deferred batch that did not commit hides nothing afterwards.
        n.defer_begin(15);
        n.defer_end(15, None);
        assert_eq!(n.visible(), u64::MAX);

        // A flush that returns while the next deferred batch is open keeps that one hidden.
        n.defer_begin(15);
        n.defer_end(15, Some(rows([16])));
        let target = n.flush_target().unwrap();
        n.defer_begin(16);
        n.flushed(target);
        assert_eq!((*rx.borrow(), n.visible()), (16, 16));
        n.defer_end(16, Some(rows([17])));
        assert_eq!(*rx.borrow(), 16);
        n.flushed(n.flush_target().unwrap());
        assert_eq!((*rx.borrow(), n.visible()), (17, u64::MAX));
    }

    #[test]
    fn pruned_events_are_not_served_from_memory() {
        let n = Notifier::new(0);
        n.committed(0, rows(1..=10));
        n.forget_before(6);
        assert_eq!(ids(n.recent_after(0, 100)), None);
        assert_eq!(ids(n.recent_after(4, 100)), None);
        assert_eq!(ids(n.recent_after(5, 2)), Some(vec![6, 7]));
        n.committed(10, rows([11]));
        assert_eq!(ids(n.recent_after(9, 100)), Some(vec![10, 11]));
    }

    #[test]
    fn the_oldest_recent_events_make_way() {
        let n = Notifier::new(0);
        let total = RECENT as u64 + 10;
        n.committed(0, rows(1..=total));
        assert_eq!(ids(n.recent_after(0, 1)), None);
        assert_eq!(ids(n.recent_after(9, 1)), None);
        assert_eq!(ids(n.recent_after(10, 2)), Some(vec![11, 12]));
        assert_eq!(ids(n.recent_after(total - 1, 100)), Some(vec![total]));
    }
}
