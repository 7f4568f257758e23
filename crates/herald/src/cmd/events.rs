//! `herald events check` (and, with the store, `tail`).

use super::check::{self, DovecotMode, Options};
use crate::cli::{CheckArgs, InputFormat};
use anyhow::Context as _;
use std::fs::File;
use std::io::{self, Read};
use std::process::ExitCode;

/// Worker threads for checking: the machine's cores, at most 8.
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get().min(8))
        .unwrap_or(2)
}

/// Runs `herald events check`: exit 0 all valid, 1 some invalid, 2 unreadable input.
pub fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let input: Box<dyn Read + Send> = match args.file.as_deref() {
        None => Box::new(io::stdin()),
        Some(p) if p.as_os_str() == "-" => Box::new(io::stdin()),
        Some(p) => Box::new(File::open(p).with_context(|| format!("cannot read {}", p.display()))?),
    };
    let opts = Options {
        dovecot: match args.format {
            InputFormat::Auto => DovecotMode::Auto,
            InputFormat::Rfc5423 => DovecotMode::Never,
            InputFormat::Dovecot => DovecotMode::Always,
        },
        dovecot_host: args.dovecot_host.clone(),
        max_line: args.max_line,
        workers: default_workers(),
    };
    let mut out = io::BufWriter::new(io::stdout().lock());
    let summary = match check::check_to(input, &opts, args.quiet, &mut out) {
        Ok(s) => s,
        // A closed pipe (`| head`) is the reader's choice, not a failure of the input.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(ExitCode::from(1)),
        Err(e) => return Err(anyhow::Error::new(e).context("reading events")),
    };
    Ok(if summary.invalid == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
