//! Helpers shared by the tests that use the real brokers on loopback (shared/SERVICES.md).
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

/// Whether the service at `addr` answers. Outside CI a missing service skips the test with a
/// message; with `CI=true` it fails, because CI must exercise the real services.
pub async fn service(name: &str, addr: &str) -> bool {
    let up = matches!(
        tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    );
    if !up {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{name} is not reachable at {addr} (CI=true: the service must run)");
        }
        // Straight to standard error, which the test harness does not capture (it captures
        // `eprintln!` and shows it only for failing tests): the skip shows among the test
        // results a user sees.
        use std::io::Write as _;
        let test = std::thread::current().name().unwrap_or("a test").to_owned();
        let _ = writeln!(
            std::io::stderr().lock(),
            "SKIPPED {test}: {name} is not reachable at {addr}"
        );
    }
    up
}

/// A name no other test or run uses (subjects, topics, exchanges, queues, stream keys).
pub fn unique(kind: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("herald_test_{kind}_{}_{nanos}", std::process::id())
}
