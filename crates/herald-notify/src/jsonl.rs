//! JSON-lines files after a crash: the repair the event log ([`crate::log`]) and the file sink
//! ([`crate::sink::file`]) share.
//!
//! Both append whole lines, one batch per `write`, and fsync before acknowledging. A process
//! killed during a write (or a write that failed half-way, on a full disk) can leave a partial
//! last line; appending after it would glue the next event onto those bytes and make a line
//! that is not JSON. [`cut_torn_line`] truncates the file back to just after its last `'\n'`
//! (to empty when there is none), fsyncs, and logs how many bytes went. Nothing acknowledged is
//! lost: an acknowledged batch ended in `'\n'` and was fsynced, so only the unacknowledged tail
//! is cut, and the dispatcher (or the log's own cursor) sends those events again.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// How much is read at a time when looking backwards for a newline.
const CHUNK: u64 = 64 * 1024;

/// The offset just after the last `'\n'` among the first `end` bytes of `file`, or 0 when they
/// hold none. Reads backwards from `end` in bounded chunks.
pub(crate) fn after_last_newline(file: &mut File, end: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK as usize];
    let mut hi = end;
    while hi > 0 {
        let lo = hi.saturating_sub(CHUNK);
        let chunk = &mut buf[..(hi - lo) as usize];
        file.seek(SeekFrom::Start(lo))?;
        file.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(lo + i as u64 + 1);
        }
        hi = lo;
    }
    Ok(0)
}

/// Cuts a torn last line from `file` (opened for reading and writing; `path` and `what` only
/// name it in the warning) and returns the file's length afterwards. A file that is empty or
/// ends in `'\n'` is left as it is.
pub(crate) fn cut_torn_line(file: &mut File, path: &Path, what: &str) -> io::Result<u64> {
    let len = file.metadata()?.len();
    let complete = after_last_newline(file, len)?;
    if complete < len {
        file.set_len(complete)?;
        file.sync_all()?;
        tracing::warn!(
            path = %path.display(),
            bytes = len - complete,
            "cut a torn last line of {} bytes from {what}",
            len - complete
        );
    }
    Ok(complete)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn repaired(content: &[u8]) -> (u64, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.jsonl");
        std::fs::write(&path, content).unwrap();
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .unwrap();
        let len = cut_torn_line(&mut file, &path, "a test file").unwrap();
        (len, std::fs::read(&path).unwrap())
    }

    #[test]
    fn cuts_back_to_the_last_newline() {
        assert_eq!(repaired(b""), (0, b"".to_vec()));
        assert_eq!(repaired(b"{\"a\":1}\n"), (8, b"{\"a\":1}\n".to_vec()));
        assert_eq!(repaired(b"{\"a\":1}\n{\"b"), (8, b"{\"a\":1}\n".to_vec()));
        assert_eq!(repaired(b"{\"no newline"), (0, b"".to_vec()));
    }

    #[test]
    fn finds_a_newline_further_back_than_one_chunk() {
        let mut content = b"{\"a\":1}\n".to_vec();
        content.extend(std::iter::repeat_n(b'x', 3 * CHUNK as usize + 17));
        assert_eq!(repaired(&content), (8, b"{\"a\":1}\n".to_vec()));
        // And a newline exactly at a chunk boundary.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g");
        let mut f = File::create(&path).unwrap();
        f.write_all(&vec![b'y'; CHUNK as usize - 1]).unwrap();
        f.write_all(b"\n").unwrap();
        f.write_all(&vec![b'z'; CHUNK as usize]).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        assert_eq!(after_last_newline(&mut f, 2 * CHUNK).unwrap(), CHUNK);
        assert_eq!(after_last_newline(&mut f, CHUNK - 1).unwrap(), 0);
    }
}
