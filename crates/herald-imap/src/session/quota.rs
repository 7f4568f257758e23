//! QUOTA (RFC 9208): GETQUOTA, GETQUOTAROOT, and SETQUOTA for administrators.
//!
//! Each account has one quota root, named `""`, covering all its mailboxes, with the STORAGE
//! (kilobytes) and MESSAGE resources the store enforces. SETQUOTA is for administrators: an
//! admin logged in as itself sets its own root, an admin acting as a user (SASL authorization
//! identity) sets that user's; the store commits QuotaChange. A resource left out of SETQUOTA
//! keeps its limit.
//!
//! Other accounts' roots are named as their mailboxes are, in the Other Users namespace:
//! `user/NAME`. An administrator reads and sets any of them by that name (GETQUOTA,
//! SETQUOTA); a user reads their own under it too, and GETQUOTAROOT of a mailbox shared with
//! them (`user/NAME/…`) names its owner's root. Anyone else's root answers as a missing one.

use super::{Backend, Session};
use crate::proto::response::{Code, Data, write_data};
use crate::proto::types::{Mailbox, Tag};
use herald_store::QuotaInfo;

const ROOT: &str = "";

fn resources(q: &QuotaInfo) -> Vec<(String, u64, u64)> {
    let mut r = Vec::new();
    if let Some(limit) = q.storage_kb {
        r.push(("STORAGE".to_owned(), q.used_kb(), limit));
    }
    if let Some(limit) = q.max_messages {
        r.push(("MESSAGE".to_owned(), q.used_messages, limit));
    }
    r
}

/// The account a quota root names: `""` the session's own, `user/NAME` NAME's, `#shared`
/// the "Shared" namespace's.
fn root_account<'a>(root: &'a str, me: &'a str) -> Option<&'a str> {
    if root == ROOT {
        return Some(me);
    }
    match herald_store::acl::other_user(root) {
        Some((name, "")) => Some(name),
        _ => None,
    }
}

impl<B: Backend> Session<B> {
    fn user(&self) -> String {
        self.ctx.user.clone().unwrap_or_default()
    }

    fn is_admin(&self) -> bool {
        self.identity.as_ref().is_some_and(|i| i.admin)
    }

    /// The account whose quota `root` names, if this session may read it.
    fn readable_root(&self, root: &str) -> Option<String> {
        let me = self.user();
        root_account(root, &me)
            .filter(|a| *a == me || self.is_admin())
            .map(str::to_owned)
    }

    async fn write_quota_of(&mut self, tag: &Tag, root: &str, account: &str) -> bool {
        match self.backend.quota(account).await {
            Ok(q) => {
                let o = self.wopts();
                write_data(
                    &mut self.out,
                    &Data::Quota {
                        root: root.to_owned(),
                        resources: resources(&q),
                    },
                    o,
                );
                true
            }
            Err(e) => {
                self.fail(tag, &e);
                false
            }
        }
    }

    pub(super) async fn getquota(&mut self, tag: &Tag, root: &str) {
        let Some(account) = self.readable_root(root) else {
            self.no(tag, Some(Code::NonExistent), "no such quota root");
            return;
        };
        if self.write_quota_of(tag, root, &account).await {
            self.updates(true).await;
            self.ok(tag, None, "GETQUOTA completed");
        }
    }

    pub(super) async fn getquotaroot(&mut self, tag: &Tag, mailbox: Mailbox) {
        if let Err(e) = self.backend.mailbox(&self.ctx, mailbox.as_str()).await {
            self.fail(tag, &e);
            return;
        }
        // A mailbox of another account (shared with this user) is under its owner's root.
        let (root, account) = match herald_store::acl::other_user(mailbox.as_str()) {
            // The "Shared" namespace is one root, `#shared`, as its pseudo-account is.
            Some((owner, _)) if owner == herald_store::acl::SHARED_OWNER => {
                (owner.to_owned(), owner.to_owned())
            }
            Some((owner, _)) if owner != self.user() => (
                format!("{}{owner}", herald_store::acl::OTHER_USERS_PREFIX),
                owner.to_owned(),
            ),
            _ => (ROOT.to_owned(), self.user()),
        };
        let o = self.wopts();
        write_data(
            &mut self.out,
            &Data::QuotaRoot {
                mailbox,
                roots: vec![root.clone()],
            },
            o,
        );
        if self.write_quota_of(tag, &root, &account).await {
            self.updates(true).await;
            self.ok(tag, None, "GETQUOTAROOT completed");
        }
    }

    pub(super) async fn setquota(&mut self, tag: &Tag, root: &str, limits: &[(String, u64)]) {
        if !self.is_admin() {
            self.no(
                tag,
                Some(Code::NoPerm),
                "only administrators may set quotas",
            );
            return;
        }
        let Some(user) = self.readable_root(root) else {
            self.no(tag, Some(Code::NonExistent), "no such quota root");
            return;
        };
        let (mut storage, mut messages) = (None, None);
        for (name, limit) in limits {
            match name.as_str() {
                "STORAGE" => storage = Some(*limit),
                "MESSAGE" => messages = Some(*limit),
                _ => {
                    self.no(
                        tag,
                        Some(Code::Cannot),
                        &format!("unsupported resource {name}"),
                    );
                    return;
                }
            }
        }
        if storage.is_none() && messages.is_none() {
            self.no(tag, Some(Code::Cannot), "no resource given");
            return;
        }
        match self
            .backend
            .set_quota(&self.ctx, &user, storage, messages)
            .await
        {
            Ok(c) => {
                let o = self.wopts();
                write_data(
                    &mut self.out,
                    &Data::Quota {
                        root: root.to_owned(),
                        resources: resources(&c.value),
                    },
                    o,
                );
                self.updates(true).await;
                self.ok(tag, None, "SETQUOTA completed");
            }
            Err(e) => self.fail(tag, &e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::root_account;

    #[test]
    fn quota_roots_name_accounts() {
        assert_eq!(root_account("", "alice"), Some("alice"));
        assert_eq!(root_account("user/bob", "alice"), Some("bob"));
        assert_eq!(root_account("user/bob/INBOX", "alice"), None);
        assert_eq!(root_account("#user/bob", "alice"), None);
    }
}
