//! STORE and UID STORE, with CONDSTORE's UNCHANGEDSINCE (RFC 7162 §3.1.3).
//!
//! The store applies the change and generates MessageRead, MessageTrash, FlagsSet and
//! FlagsClear as RFC 5423 §4.2 prescribes; this file maps sequence numbers to UIDs, writes the
//! FETCH responses (unless `.SILENT`), updates the snapshot so the change is not reported twice,
//! and reports messages that failed the UNCHANGEDSINCE test in `[MODIFIED …]`.

use super::select::msg_flags;
use super::{Backend, Session};
use crate::proto::command::{StoreAction, StoreCommand};
use crate::proto::response::{Code, Data, FetchItem, write_data};
use crate::proto::types::{Flag, Tag};
use herald_events::UidSet;
use herald_store::FlagMode;

impl<B: Backend> Session<B> {
    pub(super) async fn store(&mut self, tag: &Tag, cmd: StoreCommand) {
        if cmd.unchanged_since.is_some() {
            self.enable_condstore();
        }
        let condstore = self.enabled.condstore;
        let Some(sel) = self.selected() else {
            return;
        };
        if sel.read_only {
            self.no(tag, Some(Code::Cannot), "mailbox is read-only");
            return;
        }
        let indexes = match sel.resolve(&cmd.set, cmd.uid, &self.saved) {
            Ok(i) => i,
            Err(e) => {
                self.bad(tag, e);
                return;
            }
        };
        let name = sel.name.clone();
        let uids = UidSet::from_uids(indexes.iter().map(|&i| sel.msgs[i].uid));
        let flags: Vec<String> = cmd
            .flags
            .iter()
            .filter(|f| **f != Flag::Recent)
            .map(ToString::to_string)
            .collect();
        let mode = match cmd.action {
            StoreAction::Add => FlagMode::Add,
            StoreAction::Remove => FlagMode::Remove,
            StoreAction::Replace => FlagMode::Replace,
        };
        let result = match self
            .backend
            .store_flags(&self.ctx, &name, &uids, mode, &flags, cmd.unchanged_since)
            .await
        {
            Ok(c) => c.value,
            Err(e) => {
                self.fail(tag, &e);
                return;
            }
        };
        let o = self.wopts();
        let Some(sel) = self.selected_mut() else {
            return;
        };
        // A keyword new to the mailbox is announced before the FETCH that shows it.
        let mut out = Vec::new();
        if sel.learn_keywords(result.changed.iter().flat_map(|c| &c.1)) {
            sel.write_flags(&mut out);
        }
        let mut changed = std::collections::HashSet::new();
        for (uid, flags, modseq) in &result.changed {
            if let Some(i) = sel.index_of(*uid) {
                sel.msgs[i].flags = flags.clone();
                sel.msgs[i].modseq = *modseq;
                changed.insert(*uid);
                if !sel.contexts.is_empty() {
                    sel.pending.insert(*uid);
                }
            }
        }
        for &i in &indexes {
            let m = &sel.msgs[i];
            if result.modified.contains(&m.uid) {
                continue;
            }
            // .SILENT suppresses the flags; with CONDSTORE the new MODSEQ is still reported
            // for messages that changed (RFC 7162 §3.2).
            if cmd.silent && !(condstore && changed.contains(&m.uid)) {
                continue;
            }
            let mut items = Vec::new();
            if cmd.uid || cmd.silent {
                items.push(FetchItem::Uid(m.uid));
            }
            if !cmd.silent {
                items.push(FetchItem::Flags(msg_flags(m)));
            }
            if condstore {
                items.push(FetchItem::ModSeq(m.modseq));
            }
            write_data(
                &mut out,
                &Data::Fetch {
                    seq: i as u32 + 1,
                    items,
                },
                o,
            );
        }
        let modified: Vec<u32> = result
            .modified
            .iter()
            .filter_map(|u| {
                if cmd.uid {
                    Some(*u)
                } else {
                    sel.index_of(*u).map(|i| i as u32 + 1)
                }
            })
            .collect();
        self.out.extend_from_slice(&out);
        self.updates(cmd.uid).await;
        if modified.is_empty() {
            self.ok(tag, None, "STORE completed");
        } else {
            self.ok(
                tag,
                Some(Code::Modified(UidSet::from_uids(modified))),
                "conditional STORE failed for some messages",
            );
        }
    }
}
