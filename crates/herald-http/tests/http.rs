//! The HTTP side against a real store over loopback: SSE and WebSocket streams (order,
//! resumption, visibility, keep-alives, shutdown), authentication (Basic, bearer, 401, 429) and
//! the subscription admin API on a running dispatcher.
#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt as _;
use herald_http::{HttpConfig, HttpState};
use herald_net::AuthLimiter;
use herald_notify::dispatch::Dispatcher;
use herald_store::{SessionContext, Store, StoreConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest as _};
use tokio_util::sync::CancellationToken;

const ALICE_TOKEN: &str = "alice-token-0123456789";
const ROOT_TOKEN: &str = "root-token-0123456789";

struct Server {
    _dir: tempfile::TempDir,
    store: Store,
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    dir: std::path::PathBuf,
}

impl Server {
    async fn start() -> Server {
        Server::start_with(AuthLimiter::default(), Duration::from_secs(15)).await
    }

    async fn start_with(limiter: AuthLimiter, keepalive: Duration) -> Server {
        Server::start_full(limiter, keepalive, |dir| {
            format!(
                "file_sink_dir = {:?}\n",
                dir.join("sinks").display().to_string()
            )
        })
        .await
    }

    /// A server whose `[http]` section has the keys `extra` gives for the test's directory
    /// (`DIR/sinks` exists, empty).
    async fn start_full(
        limiter: AuthLimiter,
        keepalive: Duration,
        extra: impl Fn(&std::path::Path) -> String,
    ) -> Server {
        herald_notify::sink::webhook::ensure_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sinks")).unwrap();
        let mut config = StoreConfig::new(dir.path().join("data"));
        config.server_fqdn = "mail.example.org".into();
        config.durable = false;
        // The accounts are created while their events are off, so the tests' events are
        // numbered from 1.
        config.event_groups = vec![herald_events::EventGroup::Message];
        let store = Store::open(config.clone()).await.unwrap();
        let admin = SessionContext::admin_cli();
        store
            .add_user(&admin, "alice", "alice-pw", false)
            .await
            .unwrap();
        store
            .add_user(&admin, "bob", "bob-pw", false)
            .await
            .unwrap();
        store
            .add_user(&admin, "root", "root-pw", true)
            .await
            .unwrap();
        store.close().await;
        config.event_groups = Vec::new();
        let store = Store::open(config).await.unwrap();
        let shutdown = CancellationToken::new();
        let dispatcher = Dispatcher::start(store.clone(), vec![], shutdown.clone())
            .await
            .unwrap();
        let http: HttpConfig = toml::from_str(&format!(
            r#"
{}
tokens = [{{ user = "alice", token = "{ALICE_TOKEN}" }},
          {{ user = "root", sha256 = "{}" }}]
"#,
            extra(dir.path()),
            herald_http::auth::token_digest(ROOT_TOKEN)
        ))
        .unwrap();
        let state = HttpState::new(store.clone(), Some(dispatcher), &http, Arc::new(limiter))
            .unwrap()
            .with_keepalive(keepalive);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(herald_http::serve(listener, state, shutdown.clone()));
        Server {
            dir: dir.path().to_path_buf(),
            _dir: dir,
            store,
            addr,
            shutdown,
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Creates a mailbox as `user`: one MailboxCreate event about that user. Returns its id.
    async fn event_for(&self, user: &str, mailbox: &str) -> u64 {
        let c = self
            .store
            .create_mailbox(&SessionContext::user("imap", user), mailbox, None)
            .await
            .unwrap();
        c.events[0].herald_id().unwrap()
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// One SSE message.
#[derive(Debug, Default, Clone, PartialEq)]
struct Message {
    id: Option<String>,
    event: Option<String>,
    data: String,
    comment: bool,
}

/// Reads an SSE response incrementally.
struct SseReader {
    response: reqwest::Response,
    buf: String,
}

impl SseReader {
    async fn open(req: reqwest::RequestBuilder) -> SseReader {
        let response = req.send().await.unwrap();
        assert_eq!(response.status(), 200, "{:?}", response.headers());
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        SseReader {
            response,
            buf: String::new(),
        }
    }

    /// The next message (comments included), or None at the end of the stream.
    async fn next(&mut self) -> Option<Message> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut m = Message::default();
                let mut data = Vec::new();
                for line in block.lines() {
                    if line.starts_with(':') {
                        m.comment = true;
                    } else if let Some((k, v)) = line.split_once(':') {
                        let v = v.strip_prefix(' ').unwrap_or(v);
                        match k {
                            "id" => m.id = Some(v.into()),
                            "event" => m.event = Some(v.into()),
                            "data" => data.push(v.to_owned()),
                            _ => {}
                        }
                    }
                }
                m.data = data.join("\n");
                return Some(m);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .expect("no SSE data within 10 s")
                .unwrap()?;
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next `n` events (skipping comments).
    async fn events(&mut self, n: usize) -> Vec<Message> {
        let mut out = Vec::new();
        while out.len() < n {
            let m = self.next().await.expect("stream ended early");
            if !m.comment {
                out.push(m);
            }
        }
        out
    }
}

fn herald_id(m: &Message) -> u64 {
    let v: serde_json::Value = serde_json::from_str(&m.data).unwrap();
    v["vnd.herald.id"].as_u64().unwrap()
}

#[tokio::test]
async fn sse_users_see_their_own_events_and_admins_all() {
    let s = Server::start().await;
    // Opening a stream is an HTTP login, which records a Login event: the streams here ask for
    // the mailbox creations alone.
    let a1 = s.event_for("alice", "A1").await;
    let b1 = s.event_for("bob", "B1").await;
    let a2 = s.event_for("alice", "A2").await;
    let c = client();
    let mut alice = SseReader::open(
        c.get(s.url("/events/stream?from=0&events=MailboxCreate"))
            .basic_auth("alice", Some("alice-pw")),
    )
    .await;
    let got = alice.events(2).await;
    let ids: Vec<u64> = got.iter().map(herald_id).collect();
    assert_eq!(ids, [a1, a2]);
    for m in &got {
        assert_eq!(m.id.as_deref(), Some(herald_id(m).to_string().as_str()));
        assert_eq!(m.event.as_deref(), Some("MailboxCreate"));
        assert!(
            m.data.contains("imap://alice@mail.example.org/"),
            "{}",
            m.data
        );
    }

    let mut root = SseReader::open(
        c.get(s.url("/events/stream?from=0&events=MailboxCreate"))
            .bearer_auth(ROOT_TOKEN),
    )
    .await;
    let ids: Vec<u64> = root.events(3).await.iter().map(herald_id).collect();
    assert_eq!(ids, [a1, b1, a2]);

    // Live: a new event reaches both, bob's only the admin.
    let b2 = s.event_for("bob", "B2").await;
    let a3 = s.event_for("alice", "A3").await;
    assert_eq!(herald_id(&alice.events(1).await[0]), a3);
    let ids: Vec<u64> = root.events(2).await.iter().map(herald_id).collect();
    assert_eq!(ids, [b2, a3]);

    // An admin may narrow to one user; a user may not look at another's.
    let mut only_bob = SseReader::open(
        c.get(s.url("/events/stream?from=0&user=bob&events=MailboxCreate"))
            .basic_auth("root", Some("root-pw")),
    )
    .await;
    let ids: Vec<u64> = only_bob.events(2).await.iter().map(herald_id).collect();
    assert_eq!(ids, [b1, b2]);
    let r = c
        .get(s.url("/events/stream?user=bob"))
        .bearer_auth(ALICE_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn sse_resumes_after_last_event_id_and_starts_live_without_it() {
    let s = Server::start().await;
    let first = s.event_for("alice", "One").await;
    let second = s.event_for("alice", "Two").await;
    let third = s.event_for("alice", "Three").await;
    let c = client();
    let mut resumed = SseReader::open(
        c.get(s.url("/events/stream"))
            .bearer_auth(ALICE_TOKEN)
            .header("Last-Event-ID", first.to_string()),
    )
    .await;
    let ids: Vec<u64> = resumed.events(2).await.iter().map(herald_id).collect();
    assert_eq!(ids, [second, third]);

    // Last-Event-ID wins over ?from= (it is what a reconnecting client last saw).
    let mut both = SseReader::open(
        c.get(s.url("/events/stream?from=0&events=MailboxCreate"))
            .bearer_auth(ALICE_TOKEN)
            .header("Last-Event-ID", second.to_string()),
    )
    .await;
    assert_eq!(herald_id(&both.events(1).await[0]), third);

    // Without a position the stream starts at the end: only new events arrive.
    let mut live = SseReader::open(c.get(s.url("/events/stream")).bearer_auth(ALICE_TOKEN)).await;
    let opening = live.next().await.unwrap();
    assert!(opening.comment);
    let fourth = s.event_for("alice", "Four").await;
    assert_eq!(herald_id(&live.events(1).await[0]), fourth);

    // Filters with subscription semantics.
    s.event_for("alice", "Work").await;
    let mut filtered = SseReader::open(
        c.get(s.url("/events/stream?from=0&mailboxes=Work,Four&events=mailbox"))
            .bearer_auth(ALICE_TOKEN),
    )
    .await;
    let got = filtered.events(2).await;
    assert!(got[0].data.contains("/Four"), "{}", got[0].data);
    assert!(got[1].data.contains("/Work"), "{}", got[1].data);

    let bad = c
        .get(s.url("/events/stream"))
        .bearer_auth(ALICE_TOKEN)
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let bad = c
        .get(s.url("/events/stream?events=NoSuchEvent"))
        .bearer_auth(ALICE_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn a_long_backlog_arrives_complete_and_in_order() {
    // More events than one outbox read (stream::BATCH), read through a slow client.
    let s = Server::start().await;
    let ctx = SessionContext::user("imap", "alice");
    let mut want = Vec::new();
    for i in 0..(herald_http::stream::BATCH + 44) {
        let c = s
            .store
            .create_mailbox(&ctx, &format!("M{i}"), None)
            .await
            .unwrap();
        want.push(c.events[0].herald_id().unwrap());
    }
    let c = client();
    let mut reader = SseReader::open(
        c.get(s.url("/events/stream?from=0&events=MailboxCreate"))
            .bearer_auth(ALICE_TOKEN),
    )
    .await;
    let mut got = Vec::new();
    while got.len() < want.len() {
        let m = reader.next().await.unwrap();
        if !m.comment {
            got.push(herald_id(&m));
        }
        if got.len() == 10 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    assert_eq!(got, want);
}

#[tokio::test]
async fn credentials_are_required_and_failures_are_limited() {
    let s = Server::start_with(
        AuthLimiter::new(3, Duration::from_secs(60), 100),
        Duration::from_secs(15),
    )
    .await;
    let c = client();
    let r = c.get(s.url("/events/stream")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let challenges: Vec<&str> = r
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        challenges.iter().any(|c| c.starts_with("Basic ")),
        "{challenges:?}"
    );
    assert!(
        challenges.iter().any(|c| c.starts_with("Bearer ")),
        "{challenges:?}"
    );
    let r = c.get(s.url("/events/ws")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c.get(s.url("/subscriptions")).send().await.unwrap();
    assert_eq!(r.status(), 401);

    // Three failures from this address, then 429 even with the right password.
    for attempt in [
        c.get(s.url("/events/stream"))
            .basic_auth("alice", Some("wrong")),
        c.get(s.url("/events/stream"))
            .bearer_auth("not-a-configured-token"),
        c.get(s.url("/events/stream"))
            .basic_auth("nobody", Some("x")),
    ] {
        assert_eq!(attempt.send().await.unwrap().status(), 401);
    }
    let r = c
        .get(s.url("/events/stream"))
        .basic_auth("alice", Some("alice-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));

    // Each refused Basic login is one vnd.herald.LoginFailed; the bearer token names nobody.
    let failed: Vec<(String, String)> = s
        .store
        .events_after(0, 100)
        .await
        .unwrap()
        .iter()
        .map(|row| herald_events::Event::from_json(&row.json).unwrap())
        .filter(|e| e.event == herald_events::EventType::LoginFailed)
        .map(|e| {
            assert_eq!(e.service.as_deref(), Some("http"));
            assert_eq!(e.extension(herald_events::vnd::MECHANISM).unwrap(), "Basic");
            assert!(e.client_ip.is_some());
            let json = e.to_json();
            assert!(
                !json.contains("wrong") && !json.contains("alice-pw"),
                "{json}"
            );
            let reason = e.extension(herald_events::vnd::REASON).unwrap();
            let reason = reason.as_str().unwrap().to_owned();
            (e.user.clone().unwrap(), reason)
        })
        .collect();
    assert_eq!(
        failed,
        [
            ("alice".to_owned(), "bad-credentials".to_owned()),
            ("nobody".to_owned(), "no-such-user".to_owned()),
            ("alice".to_owned(), "rate-limited".to_owned()),
        ]
    );
}

#[tokio::test]
async fn keep_alives_flow_on_idle_streams_and_shutdown_ends_them() {
    let s = Server::start_with(AuthLimiter::default(), Duration::from_millis(300)).await;
    let c = client();
    let mut sse = SseReader::open(c.get(s.url("/events/stream")).bearer_auth(ALICE_TOKEN)).await;
    let opening = sse.next().await.unwrap();
    assert!(opening.comment);
    let keepalive = sse.next().await.unwrap();
    assert!(keepalive.comment && keepalive.id.is_none(), "{keepalive:?}");

    let mut req = format!("ws://{}/events/ws", s.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {ALICE_TOKEN}").parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(m, tungstenite::Message::Ping(_)), "{m:?}");

    // Shutdown closes both streams and lets serve return.
    s.shutdown.cancel();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sse.next().await.is_some() {
        assert!(Instant::now() < deadline);
    }
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
        {
            Some(Ok(tungstenite::Message::Close(frame))) => {
                assert_eq!(u16::from(frame.unwrap().code), 1001);
                break;
            }
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
    tokio::time::timeout(Duration::from_secs(10), s.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

fn ws_request(s: &Server, path: &str, auth: &str) -> tungstenite::handshake::client::Request {
    let mut req = format!("ws://{}{path}", s.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", auth.parse().unwrap());
    req
}

async fn ws_events(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    n: usize,
) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("no WebSocket message within 10 s")
            .unwrap()
            .unwrap();
        if let tungstenite::Message::Text(t) = m {
            out.push(serde_json::from_str(t.as_str()).unwrap());
        }
    }
    out
}

#[tokio::test]
async fn websocket_streams_resumes_with_from_and_filters_by_user() {
    let s = Server::start().await;
    // Opening a stream is an HTTP login, which records a Login event: the streams here ask for
    // the mailbox creations alone.
    let a1 = s.event_for("alice", "A1").await;
    let b1 = s.event_for("bob", "B1").await;
    let a2 = s.event_for("alice", "A2").await;
    let basic = format!("Basic {}", STANDARD.encode("alice:alice-pw"));
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_request(
        &s,
        "/events/ws?from=0&events=MailboxCreate",
        &basic,
    ))
    .await
    .unwrap();
    let got = ws_events(&mut ws, 2).await;
    assert_eq!(got[0]["vnd.herald.id"], a1);
    assert_eq!(got[1]["vnd.herald.id"], a2);
    assert_eq!(got[0]["event"], "MailboxCreate");
    let a3 = s.event_for("alice", "A3").await;
    assert_eq!(ws_events(&mut ws, 1).await[0]["vnd.herald.id"], a3);
    ws.close(None).await.unwrap();

    // Resume after a1 with ?from=; an admin sees bob's too.
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_request(
        &s,
        &format!("/events/ws?from={a1}&events=MailboxCreate"),
        &format!("Bearer {ROOT_TOKEN}"),
    ))
    .await
    .unwrap();
    let ids: Vec<u64> = ws_events(&mut ws, 3)
        .await
        .iter()
        .map(|v| v["vnd.herald.id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [b1, a2, a3]);

    // Refusals are HTTP statuses before the upgrade.
    let err = tokio_tungstenite::connect_async(ws_request(&s, "/events/ws", "Bearer nope"))
        .await
        .unwrap_err();
    match err {
        tungstenite::Error::Http(r) => assert_eq!(r.status(), 401),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_admin_api_drives_the_dispatcher() {
    let s = Server::start().await;
    let c = client();
    let out = s.dir.join("sinks/api.jsonl");
    let config = serde_json::json!({
        "name": "api-sub",
        "events": ["MailboxCreate"],
        "users": ["alice"],
        "sink": { "type": "file", "path": out },
    });
    let admin = |r: reqwest::RequestBuilder| r.basic_auth("root", Some("root-pw"));

    // Users may not; admins may.
    let r = c
        .post(s.url("/subscriptions"))
        .bearer_auth(ALICE_TOKEN)
        .json(&config)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = admin(c.post(s.url("/subscriptions")).json(&config))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let status: serde_json::Value = r.json().await.unwrap();
    assert_eq!(status["name"], "api-sub");
    assert_eq!(status["state"], "active");
    assert_eq!(status["origin"], "api");
    let r = admin(c.post(s.url("/subscriptions")).json(&config))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let r = admin(
        c.post(s.url("/subscriptions"))
            .json(&serde_json::json!({"name": "x"})),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let mut bad = config.clone();
    bad["name"] = "bad".into();
    bad["events"] = serde_json::json!(["NoSuchEvent"]);
    let r = admin(c.post(s.url("/subscriptions")).json(&bad))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("NoSuchEvent"),
        "{body}"
    );

    // It delivers from now on.
    let a1 = s.event_for("alice", "A1").await;
    s.event_for("bob", "B1").await;
    let lines = wait_lines(&out, 1).await;
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains(&format!("\"vnd.herald.id\":{a1}")));

    let list: serde_json::Value = admin(c.get(s.url("/subscriptions")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);

    // Pause, resume, replay.
    let paused: serde_json::Value = admin(c.post(s.url("/subscriptions/api-sub/pause")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(paused["state"], "paused");
    let resumed: serde_json::Value = admin(c.post(s.url("/subscriptions/api-sub/resume")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resumed["state"], "active");
    let r = admin(c.post(s.url("/subscriptions/api-sub/replay")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "replay needs ?from=");
    let r = admin(c.post(s.url(&format!("/subscriptions/api-sub/replay?from={a1}"))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let lines = wait_lines(&out, 2).await;
    assert_eq!(lines[0], lines[1], "replayed from {a1}");

    let parked: serde_json::Value = admin(c.get(s.url("/subscriptions/api-sub/parked")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(parked, serde_json::json!([]));
    let replayed: serde_json::Value = admin(c.post(s.url("/subscriptions/api-sub/parked/replay")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(replayed["delivered"], 0);

    // Delete; then it is gone.
    let r = admin(c.delete(s.url("/subscriptions/api-sub")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    for path in ["/subscriptions/api-sub", "/subscriptions/api-sub/parked"] {
        let r = admin(c.get(s.url(path))).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    let r = admin(c.post(s.url("/subscriptions/api-sub/pause")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = admin(c.get(s.url("/no/such/route"))).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

async fn wait_lines(path: &std::path::Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(Instant::now() < deadline, "{} lines, want {n}", lines.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates a subscription as the admin; returns the status and the JSON answer.
async fn create_sub(s: &Server, config: serde_json::Value) -> (u16, serde_json::Value) {
    let r = client()
        .post(s.url("/subscriptions"))
        .basic_auth("root", Some("root-pw"))
        .json(&config)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

fn file_sub(name: &str, path: impl serde::Serialize) -> serde_json::Value {
    serde_json::json!({ "name": name, "sink": { "type": "file", "path": path, "rotate_bytes": 1 } })
}

#[tokio::test]
async fn api_file_sinks_write_only_new_files_inside_file_sink_dir() {
    let s = Server::start().await;
    let sinks = s.dir.join("sinks");
    // The store's own database, and a file already inside the directory: neither is opened.
    let db = std::fs::read_dir(s.dir.join("data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "db"))
        .expect("the store has a database file");
    let db_before = std::fs::read(&db).unwrap();
    let existing = sinks.join("existing.jsonl");
    std::fs::write(&existing, "keep me\n").unwrap();
    let outside = s.dir.join("outside.jsonl");
    std::os::unix::fs::symlink(s.dir.join("data"), sinks.join("link")).unwrap();
    std::os::unix::fs::symlink(&outside, sinks.join("dangling.jsonl")).unwrap();
    for (path, want) in [
        (db.display().to_string(), 403),
        ("existing.jsonl".into(), 409),
        (existing.display().to_string(), 409),
        ("../outside.jsonl".into(), 403),
        ("sub/../../outside.jsonl".into(), 403),
        (outside.display().to_string(), 403),
        ("link/x.jsonl".into(), 403),
        ("dangling.jsonl".into(), 409),
        ("rotated.jsonl.1".into(), 403),
        ("".into(), 400),
        ("nodir/x.jsonl".into(), 400),
    ] {
        let (status, body) = create_sub(&s, file_sub("evil", &path)).await;
        assert_eq!(status, want, "{path}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
    }
    assert_eq!(
        std::fs::read(&db).unwrap(),
        db_before,
        "the database is untouched"
    );
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "keep me\n");
    assert!(!outside.exists());
    assert!(std::fs::symlink_metadata(sinks.join("link/x.jsonl")).is_err());
    assert!(!s.dir.join("data/x.jsonl").exists());

    // A new file inside the directory works, relative or absolute; the stored path is resolved.
    let (status, body) = create_sub(&s, file_sub("rel", "rel.jsonl")).await;
    assert_eq!(status, 201, "{body}");
    let resolved = std::fs::canonicalize(sinks.join("rel.jsonl")).unwrap();
    assert_eq!(
        body["config"]["sink"]["path"],
        resolved.display().to_string()
    );
    std::fs::create_dir(sinks.join("sub")).unwrap();
    let abs = sinks.join("sub/abs.jsonl");
    let (status, body) = create_sub(&s, file_sub("abs", &abs)).await;
    assert_eq!(status, 201, "{body}");
    let a1 = s.event_for("alice", "A1").await;
    for path in [sinks.join("rel.jsonl"), abs.clone()] {
        let lines = wait_lines(&path, 1).await;
        assert!(
            lines[0].contains(&format!("\"vnd.herald.id\":{a1}")),
            "{lines:?}"
        );
    }
    // Its file now exists: a second subscription cannot take it over.
    let (status, _) = create_sub(&s, file_sub("again", "rel.jsonl")).await;
    assert_eq!(status, 409);
    // A refused creation (duplicate name) leaves no file behind.
    let (status, _) = create_sub(&s, file_sub("rel", "other.jsonl")).await;
    assert_eq!(status, 409);
    assert!(!sinks.join("other.jsonl").exists());
    let mut invalid = file_sub("invalid", "invalid.jsonl");
    invalid["events"] = serde_json::json!(["NoSuchEvent"]);
    let (status, _) = create_sub(&s, invalid).await;
    assert_eq!(status, 400);
    assert!(!sinks.join("invalid.jsonl").exists());
}

#[tokio::test]
async fn without_file_sink_dir_the_api_refuses_file_sinks() {
    let s = Server::start_full(AuthLimiter::default(), Duration::from_secs(15), |_| {
        String::new()
    })
    .await;
    let target = s.dir.join("sinks/new.jsonl");
    let (status, body) = create_sub(&s, file_sub("f", &target)).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("file_sink_dir"),
        "{body}"
    );
    assert!(!target.exists());
    // Other sinks are unaffected.
    let (status, body) = create_sub(
        &s,
        serde_json::json!({ "name": "hook", "sink": { "type": "webhook", "url": "http://anywhere.test/h" } }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn webhook_hosts_bounds_api_webhooks() {
    let s = Server::start_full(AuthLimiter::default(), Duration::from_secs(15), |_| {
        "webhook_hosts = [\"*.Example.org\", \"127.0.0.1\"]".into()
    })
    .await;
    let hook = |name: &str, url: &str| serde_json::json!({ "name": name, "sink": { "type": "webhook", "url": url } });
    for (i, url) in [
        "https://hooks.example.org/h",
        "http://a.b.EXAMPLE.org:8443/h",
        "http://127.0.0.1:9/h",
        "http://0x7f.0.0.1/h",
    ]
    .into_iter()
    .enumerate()
    {
        let (status, body) = create_sub(&s, hook(&format!("ok{i}"), url)).await;
        assert_eq!(status, 201, "{url}: {body}");
    }
    for url in [
        "https://example.org/h",
        "https://evil.test/h",
        "https://hooks.example.org.evil.test/h",
        "http://127.0.0.2/h",
        "http://evil.test\\@hooks.example.org/h",
        "http://[::1]/h",
    ] {
        let (status, body) = create_sub(&s, hook("refused", url)).await;
        assert_eq!(status, 403, "{url}: {body}");
    }
    let (status, _) = create_sub(&s, hook("bad", "not a url")).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn push_hosts_bounds_the_push_endpoints_users_register() {
    let s = Server::start_full(AuthLimiter::default(), Duration::from_secs(15), |_| {
        "push_hosts = [\"*.push.example.org\"]".into()
    })
    .await;
    // A browser's PushSubscription.toJSON(): a P-256 point and a 16-byte secret.
    let p256dh =
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    let register = |endpoint: &str| {
        let body = serde_json::json!({
            "endpoint": endpoint,
            "keys": { "p256dh": p256dh, "auth": "BTBZMqHH6r4Tts7J_aSIgg" }
        });
        let url = s.url("/push/subscriptions");
        async move {
            let r = client()
                .post(url)
                .basic_auth("root", Some("root-pw"))
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (
                status,
                r.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    let (status, body) = register("https://eu.PUSH.example.org/send/abc").await;
    assert_eq!(status, 201, "{body}");
    for endpoint in [
        "https://push.example.org.evil.test/send/abc",
        "https://internal.example.net/admin",
    ] {
        let (status, body) = register(endpoint).await;
        assert_eq!(status, 403, "{endpoint}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("push_hosts"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn api_subscription_names_are_bounded_and_unique() {
    let s = Server::start().await;
    let stdout = |name: &str| serde_json::json!({ "name": name, "sink": { "type": "stdout" } });
    let (status, body) = create_sub(&s, stdout("ops.audit_1-a")).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = create_sub(&s, stdout("ops.audit_1-a")).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("already exists"),
        "{body}"
    );
    for bad in ["", "two words", "a/b", "ünïcode", &"n".repeat(65)] {
        let (status, body) = create_sub(&s, stdout(bad)).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("1 to 64"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn the_api_never_shows_webhook_secrets_or_url_credentials() {
    let s = Server::start().await;
    let c = client();
    let admin = |r: reqwest::RequestBuilder| r.basic_auth("root", Some("root-pw"));
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let next = "whsec_dGhpcyBpcyBhIHNlY29uZCBrZXkgZm9yIHRlc3Rz";
    let config = serde_json::json!({
        "name": "signed",
        "sink": {
            "type": "webhook",
            "url": "http://hookuser:hookpass@127.0.0.1:9/h?token=querytoken",
            "secret": secret,
            "secret_next": next,
        },
    });
    let hidden = |text: &str| {
        for leak in [
            "MfKQ9r8GKYqrTwjUPD8IL",
            "dGhpcyBpcyBhIHNlY29uZC",
            "hookuser",
            "hookpass",
            "querytoken",
        ] {
            assert!(!text.contains(leak), "{leak} shown in {text}");
        }
    };
    let r = admin(c.post(s.url("/subscriptions")).json(&config))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created = r.text().await.unwrap();
    hidden(&created);
    for (method, path) in [
        ("GET", "/subscriptions"),
        ("GET", "/subscriptions/signed"),
        ("POST", "/subscriptions/signed/pause"),
        ("POST", "/subscriptions/signed/resume"),
    ] {
        let req = match method {
            "GET" => c.get(s.url(path)),
            _ => c.post(s.url(path)),
        };
        let r = admin(req).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let text = r.text().await.unwrap();
        hidden(&text);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let one = if v.is_array() { &v[0] } else { &v };
        let sink = &one["config"]["sink"];
        assert_eq!(sink["secret"], "whsec_…redacted", "{path}: {sink}");
        assert_eq!(sink["secret_next"], "whsec_…redacted", "{path}: {sink}");
        assert_eq!(sink["url"], "http://127.0.0.1:9/h", "{path}: {sink}");
    }
}

#[tokio::test]
async fn a_recreated_account_does_not_see_the_events_of_the_one_it_replaced() {
    let s = Server::start().await;
    let admin = SessionContext::admin_cli();
    s.event_for("alice", "Old").await;
    s.store.delete_user(&admin, "alice").await.unwrap();
    s.store
        .add_user(&admin, "alice", "new-alice-pw", false)
        .await
        .unwrap();
    let fresh = s.event_for("alice", "New").await;
    let mut alice = SseReader::open(
        client()
            .get(s.url("/events/stream?from=0"))
            .basic_auth("alice", Some("new-alice-pw")),
    )
    .await;
    // The new account's stream begins with its own creation, never the old one's events.
    let got = alice.events(3).await;
    let kinds: Vec<&str> = got.iter().filter_map(|m| m.event.as_deref()).collect();
    assert_eq!(
        kinds,
        ["vnd.herald.AccountCreate", "MailboxCreate", "MailboxCreate"]
    );
    assert!(got[1].data.contains("/INBOX"), "{}", got[1].data);
    assert_eq!(herald_id(&got[2]), fresh, "{}", got[2].data);
    assert!(got[2].data.contains("/New"), "{}", got[2].data);
}

#[tokio::test]
async fn the_dashboard_is_for_admins_hardened_and_escaped() {
    let s = Server::start().await;
    let c = client();
    let admin = |r: reqwest::RequestBuilder| r.basic_auth("root", Some("root-pw"));

    // A browser without credentials is asked for a Basic password, first of the challenges.
    let r = c.get(s.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let challenges: Vec<_> = r.headers().get_all("www-authenticate").iter().collect();
    assert!(
        challenges[0].to_str().unwrap().starts_with("Basic"),
        "{challenges:?}"
    );
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let r = c
        .get(s.url("/"))
        .basic_auth("alice", Some("alice-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .get(s.url("/dashboard/summary"))
        .basic_auth("alice", Some("alice-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let out = s.dir.join("sinks/dash.jsonl");
    let r = admin(c.post(s.url("/subscriptions")).json(&serde_json::json!({
        "name": "dash", "sink": { "type": "file", "path": out },
    })))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 201);

    let r = admin(c.get(s.url("/"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("default-src 'none'"));
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let page = r.text().await.unwrap();
    assert!(page.contains("<tr data-name=\"dash\">"), "{page}");
    assert!(page.contains("<script src=\"/dashboard/app.js\" defer></script>"));
    assert!(!page.contains("http://") && !page.contains("https://"));

    for (path, kind) in [
        ("/dashboard/app.js", "text/javascript; charset=utf-8"),
        ("/dashboard/style.css", "text/css; charset=utf-8"),
    ] {
        let r = c.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], kind, "{path}");
        let text = r.text().await.unwrap();
        assert!(!text.contains("innerHTML"), "{path}");
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "{path}"
        );
    }

    let summary: serde_json::Value = admin(c.get(s.url("/dashboard/summary")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(summary["subscriptions"][0]["name"], "dash");
    assert_eq!(summary["subscriptions"][0]["state"], "active");
    assert_eq!(summary["subscriptions"][0]["sink"], "file");
    let names: Vec<_> = summary["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob", "root"]);

    // A paused subscription falls behind: the summary says by how much.
    admin(c.post(s.url("/subscriptions/dash/pause")))
        .send()
        .await
        .unwrap();
    s.event_for("bob", "B1").await;
    s.event_for("bob", "B2").await;
    let summary: serde_json::Value = admin(c.get(s.url("/dashboard/summary")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(summary["subscriptions"][0]["state"], "paused");
    assert_eq!(summary["subscriptions"][0]["lag_events"], 2);

    // The test event reaches the sink even while paused; nothing is committed for it.
    let head = s.store.last_event_id().await.unwrap();
    let r = admin(c.post(s.url("/subscriptions/dash/test")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let lines = wait_lines(&out, 1).await;
    let test: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(test["event"], "vnd.herald.test");
    assert_eq!(test["user"], "root");
    assert_eq!(test["vnd.herald.id"], 0);
    assert_eq!(s.store.last_event_id().await.unwrap(), head);
    let r = admin(c.post(s.url("/subscriptions/nope/test")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Another site's page cannot make a logged-in browser change anything.
    let r = admin(c.post(s.url("/subscriptions/dash/resume")))
        .header("origin", "https://elsewhere.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = admin(c.post(s.url("/subscriptions/dash/resume")))
        .header("origin", format!("http://{}", s.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
