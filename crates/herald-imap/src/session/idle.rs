//! IDLE (RFC 2177).
//!
//! The session answers `+ idling` and waits for `DONE`; meanwhile the driver awaits
//! [`Session::changed`] (the store's mailbox watch: no polling) and calls
//! [`Session::idle_wakeup`] to push EXISTS/EXPUNGE/FETCH at once, and writes a keep-alive on
//! the configured interval with [`Session::keepalive`].

use super::{Backend, Pending, Session, Writer};
use crate::proto::response::write_continuation;
use crate::proto::types::Tag;

impl<B: Backend> Session<B> {
    pub(super) async fn idle(&mut self, tag: &Tag) {
        self.updates(true).await;
        write_continuation(&mut self.out, "idling");
        self.pending = Pending::Idle(tag.clone());
    }

    /// The selected mailbox changed during IDLE: report it now.
    pub async fn idle_wakeup(&mut self, w: &mut Writer<'_>) -> std::io::Result<()> {
        if self.is_idling() {
            self.updates(true).await;
        }
        self.flush(w).await
    }

    /// Writes an IDLE keep-alive (`* OK Still here`).
    pub async fn keepalive(&mut self, w: &mut Writer<'_>) -> std::io::Result<()> {
        self.untagged_ok(None, "Still here");
        self.flush(w).await
    }
}
