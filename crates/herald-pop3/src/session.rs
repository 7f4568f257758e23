//! The POP3 session as a state machine with no I/O (RFC 1939 §3–§6, RFC 2449, RFC 5034).
//!
//! The driver feeds it complete command lines and the results of the work it asked for; the
//! session answers with [`Step`]s: bytes to send, or a request — check a password, open the
//! maildrop, send a message, commit deletions. Tests drive it with strings, no sockets and no
//! store, and the same machine runs under any transport (plain, STLS, implicit TLS).
//!
//! POP3 semantics kept here rather than in the store:
//! - the maildrop is INBOX, snapshotted at login; message numbers are positions in the snapshot;
//! - DELE only marks; QUIT in the TRANSACTION state asks the driver to expunge the marked
//!   messages in one store transaction (one MessageExpunge event, RFC 5423 §4.1); a dropped
//!   connection or QUIT without DELE expunges nothing;
//! - RETR and TOP never mark anything read: POP has no concept of read (RFC 5423 §4.2).

use crate::command::{self, Command};
use base64::Engine as _;
use std::collections::BTreeSet;

/// RFC 2449 §4: a command line is at most 255 octets including CRLF.
pub const MAX_COMMAND_LINE: usize = 255;

/// One message of the maildrop snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageInfo {
    /// IMAP UID in INBOX.
    pub uid: u32,
    /// Size in octets as sent by RETR (CRLF line endings, before dot-stuffing).
    pub size: u64,
}

/// The maildrop the driver opened for an authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maildrop {
    /// INBOX's UIDVALIDITY (part of every unique-id).
    pub uidvalidity: u32,
    /// Messages in UID order.
    pub messages: Vec<MessageInfo>,
}

/// Why the driver could not open the maildrop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaildropError {
    /// Another POP3 session holds the user's maildrop lock (RFC 2449 `[IN-USE]`).
    InUse,
    /// A temporary server failure (`[SYS/TEMP]`).
    Temporary(String),
}

/// Why authentication failed, as the driver learned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// Wrong name or password (`[AUTH]`, RFC 3206).
    Credentials,
    /// Too many recent failures from this client (`[LOGIN-DELAY]`, RFC 2449).
    Throttled,
    /// Right credentials, disabled account (`[SYS/PERM]`: asking again will not help).
    Disabled,
    /// A temporary server failure (`[SYS/TEMP]`).
    Temporary(String),
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send these bytes.
    Reply(Vec<u8>),
    /// Check a password; answer with [`Session::auth_result`].
    Authenticate {
        /// Authorization identity, when the client asked to act as another user (SASL PLAIN).
        authzid: Option<String>,
        /// Authentication identity.
        authcid: String,
        /// `USER` (USER/PASS) or `PLAIN` (AUTH PLAIN), for `vnd.herald.mechanism`.
        mechanism: &'static str,
        /// The password.
        password: String,
    },
    /// Lock and snapshot the user's INBOX; answer with [`Session::maildrop_result`]. The
    /// driver records the Login event when it succeeds.
    OpenMaildrop {
        /// The authorization identity whose maildrop to open.
        user: String,
    },
    /// Send message `uid` (its first `body_lines` body lines, or all of it), dot-stuffed,
    /// followed by the `.` terminator. The `+OK` line has already been given as a Reply.
    SendMessage {
        /// The message's UID.
        uid: u32,
        /// For TOP: how many body lines after the header.
        body_lines: Option<usize>,
    },
    /// Expunge these UIDs from INBOX in one transaction (possibly none); answer with
    /// [`Session::commit_result`].
    Commit {
        /// UIDs marked with DELE.
        expunge: Vec<u32>,
    },
    /// Upgrade the connection to TLS now (after the `+OK` reply was sent).
    StartTls,
    /// Close the connection (after sending any replies before this step).
    Close,
}

/// Where the session is (RFC 1939 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Before login. `user` holds the name given with USER.
    Authorization {
        /// Name from USER, awaiting PASS.
        user: Option<String>,
    },
    /// Awaiting the client's SASL response line after `AUTH PLAIN` without initial response.
    SaslPlain,
    /// A request is with the driver; lines are refused until it answers.
    Waiting,
    /// Logged in with the maildrop open.
    Transaction {
        /// The authorization identity.
        user: String,
    },
    /// QUIT was given; the commit is with the driver.
    Update,
    /// Finished.
    Closed,
}

/// Per-listener settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Server name in the greeting.
    pub hostname: String,
    /// STLS can be offered (a certificate is configured and the connection is not yet TLS).
    pub stls_available: bool,
    /// Accept USER/PASS and AUTH PLAIN on a connection that is not encrypted.
    pub plaintext_auth: bool,
}

/// One POP3 session.
#[derive(Debug)]
pub struct Session {
    config: Config,
    state: State,
    tls: bool,
    maildrop: Option<Maildrop>,
    deleted: BTreeSet<usize>,
    /// The authorization identity awaiting OpenMaildrop.
    pending_user: Option<String>,
    /// The kind of the last command line, until the driver takes it (for metrics).
    last_command: Option<command::CommandKind>,
}

fn ok(text: &str) -> Step {
    Step::Reply(format!("+OK {text}\r\n").into_bytes())
}

fn err(text: &str) -> Step {
    Step::Reply(format!("-ERR {text}\r\n").into_bytes())
}

impl Session {
    /// A new session; send [`Session::greeting`] first.
    pub fn new(config: Config, tls: bool) -> Session {
        Session {
            config,
            state: State::Authorization { user: None },
            tls,
            maildrop: None,
            deleted: BTreeSet::new(),
            pending_user: None,
            last_command: None,
        }
    }

    /// The greeting line.
    pub fn greeting(&self) -> Vec<u8> {
        format!("+OK {} Herald POP3 ready\r\n", self.config.hostname).into_bytes()
    }

    /// The current state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The logged-in user, if any.
    pub fn user(&self) -> Option<&str> {
        match &self.state {
            State::Transaction { user } => Some(user),
            _ => None,
        }
    }

    fn auth_allowed(&self) -> bool {
        self.tls || self.config.plaintext_auth
    }

    fn capabilities(&self) -> Vec<u8> {
        let mut out = String::from(
            "+OK capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n",
        );
        if self.auth_allowed() {
            out.push_str("USER\r\nSASL PLAIN\r\n");
        }
        if self.config.stls_available && !self.tls {
            out.push_str("STLS\r\n");
        }
        out.push_str("IMPLEMENTATION Herald\r\n.\r\n");
        out.into_bytes()
    }

    /// The kind of the command the last line carried, if it was one; taken once.
    pub fn take_command(&mut self) -> Option<command::CommandKind> {
        self.last_command.take()
    }

    /// A line the framer found too long (RFC 2449 §4).
    pub fn line_too_long(&mut self) -> Vec<Step> {
        vec![err("line too long")]
    }

    /// Handles one complete line (without CRLF).
    pub fn line(&mut self, raw: &[u8]) -> Vec<Step> {
        let Ok(line) = std::str::from_utf8(raw) else {
            return vec![err("command is not UTF-8")];
        };
        match self.state {
            State::SaslPlain => return self.sasl_plain_response(line),
            State::Waiting | State::Update => return vec![err("busy")],
            State::Closed => return vec![Step::Close],
            _ => {}
        }
        let cmd = match command::parse(line) {
            Ok(c) => c,
            Err(e) => return vec![err(&e.to_string())],
        };
        self.last_command = Some(cmd.kind());
        match (&self.state, cmd) {
            (_, Command::Capa) => vec![Step::Reply(self.capabilities())],
            (_, Command::Noop) => vec![ok("")],
            (State::Authorization { .. }, Command::Quit) => {
                self.state = State::Closed;
                vec![ok("bye"), Step::Close]
            }
            (State::Authorization { .. }, Command::Stls) => {
                if self.tls || !self.config.stls_available {
                    vec![err("STLS not available")]
                } else {
                    self.tls = true;
                    vec![ok("begin TLS negotiation"), Step::StartTls]
                }
            }
            (State::Authorization { .. }, Command::User(name)) => {
                if !self.auth_allowed() {
                    return vec![err("[AUTH] use STLS first")];
                }
                self.state = State::Authorization { user: Some(name) };
                vec![ok("send PASS")]
            }
            (State::Authorization { user }, Command::Pass(password)) => match user.clone() {
                None => vec![err("USER first")],
                Some(authcid) => {
                    self.state = State::Waiting;
                    vec![Step::Authenticate {
                        authzid: None,
                        authcid,
                        mechanism: "USER",
                        password,
                    }]
                }
            },
            (State::Authorization { .. }, Command::Auth { mechanism, initial }) => {
                match mechanism.as_deref() {
                    None => {
                        let mut list = "+OK\r\n".to_owned();
                        if self.auth_allowed() {
                            list.push_str("PLAIN\r\n");
                        }
                        list.push_str(".\r\n");
                        vec![Step::Reply(list.into_bytes())]
                    }
                    Some("PLAIN") if !self.auth_allowed() => {
                        vec![err("[AUTH] use STLS first")]
                    }
                    Some("PLAIN") => match initial {
                        Some(response) => self.sasl_plain_response(&response),
                        None => {
                            self.state = State::SaslPlain;
                            vec![Step::Reply(b"+ \r\n".to_vec())]
                        }
                    },
                    Some(_) => vec![err("unsupported mechanism")],
                }
            }
            (State::Authorization { .. }, _) => vec![err("not logged in")],
            (State::Transaction { .. }, cmd) => self.transaction(cmd),
            (_, _) => vec![err("not allowed now")],
        }
    }

    fn sasl_plain_response(&mut self, response: &str) -> Vec<Step> {
        self.state = State::Authorization { user: None };
        if response == "*" {
            return vec![err("authentication cancelled")];
        }
        let decoded = if response == "=" {
            Vec::new()
        } else {
            match base64::engine::general_purpose::STANDARD.decode(response) {
                Ok(d) => d,
                Err(_) => return vec![err("[AUTH] invalid base64")],
            }
        };
        // RFC 4616: authzid NUL authcid NUL passwd.
        let parts: Vec<&[u8]> = decoded.split(|&b| b == 0).collect();
        let [authzid, authcid, password] = parts.as_slice() else {
            return vec![err("[AUTH] malformed PLAIN response")];
        };
        let (Ok(authzid), Ok(authcid), Ok(password)) = (
            std::str::from_utf8(authzid),
            std::str::from_utf8(authcid),
            std::str::from_utf8(password),
        ) else {
            return vec![err("[AUTH] PLAIN response is not UTF-8")];
        };
        if authcid.is_empty() {
            return vec![err("[AUTH] empty authentication identity")];
        }
        self.state = State::Waiting;
        vec![Step::Authenticate {
            authzid: (!authzid.is_empty() && authzid != authcid).then(|| authzid.to_owned()),
            authcid: authcid.to_owned(),
            mechanism: "PLAIN",
            password: password.to_owned(),
        }]
    }

    /// The driver's answer to [`Step::Authenticate`]: the authorization identity, or why not.
    pub fn auth_result(&mut self, result: Result<String, AuthFailure>) -> Vec<Step> {
        match result {
            Ok(user) => {
                self.pending_user = Some(user.clone());
                vec![Step::OpenMaildrop { user }]
            }
            Err(failure) => {
                self.state = State::Authorization { user: None };
                vec![match failure {
                    AuthFailure::Credentials => err("[AUTH] invalid user name or password"),
                    AuthFailure::Throttled => err("[LOGIN-DELAY] too many failures, try later"),
                    AuthFailure::Disabled => {
                        err("[SYS/PERM] this account is disabled, contact your administrator")
                    }
                    AuthFailure::Temporary(why) => err(&format!("[SYS/TEMP] {why}")),
                }]
            }
        }
    }

    /// The driver's answer to [`Step::OpenMaildrop`].
    pub fn maildrop_result(&mut self, result: Result<Maildrop, MaildropError>) -> Vec<Step> {
        let user = self.pending_user.take().unwrap_or_default();
        match result {
            Ok(maildrop) => {
                let size: u64 = maildrop.messages.iter().map(|m| m.size).sum();
                let n = maildrop.messages.len();
                self.maildrop = Some(maildrop);
                self.deleted.clear();
                self.state = State::Transaction { user };
                vec![ok(&format!("maildrop has {n} messages ({size} octets)"))]
            }
            Err(e) => {
                self.state = State::Authorization { user: None };
                vec![match e {
                    MaildropError::InUse => {
                        err("[IN-USE] maildrop is locked by another POP3 session")
                    }
                    MaildropError::Temporary(why) => err(&format!("[SYS/TEMP] {why}")),
                }]
            }
        }
    }

    /// The message at 1-based `n`, unless out of range or deleted.
    fn message(&self, n: usize) -> Result<MessageInfo, Step> {
        let maildrop = self.maildrop.as_ref().ok_or_else(|| err("no maildrop"))?;
        let m = maildrop
            .messages
            .get(n.wrapping_sub(1))
            .ok_or_else(|| err("no such message"))?;
        if self.deleted.contains(&n) {
            return Err(err(&format!("message {n} already deleted")));
        }
        Ok(*m)
    }

    fn unique_id(&self, m: &MessageInfo) -> String {
        // Dovecot's default UIDL format (%08Xu%08Xv), so clients moving from Dovecot keep
        // their "already downloaded" lists.
        let v = self.maildrop.as_ref().map_or(0, |d| d.uidvalidity);
        format!("{:08X}{:08X}", m.uid, v)
    }

    fn live(&self) -> impl Iterator<Item = (usize, &MessageInfo)> {
        self.maildrop
            .iter()
            .flat_map(|d| d.messages.iter().enumerate())
            .map(|(i, m)| (i + 1, m))
            .filter(|(n, _)| !self.deleted.contains(n))
    }

    fn transaction(&mut self, cmd: Command) -> Vec<Step> {
        match cmd {
            Command::Stat => {
                let (count, size) = self
                    .live()
                    .fold((0usize, 0u64), |(c, s), (_, m)| (c + 1, s + m.size));
                vec![ok(&format!("{count} {size}"))]
            }
            Command::List(Some(n)) => match self.message(n) {
                Ok(m) => vec![ok(&format!("{n} {}", m.size))],
                Err(e) => vec![e],
            },
            Command::List(None) => {
                let mut out = String::from("+OK scan listing follows\r\n");
                for (n, m) in self.live() {
                    out.push_str(&format!("{n} {}\r\n", m.size));
                }
                out.push_str(".\r\n");
                vec![Step::Reply(out.into_bytes())]
            }
            Command::Uidl(Some(n)) => match self.message(n) {
                Ok(m) => vec![ok(&format!("{n} {}", self.unique_id(&m)))],
                Err(e) => vec![e],
            },
            Command::Uidl(None) => {
                let mut out = String::from("+OK unique-id listing follows\r\n");
                for (n, m) in self.live() {
                    out.push_str(&format!("{n} {}\r\n", self.unique_id(m)));
                }
                out.push_str(".\r\n");
                vec![Step::Reply(out.into_bytes())]
            }
            Command::Retr(n) => match self.message(n) {
                Ok(m) => vec![
                    ok(&format!("{} octets", m.size)),
                    Step::SendMessage {
                        uid: m.uid,
                        body_lines: None,
                    },
                ],
                Err(e) => vec![e],
            },
            Command::Top(n, lines) => match self.message(n) {
                Ok(m) => vec![
                    ok("top of message follows"),
                    Step::SendMessage {
                        uid: m.uid,
                        body_lines: Some(lines),
                    },
                ],
                Err(e) => vec![e],
            },
            Command::Dele(n) => match self.message(n) {
                Ok(_) => {
                    self.deleted.insert(n);
                    vec![ok(&format!("message {n} deleted"))]
                }
                Err(e) => vec![e],
            },
            Command::Rset => {
                self.deleted.clear();
                let n = self.live().count();
                vec![ok(&format!("maildrop has {n} messages"))]
            }
            Command::Quit => {
                self.state = State::Update;
                let expunge = self
                    .deleted
                    .iter()
                    .filter_map(|&n| self.maildrop.as_ref()?.messages.get(n - 1))
                    .map(|m| m.uid)
                    .collect();
                vec![Step::Commit { expunge }]
            }
            Command::User(_) | Command::Pass(_) | Command::Auth { .. } => {
                vec![err("already logged in")]
            }
            Command::Stls => vec![err("STLS only before login")],
            Command::Capa | Command::Noop => vec![ok("")],
        }
    }

    /// The driver's answer to [`Step::Commit`].
    pub fn commit_result(&mut self, result: Result<(), String>) -> Vec<Step> {
        self.state = State::Closed;
        match result {
            Ok(()) => {
                let n = self.live().count();
                vec![ok(&format!("bye ({n} messages left)")), Step::Close]
            }
            // RFC 1939 §6: some deleted messages could not be removed.
            Err(why) => vec![
                err(&format!("[SYS/TEMP] deletion failed: {why}")),
                Step::Close,
            ],
        }
    }

    /// True when the connection was dropped in a state where nothing may be expunged: POP3
    /// removes messages only on QUIT (RFC 1939 §6). The driver calls this to decide the kind of
    /// Logout event and never commits deletions on a drop.
    pub fn ended_gracefully(&self) -> bool {
        self.state == State::Closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            hostname: "mail.example.org".into(),
            stls_available: true,
            plaintext_auth: true,
        }
    }

    fn text(steps: &[Step]) -> String {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Reply(b) => Some(String::from_utf8_lossy(b).into_owned()),
                _ => None,
            })
            .collect()
    }

    fn logged_in(messages: &[(u32, u64)]) -> Session {
        let mut s = Session::new(config(), false);
        assert_eq!(text(&s.line(b"USER alice")), "+OK send PASS\r\n");
        assert_eq!(
            s.line(b"PASS secret"),
            [Step::Authenticate {
                authzid: None,
                authcid: "alice".into(),
                mechanism: "USER",
                password: "secret".into()
            }]
        );
        assert_eq!(
            s.auth_result(Ok("alice".into())),
            [Step::OpenMaildrop {
                user: "alice".into()
            }]
        );
        let maildrop = Maildrop {
            uidvalidity: 0x5f00_0001,
            messages: messages
                .iter()
                .map(|&(uid, size)| MessageInfo { uid, size })
                .collect(),
        };
        let total: u64 = messages.iter().map(|m| m.1).sum();
        assert_eq!(
            text(&s.maildrop_result(Ok(maildrop))),
            format!(
                "+OK maildrop has {} messages ({total} octets)\r\n",
                messages.len()
            )
        );
        s
    }

    #[test]
    fn rfc1939_example_session() {
        let mut s = logged_in(&[(1, 120), (2, 200)]);
        assert_eq!(text(&s.line(b"STAT")), "+OK 2 320\r\n");
        assert_eq!(
            text(&s.line(b"LIST")),
            "+OK scan listing follows\r\n1 120\r\n2 200\r\n.\r\n"
        );
        assert_eq!(
            s.line(b"RETR 1"),
            [
                Step::Reply(b"+OK 120 octets\r\n".to_vec()),
                Step::SendMessage {
                    uid: 1,
                    body_lines: None
                }
            ]
        );
        assert_eq!(text(&s.line(b"DELE 1")), "+OK message 1 deleted\r\n");
        assert_eq!(
            text(&s.line(b"RETR 1")),
            "-ERR message 1 already deleted\r\n"
        );
        assert_eq!(text(&s.line(b"STAT")), "+OK 1 200\r\n");
        assert_eq!(text(&s.line(b"LIST 2")), "+OK 2 200\r\n");
        assert_eq!(text(&s.line(b"LIST 3")), "-ERR no such message\r\n");
        assert_eq!(s.line(b"QUIT"), [Step::Commit { expunge: vec![1] }]);
        assert_eq!(
            s.commit_result(Ok(())),
            [
                Step::Reply(b"+OK bye (1 messages left)\r\n".to_vec()),
                Step::Close
            ]
        );
        assert!(s.ended_gracefully());
    }

    #[test]
    fn rset_undeletes_and_quit_without_dele_expunges_nothing() {
        let mut s = logged_in(&[(4, 10), (9, 20)]);
        s.line(b"DELE 2");
        assert_eq!(text(&s.line(b"RSET")), "+OK maildrop has 2 messages\r\n");
        assert_eq!(s.line(b"QUIT"), [Step::Commit { expunge: vec![] }]);
    }

    #[test]
    fn uidl_is_stable_and_dovecot_compatible() {
        let mut s = logged_in(&[(1, 10), (7, 20)]);
        assert_eq!(
            text(&s.line(b"UIDL")),
            "+OK unique-id listing follows\r\n1 000000015F000001\r\n2 000000075F000001\r\n.\r\n"
        );
        assert_eq!(text(&s.line(b"UIDL 2")), "+OK 2 000000075F000001\r\n");
    }

    #[test]
    fn top_sends_header_and_n_lines() {
        let mut s = logged_in(&[(3, 10)]);
        assert_eq!(
            s.line(b"TOP 1 5"),
            [
                Step::Reply(b"+OK top of message follows\r\n".to_vec()),
                Step::SendMessage {
                    uid: 3,
                    body_lines: Some(5)
                }
            ]
        );
    }

    #[test]
    fn sasl_plain_with_and_without_initial_response() {
        let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
        let mut s = Session::new(config(), false);
        let line = format!("AUTH PLAIN {}", b64(b"\0alice\0secret"));
        assert_eq!(
            s.line(line.as_bytes()),
            [Step::Authenticate {
                authzid: None,
                authcid: "alice".into(),
                mechanism: "PLAIN",
                password: "secret".into()
            }]
        );
        // An admin acting as alice, response on its own line.
        let mut s = Session::new(config(), false);
        assert_eq!(text(&s.line(b"AUTH PLAIN")), "+ \r\n");
        assert_eq!(
            s.line(b64(b"alice\0admin\0pw").as_bytes()),
            [Step::Authenticate {
                authzid: Some("alice".into()),
                authcid: "admin".into(),
                mechanism: "PLAIN",
                password: "pw".into()
            }]
        );
        let mut s = Session::new(config(), false);
        s.line(b"AUTH PLAIN");
        assert_eq!(text(&s.line(b"*")), "-ERR authentication cancelled\r\n");
        assert_eq!(
            text(&s.line(b"AUTH PLAIN !!!")),
            "-ERR [AUTH] invalid base64\r\n"
        );
        assert_eq!(
            text(&s.line(b"AUTH CRAM-MD5")),
            "-ERR unsupported mechanism\r\n"
        );
    }

    #[test]
    fn failures_carry_rfc2449_response_codes() {
        let mut s = Session::new(config(), false);
        s.line(b"USER alice");
        s.line(b"PASS wrong");
        assert_eq!(
            text(&s.auth_result(Err(AuthFailure::Credentials))),
            "-ERR [AUTH] invalid user name or password\r\n"
        );
        assert_eq!(s.state(), &State::Authorization { user: None });
        s.line(b"USER alice");
        s.line(b"PASS right");
        s.auth_result(Ok("alice".into()));
        assert_eq!(
            text(&s.maildrop_result(Err(MaildropError::InUse))),
            "-ERR [IN-USE] maildrop is locked by another POP3 session\r\n"
        );
        assert_eq!(text(&s.line(b"STAT")), "-ERR not logged in\r\n");
    }

    #[test]
    fn plaintext_auth_can_require_tls() {
        let cfg = Config {
            plaintext_auth: false,
            ..config()
        };
        let mut s = Session::new(cfg.clone(), false);
        assert!(!text(&s.line(b"CAPA")).contains("USER"));
        assert_eq!(text(&s.line(b"USER a")), "-ERR [AUTH] use STLS first\r\n");
        assert_eq!(s.line(b"STLS")[1], Step::StartTls);
        assert!(text(&s.line(b"CAPA")).contains("SASL PLAIN"));
        assert_eq!(text(&s.line(b"STLS")), "-ERR STLS not available\r\n");
    }

    #[test]
    fn bad_input_gets_err_never_a_panic() {
        let mut s = logged_in(&[(1, 1)]);
        for line in [
            &b"RETR 99999999999999999999"[..],
            b"DELE 0",
            b"\xff\xfe",
            b"TOP 1 x",
            b"",
        ] {
            let steps = s.line(line);
            assert!(text(&steps).starts_with("-ERR"), "{steps:?}");
        }
        assert_eq!(text(&s.line(b"USER bob")), "-ERR already logged in\r\n");
    }
}
