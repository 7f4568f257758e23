//! Building events: the parameters every event of a transaction shares, in one place.
//!
//! An operation creates one [`EventCx`] (one `timestamp` per transaction, DESIGN §5) and asks
//! it for events; the context fills `timestamp`, `service`, `user`, `admin`, `clientIP`,
//! `clientPort`, `serverDomain`, `serverPort`, `serverFQDN`, `pid` and `process`, and builds the
//! IMAP URLs with the server's name, so no operation can forget one.

use crate::context::SessionContext;
use herald_events::{Event, EventType, ImapUrl, Timestamp};

/// The `process` parameter of every event.
pub const PROCESS: &str = "herald";

/// This process's id, asked of the kernel once: `std::process::id` is a system call each
/// time, one per write operation. Herald never forks, so the id cannot change under it.
fn pid() -> u32 {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// Shared parameters of the events of one transaction.
pub(crate) struct EventCx<'a> {
    pub fqdn: &'a str,
    pub ctx: &'a SessionContext,
    pub timestamp: Timestamp,
    pub pid: u32,
    /// `vnd.herald.node`, for the nodes of a cluster.
    pub node: Option<&'a str>,
}

impl<'a> EventCx<'a> {
    pub fn new(fqdn: &'a str, node: Option<&'a str>, ctx: &'a SessionContext) -> EventCx<'a> {
        EventCx {
            fqdn,
            ctx,
            timestamp: Timestamp::now(),
            pid: pid(),
            node,
        }
    }

    /// An event about `account` with the session's parameters. `user` is the session's
    /// authorization identity, which differs from `account` when a user acts on a mailbox
    /// another account shared with them (RFC 5423 §5 `user`: "may be different from the
    /// owner of the mailbox"); sessions with no user (delivery, admin tools) act for
    /// `account`. `admin` is set when the authentication identity differs from `user`.
    pub fn event(&self, t: EventType, account: &str) -> Event {
        let user = self.ctx.user.as_deref().unwrap_or(account);
        let mut e = Event::new(t);
        e.timestamp = Some(self.timestamp);
        e.service = Some(self.ctx.service.clone());
        e.user = Some(user.to_owned());
        e.admin = self
            .ctx
            .auth_user
            .as_ref()
            .filter(|a| a.as_str() != user)
            .cloned();
        e.client_ip = self.ctx.client_ip;
        e.client_port = self.ctx.client_port;
        e.server_domain = self.ctx.server_domain.clone();
        e.server_port = self.ctx.server_port;
        e.server_fqdn = Some(self.fqdn.to_owned());
        e.pid = Some(self.pid);
        e.process = Some(PROCESS.to_owned());
        if let Some(node) = self.node {
            e.set_extension(herald_events::vnd::NODE, node);
        }
        e
    }

    /// `imap://account@host`; `imap://host` for the "Shared" namespace's pseudo-account,
    /// which no one logs in as.
    pub fn server_url(&self, account: &str) -> ImapUrl {
        ImapUrl::server(self.fqdn, owner(account))
    }

    /// An account-level event (`vnd.herald.Account*`, `PasswordChange`): `uri` names the
    /// server and the account.
    pub fn account_event(&self, t: EventType, account: &str) -> Event {
        let mut e = self.event(t, account);
        e.uri = Some(self.server_url(account));
        e
    }

    /// `imap://account@host/mailbox;UIDVALIDITY=n`.
    /// A "Shared" namespace mailbox has no owner to name: `imap://host/%23shared/NAME`, the
    /// name every user selects it by.
    pub fn mailbox_url(&self, account: &str, mailbox: &str, uidvalidity: Option<u32>) -> ImapUrl {
        let mailbox = public_name(account, mailbox);
        ImapUrl::mailbox(self.fqdn, owner(account), mailbox, uidvalidity)
    }

    /// `imap://account@host/mailbox;UIDVALIDITY=n/;UID=u`, owner-less as [`Self::mailbox_url`]
    /// in the "Shared" namespace.
    pub fn message_url(&self, account: &str, mailbox: &str, uidvalidity: u32, uid: u32) -> ImapUrl {
        let mailbox = public_name(account, mailbox);
        ImapUrl::message(self.fqdn, owner(account), mailbox, uidvalidity, uid)
    }

    /// A mailbox-level event: `uri` and `mailboxID` both name the mailbox.
    pub fn mailbox_event(
        &self,
        t: EventType,
        account: &str,
        mailbox: &str,
        uidvalidity: Option<u32>,
    ) -> Event {
        let mut e = self.event(t, account);
        let url = self.mailbox_url(account, mailbox, uidvalidity);
        e.mailbox_id = Some(url.clone());
        e.uri = Some(url);
        e
    }
}

/// The user part of an event URL about `account`'s mail: none for the "Shared" namespace.
fn owner(account: &str) -> Option<&str> {
    (account != crate::acl::SHARED_OWNER).then_some(account)
}

/// The mailbox part: a "Shared" namespace mailbox is named with its namespace's prefix.
fn public_name(account: &str, mailbox: &str) -> String {
    if account == crate::acl::SHARED_OWNER {
        crate::acl::shared_name(account, mailbox)
    } else {
        mailbox.to_owned()
    }
}
