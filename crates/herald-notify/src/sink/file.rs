//! The `file` sink (JSON lines, fsync per batch, rotation by size) and the `stdout` sink.
//!
//! A batch is one `write` and one `fdatasync`: Ok means the lines are on disk. Rotation renames
//! `events.jsonl` to `events.jsonl.1` (shifting older ones up, keeping nine) once the file would
//! pass `rotate_bytes`, before writing the batch, so a batch never straddles two files.

use super::{BuildError, Outgoing, SendFuture, Sink, SinkError};
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
}

fn open_append(path: &PathBuf) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
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
        if let Some(limit) = self.rotate_bytes
            && self.size > 0
            && self.size + out.len() as u64 > limit
        {
            self.rotate()?;
        }
        self.file.write_all(&out)?;
        self.file.sync_data()?;
        self.size += out.len() as u64;
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
