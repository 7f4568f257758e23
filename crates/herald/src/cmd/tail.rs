//! `herald events tail [--follow] [--from ID]`: prints the outbox as JSON lines, each exactly
//! the JSON that was committed (DESIGN §5), in id order.
//!
//! With `--follow` it waits for new commits: at once for this process's own, and through the
//! store's short cross-process poll for the server's (the usual case: the CLI watching a
//! running server).
//!
//! Retention removes the oldest events (`[events] retain_days`, `retain_events`), so the
//! outbox holds `oldest ..= head`. Without `--from` the tail starts at the oldest kept; a
//! `--from` naming an id already removed is an error that says which id is the oldest kept,
//! rather than a silent jump, and so is a `--follow` that retention overtakes.

use crate::cli::TailArgs;
use anyhow::bail;
use herald_store::Store;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

/// Rows read per query.
const PAGE: usize = 1000;

/// Runs `herald events tail`.
pub async fn run(store: &Store, args: &TailArgs) -> anyhow::Result<ExitCode> {
    if args.parked {
        return parked(store).await;
    }
    let bounds = store.outbox_bounds().await?;
    let mut after = match args.from {
        Some(from) if bounds.pruned(from) => bail!(pruned_message(from, bounds.oldest)),
        Some(from) => from.saturating_sub(1),
        None => 0,
    };
    let stdout = std::io::stdout();
    loop {
        let rows = store.events_after(after, PAGE).await?;
        // Ids are dense: a hole after what was printed means retention removed it meanwhile.
        if let Some(first) = rows.first()
            && after > 0
            && first.id > after + 1
        {
            bail!(pruned_message(after + 1, Some(first.id)));
        }
        if rows.is_empty() {
            if !args.follow {
                return Ok(ExitCode::SUCCESS);
            }
            store
                .wait_for_events(after, Duration::from_secs(60))
                .await?;
            continue;
        }
        let mut out = stdout.lock();
        for row in &rows {
            if let Err(e) = writeln!(out, "{}", row.json) {
                return quiet_on_broken_pipe(e);
            }
            after = row.id;
        }
        if let Err(e) = out.flush() {
            return quiet_on_broken_pipe(e);
        }
    }
}

/// What to say when event `id` is no longer in the outbox.
fn pruned_message(id: u64, oldest: Option<u64>) -> String {
    match oldest {
        Some(oldest) => format!(
            "event {id} has been pruned from the outbox by retention ([events] retain_days, \
             retain_events); the oldest event kept is {oldest}: use --from {oldest}"
        ),
        None => format!("event {id} has been pruned from the outbox by retention"),
    }
}

/// Prints every subscription's parked events, oldest first per subscription.
async fn parked(store: &Store) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    for delivery in store.deliveries().await? {
        let parked = store.parked_events(&delivery.name).await?;
        let rows = store
            .events_by_id(parked.iter().map(|p| p.event_id).collect())
            .await?;
        let mut out = stdout.lock();
        for p in &parked {
            let Some(row) = rows.iter().find(|r| r.id == p.event_id) else {
                continue;
            };
            let mut event = herald_events::Event::from_json(&row.json)?;
            let parked_at = herald_events::Timestamp::from_unix_millis(p.parked_ms, 0)
                .map(|t| t.to_string())
                .unwrap_or_default();
            event.set_extension(
                "vnd.herald.parked",
                serde_json::json!({
                    "subscription": delivery.name,
                    "reason": p.reason,
                    "parkedAt": parked_at,
                }),
            );
            if let Err(e) = writeln!(out, "{}", event.to_json()) {
                return quiet_on_broken_pipe(e);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `herald events tail | head` is normal use: a closed pipe ends the command successfully.
fn quiet_on_broken_pipe(e: std::io::Error) -> anyhow::Result<ExitCode> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(e.into())
    }
}
