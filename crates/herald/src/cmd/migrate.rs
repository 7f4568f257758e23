//! `herald migrate --to postgres://…`: copies the embedded store into PostgreSQL
//! (`herald_store::postgres::migrate_embedded` says what is kept and how), with a progress bar
//! at a terminal and a line a second otherwise.

use crate::cli::MigrateArgs;
use herald_store::postgres::{MigrateProgress, PgConfig, migrate_embedded};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal as _;
use std::path::Path;
use std::process::ExitCode;

/// Runs `herald migrate`.
pub async fn run(data: &Path, args: &MigrateArgs) -> anyhow::Result<ExitCode> {
    let mut target = PgConfig::new(args.to.clone());
    target.schema = args.schema.clone();
    target.pool_size = 2;
    let where_to = match &target.schema {
        Some(s) => format!("{} (schema {s})", target.target()),
        None => target.target(),
    };
    eprintln!(
        "herald: copying {} into PostgreSQL at {where_to}",
        data.display()
    );
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(0);
        if let Ok(style) =
            ProgressStyle::with_template("{msg:20!} [{bar:30}] {pos}/{len} rows, {eta} left")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        Some(bar)
    } else {
        None
    };
    let shown = bar.clone();
    let mut said = std::time::Instant::now();
    let mut ended = false;
    let report = migrate_embedded(data, &target, move |p: MigrateProgress<'_>| match &shown {
        Some(bar) => {
            bar.set_length(p.total);
            bar.set_position(p.done);
            bar.set_message(p.table.to_owned());
        }
        None if said.elapsed().as_secs() >= 1 || (p.done == p.total && !ended) => {
            ended = p.done == p.total;
            said = std::time::Instant::now();
            eprintln!("herald: {}/{} rows copied ({})", p.done, p.total, p.table);
        }
        None => {}
    })
    .await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    for (table, rows) in &report.tables {
        println!("{table}: {rows} rows");
    }
    println!(
        "copied; message files moved into the database: {}; last event id: {}",
        report.files, report.last_event_id
    );
    println!(
        "to run on it, set in [store]: backend = \"postgres\", url = \"…\"{}",
        target
            .schema
            .as_deref()
            .map(|s| format!(", schema = \"{s}\""))
            .unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}
