//! The tokio driver: runs a POP3 [`Session`] over a connection and carries out its requests.
//!
//! - Authentication goes through the store (argon2, constant time for unknown users) behind
//!   the shared [`AuthLimiter`], which counts each attempt before the password is checked; a
//!   failure also costs the client a short delay.
//! - The maildrop lock is per account, held from login to the end of the session: a second POP3
//!   session for the same user is refused with `-ERR [IN-USE]` (RFC 2449), as Dovecot and
//!   Cyrus do. It is in-process: one server owns a data directory.
//! - A client has [`Timeouts::login`] from connecting to an open maildrop, and
//!   [`Timeouts::idle`] from one complete command to the next (bytes that never make a command
//!   do not count as activity).
//! - Login is recorded when the maildrop is open; Logout when the session ends, with how it
//!   ended (QUIT: graceful; dropped: abort; idle: timeout; server stop: shutdown).
//! - QUIT in TRANSACTION expunges the DELE'd messages in one store transaction (one
//!   MessageExpunge); any other ending expunges nothing (RFC 1939 §6).

use crate::session::{AuthFailure, Config, Maildrop, MaildropError, MessageInfo, Session, Step};
use crate::wire::{Line, LineBuffer, dot_stuff};
use herald_events::UidSet;
use herald_net::{AuthLimiter, Conn, TlsAcceptor};
use herald_store::{Disconnect, LoginFailure, SessionContext, Store, StoreError};
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// RFC 1939 §3: the autologout timer is at least 10 minutes.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// From connecting to an open maildrop, whatever the client sends meanwhile.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a client may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// To complete the next command, counted from the last complete one (the autologout
    /// timer): bytes that never make a command do not reset it.
    pub idle: Duration,
    /// From connecting to being logged in, an absolute deadline.
    pub login: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            idle: IDLE_TIMEOUT,
            login: LOGIN_TIMEOUT,
        }
    }
}
/// Longest a TLS handshake may take after STLS.
pub const TLS_HANDSHAKE: Duration = Duration::from_secs(30);
/// Pause after a failed authentication, slowing guessing on one connection.
pub const FAILURE_DELAY: Duration = Duration::from_secs(1);

/// A POP3 server bound to a store.
pub struct Pop3Server {
    store: Store,
    config: Config,
    starttls: Option<TlsAcceptor>,
    limiter: Arc<AuthLimiter>,
    locks: Mutex<HashSet<String>>,
    timeouts: Timeouts,
}

impl std::fmt::Debug for Pop3Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pop3Server")
            .field("config", &self.config)
            .finish()
    }
}

/// Holds an account's maildrop lock; releases it when dropped.
struct MaildropLock<'a> {
    server: &'a Pop3Server,
    user: String,
    /// The same lock across the other processes sharing the store (a cluster's nodes).
    cluster: Option<herald_store::backend::ClusterLock>,
}

impl Drop for MaildropLock<'_> {
    fn drop(&mut self) {
        self.server
            .locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.user);
    }
}

/// What a session learned that the driver needs at the end.
struct Live<'a> {
    ctx: Option<SessionContext>,
    lock: Option<MaildropLock<'a>>,
    started: Instant,
    /// When the account was last found enabled ([`herald_store::ACCOUNT_RECHECK`]).
    enabled_at: Instant,
}

/// A command being carried out: counted and timed when dropped.
struct CommandTiming(crate::command::CommandKind, std::time::Instant);

impl Drop for CommandTiming {
    fn drop(&mut self) {
        crate::COMMANDS.record(self.0 as usize, self.1.elapsed());
    }
}

impl Pop3Server {
    /// A server for `store`; `starttls` enables STLS. Plaintext USER/PASS is allowed without TLS
    /// only when `config.plaintext_auth` is set.
    pub fn new(
        store: Store,
        config: Config,
        starttls: Option<TlsAcceptor>,
        limiter: Arc<AuthLimiter>,
    ) -> Arc<Pop3Server> {
        Pop3Server::with_timeouts(store, config, starttls, limiter, Timeouts::default())
    }

    /// [`Pop3Server::new`] with other [`Timeouts`].
    pub fn with_timeouts(
        store: Store,
        mut config: Config,
        starttls: Option<TlsAcceptor>,
        limiter: Arc<AuthLimiter>,
        timeouts: Timeouts,
    ) -> Arc<Pop3Server> {
        config.stls_available = starttls.is_some();
        herald_metrics::register_commands(&crate::COMMANDS);
        Arc::new(Pop3Server {
            store,
            config,
            starttls,
            limiter,
            locks: Mutex::new(HashSet::new()),
            timeouts,
        })
    }

    /// Serves one connection to its end.
    pub async fn handle(self: Arc<Self>, mut conn: Conn) {
        let mut live = Live {
            ctx: None,
            lock: None,
            started: Instant::now(),
            enabled_at: Instant::now(),
        };
        let ending = match self.session(&mut conn, &mut live).await {
            Ok(d) => d,
            Err(e) => {
                tracing::debug!(peer = %conn.peer, error = %e, "POP3 connection error");
                Disconnect::Abort
            }
        };
        self.record_logout(&mut live, ending).await;
        drop(live.lock.take());
        let _ = conn.stream.shutdown().await;
    }

    /// Records Logout once, if a user had logged in.
    async fn record_logout(&self, live: &mut Live<'_>, ending: Disconnect) {
        if let Some(ctx) = live.ctx.take()
            && let Err(e) = self
                .store
                .logout(&ctx, ending, live.started.elapsed())
                .await
        {
            tracing::warn!(error = %e, "could not record Logout");
        }
    }

    /// Whether an operator disabled the logged-in account since the session began — asked
    /// of the store at most once per [`herald_store::ACCOUNT_RECHECK`]; a store error keeps
    /// the session, which will fail on its own.
    async fn account_disabled(&self, live: &mut Live<'_>) -> bool {
        let Some(user) = live.ctx.as_ref().and_then(|c| c.user.clone()) else {
            return false;
        };
        if live.enabled_at.elapsed() < herald_store::ACCOUNT_RECHECK {
            return false;
        }
        match self.store.is_disabled(&user).await {
            Ok(true) => {
                tracing::info!(%user, "ending the POP3 session of a disabled account");
                true
            }
            Ok(false) | Err(_) => {
                live.enabled_at = Instant::now();
                false
            }
        }
    }

    fn base_context(conn: &Conn) -> SessionContext {
        SessionContext::connection("pop", conn.peer, conn.local)
    }

    async fn session<'a>(
        &'a self,
        conn: &mut Conn,
        live: &mut Live<'a>,
    ) -> std::io::Result<Disconnect> {
        let mut session = Session::new(self.config.clone(), conn.stream.is_tls());
        conn.stream.write_all(&session.greeting()).await?;
        let mut lines = LineBuffer::new(crate::session::MAX_COMMAND_LINE);
        let mut buf = vec![0u8; 4096];
        let mut identity_ctx: Option<SessionContext> = None;
        let login_deadline = tokio::time::Instant::now() + self.timeouts.login;
        let mut idle_deadline = tokio::time::Instant::now() + self.timeouts.idle;
        loop {
            let deadline = if live.ctx.is_some() {
                idle_deadline
            } else {
                idle_deadline.min(login_deadline)
            };
            let n = tokio::select! {
                _ = conn.shutdown.cancelled() => {
                    conn.stream.write_all(b"-ERR [SYS/TEMP] server shutting down\r\n").await?;
                    return Ok(Disconnect::Shutdown);
                }
                r = tokio::time::timeout_at(deadline, conn.stream.read(&mut buf)) => match r {
                    Ok(r) => r?,
                    Err(_) => {
                        conn.stream.write_all(b"-ERR autologout timer expired\r\n").await?;
                        return Ok(Disconnect::Timeout);
                    }
                },
            };
            if n == 0 {
                return Ok(Disconnect::Abort);
            }
            lines.push(&buf[..n]);
            if self.account_disabled(live).await {
                // Nothing the session marked deleted is expunged: it never reached UPDATE.
                conn.stream
                    .write_all(b"-ERR [SYS/PERM] this account has been disabled, contact your administrator\r\n")
                    .await?;
                return Ok(Disconnect::Shutdown);
            }
            let mut out = Vec::new();
            while let Some(line) = lines.next_line() {
                idle_deadline = tokio::time::Instant::now() + self.timeouts.idle;
                let started = std::time::Instant::now();
                let mut queue: VecDeque<Step> = match line {
                    Line::Complete(l) => session.line(&l),
                    Line::TooLong => session.line_too_long(),
                }
                .into();
                // Recorded when the command's steps are done, however this iteration ends.
                let _timing = session
                    .take_command()
                    .map(|kind| CommandTiming(kind, started));
                while let Some(step) = queue.pop_front() {
                    match step {
                        Step::Reply(bytes) => out.extend_from_slice(&bytes),
                        Step::Authenticate {
                            authzid,
                            authcid,
                            mechanism,
                            password,
                        } => {
                            let r = self
                                .authenticate(conn, authzid, &authcid, mechanism, &password)
                                .await;
                            if let Ok((_, ctx)) = &r {
                                identity_ctx = Some(ctx.clone());
                            }
                            queue.extend(session.auth_result(r.map(|(user, _)| user)));
                        }
                        Step::OpenMaildrop { user } => {
                            let ctx = identity_ctx.clone().unwrap_or_else(|| SessionContext {
                                user: Some(user.clone()),
                                ..Self::base_context(conn)
                            });
                            let mut r = self.open_maildrop(&user, &ctx, live).await;
                            if r.is_ok() {
                                // A session without its Login event would also end without a
                                // Logout: refuse it as a temporary failure instead.
                                match self.store.login(&ctx).await {
                                    Ok(_) => live.ctx = Some(ctx),
                                    Err(e) => {
                                        tracing::warn!(error = %e, "could not record Login");
                                        drop(live.lock.take());
                                        r = Err(MaildropError::Temporary(
                                            "cannot open the maildrop now".into(),
                                        ));
                                    }
                                }
                            }
                            queue.extend(session.maildrop_result(r));
                        }
                        Step::SendMessage { uid, body_lines } => {
                            let Some(ctx) = live.ctx.as_ref() else {
                                out.extend_from_slice(b"-ERR no maildrop\r\n");
                                continue;
                            };
                            match self.store.read_message(ctx, "INBOX", uid).await {
                                Ok(message) => {
                                    dot_stuff(&message, body_lines, &mut out);
                                    // Pipelined RETRs must not pile every message up in memory.
                                    conn.stream.write_all(&out).await?;
                                    out.clear();
                                }
                                Err(e) => {
                                    // The +OK line is out; end the multi-line response, then
                                    // say why on the log (RFC 1939 has no mid-response error).
                                    tracing::error!(uid, error = %e, "message vanished during RETR");
                                    out.extend_from_slice(b".\r\n");
                                }
                            }
                        }
                        Step::Commit { expunge } => {
                            let r = match (&live.ctx, expunge.is_empty()) {
                                (_, true) => Ok(()),
                                (None, false) => Err("no maildrop".to_owned()),
                                (Some(ctx), false) => self
                                    .store
                                    .expunge_uids(ctx, "INBOX", &UidSet::from_uids(expunge))
                                    .await
                                    .map(|_| ())
                                    .map_err(|e| e.to_string()),
                            };
                            queue.extend(session.commit_result(r));
                        }
                        Step::StartTls => {
                            conn.stream.write_all(&out).await?;
                            conn.stream.flush().await?;
                            out.clear();
                            let Some(acceptor) = &self.starttls else {
                                return Ok(Disconnect::Abort);
                            };
                            // Anything the client sent after STLS arrived in clear text and may
                            // have been injected by a man in the middle (RFC 2595 §4): drop it.
                            lines = LineBuffer::new(crate::session::MAX_COMMAND_LINE);
                            match tokio::time::timeout(TLS_HANDSHAKE, conn.stream.upgrade(acceptor))
                                .await
                            {
                                Ok(Ok(())) => {}
                                _ => return Ok(Disconnect::SecurityLayerError),
                            }
                        }
                        Step::Close => {
                            // Free the maildrop before the client reads "+OK bye": a client
                            // that reconnects at once must not find it still locked.
                            drop(live.lock.take());
                            // And record Logout before the final reply, as IMAP does before its
                            // tagged OK: a client that saw "+OK" can rely on the event.
                            self.record_logout(live, Disconnect::Graceful).await;
                            conn.stream.write_all(&out).await?;
                            conn.stream.flush().await?;
                            return Ok(Disconnect::Graceful);
                        }
                    }
                }
            }
            if !out.is_empty() {
                conn.stream.write_all(&out).await?;
                conn.stream.flush().await?;
            }
        }
    }

    async fn authenticate(
        &self,
        conn: &Conn,
        authzid: Option<String>,
        authcid: &str,
        mechanism: &str,
        password: &str,
    ) -> Result<(String, SessionContext), AuthFailure> {
        let attempt = match self.limiter.begin("pop3", conn.peer.ip(), authcid) {
            Ok(a) => a,
            Err(_) => {
                self.record_failure(conn, authcid, mechanism, LoginFailure::RateLimited)
                    .await;
                return Err(AuthFailure::Throttled);
            }
        };
        match self
            .store
            .authenticate(authcid, password, authzid.as_deref())
            .await
        {
            Ok(identity) => {
                attempt.succeeded();
                let ctx = SessionContext {
                    user: Some(identity.user.clone()),
                    auth_user: (identity.auth_user != identity.user)
                        .then(|| identity.auth_user.clone()),
                    ..Self::base_context(conn)
                };
                Ok((identity.user, ctx))
            }
            Err(StoreError::AuthFailed) => {
                attempt.failed(authcid);
                self.record_failure(conn, authcid, mechanism, LoginFailure::BadCredentials)
                    .await;
                tokio::time::sleep(FAILURE_DELAY).await;
                Err(AuthFailure::Credentials)
            }
            Err(StoreError::AccountDisabled) => {
                attempt.succeeded();
                self.record_failure(conn, authcid, mechanism, LoginFailure::AccountDisabled)
                    .await;
                Err(AuthFailure::Disabled)
            }
            Err(e) => Err(AuthFailure::Temporary(e.to_string())),
        }
    }

    /// Commits `vnd.herald.LoginFailed` for one refused attempt; the client's answer does not
    /// depend on it, so a store error is only logged.
    async fn record_failure(
        &self,
        conn: &Conn,
        user: &str,
        mechanism: &str,
        failure: LoginFailure,
    ) {
        let ctx = Self::base_context(conn);
        if let Err(e) = self
            .store
            .login_failed(&ctx, user, mechanism, failure)
            .await
        {
            tracing::warn!(error = %e, "could not record a failed login");
        }
    }

    async fn open_maildrop<'a>(
        &'a self,
        user: &str,
        ctx: &SessionContext,
        live: &mut Live<'a>,
    ) -> Result<Maildrop, MaildropError> {
        {
            let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            if !locks.insert(user.to_owned()) {
                return Err(MaildropError::InUse);
            }
        }
        let mut lock = MaildropLock {
            server: self,
            user: user.to_owned(),
            cluster: None,
        };
        let temporary = |e: StoreError| MaildropError::Temporary(e.to_string());
        // Then on every other node: the in-process check comes first, as a process must not
        // take one cluster lock twice.
        match self.store.try_lock(&format!("pop3/{user}")).await {
            Ok(Some(held)) => lock.cluster = Some(held),
            Ok(None) => return Err(MaildropError::InUse),
            Err(e) => return Err(temporary(e)),
        }
        let inbox = self.store.mailbox(ctx, "INBOX").await.map_err(temporary)?;
        let messages = self
            .store
            .fetch(ctx, "INBOX", None)
            .await
            .map_err(temporary)?
            .into_iter()
            .map(|m| MessageInfo {
                uid: m.uid,
                size: m.size,
            })
            .collect();
        live.lock = Some(lock);
        Ok(Maildrop {
            uidvalidity: inbox.uidvalidity,
            messages,
        })
    }
}
