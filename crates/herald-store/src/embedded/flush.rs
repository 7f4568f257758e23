//! Deferred flushes: flag changes answered before their fsync, their events published after.
//!
//! A STORE (and the `\Recent` claims beside it) is the most frequent write of an IMAP client,
//! and committing each batch of them with `synchronous = FULL` made every one wait for an
//! fsync of the WAL — and every write queued behind it for the same. With `[store] flag_sync =
//! "deferred"` (the default) the writer commits a batch of flag changes with `synchronous =
//! NORMAL`, answers its callers at once, and signals this thread, which fsyncs the WAL file
//! [`GATHER`] later — unless a durable commit's fsync covered the changes first, which under
//! load is the rule.
//!
//! What that keeps:
//! - **Order.** The WAL is written in commit order and an fsync makes everything written
//!   before it durable, so a power cut loses a suffix of commits, never a change from the
//!   middle; the next durable commit (an APPEND, an EXPUNGE) covers every flag change before
//!   it, and its fsync would alone be enough.
//! - **No event for a change a power cut undoes.** Until a flush covers them the batch's
//!   outbox ids are hidden from every reader of the outbox (`notify`, "what is on disk"): the
//!   dispatcher, the event log and live streams see them only after this thread's fsync (or a
//!   durable commit's) returned.
//!
//! What it gives up: a flag change acknowledged in the last [`GATHER`] before a power cut (not
//! a process crash: the page cache survives a `kill -9`) can be lost, as Dovecot's flag changes
//! can, and a client may then have seen a MODSEQ that the store hands out again.
//! `flag_sync = "commit"` answers a STORE only after its fsync, as every other write.
//!
//! Why a file descriptor of our own: SQLite offers no call that only syncs the WAL, and a
//! durable dummy transaction would write pages to sync. `fdatasync` on any descriptor of the
//! file flushes the file's pages written through SQLite's own.

use crate::sql::Shared;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::time::Duration;

/// How long a flush waits after the first request, so that one fsync covers the flag changes
/// committed meanwhile; an event of a flag change is published this much later (plus the
/// fsync), and this is the window a power cut can lose. One client looping STORE: with 2 ms,
/// 1,867–2,219 STOREs/s at 0.33–0.36 ms of server CPU each; with 10 ms, 2,241–2,254/s at
/// 0.31 ms; an fsync per STORE (`flag_sync = "commit"`), 1,081–1,508/s at 0.38–0.48 ms.
const GATHER: Duration = Duration::from_millis(10);

/// The writer's side: asks the thread for a flush without waiting.
#[derive(Debug)]
pub(crate) struct FlushRequests {
    tx: SyncSender<()>,
    wal: PathBuf,
    shared: Arc<Shared>,
}

impl FlushRequests {
    /// Asks for a flush of what is committed now; one request already waiting covers it too,
    /// because the thread reads what to cover only when it starts. Should the thread be gone
    /// (it cannot stop before this sender is dropped, but a panic would end it), flushes here.
    pub(crate) fn request(&self) {
        if let Err(TrySendError::Disconnected(())) = self.tx.try_send(()) {
            flush(&self.wal, &self.shared, sync_file);
        }
    }
}

/// Starts the thread `herald-store-flush` for the database at `db`; it ends when the
/// requests' sender is dropped, after serving the last request.
pub(crate) fn start(
    db: &Path,
    shared: Arc<Shared>,
) -> std::io::Result<(FlushRequests, std::thread::JoinHandle<()>)> {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let wal = PathBuf::from(wal);
    let (tx, rx) = mpsc::sync_channel::<()>(1);
    let requests = FlushRequests {
        tx,
        wal: wal.clone(),
        shared: Arc::clone(&shared),
    };
    let thread = std::thread::Builder::new()
        .name("herald-store-flush".into())
        .spawn(move || run(&wal, &rx, &shared, sync_file))?;
    Ok((requests, thread))
}

fn sync_file(path: &Path) -> std::io::Result<()> {
    // Opened for each flush: SQLite may truncate the WAL or, with no connection left, delete
    // and create it again; a descriptor kept open could name an old file.
    std::fs::File::open(path)?.sync_data()
}

fn run(
    wal: &Path,
    rx: &Receiver<()>,
    shared: &Shared,
    sync: impl Fn(&Path) -> std::io::Result<()>,
) {
    while rx.recv().is_ok() {
        // Flag changes come in bursts (a client marking a thread read, many sessions at
        // once): one fsync a moment later covers all of them, for a fraction of the CPU.
        std::thread::sleep(GATHER);
        while rx.try_recv().is_ok() {}
        flush(wal, shared, &sync);
    }
    tracing::debug!("flush thread stopped");
}

/// Flushes the WAL if a deferred commit is not yet covered, and publishes what it covers.
fn flush(wal: &Path, shared: &Shared, sync: impl Fn(&Path) -> std::io::Result<()>) {
    // Read before the fsync starts: it covers what was committed until now.
    let Some(target) = shared.notifier.flush_target() else {
        return;
    };
    match sync(wal) {
        Ok(()) => {
            shared.notifier.flushed(target);
            herald_metrics::global().flush(true);
        }
        // The events stay hidden: the next durable commit's fsync, or a later flush,
        // publishes them if it succeeds.
        Err(e) => {
            herald_metrics::global().flush(false);
            tracing::error!(error = %e, path = %wal.display(), "cannot flush the WAL");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreConfig;
    use crate::model::StoredEvent;
    use crate::notify::Notifier;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    fn shared() -> Arc<Shared> {
        Arc::new(Shared {
            config: StoreConfig::new("/nonexistent"),
            blobs: None,
            notifier: Notifier::new(0),
        })
    }

    fn event(id: u64) -> StoredEvent {
        StoredEvent {
            id,
            json: String::new(),
        }
    }

    #[test]
    fn events_of_a_deferred_commit_appear_only_after_a_flush_succeeds() {
        let shared = shared();
        let failing = Arc::new(AtomicBool::new(true));
        let calls = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::sync_channel::<()>(1);
        let thread = {
            let (shared, failing, calls) = (
                Arc::clone(&shared),
                Arc::clone(&failing),
                Arc::clone(&calls),
            );
            std::thread::spawn(move || {
                run(Path::new("wal"), &rx, &shared, |_| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    if failing.load(Ordering::SeqCst) {
                        Err(std::io::Error::other("disk gone"))
                    } else {
                        Ok(())
                    }
                })
            })
        };
        let requests = FlushRequests {
            tx,
            wal: PathBuf::from("wal"),
            shared: Arc::clone(&shared),
        };
        let n = &shared.notifier;
        let outbox = n.outbox();
        let [_, failed_before] = herald_metrics::global().flushes();
        n.defer_begin(0);
        n.defer_end(0, Some(vec![event(1), event(2)]));
        let wait = |what: &str, done: &dyn Fn() -> bool| {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while !done() {
                assert!(std::time::Instant::now() < deadline, "{what}");
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        };
        requests.request();
        wait("no flush tried", &|| calls.load(Ordering::SeqCst) == 1);
        // A failed flush publishes nothing, and is counted.
        assert_eq!(*outbox.borrow(), 0);
        assert!(herald_metrics::global().flushes()[1] > failed_before);
        assert_eq!(n.visible(), 0);
        assert_eq!(n.recent_after(0, 10).map(|e| e.len()), Some(0));

        failing.store(false, Ordering::SeqCst);
        requests.request();
        wait("never published", &|| *outbox.borrow() == 2);
        assert_eq!(n.visible(), u64::MAX);
        assert_eq!(n.recent_after(0, 10).map(|e| e.len()), Some(2));
        drop(requests);
        thread.join().unwrap();
    }
}
