//! The dispatcher against a real store: order, at-least-once, cursors that survive restarts,
//! retries, parking, receiver-disabled subscriptions, replays and runtime subscriptions.
//! A controllable in-memory sink stands in for a receiver whose failures the test decides.
#![allow(clippy::unwrap_used)]

use herald_notify::config::{RetryPolicy, SinkConfig, SubscriptionConfig};
use herald_notify::dispatch::{Dispatcher, Options, SinkFactory};
use herald_notify::sink::{Outgoing, SendFuture, Sink, SinkError};
use herald_store::{SessionContext, Store, StoreConfig};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What the receiver does with the next batch.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Accept,
    Fail,
    Gone,
}

#[derive(Default)]
struct Receiver {
    mode: Option<Mode>,
    got: Vec<u64>,
    bodies: Vec<Vec<u8>>,
    attempts: usize,
    first_attempt: Option<Instant>,
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Receiver>>);

impl Shared {
    fn set(&self, m: Mode) {
        self.0.lock().unwrap().mode = Some(m);
    }
    fn got(&self) -> Vec<u64> {
        self.0.lock().unwrap().got.clone()
    }
    fn attempts(&self) -> usize {
        self.0.lock().unwrap().attempts
    }
}

struct TestSink(Shared);

impl Sink for TestSink {
    fn send<'a>(&'a mut self, batch: &'a [Outgoing]) -> SendFuture<'a> {
        let mut r = (self.0).0.lock().unwrap();
        r.attempts += 1;
        r.first_attempt.get_or_insert_with(Instant::now);
        let result = match r.mode.unwrap_or(Mode::Accept) {
            Mode::Accept => {
                r.got.extend(batch.iter().map(|o| o.id));
                r.bodies.extend(batch.iter().map(|o| o.body.clone()));
                Ok(())
            }
            Mode::Fail => Err(SinkError::Retry("receiver down".into())),
            Mode::Gone => Err(SinkError::Disable("410 Gone".into())),
        };
        Box::pin(async move { result })
    }
    fn max_batch(&self) -> usize {
        7
    }
}

fn factory(shared: Shared) -> Options {
    let sinks: SinkFactory = Arc::new(move |_config| {
        let s = shared.clone();
        Box::pin(async move { Ok(Box::new(TestSink(s)) as Box<dyn Sink>) })
    });
    Options {
        sinks,
        ..Options::default()
    }
}

fn config(name: &str, events: &[&str]) -> SubscriptionConfig {
    let mut c = SubscriptionConfig::new(name, SinkConfig::Stdout);
    c.events = events.iter().map(|e| (*e).to_owned()).collect();
    c.retry = RetryPolicy {
        initial_ms: 10,
        max_ms: 50,
        park_after_secs: 0,
    };
    c
}

/// A store with the account `alice` and an empty outbox: the account is created while its
/// events are off, so the tests' events are numbered from 1.
async fn store(dir: &std::path::Path) -> Store {
    let mut c = StoreConfig::new(dir);
    c.durable = false;
    c.event_groups = vec![herald_events::EventGroup::Message];
    let s = Store::open(c.clone()).await.unwrap();
    s.add_user(&SessionContext::admin_cli(), "alice", "pw", false)
        .await
        .unwrap();
    s.close().await;
    c.event_groups = Vec::new();
    Store::open(c).await.unwrap()
}

/// Starts a dispatcher for `subscriptions` whose sinks are `shared`; cancel the token to stop it.
async fn start(
    store: &Store,
    subscriptions: Vec<SubscriptionConfig>,
    shared: &Shared,
) -> (Arc<Dispatcher>, CancellationToken) {
    let token = CancellationToken::new();
    let d = Dispatcher::start_with(
        store.clone(),
        subscriptions,
        token.clone(),
        factory(shared.clone()),
    )
    .await
    .unwrap();
    (d, token)
}

async fn mailboxes(store: &Store, from: usize, n: usize) {
    let ctx = SessionContext::user("imap", "alice");
    for i in from..from + n {
        store
            .create_mailbox(&ctx, &format!("box{i}"), None)
            .await
            .unwrap();
    }
}

async fn until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn delivers_in_order_and_resumes_from_the_durable_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let shared = Shared::default();
    let (d, token) = start(&store, vec![config("all", &[])], &shared).await;
    mailboxes(&store, 0, 20).await;
    until("20 events", || shared.got().len() == 20).await;
    assert_eq!(shared.got(), (1..=20).collect::<Vec<_>>());
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.deliveries().await.unwrap()[0].cursor != 20 {
        assert!(Instant::now() < deadline, "cursor not saved");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    token.cancel();
    drop(d);

    // A restart delivers only what was committed since.
    mailboxes(&store, 20, 5).await;
    let shared2 = Shared::default();
    let token = CancellationToken::new();
    let _d = Dispatcher::start_with(
        store.clone(),
        vec![config("all", &[])],
        token.clone(),
        factory(shared2.clone()),
    )
    .await
    .unwrap();
    until("5 more", || shared2.got().len() == 5).await;
    assert_eq!(shared2.got(), (21..=25).collect::<Vec<_>>());
    token.cancel();
}

#[tokio::test]
async fn filters_and_a_failing_receiver_gets_everything_in_order_once_it_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let shared = Shared::default();
    shared.set(Mode::Fail);
    let (_d, token) = start(&store, vec![config("creates", &["MailboxCreate"])], &shared).await;
    mailboxes(&store, 0, 10).await;
    let ctx = SessionContext::user("imap", "alice");
    store.subscribe(&ctx, "box1", true).await.unwrap();
    until("retrying", || shared.attempts() >= 3).await;
    assert!(shared.got().is_empty());
    shared.set(Mode::Accept);
    until("all ten creates", || shared.got().len() == 10).await;
    assert_eq!(
        shared.got(),
        (1..=10).collect::<Vec<_>>(),
        "MailboxSubscribe (11) filtered out"
    );
    token.cancel();
}

#[tokio::test]
async fn a_subscription_that_keeps_failing_shows_failing_and_its_counters_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let shared = Shared::default();
    let (d, token) = start(&store, vec![config("hook", &[])], &shared).await;
    mailboxes(&store, 0, 5).await;
    until("5 events", || shared.got().len() == 5).await;
    let status = d.get("hook").await.unwrap();
    assert_eq!(
        (status.state, status.failing_since.as_deref()),
        ("active", None)
    );

    // The receiver goes down: the subscription says so, with since when and why.
    shared.set(Mode::Fail);
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    mailboxes(&store, 5, 2).await;
    until("retrying", || shared.attempts() >= 5 + 4).await;
    let status = d.get("hook").await.unwrap();
    assert_eq!(status.state, "failing");
    let since =
        chrono::DateTime::parse_from_rfc3339(status.failing_since.as_deref().unwrap()).unwrap();
    assert!(since >= before && since <= chrono::Utc::now(), "{since}");
    assert_eq!(status.last_error.as_deref(), Some("receiver down"));
    assert_eq!(status.delivered, 5);
    assert!(status.failures >= 3 && status.retries >= 2, "{status:?}");
    token.cancel();
    drop(d);

    // After a restart, still failing since the same instant, with the same counters.
    let (d, token) = start(&store, vec![config("hook", &[])], &shared).await;
    let restarted = d.get("hook").await.unwrap();
    assert_eq!(restarted.state, "failing");
    assert_eq!(restarted.failing_since, status.failing_since);
    assert_eq!(restarted.delivered, 5);
    assert!(restarted.failures >= status.failures, "{restarted:?}");
    assert!(restarted.retries >= status.retries, "{restarted:?}");

    // The receiver is back: active again, the counters go on from where they were.
    shared.set(Mode::Accept);
    until("the 2 waiting events", || shared.got().len() == 7).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let recovered = loop {
        let s = d.get("hook").await.unwrap();
        if s.delivered == 7 {
            break s;
        }
        assert!(Instant::now() < deadline, "{s:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(recovered.state, "active");
    assert_eq!(
        (recovered.failing_since, recovered.last_error),
        (None, None)
    );
    assert!(recovered.failures >= status.failures);
    token.cancel();
    drop(d);
    let (d, token) = start(&store, vec![config("hook", &[])], &shared).await;
    let again = d.get("hook").await.unwrap();
    assert_eq!((again.state, again.delivered), ("active", 7));
    assert_eq!(again.failures, recovered.failures);
    token.cancel();
}

#[tokio::test]
async fn undeliverable_events_are_parked_then_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let shared = Shared::default();
    shared.set(Mode::Fail);
    let mut c = config("audit", &[]);
    c.retry.park_after_secs = 1;
    let (d, token) = start(&store, vec![c], &shared).await;
    mailboxes(&store, 0, 3).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if d.parked("audit").await.unwrap().len() == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "events were not parked");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let parked = d.parked("audit").await.unwrap();
    assert_eq!(parked[0].reason, "receiver down");
    assert_eq!(parked[0].event.as_ref().unwrap()["event"], "MailboxCreate");
    // The subscription moved on past the parked events.
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.get("audit").await.unwrap().cursor != 3 {
        assert!(
            Instant::now() < deadline,
            "the cursor did not move past the parked events"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // New events flow once the receiver is back; parked ones wait for a replay.
    shared.set(Mode::Accept);
    mailboxes(&store, 3, 1).await;
    until("the new event", || shared.got() == [4]).await;
    assert_eq!(d.replay_parked("audit").await.unwrap(), 3);
    assert_eq!(shared.got(), [4, 1, 2, 3]);
    assert!(d.parked("audit").await.unwrap().is_empty());
    token.cancel();
}

#[tokio::test]
async fn parking_counts_from_the_first_failure_not_from_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let shared = Shared::default();
    shared.set(Mode::Fail);
    let mut c = config("audit", &[]);
    c.retry.park_after_secs = 1;
    let (d, token) = start(&store, vec![c], &shared).await;
    // Events that waited longer than park_after_secs before their first attempt.
    d.pause("audit").await.unwrap();
    mailboxes(&store, 0, 3).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(shared.attempts(), 0);
    d.resume("audit").await.unwrap();
    until("a first attempt", || shared.attempts() >= 1).await;
    let first = shared.0.lock().unwrap().first_attempt.unwrap();
    // Retries follow every 10-50 ms; none parks yet.
    let deadline = Instant::now() + Duration::from_secs(10);
    while shared.attempts() < 5 {
        assert!(
            d.parked("audit").await.unwrap().is_empty(),
            "parked after {} attempt(s)",
            shared.attempts()
        );
        assert!(Instant::now() < deadline, "timed out: retries");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(d.parked("audit").await.unwrap().is_empty());
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.parked("audit").await.unwrap().len() < 3 {
        assert!(Instant::now() < deadline, "events were not parked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        first.elapsed() >= Duration::from_secs(1),
        "parked {:?} after the first failure",
        first.elapsed()
    );
    token.cancel();
}

#[tokio::test]
async fn a_receiver_can_disable_a_subscription_and_an_operator_resume_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let shared = Shared::default();
    shared.set(Mode::Gone);
    let (d, token) = start(&store, vec![config("hook", &[])], &shared).await;
    mailboxes(&store, 0, 2).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.get("hook").await.unwrap().state != "disabled" {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status = d.get("hook").await.unwrap();
    assert_eq!(status.disabled_reason.as_deref(), Some("410 Gone"));
    assert_eq!(status.cursor, 0, "nothing acknowledged");
    assert_eq!(
        store.deliveries().await.unwrap()[0]
            .disabled_reason
            .as_deref(),
        Some("410 Gone")
    );
    shared.set(Mode::Accept);
    d.resume("hook").await.unwrap();
    until("delivered after resume", || shared.got() == [1, 2]).await;
    token.cancel();
}

#[tokio::test]
async fn pause_replay_and_runtime_subscriptions_that_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let shared = Shared::default();
    let (d, token) = start(&store, vec![], &shared).await;
    mailboxes(&store, 0, 2).await;
    // Created at run time: starts at the end of the outbox, not at its beginning.
    let status = d.create(config("late", &[])).await.unwrap();
    assert_eq!((status.origin.as_str(), status.cursor), ("api", 2));
    assert!(d.create(config("late", &[])).await.is_err());
    mailboxes(&store, 2, 1).await;
    until("event 3", || shared.got() == [3]).await;
    d.pause("late").await.unwrap();
    mailboxes(&store, 3, 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(shared.got(), [3], "paused: nothing sent");
    d.resume("late").await.unwrap();
    until("event 4", || shared.got() == [3, 4]).await;
    d.replay("late", 1).await.unwrap();
    until("replayed from 1", || shared.got() == [3, 4, 1, 2, 3, 4]).await;
    // The cursor is committed after the sink's acknowledgement; the status shows it once saved.
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.get("late").await.unwrap().cursor != 4 {
        assert!(Instant::now() < deadline, "the cursor was not saved");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    token.cancel();
    drop(d);

    let token = CancellationToken::new();
    let d = Dispatcher::start_with(
        store.clone(),
        vec![],
        token.clone(),
        factory(Shared::default()),
    )
    .await
    .unwrap();
    let list = d.list().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].name.as_str(), list[0].cursor), ("late", 4));
    d.delete("late").await.unwrap();
    assert!(store.deliveries().await.unwrap().is_empty());
    token.cancel();
}

#[tokio::test]
async fn configured_subscriptions_cannot_be_deleted_through_the_api_and_leave_with_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let token = CancellationToken::new();
    let d = Dispatcher::start_with(
        store.clone(),
        vec![config("cfg", &[])],
        token.clone(),
        factory(Shared::default()),
    )
    .await
    .unwrap();
    assert!(
        d.delete("cfg")
            .await
            .unwrap_err()
            .to_string()
            .contains("configuration file")
    );
    token.cancel();
    drop(d);
    let token = CancellationToken::new();
    let d = Dispatcher::start_with(
        store.clone(),
        vec![],
        token.clone(),
        factory(Shared::default()),
    )
    .await
    .unwrap();
    assert!(d.list().await.unwrap().is_empty());
    assert!(store.deliveries().await.unwrap().is_empty());
    token.cancel();
}

#[tokio::test]
async fn two_subscriptions_of_one_name_are_refused_at_start_and_through_the_api() {
    use herald_notify::dispatch::DispatchError;
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let token = CancellationToken::new();
    let err = Dispatcher::start_with(
        store.clone(),
        vec![
            config("hook", &[]),
            config("audit", &[]),
            config("hook", &[]),
        ],
        token.clone(),
        factory(Shared::default()),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("`hook`"), "{err}");
    assert!(
        store.deliveries().await.unwrap().is_empty(),
        "nothing started"
    );
    let err = Dispatcher::start_with(
        store.clone(),
        vec![config("a b/c", &[])],
        token.clone(),
        factory(Shared::default()),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("1 to 64 characters"), "{err}");

    let shared = Shared::default();
    let d = Dispatcher::start_with(
        store.clone(),
        vec![config("hook", &[])],
        token.clone(),
        factory(shared.clone()),
    )
    .await
    .unwrap();
    let err = d.create(config("hook", &[])).await.unwrap_err();
    assert!(matches!(err, DispatchError::Exists(_)), "{err:?}");
    for bad in ["", "has space", "slash/name", &"n".repeat(65)] {
        let err = d.create(config(bad, &[])).await.unwrap_err();
        assert!(matches!(err, DispatchError::Config(_)), "{bad}: {err:?}");
    }
    assert_eq!(d.list().await.unwrap().len(), 1);
    // The one subscription gets every event.
    mailboxes(&store, 0, 5).await;
    until("5 events", || shared.got().len() == 5).await;
    assert_eq!(shared.got(), [1, 2, 3, 4, 5]);
    token.cancel();
}

#[tokio::test]
async fn the_status_hides_secrets_the_sink_still_gets() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let built: Arc<Mutex<Vec<SinkConfig>>> = Arc::default();
    let seen = Arc::clone(&built);
    let sinks: SinkFactory = Arc::new(move |config| {
        seen.lock().unwrap().push(config);
        Box::pin(async move { Ok(Box::new(TestSink(Shared::default())) as Box<dyn Sink>) })
    });
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let url = "https://u:p@hooks.example.net/h?k=v";
    let sink = SinkConfig::Webhook {
        url: url.into(),
        secret: Some(secret.into()),
        secret_next: None,
        batch: None,
        timeout_ms: None,
    };
    let token = CancellationToken::new();
    let d = Dispatcher::start_with(
        store.clone(),
        vec![SubscriptionConfig::new("hook", sink.clone())],
        token.clone(),
        Options {
            sinks,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(built.lock().unwrap().as_slice(), [sink]);
    let shown = d.get("hook").await.unwrap();
    let json = serde_json::to_string(&shown).unwrap();
    assert!(
        !json.contains("MfKQ9r8") && !json.contains("u:p") && !json.contains("k=v"),
        "{json}"
    );
    assert_eq!(shown.config, d.list().await.unwrap()[0].config);
    token.cancel();
}

#[tokio::test]
async fn small_messages_travel_with_the_event_large_ones_as_a_signed_link() {
    use herald_notify::content_ref::ContentSigner;
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let shared = Shared::default();
    let signer = ContentSigner::new(
        &[3u8; 32],
        "http://127.0.0.1:8080",
        Duration::from_secs(600),
    );
    let mut options = factory(shared.clone());
    options.content_links = Some(signer.clone());
    let mut c = config("content", &["MessageAppend"]);
    c.content.max_bytes = 100;
    let token = CancellationToken::new();
    let _d = Dispatcher::start_with(store.clone(), vec![c], token.clone(), options)
        .await
        .unwrap();
    let ctx = SessionContext::user("imap", "alice");
    let small = b"Subject: hi\r\n\r\nshort\r\n".to_vec();
    let large = format!("Subject: big\r\n\r\n{}\r\n", "x".repeat(500)).into_bytes();
    store
        .append(&ctx, "INBOX", small.clone(), &[], None)
        .await
        .unwrap();
    store.append(&ctx, "INBOX", large, &[], None).await.unwrap();
    until("two appends", || shared.got().len() == 2).await;
    let bodies = shared.0.lock().unwrap().bodies.clone();
    let first = herald_events::Event::from_slice(&bodies[0]).unwrap();
    assert_eq!(
        first.message_content.as_deref().map(str::as_bytes),
        Some(&small[..])
    );
    first.validate().unwrap();
    let second = herald_events::Event::from_slice(&bodies[1]).unwrap();
    assert!(second.message_content.is_none());
    let link = second
        .extension(herald_events::vnd::CONTENT_URL)
        .and_then(|v| v.as_str())
        .unwrap()
        .to_owned();
    assert!(
        link.starts_with("http://127.0.0.1:8080/messages?uri=imap://alice@"),
        "{link}"
    );
    token.cancel();
}

#[tokio::test]
async fn a_urlauth_reference_verifies_with_the_owners_key_until_resetkey() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let shared = Shared::default();
    let mut c = config("urlauth", &["MessageAppend"]);
    c.content.max_bytes = 100;
    c.content.reference = herald_notify::References::URLAUTH;
    c.content.urlauth_expire_secs = 60;
    let token = CancellationToken::new();
    let _d = Dispatcher::start_with(
        store.clone(),
        vec![c],
        token.clone(),
        factory(shared.clone()),
    )
    .await
    .unwrap();
    let ctx = SessionContext::user("imap", "alice");
    let small = b"Subject: hi\r\n\r\nshort\r\n".to_vec();
    let large = format!("Subject: big\r\n\r\n{}\r\n", "x".repeat(500)).into_bytes();
    store.append(&ctx, "INBOX", small, &[], None).await.unwrap();
    store.append(&ctx, "INBOX", large, &[], None).await.unwrap();
    until("two appends", || shared.got().len() == 2).await;
    let bodies = shared.0.lock().unwrap().bodies.clone();
    let first = herald_events::Event::from_slice(&bodies[0]).unwrap();
    assert!(
        first.extension(herald_events::vnd::URLAUTH).is_none(),
        "content that fits needs no reference"
    );
    let second = herald_events::Event::from_slice(&bodies[1]).unwrap();
    second.validate().unwrap();
    assert!(second.extension(herald_events::vnd::CONTENT_URL).is_none());
    let url = second
        .extension(herald_events::vnd::URLAUTH)
        .and_then(|v| v.as_str())
        .unwrap()
        .to_owned();
    let parsed: herald_events::ImapUrl = url.parse().unwrap();
    assert_eq!(parsed.uid, second.uri.as_ref().unwrap().uid);
    let expire = parsed.urlauth.as_ref().unwrap().expire.as_ref().unwrap();
    let left = expire.unix_millis() - herald_store::now_ms();
    assert!((50_000..=60_000).contains(&left), "expires in {left} ms");
    let (rump, _, tok) = herald_store::urlauth::split(&url).unwrap();
    let key = store
        .access_key_of("alice", "INBOX")
        .await
        .unwrap()
        .unwrap();
    assert!(herald_store::urlauth::verify(&key, rump, tok));
    store.reset_access_keys(&ctx, None).await.unwrap();
    let key = store.access_key(&ctx, "INBOX").await.unwrap();
    assert!(!herald_store::urlauth::verify(&key, rump, tok), "revoked");
    token.cancel();
}

#[tokio::test]
async fn body_structure_is_computed_only_for_subscriptions_that_name_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let shared = Shared::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let mut options = factory(shared.clone());
    let counted = Arc::clone(&calls);
    options.body_structure = Some(Arc::new(move |raw: &[u8]| {
        counted.fetch_add(1, Ordering::SeqCst);
        Some(format!(
            "(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" {} 1)",
            raw.len()
        ))
    }));
    let mut c = config("structured", &[]);
    c.params = vec!["uri".into(), "bodyStructure".into()];
    let token = CancellationToken::new();
    let d = Dispatcher::start_with(store.clone(), vec![c], token.clone(), options)
        .await
        .unwrap();
    let ctx = SessionContext::user("imap", "alice");
    store.create_mailbox(&ctx, "Work", None).await.unwrap();
    store
        .append(
            &ctx,
            "INBOX",
            b"Subject: hi\r\n\r\nbody\r\n".to_vec(),
            &[],
            None,
        )
        .await
        .unwrap();
    until("two events", || shared.got().len() == 2).await;
    let bodies = shared.0.lock().unwrap().bodies.clone();
    let append = herald_events::Event::from_slice(&bodies[1]).unwrap();
    assert_eq!(
        append.body_structure.as_deref(),
        Some("(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 21 1)")
    );
    let create = herald_events::Event::from_slice(&bodies[0]).unwrap();
    assert!(create.body_structure.is_none());
    assert_eq!(calls.load(Ordering::SeqCst), 1, "only the message event");

    // A subscription that does not name it: never computed.
    d.create(config("plain", &[])).await.unwrap();
    store
        .append(
            &ctx,
            "INBOX",
            b"Subject: 2\r\n\r\nx\r\n".to_vec(),
            &[],
            None,
        )
        .await
        .unwrap();
    until("both subscriptions", || shared.got().len() == 4).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2, "once, for `structured`");
    token.cancel();
}

#[tokio::test]
async fn racing_creates_start_one_worker_and_delete_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let shared = Shared::default();
    let (d, token) = start(&store, vec![], &shared).await;
    let (a, b) = tokio::join!(d.create(config("twin", &[])), d.create(config("twin", &[])));
    assert!(a.is_ok() != b.is_ok(), "exactly one create wins");
    mailboxes(&store, 0, 3).await;
    until("three events", || shared.got().len() == 3).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(shared.got(), [1, 2, 3], "one worker: each event once");
    // Delete waits for the worker; a new subscription of the same name starts clean.
    d.delete("twin").await.unwrap();
    mailboxes(&store, 3, 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        shared.got(),
        [1, 2, 3],
        "the deleted worker delivers nothing more"
    );
    let again = d.create(config("twin", &[])).await.unwrap();
    assert_eq!(again.cursor, 4);
    token.cancel();
}

/// A receiver that takes a while per request and notices two sends at once.
#[derive(Default)]
struct Exclusive {
    failing: AtomicBool,
    in_flight: AtomicUsize,
    overlaps: AtomicUsize,
    sinks: AtomicUsize,
    got: Mutex<Vec<u64>>,
}

struct ExclusiveSink(Arc<Exclusive>);

impl Sink for ExclusiveSink {
    fn send<'a>(&'a mut self, batch: &'a [Outgoing]) -> SendFuture<'a> {
        Box::pin(async move {
            let r = &self.0;
            if r.in_flight.fetch_add(1, Ordering::SeqCst) > 0 {
                r.overlaps.fetch_add(1, Ordering::SeqCst);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            let result = if r.failing.load(Ordering::SeqCst) {
                Err(SinkError::Retry("receiver down".into()))
            } else {
                r.got.lock().unwrap().extend(batch.iter().map(|o| o.id));
                Ok(())
            };
            r.in_flight.fetch_sub(1, Ordering::SeqCst);
            result
        })
    }
    fn max_batch(&self) -> usize {
        5
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_events_are_replayed_by_the_one_sink_between_live_batches() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let receiver = Arc::new(Exclusive::default());
    receiver.failing.store(true, Ordering::SeqCst);
    let sinks: SinkFactory = {
        let receiver = Arc::clone(&receiver);
        Arc::new(move |_config| {
            let r = Arc::clone(&receiver);
            r.sinks.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move { Ok(Box::new(ExclusiveSink(r)) as Box<dyn Sink>) })
        })
    };
    let mut c = config("audit", &[]);
    c.retry.park_after_secs = 1;
    let token = CancellationToken::new();
    let options = Options {
        sinks,
        ..Options::default()
    };
    let d = Dispatcher::start_with(store.clone(), vec![c], token.clone(), options)
        .await
        .unwrap();
    mailboxes(&store, 0, 10).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while d.parked("audit").await.unwrap().len() < 10 {
        assert!(Instant::now() < deadline, "events were not parked");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The receiver is back and live events keep the worker busy while the parked ones are
    // replayed.
    receiver.failing.store(false, Ordering::SeqCst);
    let live = {
        let store = store.clone();
        tokio::spawn(async move { mailboxes(&store, 10, 300).await })
    };
    let got = |r: &Exclusive| r.got.lock().unwrap().clone();
    until("live delivery", || got(&receiver).len() >= 10).await;
    assert_eq!(d.replay_parked("audit").await.unwrap(), 10);
    live.await.unwrap();
    until("every event", || got(&receiver).len() >= 310).await;

    assert_eq!(
        receiver.overlaps.load(Ordering::SeqCst),
        0,
        "two sends were in flight at once"
    );
    assert_eq!(receiver.sinks.load(Ordering::SeqCst), 1, "one sink");
    let got = got(&receiver);
    assert_eq!(got.len(), 310, "each event once");
    let (parked, live): (Vec<u64>, Vec<u64>) = got.iter().partition(|id| **id <= 10);
    assert_eq!(parked, (1..=10).collect::<Vec<_>>(), "parked, in order");
    assert_eq!(live, (11..=310).collect::<Vec<_>>(), "live, in order");
    assert!(d.parked("audit").await.unwrap().is_empty());
    token.cancel();
}

/// A receiver that takes a batch event by event, as the webhook sink posts it, and refuses
/// every `every`-th request; it tells how many events of a failed batch it took.
struct Flaky {
    every: usize,
    requests: usize,
    acknowledged: usize,
    got: Arc<Mutex<Vec<u64>>>,
}

impl Sink for Flaky {
    fn send<'a>(&'a mut self, batch: &'a [Outgoing]) -> SendFuture<'a> {
        self.acknowledged = 0;
        let mut result = Ok(());
        for o in batch {
            self.requests += 1;
            if self.requests.is_multiple_of(self.every) {
                result = Err(SinkError::Retry("503 Service Unavailable".into()));
                break;
            }
            self.got.lock().unwrap().push(o.id);
            self.acknowledged += 1;
        }
        Box::pin(async move { result })
    }
    fn max_batch(&self) -> usize {
        50
    }
    fn acknowledged(&self) -> usize {
        self.acknowledged
    }
}

#[tokio::test]
async fn a_failed_batch_is_retried_after_the_events_the_receiver_took() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let got = Arc::new(Mutex::new(Vec::new()));
    let sinks: SinkFactory = {
        let got = Arc::clone(&got);
        Arc::new(move |_config| {
            let got = Arc::clone(&got);
            Box::pin(async move {
                Ok(Box::new(Flaky {
                    every: 7,
                    requests: 0,
                    acknowledged: 0,
                    got,
                }) as Box<dyn Sink>)
            })
        })
    };
    let token = CancellationToken::new();
    let options = Options {
        sinks,
        ..Options::default()
    };
    let d = Dispatcher::start_with(
        store.clone(),
        vec![config("audit", &[])],
        token.clone(),
        options,
    )
    .await
    .unwrap();
    // Committed while the subscription waits, so they come in batches of 50, each of which
    // meets a refusal.
    d.pause("audit").await.unwrap();
    mailboxes(&store, 0, 200).await;
    d.resume("audit").await.unwrap();
    let got = move || got.lock().unwrap().clone();
    until("every event", || got().len() >= 200).await;
    assert_eq!(
        got(),
        (1..=200).collect::<Vec<_>>(),
        "each event once, in order: a retry resends none the receiver took"
    );
    let status = d.get("audit").await.unwrap();
    assert_eq!((status.cursor, status.delivered), (200, 200));
    token.cancel();
}
