//! The POP3 driver's deadlines over a real socket: an unauthenticated client has a fixed time to
//! log in, and bytes that never make a command do not keep a connection alive.
#![allow(clippy::unwrap_used)]

use herald_net::{AuthLimiter, CancellationToken, ListenerConfig};
use herald_pop3::{Config, Pop3Server, Timeouts};
use herald_store::{SessionContext, Store, StoreConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(dir: &std::path::Path, timeouts: Timeouts) -> (SocketAddr, CancellationToken) {
    let mut sc = StoreConfig::new(dir);
    sc.durable = false;
    let store = Store::open(sc).await.unwrap();
    store
        .add_user(&SessionContext::admin_cli(), "alice", "pw", false)
        .await
        .unwrap();
    let server = Pop3Server::with_timeouts(
        store,
        Config {
            hostname: "mail.example.org".into(),
            stls_available: false,
            plaintext_auth: true,
        },
        None,
        Arc::new(AuthLimiter::default()),
        timeouts,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let token = CancellationToken::new();
    tokio::spawn(herald_net::serve(
        listener,
        ListenerConfig::new("pop3", 16),
        token.clone(),
        move |c| server.clone().handle(c),
    ));
    (addr, token)
}

/// Sends `bytes` one at a time, `gap` apart, reading (and dropping) what the server says;
/// returns after how long the server closed the connection, or `None` if it never did.
async fn keep_sending(c: &mut TcpStream, bytes: &[u8], gap: Duration) -> Option<Duration> {
    let started = Instant::now();
    for b in bytes {
        if c.write_all(&[*b]).await.is_err() {
            return Some(started.elapsed());
        }
        let mut buf = [0u8; 512];
        match tokio::time::timeout(gap, c.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) | Err(_) => {}
        }
    }
    None
}

#[tokio::test]
async fn bytes_that_make_no_command_do_not_keep_a_connection() {
    let dir = tempfile::tempdir().unwrap();
    let timeouts = Timeouts {
        idle: Duration::from_millis(400),
        login: Duration::from_secs(30),
    };
    let (addr, token) = start(dir.path(), timeouts).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    let cut = keep_sending(&mut c, &[b'x'; 60], Duration::from_millis(100)).await;
    assert!(cut.is_some_and(|t| t < Duration::from_secs(3)), "{cut:?}");
    token.cancel();
}

#[tokio::test]
async fn an_unauthenticated_client_has_a_fixed_time_to_log_in() {
    let dir = tempfile::tempdir().unwrap();
    let timeouts = Timeouts {
        idle: Duration::from_secs(30),
        login: Duration::from_millis(1200),
    };
    let (addr, token) = start(dir.path(), timeouts).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    // Complete commands, each well within the idle timer, never logging in.
    let cut = keep_sending(&mut c, &b"CAPA\r\n".repeat(20), Duration::from_millis(50)).await;
    assert!(
        cut.is_some_and(|t| t < Duration::from_secs(4)),
        "a client that never logs in was kept: {cut:?}"
    );
    // A client that logs in in time is not cut by the login deadline afterwards (36 bytes
    // 50 ms apart outlast it).
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"USER alice\r\nPASS pw\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let kept = keep_sending(&mut c, &b"NOOP\r\n".repeat(6), Duration::from_millis(50)).await;
    assert_eq!(kept, None, "a logged-in client was cut");
    token.cancel();
}
