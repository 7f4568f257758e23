//! APPEND (with MULTIAPPEND, CATENATE, BINARY's literal8, LITERAL+ and UIDPLUS's APPENDUID).
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
use crate::proto::command::{AppendMessage, CatPart, FetchAttr, ParseOptions, Section};
use crate::proto::response::Code;
use crate::proto::types::{Flag, LiteralData, Mailbox, Tag};
use herald_events::{ImapUrl, UidSet};

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

    /// Builds a CATENATE message (RFC 4469) from its TEXT and URL parts. A URL must name a
    /// message (or part) of the session's own user on this server; anything else is
    /// `NO [BADURL url]`, and a result above `max_literal` is `NO [TOOBIG]`.
    async fn catenate(&mut self, parts: Vec<CatPart>) -> Result<Vec<u8>, (Code, String)> {
        let mut out = Vec::new();
        for part in parts {
            let bytes = match part {
                CatPart::Text(data) => self
                    .take_literal(data)
                    .ok_or((Code::Parse, "TEXT data missing".to_owned()))?,
                CatPart::Url(url) => match self.resolve_url(&url).await {
                    Ok(b) => b,
                    Err(why) => {
                        return Err((Code::Other("BADURL".into(), Some(url)), why.into()));
                    }
                },
            };
            if (out.len() + bytes.len()) as u64 > self.config.max_literal {
                return Err((
                    Code::TooBig,
                    "the message would exceed the size limit".into(),
                ));
            }
            out.extend_from_slice(&bytes);
        }
        Ok(out)
    }

    /// The bytes an IMAP URL (RFC 5092; relative `/mailbox;UIDVALIDITY=v/;UID=u…` or
    /// absolute on this host) names in the user's own mailboxes.
    async fn resolve_url(&self, url: &str) -> Result<Vec<u8>, &'static str> {
        let full = if url.starts_with('/') {
            format!("imap://{}{url}", self.config.hostname)
        } else {
            url.to_owned()
        };
        let u: ImapUrl = full.parse().map_err(|_| "not an IMAP URL")?;
        if u.urlauth.is_some() {
            return Err("URLAUTH URLs are not supported here");
        }
        if !u.host.eq_ignore_ascii_case(&self.config.hostname) {
            return Err("the URL names another server");
        }
        if u.user
            .as_deref()
            .is_some_and(|x| Some(x) != self.ctx.user.as_deref())
        {
            return Err("the URL names another user");
        }
        let (Some(mailbox), Some(uid)) = (u.mailbox.as_deref(), u.uid) else {
            return Err("the URL names no message");
        };
        let info = self
            .backend
            .mailbox(&self.ctx, mailbox)
            .await
            .map_err(|_| "no such mailbox")?;
        if u.uidvalidity.is_some_and(|v| v != info.uidvalidity) {
            return Err("the mailbox's UIDVALIDITY changed");
        }
        let raw = self
            .backend
            .read_message(&self.ctx, &info.name, uid)
            .await
            .map_err(|_| "no such message")?;
        let data = match u.section.as_deref() {
            None => raw,
            Some(s) => {
                let section = parse_section(s).ok_or("not a section")?;
                let msg = crate::mime::parse(&raw).ok_or("the message does not parse")?;
                crate::mime::section(&msg, &section).ok_or("no such section")?
            }
        };
        Ok(match u.partial {
            None => data,
            Some(p) => {
                let start = (p.offset as usize).min(data.len());
                let end = p.length.map_or(data.len(), |l| {
                    start.saturating_add(l as usize).min(data.len())
                });
                data[start..end].to_vec()
            }
        })
    }

    pub(super) async fn append(
        &mut self,
        tag: &Tag,
        mailbox: Mailbox,
        messages: Vec<AppendMessage>,
    ) {
        let mut batch = Vec::with_capacity(messages.len());
        for m in messages {
            let content = match m.catenate {
                Some(parts) => match self.catenate(parts).await {
                    Ok(c) => c,
                    Err((code, text)) => {
                        self.no(tag, Some(code), &text);
                        return;
                    }
                },
                None => match self.take_literal(m.data) {
                    Some(c) => c,
                    None => {
                        self.bad(tag, "message data missing");
                        return;
                    }
                },
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
            Err(e) => {
                self.fail_target(tag, &e);
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

/// A URL's `;SECTION=` value read with the FETCH grammar, so it means what `BODY[…]` means.
pub(super) fn parse_section(s: &str) -> Option<Section> {
    let cmd = format!("t FETCH 1 BODY.PEEK[{s}]\r\n");
    let parsed =
        crate::proto::command::parse_command_bytes(cmd.as_bytes(), ParseOptions::default());
    match parsed.ok()?.body {
        crate::proto::command::CommandBody::Fetch(f) => match f.items.as_slice() {
            [FetchAttr::BodySection { section, .. }] => Some(section.clone()),
            _ => None,
        },
        _ => None,
    }
}
