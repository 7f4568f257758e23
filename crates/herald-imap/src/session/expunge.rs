//! EXPUNGE and UID EXPUNGE (UIDPLUS). CLOSE's silent expunge is in `select.rs`.
//!
//! The store removes the `\Deleted` messages (only those in the UID set for UID EXPUNGE) and
//! commits one MessageExpunge; the session then tells the client, highest sequence number
//! first, and drops them from its snapshot.

use super::{Backend, Session};
use crate::proto::response::{Code, Data, write_data};
use crate::proto::types::{SequenceSet, Tag};
use herald_events::UidSet;

impl<B: Backend> Session<B> {
    pub(super) async fn expunge(&mut self, tag: &Tag, set: Option<SequenceSet>) {
        let Some(sel) = self.selected() else {
            return;
        };
        if sel.read_only {
            self.no(tag, Some(Code::Cannot), "mailbox is read-only");
            return;
        }
        let uids = match &set {
            None => None,
            Some(set) => match sel.resolve(set, true, &self.saved) {
                Ok(ix) => Some(UidSet::from_uids(ix.iter().map(|&i| sel.msgs[i].uid))),
                Err(e) => {
                    self.bad(tag, e);
                    return;
                }
            },
        };
        if uids.as_ref().is_some_and(UidSet::is_empty) {
            self.updates(true).await;
            self.ok(tag, None, "UID EXPUNGE completed");
            return;
        }
        let name = sel.name.clone();
        let gone = match self.backend.expunge(&self.ctx, &name, uids.as_ref()).await {
            Ok(c) => c.value,
            Err(e) => {
                self.fail(tag, &e);
                return;
            }
        };
        self.forget(&gone);
        self.updates(true).await;
        self.ok(tag, None, "EXPUNGE completed");
    }

    /// Removes expunged UIDs from the snapshot, writing the update contexts' REMOVEFROM, then
    /// `* n EXPUNGE` highest first.
    pub(super) fn forget(&mut self, uids: &[u32]) {
        let o = self.wopts();
        let qresync = self.enabled.qresync;
        let Some(sel) = self.selected_mut() else {
            return;
        };
        let mut seqs: Vec<usize> = uids.iter().filter_map(|u| sel.index_of(*u)).collect();
        seqs.sort_unstable();
        let mut out = Vec::new();
        let known: Vec<u32> = seqs.iter().map(|&i| sel.msgs[i].uid).collect();
        sel.contexts_expunged(&known, &mut out, o);
        let mut gone = Vec::with_capacity(seqs.len());
        for &i in seqs.iter().rev() {
            gone.push(sel.msgs.remove(i).uid);
            if !qresync {
                write_data(&mut out, &Data::Expunge(i as u32 + 1), o);
            }
        }
        // With QRESYNC one VANISHED replaces the EXPUNGEs (RFC 7162 §3.2.10).
        if qresync && !gone.is_empty() {
            let uids = UidSet::from_uids(gone);
            write_data(
                &mut out,
                &Data::Vanished {
                    earlier: false,
                    uids,
                },
                o,
            );
        }
        self.out.extend_from_slice(&out);
    }
}
