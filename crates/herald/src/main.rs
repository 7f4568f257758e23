//! The `herald` binary: command line, configuration and wiring. Library crates hold the logic;
//! this crate parses arguments, sets up logging, and maps errors to exit codes.

mod cli;
mod cmd;
mod config;

use clap::Parser;
use std::io::IsTerminal as _;
use std::process::ExitCode;

/// mimalloc instead of the C library's allocator: its per-thread heaps fit a server whose
/// sessions move between runtime workers and whose store hands buffers between threads.
/// Under `herald bench imap --mix` the C library's `malloc`/`free` (and the consolidation of
/// its fast bins whenever a buffer of a kilobyte or more was asked for) took about a tenth of
/// the workers' and the writer's samples; with mimalloc the server carried 19–24 % more
/// commands per second at 16–19 % less CPU per command, without moving one-connection
/// delivery, `bench store` or the memory per IDLE connection (ARCHITECTURE, "Decisions").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // The data directory holds password hashes, all mail and the event log: whatever Herald
    // creates (database, blobs, logs, sink files) is readable by its own user only.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let cli = cli::Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HERALD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr);
    let format = cli
        .log_format
        .or_else(|| config::log_format(cli.config.as_deref()))
        .unwrap_or_default();
    match format {
        // Colours only for a person at a terminal: a log file or journal gets plain lines that
        // tools such as fail2ban can match (`authentication failed rip=…`).
        cli::LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        cli::LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
    match cmd::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("herald: {e:#}");
            ExitCode::from(2)
        }
    }
}
