//! The `file` sink (JSON lines, fsync per batch, rotation by size) and the `stdout` sink.
//!
//! A batch is one `write` and one `fdatasync`: Ok means the lines are on disk. Rotation renames
//! `events.jsonl` to `events.jsonl.1` (shifting older ones up, keeping nine) once the file would
//! pass `rotate_bytes`, before writing the batch, so a batch never straddles two files.
//!
//! **Torn lines.** A crash during a write (or a write that failed half-way) can leave a partial
//! last line, and the batch is sent again. Before its first write after opening the file, and
//! again after any failed write, the sink cuts such a tail back to the last `'\n'` (fsynced,
//! with a warning giving the bytes cut; the event log's repair), so every line of the file is
//! one whole event. The check runs before rotation, so a rotated file is always closed whole.

use super::{BuildError, Outgoing, SendFuture, Sink, SinkError};
use crate::jsonl;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

/// How many rotated files are kept.
pub const KEEP: usize = 9;

/// Appends events to a file.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    file: File,
    size: u64,
    rotate_bytes: Option<u64>,
    /// The file is known to end in a whole line: false after opening and after a failed write,
    /// until [`jsonl::cut_torn_line`] has run.
    whole: bool,
}

/// Opens for appending, and for reading: cutting a torn line reads the file's tail.
fn open_append(path: &PathBuf) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
}

impl FileSink {
    /// Opens (creating) `path` for appending.
    pub fn open(path: PathBuf, rotate_bytes: Option<u64>) -> Result<FileSink, BuildError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| BuildError::Invalid(format!("file sink {}: {e}", path.display())))?;
        }
        let file = open_append(&path)
            .map_err(|e| BuildError::Invalid(format!("file sink {}: {e}", path.display())))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(FileSink {
            path,
            file,
            size,
            rotate_bytes,
            whole: false,
        })
    }

    fn rotated(&self, n: usize) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        for n in (1..KEEP).rev() {
            let from = self.rotated(n);
            if from.exists() {
                std::fs::rename(&from, self.rotated(n + 1))?;
            }
        }
        std::fs::rename(&self.path, self.rotated(1))?;
        self.file = open_append(&self.path)?;
        self.size = 0;
        self.whole = true;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    fn write_batch(&mut self, batch: &[Outgoing]) -> std::io::Result<()> {
        let mut out = Vec::with_capacity(batch.iter().map(|o| o.body.len() + 1).sum());
        for o in batch {
            out.extend_from_slice(&o.body);
            out.push(b'\n');
        }
        if !self.whole {
            self.size = jsonl::cut_torn_line(&mut self.file, &self.path, "the file sink")?;
            self.whole = true;
        }
        if let Some(limit) = self.rotate_bytes
            && self.size > 0
            && self.size + out.len() as u64 > limit
        {
            self.rotate()?;
        }
        // Until the write is complete and synced, the file may end in part of a line.
        self.whole = false;
        #[cfg(test)]
        tests::crash_point(&mut self.file, &out);
        self.file.write_all(&out)?;
        self.file.sync_data()?;
        self.size += out.len() as u64;
        self.whole = true;
        Ok(())
    }
}

impl Sink for FileSink {
    fn send<'a>(&'a mut self, batch: &'a [Outgoing]) -> SendFuture<'a> {
        // Local disk writes are short; doing them inline keeps the batch order trivially.
        let result = self
            .write_batch(batch)
            .map_err(|e| SinkError::Retry(format!("{}: {e}", self.path.display())));
        Box::pin(async move { result })
    }
}

/// Prints events as JSON lines on standard output.
#[derive(Debug, Clone, Copy)]
pub struct StdoutSink;

impl Sink for StdoutSink {
    fn send<'a>(&'a mut self, batch: &'a [Outgoing]) -> SendFuture<'a> {
        let mut out = std::io::stdout().lock();
        let mut result = Ok(());
        for o in batch {
            if let Err(e) = out.write_all(&o.body).and_then(|()| out.write_all(b"\n")) {
                result = Err(SinkError::Retry(format!("stdout: {e}")));
                break;
            }
        }
        let result = result.and_then(|()| {
            out.flush()
                .map_err(|e| SinkError::Retry(format!("stdout: {e}")))
        });
        Box::pin(async move { result })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// In a child process started by a test: how many bytes of the next batch to write before
    /// the process aborts, as if killed mid-write.
    static CRASH_AFTER: AtomicUsize = AtomicUsize::new(usize::MAX);

    /// Set in the environment of the child process [`crash_child_process_entry`] runs in.
    const CHILD_ENV: &str = "HERALD_TEST_FILE_SINK_CRASH_CHILD";

    pub(super) fn crash_point(file: &mut File, out: &[u8]) {
        let n = CRASH_AFTER.load(Ordering::SeqCst);
        if n != usize::MAX {
            let _ = file.write_all(&out[..n.min(out.len())]);
            let _ = file.sync_data();
            std::process::abort();
        }
    }

    fn event(id: u64) -> Outgoing {
        out(
            id,
            &format!(r#"{{"event":"MessageNew","user":"alice","vnd.herald.id":{id}}}"#),
        )
    }

    fn events(ids: std::ops::RangeInclusive<u64>) -> Vec<Outgoing> {
        ids.map(event).collect()
    }

    /// Every line of `path` is one JSON event; returns their ids.
    fn ids_in(path: &std::path::Path) -> Vec<u64> {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.is_empty() || text.ends_with('\n'), "{text:?}");
        text.lines()
            .map(|l| {
                let v: serde_json::Value =
                    serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"));
                v["vnd.herald.id"].as_u64().unwrap()
            })
            .collect()
    }

    /// Events 1 and 2 as whole lines, then the first `cut` bytes of event 3: a file whose
    /// writer died mid-line.
    fn torn(cut: usize) -> Vec<u8> {
        let mut torn = Vec::new();
        for o in events(1..=2) {
            torn.extend_from_slice(&o.body);
            torn.push(b'\n');
        }
        torn.extend_from_slice(&event(3).body[..cut]);
        torn
    }

    #[tokio::test]
    async fn a_torn_last_line_is_cut_before_the_batch_is_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let torn = torn(11);
        let whole = torn.len() - 11;
        std::fs::write(&path, &torn).unwrap();
        let mut sink = FileSink::open(path.clone(), None).unwrap();
        sink.send(&events(3..=4)).await.unwrap();
        assert_eq!(ids_in(&path), [1, 2, 3, 4]);
        assert!(std::fs::read(&path).unwrap().starts_with(&torn[..whole]));

        // A file holding nothing but a torn line is emptied.
        std::fs::write(&path, b"{\"event\":\"Mess").unwrap();
        let mut sink = FileSink::open(path.clone(), None).unwrap();
        sink.send(&events(5..=5)).await.unwrap();
        assert_eq!(ids_in(&path), [5]);
    }

    #[tokio::test]
    async fn a_torn_file_is_rotated_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let torn = torn(20);
        let limit = (torn.len() - 20) as u64 + 10;
        std::fs::write(&path, &torn).unwrap();
        let mut sink = FileSink::open(path.clone(), Some(limit)).unwrap();
        sink.send(&events(3..=3)).await.unwrap();
        assert_eq!(ids_in(&dir.path().join("events.jsonl.1")), [1, 2]);
        assert_eq!(ids_in(&path), [3]);
    }

    /// Runs only as the child process of the next test (without its variable it does
    /// nothing): writes one batch, then dies part-way through writing the second.
    #[tokio::test]
    async fn crash_child_process_entry() {
        let Some(path) = std::env::var_os(CHILD_ENV) else {
            return;
        };
        let mut sink = FileSink::open(PathBuf::from(path), None).unwrap();
        sink.send(&events(1..=3)).await.unwrap();
        CRASH_AFTER.store(event(4).body.len() + 1 + 9, Ordering::SeqCst);
        let _ = sink.send(&events(4..=6)).await;
        unreachable!("the child aborts in the middle of the second batch");
    }

    #[tokio::test]
    async fn a_process_killed_mid_batch_leaves_no_broken_line_once_the_batch_is_resent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "sink::file::tests::crash_child_process_entry",
                "--test-threads=1",
                "--nocapture",
            ])
            .env(CHILD_ENV, &path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(!status.success(), "the child must die mid-batch: {status}");
        let torn = std::fs::read_to_string(&path).unwrap();
        assert!(!torn.ends_with('\n'), "a torn line is left: {torn:?}");
        assert_eq!(torn.lines().count(), 5, "{torn:?}");

        // After the restart the dispatcher hands the unacknowledged batch over again.
        let mut sink = FileSink::open(path.clone(), None).unwrap();
        sink.send(&events(4..=6)).await.unwrap();
        // Every line is one whole event and none is missing; 4, whose line was complete when
        // the process died, is there twice (at least once, as the sink contract says).
        assert_eq!(ids_in(&path), [1, 2, 3, 4, 4, 5, 6]);
    }

    fn out(id: u64, body: &str) -> Outgoing {
        Outgoing {
            id,
            event_type: "Login".into(),
            user: None,
            body: body.as_bytes().to_vec(),
        }
    }

    #[tokio::test]
    async fn appends_lines_and_rotates_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/events.jsonl");
        let mut sink = FileSink::open(path.clone(), Some(20)).unwrap();
        sink.send(&[out(1, "{\"a\":1}"), out(2, "{\"b\":2}")])
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"b\":2}\n"
        );
        sink.send(&[out(3, "{\"c\":3}")]).await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"c\":3}\n");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("sub/events.jsonl.1")).unwrap(),
            "{\"a\":1}\n{\"b\":2}\n"
        );
        // Reopening continues the same file with its size known.
        let mut again = FileSink::open(path.clone(), Some(20)).unwrap();
        again.send(&[out(4, "{\"d\":4}")]).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"c\":3}\n{\"d\":4}\n"
        );
    }

    #[test]
    fn an_unwritable_path_is_a_configuration_error() {
        let err = FileSink::open(PathBuf::from("/proc/herald/events.jsonl"), None).unwrap_err();
        assert!(err.to_string().contains("/proc/herald"), "{err}");
    }
}
