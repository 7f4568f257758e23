//! `herald user add|passwd|list|disable|enable|del`: account administration on the data directory (service
//! `admincli`). Safe while the server runs: the store serialises writers across processes.
//!
//! Passwords come from a file, standard input or a prompt that does not echo, so they need not
//! appear on the command line where `ps` and shell history would show them; `--password`
//! remains for scripts that already use it.

use crate::cli::{PasswordArgs, UserCommand};
use anyhow::{Context as _, bail};
use herald_store::{SessionContext, Store};
use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

/// A new password as the command line gave it.
enum Given {
    Clear(String),
    Hash(String),
}

/// Runs one `herald user` command.
pub async fn run(store: &Store, cmd: UserCommand) -> anyhow::Result<ExitCode> {
    let ctx = SessionContext::admin_cli();
    match cmd {
        UserCommand::Add {
            name,
            password,
            admin,
        } => {
            match read_password(&password)? {
                Given::Clear(p) => store.add_user(&ctx, &name, &p, admin).await?,
                Given::Hash(h) => store.add_user_hashed(&ctx, &name, &h, admin).await?,
            };
            println!(
                "added {}{name}",
                if admin { "administrator " } else { "user " }
            );
        }
        UserCommand::Passwd { name, password } => {
            match read_password(&password)? {
                Given::Clear(p) => store.set_password(&ctx, &name, &p).await?,
                Given::Hash(h) => store.set_password_hashed(&ctx, &name, &h).await?,
            };
            println!("changed the password of {name}");
        }
        UserCommand::List => {
            println!("user\tadmin\tstorage_kb\tmax_messages\tused_kb\tmessages\tstate");
            for u in store.list_users().await? {
                let limit = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
                let state = match (&u.disabled, &u.disabled_reason) {
                    (None, _) => "enabled".to_owned(),
                    (Some(_), None) => "disabled".to_owned(),
                    (Some(_), Some(why)) => format!("disabled ({why})"),
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{state}",
                    u.name,
                    if u.admin { "yes" } else { "no" },
                    limit(u.quota.storage_kb),
                    limit(u.quota.max_messages),
                    u.quota.used_kb(),
                    u.quota.used_messages
                );
            }
        }
        UserCommand::Disable { name, reason } => {
            let c = store
                .set_disabled(&ctx, &name, true, reason.as_deref())
                .await?;
            if c.events.is_empty() {
                println!("{name} was already disabled");
            } else {
                println!("disabled {name}");
            }
        }
        UserCommand::Enable { name } => {
            let c = store.set_disabled(&ctx, &name, false, None).await?;
            if c.events.is_empty() {
                println!("{name} was not disabled");
            } else {
                println!("enabled {name}");
            }
        }
        UserCommand::Del { name } => {
            let c = store.delete_user(&ctx, &name).await?;
            println!("deleted user {name} ({} mailbox events)", c.events.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The password from `--password`, `--password-file` (`-`: standard input), `--password-hash`,
/// or else asked for twice at the terminal. Empty passwords are refused here with a message
/// that says where the empty one came from.
fn read_password(args: &PasswordArgs) -> anyhow::Result<Given> {
    if let Some(hash) = &args.password_hash {
        return Ok(Given::Hash(hash.trim().to_owned()));
    }
    let (password, source) = if let Some(p) = &args.password {
        (p.clone(), "--password".to_owned())
    } else if let Some(path) = &args.password_file {
        let source = if path.as_os_str() == "-" {
            "standard input".to_owned()
        } else {
            path.display().to_string()
        };
        (read_secret(path)?, source)
    } else {
        (prompt_twice()?, "the prompt".into())
    };
    if password.is_empty() {
        bail!("the password from {source} is empty; an account needs a password");
    }
    Ok(Given::Clear(password))
}

/// The first line of a file holding a password or token (`-`: standard input), without its
/// line ending: what every `--password-file`, `--token-file` of the CLI reads.
pub(super) fn read_secret(path: &std::path::Path) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        return first_line(std::io::stdin().lock());
    }
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    first_line(std::io::BufReader::new(file))
}

/// The first line without its line ending (a file written by `echo` ends in one).
fn first_line(mut input: impl std::io::BufRead) -> anyhow::Result<String> {
    let mut line = String::new();
    input
        .read_line(&mut line)
        .context("cannot read the password")?;
    let end = line.trim_end_matches(['\r', '\n']).len();
    line.truncate(end);
    Ok(line)
}

/// Asks for the password twice on the terminal without echoing it.
fn prompt_twice() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "no password given: use --password-file FILE (or `-` for standard input), \
             --password-hash, or run at a terminal to be asked"
        );
    }
    let first = prompt("Password: ")?;
    let second = prompt("Again: ")?;
    if first != second {
        bail!("the two passwords differ; nothing was changed");
    }
    Ok(first)
}

/// One line from the terminal with echo off; echo comes back even if reading fails.
pub(super) fn prompt(label: &str) -> anyhow::Result<String> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let mut stderr = std::io::stderr();
    write!(stderr, "{label}")?;
    stderr.flush()?;
    let saved = tcgetattr(&stdin).context("cannot read the terminal settings")?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    tcsetattr(&stdin, OptionalActions::Flush, &quiet)
        .context("cannot turn off echo on the terminal")?;
    let line = first_line(stdin.lock());
    let restored = tcsetattr(&stdin, OptionalActions::Flush, &saved);
    writeln!(stderr)?;
    restored.context("cannot restore the terminal settings")?;
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_file_gives_its_first_line_without_the_line_ending() {
        assert_eq!(first_line(&b"s3cret\r\nignored\n"[..]).unwrap(), "s3cret");
        assert_eq!(first_line(&b"s3cret"[..]).unwrap(), "s3cret");
        assert_eq!(first_line(&b" spaced \n"[..]).unwrap(), " spaced ");
        assert_eq!(first_line(&b""[..]).unwrap(), "");
    }
}
