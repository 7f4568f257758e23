//! The RFC 5423 §4 rules, one test each, through the public `Store` API: which events an
//! operation generates (type and key parameters), which it must not, and that every generated
//! event validates and is exactly what the outbox holds.

use crate::*;
use herald_events::{Event, EventType, UidSet, vnd};
use std::net::{IpAddr, Ipv4Addr};

mod metadata;

const HOST: &str = "mail.example.org";

/// True when the suite runs on PostgreSQL (`HERALD_TEST_BACKEND=postgres`) instead of the
/// embedded store; `HERALD_TEST_POSTGRES_URL` names the database (default: the machine's
/// service, database `test`).
fn on_postgres() -> bool {
    std::env::var("HERALD_TEST_BACKEND").as_deref() == Ok("postgres")
}

/// A test's configuration for the data directory `dir`, on the backend the suite runs on.
/// On PostgreSQL each directory gets a schema of its own, named after it, so a test that
/// opens a store twice on one directory finds its data again and tests do not see each other.
fn config_for(dir: &std::path::Path) -> StoreConfig {
    let mut config = StoreConfig::new(dir).with_fqdn(HOST);
    if on_postgres() {
        let url = std::env::var("HERALD_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let digest = crate::blobs::sha256(dir.as_os_str().as_encoded_bytes());
        let tag = crate::blobs::hex(&digest[..8]);
        config.postgres = Some(crate::postgres::PgConfig {
            url,
            pool_size: 4,
            schema: Some(format!("herald_c_{tag}")),
        });
    }
    config
}

/// Runs `sql` directly on the store's database, whichever backend it is, and returns the
/// first column of its first row (an integer), or 0 for a statement that returns none.
async fn raw_sql(store: &Store, sql: &str) -> i64 {
    let config = store.config();
    match &config.postgres {
        None => {
            let conn =
                rusqlite::Connection::open(config.path.join(crate::embedded::DB_FILE)).unwrap();
            let mut stmt = conn.prepare(sql).unwrap();
            let mut rows = stmt.query([]).unwrap();
            match rows.next().unwrap() {
                Some(row) => row.get(0).unwrap(),
                None => 0,
            }
        }
        Some(pg) => {
            let (client, connection) = tokio_postgres::connect(&pg.url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            if let Some(schema) = &pg.schema {
                client
                    .batch_execute(&format!("SET search_path = {schema}"))
                    .await
                    .unwrap();
            }
            let rows = client.query(sql, &[]).await.unwrap();
            rows.first().map_or(0, |r| r.get::<_, i64>(0))
        }
    }
}

/// A test's data directory; on PostgreSQL also the schema [`config_for`] names after it, which
/// goes with the directory, so a local run leaves nothing behind in the database.
struct TestDir(tempfile::TempDir);

fn test_dir() -> TestDir {
    TestDir(tempfile::tempdir().unwrap())
}

impl TestDir {
    fn path(&self) -> &std::path::Path {
        self.0.path()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let Some(pg) = config_for(self.path()).postgres else {
            return;
        };
        // Inside the test's runtime: the schema is dropped from a runtime of its own.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| rt.block_on(crate::postgres::drop_schema(&pg)))
        })
        .join();
        if !matches!(dropped, Ok(Ok(Ok(())))) {
            eprintln!("could not drop a test schema: {dropped:?}");
        }
    }
}

/// Tests of what only the embedded store has (SQLite files, message files, its schema
/// history) return early on PostgreSQL, saying so.
fn embedded_only(test: &str) -> bool {
    if on_postgres() {
        eprintln!("{test}: embedded store only; not run on PostgreSQL");
        return true;
    }
    false
}

struct T {
    _dir: TestDir,
    store: Store,
}

async fn open_with(f: impl FnOnce(&mut StoreConfig)) -> T {
    let dir = test_dir();
    let mut config = config_for(dir.path());
    config.durable = false;
    f(&mut config);
    let store = Store::open(config).await.unwrap();
    T { _dir: dir, store }
}

async fn open() -> T {
    open_with(|_| {}).await
}

/// A store whose outbox is empty although `name` exists: the account is created while account
/// and mailbox events are off, then the store is reopened with every group on. For tests whose
/// expectations are outbox ids.
async fn open_with_silent_user(name: &str) -> (T, SessionContext) {
    let dir = test_dir();
    let mut config = config_for(dir.path());
    config.durable = false;
    config.event_groups = vec![herald_events::EventGroup::Message];
    let store = Store::open(config.clone()).await.unwrap();
    store.add_user(&admin(), name, "pw", false).await.unwrap();
    store.close().await;
    config.event_groups = Vec::new();
    let store = Store::open(config).await.unwrap();
    assert_eq!(store.last_event_id().await.unwrap(), 0);
    (T { _dir: dir, store }, SessionContext::user("imap", name))
}

fn admin() -> SessionContext {
    SessionContext::admin_cli()
}

impl T {
    /// Adds `name` and returns an IMAP session context for it.
    async fn user(&self, name: &str) -> SessionContext {
        let c = self
            .store
            .add_user(&admin(), name, "pw", false)
            .await
            .unwrap();
        self.check(&c.events).await;
        let expected: Vec<EventType> = [EventType::AccountCreate, EventType::MailboxCreate]
            .into_iter()
            .filter(|t| self.store.config().generates(t))
            .collect();
        assert_eq!(
            types(&c.events),
            expected,
            "account creation announces the account and its INBOX"
        );
        if let [account, inbox] = &c.events[..] {
            let url = account.uri.as_ref().unwrap();
            assert_eq!(url.user.as_deref(), Some(name));
            assert_eq!(url.mailbox, None);
            let url = inbox.mailbox_id.as_ref().unwrap();
            assert_eq!(url.mailbox.as_deref(), Some("INBOX"));
            assert!(url.uidvalidity.is_some());
        }
        SessionContext::user("imap", name)
    }

    async fn last(&self) -> u64 {
        self.store.last_event_id().await.unwrap()
    }

    async fn append(
        &self,
        ctx: &SessionContext,
        mailbox: &str,
        body: &str,
        flags: &[&str],
    ) -> Appended {
        let flags: Vec<String> = flags.iter().map(|f| (*f).to_owned()).collect();
        let c = self
            .store
            .append(ctx, mailbox, body.as_bytes().to_vec(), &flags, None)
            .await
            .unwrap();
        self.check(&c.events).await;
        c.value
    }

    /// Every event validates, carries the common parameters, and is byte-for-byte what the
    /// outbox holds under its id.
    async fn check(&self, events: &[Event]) {
        for e in events {
            if let Err(v) = e.validate() {
                panic!("invalid {:?}: {v}\n{}", e.event, e.to_json());
            }
            assert!(e.timestamp.is_some() && e.service.is_some() && e.user.is_some());
            assert_eq!(e.server_fqdn.as_deref(), Some(HOST));
            assert_eq!(e.pid, Some(std::process::id()));
            assert_eq!(e.process.as_deref(), Some("herald"));
            let id = e.herald_id().expect("committed events have vnd.herald.id");
            let stored = self.store.events_after(id - 1, 1).await.unwrap();
            assert_eq!(stored[0].id, id);
            assert_eq!(stored[0].json, e.to_json());
        }
        for w in events.windows(2) {
            assert_eq!(w[1].herald_id().unwrap(), w[0].herald_id().unwrap() + 1);
        }
    }

    async fn consistent(&self) {
        let c = self.store.check_consistency().await.unwrap();
        assert!(c.problems.is_empty(), "{:?}", c.problems);
    }
}

fn types(events: &[Event]) -> Vec<EventType> {
    events.iter().map(|e| e.event.clone()).collect()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| (*x).to_owned()).collect()
}

fn uids(v: &str) -> UidSet {
    v.parse().unwrap()
}

// ---- §4.1 message addition and deletion -----------------------------------------------------

#[tokio::test]
async fn append_emits_message_append_with_uidvalidity_uid_and_cause() {
    let t = open().await;
    let ctx = t.user("alice").await;
    let c = t
        .store
        .append(
            &ctx,
            "inbox",
            b"Subject: hi\r\n\r\nbody".to_vec(),
            &s(&["\\seen", "$Work"]),
            None,
        )
        .await
        .unwrap();
    t.check(&c.events).await;
    let [e] = &c.events[..] else {
        panic!("{:?}", c.events)
    };
    let mb = t.store.mailbox(&ctx, "INBOX").await.unwrap();
    assert_eq!(e.event, EventType::MessageAppend);
    assert_eq!(
        e.uri.as_ref().unwrap().to_string(),
        format!(
            "imap://alice@{HOST}/INBOX;UIDVALIDITY={}/;UID=1",
            mb.uidvalidity
        )
    );
    assert_eq!(e.user.as_deref(), Some("alice"));
    assert_eq!(e.admin, None);
    assert_eq!(e.service.as_deref(), Some("imap"));
    assert_eq!((e.messages, e.uidnext), (Some(1), Some(2)));
    assert_eq!(e.message_size, Some(19));
    assert_eq!(e.modseq, Some(c.value.modseq));
    assert_eq!(e.flag_names.as_ref().unwrap().to_string(), "\\Seen $Work");
    assert_eq!(e.envelope, None, "MessageAppend carries no envelope");
    assert_eq!(e.extension(vnd::CAUSE).unwrap(), "append");
    assert_eq!(mb.messages, 1);
    assert_eq!(mb.highest_modseq, c.value.modseq);
    let meta = t.store.fetch(&ctx, "INBOX", None).await.unwrap();
    assert_eq!(meta[0].flags, s(&["\\Seen", "$Work"]));
    assert_eq!(
        t.store.read_message(&ctx, "INBOX", 1).await.unwrap(),
        b"Subject: hi\r\n\r\nbody"
    );
    t.consistent().await;
}

#[tokio::test]
async fn delivery_emits_message_new_with_envelope() {
    let t = open().await;
    t.user("bob").await;
    let mut lmtp = SessionContext::service("lmtp");
    lmtp.client_ip = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    lmtp.client_port = Some(40000);
    lmtp.server_domain = Some("mx.example.org".into());
    lmtp.server_port = Some(2424);
    let envelope = "MAIL FROM:<a@example.net>\r\nRCPT TO:<bob@example.org>\r\n";
    let r = Recipient {
        user: "bob".into(),
        mailbox: None,
        envelope: envelope.into(),
    };
    let c = t
        .store
        .deliver(&lmtp, &r, b"hello".to_vec(), None)
        .await
        .unwrap();
    t.check(&c.events).await;
    let [e] = &c.events[..] else { panic!() };
    assert_eq!(e.event, EventType::MessageNew);
    assert_eq!(e.envelope.as_deref(), Some(envelope));
    assert_eq!(e.user.as_deref(), Some("bob"));
    assert_eq!(e.uri.as_ref().unwrap().uid, Some(1));
    assert!(e.uri.as_ref().unwrap().uidvalidity.is_some());
    assert_eq!(e.extension(vnd::CAUSE), None);
    assert_eq!(e.client_ip, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    assert_eq!((e.client_port, e.server_port), (Some(40000), Some(2424)));
    assert_eq!(e.server_domain.as_deref(), Some("mx.example.org"));
}

#[tokio::test]
async fn one_content_for_many_recipients_is_stored_once() {
    let t = open().await;
    for u in ["a", "b", "c"] {
        t.user(u).await;
    }
    let rcpts: Vec<Recipient> = ["a", "b", "c", "nobody"]
        .iter()
        .map(|u| Recipient {
            user: (*u).into(),
            mailbox: None,
            envelope: format!("MAIL FROM:<x@y>\r\nRCPT TO:<{u}@example.org>\r\n"),
        })
        .collect();
    let results = t
        .store
        .deliver_many(
            &SessionContext::service("lmtp"),
            &rcpts,
            b"same body".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(results.len(), 4);
    for (r, rcpt) in results[..3].iter().zip(&rcpts) {
        let c = r.as_ref().unwrap();
        t.check(&c.events).await;
        assert_eq!(c.events[0].user.as_deref(), Some(rcpt.user.as_str()));
    }
    assert!(matches!(
        results[3],
        Err(StoreError::NotFound {
            what: "account",
            ..
        })
    ));
    let c = t.store.check_consistency().await.unwrap();
    // Three MessageNew after each account's AccountCreate and INBOX MailboxCreate.
    assert_eq!((c.messages, c.blobs, c.events), (3, 1, 3 * 2 + 3));
    assert!(c.problems.is_empty(), "{:?}", c.problems);
}

#[tokio::test]
async fn expunge_emits_uidset_of_deleted_messages_only() {
    let t = open().await;
    let ctx = t.user("alice").await;
    for i in 0..5 {
        t.append(
            &ctx,
            "INBOX",
            &format!("m{i}"),
            if i % 2 == 0 { &["\\Deleted"] } else { &[] },
        )
        .await;
    }
    let before = t.last().await;
    let c = t
        .store
        .expunge(&ctx, "INBOX", Some(&uids("1:3")))
        .await
        .unwrap();
    t.check(&c.events).await;
    assert_eq!(c.value, vec![1, 3]);
    let [e] = &c.events[..] else { panic!() };
    assert_eq!(e.event, EventType::MessageExpunge);
    assert_eq!(e.uidset.as_ref().unwrap().to_string(), "1,3");
    assert_eq!((e.messages, e.uidnext), (Some(3), Some(6)));
    assert!(e.uri.as_ref().unwrap().uidvalidity.is_some());
    assert_eq!(e.uri.as_ref().unwrap().uid, None);
    let c = t.store.expunge(&ctx, "INBOX", None).await.unwrap();
    assert_eq!(c.value, vec![5]);
    let e = &c.events[0];
    assert_eq!(e.uri.as_ref().unwrap().uid, Some(5), "one message: its URL");
    assert!(e.modseq.is_some(), "one-message event carries modseq");
    let c = t.store.expunge(&ctx, "INBOX", None).await.unwrap();
    assert!(
        c.events.is_empty() && c.value.is_empty(),
        "nothing expunged ⇒ no event"
    );
    assert_eq!(t.last().await, before + 2);
    t.consistent().await;
}

#[tokio::test]
async fn copy_emits_message_append_per_message_with_source_and_special_use() {
    let t = open().await;
    let ctx = t.user("alice").await;
    t.store
        .create_mailbox(&ctx, "Spam", Some(SpecialUse::Junk))
        .await
        .unwrap();
    t.store.create_mailbox(&ctx, "Work", None).await.unwrap();
    t.append(&ctx, "Spam", "a", &["$Junk"]).await;
    t.append(&ctx, "Spam", "bb", &[]).await;
    let c = t
        .store
        .copy(&ctx, "Spam", &uids("1:9"), "INBOX")
        .await
        .unwrap();
    t.check(&c.events).await;
    assert_eq!(c.value.uids, vec![(1, 1), (2, 2)]);
    assert_eq!(
        types(&c.events),
        [EventType::MessageAppend, EventType::MessageAppend]
    );
    let spam = t.store.mailbox(&ctx, "Spam").await.unwrap();
    for (i, e) in c.events.iter().enumerate() {
        assert_eq!(e.extension(vnd::CAUSE).unwrap(), "copy");
        assert_eq!(
            e.extension(vnd::SOURCE_MAILBOX_ID)
                .unwrap()
                .as_str()
                .unwrap(),
            format!("imap://alice@{HOST}/Spam;UIDVALIDITY={}", spam.uidvalidity)
        );
        assert_eq!(e.extension(vnd::SOURCE_SPECIAL_USE).unwrap(), "\\Junk");
        assert_eq!(e.uri.as_ref().unwrap().uid, Some(i as u32 + 1));
        assert_eq!(e.uri.as_ref().unwrap().mailbox.as_deref(), Some("INBOX"));
    }
    assert_eq!(
        c.events[0].flag_names.as_ref().unwrap().to_string(),
        "$Junk"
    );
    assert_eq!(c.events[1].message_size, Some(2));
    // Out of a mailbox without SPECIAL-USE: no sourceSpecialUse.
    let c = t
        .store
        .copy(&ctx, "INBOX", &uids("1"), "Work")
        .await
        .unwrap();
    assert_eq!(c.events[0].extension(vnd::SOURCE_SPECIAL_USE), None);
    // A UID set naming nothing: no change, no event.
    let c = t
        .store
        .copy(&ctx, "INBOX", &uids("100"), "Work")
        .await
        .unwrap();
    assert!(c.events.is_empty());
    assert_eq!(
        t.store.quota("alice").await.unwrap().used_messages,
        5,
        "copies count"
    );
    t.consistent().await;
}

#[tokio::test]
async fn move_emits_appends_in_target_and_expunge_in_source() {
    let t = open().await;
    let ctx = t.user("alice").await;
    t.store
        .create_mailbox(&ctx, "Junk", Some(SpecialUse::Junk))
        .await
        .unwrap();
    for i in 0..3 {
        t.append(&ctx, "INBOX", &format!("m{i}"), &[]).await;
    }
    let usage = t.store.quota("alice").await.unwrap();
    let c = t
        .store
        .move_messages(&ctx, "INBOX", &uids("1,3"), "Junk")
        .await
        .unwrap();
    t.check(&c.events).await;
    assert_eq!(
        types(&c.events),
        [
            EventType::MessageAppend,
            EventType::MessageAppend,
            EventType::MessageExpunge
        ]
    );
    assert_eq!(c.events[0].extension(vnd::CAUSE).unwrap(), "move");
    assert_eq!(
        c.events[0].extension(vnd::SOURCE_SPECIAL_USE),
        None,
        "INBOX has none"
    );
    let x = &c.events[2];
    assert_eq!(x.uidset.as_ref().unwrap().to_string(), "1,3");
    assert_eq!(x.uri.as_ref().unwrap().mailbox.as_deref(), Some("INBOX"));
    assert_eq!(x.messages, Some(1));
    assert_eq!(
        t.store.quota("alice").await.unwrap(),
        usage,
        "a move changes no usage"
    );
    // Out of \Junk: consumers can tell "not spam" from the source attribute.
    let c = t
        .store
        .move_messages(&ctx, "Junk", &uids("1"), "INBOX")
        .await
        .unwrap();
    assert_eq!(
        c.events[0].extension(vnd::SOURCE_SPECIAL_USE).unwrap(),
        "\\Junk"
    );
    assert_eq!(t.store.fetch(&ctx, "Junk", None).await.unwrap().len(), 1);
    t.consistent().await;
}

#[tokio::test]
async fn move_into_the_same_mailbox_renumbers_the_messages() {
    let t = open().await;
    let ctx = t.user("alice").await;
    for i in 0..3 {
        t.append(&ctx, "INBOX", &format!("m{i}"), &["$Work"]).await;
    }
    let before = t.store.mailbox(&ctx, "INBOX").await.unwrap();
    let c = t
        .store
        .move_messages(&ctx, "INBOX", &uids("1,3"), "INBOX")
        .await
        .unwrap();
    t.check(&c.events).await;
    assert_eq!(c.value.uids, [(1, 4), (3, 5)]);
    assert_eq!(
        types(&c.events),
        [
            EventType::MessageAppend,
            EventType::MessageAppend,
            EventType::MessageExpunge
        ]
    );
    let x = &c.events[2];
    assert_eq!(x.uidset.as_ref().unwrap().to_string(), "1,3");
    assert_eq!((x.messages, x.uidnext), (Some(3), Some(6)));
    let after = t.store.mailbox(&ctx, "INBOX").await.unwrap();
    assert_eq!((after.messages, after.uidnext), (3, 6));
    assert!(after.highest_modseq > before.highest_modseq);
    let left: Vec<(u32, Vec<String>)> = t
        .store
        .fetch(&ctx, "INBOX", None)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.uid, m.flags))
        .collect();
    let work = vec!["$Work".to_owned()];
    assert_eq!(left, [(2, work.clone()), (4, work.clone()), (5, work)]);
    // The copies read back as the originals did.
    assert_eq!(t.store.read_message(&ctx, "INBOX", 4).await.unwrap(), b"m0");
    assert_eq!(t.store.read_message(&ctx, "INBOX", 5).await.unwrap(), b"m2");
    t.consistent().await;
}

#[tokio::test]
async fn recent_goes_to_the_first_claim_only_and_survives_a_restart() {
    let dir = test_dir();
    let config = || {
        let mut c = config_for(dir.path());
        c.durable = false;
        c
    };
    let store = Store::open(config()).await.unwrap();
    let t = T {
        _dir: test_dir(),
        store,
    };
    let ctx = t.user("alice").await;
    for i in 0..2 {
        t.append(&ctx, "INBOX", &format!("m{i}"), &[]).await;
    }
    let uv = t.store.mailbox(&ctx, "INBOX").await.unwrap().uidvalidity;
    assert_eq!(t.store.mailbox(&ctx, "INBOX").await.unwrap().recent_uid, 1);
    // The first session gets 1 and 2; a second one gets nothing (its range starts at 3).
    let c = t.store.claim_recent(&ctx, "INBOX", uv, 3).await.unwrap();
    assert_eq!(c, 1);
    assert_eq!(t.store.claim_recent(&ctx, "INBOX", uv, 3).await.unwrap(), 3);
    // A claim beyond UIDNEXT claims only what exists.
    assert_eq!(
        t.store.claim_recent(&ctx, "INBOX", uv, 99).await.unwrap(),
        3
    );
    t.append(&ctx, "INBOX", "m2", &[]).await;
    assert_eq!(t.store.mailbox(&ctx, "INBOX").await.unwrap().recent_uid, 3);
    let events_before = t.store.events_after(0, 1000).await.unwrap().len();
    assert_eq!(t.store.claim_recent(&ctx, "INBOX", uv, 4).await.unwrap(), 3);
    assert_eq!(
        t.store.events_after(0, 1000).await.unwrap().len(),
        events_before,
        "a claim is no event"
    );
    t.store.close().await;
    let store = Store::open(config()).await.unwrap();
    assert_eq!(store.mailbox(&ctx, "INBOX").await.unwrap().recent_uid, 4);
    assert!(store.claim_recent(&ctx, "Nope", uv, 4).await.is_err());
}

#[tokio::test]
async fn concurrent_claims_grant_each_recent_uid_once_and_reads_see_them_at_once() {
    let t = open().await;
    let ctx = t.user("alice").await;
    for i in 0..20 {
        t.append(&ctx, "INBOX", &format!("m{i}"), &[]).await;
    }
    let uv = t.store.mailbox(&ctx, "INBOX").await.unwrap().uidvalidity;
    // Sixteen sessions told of different numbers of messages claim at once.
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..16u32 {
        let (store, ctx) = (t.store.clone(), ctx.clone());
        tasks.spawn(async move {
            let upto = 6 + k;
            let first = store.claim_recent(&ctx, "INBOX", uv, upto).await.unwrap();
            (first, upto)
        });
    }
    let mut granted = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let (first, upto) = r.unwrap();
        granted.extend(first..upto);
    }
    granted.sort_unstable();
    assert_eq!(
        granted,
        (1..=20).collect::<Vec<u32>>(),
        "each UID once, none lost"
    );
    // The claims are the mailbox's whatever the spelling of INBOX.
    assert_eq!(
        t.store.claim_recent(&ctx, "inbox", uv, 21).await.unwrap(),
        21
    );
    if let Some(claims) = t.store.recent_claims() {
        assert_eq!(claims.claimed("alice", "INBOX"), Some((uv, 21)));
        assert_eq!(claims.claimed("alice", "inbox"), None);
    }
    // STATUS RECENT and SELECT's row count from the claims at once.
    assert_eq!(t.store.counts(&ctx, "inbox").await.unwrap().recent, 0);
    assert_eq!(t.store.counts(&ctx, "INBOX").await.unwrap().recent, 0);
    assert_eq!(t.store.mailbox(&ctx, "INBOX").await.unwrap().recent_uid, 21);
    // A session of a mailbox replaced under the name gets nothing of the new one.
    t.append(&ctx, "INBOX", "m20", &[]).await;
    assert_eq!(t.store.counts(&ctx, "INBOX").await.unwrap().recent, 1);
    assert_eq!(
        t.store
            .claim_recent(&ctx, "INBOX", uv + 1, 22)
            .await
            .unwrap(),
        22
    );
    assert_eq!(t.store.counts(&ctx, "INBOX").await.unwrap().recent, 1);
    // A renamed mailbox goes on from what was claimed under its old name.
    t.store.create_mailbox(&ctx, "Box", None).await.unwrap();
    for i in 0..3 {
        t.append(&ctx, "Box", &format!("b{i}"), &[]).await;
    }
    let bv = t.store.mailbox(&ctx, "Box").await.unwrap().uidvalidity;
    assert_eq!(t.store.claim_recent(&ctx, "Box", bv, 3).await.unwrap(), 1);
    t.store.rename_mailbox(&ctx, "Box", "Box2").await.unwrap();
    assert_eq!(t.store.mailbox(&ctx, "Box2").await.unwrap().recent_uid, 3);
    assert_eq!(t.store.claim_recent(&ctx, "Box2", bv, 4).await.unwrap(), 3);
    // And one deleted and created again starts from nothing claimed.
    t.store.delete_mailbox(&ctx, "Box2").await.unwrap();
    t.store.create_mailbox(&ctx, "Box2", None).await.unwrap();
    t.append(&ctx, "Box2", "c0", &[]).await;
    let nv = t.store.mailbox(&ctx, "Box2").await.unwrap().uidvalidity;
    assert_ne!(nv, bv);
    assert_eq!(t.store.counts(&ctx, "Box2").await.unwrap().recent, 1);
    assert_eq!(t.store.claim_recent(&ctx, "Box2", nv, 2).await.unwrap(), 1);
}

#[tokio::test]
async fn a_select_snapshot_is_the_state_its_mailbox_row_names() {
    let t = open().await;
    let ctx = t.user("alice").await;
    t.store.create_mailbox(&ctx, "Other", None).await.unwrap();
    for i in 0..3 {
        t.append(&ctx, "INBOX", &format!("m{i}"), &[]).await;
    }
    t.append(&ctx, "Other", "o", &["$Work"]).await;
    let snapshot = |name: &'static str| {
        let t = &t;
        let ctx = &ctx;
        async move {
            let info = t.store.mailbox(ctx, name).await.unwrap();
            let msgs = t.store.fetch_all(ctx, &info).await.unwrap();
            assert_eq!(msgs.len() as u64, info.messages, "{name}: {msgs:?}");
            // Kept, caught up with changes, or read anew: what a full read finds.
            let read = t.store.fetch(ctx, name, None).await.unwrap();
            assert_eq!(*msgs, read, "{name}");
            msgs.iter()
                .map(|m| (m.uid, m.flags.join(" ")))
                .collect::<Vec<_>>()
        }
    };
    let first = snapshot("INBOX").await;
    assert_eq!(snapshot("INBOX").await, first, "the same state twice");
    assert_eq!(snapshot("Other").await, [(1, "$Work".to_owned())]);
    // Every kind of change shows at the next SELECT.
    t.store
        .store_flags(
            &ctx,
            "INBOX",
            &uids("2"),
            FlagMode::Add,
            &["\\Deleted".into()],
            None,
        )
        .await
        .unwrap();
    let flagged = snapshot("INBOX").await;
    assert_eq!(flagged[1], (2, "\\Deleted".to_owned()));
    t.append(&ctx, "INBOX", "m3", &[]).await;
    assert_eq!(snapshot("INBOX").await.len(), 4);
    t.store
        .expunge(&ctx, "INBOX", Some(&uids("2")))
        .await
        .unwrap();
    let uids_left: Vec<u32> = snapshot("INBOX").await.iter().map(|m| m.0).collect();
    assert_eq!(uids_left, [1, 3, 4]);
    // A mailbox created again under the name is a new state though its MODSEQ starts over.
    t.store.delete_mailbox(&ctx, "Other").await.unwrap();
    t.store.create_mailbox(&ctx, "Other", None).await.unwrap();
    assert!(snapshot("Other").await.is_empty());
}

#[tokio::test]
async fn content_ids_follow_the_bytes_through_copy_and_move() {
    let t = open().await;
    let ctx = t.user("alice").await;
    t.store.create_mailbox(&ctx, "Archive", None).await.unwrap();
    t.append(&ctx, "INBOX", "one", &[]).await;
    t.append(&ctx, "INBOX", "two", &[]).await;
    let inbox = t.store.content_ids(&ctx, "INBOX", None).await.unwrap();
    assert_eq!(inbox.iter().map(|c| c.0).collect::<Vec<_>>(), [1, 2]);
    assert_ne!(inbox[0].1, inbox[1].1);
    t.store
        .copy(&ctx, "INBOX", &uids("1"), "Archive")
        .await
        .unwrap();
    t.store
        .move_messages(&ctx, "INBOX", &uids("2"), "Archive")
        .await
        .unwrap();
    let archive = t.store.content_ids(&ctx, "Archive", None).await.unwrap();
    assert_eq!(archive, [(1, inbox[0].1), (2, inbox[1].1)]);
    let some = t
        .store
        .content_ids(&ctx, "Archive", Some(&uids("2")))
        .await
        .unwrap();
    assert_eq!(some, [(2, inbox[1].1)]);
    // Every way in records when the message was saved here (RFC 8514).
    let start = crate::now_ms() - 60_000;
    for m in t.store.fetch(&ctx, "Archive", None).await.unwrap() {
        assert!(m.save_date_ms.is_some_and(|d| d >= start), "{m:?}");
    }
}

#[tokio::test]
async fn read_messages_brings_a_set_in_uid_order_without_the_gone() {
    // Content over 1 KiB lives in a blob file on the embedded engine: both kinds in one set.
    let t = open_with(|c| c.inline_blob_max = 1024).await;
    let ctx = t.user("alice").await;
    let body = |n: usize| format!("Subject: {n}\r\n\r\n{}", "x".repeat(n * 400));
    for n in 1..=6 {
        t.append(&ctx, "INBOX", &body(n), &["\\Deleted"]).await;
    }
    t.store
        .expunge(&ctx, "INBOX", Some(&uids("3")))
        .await
        .unwrap();
    let want: Vec<(u32, Vec<u8>)> = [1, 2, 4, 6]
        .into_iter()
        .map(|n| (n, body(n as usize).into_bytes()))
        .collect();
    // Small enough to be read where the caller runs, and too large for that: one answer.
    for expected in [Some(100), Some(1 << 20), None] {
        let got = t
            .store
            .read_messages(&ctx, "INBOX", &uids("1:4,6,9"), expected)
            .await
            .unwrap();
        assert_eq!(got, want, "expected_bytes {expected:?}");
    }
    assert!(
        t.store
            .read_messages(&ctx, "INBOX", &uids("7:9"), Some(0))
            .await
            .unwrap()
            .is_empty()
    );
    let bob = t.user("bob").await;
    assert!(
        t.store
            .read_messages(&bob, "user/alice/INBOX", &uids("1"), None)
            .await
            .is_err(),
        "another account's mail is not readable without a right"
    );
}

#[tokio::test]
async fn append_many_is_all_or_nothing() {
    let t = open().await;
    let ctx = t.user("alice").await;
    let msg = |s: &str| (s.as_bytes().to_vec(), vec!["$Work".to_owned()], None);
    let c = t
        .store
        .append_many(&ctx, "INBOX", vec![msg("one"), msg("two"), msg("three")])
        .await
        .unwrap();
    t.check(&c.events).await;
    assert_eq!(c.value.iter().map(|a| a.uid).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(c.events.iter().all(|e| e.event == EventType::MessageAppend) && c.events.len() == 3);
    assert_eq!(c.events[2].messages, Some(3));
    // Room for one more message only: the second of two fails, and neither is kept.
    t.store
        .set_quota(&admin(), "alice", None, Some(4))
        .await
        .unwrap();
    let before = t.store.events_after(0, 1000).await.unwrap().len();
    let err = t
        .store
        .append_many(&ctx, "INBOX", vec![msg("four"), msg("five")])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::OverQuota { .. }), "{err:?}");
    assert_eq!(t.store.fetch(&ctx, "INBOX", None).await.unwrap().len(), 3);
    assert_eq!(t.store.quota("alice").await.unwrap().used_messages, 3);
    let after = t.store.events_after(0, 1000).await.unwrap();
    assert_eq!(after.len(), before + 1, "only the refusal is recorded");
    assert!(
        after[before].json.contains("\"QuotaExceed\""),
        "{}",
        after[before].json
    );
    assert_eq!(
        t.store.mailbox(&ctx, "INBOX").await.unwrap().uidnext,
        4,
        "no UID was used"
    );
    t.consistent().await;
}

#[tokio::test]
async fn import_keeps_the_source_uids_only_in_a_fresh_mailbox() {
    let t = open().await;
    let ctx = t.user("alice").await;
    let msg = |uid: u32, flags: &[&str]| ImportMessage {
        content: format!("Subject: {uid}\r\n\r\nbody {uid}\r\n").into_bytes(),
        flags: flags.iter().map(|f| (*f).to_owned()).collect(),
        internal_date_ms: 1_600_000_000_000 + i64::from(uid),
        uid: Some(uid),
    };
    // A fresh INBOX takes the source's UIDVALIDITY and UIDs, gaps included.
    let c = t
        .store
        .import(
            &ctx,
            "INBOX",
            (Some(1234), None),
            vec![msg(3, &["\\Seen"]), msg(7, &["$Work"])],
            Some(("src/INBOX".into(), 7)),
        )
        .await
        .unwrap();
    t.check(&c.events).await;
    assert!(c.value.uids_kept);
    assert_eq!(c.value.uidvalidity, 1234);
    assert_eq!(
        c.value.appended.iter().map(|a| a.uid).collect::<Vec<_>>(),
        [3, 7]
    );
    for e in &c.events {
        assert_eq!(e.event, EventType::MessageAppend);
        assert_eq!(
            e.extension(vnd::CAUSE).and_then(|v| v.as_str()),
            Some("import")
        );
    }
    // Resumed (same UIDVALIDITY): still kept; the source's UIDNEXT is taken at the end.
    let c = t
        .store
        .import(
            &ctx,
            "INBOX",
            (Some(1234), Some(20)),
            vec![msg(9, &[])],
            None,
        )
        .await
        .unwrap();
    assert!(c.value.uids_kept);
    assert_eq!(c.value.appended[0].uid, 9);
    let progress = |k: &'static str| t.store.import_progress(&ctx, k);
    assert_eq!(progress("src/INBOX").await.unwrap(), Some(7));
    let inbox = t.store.mailbox(&ctx, "INBOX").await.unwrap();
    assert_eq!(
        (inbox.uidvalidity, inbox.uidnext, inbox.messages),
        (1234, 20, 3)
    );
    let metas = t.store.fetch(&ctx, "INBOX", None).await.unwrap();
    assert_eq!(metas[0].flags, ["\\Seen"]);
    assert_eq!(metas[1].internal_date_ms, 1_600_000_000_007);
    assert_eq!(t.append(&ctx, "INBOX", "new", &[]).await.uid, 20);
    // A mailbox that already held mail keeps its own UIDs: the messages are appended.
    t.store.create_mailbox(&ctx, "Old", None).await.unwrap();
    t.append(&ctx, "Old", "mine", &[]).await;
    let c = t
        .store
        .import(&ctx, "Old", (Some(99), Some(60)), vec![msg(50, &[])], None)
        .await
        .unwrap();
    assert!(!c.value.uids_kept);
    assert_ne!(c.value.uidvalidity, 99);
    assert_eq!(c.value.appended[0].uid, 2);
    // Quotas hold: over the limit nothing of the batch is kept.
    t.store
        .set_quota(&admin(), "alice", None, Some(6))
        .await
        .unwrap();
    t.store.create_mailbox(&ctx, "Full", None).await.unwrap();
    let err = t
        .store
        .import(
            &ctx,
            "Full",
            (Some(5), None),
            vec![msg(1, &[]), msg(2, &[])],
            Some(("src/Full".into(), 2)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::OverQuota { .. }), "{err:?}");
    assert_eq!(t.store.mailbox(&ctx, "Full").await.unwrap().messages, 0);
    assert_eq!(progress("src/Full").await.unwrap(), None, "rolled back too");
    t.consistent().await;
}

#[tokio::test]
async fn the_auth_cache_forgets_a_changed_password_at_once() {
    let dir = test_dir();
    let config = || {
        let mut c = config_for(dir.path());
        c.durable = false;
        c
    };
    let server = Store::open(config()).await.unwrap();
    server
        .add_user(&admin(), "alice", "old-pw", false)
        .await
        .unwrap();
    server.authenticate("alice", "old-pw", None).await.unwrap();
    assert_eq!(server.auth_cache_len(), 1, "a success is remembered");
    assert!(server.authenticate("alice", "wrong", None).await.is_err());
    assert_eq!(server.auth_cache_len(), 1, "a failure never is");
    server.authenticate("alice", "old-pw", None).await.unwrap();
    // Changed by this store: the entry goes, and the old password fails at once.
    server
        .set_password(&admin(), "alice", "new-pw")
        .await
        .unwrap();
    assert_eq!(server.auth_cache_len(), 0);
    assert!(server.authenticate("alice", "old-pw", None).await.is_err());
    server.authenticate("alice", "new-pw", None).await.unwrap();
    // Changed by another process on the same data (the CLI): the cached entry is bound to the
    // old hash, so it cannot match either.
    let cli = Store::open(config()).await.unwrap();
    cli.set_password(&admin(), "alice", "newer-pw")
        .await
        .unwrap();
    cli.close().await;
    assert_eq!(server.auth_cache_len(), 1);
    assert!(server.authenticate("alice", "new-pw", None).await.is_err());
    server
        .authenticate("alice", "newer-pw", None)
        .await
        .unwrap();
    // A deleted account: cached or not, no login.
    server.delete_user(&admin(), "alice").await.unwrap();
    assert!(
        server
            .authenticate("alice", "newer-pw", None)
            .await
            .is_err()
    );
    assert!(matches!(
        server.set_password(&admin(), "nobody", "x-pw").await,
        Err(StoreError::NotFound { .. })
    ));
    // Settings below OWASP's floor are refused when the store opens.
    let mut weak = config();
    weak.password.memory_kib = 1024;
    assert!(Store::open(weak).await.is_err());
}

// ---- quotas (§4.1) -----------------------------------------------------------------------------

#[tokio::test]
async fn quota_change_exceed_and_within() {
    let t = open().await;
    let ctx = t.user("alice").await;
    let c = t
        .store
        .set_quota(&admin(), "alice", Some(1), Some(3))
        .await
        .unwrap();
    t.check(&c.events).await;
    let [e] = &c.events[..] else { panic!() };
    assert_eq!(e.event, EventType::QuotaChange);
    assert_eq!(
        (e.disk_quota, e.max_messages, e.disk_used, e.messages),
        (Some(1), Some(3), Some(0), Some(0))
    );
    assert_eq!(e.service.as_deref(), Some("admincli"));
    assert_eq!(
        e.uri.as_ref().unwrap().to_string(),
        format!("imap://alice@{HOST}")
    );
    let c = t
        .store
        .set_quota(&admin(), "alice", Some(1), None)
        .await
        .unwrap();
    assert!(c.events.is_empty(), "unchanged quota ⇒ no event");
    assert!(
        t.store
            .set_quota(&admin(), "alice", None, None)
            .await
            .is_err()
    );

    t.append(&ctx, "INBOX", &"x".repeat(600), &["\\Deleted"])
        .await;
    let before = t.last().await;
    let err = t
        .store
        .append(&ctx, "INBOX", vec![b'y'; 600], &[], None)
        .await
        .unwrap_err();
    let StoreError::OverQuota {
        resource,
        limit,
        usage,
        event_id,
        ..
    } = err
    else {
        panic!("{err}")
    };
    assert_eq!((resource, limit, usage), (QuotaResource::Storage, 1, 2));
    assert_eq!(event_id, before + 1, "the QuotaExceed event is committed");
    let stored = t.store.events_after(before, 10).await.unwrap();
    assert_eq!(stored.len(), 1);
    let e = Event::from_json(&stored[0].json).unwrap();
    e.validate().unwrap();
    assert_eq!(e.event, EventType::QuotaExceed);
    assert_eq!(
        (e.disk_quota, e.disk_used, e.max_messages, e.messages),
        (Some(1), Some(1), Some(3), Some(1))
    );
    assert_eq!(
        e.mailbox_id.as_ref().unwrap().mailbox.as_deref(),
        Some("INBOX")
    );
    // The quota root is the account, as in QuotaChange and QuotaWithin.
    let root = e.uri.as_ref().unwrap();
    assert_eq!(
        (root.user.as_deref(), root.mailbox.as_deref()),
        (Some("alice"), None)
    );
    assert_eq!(
        t.store.fetch(&ctx, "INBOX", None).await.unwrap().len(),
        1,
        "nothing appended"
    );

    // Usage at the limit (1 KB) → under it: QuotaWithin after the MessageExpunge.
    t.append(&ctx, "INBOX", &"z".repeat(424), &[]).await;
    assert_eq!(t.store.quota("alice").await.unwrap().used_bytes, 1024);
    let c = t.store.expunge(&ctx, "INBOX", None).await.unwrap();
    t.check(&c.events).await;
    assert_eq!(
        types(&c.events),
        [EventType::MessageExpunge, EventType::QuotaWithin]
    );
    let w = &c.events[1];
    assert_eq!(
        (w.disk_quota, w.disk_used, w.messages),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(w.user.as_deref(), Some("alice"));
    assert_eq!(w.extension(vnd::CAUSE).unwrap(), "expunge");

    // Not at a limit before: an expunge emits no QuotaWithin.
    t.append(&ctx, "INBOX", "q", &["\\Deleted"]).await;
    let c = t.store.expunge(&ctx, "INBOX", None).await.unwrap();
    assert_eq!(types(&c.events), [EventType::MessageExpunge]);
    t.consistent().await;
}

#[tokio::test]
async fn a_raised_limit_brings_the_account_back_within_its_quota() {
    let t = open().await;
    let ctx = t.user("alice").await;
    t.store
        .set_quota(&admin(), "alice", None, Some(2))
        .await
        .unwrap();
    t.append(&ctx, "INBOX", "1", &[]).await;
    t.append(&ctx, "INBOX", "2", &[]).await;
    // Still at the limit: a change that leaves it over is QuotaChange alone.
    let c = t
        .store
        .set_quota(&admin(), "alice", Some(100), None)
        .await
        .unwrap();
    assert_eq!(types(&c.events), [EventType::QuotaChange]);
    let c = t
        .store
        .set_quota(&admin(), "alice", None, Some(10))
        .await
        .unwrap();
    t.check(&c.events).await;
    assert_eq!(
        types(&c.events),
        [EventType::QuotaChange, EventType::QuotaWithin]
    );
    let w = &c.events[1];
    assert_eq!(w.extension(vnd::CAUSE).unwrap(), "quota-change");
    assert_eq!((w.max_messages, w.messages), (Some(10), Some(2)));
    assert_eq!(w.uri.as_ref().unwrap().mailbox, None, "the quota root");
    // Raised again while within: no QuotaWithin.
    let c = t
        .store
        .set_quota(&admin(), "alice", None, Some(20))
        .await
        .unwrap();
    assert_eq!(types(&c.events), [EventType::QuotaChange]);
}

#[tokio::test]
async fn message_count_quota_and_copy_over_quota() {
    let t = open().await;
    let ctx = t.user("alice").await;
    t.store
        .set_quota(&admin(), "alice", None, Some(2))
        .await
        .unwrap();
    t.append(&ctx, "INBOX", "1", &[]).await;
    t.append(&ctx, "INBOX", "2", &[]).await;
    let err = t
        .store
        .copy(&ctx, "INBOX", &uids("1"), "INBOX")
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::OverQuota {
            resource: QuotaResource::Messages,
            limit: 2,
            usage: 3,
            ..
        }
    ));
    let r = Recipient {
        user: "alice".into(),
        mailbox: None,
        envelope: "MAIL FROM:<>\r\nRCPT TO:<alice>\r\n".into(),
    };
    let err = t
        .store
        .deliver(&SessionContext::service("lmtp"), &r, b"3".to_vec(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::OverQuota { .. }));
    let all = t.store.events_after(0, 100).await.unwrap();
    let kinds: Vec<EventType> = all
        .iter()
        .map(|s| Event::from_json(&s.json).unwrap().event)
        .collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == EventType::QuotaExceed)
            .count(),
        2
    );
    assert_eq!(t.store.quota("alice").await.unwrap().used_messages, 2);
    t.consistent().await;
}

// ---- §4.2 flags -------------------------------------------------------------------------------

/// A set names UIDs, not a range: scattered UIDs touch only themselves, a gone UID nothing, and
/// an empty set (a client's UID STORE of a message another session expunged) changes nothing.
#[tokio::test]
async fn sparse_and_gone_uid_sets_touch_exactly_their_messages() {
    let t = open().await;
    let ctx = t.user("alice").await;
    for i in 0..12 {
        t.append(&ctx, "INBOX", &format!("m{i}"), &[]).await;
    }
    t.store.create_mailbox(&ctx, "Work", None).await.unwrap();
    t.store
        .expunge_uids(&ctx, "INBOX", &uids("5"))
        .await
        .unwrap();
    let c = t
        .store
        .store_flags(
            &ctx,
            "INBOX",
            &uids("2,5,11"),
            FlagMode::Add,
            &s(&["$A"]),
            None,
        )
        .await
        .unwrap();
    t.check(&c.events).await;
    let changed: Vec<u32> = c.value.changed.iter().map(|c| c.0).collect();
    assert_eq!(changed, [2, 11]);
    let [e] = &c.events[..] else { panic!() };
    assert_eq!(e.uidset.as_ref().unwrap().to_string(), "2,11");
    let c = t
        .store
        .store_flags(
            &ctx,
            "INBOX",
            &UidSet::default(),
            FlagMode::Add,
            &s(&["$A"]),
            None,
        )
        .await
        .unwrap();
    assert!(c.events.is_empty() && c.value.changed.is_empty());
    let c = t
        .store
        .copy(&ctx, "INBOX", &uids("1,5,12"), "Work")
        .await
        .unwrap();
    let sources: Vec<u32> = c.value.uids.iter().map(|u| u.0).collect();
    assert_eq!(sources, [1, 12]);
    let ids = t
        .store
        .content_ids(&ctx, "INBOX", Some(&uids("3,5,10")))
        .await
        .unwrap();
    assert_eq!(ids.iter().map(|c| c.0).collect::<Vec<_>>(), [3, 10]);
    t.consistent().await;
}

#[tokio::test]
async fn seen_is_message_read_deleted_is_message_trash_others_flags_set() {
    let t = open().await;
    let ctx = t.user("alice").await;
    for i in 0..3 {
        t.append(&ctx, "INBOX", &format!("m{i}"), &[]).await;
    }
    let c = t
        .store
        .store_flags(
            &ctx,
            "INBOX",
            &uids("1:2"),
            FlagMode::Add,
            &s(&["\\Seen", "\\Deleted", "$Label1", "\\Flagged"]),
            None,
        )
        .await
        .unwrap();
    t.check(&c.events).await;
    assert_eq!(
        types(&c.events),
        [
            EventType::MessageRead,
            EventType::MessageTrash,
            EventType::FlagsSet
        ]
    );
    for e in &c.events {
        assert_eq!(e.uidset.as_ref().unwrap().to_string(), "1:2");
        assert_eq!(e.uri.as_ref().unwrap().mailbox.as_deref(), Some("INBOX"));
        assert!(e.uri.as_ref().unwrap().uidvalidity.is_some());
        assert_eq!(e.modseq, None, "several messages: no single modseq");
    }
    assert_eq!(c.events[0].flag_names, None);
    assert_eq!(
        c.events[2].flag_names.as_ref().unwrap().to_string(),
        "\\Flagged $Label1"
    );
    assert_eq!(c.value.changed.len(), 2);
    // The same again changes nothing: no event.
    let c = t
        .store
        .store_flags(
            &ctx,
            "INBOX",
            &uids("1:2"),
            FlagMode::Add,
            &s(&["\\seen"]),
            None,
        )
        .await
        .unwrap();
    assert!(c.events.is_empty() && c.value.changed.is_empty());
    // Clearing: FlagsClear, \Seen included (there is no "unread" event).
    let c = t
        .store
        .store_flags(
            &ctx,
            "INBOX",
            &uids("1"),
            FlagMode::Remove,
            &s(&["\\Seen", "$Label1"]),
            None,
        )
        .await
        .unwrap();
    t.check(&c.events).await;
    let [e] = &c.events[..] else { panic!() };
    assert_eq!(e.event, EventType::FlagsClear);
    assert_eq!(e.flag_names.as_ref().unwrap().to_string(), "\\Seen $Label1");
    assert_eq!(e.uri.as_ref().unwrap().uid, Some(1));
    assert_eq!(e.modseq, Some(c.value.changed[0].2));
    // Replace: both directions in one STORE.
    let c = t
        .store
        .store_flags(
            &ctx,
            "INBOX",
            &uids("3"),
            FlagMode::Replace,
            &s(&["$New"]),
            None,
        )
        .await
        .unwrap();
    assert_eq!(types(&c.events), [EventType::FlagsSet]);
    let c = t
        .store
        .store_flags(
            &ctx,
            "INBOX",
            &uids("3"),
            FlagMode::Replace,
            &s(&["\\Answered"]),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        types(&c.events),
        [EventType::FlagsSet, EventType::FlagsClear]
    );
    assert_eq!(
        c.events[0].flag_names.as_ref().unwrap().to_string(),
        "\\Answered"
    );
    assert_eq!(c.events[1].flag_names.as_ref().unwrap().to_string(), "$New");
    t.consistent().await;
}

#[tokio::test]
async fn recent_is_never_settable_nor_reported() {
    let t = open().await;
    let ctx = t.user("alice").await;
    t.append(&ctx, "INBOX", "m", &[]).await;
    let before = t.last().await;
    let err = t
        .store
        .store_flags(
            &ctx,
            "INBOX",
            &uids("1"),
            FlagMode::Add,
            &s(&["\\Recent"]),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidArgument(_)));
    assert!(
        t.store
            .append(&ctx, "INBOX", b"x".to_vec(), &s(&["\\Recent"]), None)
            .await
            .is_err()
    );
    assert_eq!(t.last().await, before, "failed operations emit nothing");
}

#[tokio::test]
async fn different_changes_group_into_separate_flags_events() {
    let t = open().await;
    let ctx = t.user("alice").await;
    t.append(&ctx, "INBOX", "1", &["\\Flagged"]).await;
    t.append(&ctx, "INBOX", "2", &[]).await;
    let c = t
        .store
        .store_flags(
            &ctx,
            "INBOX",
            &uids("1:2"),
            FlagMode::Add,
            &s(&["\\Flagged", "$A"]),
            None,
        )
        .await
        .unwrap();
    t.check(&c.events).await;
    let got: Vec<(String, String)> = c
        .events
        .iter()
        .map(|e| {
            (
                e.flag_names.as_ref().unwrap().to_string(),
                e.uidset.as_ref().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("$A".to_owned(), "1".to_owned()),
            ("\\Flagged $A".to_owned(), "2".to_owned())
        ]
    );
}

#[tokio::test]
async fn seen_deleted_as_flags_switch() {
    let t = open_with(|c| c.seen_deleted_as_flags = true).await;
    let ctx = t.user("alice").await;
    t.append(&ctx, "INBOX", "1", &[]).await;
    let c = t
        .store
        .store_flags(
            &ctx,
            "INBOX",
            &uids("1"),
            FlagMode::Add,
            &s(&["\\Seen", "\\Deleted"]),
            None,
        )
        .await
        .unwrap();
    t.check(&c.events).await;
    let [e] = &c.events[..] else {
        panic!("{:?}", types(&c.events))
    };
    assert_eq!(e.event, EventType::FlagsSet);
    assert_eq!(
        e.flag_names.as_ref().unwrap().to_string(),
        "\\Deleted \\Seen"
    );
}

#[tokio::test]
async fn unchangedsince_reports_modified_and_changes_nothing_for_them() {
    let t = open().await;
    let ctx = t.user("alice").await;
    let a = t.append(&ctx, "INBOX", "1", &[]).await;
    let b = t.append(&ctx, "INBOX", "2", &[]).await;
    assert!(b.modseq > a.modseq);
    let c = t
        .store
        .store_flags(
            &ctx,
            "INBOX",
            &uids("1:2"),
            FlagMode::Add,
            &s(&["$X"]),
            Some(a.modseq),
        )
        .await
        .unwrap();
    assert_eq!(c.value.modified, vec![2]);
    assert_eq!(c.value.changed.len(), 1);
    assert_eq!(c.events[0].uidset.as_ref().unwrap().to_string(), "1");
    let mb = t.store.mailbox(&ctx, "INBOX").await.unwrap();
    assert_eq!(mb.highest_modseq, c.value.changed[0].2);
}

// ---- §4.4 mailbox management ---------------------------------------------------------------------

#[tokio::test]
async fn create_with_missing_parents_emits_one_event_for_the_leaf() {
    let t = open().await;
    let ctx = t.user("alice").await;
    let c = t.store.create_mailbox(&ctx, "a/b/c/", None).await.unwrap();
    t.check(&c.events).await;
    let [e] = &c.events[..] else { panic!() };
    assert_eq!(e.event, EventType::MailboxCreate);
    let id = e.mailbox_id.as_ref().unwrap();
    assert_eq!(id.mailbox.as_deref(), Some("a/b/c"));
    assert_eq!(id.uidvalidity, Some(c.value.uidvalidity));
    assert_eq!(e.uri, e.mailbox_id);
    let names: Vec<String> = t
        .store
        .list_mailboxes(&ctx)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["INBOX", "a", "a/b", "a/b/c"]);
    let before = t.last().await;
    assert!(matches!(
        t.store.create_mailbox(&ctx, "a/b", None).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert!(matches!(
        t.store.create_mailbox(&ctx, "inbox", None).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert_eq!(t.last().await, before);
}

#[tokio::test]
async fn delete_with_children_leaves_noselect() {
    let t = open().await;
    let ctx = t.user("alice").await;
    t.store.create_mailbox(&ctx, "p/q", None).await.unwrap();
    t.append(&ctx, "p", "in p", &[]).await;
    let p = t.store.mailbox(&ctx, "p").await.unwrap();
    let c = t.store.delete_mailbox(&ctx, "p").await.unwrap();
    t.check(&c.events).await;
    let [e] = &c.events[..] else { panic!() };
    assert_eq!(e.event, EventType::MailboxDelete);
    assert_eq!(e.mailbox_id.as_ref().unwrap().mailbox.as_deref(), Some("p"));
    assert_eq!(
        e.mailbox_id.as_ref().unwrap().uidvalidity,
        Some(p.uidvalidity)
    );
    let p = t.store.mailbox(&ctx, "p").await.unwrap();
    assert!(p.noselect);
    assert_eq!(p.messages, 0);
    assert!(matches!(
        t.store.fetch(&ctx, "p", None).await,
        Err(StoreError::NoSelect(_))
    ));
    assert!(matches!(
        t.store.append(&ctx, "p", b"x".to_vec(), &[], None).await,
        Err(StoreError::NoSelect(_))
    ));
    assert!(matches!(
        t.store.delete_mailbox(&ctx, "p").await,
        Err(StoreError::NoSelect(_))
    ));
    assert!(t.store.mailbox(&ctx, "p/q").await.is_ok(), "children stay");
    // CREATE brings a \Noselect name back with a new UIDVALIDITY.
    let c = t.store.create_mailbox(&ctx, "p", None).await.unwrap();
    assert_eq!(types(&c.events), [EventType::MailboxCreate]);
    assert_ne!(c.value.uidvalidity, p.uidvalidity);
    assert!(t.store.delete_mailbox(&ctx, "INBOX").await.is_err());
    assert!(matches!(
        t.store.delete_mailbox(&ctx, "nope").await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(t.store.quota("alice").await.unwrap().used_messages, 0);
    t.consistent().await;
}

#[tokio::test]
async fn rename_moves_children_with_one_event() {
    let t = open().await;
    let ctx = t.user("alice").await;
    t.store
        .create_mailbox(&ctx, "Work/2025/Q1", None)
        .await
        .unwrap();
    let work = t.store.mailbox(&ctx, "Work").await.unwrap();
    let c = t
        .store
        .rename_mailbox(&ctx, "Work", "Archive/Work")
        .await
        .unwrap();
    t.check(&c.events).await;
    let [e] = &c.events[..] else { panic!() };
    assert_eq!(e.event, EventType::MailboxRename);
    assert_eq!(
        e.old_mailbox_id.as_ref().unwrap().to_string(),
        format!("imap://alice@{HOST}/Work;UIDVALIDITY={}", work.uidvalidity)
    );
    assert_eq!(
        e.mailbox_id.as_ref().unwrap().mailbox.as_deref(),
        Some("Archive/Work")
    );
    let names: Vec<String> = t
        .store
        .list_mailboxes(&ctx)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(
        names,
        [
            "Archive",
            "Archive/Work",
            "Archive/Work/2025",
            "Archive/Work/2025/Q1",
            "INBOX"
        ]
    );
    assert!(
        t.store
            .rename_mailbox(&ctx, "Archive", "Archive/x")
            .await
            .is_err()
    );
    assert!(matches!(
        t.store
            .rename_mailbox(&ctx, "Archive/Work", "Archive")
            .await,
        Err(StoreError::AlreadyExists { .. })
    ));
}

#[tokio::test]
async fn rename_inbox_moves_messages_keeps_children_and_leaves_empty_inbox() {
    let t = open().await;
    let ctx = t.user("alice").await;
    t.store
        .create_mailbox(&ctx, "INBOX/Sub", None)
        .await
        .unwrap();
    t.append(&ctx, "INBOX", "m1", &[]).await;
    t.append(&ctx, "INBOX", "m2", &[]).await;
    let old = t.store.mailbox(&ctx, "INBOX").await.unwrap();
    let c = t
        .store
        .rename_mailbox(&ctx, "inbox", "Old/Mail")
        .await
        .unwrap();
    t.check(&c.events).await;
    assert_eq!(
        types(&c.events),
        [EventType::MailboxRename],
        "no MailboxCreate for the new INBOX"
    );
    assert_eq!(
        c.events[0]
            .old_mailbox_id
            .as_ref()
            .unwrap()
            .mailbox
            .as_deref(),
        Some("INBOX")
    );
    let moved = t.store.mailbox(&ctx, "Old/Mail").await.unwrap();
    assert_eq!((moved.messages, moved.uidvalidity), (2, old.uidvalidity));
    let inbox = t.store.mailbox(&ctx, "INBOX").await.unwrap();
    assert_eq!(inbox.messages, 0);
    assert_ne!(inbox.uidvalidity, old.uidvalidity);
    assert!(
        t.store.mailbox(&ctx, "INBOX/Sub").await.is_ok(),
        "children stay"
    );
    assert!(t.store.mailbox(&ctx, "Old/Mail/Sub").await.is_err());
    t.consistent().await;
}

#[tokio::test]
async fn subscribe_and_unsubscribe_emit_only_on_change() {
    let t = open().await;
    let ctx = t.user("alice").await;
    t.store.create_mailbox(&ctx, "News", None).await.unwrap();
    let c = t.store.subscribe(&ctx, "News", true).await.unwrap();
    t.check(&c.events).await;
    let [e] = &c.events[..] else { panic!() };
    assert_eq!(e.event, EventType::MailboxSubscribe);
    assert_eq!(e.user.as_deref(), Some("alice"));
    assert_eq!(
        e.mailbox_id.as_ref().unwrap().mailbox.as_deref(),
        Some("News")
    );
    assert!(
        t.store
            .subscribe(&ctx, "News", true)
            .await
            .unwrap()
            .events
            .is_empty()
    );
    assert_eq!(t.store.subscriptions(&ctx).await.unwrap(), ["News"]);
    let c = t.store.subscribe(&ctx, "News", false).await.unwrap();
    t.check(&c.events).await;
    assert_eq!(types(&c.events), [EventType::MailboxUnSubscribe]);
    assert!(
        t.store
            .subscribe(&ctx, "News", false)
            .await
            .unwrap()
            .events
            .is_empty()
    );
    assert!(t.store.subscribe(&ctx, "Missing", true).await.is_err());
}

// ---- expiry, accounts, admin ------------------------------------------------------------------------

#[tokio::test]
async fn expire_by_max_age_emits_message_expire_and_quota_within() {
    let t = open().await;
    let ctx = t.user("alice").await;
    t.store
        .create_mailbox(&ctx, "Trash", Some(SpecialUse::Trash))
        .await
        .unwrap();
    t.store
        .set_quota(&admin(), "alice", None, Some(3))
        .await
        .unwrap();
    let now = now_ms();
    let day = 86_400_000;
    for age in [40, 10, 31] {
        let c = t
            .store
            .append(&ctx, "Trash", b"x".to_vec(), &[], Some(now - age * day))
            .await
            .unwrap();
        t.check(&c.events).await;
    }
    t.store
        .set_max_age(
            &admin(),
            "alice",
            "Trash",
            Some(std::time::Duration::from_secs(30 * 86_400)),
        )
        .await
        .unwrap();
    let c = t.store.expire(&admin(), None, now).await.unwrap();
    t.check(&c.events).await;
    assert_eq!(
        types(&c.events),
        [EventType::MessageExpire, EventType::QuotaWithin]
    );
    let e = &c.events[0];
    assert_eq!(e.uidset.as_ref().unwrap().to_string(), "1,3");
    assert!(e.uri.as_ref().unwrap().uidvalidity.is_some());
    assert_eq!(e.user.as_deref(), Some("alice"));
    assert_eq!(c.value[0].uids, vec![1, 3]);
    let c = t.store.expire(&admin(), None, now).await.unwrap();
    assert!(c.events.is_empty(), "nothing left to expire ⇒ no event");
    t.consistent().await;
}

#[tokio::test]
async fn admin_acting_as_user_is_recorded_and_authentication_rules() {
    let t = open().await;
    t.user("alice").await;
    t.store
        .add_user(&admin(), "root", "rootpw", true)
        .await
        .unwrap();
    assert!(matches!(
        t.store.add_user(&admin(), "alice", "x", false).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    let id = t
        .store
        .authenticate("root", "rootpw", Some("alice"))
        .await
        .unwrap();
    assert_eq!(
        (id.user.as_str(), id.auth_user.as_str(), id.admin),
        ("alice", "root", true)
    );
    let ctx = id.context("imap");
    let c = t
        .store
        .create_mailbox(&ctx, "FromAdmin", None)
        .await
        .unwrap();
    t.check(&c.events).await;
    assert_eq!(c.events[0].user.as_deref(), Some("alice"));
    assert_eq!(c.events[0].admin.as_deref(), Some("root"));
    let own = t.store.authenticate("alice", "pw", None).await.unwrap();
    assert_eq!(own.context("imap").auth_user, None);
    assert!(matches!(
        t.store.authenticate("alice", "pw", Some("root")).await,
        Err(StoreError::AuthFailed)
    ));
    assert!(matches!(
        t.store.authenticate("alice", "bad", None).await,
        Err(StoreError::AuthFailed)
    ));
    assert!(matches!(
        t.store.authenticate("ghost", "pw", None).await,
        Err(StoreError::AuthFailed)
    ));
    assert!(matches!(
        t.store.authenticate("root", "rootpw", Some("ghost")).await,
        Err(StoreError::AuthFailed)
    ));
    let users: Vec<(String, bool)> = t
        .store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| (u.name, u.admin))
        .collect();
    assert_eq!(
        users,
        [("alice".to_owned(), false), ("root".to_owned(), true)]
    );
}

#[tokio::test]
async fn delete_user_emits_mailbox_delete_per_mailbox_and_frees_blobs() {
    let t = open().await;
    let ctx = t.user("alice").await;
    t.store.create_mailbox(&ctx, "Work", None).await.unwrap();
    t.append(&ctx, "Work", "m", &[]).await;
    let c = t.store.delete_user(&admin(), "alice").await.unwrap();
    t.check(&c.events).await;
    assert_eq!(
        types(&c.events),
        [
            EventType::MailboxDelete,
            EventType::MailboxDelete,
            EventType::AccountDelete
        ]
    );
    let account = c.events.last().unwrap();
    assert_eq!(account.user.as_deref(), Some("alice"));
    assert_eq!(account.service.as_deref(), Some("admincli"));
    assert!(t.store.list_users().await.unwrap().is_empty());
    let k = t.store.check_consistency().await.unwrap();
    assert_eq!((k.messages, k.blobs), (0, 0));
    assert!(k.problems.is_empty(), "{:?}", k.problems);
}

// ---- blobs, batching, notifications ------------------------------------------------------------------

#[tokio::test]
async fn large_blobs_live_in_files_are_shared_and_removed_with_the_last_reference() {
    if embedded_only("large_blobs_live_in_files_are_shared_and_removed_with_the_last_reference") {
        return;
    }
    let t = open_with(|c| c.inline_blob_max = 1024).await;
    let ctx = t.user("alice").await;
    let big = "L".repeat(5000);
    t.append(&ctx, "INBOX", &big, &["\\Deleted"]).await;
    t.store
        .copy(&ctx, "INBOX", &uids("1"), "INBOX")
        .await
        .unwrap();
    let files = || {
        crate::blobs::BlobDir::open(&t.store.config().path)
            .unwrap()
            .scan()
            .unwrap()
            .into_iter()
            .filter(|f| f.1.is_some())
            .count()
    };
    assert_eq!(files(), 1);
    assert_eq!(
        t.store.read_message(&ctx, "INBOX", 2).await.unwrap(),
        big.as_bytes()
    );
    t.store
        .expunge(&ctx, "INBOX", Some(&uids("1")))
        .await
        .unwrap();
    assert_eq!(files(), 1, "one reference left");
    t.store
        .store_flags(
            &ctx,
            "INBOX",
            &uids("2"),
            FlagMode::Add,
            &s(&["\\Deleted"]),
            None,
        )
        .await
        .unwrap();
    t.store.expunge(&ctx, "INBOX", None).await.unwrap();
    // The file is unlinked by the next transaction, under the write lock.
    t.store.subscribe(&ctx, "INBOX", true).await.unwrap();
    assert_eq!(files(), 0);
    // The same content again: written anew.
    t.append(&ctx, "INBOX", &big, &[]).await;
    assert_eq!(
        t.store.read_message(&ctx, "INBOX", 3).await.unwrap(),
        big.as_bytes()
    );
    t.consistent().await;
}

#[tokio::test]
async fn concurrent_operations_commit_independently_in_one_batch() {
    let t = open().await;
    let ctx = t.user("alice").await;
    t.store
        .set_quota(&admin(), "alice", None, Some(20))
        .await
        .unwrap();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..40 {
        let (store, ctx) = (t.store.clone(), ctx.clone());
        set.spawn(async move {
            store
                .append(&ctx, "INBOX", format!("m{i}").into_bytes(), &[], None)
                .await
        });
    }
    let (mut ok, mut over) = (0, 0);
    while let Some(r) = set.join_next().await {
        match r.unwrap() {
            Ok(c) => {
                t.check(&c.events).await;
                ok += 1;
            }
            Err(StoreError::OverQuota { event_id, .. }) => {
                assert!(event_id > 0);
                over += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((ok, over), (20, 20));
    let k = t.store.check_consistency().await.unwrap();
    assert_eq!(
        k.events,
        2 + 1 + 40,
        "AccountCreate and INBOX, QuotaChange, 20 appends, 20 QuotaExceed"
    );
    assert!(k.problems.is_empty(), "{:?}", k.problems);
}

/// The record of a failed operation (QuotaExceed) commits whole or not at all, in its own
/// savepoint: a failure while writing it leaves no row, the caller is told no record exists,
/// and the next operation of the same batch gets the next id instead of colliding with a row
/// the writer thought it had not written.
#[tokio::test]
async fn a_failure_while_recording_quota_exceed_leaves_no_partial_record() {
    if embedded_only("a_failure_while_recording_quota_exceed_leaves_no_partial_record") {
        return;
    }
    let t = open().await;
    let ctx = t.user("alice").await;
    t.store
        .set_quota(&admin(), "alice", None, Some(1))
        .await
        .unwrap();
    t.append(&ctx, "INBOX", "1", &[]).await;
    let before = t.last().await;

    // A second connection holds the write lock while the next operations queue, so the
    // over-quota append and the create after it are committed in one batch. The injected
    // failure comes after the QuotaExceed row is inserted: RAISE(FAIL) keeps the earlier
    // changes of the failing statement, as an error in the middle of a record would.
    let db = rusqlite::Connection::open(t._dir.path().join("herald.db")).unwrap();
    db.execute_batch(
        r#"BEGIN IMMEDIATE;
           CREATE TRIGGER inject_record_failure AFTER INSERT ON outbox
           WHEN NEW.event LIKE '%"QuotaExceed"%'
           BEGIN SELECT RAISE(FAIL, 'injected failure while recording QuotaExceed'); END;"#,
    )
    .unwrap();
    let first = {
        let (store, ctx) = (t.store.clone(), ctx.clone());
        tokio::spawn(async move { store.create_mailbox(&ctx, "First", None).await })
    };
    // The writer takes `First` and waits for the lock; the next two queue behind it.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let over = {
        let (store, ctx) = (t.store.clone(), ctx.clone());
        tokio::spawn(async move { store.append(&ctx, "INBOX", b"2".to_vec(), &[], None).await })
    };
    let after = {
        let (store, ctx) = (t.store.clone(), ctx.clone());
        tokio::spawn(async move { store.create_mailbox(&ctx, "After", None).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    db.execute_batch("COMMIT").unwrap();

    let first = first.await.unwrap().unwrap();
    t.check(&first.events).await;
    let err = over.await.unwrap().unwrap_err();
    let StoreError::OverQuota { event_id, .. } = err else {
        panic!("{err}")
    };
    assert_eq!(event_id, 0, "the caller is told no record was committed");
    let after = after
        .await
        .unwrap()
        .expect("an operation batched after the failed record commits");
    t.check(&after.events).await;
    let ids: Vec<u64> = first
        .events
        .iter()
        .chain(&after.events)
        .filter_map(Event::herald_id)
        .collect();
    assert_eq!(ids, [before + 1, before + 2]);
    let stored = t.store.events_after(before, 10).await.unwrap();
    assert!(
        stored.iter().all(|e| !e.json.contains("\"QuotaExceed\"")),
        "no QuotaExceed row outside the caller's knowledge: {stored:?}"
    );
    assert_eq!(stored.len(), 2);
    assert_eq!(t.last().await, before + 2);

    // Without the failure the record commits again, under the next id.
    db.execute_batch("DROP TRIGGER inject_record_failure")
        .unwrap();
    let err = t
        .store
        .append(&ctx, "INBOX", b"3".to_vec(), &[], None)
        .await
        .unwrap_err();
    let StoreError::OverQuota { event_id, .. } = err else {
        panic!("{err}")
    };
    assert_eq!(event_id, before + 3);
    t.consistent().await;
}

#[tokio::test]
async fn watchers_wake_on_commit() {
    let t = open().await;
    let ctx = t.user("alice").await;
    let inbox = t.store.mailbox(&ctx, "INBOX").await.unwrap();
    let mut mb = t.store.mailbox_watch(inbox.id);
    let mut outbox = t.store.outbox_watch();
    let start = *outbox.borrow_and_update();
    let waiter = {
        let store = t.store.clone();
        tokio::spawn(async move {
            store
                .wait_for_events(start, std::time::Duration::from_secs(10))
                .await
        })
    };
    t.append(&ctx, "INBOX", "m", &[]).await;
    assert!(
        mb.has_changed().unwrap(),
        "mailbox watch fired before the caller returned"
    );
    assert_eq!(*outbox.borrow_and_update(), start + 1);
    assert_eq!(waiter.await.unwrap().unwrap(), start + 1);
    let other = t.store.create_mailbox(&ctx, "Other", None).await.unwrap();
    mb.mark_unchanged();
    t.append(&ctx, "Other", "m", &[]).await;
    assert!(
        !mb.has_changed().unwrap(),
        "another mailbox's change does not wake INBOX"
    );
    assert_ne!(other.value.id, inbox.id);
    // Timeout without events returns the current id.
    let id = t
        .store
        .wait_for_events(start + 10, std::time::Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(id, start + 3);
}

#[tokio::test]
async fn reopen_keeps_state_and_ids_continue() {
    let dir = test_dir();
    let config = config_for(dir.path());
    let store = Store::open(config.clone()).await.unwrap();
    store
        .add_user(&admin(), "alice", "pw", false)
        .await
        .unwrap();
    let ctx = SessionContext::user("imap", "alice");
    store.create_mailbox(&ctx, "A", None).await.unwrap();
    store.close().await;
    assert!(matches!(
        store.create_mailbox(&ctx, "B", None).await,
        Err(StoreError::Closed)
    ));
    let store = Store::open(config).await.unwrap();
    let c = store.create_mailbox(&ctx, "B", None).await.unwrap();
    // AccountCreate, MailboxCreate INBOX, A, then B.
    assert_eq!(c.events[0].herald_id(), Some(4));
    assert_eq!(store.events_after(0, 10).await.unwrap().len(), 4);
}

#[tokio::test]
async fn names_needing_url_escapes_round_trip_through_events() {
    let t = open().await;
    let ctx = t.user("alice@example.org").await;
    let c = t
        .store
        .create_mailbox(&ctx, "Entwürfe/50% off; [x]", None)
        .await;
    assert!(c.is_err(), "% is a LIST wildcard and refused");
    let c = t
        .store
        .create_mailbox(&ctx, "Entwürfe/Q1 2026; [x]", None)
        .await
        .unwrap();
    t.check(&c.events).await;
    t.append(&ctx, "Entwürfe/Q1 2026; [x]", "m", &[]).await;
    for row in t.store.events_after(0, 10).await.unwrap() {
        let e = Event::from_json(&row.json).unwrap();
        e.validate().unwrap();
        assert_eq!(e.to_json(), row.json);
        let url = e.uri.clone().unwrap();
        assert_eq!(url.user.as_deref(), Some("alice@example.org"));
        if url.mailbox.as_deref() != Some("Entwürfe/Q1 2026; [x]") {
            // The account and its INBOX.
            assert!(e.herald_id() <= Some(2));
            continue;
        }
        assert_eq!(url.mailbox.as_deref(), Some("Entwürfe/Q1 2026; [x]"));
    }
}

fn pop_session(user: &str) -> SessionContext {
    SessionContext {
        client_ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        client_port: Some(40_000),
        server_domain: Some("127.0.0.1".into()),
        server_port: Some(1110),
        ..SessionContext::user("pop", user)
    }
}

#[tokio::test]
async fn login_and_logout_are_recorded_in_order_with_the_session() {
    let t = open().await;
    t.user("alice").await;
    let ctx = pop_session("alice");
    let login = t.store.login(&ctx).await.unwrap();
    t.check(&login.events).await;
    let [e] = &login.events[..] else { panic!() };
    assert_eq!(e.event, EventType::Login);
    assert_eq!(
        e.uri.as_ref().unwrap().to_string(),
        "imap://alice@mail.example.org"
    );
    assert_eq!(
        (e.server_domain.as_deref(), e.server_port),
        (Some("127.0.0.1"), Some(1110))
    );
    assert_eq!(e.client_port, Some(40_000));
    assert_eq!(e.service.as_deref(), Some("pop"));
    let logout = t
        .store
        .logout(
            &ctx,
            Disconnect::Timeout,
            std::time::Duration::from_millis(1234),
        )
        .await
        .unwrap();
    t.check(&logout.events).await;
    let e = &logout.events[0];
    assert_eq!(e.event, EventType::Logout);
    assert_eq!(e.extension(vnd::DISCONNECT).unwrap(), "timeout");
    assert_eq!(e.extension(vnd::SESSION_MS).unwrap(), 1234);
    assert!(e.herald_id() > login.events[0].herald_id());
    // An admin acting as alice: the event names both identities.
    let as_admin = SessionContext {
        auth_user: Some("root".into()),
        ..pop_session("alice")
    };
    let e = &t.store.login(&as_admin).await.unwrap().events[0];
    assert_eq!(
        (e.user.as_deref(), e.admin.as_deref()),
        (Some("alice"), Some("root"))
    );
    assert!(matches!(
        t.store.login(&pop_session("nobody")).await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn pop3_expunge_removes_exactly_the_given_uids_whatever_their_flags() {
    let t = open().await;
    let imap = t.user("alice").await;
    for i in 0..4 {
        t.append(
            &imap,
            "INBOX",
            &format!("m{i}"),
            if i == 0 { &["\\Deleted"] } else { &[] },
        )
        .await;
    }
    let ctx = pop_session("alice");
    let c = t
        .store
        .expunge_uids(&ctx, "INBOX", &uids("2,3,9"))
        .await
        .unwrap();
    t.check(&c.events).await;
    assert_eq!(
        c.value,
        vec![2, 3],
        "UID 9 does not exist; UID 1 was not asked for"
    );
    let [e] = &c.events[..] else { panic!() };
    assert_eq!(e.event, EventType::MessageExpunge);
    assert_eq!(e.uidset.as_ref().unwrap().to_string(), "2:3");
    assert_eq!(e.service.as_deref(), Some("pop"));
    let left: Vec<u32> = t
        .store
        .fetch(&imap, "INBOX", None)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(left, [1, 4]);
    let none = t
        .store
        .expunge_uids(&ctx, "INBOX", &uids("2"))
        .await
        .unwrap();
    assert!(
        none.value.is_empty() && none.events.is_empty(),
        "nothing removed, no event"
    );
}

#[tokio::test]
async fn disabled_event_groups_are_not_generated() {
    let t = open_with(|c| c.event_groups = vec![herald_events::EventGroup::Message]).await;
    let ctx = t.user("alice").await;
    let before = t.last().await;
    let c = t.store.create_mailbox(&ctx, "Work", None).await.unwrap();
    assert!(c.events.is_empty(), "the mailbox group is off");
    t.append(&ctx, "Work", "hello", &[]).await;
    let c = t
        .store
        .store_flags(
            &ctx,
            "Work",
            &uids("1"),
            FlagMode::Add,
            &["\\Seen".into()],
            None,
        )
        .await
        .unwrap();
    assert!(c.events.is_empty(), "the flags group is off");
    let stored = t.store.events_after(before, 10).await.unwrap();
    assert_eq!(stored.len(), 1, "only MessageAppend reached the outbox");
    assert!(stored[0].json.contains("\"MessageAppend\""));
}

#[tokio::test]
async fn a_subscription_is_delivered_by_one_node_at_a_time() {
    use std::time::Duration;
    let t = open().await;
    t.store
        .put_delivery(DeliveryRecord {
            name: "hook".into(),
            config: r#"{"name":"hook"}"#.into(),
            origin: "config".into(),
            paused: false,
            disabled_reason: None,
            cursor: 5,
            stats: Default::default(),
        })
        .await
        .unwrap();
    let ttl = Duration::from_secs(10);
    let fence = |node: &str, cursor| {
        Some(LeaseFence {
            node: node.into(),
            cursor,
        })
    };
    let a = t.store.claim_delivery("hook", "a", ttl).await.unwrap();
    assert_eq!(
        a.map(|r| r.cursor),
        Some(5),
        "a takes it with the stored cursor"
    );
    assert!(
        t.store
            .claim_delivery("hook", "b", ttl)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        t.store
            .claim_delivery("hook", "a", ttl)
            .await
            .unwrap()
            .is_some(),
        "renewed"
    );
    let stats = DeliveryStats {
        delivered: 2,
        ..Default::default()
    };
    t.store
        .set_delivery_stats("hook", Some(7), stats.clone(), fence("a", 5))
        .await
        .unwrap();
    // Not the holder, or a cursor that moved since it was read: refused, nothing written.
    for (node, cursor) in [("b", 7), ("a", 5)] {
        let refused = t
            .store
            .set_delivery_stats("hook", Some(9), stats.clone(), fence(node, cursor))
            .await;
        assert!(
            matches!(refused, Err(StoreError::LeaseLost(_))),
            "{refused:?}"
        );
        let parked = t
            .store
            .park_events("hook", vec![8], "x", 9, fence(node, cursor))
            .await;
        assert!(
            matches!(parked, Err(StoreError::LeaseLost(_))),
            "{parked:?}"
        );
    }
    assert!(t.store.parked_events("hook").await.unwrap().is_empty());
    // Releasing someone else's lease does nothing; the holder's release hands it over at once.
    t.store.release_delivery("hook", "b").await.unwrap();
    assert!(
        t.store
            .claim_delivery("hook", "b", ttl)
            .await
            .unwrap()
            .is_none()
    );
    t.store.release_delivery("hook", "a").await.unwrap();
    let b = t
        .store
        .claim_delivery("hook", "b", ttl)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (b.cursor, b.stats.delivered),
        (7, 2),
        "b resumes from a's commit"
    );
    // A lease that is not renewed expires: b's lease of no time is over a moment later.
    t.store
        .claim_delivery("hook", "b", Duration::ZERO)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(
        t.store
            .claim_delivery("hook", "a", ttl)
            .await
            .unwrap()
            .is_some()
    );
    assert!(matches!(
        t.store.claim_delivery("nope", "a", ttl).await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn delivery_counters_and_failure_survive_and_a_put_keeps_them() {
    let t = open().await;
    let record = DeliveryRecord {
        name: "hook".into(),
        config: r#"{"name":"hook"}"#.into(),
        origin: "config".into(),
        paused: false,
        disabled_reason: None,
        cursor: 0,
        stats: Default::default(),
    };
    t.store.put_delivery(record.clone()).await.unwrap();
    let failing = DeliveryStats {
        delivered: 40,
        retries: 3,
        failures: 4,
        failing_since_ms: Some(1_700_000_000_000),
        last_error: Some("HTTP 503".into()),
    };
    // A failure saves the counters without moving the cursor.
    t.store
        .set_delivery_stats("hook", None, failing.clone(), None)
        .await
        .unwrap();
    t.store.set_delivery_cursor("hook", 12).await.unwrap();
    let d = &t.store.deliveries().await.unwrap()[0];
    assert_eq!((d.cursor, &d.stats), (12, &failing));
    // The configuration reconciled at the next start: the counters stay.
    t.store
        .put_delivery(DeliveryRecord {
            config: r#"{"name":"hook","tags":["x"]}"#.into(),
            cursor: 12,
            ..record
        })
        .await
        .unwrap();
    assert_eq!(t.store.deliveries().await.unwrap()[0].stats, failing);
    // A delivery moves the cursor and the counters in one commit.
    let recovered = DeliveryStats {
        delivered: 45,
        failing_since_ms: None,
        last_error: None,
        ..failing
    };
    t.store
        .set_delivery_stats("hook", Some(17), recovered.clone(), None)
        .await
        .unwrap();
    let d = &t.store.deliveries().await.unwrap()[0];
    assert_eq!((d.cursor, &d.stats), (17, &recovered));
    assert!(matches!(
        t.store
            .set_delivery_stats("nope", None, recovered, None)
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn push_subscriptions_are_per_account_bounded_and_go_with_the_account() {
    let t = open().await;
    t.user("alice").await;
    t.user("bob").await;
    let sub = |user: &str, endpoint: &str, auth: &str| PushSubscription {
        user: user.into(),
        endpoint: endpoint.into(),
        p256dh: "BKey".into(),
        auth: auth.into(),
        created_ms: 1,
    };
    let before = t.last().await;
    t.store
        .put_push_subscription(sub("alice", "https://p/1", "a1"), 2)
        .await
        .unwrap();
    t.store
        .put_push_subscription(sub("alice", "https://p/2", "a2"), 2)
        .await
        .unwrap();
    // The same endpoint again replaces its keys, even at the bound.
    t.store
        .put_push_subscription(sub("alice", "https://p/1", "a1-new"), 2)
        .await
        .unwrap();
    let err = t
        .store
        .put_push_subscription(sub("alice", "https://p/3", "a3"), 2)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidArgument(_)), "{err}");
    assert_eq!(t.last().await, before, "push subscriptions emit no events");
    let listed = t.store.push_subscriptions("alice").await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].endpoint, "https://p/1");
    assert_eq!(listed[0].auth, "a1-new");
    assert!(t.store.push_subscriptions("bob").await.unwrap().is_empty());
    assert!(matches!(
        t.store.delete_push_subscription("bob", "https://p/1").await,
        Err(StoreError::NotFound { .. })
    ));
    t.store
        .delete_push_subscription("alice", "https://p/2")
        .await
        .unwrap();
    assert_eq!(t.store.push_subscriptions("alice").await.unwrap().len(), 1);
    // A re-created account does not inherit them.
    t.store.delete_user(&admin(), "alice").await.unwrap();
    t.user("alice").await;
    assert!(
        t.store
            .push_subscriptions("alice")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn delivery_state_survives_and_parking_moves_the_cursor_atomically() {
    let t = open().await;
    let record = DeliveryRecord {
        name: "audit".into(),
        config: r#"{"name":"audit"}"#.into(),
        origin: "api".into(),
        paused: false,
        disabled_reason: None,
        cursor: 0,
        stats: Default::default(),
    };
    t.store.put_delivery(record.clone()).await.unwrap();
    t.store.set_delivery_cursor("audit", 7).await.unwrap();
    t.store
        .park_events("audit", vec![8, 9], "HTTP 500", 9, None)
        .await
        .unwrap();
    let d = &t.store.deliveries().await.unwrap()[0];
    assert_eq!(d.cursor, 9);
    let parked = t.store.parked_events("audit").await.unwrap();
    assert_eq!(
        parked.iter().map(|p| p.event_id).collect::<Vec<_>>(),
        [8, 9]
    );
    assert_eq!(parked[0].reason, "HTTP 500");
    // Parking never moves a cursor backwards.
    t.store
        .park_events("audit", vec![3], "late", 3, None)
        .await
        .unwrap();
    assert_eq!(t.store.deliveries().await.unwrap()[0].cursor, 9);
    t.store.unpark_events("audit", vec![8, 3]).await.unwrap();
    let left: Vec<u64> = t
        .store
        .parked_events("audit")
        .await
        .unwrap()
        .iter()
        .map(|p| p.event_id)
        .collect();
    assert_eq!(left, [9]);
    t.store
        .set_delivery_state("audit", true, Some("410 Gone".into()))
        .await
        .unwrap();
    let d = &t.store.deliveries().await.unwrap()[0];
    assert!(d.paused && d.disabled_reason.as_deref() == Some("410 Gone"));
    assert!(matches!(
        t.store.set_delivery_cursor("nope", 1).await,
        Err(StoreError::NotFound { .. })
    ));
    t.store.delete_delivery("audit").await.unwrap();
    assert!(t.store.deliveries().await.unwrap().is_empty());
    assert!(t.store.parked_events("audit").await.unwrap().is_empty());
    // No delivery-state change is an event.
    assert_eq!(t.last().await, 0);
}

#[tokio::test]
async fn events_by_id_skips_missing_ids() {
    let t = open().await;
    let ctx = t.user("alice").await;
    t.store.create_mailbox(&ctx, "A", None).await.unwrap();
    t.store.create_mailbox(&ctx, "B", None).await.unwrap();
    let rows = t.store.events_by_id(vec![2, 99, 1, 2]).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.id).collect::<Vec<_>>(), [1, 2]);
}

/// Takes a store back from version 9 to 8 (the account state columns), for the tests that then
/// pretend to be older versions.
const UNDO_V9: &str = "ALTER TABLE accounts DROP COLUMN disabled_ms;
                       ALTER TABLE accounts DROP COLUMN disabled_reason;";

/// A store made at the current version, taken back by `downgrade` (SQL that undoes the newer
/// steps and sets `user_version`), then opened again: the migration must bring it to the
/// current version. Returns the upgraded connection (and the directory that holds it).
fn migrated_after(downgrade: &str) -> (TestDir, rusqlite::Connection) {
    let dir = test_dir();
    let path = dir.path().join("old.db");
    let connect = || {
        crate::embedded::schema::connect(&path, false, std::time::Duration::from_secs(1), false)
            .unwrap()
    };
    {
        let mut conn = connect();
        crate::embedded::schema::migrate(&mut conn).unwrap();
        conn.execute_batch(downgrade).unwrap();
    }
    let mut conn = connect();
    crate::embedded::schema::migrate(&mut conn).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, crate::embedded::schema::VERSION);
    (dir, conn)
}

/// A non-durable store in a fresh directory, holding `user`, and its configuration: for the
/// tests that close it, take its database back to an older schema ([`downgrade`]) and open it
/// again.
async fn store_with_user(user: &str) -> (TestDir, StoreConfig, Store) {
    let dir = test_dir();
    let mut config = config_for(dir.path());
    config.durable = false;
    let store = Store::open(config.clone()).await.unwrap();
    store.add_user(&admin(), user, "pw", false).await.unwrap();
    (dir, config, store)
}

/// Runs `sql` on the database of the closed store in `dir`.
fn downgrade(dir: &std::path::Path, sql: &str) {
    let conn = crate::embedded::schema::connect(
        &dir.join("herald.db"),
        false,
        std::time::Duration::from_secs(1),
        false,
    )
    .unwrap();
    conn.execute_batch(sql).unwrap();
}

/// True when the database has an index named `name`.
fn has_index(conn: &rusqlite::Connection, name: &str) -> bool {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?1)",
        [name],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn version_16_drops_the_unused_index_of_messages_by_date() {
    let has_index = |conn: &rusqlite::Connection| has_index(conn, "messages_by_date");
    let (_dir, fresh) = migrated_after("");
    assert!(!has_index(&fresh), "a new store is made without it");
    let (_dir, upgraded) = migrated_after(
        "CREATE INDEX messages_by_date ON messages (mailbox_id, internaldate);
         PRAGMA user_version = 15;",
    );
    assert!(!has_index(&upgraded), "a version 15 store loses it");
}

#[test]
fn version_17_indexes_the_deleted_messages_and_expunge_reads_through_it() {
    let has_index = |conn: &rusqlite::Connection| has_index(conn, "messages_deleted");
    let (_dir, fresh) = migrated_after("");
    assert!(has_index(&fresh), "a new store is made with it");
    let (_dir, upgraded) = migrated_after(
        "DROP INDEX messages_deleted;
         PRAGMA user_version = 16;",
    );
    assert!(has_index(&upgraded), "a version 16 store gains it");
    // EXPUNGE's query finds its rows through it.
    let plan: String = upgraded
        .query_row(
            r"EXPLAIN QUERY PLAN SELECT uid FROM messages INDEXED BY messages_deleted
              WHERE mailbox_id = 1 AND uid BETWEEN 1 AND 10
                AND instr(' ' || flags || ' ', ' \Deleted ') > 0",
            [],
            |r| r.get(3),
        )
        .unwrap();
    assert!(plan.contains("messages_deleted"), "{plan}");
}

#[test]
fn version_18_drops_the_outbox_autoincrement_and_keeps_its_last_id() {
    let outbox_sql = |conn: &rusqlite::Connection| -> String {
        conn.query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'outbox'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let last = |conn: &rusqlite::Connection| -> i64 {
        conn.query_row(crate::embedded::schema::SELECT_LAST_EVENT_ID, [], |r| {
            r.get(0)
        })
        .unwrap()
    };
    let (_dir, fresh) = migrated_after("");
    assert!(!outbox_sql(&fresh).contains("AUTOINCREMENT"));
    assert_eq!(last(&fresh), 0);
    // A version 17 store whose retention had emptied the outbox after id 41: the next id is
    // 42, although no row says so.
    let version_17 = |rows: &str| {
        format!(
            "DROP TABLE outbox;
             CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, event TEXT NOT NULL);
             INSERT INTO outbox (id, event) VALUES (40, 'e40'), (41, 'e41');
             {rows}
             DELETE FROM meta WHERE key = 'outbox_last';
             PRAGMA user_version = 17;"
        )
    };
    let (_dir, emptied) = migrated_after(&version_17("DELETE FROM outbox;"));
    assert!(!outbox_sql(&emptied).contains("AUTOINCREMENT"));
    assert_eq!(last(&emptied), 41);
    // Kept events keep their ids and text.
    let (_dir, kept) = migrated_after(&version_17("DELETE FROM outbox WHERE id = 40;"));
    let rows: Vec<(i64, String)> = kept
        .prepare("SELECT id, event FROM outbox ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows, [(41, "e41".to_owned())]);
    assert_eq!(last(&kept), 41);
    let sequences: i64 = kept
        .query_row(
            "SELECT count(*) FROM sqlite_sequence WHERE name = 'outbox'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        sequences, 0,
        "no commit writes sqlite_sequence for the outbox"
    );
}

/// Ids given out before retention emptied the outbox are never given again, on a store
/// upgraded to version 18 as on one made at it (retention keeps the newest event).
#[tokio::test]
async fn event_ids_go_on_after_an_upgrade_of_an_emptied_outbox() {
    if embedded_only("event_ids_go_on_after_an_upgrade_of_an_emptied_outbox") {
        return;
    }
    let (dir, config, store) = store_with_user("alice").await;
    let ctx = SessionContext::user("imap", "alice");
    store.create_mailbox(&ctx, "A", None).await.unwrap();
    assert_eq!(store.last_event_id().await.unwrap(), 3);
    store.close().await;
    // Back to version 17, the outbox emptied by a retention of that time.
    downgrade(
        dir.path(),
        "DROP TABLE outbox;
         CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, event TEXT NOT NULL);
         INSERT INTO outbox (id, event) VALUES (3, '{}');
         DELETE FROM outbox;
         PRAGMA user_version = 17;",
    );
    let store = Store::open(config).await.unwrap();
    assert_eq!(store.last_event_id().await.unwrap(), 3);
    let c = store.create_mailbox(&ctx, "B", None).await.unwrap();
    assert_eq!(c.events[0].herald_id(), Some(4));
    let after = store.events_after(0, 10).await.unwrap();
    assert_eq!(after.iter().map(|e| e.id).collect::<Vec<_>>(), [4]);
}

#[test]
fn a_version_8_store_gains_the_account_state() {
    let (_dir, conn) = migrated_after(&format!(
        "INSERT INTO accounts (name, password_hash) VALUES ('old', 'x'); \
         {UNDO_V9} PRAGMA user_version = 8;"
    ));
    let disabled: Option<i64> = conn
        .query_row(
            "SELECT disabled_ms FROM accounts WHERE name = 'old'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(disabled, None, "an existing account stays enabled");
}

#[test]
fn a_version_7_store_gains_the_push_subscriptions_table() {
    let dir = test_dir();
    let path = dir.path().join("v6.db");
    let connect = || {
        crate::embedded::schema::connect(&path, false, std::time::Duration::from_secs(1), false)
            .unwrap()
    };
    {
        let mut conn = connect();
        crate::embedded::schema::migrate(&mut conn).unwrap();
        conn.execute_batch(&format!(
            "DROP TABLE push_subscriptions; {UNDO_V9} PRAGMA user_version = 7;"
        ))
        .unwrap();
    }
    let mut conn = connect();
    crate::embedded::schema::migrate(&mut conn).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, crate::embedded::schema::VERSION);
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM push_subscriptions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0);
}

#[test]
fn a_version_1_store_is_upgraded_in_place() {
    let dir = test_dir();
    let path = dir.path().join("v1.db");
    {
        let mut conn = crate::embedded::schema::connect(
            &path,
            false,
            std::time::Duration::from_secs(1),
            false,
        )
        .unwrap();
        crate::embedded::schema::migrate(&mut conn).unwrap();
        // What version 1 had: no delivery tables, no `accounts.first_event`, no
        // `mailboxes.recent_uid`, no `messages.savedate`, none of version 5's tombstones and
        // threads nor version 6's thread numbers; and a mailbox with six messages' worth of UIDs.
        conn.execute_batch(
            "DROP TABLE deliveries; DROP TABLE parked;
             DROP TABLE expunged; DROP TABLE thread_refs;
             ALTER TABLE accounts DROP COLUMN next_thread;
             ALTER TABLE accounts DROP COLUMN thread_debt;
             ALTER TABLE mailboxes DROP COLUMN tombstones;
             ALTER TABLE mailboxes DROP COLUMN tombstone_floor;
             ALTER TABLE messages DROP COLUMN thread_id;
             ALTER TABLE accounts DROP COLUMN first_event;
             ALTER TABLE mailboxes DROP COLUMN recent_uid;
             ALTER TABLE messages DROP COLUMN savedate;
             INSERT INTO mailboxes (account_id, name, uidvalidity, uidnext) VALUES (1, 'm', 1, 7);
             PRAGMA user_version = 1;",
        )
        .unwrap();
        conn.execute_batch(UNDO_V9).unwrap();
    }
    let mut conn =
        crate::embedded::schema::connect(&path, false, std::time::Duration::from_secs(1), false)
            .unwrap();
    crate::embedded::schema::migrate(&mut conn).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, crate::embedded::schema::VERSION);
    conn.execute("INSERT INTO parked VALUES ('x', 1, 'r', 0)", [])
        .unwrap();
    // Messages that existed before the upgrade are not \Recent to anyone.
    let recent: u32 = conn
        .query_row(
            "SELECT recent_uid FROM mailboxes WHERE name = 'm'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(recent, 7);
    conn.execute(
        "INSERT INTO accounts (name, password_hash, first_event) VALUES ('a', 'h', 0)",
        [],
    )
    .unwrap();
}

#[tokio::test]
async fn empty_passwords_and_unbounded_keywords_are_refused() {
    let t = open().await;
    assert!(matches!(
        t.store.add_user(&admin(), "carol", "", false).await,
        Err(StoreError::InvalidArgument(_))
    ));
    let alice = t.user("alice").await;
    t.append(&alice, "INBOX", "Subject: x\r\n\r\nx\r\n", &[])
        .await;
    let uids: UidSet = "1".parse().unwrap();
    let huge = vec!["k".repeat(60_000)];
    assert!(
        t.store
            .store_flags(&alice, "INBOX", &uids, FlagMode::Add, &huge, None)
            .await
            .is_err()
    );
    // One keyword at a time, a message still fills up only to the bound.
    let mut refused = None;
    for i in 0..=flags::MAX_FLAGS {
        let r = t
            .store
            .store_flags(
                &alice,
                "INBOX",
                &uids,
                FlagMode::Add,
                &[format!("k{i}")],
                None,
            )
            .await;
        if r.is_err() {
            refused = Some(i);
            break;
        }
    }
    assert_eq!(refused, Some(flags::MAX_FLAGS));
    t.consistent().await;
}

#[tokio::test]
async fn the_message_metadata_read_is_not_re_prepared_per_run() {
    if embedded_only("the_message_metadata_read_is_not_re_prepared_per_run") {
        return;
    }
    let t = open().await;
    let ctx = t.user("alice").await;
    let path = t.store.config().path.join("herald.db");
    let conn =
        crate::embedded::schema::connect(&path, false, std::time::Duration::from_secs(1), true)
            .unwrap();
    for i in 0..3 {
        t.append(&ctx, "INBOX", &format!("m{i}"), &[]).await;
        let mut stmt = conn
            .prepare_cached(crate::sql::reads::MESSAGES_SQL)
            .unwrap();
        let n = stmt
            .query_map(rusqlite::params![1, 1, u32::MAX], |r| r.get::<_, u32>(0))
            .unwrap()
            .count();
        assert_eq!(n, i + 1);
        assert_eq!(
            stmt.get_status(rusqlite::StatementStatus::RePrepare),
            0,
            "SQLite re-prepared the statement (an ORDER BY with parameters does that)"
        );
    }
}

#[tokio::test]
async fn changes_report_new_changed_and_expunged_messages() {
    let t = open().await;
    let ctx = t.user("alice").await;
    for i in 0..3 {
        t.append(&ctx, "INBOX", &format!("m{i}"), &[]).await;
    }
    let uids_of = |c: &Changes| c.changed.iter().map(|m| m.uid).collect::<Vec<_>>();
    let c = t.store.changes(&ctx, "INBOX", 0, 0, 0).await.unwrap();
    assert_eq!((uids_of(&c), c.uids.clone()), (vec![1, 2, 3], None));
    let synced = c.highest_modseq;
    let none = t.store.changes(&ctx, "INBOX", synced, 3, 3).await.unwrap();
    assert_eq!((uids_of(&none), none.uids), (vec![], None));
    t.store
        .store_flags(
            &ctx,
            "INBOX",
            &uids("2"),
            FlagMode::Add,
            &s(&["\\Seen"]),
            None,
        )
        .await
        .unwrap();
    let c = t.store.changes(&ctx, "INBOX", synced, 3, 3).await.unwrap();
    assert_eq!((uids_of(&c), c.uids.clone()), (vec![2], None));
    assert_eq!(c.changed[0].flags, ["\\Seen"]);
    let synced = c.highest_modseq;
    t.store
        .store_flags(
            &ctx,
            "INBOX",
            &uids("1"),
            FlagMode::Add,
            &s(&["\\Deleted"]),
            None,
        )
        .await
        .unwrap();
    t.store
        .expunge(&ctx, "INBOX", Some(&uids("1")))
        .await
        .unwrap();
    t.append(&ctx, "INBOX", "m3", &[]).await;
    let c = t.store.changes(&ctx, "INBOX", synced, 3, 3).await.unwrap();
    // UID 1 changed (\Deleted) and then went: the tombstones name it, and the mailbox's
    // UIDs are not read.
    assert_eq!(uids_of(&c), [4]);
    assert_eq!((c.expunged.clone(), c.uids.clone()), (Some(vec![1]), None));
}

/// When the tombstones no longer reach back to the session's MODSEQ, the answer falls back to
/// every UID of the mailbox, so a session never keeps a message that is gone.
#[tokio::test]
async fn changes_fall_back_to_the_uid_list_below_the_tombstone_floor() {
    let t = open_with(|c| c.tombstones_per_mailbox = 2).await;
    let ctx = t.user("alice").await;
    for i in 0..6 {
        t.append(&ctx, "INBOX", &format!("m{i}"), &["\\Deleted"])
            .await;
    }
    let synced = t.store.mailbox(&ctx, "INBOX").await.unwrap().highest_modseq;
    for uid in 1..=5u32 {
        t.store
            .expunge(&ctx, "INBOX", Some(&uids(&uid.to_string())))
            .await
            .unwrap();
    }
    let c = t.store.changes(&ctx, "INBOX", synced, 6, 6).await.unwrap();
    assert_eq!((c.expunged, c.uids), (None, Some(vec![6])));
    // From a MODSEQ the tombstones still cover, they answer.
    let recent = t.store.mailbox(&ctx, "INBOX").await.unwrap().highest_modseq;
    t.store
        .expunge(&ctx, "INBOX", Some(&uids("6")))
        .await
        .unwrap();
    let c = t.store.changes(&ctx, "INBOX", recent, 6, 1).await.unwrap();
    assert_eq!((c.expunged, c.uids), (Some(vec![6]), None));
}

#[tokio::test]
async fn counts_agree_with_the_messages() {
    let t = open().await;
    let ctx = t.user("alice").await;
    t.append(&ctx, "INBOX", "one", &["\\Seen"]).await;
    t.append(&ctx, "INBOX", "two two", &["\\Deleted", "$Work"])
        .await;
    t.append(&ctx, "INBOX", "three", &["\\Seen", "\\Deleted"])
        .await;
    let uv = t.store.mailbox(&ctx, "INBOX").await.unwrap().uidvalidity;
    t.store.claim_recent(&ctx, "INBOX", uv, 2).await.unwrap();
    let c = t.store.counts(&ctx, "INBOX").await.unwrap();
    assert_eq!(
        c,
        MailboxCounts {
            messages: 3,
            unseen: 1,
            deleted: 2,
            size: 3 + 7 + 5,
            recent: 2,
        }
    );
    let empty = t.store.counts(&ctx, "Nope").await;
    assert!(matches!(empty, Err(StoreError::NotFound { .. })));
}

// ---- expunge tombstones (QRESYNC VANISHED (EARLIER)) ----------------------------------------

#[tokio::test]
async fn vanished_names_exactly_what_was_expunged_after_a_modseq() {
    let t = open().await;
    let ctx = t.user("alice").await;
    t.store.create_mailbox(&ctx, "Archive", None).await.unwrap();
    for i in 0..6 {
        t.append(&ctx, "INBOX", &format!("m{i}"), &["\\Deleted"])
            .await;
    }
    let m0 = t.store.mailbox(&ctx, "INBOX").await.unwrap().highest_modseq;
    let v = t.store.vanished(&ctx, "INBOX", m0).await.unwrap();
    assert_eq!(
        v,
        Vanished {
            uids: vec![],
            complete: true
        }
    );
    t.store
        .expunge(&ctx, "INBOX", Some(&uids("2")))
        .await
        .unwrap();
    let m1 = t.store.mailbox(&ctx, "INBOX").await.unwrap().highest_modseq;
    // MOVE expunges from its source too, and a flag change after it leaves no tombstone.
    t.store
        .move_messages(&ctx, "INBOX", &uids("4:5"), "Archive")
        .await
        .unwrap();
    t.store
        .store_flags(&ctx, "INBOX", &uids("1"), FlagMode::Add, &s(&["$x"]), None)
        .await
        .unwrap();
    let at = |m: u64| {
        let store = t.store.clone();
        let ctx = ctx.clone();
        async move { store.vanished(&ctx, "INBOX", m).await.unwrap().uids }
    };
    assert_eq!(at(0).await, [2, 4, 5]);
    assert_eq!(at(m0).await, [2, 4, 5]);
    assert_eq!(at(m1).await, [4, 5]);
    assert_eq!(at(m1 + 1).await, Vec::<u32>::new());
    assert!(
        t.store
            .vanished(&ctx, "Archive", 0)
            .await
            .unwrap()
            .uids
            .is_empty()
    );
    t.consistent().await;
    // Deleting a mailbox takes its tombstones with it; a mailbox of that name made again
    // starts with none.
    t.store.delete_mailbox(&ctx, "Archive").await.unwrap();
    t.store.create_mailbox(&ctx, "Archive", None).await.unwrap();
    t.store.expunge(&ctx, "INBOX", None).await.unwrap();
    assert_eq!(at(0).await, [1, 2, 3, 4, 5, 6]);
    t.consistent().await;
}

#[tokio::test]
async fn tombstones_are_pruned_to_a_bound_and_say_when_they_no_longer_reach_back() {
    let t = open_with(|c| c.tombstones_per_mailbox = 4).await;
    let ctx = t.user("alice").await;
    let mut modseqs = Vec::new();
    for i in 1..=7u32 {
        t.append(&ctx, "INBOX", &format!("m{i}"), &["\\Deleted"])
            .await;
        modseqs.push(t.store.mailbox(&ctx, "INBOX").await.unwrap().highest_modseq);
        t.store
            .expunge(&ctx, "INBOX", Some(&uids(&i.to_string())))
            .await
            .unwrap();
    }
    // The fifth expunge went over four: the older half went, and the floor rose to the
    // newest MODSEQ dropped. Answers from before the floor say they are not complete.
    let v = t.store.vanished(&ctx, "INBOX", 0).await.unwrap();
    assert!(!v.complete, "{v:?}");
    let last = t.store.vanished(&ctx, "INBOX", modseqs[6]).await.unwrap();
    assert_eq!(
        last,
        Vanished {
            uids: vec![7],
            complete: true
        }
    );
    let kept = t.store.vanished(&ctx, "INBOX", modseqs[4]).await.unwrap();
    assert_eq!(
        kept,
        Vanished {
            uids: vec![5, 6, 7],
            complete: true
        }
    );
    let rows = raw_sql(&t.store, "SELECT COUNT(*) FROM expunged").await;
    assert!(rows <= 4, "{rows}");
    t.consistent().await;
}

// ---- threads (RFC 8474 THREADID) -----------------------------------------------------------

fn mail(id: &str, parents: &[&str]) -> String {
    let mut m = format!("Message-ID: <{id}>\r\nSubject: s\r\n");
    if let Some(p) = parents.last() {
        m.push_str(&format!("In-Reply-To: <{p}>\r\n"));
        let refs: Vec<String> = parents.iter().map(|p| format!("<{p}>")).collect();
        m.push_str(&format!("References: {}\r\n", refs.join(" ")));
    }
    m.push_str("\r\nbody\r\n");
    m
}

#[tokio::test]
async fn replies_join_their_thread_which_survives_copy_move_and_rename() {
    let t = open().await;
    let ctx = t.user("alice").await;
    let bob = t.user("bob").await;
    t.store.create_mailbox(&ctx, "Work", None).await.unwrap();
    t.append(&ctx, "INBOX", &mail("a@x", &[]), &[]).await; // 1
    t.append(&ctx, "INBOX", &mail("b@x", &["a@x"]), &[]).await; // 2: replies to 1
    t.append(&ctx, "INBOX", &mail("c@x", &[]), &[]).await; // 3: unrelated
    // 4 names only the root, among others unknown; 5 replies to a message not stored yet,
    // and 6 is that message: it joins the thread its reply started.
    t.append(&ctx, "INBOX", &mail("d@x", &["a@x", "zz@x"]), &[])
        .await;
    t.append(&ctx, "INBOX", &mail("f@x", &["e@x"]), &[]).await;
    t.append(&ctx, "INBOX", &mail("e@x", &[]), &[]).await;
    t.append(&bob, "INBOX", &mail("b2@x", &["a@x"]), &[]).await;
    let threads = |store: Store, ctx: SessionContext, mailbox: &'static str| async move {
        store
            .fetch(&ctx, mailbox, None)
            .await
            .unwrap()
            .into_iter()
            .map(|m| (m.uid, m.thread_id))
            .collect::<Vec<_>>()
    };
    let inbox = threads(t.store.clone(), ctx.clone(), "INBOX").await;
    let tid = |uid: u32| inbox.iter().find(|m| m.0 == uid).unwrap().1;
    assert!(inbox.iter().all(|m| m.1 != 0), "{inbox:?}");
    assert_eq!(tid(2), tid(1));
    assert_eq!(tid(4), tid(1));
    assert_ne!(tid(3), tid(1));
    assert_eq!(tid(6), tid(5));
    assert_ne!(tid(5), tid(1));
    assert_ne!(tid(5), tid(3));
    // Threads are numbered per account; another account's reply to the same Message-ID
    // starts one of that account's own.
    let bobs = threads(t.store.clone(), bob.clone(), "INBOX").await;
    assert_eq!(bobs.len(), 1);
    assert_ne!(bobs[0].1, 0);
    // COPY keeps the thread; MOVE too; RENAME changes nothing about it.
    t.store
        .copy(&ctx, "INBOX", &uids("1"), "Work")
        .await
        .unwrap();
    t.store
        .move_messages(&ctx, "INBOX", &uids("3"), "Work")
        .await
        .unwrap();
    t.store.rename_mailbox(&ctx, "Work", "Done").await.unwrap();
    let done = threads(t.store.clone(), ctx.clone(), "Done").await;
    assert_eq!(done, [(1, tid(1)), (2, tid(3))]);
    t.consistent().await;
    // A late reply to a message whose thread is gone joins that thread's number (never
    // reused, so it names no other conversation).
    t.store
        .store_flags(
            &ctx,
            "INBOX",
            &uids("5:6"),
            FlagMode::Add,
            &s(&["\\Deleted"]),
            None,
        )
        .await
        .unwrap();
    t.store.expunge(&ctx, "INBOX", None).await.unwrap();
    t.append(&ctx, "INBOX", &mail("g@x", &["e@x"]), &[]).await;
    let inbox2 = threads(t.store.clone(), ctx.clone(), "INBOX").await;
    assert_eq!(inbox2.last().unwrap().1, tid(5), "{inbox2:?}");
    t.consistent().await;
    // Deleting the account leaves no thread behind.
    t.store.delete_user(&admin(), "alice").await.unwrap();
    t.store.delete_user(&admin(), "bob").await.unwrap();
    for table in ["thread_refs", "expunged"] {
        let n = raw_sql(&t.store, &format!("SELECT COUNT(*) FROM {table}")).await;
        assert_eq!(n, 0, "{table}");
    }
    t.consistent().await;
}

#[test]
fn a_version_6_store_gets_delivery_counters_and_keeps_its_cursors() {
    let dir = test_dir();
    let path = dir.path().join("v6.db");
    {
        let mut conn = crate::embedded::schema::connect(
            &path,
            false,
            std::time::Duration::from_secs(1),
            false,
        )
        .unwrap();
        crate::embedded::schema::migrate(&mut conn).unwrap();
        conn.execute_batch(
            "ALTER TABLE deliveries DROP COLUMN delivered;
             ALTER TABLE deliveries DROP COLUMN retries;
             ALTER TABLE deliveries DROP COLUMN failures;
             ALTER TABLE deliveries DROP COLUMN failing_since_ms;
             ALTER TABLE deliveries DROP COLUMN last_error;
             INSERT INTO deliveries (name, config, origin, paused, cursor)
               VALUES ('hook', '{}', 'config', 0, 42);
             PRAGMA user_version = 6;",
        )
        .unwrap();
        conn.execute_batch(UNDO_V9).unwrap();
    }
    let mut conn =
        crate::embedded::schema::connect(&path, false, std::time::Duration::from_secs(1), false)
            .unwrap();
    crate::embedded::schema::migrate(&mut conn).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, crate::embedded::schema::VERSION);
    let row: (i64, i64, i64, Option<i64>) = conn
        .query_row(
            "SELECT cursor, delivered, failures, failing_since_ms FROM deliveries WHERE name = 'hook'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(row, (42, 0, 0, None));
}

#[test]
fn a_version_4_store_gets_tombstone_floors_and_one_thread_per_content() {
    let dir = test_dir();
    let path = dir.path().join("v4.db");
    {
        let mut conn = crate::embedded::schema::connect(
            &path,
            false,
            std::time::Duration::from_secs(1),
            false,
        )
        .unwrap();
        crate::embedded::schema::migrate(&mut conn).unwrap();
        // What version 4 had: no tombstones, no threads; two accounts, the first with the
        // same content in two mailboxes.
        conn.execute_batch(
            "DROP TABLE expunged; DROP TABLE thread_refs;
             ALTER TABLE accounts DROP COLUMN next_thread;
             ALTER TABLE accounts DROP COLUMN thread_debt;
             ALTER TABLE mailboxes DROP COLUMN tombstones;
             ALTER TABLE mailboxes DROP COLUMN tombstone_floor;
             ALTER TABLE messages DROP COLUMN thread_id;
             INSERT INTO accounts (id, name, password_hash) VALUES (1, 'a', 'h'), (2, 'b', 'h');
             INSERT INTO mailboxes (id, account_id, name, uidvalidity, uidnext, highestmodseq)
               VALUES (1, 1, 'INBOX', 1, 4, 9), (2, 1, 'Keep', 1, 2, 3),
                      (3, 2, 'INBOX', 1, 2, 2);
             INSERT INTO blobs (id, sha256, size, refcount, data)
               VALUES (1, x'01', 1, 3, x'61'), (2, x'02', 1, 1, x'62');
             INSERT INTO messages (mailbox_id, uid, blob_id, size, internaldate, modseq)
               VALUES (1, 1, 1, 1, 0, 2), (1, 3, 2, 1, 0, 9), (2, 1, 1, 1, 0, 3),
                      (3, 1, 1, 1, 0, 2);
             ALTER TABLE deliveries DROP COLUMN delivered;
             ALTER TABLE deliveries DROP COLUMN retries;
             ALTER TABLE deliveries DROP COLUMN failures;
             ALTER TABLE deliveries DROP COLUMN failing_since_ms;
             ALTER TABLE deliveries DROP COLUMN last_error;
             PRAGMA user_version = 4;",
        )
        .unwrap();
        conn.execute_batch(UNDO_V9).unwrap();
    }
    let mut conn =
        crate::embedded::schema::connect(&path, false, std::time::Duration::from_secs(1), false)
            .unwrap();
    crate::embedded::schema::migrate(&mut conn).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, crate::embedded::schema::VERSION);
    let floors: Vec<(i64, i64)> = conn
        .prepare("SELECT highestmodseq, tombstone_floor FROM mailboxes ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(floors, [(9, 9), (3, 3), (2, 2)]);
    let threads: Vec<(i64, u32, i64)> = conn
        .prepare("SELECT mailbox_id, uid, thread_id FROM messages ORDER BY mailbox_id, uid")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let [a1, a3, keep1, b1] = [threads[0].2, threads[1].2, threads[2].2, threads[3].2];
    assert!(a1 > 0 && a3 > 0 && b1 > 0);
    assert_eq!(
        a1, keep1,
        "copies of one content in one account share a thread"
    );
    assert_ne!(a1, a3);
    assert_ne!(a1, b1, "another account's copy is its own thread");
    // New threads continue after the migrated ones, in every account.
    let next: Vec<i64> = conn
        .prepare("SELECT next_thread FROM accounts ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(next.len(), 2);
    assert!(next.iter().all(|n| *n > a1.max(a3).max(b1)), "{next:?}");
    let tables: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'threads'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0);
}

#[tokio::test]
async fn a_version_5_store_keeps_its_threads_under_hashed_keys() {
    if embedded_only("a_version_5_store_keeps_its_threads_under_hashed_keys") {
        return;
    }
    let (dir, config, store) = store_with_user("dana").await;
    store.close().await;
    drop(store);
    // Back to version 5, the account holding one thread (7) whose root is <root@x>.
    downgrade(
        dir.path(),
        &format!(
            "DROP TABLE thread_refs;
             ALTER TABLE accounts DROP COLUMN next_thread;
             ALTER TABLE accounts DROP COLUMN thread_debt;
             CREATE TABLE threads (id INTEGER PRIMARY KEY AUTOINCREMENT, refcount INTEGER NOT NULL);
             INSERT INTO threads (id, refcount) VALUES (7, 1);
             CREATE TABLE thread_refs (account_id INTEGER NOT NULL, msgid TEXT NOT NULL,
               thread_id INTEGER NOT NULL, PRIMARY KEY (account_id, msgid)) WITHOUT ROWID;
             CREATE INDEX thread_refs_by_thread ON thread_refs (thread_id);
             INSERT INTO thread_refs SELECT id, 'root@x', 7 FROM accounts WHERE name = 'dana';
             ALTER TABLE deliveries DROP COLUMN delivered;
             ALTER TABLE deliveries DROP COLUMN retries;
             ALTER TABLE deliveries DROP COLUMN failures;
             ALTER TABLE deliveries DROP COLUMN failing_since_ms;
             ALTER TABLE deliveries DROP COLUMN last_error;
             PRAGMA user_version = 5;
             {UNDO_V9}"
        ),
    );
    let t = T {
        store: Store::open(config).await.unwrap(),
        _dir: dir,
    };
    let ctx = SessionContext::user("imap", "dana");
    t.append(&ctx, "INBOX", &mail("r@x", &["root@x"]), &[])
        .await;
    t.append(&ctx, "INBOX", &mail("n@x", &[]), &[]).await;
    let ids: Vec<u64> = t
        .store
        .fetch(&ctx, "INBOX", None)
        .await
        .unwrap()
        .iter()
        .map(|m| m.thread_id)
        .collect();
    assert_eq!(
        ids,
        [7, 8],
        "the reply joins the migrated thread; new ones come after"
    );
    t.consistent().await;
}

#[tokio::test]
async fn thread_identifiers_of_gone_messages_are_swept_once_enough_went() {
    let t = open().await;
    let ctx = t.user("carol").await;
    t.append(&ctx, "INBOX", &mail("keep@x", &[]), &[]).await;
    for i in 0..300 {
        t.append(&ctx, "INBOX", &mail(&format!("m{i}@x"), &[]), &[])
            .await;
    }
    let refs = |t: &T| {
        let store = t.store.clone();
        async move { raw_sql(&store, "SELECT COUNT(*) FROM thread_refs").await }
    };
    let expunge = |range: &'static str| {
        let (store, ctx) = (t.store.clone(), ctx.clone());
        async move {
            store
                .store_flags(
                    &ctx,
                    "INBOX",
                    &uids(range),
                    FlagMode::Add,
                    &s(&["\\Deleted"]),
                    None,
                )
                .await
                .unwrap();
            store.expunge(&ctx, "INBOX", None).await.unwrap();
        }
    };
    // A few expunges are not worth reading the whole account for.
    expunge("2:11").await;
    assert_eq!(t.store.sweep_threads().await.unwrap(), None);
    assert_eq!(refs(&t).await, 301);
    expunge("12:301").await;
    assert_eq!(
        t.store.sweep_threads().await.unwrap(),
        Some(("carol".to_string(), 300))
    );
    assert_eq!(refs(&t).await, 1, "the kept message's identifier stays");
    assert_eq!(t.store.sweep_threads().await.unwrap(), None);
    // Its reply still joins it; a reply to a swept one starts a thread of its own.
    t.append(&ctx, "INBOX", &mail("r1@x", &["keep@x"]), &[])
        .await;
    t.append(&ctx, "INBOX", &mail("r2@x", &["m5@x"]), &[]).await;
    let msgs = t.store.fetch(&ctx, "INBOX", None).await.unwrap();
    let ids: Vec<u64> = msgs.iter().map(|m| m.thread_id).collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[1], ids[0]);
    assert_ne!(ids[2], ids[0]);
    t.consistent().await;
}

// ---- retention -----------------------------------------------------------------------------

use crate::retention::RetentionPolicy;

impl T {
    /// Commits `n` events (mailbox creations) for `ctx`.
    async fn events(&self, ctx: &SessionContext, n: usize) {
        for _ in 0..n {
            let name = format!("M{}", self.last().await + 1);
            self.store.create_mailbox(ctx, &name, None).await.unwrap();
        }
    }

    async fn delivery(&self, name: &str, cursor: u64) {
        self.store
            .put_delivery(DeliveryRecord {
                name: name.into(),
                config: "{}".into(),
                origin: "api".into(),
                paused: false,
                disabled_reason: None,
                cursor,
                stats: Default::default(),
            })
            .await
            .unwrap();
    }

    async fn bounds(&self) -> (Option<u64>, u64) {
        let b = self.store.outbox_bounds().await.unwrap();
        (b.oldest, b.head)
    }

    /// Prunes as if it were `now_ms`, until retention says it is done; returns the rows pruned.
    async fn prune_at(&self, policy: RetentionPolicy, now_ms: i64) -> u64 {
        let mut total = 0;
        loop {
            let (hold, backend) = self.store.test_parts();
            let op = crate::backend::Op::PruneOutbox {
                policy,
                hold,
                now_ms,
            };
            let applied = backend
                .submit(SessionContext::service(PROCESS), op)
                .await
                .unwrap();
            let crate::backend::Output::Pruned(r) = applied.output else {
                panic!("not a prune report");
            };
            total += r.pruned;
            if !r.more {
                return total;
            }
        }
    }
}

fn keep_newest(n: u64) -> RetentionPolicy {
    RetentionPolicy {
        max_events: Some(n),
        ..RetentionPolicy::default()
    }
}

#[tokio::test]
async fn retention_removes_only_acknowledged_events_never_parked_ones() {
    let (t, ctx) = open_with_silent_user("alice").await;
    t.events(&ctx, 20).await;
    assert_eq!(t.bounds().await, (Some(1), 20));
    // Nothing configured: nothing goes.
    assert_eq!(
        t.store
            .prune_events(&RetentionPolicy::default())
            .await
            .unwrap()
            .pruned,
        0
    );
    // Two subscriptions: the slower one (cursor 8) decides, whatever the policy allows.
    t.delivery("fast", 20).await;
    t.delivery("slow", 8).await;
    assert_eq!(t.prune_at(keep_newest(1), now_ms()).await, 8);
    assert_eq!(t.bounds().await, (Some(9), 20));
    // A paused subscription keeps what it has not acknowledged too.
    t.store
        .set_delivery_state("slow", true, None)
        .await
        .unwrap();
    t.store.set_delivery_cursor("slow", 12).await.unwrap();
    // Events parked by a subscription stay (a replay reads them), and everything after them.
    t.store
        .park_events("fast", vec![11], "HTTP 500", 20, None)
        .await
        .unwrap();
    assert_eq!(t.prune_at(keep_newest(1), now_ms()).await, 2);
    assert_eq!(t.bounds().await, (Some(11), 20));
    t.store.unpark_events("fast", vec![11]).await.unwrap();
    // An in-process hold (the event log) counts like a cursor.
    let hold = t.store.retention_hold(11);
    assert_eq!(t.prune_at(keep_newest(1), now_ms()).await, 1);
    assert_eq!(t.bounds().await, (Some(12), 20));
    hold.release_through(15);
    t.store.set_delivery_cursor("slow", 20).await.unwrap();
    assert_eq!(t.prune_at(keep_newest(1), now_ms()).await, 4);
    assert_eq!(t.bounds().await, (Some(16), 20));
    drop(hold);
    // Never the newest event, even when everything is acknowledged.
    assert_eq!(t.prune_at(keep_newest(1), now_ms()).await, 4);
    assert_eq!(t.bounds().await, (Some(20), 20));
    // The policy: the newest N stay.
    t.events(&ctx, 10).await;
    t.store.set_delivery_cursor("slow", 30).await.unwrap();
    t.store.set_delivery_cursor("fast", 30).await.unwrap();
    assert_eq!(t.prune_at(keep_newest(4), now_ms()).await, 7);
    assert_eq!(t.bounds().await, (Some(27), 30));
    let c = t.store.check_consistency().await.unwrap();
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    assert_eq!((c.events, c.last_event_id), (4, 30));
    // Ids go on from the head, never reused.
    t.events(&ctx, 1).await;
    assert_eq!(t.bounds().await, (Some(27), 31));
}

#[tokio::test]
async fn retention_by_age_stops_at_the_first_young_event_and_works_in_batches() {
    let (t, ctx) = open_with_silent_user("alice").await;
    t.events(&ctx, 10).await;
    let day = 86_400_000;
    let by_age = RetentionPolicy {
        max_age_secs: Some(86_400),
        batch: 3,
        ..RetentionPolicy::default()
    };
    // Young: nothing goes.
    assert_eq!(t.prune_at(by_age, now_ms()).await, 0);
    // Two days on, every acknowledged one is old; batches of three, the newest stays.
    assert_eq!(t.prune_at(by_age, now_ms() + 2 * day).await, 9);
    assert_eq!(t.bounds().await, (Some(10), 10));
    // One transaction removes at most a batch, and says when there may be more.
    t.events(&ctx, 10).await;
    let r = t
        .store
        .prune_events(&RetentionPolicy {
            max_events: Some(1),
            batch: 4,
            ..RetentionPolicy::default()
        })
        .await
        .unwrap();
    assert_eq!((r.pruned, r.oldest, r.more), (4, Some(14), true));
    // Either limit lets an event go: age none here, but the count does.
    let both = RetentionPolicy {
        max_age_secs: Some(86_400),
        max_events: Some(5),
        batch: 100,
    };
    assert_eq!(t.prune_at(both, now_ms()).await, 2);
    assert_eq!(t.bounds().await, (Some(16), 20));
}

#[tokio::test]
async fn event_times_and_outbox_bounds() {
    let (t, ctx) = open_with_silent_user("alice").await;
    assert_eq!(
        t.store.outbox_bounds().await.unwrap(),
        OutboxBounds::default()
    );
    t.events(&ctx, 3).await;
    let before = now_ms();
    let times = t.store.event_times(vec![2, 3, 99]).await.unwrap();
    assert_eq!(times.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [2, 3]);
    for (_, ms) in times {
        let ms = ms.expect("an RFC 3339 timestamp SQLite reads");
        assert!((before - ms).abs() < 60_000, "{ms} vs {before}");
    }
    let b = OutboxBounds {
        oldest: Some(3),
        head: 5,
    };
    assert_eq!(b.events(), 3);
    assert!(b.pruned(1) && b.pruned(2));
    assert!(!b.pruned(0) && !b.pruned(3) && !b.pruned(6));
    assert!(!t.store.is_open() || t.store.parked_counts().await.unwrap().is_empty());
    assert!(t.store.is_open());
    t.store.close().await;
    assert!(!t.store.is_open());
}

// ---- accounts and authentication (RFC 5423 Appendix A, `vnd.herald.*`) ------------------------

#[tokio::test]
async fn account_creation_announces_the_account_then_its_inbox_in_one_transaction() {
    let t = open().await;
    let c = t
        .store
        .add_user(&admin(), "alice", "pw", false)
        .await
        .unwrap();
    t.check(&c.events).await;
    let [account, inbox] = &c.events[..] else {
        panic!("{:?}", types(&c.events))
    };
    assert_eq!(account.event, EventType::AccountCreate);
    assert_eq!(account.service.as_deref(), Some("admincli"));
    assert_eq!(inbox.event, EventType::MailboxCreate);
    assert_eq!(account.timestamp, inbox.timestamp, "one transaction");
    let info = t
        .store
        .mailbox(&SessionContext::user("imap", "alice"), "INBOX")
        .await
        .unwrap();
    assert_eq!(
        inbox.mailbox_id.as_ref().unwrap().uidvalidity,
        Some(info.uidvalidity)
    );
    // A refused creation commits nothing.
    let before = t.last().await;
    assert!(
        t.store
            .add_user(&admin(), "alice", "pw", false)
            .await
            .is_err()
    );
    assert_eq!(t.last().await, before);
}

#[tokio::test]
async fn password_change_is_announced_without_the_password() {
    let t = open().await;
    t.user("alice").await;
    let c = t
        .store
        .set_password(&admin(), "alice", "s3cret-pw")
        .await
        .unwrap();
    t.check(&c.events).await;
    let [e] = &c.events[..] else { panic!() };
    assert_eq!(e.event, EventType::PasswordChange);
    assert_eq!(e.user.as_deref(), Some("alice"));
    let json = e.to_json();
    assert!(
        !json.contains("s3cret") && !json.contains("argon2"),
        "{json}"
    );
    let hash = crate::password::hash("other-pw").unwrap();
    let c = t
        .store
        .set_password_hashed(&admin(), "alice", &hash)
        .await
        .unwrap();
    assert_eq!(types(&c.events), [EventType::PasswordChange]);
    // An unknown account: an error, and no event.
    let before = t.last().await;
    assert!(
        t.store
            .set_password(&admin(), "nobody", "x-pw")
            .await
            .is_err()
    );
    assert_eq!(t.last().await, before);
}

#[tokio::test]
async fn login_failures_are_recorded_with_the_client_and_reason() {
    let t = open().await;
    t.user("alice").await;
    let ctx = SessionContext::connection(
        "imap",
        "192.0.2.7:50123".parse().unwrap(),
        "127.0.0.1:143".parse().unwrap(),
    );
    let cases = [
        ("alice", LoginFailure::BadCredentials, "bad-credentials"),
        ("mallory", LoginFailure::BadCredentials, "no-such-user"),
        ("alice", LoginFailure::RateLimited, "rate-limited"),
        ("alice", LoginFailure::PlaintextRefused, "plaintext-refused"),
    ];
    for (user, failure, reason) in cases {
        let c = t
            .store
            .login_failed(&ctx, user, "PLAIN", failure)
            .await
            .unwrap();
        t.check(&c.events).await;
        let [e] = &c.events[..] else { panic!() };
        assert_eq!(e.event, EventType::LoginFailed);
        assert_eq!(e.user.as_deref(), Some(user));
        assert_eq!(e.admin, None);
        assert_eq!(e.client_ip, Some("192.0.2.7".parse().unwrap()));
        assert_eq!(e.client_port, Some(50123));
        assert_eq!(e.server_port, Some(143));
        assert_eq!(e.service.as_deref(), Some("imap"));
        assert_eq!(e.extension(vnd::MECHANISM).unwrap(), "PLAIN");
        assert_eq!(e.extension(vnd::REASON).unwrap(), reason);
        assert_eq!(e.uri.as_ref().unwrap().user, None);
    }
    // A flood the rate limiter refuses is one event per client and name in a minute, not
    // one durable commit per guess; another client or name is recorded at once.
    let before = t.last().await;
    for _ in 0..50 {
        let c = t
            .store
            .login_failed(&ctx, "alice", "PLAIN", LoginFailure::RateLimited)
            .await
            .unwrap();
        assert!(c.events.is_empty());
    }
    assert_eq!(
        t.last().await,
        before,
        "nothing committed for repeated refusals"
    );
    let other = SessionContext::connection(
        "imap",
        "192.0.2.8:50124".parse().unwrap(),
        "127.0.0.1:143".parse().unwrap(),
    );
    for (ctx, user) in [(&other, "alice"), (&ctx, "bob")] {
        let c = t
            .store
            .login_failed(ctx, user, "PLAIN", LoginFailure::RateLimited)
            .await
            .unwrap();
        assert_eq!(c.events.len(), 1, "{user}");
    }
    // A name too long to be anyone's is cut, not stored whole.
    let long = "x".repeat(10_000);
    let c = t
        .store
        .login_failed(&ctx, &long, "PLAIN", LoginFailure::BadCredentials)
        .await
        .unwrap();
    assert_eq!(c.events[0].user.as_ref().map(String::len), Some(256));
}

#[tokio::test]
async fn message_events_carry_mailbox_id_and_copies_their_source_uids() {
    let t = open().await;
    let ctx = t.user("alice").await;
    t.store.create_mailbox(&ctx, "Work", None).await.unwrap();
    for i in 0..3 {
        t.append(&ctx, "INBOX", &format!("m{i}"), &[]).await;
    }
    let inbox = t.store.mailbox(&ctx, "INBOX").await.unwrap();
    let c = t
        .store
        .copy(&ctx, "INBOX", &uids("2:3"), "Work")
        .await
        .unwrap();
    t.check(&c.events).await;
    let sources: Vec<String> = c
        .events
        .iter()
        .map(|e| e.extension(vnd::SOURCE_UIDSET).unwrap().to_string())
        .collect();
    assert_eq!(sources, ["\"2\"", "\"3\""]);
    let c = t
        .store
        .move_messages(&ctx, "INBOX", &uids("1"), "Work")
        .await
        .unwrap();
    t.check(&c.events).await;
    assert_eq!(
        c.events[0].extension(vnd::SOURCE_UIDSET).unwrap().as_str(),
        Some("1")
    );
    for row in t.store.events_after(0, 100).await.unwrap() {
        let e = Event::from_json(&row.json).unwrap();
        if e.event.group() != Some(herald_events::EventGroup::Message)
            && e.event.group() != Some(herald_events::EventGroup::Flags)
        {
            continue;
        }
        let id = e
            .mailbox_id
            .as_ref()
            .unwrap_or_else(|| panic!("{}", row.json));
        assert!(id.uidvalidity.is_some() && id.uid.is_none(), "{}", row.json);
        if e.event == EventType::MessageExpunge {
            assert_eq!(id.uidvalidity, Some(inbox.uidvalidity));
        }
    }
}

#[tokio::test]
async fn a_disabled_account_cannot_log_in_but_keeps_its_mail_and_deliveries() {
    let t = open().await;
    let ctx = t.user("alice").await;
    t.user("root").await;
    t.store
        .append(
            &ctx,
            "INBOX",
            b"Subject: a\r\n\r\nx\r\n".to_vec(),
            &[],
            None,
        )
        .await
        .unwrap();
    t.store
        .authenticate("alice", "pw", None)
        .await
        .expect("a login before");
    let c = t
        .store
        .set_disabled(&admin(), "alice", true, Some("unpaid invoice"))
        .await
        .unwrap();
    t.check(&c.events).await;
    let [e] = &c.events[..] else { panic!() };
    assert_eq!(e.event, EventType::AccountDisable);
    assert_eq!(e.user.as_deref(), Some("alice"));
    assert_eq!(
        e.extension(herald_events::vnd::COMMENT),
        Some(&serde_json::Value::from("unpaid invoice"))
    );
    // The cached login is gone with it; a wrong password is still just a wrong password.
    assert!(matches!(
        t.store.authenticate("alice", "pw", None).await,
        Err(StoreError::AccountDisabled)
    ));
    assert!(matches!(
        t.store.authenticate("alice", "wrong", None).await,
        Err(StoreError::AuthFailed)
    ));
    assert!(t.store.is_disabled("alice").await.unwrap());
    assert!(!t.store.is_disabled("nobody").await.unwrap());
    // Disabling again changes nothing and says nothing.
    let again = t
        .store
        .set_disabled(&admin(), "alice", true, Some("other"))
        .await
        .unwrap();
    assert!(again.events.is_empty());
    let users = t.store.list_users().await.unwrap();
    let alice = users.iter().find(|u| u.name == "alice").unwrap();
    assert!(alice.disabled.is_some());
    assert_eq!(alice.disabled_reason.as_deref(), Some("unpaid invoice"));
    // Mail is kept and deliveries go on.
    let delivered = t
        .store
        .deliver(
            &SessionContext::service("lmtp"),
            &Recipient {
                user: "alice".into(),
                mailbox: None,
                envelope: "MAIL FROM:<a@b>\r\nRCPT TO:<alice@b>\r\n".into(),
            },
            b"Subject: b\r\n\r\ny\r\n".to_vec(),
            None,
        )
        .await;
    assert!(delivered.is_ok(), "{delivered:?}");
    assert_eq!(t.store.counts(&ctx, "INBOX").await.unwrap().messages, 2);
    // A note must be one short line.
    assert!(matches!(
        t.store
            .set_disabled(&admin(), "alice", true, Some("a\nb"))
            .await,
        Err(StoreError::InvalidArgument(_))
    ));
    assert!(matches!(
        t.store.set_disabled(&admin(), "nobody", true, None).await,
        Err(StoreError::NotFound { .. })
    ));
    let c = t
        .store
        .set_disabled(&admin(), "alice", false, None)
        .await
        .unwrap();
    t.check(&c.events).await;
    assert_eq!(types(&c.events), [EventType::AccountEnable]);
    t.store
        .authenticate("alice", "pw", None)
        .await
        .expect("a login after enabling");
    let users = t.store.list_users().await.unwrap();
    let alice = users.iter().find(|u| u.name == "alice").unwrap();
    assert_eq!(
        (alice.disabled, alice.disabled_reason.as_deref()),
        (None, None)
    );
}

#[tokio::test]
async fn access_keys_are_created_once_reset_and_go_with_their_mailbox() {
    let t = open().await;
    let alice = t.user("alice").await;
    let bob = t.user("bob").await;
    t.store.create_mailbox(&alice, "Work", None).await.unwrap();
    let before = t.last().await;
    assert_eq!(t.store.access_key_of("alice", "INBOX").await.unwrap(), None);
    let inbox = t.store.access_key(&alice, "INBOX").await.unwrap();
    assert_eq!(t.store.access_key(&alice, "inbox").await.unwrap(), inbox);
    assert_eq!(
        t.store.access_key_of("alice", "INBOX").await.unwrap(),
        Some(inbox)
    );
    let work = t.store.access_key(&alice, "Work").await.unwrap();
    assert_ne!(work, inbox, "one key per mailbox");
    let bobs = t.store.access_key(&bob, "INBOX").await.unwrap();
    assert_ne!(bobs, inbox, "one key per user");
    assert!(matches!(
        t.store.access_key(&alice, "Nope").await,
        Err(StoreError::NotFound { .. })
    ));

    // RESETKEY of one mailbox: that key only; the next use makes a new one.
    t.store
        .reset_access_keys(&alice, Some("INBOX"))
        .await
        .unwrap();
    assert_eq!(t.store.access_key_of("alice", "INBOX").await.unwrap(), None);
    assert_eq!(
        t.store.access_key_of("alice", "Work").await.unwrap(),
        Some(work)
    );
    let inbox2 = t.store.access_key(&alice, "INBOX").await.unwrap();
    assert_ne!(inbox2, inbox);
    assert!(matches!(
        t.store.reset_access_keys(&alice, Some("Nope")).await,
        Err(StoreError::NotFound { .. })
    ));
    // RESETKEY without a mailbox: all of the user's keys, nobody else's.
    t.store.reset_access_keys(&alice, None).await.unwrap();
    assert_eq!(t.store.access_key_of("alice", "INBOX").await.unwrap(), None);
    assert_eq!(t.store.access_key_of("alice", "Work").await.unwrap(), None);
    assert_eq!(
        t.store.access_key_of("bob", "INBOX").await.unwrap(),
        Some(bobs)
    );
    assert_eq!(t.last().await, before, "access keys emit no events");

    // Deleting a mailbox deletes its key; one re-created under the name starts afresh.
    let work = t.store.access_key(&alice, "Work").await.unwrap();
    t.store.delete_mailbox(&alice, "Work").await.unwrap();
    t.store.create_mailbox(&alice, "Work", None).await.unwrap();
    assert_eq!(t.store.access_key_of("alice", "Work").await.unwrap(), None);
    assert_ne!(t.store.access_key(&alice, "Work").await.unwrap(), work);
    // Deleting the account deletes every key of it.
    t.store.delete_user(&admin(), "bob").await.unwrap();
    let bob = t.user("bob").await;
    assert_eq!(t.store.access_key_of("bob", "INBOX").await.unwrap(), None);
    assert_ne!(t.store.access_key(&bob, "INBOX").await.unwrap(), bobs);
    let report = t.store.check_consistency().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[test]
fn a_version_10_store_gains_the_urlauth_keys_table() {
    let (_dir, conn) = migrated_after(
        "DROP INDEX urlauth_keys_account; DROP TABLE urlauth_keys; PRAGMA user_version = 10;",
    );
    conn.execute(
        "INSERT INTO urlauth_keys (mailbox_id, account_id, key, created_ms) VALUES (1, 1, x'00', 0)",
        [],
    )
    .unwrap();
    let rows: i64 = conn
        .query_row(
            "SELECT count(*) FROM urlauth_keys WHERE account_id = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 1);
}

/// RFC 4314 ACLs: rights per operation and the events of SETACL/DELETEACL.
mod acl;

/// Version 15 keeps STATUS's counters in the mailbox row: an older store's mailboxes are
/// counted once, and from then on the triggers keep the counts through inserts, flag changes
/// and deletes.
#[test]
fn a_version_14_store_counts_its_mailboxes_and_keeps_counting() {
    let (_dir, conn) = migrated_after(
        r"INSERT INTO mailboxes (id, account_id, name, uidvalidity) VALUES (7, 1, 'INBOX', 1);
          INSERT INTO messages (mailbox_id, uid, blob_id, size, internaldate, flags, modseq)
          VALUES (7, 1, 1, 100, 0, '', 1), (7, 2, 1, 200, 0, '\Seen', 1),
                 (7, 3, 1, 400, 0, '\Deleted \Seen', 1), (7, 4, 1, 800, 0, '$Junk \Deleted', 1);
          DROP TRIGGER messages_counted; DROP TRIGGER messages_uncounted;
          DROP TRIGGER messages_recounted;
          ALTER TABLE mailboxes DROP COLUMN unseen; ALTER TABLE mailboxes DROP COLUMN deleted;
          ALTER TABLE mailboxes DROP COLUMN bytes; PRAGMA user_version = 14;",
    );
    let counts = || -> (i64, i64, i64) {
        conn.query_row(
            "SELECT unseen, deleted, bytes FROM mailboxes WHERE id = 7",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    };
    assert_eq!(counts(), (2, 2, 1500));
    conn.execute_batch(
        r"INSERT INTO messages (mailbox_id, uid, blob_id, size, internaldate, flags, modseq)
          VALUES (7, 5, 1, 1000, 0, '\Flagged', 2);",
    )
    .unwrap();
    assert_eq!(counts(), (3, 2, 2500));
    conn.execute_batch(r"UPDATE messages SET flags = '\Seen' WHERE mailbox_id = 7 AND uid = 4;")
        .unwrap();
    // uid 4 was unseen and deleted: now seen and not deleted.
    assert_eq!(counts(), (2, 1, 2500));
    conn.execute_batch("DELETE FROM messages WHERE mailbox_id = 7 AND uid IN (1, 3)")
        .unwrap();
    assert_eq!(counts(), (1, 0, 2000));
}

/// Version 13 indexes messages by MODSEQ, and a session's change read uses that index rather
/// than walking the mailbox.
#[test]
fn a_version_12_store_gains_the_modseq_index_that_change_reads_use() {
    let (_dir, conn) = migrated_after("DROP INDEX messages_by_modseq; PRAGMA user_version = 12;");
    let plan: Vec<String> = conn
        .prepare(&format!(
            "EXPLAIN QUERY PLAN {}",
            crate::sql::reads::CHANGED_SQL
        ))
        .unwrap()
        .query_map([1, 5], |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert!(
        plan.iter().any(|p| p.contains("messages_by_modseq")),
        "{plan:?}"
    );
}
