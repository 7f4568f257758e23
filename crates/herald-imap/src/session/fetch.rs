//! FETCH and UID FETCH: FLAGS, UID, RFC822.SIZE, INTERNALDATE, MODSEQ (with CHANGEDSINCE and
//! QRESYNC's VANISHED, answered from the store's expunge tombstones), ENVELOPE, BODY,
//! BODYSTRUCTURE, `BODY[section]<partial>`, BODY.PEEK, RFC822, RFC822.HEADER, RFC822.TEXT,
//! BINARY and BINARY.SIZE, and RFC 8474's EMAILID and THREADID.
//!
//! Metadata comes from one store query for the whole set. ENVELOPE, BODYSTRUCTURE and header
//! sections come from the kept summaries ([`super::summaries`]) when they hold the message;
//! otherwise message bytes are read only when an item needs them, a chunk of messages per
//! store read ([`super::contents`]), and parsed by [`crate::mime`] one at a time. Responses
//! are flushed to the client as they grow, so fetching a thousand bodies holds one chunk in
//! memory.
//! Fetching a non-PEEK body section sets `\Seen` through the store first (MessageRead event)
//! and reports the new FLAGS in the same FETCH response, as RFC 9051 §6.4.5 requires.

use super::contents::Contents;
use super::select::{email_id, msg_flags, thread_id, vanished_earlier};
use super::{Backend, Session, Writer};
use crate::mime;
use crate::proto::command::{FetchAttr, FetchCommand, Section, SectionText};
use crate::proto::response::{BodyName, Data, FetchItem, write_data};
use crate::proto::types::Tag;
use chrono::TimeZone;
use herald_events::UidSet;
use herald_store::{FlagMode, flags as sflags};
use std::collections::HashMap;

fn partial(data: Vec<u8>, p: Option<(u32, u32)>) -> Vec<u8> {
    match p {
        None => data,
        Some((origin, count)) => {
            let start = (origin as usize).min(data.len());
            let end = start.saturating_add(count as usize).min(data.len());
            data[start..end].to_vec()
        }
    }
}

fn sets_seen(a: &FetchAttr) -> bool {
    matches!(
        a,
        FetchAttr::BodySection { peek: false, .. }
            | FetchAttr::Binary { peek: false, .. }
            | FetchAttr::Rfc822
            | FetchAttr::Rfc822Text
    )
}

fn needs_content(a: &FetchAttr) -> bool {
    !matches!(
        a,
        FetchAttr::Flags
            | FetchAttr::Uid
            | FetchAttr::ModSeq
            | FetchAttr::InternalDate
            | FetchAttr::Rfc822Size
    )
}

/// Items a message's [`mime::Summary`] answers without its bytes: what list views and a
/// client's first look at a mailbox ask for.
fn from_summary(a: &FetchAttr) -> bool {
    match a {
        FetchAttr::Envelope
        | FetchAttr::Body
        | FetchAttr::BodyStructure
        | FetchAttr::Rfc822Header => true,
        FetchAttr::BodySection { section, .. } => {
            section.part.is_empty()
                && matches!(
                    section.text,
                    Some(
                        SectionText::Header
                            | SectionText::HeaderFields(_)
                            | SectionText::HeaderFieldsNot(_)
                    )
                )
        }
        _ => false,
    }
}

impl<B: Backend> Session<B> {
    pub(super) async fn fetch(
        &mut self,
        tag: &Tag,
        cmd: FetchCommand,
        w: &mut Writer<'_>,
    ) -> std::io::Result<()> {
        self.fetch_for(Some(tag), cmd, w).await
    }

    /// FETCH for a command (`tag`), or unsolicited for NOTIFY's MessageNew (no tag: errors
    /// are dropped, and neither updates nor a completion follow).
    pub(super) async fn fetch_for(
        &mut self,
        tag: Option<&Tag>,
        cmd: FetchCommand,
        w: &mut Writer<'_>,
    ) -> std::io::Result<()> {
        // RFC 7162 §3.2.6: VANISHED once QRESYNC is on (the parser already requires UID FETCH
        // and CHANGEDSINCE).
        if cmd.vanished && !self.enabled.qresync {
            if let Some(tag) = tag {
                self.bad(tag, "VANISHED needs ENABLE QRESYNC");
            }
            return Ok(());
        }
        if cmd.changed_since.is_some() || cmd.items.contains(&FetchAttr::ModSeq) {
            self.enable_condstore();
        }
        let condstore = self.enabled.condstore;
        let Some(sel) = self.selected() else {
            return Ok(());
        };
        let mut indexes = match sel.resolve(&cmd.set, cmd.uid, &self.saved) {
            Ok(i) => i,
            Err(e) => {
                if let Some(tag) = tag {
                    self.bad(tag, e);
                }
                return Ok(());
            }
        };
        if let (true, Some(since)) = (cmd.vanished, cmd.changed_since) {
            let present: Vec<u32> = sel.msgs.iter().map(|m| m.uid).collect();
            let name = sel.name.clone();
            let tombstones = match self.backend.vanished(&self.ctx, &name, since).await {
                Ok(v) => v,
                Err(e) => {
                    self.fail_opt(tag, &e);
                    return Ok(());
                }
            };
            // `*` is the largest UID in use; an expunged one above every message left still
            // counts, or `n:*` would miss it.
            let largest = present
                .last()
                .copied()
                .into_iter()
                .chain(tombstones.uids.last().copied())
                .max()
                .unwrap_or(0);
            let asked = cmd.set.resolve(largest).unwrap_or_default();
            let gone = vanished_earlier(&asked, &present, &tombstones, 0, largest);
            if !gone.is_empty() {
                let o = self.wopts();
                write_data(
                    &mut self.out,
                    &Data::Vanished {
                        earlier: true,
                        uids: gone,
                    },
                    o,
                );
            }
        }
        let Some(sel) = self.selected() else {
            return Ok(());
        };
        if let Some(since) = cmd.changed_since {
            indexes.retain(|&i| sel.msgs[i].modseq > since);
        }
        let name = sel.name.clone();
        let read_only = sel.read_only;
        let uids = UidSet::from_uids(indexes.iter().map(|&i| sel.msgs[i].uid));
        // Implicit \Seen first, so the FLAGS we report are the committed ones.
        let mut seen_now = std::collections::HashSet::new();
        if !read_only && cmd.items.iter().any(sets_seen) {
            let unseen = UidSet::from_uids(
                indexes
                    .iter()
                    .map(|&i| &sel.msgs[i])
                    .filter(|m| !sflags::contains(&m.flags, "\\Seen"))
                    .map(|m| m.uid),
            );
            if !unseen.is_empty() {
                match self
                    .backend
                    .store_flags(
                        &self.ctx,
                        &name,
                        &unseen,
                        FlagMode::Add,
                        &["\\Seen".to_owned()],
                        None,
                    )
                    .await
                {
                    Ok(c) => {
                        if let Some(sel) = self.selected_mut() {
                            for (uid, flags, modseq) in c.value.changed {
                                if let Some(i) = sel.index_of(uid) {
                                    sel.msgs[i].flags = flags;
                                    sel.msgs[i].modseq = modseq;
                                    seen_now.insert(uid);
                                    if !sel.contexts.is_empty() {
                                        sel.pending.insert(uid);
                                    }
                                }
                            }
                        }
                    }
                    // RFC 4314 §4: without `s` on a shared mailbox, FETCH still reads; the
                    // message just stays unseen.
                    Err(herald_store::StoreError::NoPermission { .. }) => {}
                    Err(e) => {
                        self.fail_opt(tag, &e);
                        return Ok(());
                    }
                }
            }
        }
        let metas = if uids.is_empty() {
            Vec::new()
        } else {
            match self.backend.fetch(&self.ctx, &name, Some(&uids)).await {
                Ok(m) => m,
                Err(e) => {
                    self.fail_opt(tag, &e);
                    return Ok(());
                }
            }
        };
        let metas: HashMap<u32, _> = metas.into_iter().map(|m| (m.uid, m)).collect();
        let wants_summary = cmd.items.iter().any(from_summary);
        let wants_structure = cmd
            .items
            .iter()
            .any(|a| matches!(a, FetchAttr::Body | FetchAttr::BodyStructure));
        // Content ids name the kept summaries as well as EMAILID: one query for the set.
        let email_ids: HashMap<u32, [u8; 32]> =
            if (wants_summary || cmd.items.contains(&FetchAttr::EmailId)) && !uids.is_empty() {
                match self
                    .backend
                    .content_ids(&self.ctx, &name, Some(&uids))
                    .await
                {
                    Ok(ids) => ids.into_iter().collect(),
                    Err(e) => {
                        self.fail_opt(tag, &e);
                        return Ok(());
                    }
                }
            } else {
                HashMap::new()
            };
        let content = cmd
            .items
            .iter()
            .any(|a| needs_content(a) && !from_summary(a));
        // IMAP4rev2 describes message/global as an embedded message (RFC 9051).
        let rev = if self.enabled.rev2 {
            mime::Revision::Rev2
        } else {
            mime::Revision::Rev1
        };
        // Only PREVIEW needs mail-parser's decoded view; the rest reads the raw bytes.
        let full_parse = cmd.items.contains(&FetchAttr::Preview);
        let o = self.wopts();
        // Kept summaries first: the content the rest need is then read a chunk at a time.
        let Some(sel) = self.selected() else {
            return Ok(());
        };
        let mut plan = Vec::with_capacity(indexes.len());
        let mut wanted = Vec::new();
        for i in indexes {
            let Some(msg) = sel.msgs.get(i) else {
                continue;
            };
            let Some(meta) = metas.get(&msg.uid) else {
                // Expunged by another session since the client was told; nothing to show.
                continue;
            };
            let summary = if wants_summary {
                email_ids
                    .get(&msg.uid)
                    .and_then(|id| self.config.summaries.get(id, rev))
            } else {
                None
            };
            let unrendered =
                wants_structure && summary.as_ref().is_none_or(|s| s.body(false).is_none());
            let needs_raw = content || (wants_summary && summary.is_none()) || unrendered;
            if needs_raw {
                wanted.push((msg.uid, meta.size));
            }
            plan.push((i, meta, summary, needs_raw, unrendered));
        }
        let mut contents = Contents::new(wanted);
        for (i, meta, mut summary, needs_raw, unrendered) in plan {
            let Some(msg) = self.selected().and_then(|s| s.msgs.get(i)).cloned() else {
                break;
            };
            let id = email_ids.get(&msg.uid);
            let raw = if needs_raw {
                match contents
                    .take(&self.backend, &self.ctx, &name, msg.uid)
                    .await
                {
                    Ok(Some(r)) => Some(r),
                    // Expunged by another session since the metadata was read.
                    Ok(None) => continue,
                    Err(e) => {
                        self.fail_opt(tag, &e);
                        return Ok(());
                    }
                }
            } else {
                None
            };
            if let (Some(s), Some(r), true) = (&summary, raw.as_deref(), unrendered) {
                // Kept from an ENVELOPE or header FETCH: BODY/BODYSTRUCTURE are asked first now.
                s.render_structure(r, rev);
            }
            if wants_summary
                && summary.is_none()
                && let Some(r) = raw.as_deref()
            {
                let made = mime::header_summary(r);
                if wants_structure {
                    made.render_structure(r, rev);
                }
                let made = std::sync::Arc::new(made);
                if let Some(id) = id {
                    self.config
                        .summaries
                        .insert(*id, rev, std::sync::Arc::clone(&made));
                }
                summary = Some(made);
            }
            let parsed = raw.as_deref().and_then(|r| {
                if full_parse {
                    mime::parse(r)
                } else {
                    Some(mime::wrap(r))
                }
            });
            let mut items = Vec::with_capacity(cmd.items.len() + 2);
            if cmd.uid {
                items.push(FetchItem::Uid(msg.uid));
            }
            let mut flags_done = false;
            for attr in &cmd.items {
                match attr {
                    FetchAttr::Uid => {
                        if !cmd.uid {
                            items.push(FetchItem::Uid(msg.uid));
                        }
                    }
                    FetchAttr::Flags => {
                        flags_done = true;
                        items.push(FetchItem::Flags(msg_flags(&msg)));
                    }
                    FetchAttr::ModSeq => {}
                    FetchAttr::EmailId => {
                        if let Some(d) = email_ids.get(&msg.uid) {
                            items.push(FetchItem::EmailId(email_id(d)));
                        }
                    }
                    FetchAttr::SaveDate => {
                        items.push(FetchItem::SaveDate(meta.save_date_ms.and_then(|ms| {
                            chrono::Utc
                                .timestamp_millis_opt(ms)
                                .single()
                                .map(|d| d.fixed_offset())
                        })))
                    }
                    FetchAttr::Preview => items.push(FetchItem::Preview(
                        parsed
                            .as_ref()
                            .map(crate::preview::preview)
                            .unwrap_or_default(),
                    )),
                    // A message stored before threads were kept has none (NIL, RFC 8474 §5.2).
                    FetchAttr::ThreadId => items.push(FetchItem::ThreadId(
                        (meta.thread_id != 0).then(|| thread_id(meta.thread_id)),
                    )),
                    FetchAttr::InternalDate => {
                        let d = chrono::Utc
                            .timestamp_millis_opt(meta.internal_date_ms)
                            .single()
                            .unwrap_or_default()
                            .fixed_offset();
                        items.push(FetchItem::InternalDate(d));
                    }
                    FetchAttr::Rfc822Size => items.push(FetchItem::Rfc822Size(meta.size)),
                    FetchAttr::Envelope => {
                        items.push(FetchItem::Envelope(summary.as_ref().map_or_else(
                            || b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)".to_vec(),
                            |s| s.envelope.clone(),
                        )))
                    }
                    FetchAttr::BodyStructure | FetchAttr::Body => {
                        let ext = *attr == FetchAttr::BodyStructure;
                        let s = summary.as_ref().and_then(|s| s.body(ext)).map_or_else(
                            || b"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0)".to_vec(),
                            <[u8]>::to_vec,
                        );
                        items.push(if ext {
                            FetchItem::BodyStructure(s)
                        } else {
                            FetchItem::Body(s)
                        });
                    }
                    FetchAttr::Rfc822 => {
                        items.push(FetchItem::Data(BodyName::Rfc822, raw.clone()));
                    }
                    FetchAttr::Rfc822Header | FetchAttr::Rfc822Text => {
                        let text = if *attr == FetchAttr::Rfc822Header {
                            SectionText::Header
                        } else {
                            SectionText::Text
                        };
                        let sec = Section {
                            part: Vec::new(),
                            text: Some(text),
                        };
                        let data = match (&summary, *attr == FetchAttr::Rfc822Header) {
                            (Some(s), true) => s.header_section(&sec),
                            _ => parsed
                                .as_ref()
                                .and_then(|m| mime::section_for(m, &sec, rev)),
                        };
                        let name = if *attr == FetchAttr::Rfc822Header {
                            BodyName::Rfc822Header
                        } else {
                            BodyName::Rfc822Text
                        };
                        items.push(FetchItem::Data(name, data));
                    }
                    FetchAttr::BodySection {
                        section,
                        partial: p,
                        ..
                    } => {
                        // `header_section` answers only the top-level header sections.
                        let from_header = summary.as_ref().and_then(|s| s.header_section(section));
                        let data =
                            match (&parsed, section.part.is_empty() && section.text.is_none()) {
                                _ if from_header.is_some() => from_header,
                                (_, true) => raw.clone(),
                                (Some(m), false) => mime::section_for(m, section, rev),
                                (None, false) => None,
                            };
                        let data = Some(partial(data.unwrap_or_default(), *p));
                        items.push(FetchItem::Data(
                            BodyName::Section {
                                section: section.clone(),
                                origin: p.map(|x| x.0),
                            },
                            data,
                        ));
                    }
                    FetchAttr::Binary {
                        part, partial: p, ..
                    } => {
                        let data = parsed.as_ref().and_then(|m| mime::binary_for(m, part, rev));
                        items.push(FetchItem::Data(
                            BodyName::Binary {
                                part: part.clone(),
                                origin: p.map(|x| x.0),
                            },
                            data.map(|d| partial(d, *p)),
                        ));
                    }
                    FetchAttr::BinarySize { part } => {
                        let size = parsed
                            .as_ref()
                            .and_then(|m| mime::binary_for(m, part, rev))
                            .map_or(0, |d| d.len() as u64);
                        items.push(FetchItem::BinarySize {
                            part: part.clone(),
                            size,
                        });
                    }
                }
            }
            if !flags_done && seen_now.contains(&msg.uid) {
                items.push(FetchItem::Flags(msg_flags(&msg)));
            }
            if condstore {
                items.push(FetchItem::ModSeq(msg.modseq));
            }
            write_data(
                &mut self.out,
                &Data::Fetch {
                    seq: i as u32 + 1,
                    items,
                },
                o,
            );
            self.flush_if_full(w).await?;
        }
        let Some(tag) = tag else {
            return Ok(());
        };
        self.updates(cmd.uid).await;
        self.ok(
            tag,
            None,
            if cmd.uid {
                "UID FETCH completed"
            } else {
                "FETCH completed"
            },
        );
        Ok(())
    }
}
