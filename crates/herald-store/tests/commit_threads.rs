//! Which thread commits and flushes what, and when the caller is answered.
//!
//! With `[store] flag_sync = "deferred"` a STORE is answered once committed, and the WAL is
//! fsynced just after by the flush thread; the change's event reaches the outbox's readers only
//! after that fsync. With `"commit"` the writer fsyncs before the answer, as for every write.
//! A deferred STORE met by an idle writer is committed on the caller's own thread. So is an
//! APPEND while durable commits are quick, flushed there before it is answered; while they are
//! slow, the writer thread commits and flushes it.
//!
//! Shown by tracing the system calls of a real store with `strace` (Debian's package), so the
//! tests are ignored by default: `cargo test -p herald-store --test commit_threads -- --ignored`.
//! The child marks its steps by opening files that do not exist, which `strace` records in order
//! with the fsyncs.
#![allow(clippy::unwrap_used)]

mod strace_support;

use herald_events::UidSet;
use herald_store::{FlagMode, SessionContext, Store, StoreConfig};
use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

const CHILD: &str = "HERALD_COMMIT_TRACE_DIR";
const DEFER: &str = "HERALD_COMMIT_TRACE_DEFER";
/// `StoreConfig::inline_commit_budget` of the child, in ms.
const BUDGET: &str = "HERALD_COMMIT_TRACE_BUDGET_MS";

fn mark(dir: &Path, step: &str) {
    let _ = std::fs::File::open(dir.join(format!("marker-{step}")));
}

/// Run by the traced child process only: a mailbox created (by the writer thread, which no
/// caller's thread stands in for), an append, then a STORE, then a wait for its event.
#[tokio::test]
async fn child_stores_one_flag() {
    let Some(dir) = std::env::var_os(CHILD) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let mut config = StoreConfig::new(dir.join("data"));
    config.defer_flag_sync = std::env::var(DEFER).as_deref() == Ok("1");
    let budget = std::env::var(BUDGET).unwrap().parse().unwrap();
    config.inline_commit_budget = Duration::from_millis(budget);
    let store = Store::open(config).await.unwrap();
    store
        .add_user(&SessionContext::admin_cli(), "alice", "pw", false)
        .await
        .unwrap();
    let alice = SessionContext::user("imap", "alice");
    mark(&dir, "creating");
    store.create_mailbox(&alice, "Box", None).await.unwrap();
    mark(&dir, "appending");
    let uid = store
        .append(
            &alice,
            "INBOX",
            b"Subject: x\r\n\r\nx\r\n".to_vec(),
            &[],
            None,
        )
        .await
        .unwrap()
        .value
        .uid;
    mark(&dir, "appended");
    let last = store.last_event_id().await.unwrap();
    mark(&dir, "storing");
    store
        .store_flags(
            &alice,
            "INBOX",
            &UidSet::single(uid),
            FlagMode::Add,
            &["\\Seen".to_owned()],
            None,
        )
        .await
        .unwrap();
    mark(&dir, "answered");
    let seen = store
        .wait_for_events(last, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(seen > last, "the STORE's event was never published");
    let events = store.events_after(last, 10).await.unwrap();
    assert!(events.iter().any(|e| e.json.contains("MessageRead")));
    mark(&dir, "published");
    store.close().await;
}

/// `(thread id, line)` of each traced call, and the index of the marker `step`.
struct Trace(Vec<(String, String)>);

impl Trace {
    /// The child's trace with `flag_sync` deferred or not, and an inline commit budget in ms.
    fn run(defer: bool, budget_ms: u64) -> Trace {
        let dir = tempfile::tempdir().unwrap();
        let budget = budget_ms.to_string();
        let lines = strace_support::trace_child(
            dir.path(),
            "child_stores_one_flag",
            "fsync,fdatasync,openat,pwrite64",
            &[
                (CHILD, dir.path().as_os_str()),
                (DEFER, OsStr::new(if defer { "1" } else { "0" })),
                (BUDGET, OsStr::new(&budget)),
            ],
        );
        Trace(
            lines
                .iter()
                .filter_map(|l| l.split_once(' '))
                .map(|(tid, rest)| (tid.to_owned(), rest.trim_start().to_owned()))
                .collect(),
        )
    }

    fn dump(&self) -> String {
        self.0
            .iter()
            .filter(|(_, l)| !l.starts_with("openat") || l.contains("marker-"))
            .map(|(t, l)| format!("{t} {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The thread that reached the marker `step`: the caller's.
    fn caller(&self, step: &str) -> &str {
        &self.0[self.marker(step)].0
    }

    fn marker(&self, step: &str) -> usize {
        self.0
            .iter()
            .position(|(_, l)| l.starts_with("openat") && l.contains(&format!("marker-{step}\"")))
            .unwrap_or_else(|| panic!("no marker {step}:\n{}", self.dump()))
    }

    /// The writer thread: the one that fsynced the WAL for the mailbox's creation.
    fn writer(&self) -> &str {
        self.wal_syncs(self.marker("creating"), self.marker("appending"))
            .first()
            .copied()
            .unwrap_or_else(|| panic!("the CREATE was not fsynced:\n{}", self.dump()))
    }

    /// The WAL fsyncs that began between two markers, with their threads.
    fn wal_syncs(&self, from: usize, to: usize) -> Vec<&str> {
        self.threads(from, to, |l| {
            (l.starts_with("fsync(") || l.starts_with("fdatasync(")) && l.contains("herald.db-wal")
        })
    }

    /// The threads that wrote to the WAL between two markers, one entry per write.
    fn wal_writes(&self, from: usize, to: usize) -> Vec<&str> {
        self.threads(from, to, |l| {
            l.starts_with("pwrite64(") && l.contains("herald.db-wal")
        })
    }

    /// Asserts that the thread `tid` alone wrote the WAL between the markers `from` and `to`,
    /// and fsynced it before `to`: `what` was committed durably there before its answer.
    fn assert_durable_by(&self, tid: &str, from: &str, to: &str, what: &str) {
        let (from, to) = (self.marker(from), self.marker(to));
        let writes = self.wal_writes(from, to);
        assert!(
            !writes.is_empty() && writes.iter().all(|t| *t == tid),
            "the {what} was not committed by thread {tid}: WAL writes by {writes:?}\n{}",
            self.dump()
        );
        assert!(
            self.wal_syncs(from, to).contains(&tid),
            "the {what} was answered before thread {tid} fsynced it:\n{}",
            self.dump()
        );
    }

    fn threads(&self, from: usize, to: usize, call: impl Fn(&str) -> bool) -> Vec<&str> {
        self.0[from..to]
            .iter()
            .filter(|(_, l)| call(l))
            .map(|(t, _)| t.as_str())
            .collect()
    }
}

#[test]
#[ignore = "needs strace; run with --ignored"]
fn a_deferred_store_is_answered_before_its_fsync_and_published_after_it() {
    let t = Trace::run(true, 1);
    let writer = t.writer();
    let (storing, answered) = (t.marker("storing"), t.marker("answered"));
    let published = t.marker("published");
    // Nothing fsynced for the STORE: it was answered after the commit alone.
    assert!(
        t.wal_syncs(storing, answered).is_empty(),
        "the WAL was fsynced before the STORE was answered:\n{}",
        t.dump()
    );
    // The idle writer left the commit to the caller's thread: no hand-off and back.
    let writes = t.wal_writes(storing, answered);
    let caller = t.caller("storing");
    assert!(
        !writes.is_empty() && writes.iter().all(|tid| *tid == caller),
        "the STORE was not committed on the caller's thread {caller}: WAL writes by {writes:?}\n{}",
        t.dump()
    );
    // Another thread fsynced the WAL before the event was published.
    let flushes = t.wal_syncs(storing, published);
    assert!(
        flushes.iter().any(|tid| *tid != writer),
        "no flush by the flush thread before the event was published:\n{}",
        t.dump()
    );
}

#[test]
#[ignore = "needs strace; run with --ignored"]
fn with_flag_sync_commit_the_writer_fsyncs_a_store_before_answering() {
    let t = Trace::run(false, 1);
    t.assert_durable_by(t.writer(), "storing", "answered", "STORE");
}

/// The durable commit's budget is far above any flush's here, even a debug build's under strace.
const QUICK: u64 = 60_000;

#[test]
#[ignore = "needs strace; run with --ignored"]
fn an_append_met_by_an_idle_writer_is_committed_and_fsynced_on_the_callers_thread() {
    let t = Trace::run(true, QUICK);
    let caller = t.caller("appending");
    assert_ne!(
        caller,
        t.writer(),
        "the child's caller ran on the writer thread"
    );
    t.assert_durable_by(caller, "appending", "appended", "APPEND");
}

#[test]
#[ignore = "needs strace; run with --ignored"]
fn with_slow_flushes_the_writer_commits_and_fsyncs_an_append_before_answering() {
    // A zero budget: every durable commit counts as too slow for a runtime thread.
    let t = Trace::run(true, 0);
    t.assert_durable_by(t.writer(), "appending", "appended", "APPEND");
}
