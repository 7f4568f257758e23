//! `herald user add|list|del`: account administration on the data directory (service
//! `admincli`). Safe while the server runs: the store serialises writers across processes.

use crate::cli::UserCommand;
use herald_store::{SessionContext, Store};
use std::process::ExitCode;

/// Runs one `herald user` command.
pub async fn run(store: &Store, cmd: UserCommand) -> anyhow::Result<ExitCode> {
    let ctx = SessionContext::admin_cli();
    match cmd {
        UserCommand::Add {
            name,
            password,
            admin,
        } => {
            store.add_user(&ctx, &name, &password, admin).await?;
            println!(
                "added {}{name}",
                if admin { "administrator " } else { "user " }
            );
        }
        UserCommand::Passwd { name, password } => {
            store.set_password(&ctx, &name, &password).await?;
            println!("changed the password of {name}");
        }
        UserCommand::List => {
            println!("user\tadmin\tstorage_kb\tmax_messages\tused_kb\tmessages");
            for u in store.list_users().await? {
                let limit = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    u.name,
                    if u.admin { "yes" } else { "no" },
                    limit(u.quota.storage_kb),
                    limit(u.quota.max_messages),
                    u.quota.used_kb(),
                    u.quota.used_messages
                );
            }
        }
        UserCommand::Del { name } => {
            let c = store.delete_user(&ctx, &name).await?;
            println!("deleted user {name} ({} mailbox events)", c.events.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}
