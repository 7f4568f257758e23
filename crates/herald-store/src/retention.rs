//! Outbox retention: which events may be removed, and the holds that keep them.
//!
//! The outbox is the source every consumer resumes from, so retention removes only what no
//! consumer can still need, and only the oldest events, so the outbox stays one contiguous
//! range of ids (`oldest ..= head`) and "the oldest event kept" is a single number a consumer
//! can be told:
//!
//! 1. **Safety** ([`safe_bound`]): never an event after any subscription's cursor (paused and
//!    disabled subscriptions included: they resume from their cursor), never a parked event
//!    (a replay of parked events reads them from the outbox), never one an in-process
//!    [`RetentionHold`] still covers (the event log, whose cursor is its file), and never the
//!    newest event (so the outbox is never emptied and keeps saying where the ids are).
//! 2. **Policy** ([`RetentionPolicy`]): of what is safe, an event goes once it is older than
//!    `retain_days` *or* not among the newest `retain_events` — whichever limit it passes
//!    first. Neither set: nothing goes.
//! 3. **Bounded work**: at most [`RetentionPolicy::batch`] rows per transaction, so the
//!    writer, which group-commits every other operation, is held for milliseconds; the
//!    background task asks again until a batch comes back short.
//!
//! Ages come from each event's own `timestamp` (RFC 3339, one per transaction). Timestamps are
//! never used for ordering: retention walks ids upwards and stops at the first event that is
//! young enough (or whose time cannot be read), so a clock step backwards keeps events longer,
//! never removes a newer one before an older one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// Default rows removed per transaction.
pub const DEFAULT_BATCH: usize = 1000;

/// What retention removes ([`crate::Store::prune_events`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Remove acknowledged events older than this many seconds (`[events] retain_days`).
    pub max_age_secs: Option<u64>,
    /// Keep at most this many of the newest events, acknowledged older ones go
    /// (`[events] retain_events`).
    pub max_events: Option<u64>,
    /// Rows removed per transaction.
    pub batch: usize,
}

impl Default for RetentionPolicy {
    fn default() -> RetentionPolicy {
        RetentionPolicy {
            max_age_secs: None,
            max_events: None,
            batch: DEFAULT_BATCH,
        }
    }
}

impl RetentionPolicy {
    /// True when the policy can remove anything at all.
    pub fn prunes(&self) -> bool {
        self.max_age_secs.is_some() || self.max_events.is_some()
    }
}

/// What one pruning transaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Rows removed.
    pub pruned: u64,
    /// The oldest event id kept afterwards (`None`: the outbox is empty).
    pub oldest: Option<u64>,
    /// True when the batch was full: more may be removable now.
    pub more: bool,
}

/// The highest event id retention may remove whatever its policy says (see the module
/// documentation): below the newest event, every subscription's cursor, every parked event and
/// `hold`. 0 means nothing may go.
pub fn safe_bound(
    head: u64,
    cursors: impl IntoIterator<Item = u64>,
    lowest_parked: Option<u64>,
    hold: u64,
) -> u64 {
    let mut bound = head.saturating_sub(1).min(hold);
    for cursor in cursors {
        bound = bound.min(cursor);
    }
    if let Some(parked) = lowest_parked {
        bound = bound.min(parked.saturating_sub(1));
    }
    bound
}

/// The highest event id `max_events` lets go: everything but the newest `max_events`.
pub fn count_bound(head: u64, max_events: Option<u64>) -> u64 {
    max_events.map_or(0, |n| head.saturating_sub(n))
}

/// In-process consumers that keep their cursor outside the store (the event log's cursor is
/// its file): each holds a [`RetentionHold`], and retention removes nothing after the lowest.
#[derive(Debug, Default)]
pub(crate) struct Holds {
    live: Mutex<Vec<Weak<AtomicU64>>>,
}

impl Holds {
    /// A new hold at `at` (retention keeps everything after `at`).
    pub fn add(&self, at: u64) -> RetentionHold {
        let hold = Arc::new(AtomicU64::new(at));
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.retain(|w| w.strong_count() > 0);
        live.push(Arc::downgrade(&hold));
        RetentionHold(hold)
    }

    /// The lowest live hold; `u64::MAX` when there is none.
    pub fn lowest(&self) -> u64 {
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.iter()
            .filter_map(Weak::upgrade)
            .map(|h| h.load(Ordering::Acquire))
            .min()
            .unwrap_or(u64::MAX)
    }
}

/// Keeps retention from removing events after its position; released when the last clone is
/// dropped. Clones are the same hold (one to move it, another to read it for metrics).
#[derive(Debug, Clone)]
pub struct RetentionHold(Arc<AtomicU64>);

impl RetentionHold {
    /// Everything up to `id` is no longer needed by the holder. Moves forward only.
    pub fn release_through(&self, id: u64) {
        self.0.fetch_max(id, Ordering::AcqRel);
    }

    /// The position: events after it are kept.
    pub fn position(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_the_newest_nor_past_a_cursor_a_parked_event_or_a_hold() {
        // Nothing consumes: everything but the newest may go.
        assert_eq!(safe_bound(100, [], None, u64::MAX), 99);
        // The slowest subscription decides, whether active, paused or disabled.
        assert_eq!(safe_bound(100, [90, 40, 100], None, u64::MAX), 40);
        // A parked event stays, and so does everything after it.
        assert_eq!(safe_bound(100, [90], Some(12), u64::MAX), 11);
        // A hold (the event log) counts like a cursor.
        assert_eq!(safe_bound(100, [90], None, 30), 30);
        // A subscription that acknowledged nothing keeps everything.
        assert_eq!(safe_bound(100, [0], None, u64::MAX), 0);
        assert_eq!(safe_bound(100, [90], Some(1), u64::MAX), 0);
        assert_eq!(safe_bound(0, [], None, u64::MAX), 0);
        assert_eq!(safe_bound(1, [], None, u64::MAX), 0);
    }

    #[test]
    fn count_keeps_the_newest() {
        assert_eq!(count_bound(100, Some(10)), 90);
        assert_eq!(count_bound(5, Some(10)), 0);
        assert_eq!(count_bound(100, None), 0);
    }

    #[test]
    fn holds_count_until_dropped() {
        let holds = Holds::default();
        assert_eq!(holds.lowest(), u64::MAX);
        let a = holds.add(0);
        let b = holds.add(50);
        assert_eq!(holds.lowest(), 0);
        a.release_through(70);
        assert_eq!(holds.lowest(), 50);
        a.release_through(10);
        assert_eq!(a.position(), 70, "a hold moves forward only");
        drop(b);
        assert_eq!(holds.lowest(), 70);
        drop(a);
        assert_eq!(holds.lowest(), u64::MAX);
    }
}
