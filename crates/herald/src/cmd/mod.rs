//! One module per top-level command; each returns the process exit code.

mod bench;
pub mod check;
mod events;

use crate::cli::{BenchCommand, Cli, Command, EventsCommand};
use std::process::ExitCode;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Events(EventsCommand::Check(args)) => events::check(&args),
        Command::Events(EventsCommand::Reference) => {
            print!("{}", herald_events::reference::markdown());
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Check(args)) => bench::check(&args),
    }
}
