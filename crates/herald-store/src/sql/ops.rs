//! The mutations, as SQL on the writer's connection, each producing the events it causes.
//!
//! Every function here runs inside a SAVEPOINT opened by the writer (`writer.rs`): returning an
//! error rolls the operation back entirely, and the events returned with success are inserted
//! into the outbox under the same savepoint. The event rules of RFC 5423 §4 live here, next to
//! the state change they describe, one function per IMAP command, so a reader finds "what does
//! EXPUNGE emit" in one place:
//!
//! - no state change ⇒ no event (a STORE that changes nothing, a second SUBSCRIBE);
//! - CREATE `a/b/c` emits one MailboxCreate, for the leaf (§4.4: parents are implied);
//! - RENAME emits one MailboxRename (children implied); renaming INBOX leaves a new, empty INBOX
//!   with no MailboxCreate (§4.4);
//! - `\Seen` set ⇒ MessageRead, `\Deleted` set ⇒ MessageTrash, unless `seen_deleted_as_flags`;
//!   other flags ⇒ FlagsSet/FlagsClear, one event per distinct set of flags (§4.2);
//! - a failed append or delivery over quota commits only its QuotaExceed (§4.1);
//! - an expunge, expiry or mailbox deletion that takes usage from at-or-over a limit to under it
//!   also emits QuotaWithin (§4.1).

use super::{Dialect, Shared};
use crate::acl::{self, Rights};
use crate::backend::{Op, Output};
use crate::blobs::BlobRef;
use crate::context::SessionContext;
use crate::error::QuotaResource;
use crate::error::{Result, StoreError};
use crate::events::EventCx;
use crate::flags::{self, FlagMode};
use crate::model::*;
use crate::names;
use crate::sql::{Db, OptionalExtension, Result as SqlResult, Row, last_event_id_sql, params};
use crate::threading::{self, ThreadKeys};
use herald_events::{Event, EventType, FlagNames, SYSTEM_FLAGS, UidSet, vnd};
use std::collections::BTreeMap;

/// A successful operation: its output, its events (ids not yet assigned) and the mailboxes it
/// changed (for notifications).
pub(crate) struct Done {
    pub output: Output,
    pub events: Vec<Event>,
    pub mailboxes: Vec<i64>,
}

/// A failed operation: the error, and events that must be committed anyway (QuotaExceed).
pub(crate) struct Failed {
    pub error: StoreError,
    pub events: Vec<Event>,
}

impl<E: Into<StoreError>> From<E> for Failed {
    fn from(e: E) -> Failed {
        Failed {
            error: e.into(),
            events: Vec::new(),
        }
    }
}

pub(crate) type OpResult = std::result::Result<Done, Failed>;

pub(crate) fn done(output: Output, events: Vec<Event>, mailboxes: Vec<i64>) -> OpResult {
    Ok(Done {
        output,
        events,
        mailboxes,
    })
}

/// Applies one operation.
pub(crate) fn apply(conn: &dyn Db, shared: &Shared, ctx: &SessionContext, op: &Op) -> OpResult {
    let ecx = EventCx::new(
        &shared.config.server_fqdn,
        shared.config.node.as_deref(),
        ctx,
    );
    let env = Env {
        conn,
        shared,
        ecx: &ecx,
    };
    match op {
        Op::AddUser {
            name,
            password_hash,
            admin,
        } => env.add_user(name, password_hash, *admin),
        Op::DeleteUser { name } => env.delete_user(name),
        Op::SetDisabled {
            name,
            disabled,
            reason,
        } => env.set_disabled(name, *disabled, reason.as_deref()),
        Op::SetPassword {
            name,
            password_hash,
        } => env.set_password(name, password_hash),
        Op::SetQuota {
            user,
            storage_kb,
            messages,
        } => env.set_quota(user, *storage_kb, *messages),
        Op::CreateMailbox {
            account,
            name,
            special_use,
        } => env.create_mailbox(account, name, *special_use),
        Op::DeleteMailbox { account, name } => env.delete_mailbox(account, name),
        Op::RenameMailbox { account, from, to } => env.rename_mailbox(account, from, to),
        Op::Subscribe { account, name, on } => env.subscribe(account, name, *on),
        Op::SetMailboxAttrs {
            account,
            name,
            special_use,
            max_age_secs,
        } => env.set_attrs(account, name, *special_use, *max_age_secs),
        Op::Append {
            account,
            mailbox,
            blob,
            flags,
            internal_date_ms,
            envelope,
            thread,
        } => env.append(
            account,
            mailbox,
            NewMessage {
                blob,
                flags,
                internal_date_ms: *internal_date_ms,
                thread,
                uid: None,
            },
            envelope.as_deref(),
            vnd_cause::APPEND,
        ),
        Op::AppendMany {
            account,
            mailbox,
            messages,
        } => env.append_many(account, mailbox, messages),
        Op::Import {
            account,
            mailbox,
            uidvalidity,
            messages,
            uidnext,
            progress,
        } => env.import(
            account,
            mailbox,
            (*uidvalidity, *uidnext),
            messages,
            progress.as_ref(),
        ),
        Op::Copy {
            account,
            from,
            uids,
            to_account,
            to,
            remove_source,
        } => env.copy(account, from, uids, (to_account, to), *remove_source),
        Op::SetAcl {
            account,
            mailbox,
            identifier,
            rights,
        } => env.set_acl(account, mailbox, identifier, *rights),
        Op::StoreFlags {
            account,
            mailbox,
            uids,
            mode,
            flags,
            unchanged_since,
        } => env.store_flags(account, mailbox, uids, *mode, flags, *unchanged_since),
        Op::Access { account, access } => env.access(account, *access),
        Op::LoginFailed {
            user,
            mechanism,
            failure,
        } => env.login_failed(user, mechanism, *failure),
        Op::ClaimRecent {
            account,
            mailbox,
            uidvalidity,
            upto,
        } => env.claim_recent(account, mailbox, *uidvalidity, *upto),
        Op::Expunge {
            account,
            mailbox,
            uids,
            deleted_only,
        } => env.expunge(account, mailbox, uids.as_ref(), *deleted_only),
        Op::Expire { account, now_ms } => env.expire(account.as_deref(), *now_ms),
        Op::PutDelivery(r) => delivery::put(conn, r),
        Op::DeleteDelivery { name } => delivery::delete(conn, name),
        Op::SetDeliveryCursor { name, cursor } => delivery::set_cursor(conn, name, *cursor),
        Op::SetDeliveryStats {
            name,
            cursor,
            stats,
            fence,
        } => delivery::set_stats(conn, name, *cursor, stats, fence.as_ref()),
        Op::SetDeliveryState {
            name,
            paused,
            disabled_reason,
        } => delivery::set_state(conn, name, *paused, disabled_reason.as_deref()),
        Op::ParkEvents {
            name,
            ids,
            reason,
            cursor,
            now_ms,
            fence,
        } => delivery::park(conn, name, ids, reason, *cursor, *now_ms, fence.as_ref()),
        Op::ClaimDelivery {
            name,
            node,
            now_ms,
            until_ms,
        } => delivery::claim(conn, name, node, *now_ms, *until_ms),
        Op::ReleaseDelivery { name, node } => delivery::release(conn, name, node),
        Op::UnparkEvents { name, ids } => delivery::unpark(conn, name, ids),
        Op::PruneOutbox {
            policy,
            hold,
            now_ms,
        } => super::prune::prune(conn, policy, *hold, *now_ms),
        Op::SweepThreads => super::prune::sweep_threads(conn),
        Op::PutPushSubscription { sub, max } => push::put(conn, sub, *max),
        Op::DeletePushSubscription { account, endpoint } => push::delete(conn, account, endpoint),
        Op::SetMetadata {
            account,
            mailbox,
            entries,
        } => super::metadata::set(conn, shared, &ecx, account, mailbox.as_deref(), entries),
        Op::CreateAccessKey {
            account,
            mailbox,
            key,
        } => access_keys::create(conn, account, mailbox, key),
        Op::ResetAccessKeys { account, mailbox } => {
            access_keys::reset(conn, account, mailbox.as_deref())
        }
    }
}

/// URLAUTH mailbox access keys (`crate::urlauth`): no mail state, no events.
mod access_keys {
    use super::{OpResult, account, done, find_mailbox};
    use crate::backend::Output;
    use crate::error::StoreError;
    use crate::names;
    use crate::sql::{Db, OptionalExtension, params};
    use crate::urlauth::AccessKey;

    fn mailbox_id(conn: &dyn Db, account_id: i64, mailbox: &str) -> crate::error::Result<i64> {
        let name = names::mailbox(mailbox, false)?;
        match find_mailbox(conn, account_id, &name)? {
            Some(mb) if !mb.noselect => Ok(mb.id),
            Some(mb) => Err(StoreError::NoSelect(mb.name)),
            None => Err(StoreError::not_found("mailbox", &name)),
        }
    }

    /// Stores `key` unless the mailbox has a key already (two first uses racing): either way
    /// the answer is the key in force, so both callers sign with the same one.
    pub fn create(conn: &dyn Db, user: &str, mailbox: &str, key: &AccessKey) -> OpResult {
        let acct = account(conn, user)?;
        let id = mailbox_id(conn, acct.id, mailbox)?;
        conn.prepare_cached(
            "INSERT INTO urlauth_keys (mailbox_id, account_id, key, created_ms)
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (mailbox_id) DO NOTHING",
        )?
        .execute(params![id, acct.id, &key[..], crate::model::now_ms()])?;
        let stored: Vec<u8> = conn
            .prepare_cached("SELECT key FROM urlauth_keys WHERE mailbox_id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::Corrupt("an access key vanished".into()))?;
        let stored: AccessKey = stored
            .try_into()
            .map_err(|_| StoreError::Corrupt("an access key of the wrong length".into()))?;
        done(Output::AccessKey(stored), Vec::new(), Vec::new())
    }

    pub fn reset(conn: &dyn Db, user: &str, mailbox: Option<&str>) -> OpResult {
        let acct = account(conn, user)?;
        match mailbox {
            Some(m) => {
                let id = mailbox_id(conn, acct.id, m)?;
                conn.prepare_cached("DELETE FROM urlauth_keys WHERE mailbox_id = ?1")?
                    .execute([id])?;
            }
            None => {
                conn.prepare_cached("DELETE FROM urlauth_keys WHERE account_id = ?1")?
                    .execute([acct.id])?;
            }
        }
        done(Output::None, Vec::new(), Vec::new())
    }
}

/// Push subscriptions (WebPush sink): no mail state, no events.
mod push {
    use super::{OpResult, account, done};
    use crate::backend::Output;
    use crate::error::StoreError;
    use crate::model::PushSubscription;
    use crate::sql::{Db, params};

    pub fn put(conn: &dyn Db, s: &PushSubscription, max: usize) -> OpResult {
        let acct = account(conn, &s.user)?;
        let known: i64 = conn
            .prepare_cached(
                "SELECT count(*) FROM push_subscriptions WHERE account_id = ?1 AND endpoint != ?2",
            )?
            .query_row(params![acct.id, s.endpoint], |r| r.get(0))?;
        if known as usize >= max {
            return Err(StoreError::InvalidArgument(format!(
                "account `{}` already has {known} push subscriptions (at most {max})",
                s.user
            ))
            .into());
        }
        conn.prepare_cached(
            "INSERT INTO push_subscriptions (account_id, endpoint, p256dh, auth, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (account_id, endpoint) DO UPDATE SET p256dh = ?3, auth = ?4,
               created_ms = ?5",
        )?
        .execute(params![acct.id, s.endpoint, s.p256dh, s.auth, s.created_ms])?;
        done(Output::None, Vec::new(), Vec::new())
    }

    pub fn delete(conn: &dyn Db, user: &str, endpoint: &str) -> OpResult {
        let acct = account(conn, user)?;
        let n = conn
            .prepare_cached(
                "DELETE FROM push_subscriptions WHERE account_id = ?1 AND endpoint = ?2",
            )?
            .execute(params![acct.id, endpoint])?;
        if n == 0 {
            return Err(StoreError::not_found("push subscription", endpoint).into());
        }
        done(Output::None, Vec::new(), Vec::new())
    }
}

/// Delivery state (subscriptions, cursors, parked events): no mail state, no events.
pub(crate) mod delivery {
    use super::{OpResult, done};
    use crate::backend::Output;
    use crate::error::StoreError;
    use crate::model::{DeliveryRecord, DeliveryStats, LeaseFence};
    use crate::sql::{Db, OptionalExtension, params};

    fn exists(conn: &dyn Db, name: &str) -> Result<(), StoreError> {
        let n: i64 = conn
            .prepare_cached("SELECT count(*) FROM deliveries WHERE name = ?1")?
            .query_row([name], |r| r.get(0))?;
        if n == 0 {
            return Err(StoreError::not_found("subscription", name));
        }
        Ok(())
    }

    /// Creates or replaces a record; an existing one keeps its counters (a restart that
    /// reconciles the configured subscriptions must not reset them).
    pub fn put(conn: &dyn Db, r: &DeliveryRecord) -> OpResult {
        let s = &r.stats;
        conn.prepare_cached(
            "INSERT INTO deliveries (name, config, origin, paused, disabled_reason, cursor,
               delivered, retries, failures, failing_since_ms, last_error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (name) DO UPDATE SET config = ?2, origin = ?3, paused = ?4,
               disabled_reason = ?5, cursor = ?6",
        )?
        .execute(params![
            r.name,
            r.config,
            r.origin,
            r.paused,
            r.disabled_reason,
            r.cursor as i64,
            s.delivered as i64,
            s.retries as i64,
            s.failures as i64,
            s.failing_since_ms,
            s.last_error,
        ])?;
        done(Output::None, Vec::new(), Vec::new())
    }

    /// Refuses a write by a node that no longer holds the lease, or whose cursor is not the
    /// stored one any more (an operator moved it).
    fn check_fence(
        conn: &dyn Db,
        name: &str,
        fence: Option<&LeaseFence>,
    ) -> Result<(), StoreError> {
        let Some(fence) = fence else {
            return Ok(());
        };
        let (node, cursor): (Option<String>, i64) = conn
            .prepare_cached("SELECT lease_node, cursor FROM deliveries WHERE name = ?1")?
            .query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))?;
        if node.as_deref() != Some(fence.node.as_str()) || cursor.max(0) as u64 != fence.cursor {
            return Err(StoreError::LeaseLost(name.to_owned()));
        }
        Ok(())
    }

    pub fn claim(conn: &dyn Db, name: &str, node: &str, now_ms: i64, until_ms: i64) -> OpResult {
        exists(conn, name)?;
        let taken = conn
            .prepare_cached(
                "UPDATE deliveries SET lease_node = ?2, lease_until_ms = ?4
                 WHERE name = ?1 AND (lease_node IS NULL OR lease_node = ?2 OR lease_until_ms < ?3)",
            )?
            .execute(params![name, node, now_ms, until_ms])?;
        if taken == 0 {
            return done(Output::Claimed(None), Vec::new(), Vec::new());
        }
        let record = conn
            .prepare_cached(
                "SELECT name, config, origin, paused, disabled_reason, cursor,
                   delivered, retries, failures, failing_since_ms, last_error
                 FROM deliveries WHERE name = ?1",
            )?
            .query_row([name], record_row)
            .optional()?
            .ok_or_else(|| StoreError::not_found("subscription", name))?;
        done(
            Output::Claimed(Some(Box::new(record))),
            Vec::new(),
            Vec::new(),
        )
    }

    pub fn release(conn: &dyn Db, name: &str, node: &str) -> OpResult {
        conn.prepare_cached(
            "UPDATE deliveries SET lease_node = NULL, lease_until_ms = 0
             WHERE name = ?1 AND lease_node = ?2",
        )?
        .execute(params![name, node])?;
        done(Output::None, Vec::new(), Vec::new())
    }

    /// A `deliveries` row read by its usual columns.
    pub fn record_row(r: &dyn crate::sql::Row) -> crate::sql::Result<DeliveryRecord> {
        Ok(DeliveryRecord {
            name: r.get(0)?,
            config: r.get(1)?,
            origin: r.get(2)?,
            paused: r.get(3)?,
            disabled_reason: r.get(4)?,
            cursor: r.get::<_, i64>(5)?.max(0) as u64,
            stats: DeliveryStats {
                delivered: r.get::<_, i64>(6)?.max(0) as u64,
                retries: r.get::<_, i64>(7)?.max(0) as u64,
                failures: r.get::<_, i64>(8)?.max(0) as u64,
                failing_since_ms: r.get(9)?,
                last_error: r.get(10)?,
            },
        })
    }

    pub fn set_stats(
        conn: &dyn Db,
        name: &str,
        cursor: Option<u64>,
        s: &DeliveryStats,
        fence: Option<&LeaseFence>,
    ) -> OpResult {
        exists(conn, name)?;
        check_fence(conn, name, fence)?;
        conn.prepare_cached(
            "UPDATE deliveries SET cursor = coalesce(?2, cursor), delivered = ?3, retries = ?4,
               failures = ?5, failing_since_ms = ?6, last_error = ?7 WHERE name = ?1",
        )?
        .execute(params![
            name,
            cursor.map(|c| c as i64),
            s.delivered as i64,
            s.retries as i64,
            s.failures as i64,
            s.failing_since_ms,
            s.last_error,
        ])?;
        done(Output::None, Vec::new(), Vec::new())
    }

    pub fn delete(conn: &dyn Db, name: &str) -> OpResult {
        exists(conn, name)?;
        conn.prepare_cached("DELETE FROM parked WHERE delivery = ?1")?
            .execute([name])?;
        conn.prepare_cached("DELETE FROM deliveries WHERE name = ?1")?
            .execute([name])?;
        done(Output::None, Vec::new(), Vec::new())
    }

    pub fn set_cursor(conn: &dyn Db, name: &str, cursor: u64) -> OpResult {
        exists(conn, name)?;
        conn.prepare_cached("UPDATE deliveries SET cursor = ?2 WHERE name = ?1")?
            .execute(params![name, cursor as i64])?;
        done(Output::None, Vec::new(), Vec::new())
    }

    pub fn set_state(
        conn: &dyn Db,
        name: &str,
        paused: bool,
        disabled_reason: Option<&str>,
    ) -> OpResult {
        exists(conn, name)?;
        conn.prepare_cached(
            "UPDATE deliveries SET paused = ?2, disabled_reason = ?3 WHERE name = ?1",
        )?
        .execute(params![name, paused, disabled_reason])?;
        done(Output::None, Vec::new(), Vec::new())
    }

    pub fn park(
        conn: &dyn Db,
        name: &str,
        ids: &[u64],
        reason: &str,
        cursor: u64,
        now_ms: i64,
        fence: Option<&LeaseFence>,
    ) -> OpResult {
        exists(conn, name)?;
        check_fence(conn, name, fence)?;
        let mut insert = conn.prepare_cached(
            "INSERT INTO parked (delivery, event_id, reason, parked_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (delivery, event_id)
             DO UPDATE SET reason = excluded.reason, parked_ms = excluded.parked_ms",
        )?;
        for id in ids {
            insert.execute(params![name, *id as i64, reason, now_ms])?;
        }
        conn.prepare_cached(
            "UPDATE deliveries SET cursor = CASE WHEN cursor > ?2 THEN cursor ELSE ?2 END
             WHERE name = ?1",
        )?
        .execute(params![name, cursor as i64])?;
        done(Output::None, Vec::new(), Vec::new())
    }

    pub fn unpark(conn: &dyn Db, name: &str, ids: &[u64]) -> OpResult {
        let mut delete =
            conn.prepare_cached("DELETE FROM parked WHERE delivery = ?1 AND event_id = ?2")?;
        for id in ids {
            delete.execute(params![name, *id as i64])?;
        }
        done(Output::None, Vec::new(), Vec::new())
    }
}

/// An account row.
#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub id: i64,
    pub name: String,
    pub quota_kb: Option<u64>,
    pub quota_messages: Option<u64>,
    pub used_bytes: u64,
    pub used_messages: u64,
    /// The number the account's next new thread takes (see [`Env::thread_acquire`]).
    pub next_thread: i64,
}

/// A mailbox row.
#[derive(Debug, Clone)]
pub(crate) struct Mbox {
    pub id: i64,
    pub name: String,
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub modseq: u64,
    pub messages: u64,
    pub noselect: bool,
    pub special_use: Option<SpecialUse>,
    pub max_age_secs: Option<u64>,
    pub recent_uid: u32,
    /// Every expunge with a MODSEQ above this has its tombstone (schema v5).
    pub tombstone_floor: u64,
}

impl Mbox {
    pub fn info(&self) -> MailboxInfo {
        MailboxInfo {
            id: self.id,
            name: self.name.clone(),
            uidvalidity: self.uidvalidity,
            uidnext: self.uidnext,
            highest_modseq: self.modseq,
            messages: self.messages,
            noselect: self.noselect,
            special_use: self.special_use,
            max_age_secs: self.max_age_secs,
            recent_uid: self.recent_uid,
        }
    }
}

pub(crate) const MAILBOX_COLUMNS: &str = "id, name, uidvalidity, uidnext, highestmodseq, messages, noselect, special_use, max_age_secs, \
     recent_uid, tombstone_floor";

pub(crate) fn mailbox_row(r: &dyn Row) -> SqlResult<Mbox> {
    let special: Option<String> = r.get(7)?;
    Ok(Mbox {
        id: r.get(0)?,
        name: r.get(1)?,
        uidvalidity: r.get(2)?,
        uidnext: r.get(3)?,
        modseq: r.get::<_, i64>(4)? as u64,
        messages: r.get::<_, i64>(5)? as u64,
        noselect: r.get(6)?,
        special_use: special.and_then(|s| s.parse().ok()),
        max_age_secs: r.get::<_, Option<i64>>(8)?.map(|v| v as u64),
        recent_uid: r.get(9)?,
        tombstone_floor: r.get::<_, i64>(10)? as u64,
    })
}

pub(crate) fn account(conn: &dyn Db, name: &str) -> Result<Account> {
    conn.prepare_cached(
        "SELECT id, name, quota_storage_kb, quota_messages, used_bytes, used_messages,
                next_thread
         FROM accounts WHERE name = ?1",
    )?
    .query_row([name], |r| {
        Ok(Account {
            id: r.get(0)?,
            name: r.get(1)?,
            quota_kb: r.get::<_, Option<i64>>(2)?.map(|v| v as u64),
            quota_messages: r.get::<_, Option<i64>>(3)?.map(|v| v as u64),
            used_bytes: r.get::<_, i64>(4)? as u64,
            used_messages: r.get::<_, i64>(5)? as u64,
            next_thread: r.get(6)?,
        })
    })
    .optional()?
    .ok_or_else(|| StoreError::not_found("account", name))
}

pub(crate) fn find_mailbox(conn: &dyn Db, account_id: i64, name: &str) -> Result<Option<Mbox>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = ?1 AND name = ?2"
        ))?
        .query_row(params![account_id, name], mailbox_row)
        .optional()?)
}

/// Mailboxes strictly below `name`, by name range (`name/` ≤ x < `name0`, '0' = '/' + 1).
fn descendants(conn: &dyn Db, account_id: i64, name: &str) -> Result<Vec<Mbox>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {MAILBOX_COLUMNS} FROM mailboxes
         WHERE account_id = ?1 AND name >= ?2 AND name < ?3 ORDER BY name"
    ))?;
    let rows = stmt
        .query_map(
            params![account_id, format!("{name}/"), format!("{name}0")],
            mailbox_row,
        )?
        .collect::<SqlResult<Vec<_>>>()?;
    Ok(rows)
}

/// The `meta` row holding an import's resume point. The account's id (never reused) is part
/// of it, so an account deleted and created again starts its imports afresh.
pub(crate) fn import_progress_key(account_id: i64, key: &str) -> String {
    format!("import/{account_id}/{key}")
}

fn next_uidvalidity(conn: &dyn Db) -> Result<u32> {
    let last: Option<i64> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = 'uidvalidity'")?
        .query_row((), |r| r.get(0))
        .optional()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(1);
    let next = last
        .map_or(now, |l| (l + 1).max(now))
        .clamp(1, i64::from(u32::MAX));
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES ('uidvalidity', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute([next])?;
    Ok(next as u32)
}

fn insert_mailbox(
    conn: &dyn Db,
    account_id: i64,
    name: &str,
    special_use: Option<SpecialUse>,
) -> Result<Mbox> {
    let uidvalidity = next_uidvalidity(conn)?;
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO mailboxes (account_id, name, uidvalidity, special_use)
             VALUES (?1, ?2, ?3, ?4) RETURNING id",
        )?
        .query_row(
            params![
                account_id,
                name,
                uidvalidity,
                special_use.map(SpecialUse::as_str)
            ],
            |r| r.get(0),
        )?;
    Ok(Mbox {
        id,
        name: name.to_owned(),
        uidvalidity,
        uidnext: 1,
        modseq: 1,
        messages: 0,
        noselect: false,
        special_use,
        max_age_secs: None,
        recent_uid: 1,
        tombstone_floor: 0,
    })
}

/// Sorts flags canonically: system flags in RFC order, then keywords case-insensitively.
fn sort_flags(v: &mut [String]) {
    v.sort_by_key(|f| {
        let sys = SYSTEM_FLAGS
            .iter()
            .position(|s| s.eq_ignore_ascii_case(f))
            .unwrap_or(SYSTEM_FLAGS.len());
        (sys, f.to_ascii_lowercase())
    });
}

/// (uid, blob_id, size, flags column, internaldate ms, modseq, thread id).
type MsgRow = (u32, i64, u64, String, i64, u64, i64);

/// A row removed by expunge, expiry or deletion.
struct Gone {
    uid: u32,
    blob_id: i64,
    size: u64,
}

impl Gone {
    fn of(rows: Vec<MsgRow>) -> Vec<Gone> {
        rows.into_iter()
            .map(|(uid, blob_id, size, ..)| Gone { uid, blob_id, size })
            .collect()
    }
}

/// Whether removed messages leave tombstones: an expunge does (a client resynchronising with
/// QRESYNC must learn of it); deleting the mailbox does not (its tombstones go with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tombstones {
    Record,
    Skip,
}

/// A message to add, as APPEND and delivery give it.
struct NewMessage<'a> {
    blob: &'a BlobRef,
    flags: &'a [String],
    internal_date_ms: i64,
    thread: &'a ThreadKeys,
    /// The UID asked for (an import keeping the source's UIDs); used when it is at or above
    /// the mailbox's UIDNEXT, so UIDs still only ever grow.
    uid: Option<u32>,
}

struct Env<'a> {
    conn: &'a dyn Db,
    shared: &'a Shared,
    ecx: &'a EventCx<'a>,
}

impl Env<'_> {
    /// The session's user when it acts on another account's mailbox: the one case whose
    /// rights are checked. Sessions with no user (delivery, admin tools) and owners are not.
    fn guest(&self, acct: &Account) -> Option<&str> {
        self.ecx.ctx.user.as_deref().filter(|u| *u != acct.name)
    }

    /// RFC 4314 in one place: a guest's rights on `mb` must include `need`. A mailbox the
    /// guest may not even see answers as a missing one (NotFound), so its existence is not
    /// revealed; a visible one without the right is NoPermission. Returns the caller's rights.
    fn require(&self, acct: &Account, mb: &Mbox, need: Rights) -> Result<Rights> {
        let Some(user) = self.guest(acct) else {
            return Ok(Rights::ALL);
        };
        let have = super::acl::rights_of(self.conn, &acct.name, mb.id, user)?;
        let name = acl::shared_name(&acct.name, &mb.name);
        if !have.sees() {
            return Err(StoreError::not_found("mailbox", name));
        }
        let missing = need.without(have);
        if !missing.is_empty() {
            return Err(StoreError::NoPermission {
                mailbox: name,
                needed: missing.to_string(),
            });
        }
        Ok(have)
    }

    /// For CREATE and RENAME into another account: the guest needs `k` on the new name's
    /// parent, which must exist (only the owner creates top-level mailboxes).
    fn require_create(&self, acct: &Account, name: &str) -> Result<()> {
        let Some(user) = self.guest(acct) else {
            return Ok(());
        };
        if acct.name == acl::SHARED_OWNER && super::acl::is_admin(self.conn, user)? {
            // Administrators stand in for the owner the "Shared" namespace has not.
            return Ok(());
        }
        let parent = names::ancestors(name).last();
        match parent
            .map(|p| find_mailbox(self.conn, acct.id, p))
            .transpose()?
        {
            Some(Some(p)) => self.require(acct, &p, Rights::CREATE).map(|_| ()),
            _ => Err(StoreError::NoPermission {
                mailbox: acl::shared_name(&acct.name, name),
                needed: "k".into(),
            }),
        }
    }

    fn selectable(&self, account_id: i64, name: &str) -> Result<Mbox> {
        match find_mailbox(self.conn, account_id, name)? {
            None => Err(StoreError::not_found("mailbox", name)),
            Some(m) if m.noselect => Err(StoreError::NoSelect(name.to_owned())),
            Some(m) => Ok(m),
        }
    }

    /// Moves the account's usage; removed messages also count towards its thread debt (the
    /// identifiers they may leave in `thread_refs`, swept by `sweep_threads`). `threads`: how
    /// many thread numbers [`Env::thread_acquire`] took for the account meanwhile, recorded in
    /// the same write of its row.
    fn add_usage(&self, account_id: i64, bytes: i64, messages: i64, threads: i64) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE accounts SET used_bytes = used_bytes + ?2, used_messages = used_messages + ?3,
                   thread_debt = thread_debt + ?4, next_thread = next_thread + ?5
                 WHERE id = ?1",
            )?
            .execute(params![
                account_id,
                bytes,
                messages,
                (-messages).max(0),
                threads
            ])?;
        Ok(())
    }

    /// Takes a reference on a blob, inserting it when new. A fresh file blob's file must exist.
    ///
    /// No `RETURNING` here or in the other per-message statements: SQLite answers it through
    /// an ephemeral table with its own page cache, set up and torn down at every execution,
    /// which cost a tenth of the writer's time per delivery — more than a second lookup.
    fn blob_acquire(&self, blob: &BlobRef) -> Result<i64> {
        let existing: Option<i64> = self
            .conn
            .prepare_cached("SELECT id FROM blobs WHERE sha256 = ?1")?
            .query_row([&blob.sha256[..]], |r| r.get(0))
            .optional()?;
        if let Some(id) = existing {
            self.conn
                .prepare_cached("UPDATE blobs SET refcount = refcount + 1 WHERE id = ?1")?
                .execute([id])?;
            return Ok(id);
        }
        if blob.on_file {
            // The file may have been unlinked since the caller wrote it (its last reference was
            // dropped meanwhile); we hold the write lock, so after this check it stays.
            let dir =
                self.shared.blobs.as_ref().ok_or_else(|| {
                    StoreError::Corrupt("this backend keeps no message files".into())
                })?;
            if !dir.exists(&blob.sha256) {
                dir.write(&blob.sha256, &blob.data)?;
            }
            self.conn
                .prepare_cached("DELETE FROM blob_trash WHERE sha256 = ?1")?
                .execute([&blob.sha256[..]])?;
        }
        let data: Option<&[u8]> = (!blob.on_file).then_some(&blob.data[..]);
        let (sha, size): (&[u8], i64) = (&blob.sha256, blob.size() as i64);
        let args = params![sha, size, data];
        if self.conn.dialect() == Dialect::Postgres {
            return Ok(self.conn.query_row(
                "INSERT INTO blobs (sha256, size, refcount, data) VALUES (?1, ?2, 1, ?3)
                 RETURNING id",
                args,
                |r| r.get(0),
            )?);
        }
        // SQLite: the id the insert gave, without RETURNING's ephemeral table (see above).
        self.conn.execute(
            "INSERT INTO blobs (sha256, size, refcount, data) VALUES (?1, ?2, 1, ?3)",
            args,
        )?;
        Ok(self
            .conn
            .query_row("SELECT last_insert_rowid()", (), |r| r.get(0))?)
    }

    /// Drops a reference; the last one deletes the row and queues a file for unlinking.
    fn blob_release(&self, blob_id: i64) -> Result<()> {
        let (refcount, on_file, sha): (i64, bool, Vec<u8>) = self
            .conn
            .prepare_cached("SELECT refcount, data IS NULL, sha256 FROM blobs WHERE id = ?1")?
            .query_row([blob_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?
            .ok_or_else(|| {
                StoreError::Corrupt(format!("message refers to missing blob {blob_id}"))
            })?;
        if refcount > 1 {
            self.conn
                .prepare_cached("UPDATE blobs SET refcount = refcount - 1 WHERE id = ?1")?
                .execute([blob_id])?;
            return Ok(());
        }
        self.conn
            .prepare_cached("DELETE FROM blobs WHERE id = ?1")?
            .execute([blob_id])?;
        if on_file {
            self.conn
                .prepare_cached(
                    "INSERT INTO blob_trash (sha256) VALUES (?1) ON CONFLICT DO NOTHING",
                )?
                .execute([sha])?;
        }
        Ok(())
    }

    /// Deletes message rows, releases their blobs, records their tombstones
    /// (when asked), updates the mailbox (messages, modseq) and the account's usage. Returns
    /// the mailbox's new modseq.
    fn remove_messages(
        &self,
        account_id: i64,
        mb: &Mbox,
        gone: &[Gone],
        tombstones: Tombstones,
    ) -> Result<u64> {
        let mut del = self
            .conn
            .prepare_cached("DELETE FROM messages WHERE mailbox_id = ?1 AND uid = ?2")?;
        let mut bytes = 0u64;
        for g in gone {
            del.execute(params![mb.id, g.uid])?;
            self.blob_release(g.blob_id)?;
            bytes += g.size;
        }
        let modseq = mb.modseq + 1;
        self.conn
            .prepare_cached(
                "UPDATE mailboxes SET messages = messages - ?2, highestmodseq = ?3 WHERE id = ?1",
            )?
            .execute(params![mb.id, gone.len() as i64, modseq as i64])?;
        self.add_usage(account_id, -(bytes as i64), -(gone.len() as i64), 0)?;
        if tombstones == Tombstones::Record {
            self.bury(mb.id, gone.iter().map(|g| g.uid), modseq)?;
        }
        Ok(modseq)
    }

    /// Records tombstones for UIDs expunged at `modseq`, then, past the configured number per
    /// mailbox, drops the older half and raises the mailbox's floor to the newest MODSEQ
    /// dropped: from then on only clients synchronised at or after the floor get exact
    /// VANISHED answers, which bounds the table without ever making an answer wrong.
    fn bury(&self, mailbox_id: i64, uids: impl Iterator<Item = u32>, modseq: u64) -> Result<()> {
        let mut insert = self.conn.prepare_cached(
            "INSERT INTO expunged (mailbox_id, uid, modseq) VALUES (?1, ?2, ?3)
             ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = excluded.modseq",
        )?;
        let mut n = 0i64;
        for uid in uids {
            insert.execute(params![mailbox_id, uid, modseq as i64])?;
            n += 1;
        }
        self.conn
            .prepare_cached("UPDATE mailboxes SET tombstones = tombstones + ?2 WHERE id = ?1")?
            .execute(params![mailbox_id, n])?;
        let count: i64 = self
            .conn
            .prepare_cached("SELECT tombstones FROM mailboxes WHERE id = ?1")?
            .query_row([mailbox_id], |r| r.get(0))?;
        let max = i64::from(self.shared.config.tombstones_per_mailbox.max(2));
        if count <= max {
            return Ok(());
        }
        // The MODSEQ at the middle: everything at or below it goes. Rare (once per half the
        // limit's expunges), so the ORDER BY's re-prepare does not matter here.
        let cutoff: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT modseq FROM expunged WHERE mailbox_id = ?1
                 ORDER BY modseq DESC LIMIT 1 OFFSET ?2",
            )?
            .query_row(params![mailbox_id, max / 2], |r| r.get(0))
            .optional()?;
        let Some(cutoff) = cutoff else {
            return Ok(());
        };
        let dropped = self
            .conn
            .prepare_cached("DELETE FROM expunged WHERE mailbox_id = ?1 AND modseq <= ?2")?
            .execute(params![mailbox_id, cutoff])?;
        self.conn
            .prepare_cached(
                "UPDATE mailboxes SET tombstones = tombstones - ?2,
                   tombstone_floor = CASE WHEN tombstone_floor > ?3 THEN tombstone_floor ELSE ?3 END
                 WHERE id = ?1",
            )?
            .execute(params![mailbox_id, dropped as i64, cutoff])?;
        Ok(())
    }

    /// Forgets a mailbox's tombstones (the mailbox is deleted, or becomes `\Noselect`: its
    /// UIDs can never be asked about again).
    fn forget_tombstones(&self, mailbox_id: i64) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM expunged WHERE mailbox_id = ?1")?
            .execute([mailbox_id])?;
        self.conn
            .prepare_cached(
                "UPDATE mailboxes SET tombstones = 0, tombstone_floor = 0 WHERE id = ?1",
            )?
            .execute([mailbox_id])?;
        Ok(())
    }

    /// The thread a new message of the account joins: that of any message that carries or
    /// replies to one of its identifiers (the lowest such thread, so the choice does not
    /// depend on the order identifiers are looked at), else a new one. Records the message's
    /// identifiers for the messages after it.
    ///
    /// A new thread takes `*next` and moves it on. The caller starts it at the account's
    /// `next_thread` and passes how far it moved to [`Env::add_usage`], which writes it with
    /// the usage: one write of the account's row per stored message instead of two.
    fn thread_acquire(&self, account_id: i64, keys: &ThreadKeys, next: &mut i64) -> Result<i64> {
        let keys: Vec<i64> = keys.all().map(threading::key).collect();
        let mut find = self.conn.prepare_cached(
            "SELECT thread_id FROM thread_refs WHERE account_id = ?1 AND key = ?2",
        )?;
        let mut found: Option<i64> = None;
        for key in &keys {
            if let Some(t) = find
                .query_row(params![account_id, key], |r| r.get::<_, i64>(0))
                .optional()?
            {
                found = Some(found.map_or(t, |f| f.min(t)));
            }
        }
        let thread = found.unwrap_or_else(|| {
            *next += 1;
            *next - 1
        });
        let mut remember = self.conn.prepare_cached(
            "INSERT INTO thread_refs (account_id, key, thread_id) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
        )?;
        for key in &keys {
            remember.execute(params![account_id, key, thread])?;
        }
        Ok(thread)
    }

    /// Messages of a mailbox: (uid, blob_id, size, flags, internaldate, modseq), restricted to
    /// `uids`, to `\Deleted` ones when `deleted_only`, to those older than `before` (ms).
    fn messages_in(
        &self,
        mailbox_id: i64,
        uids: Option<&UidSet>,
        deleted_only: bool,
        before: Option<i64>,
    ) -> Result<Vec<MsgRow>> {
        // Both read only the `\Deleted` messages through the partial index `messages_deleted`
        // (embedded schema 17, PostgreSQL 6), whose condition the query repeats; without
        // statistics SQLite's planner would prefer the primary key, so it is named there.
        let mut stmt = self.conn.prepare_cached(if deleted_only {
            self.conn.pick(
                r"SELECT uid, blob_id, size, flags, internaldate, modseq, thread_id
                 FROM messages INDEXED BY messages_deleted
                 WHERE mailbox_id = ?1 AND uid BETWEEN ?2 AND ?3
                   AND instr(' ' || flags || ' ', ' \Deleted ') > 0
                   AND (CAST(?4 AS BIGINT) IS NULL OR internaldate < ?4)",
                r"SELECT uid, blob_id, size, flags, internaldate, modseq, thread_id FROM messages
                 WHERE mailbox_id = ?1 AND uid BETWEEN ?2 AND ?3
                   AND instr(' ' || flags || ' ', ' \Deleted ') > 0
                   AND (CAST(?4 AS BIGINT) IS NULL OR internaldate < ?4)",
            )
        } else {
            r"SELECT uid, blob_id, size, flags, internaldate, modseq, thread_id FROM messages
             WHERE mailbox_id = ?1 AND uid BETWEEN ?2 AND ?3
               AND (CAST(?4 AS BIGINT) IS NULL OR internaldate < ?4)"
        })?;
        let mut rows: Vec<MsgRow> = crate::sql::read_uids(
            uids,
            |row: &MsgRow| row.0,
            |lo, hi| {
                stmt.query_map(params![mailbox_id, lo, hi, before], |r| {
                    Ok((
                        r.get::<_, u32>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)? as u64,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, i64>(5)? as u64,
                        r.get::<_, i64>(6)?,
                    ))
                })
            },
        )?;
        // Sorted here, not by ORDER BY, which would make SQLite re-prepare the statement on
        // every run (see `reads`).
        rows.sort_unstable_by_key(|row| row.0);
        Ok(rows)
    }

    /// A quota event (QuotaExceed, QuotaWithin, QuotaChange) with limits and usage. All three
    /// name their quota root the same way: `uri` is the account (`imap://user@host`), whose
    /// quota it is; a QuotaExceed caused by one mailbox names it in `mailboxID`.
    fn quota_event(
        &self,
        t: EventType,
        acct: &Account,
        used_bytes: u64,
        used_messages: u64,
        mailbox: Option<&Mbox>,
    ) -> Event {
        let mut e = self.ecx.account_event(t, &acct.name);
        e.mailbox_id = mailbox.map(|mb| {
            self.ecx
                .mailbox_url(&acct.name, &mb.name, Some(mb.uidvalidity))
        });
        e.disk_quota = acct.quota_kb;
        e.max_messages = acct.quota_messages;
        e.disk_used = Some(used_bytes.div_ceil(1024));
        e.messages = Some(used_messages);
        e
    }

    /// Fails with OverQuota (and a QuotaExceed event) when adding would exceed a limit.
    fn check_quota(
        &self,
        acct: &Account,
        add_bytes: u64,
        add_messages: u64,
        mb: &Mbox,
    ) -> std::result::Result<(), Failed> {
        let bytes = acct.used_bytes + add_bytes;
        let count = acct.used_messages + add_messages;
        let over = if let Some(limit) = acct.quota_kb.filter(|l| bytes > l.saturating_mul(1024)) {
            Some((QuotaResource::Storage, limit, bytes.div_ceil(1024)))
        } else {
            acct.quota_messages
                .filter(|l| count > *l)
                .map(|limit| (QuotaResource::Messages, limit, count))
        };
        match over {
            None => Ok(()),
            Some((resource, limit, usage)) => Err(Failed {
                error: StoreError::OverQuota {
                    user: acct.name.clone(),
                    resource,
                    limit,
                    usage,
                    event_id: 0,
                },
                events: vec![self.quota_event(
                    EventType::QuotaExceed,
                    acct,
                    acct.used_bytes,
                    acct.used_messages,
                    Some(mb),
                )],
            }),
        }
    }

    /// QuotaWithin when usage went from at-or-over a limit to under it; `cause` is what freed
    /// it (`vnd.herald.cause`).
    fn quota_within(
        &self,
        before: &Account,
        freed_bytes: u64,
        freed_messages: u64,
        cause: &'static str,
    ) -> Option<Event> {
        let bytes = before.used_bytes.saturating_sub(freed_bytes);
        let count = before.used_messages.saturating_sub(freed_messages);
        let storage = before
            .quota_kb
            .map(|l| l.saturating_mul(1024))
            .is_some_and(|l| before.used_bytes >= l && bytes < l);
        let messages = before
            .quota_messages
            .is_some_and(|l| before.used_messages >= l && count < l);
        (storage || messages).then(|| {
            let mut e = self.quota_event(EventType::QuotaWithin, before, bytes, count, None);
            e.set_extension(vnd::CAUSE, cause);
            e
        })
    }

    /// An event about some messages of a mailbox: one UID ⇒ a message URL and its modseq.
    /// `mailboxID` always names the mailbox with its UIDVALIDITY.
    fn messages_event(
        &self,
        t: EventType,
        account: &str,
        mb: &Mbox,
        uids: &[u32],
        modseq: u64,
    ) -> Event {
        let mut e = self.ecx.event(t, account);
        e.mailbox_id = Some(
            self.ecx
                .mailbox_url(account, &mb.name, Some(mb.uidvalidity)),
        );
        let set = UidSet::from_uids(uids.iter().copied());
        if let [uid] = uids {
            e.uri = Some(
                self.ecx
                    .message_url(account, &mb.name, mb.uidvalidity, *uid),
            );
            e.modseq = Some(modseq);
        } else {
            e.uri = Some(
                self.ecx
                    .mailbox_url(account, &mb.name, Some(mb.uidvalidity)),
            );
        }
        e.uidset = Some(set);
        e
    }

    // ---- accounts -------------------------------------------------------------------------

    fn set_password(&self, name: &str, hash: &str) -> OpResult {
        let changed = self
            .conn
            .prepare_cached("UPDATE accounts SET password_hash = ?2 WHERE name = ?1")?
            .execute(params![name, hash])?;
        if changed == 0 {
            return Err(StoreError::not_found("account", name).into());
        }
        let e = self.ecx.account_event(EventType::PasswordChange, name);
        done(Output::None, vec![e], Vec::new())
    }

    /// AccountDisable / AccountEnable, only on a change of state: disabling a disabled account
    /// again keeps its first date and note and says nothing.
    fn set_disabled(&self, name: &str, disabled: bool, reason: Option<&str>) -> OpResult {
        let was: Option<i64> = self
            .conn
            .prepare_cached("SELECT disabled_ms FROM accounts WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::not_found("account", name))?;
        if was.is_some() == disabled {
            return done(Output::None, Vec::new(), Vec::new());
        }
        let (at, note) = match disabled {
            true => (Some(crate::model::now_ms()), reason),
            false => (None, None),
        };
        self.conn
            .prepare_cached(
                "UPDATE accounts SET disabled_ms = ?2, disabled_reason = ?3 WHERE name = ?1",
            )?
            .execute(params![name, at, note])?;
        let t = match disabled {
            true => EventType::AccountDisable,
            false => EventType::AccountEnable,
        };
        let mut e = self.ecx.account_event(t, name);
        if let Some(note) = note {
            e.set_extension(herald_events::vnd::COMMENT, note);
        }
        done(Output::None, vec![e], Vec::new())
    }

    fn add_user(&self, name: &str, hash: &str, admin: bool) -> OpResult {
        names::user(name)?;
        let exists: bool = self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM accounts WHERE name = ?1)")?
            .query_row([name], |r| r.get(0))?;
        if exists {
            return Err(StoreError::exists("account", name).into());
        }
        // The account's events begin after the outbox as it is now: an account that once had
        // this name owns what came before.
        let id: i64 = self
            .conn
            .prepare_cached(&format!(
                "INSERT INTO accounts (name, password_hash, admin, first_event)
                 VALUES (?1, ?2, ?3, {}) RETURNING id",
                last_event_id_sql(self.conn)
            ))?
            .query_row(params![name, hash, admin], |r| r.get(0))?;
        // The INBOX is announced like any mailbox: consumers that follow mailboxes from events
        // alone need its UIDVALIDITY (Cyrus and Dovecot announce it too).
        let inbox = insert_mailbox(self.conn, id, "INBOX", None)?;
        let events = vec![
            self.ecx.account_event(EventType::AccountCreate, name),
            self.ecx.mailbox_event(
                EventType::MailboxCreate,
                name,
                &inbox.name,
                Some(inbox.uidvalidity),
            ),
        ];
        done(Output::Mailbox(inbox.info()), events, vec![inbox.id])
    }

    fn delete_user(&self, name: &str) -> OpResult {
        let acct = account(self.conn, name)?;
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = ?1 ORDER BY name"
        ))?;
        let boxes = stmt
            .query_map([acct.id], mailbox_row)?
            .collect::<SqlResult<Vec<_>>>()?;
        let mut events = Vec::new();
        let mut ids = Vec::new();
        for mb in &boxes {
            let gone = Gone::of(self.messages_in(mb.id, None, false, None)?);
            if !gone.is_empty() {
                self.remove_messages(acct.id, mb, &gone, Tombstones::Skip)?;
            }
            self.forget_tombstones(mb.id)?;
            super::metadata::forget_mailbox(self.conn, mb.id)?;
            super::acl::forget_mailbox(self.conn, mb.id)?;
            self.conn
                .prepare_cached("DELETE FROM mailboxes WHERE id = ?1")?
                .execute([mb.id])?;
            if !mb.noselect {
                events.push(self.ecx.mailbox_event(
                    EventType::MailboxDelete,
                    &acct.name,
                    &mb.name,
                    Some(mb.uidvalidity),
                ));
            }
            ids.push(mb.id);
        }
        self.conn
            .prepare_cached("DELETE FROM subscriptions WHERE account_id = ?1")?
            .execute([acct.id])?;
        self.conn
            .prepare_cached("DELETE FROM thread_refs WHERE account_id = ?1")?
            .execute([acct.id])?;
        self.conn
            .prepare_cached("DELETE FROM push_subscriptions WHERE account_id = ?1")?
            .execute([acct.id])?;
        super::metadata::forget_owner(self.conn, acct.id)?;
        self.conn
            .prepare_cached("DELETE FROM urlauth_keys WHERE account_id = ?1")?
            .execute([acct.id])?;
        super::acl::forget_account(self.conn, acct.id, &acct.name)?;
        self.conn
            .prepare_cached("DELETE FROM accounts WHERE id = ?1")?
            .execute([acct.id])?;
        events.push(self.ecx.account_event(EventType::AccountDelete, &acct.name));
        done(Output::None, events, ids)
    }

    fn set_quota(&self, user: &str, storage_kb: Option<u64>, messages: Option<u64>) -> OpResult {
        if storage_kb.is_none() && messages.is_none() {
            return Err(StoreError::InvalidArgument("no quota to set".into()).into());
        }
        let mut acct = account(self.conn, user)?;
        let new_kb = storage_kb.or(acct.quota_kb);
        let new_msgs = messages.or(acct.quota_messages);
        let info = |a: &Account| QuotaInfo {
            storage_kb: a.quota_kb,
            max_messages: a.quota_messages,
            used_bytes: a.used_bytes,
            used_messages: a.used_messages,
        };
        if new_kb == acct.quota_kb && new_msgs == acct.quota_messages {
            return done(Output::Quota(info(&acct)), Vec::new(), Vec::new());
        }
        self.conn
            .prepare_cached(
                "UPDATE accounts SET quota_storage_kb = ?2, quota_messages = ?3 WHERE id = ?1",
            )?
            .execute(params![
                acct.id,
                new_kb.map(|v| v as i64),
                new_msgs.map(|v| v as i64)
            ])?;
        // Over a limit before (usage at or above it) and under every limit now: a raised or
        // removed limit brought the account back within its quota, as an expunge would.
        let over = |kb: Option<u64>, msgs: Option<u64>| {
            kb.is_some_and(|l| acct.used_bytes >= l.saturating_mul(1024))
                || msgs.is_some_and(|l| acct.used_messages >= l)
        };
        let back_within = over(acct.quota_kb, acct.quota_messages) && !over(new_kb, new_msgs);
        acct.quota_kb = new_kb;
        acct.quota_messages = new_msgs;
        let mut events = vec![self.quota_event(
            EventType::QuotaChange,
            &acct,
            acct.used_bytes,
            acct.used_messages,
            None,
        )];
        if back_within {
            let mut e = self.quota_event(
                EventType::QuotaWithin,
                &acct,
                acct.used_bytes,
                acct.used_messages,
                None,
            );
            e.set_extension(vnd::CAUSE, vnd_cause::QUOTA_CHANGE);
            events.push(e);
        }
        done(Output::Quota(info(&acct)), events, Vec::new())
    }

    // ---- mailboxes ------------------------------------------------------------------------

    fn create_mailbox(
        &self,
        account_name: &str,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> OpResult {
        let acct = match account(self.conn, account_name) {
            Err(StoreError::NotFound { .. }) if account_name == acl::SHARED_OWNER => {
                self.shared_owner()?
            }
            other => other?,
        };
        let name = names::mailbox(name, true)?;
        self.require_create(&acct, &name)?;
        let existing = find_mailbox(self.conn, acct.id, &name)?;
        let mb = match existing {
            Some(m) if !m.noselect => return Err(StoreError::exists("mailbox", name).into()),
            Some(m) => {
                // A \Noselect placeholder becomes a real mailbox again, with a new UIDVALIDITY:
                // its old UIDs must never be confused with the new ones.
                let uidvalidity = next_uidvalidity(self.conn)?;
                self.conn
                    .prepare_cached(
                        "UPDATE mailboxes SET noselect = 0, uidvalidity = ?2, uidnext = 1,
                         highestmodseq = 1, messages = 0, special_use = ?3, recent_uid = 1,
                         tombstones = 0, tombstone_floor = 0
                         WHERE id = ?1",
                    )?
                    .execute(params![
                        m.id,
                        uidvalidity,
                        special_use.map(SpecialUse::as_str)
                    ])?;
                Mbox {
                    noselect: false,
                    uidvalidity,
                    uidnext: 1,
                    modseq: 1,
                    messages: 0,
                    special_use,
                    recent_uid: 1,
                    tombstone_floor: 0,
                    ..m
                }
            }
            None => {
                self.create_ancestors(acct.id, &name)?;
                insert_mailbox(self.conn, acct.id, &name, special_use)?
            }
        };
        let e = self.ecx.mailbox_event(
            EventType::MailboxCreate,
            &acct.name,
            &mb.name,
            Some(mb.uidvalidity),
        );
        done(Output::Mailbox(mb.info()), vec![e], vec![mb.id])
    }

    /// The "Shared" namespace's pseudo-account, created with the namespace's first mailbox
    /// when an administrator creates it (anyone else has nothing to create it for). It has no
    /// INBOX, no password (`!` is no PHC string, so nothing verifies against it) and no
    /// events of its own: it is not an account to anyone outside the store.
    fn shared_owner(&self) -> Result<Account> {
        let admin = match self.ecx.ctx.user.as_deref() {
            Some(user) => super::acl::is_admin(self.conn, user)?,
            None => false,
        };
        if !admin {
            return Err(StoreError::NoPermission {
                mailbox: acl::SHARED_PREFIX.trim_end_matches('/').to_owned(),
                needed: "k".into(),
            });
        }
        self.conn
            .prepare_cached(&format!(
                "INSERT INTO accounts (name, password_hash, admin, first_event)
                 VALUES (?1, '!', 0, {})",
                last_event_id_sql(self.conn)
            ))?
            .execute([acl::SHARED_OWNER])?;
        account(self.conn, acl::SHARED_OWNER)
    }

    /// Creates missing parents; RFC 5423 §4.4: their creation is implied, no events.
    fn create_ancestors(&self, account_id: i64, name: &str) -> Result<()> {
        for parent in names::ancestors(name) {
            if find_mailbox(self.conn, account_id, parent)?.is_none() {
                insert_mailbox(self.conn, account_id, parent, None)?;
            }
        }
        Ok(())
    }

    fn delete_mailbox(&self, account_name: &str, name: &str) -> OpResult {
        let acct = account(self.conn, account_name)?;
        let name = names::mailbox(name, false)?;
        if names::is_inbox(&name) {
            return Err(StoreError::InvalidArgument("INBOX cannot be deleted".into()).into());
        }
        let mb = find_mailbox(self.conn, acct.id, &name)?
            .ok_or_else(|| StoreError::not_found("mailbox", &name))?;
        self.require(&acct, &mb, Rights::DELETE_MAILBOX)?;
        let has_children = !descendants(self.conn, acct.id, &name)?.is_empty();
        if mb.noselect && has_children {
            // RFC 3501 §6.3.4: an error to delete a \Noselect name that has inferiors.
            return Err(StoreError::NoSelect(name).into());
        }
        let gone = Gone::of(self.messages_in(mb.id, None, false, None)?);
        let freed: u64 = gone.iter().map(|g| g.size).sum();
        if !gone.is_empty() {
            self.remove_messages(acct.id, &mb, &gone, Tombstones::Skip)?;
        }
        self.forget_tombstones(mb.id)?;
        // RFC 5464: a deleted mailbox's annotations go with it, also when its name stays
        // behind as a \Noselect parent.
        super::metadata::forget_mailbox(self.conn, mb.id)?;
        // Its URLAUTH key goes too: a \Noselect name holds no message a URL could reach, and a
        // mailbox created later under the name starts with a new key.
        self.conn
            .prepare_cached("DELETE FROM urlauth_keys WHERE mailbox_id = ?1")?
            .execute([mb.id])?;
        // A deleted mailbox's ACL goes with it: a mailbox created later under the name must
        // not be shared by accident (a \Noselect placeholder holds nothing to share).
        super::acl::forget_mailbox(self.conn, mb.id)?;
        if has_children {
            // RFC 5423 §4.4 / RFC 3501: the mailbox becomes \Noselect, the hierarchy stays.
            self.conn
                .prepare_cached("UPDATE mailboxes SET noselect = 1, special_use = NULL, max_age_secs = NULL WHERE id = ?1")?
                .execute([mb.id])?;
        } else {
            self.conn
                .prepare_cached("DELETE FROM mailboxes WHERE id = ?1")?
                .execute([mb.id])?;
        }
        let mut events = Vec::new();
        if !mb.noselect {
            events.push(self.ecx.mailbox_event(
                EventType::MailboxDelete,
                &acct.name,
                &mb.name,
                Some(mb.uidvalidity),
            ));
            events.extend(self.quota_within(
                &acct,
                freed,
                gone.len() as u64,
                vnd_cause::MAILBOX_DELETE,
            ));
        }
        done(Output::None, events, vec![mb.id])
    }

    fn rename_mailbox(&self, account_name: &str, from: &str, to: &str) -> OpResult {
        let acct = account(self.conn, account_name)?;
        let from = names::mailbox(from, false)?;
        let to = names::mailbox(to, false)?;
        let src = find_mailbox(self.conn, acct.id, &from)?
            .ok_or_else(|| StoreError::not_found("mailbox", &from))?;
        self.require(&acct, &src, Rights::DELETE_MAILBOX)?;
        self.require_create(&acct, &to)?;
        if names::is_inbox(&to) || find_mailbox(self.conn, acct.id, &to)?.is_some() {
            return Err(StoreError::exists("mailbox", to).into());
        }
        if names::is_within(&to, &from) {
            return Err(
                StoreError::InvalidArgument(format!("cannot rename `{from}` into itself")).into(),
            );
        }
        self.create_ancestors(acct.id, &to)?;
        let mut changed = vec![src.id];
        let rename = self
            .conn
            .prepare_cached("UPDATE mailboxes SET name = ?2 WHERE id = ?1");
        if names::is_inbox(&from) {
            // RFC 3501 §6.3.5: INBOX's messages move to the new name, its children stay, and
            // an empty INBOX takes its place — implied, so no MailboxCreate (RFC 5423 §4.4).
            rename?.execute(params![src.id, to])?;
            let inbox = insert_mailbox(self.conn, acct.id, "INBOX", None)?;
            changed.push(inbox.id);
        } else {
            let children = descendants(self.conn, acct.id, &from)?;
            for child in &children {
                let new_name = format!("{to}{}", &child.name[from.len()..]);
                if find_mailbox(self.conn, acct.id, &new_name)?.is_some() {
                    return Err(StoreError::exists("mailbox", new_name).into());
                }
            }
            let mut rename = rename?;
            rename.execute(params![src.id, to])?;
            for child in &children {
                rename.execute(params![
                    child.id,
                    format!("{to}{}", &child.name[from.len()..])
                ])?;
                changed.push(child.id);
            }
        }
        let validity = (!src.noselect).then_some(src.uidvalidity);
        let mut e = self
            .ecx
            .mailbox_event(EventType::MailboxRename, &acct.name, &to, validity);
        e.old_mailbox_id = Some(self.ecx.mailbox_url(&acct.name, &from, validity));
        let mut info = src.info();
        info.name = to;
        done(Output::Mailbox(info), vec![e], changed)
    }

    /// Another account's mailbox named in the Other Users namespace (`user/OWNER/NAME`), if
    /// it exists and `user` may see it in LIST (`l`).
    fn visible_shared(&self, user: &str, name: &str) -> Result<Option<Mbox>> {
        let Some((owner, rest)) =
            acl::other_user(name).filter(|(o, r)| *o != user && !r.is_empty())
        else {
            return Ok(None);
        };
        let owner = match account(self.conn, owner) {
            Ok(a) => a,
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(mb) = find_mailbox(self.conn, owner.id, rest)? else {
            return Ok(None);
        };
        let rights = super::acl::rights_of(self.conn, &owner.name, mb.id, user)?;
        Ok((rights.contains(Rights::LOOKUP) && !mb.noselect).then_some(mb))
    }

    fn subscribe(&self, account_name: &str, name: &str, on: bool) -> OpResult {
        let acct = account(self.conn, account_name)?;
        let name = names::mailbox(name, false)?;
        // A subscription is the subscriber's, also to a mailbox shared with them: it is kept
        // under the name they see it by (`user/OWNER/NAME`).
        let mb = match acl::other_user(&name) {
            Some((owner, _)) if owner != acct.name => self.visible_shared(&acct.name, &name)?,
            _ => find_mailbox(self.conn, acct.id, &name)?,
        };
        let changed = if on {
            if mb.is_none() {
                // RFC 3501 §6.3.6 lets a server refuse to subscribe to a missing mailbox.
                return Err(StoreError::not_found("mailbox", name).into());
            }
            self.conn
                .prepare_cached(
                    "INSERT INTO subscriptions (account_id, name) VALUES (?1, ?2)
                     ON CONFLICT DO NOTHING",
                )?
                .execute(params![acct.id, name])?
        } else {
            self.conn
                .prepare_cached("DELETE FROM subscriptions WHERE account_id = ?1 AND name = ?2")?
                .execute(params![acct.id, name])?
        };
        let mut events = Vec::new();
        if changed > 0 {
            let t = if on {
                EventType::MailboxSubscribe
            } else {
                EventType::MailboxUnSubscribe
            };
            let validity = mb.filter(|m| !m.noselect).map(|m| m.uidvalidity);
            events.push(self.ecx.mailbox_event(t, &acct.name, &name, validity));
        }
        done(Output::None, events, Vec::new())
    }

    fn set_attrs(
        &self,
        account_name: &str,
        name: &str,
        special_use: Option<Option<SpecialUse>>,
        max_age_secs: Option<Option<u64>>,
    ) -> OpResult {
        let acct = account(self.conn, account_name)?;
        let name = names::mailbox(name, false)?;
        let mut mb = self.selectable(acct.id, &name)?;
        self.require(&acct, &mb, Rights::ADMIN)?;
        if let Some(su) = special_use {
            mb.special_use = su;
        }
        if let Some(age) = max_age_secs {
            mb.max_age_secs = age;
        }
        self.conn
            .prepare_cached(
                "UPDATE mailboxes SET special_use = ?2, max_age_secs = ?3 WHERE id = ?1",
            )?
            .execute(params![
                mb.id,
                mb.special_use.map(SpecialUse::as_str),
                mb.max_age_secs.map(|v| v as i64)
            ])?;
        // Attribute and policy changes have no RFC 5423 event type.
        done(Output::Mailbox(mb.info()), Vec::new(), vec![mb.id])
    }

    // ---- messages -------------------------------------------------------------------------

    fn append(
        &self,
        account_name: &str,
        mailbox: &str,
        msg: NewMessage<'_>,
        envelope: Option<&str>,
        cause: &str,
    ) -> OpResult {
        let NewMessage {
            blob,
            flags: given_flags,
            internal_date_ms,
            thread,
            uid: wanted_uid,
        } = msg;
        let acct = account(self.conn, account_name)?;
        let name = names::mailbox(mailbox, false)?;
        let mb = self.selectable(acct.id, &name)?;
        let rights = self.require(&acct, &mb, Rights::INSERT)?;
        let mut flags = acl::allowed_flags(&flags::canonical(given_flags)?, rights);
        sort_flags(&mut flags);
        self.check_quota(&acct, blob.size(), 1, &mb)?;
        let uid = wanted_uid
            .filter(|&u| u >= mb.uidnext)
            .unwrap_or(mb.uidnext);
        if uid == u32::MAX {
            return Err(StoreError::InvalidArgument(format!(
                "mailbox `{name}` has run out of UIDs"
            ))
            .into());
        }
        let blob_id = self.blob_acquire(blob)?;
        let mut next_thread = acct.next_thread;
        let thread_id = self.thread_acquire(acct.id, thread, &mut next_thread)?;
        let modseq = mb.modseq + 1;
        self.conn
            .prepare_cached(
                "INSERT INTO messages (mailbox_id, uid, blob_id, size, internaldate, flags, modseq,
                                       savedate, thread_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                mb.id,
                uid,
                blob_id,
                blob.size() as i64,
                internal_date_ms,
                flags::format(&flags),
                modseq as i64,
                crate::model::now_ms(),
                thread_id
            ])?;
        self.conn
            .prepare_cached(
                "UPDATE mailboxes SET uidnext = ?2, highestmodseq = ?3, messages = messages + 1 WHERE id = ?1",
            )?
            .execute(params![mb.id, uid + 1, modseq as i64])?;
        self.add_usage(
            acct.id,
            blob.size() as i64,
            1,
            next_thread - acct.next_thread,
        )?;

        let t = if envelope.is_some() {
            EventType::MessageNew
        } else {
            EventType::MessageAppend
        };
        let mut e = self.ecx.event(t, &acct.name);
        e.uri = Some(
            self.ecx
                .message_url(&acct.name, &mb.name, mb.uidvalidity, uid),
        );
        e.mailbox_id = Some(
            self.ecx
                .mailbox_url(&acct.name, &mb.name, Some(mb.uidvalidity)),
        );
        e.messages = Some(mb.messages + 1);
        e.uidnext = Some(uid + 1);
        e.message_size = Some(blob.size());
        e.modseq = Some(modseq);
        if !flags.is_empty() {
            e.flag_names = Some(FlagNames::new(flags.iter().cloned()));
        }
        match envelope {
            Some(env) => e.envelope = Some(env.to_owned()),
            None => e.set_extension(vnd::CAUSE, cause),
        }
        done(
            Output::Appended(Appended {
                mailbox_id: mb.id,
                uidvalidity: mb.uidvalidity,
                uid,
                modseq,
            }),
            vec![e],
            vec![mb.id],
        )
    }

    /// Each message as [`Env::append`] would add it, in one savepoint: a failure (over quota,
    /// out of UIDs) rolls back the ones before it too, and only its QuotaExceed commits.
    fn append_many(
        &self,
        account_name: &str,
        mailbox: &str,
        messages: &[(BlobRef, Vec<String>, i64, ThreadKeys)],
    ) -> OpResult {
        let mut appended = Vec::with_capacity(messages.len());
        let mut events = Vec::with_capacity(messages.len());
        let mut mailboxes = Vec::new();
        for (blob, flags, date, thread) in messages {
            let msg = NewMessage {
                blob,
                flags,
                internal_date_ms: *date,
                thread,
                uid: None,
            };
            let one = self.append(account_name, mailbox, msg, None, vnd_cause::APPEND)?;
            if let Output::Appended(a) = one.output {
                appended.push(a);
            }
            events.extend(one.events);
            mailboxes = one.mailboxes;
        }
        done(Output::AppendedMany(appended), events, mailboxes)
    }

    /// [`Op::Import`]: the messages as [`Env::append_many`] adds them, with cause `import`.
    /// The source's UIDs are kept when the mailbox already has the source's UIDVALIDITY (a
    /// resumed import) or has never held a message (UIDNEXT 1), in which case it takes that
    /// UIDVALIDITY first: a client cannot know UIDs of a mailbox that never had any, so the
    /// change breaks no cache, and the store's UIDVALIDITY counter is moved past it so a
    /// later re-creation of the name never repeats it.
    fn import(
        &self,
        account_name: &str,
        mailbox: &str,
        (uidvalidity, uidnext): (Option<u32>, Option<u32>),
        messages: &[crate::backend::ImportItem],
        progress: Option<&(String, i64)>,
    ) -> OpResult {
        let acct = account(self.conn, account_name)?;
        let name = names::mailbox(mailbox, false)?;
        let mb = self.selectable(acct.id, &name)?;
        let keep = match uidvalidity {
            Some(v) if v != 0 && v == mb.uidvalidity => true,
            Some(v) if v != 0 && mb.uidnext == 1 && mb.messages == 0 => {
                self.conn
                    .prepare_cached("UPDATE mailboxes SET uidvalidity = ?2 WHERE id = ?1")?
                    .execute(params![mb.id, v])?;
                self.conn
                    .prepare_cached(
                        "INSERT INTO meta (key, value) VALUES ('uidvalidity', ?1)
                         ON CONFLICT (key) DO UPDATE SET value = CASE WHEN meta.value > excluded.value
                             THEN meta.value ELSE excluded.value END",
                    )?
                    .execute([i64::from(v)])?;
                true
            }
            _ => false,
        };
        let mut appended = Vec::with_capacity(messages.len());
        let mut events = Vec::with_capacity(messages.len());
        let mut mailboxes = vec![mb.id];
        for m in messages {
            let msg = NewMessage {
                blob: &m.blob,
                flags: &m.flags,
                internal_date_ms: m.internal_date_ms,
                thread: &m.thread,
                uid: if keep { m.uid } else { None },
            };
            let one = self.append(account_name, &name, msg, None, vnd_cause::IMPORT)?;
            if let Output::Appended(a) = one.output {
                appended.push(a);
            }
            events.extend(one.events);
            mailboxes = one.mailboxes;
        }
        if keep && let Some(next) = uidnext {
            self.conn
                .prepare_cached(
                    "UPDATE mailboxes SET uidnext = CASE WHEN uidnext > ?2 THEN uidnext ELSE ?2 END
                     WHERE id = ?1",
                )?
                .execute(params![mb.id, next])?;
        }
        if let Some((key, last)) = progress {
            self.conn
                .prepare_cached(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )?
                .execute(params![import_progress_key(acct.id, key), last])?;
        }
        let after = self.selectable(acct.id, &name)?;
        done(
            Output::Imported(Imported {
                uidvalidity: after.uidvalidity,
                uids_kept: keep,
                appended,
            }),
            events,
            mailboxes,
        )
    }

    /// COPY/MOVE, also between accounts (a guest copying out of or into a mailbox shared with
    /// them): the source needs `r` (MOVE also `t` and `e`), the target `i`; flags the caller
    /// may not set in the target are dropped (RFC 4314 §4). The copies count against the
    /// target account's quota; across accounts a message gets a thread of the target's.
    fn copy(
        &self,
        account_name: &str,
        from: &str,
        uids: &UidSet,
        (to_account, to): (&str, &str),
        remove: bool,
    ) -> OpResult {
        let acct = account(self.conn, account_name)?;
        let dst_acct = if to_account == acct.name {
            acct.clone()
        } else {
            account(self.conn, to_account)?
        };
        let cross = dst_acct.id != acct.id;
        let from = names::mailbox(from, false)?;
        let to = names::mailbox(to, false)?;
        let src = self.selectable(acct.id, &from)?;
        let dst = self.selectable(dst_acct.id, &to)?;
        let src_need = if remove {
            Rights::READ | Rights::DELETE_MESSAGES | Rights::EXPUNGE
        } else {
            Rights::READ
        };
        self.require(&acct, &src, src_need)?;
        let dst_rights = self.require(&dst_acct, &dst, Rights::INSERT)?;
        // MOVE into the mailbox itself is allowed (no RFC forbids it, and clients use it to
        // renumber): the messages get new UIDs and the old ones are expunged.
        let same = src.id == dst.id;
        let rows = self.messages_in(src.id, Some(uids), false, None)?;
        if rows.is_empty() {
            // RFC 3501: a UID set that names no message is not an error, and nothing changed.
            let result = CopyResult {
                uidvalidity: dst.uidvalidity,
                uids: Vec::new(),
            };
            return done(Output::Copied(result), Vec::new(), Vec::new());
        }
        let count = rows.len() as u64;
        let bytes: u64 = rows.iter().map(|r| r.2).sum();
        if !remove || cross {
            self.check_quota(&dst_acct, bytes, count, &dst)?;
        }
        let Some(last_uid) = dst
            .uidnext
            .checked_add(rows.len() as u32)
            .filter(|u| *u < u32::MAX)
        else {
            return Err(
                StoreError::InvalidArgument(format!("mailbox `{to}` has run out of UIDs")).into(),
            );
        };
        let modseq = dst.modseq + 1;
        let mut insert = self.conn.prepare_cached(
            "INSERT INTO messages (mailbox_id, uid, blob_id, size, internaldate, flags, modseq,
                                   savedate, thread_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        let mut next_thread = dst_acct.next_thread;
        // A copy keeps its thread (RFC 8474 §5.2: THREADID survives COPY and MOVE).
        // COPY and MOVE save the message anew: its SAVEDATE is now (RFC 8514 §1).
        let saved = crate::model::now_ms();
        let mut addref = self
            .conn
            .prepare_cached("UPDATE blobs SET refcount = refcount + 1 WHERE id = ?1")?;
        let cause = if remove {
            vnd_cause::MOVE
        } else {
            vnd_cause::COPY
        };
        let source_url = self
            .ecx
            .mailbox_url(&acct.name, &src.name, Some(src.uidvalidity));
        let dst_url = self
            .ecx
            .mailbox_url(&dst_acct.name, &dst.name, Some(dst.uidvalidity));
        let mut events = Vec::with_capacity(rows.len() + 1);
        let mut map = Vec::with_capacity(rows.len());
        for (i, (uid, blob_id, size, flags_col, internaldate, _, thread_id)) in
            rows.iter().enumerate()
        {
            let new_uid = dst.uidnext + i as u32;
            let restricted;
            let flags_col = if dst_rights == Rights::ALL {
                flags_col
            } else {
                restricted =
                    flags::format(&acl::allowed_flags(&flags::parse(flags_col), dst_rights));
                &restricted
            };
            // Threads are per account: a copy into another account starts one of its own.
            let thread_id = if cross {
                self.thread_acquire(dst_acct.id, &ThreadKeys::default(), &mut next_thread)?
            } else {
                *thread_id
            };
            insert.execute(params![
                dst.id,
                new_uid,
                blob_id,
                *size as i64,
                internaldate,
                flags_col,
                modseq as i64,
                saved,
                thread_id
            ])?;
            if !remove {
                addref.execute([blob_id])?;
            }
            map.push((*uid, new_uid));
            let mut e = self.ecx.event(EventType::MessageAppend, &dst_acct.name);
            e.uri = Some(
                self.ecx
                    .message_url(&dst_acct.name, &dst.name, dst.uidvalidity, new_uid),
            );
            e.mailbox_id = Some(dst_url.clone());
            e.messages = Some(dst.messages + i as u64 + 1);
            e.uidnext = Some(new_uid + 1);
            e.message_size = Some(*size);
            e.modseq = Some(modseq);
            let f = flags::parse(flags_col);
            if !f.is_empty() {
                e.flag_names = Some(FlagNames::new(f));
            }
            e.set_extension(vnd::CAUSE, cause);
            e.set_extension(vnd::SOURCE_MAILBOX_ID, source_url.to_string());
            // One event per copied message, so its source is one UID; a UID set all the same,
            // the shape Cyrus' `vnd.cmu.oldUidset` has.
            e.set_extension(vnd::SOURCE_UIDSET, uid.to_string());
            if let Some(su) = src.special_use {
                e.set_extension(vnd::SOURCE_SPECIAL_USE, su.as_str());
            }
            events.push(e);
        }
        self.conn
            .prepare_cached(
                "UPDATE mailboxes SET uidnext = ?2, highestmodseq = ?3, messages = messages + ?4 WHERE id = ?1",
            )?
            .execute(params![dst.id, last_uid, modseq as i64, count as i64])?;
        let threads = next_thread - dst_acct.next_thread;
        if remove {
            // The blobs' references move with the rows: delete without releasing.
            let mut del = self
                .conn
                .prepare_cached("DELETE FROM messages WHERE mailbox_id = ?1 AND uid = ?2")?;
            for (uid, ..) in &rows {
                del.execute(params![src.id, uid])?;
            }
            // In a MOVE into itself the source row already holds this transaction's MODSEQ,
            // UIDNEXT and count: the expunge shares the MODSEQ and reports the new UIDNEXT.
            let (src_modseq, src_messages, src_uidnext) = if same {
                (modseq, src.messages + count, last_uid)
            } else {
                (src.modseq + 1, src.messages, src.uidnext)
            };
            self.conn
                .prepare_cached("UPDATE mailboxes SET messages = messages - ?2, highestmodseq = ?3 WHERE id = ?1")?
                .execute(params![src.id, count as i64, src_modseq as i64])?;
            let gone: Vec<u32> = rows.iter().map(|r| r.0).collect();
            self.bury(src.id, gone.iter().copied(), src_modseq)?;
            let mut e = self.messages_event(
                EventType::MessageExpunge,
                &acct.name,
                &src,
                &gone,
                src_modseq,
            );
            e.messages = Some(src_messages.saturating_sub(count));
            e.uidnext = Some(src_uidnext);
            e.set_extension(vnd::CAUSE, vnd_cause::MOVE);
            events.push(e);
            if cross {
                self.add_usage(acct.id, -(bytes as i64), -(count as i64), 0)?;
                self.add_usage(dst_acct.id, bytes as i64, count as i64, threads)?;
            }
        } else {
            self.add_usage(dst_acct.id, bytes as i64, count as i64, threads)?;
        }
        let result = CopyResult {
            uidvalidity: dst.uidvalidity,
            uids: map,
        };
        let touched = if same {
            vec![src.id]
        } else {
            vec![src.id, dst.id]
        };
        done(Output::Copied(result), events, touched)
    }

    /// SETACL/DELETEACL (RFC 4314 §3.1, §3.2). The caller needs `a` (owners have it). The
    /// events, in one transaction: AclChange (the identifier's rights after the change), then
    /// for an account identifier that starts or stops seeing the mailbox in LIST (`l`, its own
    /// entry or `anyone`'s), MailboxCreate or MailboxDelete with `user` = that account and the
    /// mailbox named as that account sees it (`imap://GRANTEE@host/user/OWNER/NAME`), so the
    /// grantee's consumers can follow the mailbox from its events alone (RFC 5423 §4.4).
    /// Grants to `anyone` change what every account sees; they are announced by AclChange
    /// alone, since one event per account on the server would not scale.
    fn set_acl(
        &self,
        account_name: &str,
        mailbox: &str,
        identifier: &str,
        rights: Option<Rights>,
    ) -> OpResult {
        let acct = account(self.conn, account_name)?;
        let name = names::mailbox(mailbox, false)?;
        let mb = self.selectable(acct.id, &name)?;
        self.require(&acct, &mb, Rights::ADMIN)?;
        if identifier.is_empty() || identifier.starts_with('-') {
            // Negative rights (RFC 4314 §2) are not supported: refused rather than ignored.
            return Err(StoreError::InvalidArgument(format!(
                "identifier `{identifier}`: negative rights are not supported"
            ))
            .into());
        }
        if identifier == acct.name || identifier == acl::SHARED_OWNER {
            // RFC 4314 §2: the owner's rights are implicit; storing them would change nothing.
            return Err(StoreError::InvalidArgument(format!(
                "`{identifier}` owns `{name}` and always has every right"
            ))
            .into());
        }
        let person = identifier != acl::ANYONE;
        if person {
            names::user(identifier)?;
        }
        let sees = |conn: &dyn Db| -> Result<bool> {
            Ok(person
                && super::acl::rights_of(conn, &acct.name, mb.id, identifier)?
                    .contains(Rights::LOOKUP))
        };
        let saw = sees(self.conn)?;
        let before = super::acl::put(self.conn, mb.id, identifier, rights)?;
        let after = rights.unwrap_or(Rights::NONE);
        if before == after {
            // No state change, no event.
            return done(Output::None, Vec::new(), Vec::new());
        }
        let mut e = self.ecx.mailbox_event(
            EventType::AclChange,
            &acct.name,
            &mb.name,
            Some(mb.uidvalidity),
        );
        e.set_extension(vnd::ACL_IDENTIFIER, identifier);
        e.set_extension(vnd::ACL_RIGHTS, after.to_string());
        let mut events = vec![e];
        let sees_now = sees(self.conn)?;
        // Only accounts that exist have consumers to tell.
        let grantee_exists = person && account(self.conn, identifier).is_ok();
        if saw != sees_now && grantee_exists {
            let t = if sees_now {
                EventType::MailboxCreate
            } else {
                EventType::MailboxDelete
            };
            let shared = acl::shared_name(&acct.name, &mb.name);
            let mut g = self
                .ecx
                .mailbox_event(t, identifier, &shared, Some(mb.uidvalidity));
            g.user = Some(identifier.to_owned());
            g.admin = None;
            events.push(g);
        }
        done(Output::None, events, vec![mb.id])
    }

    fn store_flags(
        &self,
        account_name: &str,
        mailbox: &str,
        uids: &UidSet,
        mode: FlagMode,
        given: &[String],
        unchanged_since: Option<u64>,
    ) -> OpResult {
        let acct = account(self.conn, account_name)?;
        let name = names::mailbox(mailbox, false)?;
        let mb = self.selectable(acct.id, &name)?;
        let given = flags::canonical(given)?;
        self.require(
            &acct,
            &mb,
            Rights::READ | acl::store_rights(&given, mode == FlagMode::Replace),
        )?;
        let rows = self.messages_in(mb.id, Some(uids), false, None)?;
        let modseq = mb.modseq + 1;
        let mut result = StoreResult::default();
        let as_flags = self.shared.config.seen_deleted_as_flags;
        let mut read = Vec::new();
        let mut trash = Vec::new();
        let mut set_groups: BTreeMap<Vec<String>, Vec<u32>> = BTreeMap::new();
        let mut clear_groups: BTreeMap<Vec<String>, Vec<u32>> = BTreeMap::new();
        let mut update = self.conn.prepare_cached(
            "UPDATE messages SET flags = ?3, modseq = ?4 WHERE mailbox_id = ?1 AND uid = ?2",
        )?;
        for (uid, _, _, flags_col, _, msg_modseq, _) in rows {
            if unchanged_since.is_some_and(|u| msg_modseq > u) {
                result.modified.push(uid);
                continue;
            }
            let old = flags::parse(&flags_col);
            let (mut new, mut added, mut removed) = flags::apply(&old, mode, &given);
            if added.is_empty() && removed.is_empty() {
                continue;
            }
            if new.len() > flags::MAX_FLAGS {
                return Err(StoreError::InvalidArgument(format!(
                    "a message has at most {} flags and keywords",
                    flags::MAX_FLAGS
                ))
                .into());
            }
            sort_flags(&mut new);
            update.execute(params![mb.id, uid, flags::format(&new), modseq as i64])?;
            if !as_flags {
                if flags::contains(&added, "\\Seen") {
                    read.push(uid);
                }
                if flags::contains(&added, "\\Deleted") {
                    trash.push(uid);
                }
                added.retain(|f| f != "\\Seen" && f != "\\Deleted");
            }
            sort_flags(&mut added);
            sort_flags(&mut removed);
            if !added.is_empty() {
                set_groups.entry(added).or_default().push(uid);
            }
            if !removed.is_empty() {
                clear_groups.entry(removed).or_default().push(uid);
            }
            result.changed.push((uid, new, modseq));
        }
        if result.changed.is_empty() {
            return done(Output::Flags(result), Vec::new(), Vec::new());
        }
        self.conn
            .prepare_cached("UPDATE mailboxes SET highestmodseq = ?2 WHERE id = ?1")?
            .execute(params![mb.id, modseq as i64])?;
        let mut events = Vec::new();
        let mut push = |t: EventType, uids: &[u32], names: Option<&[String]>| {
            let mut e = self.messages_event(t, &acct.name, &mb, uids, modseq);
            e.messages = Some(mb.messages);
            e.uidnext = Some(mb.uidnext);
            e.flag_names = names.map(|n| FlagNames::new(n.iter().cloned()));
            events.push(e);
        };
        if !read.is_empty() {
            push(EventType::MessageRead, &read, None);
        }
        if !trash.is_empty() {
            push(EventType::MessageTrash, &trash, None);
        }
        for (names, uids) in &set_groups {
            push(EventType::FlagsSet, uids, Some(names));
        }
        for (names, uids) in &clear_groups {
            push(EventType::FlagsClear, uids, Some(names));
        }
        done(Output::Flags(result), events, vec![mb.id])
    }

    /// Login/Logout (RFC 5423 §4.3): `uri` names the server and the user; the session context
    /// supplies serverDomain, serverPort, clientIP and clientPort.
    /// Marks the UIDs below `upto` as told of as `\Recent`; the output is the first UID
    /// that was still unclaimed, so the caller's recent messages are those from it up. No
    /// event: \Recent is IMAP session state, not a change to the mailbox.
    fn claim_recent(
        &self,
        account_name: &str,
        mailbox: &str,
        uidvalidity: u32,
        upto: u32,
    ) -> OpResult {
        let acct = account(self.conn, account_name)?;
        let name = names::mailbox(mailbox, false)?;
        let mb = self.selectable(acct.id, &name)?;
        self.require(&acct, &mb, Rights::READ)?;
        let upto = upto.min(mb.uidnext);
        if mb.uidvalidity != uidvalidity {
            // The session's mailbox was replaced under it: none of this one is its.
            return done(Output::RecentFrom(upto), Vec::new(), Vec::new());
        }
        if mb.recent_uid < upto {
            self.conn
                .prepare_cached("UPDATE mailboxes SET recent_uid = ?2 WHERE id = ?1")?
                .execute(params![mb.id, upto])?;
        }
        done(Output::RecentFrom(mb.recent_uid), Vec::new(), Vec::new())
    }

    fn access(&self, account_name: &str, access: Access) -> OpResult {
        let acct = account(self.conn, account_name)?;
        let t = match access {
            Access::Login => EventType::Login,
            Access::Logout { .. } => EventType::Logout,
        };
        let mut e = self.ecx.event(t, &acct.name);
        e.uri = Some(self.ecx.server_url(&acct.name));
        if let Access::Logout {
            disconnect,
            duration_ms,
        } = access
        {
            e.set_extension(vnd::DISCONNECT, disconnect.as_str());
            e.set_extension(vnd::SESSION_MS, duration_ms);
        }
        done(Output::None, vec![e], Vec::new())
    }

    /// `vnd.herald.LoginFailed`: `uri` names the server only, since the name tried need not
    /// be an account. A wrong password against a name that has no account is reported as
    /// `no-such-user`: the client was told the same either way, the operator wants to know.
    fn login_failed(&self, user: &str, mechanism: &str, failure: LoginFailure) -> OpResult {
        let failure = match failure {
            LoginFailure::BadCredentials => {
                let exists: bool = self
                    .conn
                    .prepare_cached("SELECT EXISTS (SELECT 1 FROM accounts WHERE name = ?1)")?
                    .query_row([user], |r| r.get(0))?;
                if exists {
                    failure
                } else {
                    LoginFailure::NoSuchUser
                }
            }
            other => other,
        };
        let mut e = self.ecx.event(EventType::LoginFailed, user);
        e.admin = None;
        e.uri = Some(herald_events::ImapUrl::server(self.ecx.fqdn, None));
        e.set_extension(vnd::MECHANISM, mechanism);
        e.set_extension(vnd::REASON, failure.as_str());
        done(Output::None, vec![e], Vec::new())
    }

    fn expunge(
        &self,
        account_name: &str,
        mailbox: &str,
        uids: Option<&UidSet>,
        deleted_only: bool,
    ) -> OpResult {
        let acct = account(self.conn, account_name)?;
        let name = names::mailbox(mailbox, false)?;
        let mb = self.selectable(acct.id, &name)?;
        self.require(&acct, &mb, Rights::READ | Rights::EXPUNGE)?;
        let gone = Gone::of(self.messages_in(mb.id, uids, deleted_only, None)?);
        if gone.is_empty() {
            return done(Output::Expunged(Vec::new()), Vec::new(), Vec::new());
        }
        let freed: u64 = gone.iter().map(|g| g.size).sum();
        let modseq = self.remove_messages(acct.id, &mb, &gone, Tombstones::Record)?;
        let uids: Vec<u32> = gone.iter().map(|g| g.uid).collect();
        let mut e = self.messages_event(EventType::MessageExpunge, &acct.name, &mb, &uids, modseq);
        e.messages = Some(mb.messages.saturating_sub(uids.len() as u64));
        e.uidnext = Some(mb.uidnext);
        let mut events = vec![e];
        events.extend(self.quota_within(&acct, freed, uids.len() as u64, vnd_cause::EXPUNGE));
        done(Output::Expunged(uids), events, vec![mb.id])
    }

    fn expire(&self, only: Option<&str>, now_ms: i64) -> OpResult {
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.name, m.id FROM mailboxes m JOIN accounts a ON a.id = m.account_id
             WHERE m.max_age_secs IS NOT NULL AND m.noselect = 0 AND (CAST(?1 AS TEXT) IS NULL OR a.name = ?1)
             ORDER BY a.name, m.name",
        )?;
        let targets = stmt
            .query_map([only], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?
            .collect::<SqlResult<Vec<_>>>()?;
        let mut by_account: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for (a, m) in targets {
            by_account.entry(a).or_default().push(m);
        }
        let mut events = Vec::new();
        let mut report = Vec::new();
        let mut changed = Vec::new();
        for (account_name, boxes) in by_account {
            let acct = account(self.conn, &account_name)?;
            let (mut freed_bytes, mut freed_count) = (0u64, 0u64);
            for mailbox_id in boxes {
                let mb = self
                    .conn
                    .prepare_cached(&format!(
                        "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE id = ?1"
                    ))?
                    .query_row([mailbox_id], mailbox_row)?;
                let Some(age) = mb.max_age_secs else { continue };
                let cutoff = now_ms.saturating_sub((age as i64).saturating_mul(1000));
                let gone = Gone::of(self.messages_in(mb.id, None, false, Some(cutoff))?);
                if gone.is_empty() {
                    continue;
                }
                freed_bytes += gone.iter().map(|g| g.size).sum::<u64>();
                freed_count += gone.len() as u64;
                let modseq = self.remove_messages(acct.id, &mb, &gone, Tombstones::Record)?;
                let uids: Vec<u32> = gone.iter().map(|g| g.uid).collect();
                let mut e =
                    self.messages_event(EventType::MessageExpire, &acct.name, &mb, &uids, modseq);
                e.messages = Some(mb.messages.saturating_sub(uids.len() as u64));
                e.uidnext = Some(mb.uidnext);
                events.push(e);
                changed.push(mb.id);
                report.push(Expired {
                    user: acct.name.clone(),
                    mailbox: mb.name.clone(),
                    uids,
                });
            }
            events.extend(self.quota_within(&acct, freed_bytes, freed_count, vnd_cause::EXPIRE));
        }
        done(Output::Expired(report), events, changed)
    }
}
