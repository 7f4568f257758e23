//! METADATA (RFC 5464) on SQLite: SETMETADATA as one operation of the writer, so the entries
//! and their `vnd.herald.MetadataChange` commit together, and the reads GETMETADATA needs.
//!
//! Rows live in `metadata` (schema version 9), keyed by mailbox id (0: the server) and owner
//! (0: shared). Everything a client names is checked here again, whatever the protocol layer
//! did: the entry grammar, the value size, the entry counts, and that only administrators
//! change shared server entries. A command is all or nothing (RFC 5464 §4.3): any refusal
//! returns an error and the writer's savepoint undoes what came before it.
//!
//! A mailbox another account shares (`user/OWNER/NAME`, `#shared/NAME`) has entries too:
//! its shared entries are everyone's who may read it, and each user keeps private entries
//! of their own on it. RFC 5464 §3.4's rights apply: `l` and `r` to read entries or set
//! private ones, and `w` besides to set shared ones.

use super::Shared;
use super::ops::{OpResult, account, done, find_mailbox};
use crate::backend::Output;
use crate::context::SessionContext;
use crate::error::{MetadataRefusal, Result, StoreError};
use crate::events::EventCx;
use crate::model::MetadataEntry;
use crate::names;
use crate::sql::{Db, OptionalExtension, Result as SqlResult, params};
use herald_events::{EventType, MetadataScope, metadata_entry_name, normalize_entry_name, vnd};

/// `mailbox_id` of server entries.
const SERVER: i64 = 0;
/// `owner_id` of shared entries.
const SHARED: i64 = 0;

/// Whether the session's authenticated identity (the admin acting as a user, or the user) is
/// an administrator; the command-line tools act with the data directory's authority.
fn acting_admin(conn: &dyn Db, ctx: &SessionContext) -> Result<bool> {
    let Some(who) = ctx.auth_user.as_deref().or(ctx.user.as_deref()) else {
        return Ok(ctx.service == "admincli");
    };
    super::acl::is_admin(conn, who)
}

/// The mailbox a user names for METADATA: its own, or another account's it holds
/// `need` on (besides `l` and `r`). Returns the owning account and the mailbox; a mailbox
/// the user may not see is NotFound, one without the rights NoPermission.
fn resolve(
    conn: &dyn Db,
    user: &super::ops::Account,
    name: &str,
    need: crate::acl::Rights,
) -> Result<(super::ops::Account, super::ops::Mbox)> {
    use crate::acl::Rights;
    let Some((owner, rest)) = crate::acl::other_user(name).filter(|(o, _)| *o != user.name) else {
        return Ok((user.clone(), selectable(conn, user.id, name)?));
    };
    let hidden = || StoreError::not_found("mailbox", name);
    let owner = match account(conn, owner) {
        Ok(a) => a,
        Err(StoreError::NotFound { .. }) => return Err(hidden()),
        Err(e) => return Err(e),
    };
    let mb = match names::mailbox(rest, false)
        .ok()
        .map(|n| find_mailbox(conn, owner.id, &n))
        .transpose()?
        .flatten()
    {
        Some(m) if !m.noselect => m,
        _ => return Err(hidden()),
    };
    let have = super::acl::rights_of(conn, &owner.name, mb.id, &user.name)?;
    if !have.sees() {
        return Err(hidden());
    }
    let missing = (Rights::LOOKUP | Rights::READ | need).without(have);
    if !missing.is_empty() {
        return Err(StoreError::NoPermission {
            mailbox: name.to_owned(),
            needed: missing.to_string(),
        });
    }
    Ok((owner, mb))
}

/// `account`'s mailbox `name`, which must exist and be selectable.
fn selectable(conn: &dyn Db, account_id: i64, name: &str) -> Result<super::ops::Mbox> {
    let name = names::mailbox(name, false)?;
    match find_mailbox(conn, account_id, &name)? {
        None => Err(StoreError::not_found("mailbox", name)),
        Some(m) if m.noselect => Err(StoreError::NoSelect(name)),
        Some(m) => Ok(m),
    }
}

/// SETMETADATA: see [`crate::backend::Op::SetMetadata`].
pub(crate) fn set(
    conn: &dyn Db,
    shared: &Shared,
    ecx: &EventCx<'_>,
    account_name: &str,
    mailbox: Option<&str>,
    entries: &[(String, Option<Vec<u8>>)],
) -> OpResult {
    let limits = shared.config.metadata;
    let acct = account(conn, account_name)?;
    // Shared entries of another account's mailbox need `w` on it, private ones only `lr`.
    let writes_shared = entries
        .iter()
        .any(|(given, _)| matches!(metadata_entry_name(given), Ok(MetadataScope::Shared)));
    let need = if writes_shared {
        crate::acl::Rights::WRITE
    } else {
        crate::acl::Rights::NONE
    };
    let resolved = mailbox
        .map(|name| resolve(conn, &acct, name, need))
        .transpose()?;
    let (owner_acct, mb) = match resolved {
        Some((o, m)) => (o, Some(m)),
        None => (acct.clone(), None),
    };
    let target = mb.as_ref().map_or(SERVER, |m| m.id);
    let mut changed: Vec<String> = Vec::new();
    let mut grew = false;
    for (given, value) in entries {
        let scope = metadata_entry_name(given).map_err(|reason| StoreError::InvalidName {
            name: given.clone(),
            reason,
        })?;
        if let Some(v) = value
            && v.len() as u64 > limits.max_value_bytes
        {
            return Err(StoreError::Metadata(MetadataRefusal::TooLarge {
                size: v.len() as u64,
                max: limits.max_value_bytes,
            })
            .into());
        }
        let owner = match scope {
            MetadataScope::Private => acct.id,
            MetadataScope::Shared if mb.is_none() && !acting_admin(conn, ecx.ctx)? => {
                return Err(StoreError::Metadata(MetadataRefusal::NotAdmin).into());
            }
            MetadataScope::Shared => SHARED,
        };
        let name = normalize_entry_name(given);
        let old: Option<Vec<u8>> = conn
            .prepare_cached(
                "SELECT value FROM metadata WHERE mailbox_id = ?1 AND owner_id = ?2 AND name = ?3",
            )?
            .query_row(params![target, owner, name], |r| r.get(0))
            .optional()?;
        match value {
            Some(v) if old.as_ref() == Some(v) => continue,
            Some(v) => {
                conn.prepare_cached(
                    "INSERT INTO metadata (mailbox_id, owner_id, name, value)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (mailbox_id, owner_id, name) DO UPDATE SET value = excluded.value",
                )?
                .execute(params![target, owner, name, v])?;
                grew |= old.is_none();
            }
            None if old.is_none() => continue,
            None => {
                conn.prepare_cached(
                    "DELETE FROM metadata WHERE mailbox_id = ?1 AND owner_id = ?2 AND name = ?3",
                )?
                .execute(params![target, owner, name])?;
            }
        }
        if !changed.contains(&name) {
            changed.push(name);
        }
    }
    if grew {
        check_counts(conn, &limits, target, acct.id)?;
    }
    if changed.is_empty() {
        // RFC 5423: no state change, no event.
        return done(Output::None, Vec::new(), Vec::new());
    }
    let mut e = match &mb {
        Some(m) => ecx.mailbox_event(
            EventType::MetadataChange,
            &owner_acct.name,
            &m.name,
            Some(m.uidvalidity),
        ),
        None => ecx.account_event(EventType::MetadataChange, &acct.name),
    };
    e.set_extension(vnd::METADATA_ENTRIES, changed);
    done(Output::None, vec![e], Vec::new())
}

/// TOOMANY: the entries the user sees on the target, and the entries the user holds.
fn check_counts(
    conn: &dyn Db,
    limits: &crate::config::MetadataLimits,
    target: i64,
    account_id: i64,
) -> Result<()> {
    let on_target: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM metadata WHERE mailbox_id = ?1 AND owner_id IN (0, ?2)",
        )?
        .query_row(params![target, account_id], |r| r.get(0))?;
    if on_target as u64 > limits.max_entries_per_mailbox {
        return Err(StoreError::Metadata(MetadataRefusal::TooMany {
            max: limits.max_entries_per_mailbox,
            per: "mailbox",
        }));
    }
    let held: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM metadata WHERE owner_id = ?1
               OR (owner_id = 0 AND mailbox_id IN (SELECT id FROM mailboxes WHERE account_id = ?1))",
        )?
        .query_row([account_id], |r| r.get(0))?;
    if held as u64 > limits.max_entries_per_user {
        return Err(StoreError::Metadata(MetadataRefusal::TooMany {
            max: limits.max_entries_per_user,
            per: "user",
        }));
    }
    Ok(())
}

/// The entries `account` sees on its mailbox (or the server): shared ones and its private ones.
pub(crate) fn read(
    conn: &dyn Db,
    account_name: &str,
    mailbox: Option<&str>,
) -> Result<Vec<MetadataEntry>> {
    let acct = account(conn, account_name)?;
    let target = match mailbox {
        None => SERVER,
        Some(name) if crate::acl::other_user(name).is_some_and(|(o, _)| o != acct.name) => {
            resolve(conn, &acct, name, crate::acl::Rights::NONE)?.1.id
        }
        Some(name) => {
            let name = names::mailbox(name, false)?;
            match find_mailbox(conn, acct.id, &name)? {
                Some(m) => m.id,
                None => return Err(StoreError::not_found("mailbox", name)),
            }
        }
    };
    let mut rows = conn
        .prepare_cached(
            "SELECT name, value FROM metadata WHERE mailbox_id = ?1 AND owner_id IN (0, ?2)",
        )?
        .query_map(params![target, acct.id], |r| {
            Ok(MetadataEntry {
                name: r.get(0)?,
                value: r.get(1)?,
            })
        })?
        .collect::<SqlResult<Vec<_>>>()?;
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

/// A mailbox is deleted (or left as a `\Noselect` parent): its entries go.
pub(crate) fn forget_mailbox(conn: &dyn Db, mailbox_id: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM metadata WHERE mailbox_id = ?1")?
        .execute([mailbox_id])?;
    Ok(())
}

/// An account is deleted: its private entries everywhere go (its mailboxes' shared entries
/// went with each mailbox).
pub(crate) fn forget_owner(conn: &dyn Db, account_id: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM metadata WHERE owner_id = ?1")?
        .execute([account_id])?;
    Ok(())
}
