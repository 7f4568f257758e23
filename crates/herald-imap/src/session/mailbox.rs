//! Mailbox-level commands: CREATE (with SPECIAL-USE), DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE,
//! LIST (LIST-EXTENDED selection and return options, LIST-STATUS), LSUB and STATUS.
//!
//! Every name is the user's own: the store scopes each call to the session's authorization
//! identity, so one user can never name another's mailboxes. The hierarchy separator is the
//! store's (`/`); LIST matching (`*`, `%`) happens here over the user's mailbox list.

use super::{Backend, Session};
use crate::proto::command::{ListCommand, ListReturn, ListSelect, StatusItem};
use crate::proto::response::{Code, Data, ListEntry, write_data};
use crate::proto::types::{Mailbox, Tag};
use herald_store::{MailboxInfo, SpecialUse, names};
use std::collections::{BTreeMap, BTreeSet};

/// Longest LIST pattern considered; longer ones match nothing (no mailbox name is longer).
const MAX_PATTERN: usize = 4 * names::MAX_MAILBOX_NAME;

/// Whether `name` matches an IMAP LIST pattern (`*` anything, `%` anything but `/`).
/// Dynamic programming over (pattern prefix, name prefix): O(|pattern|·|name|) time whatever
/// the wildcards, so a hostile pattern cannot make matching exponential.
pub(crate) fn pattern_matches(pattern: &[u8], name: &[u8]) -> bool {
    if pattern.len() > MAX_PATTERN {
        return false;
    }
    let n = name.len();
    // dp[j]: the pattern so far matches name[..j].
    let mut dp = vec![false; n + 1];
    dp[0] = true;
    let mut next = vec![false; n + 1];
    for &c in pattern {
        match c {
            b'*' => {
                let mut any = false;
                for j in 0..=n {
                    any |= dp[j];
                    next[j] = any;
                }
            }
            b'%' => {
                let mut any = false;
                for j in 0..=n {
                    if j > 0 && name[j - 1] == b'/' {
                        any = false;
                    }
                    any |= dp[j];
                    next[j] = any;
                }
            }
            _ => {
                next[0] = false;
                for j in 1..=n {
                    next[j] = dp[j - 1] && name[j - 1] == c;
                }
            }
        }
        std::mem::swap(&mut dp, &mut next);
    }
    dp[n]
}

/// The reference and pattern as one canonical pattern (INBOX in any case is INBOX).
fn full_pattern(reference: &str, pattern: &str) -> String {
    // RFC 3501 §6.3.8: the reference is prefixed as is; a pattern starting with the
    // separator stands alone.
    let joined = if pattern.starts_with('/') {
        pattern.to_owned()
    } else {
        format!("{reference}{pattern}")
    };
    match joined.split_once('/') {
        Some((first, rest)) if first.eq_ignore_ascii_case("INBOX") => format!("INBOX/{rest}"),
        None if joined.eq_ignore_ascii_case("INBOX") => "INBOX".to_owned(),
        _ => joined,
    }
}

/// The parents of a mailbox name, nearest first: `a/b/c` → `a/b`, `a`.
fn parents(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices('/').rev().map(|(i, _)| &name[..i])
}

/// RFC 5258 §3: an option Herald does not know is `BAD`. (RECURSIVEMATCH without a base
/// option is refused by the parser.)
fn check_list_options(cmd: &ListCommand) -> Result<(), &'static str> {
    if cmd
        .selection
        .iter()
        .any(|s| matches!(s, ListSelect::Other(_)))
    {
        return Err("unknown LIST selection option");
    }
    if cmd
        .returns
        .iter()
        .any(|r| matches!(r, ListReturn::Other(_)))
    {
        return Err("unknown LIST return option");
    }
    Ok(())
}

impl<B: Backend> Session<B> {
    pub(super) async fn create(&mut self, tag: &Tag, mailbox: Mailbox, special_use: &[String]) {
        let special = match special_use {
            [] => None,
            [one] => match one.parse::<SpecialUse>() {
                Ok(u) => Some(u),
                Err(_) => {
                    self.no(
                        tag,
                        Some(Code::Other("USEATTR".into(), None)),
                        "unsupported special-use attribute",
                    );
                    return;
                }
            },
            _ => {
                self.no(
                    tag,
                    Some(Code::Other("USEATTR".into(), None)),
                    "one special-use attribute per mailbox",
                );
                return;
            }
        };
        match self
            .backend
            .create_mailbox(&self.ctx, mailbox.as_str(), special)
            .await
        {
            Ok(c) => {
                self.updates(true).await;
                let id = crate::proto::response::mailbox_id(super::select::mailbox_id(&c.value));
                let code = Code::Other("MAILBOXID".into(), Some(format!("({id})")));
                self.ok(tag, Some(code), "CREATE completed");
            }
            Err(e) => self.fail(tag, &e),
        }
    }

    pub(super) async fn delete(&mut self, tag: &Tag, mailbox: Mailbox) {
        match self
            .backend
            .delete_mailbox(&self.ctx, mailbox.as_str())
            .await
        {
            Ok(_) => {
                self.updates(true).await;
                self.ok(tag, None, "DELETE completed");
            }
            Err(e) => self.fail(tag, &e),
        }
    }

    pub(super) async fn rename(&mut self, tag: &Tag, from: Mailbox, to: Mailbox) {
        match self
            .backend
            .rename_mailbox(&self.ctx, from.as_str(), to.as_str())
            .await
        {
            Ok(_) => {
                self.updates(true).await;
                self.ok(tag, None, "RENAME completed");
            }
            Err(e) => self.fail(tag, &e),
        }
    }

    pub(super) async fn subscribe(&mut self, tag: &Tag, mailbox: Mailbox, on: bool) {
        match self
            .backend
            .subscribe(&self.ctx, mailbox.as_str(), on)
            .await
        {
            Ok(_) => {
                self.updates(true).await;
                let verb = if on { "SUBSCRIBE" } else { "UNSUBSCRIBE" };
                self.ok(tag, None, &format!("{verb} completed"));
            }
            Err(e) => self.fail(tag, &e),
        }
    }

    pub(super) async fn list(&mut self, tag: &Tag, cmd: ListCommand) {
        if let Err(why) = check_list_options(&cmd) {
            self.bad(tag, why);
            return;
        }
        let o = self.wopts();
        if cmd.patterns.len() == 1 && cmd.patterns[0].is_empty() {
            // RFC 9051 §6.3.9: the hierarchy delimiter and root.
            write_data(
                &mut self.out,
                &Data::List(ListEntry {
                    attributes: vec!["\\Noselect".into()],
                    delimiter: Some('/'),
                    mailbox: Mailbox::new(""),
                    child_info_subscribed: false,
                    old_name: None,
                }),
                o,
            );
            self.ok(tag, None, "LIST completed");
            return;
        }
        let (boxes, subs) = match (
            self.backend.list_mailboxes(&self.ctx).await,
            self.backend.subscriptions(&self.ctx).await,
        ) {
            (Ok(b), Ok(s)) => (b, s),
            (Err(e), _) | (_, Err(e)) => {
                self.fail(tag, &e);
                return;
            }
        };
        let subscribed_only = cmd.selection.contains(&ListSelect::Subscribed);
        let special_only = cmd.selection.contains(&ListSelect::SpecialUse);
        let recursive = cmd.selection.contains(&ListSelect::RecursiveMatch);
        let want_subscribed = subscribed_only || cmd.returns.contains(&ListReturn::Subscribed);
        let status_items: Option<Vec<StatusItem>> = cmd.returns.iter().find_map(|r| match r {
            ListReturn::Status(items) => Some(items.clone()),
            _ => None,
        });
        let patterns: Vec<String> = cmd
            .patterns
            .iter()
            .map(|p| full_pattern(&cmd.reference, p))
            .collect();
        let matches = |name: &str| {
            patterns
                .iter()
                .any(|p| pattern_matches(p.as_bytes(), name.as_bytes()))
        };
        // Names to report: existing mailboxes; with SUBSCRIBED, subscribed names that no longer
        // exist; with RECURSIVEMATCH, every parent of a subscribed name (RFC 5258 §3.5: a
        // parent is listed, with CHILDINFO, when a descendant meets the criteria).
        let mut candidates: BTreeSet<&str> = boxes.iter().map(|b| b.name.as_str()).collect();
        if subscribed_only {
            candidates.extend(subs.iter().map(String::as_str));
        }
        if recursive && subscribed_only {
            for s in &subs {
                candidates.extend(parents(s));
            }
        }
        let mut entries = Vec::new();
        for name in candidates {
            if !matches(name) {
                continue;
            }
            let info: Option<&MailboxInfo> = boxes.iter().find(|b| b.name == name);
            let is_sub = subs.iter().any(|s| s == name);
            let child_sub = recursive
                && subscribed_only
                && subs.iter().any(|s| s != name && names::is_within(s, name));
            let meets = (!subscribed_only || is_sub)
                && (!special_only || info.and_then(|i| i.special_use).is_some());
            if !meets && !child_sub {
                continue;
            }
            let mut attributes = name_attributes(name, &boxes);
            if want_subscribed && is_sub {
                attributes.push("\\Subscribed".into());
            }
            let selectable = info.is_some_and(|i| !i.noselect);
            entries.push((
                ListEntry {
                    attributes,
                    delimiter: Some('/'),
                    mailbox: Mailbox::new(name),
                    child_info_subscribed: child_sub,
                    old_name: None,
                },
                selectable,
            ));
        }
        for (entry, selectable) in entries {
            let name = entry.mailbox.clone();
            write_data(&mut self.out, &Data::List(entry), o);
            if let (Some(items), true) = (&status_items, selectable)
                && let Ok(values) = self.status_values(name.as_str(), items).await
            {
                write_data(
                    &mut self.out,
                    &Data::Status {
                        mailbox: name,
                        items: values,
                    },
                    o,
                );
            }
        }
        self.updates(true).await;
        self.ok(tag, None, "LIST completed");
    }

    pub(super) async fn lsub(&mut self, tag: &Tag, reference: &str, pattern: &str) {
        let (boxes, subs) = match (
            self.backend.list_mailboxes(&self.ctx).await,
            self.backend.subscriptions(&self.ctx).await,
        ) {
            (Ok(b), Ok(s)) => (b, s),
            (Err(e), _) | (_, Err(e)) => {
                self.fail(tag, &e);
                return;
            }
        };
        let p = full_pattern(reference, pattern);
        let o = self.wopts();
        // RFC 3501 §6.3.9: when `%` stops short of a subscribed name, its parent at the
        // pattern's depth is listed too, flagged \Noselect unless it is itself subscribed.
        let mut listed: BTreeMap<&str, bool> = BTreeMap::new();
        for s in &subs {
            if pattern_matches(p.as_bytes(), s.as_bytes()) {
                let exists = boxes.iter().any(|b| &b.name == s && !b.noselect);
                listed.insert(s, exists);
            } else if let Some(parent) =
                parents(s).find(|a| pattern_matches(p.as_bytes(), a.as_bytes()))
            {
                listed.entry(parent).or_insert(false);
            }
        }
        for (name, selectable) in listed {
            let attributes = if selectable {
                Vec::new()
            } else {
                vec!["\\Noselect".to_owned()]
            };
            write_data(
                &mut self.out,
                &Data::Lsub(ListEntry {
                    attributes,
                    delimiter: Some('/'),
                    mailbox: Mailbox::new(name),
                    child_info_subscribed: false,
                    old_name: None,
                }),
                o,
            );
        }
        self.updates(true).await;
        self.ok(tag, None, "LSUB completed");
    }

    pub(super) async fn status(&mut self, tag: &Tag, mailbox: Mailbox, items: &[StatusItem]) {
        match self.status_values(mailbox.as_str(), items).await {
            Ok(values) => {
                let o = self.wopts();
                write_data(
                    &mut self.out,
                    &Data::Status {
                        mailbox,
                        items: values,
                    },
                    o,
                );
                self.updates(true).await;
                self.ok(tag, None, "STATUS completed");
            }
            Err(e) => self.fail(tag, &e),
        }
    }
}

/// The attributes LIST gives a name (without `\Subscribed`): `\NonExistent` when it is gone,
/// else `\Noselect`, `\HasChildren` or `\HasNoChildren`, and its special use. NOTIFY's
/// MailboxName reports use the same.
pub(super) fn name_attributes(name: &str, boxes: &[MailboxInfo]) -> Vec<String> {
    let mut attributes = Vec::new();
    match boxes.iter().find(|b| b.name == name) {
        None => attributes.push("\\NonExistent".to_owned()),
        Some(i) => {
            if i.noselect {
                attributes.push("\\Noselect".into());
            }
            let children = boxes
                .iter()
                .any(|b| b.name != name && names::is_within(&b.name, name));
            attributes.push(if children {
                "\\HasChildren".into()
            } else {
                "\\HasNoChildren".into()
            });
            if let Some(u) = i.special_use {
                attributes.push(u.as_str().into());
            }
        }
    }
    attributes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        let m = |p: &str, n: &str| pattern_matches(p.as_bytes(), n.as_bytes());
        assert!(m("*", "a/b/c"));
        assert!(m("%", "INBOX"));
        assert!(!m("%", "a/b"));
        assert!(m("a/%", "a/b"));
        assert!(!m("a/%", "a/b/c"));
        assert!(m("a/*", "a/b/c"));
        assert!(m("*b", "a/b"));
        assert!(m("%/%", "a/b"));
        assert!(!m("%/%", "a"));
        assert!(m("a*c", "abc"));
        assert!(!m("a%c", "a/c"));
        assert!(m("INBOX", "INBOX"));
        assert!(!m("INBOX", "INBOX/x"));
        assert_eq!(full_pattern("", "inbox/%"), "INBOX/%");
        assert_eq!(full_pattern("work/", "%"), "work/%");
        assert_eq!(parents("a/b/c").collect::<Vec<_>>(), ["a/b", "a"]);
        assert_eq!(parents("a").count(), 0);
    }
}
