//! The tokio driver: runs a [`Session`] over a connection and carries out its requests against
//! the store.
//!
//! Delivery stores the content once for all recipients (`Store::deliver_many`) and commits
//! every recipient's delivery in one transaction, one flush for them all, each with its own
//! outcome: each LMTP reply after DATA matches that recipient's MessageNew event — or, over
//! quota, its QuotaExceed event and a 452/552 reply, the others delivered all the same.
//!
//! A client has [`Timeouts::idle`] to complete each command and [`Timeouts::data`] for a whole
//! message, counted from the server's last reply (RFC 5321 §4.5.3.2), so a connection cannot
//! be held open by a byte now and then.
//!
//! `user+detail@` delivers into the folder `detail` only as [`DetailDelivery`] allows (by
//! default a folder the user subscribes to, never `\Sent` or `\Drafts`); otherwise INBOX.

use crate::session::{
    CommandKind, Config, Delivery, DeliveryError, Recipient, RecipientError, Session, Step,
    trace_headers,
};
use herald_net::{Conn, TlsAcceptor};
use herald_store::{MailboxInfo, QuotaResource, SessionContext, SpecialUse, Store, StoreError};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// Longest a TLS handshake may take after STARTTLS.
pub const TLS_HANDSHAKE: Duration = Duration::from_secs(30);
/// RFC 5321 §4.5.3.2: a server waits at least five minutes for the next command.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// RFC 5321 §4.5.3.2: the whole of a DATA transfer, up to its final dot, within ten minutes.
pub const DATA_TIMEOUT: Duration = Duration::from_secs(600);

/// How long a client may take. Both count from the server's last reply, not from the last
/// byte received: a client trickling bytes that never complete a command (or a message) is
/// cut off all the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// To complete the next command.
    pub idle: Duration,
    /// To send a whole message after `354`.
    pub data: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            idle: IDLE_TIMEOUT,
            data: DATA_TIMEOUT,
        }
    }
}

/// Where `user+detail@` delivers (`[lmtp] detail_delivery`). Whoever can send mail can choose
/// the detail, so by default it reaches only folders the user marked by subscribing to them,
/// and never `\Sent` or `\Drafts`, where a forged message would pass for the user's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DetailDelivery {
    /// Always INBOX (Dovecot's default).
    Never,
    /// The named folder when the user subscribes to it and it is not `\Sent` or `\Drafts`.
    #[default]
    Subscribed,
    /// Any existing folder.
    Any,
}

impl std::str::FromStr for DetailDelivery {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "never" => Ok(DetailDelivery::Never),
            "subscribed" => Ok(DetailDelivery::Subscribed),
            "any" => Ok(DetailDelivery::Any),
            other => Err(format!(
                "detail_delivery `{other}`: expected never, subscribed or any"
            )),
        }
    }
}

/// How the driver treats clients and recipients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Deadlines.
    pub timeouts: Timeouts,
    /// Where `user+detail@` delivers.
    pub detail: DetailDelivery,
}

/// An LMTP server bound to a store.
pub struct LmtpServer {
    store: Store,
    config: Config,
    starttls: Option<TlsAcceptor>,
    ids: AtomicU64,
    options: Options,
    known: KnownAccounts,
}

/// How long an account found at RCPT is taken to exist without asking the store again.
const KNOWN_TTL: Duration = Duration::from_secs(60);
/// Accounts remembered at most; beyond, the memory starts afresh.
const KNOWN_MAX: usize = 4096;

/// Accounts recently found to exist. Checking a recipient is a database read, and right after
/// the previous delivery's commit that read must reload the pages the commit changed: for a
/// client delivering one message at a time it was a fifteenth of the server's CPU per message.
/// A stale entry costs nothing wrong: a delivery to an account deleted meanwhile fails at DATA
/// with the same 550 5.1.1 that RCPT would have given.
#[derive(Default)]
struct KnownAccounts(Mutex<HashMap<String, Instant>>);

impl KnownAccounts {
    fn contains(&self, name: &str) -> bool {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(name).is_some_and(|t| t.elapsed() < KNOWN_TTL)
    }

    fn insert(&self, name: &str) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= KNOWN_MAX {
            map.clear();
        }
        map.insert(name.to_owned(), Instant::now());
    }
}

impl std::fmt::Debug for LmtpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LmtpServer")
            .field("config", &self.config)
            .finish()
    }
}

impl LmtpServer {
    /// A server delivering into `store`; `starttls` enables STARTTLS.
    pub fn new(store: Store, config: Config, starttls: Option<TlsAcceptor>) -> Arc<LmtpServer> {
        LmtpServer::with_options(store, config, starttls, Options::default())
    }

    /// [`LmtpServer::new`] with other [`Options`].
    pub fn with_options(
        store: Store,
        mut config: Config,
        starttls: Option<TlsAcceptor>,
        options: Options,
    ) -> Arc<LmtpServer> {
        config.starttls_available = starttls.is_some();
        herald_metrics::register_commands(&crate::COMMANDS);
        Arc::new(LmtpServer {
            store,
            config,
            starttls,
            ids: AtomicU64::new(0),
            options,
            known: KnownAccounts::default(),
        })
    }

    /// Serves one connection to its end.
    pub async fn handle(self: Arc<Self>, mut conn: Conn) {
        let peer = conn.peer;
        if let Err(e) = self.session(&mut conn).await {
            tracing::debug!(%peer, error = %e, "LMTP session ended with an error");
        }
        let _ = conn.stream.shutdown().await;
    }

    fn context(&self, conn: &Conn) -> SessionContext {
        SessionContext::connection("lmtp", conn.peer, conn.local)
    }

    async fn session(&self, conn: &mut Conn) -> std::io::Result<()> {
        let mut session = Session::new(self.config.clone(), conn.stream.is_tls());
        conn.stream.write_all(&session.greeting()).await?;
        let ctx = self.context(conn);
        let mut buf = vec![0u8; 64 * 1024];
        let mut deadline = Instant::now() + self.options.timeouts.idle;
        loop {
            let n = tokio::select! {
                _ = conn.shutdown.cancelled() => {
                    conn.stream.write_all(b"421 4.3.2 server shutting down\r\n").await?;
                    return Ok(());
                }
                r = tokio::time::timeout_at(deadline, conn.stream.read(&mut buf)) => match r {
                    Ok(r) => r?,
                    Err(_) => {
                        conn.stream.write_all(b"421 4.4.2 timeout\r\n").await?;
                        return Ok(());
                    }
                },
            };
            if n == 0 {
                if session.in_data() {
                    tracing::info!(peer = %conn.peer, "client left during DATA; nothing delivered");
                }
                return Ok(());
            }
            let mut queue: VecDeque<Step> = session.input(&buf[..n]).into();
            if !queue.is_empty() {
                // A command (or a whole message) came in: the client gets a new allowance.
                let allowance = if session.in_data() {
                    self.options.timeouts.data
                } else {
                    self.options.timeouts.idle
                };
                deadline = Instant::now() + allowance;
            }
            let mut out = Vec::new();
            while let Some(step) = queue.pop_front() {
                match step {
                    Step::Reply(bytes) => out.extend_from_slice(&bytes),
                    Step::ResolveRecipient {
                        address,
                        user,
                        detail,
                        rcpt_line,
                        ..
                    } => {
                        let started = std::time::Instant::now();
                        let r = self.resolve(address, &user, detail, rcpt_line).await;
                        crate::COMMANDS.time(CommandKind::Rcpt as usize, started.elapsed());
                        queue.extend(session.recipient_result(r));
                    }
                    Step::Deliver(delivery) => {
                        let started = std::time::Instant::now();
                        let results = self.deliver(&ctx, conn, delivery).await;
                        crate::COMMANDS.time(CommandKind::Data as usize, started.elapsed());
                        queue.extend(session.delivery_result(results));
                    }
                    Step::StartTls => {
                        conn.stream.write_all(&out).await?;
                        conn.stream.flush().await?;
                        out.clear();
                        let Some(acceptor) = &self.starttls else {
                            return Ok(());
                        };
                        tokio::time::timeout(TLS_HANDSHAKE, conn.stream.upgrade(acceptor))
                            .await
                            .map_err(|_| std::io::Error::other("TLS handshake timed out"))??;
                    }
                    Step::Close => {
                        conn.stream.write_all(&out).await?;
                        conn.stream.flush().await?;
                        return Ok(());
                    }
                }
            }
            if !out.is_empty() {
                conn.stream.write_all(&out).await?;
                conn.stream.flush().await?;
            }
        }
    }

    async fn resolve(
        &self,
        address: String,
        user: &str,
        detail: Option<String>,
        rcpt_line: String,
    ) -> Result<Recipient, RecipientError> {
        // Mail local parts are matched as given, then lower-cased: `Alice@` reaches `alice`.
        let mut account = None;
        for candidate in [user.to_owned(), user.to_ascii_lowercase()] {
            if self.known.contains(&candidate) {
                account = Some(candidate);
                break;
            }
            match self.store.quota(&candidate).await {
                Ok(_) => {
                    self.known.insert(&candidate);
                    account = Some(candidate);
                    break;
                }
                Err(StoreError::NotFound { .. }) => continue,
                Err(e) => return Err(RecipientError::Temporary(e.to_string())),
            }
        }
        let account = account.ok_or(RecipientError::Unknown)?;
        let mut mailbox = "INBOX".to_owned();
        if let Some(detail) = detail
            && self.options.detail != DetailDelivery::Never
        {
            let ctx = SessionContext::user("lmtp", account.clone());
            if let Ok(info) = self.store.mailbox(&ctx, &detail).await
                && !info.noselect
                && self.detail_allowed(&ctx, &info).await
            {
                mailbox = info.name;
            }
        }
        Ok(Recipient {
            address,
            account,
            mailbox,
            rcpt_line,
        })
    }

    /// Whether `user+detail@` may deliver into `info` (see [`DetailDelivery`]).
    async fn detail_allowed(&self, ctx: &SessionContext, info: &MailboxInfo) -> bool {
        match self.options.detail {
            DetailDelivery::Never => false,
            DetailDelivery::Any => true,
            DetailDelivery::Subscribed => {
                !matches!(
                    info.special_use,
                    Some(SpecialUse::Sent | SpecialUse::Drafts)
                ) && self
                    .store
                    .subscriptions(ctx)
                    .await
                    .is_ok_and(|subscribed| subscribed.contains(&info.name))
            }
        }
    }

    async fn deliver(
        &self,
        ctx: &SessionContext,
        conn: &Conn,
        delivery: Delivery,
    ) -> Vec<Result<(), DeliveryError>> {
        let id = format!(
            "{:x}{:04x}",
            herald_store::now_ms(),
            self.ids.fetch_add(1, Ordering::Relaxed) & 0xffff
        );
        let date = chrono::Local::now().to_rfc2822();
        let mut content = trace_headers(
            &delivery,
            Some(conn.peer.ip()),
            &self.config.hostname,
            &id,
            &date,
        )
        .into_bytes();
        content.extend_from_slice(&delivery.message);
        let size = content.len() as u64;
        let recipients: Vec<herald_store::Recipient> = delivery
            .recipients
            .iter()
            .map(|r| herald_store::Recipient {
                user: r.account.clone(),
                mailbox: (r.mailbox != "INBOX").then(|| r.mailbox.clone()),
                envelope: delivery.envelope(r),
            })
            .collect();
        let results = match self.store.deliver_many(ctx, &recipients, content).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "delivery failed");
                return recipients
                    .iter()
                    .map(|_| Err(DeliveryError::Temporary("local delivery failed".into())))
                    .collect();
            }
        };
        results
            .into_iter()
            .zip(&delivery.recipients)
            .map(|(r, rcpt)| match r {
                Ok(_) => {
                    tracing::info!(user = %rcpt.account, mailbox = %rcpt.mailbox, size, "delivered");
                    Ok(())
                }
                Err(StoreError::OverQuota {
                    resource, limit, ..
                }) => {
                    let permanent = match resource {
                        QuotaResource::Storage => size.div_ceil(1024) > limit,
                        QuotaResource::Messages => limit == 0,
                    };
                    Err(DeliveryError::OverQuota { permanent })
                }
                Err(StoreError::NotFound { .. }) => Err(DeliveryError::Unknown),
                Err(e) => {
                    tracing::error!(user = %rcpt.account, error = %e, "delivery failed");
                    Err(DeliveryError::Temporary("local delivery failed".into()))
                }
            })
            .collect()
    }
}
