//! The tokio driver: runs a [`Session`] over a connection.
//!
//! It owns what the session must not: the socket, the clock, TLS. Per connection it reads into
//! one small buffer (8 KiB: a thousand idle clients cost little), feeds the session, and acts on
//! its [`Control`]; while the client IDLEs it also waits on the selected mailbox's store watch
//! (wake-ups, no polling) and writes a keep-alive every [`ImapConfig::idle_keepalive`], and
//! while NOTIFY is set it waits on the store's outbox watch and, between commands, lets the
//! session write what the new events ask for ([`Session::notify_wakeup`]). Timers:
//! a client must authenticate within [`ImapConfig::unauthenticated_timeout`] of connecting, and
//! an authenticated one is logged out after [`ImapConfig::autologout`] of silence. Whatever way
//! the connection ends — LOGOUT, a dropped socket, a timeout, shutdown, a TLS failure — the
//! session records Logout with that kind of disconnect and the session's duration.

use crate::config::ImapConfig;
use crate::session::notify::Wakeup;
use crate::session::{Backend, Control, Peer, Session};
use herald_net::{Conn, TlsAcceptor};
use herald_store::{Disconnect, Store};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, sleep_until, timeout_at};

/// Bytes read from the socket at a time.
const READ_BUFFER: usize = 8 * 1024;

/// An IMAP server bound to a store.
pub struct ImapServer<B: Backend = Store> {
    backend: B,
    config: Arc<ImapConfig>,
    starttls: Option<TlsAcceptor>,
}

impl<B: Backend> std::fmt::Debug for ImapServer<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapServer")
            .field("config", &self.config)
            .field("starttls", &self.starttls.is_some())
            .finish()
    }
}

impl<B: Backend + Clone> ImapServer<B> {
    /// A server on `backend` (the store); `starttls` enables STARTTLS on plain connections.
    pub fn new(backend: B, config: ImapConfig, starttls: Option<TlsAcceptor>) -> Arc<Self> {
        herald_metrics::register_commands(&crate::COMMANDS);
        Arc::new(ImapServer {
            backend,
            config: Arc::new(config),
            starttls,
        })
    }

    /// Serves one connection to its end.
    pub async fn handle(self: Arc<Self>, mut conn: Conn) {
        let peer = conn.peer;
        let disconnect = match self.session(&mut conn).await {
            Ok(d) => d,
            Err((d, e)) => {
                tracing::debug!(%peer, error = %e, "IMAP connection ended");
                d
            }
        };
        tracing::debug!(%peer, disconnect = disconnect.as_str(), "IMAP session closed");
        let _ = conn.stream.shutdown().await;
    }

    async fn session(&self, conn: &mut Conn) -> Result<Disconnect, (Disconnect, std::io::Error)> {
        let peer = Peer {
            client: conn.peer,
            server: conn.local,
        };
        let mut session = Session::new(
            self.backend.clone(),
            Arc::clone(&self.config),
            peer,
            conn.stream.is_tls(),
            self.starttls.is_some(),
        );
        let result = self.run(&mut session, conn).await;
        let disconnect = match &result {
            Ok(d) | Err((d, _)) => *d,
        };
        session.end(disconnect).await;
        result
    }

    async fn run(
        &self,
        session: &mut Session<B>,
        conn: &mut Conn,
    ) -> Result<Disconnect, (Disconnect, std::io::Error)> {
        let abort = |e| (Disconnect::Abort, e);
        conn.stream
            .write_all(&session.greeting())
            .await
            .map_err(abort)?;
        let login_deadline = Instant::now() + self.config.unauthenticated_timeout;
        let mut buf = vec![0u8; READ_BUFFER];
        let mut keepalive_at = Instant::now() + self.config.idle_keepalive;
        let mut was_idling = false;
        loop {
            let idling = session.is_idling();
            if idling && !was_idling {
                keepalive_at = Instant::now() + self.config.idle_keepalive;
            }
            was_idling = idling;
            // NOTIFY's responses go out between commands only, never into a half-sent one.
            let notify = session.notifying() && !session.mid_command();
            // Under NOTIFY, IDLE reports what NOTIFY asked for and nothing else (RFC 5465 §4):
            // the outbox drives it, not the mailbox watch.
            let idle_watch = idling && !session.notifying();
            let deadline = if session.is_authenticated() {
                Instant::now() + self.config.autologout
            } else {
                login_deadline
            };
            tokio::select! {
                _ = conn.shutdown.cancelled() => {
                    let _ = session.bye("server shutting down", &mut conn.stream).await;
                    return Ok(Disconnect::Shutdown);
                }
                wake = session.next_wakeup(idle_watch, notify), if idle_watch || notify => match wake {
                    Wakeup::Mailbox => session.idle_wakeup(&mut conn.stream).await.map_err(abort)?,
                    Wakeup::Outbox => session.notify_wakeup(&mut conn.stream).await.map_err(abort)?,
                },
                _ = sleep_until(keepalive_at), if idling => {
                    keepalive_at = Instant::now() + self.config.idle_keepalive;
                    session.keepalive(&mut conn.stream).await.map_err(abort)?;
                }
                r = timeout_at(deadline, conn.stream.read(&mut buf)) => {
                    let n = match r {
                        Err(_) => {
                            let text = if session.is_authenticated() {
                                "autologout: idle for too long"
                            } else {
                                "no login in time"
                            };
                            let _ = session.bye(text, &mut conn.stream).await;
                            return Ok(Disconnect::Timeout);
                        }
                        Ok(Ok(0)) => return Ok(Disconnect::Abort),
                        Ok(Ok(n)) => n,
                        Ok(Err(e)) => return Err(abort(e)),
                    };
                    match session.input(&buf[..n], &mut conn.stream).await.map_err(abort)? {
                        // Only a client that still owes part of a command can be waiting for
                        // our ACK (see `Stream::quickack`); after a whole command the response
                        // carries it, and the system call would be spent for nothing.
                        Control::Continue if session.mid_command() => conn.stream.quickack(),
                        Control::Continue => {}
                        Control::Close => return Ok(Disconnect::Graceful),
                        Control::StartTls => {
                            let Some(acceptor) = &self.starttls else {
                                return Ok(Disconnect::Abort);
                            };
                            conn.stream
                                .upgrade(acceptor)
                                .await
                                .map_err(|e| (Disconnect::SecurityLayerError, e))?;
                            session.tls_started();
                        }
                    }
                }
            }
        }
    }
}
