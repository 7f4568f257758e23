//! `herald serve`: opens the store, starts every listener, writes the event log, stops
//! gracefully on SIGINT/SIGTERM, and re-reads the `[tls]` certificate on SIGHUP.
//!
//! With no configuration file Herald runs on its embedded default (DESIGN §3): data in
//! `./herald-data`, IMAP on 127.0.0.1:1143, POP3 on 127.0.0.1:1110, LMTP on 127.0.0.1:2424,
//! HTTP (event streams, admin API) on 127.0.0.1:8080, every event appended to
//! `DATA/events.jsonl` and summarised on standard output. On the first start of an empty data
//! directory it creates the account `demo` with a random password and prints it once.
//!
//! Start-up binds every port before anything runs, so a port in use stops Herald before any
//! event is delivered; `/readyz` answers 200 only once every listener runs. A stop first marks
//! Herald not ready, then drains in order: listeners stop accepting and sessions end (each
//! recording its Logout), then delivery gets a few seconds to carry those last events to every
//! subscription and the event log, then it stops.
//!
//! Every TLS listener (IMAPS, POP3S, HTTPS, and STARTTLS/STLS on the plain ones) shares one
//! [`ServerTls`]: SIGHUP re-reads `[tls] cert` and `key`, new handshakes present the new
//! certificate, established connections keep theirs, and files that do not load leave the old
//! certificate in place (an error is logged and counted in `/metrics`).
//!
//! Signed message links name `[http] public_url`, or the first HTTPS (else HTTP) listener that
//! is not a wildcard address. With only wildcard listeners and no `public_url` no link is
//! signed: a subscription of the file that needs links stops start-up with an error naming
//! `public_url`, and the API refuses to create one.
//!
//! Retention (`[events] retain_days`, `retain_events`) runs as a background task beside
//! delivery; the event log holds back what it has not yet made durable, so the outbox never
//! loses an event the log still has to write.

use crate::config::{FileConfig, ListenSection};
use anyhow::{Context as _, bail};
use herald_net::{AuthLimiter, CancellationToken, ListenerConfig, ServerTls, TlsAcceptor};
use herald_store::{SessionContext, Store};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Prints a line on standard output, ignoring a closed or broken stdout: the server must
/// keep serving when whoever started it stops reading (a supervisor, a pipe to `head`).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Default listeners (DESIGN §3).
pub const DEFAULT_IMAP: &str = "127.0.0.1:1143";
/// Default POP3 listener.
pub const DEFAULT_POP3: &str = "127.0.0.1:1110";
/// Default LMTP listener.
pub const DEFAULT_LMTP: &str = "127.0.0.1:2424";
/// Default HTTP listener (event streams, admin API).
pub const DEFAULT_HTTP: &str = herald_http::DEFAULT_LISTEN;
/// Largest message accepted by default (LMTP SIZE).
pub const DEFAULT_MAX_MESSAGE: u64 = 50 << 20;
/// How long sessions get to finish after a stop signal.
const DRAIN: Duration = Duration::from_secs(10);
/// After the sessions, how long delivery may take to catch up before Herald stops.
const SETTLE: Duration = Duration::from_secs(5);

fn default_listen(addr: &str) -> ListenSection {
    ListenSection {
        listen: addr.parse().ok().into_iter().collect(),
        ..ListenSection::default()
    }
}

fn random_password() -> anyhow::Result<String> {
    use ring::rand::SecureRandom as _;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the system random number generator failed"))?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}

async fn bind(protocol: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for {protocol}"))
}

/// Everything `serve` starts, for one protocol.
struct Listeners {
    plain: Vec<TcpListener>,
    tls: Vec<TcpListener>,
}

async fn bind_all(protocol: &'static str, section: &ListenSection) -> anyhow::Result<Listeners> {
    let mut l = Listeners {
        plain: Vec::new(),
        tls: Vec::new(),
    };
    for addr in &section.listen {
        l.plain.push(bind(protocol, *addr).await?);
    }
    for addr in &section.tls_listen {
        l.tls.push(bind(protocol, *addr).await?);
    }
    Ok(l)
}

fn announce(protocol: &str, listeners: &Listeners) {
    for l in &listeners.plain {
        if let Ok(a) = l.local_addr() {
            say!("listening: {protocol} {a}");
        }
    }
    for l in &listeners.tls {
        if let Ok(a) = l.local_addr() {
            say!("listening: {protocol}s {a} (TLS)");
        }
    }
}

/// Plaintext passwords are allowed by default only when every listener is on loopback.
fn plaintext_default(section: &ListenSection) -> bool {
    section
        .plaintext_auth
        .unwrap_or_else(|| section.listen.iter().all(|a| a.ip().is_loopback()))
}

fn spawn_listeners<F, Fut>(
    tasks: &mut JoinSet<()>,
    protocol: &'static str,
    listeners: Listeners,
    section: &ListenSection,
    tls: Option<&TlsAcceptor>,
    shutdown: &CancellationToken,
    handle: F,
) where
    F: Fn(herald_net::Conn) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let max = section.max_connections.unwrap_or(1000);
    let (per_client_default, refusal): (Option<usize>, &'static [u8]) = match protocol {
        "imap" => (
            Some(100),
            b"* BYE [UNAVAILABLE] too many connections from your address\r\n",
        ),
        "pop3" => (
            Some(100),
            b"-ERR [SYS/TEMP] too many connections from your address\r\n",
        ),
        _ => (
            None,
            b"421 4.7.0 too many connections from your address\r\n",
        ),
    };
    for (listener, implicit_tls) in listeners
        .plain
        .into_iter()
        .map(|l| (l, None))
        .chain(listeners.tls.into_iter().map(|l| (l, tls.cloned())))
    {
        let config = ListenerConfig {
            protocol,
            max_connections: max,
            implicit_tls,
            max_per_client: section.max_connections_per_ip.or(per_client_default),
            refusal,
        };
        tasks.spawn(herald_net::serve(
            listener,
            config,
            shutdown.clone(),
            handle.clone(),
        ));
    }
}

/// Waits, at most `limit`, until every active subscription has caught up with the outbox as it
/// is now. A subscription whose receiver is down stays behind: its events wait in the outbox
/// for the next start.
async fn settle(store: &Store, dispatcher: &herald_notify::dispatch::Dispatcher, limit: Duration) {
    let Ok(head) = store.last_event_id().await else {
        return;
    };
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let behind: Vec<String> = match dispatcher.list().await {
            Ok(subs) => subs
                .into_iter()
                .filter(|s| s.state == "active" && s.cursor < head)
                .map(|s| s.name)
                .collect(),
            Err(_) => return,
        };
        if behind.is_empty() {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                ?behind,
                "stopping with subscriptions behind; they resume from their cursors on the next start"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn first_run(store: &Store, with_config: bool) -> anyhow::Result<()> {
    if with_config || !store.list_users().await?.is_empty() {
        return Ok(());
    }
    let password = random_password()?;
    store
        .add_user(&SessionContext::admin_cli(), "demo", &password, false)
        .await
        .context("cannot create the demo account")?;
    say!(
        "created account: demo  password: {password}  (shown once; change it with `herald user passwd demo`)"
    );
    Ok(())
}

/// Re-reads the certificate (if `[tls]` is configured) on every SIGHUP until `shutdown`.
async fn reload_on_hangup(
    mut hangup: tokio::signal::unix::Signal,
    tls: Option<ServerTls>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            got = hangup.recv() => if got.is_none() { return },
        }
        let Some(tls) = &tls else {
            tracing::info!("SIGHUP: no [tls] configured, nothing to reload");
            continue;
        };
        // Reading two small files; off the runtime's threads all the same, as it is disk I/O.
        let t = tls.clone();
        let result = match tokio::task::spawn_blocking(move || t.reload()).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        herald_metrics::global().tls_reload(result.is_ok());
        match result {
            Ok(()) => tracing::info!(
                cert = %tls.cert_path().display(),
                "SIGHUP: TLS certificate reloaded; new connections use it"
            ),
            Err(e) => tracing::error!(
                "SIGHUP: TLS certificate not reloaded, the previous one stays in use: {e}"
            ),
        }
    }
}

async fn stop_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// Runs `herald serve` until a stop signal.
pub async fn run(store: Store, file: FileConfig, with_config: bool) -> anyhow::Result<ExitCode> {
    // Webhooks (reqwest, rustls-no-provider) and TLS listeners use ring (STACK §1).
    herald_notify::sink::webhook::ensure_crypto_provider();
    // Watched from the start: SIGHUP's default action would end the process, which is not
    // what an operator's `systemctl reload` (or a certificate renewal hook) means.
    let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot watch SIGHUP")?;
    let http = file
        .http
        .clone()
        .unwrap_or_else(|| herald_http::HttpConfig {
            listen: DEFAULT_HTTP.parse().ok().into_iter().collect(),
            ..herald_http::HttpConfig::default()
        });
    let server_tls = match &file.tls {
        Some(t) => Some(ServerTls::load(&t.cert, &t.key)?),
        None => None,
    };
    let tls = server_tls.as_ref().map(ServerTls::acceptor);
    let imap = file.imap.unwrap_or_else(|| default_listen(DEFAULT_IMAP));
    let pop3 = file.pop3.unwrap_or_else(|| default_listen(DEFAULT_POP3));
    let lmtp = file.lmtp.unwrap_or_else(|| default_listen(DEFAULT_LMTP));
    for (name, s) in [("imap", &imap), ("pop3", &pop3), ("lmtp", &lmtp)] {
        if !s.tls_listen.is_empty() && tls.is_none() {
            bail!("[{name}] tls_listen needs a [tls] cert and key");
        }
    }
    if !http.tls_listen.is_empty() && tls.is_none() {
        bail!("[http] tls_listen needs a [tls] cert and key");
    }
    let retention = file.events.retention()?;
    let detail: herald_lmtp::DetailDelivery = match &lmtp.detail_delivery {
        Some(d) => d.parse().map_err(|e| anyhow::anyhow!("[lmtp] {e}"))?,
        None => herald_lmtp::DetailDelivery::default(),
    };

    // Every port is bound before anything starts, so a port in use stops Herald before event
    // delivery has begun.
    let imap_listeners = bind_all("imap", &imap).await?;
    let pop3_listeners = bind_all("pop3", &pop3).await?;
    let lmtp_listeners = bind_all("lmtp", &lmtp).await?;
    let mut http_listeners = Vec::new();
    for addr in &http.listen {
        http_listeners.push(bind("http", *addr).await?);
    }
    let mut https_listeners = Vec::new();
    for addr in &http.tls_listen {
        https_listeners.push(bind("https", *addr).await?);
    }
    // Two stages of shutdown: `shutdown` stops the listeners and their sessions; `delivery`
    // stops the dispatcher and the event log only after the sessions have ended, so the
    // events of their endings (Logout with disconnect=shutdown) still reach every sink.
    let shutdown = CancellationToken::new();
    let delivery = CancellationToken::new();
    // Links to messages a content policy leaves out point at this server's /messages, at an
    // address a subscriber can reach (the bound ones: port 0 has become a port by now).
    let bound = |ls: &[TcpListener]| -> Vec<SocketAddr> {
        ls.iter().filter_map(|l| l.local_addr().ok()).collect()
    };
    let link_base = http.link_base(&bound(&http_listeners), &bound(&https_listeners))?;
    let link_refusal = link_base.refusal();
    if let (herald_http::LinkBase::Unreachable(_), Some(why)) = (&link_base, &link_refusal) {
        let needing: Vec<&str> = file
            .subscription
            .iter()
            .filter(|s| herald_http::config::wants_links(s))
            .map(|s| s.name.as_str())
            .collect();
        if !needing.is_empty() {
            bail!(
                "{why}; subscription {} needs them (its content policy leaves messages out \
                 with a link)",
                needing.join(", ")
            );
        }
        tracing::warn!("{why}");
    }
    let public_url = match &link_base {
        herald_http::LinkBase::Url(url) => Some(url.clone()),
        _ => None,
    };
    if let Some(url) = &public_url {
        tracing::info!("message links name {url}");
    }
    let content_links = match public_url {
        Some(base) => Some(
            herald_notify::content_ref::ContentSigner::load_or_create(
                &store.config().path,
                &base,
                Duration::from_secs(http.link_ttl_secs.unwrap_or(7 * 86_400)),
            )
            .context("cannot load the message-link key")?,
        ),
        None => None,
    };
    let dispatcher = herald_notify::dispatch::Dispatcher::start_with(
        store.clone(),
        file.subscription.clone(),
        delivery.clone(),
        herald_notify::dispatch::Options {
            content_links: content_links.clone(),
            sinks: herald_notify::dispatch::store_sinks(store.clone()),
            body_structure: Some(Arc::new(body_structure)),
            lease: store.config().node.as_ref().map(|node| {
                herald_notify::dispatch::LeaseOptions {
                    // Unique per process even when two nodes share a configured name: two
                    // holders of one name would both deliver.
                    node: format!("{node}#{}", std::process::id()),
                    ttl: Duration::from_secs(
                        file.server
                            .lease_secs
                            .unwrap_or(crate::config::DEFAULT_LEASE_SECS),
                    ),
                }
            }),
        },
    )
    .await
    .context("cannot start event delivery")?;
    for s in dispatcher.list().await? {
        say!(
            "subscription: {} ({}, cursor {})",
            s.name,
            s.state,
            s.cursor
        );
    }

    first_run(&store, with_config).await?;

    let hostname = store.config().server_fqdn.clone();
    let limiter = Arc::new(AuthLimiter::default());
    let log_enabled = file.events.log.unwrap_or(true);
    // Taken before retention starts: until the log has read its own cursor, nothing goes.
    let log_hold = log_enabled.then(|| store.retention_hold(0));
    let http_state = herald_http::HttpState::new(
        store.clone(),
        Some(Arc::clone(&dispatcher)),
        &http,
        Arc::clone(&limiter),
    )?;
    let http_state = match (content_links, &link_refusal) {
        (Some(signer), _) => http_state.with_content_links(signer),
        (None, Some(why)) => http_state.with_link_refusal(why),
        (None, None) => http_state,
    };
    let http_state = match &log_hold {
        Some(hold) => http_state.with_event_log(hold.clone()),
        None => http_state,
    };
    let readiness = http_state.readiness();
    let mut tasks = JoinSet::new();

    let imap_server = herald_imap::ImapServer::new(
        store.clone(),
        herald_imap::ImapConfig {
            max_literal: imap.max_message_size.unwrap_or(DEFAULT_MAX_MESSAGE),
            commands_per_second: imap
                .commands_per_second
                .unwrap_or(herald_imap::DEFAULT_COMMANDS_PER_SECOND),
            summaries: herald_imap::Summaries::new(
                imap.summary_cache_mb
                    .map_or(herald_imap::DEFAULT_SUMMARY_BYTES, |mb| {
                        mb.saturating_mul(1 << 20)
                    }),
            ),
            login_disabled_without_tls: !plaintext_default(&imap),
            auth_limiter: Arc::clone(&limiter),
            ..herald_imap::ImapConfig::new(hostname.clone())
        },
        tls.clone(),
    );
    announce("imap", &imap_listeners);
    spawn_listeners(
        &mut tasks,
        "imap",
        imap_listeners,
        &imap,
        tls.as_ref(),
        &shutdown,
        move |c| imap_server.clone().handle(c),
    );

    let pop3_server = herald_pop3::Pop3Server::new(
        store.clone(),
        herald_pop3::Config {
            hostname: hostname.clone(),
            stls_available: false,
            plaintext_auth: plaintext_default(&pop3),
        },
        tls.clone(),
        Arc::clone(&limiter),
    );
    announce("pop3", &pop3_listeners);
    spawn_listeners(
        &mut tasks,
        "pop3",
        pop3_listeners,
        &pop3,
        tls.as_ref(),
        &shutdown,
        move |c| pop3_server.clone().handle(c),
    );

    let lmtp_server = herald_lmtp::LmtpServer::with_options(
        store.clone(),
        herald_lmtp::Config {
            hostname: hostname.clone(),
            max_message_size: lmtp.max_message_size.unwrap_or(DEFAULT_MAX_MESSAGE),
            starttls_available: false,
        },
        tls.clone(),
        herald_lmtp::Options {
            detail,
            ..herald_lmtp::Options::default()
        },
    );
    announce("lmtp", &lmtp_listeners);
    spawn_listeners(
        &mut tasks,
        "lmtp",
        lmtp_listeners,
        &lmtp,
        tls.as_ref(),
        &shutdown,
        move |c| lmtp_server.clone().handle(c),
    );

    for listener in http_listeners {
        if let Ok(a) = listener.local_addr() {
            say!("listening: http {a}");
        }
        let (state, shutdown) = (http_state.clone(), shutdown.clone());
        tasks.spawn(async move {
            if let Err(e) = herald_http::serve(listener, state, shutdown).await {
                tracing::error!("http: {e}");
            }
        });
    }
    if let Some(tls) = &tls {
        for listener in https_listeners {
            if let Ok(a) = listener.local_addr() {
                say!("listening: https {a} (TLS)");
            }
            let (state, shutdown, tls) = (http_state.clone(), shutdown.clone(), tls.clone());
            tasks.spawn(async move {
                if let Err(e) = herald_http::serve_tls(listener, state, tls, shutdown).await {
                    tracing::error!("https: {e}");
                }
            });
        }
    }
    tasks.spawn(reload_on_hangup(hangup, server_tls, shutdown.clone()));

    let mut log_task = if log_enabled {
        let path = store.config().path.join("events.jsonl");
        say!("event log: {}", path.display());
        Some(tokio::spawn(herald_notify::log::run(
            store.clone(),
            path,
            herald_notify::log::LogOptions {
                console: !with_config,
                max_bytes: retention.log_max_bytes,
                keep: retention.log_keep,
                hold: log_hold,
            },
            delivery.clone(),
        )))
    } else {
        None
    };
    let retention_task = tokio::spawn(herald_notify::retention::run(
        store.clone(),
        retention.policy,
        retention.interval,
        delivery.clone(),
    ));
    readiness.set(true);
    tracing::info!(hostname = %hostname, data = %store.config().path.display(), "Herald is serving");

    let mut code = ExitCode::SUCCESS;
    let log_ended = async {
        match log_task.as_mut() {
            Some(task) => task.await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = stop_signal() => tracing::info!("stopping: finishing sessions"),
        ended = log_ended => {
            // The event log is the operator's record: without it Herald stops rather than
            // serve on silently. Events stay in the outbox and the log resumes on restart.
            match ended {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!("event log stopped: {e}"),
                Err(e) => tracing::error!("event log task failed: {e}"),
            }
            log_task = None;
            code = ExitCode::FAILURE;
        }
    }
    // Not ready from here on: a load balancer stops sending new clients while sessions end.
    readiness.set(false);
    shutdown.cancel();
    if tokio::time::timeout(DRAIN, async { while tasks.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        tracing::warn!("sessions did not finish within {DRAIN:?}; stopping anyway");
        tasks.abort_all();
    }
    // Sessions are over; what they committed last is delivered before delivery stops (the
    // event log drains to the outbox head by itself once told to stop).
    settle(&store, &dispatcher, SETTLE).await;
    delivery.cancel();
    dispatcher.stopped(Duration::from_secs(5)).await;
    let _ = retention_task.await;
    if let Some(task) = log_task {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("event log: {e}"),
            Err(e) => tracing::error!("event log task failed: {e}"),
        }
    }
    Ok(code)
}

/// A message's BODYSTRUCTURE as IMAP FETCH shows it, for the `bodyStructure` event parameter
/// (the IMAP crate's MIME code, so an event and a FETCH never disagree).
fn body_structure(raw: &[u8]) -> Option<String> {
    let message = herald_imap::mime::parse(raw)?;
    let text = herald_imap::mime::body_structure(&message, true);
    Some(String::from_utf8_lossy(&text).into_owned())
}
