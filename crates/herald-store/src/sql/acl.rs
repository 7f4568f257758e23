//! ACL rows (schema v9, table `acl`): the reads both the writer's rights checks and the
//! reader connections use, so "what may this user do here" has one answer.

use super::ops::{MAILBOX_COLUMNS, mailbox_row};
use crate::acl::{ANYONE, AclEntry, Rights, SHARED_OWNER, SharedMailbox};
use crate::error::{Result, StoreError};
use crate::sql::{Db, OptionalExtension, Result as SqlResult, params};

fn parse(stored: &str) -> Result<Rights> {
    Rights::parse(stored)
        .map_err(|_| StoreError::Corrupt(format!("ACL row holds unknown rights `{stored}`")))
}

/// A mailbox's ACL, by identifier.
pub(crate) fn entries(conn: &dyn Db, mailbox_id: i64) -> Result<Vec<AclEntry>> {
    let mut stmt =
        conn.prepare_cached("SELECT identifier, rights FROM acl WHERE mailbox_id = ?1")?;
    let rows = stmt
        .query_map([mailbox_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?
        .collect::<SqlResult<Vec<_>>>()?;
    let mut out = rows
        .into_iter()
        .map(|(identifier, rights)| {
            Ok(AclEntry {
                identifier,
                rights: parse(&rights)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    out.sort_unstable_by(|a, b| a.identifier.cmp(&b.identifier));
    Ok(out)
}

/// What `user` may do on a mailbox it does not own: its entry and `anyone`'s together.
pub(crate) fn granted(conn: &dyn Db, mailbox_id: i64, user: &str) -> Result<Rights> {
    let mut stmt = conn.prepare_cached(
        "SELECT rights FROM acl WHERE mailbox_id = ?1 AND identifier IN (?2, ?3)",
    )?;
    let rows = stmt
        .query_map(params![mailbox_id, user, ANYONE], |r| r.get::<_, String>(0))?
        .collect::<SqlResult<Vec<_>>>()?;
    rows.iter()
        .try_fold(Rights::NONE, |acc, r| Ok(acc | parse(r)?))
}

/// Whether `user` is an administrator account.
pub(crate) fn is_admin(conn: &dyn Db, user: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT admin FROM accounts WHERE name = ?1")?
        .query_row([user], |r| r.get::<_, bool>(0))
        .optional()?
        .unwrap_or(false))
}

/// What `user` may do on `owner`'s mailbox `mailbox_id`, `user` not being its owner: what
/// [`granted`] gives, and in the "Shared" namespace every right to an administrator, who
/// stands in for the owner it has not.
pub(crate) fn rights_of(conn: &dyn Db, owner: &str, mailbox_id: i64, user: &str) -> Result<Rights> {
    if owner == SHARED_OWNER && is_admin(conn, user)? {
        return Ok(Rights::ALL);
    }
    granted(conn, mailbox_id, user)
}

/// Other accounts' mailboxes `user` may see through its own or `anyone`'s entry, by owner
/// and name; for an administrator also every mailbox of the "Shared" namespace.
pub(crate) fn shared_with(conn: &dyn Db, user: &str) -> Result<Vec<SharedMailbox>> {
    let cols = MAILBOX_COLUMNS
        .split(", ")
        .map(|c| format!("m.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {cols}, a.name, {concat}(acl.rights, '') FROM acl
         JOIN mailboxes m ON m.id = acl.mailbox_id
         JOIN accounts a ON a.id = m.account_id
         WHERE acl.identifier IN (?1, ?2) AND a.name != ?1
         GROUP BY m.id, a.name",
        concat = conn.pick("group_concat", "string_agg"),
    ))?;
    let rows = stmt
        .query_map(params![user, ANYONE], |r| {
            Ok((
                mailbox_row(r)?,
                r.get::<_, String>(11)?,
                r.get::<_, String>(12)?,
            ))
        })?
        .collect::<SqlResult<Vec<_>>>()?;
    let mut out = Vec::new();
    let admin = is_admin(conn, user)?;
    for (mb, owner, rights) in rows {
        let rights = parse(&rights)?;
        if rights.contains(Rights::LOOKUP) && !mb.noselect && !(admin && owner == SHARED_OWNER) {
            out.push(SharedMailbox {
                owner,
                mailbox: mb.info(),
                rights,
            });
        }
    }
    if admin {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {cols} FROM mailboxes m JOIN accounts a ON a.id = m.account_id
             WHERE a.name = ?1 AND m.noselect = 0"
        ))?;
        let rows = stmt
            .query_map([SHARED_OWNER], super::ops::mailbox_row)?
            .collect::<SqlResult<Vec<_>>>()?;
        out.extend(rows.into_iter().map(|mb| SharedMailbox {
            owner: SHARED_OWNER.to_owned(),
            mailbox: mb.info(),
            rights: Rights::ALL,
        }));
    }
    out.sort_unstable_by(|a, b| (&a.owner, &a.mailbox.name).cmp(&(&b.owner, &b.mailbox.name)));
    Ok(out)
}

/// Sets (`Some`) or removes an identifier's entry; returns its rights before.
pub(crate) fn put(
    conn: &dyn Db,
    mailbox_id: i64,
    identifier: &str,
    rights: Option<Rights>,
) -> Result<Rights> {
    let before = {
        let found: Option<String> = conn
            .prepare_cached("SELECT rights FROM acl WHERE mailbox_id = ?1 AND identifier = ?2")?
            .query_row(params![mailbox_id, identifier], |r| r.get(0))
            .optional()?;
        match found {
            Some(r) => parse(&r)?,
            None => Rights::NONE,
        }
    };
    match rights {
        Some(r) if !r.is_empty() => {
            conn.prepare_cached(
                "INSERT INTO acl (mailbox_id, identifier, rights) VALUES (?1, ?2, ?3)
                 ON CONFLICT (mailbox_id, identifier) DO UPDATE SET rights = ?3",
            )?
            .execute(params![mailbox_id, identifier, r.to_string()])?;
        }
        // RFC 4314 §3.1: SETACL with empty rights removes the identifier, as DELETEACL does.
        _ => {
            conn.prepare_cached("DELETE FROM acl WHERE mailbox_id = ?1 AND identifier = ?2")?
                .execute(params![mailbox_id, identifier])?;
        }
    }
    Ok(before)
}

/// Removes a mailbox's whole ACL (it was deleted or became `\Noselect`).
pub(crate) fn forget_mailbox(conn: &dyn Db, mailbox_id: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM acl WHERE mailbox_id = ?1")?
        .execute([mailbox_id])?;
    Ok(())
}

/// Removes a deleted account's entries in others' ACLs (a new account of the same name must
/// not inherit them) and the ACLs of its own mailboxes.
pub(crate) fn forget_account(conn: &dyn Db, account_id: i64, name: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM acl WHERE identifier = ?1")?
        .execute([name])?;
    conn.prepare_cached(
        "DELETE FROM acl WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE account_id = ?1)",
    )?
    .execute([account_id])?;
    Ok(())
}
