//! [`Stream`]: a connection that is plain or TLS, and can become TLS in place (STARTTLS, STLS).
//! Protocol drivers hold one `Stream` for the whole session, so upgrading is a method call, not
//! a change of type.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A client connection.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
    /// Transient state while upgrading; never observed by callers.
    Upgrading,
}

impl Stream {
    /// True once the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// Performs the server side of a TLS handshake on a plain stream (after the protocol's
    /// "go ahead" reply was flushed). On failure the connection is gone.
    pub async fn upgrade(&mut self, acceptor: &TlsAcceptor) -> io::Result<()> {
        match std::mem::replace(self, Stream::Upgrading) {
            Stream::Plain(tcp) => {
                let tls = acceptor.accept(tcp).await?;
                *self = Stream::Tls(Box::new(tls));
                Ok(())
            }
            other => {
                *self = other;
                Err(io::Error::other("the connection is already TLS"))
            }
        }
    }
}

impl Stream {
    /// Acknowledges the next data at once instead of after the kernel's delayed-ACK timer.
    ///
    /// A client that writes a literal and then its closing CRLF in two writes, with Nagle's
    /// algorithm on (Python's imaplib does), holds the CRLF back until the literal is
    /// acknowledged; with the server's delayed ACK that costs 40 ms per APPEND (23 APPENDs/s
    /// instead of over a thousand). Linux leaves quick-ACK mode again on its own, so the
    /// drivers call this after each read that left a command incomplete; set then, it also
    /// sends the ACK the kernel was holding back. Best effort: elsewhere it does nothing.
    pub fn quickack(&self) {
        #[cfg(target_os = "linux")]
        {
            let tcp = match self {
                Stream::Plain(s) => Some(s),
                Stream::Tls(s) => Some(s.get_ref().0),
                Stream::Upgrading => None,
            };
            if let Some(tcp) = tcp {
                let _ = tcp.set_quickack(true);
            }
        }
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection is being upgraded")
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Upgrading => Poll::Ready(Err(gone())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Upgrading => Poll::Ready(Err(gone())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Upgrading => Poll::Ready(Err(gone())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Upgrading => Poll::Ready(Err(gone())),
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod quickack_tests {
    use super::Stream;

    #[tokio::test]
    async fn quickack_turns_the_socket_option_on() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        server.set_quickack(false).unwrap();
        let stream = Stream::Plain(server);
        stream.quickack();
        let Stream::Plain(tcp) = &stream else {
            unreachable!()
        };
        assert!(tcp.quickack().unwrap());
    }
}
