//! SORT and UID SORT (RFC 5256 §3, with RFC 5957's DISPLAYFROM/DISPLAYTO and RFC 5267 §3's
//! ESORT return options), THREAD and UID THREAD (ORDEREDSUBJECT, REFERENCES).
//!
//! Both run the search through [`Session::matching`], which hands each matching message's
//! metadata and parsed header block to [`keys`]: everything the sort criteria and the threading
//! algorithms compare is taken from the message once, then the messages are ordered in memory.
//! Strings compare under i;ascii-casemap ([`crate::subject::casemap_key`]), so the keys are
//! stored already mapped. Sorting is stable over messages in sequence order, which is RFC 5256's
//! implicit final criterion ("sequence number"); REVERSE flips only its own criterion.

use super::search::{Hit, has_modseq};
use super::{Backend, Session};
use crate::mime;
use crate::proto::command::{
    SearchReturn, SortCommand, SortCriterion, SortKey, ThreadAlgorithm, ThreadCommand,
};
use crate::proto::response::{Data, Esearch, write_data};
use crate::proto::types::Tag;
use crate::subject::{base_subject, casemap_key};
use crate::thread::{ThreadMsg, message_ids, ordered_subject, references};
use herald_store::MessageMeta;
use mail_parser::Message;
use std::cmp::Ordering;

/// What SORT and THREAD compare, taken from one message.
#[derive(Debug, Default)]
struct Keys {
    /// INTERNALDATE, ms.
    arrival: i64,
    size: u64,
    /// Sent date, ms: the Date header, else INTERNALDATE (RFC 5256 §2.2).
    sent: i64,
    /// Base subject, casemapped.
    subject: Vec<u8>,
    /// Base-subject extraction removed a reply or forward marker.
    reply: bool,
    /// addr-mailbox of the first From / To / Cc address, casemapped.
    from: Vec<u8>,
    to: Vec<u8>,
    cc: Vec<u8>,
    /// RFC 5957 display name of the first From / To address, casemapped.
    display_from: Vec<u8>,
    display_to: Vec<u8>,
    message_id: Option<String>,
    references: Vec<String>,
}

fn mailbox_key(msg: &Message<'_>, header: &str) -> Vec<u8> {
    mime::first_address(msg, header)
        .and_then(|a| a.mailbox)
        .map(|m| casemap_key(&m))
        .unwrap_or_default()
}

/// RFC 5957 §3: the display name of the first address, decoded; where there is none (or it is
/// empty), the addr-spec `mailbox@host`.
fn display_key(msg: &Message<'_>, header: &str) -> Vec<u8> {
    let Some(a) = mime::first_address(msg, header) else {
        return Vec::new();
    };
    let name = a
        .name
        .as_deref()
        .map(mime::decode_words)
        .map(|n| n.trim().to_owned())
        .unwrap_or_default();
    if !name.is_empty() {
        return casemap_key(name.as_bytes());
    }
    let mut spec = a.mailbox.unwrap_or_default();
    if let Some(host) = a.host {
        spec.push(b'@');
        spec.extend_from_slice(&host);
    }
    casemap_key(&spec)
}

fn keys(meta: Option<&MessageMeta>, msg: Option<&Message<'_>>) -> Keys {
    let arrival = meta.map_or(0, |m| m.internal_date_ms);
    let mut k = Keys {
        arrival,
        size: meta.map_or(0, |m| m.size),
        sent: arrival,
        ..Keys::default()
    };
    let Some(msg) = msg else {
        return k;
    };
    k.sent = mime::sent_timestamp_ms(msg).unwrap_or(arrival);
    let subject = mime::first_header(msg, "Subject")
        .map(|raw| mime::decode_words(&raw))
        .unwrap_or_default();
    let base = base_subject(&subject);
    k.subject = casemap_key(base.text.as_bytes());
    k.reply = base.reply_or_forward;
    k.from = mailbox_key(msg, "From");
    k.to = mailbox_key(msg, "To");
    k.cc = mailbox_key(msg, "Cc");
    k.display_from = display_key(msg, "From");
    k.display_to = display_key(msg, "To");
    k.message_id =
        mime::first_header(msg, "Message-ID").and_then(|v| message_ids(&v).into_iter().next());
    // RFC 5256 §3 REFERENCES (1): the References field's IDs, or else the first valid ID of
    // In-Reply-To.
    k.references = mime::first_header(msg, "References")
        .map(|v| message_ids(&v))
        .unwrap_or_default();
    if k.references.is_empty() {
        k.references = mime::first_header(msg, "In-Reply-To")
            .and_then(|v| message_ids(&v).into_iter().next())
            .into_iter()
            .collect();
    }
    k
}

fn compare(a: &Keys, b: &Keys, c: SortCriterion) -> Ordering {
    let o = match c.key {
        SortKey::Arrival => a.arrival.cmp(&b.arrival),
        SortKey::Cc => a.cc.cmp(&b.cc),
        SortKey::Date => a.sent.cmp(&b.sent),
        SortKey::From => a.from.cmp(&b.from),
        SortKey::Size => a.size.cmp(&b.size),
        SortKey::Subject => a.subject.cmp(&b.subject),
        SortKey::To => a.to.cmp(&b.to),
        SortKey::DisplayFrom => a.display_from.cmp(&b.display_from),
        SortKey::DisplayTo => a.display_to.cmp(&b.display_to),
    };
    if c.reverse { o.reverse() } else { o }
}

/// Whether a criterion needs the message's header fields (ARRIVAL and SIZE are metadata).
fn needs_headers(c: &SortCriterion) -> bool {
    !matches!(c.key, SortKey::Arrival | SortKey::Size)
}

/// The MODSEQ to report with a result (RFC 7162 §3.1.5, as for SEARCH): the highest of the
/// messages the answer names — only the MIN and/or MAX ones when those are all it names.
fn result_modseq(hits: &[Hit<Keys>], returns: Option<&[SearchReturn]>) -> Option<u64> {
    let only_ends = returns.is_some_and(|r| {
        !r.is_empty()
            && r.iter()
                .all(|x| matches!(x, SearchReturn::Min | SearchReturn::Max))
    });
    if only_ends {
        let r = returns.unwrap_or_default();
        let min = r
            .contains(&SearchReturn::Min)
            .then(|| hits.first().map(|h| h.modseq))
            .flatten();
        let max = r
            .contains(&SearchReturn::Max)
            .then(|| hits.last().map(|h| h.modseq))
            .flatten();
        min.max(max)
    } else {
        hits.iter().map(|h| h.modseq).max()
    }
}

impl<B: Backend> Session<B> {
    pub(super) async fn sort(&mut self, tag: &Tag, cmd: SortCommand) {
        let headers = cmd.criteria.iter().any(needs_headers);
        let Some(mut hits) = self
            .matching(tag, Some(&cmd.charset), &cmd.search, headers, keys)
            .await
        else {
            return;
        };
        hits.sort_by(|a, b| {
            cmd.criteria
                .iter()
                .map(|&c| compare(&a.extra, &b.extra, c))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        });
        let ids: Vec<u32> = hits
            .iter()
            .map(|h| if cmd.uid { h.uid } else { h.seq })
            .collect();
        let modseq = cmd
            .search
            .iter()
            .any(has_modseq)
            .then(|| result_modseq(&hits, cmd.returns.as_deref()))
            .flatten();
        let o = self.wopts();
        match &cmd.returns {
            None => write_data(&mut self.out, &Data::Sort { ids, modseq }, o),
            Some(returns) => {
                let has = |r: SearchReturn| returns.contains(&r);
                // RFC 5267 §3.1: MIN and MAX are the first and last in sort order, ALL is in
                // sort order; `RETURN ()` means ALL.
                let e = Esearch {
                    tag: Some(tag.clone()),
                    uid: cmd.uid,
                    min: has(SearchReturn::Min)
                        .then(|| ids.first().copied())
                        .flatten(),
                    max: has(SearchReturn::Max)
                        .then(|| ids.last().copied())
                        .flatten(),
                    count: has(SearchReturn::Count).then_some(ids.len() as u32),
                    all: None,
                    all_sorted: (returns.is_empty() || has(SearchReturn::All)).then_some(ids),
                    modseq,
                };
                write_data(&mut self.out, &Data::Esearch(e), o);
            }
        }
        self.updates(cmd.uid).await;
        // RFC 5256's examples answer UID SORT and UID THREAD with "SORT completed" and
        // "THREAD completed"; the text is free, so it is theirs.
        self.ok(tag, None, "SORT completed");
    }

    pub(super) async fn thread(&mut self, tag: &Tag, cmd: ThreadCommand) {
        let Some(hits) = self
            .matching(tag, Some(&cmd.charset), &cmd.search, true, keys)
            .await
        else {
            return;
        };
        let msgs: Vec<ThreadMsg> = hits
            .into_iter()
            .map(|h| ThreadMsg {
                id: if cmd.uid { h.uid } else { h.seq },
                seq: h.seq,
                sent: h.extra.sent,
                subject: h.extra.subject,
                reply: h.extra.reply,
                message_id: h.extra.message_id,
                references: h.extra.references,
            })
            .collect();
        let threads = match cmd.algorithm {
            ThreadAlgorithm::OrderedSubject => ordered_subject(&msgs),
            ThreadAlgorithm::References => references(&msgs),
        };
        let o = self.wopts();
        write_data(&mut self.out, &Data::Thread(threads), o);
        self.updates(cmd.uid).await;
        self.ok(tag, None, "THREAD completed");
    }
}
