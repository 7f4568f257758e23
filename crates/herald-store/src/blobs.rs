//! Message content ("blobs"): content-addressed by SHA-256, stored once, reference-counted.
//!
//! A message delivered to 50 recipients is one blob with refcount 50. Where the bytes live
//! depends on size, because each extra fsync costs about 200 µs on this class of disk:
//!
//! - **Up to `inline_blob_max` (default 128 KiB): inside SQLite**, in the `blobs` table, written
//!   by the same transaction as the message row and its events — one fsync for all of it, and
//!   group commit shares that fsync between concurrent deliveries. SQLite's own measurements
//!   ("Internal Versus External BLOBs", sqlite.org) put reads of blobs below roughly 100 KiB
//!   faster from the database than from separate files; typical mail is far smaller. The limit
//!   also bounds how much one commit writes to the WAL.
//! - **Larger: a file** `blobs/ab/cdef…` (hex SHA-256), written to `blobs/tmp/`, fsynced,
//!   renamed into place and the directory fsynced — all *before* the metadata transaction that
//!   references it is submitted, so a committed message never points at a missing file. This
//!   runs on the caller's blocking thread, not on the writer thread, so large deliveries do not
//!   stall the commit pipeline.
//!
//! Deleting: when a file blob's refcount reaches 0 its row is removed and its hash queued in
//! `blob_trash` in the same transaction. The writer unlinks queued files at the start of a
//! later transaction, while it holds SQLite's write lock, after checking that no row has come
//! back for that hash; an operation that inserts a fresh file-blob row checks the file is
//! present (rewriting it from the bytes it carries if not). Together this closes the race
//! between one transaction dropping the last reference and another adding a new one, also
//! across processes. Files left by a crash between write and commit are orphans; `Store::open`
//! removes orphans older than an hour (younger ones may belong to another process's delivery
//! in flight).

use crate::error::Result;
use ring::digest;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A file found by [`BlobDir::scan`]: path, hash (`None` for a temp file), age.
pub type BlobFile = (PathBuf, Option<[u8; 32]>, std::time::Duration);

/// A blob ready to be referenced by a transaction.
#[derive(Debug, Clone)]
pub struct BlobRef {
    /// SHA-256 of the content.
    pub sha256: [u8; 32],
    /// The content (kept for inline storage and to rewrite a file unlinked meanwhile).
    pub data: Arc<Vec<u8>>,
    /// True when the content lives in a file rather than in the database.
    pub on_file: bool,
}

impl BlobRef {
    /// Size in octets.
    pub fn size(&self) -> u64 {
        self.data.len() as u64
    }
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The file-blob directory of a data directory.
#[derive(Debug, Clone)]
pub struct BlobDir {
    root: PathBuf,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl BlobDir {
    /// `DATA/blobs`, created with its `tmp/` subdirectory.
    pub fn open(data: &Path) -> Result<BlobDir> {
        let root = data.join("blobs");
        fs::create_dir_all(root.join("tmp"))?;
        Ok(BlobDir { root })
    }

    /// Where the blob with this hash lives.
    pub fn path(&self, sha: &[u8; 32]) -> PathBuf {
        let h = hex(sha);
        self.root.join(&h[..2]).join(&h[2..])
    }

    /// True when the file is present.
    pub fn exists(&self, sha: &[u8; 32]) -> bool {
        self.path(sha).is_file()
    }

    /// Writes the blob durably: temp file, fsync, rename, fsync of the directory (and of the
    /// blob root when the fan-out directory is new). Skips the write when the file is already
    /// there (another message with the same content).
    pub fn write(&self, sha: &[u8; 32], data: &[u8]) -> Result<()> {
        let dest = self.path(sha);
        if dest.is_file() {
            return Ok(());
        }
        let dir = dest
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.root.clone());
        let new_dir = !dir.is_dir();
        fs::create_dir_all(&dir)?;
        if new_dir {
            // The fan-out directory's own entry must be durable too, or a crash could lose
            // every blob in it.
            File::open(&self.root)?.sync_all()?;
        }
        let tmp = self.root.join("tmp").join(format!(
            "{}-{}-{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed),
            hex(&sha[..8])
        ));
        {
            let mut f = File::create(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &dest)?;
        File::open(&dir)?.sync_all()?;
        Ok(())
    }

    /// Reads a file blob.
    pub fn read(&self, sha: &[u8; 32]) -> Result<Vec<u8>> {
        Ok(fs::read(self.path(sha))?)
    }

    /// Removes a file blob; a missing file is not an error.
    pub fn remove(&self, sha: &[u8; 32]) -> Result<()> {
        match fs::remove_file(self.path(sha)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Every blob file with its age, and every temp file: for garbage collection at open.
    pub fn scan(&self) -> Result<Vec<BlobFile>> {
        let mut out = Vec::new();
        let now = std::time::SystemTime::now();
        for entry in fs::read_dir(&self.root)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !entry.file_type()?.is_dir() {
                continue;
            }
            for file in fs::read_dir(entry.path())? {
                let file = file?;
                let age = file
                    .metadata()?
                    .modified()
                    .ok()
                    .and_then(|m| now.duration_since(m).ok())
                    .unwrap_or_default();
                let sha = if name == "tmp" {
                    None
                } else {
                    parse_hex(&format!("{name}{}", file.file_name().to_string_lossy()))
                };
                out.push((file.path(), sha, age));
            }
        }
        Ok(out)
    }
}

fn parse_hex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_remove_scan() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobDir::open(dir.path()).unwrap();
        let data = b"hello".to_vec();
        let sha = sha256(&data);
        blobs.write(&sha, &data).unwrap();
        blobs.write(&sha, &data).unwrap();
        assert_eq!(blobs.read(&sha).unwrap(), data);
        let scanned = blobs.scan().unwrap();
        assert_eq!(scanned.len(), 1);
        assert_eq!(scanned[0].1, Some(sha));
        blobs.remove(&sha).unwrap();
        blobs.remove(&sha).unwrap();
        assert!(!blobs.exists(&sha));
        assert_eq!(
            hex(&sha),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
    }
}
