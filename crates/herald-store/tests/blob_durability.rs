//! A message above the inline limit is a file: the file and its directory are on disk (fsynced)
//! before the commit that references it, so a crash can never leave a committed message (and
//! its MessageAppend event) pointing at a file that is not there.
//!
//! Shown by tracing the system calls of a real append with `strace` (Debian's package), so the
//! test is ignored by default: `cargo test -p herald-store --test blob_durability -- --ignored`.
#![allow(clippy::unwrap_used)]

mod strace_support;

use herald_store::{SessionContext, Store, StoreConfig};

const CHILD: &str = "HERALD_BLOB_TRACE_DIR";

/// Run by the traced child process only: one durable append of a 200 KiB message.
#[tokio::test]
async fn child_appends_one_large_message() {
    let Some(dir) = std::env::var_os(CHILD) else {
        return;
    };
    let store = Store::open(StoreConfig::new(std::path::PathBuf::from(dir)))
        .await
        .unwrap();
    store
        .add_user(&SessionContext::admin_cli(), "alice", "pw", false)
        .await
        .unwrap();
    let mut message = b"Subject: large\r\n\r\n".to_vec();
    message.resize(200 * 1024, b'x');
    store
        .append(
            &SessionContext::user("imap", "alice"),
            "INBOX",
            message,
            &[],
            None,
        )
        .await
        .unwrap();
}

#[test]
#[ignore = "needs strace; run with --ignored"]
fn a_large_blob_and_its_directories_are_fsynced_before_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let calls = strace_support::trace_child(
        dir.path(),
        "child_appends_one_large_message",
        "fsync,fdatasync,rename,renameat,renameat2",
        &[(CHILD, data.as_os_str())],
    );
    let find = |what: &str, pred: &dyn Fn(&str) -> bool| {
        calls
            .iter()
            .position(|l| pred(l))
            .unwrap_or_else(|| panic!("no {what} in the trace:\n{}", calls.join("\n")))
    };
    let blobs = data.join("blobs");
    let blobs = blobs.to_str().unwrap();
    let file_synced = find("fsync of the blob's temp file", &|l| {
        l.contains("fsync(") && l.contains(&format!("{blobs}/tmp/"))
    });
    let renamed = find("rename into place", &|l| {
        l.contains("rename") && l.contains(&format!("{blobs}/tmp/"))
    });
    // `fsync(6</…/blobs/d9>)`: the fan-out directory, two hex digits below the root.
    let dir_synced = find("fsync of the blob's directory", &|l| {
        l.contains("fsync(")
            && l.split_once('<')
                .and_then(|(_, rest)| rest.split_once('>'))
                .is_some_and(|(p, _)| p.starts_with(blobs) && p.len() == blobs.len() + 3)
    });
    let root_synced = find("fsync of the blob root for its new directory", &|l| {
        l.contains("fsync(") && l.contains(&format!("<{blobs}>"))
    });
    // The commit that references the blob: the first sync of the database's write-ahead log
    // after the blob was renamed into place (nothing else commits meanwhile).
    let committed = calls
        .iter()
        .enumerate()
        .position(|(i, l)| {
            i > renamed
                && (l.contains("fsync(") || l.contains("fdatasync("))
                && l.contains("herald.db-wal")
        })
        .unwrap_or_else(|| {
            panic!(
                "no commit after the blob in the trace:\n{}",
                calls.join("\n")
            )
        });
    assert!(file_synced < renamed, "{calls:#?}");
    assert!(renamed < dir_synced, "{calls:#?}");
    assert!(
        root_synced < committed && dir_synced < committed,
        "{calls:#?}"
    );
}
