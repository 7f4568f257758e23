//! APPEND (with MULTIAPPEND, BINARY's literal8, LITERAL+ and UIDPLUS's APPENDUID).
//!
//! The message literal was streamed out of the framer into the session's own buffer
//! ([`Session::literal`](super::Session) decides that when the literal is announced, refusing
//! one above `max_literal` before any of it is read), so it never counts against the command
//! size limit. The store takes the message as one `Vec`, so a message is in memory once while
//! it is appended. The messages of a MULTIAPPEND (RFC 3502) are appended in one store
//! transaction: all of them, or none when one fails (over quota, a bad flag).
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
        let mut batch = Vec::with_capacity(messages.len());
        for m in messages {
            let Some(content) = self.take_literal(m.data) else {
                self.bad(tag, "message data missing");
                return;
            };
            // A literal8 (RFC 3516 §4.4) may carry 8-bit data, which is stored as sent; NUL
            // bytes are refused, since BODY[] could then not return the message as a plain
            // literal to clients that did not ask for BINARY.
            if m.binary && content.contains(&0) {
                self.no(
                    tag,
                    Some(Code::UnknownCte),
                    "messages with NUL bytes are not stored",
                );
                return;
            }
            let flags: Vec<String> = m
                .flags
                .iter()
                .filter(|f| **f != Flag::Recent)
                .map(ToString::to_string)
                .collect();
            let date = m.internal_date.map(|d| d.timestamp_millis());
            batch.push((content, flags, date));
        }
        // One message: the common APPEND. Several: MULTIAPPEND, committed all or none
        // (RFC 3502 §6.3.11), in one store transaction.
        let result = if batch.len() == 1 {
            let Some((content, flags, date)) = batch.pop() else {
                return;
            };
            self.backend
                .append(&self.ctx, mailbox.as_str(), content, &flags, date)
                .await
                .map(|c| vec![c.value])
        } else {
            self.backend
                .append_many(&self.ctx, mailbox.as_str(), batch)
                .await
                .map(|c| c.value)
        };
        let appended = match result {
            Ok(a) => a,
            Err(e @ (StoreError::NotFound { .. } | StoreError::NoSelect(_))) => {
                self.no(tag, Some(Code::TryCreate), &e.to_string());
                return;
            }
            Err(e) => {
                self.fail(tag, &e);
                return;
            }
        };
        let uidvalidity = appended.first().map_or(0, |a| a.uidvalidity);
        self.updates(true).await;
        self.ok(
            tag,
            Some(Code::AppendUid {
                uidvalidity,
                uids: UidSet::from_uids(appended.iter().map(|a| a.uid)),
            }),
            "APPEND completed",
        );
    }
}
