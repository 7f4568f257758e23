//! The embedded backend: SQLite (bundled, via `rusqlite`) in the data directory.
//!
//! Why SQLite: it is a proven embedded engine with real multi-table ACID transactions, so a
//! mailbox change and its outbox rows commit atomically in one transaction; its single writer
//! makes outbox ids commit-ordered for free; WAL mode lets readers run beside the writer; its
//! file locking lets the CLI and the server share a data directory safely; and SQL gives the
//! IMAP metadata queries (UID ranges, MODSEQ, flags) without hand-built indexes. Measured on
//! this machine (STACK §5) a durable commit costs one WAL fsync, so throughput comes from
//! group commit (`writer.rs`), not from relaxing durability; only flag changes may be answered
//! before their fsync (`flush`), and their events still wait for it. redb and fjall were the runners-up
//! (KV only, every index hand-built); they could sit behind the same `Backend` trait.
//!
//! Layout: `DATA/herald.db` (+ `-wal`, `-shm`) and `DATA/blobs/` (large message files, see
//! `blobs`). Threads: one writer thread owning the write connection; reads on a small pool of
//! read-only connections via `spawn_blocking`.

mod checkpoint;
mod flush;
pub(crate) mod schema;

use crate::backend::{Answer, Applied, Backend, Op, Query};
use crate::blobs::{self, BlobDir, BlobRef};
use crate::config::StoreConfig;
use crate::context::SessionContext;
use crate::error::{Result, StoreError};
use crate::notify::Notifier;
use crate::sql::{self, Db, Shared, reads, writer};
use rusqlite::Connection;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::watch;

/// The database file inside the data directory.
pub(crate) const DB_FILE: &str = "herald.db";
/// Read connections, and reads running at once. Reads beyond this wait (asynchronously, on no
/// thread) for a connection: opening a connection per read parses the schema, runs the
/// pragmas and empties the statement cache, which once cost more than the reads themselves.
const READ_POOL: usize = 8;
/// Orphan blob files younger than this are left alone at open: they may belong to a delivery
/// in flight in another process.
const ORPHAN_AGE: Duration = Duration::from_secs(3600);

/// The SQLite files and the pool of read connections.
#[derive(Debug)]
struct Files {
    db_path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    /// One permit per read connection: a read holds one from before it leaves the runtime
    /// until its connection is back in `readers`.
    read_slots: tokio::sync::Semaphore,
}

/// The SQLite backend.
#[derive(Debug)]
pub struct Embedded {
    shared: Arc<Shared>,
    files: Arc<Files>,
    writer: writer::Writer,
    /// The checkpoint thread (`checkpoint`), joined at close after the writer.
    checkpointer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The flush thread (`flush`), joined at close after the writer: it flushes what the
    /// writer's last deferred batches left.
    flusher: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Creates the data directory readable by its owner only (0700), and tightens one that an
/// older Herald or an operator left open to others: it holds password hashes and all mail.
pub(crate) fn private_dir(path: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)?;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", mode & 0o777),
            "the data directory was open to other users; making it 0700"
        );
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

impl Embedded {
    /// Queues `op` for the writer without waiting for its commit (see
    /// [`writer::Writer::enqueue`]); false when it could not be queued.
    pub(crate) fn enqueue(&self, ctx: SessionContext, op: Op) -> bool {
        self.writer.enqueue(ctx, op)
    }

    /// Opens (creating if needed) the store in `config.path` and starts the writer thread.
    pub async fn open(config: StoreConfig) -> Result<Embedded> {
        tokio::task::spawn_blocking(move || Embedded::open_blocking(config))
            .await
            .map_err(|_| StoreError::Closed)?
    }

    fn open_blocking(config: StoreConfig) -> Result<Embedded> {
        private_dir(&config.path)?;
        let db_path = config.path.join(DB_FILE);
        let mut conn = schema::connect(&db_path, config.durable, config.busy_timeout, false)?;
        schema::migrate(&mut conn)?;
        let blobs = BlobDir::open(&config.path)?;
        collect_orphans(&conn, &blobs)?;
        let last_id: i64 = conn.query_row(schema::SELECT_LAST_EVENT_ID, [], |r| r.get(0))?;
        let shared = Arc::new(Shared {
            config,
            blobs: Some(blobs),
            notifier: Notifier::new(last_id as u64),
        });
        let files = Arc::new(Files {
            db_path,
            readers: Mutex::new(Vec::new()),
            read_slots: tokio::sync::Semaphore::new(READ_POOL),
        });
        let checkpointer = checkpoint::start(
            &mut conn,
            &files.db_path,
            shared.config.durable,
            shared.config.busy_timeout,
        )?;
        let (flushes, flusher) = if shared.config.durable && shared.config.defer_flag_sync {
            let (requests, thread) = flush::start(&files.db_path, Arc::clone(&shared))?;
            (Some(requests), Some(thread))
        } else {
            (None, None)
        };
        let engine = Sqlite { conn, flushes };
        let writer = writer::Writer::start(engine, Arc::clone(&shared))?;
        tracing::debug!(path = %shared.config.path.display(), last_id, "store opened");
        Ok(Embedded {
            shared,
            files,
            writer,
            checkpointer: Mutex::new(Some(checkpointer)),
            flusher: Mutex::new(flusher),
        })
    }

    fn read_conn(shared: &Shared, files: &Files) -> Result<Connection> {
        let pooled = files
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match pooled {
            Some(c) => Ok(c),
            None => schema::connect(
                &files.db_path,
                shared.config.durable,
                shared.config.busy_timeout,
                true,
            ),
        }
    }
}

/// Runs the statements of one read in one transaction: they see one snapshot (a mailbox row
/// and its messages agree even when a commit lands between them), and SQLite takes its read
/// lock — two `fcntl` calls, and a reload of pages when the database changed — once per read
/// instead of once per statement.
fn in_snapshot<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    conn.prepare_cached("BEGIN")?.execute([])?;
    let answer = f(conn);
    // Read-only: ending it either way changes nothing.
    let ended = conn
        .prepare_cached("ROLLBACK")
        .and_then(|mut s| s.execute([]));
    let value = answer?;
    ended?;
    Ok(value)
}

/// Removes blob files no row refers to (crash between file write and commit), and stale
/// temp files.
fn collect_orphans(conn: &Connection, blobs: &BlobDir) -> Result<()> {
    let mut stmt =
        conn.prepare("SELECT EXISTS (SELECT 1 FROM blobs WHERE sha256 = ?1 AND data IS NULL)")?;
    let mut removed = 0usize;
    for (path, sha, age) in blobs.scan()? {
        if age < ORPHAN_AGE {
            continue;
        }
        let referenced = match sha {
            Some(sha) => stmt.query_row([&sha[..]], |r| r.get::<_, bool>(0))?,
            None => false,
        };
        if !referenced {
            std::fs::remove_file(&path)?;
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(removed, "removed orphan blob files");
    }
    Ok(())
}

impl Backend for Embedded {
    async fn submit(&self, ctx: SessionContext, op: Op) -> Result<Applied> {
        self.writer.submit(ctx, op).await
    }

    async fn submit_many(&self, ops: Vec<(SessionContext, Op)>) -> Vec<Result<Applied>> {
        self.writer.submit_many(ops).await
    }

    async fn query(&self, q: Query) -> Result<Answer> {
        if let Query::EventsAfter { after, limit } = q
            && let Some(events) = self.shared.notifier.recent_after(after, limit)
        {
            return Ok(Answer::Events(events));
        }
        let bounded = q.is_bounded();
        let shared = Arc::clone(&self.shared);
        // Never closed; without a permit the pool only grows past its size for this read.
        let files = Arc::clone(&self.files);
        let permit = self.files.read_slots.acquire().await.ok();
        let run = move || {
            let conn = Embedded::read_conn(&shared, &files)?;
            let answer = in_snapshot(&conn, |c| reads::answer(c, &shared, q));
            // A connection whose transaction could not be ended would pin its snapshot (and
            // hold back checkpoints) for as long as it stayed pooled.
            if conn.is_autocommit() {
                let mut pool = files.readers.lock().unwrap_or_else(PoisonError::into_inner);
                if pool.len() < READ_POOL {
                    pool.push(conn);
                }
            }
            answer
        };
        // A bounded read (one mailbox row, its changes, a few messages' metadata) takes tens
        // of microseconds from SQLite's page cache, less than handing it to a blocking
        // thread and back costs; those run here. Reads whose size the client decides (a
        // whole mailbox, message bodies, event batches) go to the blocking pool.
        let answer = if bounded {
            run()
        } else {
            tokio::task::spawn_blocking(run)
                .await
                .map_err(|_| StoreError::Closed)?
        };
        drop(permit);
        answer
    }

    async fn put_blob(&self, data: Vec<u8>) -> Result<BlobRef> {
        if data.len() <= self.shared.config.inline_blob_max {
            return Ok(BlobRef {
                sha256: blobs::sha256(&data),
                data: Arc::new(data),
                on_file: false,
            });
        }
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || {
            let sha256 = blobs::sha256(&data);
            if let Some(dir) = &shared.blobs {
                dir.write(&sha256, &data)?;
            }
            Ok(BlobRef {
                sha256,
                data: Arc::new(data),
                on_file: true,
            })
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }

    fn outbox_watch(&self) -> watch::Receiver<u64> {
        self.shared.notifier.outbox()
    }

    fn mailbox_watch(&self, mailbox_id: i64) -> watch::Receiver<u64> {
        self.shared.notifier.mailbox(mailbox_id)
    }

    fn is_open(&self) -> bool {
        self.writer.is_open()
    }

    /// One process serves a data directory: the caller's own exclusion is all there is.
    async fn try_lock(&self, _name: &str) -> Result<Option<crate::backend::ClusterLock>> {
        Ok(Some(crate::backend::ClusterLock::Local))
    }

    async fn close(&self) {
        self.writer.close().await;
        // The writer's connection is gone, and with it the hook's sender and the flush
        // requests: both threads end.
        writer::join_thread(&self.checkpointer).await;
        writer::join_thread(&self.flusher).await;
        self.files
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// The writer's connection, with SQLite's way of locking, numbering and committing a batch.
struct Sqlite {
    conn: Connection,
    /// Where deferred flag changes ask for their flush; `None` with `flag_sync = "commit"`
    /// (or a store that never flushes).
    flushes: Option<flush::FlushRequests>,
}

impl writer::Engine for Sqlite {
    fn db(&self) -> &dyn Db {
        &self.conn
    }

    /// `BEGIN IMMEDIATE` takes SQLite's write lock at once, so the id read next stays the
    /// last one until this transaction commits, whichever process writes. A light batch (only
    /// `\Recent` claims) is committed with `synchronous = NORMAL`: losing one to a power cut
    /// only shows those messages as recent again, which RFC 3501 §2.3.2 prefers when in
    /// doubt, and the next durable commit's fsync covers the claim's WAL frames anyway.
    /// SQLite refuses to change the setting inside a transaction, so it is set before.
    fn begin(&self, light: bool) -> sql::Result<u64> {
        let db = self.db();
        if light {
            db.execute_batch("PRAGMA synchronous = NORMAL")?;
        }
        db.execute_batch("BEGIN IMMEDIATE")?;
        Ok(db.query_row(schema::SELECT_LAST_EVENT_ID, (), |r| r.get::<_, i64>(0))? as u64)
    }

    /// The outbox's rows are the record of the last id ([`schema::LAST_EVENT_ID`]).
    /// Other processes on the data directory learn of it by polling (`notify`).
    fn commit(&self, _last_id: u64, _mailboxes: &[i64]) -> sql::Result<()> {
        self.db().execute_batch("COMMIT")
    }

    fn rollback(&self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    fn aborted(&self) -> bool {
        self.conn.is_autocommit()
    }

    fn restore_durability(&self) -> sql::Result<()> {
        self.db().execute_batch("PRAGMA synchronous = FULL")
    }

    fn defers_flags(&self) -> bool {
        self.flushes.is_some()
    }

    fn flush_later(&self) {
        if let Some(f) = &self.flushes {
            f.request();
        }
    }

    /// A deferred flag change is a few statements and a WAL append in the page cache, short
    /// enough for a runtime thread; so is one small message and its flush while the disk is
    /// quick (`StoreConfig::inline_commit_budget`). (Another process holding SQLite's write
    /// lock, the CLI's short transactions, makes `BEGIN IMMEDIATE` wait there as it would on
    /// the thread.)
    fn commits_inline(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_pair(dir: &std::path::Path) -> (Connection, Connection) {
        let path = dir.join("t.db");
        let busy = Duration::from_secs(1);
        let writer = schema::connect(&path, false, busy, false).unwrap();
        writer
            .execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);")
            .unwrap();
        let reader = schema::connect(&path, false, busy, true).unwrap();
        (writer, reader)
    }

    #[test]
    fn the_statements_of_one_read_see_one_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, reader) = open_pair(dir.path());
        let count = |c: &Connection| -> i64 {
            c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                .unwrap()
        };
        let (before, after) = in_snapshot(&reader, |c| {
            let before = count(c);
            // Another connection commits between the read's two statements.
            writer.execute("INSERT INTO t VALUES (2)", []).unwrap();
            Ok((before, count(c)))
        })
        .unwrap();
        assert_eq!((before, after), (1, 1));
        // The next read sees the commit: the snapshot ended with the read.
        assert!(reader.is_autocommit());
        assert_eq!(count(&reader), 2);
    }

    #[test]
    fn a_light_batch_commits_without_the_flush_and_the_next_one_with_it() {
        use crate::sql::writer::Engine as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut conn = schema::connect(&path, true, Duration::from_secs(1), false).unwrap();
        schema::migrate(&mut conn).unwrap();
        let engine = Sqlite {
            conn,
            flushes: None,
        };
        let level = |e: &Sqlite| -> i64 {
            e.conn
                .query_row("PRAGMA synchronous", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(level(&engine), 2, "FULL by default");
        // 1 = NORMAL: a WAL commit without fsync. Setting it inside the transaction, as the
        // writer once did, fails and left every claim batch flushed.
        engine.begin(true).unwrap();
        assert_eq!(level(&engine), 1);
        engine.commit(0, &[]).unwrap();
        engine.restore_durability().unwrap();
        assert_eq!(level(&engine), 2);
        engine.begin(false).unwrap();
        assert_eq!(level(&engine), 2);
        engine.rollback();
    }

    /// Durable store, flag changes deferred (the defaults): concurrent STOREs and APPENDs, and
    /// every acknowledged event reaches the outbox's readers, in one dense order, and stays
    /// after a reopen.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deferred_flag_changes_publish_every_event_once_flushed() {
        use crate::{FlagMode, SessionContext, Store};
        use herald_events::UidSet;
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig::new(dir.path());
        assert!(config.durable && config.defer_flag_sync);
        let store = Store::open(config.clone()).await.unwrap();
        store
            .add_user(&SessionContext::admin_cli(), "alice", "pw", false)
            .await
            .unwrap();
        let alice = SessionContext::user("imap", "alice");
        for i in 0..8 {
            let m = format!("Subject: {i}\r\n\r\nbody\r\n").into_bytes();
            store.append(&alice, "INBOX", m, &[], None).await.unwrap();
        }
        let start = store.last_event_id().await.unwrap();
        let mut tasks = Vec::new();
        for t in 0..4u32 {
            let (store, alice) = (store.clone(), alice.clone());
            tasks.push(tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..60u32 {
                    // Each pair of steps sets this task's keyword on one message and clears
                    // it again: every STORE changes something.
                    let mode = if i % 2 == 0 {
                        FlagMode::Add
                    } else {
                        FlagMode::Remove
                    };
                    let uid = UidSet::single(1 + (i / 2) % 8);
                    let flag = format!("$t{t}");
                    let stored = store
                        .store_flags(&alice, "INBOX", &uid, mode, &[flag], None)
                        .await
                        .unwrap();
                    acked.extend(
                        stored
                            .events
                            .iter()
                            .map(|e| (e.herald_id().unwrap(), e.to_json())),
                    );
                    if i % 10 == 9 {
                        let m = format!("Subject: {t}.{i}\r\n\r\nx\r\n").into_bytes();
                        let appended = store.append(&alice, "INBOX", m, &[], None).await.unwrap();
                        acked.extend(
                            appended
                                .events
                                .iter()
                                .map(|e| (e.herald_id().unwrap(), e.to_json())),
                        );
                    }
                }
                // And one that stays, to be found after the reopen.
                let kept = store
                    .store_flags(
                        &alice,
                        "INBOX",
                        &UidSet::single(1 + t),
                        FlagMode::Add,
                        &[format!("$t{t}")],
                        None,
                    )
                    .await
                    .unwrap();
                acked.extend(
                    kept.events
                        .iter()
                        .map(|e| (e.herald_id().unwrap(), e.to_json())),
                );
                acked
            }));
        }
        let mut acked = std::collections::BTreeMap::new();
        for t in tasks {
            acked.extend(t.await.unwrap());
        }
        let last = *acked.keys().last().unwrap();
        assert_eq!(
            acked.len(),
            4 * (61 + 6),
            "one event per STORE and per APPEND"
        );
        // Published without any later write to cover them: the flush thread did.
        let seen = store
            .wait_for_events(last - 1, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(seen, last);
        let rows = store.events_after(start, 10_000).await.unwrap();
        let ids: Vec<u64> = rows.iter().map(|e| e.id).collect();
        assert_eq!(
            ids,
            (start + 1..=last).collect::<Vec<_>>(),
            "dense, in order"
        );
        for row in &rows {
            assert_eq!(acked.get(&row.id), Some(&row.json), "event {}", row.id);
        }
        let alice = &alice;
        let flags = |store: Store| async move {
            let all = store.fetch(alice, "INBOX", None).await.unwrap();
            store.close().await;
            all.into_iter()
                .map(|m| (m.uid, m.flags))
                .collect::<Vec<_>>()
        };
        let before = flags(store).await;
        assert_eq!(before.iter().filter(|(_, f)| !f.is_empty()).count(), 4);
        let store = Store::open(config).await.unwrap();
        assert_eq!(store.last_event_id().await.unwrap(), last);
        assert_eq!(flags(store).await, before);
    }

    #[test]
    fn a_failed_read_ends_its_transaction_too() {
        let dir = tempfile::tempdir().unwrap();
        let (_writer, reader) = open_pair(dir.path());
        let failed: Result<()> = in_snapshot(&reader, |c| {
            c.execute_batch("SELECT * FROM no_such_table")?;
            Ok(())
        });
        assert!(failed.is_err());
        assert!(
            reader.is_autocommit(),
            "the connection must go back to the pool clean"
        );
    }
}
