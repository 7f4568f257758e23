//! `herald quota set`: changes an account's limits; the store emits QuotaChange (service
//! `admincli`) when a limit actually changed.

use crate::cli::QuotaCommand;
use anyhow::bail;
use herald_store::{SessionContext, Store};
use std::process::ExitCode;

/// Runs one `herald quota` command.
pub async fn run(store: &Store, cmd: QuotaCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        QuotaCommand::Set {
            name,
            storage_kb,
            messages,
        } => {
            if storage_kb.is_none() && messages.is_none() {
                bail!("give --storage-kb and/or --messages");
            }
            let c = store
                .set_quota(&SessionContext::admin_cli(), &name, storage_kb, messages)
                .await?;
            let q = c.value;
            let show = |v: Option<u64>| v.map_or_else(|| "unlimited".to_owned(), |v| v.to_string());
            println!(
                "{name}: storage {} KB (used {}), messages {} (used {}){}",
                show(q.storage_kb),
                q.used_kb(),
                show(q.max_messages),
                q.used_messages,
                if c.events.is_empty() {
                    ", unchanged"
                } else {
                    ""
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
