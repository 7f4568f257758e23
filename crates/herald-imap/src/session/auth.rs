//! Connection-level commands: CAPABILITY's list, ID, ENABLE, NAMESPACE, STARTTLS, LOGIN and
//! AUTHENTICATE PLAIN (with SASL-IR and an authorization identity, so an administrator can act
//! as a user).
//!
//! Authentication is where the session gets its [`SessionContext`] user (and `auth_user` when an
//! admin acts for someone), so every later store call and every event carries the right
//! `user`/`admin`. Each attempt is counted in the shared limiter (per client and per account)
//! before the password is checked, and only a success takes it back. A successful login
//! records the Login event before the tagged OK, and widens the framer's limits from the
//! pre-login ones; a wrong password, a limiter refusal or a LOGIN refused before TLS records
//! one `vnd.herald.LoginFailed` (the name tried, never the password) before the tagged NO.

use super::{Backend, Control, Pending, Session, State};
use crate::proto::response::{Code, Data, write_challenge, write_data};
use crate::proto::types::Tag;
use base64::Engine;
use herald_store::{LoginFailure, StoreError};
use tokio::time::Instant;

impl<B: Backend> Session<B> {
    fn login_disabled(&self) -> bool {
        self.config.login_disabled_without_tls && !self.tls
    }

    /// The capability list for the current state.
    pub(crate) fn capabilities(&self) -> Vec<String> {
        let mut caps: Vec<String> = vec!["IMAP4rev1".into(), "IMAP4rev2".into()];
        if self.identity.is_none() {
            if self.starttls_available {
                caps.push("STARTTLS".into());
            }
            if self.login_disabled() {
                caps.push("LOGINDISABLED".into());
            } else {
                caps.push("AUTH=PLAIN".into());
            }
            caps.push("SASL-IR".into());
        }
        for c in [
            "LITERAL+",
            "ID",
            "ENABLE",
            "IDLE",
            "NAMESPACE",
            "UIDPLUS",
            "MOVE",
            "UNSELECT",
            "CHILDREN",
            "CONDSTORE",
            "QRESYNC",
            "ESEARCH",
            "SEARCHRES",
            "SORT",
            "SORT=DISPLAY",
            "ESORT",
            "CONTEXT=SEARCH",
            "CONTEXT=SORT",
            "THREAD=ORDEREDSUBJECT",
            "THREAD=REFERENCES",
            "QUOTA",
            "QUOTA=RES-STORAGE",
            "QUOTA=RES-MESSAGE",
            "QUOTASET",
            "ACL",
            "RIGHTS=texk",
            "SPECIAL-USE",
            "CREATE-SPECIAL-USE",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "STATUS=SIZE",
            "WITHIN",
            "OBJECTID",
            "MULTIAPPEND",
            "CATENATE",
            "BINARY",
            "PREVIEW",
            "SAVEDATE",
            "UTF8=ACCEPT",
            "METADATA",
            "METADATA-SERVER",
            "URLAUTH",
            "URLAUTH=BINARY",
            "NOTIFY",
        ] {
            caps.push(c.into());
        }
        caps
    }

    pub(super) fn id(&mut self, tag: &Tag) {
        let o = self.wopts();
        let params = vec![
            ("name".to_owned(), Some("Herald".to_owned())),
            (
                "version".to_owned(),
                Some(env!("CARGO_PKG_VERSION").to_owned()),
            ),
        ];
        write_data(&mut self.out, &Data::Id(Some(params)), o);
        self.ok(tag, None, "ID completed");
    }

    pub(super) fn enable(&mut self, tag: &Tag, caps: &[String]) {
        let mut enabled = Vec::new();
        let mut condstore = false;
        for c in caps {
            match c.as_str() {
                "CONDSTORE" if !self.enabled.condstore && !condstore => {
                    condstore = true;
                    enabled.push(c.clone());
                }
                // QRESYNC implies CONDSTORE (RFC 7162 §3.2.3).
                "QRESYNC" if !self.enabled.qresync => {
                    self.enabled.qresync = true;
                    condstore = !self.enabled.condstore;
                    enabled.push(c.clone());
                }
                "UTF8=ACCEPT" if !self.enabled.utf8 => {
                    self.enabled.utf8 = true;
                    enabled.push(c.clone());
                }
                // IMAP4rev2 (RFC 9051 §6.3.1) brings UTF-8 names with it.
                "IMAP4REV2" if !self.enabled.rev2 => {
                    self.enabled.rev2 = true;
                    self.enabled.utf8 = true;
                    enabled.push("IMAP4rev2".into());
                }
                _ => {}
            }
        }
        let o = self.wopts();
        write_data(&mut self.out, &Data::Enabled(enabled), o);
        if condstore {
            self.enable_condstore();
        }
        self.ok(tag, None, "ENABLE completed");
    }

    pub(super) fn namespace(&mut self, tag: &Tag) {
        let o = self.wopts();
        write_data(
            &mut self.out,
            &Data::Namespace {
                personal: vec![(String::new(), Some('/'))],
                // Other users' mailboxes shared with this user (RFC 4314), as
                // `user/OWNER/NAME`: the prefix the store resolves.
                other: vec![(herald_store::acl::OTHER_USERS_PREFIX.to_owned(), Some('/'))],
                // Mailboxes no user owns, `#shared/NAME`, which administrators create.
                shared: vec![(herald_store::acl::SHARED_PREFIX.to_owned(), Some('/'))],
            },
            o,
        );
        self.ok(tag, None, "NAMESPACE completed");
    }

    pub(super) fn starttls(&mut self, tag: &Tag) -> Control {
        if self.tls {
            self.bad(tag, "TLS is already active");
            return Control::Continue;
        }
        if !self.starttls_available {
            self.no(tag, Some(Code::Cannot), "STARTTLS is not available");
            return Control::Continue;
        }
        // RFC 9051 §6.2.1: anything the client pipelined after STARTTLS is discarded.
        self.framer = crate::proto::Framer::new(self.framer.limits());
        self.ok(tag, None, "begin TLS negotiation now");
        Control::StartTls
    }

    pub(super) async fn login(&mut self, tag: &Tag, user: &[u8], password: &[u8]) {
        if self.login_disabled() {
            let tried = String::from_utf8_lossy(user).into_owned();
            self.record_failure(&tried, "LOGIN", LoginFailure::PlaintextRefused)
                .await;
            self.no(tag, Some(Code::PrivacyRequired), "LOGIN needs TLS");
            return;
        }
        let (Ok(user), Ok(password)) = (std::str::from_utf8(user), std::str::from_utf8(password))
        else {
            self.no(
                tag,
                Some(Code::AuthenticationFailed),
                "invalid user name or password",
            );
            return;
        };
        self.check_credentials(tag, user, password, None, "LOGIN")
            .await;
    }

    pub(super) async fn authenticate(
        &mut self,
        tag: &Tag,
        mechanism: &str,
        initial: Option<Vec<u8>>,
    ) {
        if self.login_disabled() {
            self.no(tag, Some(Code::PrivacyRequired), "authentication needs TLS");
            return;
        }
        if mechanism != "PLAIN" {
            self.no(tag, Some(Code::Cannot), "unsupported mechanism");
            return;
        }
        match initial {
            Some(b64) => self.sasl_plain(tag, &b64).await,
            None => {
                write_challenge(&mut self.out, b"");
                self.pending = Pending::Auth(tag.clone());
            }
        }
    }

    /// Checks an RFC 4616 PLAIN response: `authzid NUL authcid NUL password`, base64.
    pub(super) async fn sasl_plain(&mut self, tag: &Tag, b64: &[u8]) {
        let decoded = if b64 == b"=" {
            Ok(Vec::new())
        } else {
            base64::engine::general_purpose::STANDARD.decode(b64)
        };
        let Ok(decoded) = decoded else {
            self.bad(tag, "invalid base64");
            return;
        };
        let parts: Vec<&[u8]> = decoded.split(|&b| b == 0).collect();
        let [authz, authc, password] = parts.as_slice() else {
            self.no(
                tag,
                Some(Code::AuthenticationFailed),
                "malformed PLAIN response",
            );
            return;
        };
        let (Ok(authz), Ok(authc), Ok(password)) = (
            std::str::from_utf8(authz),
            std::str::from_utf8(authc),
            std::str::from_utf8(password),
        ) else {
            self.no(
                tag,
                Some(Code::AuthenticationFailed),
                "credentials are not UTF-8",
            );
            return;
        };
        let authz = (!authz.is_empty() && authz != authc).then_some(authz);
        self.check_credentials(tag, authc, password, authz, "PLAIN")
            .await;
    }

    async fn check_credentials(
        &mut self,
        tag: &Tag,
        user: &str,
        password: &str,
        authz: Option<&str>,
        mechanism: &str,
    ) {
        let ip = self.peer.client.ip();
        let attempt = match self.config.auth_limiter.begin("imap", ip, user) {
            Ok(a) => a,
            Err(_) => {
                self.record_failure(user, mechanism, LoginFailure::RateLimited)
                    .await;
                self.no(
                    tag,
                    Some(Code::Unavailable),
                    "too many failed attempts, try again later",
                );
                return;
            }
        };
        match self.backend.authenticate(user, password, authz).await {
            Ok(identity) => {
                attempt.succeeded();
                let mut ctx = identity.context("imap");
                ctx.client_ip = self.ctx.client_ip;
                ctx.client_port = self.ctx.client_port;
                ctx.server_domain = self.ctx.server_domain.clone();
                ctx.server_port = self.ctx.server_port;
                if let Err(e) = self.backend.login(&ctx).await {
                    self.fail(tag, &e);
                    return;
                }
                // The login's log line is the store's, the same for every protocol.
                self.ctx = ctx;
                self.identity = Some(identity);
                self.login_at = Some(Instant::now());
                self.enabled_at = Instant::now();
                self.state = State::Authenticated;
                self.framer.set_limits(super::full_limits(&self.config));
                let caps = self.capabilities();
                self.ok(tag, Some(Code::Capability(caps)), "logged in");
            }
            Err(StoreError::AccountDisabled) => {
                // The password was right: saying why is no help to a guesser, and tells the
                // user whom to ask. Not counted as a failure by the limiter for the same reason.
                attempt.succeeded();
                self.record_failure(user, mechanism, LoginFailure::AccountDisabled)
                    .await;
                self.no(
                    tag,
                    Some(Code::ContactAdmin),
                    "this account is disabled, contact your administrator",
                );
            }
            Err(StoreError::AuthFailed) | Err(StoreError::NotFound { .. }) => {
                attempt.failed(user);
                self.record_failure(user, mechanism, LoginFailure::BadCredentials)
                    .await;
                self.no(
                    tag,
                    Some(Code::AuthenticationFailed),
                    "invalid user name or password",
                );
            }
            Err(e) => self.fail(tag, &e),
        }
    }
}

impl<B: Backend> Session<B> {
    /// Commits `vnd.herald.LoginFailed` for one refused attempt. The client's answer does not
    /// depend on it: a store error is logged, not reported to a client that failed anyway.
    async fn record_failure(&self, user: &str, mechanism: &str, failure: LoginFailure) {
        if let Err(e) = self
            .backend
            .login_failed(&self.ctx, user, mechanism, failure)
            .await
        {
            tracing::warn!(error = %e, "could not record a failed login");
        }
    }
}
