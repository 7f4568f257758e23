//! CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 §4): the return options CONTEXT, UPDATE and
//! PARTIAL, update contexts and CANCELUPDATE.
//!
//! A searching command with `RETURN (UPDATE …)` leaves an [`UpdateContext`] in the selected
//! mailbox: its search program and its result, as UIDs in the requested order (mailbox order
//! for SEARCH; for SORT, each UID with an order-preserving byte key of its sort criteria, so
//! placing a new message is a binary search and needs no message read). Contexts are kept up
//! to date from what the snapshot learns, whoever made the change (this session, another one,
//! a delivery), at the points where the session reports changes anyway:
//!
//! * an expunge: `REMOVEFROM`, written before the EXPUNGE or VANISHED that announces it, so
//!   message numbers are still valid (§4.3.4);
//! * new messages and changed flags: the UIDs go into [`Selected::pending`]; once the EXISTS
//!   and FETCH responses are out, each context re-evaluates its program on those messages only
//!   and writes `REMOVEFROM` for the ones that left and `ADDTO` for the ones that entered
//!   (§4.3.3; a flag change never moves a message within a SORT result, since no sort key
//!   depends on flags).
//!
//! SEARCH contexts use position 0 (allowed for SEARCH, §4.3.3) with the numbers in mailbox
//! order; SORT contexts give the real positions, one `pos set` pair per run of adjacent
//! positions, in the order the client applies them.
//!
//! Message sequence numbers and `$` in the program are taken as the UIDs they named when the
//! command ran (§4.3: "evaluated at the time the command is received"); UID sets keep `*`
//! live. Keys that depend on the clock alone (OLDER, YOUNGER) are re-evaluated only when the
//! message changes: time passing is no change to report.
//!
//! Limits: at most [`MAX_CONTEXTS`] contexts per selected mailbox; beyond that the command is
//! answered without one and `* NO [NOUPDATE "tag"]` says so (§4.3.1). A context holds 4 bytes
//! per result for SEARCH, and its sort key besides for SORT.

use super::search::Hit;
use super::select::Selected;
use super::{Backend, Session};
use crate::proto::command::{PartialRange, SearchKey, SearchReturn, SortCriterion};
use crate::proto::response::{Code, ContextUpdate, Data, Esearch, WriteOptions, write_data};
use crate::proto::types::{SeqNum, SeqRange, SequenceSet, Tag};
use herald_events::UidSet;
use std::collections::HashSet;
use std::num::NonZeroU32;

/// A match of a context's re-evaluation, with its sort key when the context is a SORT's.
type SortHit = Hit<Option<Vec<u8>>>;

/// Most update contexts one selected mailbox keeps (RFC 5267 §4.3.1 requires at least one).
pub const MAX_CONTEXTS: usize = 16;

/// The return options of one searching command, interpreted.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Returns {
    pub min: bool,
    pub max: bool,
    pub count: bool,
    pub all: bool,
    pub save: bool,
    pub update: bool,
    pub partial: Option<PartialRange>,
}

impl Returns {
    pub fn of(options: &[SearchReturn]) -> Returns {
        let mut r = Returns::default();
        for o in options {
            match o {
                SearchReturn::Min => r.min = true,
                SearchReturn::Max => r.max = true,
                SearchReturn::Count => r.count = true,
                SearchReturn::All => r.all = true,
                SearchReturn::Save => r.save = true,
                SearchReturn::Update => r.update = true,
                SearchReturn::Partial(p) => r.partial = Some(*p),
                SearchReturn::Context => {}
            }
        }
        r
    }

    fn has_data(&self) -> bool {
        self.min || self.max || self.count || self.all || self.partial.is_some()
    }

    /// ALL, asked for or implied: `RETURN ()` means ALL (RFC 4731 §3.1), and so does a list
    /// of options that only modify (CONTEXT, UPDATE), which is the same request.
    pub fn wants_all(&self) -> bool {
        self.all || (!self.has_data() && !self.save)
    }

    /// No ESEARCH response at all: SAVE with no data option (RFC 5182 §2.4).
    pub fn silent(&self) -> bool {
        self.save && !self.has_data()
    }

    /// Positions (from 0) of the results the answer names when it names only some of them
    /// (MIN, MAX, PARTIAL, without ALL or COUNT): RFC 7162 §3.1.5's MODSEQ and RFC 5182's
    /// SAVE then cover only those. `None` when the answer concerns every match.
    pub fn named(&self, len: usize) -> Option<Vec<usize>> {
        if self.all || self.count || !(self.min || self.max || self.partial.is_some()) {
            return None;
        }
        let mut v = Vec::new();
        if self.min && len > 0 {
            v.push(0);
        }
        if self.max && len > 0 {
            v.push(len - 1);
        }
        if let Some(p) = self.partial {
            v.extend(p.indexes(len));
        }
        v.sort_unstable();
        v.dedup();
        Some(v)
    }

    /// The ESEARCH answer for `ids` in the requested order (`sorted`: SORT's, else mailbox
    /// order), without MODSEQ.
    pub fn esearch(&self, tag: &Tag, uid: bool, ids: &[u32], sorted: bool) -> Esearch {
        let all = self.wants_all().then(|| ids.to_vec());
        Esearch {
            tag: Some(tag.clone()),
            uid,
            min: self.min.then(|| ids.first().copied()).flatten(),
            max: self.max.then(|| ids.last().copied()).flatten(),
            count: self.count.then_some(ids.len() as u32),
            all: all
                .as_ref()
                .filter(|_| !sorted)
                .map(|a| UidSet::from_uids(a.iter().copied())),
            all_sorted: all.filter(|_| sorted),
            partial: self.partial.map(|p| {
                (
                    p,
                    ids.get(p.indexes(ids.len())).unwrap_or_default().to_vec(),
                )
            }),
            ..Esearch::default()
        }
    }
}

/// How an update context's result is ordered.
#[derive(Debug)]
pub(crate) enum Ordered {
    /// SEARCH: UIDs ascending.
    Mailbox(Vec<u32>),
    /// SORT: the criteria, and (sort key, UID) in sort order; keys are unique (the UID ends
    /// each one, as RFC 5256's final criterion, the sequence number, orders equal keys).
    Sorted {
        criteria: Vec<SortCriterion>,
        entries: Vec<(Box<[u8]>, u32)>,
    },
}

/// An update context (RFC 5267 §4.3).
#[derive(Debug)]
pub(crate) struct UpdateContext {
    /// The searching command's tag: the correlator of its updates.
    pub tag: Tag,
    /// UID SEARCH / UID SORT: updates name UIDs, else message numbers.
    pub uid: bool,
    /// The search program, with message numbers and `$` frozen to UIDs.
    pub criteria: Vec<SearchKey>,
    /// The current result.
    pub result: Ordered,
}

/// A sequence set naming exactly these UIDs (empty: names nothing).
fn uid_set(uids: impl IntoIterator<Item = u32>) -> SequenceSet {
    let set = UidSet::from_uids(uids);
    SequenceSet::Ranges(
        set.ranges()
            .iter()
            .filter_map(|&(a, b)| {
                Some(SeqRange {
                    start: SeqNum::Value(NonZeroU32::new(a)?),
                    end: SeqNum::Value(NonZeroU32::new(b)?),
                })
            })
            .collect(),
    )
}

/// The search program with every message-number set and `$` replaced by the UIDs they name
/// now, so later evaluations do not drift as numbers shift (RFC 5267 §4.3).
pub(super) fn freeze(keys: &[SearchKey], sel: &Selected, saved: &[u32]) -> Vec<SearchKey> {
    keys.iter().map(|k| freeze_one(k, sel, saved)).collect()
}

fn freeze_one(k: &SearchKey, sel: &Selected, saved: &[u32]) -> SearchKey {
    match k {
        SearchKey::SequenceSet(SequenceSet::Saved) | SearchKey::Uid(SequenceSet::Saved) => {
            SearchKey::Uid(uid_set(saved.iter().copied()))
        }
        SearchKey::SequenceSet(set) => {
            let ranges = set.resolve(sel.msgs.len() as u32).unwrap_or_default();
            let uids = ranges.iter().flat_map(|&(lo, hi)| {
                let lo = (lo.max(1) as usize - 1).min(sel.msgs.len());
                let hi = (hi as usize).min(sel.msgs.len());
                sel.msgs[lo..hi.max(lo)].iter().map(|m| m.uid)
            });
            SearchKey::Uid(uid_set(uids))
        }
        SearchKey::Not(k) => SearchKey::Not(Box::new(freeze_one(k, sel, saved))),
        SearchKey::Or(a, b) => SearchKey::Or(
            Box::new(freeze_one(a, sel, saved)),
            Box::new(freeze_one(b, sel, saved)),
        ),
        SearchKey::And(v) => SearchKey::And(freeze(v, sel, saved)),
        k => k.clone(),
    }
}

/// Removes the entries `gone` picks from `list`, returning the runs the client must remove,
/// in order: (position from 1 in the list as it stands when that run is applied, UIDs).
fn remove_runs<T>(
    list: &mut Vec<T>,
    gone: impl Fn(&T) -> bool,
    uid: impl Fn(&T) -> u32,
) -> Vec<(u32, Vec<u32>)> {
    let mut runs: Vec<(u32, Vec<u32>)> = Vec::new();
    let mut removed = 0usize;
    let mut in_run = false;
    let mut kept = Vec::with_capacity(list.len());
    for (i, e) in std::mem::take(list).into_iter().enumerate() {
        if gone(&e) {
            if in_run && let Some(run) = runs.last_mut() {
                run.1.push(uid(&e));
            } else {
                runs.push(((i - removed + 1) as u32, vec![uid(&e)]));
            }
            in_run = true;
            removed += 1;
        } else {
            in_run = false;
            kept.push(e);
        }
    }
    *list = kept;
    runs
}

/// Merges `add` (sorted, none already present) into the sorted `list`, returning the runs the
/// client must insert, in order: (final position from 1, UIDs). Applied in order each run's
/// final position is already right, since the runs after it all lie above it.
fn insert_runs(
    list: &mut Vec<(Box<[u8]>, u32)>,
    add: Vec<(Box<[u8]>, u32)>,
) -> Vec<(u32, Vec<u32>)> {
    let mut runs: Vec<(u32, Vec<u32>)> = Vec::new();
    let mut merged = Vec::with_capacity(list.len() + add.len());
    let mut old = std::mem::take(list).into_iter().peekable();
    let mut new = add.into_iter().peekable();
    let mut last_added: Option<usize> = None;
    loop {
        let take_new = match (old.peek(), new.peek()) {
            (Some(o), Some(n)) => n.0 < o.0,
            (None, Some(_)) => true,
            (_, None) => false,
        };
        if take_new {
            let Some(e) = new.next() else { break };
            let at = merged.len();
            match (last_added, runs.last_mut()) {
                (Some(prev), Some(run)) if prev + 1 == at => run.1.push(e.1),
                _ => runs.push(((at + 1) as u32, vec![e.1])),
            }
            last_added = Some(at);
            merged.push(e);
        } else {
            let Some(e) = old.next() else { break };
            merged.push(e);
        }
    }
    *list = merged;
    runs
}

impl Selected {
    /// The update contexts' REMOVEFROM for UIDs about to be expunged from the snapshot
    /// (written before the EXPUNGE or VANISHED, while message numbers hold, §4.3.4); the UIDs
    /// need no more evaluation.
    pub(super) fn contexts_expunged(&mut self, gone: &[u32], out: &mut Vec<u8>, o: WriteOptions) {
        if self.contexts.is_empty() || gone.is_empty() {
            return;
        }
        let gone_set: HashSet<u32> = gone.iter().copied().collect();
        self.pending.retain(|u| !gone_set.contains(u));
        let mut writes = Vec::new();
        for c in &mut self.contexts {
            let runs = match &mut c.result {
                Ordered::Mailbox(uids) => {
                    let removed: Vec<u32> = uids
                        .iter()
                        .copied()
                        .filter(|u| gone_set.contains(u))
                        .collect();
                    uids.retain(|u| !gone_set.contains(u));
                    if removed.is_empty() {
                        Vec::new()
                    } else {
                        vec![(0, removed)]
                    }
                }
                Ordered::Sorted { entries, .. } => {
                    remove_runs(entries, |e| gone_set.contains(&e.1), |e| e.1)
                }
            };
            if !runs.is_empty() {
                let updates = runs
                    .into_iter()
                    .map(|(p, ids)| ContextUpdate::RemoveFrom(p, ids))
                    .collect();
                writes.push((c.tag.clone(), c.uid, updates));
            }
        }
        for (tag, uid, updates) in writes {
            self.write_context_updates(&tag, uid, updates, out, o);
        }
    }

    /// Writes one context's updates, naming messages by UID or by their current number.
    fn write_context_updates(
        &self,
        tag: &Tag,
        uid: bool,
        updates: Vec<ContextUpdate>,
        out: &mut Vec<u8>,
        o: WriteOptions,
    ) {
        let number = |u: u32| {
            if uid {
                Some(u)
            } else {
                self.index_of(u).map(|i| i as u32 + 1)
            }
        };
        let updates: Vec<ContextUpdate> = updates
            .into_iter()
            .filter_map(|u| {
                let (add, pos, ids) = match u {
                    ContextUpdate::AddTo(p, ids) => (true, p, ids),
                    ContextUpdate::RemoveFrom(p, ids) => (false, p, ids),
                };
                let ids: Vec<u32> = ids.into_iter().filter_map(number).collect();
                match (ids.is_empty(), add) {
                    (true, _) => None,
                    (false, true) => Some(ContextUpdate::AddTo(pos, ids)),
                    (false, false) => Some(ContextUpdate::RemoveFrom(pos, ids)),
                }
            })
            .collect();
        if updates.is_empty() {
            return;
        }
        let e = Esearch {
            tag: Some(tag.clone()),
            uid,
            updates,
            ..Esearch::default()
        };
        write_data(out, &Data::Esearch(e), o);
    }

    /// Whether an update context answers to `tag`.
    pub(super) fn has_context(&self, tag: &Tag) -> bool {
        self.contexts.iter().any(|c| c.tag == *tag)
    }
}

impl<B: Backend> Session<B> {
    /// Keeps the result of a searching command with `RETURN (UPDATE)` as an update context,
    /// or says `* NO [NOUPDATE "tag"]` when the session has as many as it may keep.
    pub(super) fn open_context(
        &mut self,
        tag: &Tag,
        uid: bool,
        criteria: &[SearchKey],
        result: Ordered,
    ) {
        let full = self
            .selected()
            .is_none_or(|s| s.contexts.len() >= MAX_CONTEXTS);
        if full {
            let o = self.wopts();
            crate::proto::response::write_status(
                &mut self.out,
                None,
                crate::proto::response::Status::No,
                Some(&Code::NoUpdate(tag.clone())),
                "too many update contexts",
                o,
            );
            return;
        }
        let saved = std::mem::take(&mut self.saved);
        if let Some(sel) = self.selected_mut() {
            let criteria = freeze(criteria, sel, &saved);
            tracing::debug!(tag = %tag, contexts = sel.contexts.len() + 1, "update context");
            sel.contexts.push(UpdateContext {
                tag: tag.clone(),
                uid,
                criteria,
                result,
            });
        }
        self.saved = saved;
    }

    /// CANCELUPDATE (RFC 5267 §4.3.5): no more updates for these searching commands. A tag
    /// with no context is no error: the result the client wants, no updates, holds.
    pub(super) fn cancel_update(&mut self, tag: &Tag, tags: &[String]) {
        if let Some(sel) = self.selected_mut() {
            sel.contexts
                .retain(|c| !tags.iter().any(|t| t == c.tag.as_str()));
            if sel.contexts.is_empty() {
                sel.pending.clear();
            }
        }
        self.ok(tag, None, "no further updates");
    }

    /// Re-evaluates every update context on the messages that arrived or changed since the
    /// last time ([`Selected::pending`]) and writes their ADDTO and REMOVEFROM. Runs after the
    /// EXISTS and FETCH responses of the same changes, so every number it names is known.
    pub(super) async fn report_contexts(&mut self) {
        let Some(sel) = self.selected_mut() else {
            return;
        };
        if sel.contexts.is_empty() {
            sel.pending.clear();
            return;
        }
        let pending: Vec<u32> = std::mem::take(&mut sel.pending)
            .into_iter()
            .filter(|u| sel.index_of(*u).is_some())
            .collect();
        if pending.is_empty() {
            return;
        }
        let only = UidSet::from_uids(pending.iter().copied());
        let count = sel.contexts.len();
        // Evaluate first (reads the store), then change the contexts.
        // Per context: the matches among the pending messages (with their sort keys for a
        // SORT context), or None when they could not be read.
        let mut found: Vec<Option<Vec<SortHit>>> = Vec::with_capacity(count);
        for i in 0..count {
            let Some(c) = self.selected().and_then(|s| s.contexts.get(i)) else {
                break;
            };
            let criteria = c.criteria.clone();
            let order = match &c.result {
                Ordered::Mailbox(_) => None,
                Ordered::Sorted { criteria, .. } => Some(criteria.clone()),
            };
            let headers = order.as_deref().is_some_and(super::sort::needs_any_headers);
            let hits = self
                .search_core(&criteria, headers, Some(&only), |meta, msg| {
                    order
                        .as_deref()
                        .map(|o| super::sort::sort_key(&super::sort::keys(meta, msg), o))
                })
                .await;
            match hits {
                Ok(h) => found.push(Some(h)),
                Err(e) => {
                    // The mailbox went, or the store failed: this round reports nothing for
                    // the context rather than something wrong.
                    tracing::debug!(error = %e, "update context not re-evaluated");
                    found.push(None);
                }
            }
        }
        let o = self.wopts();
        let Some(sel) = self.selected_mut() else {
            return;
        };
        let pending_set: HashSet<u32> = pending.iter().copied().collect();
        let mut writes = Vec::new();
        for (c, hits) in sel.contexts.iter_mut().zip(found) {
            let Some(hits) = hits else { continue };
            let mut updates = Vec::new();
            match &mut c.result {
                Ordered::Mailbox(uids) => {
                    let now: HashSet<u32> = hits.iter().map(|h| h.uid).collect();
                    let removed: Vec<u32> = uids
                        .iter()
                        .copied()
                        .filter(|u| pending_set.contains(u) && !now.contains(u))
                        .collect();
                    uids.retain(|u| !pending_set.contains(u) || now.contains(u));
                    let had: HashSet<u32> = uids
                        .iter()
                        .copied()
                        .filter(|u| pending_set.contains(u))
                        .collect();
                    let added: Vec<u32> = pending
                        .iter()
                        .copied()
                        .filter(|u| now.contains(u) && !had.contains(u))
                        .collect();
                    if !removed.is_empty() {
                        updates.push(ContextUpdate::RemoveFrom(0, removed));
                    }
                    if !added.is_empty() {
                        uids.extend(&added);
                        uids.sort_unstable();
                        updates.push(ContextUpdate::AddTo(0, added));
                    }
                }
                Ordered::Sorted { entries, .. } => {
                    let now: HashSet<u32> = hits.iter().map(|h| h.uid).collect();
                    let runs = remove_runs(
                        entries,
                        |e| pending_set.contains(&e.1) && !now.contains(&e.1),
                        |e| e.1,
                    );
                    updates.extend(
                        runs.into_iter()
                            .map(|(p, ids)| ContextUpdate::RemoveFrom(p, ids)),
                    );
                    let had: HashSet<u32> = entries
                        .iter()
                        .map(|e| e.1)
                        .filter(|u| pending_set.contains(u))
                        .collect();
                    let mut add: Vec<(Box<[u8]>, u32)> = hits
                        .into_iter()
                        .filter(|h| !had.contains(&h.uid))
                        .filter_map(|h| h.extra.map(|k| super::sort::sort_entry(k, h.uid)))
                        .collect();
                    add.sort_unstable();
                    let runs = insert_runs(entries, add);
                    updates.extend(
                        runs.into_iter()
                            .map(|(p, ids)| ContextUpdate::AddTo(p, ids)),
                    );
                }
            }
            if !updates.is_empty() {
                writes.push((c.tag.clone(), c.uid, updates));
            }
        }
        let mut out = Vec::new();
        for (tag, uid, updates) in writes {
            sel.write_context_updates(&tag, uid, updates, &mut out, o);
        }
        self.out.extend_from_slice(&out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str, uid: u32) -> (Box<[u8]>, u32) {
        let mut v = k.as_bytes().to_vec();
        v.extend_from_slice(&uid.to_be_bytes());
        (v.into_boxed_slice(), uid)
    }

    #[test]
    fn removal_runs_name_positions_as_the_client_applies_them() {
        let mut list: Vec<u32> = vec![10, 11, 12, 13, 14, 15, 16];
        let runs = remove_runs(&mut list, |u| [11, 12, 15].contains(u), |u| *u);
        // 11 and 12 from position 2; then 15, which was at 6 and is at 4 once two are gone.
        assert_eq!(runs, [(2, vec![11, 12]), (4, vec![15])]);
        assert_eq!(list, [10, 13, 14, 16]);
        let runs = remove_runs(&mut list, |_| true, |u| *u);
        assert_eq!(runs, [(1, vec![10, 13, 14, 16])]);
        assert!(remove_runs(&mut list, |_| true, |u| *u).is_empty());
    }

    #[test]
    fn insertion_runs_name_final_positions() {
        // RFC 5267 §4.3.3: a result of 2734:2735 gains 2731:2733 as one run at position 1.
        let mut list = vec![key("d", 2734), key("e", 2735)];
        let runs = insert_runs(
            &mut list,
            vec![key("a", 2731), key("b", 2732), key("c", 2733)],
        );
        assert_eq!(runs, [(1, vec![2731, 2732, 2733])]);
        let mut list = vec![key("b", 2), key("d", 4)];
        let runs = insert_runs(&mut list, vec![key("a", 1), key("c", 3), key("e", 5)]);
        assert_eq!(runs, [(1, vec![1]), (3, vec![3]), (5, vec![5])]);
        let uids: Vec<u32> = list.iter().map(|e| e.1).collect();
        assert_eq!(uids, [1, 2, 3, 4, 5]);
        assert!(insert_runs(&mut list, Vec::new()).is_empty());
    }

    #[test]
    fn named_results_and_implied_all() {
        let nz = |n| NonZeroU32::new(n).unwrap();
        let r = Returns::of(&[SearchReturn::Update]);
        assert!(r.wants_all() && !r.silent() && r.named(5).is_none());
        let r = Returns::of(&[SearchReturn::Save, SearchReturn::Update]);
        assert!(r.silent());
        let r = Returns::of(&[
            SearchReturn::Min,
            SearchReturn::Partial(PartialRange {
                first: nz(3),
                last: nz(4),
                from_end: false,
            }),
        ]);
        assert!(!r.wants_all());
        assert_eq!(r.named(10), Some(vec![0, 2, 3]));
        assert_eq!(r.named(0), Some(vec![]));
        let r = Returns::of(&[SearchReturn::Count, SearchReturn::Min]);
        assert_eq!(r.named(10), None);
    }
}
