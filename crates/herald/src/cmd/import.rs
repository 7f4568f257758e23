//! `herald import maildir|mbox|imap`: bring existing mail into an account.
//!
//! Every source is read through the [`Source`] trait — its mailboxes, then for each mailbox the
//! *positions* of its messages (a key that only grows: the source's UID when it has one, else
//! the message's place in the source), then the messages of a batch of positions. The runner
//! here is shared by the three sources and is the only part that talks to the store:
//!
//! - Messages go in through [`Store::import`], one commit per batch (at most
//!   [`BATCH_MESSAGES`] messages or [`BATCH_BYTES`] of content), so each gets its MessageAppend
//!   with `vnd.herald.cause` = `import`, the quota applies, and MODSEQ/UIDNEXT move as for an
//!   APPEND.
//! - **Resuming**: the last position imported is recorded *in the same commit* as the batch
//!   (`Store::import_progress`), keyed by the source (its path or server and login), the source
//!   mailbox and its UIDVALIDITY. A run that was interrupted — by a signal, a crash, a full
//!   quota — continues after the last committed batch when started again, without duplicates;
//!   a state file next to the data would be one fsync behind the store after a crash.
//! - UIDs and UIDVALIDITY of the source are kept when the target mailbox is new or empty (or
//!   already carries the source's UIDVALIDITY: a resumed import); otherwise the messages are
//!   appended with the mailbox's next UIDs, and the summary says so.
//! - Progress is an `indicatif` bar per mailbox on standard error, drawn only at a terminal.
//!
//! The sources are `import_maildir.rs`, `import_mbox.rs` and `import_imap.rs`.

use super::{import_imap, import_maildir, import_mbox};
use crate::cli::ImportCommand;
use anyhow::Context as _;
use herald_events::{FlagNames, SYSTEM_FLAGS};
use herald_store::{ImportMessage, SessionContext, SpecialUse, Store, StoreError};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal as _;
use std::process::ExitCode;

/// Most messages in one store commit.
pub const BATCH_MESSAGES: usize = 200;
/// Most content bytes in one store commit (a single larger message goes alone).
pub const BATCH_BYTES: u64 = 16 << 20;

/// A mailbox of the source, before its messages are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceMailbox {
    /// The name in Herald (`/`-separated UTF-8, `INBOX` for the inbox).
    pub name: String,
    /// How the source names it (a directory, a server-side name), for its own use.
    pub source_name: String,
    /// The source's UIDVALIDITY, when it has one.
    pub uidvalidity: Option<u32>,
    /// The source's UIDNEXT, when it has one.
    pub uidnext: Option<u32>,
    /// SPECIAL-USE the source announces, given to a mailbox the import creates.
    pub special_use: Option<SpecialUse>,
}

/// One message of a source mailbox, before its content is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Grows with the message's place in the source; the resume point.
    pub key: i64,
    /// The message's UID in the source, when it has one.
    pub uid: Option<u32>,
    /// Its size, as far as known (for batching).
    pub size: u64,
}

/// Where messages come from.
pub trait Source {
    /// Names the source for resume keys and messages: its path, or server and login.
    fn id(&self) -> String;
    /// Every mailbox to import, parents before children.
    async fn mailboxes(&mut self) -> anyhow::Result<Vec<SourceMailbox>>;
    /// The messages of `mailbox` whose key is above `after`, ascending by key.
    async fn positions(
        &mut self,
        mailbox: &SourceMailbox,
        after: i64,
    ) -> anyhow::Result<Vec<Position>>;
    /// The messages at `positions` (in order; one the source lost meanwhile is left out), with
    /// their flags and INTERNALDATE.
    async fn fetch(
        &mut self,
        mailbox: &SourceMailbox,
        positions: &[Position],
    ) -> anyhow::Result<Vec<ImportMessage>>;
}

/// Runs one `herald import` command.
pub async fn run(store: &Store, cmd: ImportCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ImportCommand::Maildir { path, user } => {
            let mut source = import_maildir::Maildir::open(&path)?;
            import(store, &user, &mut source).await
        }
        ImportCommand::Mbox {
            file,
            user,
            mailbox,
        } => {
            let mut source = import_mbox::Mbox::open(&file, &mailbox)?;
            import(store, &user, &mut source).await
        }
        ImportCommand::Imap(args) => {
            let user = args.to_user.clone().unwrap_or_else(|| args.user.clone());
            let mut source = import_imap::ImapSource::connect(&args).await?;
            let result = import(store, &user, &mut source).await;
            source.logout().await;
            result
        }
    }
}

/// What happened to one mailbox.
struct Outcome {
    name: String,
    imported: u64,
    skipped: u64,
    uidvalidity: u32,
    uids_kept: Option<bool>,
}

/// Imports every mailbox of `source` into `user`'s account.
pub async fn import(
    store: &Store,
    user: &str,
    source: &mut impl Source,
) -> anyhow::Result<ExitCode> {
    let ctx = SessionContext::user("admincli", user);
    // Fail before reading anything if the account does not exist.
    store
        .quota(user)
        .await
        .with_context(|| format!("account `{user}`"))?;
    let source_id = source.id();
    let mailboxes = source.mailboxes().await?;
    let bar = progress_bar();
    let mut outcomes = Vec::with_capacity(mailboxes.len());
    let mut refused = Vec::new();
    for mb in &mailboxes {
        bar.set_message(mb.name.clone());
        match import_mailbox(store, &ctx, &source_id, source, mb, &bar).await {
            Ok(outcome) => outcomes.push(outcome),
            // A name Herald cannot hold (a `%` in it, a `..` level) must not stop the rest.
            Err(e)
                if matches!(
                    e.downcast_ref::<StoreError>(),
                    Some(StoreError::InvalidName { .. })
                ) =>
            {
                bar.suspend(|| eprintln!("herald: skipping mailbox `{}`: {e}", mb.name));
                refused.push(mb.name.clone());
            }
            Err(e) => return Err(e.context(format!("mailbox `{}`", mb.name))),
        }
    }
    bar.finish_and_clear();
    let mut total = 0;
    for o in &outcomes {
        total += o.imported;
        let uids = match o.uids_kept {
            Some(true) => format!("source UIDs kept, UIDVALIDITY {}", o.uidvalidity),
            Some(false) => format!(
                "appended with new UIDs: the mailbox already held mail (UIDVALIDITY {})",
                o.uidvalidity
            ),
            None => format!("UIDVALIDITY {}", o.uidvalidity),
        };
        let skipped = if o.skipped > 0 {
            format!(", {} already there", o.skipped)
        } else {
            String::new()
        };
        println!("{}: {} imported{skipped} ({uids})", o.name, o.imported);
    }
    println!(
        "imported {total} messages into {} mailboxes of {user}",
        outcomes.len()
    );
    if !refused.is_empty() {
        println!(
            "skipped {} mailboxes whose names Herald refuses: {}",
            refused.len(),
            refused.join(", ")
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(0);
    let style =
        ProgressStyle::with_template("{msg:20!} [{bar:30}] {pos}/{len} messages, {eta} left");
    if let Ok(style) = style {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

async fn import_mailbox(
    store: &Store,
    ctx: &SessionContext,
    source_id: &str,
    source: &mut impl Source,
    mb: &SourceMailbox,
    bar: &ProgressBar,
) -> anyhow::Result<Outcome> {
    match store.mailbox(ctx, &mb.name).await {
        Ok(_) => {}
        Err(StoreError::NotFound { .. }) => {
            store.create_mailbox(ctx, &mb.name, mb.special_use).await?;
        }
        Err(e) => return Err(e.into()),
    }
    let key = format!(
        "{source_id}\u{1f}{}\u{1f}{}",
        mb.source_name,
        mb.uidvalidity.unwrap_or(0)
    );
    let after = store.import_progress(ctx, &key).await?.unwrap_or(0);
    let positions = source.positions(mb, after).await?;
    let mut outcome = Outcome {
        name: mb.name.clone(),
        imported: 0,
        skipped: 0,
        uidvalidity: 0,
        uids_kept: None,
    };
    if after > 0 {
        let info = store.mailbox(ctx, &mb.name).await?;
        outcome.skipped = info.messages;
        outcome.uidvalidity = info.uidvalidity;
    }
    if positions.is_empty() {
        if mb.uidvalidity.is_some() {
            // An empty source mailbox still hands over its UIDVALIDITY and UIDNEXT.
            let c = store
                .import(
                    ctx,
                    &mb.name,
                    (mb.uidvalidity, mb.uidnext),
                    Vec::new(),
                    None,
                )
                .await?;
            outcome.uidvalidity = c.value.uidvalidity;
            outcome.uids_kept = Some(c.value.uids_kept);
        } else if outcome.uidvalidity == 0 {
            outcome.uidvalidity = store.mailbox(ctx, &mb.name).await?.uidvalidity;
        }
        return Ok(outcome);
    }
    bar.set_length(positions.len() as u64);
    bar.set_position(0);
    bar.reset_eta();
    let batches = batches(&positions);
    let count = batches.len();
    for (i, batch) in batches.into_iter().enumerate() {
        let messages = source.fetch(mb, batch).await?;
        let n = messages.len() as u64;
        let last = batch.last().map_or(after, |p| p.key);
        let uidnext = if i + 1 == count { mb.uidnext } else { None };
        let c = store
            .import(
                ctx,
                &mb.name,
                (mb.uidvalidity, uidnext),
                messages,
                Some((key.clone(), last)),
            )
            .await?;
        outcome.imported += n;
        outcome.uidvalidity = c.value.uidvalidity;
        if mb.uidvalidity.is_some() {
            outcome.uids_kept = Some(c.value.uids_kept);
        }
        bar.inc(n);
    }
    Ok(outcome)
}

/// Cuts positions into store commits of at most [`BATCH_MESSAGES`] messages and
/// [`BATCH_BYTES`] (a larger message alone).
pub fn batches(positions: &[Position]) -> Vec<&[Position]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0u64;
    for (i, p) in positions.iter().enumerate() {
        let full = i - start >= BATCH_MESSAGES || (i > start && bytes + p.size > BATCH_BYTES);
        if full {
            out.push(&positions[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += p.size;
    }
    if start < positions.len() {
        out.push(&positions[start..]);
    }
    out
}

/// The flags of a source message that Herald can store: `\Recent` (a session's property) and
/// unknown system flags dropped, keywords that are not IMAP atoms dropped, at most 128.
pub fn clean_flags(flags: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in flags {
        let keep = if f.starts_with('\\') {
            SYSTEM_FLAGS.iter().any(|s| s.eq_ignore_ascii_case(&f))
                && !f.eq_ignore_ascii_case("\\Recent")
        } else {
            f.len() <= herald_store::flags::MAX_KEYWORD
                && FlagNames::new([f.as_str()]).check().is_ok()
        };
        if keep
            && !out.iter().any(|o| o.eq_ignore_ascii_case(&f))
            && out.len() < herald_store::flags::MAX_FLAGS
        {
            out.push(f);
        }
    }
    out
}

/// The message with every bare LF made CRLF: Maildir and mbox files hold Unix line ends, while
/// IMAP clients expect CRLF (Dovecot converts the same way when it reads them).
pub fn crlf(content: Vec<u8>) -> Vec<u8> {
    let bare = content
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' && (i == 0 || content[i - 1] != b'\r'))
        .count();
    if bare == 0 {
        return content;
    }
    let mut out = Vec::with_capacity(content.len() + bare);
    for (i, &b) in content.iter().enumerate() {
        if b == b'\n' && (i == 0 || content[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// Milliseconds since the epoch of a file's modification time (Dovecot's INTERNALDATE for
/// Maildir messages), or now when the system cannot tell.
pub fn mtime_ms(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or_else(herald_store::now_ms, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(key: i64, size: u64) -> Position {
        Position {
            key,
            uid: None,
            size,
        }
    }

    #[test]
    fn batches_respect_count_and_bytes() {
        let many: Vec<Position> = (1..=450).map(|k| pos(k, 10)).collect();
        let b = batches(&many);
        assert_eq!(
            b.iter().map(|b| b.len()).collect::<Vec<_>>(),
            [200, 200, 50]
        );
        let big = [pos(1, 10), pos(2, BATCH_BYTES), pos(3, 10), pos(4, 10)];
        let b = batches(&big);
        assert_eq!(b.iter().map(|b| b.len()).collect::<Vec<_>>(), [1, 1, 2]);
        assert!(batches(&[]).is_empty());
    }

    #[test]
    fn flags_herald_cannot_store_are_dropped() {
        let f = clean_flags(
            [
                "\\Seen", "\\Recent", "\\Bogus", "$Work", "bad(kw", "$work", "\\seen",
            ]
            .map(String::from),
        );
        assert_eq!(f, ["\\Seen", "$Work"]);
    }

    #[test]
    fn bare_line_feeds_become_crlf() {
        assert_eq!(crlf(b"a\nb\r\nc\n".to_vec()), b"a\r\nb\r\nc\r\n");
        assert_eq!(crlf(b"\n".to_vec()), b"\r\n");
        assert_eq!(crlf(b"x\r\n".to_vec()), b"x\r\n");
    }
}
