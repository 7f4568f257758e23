//! COPY and MOVE (RFC 6851), UID and sequence forms, with UIDPLUS's COPYUID.
//!
//! The store copies in ascending source-UID order and returns (source, new) UID pairs, so the
//! two sets of `[COPYUID v src dst]` correspond as RFC 4315 requires. MessageAppend in the
//! target (and, for MOVE, MessageExpunge in the source) are the store's; MOVE then reports the
//! expunges here, after an untagged `OK [COPYUID …]` (RFC 6851 §4.3).

use super::{Backend, Session};
use crate::proto::response::Code;
use crate::proto::types::{Mailbox, SequenceSet, Tag};
use herald_events::UidSet;

impl<B: Backend> Session<B> {
    pub(super) async fn copy(
        &mut self,
        tag: &Tag,
        uid: bool,
        set: &SequenceSet,
        target: Mailbox,
        is_move: bool,
    ) {
        let verb = if is_move { "MOVE" } else { "COPY" };
        let Some(sel) = self.selected() else {
            return;
        };
        if is_move && sel.read_only {
            self.no(tag, Some(Code::Cannot), "mailbox is read-only");
            return;
        }
        let indexes = match sel.resolve(set, uid, &self.saved) {
            Ok(i) => i,
            Err(e) => {
                self.bad(tag, e);
                return;
            }
        };
        let name = sel.name.clone();
        let uids = UidSet::from_uids(indexes.iter().map(|&i| sel.msgs[i].uid));
        let result = if is_move {
            self.backend
                .move_messages(&self.ctx, &name, &uids, target.as_str())
                .await
        } else {
            self.backend
                .copy(&self.ctx, &name, &uids, target.as_str())
                .await
        };
        let result = match result {
            Ok(c) => c.value,
            Err(e) => {
                self.fail_target(tag, &e);
                return;
            }
        };
        let code = (!result.uids.is_empty()).then(|| Code::CopyUid {
            uidvalidity: result.uidvalidity,
            source: UidSet::from_uids(result.uids.iter().map(|p| p.0)),
            dest: UidSet::from_uids(result.uids.iter().map(|p| p.1)),
        });
        if is_move {
            if code.is_some() {
                self.untagged_ok(code, "moved");
            }
            let moved: Vec<u32> = result.uids.iter().map(|p| p.0).collect();
            self.forget(&moved);
            self.updates(true).await;
            self.ok(tag, None, &format!("{verb} completed"));
        } else {
            self.updates(true).await;
            self.ok(tag, code, &format!("{verb} completed"));
        }
    }
}
