//! One module per top-level command; each returns the process exit code.

mod bench;
mod bench_dispatch;
mod bench_imap;
mod bench_imap_mix;
mod bench_lmtp;
mod bench_store;
pub mod check;
mod events;
mod expire;
mod import;
mod import_imap;
mod import_maildir;
mod import_mbox;
mod migrate;
mod quota;
mod serve;
mod subscriptions;
mod tail;
mod user;

use crate::cli::{BenchCommand, Cli, Command, EventsCommand, UserCommand};
use anyhow::Context as _;
use herald_store::Store;
use std::future::Future;
use std::process::ExitCode;

/// Whether a command may create a data directory that does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Create {
    /// `herald serve` and `herald user add`: the first steps of a new installation.
    Yes,
    /// Every other command: run in the wrong directory, it must say so rather than leave an
    /// empty `./herald-data` behind and report an empty store.
    No,
}

/// Runs a command that needs the store: one tokio runtime for the process, the store opened
/// from `--data`/`--config`, closed (queued commits finished) before returning.
fn with_store<F, Fut>(cli: &Cli, create: Create, f: F) -> anyhow::Result<ExitCode>
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = anyhow::Result<ExitCode>>,
{
    let file = crate::config::load(cli.config.as_deref())?;
    let config = crate::config::store_config(cli.data.as_deref(), &file)?;
    let path = config.path.clone();
    let place = store_place(&config);
    if create == Create::No && config.postgres.is_none() && !Store::exists(&path) {
        anyhow::bail!(
            "no Herald data directory at {}: pass --data DIR or --config FILE, or create one \
             with `herald user add` or `herald serve`",
            path.display()
        );
    }
    runtime()?.block_on(async move {
        let store = Store::open(config)
            .await
            .with_context(|| format!("cannot open the store {place}"))?;
        let result = f(store.clone()).await;
        store.close().await;
        result
    })
}

/// Where the store is, for messages: its data directory, or its database (never a password).
fn store_place(config: &herald_store::StoreConfig) -> String {
    match &config.postgres {
        None => format!("in {}", config.path.display()),
        Some(pg) => format!("in PostgreSQL at {}", pg.target()),
    }
}

/// `[server] hostname` (or the machine's name), for benchmarks that build their own stores.
fn server_fqdn(cli: &Cli) -> anyhow::Result<String> {
    let file = crate::config::load(cli.config.as_deref())?;
    Ok(crate::config::store_config(cli.data.as_deref(), &file)?.server_fqdn)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    start(&mut tokio::runtime::Builder::new_multi_thread())
}

/// Starts a runtime from `builder` with its I/O and time drivers.
fn start(builder: &mut tokio::runtime::Builder) -> anyhow::Result<tokio::runtime::Runtime> {
    builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The runtime of `herald serve`: tokio's, except that every worker looks for ready sockets
/// and for tasks woken outside the runtime (the store's writer answering a commit, a read
/// back from the blocking pool) before each task it runs, where tokio's defaults look every
/// 61 tasks and every few dozen. With a hundred busy sessions those defaults let a command
/// that just arrived, or a commit just answered, wait behind up to 61 runnable tasks; the
/// cheap reads that make up most of what clients send waited longest.
/// `herald bench imap --mix` (100 sessions, closed loop) measured p50 FETCH 1.9–2.0 →
/// 0.40–0.43 ms with STORE and EXPUNGE where they were, for 8 % fewer commands per second and
/// 0.006 ms more CPU per command (an `epoll_wait` per task); paced below saturation, and for
/// one client delivering or appending, the figures did not move (README, "Beside Dovecot").
fn server_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    start(
        tokio::runtime::Builder::new_multi_thread()
            .event_interval(1)
            .global_queue_interval(1),
    )
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve => {
            let file = crate::config::load(cli.config.as_deref())?;
            let with_config = cli.config.is_some();
            let config = crate::config::store_config(cli.data.as_deref(), &file)?;
            let place = store_place(&config);
            server_runtime()?.block_on(async move {
                let store = Store::open(config)
                    .await
                    .with_context(|| format!("cannot open the store {place}"))?;
                let result = serve::run(store.clone(), file, with_config).await;
                store.close().await;
                result
            })
        }
        Command::Events(EventsCommand::Check(args)) => events::check(&args),
        Command::Events(EventsCommand::Reference) => {
            print!("{}", herald_events::reference::markdown());
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Check(args)) => bench::check(&args),
        Command::Bench(BenchCommand::Dispatch(ref args)) => {
            runtime()?.block_on(bench_dispatch::run(&server_fqdn(&cli)?, args))
        }
        Command::Bench(BenchCommand::Imap(ref args)) => {
            runtime()?.block_on(bench_imap::run(&server_fqdn(&cli)?, args))
        }
        Command::Bench(BenchCommand::Lmtp(ref args)) => {
            runtime()?.block_on(bench_lmtp::run(&server_fqdn(&cli)?, args))
        }
        Command::Bench(BenchCommand::Store(ref args)) => {
            runtime()?.block_on(bench_store::run(&server_fqdn(&cli)?, args))
        }
        Command::Events(EventsCommand::Tail(ref args)) => with_store(
            &cli,
            Create::No,
            |s| async move { tail::run(&s, args).await },
        ),
        Command::User(ref cmd) => {
            let create = match cmd {
                UserCommand::Add { .. } => Create::Yes,
                _ => Create::No,
            };
            with_store(
                &cli,
                create,
                |s| async move { user::run(&s, cmd.clone()).await },
            )
        }
        Command::Quota(ref cmd) => with_store(&cli, Create::No, |s| async move {
            quota::run(&s, cmd.clone()).await
        }),
        Command::Subscriptions(ref args) => {
            let file = crate::config::load(cli.config.as_deref())?;
            let listen = file
                .http
                .as_ref()
                .map(|h| h.listen.clone())
                .unwrap_or_default();
            runtime()?.block_on(subscriptions::run(args, &listen))
        }
        Command::Import(ref cmd) => with_store(&cli, Create::No, |s| async move {
            import::run(&s, cmd.clone()).await
        }),
        Command::Expire(ref args) => with_store(&cli, Create::No, |s| async move {
            expire::run(&s, args.clone()).await
        }),
        Command::Migrate(ref args) => {
            let file = crate::config::load(cli.config.as_deref())?;
            let config = crate::config::store_config(cli.data.as_deref(), &file)?;
            anyhow::ensure!(
                config.postgres.is_none(),
                "herald migrate copies an embedded store; this configuration's store is \
                 already in PostgreSQL"
            );
            anyhow::ensure!(
                Store::exists(&config.path),
                "no Herald data directory at {}: pass --data DIR or --config FILE",
                config.path.display()
            );
            runtime()?.block_on(migrate::run(&config.path, args))
        }
    }
}
