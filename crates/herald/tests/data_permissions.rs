//! The data directory holds password hashes, all mail and the event log: what `herald` creates
//! there is readable by its own user only, whatever the caller's umask.
#![allow(clippy::unwrap_used)]

mod common;

use common::Server;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn everything_in_the_data_directory_is_private() {
    let server = Server::start("");
    server.add_user("alice", "alice-pw");
    server.admin(&["quota", "set", "alice", "--messages", "10"]);
    server.wait_for(0, |e| !e.is_empty());
    assert_eq!(mode(&server.data), 0o700, "data directory");
    let mut checked = 0;
    let mut stack = vec![server.data.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                assert_eq!(mode(&path), 0o700, "{}", path.display());
                stack.push(path);
            } else {
                assert_eq!(mode(&path), 0o600, "{}", path.display());
            }
            checked += 1;
        }
    }
    assert!(checked >= 3, "the database and the event log at least");
}
