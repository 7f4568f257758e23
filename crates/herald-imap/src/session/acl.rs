//! ACL (RFC 4314): SETACL, DELETEACL, GETACL, LISTRIGHTS, MYRIGHTS.
//!
//! The session only translates: rights are checked and stored by the store, which also
//! checks them on every other command that touches another account's mailbox (named
//! `user/OWNER/NAME`, the Other Users namespace NAMESPACE announces). A missing right is
//! `NO [NOPERM]`; a mailbox the user may not see answers as a missing one. Herald supports
//! `RIGHTS=texk` (the four rights of RFC 4314 that replaced `c` and `d`, which are still
//! accepted and mapped as §2.1.1 says) and no negative rights.

use super::{Backend, Session};
use crate::proto::response::{Data, write_data};
use crate::proto::types::{Mailbox, Tag};
use herald_store::{Rights, StoreError};

/// SETACL's `mod-rights`: replace, add (`+`) or remove (`-`).
enum Change {
    Set(Rights),
    Add(Rights),
    Remove(Rights),
}

fn parse_mod_rights(s: &str) -> Result<Change, StoreError> {
    Ok(if let Some(r) = s.strip_prefix('+') {
        Change::Add(Rights::parse(r)?)
    } else if let Some(r) = s.strip_prefix('-') {
        Change::Remove(Rights::parse(r)?)
    } else {
        Change::Set(Rights::parse(s)?)
    })
}

impl<B: Backend> Session<B> {
    pub(super) async fn setacl(
        &mut self,
        tag: &Tag,
        mailbox: Mailbox,
        identifier: &str,
        rights: &str,
    ) {
        let change = match parse_mod_rights(rights) {
            Ok(c) => c,
            Err(e) => {
                // RFC 4314 §3.1: an unrecognised right is a BAD.
                self.bad(tag, &e.to_string());
                return;
            }
        };
        let name = mailbox.as_str();
        let new = match change {
            Change::Set(r) => r,
            Change::Add(_) | Change::Remove(_) => {
                // `+`/`-` apply to the identifier's current entry, which GETACL's right (`a`,
                // also needed for SETACL) lets us read.
                let current = match self.backend.get_acl(&self.ctx, name).await {
                    Ok(acl) => acl
                        .into_iter()
                        .find(|e| e.identifier == identifier)
                        .map_or(Rights::NONE, |e| e.rights),
                    Err(e) => {
                        self.fail(tag, &e);
                        return;
                    }
                };
                match change {
                    Change::Add(r) => current | r,
                    Change::Remove(r) => current.without(r),
                    Change::Set(r) => r,
                }
            }
        };
        match self
            .backend
            .set_acl(&self.ctx, name, identifier, Some(new))
            .await
        {
            Ok(_) => {
                self.updates(true).await;
                self.ok(tag, None, "SETACL completed");
            }
            Err(e) => self.fail(tag, &e),
        }
    }

    pub(super) async fn deleteacl(&mut self, tag: &Tag, mailbox: Mailbox, identifier: &str) {
        match self
            .backend
            .set_acl(&self.ctx, mailbox.as_str(), identifier, None)
            .await
        {
            Ok(_) => {
                self.updates(true).await;
                self.ok(tag, None, "DELETEACL completed");
            }
            Err(e) => self.fail(tag, &e),
        }
    }

    pub(super) async fn getacl(&mut self, tag: &Tag, mailbox: Mailbox) {
        match self.backend.get_acl(&self.ctx, mailbox.as_str()).await {
            Ok(acl) => {
                let o = self.wopts();
                let entries = acl
                    .into_iter()
                    .map(|e| (e.identifier, e.rights.to_string()))
                    .collect();
                write_data(&mut self.out, &Data::Acl { mailbox, entries }, o);
                self.updates(true).await;
                self.ok(tag, None, "GETACL completed");
            }
            Err(e) => self.fail(tag, &e),
        }
    }

    /// LISTRIGHTS (§3.4): the owner always has every right and can be given no other; anyone
    /// else may be given each right on its own (no right implies another here).
    pub(super) async fn listrights(&mut self, tag: &Tag, mailbox: Mailbox, identifier: &str) {
        // Needs `a`, as GETACL does; the ACL also names the owner (its first entry).
        let acl = match self.backend.get_acl(&self.ctx, mailbox.as_str()).await {
            Ok(acl) => acl,
            Err(e) => {
                self.fail(tag, &e);
                return;
            }
        };
        let owner = acl.first().is_some_and(|e| e.identifier == identifier);
        let (required, optional) = if owner {
            (Rights::ALL.to_string(), Vec::new())
        } else {
            (
                String::new(),
                Rights::LETTERS.chars().map(String::from).collect(),
            )
        };
        let o = self.wopts();
        write_data(
            &mut self.out,
            &Data::ListRights {
                mailbox,
                identifier: identifier.to_owned(),
                required,
                optional,
            },
            o,
        );
        self.updates(true).await;
        self.ok(tag, None, "LISTRIGHTS completed");
    }

    pub(super) async fn myrights(&mut self, tag: &Tag, mailbox: Mailbox) {
        match self.backend.my_rights(&self.ctx, mailbox.as_str()).await {
            Ok(rights) => {
                let o = self.wopts();
                write_data(
                    &mut self.out,
                    &Data::MyRights {
                        mailbox,
                        rights: rights.to_string(),
                    },
                    o,
                );
                self.updates(true).await;
                self.ok(tag, None, "MYRIGHTS completed");
            }
            Err(e) => self.fail(tag, &e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mod_rights() {
        assert!(matches!(parse_mod_rights("lr"), Ok(Change::Set(r)) if r.to_string() == "lr"));
        assert!(matches!(parse_mod_rights("+i"), Ok(Change::Add(r)) if r.to_string() == "i"));
        assert!(
            matches!(parse_mod_rights("-cd"), Ok(Change::Remove(r)) if r.to_string() == "kxte")
        );
        assert!(matches!(parse_mod_rights(""), Ok(Change::Set(r)) if r.is_empty()));
        assert!(parse_mod_rights("lQ").is_err());
    }
}
