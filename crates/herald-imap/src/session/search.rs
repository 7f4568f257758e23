//! SEARCH and UID SEARCH: every RFC 3501 key (flags, dates, sizes, header and body text,
//! sequence and UID sets, NOT/OR/nesting), CONDSTORE's MODSEQ, ESEARCH return options
//! (MIN/MAX/COUNT/ALL), SEARCHRES (`RETURN (SAVE)`, `$`), CONTEXT=SEARCH's PARTIAL and UPDATE
//! (`context.rs` keeps the update contexts), and RFC 8474's EMAILID and THREADID keys.
//!
//! Keys that only need metadata (flags, INTERNALDATE, size, MODSEQ, numbers, thread) are
//! evaluated on the snapshot and one metadata query (of only the changed messages when an
//! update context re-evaluates); message bytes are read (a chunk of messages per store read,
//! [`super::contents`]) and parsed one message at a time, only when a key looks at headers or
//! text. Text matching is case-insensitive substring
//! over raw and RFC 2047-decoded header values and decoded body text.

use super::contents::Contents;
use super::context::{Ordered, Returns};
use super::select::Selected;
use super::{Backend, Session};
use crate::mime;
use crate::proto::command::{SearchCommand, SearchKey};
use crate::proto::response::{Code, Data, write_data};
use crate::proto::types::{Date, SequenceSet, Tag};
use chrono::TimeZone;
use herald_events::UidSet;
use herald_store::flags as sflags;
use herald_store::{MessageMeta, StoreError};
use mail_parser::Message;

fn needs_content(k: &SearchKey) -> bool {
    contains_key(k, &|k| {
        matches!(
            k,
            SearchKey::Bcc(_)
                | SearchKey::Body(_)
                | SearchKey::Cc(_)
                | SearchKey::From(_)
                | SearchKey::Header(..)
                | SearchKey::SentBefore(_)
                | SearchKey::SentOn(_)
                | SearchKey::SentSince(_)
                | SearchKey::Subject(_)
                | SearchKey::Text(_)
                | SearchKey::To(_)
        )
    })
}

/// Everything one message offers to the search keys.
struct Candidate<'a> {
    seq: u32,
    uid: u32,
    flags: &'a [String],
    recent: bool,
    email_id: Option<&'a str>,
    modseq: u64,
    meta: Option<&'a MessageMeta>,
    msg: Option<&'a Message<'a>>,
}

impl<'a> Candidate<'a> {
    /// The `i`th message of the snapshot, with its metadata (if still in the store) and no
    /// content yet.
    fn new(
        sel: &'a Selected,
        email_ids: &'a std::collections::HashMap<u32, String>,
        i: usize,
        meta: Option<&'a MessageMeta>,
    ) -> Candidate<'a> {
        let m = &sel.msgs[i];
        Candidate {
            seq: i as u32 + 1,
            uid: m.uid,
            flags: &m.flags,
            recent: m.recent,
            email_id: email_ids.get(&m.uid).map(String::as_str),
            modseq: m.modseq,
            meta,
            msg: None,
        }
    }
}

struct Ctx<'a> {
    sel: &'a Selected,
    saved: &'a [u32],
    /// When the search started, for OLDER and YOUNGER.
    now_ms: i64,
}

fn in_set(set: &SequenceSet, n: u32, largest: u32, saved: &[u32], uid_of: u32) -> bool {
    match set {
        SequenceSet::Saved => saved.contains(&uid_of),
        SequenceSet::Ranges(_) => set
            .resolve(largest)
            .unwrap_or_default()
            .iter()
            .any(|&(lo, hi)| lo <= n && n <= hi),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn header_has(c: &Candidate<'_>, name: &str, needle: &[u8]) -> bool {
    c.msg
        .and_then(|m| mime::header_text(m, name))
        .is_some_and(|h| mime::contains_ci(&h, &text(needle)))
}

fn internal_date(c: &Candidate<'_>) -> Option<Date> {
    let ms = c.meta?.internal_date_ms;
    chrono::Utc
        .timestamp_millis_opt(ms)
        .single()
        .map(|d| d.date_naive())
}

/// The day a message was saved to its mailbox; its INTERNALDATE's day when it was stored
/// before save dates were kept (so SAVED* keys still find it).
fn save_date(c: &Candidate<'_>) -> Option<Date> {
    let ms = c.meta?.save_date_ms.unwrap_or(c.meta?.internal_date_ms);
    chrono::Utc
        .timestamp_millis_opt(ms)
        .single()
        .map(|d| d.date_naive())
}

fn eval(k: &SearchKey, c: &Candidate<'_>, x: &Ctx<'_>) -> bool {
    let flag = |f: &str| sflags::contains(c.flags, f);
    match k {
        SearchKey::All => true,
        SearchKey::Answered => flag("\\Answered"),
        SearchKey::Deleted => flag("\\Deleted"),
        SearchKey::Draft => flag("\\Draft"),
        SearchKey::Flagged => flag("\\Flagged"),
        SearchKey::Seen => flag("\\Seen"),
        SearchKey::Unanswered => !flag("\\Answered"),
        SearchKey::Undeleted => !flag("\\Deleted"),
        SearchKey::Undraft => !flag("\\Draft"),
        SearchKey::Unflagged => !flag("\\Flagged"),
        SearchKey::Unseen => !flag("\\Seen"),
        SearchKey::Recent => c.recent,
        SearchKey::New => c.recent && !flag("\\Seen"),
        SearchKey::Old => !c.recent,
        SearchKey::Keyword(kw) => flag(kw),
        SearchKey::Unkeyword(kw) => !flag(kw),
        SearchKey::Larger(n) => c.meta.is_some_and(|m| m.size > *n),
        SearchKey::Smaller(n) => c.meta.is_some_and(|m| m.size < *n),
        SearchKey::EmailId(id) => c.email_id.is_some_and(|e| e == id),
        SearchKey::ThreadId(id) => c
            .meta
            .is_some_and(|m| m.thread_id != 0 && super::select::thread_id(m.thread_id) == *id),
        // RFC 5032: against the exact INTERNALDATE, in seconds, not the day.
        SearchKey::Older(n) => c
            .meta
            .is_some_and(|m| m.internal_date_ms <= x.now_ms - i64::from(*n) * 1000),
        SearchKey::Younger(n) => c
            .meta
            .is_some_and(|m| m.internal_date_ms >= x.now_ms - i64::from(*n) * 1000),
        SearchKey::Before(d) => internal_date(c).is_some_and(|x| x < *d),
        SearchKey::On(d) => internal_date(c).is_some_and(|x| x == *d),
        SearchKey::Since(d) => internal_date(c).is_some_and(|x| x >= *d),
        SearchKey::SavedBefore(d) => save_date(c).is_some_and(|x| x < *d),
        SearchKey::SavedOn(d) => save_date(c).is_some_and(|x| x == *d),
        SearchKey::SavedSince(d) => save_date(c).is_some_and(|x| x >= *d),
        SearchKey::SaveDateSupported => true,
        SearchKey::SentBefore(d) => c.msg.and_then(mime::sent_date).is_some_and(|x| x < *d),
        SearchKey::SentOn(d) => c.msg.and_then(mime::sent_date).is_some_and(|x| x == *d),
        SearchKey::SentSince(d) => c.msg.and_then(mime::sent_date).is_some_and(|x| x >= *d),
        SearchKey::Bcc(s) => header_has(c, "Bcc", s),
        SearchKey::Cc(s) => header_has(c, "Cc", s),
        SearchKey::From(s) => header_has(c, "From", s),
        SearchKey::To(s) => header_has(c, "To", s),
        SearchKey::Subject(s) => header_has(c, "Subject", s),
        SearchKey::Header(name, s) => header_has(c, name, s),
        SearchKey::Body(s) => c
            .msg
            .is_some_and(|m| mime::contains_ci(&mime::body_text(m), &text(s))),
        SearchKey::Text(s) => c.msg.is_some_and(|m| {
            let needle = text(s);
            mime::contains_ci(&mime::header_block_text(m), &needle)
                || mime::contains_ci(&mime::body_text(m), &needle)
        }),
        SearchKey::Uid(set) => {
            let largest = x.sel.msgs.last().map_or(0, |m| m.uid);
            in_set(set, c.uid, largest, x.saved, c.uid)
        }
        SearchKey::SequenceSet(set) => in_set(set, c.seq, x.sel.msgs.len() as u32, x.saved, c.uid),
        SearchKey::ModSeq { modseq, .. } => c.modseq >= *modseq,
        SearchKey::Not(k) => !eval(k, c, x),
        SearchKey::Or(a, b) => eval(a, c, x) || eval(b, c, x),
        SearchKey::And(v) => v.iter().all(|k| eval(k, c, x)),
    }
}

/// True when `k` or a key nested in it (NOT, OR, a parenthesised list) satisfies `leaf`.
fn contains_key(k: &SearchKey, leaf: &dyn Fn(&SearchKey) -> bool) -> bool {
    match k {
        SearchKey::Not(k) => contains_key(k, leaf),
        SearchKey::Or(a, b) => contains_key(a, leaf) || contains_key(b, leaf),
        SearchKey::And(v) => v.iter().any(|k| contains_key(k, leaf)),
        k => leaf(k),
    }
}

fn has_email_id(k: &SearchKey) -> bool {
    contains_key(k, &|k| matches!(k, SearchKey::EmailId(_)))
}

pub(super) fn has_modseq(k: &SearchKey) -> bool {
    contains_key(k, &|k| matches!(k, SearchKey::ModSeq { .. }))
}

/// The MODSEQ an ESEARCH answer reports (RFC 4731 §3.2, RFC 7162 §3.1.5), for SEARCH and SORT
/// alike: none unless the criteria name MODSEQ (`wanted`), else the highest of the messages the
/// answer names — only those at the positions `named` when it names just some (MIN, MAX,
/// PARTIAL).
pub(super) fn reported_modseq<T>(
    hits: &[Hit<T>],
    named: Option<&[usize]>,
    wanted: bool,
) -> Option<u64> {
    if !wanted {
        return None;
    }
    match named {
        Some(ix) => ix
            .iter()
            .filter_map(|&i| hits.get(i))
            .map(|h| h.modseq)
            .max(),
        None => hits.iter().map(|h| h.modseq).max(),
    }
}

/// A message that matched a search, with what the caller took from it.
pub(super) struct Hit<T> {
    pub seq: u32,
    pub uid: u32,
    pub modseq: u64,
    pub extra: T,
}

/// The header block of a message (up to and including the empty line), for callers that only
/// look at header fields: parsing it is much cheaper than parsing every MIME part.
fn header_part(raw: &[u8]) -> &[u8] {
    memchr::memmem::find(raw, b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| memchr::memmem::find(raw, b"\n\n").map(|i| i + 2))
        .map_or(raw, |end| &raw[..end])
}

impl<B: Backend> Session<B> {
    /// Evaluates search `criteria` (AND-ed) over the selected mailbox, in sequence order, and
    /// calls `extract` on each match with its metadata and, when `headers` is set or a key
    /// needs it, the parsed message (only its header block when no key looks at the body).
    /// `None` after answering the command itself: an unsupported charset, or a store error.
    pub(super) async fn matching<T>(
        &mut self,
        tag: &Tag,
        charset: Option<&str>,
        criteria: &[SearchKey],
        headers: bool,
        extract: impl FnMut(Option<&MessageMeta>, Option<&Message<'_>>) -> T,
    ) -> Option<Vec<Hit<T>>> {
        if let Some(cs) = charset
            && !matches!(cs, "US-ASCII" | "UTF-8")
        {
            self.no(
                tag,
                Some(Code::BadCharset(vec!["US-ASCII".into(), "UTF-8".into()])),
                "unsupported charset",
            );
            return None;
        }
        if criteria.iter().any(has_modseq) {
            self.enable_condstore();
        }
        match self.search_core(criteria, headers, None, extract).await {
            Ok(hits) => Some(hits),
            Err(e) => {
                self.fail(tag, &e);
                None
            }
        }
    }

    /// [`Session::matching`] without a command to answer: over the messages in `only` when
    /// given (an update context re-evaluating what changed), else over the whole mailbox.
    pub(super) async fn search_core<T>(
        &self,
        criteria: &[SearchKey],
        headers: bool,
        only: Option<&UidSet>,
        mut extract: impl FnMut(Option<&MessageMeta>, Option<&Message<'_>>) -> T,
    ) -> Result<Vec<Hit<T>>, StoreError> {
        let Some(sel) = self.selected() else {
            return Ok(Vec::new());
        };
        let name = sel.name.clone();
        let metas = self.backend.fetch(&self.ctx, &name, only).await?;
        let content = criteria.iter().any(needs_content);
        let email_ids: std::collections::HashMap<u32, String> = if criteria.iter().any(has_email_id)
        {
            self.backend
                .content_ids(&self.ctx, &name, only)
                .await?
                .into_iter()
                .map(|(u, d)| (u, super::select::email_id(&d)))
                .collect()
        } else {
            std::collections::HashMap::new()
        };
        let key = SearchKey::And(criteria.to_vec());
        let x = Ctx {
            sel,
            saved: &self.saved,
            now_ms: chrono::Utc::now().timestamp_millis(),
        };
        // Metadata-only keys decide before any message is read; then only the matches are
        // read (a chunk at a time), and only their header block parsed.
        let mut candidates = Vec::new();
        for (i, m) in sel.msgs.iter().enumerate() {
            if only.is_some_and(|o| !o.contains(m.uid)) {
                continue;
            }
            let meta = metas
                .binary_search_by_key(&m.uid, |x| x.uid)
                .ok()
                .map(|j| &metas[j]);
            if content || eval(&key, &Candidate::new(sel, &email_ids, i, meta), &x) {
                candidates.push((i, meta));
            }
        }
        let reads = content || headers;
        let mut contents = Contents::new(if reads {
            candidates
                .iter()
                .map(|&(i, meta)| (sel.msgs[i].uid, meta.map_or(0, |m| m.size)))
                .collect()
        } else {
            Vec::new()
        });
        let mut matched = Vec::new();
        for (i, meta) in candidates {
            let mut c = Candidate::new(sel, &email_ids, i, meta);
            let raw = if reads {
                contents
                    .take(&self.backend, &self.ctx, &name, c.uid)
                    .await
                    .ok()
                    .flatten()
            } else {
                None
            };
            if !content {
                let parsed = raw.as_deref().map(header_part).and_then(mime::parse);
                matched.push(Hit {
                    seq: c.seq,
                    uid: c.uid,
                    modseq: c.modseq,
                    extra: extract(meta, parsed.as_ref()),
                });
                continue;
            }
            let parsed = raw.as_deref().and_then(mime::parse);
            c.msg = parsed.as_ref();
            if eval(&key, &c, &x) {
                matched.push(Hit {
                    seq: c.seq,
                    uid: c.uid,
                    modseq: c.modseq,
                    extra: extract(meta, parsed.as_ref()),
                });
            }
        }
        Ok(matched)
    }

    pub(super) async fn search(&mut self, tag: &Tag, mut cmd: SearchCommand) {
        // IMAP4rev2 has no untagged SEARCH: a plain SEARCH answers as RETURN (ALL) would.
        if self.enabled.rev2 && cmd.returns.is_none() {
            cmd.returns = Some(Vec::new());
        }
        let returns = cmd.returns.as_deref().map(Returns::of);
        // RFC 5267 §4.3: an UPDATE under the tag of a live context is refused outright.
        if returns.is_some_and(|r| r.update) && self.selected().is_some_and(|s| s.has_context(tag))
        {
            self.bad(tag, "tag reuse: an update context already has this tag");
            return;
        }
        let Some(hits) = self
            .matching(tag, cmd.charset.as_deref(), &cmd.criteria, false, |_, _| ())
            .await
        else {
            return;
        };
        let ids: Vec<u32> = hits
            .iter()
            .map(|h| if cmd.uid { h.uid } else { h.seq })
            .collect();
        // RFC 4731 §3.2 with RFC 7162 §3.1.5: the MODSEQ reported is the highest of the
        // messages the answer names — only the MIN, MAX and PARTIAL ones when those are all
        // it names.
        let named = returns.and_then(|r| r.named(hits.len()));
        let modseq = reported_modseq(&hits, named.as_deref(), cmd.criteria.iter().any(has_modseq));
        let o = self.wopts();
        match returns {
            None => write_data(&mut self.out, &Data::Search { ids, modseq }, o),
            Some(r) => {
                // RFC 5182 §2.4 (and RFC 9394 for PARTIAL): with only MIN, MAX or PARTIAL, SAVE
                // keeps just the messages the answer names.
                if r.save {
                    self.saved = match &named {
                        Some(ix) => ix
                            .iter()
                            .filter_map(|&i| hits.get(i))
                            .map(|h| h.uid)
                            .collect(),
                        None => hits.iter().map(|h| h.uid).collect(),
                    };
                }
                if !r.silent() {
                    let mut e = r.esearch(tag, cmd.uid, &ids, false);
                    e.modseq = modseq;
                    write_data(&mut self.out, &Data::Esearch(e), o);
                }
                if r.update {
                    let uids = hits.iter().map(|h| h.uid).collect();
                    self.open_context(tag, cmd.uid, &cmd.criteria, Ordered::Mailbox(uids));
                }
            }
        }
        self.updates(cmd.uid).await;
        self.ok(
            tag,
            None,
            if cmd.uid {
                "UID SEARCH completed"
            } else {
                "SEARCH completed"
            },
        );
    }
}
