//! The writer thread: the only code that writes to the database, and where group commit happens.
//!
//! Callers queue [`Job`]s and await a oneshot reply. The writer takes every queued job (up to
//! `max_batch`), opens one transaction holding the store's write lock ([`Engine::begin`]: SQLite's
//! `BEGIN IMMEDIATE`, PostgreSQL's lock of the outbox's counter row), runs the jobs, and
//! commits once. Should a job fail, the batch is rolled back and run again with each job in a
//! `SAVEPOINT` of its own ([`commit_batch`]): the failing job rolls back alone, and the record
//! of its failure that must commit anyway (QuotaExceed) is written in a savepoint of its own.
//! One commit is one flush to disk for the whole batch. While it waits for that flush, new
//! jobs queue up and form the next batch, so the batch size adapts to the load by itself,
//! with no timer: one writer alone pays one flush per operation, sixteen concurrent writers
//! share them. Replies are sent only after the commit returned, so a caller never sees success
//! for something a power cut could undo — with two exceptions an engine may allow, committed
//! first in a transaction of their own without waiting for the flush: `\Recent` claims, and
//! flag changes with `[store] flag_sync = "deferred"` (the embedded backend's `flush`), whose
//! events readers of the outbox see only once a flush covers them.
//!
//! One connection, behind a lock each batch holds, because one writer at a time is what the
//! operations assume (SQLite allows no other; on PostgreSQL the lock makes it so for every
//! process); putting the writes on a dedicated OS thread keeps flushes and blocking statements
//! off the async runtime.
//! Outbox ids are assigned here, inside the write lock, after the last one the engine reports,
//! so they are dense and in commit order even when another process (the CLI, another node)
//! writes between our batches.
//!
//! Jobs submitted together ([`Writer::submit_many`]: one message delivered to several
//! recipients) are queued as one entry, so the writer takes them into one batch: one flush for
//! every recipient, where each recipient's job alone would have cost one.
//!
//! One exception to the thread: on an engine whose commits do not block on the runtime
//! ([`Engine::commits_inline`], the embedded store), a flag change committed without the flush, and
//! one message appended or delivered (to up to [`INLINE_MAX_JOBS`] recipients) while the store's
//! flushes are quick, are committed on the caller's own thread when the queue is empty and the
//! thread idle, as the thread would have committed them alone. One client marking mail read, or
//! appending or delivering on one connection, then waits for no hand-off to the writer and back,
//! which profiles of those loops showed to be the larger part of their cost: four thread wake-ups
//! of the writer, the runtime and a second runtime worker per message, each a context switch that
//! costs more than the SQLite work on a virtual machine. A durable commit on the caller's thread
//! blocks one runtime worker through its flush, so it is taken only while the recent durable
//! commits took under [`crate::StoreConfig::inline_commit_budget`] (1 ms by default): a slow or
//! busy disk sends every commit back to the thread. The engine's lock keeps one writer at a time,
//! and a busy writer's queue still batches everything.

use super::Shared;
use super::ops;
use crate::backend::{Applied, Op, Output};
use crate::context::SessionContext;
use crate::error::{Result, StoreError};
use crate::model::StoredEvent;
use crate::sql::{Db, Result as SqlResult, params};
use herald_events::{Event, EventType};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// One queued mutation.
struct Job {
    pub ctx: SessionContext,
    pub op: Op,
    pub reply: oneshot::Sender<Result<Applied>>,
}

impl Job {
    fn weight(&self) -> usize {
        match &self.op {
            Op::Append { blob, .. } if !blob.on_file => blob.data.len(),
            Op::Import { messages, .. } => messages
                .iter()
                .filter(|m| !m.blob.on_file)
                .map(|m| m.blob.data.len())
                .sum(),
            _ => 0,
        }
    }
}

/// The content bytes `jobs` bring into a transaction: a message delivered to several
/// recipients is stored once, so each content counts once.
fn content_bytes(jobs: &[Job]) -> usize {
    let mut seen: Vec<&[u8; 32]> = Vec::with_capacity(jobs.len());
    let mut bytes = 0;
    for job in jobs {
        if let Op::Append { blob, .. } = &job.op
            && !seen.contains(&&blob.sha256)
        {
            seen.push(&blob.sha256);
            bytes += job.weight();
        }
    }
    bytes
}

/// A committed job's caller and its outcome, answered once the engine's lock is released (see
/// [`send_answers`]).
type Answer = (oneshot::Sender<Result<Applied>>, Result<Applied>);

/// Answers committed jobs. Called after the engine's lock is dropped: a caller answered while
/// the writer still held it would find it taken when its next flag change tries to commit
/// inline, and queue it behind an idle writer.
fn send_answers(answers: &mut Vec<Answer>) {
    for (reply, result) in answers.drain(..) {
        let _ = reply.send(result);
    }
}

/// Most content bytes a message committed on a caller's thread may carry in the transaction.
const INLINE_MAX_BYTES: usize = 64 << 10;

/// Most deliveries of one message committed together on a caller's thread (see
/// [`Writer::submit_many`]); a larger group goes to the writer thread, as one batch.
const INLINE_MAX_JOBS: usize = 16;

/// Most inline content bytes in one transaction, so a burst of large appends cannot make one
/// commit (and the WAL) arbitrarily large.
const MAX_BATCH_BYTES: usize = 32 << 20;

/// What differs between engines around a batch: how its transaction takes the write lock and
/// learns the last outbox id, how it commits, and how a batch of `\Recent` claims skips the
/// flush.
pub(crate) trait Engine {
    /// The connection.
    fn db(&self) -> &dyn Db;
    /// Opens the batch's transaction holding the store's write lock, and returns the last
    /// outbox id committed (by any process or node). `light`: the batch may commit without
    /// waiting for the flush to disk (see [`run`]); each engine applies that where it must —
    /// SQLite's `synchronous` only outside a transaction, PostgreSQL's `SET LOCAL` only inside.
    fn begin(&self, light: bool) -> SqlResult<u64>;
    /// Records `last_id` as the last outbox id where the engine keeps it apart from the rows,
    /// tells other processes sharing the database of the commit (the mailboxes it changed)
    /// where the engine can, and commits.
    fn commit(&self, last_id: u64, mailboxes: &[i64]) -> SqlResult<()>;
    /// Rolls the batch back (best effort: the transaction may already be gone).
    fn rollback(&self);
    /// True when the engine aborted the whole transaction by itself (disk full, I/O error).
    fn aborted(&self) -> bool;
    /// Makes commits wait for the flush to disk again after a light batch (called after its
    /// commit or rollback).
    fn restore_durability(&self) -> SqlResult<()>;
    /// True when a batch of flag changes may commit without waiting for the flush, which
    /// [`Engine::flush_later`] then brings (`[store] flag_sync = "deferred"`; see the embedded
    /// backend's `flush`).
    fn defers_flags(&self) -> bool {
        false
    }
    /// Asks for a flush to disk of everything committed so far, without waiting for it; the
    /// flush publishes the events it covers (`Notifier::flushed`). Called only by engines
    /// whose [`Engine::defers_flags`] is true.
    fn flush_later(&self) {}
    /// True when a small batch (a flag change, or one message to a few recipients) may commit
    /// on the caller's thread, an async runtime's: its statements do not block on the runtime
    /// (PostgreSQL's engine does), and its flush, if any, is a local disk's (see the module
    /// doc).
    fn commits_inline(&self) -> bool {
        false
    }
}

/// What the writer thread and inline commits share.
struct Core {
    /// The engine; its lock is the one writer. The thread drops it when it ends, which closes
    /// the connection (and so ends the engine's helper threads).
    engine: Mutex<Option<Box<dyn Engine + Send>>>,
    shared: Arc<Shared>,
    /// Set when a commit left the engine unsafe to use (see [`commit_light`]): no batch runs
    /// after it, and the thread ends.
    stopped: AtomicBool,
    /// Moving average of the last durable commits' time, in µs (`u64::MAX` before the first):
    /// whether one may commit on a caller's runtime thread (see the module doc).
    durable_micros: AtomicU64,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

impl Core {
    fn lock(&self) -> MutexGuard<'_, Option<Box<dyn Engine + Send>>> {
        self.engine.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a durable batch, and keeps how long it took (flush included) in the average.
    fn commit_durable(&self, engine: &dyn Engine, batch: &mut Vec<Job>, answers: &mut Vec<Answer>) {
        let started = Instant::now();
        commit_batch(engine, &self.shared, batch, Mode::Durable, answers);
        let took = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let old = self.durable_micros.load(Ordering::Relaxed);
        // Weighs the newest a quarter: a disk that slows down shows within a few commits.
        let average = if old == u64::MAX {
            took
        } else {
            (old / 4).saturating_mul(3).saturating_add(took / 4)
        };
        self.durable_micros.store(average, Ordering::Relaxed);
    }

    /// True while durable commits are quick enough to run one on a caller's runtime thread.
    fn flushes_quickly(&self) -> bool {
        u128::from(self.durable_micros.load(Ordering::Relaxed))
            < self.shared.config.inline_commit_budget.as_micros()
    }
}

/// How a batch commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Answered after its commit is on disk.
    Durable,
    /// Only `\Recent` claims: committed without waiting for the flush; nothing to publish,
    /// and losing a claim to a power cut only shows those messages as recent again, which
    /// RFC 3501 §2.3.2 prefers when in doubt.
    Light,
    /// Flag changes (and claims): answered after the commit, flushed soon after by
    /// [`Engine::flush_later`]; their events are hidden from the outbox's readers until then.
    Deferred,
}

/// Runs until every sender is gone and the queue is drained, or a commit stopped the writer.
fn run(core: &Core, mut rx: mpsc::Receiver<Vec<Job>>) {
    let shared = &*core.shared;
    let max = shared.config.max_batch.max(1);
    let mut batch: Vec<Job> = Vec::with_capacity(max);
    let mut carry: Option<Vec<Job>> = None;
    let mut answers: Vec<Answer> = Vec::with_capacity(max);
    loop {
        let first = match carry.take() {
            Some(jobs) => jobs,
            None => match rx.blocking_recv() {
                Some(jobs) => jobs,
                None => break,
            },
        };
        // Jobs queued together (one message to several recipients, at most LMTP's 1,000) stay
        // in one batch, even past the limits.
        let mut bytes: usize = first.iter().map(Job::weight).sum();
        batch.extend(first);
        while batch.len() < max {
            match rx.try_recv() {
                Ok(jobs) => {
                    let weight: usize = jobs.iter().map(Job::weight).sum();
                    if bytes + weight > MAX_BATCH_BYTES || batch.len() + jobs.len() > max {
                        carry = Some(jobs);
                        break;
                    }
                    bytes += weight;
                    batch.extend(jobs);
                }
                Err(_) => break,
            }
        }
        let guard = core.lock();
        let Some(engine) = guard.as_deref() else {
            break;
        };
        if core.stopped.load(Ordering::Acquire) {
            break;
        }
        // `\Recent` claims, which come with almost every SELECT and new-mail update, and flag
        // changes where the engine defers their flush, commit first without waiting for it,
        // and their callers are answered; the rest commits durably after them, and its fsync
        // covers theirs too. Reordering a batch is sound: its jobs were queued concurrently,
        // none waiting for another's answer. An engine that defers nothing splits no batch:
        // only one of nothing but claims goes light, and a claim beside a durable job rides
        // along with it.
        let defers = engine.defers_flags();
        let light = |j: &Job| match j.op {
            Op::ClaimRecent { .. } => true,
            Op::StoreFlags { .. } => defers,
            _ => false,
        };
        if shared.config.durable && batch.iter().any(light) && (defers || batch.iter().all(light)) {
            let (mut first, rest): (Vec<Job>, Vec<Job>) = batch.drain(..).partition(light);
            batch = rest;
            let mode = if first.iter().all(|j| matches!(j.op, Op::ClaimRecent { .. })) {
                Mode::Light
            } else {
                Mode::Deferred
            };
            let stop = commit_light(engine, shared, &mut first, mode, &mut answers);
            if stop {
                core.stopped.store(true, Ordering::Release);
                drop(guard);
                send_answers(&mut answers);
                break;
            }
            // Their callers do not wait for the durable part's flush.
            if !batch.is_empty() {
                send_answers(&mut answers);
            }
        }
        if !batch.is_empty() {
            core.commit_durable(engine, &mut batch, &mut answers);
        }
        drop(guard);
        send_answers(&mut answers);
    }
    *core.lock() = None;
    tracing::debug!("store writer stopped");
}

/// Commits a batch of claims and flag changes without waiting for the flush, then asks for
/// the flush. True when the writer must stop.
fn commit_light(
    engine: &dyn Engine,
    shared: &Shared,
    batch: &mut Vec<Job>,
    mode: Mode,
    answers: &mut Vec<Answer>,
) -> bool {
    let deferred = commit_batch(engine, shared, batch, mode, answers);
    if let Err(e) = engine.restore_durability() {
        // Every later commit would lose its durability: stop rather than go on.
        tracing::error!(error = %e, "cannot restore synchronous = FULL; stopping the writer");
        return true;
    }
    if deferred {
        engine.flush_later();
    }
    false
}

fn insert_events(
    conn: &dyn Db,
    events: &mut [Event],
    next_id: &mut u64,
    written: &mut Vec<StoredEvent>,
) -> SqlResult<()> {
    let mut stmt = conn.prepare_cached("INSERT INTO outbox (id, event) VALUES (?1, ?2)")?;
    for e in events.iter_mut() {
        debug_assert!(
            e.validate().is_ok(),
            "the store generated an invalid event: {:?}\n{e:?}",
            e.validate()
        );
        *next_id += 1;
        e.set_herald_id(*next_id);
        let json = e.to_json();
        stmt.execute(params![*next_id as i64, json])?;
        written.push(StoredEvent { id: *next_id, json });
    }
    Ok(())
}

/// Drops events of groups turned off (`[events] groups`) and writes the rest to the outbox.
fn generate(
    conn: &dyn Db,
    shared: &Shared,
    events: &mut Vec<Event>,
    next_id: &mut u64,
    written: &mut Vec<StoredEvent>,
) -> SqlResult<()> {
    events.retain(|e| shared.config.generates(&e.event));
    insert_events(conn, events, next_id, written)
}

/// Unlinks files of blobs whose last reference went away in an earlier transaction, unless a
/// row for the same content came back. Runs under the write lock (see `blobs`).
fn empty_trash(conn: &dyn Db, shared: &Shared) -> SqlResult<()> {
    let Some(dir) = &shared.blobs else {
        return Ok(());
    };
    let shas: Vec<Vec<u8>> = conn
        .prepare_cached("SELECT sha256 FROM blob_trash LIMIT 256")?
        .query_map((), |r| r.get(0))?
        .collect::<SqlResult<_>>()?;
    for sha in shas {
        let live: bool = conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM blobs WHERE sha256 = ?1)")?
            .query_row([&sha], |r| r.get(0))?;
        if let (false, Ok(key)) = (live, <[u8; 32]>::try_from(sha.as_slice()))
            && let Err(e) = dir.remove(&key)
        {
            tracing::warn!("cannot remove blob file: {e}");
            continue;
        }
        conn.prepare_cached("DELETE FROM blob_trash WHERE sha256 = ?1")?
            .execute([&sha])?;
    }
    Ok(())
}

/// Runs `f` inside the savepoint `name`: what it wrote stays only if it returns `Ok`. The outer
/// `Err` means the savepoint itself could not be opened, rolled back or released; the batch
/// transaction is then in an unknown state and must fail as a whole.
fn in_savepoint<T, E>(
    conn: &dyn Db,
    name: &str,
    f: impl FnOnce() -> std::result::Result<T, E>,
) -> SqlResult<std::result::Result<T, E>> {
    conn.execute_batch(&format!("SAVEPOINT {name}"))?;
    match f() {
        Ok(v) => {
            conn.execute_batch(&format!("RELEASE {name}"))?;
            Ok(Ok(v))
        }
        Err(e) => {
            conn.execute_batch(&format!("ROLLBACK TO {name}"))?;
            conn.execute_batch(&format!("RELEASE {name}"))?;
            Ok(Err(e))
        }
    }
}

/// Writes the record of a failed operation (QuotaExceed), which commits although the operation
/// rolled back (RFC 5423 §4.1), and returns the operation's error.
///
/// The record is atomic with the writer's id cursor: it is written in its own savepoint, so
/// either all its rows are in the batch and `next_id` and the error's `event_id` name them, or
/// none is and both stay where they were. A failure part-way through a record (a row written,
/// then an error) must not leave that row behind: the caller would be told no record exists,
/// `next_id` would hand its id to the next operation of the batch, and that operation would
/// fail on the outbox's primary key. Failing to record does not change the operation's error:
/// the caller is still told why the operation failed, with `event_id` 0.
fn record_failure(
    conn: &dyn Db,
    shared: &Shared,
    mut failed: ops::Failed,
    next_id: &mut u64,
    written: &mut Vec<StoredEvent>,
    tally: &mut Vec<EventType>,
) -> SqlResult<StoreError> {
    if failed.events.is_empty() {
        return Ok(failed.error);
    }
    let saved = *next_id;
    let recorded = in_savepoint(conn, "record", || {
        generate(conn, shared, &mut failed.events, next_id, written)
    })?;
    match recorded {
        Ok(()) => {
            tally.extend(failed.events.iter().map(|e| e.event.clone()));
            if let StoreError::OverQuota { event_id, .. } = &mut failed.error {
                *event_id = failed
                    .events
                    .first()
                    .and_then(|e| e.herald_id())
                    .unwrap_or(0);
            }
        }
        Err(e) => {
            *next_id = saved;
            tracing::error!("cannot record the failure ({}): {e}", failed.error);
        }
    }
    Ok(failed.error)
}

fn fail_all(batch: &mut Vec<Job>, why: &str) {
    tracing::error!("store transaction failed: {why}");
    herald_metrics::global().commit_failed();
    for job in batch.drain(..) {
        let _ = job.reply.send(Err(StoreError::Corrupt(format!(
            "transaction failed: {why}"
        ))));
    }
}

struct Outcome {
    result: std::result::Result<(Applied, Vec<i64>), StoreError>,
}

/// Runs and commits one batch, and adds its callers' answers to `answers` (failures are
/// answered at once). True when it committed without the flush something that needs one (flag
/// changes, or events to publish).
///
/// The jobs first run in the transaction itself, without a savepoint each: SQLite copies
/// every page a savepoint's statements change into the savepoint's journal first, which
/// profiles of one writer delivering put above a tenth of the writer's instructions, and
/// PostgreSQL spends two round trips per job on it. Operations rarely fail; when one does, the
/// whole transaction is rolled back and the batch runs again with a savepoint per job, so
/// that the failing one rolls back alone and its failure is recorded (QuotaExceed). An
/// operation writes nothing but rows and content-addressed blob files, so running it again
/// after a rollback is running it once.
fn commit_batch(
    engine: &dyn Engine,
    shared: &Shared,
    batch: &mut Vec<Job>,
    mode: Mode,
    answers: &mut Vec<Answer>,
) -> bool {
    if let Some(deferred) = commit_jobs(engine, shared, batch, mode, false, answers) {
        return deferred;
    }
    tracing::debug!(
        jobs = batch.len(),
        "an operation of the batch failed; running the batch again, a savepoint per operation"
    );
    commit_jobs(engine, shared, batch, mode, true, answers).unwrap_or(false)
}

/// [`commit_batch`], each job in a savepoint of its own when `savepoints`. Without them, `None`
/// when a job failed: the transaction was rolled back, nobody was answered, and the batch is
/// the caller's to run again.
fn commit_jobs(
    engine: &dyn Engine,
    shared: &Shared,
    batch: &mut Vec<Job>,
    mode: Mode,
    savepoints: bool,
    answers: &mut Vec<Answer>,
) -> Option<bool> {
    let started = Instant::now();
    let prepared = engine.begin(mode != Mode::Durable).and_then(|id| {
        empty_trash(engine.db(), shared)?;
        Ok(id)
    });
    let mut next_id = match prepared {
        Ok(id) => id,
        Err(e) => {
            engine.rollback();
            fail_all(batch, &e.to_string());
            return Some(false);
        }
    };
    let conn = engine.db();
    let before = next_id;
    // The rows this transaction wrote to the outbox; those of a rolled-back savepoint are
    // dropped again below (their ids lie above `next_id` once it is reset).
    let mut written: Vec<StoredEvent> = Vec::new();
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(batch.len());
    // Events of failed operations that commit anyway (QuotaExceed), for the metrics.
    let mut recorded: Vec<EventType> = Vec::new();
    for job in batch.iter() {
        let saved = next_id;
        let mut run = || {
            let mut done = ops::apply(conn, shared, &job.ctx, &job.op)?;
            generate(conn, shared, &mut done.events, &mut next_id, &mut written)
                .map_err(ops::Failed::from)?;
            Ok((
                Applied {
                    output: done.output,
                    events: done.events,
                },
                done.mailboxes,
            ))
        };
        let applied = if savepoints {
            in_savepoint(conn, "op", run)
        } else {
            match run() {
                Ok(applied) => Ok(Ok(applied)),
                Err(_) => {
                    // Its writes cannot be undone alone: undo the transaction.
                    engine.rollback();
                    return None;
                }
            }
        };
        let outcome = match applied {
            Ok(Ok(applied)) => Ok(Ok(applied)),
            Ok(Err(failed)) => {
                // Rolled back with its savepoint: none of its ids were used.
                next_id = saved;
                written.retain(|e| e.id <= next_id);
                let failure = record_failure(
                    conn,
                    shared,
                    failed,
                    &mut next_id,
                    &mut written,
                    &mut recorded,
                );
                written.retain(|e| e.id <= next_id);
                failure.map(Err)
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok(result) => outcomes.push(Outcome { result }),
            Err(e) => {
                engine.rollback();
                fail_all(batch, &e.to_string());
                return Some(false);
            }
        }
        if engine.aborted() {
            // SQLite aborted the whole transaction (disk full, I/O error): nothing of the
            // batch is committed, so no caller may be told otherwise.
            fail_all(batch, "the database aborted the transaction");
            return Some(false);
        }
    }
    let mut changed: Vec<i64> = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().ok())
        .flat_map(|(_, ids)| ids.iter().copied())
        .collect();
    changed.sort_unstable();
    changed.dedup();
    // A light batch that wrote events (claims write none) publishes like a deferred one.
    let deferred = mode == Mode::Deferred || (mode == Mode::Light && !written.is_empty());
    if deferred {
        shared.notifier.defer_begin(before);
    }
    if let Err(e) = engine.commit(next_id, &changed) {
        engine.rollback();
        if deferred {
            shared.notifier.defer_end(before, None);
        }
        fail_all(batch, &e.to_string());
        return Some(false);
    }
    let metrics = herald_metrics::global();
    metrics.commit(batch.len(), started.elapsed());
    let committed = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().ok())
        .flat_map(|(applied, _)| applied.events.iter().map(|e| &e.event));
    for event in committed.chain(&recorded) {
        metrics.event_committed(event);
    }
    // Retention removed the oldest events: memory must not serve them either, not even to a
    // reader woken by this very commit.
    for o in &outcomes {
        if let Ok((applied, _)) = &o.result
            && let Output::Pruned(report) = &applied.output
            && report.pruned > 0
        {
            shared
                .notifier
                .forget_before(report.oldest.unwrap_or(next_id + 1));
        }
    }
    debug_assert_eq!(written.last().map_or(before, |e| e.id), next_id);
    if deferred {
        shared.notifier.defer_end(before, Some(written));
    } else if mode == Mode::Durable {
        shared.notifier.committed(before, written);
    }
    shared.notifier.mailboxes_changed(changed);
    answers.extend(
        batch
            .drain(..)
            .zip(outcomes)
            .map(|(job, outcome)| (job.reply, outcome.result.map(|(applied, _)| applied))),
    );
    Some(deferred)
}

/// The writer thread seen from the async side: where jobs are queued, and how it is stopped.
#[derive(Debug)]
pub(crate) struct Writer {
    tx: Mutex<Option<mpsc::Sender<Vec<Job>>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    core: Arc<Core>,
}

/// Queued operations beyond this make callers wait (back-pressure instead of unbounded memory).
const QUEUE: usize = 4096;

impl Writer {
    /// Starts the thread `herald-store-writer`, which owns `engine` until it stops.
    pub(crate) fn start(
        engine: impl Engine + Send + 'static,
        shared: Arc<Shared>,
    ) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let core = Arc::new(Core {
            engine: Mutex::new(Some(Box::new(engine))),
            shared,
            stopped: AtomicBool::new(false),
            durable_micros: AtomicU64::new(u64::MAX),
        });
        let thread_core = Arc::clone(&core);
        let thread = std::thread::Builder::new()
            .name("herald-store-writer".into())
            .spawn(move || run(&thread_core, rx))?;
        Ok(Writer {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            core,
        })
    }

    /// The queue's sender, unless the writer was closed.
    fn sender(&self) -> Option<mpsc::Sender<Vec<Job>>> {
        self.tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Queues one mutation and waits for its commit (or failure).
    pub(crate) async fn submit(&self, ctx: SessionContext, op: Op) -> Result<Applied> {
        let (reply, rx) = oneshot::channel();
        self.send(vec![Job { ctx, op, reply }]).await?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Commits mutations submitted together — one message delivered to several recipients —
    /// in one transaction when they fit one batch, and so with one flush instead of one per
    /// recipient; each keeps its own outcome (a failure rolls back that one alone, see
    /// [`commit_batch`]). Outcomes are in the order of `ops`.
    pub(crate) async fn submit_many(&self, ops: Vec<(SessionContext, Op)>) -> Vec<Result<Applied>> {
        let (jobs, answers): (Vec<Job>, Vec<_>) = ops
            .into_iter()
            .map(|(ctx, op)| {
                let (reply, rx) = oneshot::channel();
                (Job { ctx, op, reply }, rx)
            })
            .unzip();
        // Jobs the writer never took are dropped with their replies, whose receivers then
        // answer `Closed`: the outcome of sending is in every answer already.
        let _ = self.send(jobs).await;
        let mut out = Vec::with_capacity(answers.len());
        for rx in answers {
            out.push(rx.await.unwrap_or(Err(StoreError::Closed)));
        }
        out
    }

    /// Commits `jobs` on this thread if [`Writer::commit_inline`] may, or queues them as one
    /// entry, which the writer takes into one batch; their callers are answered through their
    /// jobs' replies either way.
    async fn send(&self, jobs: Vec<Job>) -> Result<()> {
        let tx = self.sender().ok_or(StoreError::Closed)?;
        let Some(jobs) = self.commit_inline(&tx, jobs) else {
            return Ok(());
        };
        tx.send(jobs).await.map_err(|_| StoreError::Closed)
    }

    /// Commits a flag change, or one message appended or delivered (to up to
    /// [`INLINE_MAX_JOBS`] recipients), on this thread when the engine allows it, nothing is
    /// queued and the writer thread is between batches (see the module doc); gives the jobs
    /// back otherwise.
    /// Order holds: a caller's earlier jobs were answered before it sent these, so they
    /// are committed (an `enqueue`d claim may still be in flight; it names its UIDs and
    /// touches no flags, so it commits as well after as before); what is queued, these
    /// join behind.
    fn commit_inline(&self, tx: &mpsc::Sender<Vec<Job>>, jobs: Vec<Job>) -> Option<Vec<Job>> {
        let appends = jobs.iter().all(|j| matches!(j.op, Op::Append { .. }));
        let mode = match jobs.as_slice() {
            [job] if matches!(job.op, Op::StoreFlags { .. }) => Mode::Deferred,
            _ if appends
                && jobs.len() <= INLINE_MAX_JOBS
                && content_bytes(&jobs) <= INLINE_MAX_BYTES
                && self.core.flushes_quickly() =>
            {
                Mode::Durable
            }
            _ => return Some(jobs),
        };
        if tx.capacity() != tx.max_capacity() || self.core.stopped.load(Ordering::Acquire) {
            return Some(jobs);
        }
        let Ok(guard) = self.core.engine.try_lock() else {
            return Some(jobs);
        };
        let Some(engine) = guard.as_deref() else {
            return Some(jobs);
        };
        let deferrable = engine.defers_flags() && self.core.shared.config.durable;
        if !engine.commits_inline() || (mode == Mode::Deferred && !deferrable) {
            return Some(jobs);
        }
        let mut batch = jobs;
        let mut answers = Vec::with_capacity(batch.len());
        if mode == Mode::Durable {
            self.core.commit_durable(engine, &mut batch, &mut answers);
        } else if commit_light(engine, &self.core.shared, &mut batch, mode, &mut answers) {
            self.core.stopped.store(true, Ordering::Release);
        }
        drop(guard);
        send_answers(&mut answers);
        None
    }

    /// Queues one mutation whose outcome nobody waits for (the record of a `\Recent` claim
    /// already granted, see `recent`): it commits with a later batch, after every job queued
    /// before it. False when the queue is full or closed; the caller then submits it.
    pub(crate) fn enqueue(&self, ctx: SessionContext, op: Op) -> bool {
        let Some(tx) = self.sender() else {
            return false;
        };
        let (reply, _) = oneshot::channel();
        tx.try_send(vec![Job { ctx, op, reply }]).is_ok()
    }

    /// True while jobs are taken: not closed, and the thread running.
    pub(crate) fn is_open(&self) -> bool {
        // The writer drops its receiver when it stops (a failed transaction control), which
        // closes the channel even though the sender is still here.
        !self.core.stopped.load(Ordering::Acquire)
            && self
                .tx
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .is_some_and(|tx| !tx.is_closed())
    }

    /// Takes no more jobs and waits until the queued ones are committed and the thread ended.
    pub(crate) async fn close(&self) {
        drop(
            self.tx
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        join_thread(&self.thread).await;
    }
}

/// Waits, off the runtime, for the thread kept in `slot` to end (once: the handle is taken).
pub(crate) async fn join_thread(slot: &Mutex<Option<std::thread::JoinHandle<()>>>) {
    let thread = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(t) = thread {
        let _ = tokio::task::spawn_blocking(move || t.join()).await;
    }
}
