//! QUOTA (RFC 9208): GETQUOTA, GETQUOTAROOT, and SETQUOTA for administrators.
//!
//! Each account has one quota root, named `""`, covering all its mailboxes, with the STORAGE
//! (kilobytes) and MESSAGE resources the store enforces. SETQUOTA is for administrators: an
//! admin logged in as itself sets its own root, an admin acting as a user (SASL authorization
//! identity) sets that user's; the store commits QuotaChange. A resource left out of SETQUOTA
//! keeps its limit.

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

impl<B: Backend> Session<B> {
    fn user(&self) -> String {
        self.ctx.user.clone().unwrap_or_default()
    }

    async fn write_quota(&mut self, tag: &Tag) -> bool {
        match self.backend.quota(&self.user()).await {
            Ok(q) => {
                let o = self.wopts();
                write_data(
                    &mut self.out,
                    &Data::Quota {
                        root: ROOT.to_owned(),
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
        if root != ROOT {
            self.no(tag, Some(Code::NonExistent), "no such quota root");
            return;
        }
        if self.write_quota(tag).await {
            self.updates(true).await;
            self.ok(tag, None, "GETQUOTA completed");
        }
    }

    pub(super) async fn getquotaroot(&mut self, tag: &Tag, mailbox: Mailbox) {
        if let Err(e) = self.backend.mailbox(&self.ctx, mailbox.as_str()).await {
            self.fail(tag, &e);
            return;
        }
        let o = self.wopts();
        write_data(
            &mut self.out,
            &Data::QuotaRoot {
                mailbox,
                roots: vec![ROOT.to_owned()],
            },
            o,
        );
        if self.write_quota(tag).await {
            self.updates(true).await;
            self.ok(tag, None, "GETQUOTAROOT completed");
        }
    }

    pub(super) async fn setquota(&mut self, tag: &Tag, root: &str, limits: &[(String, u64)]) {
        if !self.identity.as_ref().is_some_and(|i| i.admin) {
            self.no(
                tag,
                Some(Code::NoPerm),
                "only administrators may set quotas",
            );
            return;
        }
        if root != ROOT {
            self.no(tag, Some(Code::NonExistent), "no such quota root");
            return;
        }
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
        let user = self.user();
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
                        root: ROOT.to_owned(),
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
