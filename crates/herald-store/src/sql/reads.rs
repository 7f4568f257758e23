//! Reads, on pooled read-only connections: WAL gives each a consistent snapshot without
//! blocking the writer, so FETCH, STATUS and LIST never queue behind commits.
//!
//! The hot queries carry no `ORDER BY`: SQLite re-prepares a statement that has both an
//! `ORDER BY` and bound parameters on every run (measured: `sqlite3Reprepare` was 7–14% of
//! the server's CPU under IMAP load), so rows are sorted here instead — they come out of the
//! primary-key scan in order already, so the sort is a linear check.

use super::Shared;
use super::ops::{MAILBOX_COLUMNS, Mbox, account, find_mailbox, mailbox_row};
use crate::backend::{Answer, Query};
use crate::error::{Result, StoreError};
use crate::flags;
use crate::model::*;
use crate::names;
use crate::sql::{
    Db, Dialect, OptionalExtension, Result as SqlResult, Row, Value, last_event_id_sql, params,
};
use herald_events::{Event, UidSet};

/// Metadata of a mailbox's messages in a UID range (FETCH, SELECT, every IDLE update).
pub(crate) const MESSAGES_SQL: &str = "SELECT uid, size, internaldate, flags, modseq, savedate,
            thread_id
     FROM messages WHERE mailbox_id = ?1 AND uid BETWEEN ?2 AND ?3";

/// An account's mailbox by name (as given), or NotFound.
fn existing_mailbox(conn: &dyn Db, account_name: &str, mailbox: &str) -> Result<Mbox> {
    let a = account(conn, account_name)?;
    let name = names::mailbox(mailbox, false)?;
    find_mailbox(conn, a.id, &name)?.ok_or_else(|| StoreError::not_found("mailbox", &name))
}

/// [`existing_mailbox`], refusing a `\Noselect` placeholder (it holds no messages).
fn selectable_mailbox(conn: &dyn Db, account_name: &str, mailbox: &str) -> Result<Mbox> {
    let mb = existing_mailbox(conn, account_name, mailbox)?;
    if mb.noselect {
        return Err(StoreError::NoSelect(mb.name));
    }
    Ok(mb)
}

/// `user`'s rights on `account_name`'s mailbox: all for the owner; none when the account or
/// mailbox does not exist (or is `\Noselect`), which callers cannot tell from "not shared".
fn rights(
    conn: &dyn Db,
    account_name: &str,
    mailbox: &str,
    user: &str,
) -> Result<crate::acl::Rights> {
    let a = match account(conn, account_name) {
        Ok(a) => a,
        Err(StoreError::NotFound { .. }) => return Ok(crate::acl::Rights::NONE),
        Err(e) => return Err(e),
    };
    let Ok(name) = names::mailbox(mailbox, false) else {
        return Ok(crate::acl::Rights::NONE);
    };
    match find_mailbox(conn, a.id, &name)? {
        Some(mb) if !mb.noselect || a.name == user => Ok(if a.name == user {
            crate::acl::Rights::ALL
        } else {
            super::acl::rights_of(conn, &a.name, mb.id, user)?
        }),
        _ => Ok(crate::acl::Rights::NONE),
    }
}

pub(crate) fn answer(conn: &dyn Db, shared: &Shared, q: Query) -> Result<Answer> {
    Ok(match q {
        Query::Users => Answer::Users(users(conn)?),
        Query::Credentials(name) => Answer::Credentials(
            conn.prepare_cached(
                "SELECT password_hash, admin, disabled_ms IS NOT NULL FROM accounts
                 WHERE name = ?1",
            )?
            .query_row([name], |r| {
                Ok(Credentials {
                    hash: r.get(0)?,
                    admin: r.get(1)?,
                    disabled: r.get(2)?,
                })
            })
            .optional()?,
        ),
        Query::Quota(name) => {
            let a = account(conn, &name)?;
            Answer::Quota(QuotaInfo {
                storage_kb: a.quota_kb,
                max_messages: a.quota_messages,
                used_bytes: a.used_bytes,
                used_messages: a.used_messages,
            })
        }
        Query::Mailboxes(name) => {
            let a = account(conn, &name)?;
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = ?1"
            ))?;
            let mut rows = stmt
                .query_map([a.id], mailbox_row)?
                .map(|r| r.map(|m| m.info()))
                .collect::<SqlResult<Vec<_>>>()?;
            rows.sort_unstable_by(|x, y| x.name.cmp(&y.name));
            Answer::Mailboxes(rows)
        }
        Query::Mailbox(account_name, name) => {
            let mb = existing_mailbox(conn, &account_name, &name)?;
            Answer::Mailbox(mb.info())
        }
        Query::Acl {
            account: account_name,
            mailbox,
        } => {
            let mb = existing_mailbox(conn, &account_name, &mailbox)?;
            Answer::Acl(super::acl::entries(conn, mb.id)?)
        }
        Query::Rights {
            account: account_name,
            mailbox,
            user,
        } => Answer::Rights(rights(conn, &account_name, &mailbox, &user)?),
        Query::SharedMailboxes(user) => Answer::Shared(super::acl::shared_with(conn, &user)?),
        Query::Subscriptions(name) => {
            let a = account(conn, &name)?;
            let mut stmt =
                conn.prepare_cached("SELECT name FROM subscriptions WHERE account_id = ?1")?;
            let mut rows = stmt
                .query_map([a.id], |r| r.get(0))?
                .collect::<SqlResult<Vec<String>>>()?;
            rows.sort_unstable();
            Answer::Subscriptions(rows)
        }
        Query::Messages {
            account: account_name,
            mailbox,
            uids,
            ..
        } => Answer::Messages(messages(conn, &account_name, &mailbox, uids.as_ref())?),
        Query::Snapshot {
            account: account_name,
            mailbox,
            ..
        } => {
            let mb = selectable_mailbox(conn, &account_name, &mailbox)?;
            Answer::Snapshot {
                mailbox_id: mb.id,
                uidvalidity: mb.uidvalidity,
                highest_modseq: mb.modseq,
                messages: mailbox_messages(conn, &mb, None)?,
            }
        }
        Query::Counts {
            account: account_name,
            mailbox,
            claimed,
        } => {
            let mb = selectable_mailbox(conn, &account_name, &mailbox)?;
            let recent_uid = crate::recent::raised(mb.recent_uid, mb.uidvalidity, claimed);
            // The counters the triggers on `messages` keep (schema version 15), and the
            // recent messages by their UIDs: no pass over the mailbox.
            let (unseen, deleted, size): (i64, i64, i64) = conn
                .prepare_cached("SELECT unseen, deleted, bytes FROM mailboxes WHERE id = ?1")?
                .query_row([mb.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            let recent: i64 = conn
                .prepare_cached(
                    "SELECT count(*) FROM messages WHERE mailbox_id = ?1 AND uid >= ?2",
                )?
                .query_row(params![mb.id, recent_uid], |r| r.get(0))?;
            Answer::Counts(MailboxCounts {
                messages: mb.messages,
                unseen: unseen as u64,
                deleted: deleted as u64,
                size: size as u64,
                recent: recent as u64,
            })
        }
        Query::Changes {
            account: account_name,
            mailbox,
            since_modseq,
            known_max_uid,
            known_count,
        } => Answer::Changes(changes(
            conn,
            &account_name,
            &mailbox,
            since_modseq,
            known_max_uid,
            known_count,
        )?),
        Query::Vanished {
            account: account_name,
            mailbox,
            since_modseq,
        } => {
            let mb = selectable_mailbox(conn, &account_name, &mailbox)?;
            let mut uids = conn
                .prepare_cached("SELECT uid FROM expunged WHERE mailbox_id = ?1 AND modseq > ?2")?
                .query_map(params![mb.id, clamp(since_modseq)], |r| r.get::<_, u32>(0))?
                .collect::<SqlResult<Vec<_>>>()?;
            uids.sort_unstable();
            Answer::Vanished(Vanished {
                uids,
                complete: since_modseq >= mb.tombstone_floor,
            })
        }
        Query::ContentIds {
            account: account_name,
            mailbox,
            uids,
        } => {
            let mb = existing_mailbox(conn, &account_name, &mailbox)?;
            let mut stmt = conn.prepare_cached(
                "SELECT m.uid, b.sha256 FROM messages m JOIN blobs b ON b.id = m.blob_id
                 WHERE m.mailbox_id = ?1 AND m.uid BETWEEN ?2 AND ?3",
            )?;
            let mut out = Vec::new();
            let rows = crate::sql::read_uids(
                uids.as_ref(),
                |row: &(u32, Vec<u8>)| row.0,
                |lo, hi| {
                    stmt.query_map(params![mb.id, lo, hi], |r| {
                        Ok((r.get::<_, u32>(0)?, r.get::<_, Vec<u8>>(1)?))
                    })
                },
            )?;
            for (uid, sha) in rows {
                let sha: [u8; 32] = sha.try_into().map_err(|_| {
                    StoreError::Corrupt(format!(
                        "blob digest of {} UID {uid} is not 32 bytes",
                        mb.name
                    ))
                })?;
                out.push((uid, sha));
            }
            out.sort_unstable_by_key(|c| c.0);
            Answer::ContentIds(out)
        }
        Query::Contents {
            account: account_name,
            mailbox,
            uids,
            ..
        } => {
            let mb = existing_mailbox(conn, &account_name, &mailbox)?;
            let mut stmt = conn.prepare_cached(
                "SELECT m.uid, b.sha256, b.data FROM messages m JOIN blobs b ON b.id = m.blob_id
                 WHERE m.mailbox_id = ?1 AND m.uid BETWEEN ?2 AND ?3",
            )?;
            let mut out = Vec::new();
            // Range by range, so a sparse set does not read the content between its UIDs.
            for &(lo, hi) in uids.ranges() {
                let rows = stmt.query_map(params![mb.id, lo, hi], |r| {
                    Ok((
                        r.get::<_, u32>(0)?,
                        r.get::<_, Vec<u8>>(1)?,
                        r.get::<_, Option<Vec<u8>>>(2)?,
                    ))
                })?;
                for row in rows {
                    let (uid, sha, data) = row?;
                    out.push((uid, content(shared, &sha, data)?));
                }
            }
            Answer::Contents(out)
        }
        Query::EventsAfter { after, limit } => {
            let mut stmt = conn.prepare_cached(
                "SELECT id, event FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?;
            let rows = stmt
                .query_map(params![after as i64, limit as i64], |r| {
                    Ok(StoredEvent {
                        id: r.get::<_, i64>(0)? as u64,
                        json: r.get(1)?,
                    })
                })?
                .collect::<SqlResult<Vec<_>>>()?;
            // Read after the rows: a deferred batch hides its ids before it commits, so
            // whatever this read saw of one is hidden now, unless flushed since.
            let visible = shared.notifier.visible();
            Answer::Events(rows.into_iter().take_while(|e| e.id <= visible).collect())
        }
        Query::LastEventId => {
            let last = head(conn)?;
            // Commits of another process (the CLI) advance the outbox too; waiters and the
            // in-memory window of recent events must know of them.
            shared.notifier.outbox_advanced(last);
            Answer::Id(last.min(shared.notifier.visible()))
        }
        Query::OutboxBounds => Answer::OutboxBounds(outbox_bounds(conn)?),
        Query::EventTimes(ids) => {
            // RFC 3339 with its offset is one of SQLite's time formats; `subsec` keeps the
            // milliseconds.
            let mut stmt = conn.prepare_cached(conn.pick(
                "SELECT CAST(unixepoch(json_extract(event, '$.timestamp'), 'subsec') * 1000
                        AS INTEGER)
                 FROM outbox WHERE id = ?1",
                "SELECT CAST(EXTRACT(EPOCH FROM CAST(CAST(event AS json)->>'timestamp'
                        AS timestamptz)) * 1000 AS bigint)
                 FROM outbox WHERE id = ?1",
            ))?;
            let mut times = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(ms) = stmt
                    .query_row([id as i64], |r| r.get::<_, Option<i64>>(0))
                    .optional()?
                {
                    times.push((id, ms));
                }
            }
            Answer::EventTimes(times)
        }
        Query::ImportProgress { account: name, key } => {
            let acct = account(conn, &name)?;
            let value = conn
                .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
                .query_row([super::ops::import_progress_key(acct.id, &key)], |r| {
                    r.get::<_, i64>(0)
                })
                .optional()?;
            Answer::Progress(value)
        }
        Query::ParkedCounts => {
            let mut stmt = conn.prepare_cached(
                "SELECT delivery, count(*) FROM parked GROUP BY delivery ORDER BY delivery",
            )?;
            let rows = stmt
                .query_map((), |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
                .collect::<SqlResult<Vec<_>>>()?;
            Answer::ParkedCounts(rows)
        }
        Query::Consistency(after) => Answer::Consistency(consistency(conn, shared, after)?),
        Query::EventsById(ids) => {
            let mut stmt = conn.prepare_cached("SELECT event FROM outbox WHERE id = ?1")?;
            let mut rows = Vec::with_capacity(ids.len());
            let mut sorted = ids;
            sorted.sort_unstable();
            sorted.dedup();
            for id in sorted {
                if let Some(json) = stmt
                    .query_row([id as i64], |r| r.get::<_, String>(0))
                    .optional()?
                {
                    rows.push(StoredEvent { id, json });
                }
            }
            Answer::Events(rows)
        }
        Query::Metadata { account, mailbox } => {
            Answer::Metadata(super::metadata::read(conn, &account, mailbox.as_deref())?)
        }
        Query::PushSubscriptions(name) => {
            let a = account(conn, &name)?;
            let mut stmt = conn.prepare_cached(
                "SELECT endpoint, p256dh, auth, created_ms FROM push_subscriptions
                 WHERE account_id = ?1 ORDER BY created_ms, endpoint",
            )?;
            let rows = stmt
                .query_map([a.id], |r| {
                    Ok(PushSubscription {
                        user: a.name.clone(),
                        endpoint: r.get(0)?,
                        p256dh: r.get(1)?,
                        auth: r.get(2)?,
                        created_ms: r.get(3)?,
                    })
                })?
                .collect::<SqlResult<Vec<_>>>()?;
            Answer::PushSubscriptions(rows)
        }
        Query::AccessKey {
            account: account_name,
            mailbox,
        } => {
            let mb = existing_mailbox(conn, &account_name, &mailbox)?;
            let key: Option<Vec<u8>> = conn
                .prepare_cached("SELECT key FROM urlauth_keys WHERE mailbox_id = ?1")?
                .query_row([mb.id], |r| r.get(0))
                .optional()?;
            Answer::AccessKey(key.and_then(|k| k.try_into().ok()))
        }
        Query::Deliveries => {
            let rows = conn.query_map(
                "SELECT name, config, origin, paused, disabled_reason, cursor,
                   delivered, retries, failures, failing_since_ms, last_error
                 FROM deliveries ORDER BY name",
                (),
                super::ops::delivery::record_row,
            )?;
            Answer::Deliveries(rows)
        }
        Query::Parked(name) => {
            let mut stmt = conn.prepare_cached(
                "SELECT event_id, reason, parked_ms FROM parked WHERE delivery = ?1
                 ORDER BY event_id",
            )?;
            let rows = stmt
                .query_map([name], |r| {
                    Ok(ParkedEvent {
                        event_id: r.get::<_, i64>(0)? as u64,
                        reason: r.get(1)?,
                        parked_ms: r.get(2)?,
                    })
                })?
                .collect::<SqlResult<Vec<_>>>()?;
            Answer::Parked(rows)
        }
    })
}

/// A message's bytes: in its blob row, or in the blob file its digest names when the row has
/// none (content above `inline_blob_max`).
fn content(shared: &Shared, sha: &[u8], data: Option<Vec<u8>>) -> Result<Vec<u8>> {
    if let Some(d) = data {
        return Ok(d);
    }
    let key = <[u8; 32]>::try_from(sha)
        .map_err(|_| StoreError::Corrupt("blob hash is not 32 bytes".into()))?;
    let dir = shared
        .blobs
        .as_ref()
        .ok_or_else(|| StoreError::Corrupt("a message without content in the database".into()))?;
    dir.read(&key)
}

/// The oldest id the outbox keeps and the highest ever committed: both from indexes, so a
/// scrape costs the same whatever the outbox's size.
fn outbox_bounds(conn: &dyn Db) -> Result<OutboxBounds> {
    let oldest: Option<i64> = conn
        .prepare_cached("SELECT min(id) FROM outbox")?
        .query_row((), |r| r.get(0))?;
    Ok(OutboxBounds {
        oldest: oldest.map(|o| o as u64),
        head: head(conn)?,
    })
}

/// The last outbox id given out (kept even when retention removed its row).
fn head(conn: &dyn Db) -> Result<u64> {
    let sql = format!("SELECT {}", last_event_id_sql(conn));
    Ok(conn.query_row(&sql, (), |r| r.get::<_, i64>(0))?.max(0) as u64)
}

fn users(conn: &dyn Db) -> Result<Vec<UserInfo>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, admin, quota_storage_kb, quota_messages, used_bytes, used_messages,
                first_event, disabled_ms, disabled_reason
         FROM accounts WHERE name != ?1 ORDER BY name",
    )?;
    // The "Shared" namespace's pseudo-account is no user.
    let rows = stmt
        .query_map([crate::acl::SHARED_OWNER], |r| {
            Ok(UserInfo {
                name: r.get(0)?,
                admin: r.get(1)?,
                quota: QuotaInfo {
                    storage_kb: r.get::<_, Option<i64>>(2)?.map(|v| v as u64),
                    max_messages: r.get::<_, Option<i64>>(3)?.map(|v| v as u64),
                    used_bytes: r.get::<_, i64>(4)? as u64,
                    used_messages: r.get::<_, i64>(5)? as u64,
                },
                first_event: r.get::<_, i64>(6)? as u64,
                disabled: r
                    .get::<_, Option<i64>>(7)?
                    .map(|since_ms| Disabled { since_ms }),
                disabled_reason: r.get(8)?,
            })
        })?
        .collect::<SqlResult<Vec<_>>>()?;
    Ok(rows)
}

fn messages(
    conn: &dyn Db,
    account_name: &str,
    mailbox: &str,
    uids: Option<&UidSet>,
) -> Result<Vec<MessageMeta>> {
    let mb = selectable_mailbox(conn, account_name, mailbox)?;
    mailbox_messages(conn, &mb, uids)
}

/// [`messages`] of a mailbox row already read.
fn mailbox_messages(conn: &dyn Db, mb: &Mbox, uids: Option<&UidSet>) -> Result<Vec<MessageMeta>> {
    let mut stmt = conn.prepare_cached(MESSAGES_SQL)?;
    let mut rows = crate::sql::read_uids(
        uids,
        |m: &MessageMeta| m.uid,
        |lo, hi| stmt.query_map(params![mb.id, lo, hi], meta_row),
    )?;
    rows.sort_unstable_by_key(|m| m.uid);
    Ok(rows)
}

/// See [`Changes`]. The mailbox row is read first and each later read sees at least as much,
/// so a change committed meanwhile is either reported now or has a MODSEQ above
/// `highest_modseq` and is reported next time; an expunge is found by count (the messages
/// the caller knows, plus the new ones, against the mailbox's count), so it costs a UID list
/// only when one happened.
fn changes(
    conn: &dyn Db,
    account_name: &str,
    mailbox: &str,
    since_modseq: u64,
    known_max_uid: u32,
    known_count: u64,
) -> Result<Changes> {
    let mb = selectable_mailbox(conn, account_name, mailbox)?;
    let mut out = Changes {
        highest_modseq: mb.modseq,
        uidvalidity: mb.uidvalidity,
        ..Changes::default()
    };
    if mb.modseq <= since_modseq && mb.messages == known_count {
        return Ok(out);
    }
    let mut stmt = conn.prepare_cached(CHANGED_SQL)?;
    out.changed = stmt
        .query_map(params![mb.id, clamp(since_modseq)], meta_row)?
        .collect::<SqlResult<Vec<_>>>()?;
    out.changed.sort_unstable_by_key(|m| m.uid);
    let new = out.changed.iter().filter(|m| m.uid > known_max_uid).count() as u64;
    if mb.messages != known_count + new {
        if since_modseq >= mb.tombstone_floor {
            // Every expunge after `since_modseq` left a tombstone: read those, not the
            // mailbox (every session of a busy mailbox asks this after each EXPUNGE).
            let mut gone = conn
                .prepare_cached("SELECT uid FROM expunged WHERE mailbox_id = ?1 AND modseq > ?2")?
                .query_map(params![mb.id, clamp(since_modseq)], |r| r.get::<_, u32>(0))?
                .collect::<SqlResult<Vec<_>>>()?;
            gone.sort_unstable();
            out.expunged = Some(gone);
        } else {
            let mut uids = conn
                .prepare_cached("SELECT uid FROM messages WHERE mailbox_id = ?1")?
                .query_map([mb.id], |r| r.get::<_, u32>(0))?
                .collect::<SqlResult<Vec<_>>>()?;
            uids.sort_unstable();
            out.uids = Some(uids);
        }
    }
    Ok(out)
}

/// A MODSEQ from a client as SQLite's integer: RFC 7162 keeps them below 2^63, a larger one
/// is past every real value anyway.
fn clamp(modseq: u64) -> i64 {
    i64::try_from(modseq).unwrap_or(i64::MAX)
}

/// A row of [`MESSAGES_SQL`] or [`CHANGED_SQL`] (same columns).
fn meta_row(r: &dyn Row) -> SqlResult<MessageMeta> {
    Ok(MessageMeta {
        uid: r.get(0)?,
        size: r.get::<_, i64>(1)? as u64,
        internal_date_ms: r.get(2)?,
        // Parsed from the row's own text: no copy of the column first.
        flags: match r.value(3)? {
            Value::Text(t) => flags::parse(t),
            other => {
                return Err(crate::sql::Error::Type {
                    column: 3,
                    why: format!("expected text, found {other:?}"),
                });
            }
        },
        modseq: r.get::<_, i64>(4)? as u64,
        save_date_ms: r.get(5)?,
        thread_id: r.get::<_, i64>(6)? as u64,
    })
}

/// Messages of a mailbox whose MODSEQ is above a value (new and changed ones).
pub(crate) const CHANGED_SQL: &str =
    "SELECT uid, size, internaldate, flags, modseq, savedate, thread_id
     FROM messages WHERE mailbox_id = ?1 AND modseq > ?2";

/// Recomputes every denormalised counter from the rows and checks the outbox.
fn consistency(conn: &dyn Db, shared: &Shared, after: u64) -> Result<Consistency> {
    let mut c = Consistency::default();
    if conn.dialect() == Dialect::Sqlite {
        let integrity: String = conn.query_row("PRAGMA quick_check", (), |r| r.get(0))?;
        if integrity != "ok" {
            c.problems.push(format!("quick_check: {integrity}"));
        }
    }
    let mut problems = |sql: &str, what: &str| -> Result<()> {
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt
            .query_map((), |r| r.get::<_, String>(0))?
            .collect::<SqlResult<Vec<_>>>()?;
        c.problems
            .extend(rows.into_iter().map(|r| format!("{what}: {r}")));
        Ok(())
    };
    problems(
        "SELECT a.name || ' used ' || a.used_bytes || '/' || a.used_messages || ' counted '
                || COALESCE(SUM(m.size), 0) || '/' || COUNT(m.uid)
         FROM accounts a LEFT JOIN mailboxes b ON b.account_id = a.id
         LEFT JOIN messages m ON m.mailbox_id = b.id
         GROUP BY a.id HAVING a.used_bytes != COALESCE(SUM(m.size), 0) OR a.used_messages != COUNT(m.uid)",
        "account usage",
    )?;
    problems(
        "SELECT b.name || ' messages ' || b.messages || ' counted ' || COUNT(m.uid)
         FROM mailboxes b LEFT JOIN messages m ON m.mailbox_id = b.id
         GROUP BY b.id HAVING b.messages != COUNT(m.uid)
            OR b.uidnext <= COALESCE(MAX(m.uid), 0) OR b.highestmodseq < COALESCE(MAX(m.modseq), 0)",
        "mailbox counters",
    )?;
    problems(
        r"SELECT b.name || ' unseen/deleted/bytes ' || b.unseen || '/' || b.deleted || '/'
                || b.bytes || ' counted ' || COALESCE(SUM(CASE WHEN
                   instr(' ' || m.flags || ' ', ' \Seen ') = 0 THEN 1 ELSE 0 END), 0)
                || '/' || COALESCE(SUM(CASE WHEN
                   instr(' ' || m.flags || ' ', ' \Deleted ') > 0 THEN 1 ELSE 0 END), 0)
                || '/' || COALESCE(SUM(m.size), 0)
         FROM mailboxes b LEFT JOIN messages m ON m.mailbox_id = b.id
         GROUP BY b.id
         HAVING b.unseen != COALESCE(SUM(CASE WHEN
                   instr(' ' || m.flags || ' ', ' \Seen ') = 0 THEN 1 ELSE 0 END), 0)
            OR b.deleted != COALESCE(SUM(CASE WHEN
                   instr(' ' || m.flags || ' ', ' \Deleted ') > 0 THEN 1 ELSE 0 END), 0)
            OR b.bytes != COALESCE(SUM(m.size), 0)",
        "mailbox STATUS counters",
    )?;
    problems(
        &format!(
            "SELECT {} || ' refcount ' || b.refcount || ' referenced ' || COUNT(m.uid)
         FROM blobs b LEFT JOIN messages m ON m.blob_id = b.id
         GROUP BY b.id HAVING b.refcount != COUNT(m.uid) OR COUNT(m.uid) = 0",
            conn.pick("hex(b.sha256)", "encode(b.sha256, 'hex')")
        ),
        "blob refcount",
    )?;
    problems(
        "SELECT m.mailbox_id || ':' || m.uid FROM messages m
         LEFT JOIN blobs b ON b.id = m.blob_id LEFT JOIN mailboxes x ON x.id = m.mailbox_id
         LEFT JOIN accounts a ON a.id = x.account_id
         WHERE b.id IS NULL OR x.id IS NULL OR b.size != m.size
            OR m.thread_id <= 0 OR m.thread_id >= a.next_thread",
        "dangling message",
    )?;
    problems(
        "SELECT r.account_id || ' ' || r.key FROM thread_refs r
         LEFT JOIN accounts a ON a.id = r.account_id
         WHERE a.id IS NULL OR r.thread_id <= 0 OR r.thread_id >= a.next_thread",
        "dangling thread reference",
    )?;
    problems(
        "SELECT k.mailbox_id FROM urlauth_keys k
         LEFT JOIN mailboxes b ON b.id = k.mailbox_id
         WHERE b.id IS NULL OR b.account_id != k.account_id OR b.noselect != 0
            OR length(k.key) != 32",
        "dangling URLAUTH access key",
    )?;
    problems(
        "SELECT b.name || ' tombstones ' || b.tombstones || ' counted ' || COUNT(e.uid)
         FROM mailboxes b LEFT JOIN expunged e ON e.mailbox_id = b.id
         GROUP BY b.id HAVING b.tombstones != COUNT(e.uid)
            OR COALESCE(MAX(e.uid), 0) >= b.uidnext
            OR COALESCE(MAX(e.modseq), 0) > b.highestmodseq",
        "mailbox tombstones",
    )?;
    problems(
        "SELECT e.mailbox_id || ':' || e.uid FROM expunged e
         LEFT JOIN mailboxes b ON b.id = e.mailbox_id
         LEFT JOIN messages m ON m.mailbox_id = e.mailbox_id AND m.uid = e.uid
         WHERE b.id IS NULL OR m.uid IS NOT NULL",
        "stray tombstone",
    )?;
    let files: Vec<Vec<u8>> = conn
        .prepare("SELECT sha256 FROM blobs WHERE data IS NULL")?
        .query_map((), |r| r.get(0))?
        .collect::<SqlResult<_>>()?;
    for sha in files {
        match <[u8; 32]>::try_from(sha.as_slice()) {
            Ok(k) if shared.blobs.as_ref().is_some_and(|d| d.exists(&k)) => {}
            _ => c
                .problems
                .push(format!("blob file missing: {}", crate::blobs::hex(&sha))),
        }
    }
    // METADATA rows belong to a mailbox (or the server, 0) and an account (or no one: shared).
    let orphans: i64 = conn.query_row(
        "SELECT COUNT(*) FROM metadata
         WHERE (mailbox_id != 0 AND mailbox_id NOT IN (SELECT id FROM mailboxes))
            OR (owner_id != 0 AND owner_id NOT IN (SELECT id FROM accounts))",
        (),
        |r| r.get(0),
    )?;
    if orphans > 0 {
        c.problems.push(format!(
            "{orphans} metadata entries of a gone mailbox or account"
        ));
    }
    c.messages =
        conn.query_row("SELECT COUNT(*) FROM messages", (), |r| r.get::<_, i64>(0))? as u64;
    c.blobs = conn.query_row("SELECT COUNT(*) FROM blobs", (), |r| r.get::<_, i64>(0))? as u64;
    let (count, min, max): (i64, Option<i64>, Option<i64>) =
        conn.query_row("SELECT COUNT(*), MIN(id), MAX(id) FROM outbox", (), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    c.events = count as u64;
    c.last_event_id = max.unwrap_or(0) as u64;
    // Retention removes only the oldest events: what is left is one run of ids.
    let first = min.unwrap_or(1) as u64;
    if c.events != (c.last_event_id + 1).saturating_sub(first) {
        c.problems.push(format!(
            "outbox ids not contiguous: {} rows, ids {first} to {}",
            c.events, c.last_event_id
        ));
    }
    let rows = conn.query_map(
        "SELECT id, event FROM outbox WHERE id > ?1 ORDER BY id",
        [after as i64],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?)),
    )?;
    for (id, json) in rows {
        match Event::from_json(&json) {
            Ok(e) if e.herald_id() != Some(id) => c
                .problems
                .push(format!("outbox {id}: vnd.herald.id is {:?}", e.herald_id())),
            Ok(e) => {
                if let Err(v) = e.validate() {
                    c.problems.push(format!("outbox {id}: invalid event: {v}"));
                }
            }
            Err(e) => c.problems.push(format!("outbox {id}: {e}")),
        }
    }
    Ok(c)
}
