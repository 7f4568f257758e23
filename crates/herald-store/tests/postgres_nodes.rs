//! Several stores on one PostgreSQL database, as several Herald nodes run: each hears the
//! others' commits at once, and concurrent writers keep UIDs, MODSEQs and event ids right.
//!
//! Each test opens its stores on a fresh schema; outside CI a test whose PostgreSQL is
//! unreachable is skipped with the reason, under `CI=true` it fails (`pg_support`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod pg_support;

use herald_store::postgres::PgConfig;
use herald_store::{SessionContext, Store, StoreConfig};
use std::time::{Duration, Instant};

async fn node(pg: &PgConfig, dir: &tempfile::TempDir) -> Store {
    let mut config = StoreConfig::new(dir.path()).with_fqdn("mail.example.org");
    config.postgres = Some(pg.clone());
    Store::open(config)
        .await
        .expect("open the store on PostgreSQL")
}

fn message(n: usize) -> Vec<u8> {
    format!("Message-ID: <{n}@nodes>\r\nSubject: {n}\r\n\r\nbody {n}\r\n").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_on_one_node_wakes_the_waiters_of_another_at_once() {
    pg_support::with_schema("nodes_wake", 4, |pg| async move {
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (one, two) = (node(&pg, &d1).await, node(&pg, &d2).await);
        one.add_user(&SessionContext::admin_cli(), "alice", "pw", false)
            .await
            .unwrap();
        let alice = SessionContext::user("imap", "alice");
        let inbox = two.mailbox(&alice, "INBOX").await.unwrap();
        let mut mailbox = two.mailbox_watch(inbox.id);
        let mut outbox = two.outbox_watch();
        outbox.borrow_and_update();

        let started = Instant::now();
        let appended = one
            .append(&alice, "INBOX", message(1), &[], None)
            .await
            .unwrap();
        let last = appended.events.last().unwrap().herald_id().unwrap();
        tokio::time::timeout(Duration::from_secs(1), mailbox.changed())
            .await
            .expect("node two hears of node one's delivery within a second")
            .unwrap();
        let waited = started.elapsed();
        tokio::time::timeout(Duration::from_secs(1), async {
            while *outbox.borrow_and_update() < last {
                outbox.changed().await.unwrap();
            }
        })
        .await
        .expect("node two's outbox watch reaches node one's event");
        // What it then reads is what node one committed.
        let after = two.mailbox(&alice, "INBOX").await.unwrap();
        assert_eq!((after.messages, after.uidnext), (1, 2));
        let events = two.events_after(0, 100).await.unwrap();
        assert_eq!(events.last().unwrap().id, last);
        eprintln!("node two woke {waited:?} after node one's append began");
        one.close().await;
        two.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_appending_to_one_mailbox_at_once_give_unique_increasing_uids() {
    pg_support::with_schema("nodes_append", 8, |pg| async move {
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (one, two) = (node(&pg, &d1).await, node(&pg, &d2).await);
        one.add_user(&SessionContext::admin_cli(), "alice", "pw", false)
            .await
            .unwrap();
        const EACH: usize = 40;
        let mut tasks = Vec::new();
        for (n, store) in [(0, one.clone()), (1, two.clone())] {
            for k in 0..4 {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    let alice = SessionContext::user("imap", "alice");
                    let mut got = Vec::new();
                    for i in 0..EACH / 4 {
                        let id = n * 1000 + k * 100 + i;
                        let a = store
                            .append(&alice, "INBOX", message(id), &[], None)
                            .await
                            .unwrap();
                        got.push((a.value.uid, a.value.modseq));
                    }
                    got
                }));
            }
        }
        let mut all = Vec::new();
        for t in tasks {
            let got = t.await.unwrap();
            // Each writer sees its own appends in increasing order.
            assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
            all.extend(got);
        }
        let mut uids: Vec<u32> = all.iter().map(|(u, _)| *u).collect();
        uids.sort_unstable();
        uids.dedup();
        assert_eq!(uids.len(), 2 * EACH, "every UID given once");
        let alice = SessionContext::user("imap", "alice");
        let inbox = two.mailbox(&alice, "INBOX").await.unwrap();
        assert_eq!(inbox.messages, 2 * EACH as u64);
        assert_eq!(
            inbox.uidnext as usize,
            2 * EACH + 1,
            "UIDs are dense: 1..={}",
            2 * EACH
        );
        // Event ids are dense and each MessageAppend names the UID the append returned.
        let events = one.events_after(0, 1000).await.unwrap();
        let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
        assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
        let c = one.check_consistency().await.unwrap();
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        one.close().await;
        two.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migrated_store_keeps_message_files_uids_and_event_ids() {
    pg_support::with_schema("migrate_files", 4, |pg| async move {
        let source = tempfile::tempdir().unwrap();
        let mut config = StoreConfig::new(source.path()).with_fqdn("mail.example.org");
        config.inline_blob_max = 1024;
        let embedded = Store::open(config).await.unwrap();
        embedded
            .add_user(&SessionContext::admin_cli(), "alice", "pw", false)
            .await
            .unwrap();
        let alice = SessionContext::user("imap", "alice");
        let big = format!("Subject: big\r\n\r\n{}\r\n", "L".repeat(5000)).into_bytes();
        for (body, flags) in [
            (message(1), vec!["\\Seen".to_owned()]),
            (
                big.clone(),
                vec!["\\Seen".to_owned(), "\\Deleted".to_owned()],
            ),
            (message(2), vec![]),
        ] {
            embedded
                .append(&alice, "INBOX", body, &flags, None)
                .await
                .unwrap();
        }
        let before = embedded.mailbox(&alice, "INBOX").await.unwrap();
        let counts = embedded.counts(&alice, "INBOX").await.unwrap();
        assert_eq!((counts.unseen, counts.deleted), (1, 1));
        let last = embedded.last_event_id().await.unwrap();
        embedded.close().await;

        let report = herald_store::postgres::migrate_embedded(source.path(), &pg, |_| {})
            .await
            .unwrap();
        assert_eq!(report.files, 1, "the large message lived in a file");
        assert_eq!(report.last_event_id, last);

        let dir = tempfile::tempdir().unwrap();
        let store = node(&pg, &dir).await;
        let after = store.mailbox(&alice, "INBOX").await.unwrap();
        assert_eq!(
            (
                after.uidvalidity,
                after.uidnext,
                after.highest_modseq,
                after.messages
            ),
            (
                before.uidvalidity,
                before.uidnext,
                before.highest_modseq,
                before.messages
            )
        );
        assert_eq!(store.read_message(&alice, "INBOX", 2).await.unwrap(), big);
        // STATUS's counters are the trigger's, counted as the rows arrived, not copied.
        assert_eq!(store.counts(&alice, "INBOX").await.unwrap(), counts);
        let c = store.check_consistency().await.unwrap();
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        let next = store
            .append(&alice, "INBOX", message(3), &[], None)
            .await
            .unwrap();
        assert_eq!(next.value.uid, 4);
        assert_eq!(next.events[0].herald_id(), Some(last + 1));
        // The copy went into an empty store only.
        let again = herald_store::postgres::migrate_embedded(source.path(), &pg, |_| {}).await;
        assert!(again.is_err());
        store.close().await;
    })
    .await;
}
