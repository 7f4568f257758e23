//! The PostgreSQL outbox: event ids dense and strictly increasing in commit order, so a reader
//! following it with [`events_after`] can never skip an event.
//!
//! # The trap
//! A sequence (`bigserial`) hands out its value when the row is inserted, not when the
//! transaction commits. Transaction A takes id 7 and stays open; B takes id 8 and commits; a
//! reader sees 8 and moves its cursor past it; A commits, and 7 lies behind the cursor for ever.
//! Nothing in PostgreSQL orders commits by sequence value.
//!
//! # The design: a counter row locked until commit
//! `outbox_head` holds one row, the last id given out. [`append_events`] runs
//! `UPDATE outbox_head SET last_id = last_id + n RETURNING last_id` in the caller's transaction,
//! takes the `n` ids below the new value, and inserts the events with them. The row stays
//! locked by that transaction until it commits or rolls back.
//!
//! (STACK §5 names a second design: stamp rows with `pg_current_xact_id()` and read only below
//! the `pg_snapshot_xmin` horizon. It does not lose events either, but its ids are not in
//! commit order and are not known before commit, while every Herald event carries its final id
//! (`vnd.herald.id`) inside the JSON that is committed, and consumers resume on it.)
//!
//! # Why it cannot lose an event
//! 1. *Appenders are serialised from their `UPDATE` to their end.* A second transaction's
//!    `UPDATE` of the row waits for the first one's transaction lock. PostgreSQL releases that
//!    lock only after the first transaction's commit is recorded and visible to new snapshots
//!    (`CommitTransaction` ends the transaction in the proc array before it releases locks), and
//!    in READ COMMITTED the waiting `UPDATE` then re-reads the newest committed row version.
//! 2. *So ids follow commit order.* If A commits before B and both appended, A's `UPDATE` came
//!    first (else A would have waited for B's end), so A's ids are all below B's.
//! 3. *So ids are dense.* A rolled-back appender's `UPDATE` is rolled back too: the next one
//!    reads the same `last_id` and reuses the ids, none of which were ever visible.
//! 4. *So every snapshot holds a prefix of the ids.* Say a reader's snapshot shows id `k`. For
//!    any `j < k` that is committed, the transaction that appended `j` finished its commit
//!    before the one that appended `k` could update the row (1), so before that one committed,
//!    so before the snapshot was taken: the snapshot shows `j` as well. With 3, a committed
//!    `j < k` is every `j < k` not removed by retention, which removes only the oldest.
//! 5. *So a reader never skips.* [`events_after`] is one statement, hence one snapshot, and
//!    returns the ids above the cursor in that snapshot's prefix, ascending. Any event not yet
//!    visible has an id above all visible ones, hence above the new cursor, and is read later.
//!
//! The same holds on a streaming replica: commit records replay in WAL order, and A's commit
//! record precedes B's `UPDATE`.
//!
//! # What callers must do
//! - Call [`append_events`] inside the transaction that makes the change, and **as late as
//!   possible** (right before commit): from the `UPDATE` to the end of the transaction every
//!   other appender waits. Work done before it runs concurrently with other appenders.
//! - Use READ COMMITTED (PostgreSQL's default). Under REPEATABLE READ or SERIALIZABLE a
//!   contended `UPDATE` fails with a serialization error (SQLSTATE 40001) instead of waiting:
//!   nothing is lost, but the caller has to retry.
//!
//! # The cost
//! Appending transactions commit one at a time: each holds the row across its commit's WAL
//! flush, so the rate of appending transactions is bounded by the disk's flush rate whatever
//! the number of connections. Throughput comes from putting many operations into one
//! transaction (group commit, as the embedded writer does), not from more connections.

use crate::error::{Result, StoreError};
use crate::model::StoredEvent;
use herald_events::Event;

/// Appends `events` to the outbox inside the caller's transaction and returns them as they will
/// be stored (each with its id, also written into its JSON as `vnd.herald.id`), in order.
///
/// The ids are final once the transaction commits; if it rolls back, they are given out again.
/// Nothing is written (and no lock taken) for an empty slice. See the module doc for why the
/// call belongs right before the commit.
pub async fn append_events(
    tx: &deadpool_postgres::Transaction<'_>,
    events: &mut [Event],
) -> Result<Vec<StoredEvent>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let count = i64::try_from(events.len())
        .map_err(|_| StoreError::InvalidArgument("too many events in one append".into()))?;
    // Prepared (or found in the connection's cache) before the row is locked, so the lock is
    // held for two statements and the commit only.
    let take = tx
        .prepare_cached("UPDATE outbox_head SET last_id = last_id + $1 RETURNING last_id")
        .await?;
    let insert = tx
        .prepare_cached(
            "INSERT INTO outbox (id, event)
             SELECT $1::bigint + t.n - 1, t.event
             FROM unnest($2::text[]) WITH ORDINALITY AS t(event, n)",
        )
        .await?;
    let last: i64 = tx.query_one(&take, &[&count]).await?.get(0);
    let first = last - count + 1;
    let mut stored = Vec::with_capacity(events.len());
    for (id, event) in (first..=last).zip(events.iter_mut()) {
        // `first >= 1`: `last_id` starts at 0 and only grows (CHECK in the schema).
        let id = id as u64;
        event.set_herald_id(id);
        stored.push(StoredEvent {
            id,
            json: event.to_json(),
        });
    }
    let json: Vec<&str> = stored.iter().map(|e| e.json.as_str()).collect();
    tx.execute(&insert, &[&first, &json]).await?;
    Ok(stored)
}

/// Up to `limit` events with ids above `after`, ascending, from one snapshot (see the module
/// doc for why that never skips one).
pub(super) async fn events_after(
    client: &deadpool_postgres::Object,
    after: u64,
    limit: usize,
) -> Result<Vec<StoredEvent>> {
    let Ok(after) = i64::try_from(after) else {
        // Ids are `bigint`: nothing lies above this.
        return Ok(Vec::new());
    };
    if limit == 0 {
        return Ok(Vec::new());
    }
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let stmt = client
        .prepare_cached("SELECT id, event FROM outbox WHERE id > $1 ORDER BY id LIMIT $2")
        .await?;
    let rows = client.query(&stmt, &[&after, &limit]).await?;
    rows.iter()
        .map(|row| {
            let id: i64 = row.get(0);
            let id = u64::try_from(id)
                .map_err(|_| StoreError::Corrupt(format!("negative outbox id {id}")))?;
            Ok(StoredEvent {
                id,
                json: row.get(1),
            })
        })
        .collect()
}

/// The last id given out by a committed transaction.
pub(super) async fn last_id(client: &deadpool_postgres::Object) -> Result<u64> {
    let last: i64 = client
        .query_one("SELECT last_id FROM outbox_head", &[])
        .await?
        .get(0);
    u64::try_from(last).map_err(|_| StoreError::Corrupt(format!("negative outbox head {last}")))
}
