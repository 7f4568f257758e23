//! The driver over real sockets on 127.0.0.1 and the real store (in-process): IDLE woken by a
//! delivery with no polling, keep-alives, the login timeout, autologout, an oversized literal
//! refused before it is sent, and the events' connection parameters.

#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

use herald_events::{Event, EventType, vnd};
use herald_imap::{ImapConfig, ImapServer};
use herald_net::{CancellationToken, ListenerConfig};
use herald_store::{Recipient, SessionContext, Store, StoreConfig};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

struct Fixture {
    store: Store,
    addr: SocketAddr,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

async fn start(config: ImapConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = StoreConfig::new(dir.path());
    sc.durable = false;
    let store = Store::open(sc).await.unwrap();
    store
        .add_user(&SessionContext::admin_cli(), "alice", "pw", false)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = ImapServer::new(store.clone(), config, None);
    let shutdown = CancellationToken::new();
    tokio::spawn(herald_net::serve(
        listener,
        ListenerConfig::new("imap", 100),
        shutdown.clone(),
        move |c| server.clone().handle(c),
    ));
    Fixture {
        store,
        addr,
        shutdown,
        _dir: dir,
    }
}

struct Client {
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
    local: SocketAddr,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).await.unwrap();
        let local = s.local_addr().unwrap();
        let (r, w) = s.into_split();
        let mut c = Client {
            r: BufReader::new(r),
            w,
            local,
        };
        assert!(c.line().await.starts_with("* OK [CAPABILITY"));
        c
    }
    async fn line(&mut self) -> String {
        let mut l = String::new();
        tokio::time::timeout(Duration::from_secs(10), self.r.read_line(&mut l))
            .await
            .expect("server answered in time")
            .unwrap();
        l
    }
    async fn send(&mut self, s: &str) {
        self.w.write_all(s.as_bytes()).await.unwrap();
    }
    /// Sends a command and returns every line up to its tagged completion.
    async fn cmd(&mut self, tag: &str, s: &str) -> Vec<String> {
        self.send(&format!("{tag} {s}\r\n")).await;
        let mut lines = Vec::new();
        loop {
            let l = self.line().await;
            assert!(!l.is_empty(), "connection closed after {lines:?}");
            let done = l.starts_with(&format!("{tag} "));
            lines.push(l);
            if done {
                return lines;
            }
        }
    }
}

async fn events(store: &Store) -> Vec<Event> {
    store
        .events_after(0, 1000)
        .await
        .unwrap()
        .iter()
        .map(|e| Event::from_json(&e.json).unwrap())
        .collect()
}

async fn wait_events(store: &Store, pred: impl Fn(&[Event]) -> bool) -> Vec<Event> {
    for _ in 0..200 {
        let e = events(store).await;
        if pred(&e) {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("events never matched: {:#?}", events(store).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_wakes_on_delivery_and_keeps_alive() {
    let mut config = ImapConfig::default();
    config.idle_keepalive = Duration::from_millis(400);
    let f = start(config).await;
    let mut c = Client::connect(f.addr).await;
    assert!(
        c.cmd("a", "LOGIN alice pw")
            .await
            .last()
            .unwrap()
            .starts_with("a OK")
    );
    c.cmd("b", "SELECT INBOX").await;
    c.send("c IDLE\r\n").await;
    assert_eq!(c.line().await, "+ idling\r\n");
    let rcpt = Recipient {
        user: "alice".into(),
        mailbox: None,
        envelope: "MAIL FROM:<x@y>\r\nRCPT TO:<alice@y>\r\n".into(),
    };
    f.store
        .deliver(
            &SessionContext::service("lmtp"),
            &rcpt,
            b"Subject: hi\r\n\r\nhello\r\n".to_vec(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(c.line().await, "* 1 EXISTS\r\n");
    assert_eq!(c.line().await, "* 1 RECENT\r\n");
    assert_eq!(c.line().await, "* OK Still here\r\n");
    c.send("DONE\r\n").await;
    assert!(c.line().await.starts_with("c OK"));
    let out = c.cmd("d", "LOGOUT").await;
    assert_eq!(out[0], "* BYE logging out\r\n");
    let events = wait_events(&f.store, |e| e.iter().any(|e| e.event == EventType::Logout)).await;
    let login = events.iter().find(|e| e.event == EventType::Login).unwrap();
    assert_eq!(login.service.as_deref(), Some("imap"));
    assert_eq!(login.client_ip, Some(c.local.ip()));
    assert_eq!(login.client_port, Some(c.local.port()));
    assert_eq!(login.server_port, Some(f.addr.port()));
    assert_eq!(login.server_domain.as_deref(), Some("127.0.0.1"));
    let logout = events
        .iter()
        .find(|e| e.event == EventType::Logout)
        .unwrap();
    assert_eq!(logout.extension(vnd::DISCONNECT).unwrap(), "graceful");
    f.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_shutdown() {
    let mut config = ImapConfig::default();
    config.unauthenticated_timeout = Duration::from_millis(300);
    config.autologout = Duration::from_millis(600);
    let f = start(config).await;
    // Not logged in in time: BYE and close, no event.
    let mut c = Client::connect(f.addr).await;
    assert_eq!(c.line().await, "* BYE no login in time\r\n");
    assert_eq!(c.line().await, "", "closed");
    // Logged in, then silent: autologout, Logout with disconnect `timeout`.
    let mut c = Client::connect(f.addr).await;
    c.cmd("a", "LOGIN alice pw").await;
    assert_eq!(c.line().await, "* BYE autologout: idle for too long\r\n");
    let events = wait_events(&f.store, |e| e.iter().any(|e| e.event == EventType::Logout)).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event == EventType::Login)
            .count(),
        1
    );
    let logout = events
        .iter()
        .find(|e| e.event == EventType::Logout)
        .unwrap();
    assert_eq!(logout.extension(vnd::DISCONNECT).unwrap(), "timeout");
    // Server shutdown: BYE, Logout with disconnect `shutdown`.
    let mut c = Client::connect(f.addr).await;
    c.cmd("a", "LOGIN alice pw").await;
    f.shutdown.cancel();
    assert_eq!(c.line().await, "* BYE server shutting down\r\n");
    wait_events(&f.store, |e| {
        e.iter().any(|e| {
            e.event == EventType::Logout
                && e.extension(vnd::DISCONNECT).and_then(|v| v.as_str()) == Some("shutdown")
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_literal_is_refused_before_it_is_sent() {
    let mut config = ImapConfig::default();
    config.max_literal = 1024;
    let f = start(config).await;
    let mut c = Client::connect(f.addr).await;
    c.cmd("a", "LOGIN alice pw").await;
    // A synchronizing literal: the client waits for `+`, which never comes.
    let out = c.cmd("b", "APPEND INBOX {1000000}").await;
    assert_eq!(
        out,
        ["b NO [TOOBIG] literal of 1000000 bytes exceeds the limit of 1024 bytes\r\n"]
    );
    c.send("c APPEND INBOX {5}\r\n").await;
    assert_eq!(c.line().await, "+ Ready for literal data\r\n");
    c.send("hello\r\n").await;
    assert!(c.line().await.starts_with("c OK [APPENDUID "));
    f.shutdown.cancel();
}

/// The last line of a LOGIN: its tagged answer.
async fn login(addr: SocketAddr, user: &str, password: &str) -> String {
    let mut c = Client::connect(addr).await;
    c.cmd("a", &format!("LOGIN {user} {password}"))
        .await
        .pop()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_in_to_ones_own_account_buys_no_guesses_at_another() {
    let f = start(ImapConfig::default()).await;
    f.store
        .add_user(&SessionContext::admin_cli(), "mallory", "mine", false)
        .await
        .unwrap();
    let mut refused = 0;
    for i in 0..20 {
        // The attacker's own account, between every guess, used to clear the client's record;
        // once the budget is spent it is refused too.
        let own = login(f.addr, "mallory", "mine").await;
        assert!(
            own.starts_with("a OK") || own.contains("[UNAVAILABLE]"),
            "{own}"
        );
        let answer = login(f.addr, "alice", &format!("guess{i}")).await;
        if answer.contains("[UNAVAILABLE]") {
            refused += 1;
        } else {
            assert!(answer.contains("[AUTHENTICATIONFAILED]"), "{answer}");
        }
    }
    assert_eq!(refused, 10, "ten guesses are checked, the rest refused");
    // Even the right password is refused now: the client has used up its budget.
    assert!(login(f.addr, "alice", "pw").await.contains("[UNAVAILABLE]"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_guesses_cannot_outrun_the_limit() {
    let f = start(ImapConfig::default()).await;
    let guesses: Vec<_> = (0..60)
        .map(|i| {
            let addr = f.addr;
            tokio::spawn(async move { login(addr, "alice", &format!("g{i}")).await })
        })
        .collect();
    let mut checked = 0;
    for g in guesses {
        let answer = g.await.unwrap();
        if answer.contains("[AUTHENTICATIONFAILED]") {
            checked += 1;
        } else {
            assert!(answer.contains("[UNAVAILABLE]"), "{answer}");
        }
    }
    assert!(checked <= 10, "{checked} passwords were checked");
}
