//! Housekeeping as writer operations: outbox retention (the rules are in `crate::retention`)
//! and the sweep of thread identifiers left by gone messages.
//!
//! It runs inside the writer's transaction like every mutation, so the cursors and parked
//! events it reads are exactly those committed before it, and a cursor moved back by a replay
//! in the same batch is seen: nothing a subscription needs can be removed between reading the
//! cursors and deleting. The work is bounded by the policy's batch: one range read of at most
//! that many timestamps (only when the age decides), one range delete on the primary key.

use super::ops::{OpResult, done};
use crate::backend::Output;
use crate::retention::{PruneReport, RetentionPolicy, count_bound, safe_bound};
use crate::sql::{Db, OptionalExtension, Result as SqlResult, params};

/// Removes, oldest first, at most `policy.batch` events the policy lets go and nothing
/// after `hold`.
pub(crate) fn prune(conn: &dyn Db, policy: &RetentionPolicy, hold: u64, now_ms: i64) -> OpResult {
    let (oldest, head): (Option<i64>, Option<i64>) = conn
        .prepare_cached("SELECT min(id), max(id) FROM outbox")?
        .query_row((), |r| Ok((r.get(0)?, r.get(1)?)))?;
    let (Some(oldest), Some(head)) = (oldest, head) else {
        return done(
            Output::Pruned(PruneReport::default()),
            Vec::new(),
            Vec::new(),
        );
    };
    let (oldest, head) = (oldest as u64, head as u64);
    let unchanged = PruneReport {
        pruned: 0,
        oldest: Some(oldest),
        more: false,
    };
    if !policy.prunes() {
        return done(Output::Pruned(unchanged), Vec::new(), Vec::new());
    }
    let cursors = conn
        .prepare_cached("SELECT cursor FROM deliveries")?
        .query_map((), |r| r.get::<_, i64>(0))?
        .map(|c| c.map(|c| c.max(0) as u64))
        .collect::<SqlResult<Vec<u64>>>()?;
    let lowest_parked: Option<i64> = conn
        .prepare_cached("SELECT min(event_id) FROM parked")?
        .query_row((), |r| r.get(0))?;
    let safe = safe_bound(head, cursors, lowest_parked.map(|p| p.max(0) as u64), hold);
    let batch = policy.batch.max(1) as u64;
    let end = safe.min(oldest.saturating_add(batch - 1));
    if end < oldest {
        return done(Output::Pruned(unchanged), Vec::new(), Vec::new());
    }
    let mut upto = count_bound(head, policy.max_events).min(end);
    if upto < end
        && let Some(max_age) = policy.max_age_secs
    {
        let cutoff = (now_ms / 1000).saturating_sub(i64::try_from(max_age).unwrap_or(i64::MAX));
        let rows = conn.query_map(
            conn.pick(
                "SELECT id, unixepoch(json_extract(event, '$.timestamp')) FROM outbox
                 WHERE id > ?1 AND id <= ?2 ORDER BY id",
                "SELECT id, CAST(EXTRACT(EPOCH FROM CAST(CAST(event AS json)->>'timestamp'
                        AS timestamptz)) AS bigint) FROM outbox
                 WHERE id > ?1 AND id <= ?2 ORDER BY id",
            ),
            params![upto.max(oldest - 1) as i64, end as i64],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Option<i64>>(1)?)),
        )?;
        for (id, at) in rows {
            match at {
                Some(at) if at < cutoff => upto = id,
                // Young enough, or of unknown age: it and everything after it stay.
                _ => break,
            }
        }
    }
    if upto < oldest {
        return done(Output::Pruned(unchanged), Vec::new(), Vec::new());
    }
    // Never the newest event (`safe_bound` stops below `head`): on SQLite its row is the
    // record of the last id given out (`embedded::schema::LAST_EVENT_ID`), so ids are never
    // given twice.
    debug_assert!(upto < head, "retention must keep the newest event");
    let pruned = conn
        .prepare_cached("DELETE FROM outbox WHERE id <= ?1")?
        .execute([upto as i64])? as u64;
    done(
        Output::Pruned(PruneReport {
            pruned,
            oldest: Some(upto + 1),
            more: pruned >= batch,
        }),
        Vec::new(),
        Vec::new(),
    )
}

/// An account is swept once the messages it lost since its last sweep pass this many, or a
/// quarter of the messages it holds, whichever is more: a sweep reads all of the account's
/// messages, so sweeping in proportion keeps its cost per expunge constant.
const SWEEP_MIN_DEBT: i64 = 256;

/// Sweeps the thread identifiers of the account most in debt, if any is due: removes those
/// whose thread has no message left (a thread number is never reused, so nothing else can
/// depend on them) and clears the debt.
pub(crate) fn sweep_threads(conn: &dyn Db) -> OpResult {
    let due: Option<(i64, String)> = conn
        .prepare_cached(
            "SELECT id, name FROM accounts
             WHERE thread_debt >= CASE WHEN ?1 > used_messages / 4 THEN ?1 ELSE used_messages / 4 END
             ORDER BY thread_debt DESC LIMIT 1",
        )?
        .query_row([SWEEP_MIN_DEBT], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((account_id, name)) = due else {
        return done(Output::SweptThreads(None), Vec::new(), Vec::new());
    };
    let removed = conn
        .prepare_cached(
            "DELETE FROM thread_refs WHERE account_id = ?1 AND thread_id NOT IN (
               SELECT m.thread_id FROM mailboxes b JOIN messages m ON m.mailbox_id = b.id
               WHERE b.account_id = ?1)",
        )?
        .execute([account_id])? as u64;
    conn.prepare_cached("UPDATE accounts SET thread_debt = 0 WHERE id = ?1")?
        .execute([account_id])?;
    done(
        Output::SweptThreads(Some((name, removed))),
        Vec::new(),
        Vec::new(),
    )
}
