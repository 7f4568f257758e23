//! URLAUTH (RFC 4467): GENURLAUTH, URLFETCH (with RFC 5524's extended form), RESETKEY.
//!
//! A user authorizes a URL to one of their messages with GENURLAUTH; whoever the URL's access
//! identifier admits fetches it with URLFETCH from their own session, without the owner's
//! password. The `INTERNAL` mechanism and the mailbox access keys live in the store
//! (`herald_store::urlauth`); this file decides who may do what:
//!
//! - **GENURLAUTH** authorizes only URLs on this server (its hostname) that name the session's
//!   own user (`imap://user@host/…`, which RFC 4467 requires so that URLFETCH knows whose
//!   mailbox it reads) and an existing message of a selectable mailbox, with a matching
//!   UIDVALIDITY when one is given. Anything else is `NO [BADURL url]` and nothing is returned.
//! - **URLFETCH** answers `NIL` for every URL that is not valid, whatever the reason —
//!   malformed, another server, unknown mechanism, wrong token, expired, a key reset since,
//!   an access identifier that does not admit the session, a message gone — so the answer
//!   never tells an attacker which part was wrong. Access identifiers: `anonymous` and
//!   `authuser` admit every session (URLFETCH needs a logged-in session anyway); `user+NAME`
//!   admits sessions acting as NAME; `submit+NAME` admits sessions whose authentication identity
//!   is an administrator, because Herald has no submission server of its own and an
//!   administrator account is how a trusted agent (a submission server doing BURL) logs in.
//! - **RESETKEY** forgets the key of one mailbox or all the user's mailboxes: every URL issued
//!   under it stops working at once.

use super::{Backend, Session};
use crate::mime;
use crate::proto::command::{Section, UrlFetchArg};
use crate::proto::response::{Code, Data, UrlFetchData, UrlFetchValue, write_data};
use crate::proto::types::{Mailbox, Tag};
use herald_events::{Access, ImapUrl};
use herald_store::urlauth::{self, INTERNAL};
use herald_store::{SessionContext, StoreError};

/// Why GENURLAUTH refused a URL.
enum Refusal {
    /// The URL cannot be authorized; the text says why.
    Url(&'static str),
    /// The store failed.
    Store(StoreError),
}

/// A URL that URLFETCH found valid: what it names.
struct Fetched {
    raw: Vec<u8>,
    section: Option<Section>,
    partial: Option<herald_events::Partial>,
}

fn cut(data: Vec<u8>, partial: Option<herald_events::Partial>) -> Vec<u8> {
    match partial {
        None => data,
        Some(p) => {
            let start = (p.offset as usize).min(data.len());
            let end = p.length.map_or(data.len(), |l| {
                start.saturating_add(l as usize).min(data.len())
            });
            data[start..end].to_vec()
        }
    }
}

impl Fetched {
    /// The bytes the URL names, as stored (RFC 4467's URLFETCH data, RFC 5524's BODY).
    fn body(&self) -> Option<Vec<u8>> {
        let data = match &self.section {
            None => self.raw.clone(),
            Some(s) => mime::section(&mime::parse(&self.raw)?, s)?,
        };
        Some(cut(data, self.partial))
    }

    /// The part numbers of the section (empty: the whole message).
    fn part(&self) -> &[u32] {
        self.section.as_ref().map_or(&[], |s| s.part.as_slice())
    }

    /// RFC 5524's BINARY: the part with its transfer encoding undone; `None` (NIL) for a
    /// section that is not a whole body part (HEADER, TEXT, MIME).
    fn binary(&self) -> Option<Vec<u8>> {
        if self.section.as_ref().is_some_and(|s| s.text.is_some()) {
            return None;
        }
        let msg = mime::parse(&self.raw)?;
        Some(cut(mime::binary(&msg, self.part())?, self.partial))
    }

    /// RFC 5524's BODYPARTSTRUCTURE: the structure of the body part the section lies in.
    fn structure(&self) -> Vec<u8> {
        mime::parse(&self.raw)
            .and_then(|m| mime::part_structure(&m, self.part()))
            .unwrap_or_else(|| b"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0)".to_vec())
    }
}

impl<B: Backend> Session<B> {
    /// The session's context acting on `owner`'s mail (reads only: URLFETCH).
    fn owner_context(&self, owner: &str) -> SessionContext {
        SessionContext {
            user: Some(owner.to_owned()),
            auth_user: None,
            ..self.ctx.clone()
        }
    }

    pub(super) async fn genurlauth(&mut self, tag: &Tag, pairs: Vec<(String, String)>) {
        let mut urls = Vec::with_capacity(pairs.len());
        for (rump, mechanism) in pairs {
            if mechanism != INTERNAL {
                self.no(
                    tag,
                    None,
                    &format!("unknown URLAUTH mechanism {mechanism}; Herald has INTERNAL"),
                );
                return;
            }
            match self.authorize(&rump).await {
                Ok(token) => urls.push(format!("{rump}:{INTERNAL}:{token}")),
                Err(Refusal::Url(why)) => {
                    self.no(tag, Some(Code::Other("BADURL".into(), Some(rump))), why);
                    return;
                }
                Err(Refusal::Store(e)) => {
                    self.fail(tag, &e);
                    return;
                }
            }
        }
        let o = self.wopts();
        write_data(&mut self.out, &Data::GenUrlAuth(urls), o);
        self.updates(true).await;
        self.ok(tag, None, "GENURLAUTH completed");
    }

    /// The `INTERNAL` token for a rump URL of the session's own mail.
    async fn authorize(&self, rump: &str) -> Result<String, Refusal> {
        let url: ImapUrl = rump.parse().map_err(|_| Refusal::Url("not an IMAP URL"))?;
        let Some(auth) = &url.urlauth else {
            return Err(Refusal::Url("the URL has no ;URLAUTH="));
        };
        if auth.verifier.is_some() {
            return Err(Refusal::Url("the URL is already authorized"));
        }
        if Access::parse(&auth.access).is_none() {
            return Err(Refusal::Url("unknown access identifier"));
        }
        if !url.host.eq_ignore_ascii_case(&self.config.hostname) {
            return Err(Refusal::Url("the URL names another server"));
        }
        if url.user.is_none() || url.user != self.ctx.user {
            return Err(Refusal::Url("the URL must name the session's user"));
        }
        let (Some(mailbox), Some(uid)) = (url.mailbox.as_deref(), url.uid) else {
            return Err(Refusal::Url("the URL names no message"));
        };
        let info = self
            .backend
            .mailbox(&self.ctx, mailbox)
            .await
            .map_err(|_| Refusal::Url("no such mailbox"))?;
        if info.noselect || url.uidvalidity.is_some_and(|v| v != info.uidvalidity) {
            return Err(Refusal::Url("no such mailbox (UIDVALIDITY)"));
        }
        let found = self
            .backend
            .fetch(
                &self.ctx,
                &info.name,
                Some(&herald_events::UidSet::single(uid)),
            )
            .await
            .map_err(Refusal::Store)?;
        if found.is_empty() {
            return Err(Refusal::Url("no such message"));
        }
        let key = self
            .backend
            .access_key(&self.ctx, &info.name)
            .await
            .map_err(Refusal::Store)?;
        Ok(urlauth::token(&key, rump))
    }

    /// What an authorized URL names, if the session may fetch it; `None` for every failure.
    async fn fetch_authorized(&self, full: &str) -> Option<Fetched> {
        let (rump, mechanism, token) = urlauth::split(full)?;
        if !mechanism.eq_ignore_ascii_case(INTERNAL) {
            return None;
        }
        let url: ImapUrl = full.parse().ok()?;
        let auth = url.urlauth.as_ref()?;
        if !url.host.eq_ignore_ascii_case(&self.config.hostname) {
            return None;
        }
        let admitted = match Access::parse(&auth.access)? {
            Access::Anonymous | Access::AuthUser => true,
            Access::User(name) => self.ctx.user.as_deref() == Some(name.as_str()),
            Access::Submit(_) => self.identity.as_ref().is_some_and(|i| i.admin),
        };
        if !admitted {
            return None;
        }
        if let Some(expire) = &auth.expire
            && expire.unix_millis() <= herald_store::now_ms()
        {
            return None;
        }
        let owner = url.user.as_deref()?;
        let (mailbox, uid) = (url.mailbox.as_deref()?, url.uid?);
        let key = self.backend.access_key_of(owner, mailbox).await.ok()??;
        if !urlauth::verify(&key, rump, token) {
            return None;
        }
        let ctx = self.owner_context(owner);
        let info = self.backend.mailbox(&ctx, mailbox).await.ok()?;
        if url.uidvalidity.is_some_and(|v| v != info.uidvalidity) {
            return None;
        }
        let raw = self
            .backend
            .read_message(&ctx, &info.name, uid)
            .await
            .ok()?;
        let section = match url.section.as_deref() {
            None => None,
            Some(s) => Some(super::append::parse_section(s)?),
        };
        Some(Fetched {
            raw,
            section,
            partial: url.partial,
        })
    }

    pub(super) async fn urlfetch(&mut self, tag: &Tag, args: Vec<UrlFetchArg>) {
        let mut items = Vec::with_capacity(args.len());
        for arg in args {
            let found = self.fetch_authorized(&arg.url).await;
            let value = match (found, arg.extended) {
                (None, _) => UrlFetchValue::Simple(None),
                (Some(f), None) => UrlFetchValue::Simple(f.body()),
                (Some(f), Some(p)) => {
                    // Parentheses with no parameter ask for nothing in particular: the
                    // data as stored, as the plain form would give.
                    let body = p.body || !(p.binary || p.body_part_structure);
                    UrlFetchValue::Extended {
                        body_part_structure: p.body_part_structure.then(|| f.structure()),
                        body: body.then(|| f.body()),
                        binary: p.binary.then(|| f.binary()),
                    }
                }
            };
            items.push(UrlFetchData {
                url: arg.url,
                value,
            });
        }
        let o = self.wopts();
        write_data(&mut self.out, &Data::UrlFetch(items), o);
        self.updates(true).await;
        self.ok(tag, None, "URLFETCH completed");
    }

    pub(super) async fn resetkey(
        &mut self,
        tag: &Tag,
        mailbox: Option<Mailbox>,
        mechanisms: Vec<String>,
    ) {
        if let Some(m) = mechanisms.iter().find(|m| *m != INTERNAL) {
            self.no(
                tag,
                None,
                &format!("unknown URLAUTH mechanism {m}; Herald has INTERNAL"),
            );
            return;
        }
        let name = mailbox.as_ref().map(Mailbox::as_str);
        match self.backend.reset_access_keys(&self.ctx, name).await {
            Ok(()) => {
                self.updates(true).await;
                self.ok(tag, None, "RESETKEY completed");
            }
            Err(e) => self.fail(tag, &e),
        }
    }
}
