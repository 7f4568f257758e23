//! SELECT, EXAMINE, CLOSE, UNSELECT, and the selected mailbox's snapshot.
//!
//! The snapshot is what the client has been told: the UIDs in sequence-number order with their
//! flags and MODSEQ. Sequence numbers exist only here. When the store's mailbox watch ticks (any
//! session's change, or a delivery), [`Session::updates`] reads the mailbox's metadata once and
//! diffs it against the snapshot: vanished UIDs become `* n EXPUNGE` (highest sequence number
//! first, so no later number shifts), new UIDs one `* n EXISTS`, and changed flags
//! `* n FETCH (UID FLAGS [MODSEQ])`. The watch is marked seen before the read, so a change
//! racing the read is reported next time rather than lost. Reading the whole mailbox's metadata
//! per change is simple and fine for mailboxes of thousands of messages; a changes-since-MODSEQ
//! query would make it incremental later.

use super::{Backend, Session, State};
use crate::proto::command::{SelectParams, StatusItem};
use crate::proto::response::{
    Code, Data, FetchItem, Status, WriteOptions, write_data, write_status,
};
use crate::proto::types::{Flag, Mailbox, SequenceSet, Tag};
use herald_events::UidSet;
use herald_store::urlauth::INTERNAL;
use herald_store::{MessageMeta, Rights, StoreError, flags as sflags};
use tokio::sync::watch;

/// One message as the client knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Msg {
    pub uid: u32,
    pub flags: Vec<String>,
    pub modseq: u64,
    /// `\Recent` for this session (IMAP4rev1, RFC 3501 §2.3.2): it was the first told of it.
    pub recent: bool,
}

impl From<&MessageMeta> for Msg {
    fn from(m: &MessageMeta) -> Msg {
        Msg {
            uid: m.uid,
            flags: m.flags.clone(),
            modseq: m.modseq,
            recent: false,
        }
    }
}

/// The selected mailbox.
#[derive(Debug)]
pub(crate) struct Selected {
    pub name: String,
    /// The UIDVALIDITY the client was given at SELECT.
    pub uidvalidity: u32,
    pub read_only: bool,
    /// Messages in sequence order (ascending UID).
    pub msgs: Vec<Msg>,
    pub watch: watch::Receiver<u64>,
    /// The watch fired while the driver waited on it ([`Session::changed`] consumes the
    /// notification), and the change has not been reported yet.
    pub dirty: bool,
    /// The keywords the client was told of in FLAGS, sorted. The list only grows while the
    /// mailbox is selected: a keyword no message carries any more stays valid to set.
    pub keywords: Vec<String>,
    /// The highest MODSEQ the client has been told of or shown (for the HIGHESTMODSEQ sent
    /// when CONDSTORE is enabled mid-selection; never ahead of what was reported).
    pub highest_modseq: u64,
    /// The mailbox's HIGHESTMODSEQ as of the last look at the store: the next update asks
    /// only for what changed after it.
    pub synced_modseq: u64,
    /// RFC 5267 update contexts (`context.rs`), at most [`super::context::MAX_CONTEXTS`].
    pub contexts: Vec<super::context::UpdateContext>,
    /// Messages that arrived or changed flags since the contexts were last evaluated
    /// (kept only while there are contexts).
    pub pending: std::collections::BTreeSet<u32>,
}

impl Selected {
    /// Adds the keywords among `flags` that the client was not told of; true if any was new.
    pub fn learn_keywords<'a>(&mut self, flags: impl IntoIterator<Item = &'a String>) -> bool {
        learn_keywords(&mut self.keywords, flags)
    }

    /// `* FLAGS (…)` and `* OK [PERMANENTFLAGS (…)]`: the system flags and this mailbox's
    /// keywords (RFC 3501 §7.2.6); nothing is permanent in a read-only mailbox.
    pub fn write_flags(&self, out: &mut Vec<u8>) {
        let o = WriteOptions::default();
        let mut flags = system_flags();
        flags.extend(self.keywords.iter().map(|k| Flag::Keyword(k.clone())));
        let permanent = if self.read_only {
            Vec::new()
        } else {
            flags.clone()
        };
        write_data(out, &Data::Flags(flags), o);
        write_status(
            out,
            None,
            Status::Ok,
            Some(&Code::PermanentFlags {
                flags: permanent,
                allow_new: !self.read_only,
            }),
            "flags permitted",
            o,
        );
    }

    /// Index of `uid` in the snapshot.
    pub fn index_of(&self, uid: u32) -> Option<usize> {
        self.msgs.binary_search_by_key(&uid, |m| m.uid).ok()
    }

    /// Resolves a sequence set (message numbers, or UIDs when `uid`) to snapshot indexes,
    /// ascending and without duplicates. `Err` for a message number that does not exist
    /// (RFC 9051 §6.4.8 makes that an error; a UID that does not exist is simply skipped).
    pub fn resolve(
        &self,
        set: &SequenceSet,
        uid: bool,
        saved: &[u32],
    ) -> Result<Vec<usize>, &'static str> {
        let mut out = Vec::new();
        let ranges = match set {
            SequenceSet::Saved => {
                out.extend(saved.iter().filter_map(|u| self.index_of(*u)));
                out.sort_unstable();
                out.dedup();
                return Ok(out);
            }
            SequenceSet::Ranges(_) => {
                let largest = if uid {
                    self.msgs.last().map_or(0, |m| m.uid)
                } else {
                    self.msgs.len() as u32
                };
                set.resolve(largest).unwrap_or_default()
            }
        };
        for (lo, hi) in ranges {
            if uid {
                let start = self.msgs.partition_point(|m| m.uid < lo);
                let end = self.msgs.partition_point(|m| m.uid <= hi);
                out.extend(start..end);
            } else {
                if lo == 0 || hi as usize > self.msgs.len() {
                    return Err("invalid message sequence number");
                }
                out.extend(lo as usize - 1..hi as usize);
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

/// A message's FLAGS as the client sees them: the stored ones, then `\Recent` if it is
/// recent to this session.
pub(crate) fn msg_flags(m: &Msg) -> Vec<Flag> {
    let mut v: Vec<Flag> = m.flags.iter().map(|f| Flag::from_wire(f)).collect();
    if m.recent {
        v.push(Flag::Recent);
    }
    v
}

/// Adds the keywords among `flags` missing from the sorted `known`; true if any was new.
fn learn_keywords<'a>(
    known: &mut Vec<String>,
    flags: impl IntoIterator<Item = &'a String>,
) -> bool {
    let mut new = false;
    for f in flags {
        if f.starts_with('\\') {
            continue;
        }
        if let Err(at) = known.binary_search(f) {
            known.insert(at, f.clone());
            new = true;
        }
    }
    new
}

/// The UIDs within `ranges` that are not in `present` (ascending), as a set: what
/// `VANISHED (EARLIER)` reports. Works on ranges, so `1:4294967295` costs what the mailbox
/// holds, not four billion steps.
pub(crate) fn missing_uids(ranges: &[(u32, u32)], present: &[u32]) -> UidSet {
    let mut merged: Vec<(u32, u32)> = ranges.iter().map(|&(a, b)| (a.min(b), a.max(b))).collect();
    merged.sort_unstable();
    let mut out: Vec<(u32, u32)> = Vec::new();
    let mut next_free = 0u64; // first UID not yet covered by an earlier range
    for (lo, hi) in merged {
        let lo = u64::from(lo).max(next_free);
        if lo > u64::from(hi) {
            continue;
        }
        next_free = u64::from(hi) + 1;
        let mut cur = lo;
        let start = present.partition_point(|&u| u64::from(u) < lo);
        for &u in present[start..].iter().take_while(|&&u| u <= hi) {
            let u = u64::from(u);
            if u > cur {
                out.push((cur as u32, (u - 1) as u32));
            }
            cur = u + 1;
        }
        if cur <= u64::from(hi) {
            out.push((cur as u32, hi));
        }
    }
    UidSet::from_ranges(out)
}

/// The number behind a mailbox's RFC 8474 MAILBOXID: the store's mailbox id (never reused,
/// kept by RENAME) with its UIDVALIDITY (so a `\Noselect` placeholder made a mailbox again
/// gets a new one).
pub(crate) fn mailbox_id(info: &herald_store::MailboxInfo) -> u64 {
    ((info.id as u64) << 32) | u64::from(info.uidvalidity)
}

/// The RFC 8474 EMAILID of a message: from the digest of its bytes, so it is the same in
/// every mailbox COPY or MOVE puts it in.
pub(crate) fn email_id(digest: &[u8; 32]) -> String {
    let mut s = String::with_capacity(25);
    s.push('M');
    for b in &digest[..12] {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The RFC 8474 THREADID of a message's thread (the store's never-reused thread number).
pub(crate) fn thread_id(id: u64) -> String {
    format!("T{id:016x}")
}

/// Whether `uid` lies in one of `ranges` (as [`SequenceSet::resolve`] gives them: either
/// bound may be the larger).
pub(crate) fn in_ranges(uid: u32, ranges: &[(u32, u32)]) -> bool {
    ranges
        .iter()
        .any(|&(a, b)| a.min(b) <= uid && uid <= a.max(b))
}

/// What `VANISHED (EARLIER)` reports for UIDs in `asked` against a MODSEQ (RFC 7162 §3.2.5.2,
/// §3.2.6): the UIDs the store's tombstones say were expunged after it when they reach back
/// that far, else every UID in `asked` that is not in the mailbox (which may repeat expunges
/// the client knew of, as the RFC allows). Never a UID still in the snapshot: the session
/// reports that one as an ordinary expunge when it learns of it, and VANISHED (EARLIER)
/// must not shift sequence numbers. Only UIDs above `floor` (from the client's sequence
/// match data) and at most `largest` (no UID above it was ever given out) are named.
pub(crate) fn vanished_earlier(
    asked: &[(u32, u32)],
    present: &[u32],
    tombstones: &herald_store::Vanished,
    floor: u32,
    largest: u32,
) -> UidSet {
    if tombstones.complete {
        UidSet::from_uids(
            tombstones.uids.iter().copied().filter(|&u| {
                u > floor && in_ranges(u, asked) && present.binary_search(&u).is_err()
            }),
        )
    } else {
        let trimmed: Vec<(u32, u32)> = asked
            .iter()
            .map(|&(a, b)| (a.min(b).max(floor.saturating_add(1)), a.max(b).min(largest)))
            .filter(|&(a, b)| a <= b && floor < u32::MAX)
            .collect();
        missing_uids(&trimmed, present)
    }
}

/// RFC 7162 §3.2.5.2's message sequence match data: walking the client's (sequence number,
/// UID) pairs in order, the UID of the last pair that still matches the mailbox before the
/// first that does not. The client knows of every expunge up to that UID, so VANISHED
/// (EARLIER) need not name any. 0 when no pair matches or the data is unusable (sets of
/// different lengths).
pub(crate) fn seq_match_floor(seqs: &[(u32, u32)], uids: &[(u32, u32)], msgs: &[Msg]) -> u32 {
    let count = |ranges: &[(u32, u32)]| {
        ranges
            .iter()
            .map(|&(a, b)| u64::from(a.max(b) - a.min(b)) + 1)
            .sum::<u64>()
    };
    if count(seqs) != count(uids) {
        return 0;
    }
    let seq_iter = seqs.iter().flat_map(|&(a, b)| a.min(b)..=a.max(b));
    let uid_iter = uids.iter().flat_map(|&(a, b)| a.min(b)..=a.max(b));
    let mut floor = 0;
    // Stops at the first pair that does not match, which at the latest is the first past the
    // mailbox's last message: the walk is bounded by the mailbox, not by the client's ranges.
    for (seq, uid) in seq_iter.zip(uid_iter) {
        match msgs.get((seq as usize).wrapping_sub(1)) {
            Some(m) if m.uid == uid => floor = uid,
            _ => break,
        }
    }
    floor
}

/// The flags every mailbox offers.
fn system_flags() -> Vec<Flag> {
    vec![
        Flag::Answered,
        Flag::Flagged,
        Flag::Deleted,
        Flag::Seen,
        Flag::Draft,
    ]
}

/// The known messages a change read says are gone, by the form the store gave.
enum Gone<'a> {
    /// UIDs expunged since the session's MODSEQ (from the tombstones), ascending.
    Listed(&'a [u32]),
    /// Every UID still in the mailbox, ascending: the others are gone.
    Absent(&'a [u32]),
}

impl Gone<'_> {
    fn contains(&self, uid: u32) -> bool {
        match self {
            Gone::Listed(l) => l.binary_search(&uid).is_ok(),
            Gone::Absent(p) => p.binary_search(&uid).is_err(),
        }
    }
}

impl<B: Backend> Session<B> {
    pub(crate) fn selected(&self) -> Option<&Selected> {
        match &self.state {
            State::Selected(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn selected_mut(&mut self) -> Option<&mut Selected> {
        match &mut self.state {
            State::Selected(s) => Some(s),
            _ => None,
        }
    }

    pub(super) async fn select(
        &mut self,
        tag: &Tag,
        mailbox: Mailbox,
        params: SelectParams,
        read_only: bool,
    ) {
        if params.qresync.is_some() && !self.enabled.qresync {
            self.bad(tag, "QRESYNC is not enabled");
            return;
        }
        if params.condstore {
            self.enabled.condstore = true;
        }
        if matches!(self.state, State::Selected(_)) {
            self.state = State::Authenticated;
            self.untagged_ok(Some(Code::Closed), "previous mailbox closed");
        }
        let info = match self.backend.mailbox(&self.ctx, mailbox.as_str()).await {
            Ok(i) if !i.noselect => i,
            Ok(_) => {
                self.no(tag, Some(Code::NonExistent), "mailbox is not selectable");
                return;
            }
            Err(e) => {
                self.fail(tag, &e);
                return;
            }
        };
        // Another account's mailbox (RFC 4314 §4): selected read-only when the user may change
        // nothing in it — no `s`, `w`, `t` or `e` — so a client knows before it tries.
        let examine = read_only;
        let read_only = read_only
            || (herald_store::acl::other_user(mailbox.as_str()).is_some()
                && self
                    .backend
                    .my_rights(&self.ctx, mailbox.as_str())
                    .await
                    .is_ok_and(|r| {
                        ![
                            Rights::SEEN,
                            Rights::WRITE,
                            Rights::DELETE_MESSAGES,
                            Rights::EXPUNGE,
                        ]
                        .iter()
                        .any(|needed| r.contains(*needed))
                    }));
        let mut watch = self.backend.mailbox_watch(info.id);
        watch.borrow_and_update();
        let metas = match self.backend.fetch_all(&self.ctx, &info).await {
            Ok(m) => m,
            Err(e) => {
                self.fail(tag, &e);
                return;
            }
        };
        // Read after the messages: an expunge committed in between is then a tombstone of a
        // UID the snapshot still holds (left out below, reported as an expunge later), never
        // a UID in neither.
        let qresync = params
            .qresync
            .as_ref()
            .filter(|q| q.uidvalidity == info.uidvalidity);
        let tombstones = match qresync {
            Some(q) => match self.backend.vanished(&self.ctx, &info.name, q.modseq).await {
                Ok(v) => Some(v),
                Err(e) => {
                    self.fail(tag, &e);
                    return;
                }
            },
            None => None,
        };
        let mut msgs: Vec<Msg> = metas.iter().map(Msg::from).collect();
        // \Recent: EXAMINE only looks; SELECT claims what no session was told of yet;
        // IMAP4rev2 has no \Recent at all (RFC 9051 §2.3.2), and claims nothing.
        let next = msgs.last().map_or(1, |m| m.uid.saturating_add(1));
        let rev2 = self.enabled.rev2;
        let recent_from = if rev2 {
            u32::MAX
        } else if read_only || info.recent_uid >= next {
            info.recent_uid
        } else {
            match self
                .backend
                .claim_recent(&self.ctx, &info.name, info.uidvalidity, next)
                .await
            {
                Ok(first) => first,
                Err(e) => {
                    self.fail(tag, &e);
                    return;
                }
            }
        };
        for m in msgs.iter_mut().rev() {
            if m.uid < recent_from {
                break;
            }
            m.recent = true;
        }
        let recent = msgs.iter().filter(|m| m.recent).count() as u32;
        let highest = metas
            .iter()
            .map(|m| m.modseq)
            .max()
            .unwrap_or(0)
            .max(info.highest_modseq);
        let uidnext = info
            .uidnext
            .max(msgs.last().map_or(1, |m| m.uid.saturating_add(1)));
        let first_unseen = msgs
            .iter()
            .position(|m| !sflags::contains(&m.flags, "\\Seen"));
        let o = self.wopts();
        let id = crate::proto::response::mailbox_id(mailbox_id(&info));
        let mut keywords = Vec::new();
        learn_keywords(&mut keywords, msgs.iter().flat_map(|m| &m.flags));
        let sel = Selected {
            uidvalidity: info.uidvalidity,
            name: info.name,
            read_only,
            msgs,
            watch,
            dirty: false,
            keywords,
            highest_modseq: highest,
            synced_modseq: info.highest_modseq,
            contexts: Vec::new(),
            pending: std::collections::BTreeSet::new(),
        };
        sel.write_flags(&mut self.out);
        write_data(&mut self.out, &Data::Exists(sel.msgs.len() as u32), o);
        if !rev2 {
            write_data(&mut self.out, &Data::Recent(recent), o);
        }
        // RFC 9051 dropped the UNSEEN response code (clients SEARCH UNSEEN instead).
        if let Some(i) = first_unseen.filter(|_| !rev2) {
            self.untagged_ok(Some(Code::Unseen(i as u32 + 1)), "first unseen");
        }
        self.untagged_ok(Some(Code::UidValidity(info.uidvalidity)), "UIDs valid");
        self.untagged_ok(Some(Code::UidNext(uidnext)), "predicted next UID");
        self.untagged_ok(Some(Code::HighestModSeq(highest)), "highest");
        self.untagged_ok(
            Some(Code::Other("MAILBOXID".into(), Some(format!("({id})")))),
            "Ok",
        );
        // RFC 4467 §4: the URLAUTH mechanisms this mailbox's URLs may be authorized with.
        self.untagged_ok(
            Some(Code::Other("URLMECH".into(), Some(INTERNAL.into()))),
            "URLAUTH mechanisms",
        );
        // QRESYNC (RFC 7162 §3.2.5): what vanished and what changed since the client's
        // MODSEQ, when its UIDVALIDITY is still the mailbox's. VANISHED names exactly the
        // expunges after that MODSEQ when the tombstones reach back so far; otherwise it may
        // name UIDs the client already knew were gone, never fewer than vanished.
        if let (Some(q), Some(tombstones)) = (qresync, tombstones) {
            let present: Vec<u32> = sel.msgs.iter().map(|m| m.uid).collect();
            let largest = uidnext.saturating_sub(1);
            let known = match &q.known_uids {
                Some(set) => set.resolve(largest).unwrap_or_default(),
                None if largest > 0 => vec![(1, largest)],
                None => Vec::new(),
            };
            let floor = q.seq_match.as_ref().map_or(0, |(seqs, uids)| {
                let seqs = seqs.resolve(sel.msgs.len() as u32).unwrap_or_default();
                let uids = uids.resolve(largest).unwrap_or_default();
                seq_match_floor(&seqs, &uids, &sel.msgs)
            });
            let gone = vanished_earlier(&known, &present, &tombstones, floor, largest);
            if !gone.is_empty() {
                write_data(
                    &mut self.out,
                    &Data::Vanished {
                        earlier: true,
                        uids: gone,
                    },
                    o,
                );
            }
            for (i, m) in sel.msgs.iter().enumerate() {
                if m.modseq > q.modseq {
                    let items = vec![
                        FetchItem::Uid(m.uid),
                        FetchItem::Flags(msg_flags(m)),
                        FetchItem::ModSeq(m.modseq),
                    ];
                    write_data(
                        &mut self.out,
                        &Data::Fetch {
                            seq: i as u32 + 1,
                            items,
                        },
                        o,
                    );
                }
            }
        }
        self.state = State::Selected(Box::new(sel));
        let code = if read_only {
            Code::ReadOnly
        } else {
            Code::ReadWrite
        };
        let verb = if examine { "EXAMINE" } else { "SELECT" };
        self.ok(tag, Some(code), &format!("{verb} completed"));
    }

    /// Switches CONDSTORE on for the session. The first CONDSTORE-enabling command while a
    /// mailbox is selected reports `* OK [HIGHESTMODSEQ n]` (RFC 7162 §3.1), so the client
    /// has a value to resynchronise from.
    pub(crate) fn enable_condstore(&mut self) {
        if self.enabled.condstore {
            return;
        }
        self.enabled.condstore = true;
        if let Some(sel) = self.selected() {
            let highest = sel
                .msgs
                .iter()
                .map(|m| m.modseq)
                .max()
                .unwrap_or(0)
                .max(sel.highest_modseq);
            self.untagged_ok(Some(Code::HighestModSeq(highest)), "highest");
        }
    }

    /// CLOSE (`expunge`) or UNSELECT.
    pub(super) async fn close(&mut self, tag: &Tag, expunge: bool) {
        let State::Selected(sel) = std::mem::replace(&mut self.state, State::Authenticated) else {
            return;
        };
        if expunge && !sel.read_only {
            match self.backend.expunge(&self.ctx, &sel.name, None).await {
                // RFC 4314 §4: without `e` on a shared mailbox, CLOSE closes and expunges
                // nothing.
                Ok(_) | Err(StoreError::NoPermission { .. }) => {}
                Err(e) => {
                    self.fail(tag, &e);
                    return;
                }
            }
        }
        self.ok(
            tag,
            None,
            if expunge {
                "CLOSE completed"
            } else {
                "UNSELECT completed"
            },
        );
    }

    /// Reports what changed in the selected mailbox since the client was last told, then the
    /// update contexts' changes. Without `allow_expunge` (during FETCH, STORE, SEARCH by
    /// sequence number, RFC 9051 §7.5.1) nothing is reported, so sequence numbers cannot
    /// shift under the client; the change stays pending.
    pub(crate) async fn updates(&mut self, allow_expunge: bool) {
        if !allow_expunge {
            return;
        }
        self.sync_snapshot(false).await;
        self.notify_expunges_reported();
        self.report_contexts().await;
    }

    /// [`Session::updates`] between commands under NOTIFY `selected-delayed`: new messages
    /// and flag changes are reported, an expunge is not (the expunged messages stay in the
    /// snapshot, so no sequence number shifts). Returns whether one was held back; the next
    /// command's updates report it, since the snapshot then holds more messages than the
    /// mailbox.
    pub(crate) async fn updates_holding_expunges(&mut self) -> bool {
        let held = self.sync_snapshot(true).await;
        self.report_contexts().await;
        held
    }

    /// Diffs the snapshot against the store when the mailbox watch says it changed, and
    /// writes EXPUNGE (or VANISHED), FETCH and EXISTS for the differences.
    async fn sync_snapshot(&mut self, hold_expunges: bool) -> bool {
        let condstore = self.enabled.condstore;
        let qresync = self.enabled.qresync;
        let rev2 = self.enabled.rev2;
        let Session {
            backend,
            state,
            ctx,
            out,
            ..
        } = self;
        let State::Selected(sel) = state else {
            return false;
        };
        if !(sel.dirty || sel.watch.has_changed().unwrap_or(false)) {
            return false;
        }
        sel.dirty = false;
        sel.watch.borrow_and_update();
        // Only what changed since the last look: new and changed messages by MODSEQ, and the
        // UID list only when a known message is gone (the store tells by count).
        let last = sel.msgs.last().map_or(0, |m| m.uid);
        let changes = match backend
            .changes(
                ctx,
                &sel.name,
                sel.synced_modseq,
                last,
                sel.msgs.len() as u64,
            )
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "mailbox vanished under a session");
                return false;
            }
        };
        let synced = sel.synced_modseq.max(changes.highest_modseq);
        let metas = changes.changed;
        let o = crate::proto::response::WriteOptions::default();
        // A keyword new to the client is announced before any FETCH or EXISTS that shows it.
        if sel.learn_keywords(metas.iter().flat_map(|m| &m.flags)) {
            sel.write_flags(out);
        }
        // Expunged: in the snapshot, not in the store. The update contexts' REMOVEFROM first,
        // while the numbers hold; then highest sequence number first, or one VANISHED with
        // QRESYNC.
        let mut vanished = Vec::new();
        // Which known messages are gone: named by the tombstones, or missing from the full
        // UID list when the tombstones do not reach back far enough.
        let mut gone_set = match (&changes.expunged, &changes.uids) {
            (Some(expunged), _) => Some(Gone::Listed(expunged.as_slice())),
            (None, Some(present)) => Some(Gone::Absent(present.as_slice())),
            (None, None) => None,
        };
        let mut held = false;
        if hold_expunges && let Some(g) = &gone_set {
            held = sel.msgs.iter().any(|m| g.contains(m.uid));
            gone_set = None;
        }
        if let Some(g) = &gone_set {
            let gone: Vec<u32> = sel
                .msgs
                .iter()
                .map(|m| m.uid)
                .filter(|u| g.contains(*u))
                .collect();
            sel.contexts_expunged(&gone, out, o);
        }
        let mut i = if gone_set.is_some() {
            sel.msgs.len()
        } else {
            0
        };
        while i > 0 {
            i -= 1;
            let uid = sel.msgs[i].uid;
            if gone_set.as_ref().is_some_and(|g| g.contains(uid)) {
                sel.msgs.remove(i);
                if qresync {
                    vanished.push(uid);
                } else {
                    write_data(out, &Data::Expunge(i as u32 + 1), o);
                }
            }
        }
        if !vanished.is_empty() {
            let uids = UidSet::from_uids(vanished);
            write_data(
                out,
                &Data::Vanished {
                    earlier: false,
                    uids,
                },
                o,
            );
        }
        sel.highest_modseq = metas
            .iter()
            .map(|m| m.modseq)
            .max()
            .unwrap_or(0)
            .max(sel.highest_modseq);
        // Changed flags of messages the client knows, in sequence order.
        for meta in metas.iter().filter(|m| m.uid <= last) {
            let Ok(seq) = sel.msgs.binary_search_by_key(&meta.uid, |m| m.uid) else {
                continue;
            };
            let m = &mut sel.msgs[seq];
            if meta.modseq == m.modseq && meta.flags == m.flags {
                continue;
            }
            m.flags = meta.flags.clone();
            m.modseq = meta.modseq;
            if !sel.contexts.is_empty() {
                sel.pending.insert(meta.uid);
            }
            let m = &sel.msgs[seq];
            let mut items = vec![FetchItem::Uid(m.uid), FetchItem::Flags(msg_flags(m))];
            if condstore {
                items.push(FetchItem::ModSeq(m.modseq));
            }
            write_data(
                out,
                &Data::Fetch {
                    seq: seq as u32 + 1,
                    items,
                },
                o,
            );
        }
        // New messages: UIDs above the last one known.
        let before = sel.msgs.len();
        sel.msgs
            .extend(metas.iter().filter(|m| m.uid > last).map(Msg::from));
        if sel.msgs.len() != before {
            // The new messages are \Recent here if this session is the first told of them
            // (a read-write session claims them; a read-only one only looks).
            let next = sel.msgs.last().map_or(1, |m| m.uid.saturating_add(1));
            let recent_from = if rev2 {
                u32::MAX
            } else if sel.read_only {
                backend
                    .mailbox(ctx, &sel.name)
                    .await
                    .map_or(next, |i| i.recent_uid)
            } else {
                backend
                    .claim_recent(ctx, &sel.name, sel.uidvalidity, next)
                    .await
                    .unwrap_or(next)
            };
            for m in &mut sel.msgs[before..] {
                m.recent = m.uid >= recent_from;
            }
            if !sel.contexts.is_empty() {
                let new: Vec<u32> = sel.msgs[before..].iter().map(|m| m.uid).collect();
                sel.pending.extend(new);
            }
            write_data(out, &Data::Exists(sel.msgs.len() as u32), o);
            let recent = sel.msgs.iter().filter(|m| m.recent).count() as u32;
            if !rev2 {
                write_data(out, &Data::Recent(recent), o);
            }
        }
        if held {
            // Reported by the next command's updates, which must read the same expunges
            // again: the MODSEQ stays where it was (changes since then that were reported now
            // are known by then and not reported twice).
            sel.dirty = true;
        } else {
            sel.synced_modseq = synced;
        }
        held
    }

    /// Waits until the selected mailbox changes (forever when none is selected). Used by the
    /// driver during IDLE.
    pub async fn changed(&mut self) {
        match self.selected_mut() {
            Some(sel) => {
                if sel.dirty {
                    return;
                }
                if sel.watch.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
                sel.dirty = true;
            }
            None => std::future::pending::<()>().await,
        }
    }

    /// Status item values for a mailbox (STATUS, LIST-STATUS).
    pub(crate) async fn status_values(
        &self,
        name: &str,
        items: &[StatusItem],
    ) -> Result<Vec<(StatusItem, u64)>, herald_store::StoreError> {
        let info = self.backend.mailbox(&self.ctx, name).await?;
        if info.noselect {
            return Err(herald_store::StoreError::NoSelect(info.name));
        }
        let needs_counts = items.iter().any(|i| {
            matches!(
                i,
                StatusItem::Unseen | StatusItem::Deleted | StatusItem::Size | StatusItem::Recent
            )
        });
        let counts = if needs_counts {
            self.backend.counts(&self.ctx, &info.name).await?
        } else {
            herald_store::MailboxCounts::default()
        };
        Ok(items
            .iter()
            .map(|&item| {
                let v = match item {
                    StatusItem::Messages => info.messages,
                    StatusItem::UidNext => u64::from(info.uidnext),
                    StatusItem::UidValidity => u64::from(info.uidvalidity),
                    StatusItem::Unseen => counts.unseen,
                    StatusItem::Deleted => counts.deleted,
                    StatusItem::Size => counts.size,
                    StatusItem::Recent => counts.recent,
                    StatusItem::HighestModSeq => info.highest_modseq,
                    StatusItem::MailboxId => mailbox_id(&info),
                };
                (item, v)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::missing_uids;

    #[test]
    fn missing_uids_works_on_ranges() {
        let m = |r: &[(u32, u32)], p: &[u32]| missing_uids(r, p).to_string();
        assert_eq!(m(&[(1, 5)], &[1, 3, 5]), "2,4");
        assert_eq!(m(&[(5, 1)], &[]), "1:5");
        assert_eq!(m(&[(1, 3), (2, 6)], &[4]), "1:3,5:6");
        assert_eq!(m(&[(1, 3)], &[1, 2, 3]), "");
        assert_eq!(
            m(&[(1, u32::MAX)], &[2, u32::MAX]),
            format!("1,3:{}", u32::MAX - 1)
        );
        assert_eq!(m(&[(u32::MAX, u32::MAX)], &[]), u32::MAX.to_string());
    }
}
