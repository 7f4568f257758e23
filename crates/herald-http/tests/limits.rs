//! The HTTP listener under abuse, over loopback: clients that trickle their headers are cut
//! off, one address cannot take every connection, a flood of idle connections leaves room for
//! others, and Basic passwords are refused over plain HTTP from the network.
#![allow(clippy::unwrap_used)]

use axum::http::{Request, StatusCode};
use base64::Engine as _;
use herald_http::{HttpConfig, HttpState, Transport};
use herald_net::AuthLimiter;
use herald_store::{SessionContext, Store, StoreConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

struct Server {
    _dir: tempfile::TempDir,
    addr: SocketAddr,
    shutdown: CancellationToken,
}

async fn http_state(config: &str) -> (tempfile::TempDir, HttpState) {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = StoreConfig::new(dir.path().join("data"));
    sc.durable = false;
    let store = Store::open(sc).await.unwrap();
    for user in ["alice", "bob"] {
        store
            .add_user(
                &SessionContext::admin_cli(),
                user,
                &format!("{user}-pw"),
                false,
            )
            .await
            .unwrap();
    }
    let http: HttpConfig = toml::from_str(config).unwrap();
    let state = HttpState::new(store, None, &http, Arc::new(AuthLimiter::default())).unwrap();
    (dir, state)
}

async fn start(config: &str) -> Server {
    let (dir, state) = http_state(config).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(herald_http::serve(listener, state, shutdown.clone()));
    Server {
        _dir: dir,
        addr,
        shutdown,
    }
}

/// Connects from a given loopback address, so tests can play several clients.
async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

/// Everything the server sends until it closes the connection, which it must do within `secs`.
async fn until_closed(stream: &mut TcpStream, secs: u64) -> Vec<u8> {
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(secs), stream.read_to_end(&mut answer))
        .await
        .expect("the server closed the connection in time")
        .unwrap();
    answer
}

/// Sends a whole request and returns the status line of the answer.
async fn get(stream: &mut TcpStream, path: &str) -> String {
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    String::from_utf8_lossy(&until_closed(stream, 10).await)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_its_headers_is_cut_off() {
    let s = start("header_timeout_secs = 1").await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let started = Instant::now();
    let mut closed = false;
    for b in b"GET /events/stream HTTP/1.1\r\nhost: slow\r\nx-pad: aaaaaaaaaaaaaaaaaaaaaaa" {
        if c.write_all(&[*b]).await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(300), c.read(&mut buf)).await {
            Ok(Ok(_)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Err(_) => {}
        }
    }
    assert!(closed, "the server kept a trickling client");
    let held = started.elapsed();
    assert!(
        held < Duration::from_secs(5),
        "held for {held:?}, the deadline is 1 s"
    );
    s.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_connection() {
    let s = start("max_connections_per_ip = 5\nmax_connections = 8").await;
    // Five half-sent requests from one address hold its five slots.
    let mut held = Vec::new();
    for _ in 0..5 {
        let mut c = connect_from("127.0.0.3", s.addr).await;
        c.write_all(b"GET /events/stream HTTP/1.1\r\n")
            .await
            .unwrap();
        held.push(c);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut sixth = connect_from("127.0.0.3", s.addr).await;
    let answer = until_closed(&mut sixth, 5).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 503"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // Another client is served meanwhile.
    let mut other = connect_from("127.0.0.4", s.addr).await;
    assert!(
        get(&mut other, "/nowhere")
            .await
            .starts_with("HTTP/1.1 404"),
        "another address is served"
    );
    s.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_beyond_the_listener_bound_wait_and_time_out() {
    // Many addresses each holding a half-sent request: the listener's bound keeps the process's
    // descriptors, and the header deadline frees the slots for a real client.
    let s = start("max_connections = 4\nheader_timeout_secs = 1").await;
    let mut idle = Vec::new();
    for i in 0..12 {
        let mut c = connect_from(&format!("127.0.1.{}", i + 1), s.addr).await;
        let _ = c.write_all(b"GET / HTTP/1.1\r\n").await;
        idle.push(c);
    }
    let started = Instant::now();
    let mut c = connect_from("127.0.2.1", s.addr).await;
    let status = get(&mut c, "/nowhere").await;
    assert!(status.starts_with("HTTP/1.1 404"), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "served after {:?}",
        started.elapsed()
    );
    s.shutdown.cancel();
}

fn request(from: &str, tls: bool, authorization: &str) -> Request<axum::body::Body> {
    let peer: SocketAddr = from.parse().unwrap();
    let mut r = Request::get("/events/stream")
        .header("authorization", authorization)
        .body(axum::body::Body::empty())
        .unwrap();
    r.extensions_mut().insert(axum::extract::ConnectInfo(peer));
    r.extensions_mut().insert(Transport {
        tls,
        local: "127.0.0.1:8080".parse().unwrap(),
    });
    r
}

#[tokio::test]
async fn basic_passwords_are_refused_over_plain_http_from_the_network() {
    let (_dir, state) = http_state("listen = [\"0.0.0.0:8080\"]").await;
    let app = herald_http::router(state);
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("alice:alice-pw")
    );
    let remote = app
        .clone()
        .oneshot(request("192.0.2.7:40000", false, &basic))
        .await
        .unwrap();
    assert_eq!(remote.status(), StatusCode::FORBIDDEN);
    // Over TLS, or from the machine itself, the password is checked.
    for (from, tls) in [("192.0.2.7:40000", true), ("127.0.0.1:40000", false)] {
        let wrong = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("alice:nope")
        );
        let answer = app
            .clone()
            .oneshot(request(from, tls, &wrong))
            .await
            .unwrap();
        assert_eq!(
            answer.status(),
            StatusCode::UNAUTHORIZED,
            "{from} tls={tls}"
        );
    }
    // The operator may allow it.
    let (_dir, state) = http_state("listen = [\"0.0.0.0:8080\"]\nplaintext_auth = true").await;
    let answer = herald_http::router(state)
        .oneshot(request("192.0.2.7:40000", false, &basic))
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_client_cannot_make_the_server_buffer_megabytes() {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest as _};
    let s = start("").await;
    let mut request = format!("ws://{}/events/ws", s.addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "authorization",
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("alice:alice-pw")
        )
        .parse()
        .unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let _ = ws.send(Message::text("x".repeat(1 << 20))).await;
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the server kept a connection that sent 1 MiB"
    );
    s.shutdown.cancel();
}

/// Opens an SSE stream as `user`; returns the connection and the answer's status line.
async fn open_stream(addr: SocketAddr, user: &str) -> (TcpStream, String) {
    let mut c = TcpStream::connect(addr).await.unwrap();
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{user}-pw"));
    c.write_all(
        format!(
            "GET /events/stream HTTP/1.1\r\nhost: x\r\nauthorization: Basic {credentials}\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") {
        tokio::time::timeout(Duration::from_secs(10), c.read_exact(&mut byte))
            .await
            .unwrap()
            .unwrap();
        head.push(byte[0]);
    }
    (c, String::from_utf8_lossy(&head).trim_end().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_account_cannot_take_every_event_stream() {
    let s = start("max_streams_per_user = 2").await;
    let mut open = Vec::new();
    for _ in 0..2 {
        let (c, status) = open_stream(s.addr, "alice").await;
        assert_eq!(status, "HTTP/1.1 200 OK");
        open.push(c);
    }
    let (_, status) = open_stream(s.addr, "alice").await;
    assert_eq!(status, "HTTP/1.1 429 Too Many Requests");
    let (_bob, status) = open_stream(s.addr, "bob").await;
    assert_eq!(
        status, "HTTP/1.1 200 OK",
        "other accounts still get streams"
    );
    // A closed stream gives its slot back.
    drop(open.pop());
    let mut status = String::new();
    for _ in 0..50 {
        status = open_stream(s.addr, "alice").await.1;
        if status.ends_with("200 OK") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "HTTP/1.1 200 OK");
    s.shutdown.cancel();
}
