//! Commits of other processes on the same database, heard at once: PostgreSQL's
//! `LISTEN`/`NOTIFY`.
//!
//! Every batch the writer commits sends, inside its transaction, one `NOTIFY` on the channel of
//! the store's schema, with the payload `TOKEN LAST_ID MAILBOX,MAILBOX,…` ([`payload`]).
//! PostgreSQL delivers a notification only if its transaction commits, after the commit, to
//! every listening session, in commit order. Each process listens on one connection of its own
//! ([`run`]) and, for a notification of another process (another `TOKEN`), raises its outbox
//! watch to `LAST_ID` and wakes the waiters of the mailboxes named. So an IDLE on one node
//! wakes when another node delivers, without polling.
//!
//! Nothing is lost across a broken listening connection: after each `LISTEN`, the first one
//! included, the process reads the outbox head and wakes every mailbox waiter, which re-read
//! their state, as if every mailbox had changed. A payload too long for `NOTIFY` (8000 bytes) names no mailbox (`*`),
//! with the same effect.

use super::Postgres;
use crate::notify::Notifier;
use std::time::Duration;
use tokio_postgres::AsyncMessage;

/// Longest payload sent; PostgreSQL refuses 8000 bytes and more.
const MAX_PAYLOAD: usize = 7900;

/// The notification channel of the Herald installation in `schema` (one database may hold
/// several, one per schema).
pub(crate) fn channel(schema: Option<&str>) -> String {
    format!("herald_{}", schema.unwrap_or("public"))
}

/// The payload announcing a commit of the process `token` up to outbox id `last_id` that
/// changed `mailboxes`.
pub(crate) fn payload(token: u64, last_id: u64, mailboxes: &[i64]) -> String {
    let mut p = format!("{token:x} {last_id} ");
    let start = p.len();
    for (i, id) in mailboxes.iter().enumerate() {
        if i > 0 {
            p.push(',');
        }
        p.push_str(&id.to_string());
        if p.len() > MAX_PAYLOAD {
            p.truncate(start);
            p.push('*');
            break;
        }
    }
    p
}

/// What a notification says, if it is another process's and well formed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Heard {
    /// The last outbox id that commit gave out.
    pub last_id: u64,
    /// The mailboxes it changed; `None`: any may have.
    pub mailboxes: Option<Vec<i64>>,
}

/// Parses a payload of [`payload`]; `None` for this process's own (`own` token) or a garbled
/// one.
pub(crate) fn parse(own: u64, text: &str) -> Option<Heard> {
    let mut parts = text.splitn(3, ' ');
    let token = u64::from_str_radix(parts.next()?, 16).ok()?;
    if token == own {
        return None;
    }
    let last_id = parts.next()?.parse().ok()?;
    let list = parts.next().unwrap_or("");
    let mailboxes = if list == "*" {
        None
    } else {
        Some(
            list.split(',')
                .filter(|s| !s.is_empty())
                .map(str::parse)
                .collect::<Result<Vec<i64>, _>>()
                .ok()?,
        )
    };
    Some(Heard { last_id, mailboxes })
}

/// Listens until the task is aborted (the store closed), reconnecting after failures.
pub(crate) async fn run(
    pg: Postgres,
    channel: String,
    token: u64,
    shared: std::sync::Arc<crate::sql::Shared>,
) {
    loop {
        match listen(&pg, &channel, token, &shared.notifier).await {
            Ok(()) => tracing::warn!(%channel, "the PostgreSQL notification connection ended"),
            Err(e) => tracing::warn!(%channel, error = %e, "PostgreSQL notifications failed"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn listen(
    pg: &Postgres,
    channel: &str,
    token: u64,
    notifier: &Notifier,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = pg.config.connect(tokio_postgres::NoTls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // The connection yields notifications only while something polls it.
    let pump = tokio::spawn(async move {
        while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_owned()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "PostgreSQL notification connection");
                    break;
                }
            }
        }
    });
    client.batch_execute(&format!("LISTEN {channel}")).await?;
    // Commits made while nobody listened (before the first LISTEN, or while the connection was
    // down) were not heard: catch up with all of them.
    match pg.last_event_id().await {
        Ok(last) => notifier.outbox_advanced(last),
        Err(e) => tracing::warn!(error = %e, "cannot read the outbox head"),
    }
    notifier.all_mailboxes_changed();
    tracing::debug!(%channel, "listening for PostgreSQL notifications");
    while let Some(text) = rx.recv().await {
        if let Some(heard) = parse(token, &text) {
            notifier.outbox_advanced(heard.last_id);
            match heard.mailboxes {
                Some(ids) => notifier.mailboxes_changed(ids),
                None => notifier.all_mailboxes_changed(),
            }
        }
    }
    pump.abort();
    drop(client);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_own_ones_are_ignored() {
        let p = payload(0xabc, 42, &[3, 7]);
        assert_eq!(p, "abc 42 3,7");
        assert_eq!(
            parse(1, &p),
            Some(Heard {
                last_id: 42,
                mailboxes: Some(vec![3, 7])
            })
        );
        assert_eq!(parse(0xabc, &p), None, "our own commit");
        assert_eq!(
            parse(1, &payload(2, 5, &[])),
            Some(Heard {
                last_id: 5,
                mailboxes: Some(vec![])
            })
        );
        assert_eq!(parse(1, "garbage"), None);
        assert_eq!(parse(1, "2 x 1"), None);
    }

    #[test]
    fn a_payload_too_long_names_no_mailbox() {
        let many: Vec<i64> = (1_000_000_000..1_000_002_000).collect();
        let p = payload(9, 1, &many);
        assert!(p.len() < 8000, "{}", p.len());
        assert_eq!(
            parse(1, &p),
            Some(Heard {
                last_id: 1,
                mailboxes: None
            })
        );
    }
}
