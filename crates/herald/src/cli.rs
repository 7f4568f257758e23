//! Command-line grammar (DESIGN §3 is the contract for command and flag names).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Herald: a message store built around RFC 5423 events.
#[derive(Debug, Parser)]
#[command(name = "herald", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with event streams.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Measure Herald's speed on this machine.
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// `herald events …`
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Validate JSON-lines events against RFC 5423; exit 0 if all are valid, 1 if not, 2 if the
    /// input cannot be read.
    Check(CheckArgs),
    /// Print the events reference (Markdown) that the README embeds.
    Reference,
}

/// The shape of the events being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputFormat {
    /// Herald's RFC 5423 JSON, with lines in Dovecot's push-notification shape mapped first.
    Auto,
    /// RFC 5423 JSON only (the DESIGN §5 wire format; Cyrus writes this shape too).
    Rfc5423,
    /// Dovecot's push-notification Lua driver output.
    Dovecot,
}

/// Arguments of `herald events check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// File of JSON lines; `-` or nothing reads standard input.
    pub file: Option<PathBuf>,
    /// Input shape.
    #[arg(long, value_enum, default_value_t = InputFormat::Auto)]
    pub format: InputFormat,
    /// Host name to put in IMAP URLs built from Dovecot events (which carry none).
    #[arg(long, default_value = "localhost")]
    pub dovecot_host: String,
    /// Longest line accepted, in bytes; longer lines are reported invalid and skipped.
    #[arg(long, default_value_t = 64 << 20)]
    pub max_line: usize,
    /// Print only the summary line.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `herald bench …`
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Generate a JSON-lines file of realistic events and time `herald events check` on it.
    Check(BenchCheckArgs),
}

/// Arguments of `herald bench check`.
#[derive(Debug, Args)]
pub struct BenchCheckArgs {
    /// Size of the generated file in MiB.
    #[arg(long, default_value_t = 1024)]
    pub mib: u64,
    /// Directory for the generated file (deleted afterwards unless --keep).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the generated file.
    #[arg(long)]
    pub keep: bool,
}
