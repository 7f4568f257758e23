//! Checkpoints off the commit path.
//!
//! SQLite's own policy checkpoints inside the commit that takes the WAL past 1,000 frames: that
//! commit, and every caller queued behind it, waits while pages are copied into the database
//! file and it is fsynced — a few milliseconds once the database is large, every hundred or so
//! deliveries, and a tenth of the writer's time per delivery. Here the writer's WAL hook only
//! signals a thread of its own, which checkpoints (PASSIVE: it never blocks the writer or the
//! readers) on its own connection, at most every [`PAUSE`].
//!
//! A PASSIVE checkpoint copies the frames written before it began; the WAL starts over from
//! its beginning only when a commit finds every frame copied and no reader on an older
//! snapshot, which a busy writer rarely leaves room for. So past [`HARD_FRAMES`] the writer
//! checkpoints itself, as SQLite would: with the thread having copied most frames already, what
//! is left is short, and the next commit restarts the WAL, which stays bounded.

use super::schema;
use crate::error::Result;
use rusqlite::Connection;
use std::os::raw::c_int;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, TrySendError};
use std::time::Duration;

/// WAL frames (pages) past which a commit asks the thread for a checkpoint: SQLite's default.
const SOFT_FRAMES: c_int = 1000;
/// WAL frames past which the writer checkpoints itself (about 40 MiB of WAL).
pub(crate) const HARD_FRAMES: c_int = 10_000;
/// Least time between two checkpoints of the thread: each ends in an fsync of the database.
const PAUSE: Duration = Duration::from_millis(100);

/// Installs the WAL hook on the writer's connection and starts the checkpoint thread; the
/// thread ends when the connection (and so the hook) is dropped.
pub(crate) fn start(
    writer: &mut Connection,
    path: &Path,
    durable: bool,
    busy: Duration,
) -> Result<std::thread::JoinHandle<()>> {
    let conn = schema::connect(path, durable, busy, false)?;
    let (tx, rx) = mpsc::sync_channel::<()>(1);
    writer.wal_hook(Some(
        move |wal: &mut rusqlite::hooks::Wal, frames: c_int| {
            if frames >= HARD_FRAMES {
                match wal.checkpoint_v2(rusqlite::wal::CheckpointMode::PASSIVE) {
                    Ok(_) => {}
                    // The thread is checkpointing: only one may at a time. What it copies, the
                    // next commit's attempt need not; nothing is wrong, so nothing to warn of.
                    Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {
                        tracing::debug!(frames, "checkpoint thread busy; the next commit retries");
                    }
                    Err(e) => tracing::warn!(error = %e, frames, "writer's own checkpoint failed"),
                }
            } else if frames >= SOFT_FRAMES {
                match tx.try_send(()) {
                    Ok(()) | Err(TrySendError::Full(())) => {}
                    // The thread is gone (it logged why): SQLite's policy, in the commit.
                    Err(TrySendError::Disconnected(())) => {
                        let _ = wal.checkpoint_v2(rusqlite::wal::CheckpointMode::PASSIVE);
                    }
                }
            }
            Ok(())
        },
    ))?;
    Ok(std::thread::Builder::new()
        .name("herald-store-checkpoint".into())
        .spawn(move || run(&conn, &rx))?)
}

fn run(conn: &Connection, rx: &Receiver<()>) {
    // Ends when the writer's connection, which holds the sender in its hook, is dropped.
    while rx.recv().is_ok() {
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        }) {
            Ok((log, copied)) => tracing::trace!(log, copied, "checkpoint"),
            Err(e) => tracing::warn!(error = %e, "background checkpoint failed"),
        }
        std::thread::sleep(PAUSE);
    }
    tracing::debug!("checkpoint thread stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SessionContext, Store, StoreConfig};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_busy_writer_keeps_the_wal_bounded_and_the_store_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = StoreConfig::new(dir.path());
        config.durable = false;
        let store = Store::open(config).await.unwrap();
        store
            .add_user(&SessionContext::admin_cli(), "alice", "pw", false)
            .await
            .unwrap();
        let alice = SessionContext::user("imap", "alice");
        // About 12 frames a message: 30,000 frames, three times the writer's own limit,
        // written by 4 appenders at once so commits leave the thread little quiet time.
        let mut tasks = Vec::new();
        for t in 0..4 {
            let (store, alice) = (store.clone(), alice.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..625 {
                    let body = format!(
                        "Subject: {t}/{i}\r\nMessage-ID: <{t}.{i}@x>\r\n\r\n{}\r\n",
                        "z".repeat(2000)
                    );
                    store
                        .append(&alice, "INBOX", body.into_bytes(), &[], None)
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let wal = std::fs::metadata(dir.path().join("herald.db-wal"))
            .unwrap()
            .len();
        let bound = (HARD_FRAMES as u64 + 2_000) * (4096 + 24) + 32;
        assert!(wal <= bound, "WAL of {wal} bytes, bound {bound}");
        assert_eq!(store.mailbox(&alice, "INBOX").await.unwrap().messages, 2500);
        let c = store.check_consistency().await.unwrap();
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        store.close().await;
    }
}
