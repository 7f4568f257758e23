//! `herald expire`: applies every mailbox's max-age policy now (MessageExpire per mailbox,
//! QuotaWithin where usage falls under a limit), and `herald expire policy USER MAILBOX
//! --days N|--off` to set one. A policy is a property of one mailbox: messages whose
//! INTERNALDATE is older than N days are removed when expiry runs.

use crate::cli::{ExpireArgs, ExpireCommand};
use herald_store::{SessionContext, Store};
use std::process::ExitCode;
use std::time::Duration;

/// Runs `herald expire`.
pub async fn run(store: &Store, args: ExpireArgs) -> anyhow::Result<ExitCode> {
    let ctx = SessionContext::admin_cli();
    match args.policy {
        Some(ExpireCommand::Policy {
            user,
            mailbox,
            days,
            off,
        }) => {
            let age = if off {
                None
            } else {
                days.map(|d| Duration::from_secs(d.saturating_mul(86_400)))
            };
            let m = store.set_max_age(&ctx, &user, &mailbox, age).await?.value;
            match age {
                Some(_) => println!(
                    "{user}/{}: messages older than {} days expire",
                    m.name,
                    days.unwrap_or(0)
                ),
                None => println!("{user}/{}: no expiry policy", m.name),
            }
        }
        None => {
            let c = store
                .expire(&ctx, args.user.as_deref(), herald_store::now_ms())
                .await?;
            let messages: usize = c.value.iter().map(|e| e.uids.len()).sum();
            for e in &c.value {
                println!(
                    "{}/{}: expired {} messages",
                    e.user,
                    e.mailbox,
                    e.uids.len()
                );
            }
            println!(
                "expired {messages} messages in {} mailboxes ({} events)",
                c.value.len(),
                c.events.len()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
