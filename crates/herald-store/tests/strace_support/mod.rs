//! What the strace tests share: running one test of this binary as a child under `strace -f`
//! and reading back its calls, one line each, prefixed by the thread id.

use std::ffi::OsStr;
use std::process::Command;

/// Runs the test `child` of this test binary under `strace -f -y -qq -e trace=CALLS`, with
/// `env` set, and returns the trace's lines. `dir` holds the trace file.
pub fn trace_child(
    dir: &std::path::Path,
    child: &str,
    calls: &str,
    env: &[(&str, &OsStr)],
) -> Vec<String> {
    let trace = dir.join("trace");
    let status = Command::new("strace")
        .args(["-f", "-y", "-qq", "-e", &format!("trace={calls}")])
        .arg("-o")
        .arg(&trace)
        .arg(std::env::current_exe().expect("the test binary"))
        .args(["--exact", child, "--nocapture"])
        .envs(env.iter().copied())
        .status()
        .expect("strace is installed");
    assert!(status.success(), "{child} under strace: {status}");
    std::fs::read_to_string(&trace)
        .expect("the trace")
        .lines()
        .map(str::to_owned)
        .collect()
}
