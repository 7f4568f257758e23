//! RFC 5256 §3 threading: ORDEREDSUBJECT and REFERENCES, over plain data (no store, no I/O).
//!
//! The session hands in one [`ThreadMsg`] per searched message, in mailbox (sequence) order,
//! with what the algorithms look at already extracted: sent date, base subject, Message-ID,
//! references. The result is a [`Threads`] forest in arena form: nodes are indexes into one
//! `Vec`, so building, walking, writing and dropping a thread never recurses. A reply chain is
//! as deep as the mailbox is long, and a recursive walk over a hostile mailbox would overflow
//! the stack.
//!
//! Limits: a message's references are cut to the last [`MAX_REFERENCES`] message IDs. The loop
//! check before each link walks up the ancestors, so an unbounded References field (a few MB
//! are allowed in a message) could make one THREAD cost quadratic time; the RFC notes that
//! References fields are routinely truncated by MUAs, and the last IDs are the ones that place
//! the message (step 1.B links it under the last).

use std::collections::HashMap;

/// References used per message (the last ones; see the module docs).
pub const MAX_REFERENCES: usize = 1000;

/// One searched message, as the threading algorithms see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadMsg {
    /// What the THREAD response shows: the sequence number, or the UID for UID THREAD.
    pub id: u32,
    /// The message sequence number (the tie-breaker of RFC 5256 §2.2).
    pub seq: u32,
    /// Sent date in milliseconds since the epoch (the Date header, else INTERNALDATE).
    pub sent: i64,
    /// The base subject's i;ascii-casemap key ([`crate::subject::casemap_key`]).
    pub subject: Vec<u8>,
    /// Base-subject extraction removed a reply or forward marker.
    pub reply: bool,
    /// The normalised Message-ID, if the message has a valid one.
    pub message_id: Option<String>,
    /// The normalised references: the References field's IDs, else the first In-Reply-To ID.
    pub references: Vec<String>,
}

/// A node of a thread forest: a message, or a dummy (`id` = `None`) that groups its children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadNode {
    /// The message's id (sequence number or UID), `None` for a dummy.
    pub id: Option<u32>,
    /// Children, in order (indexes into [`Threads::nodes`]).
    pub children: Vec<usize>,
}

/// A thread forest: `roots` index the top-level threads in `nodes`, in order.
///
/// Invariant (what the THREAD grammar can express, RFC 5256 §5): a dummy is only ever a root,
/// and then has at least two children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Threads {
    /// Every node; some may be unreachable leftovers of the algorithm.
    pub nodes: Vec<ThreadNode>,
    /// The threads, in order.
    pub roots: Vec<usize>,
}

/// The sort key of §2.2: sent date, then sequence number.
fn date_key(m: &ThreadMsg) -> (i64, u32) {
    (m.sent, m.seq)
}

/// ORDEREDSUBJECT (RFC 5256 §3): sort by base subject then sent date, split into one thread
/// per base subject, and order the threads by their first message's sent date. The first
/// message of a thread is its root; every other message is a child of the root (siblings of
/// each other), so there are no grandchildren.
pub fn ordered_subject(msgs: &[ThreadMsg]) -> Threads {
    let mut order: Vec<&ThreadMsg> = msgs.iter().collect();
    order.sort_by(|a, b| {
        a.subject
            .cmp(&b.subject)
            .then_with(|| date_key(a).cmp(&date_key(b)))
    });
    let mut groups: Vec<&[&ThreadMsg]> = order.chunk_by(|a, b| a.subject == b.subject).collect();
    groups.sort_by_key(|g| g.first().map(|m| date_key(m)));
    let mut t = Threads::default();
    for g in groups {
        let Some((first, rest)) = g.split_first() else {
            continue;
        };
        let root = t.nodes.len();
        t.nodes.push(ThreadNode {
            id: Some(first.id),
            children: Vec::new(),
        });
        for m in rest {
            let n = t.nodes.len();
            t.nodes.push(ThreadNode {
                id: Some(m.id),
                children: Vec::new(),
            });
            t.nodes[root].children.push(n);
        }
        t.roots.push(root);
    }
    t
}

/// A REFERENCES container: a message (index into the input) or a dummy.
#[derive(Debug, Clone, Default)]
struct Container {
    msg: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

struct Forest<'a> {
    msgs: &'a [ThreadMsg],
    c: Vec<Container>,
}

impl Forest<'_> {
    fn new_container(&mut self, msg: Option<usize>) -> usize {
        self.c.push(Container {
            msg,
            ..Container::default()
        });
        self.c.len() - 1
    }

    /// Whether making `parent` the parent of `child` would close a loop: `parent` is `child`
    /// or one of its descendants.
    fn would_loop(&self, parent: usize, child: usize) -> bool {
        if self.c[child].children.is_empty() {
            return parent == child;
        }
        let mut at = Some(parent);
        while let Some(x) = at {
            if x == child {
                return true;
            }
            at = self.c[x].parent;
        }
        false
    }

    fn unlink(&mut self, child: usize) {
        if let Some(p) = self.c[child].parent.take() {
            self.c[p].children.retain(|&k| k != child);
        }
    }

    fn link(&mut self, parent: usize, child: usize) {
        self.c[child].parent = Some(parent);
        self.c[parent].children.push(child);
    }

    fn is_dummy(&self, x: usize) -> bool {
        self.c[x].msg.is_none()
    }

    fn msg(&self, x: usize) -> Option<&ThreadMsg> {
        self.c[x].msg.and_then(|m| self.msgs.get(m))
    }

    /// The container a date sort uses: the message itself, or a dummy's first child.
    fn date_of(&self, x: usize) -> (i64, u32) {
        let m = if self.is_dummy(x) {
            self.c[x].children.first().and_then(|&k| self.msg(k))
        } else {
            self.msg(x)
        };
        m.map_or((i64::MAX, u32::MAX), date_key)
    }

    fn sort_children(&mut self, x: usize) {
        let mut kids = std::mem::take(&mut self.c[x].children);
        kids.sort_by_key(|&k| self.date_of(k));
        self.c[x].children = kids;
    }

    /// Containers reachable from `root`, parents before children.
    fn preorder(&self, root: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut stack = vec![root];
        while let Some(x) = stack.pop() {
            out.push(x);
            stack.extend(self.c[x].children.iter().rev());
        }
        out
    }

    /// Step 5.B.i: the thread subject, from the message or a dummy's first child.
    fn thread_subject(&self, x: usize) -> Option<&[u8]> {
        let m = if self.is_dummy(x) {
            self.c[x].children.first().and_then(|&k| self.msg(k))
        } else {
            self.msg(x)
        }?;
        (!m.subject.is_empty()).then_some(m.subject.as_slice())
    }

    fn is_reply(&self, x: usize) -> bool {
        self.msg(x).is_some_and(|m| m.reply)
    }
}

/// REFERENCES (RFC 5256 §3), steps 1–6 as the RFC numbers them.
pub fn references(msgs: &[ThreadMsg]) -> Threads {
    let mut f = Forest {
        msgs,
        c: Vec::with_capacity(msgs.len() + 1),
    };
    let mut ids: HashMap<&str, usize> = HashMap::new();
    // (1) Link messages by their references, in sequence order.
    for (i, m) in msgs.iter().enumerate() {
        // A message's own container: its Message-ID's if that is new or only a dummy so far;
        // a message without a valid ID, or with a duplicate of an earlier one, gets a unique
        // container that no reference can name.
        let me = match m.message_id.as_deref() {
            Some(id) => match ids.get(id) {
                Some(&x) if f.is_dummy(x) => {
                    f.c[x].msg = Some(i);
                    x
                }
                Some(_) => f.new_container(Some(i)),
                None => {
                    let x = f.new_container(Some(i));
                    ids.insert(id, x);
                    x
                }
            },
            None => f.new_container(Some(i)),
        };
        let refs = &m.references[m.references.len().saturating_sub(MAX_REFERENCES)..];
        let mut prev: Option<usize> = None;
        for r in refs {
            let x = match ids.get(r.as_str()) {
                Some(&x) => x,
                None => {
                    let x = f.new_container(None);
                    ids.insert(r.as_str(), x);
                    x
                }
            };
            // (1.A) Each reference is the parent of the next, unless the next already has a
            // parent (the field may be truncated) or the link would close a loop.
            if let Some(p) = prev
                && f.c[x].parent.is_none()
                && !f.would_loop(p, x)
            {
                f.link(p, x);
            }
            prev = Some(x);
        }
        // (1.B) The last reference is the parent of this message, replacing any parent that
        // step 1.A gave it; no references means no parent.
        f.unlink(me);
        if let Some(p) = prev
            && !f.would_loop(p, me)
        {
            f.link(p, me);
        }
    }
    // (2) The root: every container without a parent.
    let root = f.new_container(None);
    let tops: Vec<usize> = (0..root).filter(|&x| f.c[x].parent.is_none()).collect();
    for x in tops {
        f.link(root, x);
    }
    // (3) Prune dummies, children before parents so each dummy is judged by the children it
    // really has: a childless dummy goes; a dummy with children gives them to its parent,
    // except at the top, where it stays unless it has only one child.
    for &x in f.preorder(root).iter().rev() {
        let kids = std::mem::take(&mut f.c[x].children);
        let mut keep = Vec::with_capacity(kids.len());
        for k in kids {
            if !f.is_dummy(k) {
                keep.push(k);
                continue;
            }
            let grand = std::mem::take(&mut f.c[k].children);
            if x != root || grand.len() == 1 {
                keep.extend(grand);
            } else if !grand.is_empty() {
                f.c[k].children = grand;
                keep.push(k);
            }
        }
        for &k in &keep {
            f.c[k].parent = Some(x);
        }
        f.c[x].children = keep;
    }
    // (4) Sort the top level by sent date, a dummy by its first child once its children are
    // sorted.
    let tops = f.c[root].children.clone();
    for &x in &tops {
        if f.is_dummy(x) {
            f.sort_children(x);
        }
    }
    f.sort_children(root);
    // (5) Group top-level threads with the same base subject.
    // (5.A, B) The subject table: one container per thread subject, preferring a dummy, then a
    // message that is not a reply or forward.
    let tops = f.c[root].children.clone();
    let mut table: HashMap<Vec<u8>, usize> = HashMap::new();
    for &x in &tops {
        let Some(subject) = f.thread_subject(x) else {
            continue;
        };
        match table.get(subject) {
            None => {
                table.insert(subject.to_vec(), x);
            }
            Some(&t) => {
                if !f.is_dummy(t) && (f.is_dummy(x) || (f.is_reply(t) && !f.is_reply(x))) {
                    table.insert(subject.to_vec(), x);
                }
            }
        }
    }
    // (5.C) Merge each thread into the one the table names.
    for &x in &tops {
        let Some(subject) = f.thread_subject(x).map(<[u8]>::to_vec) else {
            continue;
        };
        let Some(&t) = table.get(&subject) else {
            continue;
        };
        // x may already hang under a dummy made for an earlier merge; it is merged once.
        if t == x || f.c[x].parent != Some(root) {
            continue;
        }
        if f.is_dummy(t) && f.is_dummy(x) {
            // Both dummies: x's children join t's, and x goes.
            f.unlink(x);
            let kids = std::mem::take(&mut f.c[x].children);
            for k in kids {
                f.c[k].parent = None;
                f.link(t, k);
            }
        } else if f.is_dummy(t) || (f.is_reply(x) && !f.is_reply(t)) {
            f.unlink(x);
            f.link(t, x);
        } else {
            // A new dummy takes t's place at the top, with t and x as its children.
            let d = f.new_container(None);
            let at = f.c[root].children.iter().position(|&k| k == t);
            f.unlink(x);
            f.unlink(t);
            match at {
                Some(i) if i <= f.c[root].children.len() => f.c[root].children.insert(i, d),
                _ => f.c[root].children.push(d),
            }
            f.c[d].parent = Some(root);
            f.link(d, t);
            f.link(d, x);
            table.insert(subject, d);
        }
    }
    // (6) Sort every set of siblings by sent date, the deepest first, so a dummy is placed by
    // its (already sorted) first child.
    for &x in f.preorder(root).iter().rev() {
        f.sort_children(x);
    }
    // The forest: the containers as nodes, the root's children as the threads.
    let roots = f.c[root].children.clone();
    let nodes =
        f.c.iter()
            .map(|c| ThreadNode {
                id: c.msg.and_then(|m| msgs.get(m)).map(|m| m.id),
                children: c.children.clone(),
            })
            .collect();
    Threads { nodes, roots }
}

/// Extracts the message IDs (`<…>`) of a Message-ID, In-Reply-To or References field value,
/// normalised (RFC 5256 §3: `<"a b"@x>` and `<a b@x>` name the same message, so quoting,
/// quoted-pair backslashes, comments and whitespace are removed). Only IDs of the form
/// `id-left "@" id-right` with both sides non-empty count as valid.
pub fn message_ids(value: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut depth = 0usize;
    while i < value.len() {
        let b = value[i];
        match b {
            b'\\' if depth > 0 => i += 1,
            b'(' => depth += 1,
            b')' if depth > 0 => depth -= 1,
            b'"' if depth == 0 => {
                // A quoted phrase outside <…> (In-Reply-To may hold one): skip it.
                i += 1;
                while i < value.len() && value[i] != b'"' {
                    if value[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'<' if depth == 0 => {
                let (id, end) = one_id(&value[i + 1..]);
                i += end;
                if let Some(id) = id {
                    out.push(id);
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Reads one msg-id after its `<`: the normalised ID (if valid) and how far it went.
fn one_id(v: &[u8]) -> (Option<String>, usize) {
    let mut id = Vec::new();
    let mut i = 0;
    let mut quoted = false;
    while i < v.len() {
        let b = v[i];
        match b {
            b'>' if !quoted => {
                let text = String::from_utf8_lossy(&id).into_owned();
                let valid = text
                    .split_once('@')
                    .is_some_and(|(l, r)| !l.is_empty() && !r.is_empty());
                return (valid.then_some(text), i + 1);
            }
            b'"' => quoted = !quoted,
            b'\\' if quoted => {
                if let Some(&n) = v.get(i + 1) {
                    id.push(n);
                }
                i += 1;
            }
            b' ' | b'\t' | b'\r' | b'\n' => {}
            b'<' if !quoted => return (None, i),
            _ => id.push(b),
        }
        i += 1;
    }
    (None, v.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders a forest in THREAD syntax, for readable expectations.
    fn render(t: &Threads) -> String {
        let mut out = Vec::new();
        crate::proto::response::write_threads(&mut out, t);
        String::from_utf8(out).unwrap_or_default()
    }

    fn m(seq: u32, day: i64, subject: &str, id: Option<&str>, refs: &[&str]) -> ThreadMsg {
        let base = crate::subject::base_subject(subject);
        ThreadMsg {
            id: seq,
            seq,
            sent: day * 86_400_000,
            subject: crate::subject::casemap_key(base.text.as_bytes()),
            reply: base.reply_or_forward,
            message_id: id.map(str::to_owned),
            references: refs.iter().map(|r| (*r).to_owned()).collect(),
        }
    }

    #[test]
    fn message_ids_are_normalised() {
        assert_eq!(
            message_ids(b"<\"01KF8JCEOCBS0045PS\"@xxx.yyy.com>"),
            ["01KF8JCEOCBS0045PS@xxx.yyy.com"]
        );
        assert_eq!(
            message_ids(b" <a@b>\r\n <c@d> (comment <x@y>) <bad> <\"q\\\"x\"@h>"),
            ["a@b", "c@d", "q\"x@h"]
        );
        assert_eq!(
            message_ids(b"\"Joe <j@x>\" <1@x> <@x> <y@> <<2@x>"),
            ["1@x", "2@x"]
        );
        assert!(message_ids(b"<unterminated@x").is_empty());
        assert!(message_ids(b"").is_empty());
    }

    #[test]
    fn ordered_subject_groups_and_orders() {
        // Worked by hand: base subjects A (1, 3, 5), B (2, 4), C (6). Threads start at their
        // earliest message; A's second and later messages are all children of the first.
        let msgs = [
            m(1, 10, "A", None, &[]),
            m(2, 5, "Re: B", None, &[]),
            m(3, 12, "re: a", None, &[]),
            m(4, 6, "B", None, &[]),
            m(5, 11, "[fwd: A]", None, &[]),
            m(6, 1, "C", None, &[]),
        ];
        assert_eq!(render(&ordered_subject(&msgs)), "(6)(2 4)(1 (5)(3))");
        assert_eq!(render(&ordered_subject(&[])), "");
    }

    /// RFC 5256's own thread-data example, `(3 6 (4 23)(44 7 96))`, rebuilt from references.
    #[test]
    fn rfc_example_tree() {
        let msgs = [
            m(3, 1, "x", Some("3@x"), &[]),
            m(4, 3, "x", Some("4@x"), &["3@x", "6@x"]),
            m(6, 2, "x", Some("6@x"), &["3@x"]),
            m(7, 5, "x", Some("7@x"), &["3@x", "6@x", "44@x"]),
            m(23, 4, "x", Some("23@x"), &["3@x", "6@x", "4@x"]),
            m(44, 4, "x", Some("44@x"), &["3@x", "6@x"]),
            m(96, 6, "x", Some("96@x"), &["3@x", "6@x", "44@x", "7@x"]),
        ];
        assert_eq!(render(&references(&msgs)), "(3 6 (4 23)(44 7 96))");
    }

    #[test]
    fn missing_parents_become_dummies_and_are_pruned() {
        // 1 and 2 both reply to <gone@x>, which is not in the mailbox: a dummy parent with two
        // children stays at the top, "((1)(2))". 3's References are <lost@x> <gone2@x>: a
        // chain of two dummies above 3, pruned away. 4's are <3@x> <mid@x>: <mid@x> is a
        // dummy child of 3 and 4 its child; the dummy goes and 4 hangs under 3.
        let msgs = [
            m(1, 1, "a", Some("1@x"), &["gone@x"]),
            m(2, 2, "b", Some("2@x"), &["gone@x"]),
            m(3, 3, "c", Some("3@x"), &["lost@x", "gone2@x"]),
            m(4, 4, "d", Some("4@x"), &["3@x", "mid@x"]),
        ];
        assert_eq!(render(&references(&msgs)), "((1)(2))(3 4)");
    }

    #[test]
    fn loops_in_references_are_not_linked() {
        // Message 1 names 2 as its parent (a dummy until 2 is seen), so 1 hangs under 2.
        // Message 2 names 1 as its parent: 1 is 2's child, so that link would close a loop
        // and is not made; 2 stays a root.
        let msgs = [
            m(1, 1, "a", Some("1@x"), &["2@x"]),
            m(2, 2, "b", Some("2@x"), &["1@x"]),
        ];
        assert_eq!(render(&references(&msgs)), "(2 1)");
        // Message 1 names itself: no link. Message 2's References run p, q, p, 1: p→q is
        // linked; q→p would loop (p is q's parent) and is skipped; p→1 is linked (1 has no
        // parent); 2 hangs under 1. Pruning drops the childless dummy q, then the top-level
        // dummy p has one child left and gives it to the root.
        let msgs = [
            m(1, 1, "a", Some("1@x"), &["1@x"]),
            m(2, 2, "b", Some("2@x"), &["p@x", "q@x", "p@x", "1@x"]),
        ];
        assert_eq!(render(&references(&msgs)), "(1 2)");
    }

    #[test]
    fn duplicate_and_missing_ids() {
        // 2 repeats 1's Message-ID: it gets a unique one, so 3 (replying to that ID) threads
        // under 1, the first holder. 4 has no Message-ID at all.
        let msgs = [
            m(1, 1, "a", Some("1@x"), &[]),
            m(2, 2, "b", Some("1@x"), &[]),
            m(3, 3, "c", Some("3@x"), &["1@x"]),
            m(4, 4, "d", None, &["3@x"]),
        ];
        assert_eq!(render(&references(&msgs)), "(1 3 4)(2)");
    }

    #[test]
    fn same_subject_grouping() {
        // No references at all; step 5 groups by base subject:
        // - "hello" (1) and "Re: hello" (3): the reply becomes a child of the original;
        // - "x" (2) and "x" (4), neither a reply: a new dummy holds both;
        // - "Re: y" (5) and "Re: y" (6), both replies: a dummy again;
        // - "" subjects (7, 8) are never grouped.
        let msgs = [
            m(1, 1, "hello", Some("1@x"), &[]),
            m(2, 2, "x", Some("2@x"), &[]),
            m(3, 3, "Re: hello", Some("3@x"), &[]),
            m(4, 4, "X", Some("4@x"), &[]),
            m(5, 5, "Re: y", Some("5@x"), &[]),
            m(6, 6, "Fwd: y", Some("6@x"), &[]),
            m(7, 7, "", Some("7@x"), &[]),
            m(8, 8, "Re:", Some("8@x"), &[]),
        ];
        assert_eq!(render(&references(&msgs)), "(1 3)((2)(4))((5)(6))(7)(8)");
        // The original arrives after the reply: the table prefers the non-reply, so the
        // reply (1) becomes a child of the original (2) and the thread sorts by 2's date.
        let msgs = [
            m(1, 1, "Re: z", Some("1@x"), &[]),
            m(2, 2, "z", Some("2@x"), &[]),
        ];
        assert_eq!(render(&references(&msgs)), "(2 1)");
        // A dummy-rooted thread (two replies to a missing message) takes in a same-subject
        // message: it becomes a sibling of the dummy's children.
        let msgs = [
            m(1, 1, "Re: w", Some("1@x"), &["gone@x"]),
            m(2, 2, "Re: w", Some("2@x"), &["gone@x"]),
            m(3, 3, "w", Some("3@x"), &[]),
        ];
        assert_eq!(render(&references(&msgs)), "((1)(2)(3))");
    }

    #[test]
    fn sorting_by_sent_date_then_sequence() {
        // Children sorted by date (4 before 2), equal dates by sequence (5 before 6), and the
        // top level too (7, dated earliest, first).
        let msgs = [
            m(1, 5, "a", Some("1@x"), &[]),
            m(2, 9, "b", Some("2@x"), &["1@x"]),
            m(4, 8, "c", Some("4@x"), &["1@x"]),
            m(5, 9, "d", Some("5@x"), &[]),
            m(6, 9, "e", Some("6@x"), &[]),
            m(7, 1, "f", Some("7@x"), &[]),
        ];
        assert_eq!(render(&references(&msgs)), "(7)(1 (4)(2))(5)(6)");
    }

    #[test]
    fn deep_chains_do_not_recurse() {
        let n = 50_000u32;
        let msgs: Vec<ThreadMsg> = (1..=n)
            .map(|i| ThreadMsg {
                id: i,
                seq: i,
                sent: i64::from(i),
                subject: b"S".to_vec(),
                reply: i > 1,
                message_id: Some(format!("{i}@x")),
                references: if i > 1 {
                    vec![format!("{}@x", i - 1)]
                } else {
                    vec![]
                },
            })
            .collect();
        let t = references(&msgs);
        let s = render(&t);
        assert!(s.starts_with("(1 2 3 "), "{}", &s[..20]);
        assert!(s.ends_with(" 50000)"));
        drop(t);
    }
}
