//! APPEND (with MULTIAPPEND syntax, LITERAL+ and UIDPLUS's APPENDUID).
//!
//! The message literal was streamed out of the framer into the session's own buffer
//! ([`Session::literal`](super::Session) decides that when the literal is announced, refusing
//! one above `max_literal` before any of it is read), so it never counts against the command
//! size limit. The store takes the message as one `Vec`, so a message is in memory once while
//! it is appended. Messages of a MULTIAPPEND are appended one by one; a failure stops the
//! command (the earlier ones stay, and their UIDs are not reported).
//!
//! Errors: a missing mailbox is `NO [TRYCREATE]` (RFC 9051 §6.3.12); over quota is
//! `NO [OVERQUOTA]`, and the store has already committed the QuotaExceed event.

use super::{Backend, Session};
use crate::proto::command::AppendMessage;
use crate::proto::response::Code;
use crate::proto::types::{Flag, LiteralData, Mailbox, Tag};
use herald_events::UidSet;
use herald_store::StoreError;

impl<B: Backend> Session<B> {
    fn take_literal(&mut self, data: LiteralData) -> Option<Vec<u8>> {
        match data {
            LiteralData::Inline(v) => Some(v),
            LiteralData::Streamed { index, .. } => {
                let at = self.literals.iter().position(|(i, _)| *i == index)?;
                Some(self.literals.swap_remove(at).1)
            }
        }
    }

    pub(super) async fn append(
        &mut self,
        tag: &Tag,
        mailbox: Mailbox,
        messages: Vec<AppendMessage>,
    ) {
        let mut uids = Vec::new();
        let mut uidvalidity = 0;
        for m in messages {
            let Some(content) = self.take_literal(m.data) else {
                self.bad(tag, "message data missing");
                return;
            };
            let flags: Vec<String> = m
                .flags
                .iter()
                .filter(|f| **f != Flag::Recent)
                .map(ToString::to_string)
                .collect();
            let date = m.internal_date.map(|d| d.timestamp_millis());
            match self
                .backend
                .append(&self.ctx, mailbox.as_str(), content, &flags, date)
                .await
            {
                Ok(c) => {
                    uidvalidity = c.value.uidvalidity;
                    uids.push(c.value.uid);
                }
                Err(e @ (StoreError::NotFound { .. } | StoreError::NoSelect(_))) => {
                    self.no(tag, Some(Code::TryCreate), &e.to_string());
                    return;
                }
                Err(e) => {
                    self.fail(tag, &e);
                    return;
                }
            }
        }
        self.updates(true).await;
        self.ok(
            tag,
            Some(Code::AppendUid {
                uidvalidity,
                uids: UidSet::from_uids(uids),
            }),
            "APPEND completed",
        );
    }
}
