//! LMTP over a real socket against a real store: replies per recipient, the events committed
//! with them, content stored once, quota refusals with their QuotaExceed event.
#![allow(clippy::unwrap_used)]

use herald_events::{Event, EventType};
use herald_lmtp::{Config, DetailDelivery, LmtpServer, Options, Timeouts};
use herald_net::{CancellationToken, ListenerConfig};
use herald_store::{SessionContext, SpecialUse, Store, StoreConfig};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

async fn start(dir: &std::path::Path) -> (Store, SocketAddr, CancellationToken) {
    start_with(dir, Options::default()).await
}

async fn start_with(
    dir: &std::path::Path,
    options: Options,
) -> (Store, SocketAddr, CancellationToken) {
    let store = Store::open(StoreConfig::new(dir).with_fqdn("mail.example.org"))
        .await
        .unwrap();
    let admin = SessionContext::admin_cli();
    for user in ["alice", "bob", "carol"] {
        store.add_user(&admin, user, "pw", false).await.unwrap();
    }
    let bob = SessionContext::user("imap", "bob");
    // bob marks Lists (and, as clients do, Sent) by subscribing; Private he does not.
    store.create_mailbox(&bob, "Lists", None).await.unwrap();
    store
        .create_mailbox(&bob, "Sent", Some(SpecialUse::Sent))
        .await
        .unwrap();
    store.create_mailbox(&bob, "Private", None).await.unwrap();
    for name in ["Lists", "Sent"] {
        store.subscribe(&bob, name, true).await.unwrap();
    }
    store
        .set_quota(&admin, "carol", Some(1), None)
        .await
        .unwrap();
    let server = LmtpServer::with_options(
        store.clone(),
        Config {
            hostname: "mail.example.org".into(),
            max_message_size: 10 << 20,
            starttls_available: false,
        },
        None,
        options,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let token = CancellationToken::new();
    let config = ListenerConfig::new("lmtp", 16);
    tokio::spawn(herald_net::serve(
        listener,
        config,
        token.clone(),
        move |c| server.clone().handle(c),
    ));
    (store, addr, token)
}

struct Client {
    r: BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: tokio::net::tcp::OwnedWriteHalf,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let (r, w) = TcpStream::connect(addr).await.unwrap().into_split();
        let mut c = Client {
            r: BufReader::new(r),
            w,
        };
        assert!(c.line().await.starts_with("220 "));
        c
    }
    async fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).await.unwrap();
        l
    }
    /// Sends and reads one reply (multi-line replies to their last line).
    async fn cmd(&mut self, text: &str) -> String {
        self.w.write_all(text.as_bytes()).await.unwrap();
        let mut all = String::new();
        loop {
            let l = self.line().await;
            all.push_str(&l);
            if l.len() < 4 || l.as_bytes()[3] != b'-' {
                return all;
            }
        }
    }
}

async fn events(store: &Store) -> Vec<Event> {
    store
        .events_after(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| Event::from_json(&e.json).unwrap())
        .collect()
}

#[tokio::test]
async fn one_message_three_recipients_one_unknown_one_over_quota() {
    let dir = tempfile::tempdir().unwrap();
    let (store, addr, token) = start(dir.path()).await;
    let before = events(&store).await.len();
    let mut c = Client::connect(addr).await;
    assert!(
        c.cmd("LHLO mx.example.net\r\n")
            .await
            .contains("250-PIPELINING")
    );
    assert_eq!(
        c.cmd("MAIL FROM:<sender@example.net> SIZE=2000\r\n").await,
        "250 2.1.0 sender ok\r\n"
    );
    assert_eq!(
        c.cmd("RCPT TO:<alice@example.org>\r\n").await,
        "250 2.1.5 recipient ok\r\n"
    );
    assert_eq!(
        c.cmd("RCPT TO:<Bob+Lists@example.org>\r\n").await,
        "250 2.1.5 recipient ok\r\n"
    );
    assert_eq!(
        c.cmd("RCPT TO:<nobody@example.org>\r\n").await,
        "550 5.1.1 no such user\r\n"
    );
    assert_eq!(
        c.cmd("RCPT TO:<carol@example.org>\r\n").await,
        "250 2.1.5 recipient ok\r\n"
    );
    assert!(c.cmd("DATA\r\n").await.starts_with("354 "));
    let line = format!("{}\r\n", "x".repeat(74));
    let body = format!(
        "Subject: hello\r\n\r\n{}..leading dot\r\n.\r\n",
        line.repeat(20)
    );
    c.w.write_all(body.as_bytes()).await.unwrap();
    assert_eq!(c.line().await, "250 2.0.0 delivered\r\n");
    assert_eq!(c.line().await, "250 2.0.0 delivered\r\n");
    // carol's quota is 1 KB and the message is 1.6 KB: it could never fit.
    assert_eq!(
        c.line().await,
        "552 5.2.2 message larger than the mailbox quota\r\n"
    );
    assert_eq!(c.cmd("QUIT\r\n").await, "221 2.0.0 bye\r\n");

    let new: Vec<Event> = events(&store).await.split_off(before);
    let kinds: Vec<&EventType> = new.iter().map(|e| &e.event).collect();
    assert_eq!(
        kinds,
        [
            &EventType::MessageNew,
            &EventType::MessageNew,
            &EventType::QuotaExceed
        ]
    );
    for e in &new {
        e.validate().unwrap();
        assert_eq!(e.service.as_deref(), Some("lmtp"));
        assert_eq!(e.client_ip, Some("127.0.0.1".parse().unwrap()));
    }
    let to_bob = new
        .iter()
        .find(|e| e.user.as_deref() == Some("bob"))
        .unwrap();
    assert_eq!(
        to_bob.uri.as_ref().unwrap().mailbox.as_deref(),
        Some("Lists")
    );
    assert_eq!(
        to_bob.envelope.as_deref(),
        Some("MAIL FROM:<sender@example.net> SIZE=2000\r\nRCPT TO:<Bob+Lists@example.org>\r\n")
    );
    // The stored message has Herald's trace headers and dot-stuffing undone.
    let alice = SessionContext::user("imap", "alice");
    let stored = store.read_message(&alice, "INBOX", 1).await.unwrap();
    let text = String::from_utf8(stored.clone()).unwrap();
    assert!(text.starts_with(
        "Return-Path: <sender@example.net>\r\nReceived: from mx.example.net ([127.0.0.1])"
    ));
    assert!(text.ends_with("\r\n.leading dot\r\n"));
    assert_eq!(to_bob.message_size, Some(stored.len() as u64));
    let bob = SessionContext::user("imap", "bob");
    assert_eq!(store.read_message(&bob, "Lists", 1).await.unwrap(), stored);
    token.cancel();
}

#[tokio::test]
async fn an_abandoned_data_phase_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, addr, token) = start(dir.path()).await;
    let before = events(&store).await.len();
    {
        let mut c = Client::connect(addr).await;
        c.cmd("LHLO x\r\n").await;
        c.cmd("MAIL FROM:<a@b>\r\n").await;
        c.cmd("RCPT TO:<alice@example.org>\r\n").await;
        c.cmd("DATA\r\n").await;
        c.w.write_all(b"Subject: half a message\r\n\r\nand then")
            .await
            .unwrap();
    }
    // A second session proves the server is still there and the first left nothing behind.
    let mut c = Client::connect(addr).await;
    assert_eq!(c.cmd("NOOP\r\n").await, "250 2.0.0 ok\r\n");
    assert_eq!(events(&store).await.len(), before);
    let alice = SessionContext::user("imap", "alice");
    assert!(store.fetch(&alice, "INBOX", None).await.unwrap().is_empty());
    token.cancel();
}

/// One message to alice; the last reply (RCPT's when it refuses, else the one after DATA).
async fn send(c: &mut Client) -> String {
    c.cmd("MAIL FROM:<a@b>\r\n").await;
    let rcpt = c.cmd("RCPT TO:<alice@example.org>\r\n").await;
    if !rcpt.starts_with("250") {
        return rcpt;
    }
    c.cmd("DATA\r\n").await;
    c.cmd("Subject: hi\r\n\r\nhello\r\n.\r\n").await
}

#[tokio::test]
async fn an_account_deleted_after_a_delivery_is_refused_and_gets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, addr, token) = start(dir.path()).await;
    let mut c = Client::connect(addr).await;
    c.cmd("LHLO x\r\n").await;
    assert_eq!(send(&mut c).await, "250 2.0.0 delivered\r\n");
    let admin = SessionContext::admin_cli();
    store.delete_user(&admin, "alice").await.unwrap();
    let before = events(&store).await.len();
    // The server may still take alice for an account at RCPT (it remembers recent ones), but
    // nothing is delivered: the reply is the same permanent refusal either way.
    let reply = send(&mut c).await;
    assert!(reply.starts_with("550 5.1.1"), "{reply}");
    assert_eq!(events(&store).await.len(), before);
    assert!(store.quota("alice").await.is_err());
    token.cancel();
}

/// Sends `bytes` one at a time, `gap` apart, until the server closes the connection; returns
/// how long that took, or `None` if all were sent.
async fn trickle(c: &mut Client, bytes: &[u8], gap: Duration) -> Option<Duration> {
    let started = std::time::Instant::now();
    for b in bytes {
        if c.w.write_all(&[*b]).await.is_err() {
            return Some(started.elapsed());
        }
        tokio::time::sleep(gap).await;
        let mut probe = String::new();
        if let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(1), c.r.read_line(&mut probe)).await
            && (probe.is_empty() || probe.starts_with("421"))
        {
            return Some(started.elapsed());
        }
    }
    None
}

#[tokio::test]
async fn a_client_trickling_bytes_is_cut_off_by_command_and_message_deadlines() {
    let dir = tempfile::tempdir().unwrap();
    let timeouts = Timeouts {
        idle: Duration::from_millis(400),
        data: Duration::from_millis(1200),
    };
    let options = Options {
        timeouts,
        ..Options::default()
    };
    let (_store, addr, token) = start_with(dir.path(), options).await;
    // A command line that never ends, a byte every 100 ms.
    let mut c = Client::connect(addr).await;
    let cut = trickle(&mut c, &[b'x'; 60], Duration::from_millis(100)).await;
    assert!(cut.is_some_and(|t| t < Duration::from_secs(3)), "{cut:?}");
    // A message sent a line every 200 ms: each line resets nothing, the whole has 1.2 s.
    let mut c = Client::connect(addr).await;
    c.cmd("LHLO x\r\n").await;
    c.cmd("MAIL FROM:<a@example.net>\r\n").await;
    c.cmd("RCPT TO:<alice@example.org>\r\n").await;
    assert!(c.cmd("DATA\r\n").await.starts_with("354"));
    let started = std::time::Instant::now();
    let mut closed = false;
    for _ in 0..30 {
        if c.w.write_all(b"a line\r\n").await.is_err() {
            closed = true;
            break;
        }
        let mut probe = String::new();
        if let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(200), c.r.read_line(&mut probe)).await
        {
            assert!(probe.is_empty() || probe.starts_with("421"), "{probe}");
            closed = true;
            break;
        }
    }
    assert!(closed, "the message took 6 s and the server kept waiting");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    token.cancel();
}

/// Delivers one message to `rcpt`; returns the mailbox its MessageNew names.
async fn delivered_to(store: &Store, addr: SocketAddr, rcpt: &str) -> String {
    let before = events(store).await.len();
    let mut c = Client::connect(addr).await;
    c.cmd("LHLO x\r\n").await;
    c.cmd("MAIL FROM:<someone@example.net>\r\n").await;
    assert!(
        c.cmd(&format!("RCPT TO:<{rcpt}>\r\n"))
            .await
            .starts_with("250")
    );
    c.cmd("DATA\r\n").await;
    assert!(
        c.cmd("Subject: x\r\n\r\nx\r\n.\r\n")
            .await
            .starts_with("250")
    );
    let new = events(store).await.split_off(before);
    new[0].uri.as_ref().unwrap().mailbox.clone().unwrap()
}

#[tokio::test]
async fn a_detail_reaches_only_folders_the_user_marked_and_never_sent() {
    let dir = tempfile::tempdir().unwrap();
    let (store, addr, token) = start(dir.path()).await;
    assert_eq!(
        delivered_to(&store, addr, "bob+Lists@example.org").await,
        "Lists"
    );
    assert_eq!(
        delivered_to(&store, addr, "bob+Sent@example.org").await,
        "INBOX"
    );
    assert_eq!(
        delivered_to(&store, addr, "bob+Private@example.org").await,
        "INBOX"
    );
    token.cancel();
    let dir = tempfile::tempdir().unwrap();
    let never = Options {
        detail: DetailDelivery::Never,
        ..Options::default()
    };
    let (store, addr, token) = start_with(dir.path(), never).await;
    assert_eq!(
        delivered_to(&store, addr, "bob+Lists@example.org").await,
        "INBOX"
    );
    token.cancel();
    let dir = tempfile::tempdir().unwrap();
    let any = Options {
        detail: DetailDelivery::Any,
        ..Options::default()
    };
    let (store, addr, token) = start_with(dir.path(), any).await;
    assert_eq!(
        delivered_to(&store, addr, "bob+Private@example.org").await,
        "Private"
    );
    token.cancel();
}
