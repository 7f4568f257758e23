//! Change notification without polling, within one process.
//!
//! - "Outbox advanced": a `tokio::sync::watch` of the last committed outbox id. The dispatcher
//!   and live streams wait on it; a watch keeps only the latest value, so a slow waiter never
//!   accumulates a backlog (it re-reads the outbox from its cursor).
//! - "Mailbox X changed": one `watch` per mailbox id that someone waits on (IDLE), holding a
//!   change counter. Senders are created on first subscription and dropped when the last
//!   receiver is gone, so the map stays as small as the set of idling mailboxes.
//!
//! The writer thread feeds both after each commit, before it answers the callers, so a caller
//! that sees its commit can rely on waiters having been woken. Another process writing to the
//! same data directory (the CLI while the server runs) cannot reach these channels;
//! `Store::wait_for_events` therefore also polls the database every
//! [`CROSS_PROCESS_POLL`](crate::CROSS_PROCESS_POLL).

use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::watch;

/// The notification hub of one open store.
#[derive(Debug)]
pub(crate) struct Notifier {
    outbox: watch::Sender<u64>,
    mailboxes: Mutex<HashMap<i64, watch::Sender<u64>>>,
}

impl Notifier {
    pub fn new(last_id: u64) -> Notifier {
        Notifier {
            outbox: watch::Sender::new(last_id),
            mailboxes: Mutex::new(HashMap::new()),
        }
    }

    pub fn outbox(&self) -> watch::Receiver<u64> {
        self.outbox.subscribe()
    }

    /// Raises the last id (never lowers it: another process's commits may be seen first).
    pub fn outbox_advanced(&self, id: u64) {
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
}
