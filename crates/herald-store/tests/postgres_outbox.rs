//! The PostgreSQL outbox keeps its promise under concurrency: readers following it with
//! `events_after` see every committed event exactly once, in strictly increasing id order, and
//! no rolled-back one, while many writers hold transactions open for long and random times; and
//! the schema migrates itself once, safely, refusing a newer one.
//!
//! Needs the machine's PostgreSQL (shared/SERVICES.md): skipped with a reason when it is down,
//! failing under `CI=true` (`pg_support`). Random choices come from a seed printed at the start;
//! `HERALD_TEST_SEED=N` replays them (timing still varies: it is a concurrency test).

mod pg_support;

use herald_events::{Event, EventType};
use herald_store::postgres::{Migration, PgConfig, Postgres, VERSION, append_events};
use herald_store::{StoreError, StoredEvent};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// The extension that carries each test event's unique token.
const TOKEN: &str = "vnd.herald.test";

/// A small deterministic generator (xorshift64*), so a failing run's choices can be replayed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn seed() -> u64 {
    let seed = std::env::var("HERALD_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("HERALD_TEST_SEED={seed}");
    seed
}

fn event(token: &str) -> Event {
    let mut e = Event::new(EventType::Login);
    e.user = Some("alice".into());
    e.set_extension(TOKEN, token);
    e
}

fn token_of(stored: &StoredEvent) -> Result<String, String> {
    let e = Event::from_json(&stored.json).map_err(|e| format!("id {}: {e}", stored.id))?;
    if e.herald_id() != Some(stored.id) {
        return Err(format!(
            "id {} carries vnd.herald.id {:?} in its JSON",
            stored.id,
            e.herald_id()
        ));
    }
    e.extension(TOKEN)
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .ok_or_else(|| format!("id {} has no test token", stored.id))
}

/// One transaction that committed events, as its writer saw it.
#[derive(Debug, Clone)]
struct Committed {
    /// Just before `append_events` was called.
    append_start: Instant,
    /// Just after `commit` returned.
    commit_end: Instant,
    ids: Vec<u64>,
}

/// What all writers did: the committed events by id (their tokens), the rolled-back tokens,
/// and the committed transactions.
#[derive(Debug, Default)]
struct Ledger {
    committed: BTreeMap<u64, String>,
    rolled_back: HashSet<String>,
    transactions: Vec<Committed>,
}

/// A reader's whole view must be exactly the committed events: strictly increasing ids, each
/// with the token committed under it, none rolled back, none missing.
fn check_reader(
    seen: &[StoredEvent],
    committed: &BTreeMap<u64, String>,
    rolled_back: &HashSet<String>,
) -> Result<(), String> {
    let mut last = 0;
    for stored in seen {
        if stored.id <= last {
            return Err(format!("id {} came after id {last}", stored.id));
        }
        last = stored.id;
        let token = token_of(stored)?;
        if rolled_back.contains(&token) {
            return Err(format!("id {} is the rolled-back event {token}", stored.id));
        }
        match committed.get(&stored.id) {
            Some(expected) if *expected == token => {}
            Some(expected) => {
                return Err(format!(
                    "id {} holds {token}, but {expected} was committed with it",
                    stored.id
                ));
            }
            None => return Err(format!("id {} ({token}) was never committed", stored.id)),
        }
    }
    if seen.len() != committed.len() {
        let ids: HashSet<u64> = seen.iter().map(|s| s.id).collect();
        let missing: Vec<u64> = committed
            .keys()
            .copied()
            .filter(|id| !ids.contains(id))
            .take(10)
            .collect();
        return Err(format!(
            "saw {} of {} committed events; missing (first ten): {missing:?}",
            seen.len(),
            committed.len()
        ));
    }
    Ok(())
}

/// Ids follow commit order: a transaction whose commit returned before another one started
/// appending has only smaller ids. Causality, not speed: no duration is compared.
fn check_commit_order(transactions: &[Committed]) -> Result<(), String> {
    for a in transactions {
        for b in transactions {
            if a.commit_end < b.append_start && a.ids.iter().max() >= b.ids.iter().min() {
                return Err(format!(
                    "ids {:?} committed before ids {:?} were appended, yet are not smaller",
                    a.ids, b.ids
                ));
            }
        }
    }
    Ok(())
}

/// Follows the outbox from 0 until `done` was set before a read that found nothing new.
async fn follow(pg: Postgres, done: Arc<AtomicBool>, seed: u64) -> Vec<StoredEvent> {
    let mut rng = Rng::new(seed);
    let mut seen: Vec<StoredEvent> = Vec::new();
    let mut cursor = 0;
    loop {
        // Read before querying: if the writers were done then, this query sees all they did.
        let finished = done.load(Ordering::SeqCst);
        let limit = rng.range(1, 40) as usize;
        let batch = pg.events_after(cursor, limit).await.expect("events_after");
        assert!(
            batch.len() <= limit,
            "{} rows for limit {limit}",
            batch.len()
        );
        if let Some(last) = batch.last() {
            cursor = last.id;
        } else if finished {
            return seen;
        }
        seen.extend(batch);
        tokio::time::sleep(Duration::from_millis(rng.range(0, 8))).await;
    }
}

/// One writer: `txns` transactions of 1–4 events, each held open for a random time before its
/// append (up to 600 ms, as a long mailbox operation would) and after it (mostly briefly,
/// sometimes hundreds of ms with the outbox row locked), a fifth of them rolled back.
async fn write(pg: Postgres, writer: usize, txns: usize, seed: u64, ledger: Arc<Mutex<Ledger>>) {
    let mut rng = Rng::new(seed);
    for t in 0..txns {
        let mut client = pg.client().await.expect("client");
        let tx = client.transaction().await.expect("begin");
        let before = match rng.range(0, 100) {
            0..70 => rng.range(0, 20),
            70..90 => rng.range(50, 150),
            _ => rng.range(200, 600),
        };
        tokio::time::sleep(Duration::from_millis(before)).await;
        let tokens: Vec<String> = (0..rng.range(1, 5))
            .map(|e| format!("w{writer}-t{t}-e{e}"))
            .collect();
        let mut events: Vec<Event> = tokens.iter().map(|t| event(t)).collect();
        let append_start = Instant::now();
        let stored = append_events(&tx, &mut events).await.expect("append");
        assert_eq!(stored.len(), tokens.len());
        for (s, e) in stored.iter().zip(&events) {
            assert_eq!(e.herald_id(), Some(s.id), "the event is given its id");
        }
        let after = if rng.chance(3) {
            rng.range(150, 300)
        } else {
            rng.range(0, 3)
        };
        tokio::time::sleep(Duration::from_millis(after)).await;
        if rng.chance(20) {
            tx.rollback().await.expect("rollback");
            ledger.lock().await.rolled_back.extend(tokens);
        } else {
            tx.commit().await.expect("commit");
            let commit_end = Instant::now();
            let mut ledger = ledger.lock().await;
            for (s, token) in stored.iter().zip(tokens) {
                assert!(
                    ledger.committed.insert(s.id, token).is_none(),
                    "id {} was given to two committed events",
                    s.id
                );
            }
            ledger.transactions.push(Committed {
                append_start,
                commit_end,
                ids: stored.iter().map(|s| s.id).collect(),
            });
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_see_every_committed_event_once_in_order_under_concurrent_writers() {
    const WRITERS: usize = 12;
    const TXNS: usize = 20;
    const READERS: usize = 4;
    pg_support::with_schema("outbox_proof", WRITERS + READERS, |config| async move {
        let seed = seed();
        let pg = Postgres::connect(&config).await.expect("connect");
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let done = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let readers: Vec<_> = (0..READERS)
            .map(|r| tokio::spawn(follow(pg.clone(), done.clone(), seed ^ (1000 + r as u64))))
            .collect();
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| tokio::spawn(write(pg.clone(), w, TXNS, seed ^ w as u64, ledger.clone())))
            .collect();
        for w in writers {
            w.await.expect("writer");
        }
        done.store(true, Ordering::SeqCst);
        let mut views = Vec::new();
        for r in readers {
            views.push(r.await.expect("reader"));
        }
        let elapsed = started.elapsed();
        let ledger = ledger.lock().await;
        println!(
            "{} events committed in {} transactions, {} events rolled back, {} readers, \
             {elapsed:?}",
            ledger.committed.len(),
            ledger.transactions.len(),
            ledger.rolled_back.len(),
            READERS
        );
        assert!(!ledger.committed.is_empty() && !ledger.rolled_back.is_empty());
        // Dense: rolled-back ids are given out again, so the committed ids are exactly 1..=n.
        let n = ledger.committed.len() as u64;
        assert!(
            ledger.committed.keys().copied().eq(1..=n),
            "committed ids are not 1..={n}"
        );
        assert_eq!(pg.last_event_id().await.expect("head"), n);
        check_commit_order(&ledger.transactions).unwrap();
        for (r, seen) in views.iter().enumerate() {
            if let Err(e) = check_reader(seen, &ledger.committed, &ledger.rolled_back) {
                panic!("reader {r}: {e}");
            }
        }
    })
    .await;
}

/// Appends `txns` transactions of one event each on `writers` connections at once, as fast as
/// they go; returns the transactions per second (printed, never asserted) after checking the
/// outbox holds exactly them.
async fn measure(pg: &Postgres, writers: usize, txns: usize, first_id: u64) -> f64 {
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let pg = pg.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for t in 0..txns / writers {
                    let mut client = pg.client().await.expect("client");
                    let tx = client.transaction().await.expect("begin");
                    let mut events = vec![event(&format!("m{writers}-w{w}-t{t}"))];
                    let stored = append_events(&tx, &mut events).await.expect("append");
                    tx.commit().await.expect("commit");
                    ids.extend(stored.into_iter().map(|s| (s.id, events[0].clone())));
                }
                ids
            })
        })
        .collect();
    let mut committed = BTreeMap::new();
    for task in tasks {
        for (id, event) in task.await.expect("writer") {
            let token = event
                .extension(TOKEN)
                .and_then(|v| v.as_str())
                .map(str::to_owned);
            committed.insert(id, token.expect("token"));
        }
    }
    let rate = committed.len() as f64 / started.elapsed().as_secs_f64();
    let mut seen = Vec::new();
    let mut cursor = first_id - 1;
    loop {
        let batch = pg.events_after(cursor, 100).await.expect("events_after");
        let Some(last) = batch.last() else { break };
        cursor = last.id;
        seen.extend(batch);
    }
    if let Err(e) = check_reader(&seen, &committed, &HashSet::new()) {
        panic!("{writers} writers: {e}");
    }
    rate
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_with_1_and_16_writers_all_arrive_and_report_their_rate() {
    pg_support::with_schema("outbox_rate", 16, |config| async move {
        let pg = Postgres::connect(&config).await.expect("connect");
        let one = measure(&pg, 1, 200, 1).await;
        let sixteen = measure(&pg, 16, 400, 201).await;
        println!(
            "outbox appends (one event per transaction, durable commit): \
             1 writer {one:.0}/s, 16 writers {sixteen:.0}/s"
        );
    })
    .await;
}

#[tokio::test]
async fn migrating_twice_is_a_no_op() {
    pg_support::with_schema("migrate_twice", 2, |config| async move {
        let pg = Postgres::connect(&config).await.expect("connect");
        let mut client = pg.client().await.expect("client");
        let tx = client.transaction().await.expect("begin");
        let mut events = vec![event("a"), event("b")];
        append_events(&tx, &mut events).await.expect("append");
        tx.commit().await.expect("commit");
        let tables = |client: deadpool_postgres::Object| async move {
            client
                .query(
                    "SELECT table_name::text FROM information_schema.tables
                     WHERE table_schema = current_schema() ORDER BY 1",
                    &[],
                )
                .await
                .expect("tables")
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
        };
        let before = tables(client).await;
        for table in [
            "accounts",
            "herald_schema",
            "mailboxes",
            "messages",
            "outbox",
            "outbox_head",
        ] {
            assert!(before.iter().any(|t| t == table), "{table} in {before:?}");
        }

        assert_eq!(
            pg.migrate().await.expect("migrate again"),
            Migration {
                from: VERSION,
                to: VERSION
            }
        );
        let again = Postgres::connect(&config).await.expect("connect again");
        assert_eq!(tables(again.client().await.expect("client")).await, before);
        assert_eq!(again.last_event_id().await.expect("head"), 2);
        let stored = again.events_after(0, 10).await.expect("events");
        assert_eq!(stored.iter().map(|s| s.id).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(token_of(&stored[1]).unwrap(), "b");
        // The reader's page size and cursor are honoured.
        assert_eq!(again.events_after(0, 1).await.expect("page").len(), 1);
        assert!(again.events_after(2, 10).await.expect("tail").is_empty());
        assert!(
            again
                .events_after(u64::MAX, 10)
                .await
                .expect("far")
                .is_empty()
        );
        let versions: i64 = again
            .client()
            .await
            .expect("client")
            .query_one("SELECT count(*) FROM herald_schema", &[])
            .await
            .expect("count")
            .get(0);
        assert_eq!(versions, 1);
    })
    .await;
}

/// Version 6: EXPUNGE reads the `\Deleted` messages through a partial index, on a new schema
/// and on one upgraded from version 5.
#[tokio::test]
async fn version_6_indexes_the_deleted_messages_and_expunge_reads_through_it() {
    pg_support::with_schema("deleted_index", 2, |config| async move {
        let has_index = |pg: Postgres| async move {
            pg.client()
                .await
                .expect("client")
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM pg_indexes
                     WHERE schemaname = current_schema() AND indexname = 'messages_deleted')",
                    &[],
                )
                .await
                .expect("pg_indexes")
                .get::<_, bool>(0)
        };
        let pg = Postgres::connect(&config).await.expect("connect");
        assert!(has_index(pg.clone()).await, "a new schema is made with it");
        pg.client()
            .await
            .expect("client")
            .batch_execute("DROP INDEX messages_deleted; UPDATE herald_schema SET version = 5;")
            .await
            .expect("pretend version 5");
        let upgraded = Postgres::connect(&config).await.expect("upgrade");
        assert!(
            has_index(upgraded.clone()).await,
            "a version 5 schema gains it"
        );
        // The planner sees that EXPUNGE's condition implies the index's (sequential scans off,
        // as a large table would make them, since an empty one has no statistics).
        let client = upgraded.client().await.expect("client");
        client
            .batch_execute("SET enable_seqscan = off")
            .await
            .expect("set");
        let plan: Vec<String> = client
            .query(
                r"EXPLAIN SELECT uid, flags FROM messages
                  WHERE mailbox_id = 1 AND uid BETWEEN 1 AND 10
                    AND instr(' ' || flags || ' ', ' \Deleted ') > 0
                    AND (CAST(NULL AS BIGINT) IS NULL OR internaldate < NULL)",
                &[],
            )
            .await
            .expect("explain")
            .iter()
            .map(|r| r.get(0))
            .collect();
        client
            .batch_execute("RESET enable_seqscan")
            .await
            .expect("reset");
        assert!(
            plan.iter().any(|l| l.contains("messages_deleted")),
            "{plan:#?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_schema_newer_than_the_code_is_refused_naming_both_versions() {
    pg_support::with_schema("newer_schema", 2, |config| async move {
        let pg = Postgres::connect(&config).await.expect("connect");
        pg.client()
            .await
            .expect("client")
            .execute("UPDATE herald_schema SET version = $1", &[&(VERSION + 3)])
            .await
            .expect("pretend a newer Herald migrated");
        let err = Postgres::connect(&config).await.unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, StoreError::SchemaTooNew { found, known }
                if found == i64::from(VERSION + 3) && known == i64::from(VERSION)),
            "{err:?}"
        );
        assert!(
            message.contains(&(VERSION + 3).to_string())
                && message.contains(&format!("({VERSION})")),
            "{message}"
        );
        // Refusing changed nothing.
        let version: i32 = pg
            .client()
            .await
            .expect("client")
            .query_one("SELECT version FROM herald_schema", &[])
            .await
            .expect("version")
            .get(0);
        assert_eq!(version, VERSION + 3);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_starting_at_once_on_an_empty_database_all_open_it() {
    pg_support::with_schema("concurrent_start", 2, |mut config: PgConfig| async move {
        // Whatever isolation the operator made the default: a node that waited for another's
        // migration must see it, not a snapshot from before the wait.
        let separator = if config.url.contains('?') { '&' } else { '?' };
        config.url = format!(
            "{}{separator}options=-c%20default_transaction_isolation%3Dserializable",
            config.url
        );
        let starts: Vec<_> = (0..6)
            .map(|_| {
                let config = config.clone();
                tokio::spawn(async move { Postgres::connect(&config).await })
            })
            .collect();
        let mut opened = Vec::new();
        for start in starts {
            opened.push(
                start
                    .await
                    .expect("task")
                    .expect("every node opens the database"),
            );
        }
        let client = opened[0].client().await.expect("client");
        let version: i32 = client
            .query_one("SELECT version FROM herald_schema", &[])
            .await
            .expect("version")
            .get(0);
        assert_eq!(version, VERSION);
        let heads: i64 = client
            .query_one("SELECT count(*) FROM outbox_head", &[])
            .await
            .expect("heads")
            .get(0);
        assert_eq!(heads, 1, "the first migration ran once");
        let isolation: String = client
            .query_one("SHOW default_transaction_isolation", &[])
            .await
            .expect("isolation")
            .get(0);
        assert_eq!(isolation, "serializable", "the URL's own options are kept");
    })
    .await;
}

/// The checker finds each kind of failure it is there for, so a passing proof means something.
#[test]
fn the_reader_check_catches_skips_duplicates_disorder_and_rolled_back_events() {
    let stored = |id: u64, token: &str| {
        let mut e = event(token);
        e.set_herald_id(id);
        StoredEvent {
            id,
            json: e.to_json(),
        }
    };
    let committed: BTreeMap<u64, String> = [(1, "a"), (2, "b"), (3, "c")]
        .into_iter()
        .map(|(id, t)| (id, t.to_owned()))
        .collect();
    let rolled_back: HashSet<String> = ["x".to_owned()].into();
    let all = [stored(1, "a"), stored(2, "b"), stored(3, "c")];
    assert_eq!(check_reader(&all, &committed, &rolled_back), Ok(()));
    let skipped = [stored(1, "a"), stored(3, "c")];
    assert!(check_reader(&skipped, &committed, &rolled_back).is_err());
    let duplicate = [
        stored(1, "a"),
        stored(2, "b"),
        stored(2, "b"),
        stored(3, "c"),
    ];
    assert!(check_reader(&duplicate, &committed, &rolled_back).is_err());
    let disorder = [stored(2, "b"), stored(1, "a"), stored(3, "c")];
    assert!(check_reader(&disorder, &committed, &rolled_back).is_err());
    let phantom = [stored(1, "a"), stored(2, "x"), stored(3, "c")];
    assert!(check_reader(&phantom, &committed, &rolled_back).is_err());

    let now = Instant::now();
    let later = now + Duration::from_millis(1);
    let txn = |append_start, commit_end, ids: &[u64]| Committed {
        append_start,
        commit_end,
        ids: ids.to_vec(),
    };
    assert!(check_commit_order(&[txn(now, now, &[1]), txn(later, later, &[2])]).is_ok());
    assert!(check_commit_order(&[txn(now, now, &[2]), txn(later, later, &[1])]).is_err());
}
