//! SORT and UID SORT (RFC 5256 §3, with RFC 5957's DISPLAYFROM/DISPLAYTO, RFC 5267 §3's ESORT
//! return options and §4's CONTEXT=SORT: see `context.rs`), THREAD and UID THREAD
//! (ORDEREDSUBJECT, REFERENCES).
//!
//! Both run the search through [`Session::matching`], which hands each matching message's
//! metadata and parsed header block to [`keys`]: everything the sort criteria and the threading
//! algorithms compare is taken from the message once, then the messages are ordered in memory.
//! Strings compare under i;ascii-casemap ([`crate::subject::casemap_key`]), so the keys are
//! stored already mapped. Sorting is stable over messages in sequence order, which is RFC 5256's
//! implicit final criterion ("sequence number"); REVERSE flips only its own criterion.

use super::context::{Ordered, Returns};
use super::search::{has_modseq, reported_modseq};
use super::{Backend, Session};
use crate::mime;
use crate::proto::command::{SortCommand, SortCriterion, SortKey, ThreadAlgorithm, ThreadCommand};
use crate::proto::response::{Data, write_data};
use crate::proto::types::Tag;
use crate::subject::{base_subject, casemap_key};
use crate::thread::{ThreadMsg, message_ids, ordered_subject, references};
use herald_store::MessageMeta;
use mail_parser::Message;
use std::cmp::Ordering;

/// What SORT and THREAD compare, taken from one message.
#[derive(Debug, Default, Clone)]
pub(super) struct Keys {
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

pub(super) fn keys(meta: Option<&MessageMeta>, msg: Option<&Message<'_>>) -> Keys {
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

/// Whether any of `criteria` needs header fields.
pub(super) fn needs_any_headers(criteria: &[SortCriterion]) -> bool {
    criteria.iter().any(needs_headers)
}

/// `k` under `criteria` as bytes that compare (bytewise) as [`compare`] orders messages, so
/// an update context places a new message by binary search (`context.rs`). Numbers are
/// big-endian with the sign bit flipped; strings escape NUL as `00 FF` and end in `00 00`,
/// so no key is a prefix of another; a REVERSE criterion's bytes are complemented.
pub(super) fn sort_key(k: &Keys, criteria: &[SortCriterion]) -> Vec<u8> {
    fn int(out: &mut Vec<u8>, v: i64) {
        out.extend_from_slice(&((v as u64) ^ (1 << 63)).to_be_bytes());
    }
    fn text(out: &mut Vec<u8>, s: &[u8]) {
        for &b in s {
            if b == 0 {
                out.extend_from_slice(&[0, 0xff]);
            } else {
                out.push(b);
            }
        }
        out.extend_from_slice(&[0, 0]);
    }
    let mut out = Vec::new();
    for c in criteria {
        let start = out.len();
        match c.key {
            SortKey::Arrival => int(&mut out, k.arrival),
            SortKey::Date => int(&mut out, k.sent),
            SortKey::Size => out.extend_from_slice(&k.size.to_be_bytes()),
            SortKey::Cc => text(&mut out, &k.cc),
            SortKey::From => text(&mut out, &k.from),
            SortKey::Subject => text(&mut out, &k.subject),
            SortKey::To => text(&mut out, &k.to),
            SortKey::DisplayFrom => text(&mut out, &k.display_from),
            SortKey::DisplayTo => text(&mut out, &k.display_to),
        }
        if c.reverse {
            for b in &mut out[start..] {
                *b = !*b;
            }
        }
    }
    out
}

/// A context entry: the sort key ended by the UID, RFC 5256's final criterion (sequence
/// order is UID order), which also makes every key unique.
pub(super) fn sort_entry(mut key: Vec<u8>, uid: u32) -> (Box<[u8]>, u32) {
    key.extend_from_slice(&uid.to_be_bytes());
    (key.into_boxed_slice(), uid)
}

impl<B: Backend> Session<B> {
    pub(super) async fn sort(&mut self, tag: &Tag, cmd: SortCommand) {
        let returns = cmd.returns.as_deref().map(Returns::of);
        // RFC 5267 §4.3: an UPDATE under the tag of a live context is refused outright.
        if returns.is_some_and(|r| r.update) && self.selected().is_some_and(|s| s.has_context(tag))
        {
            self.bad(tag, "tag reuse: an update context already has this tag");
            return;
        }
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
        // The MODSEQ to report (RFC 7162 §3.1.5, as for SEARCH): the highest of the messages
        // the answer names — only the MIN, MAX and PARTIAL ones when those are all it names.
        let modseq = reported_modseq(
            &hits,
            returns.and_then(|r| r.named(hits.len())).as_deref(),
            cmd.search.iter().any(has_modseq),
        );
        let o = self.wopts();
        match returns {
            None => write_data(&mut self.out, &Data::Sort { ids, modseq }, o),
            Some(r) => {
                // RFC 5267 §3.1: MIN and MAX are the first and last in sort order, ALL and
                // PARTIAL are in sort order; `RETURN ()` means ALL.
                let mut e = r.esearch(tag, cmd.uid, &ids, true);
                e.modseq = modseq;
                write_data(&mut self.out, &Data::Esearch(e), o);
                if r.update {
                    let entries = hits
                        .iter()
                        .map(|h| sort_entry(sort_key(&h.extra, &cmd.criteria), h.uid))
                        .collect();
                    let result = Ordered::Sorted {
                        criteria: cmd.criteria.clone(),
                        entries,
                    };
                    self.open_context(tag, cmd.uid, &cmd.search, result);
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys_strategy() -> impl Strategy<Value = Keys> {
        let text = || {
            proptest::collection::vec(
                prop_oneof![Just(0u8), Just(1), Just(b'a'), Just(0xff)],
                0..4,
            )
        };
        (
            prop_oneof![
                Just(i64::MIN),
                Just(-1i64),
                Just(0),
                Just(1),
                Just(i64::MAX)
            ],
            prop_oneof![Just(0u64), Just(1), Just(u64::MAX)],
            -2i64..3,
            text(),
            text(),
            text(),
        )
            .prop_map(|(arrival, size, sent, subject, from, display_to)| Keys {
                arrival,
                size,
                sent,
                display_from: subject.clone(),
                subject,
                to: display_to.clone(),
                cc: from.clone(),
                from,
                display_to,
                ..Keys::default()
            })
    }

    fn criterion() -> impl Strategy<Value = SortCriterion> {
        (
            any::<bool>(),
            prop_oneof![
                Just(SortKey::Arrival),
                Just(SortKey::Cc),
                Just(SortKey::Date),
                Just(SortKey::From),
                Just(SortKey::Size),
                Just(SortKey::Subject),
                Just(SortKey::To),
                Just(SortKey::DisplayFrom),
                Just(SortKey::DisplayTo),
            ],
        )
            .prop_map(|(reverse, key)| SortCriterion { reverse, key })
    }

    proptest! {
        /// The byte keys of update contexts order messages exactly as SORT does, including
        /// NUL bytes, prefixes, extreme numbers and REVERSE.
        #[test]
        fn sort_keys_order_as_compare_does(
            a in keys_strategy(),
            b in keys_strategy(),
            criteria in proptest::collection::vec(criterion(), 1..4),
        ) {
            let by_compare = criteria
                .iter()
                .map(|&c| compare(&a, &b, c))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal);
            let by_key = sort_key(&a, &criteria).cmp(&sort_key(&b, &criteria));
            prop_assert_eq!(by_compare, by_key);
        }
    }
}
