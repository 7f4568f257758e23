//! `herald-net`: what every Herald listener shares — the accept loop, the connection limit,
//! graceful shutdown, and a stream that is plain, TLS from the start (IMAPS/POP3S), or upgraded
//! in place by STARTTLS/STLS.
//!
//! Shaped after mini-redis's listener: a semaphore bounds concurrent connections (the one
//! over the limit waits in the kernel's backlog instead of costing memory), a per-client
//! bound refuses one address's surplus at once (so one client cannot take every slot), accept
//! errors back off instead of spinning, and a [`CancellationToken`] stops accepting while the
//! connections in flight finish. Protocol crates own their sessions; this crate owns sockets.

mod limiter;
mod slots;
mod stream;
mod tls;

pub use limiter::{Attempt, AuthLimiter, Refusal};
pub use slots::{Slot, Slots};
pub use stream::Stream;
pub use tls::{ServerTls, TlsError, load_tls_config};
pub use tokio_rustls::TlsAcceptor;
pub use tokio_util::sync::CancellationToken;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// One accepted connection.
#[derive(Debug)]
pub struct Conn {
    /// The byte stream (plain until upgraded, or TLS for an implicit-TLS listener).
    pub stream: Stream,
    /// The client's address.
    pub peer: SocketAddr,
    /// The local address the client connected to.
    pub local: SocketAddr,
    /// Cancelled when the server shuts down: sessions say goodbye and close.
    pub shutdown: CancellationToken,
}

/// How a listener treats new connections.
#[derive(Clone)]
pub struct ListenerConfig {
    /// Name used in logs (`imap`, `pop3`, `lmtp`).
    pub protocol: &'static str,
    /// At most this many connections at once.
    pub max_connections: usize,
    /// TLS from the first byte (993, 995); `None` for plain listeners.
    pub implicit_tls: Option<tokio_rustls::TlsAcceptor>,
    /// At most this many connections at once from one client address (an IPv4 address or an
    /// IPv6 /64); `None` for no per-client bound (LMTP, whose one client is the MTA).
    pub max_per_client: Option<usize>,
    /// Written (best effort, without waiting) to a connection refused by `max_per_client`
    /// before it is closed, in the protocol's words.
    pub refusal: &'static [u8],
}

impl ListenerConfig {
    /// A plain listener allowing `max_connections`, with no per-client bound.
    pub fn new(protocol: &'static str, max_connections: usize) -> ListenerConfig {
        ListenerConfig {
            protocol,
            max_connections,
            implicit_tls: None,
            max_per_client: None,
            refusal: b"",
        }
    }
}

/// The address connections are counted under: an IPv4 address as is (each loopback address
/// too, unlike the authentication limiter), an IPv6 address by its /64.
fn connection_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None if v6.is_loopback() => ip,
            None => limiter::client_key(ip),
        },
        v4 => v4,
    }
}

impl std::fmt::Debug for ListenerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerConfig")
            .field("protocol", &self.protocol)
            .field("max_connections", &self.max_connections)
            .field("implicit_tls", &self.implicit_tls.is_some())
            .finish()
    }
}

/// Accepts connections until `shutdown` is cancelled, running `handle` for each; then waits for
/// the sessions in flight to finish (they see the same token and close).
pub async fn serve<F, Fut>(
    listener: TcpListener,
    config: ListenerConfig,
    shutdown: CancellationToken,
    handle: F,
) where
    F: Fn(Conn) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let metrics = herald_metrics::global();
    let protocol_label = herald_metrics::Protocol::from_name(config.protocol);
    let limit = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let per_client: Arc<Slots<IpAddr>> = Arc::default();
    let handle = Arc::new(handle);
    let mut sessions = JoinSet::new();
    let mut backoff = Duration::from_millis(10);
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = Arc::clone(&limit).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => {
                backoff = Duration::from_millis(10);
                a
            }
            Err(e) => {
                // EMFILE and friends: wait instead of spinning on a failing accept.
                tracing::warn!(protocol = config.protocol, error = %e, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let slot = match config.max_per_client {
            None => None,
            Some(max) => match per_client.take(connection_key(peer.ip()), max.max(1)) {
                Some(slot) => Some(slot),
                None => {
                    tracing::warn!(
                        protocol = config.protocol,
                        rip = %peer.ip(),
                        "connection refused: too many connections from this client"
                    );
                    metrics.connection_refused(protocol_label);
                    // Best effort: a client that does not read this just sees the close.
                    let _ = tcp.try_write(config.refusal);
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().unwrap_or(peer);
        let handle = Arc::clone(&handle);
        let token = shutdown.child_token();
        let tls = config.implicit_tls.clone();
        let protocol = config.protocol;
        let open = metrics.session_opened(protocol_label);
        sessions.spawn(async move {
            let _permit = permit;
            let _slot = slot;
            let _open = open;
            let stream = match tls {
                None => Stream::Plain(tcp),
                Some(acceptor) => {
                    match tokio::time::timeout(Duration::from_secs(30), acceptor.accept(tcp)).await
                    {
                        Ok(Ok(s)) => Stream::Tls(Box::new(s)),
                        Ok(Err(e)) => {
                            tracing::debug!(protocol, %peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(protocol, %peer, "TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            handle(Conn {
                stream,
                peer,
                local,
                shutdown: token,
            })
            .await;
        });
        // Reap finished sessions so the set does not grow with the connection count.
        while let Some(done) = sessions.try_join_next() {
            if let Err(e) = done
                && e.is_panic()
            {
                tracing::error!(protocol = config.protocol, "a session panicked: {e}");
            }
        }
    }
    while sessions.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn echo_server(
        max: usize,
    ) -> (SocketAddr, CancellationToken, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let token = CancellationToken::new();
        let config = ListenerConfig::new("test", max);
        let t = token.clone();
        let task = tokio::spawn(serve(listener, config, t, |mut conn: Conn| async move {
            let mut buf = [0u8; 64];
            loop {
                tokio::select! {
                    _ = conn.shutdown.cancelled() => {
                        let _ = conn.stream.write_all(b"bye\n").await;
                        return;
                    }
                    n = conn.stream.read(&mut buf) => match n {
                        Ok(0) | Err(_) => return,
                        Ok(n) => { let _ = conn.stream.write_all(&buf[..n]).await; }
                    },
                }
            }
        }));
        (addr, token, task)
    }

    #[tokio::test]
    async fn serves_and_shuts_down_gracefully() {
        let (addr, token, task) = echo_server(8).await;
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        token.cancel();
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"bye\n", "sessions in flight are told to close");
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn one_client_cannot_take_every_slot() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let token = CancellationToken::new();
        let config = ListenerConfig {
            max_per_client: Some(2),
            refusal: b"busy\n",
            ..ListenerConfig::new("test", 100)
        };
        tokio::spawn(serve(
            listener,
            config,
            token.clone(),
            |mut conn: Conn| async move {
                let _ = conn.stream.write_all(b"hi\n").await;
                let mut rest = Vec::new();
                tokio::select! {
                    _ = conn.shutdown.cancelled() => {}
                    _ = conn.stream.read_to_end(&mut rest) => {}
                }
            },
        ));
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
            let mut b = [0u8; 3];
            c.read_exact(&mut b).await.unwrap();
            assert_eq!(&b, b"hi\n");
            held.push(c);
        }
        let mut third = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), third.read_to_end(&mut answer))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(answer, b"busy\n", "refused and closed at once");
        // Another loopback address is another client.
        let other = tokio::net::TcpSocket::new_v4().unwrap();
        other.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let mut other = other.connect(addr).await.unwrap();
        let mut b = [0u8; 3];
        other.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"hi\n");
        // A freed slot can be taken again.
        drop(held.pop());
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut again = tokio::net::TcpStream::connect(addr).await.unwrap();
        again.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"hi\n");
        token.cancel();
    }

    #[tokio::test]
    async fn connection_limit_holds_extra_clients_until_a_slot_frees() {
        let (addr, token, _task) = echo_server(1).await;
        let mut first = tokio::net::TcpStream::connect(addr).await.unwrap();
        first.write_all(b"a").await.unwrap();
        let mut b = [0u8; 1];
        first.read_exact(&mut b).await.unwrap();
        let mut second = tokio::net::TcpStream::connect(addr).await.unwrap();
        second.write_all(b"b").await.unwrap();
        let waited =
            tokio::time::timeout(Duration::from_millis(300), second.read_exact(&mut b)).await;
        assert!(
            waited.is_err(),
            "the second client waits while the first holds the slot"
        );
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), second.read_exact(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&b, b"b");
        token.cancel();
    }
}
