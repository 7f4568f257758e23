//! The server's own event log: every committed event, in outbox order, appended to a JSON-lines
//! file (DESIGN §3: `DATA/events.jsonl`), and optionally a one-line summary of each on standard
//! output so a newcomer sees events as they happen.
//!
//! The file is its own cursor: on start the log reads the `vnd.herald.id` of its last complete
//! line (of the newest rotated file when the current one is empty) and continues after it, and a
//! torn last line (a crash mid-write) is cut off first. The file needs no fsync of its own per
//! batch (that was one more fsync per delivery): it is written as events commit and fsynced at
//! most once per [`SYNC_EVERY`] — busy or idle — before a rotation and at shutdown. After a
//! power loss it may lack its last lines, which the next start writes again from the outbox — it
//! may lag, never lose, invent or duplicate. That needs the outbox to still hold them, so the
//! log keeps a [`RetentionHold`] at the last line it has fsynced: retention never removes an
//! event the file might not have yet. New events come from the store's memory of recent
//! commits, not from a database read, and are gathered for [`GATHER`] after each write so a
//! busy store costs one write per gathering, not one per commit. Fsyncs, rotations, large
//! writes (a backlog after a restart) and the console summaries run on blocking threads, never
//! on the runtime's; a few new lines are written to the page cache directly.
//!
//! **Rotation** (`[events] log_max_bytes`, `log_keep`): before a line would take the file past
//! the limit, the file is fsynced and renamed `events.jsonl.1` (older ones shifting to `.2`, …,
//! the oldest beyond `log_keep` removed), the directory fsynced, and a new file begun; a batch
//! is split at that line, so every file holds whole lines in id order and stays within the
//! limit (a single line longer than the limit gets a file of its own). A crash between the
//! rename and the first write leaves no current file: the cursor is then read from `.1`.

use crate::jsonl;
use herald_events::Event;
use herald_store::retention::RetentionHold;
use herald_store::{Store, StoredEvent};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Events read from the outbox per batch.
const BATCH: usize = 1000;

/// Longest time written lines stay without an fsync.
pub const SYNC_EVERY: Duration = Duration::from_secs(1);

/// After writing what was new, the log waits this long before it looks again, so that under
/// load one write (and one wake-up of this task) carries the events of many commits rather
/// than one each: a commit that finds the log not listening wakes only the session that made
/// it. A line reaches the file at most this much later than its commit.
const GATHER: Duration = Duration::from_millis(10);

/// Writes up to this size go to the file from the runtime thread; larger ones (a batch after a
/// restart), rotations and every fsync from a blocking thread.
const INLINE_WRITE: usize = 64 * 1024;

/// Default size past which the log rotates: 128 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 128 << 20;

/// Default number of rotated files kept.
pub const DEFAULT_KEEP: usize = 8;

/// Most rotated files that may be kept.
pub const MAX_KEEP: usize = 1000;

/// How the event log runs.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Print a one-line summary of each event on standard output.
    pub console: bool,
    /// Rotate before the file would pass this many bytes; `None` never rotates.
    pub max_bytes: Option<u64>,
    /// Rotated files kept (`events.jsonl.1` … `events.jsonl.N`), at least 1.
    pub keep: usize,
    /// Moved to each line the file has made durable, so retention keeps the rest.
    pub hold: Option<RetentionHold>,
}

impl Default for LogOptions {
    fn default() -> LogOptions {
        LogOptions {
            console: false,
            max_bytes: Some(DEFAULT_MAX_BYTES),
            keep: DEFAULT_KEEP,
            hold: None,
        }
    }
}

/// Why the event log stopped.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The file could not be read or written.
    #[error("event log {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The store failed.
    #[error("event log: {0}")]
    Store(#[from] herald_store::StoreError),
}

/// The name of the `n`th rotated file of `path` (`events.jsonl.1`).
pub fn rotated(path: &Path, n: usize) -> PathBuf {
    let mut p = path.to_path_buf().into_os_string();
    p.push(format!(".{n}"));
    PathBuf::from(p)
}

/// Cuts a torn last line of one file and returns the id of its last complete line (`None` for
/// a missing or empty file).
fn last_id(path: &Path) -> io::Result<Option<u64>> {
    let mut file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let complete_end = jsonl::cut_torn_line(&mut file, path, "the event log")?;
    let Some(newline) = complete_end.checked_sub(1) else {
        return Ok(None);
    };
    let line_start = jsonl::after_last_newline(&mut file, newline)?;
    let mut last = vec![0u8; (newline - line_start) as usize];
    file.seek(SeekFrom::Start(line_start))?;
    file.read_exact(&mut last)?;
    if last.is_empty() {
        return Ok(None);
    }
    Event::from_slice(&last)
        .ok()
        .and_then(|e| e.herald_id())
        .map(Some)
        .ok_or_else(|| io::Error::other("the last line of the event log has no vnd.herald.id"))
}

/// Cuts a torn last line and returns the id of the last complete one: of `path`, or of its
/// newest rotated file when `path` is missing or empty (0 when there is none).
pub fn recover(path: &Path) -> io::Result<u64> {
    if let Some(id) = last_id(path)? {
        return Ok(id);
    }
    Ok(last_id(&rotated(path, 1))?.unwrap_or(0))
}

/// Moves `path` to `path.1` (shifting the older ones, removing those beyond `keep`) and opens
/// a new, empty `path`. What was written is fsynced first, so a rotated file is whole.
fn rotate(path: &Path, keep: usize, file: File) -> io::Result<File> {
    file.sync_data()?;
    drop(file);
    let keep = keep.clamp(1, MAX_KEEP);
    // Left over from a larger `log_keep`: beyond the new limit.
    let mut n = keep + 1;
    while n <= MAX_KEEP + 1 && rotated(path, n).exists() {
        std::fs::remove_file(rotated(path, n))?;
        n += 1;
    }
    for n in (1..keep).rev() {
        let from = rotated(path, n);
        if from.exists() {
            std::fs::rename(&from, rotated(path, n + 1))?;
        }
    }
    std::fs::rename(path, rotated(path, 1))?;
    let file = open_append(path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(file)
}

fn open_append(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// After a store error: a closed store ends the log; anything else is logged and retried a
/// second later (a passing error must not stop the server). True when shutting down.
async fn pause_after(
    e: herald_store::StoreError,
    shutdown: &CancellationToken,
) -> Result<bool, LogError> {
    if matches!(e, herald_store::StoreError::Closed) {
        return Err(e.into());
    }
    tracing::error!("event log: cannot read the outbox, retrying: {e}");
    tokio::select! {
        _ = shutdown.cancelled() => Ok(true),
        _ = tokio::time::sleep(Duration::from_secs(1)) => Ok(false),
    }
}

/// A one-line human summary of an event, for the console.
pub fn summary(e: &Event) -> String {
    let mut s = format!("#{} {}", e.herald_id().unwrap_or(0), e.event);
    if let Some(user) = &e.user {
        s.push_str(&format!(" user={user}"));
    }
    if let Some(mailbox) = e.mailbox() {
        s.push_str(&format!(" mailbox={mailbox}"));
    }
    if let Some(uid) = e.uri.as_ref().and_then(|u| u.uid) {
        s.push_str(&format!(" uid={uid}"));
    } else if let Some(set) = &e.uidset {
        s.push_str(&format!(" uids={set}"));
    }
    if let Some(flags) = &e.flag_names {
        s.push_str(&format!(" flags=\"{flags}\""));
    }
    if let Some(size) = e.message_size {
        s.push_str(&format!(" size={size}"));
    }
    if let Some(service) = &e.service {
        s.push_str(&format!(" via {service}"));
    }
    s
}

/// Appends every committed event after the log's last line to `path` until `shutdown`,
/// rotating and printing summaries as `options` say.
pub async fn run(
    store: Store,
    path: PathBuf,
    options: LogOptions,
    shutdown: CancellationToken,
) -> Result<(), LogError> {
    let io_err = |source| LogError::Io {
        path: path.clone(),
        source,
    };
    // File I/O (and fsync, which can take long) runs on blocking threads, never on the runtime
    // threads the sessions and the dispatcher share.
    let opened = {
        let path = path.clone();
        off_runtime(move || {
            let cursor = recover(&path)?;
            let file = open_append(&path)?;
            // What an earlier process wrote may still be in the page cache only: durable
            // before the hold lets retention remove the events behind it.
            file.sync_data()?;
            let size = file.metadata()?.len();
            Ok((file, cursor, size))
        })
    };
    let (mut file, mut cursor, mut size) = opened.await.map_err(io_err)?;
    let release = |through: u64| {
        if let Some(hold) = &options.hold {
            hold.release_through(through);
        }
    };
    release(cursor);
    // Written but not yet fsynced lines, and when the last fsync was.
    let mut dirty = false;
    let mut synced = std::time::Instant::now();
    loop {
        let batch: Vec<StoredEvent> = match store.events_after(cursor, BATCH).await {
            Ok(b) => b,
            Err(e) => {
                if pause_after(e, &shutdown).await? {
                    break;
                }
                continue;
            }
        };
        if batch.is_empty() {
            let due = synced + SYNC_EVERY;
            if dirty && std::time::Instant::now() >= due {
                // Idle, and the last fsync is old enough: make what was written durable. An
                // fsync at every idle moment would be one per delivery for a client that
                // sends one message at a time.
                file = off_runtime(move || file.sync_data().map(|()| file))
                    .await
                    .map_err(io_err)?;
                dirty = false;
                synced = std::time::Instant::now();
                release(cursor);
                continue;
            }
            let wait = if dirty {
                due.saturating_duration_since(std::time::Instant::now())
            } else {
                Duration::from_secs(5)
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                r = store.wait_for_events(cursor, wait) => {
                    if let Err(e) = r
                        && pause_after(e, &shutdown).await?
                    {
                        break;
                    }
                }
            }
            continue;
        }
        if let Some(first) = batch.first().map(|e| e.id)
            && first > cursor + 1
        {
            // Only retention removes events, and it waits for this log; so the log was off (or
            // its files removed) while they went.
            tracing::warn!(
                from = cursor + 1,
                to = first - 1,
                "event log: events were removed from the outbox by retention before the log \
                 wrote them; it continues with the oldest kept"
            );
        }
        // A file never passes the limit: the lines that would take it past go to the next
        // file (a chunk per file; one line longer than the limit gets a file of its own).
        let mut rest: &[StoredEvent] = &batch;
        while !rest.is_empty() {
            let room = match options.max_bytes {
                Some(max) if size > 0 => max.saturating_sub(size),
                Some(max) => max,
                None => u64::MAX,
            };
            let mut fits = 0usize;
            let mut bytes = 0u64;
            for e in rest {
                let line = e.json.len() as u64 + 1;
                if fits > 0 && bytes + line > room {
                    break;
                }
                bytes += line;
                fits += 1;
            }
            // When not even the first line fits what is left of this file, it goes alone, and
            // the rotation below starts a new file for it.
            let (chunk, after) = rest.split_at(fits);
            rest = after;
            let mut out = Vec::with_capacity(chunk.iter().map(|e| e.json.len() + 1).sum());
            for e in chunk {
                out.extend_from_slice(e.json.as_bytes());
                out.push(b'\n');
            }
            let summaries: Vec<String> = if options.console {
                chunk
                    .iter()
                    .filter_map(|e| Event::from_json(&e.json).ok())
                    .map(|e| summary(&e))
                    .collect()
            } else {
                Vec::new()
            };
            let rotate_now = options
                .max_bytes
                .is_some_and(|max| size > 0 && size + out.len() as u64 > max);
            let sync_now = synced.elapsed() >= SYNC_EVERY;
            let written = out.len() as u64;
            let (rotated_path, keep) = (path.clone(), options.keep);
            if !sync_now && !rotate_now && summaries.is_empty() && out.len() <= INLINE_WRITE {
                // A few lines into the page cache take microseconds, less than handing them to a
                // blocking thread and back.
                file.write_all(&out).map_err(io_err)?;
            } else {
                file = off_runtime(move || {
                    let mut file = file;
                    if rotate_now {
                        file = rotate(&rotated_path, keep, file)?;
                    }
                    file.write_all(&out)?;
                    if sync_now {
                        file.sync_data()?;
                    }
                    // Standard output may be a slow pipe: it blocks this thread, not the runtime.
                    if !summaries.is_empty() {
                        let mut stdout = io::stdout().lock();
                        for line in summaries {
                            let _ = writeln!(stdout, "{line}");
                        }
                    }
                    Ok(file)
                })
                .await
                .map_err(io_err)?;
            }
            if rotate_now {
                // The rotated file was fsynced whole: everything before this chunk is durable.
                tracing::info!(path = %path.display(), "event log rotated");
                size = 0;
                release(cursor);
            }
            size += written;
            cursor = chunk.last().map_or(cursor, |e| e.id);
            if sync_now {
                synced = std::time::Instant::now();
                release(cursor);
            }
            dirty = !sync_now;
        }
        if batch.len() < BATCH {
            // Caught up: let the next events gather (see GATHER).
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(GATHER) => {}
            }
        }
    }
    if dirty {
        off_runtime(move || file.sync_data())
            .await
            .map_err(io_err)?;
        release(cursor);
    }
    Ok(())
}

/// Runs blocking file work on a blocking thread.
async fn off_runtime<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(format!("the writer thread failed: {e}"))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_store::{SessionContext, StoreConfig};

    #[test]
    fn recovery_cuts_a_torn_line_and_finds_the_last_id() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("events.jsonl");
        assert_eq!(recover(&p).unwrap(), 0, "no file yet");
        std::fs::write(&p, "").unwrap();
        assert_eq!(recover(&p).unwrap(), 0);
        std::fs::write(
            &p,
            "{\"event\":\"Login\",\"vnd.herald.id\":1}\n{\"event\":\"Login\",\"vnd.herald.id\":2}\n{\"event\":\"Log",
        )
        .unwrap();
        assert_eq!(recover(&p).unwrap(), 2);
        assert!(std::fs::read_to_string(&p).unwrap().ends_with(":2}\n"));
        // A long last line beyond the first read window.
        let long = format!(
            "{{\"event\":\"vnd.x\",\"vnd.pad\":\"{}\",\"vnd.herald.id\":3}}\n",
            "x".repeat(200_000)
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(long.as_bytes())
            .unwrap();
        assert_eq!(recover(&p).unwrap(), 3);
    }

    #[tokio::test]
    async fn the_log_follows_the_outbox_and_resumes_without_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig::new(dir.path().join("data")))
            .await
            .unwrap();
        let admin = SessionContext::admin_cli();
        store.add_user(&admin, "alice", "pw", false).await.unwrap();
        let alice = SessionContext::user("imap", "alice");
        store.create_mailbox(&alice, "A", None).await.unwrap();
        let path = dir.path().join("events.jsonl");
        let token = CancellationToken::new();
        let task = tokio::spawn(run(
            store.clone(),
            path.clone(),
            LogOptions::default(),
            token.clone(),
        ));
        store.create_mailbox(&alice, "B", None).await.unwrap();
        let last = store.last_event_id().await.unwrap();
        for _ in 0..100 {
            if recover(&path).unwrap() == last {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        token.cancel();
        task.await.unwrap().unwrap();
        // Restart after more commits: only the new events are appended.
        store.create_mailbox(&alice, "C", None).await.unwrap();
        let token = CancellationToken::new();
        let task = tokio::spawn(run(
            store.clone(),
            path.clone(),
            LogOptions::default(),
            token.clone(),
        ));
        let last = store.last_event_id().await.unwrap();
        for _ in 0..100 {
            if recover(&path).unwrap() == last {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        token.cancel();
        task.await.unwrap().unwrap();
        let ids: Vec<u64> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| Event::from_json(l).unwrap().herald_id().unwrap())
            .collect();
        assert_eq!(ids, (1..=last).collect::<Vec<_>>());
    }

    /// The log's file is a pipe nobody reads: its write blocks. The runtime it runs on (one
    /// thread, as tight as it gets) must keep running other tasks meanwhile.
    #[test]
    fn a_blocked_write_does_not_stall_the_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(made.success());
        // Held open for reading and writing, never read: the pipe fills and writes block.
        let _fifo = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let data = dir.path().join("data");
        let (done, finished) = std::sync::mpsc::channel();
        // The runtime runs on its own thread, so a stalled runtime fails the test instead of
        // hanging it.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let ticks = rt.block_on(async {
                let mut config = StoreConfig::new(data);
                config.durable = false;
                let store = Store::open(config).await.unwrap();
                let admin = SessionContext::admin_cli();
                store.add_user(&admin, "alice", "pw", false).await.unwrap();
                let alice = SessionContext::user("imap", "alice");
                // Well over a pipe's 64 KiB of event lines.
                for i in 0..400 {
                    let name = format!("{i:0>100}");
                    store.create_mailbox(&alice, &name, None).await.unwrap();
                }
                tokio::spawn(run(
                    store,
                    path,
                    LogOptions::default(),
                    CancellationToken::new(),
                ));
                let mut ticks = 0;
                for _ in 0..20 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    ticks += 1;
                }
                ticks
            });
            let _ = done.send(ticks);
            rt.shutdown_background();
        });
        let ticks = finished
            .recv_timeout(Duration::from_secs(20))
            .expect("the runtime stalled while the event log's write was blocked");
        assert_eq!(ticks, 20);
    }

    fn ids(path: &Path) -> Vec<u64> {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        assert!(text.is_empty() || text.ends_with('\n'), "whole lines only");
        text.lines()
            .map(|l| Event::from_json(l).unwrap().herald_id().unwrap())
            .collect()
    }

    async fn wait_until(path: &Path, last: u64) {
        for _ in 0..200 {
            if recover(path).unwrap() == last {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the log did not reach {last}");
    }

    #[tokio::test]
    async fn the_log_rotates_by_size_keeps_n_files_and_resumes_from_the_rotated_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = StoreConfig::new(dir.path().join("data"));
        config.durable = false;
        let store = Store::open(config).await.unwrap();
        let admin = SessionContext::admin_cli();
        store.add_user(&admin, "alice", "pw", false).await.unwrap();
        let alice = SessionContext::user("imap", "alice");
        let path = dir.path().join("events.jsonl");
        let hold = store.retention_hold(0);
        let options = LogOptions {
            console: false,
            max_bytes: Some(1500),
            keep: 2,
            hold: Some(hold.clone()),
        };
        let token = CancellationToken::new();
        let task = tokio::spawn(run(
            store.clone(),
            path.clone(),
            options.clone(),
            token.clone(),
        ));
        // One event per batch: each write checks the size.
        for i in 0..30 {
            store
                .create_mailbox(&alice, &format!("box{i}"), None)
                .await
                .unwrap();
            wait_until(&path, store.last_event_id().await.unwrap()).await;
        }
        token.cancel();
        task.await.unwrap().unwrap();
        let last = store.last_event_id().await.unwrap();
        let (two, one, current) = (ids(&rotated(&path, 2)), ids(&rotated(&path, 1)), ids(&path));
        assert!(!rotated(&path, 3).exists(), "only `keep` rotated files");
        for f in [rotated(&path, 2), rotated(&path, 1)] {
            let len = std::fs::metadata(&f).unwrap().len();
            assert!(len <= 1500 && len > 0, "{}: {len} bytes", f.display());
        }
        // In order across the files, oldest in the highest number, nothing twice.
        let all: Vec<u64> = two.iter().chain(&one).chain(&current).copied().collect();
        assert!(all.windows(2).all(|w| w[1] == w[0] + 1), "{all:?}");
        assert_eq!(all.last(), Some(&last));
        // Everything written was synced by the end: retention may go up to it.
        assert_eq!(hold.position(), last);

        // A rotation that left an empty current file: the cursor comes from `.1`.
        std::fs::rename(&path, rotated(&path, 1)).unwrap();
        std::fs::write(&path, "").unwrap();
        assert_eq!(recover(&path).unwrap(), last);
        store.create_mailbox(&alice, "after", None).await.unwrap();
        let token = CancellationToken::new();
        let task = tokio::spawn(run(store.clone(), path.clone(), options, token.clone()));
        wait_until(&path, last + 1).await;
        token.cancel();
        task.await.unwrap().unwrap();
        assert_eq!(ids(&path), [last + 1]);
    }

    #[test]
    fn summaries_are_one_readable_line() {
        let e = Event::from_json(
            r#"{"event":"MessageNew","service":"lmtp","uri":"imap://alice@h/INBOX;UIDVALIDITY=3/;UID=7","user":"alice","messageSize":2113,"vnd.herald.id":12}"#,
        )
        .unwrap();
        assert_eq!(
            summary(&e),
            "#12 MessageNew user=alice mailbox=INBOX uid=7 size=2113 via lmtp"
        );
    }
}
