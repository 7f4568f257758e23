//! The IMAP session: a state machine (Not authenticated → Authenticated → Selected → Logout)
//! that consumes client bytes and writes responses, without sockets.
//!
//! Shape:
//! * bytes go through the [`Framer`] (lines and literals under limits) and
//!   [`parse_command`]; the session decides per literal whether to buffer it (ordinary
//!   arguments), stream it into its own buffer (APPEND: it does not count against the command
//!   size limit, only against [`ImapConfig::max_literal`]), or refuse it before it is read;
//! * each command is carried out by the file of its group (`auth.rs`, `mailbox.rs`,
//!   `select.rs`, `append.rs`, `fetch.rs`, `search.rs`, `store.rs`, `copy.rs`, `expunge.rs`,
//!   `quota.rs`, `metadata.rs`, `idle.rs`, `sort.rs` for SORT and THREAD, `context.rs` for
//!   CONTEXT=SEARCH and CONTEXT=SORT's update contexts and CANCELUPDATE, `urlauth.rs` for
//!   GENURLAUTH, URLFETCH and RESETKEY), which calls the store through [`Backend`] — async
//!   calls, no request/answer steps; `backend.rs` says why;
//! * responses accumulate in a buffer that is written to the caller's `AsyncWrite` at the end of
//!   each batch of input and whenever it grows past [`FLUSH_AT`] (a FETCH of many bodies), so
//!   the memory a session holds is bounded whatever the client asks for. Tests pass a
//!   `Vec<u8>`;
//! * a selected mailbox is a snapshot (UID, flags, MODSEQ per message) that is diffed against
//!   the store when [`Backend::mailbox_watch`] says it changed: EXPUNGE (highest sequence
//!   number first), EXISTS and FETCH FLAGS are sent at command completion and during IDLE, by
//!   whichever session or delivery made the change, followed by the ADDTO and REMOVEFROM of
//!   any update context the change touches.
//!
//! The driver ([`crate::server`]) owns the socket, timers and TLS; it feeds bytes with
//! [`Session::input`] and acts on the returned [`Control`].

mod acl;
mod append;
mod auth;
pub mod backend;
mod contents;
pub mod context;
mod copy;
mod expunge;
mod fetch;
mod idle;
mod mailbox;
pub mod memory;
mod metadata;
pub mod notify;
mod quota;
mod search;
mod select;
mod sort;
mod store;
pub mod summaries;
mod urlauth;

pub use backend::Backend;

use crate::config::ImapConfig;
use crate::proto::command::{AuthResponse, Command, CommandBody, Rejected, peek_command_name};
use crate::proto::response::{
    Code, Status, WriteOptions, error_response, write_continuation, write_status,
};
use crate::proto::types::Tag;
use crate::proto::{Frame, Framer, Limits, LiteralAction, ParseOptions, ProtoError, parse_command};
use herald_store::{Disconnect, Identity, SessionContext, StoreError};
use select::Selected;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::{Duration, Instant};

/// Responses are written out once the buffer holds this much.
pub const FLUSH_AT: usize = 64 * 1024;

/// What the driver must do after a batch of input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Read more.
    Continue,
    /// The `OK` to STARTTLS was written: upgrade the stream, then call [`Session::tls_started`].
    StartTls,
    /// Close the connection (LOGOUT answered, or the client must go).
    Close,
}

/// Where the connection comes from and goes to (for events: clientIP/Port, serverDomain/Port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// The client's address.
    pub client: SocketAddr,
    /// The local address the client connected to.
    pub server: SocketAddr,
}

/// The client's writer type.
pub type Writer<'a> = dyn AsyncWrite + Unpin + Send + 'a;

#[derive(Debug)]
enum State {
    NotAuthenticated,
    Authenticated,
    Selected(Box<Selected>),
    Logout,
}

/// A multi-line exchange in progress.
#[derive(Debug)]
enum Pending {
    None,
    /// AUTHENTICATE PLAIN sent `+ `; the next line is the client's response.
    Auth(Tag),
    /// IDLE is running; the next line must be `DONE`.
    Idle(Tag),
}

/// Extensions the client switched on.
#[derive(Debug, Default, Clone, Copy)]
struct Enabled {
    condstore: bool,
    /// RFC 7162 QRESYNC: VANISHED instead of EXPUNGE, resynchronisation on SELECT.
    qresync: bool,
    /// RFC 6855 UTF8=ACCEPT (also implied by IMAP4rev2): mailbox names and strings in UTF-8.
    utf8: bool,
    /// RFC 9051 IMAP4rev2: no `\Recent`, and SEARCH answers with ESEARCH.
    rev2: bool,
}

/// One IMAP session. See the module docs.
pub struct Session<B: Backend> {
    backend: B,
    config: Arc<ImapConfig>,
    framer: Framer,
    peer: Peer,
    tls: bool,
    starttls_available: bool,
    ctx: SessionContext,
    identity: Option<Identity>,
    state: State,
    pending: Pending,
    enabled: Enabled,
    /// The APPEND literal being streamed, and its index.
    streaming: Option<(u32, Vec<u8>)>,
    /// Streamed literals of the current command, by index.
    literals: Vec<(u32, Vec<u8>)>,
    out: Vec<u8>,
    login_at: Option<Instant>,
    /// When the account was last found enabled ([`ACCOUNT_RECHECK`]).
    enabled_at: Instant,
    /// The command rate limit.
    rate: RateBucket,
    /// UIDs saved by `SEARCH RETURN (SAVE)` (RFC 5182).
    saved: Vec<u32>,
    /// NOTIFY SET in force (RFC 5465), `None` before any and after NOTIFY NONE.
    notify: Option<notify::Notify>,
}

impl<B: Backend> std::fmt::Debug for Session<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("peer", &self.peer)
            .field("state", &self.state)
            .field("user", &self.ctx.user)
            .finish()
    }
}

/// Before login a client may send only what logging in takes (as Dovecot's login process
/// does): short lines and literals, so each unauthenticated connection holds a few KiB, not the
/// megabytes an authenticated APPEND may need.
pub const PRE_LOGIN_MAX: usize = 8 * 1024;

/// [`full_limits`], narrowed to [`PRE_LOGIN_MAX`].
fn pre_login_limits(config: &ImapConfig) -> Limits {
    let full = full_limits(config);
    Limits {
        max_line: full.max_line.min(PRE_LOGIN_MAX),
        max_literal: full.max_literal.min(PRE_LOGIN_MAX as u64),
        max_command: full.max_command.min(2 * PRE_LOGIN_MAX),
        ..full
    }
}

/// The configured limits, in force once a user has logged in.
fn full_limits(config: &ImapConfig) -> Limits {
    Limits {
        max_line: config.max_line,
        max_literal: config.max_literal,
        max_command: config.max_command,
        strict_crlf: false,
    }
}

/// A store error as an IMAP status and response code (STYLE: one function per protocol).
pub(crate) fn store_error(e: &StoreError) -> (Status, Option<Code>, String) {
    let text = e.to_string();
    match e {
        StoreError::NotFound { .. } => (Status::No, Some(Code::NonExistent), text),
        StoreError::AlreadyExists { .. } => (Status::No, Some(Code::AlreadyExists), text),
        StoreError::InvalidName { .. } | StoreError::InvalidArgument(_) => {
            (Status::No, Some(Code::Cannot), text)
        }
        StoreError::NoSelect(_) => (Status::No, Some(Code::NonExistent), text),
        StoreError::NoUser | StoreError::AuthFailed => {
            (Status::No, Some(Code::AuthenticationFailed), text)
        }
        StoreError::AccountDisabled => (Status::No, Some(Code::ContactAdmin), text),
        StoreError::OverQuota { .. } => (Status::No, Some(Code::OverQuota), text),
        StoreError::Metadata(r) => (Status::No, Some(metadata::refusal_code(r)), text),
        StoreError::NoPermission { .. } => (Status::No, Some(Code::NoPerm), text),
        StoreError::Unreachable { .. } => unavailable(e),
        // A broken connection to the database, not a bug: the client may try again.
        StoreError::Postgres(pg) if pg.is_closed() || pg.as_db_error().is_none() => unavailable(e),
        StoreError::Closed
        | StoreError::Io(_)
        | StoreError::Db(_)
        | StoreError::Postgres(_)
        | StoreError::Corrupt(_)
        | StoreError::LeaseLost(_)
        | StoreError::SchemaTooNew { .. } => {
            tracing::error!(error = %e, "store failure");
            (
                Status::No,
                Some(Code::ServerBug),
                "internal error, try again later".into(),
            )
        }
    }
}

/// `NO [UNAVAILABLE]`: the store cannot be reached now (RFC 5530).
fn unavailable(e: &StoreError) -> (Status, Option<Code>, String) {
    tracing::error!(error = %e, "store unreachable");
    (
        Status::No,
        Some(Code::Unavailable),
        "the message store is unavailable, try again later".into(),
    )
}

/// How long a session goes on trusting that its account is still enabled. `herald user
/// disable` runs in another process, so the session asks the store again; new logins are
/// refused at once, open sessions end at their first command after this much time.
pub const ACCOUNT_RECHECK: std::time::Duration = herald_store::ACCOUNT_RECHECK;

/// What one framer step produced, owned so the framer's borrow ends before the session acts.
enum Input {
    NeedMore,
    Literal {
        tag: Option<Tag>,
        length: u64,
        synchronizing: bool,
        index: u32,
        command: Option<String>,
    },
    LiteralEnd,
    Rejected(Option<Tag>, ProtoError),
    Command(Result<Command, Rejected>),
    IdleLine(bool),
    AuthLine(Result<AuthResponse, ProtoError>),
}

impl<B: Backend> Session<B> {
    /// A session for a new connection. `tls`: the connection is already encrypted (implicit
    /// TLS); `starttls_available`: a certificate is configured, so STARTTLS may be offered.
    pub fn new(
        backend: B,
        config: Arc<ImapConfig>,
        peer: Peer,
        tls: bool,
        starttls_available: bool,
    ) -> Session<B> {
        let limits = pre_login_limits(&config);
        let ctx = SessionContext::connection("imap", peer.client, peer.server);
        Session {
            backend,
            framer: Framer::new(limits),
            peer,
            tls,
            starttls_available: starttls_available && !tls,
            ctx,
            identity: None,
            state: State::NotAuthenticated,
            pending: Pending::None,
            enabled: Enabled::default(),
            streaming: None,
            literals: Vec::new(),
            out: Vec::new(),
            login_at: None,
            enabled_at: Instant::now(),
            rate: RateBucket::new(config.commands_per_second, Instant::now()),
            saved: Vec::new(),
            notify: None,
            config,
        }
    }

    /// The greeting: `* OK [CAPABILITY …] …`.
    pub fn greeting(&self) -> Vec<u8> {
        let mut out = Vec::new();
        write_status(
            &mut out,
            None,
            Status::Ok,
            Some(&Code::Capability(self.capabilities())),
            &format!("{} Herald IMAP ready", self.config.hostname),
            WriteOptions::default(),
        );
        out
    }

    /// Whether the client has sent part of a command and owes the rest (a literal, the end of
    /// a line).
    pub fn mid_command(&self) -> bool {
        !self.framer.is_idle()
    }

    /// Whether a user has logged in.
    pub fn is_authenticated(&self) -> bool {
        self.identity.is_some()
    }

    /// Whether IDLE is running.
    pub fn is_idling(&self) -> bool {
        matches!(self.pending, Pending::Idle(_))
    }

    /// Whether LOGOUT was answered.
    pub fn is_logged_out(&self) -> bool {
        matches!(self.state, State::Logout)
    }

    /// The session's context for store calls (user set once authenticated).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// The connection is now TLS (after [`Control::StartTls`]).
    pub fn tls_started(&mut self) {
        self.tls = true;
        self.starttls_available = false;
    }

    fn wopts(&self) -> WriteOptions {
        WriteOptions {
            utf8: self.enabled.utf8,
        }
    }

    pub(crate) fn ok(&mut self, tag: &Tag, code: Option<Code>, text: &str) {
        let o = self.wopts();
        write_status(&mut self.out, Some(tag), Status::Ok, code.as_ref(), text, o);
    }

    pub(crate) fn no(&mut self, tag: &Tag, code: Option<Code>, text: &str) {
        let o = self.wopts();
        write_status(&mut self.out, Some(tag), Status::No, code.as_ref(), text, o);
    }

    pub(crate) fn bad(&mut self, tag: &Tag, text: &str) {
        let o = self.wopts();
        write_status(&mut self.out, Some(tag), Status::Bad, None, text, o);
    }

    pub(crate) fn untagged_ok(&mut self, code: Option<Code>, text: &str) {
        let o = self.wopts();
        write_status(&mut self.out, None, Status::Ok, code.as_ref(), text, o);
    }

    /// [`Session::fail`] when there is a command to answer.
    pub(crate) fn fail_opt(&mut self, tag: Option<&Tag>, e: &StoreError) {
        match tag {
            Some(tag) => self.fail(tag, e),
            None => tracing::debug!(error = %e, "unsolicited response dropped"),
        }
    }

    pub(crate) fn fail(&mut self, tag: &Tag, e: &StoreError) {
        let (status, code, text) = store_error(e);
        let o = self.wopts();
        write_status(&mut self.out, Some(tag), status, code.as_ref(), &text, o);
    }

    /// A failed APPEND, COPY or MOVE: a target mailbox that does not exist is
    /// `NO [TRYCREATE]` (RFC 9051 §6.3.12), anything else as [`store_error`] says.
    pub(crate) fn fail_target(&mut self, tag: &Tag, e: &StoreError) {
        match e {
            StoreError::NotFound { .. } | StoreError::NoSelect(_) => {
                self.no(tag, Some(Code::TryCreate), &e.to_string());
            }
            _ => self.fail(tag, e),
        }
    }

    pub(crate) async fn flush_if_full(&mut self, w: &mut Writer<'_>) -> std::io::Result<()> {
        if self.out.len() >= FLUSH_AT {
            w.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    async fn flush(&mut self, w: &mut Writer<'_>) -> std::io::Result<()> {
        if !self.out.is_empty() {
            w.write_all(&self.out).await?;
            self.out.clear();
            w.flush().await?;
        }
        Ok(())
    }

    /// Waits for a token of the command-rate bucket (delays, never refuses).
    async fn throttle(&mut self) {
        let wait = self.rate.take(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    fn next_input(&mut self) -> Input {
        let opts = ParseOptions {
            utf8_accept: self.enabled.utf8,
        };
        loop {
            return match self.framer.next_frame() {
                Frame::NeedMore => Input::NeedMore,
                Frame::LiteralFound(l) => Input::Literal {
                    tag: l.tag.and_then(Tag::new),
                    length: l.length,
                    synchronizing: l.synchronizing,
                    index: l.index,
                    command: peek_command_name(l.prefix),
                },
                Frame::LiteralChunk(c) => {
                    if let Some((_, buf)) = self.streaming.as_mut() {
                        buf.extend_from_slice(c);
                    }
                    continue;
                }
                Frame::LiteralEnd => Input::LiteralEnd,
                Frame::Rejected { tag, error } => Input::Rejected(tag.and_then(Tag::new), error),
                Frame::Command(c) => match self.pending {
                    Pending::Idle(_) => {
                        Input::IdleLine(crate::proto::command::parse_idle_done(c.bytes).is_ok())
                    }
                    Pending::Auth(_) => {
                        Input::AuthLine(crate::proto::command::parse_auth_response(c.bytes))
                    }
                    Pending::None => Input::Command(parse_command(c, opts)),
                },
            };
        }
    }

    /// Feeds bytes read from the client, carries out every complete command, and writes the
    /// responses to `w`.
    pub async fn input(&mut self, bytes: &[u8], w: &mut Writer<'_>) -> std::io::Result<Control> {
        self.framer.push(bytes);
        let control = self.process(w).await?;
        self.flush(w).await?;
        Ok(control)
    }

    async fn process(&mut self, w: &mut Writer<'_>) -> std::io::Result<Control> {
        loop {
            match self.next_input() {
                Input::NeedMore => return Ok(Control::Continue),
                Input::Literal {
                    tag,
                    length,
                    synchronizing,
                    index,
                    command,
                } => self.literal(tag, length, synchronizing, index, command),
                Input::LiteralEnd => {
                    if let Some(done) = self.streaming.take() {
                        self.literals.push(done);
                    }
                }
                Input::Rejected(tag, error) => {
                    self.literals.clear();
                    self.streaming = None;
                    if let Pending::Idle(t) | Pending::Auth(t) =
                        std::mem::replace(&mut self.pending, Pending::None)
                    {
                        self.bad(&t, "expected a single line");
                    }
                    error_response(&mut self.out, tag.as_ref(), &error);
                }
                Input::IdleLine(done) => {
                    if let Pending::Idle(tag) = std::mem::replace(&mut self.pending, Pending::None)
                    {
                        if done {
                            self.ok(&tag, None, "IDLE terminated");
                        } else {
                            self.bad(&tag, "expected DONE");
                        }
                    }
                }
                Input::AuthLine(r) => {
                    if let Pending::Auth(tag) = std::mem::replace(&mut self.pending, Pending::None)
                    {
                        match r {
                            Ok(AuthResponse::Cancel) => self.bad(&tag, "authentication cancelled"),
                            Ok(AuthResponse::Data(b64)) => self.sasl_plain(&tag, &b64).await,
                            Err(_) => self.bad(&tag, "invalid base64 response"),
                        }
                    }
                }
                Input::Command(Err(rejected)) => {
                    self.literals.clear();
                    error_response(&mut self.out, rejected.tag.as_ref(), &rejected.error);
                }
                Input::Command(Ok(cmd)) => {
                    self.throttle().await;
                    if self.account_disabled().await {
                        self.bye(
                            "this account has been disabled, contact your administrator",
                            w,
                        )
                        .await?;
                        return Ok(Control::Close);
                    }
                    let kind = cmd.body.kind();
                    let started = std::time::Instant::now();
                    let control = self.command(cmd, w).await;
                    crate::COMMANDS.record(kind as usize, started.elapsed());
                    let control = control?;
                    self.literals.clear();
                    if control != Control::Continue {
                        return Ok(control);
                    }
                }
            }
            self.flush_if_full(w).await?;
        }
    }

    /// Decides what to do with an announced literal.
    fn literal(
        &mut self,
        tag: Option<Tag>,
        length: u64,
        synchronizing: bool,
        index: u32,
        command: Option<String>,
    ) {
        let is_append = command.as_deref() == Some("APPEND");
        let refuse = |s: &mut Self, status: Status, code: Option<Code>, text: &str| {
            s.framer.reject_literal();
            s.literals.clear();
            s.streaming = None;
            let o = s.wopts();
            write_status(&mut s.out, tag.as_ref(), status, code.as_ref(), text, o);
        };
        if command.as_deref() == Some("SETMETADATA")
            && self.identity.is_some()
            && let Some(max) = self.metadata_literal_too_large(length)
        {
            return refuse(
                self,
                Status::No,
                Some(Code::Metadata(
                    crate::proto::response::MetadataCode::MaxSize(max),
                )),
                "metadata value too large",
            );
        }
        if is_append {
            if self.identity.is_none() {
                return refuse(self, Status::Bad, None, "APPEND needs authentication");
            }
            let held: u64 = self.literals.iter().map(|(_, b)| b.len() as u64).sum();
            if held + length > self.config.max_literal {
                return refuse(
                    self,
                    Status::No,
                    Some(Code::TooBig),
                    "messages exceed the size limit",
                );
            }
            if self.framer.accept_literal(LiteralAction::Stream).is_err() {
                return;
            }
            self.streaming = Some((index, Vec::with_capacity(length.min(1 << 20) as usize)));
        } else if let Err(e) = self.framer.accept_literal(LiteralAction::Buffer) {
            self.literals.clear();
            error_response(&mut self.out, tag.as_ref(), &e);
            return;
        }
        if synchronizing {
            write_continuation(&mut self.out, "Ready for literal data");
        }
    }

    /// Carries out one command.
    async fn command(&mut self, cmd: Command, w: &mut Writer<'_>) -> std::io::Result<Control> {
        let Command { tag, body } = cmd;
        let name = body.name();
        tracing::trace!(peer = %self.peer.client, command = name, "command");
        let selected = matches!(self.state, State::Selected(_));
        let authenticated = self.identity.is_some();
        let needs = match &body {
            CommandBody::Capability
            | CommandBody::Noop
            | CommandBody::Logout
            | CommandBody::Id(_) => 0,
            CommandBody::StartTls
            | CommandBody::Authenticate { .. }
            | CommandBody::Login { .. } => {
                if authenticated {
                    self.bad(&tag, "already authenticated");
                    return Ok(Control::Continue);
                }
                0
            }
            CommandBody::Check
            | CommandBody::Close
            | CommandBody::Unselect
            | CommandBody::Expunge
            | CommandBody::UidExpunge(_)
            | CommandBody::Search(_)
            | CommandBody::Sort(_)
            | CommandBody::Thread(_)
            | CommandBody::Fetch(_)
            | CommandBody::Store(_)
            | CommandBody::Copy { .. }
            | CommandBody::Move { .. }
            | CommandBody::CancelUpdate(_) => 2,
            _ => 1,
        };
        if needs >= 1 && !authenticated {
            self.bad(&tag, &format!("{name} needs authentication"));
            return Ok(Control::Continue);
        }
        if needs == 2 && !selected {
            self.bad(&tag, &format!("{name} needs a selected mailbox"));
            return Ok(Control::Continue);
        }
        match body {
            CommandBody::Capability => {
                let caps = self.capabilities();
                let o = self.wopts();
                crate::proto::response::write_data(
                    &mut self.out,
                    &crate::proto::response::Data::Capability(caps),
                    o,
                );
                self.updates(true).await;
                self.ok(&tag, None, "CAPABILITY completed");
            }
            CommandBody::Noop | CommandBody::Check => {
                // A poll (RFC 3501 §6.1.2) looks at the store even when the mailbox watch has
                // not fired: on a cluster another node's commit reaches the watch only when
                // its notification arrives, and a client polling right after it must see it.
                if let State::Selected(sel) = &mut self.state {
                    sel.dirty = true;
                }
                self.updates(true).await;
                self.ok(&tag, None, &format!("{name} completed"));
            }
            CommandBody::Logout => {
                let o = self.wopts();
                write_status(&mut self.out, None, Status::Bye, None, "logging out", o);
                self.flush(w).await?;
                // The Logout event commits before the tagged OK, as every command's events do:
                // a client told "LOGOUT completed" can rely on the event existing.
                self.end(Disconnect::Graceful).await;
                self.ok(&tag, None, "LOGOUT completed");
                self.flush(w).await?;
                self.state = State::Logout;
                return Ok(Control::Close);
            }
            CommandBody::Id(_) => self.id(&tag),
            CommandBody::StartTls => return Ok(self.starttls(&tag)),
            CommandBody::Login { username, password } => {
                self.login(&tag, &username, &password).await
            }
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } => self.authenticate(&tag, &mechanism, initial_response).await,
            CommandBody::Enable(caps) => self.enable(&tag, &caps),
            CommandBody::Namespace => self.namespace(&tag),
            CommandBody::Select { mailbox, params } => {
                self.select(&tag, mailbox, params, false).await
            }
            CommandBody::Examine { mailbox, params } => {
                self.select(&tag, mailbox, params, true).await
            }
            CommandBody::Create {
                mailbox,
                special_use,
            } => self.create(&tag, mailbox, &special_use).await,
            CommandBody::Delete(m) => self.delete(&tag, m).await,
            CommandBody::Rename { from, to } => self.rename(&tag, from, to).await,
            CommandBody::Subscribe(m) => self.subscribe(&tag, m, true).await,
            CommandBody::Unsubscribe(m) => self.subscribe(&tag, m, false).await,
            CommandBody::List(l) => self.list(&tag, l).await,
            CommandBody::Lsub { reference, pattern } => self.lsub(&tag, &reference, &pattern).await,
            CommandBody::Status { mailbox, items } => self.status(&tag, mailbox, &items).await,
            CommandBody::Append { mailbox, messages } => self.append(&tag, mailbox, messages).await,
            CommandBody::Idle => self.idle(&tag).await,
            CommandBody::GetQuota(root) => self.getquota(&tag, &root).await,
            CommandBody::GetQuotaRoot(m) => self.getquotaroot(&tag, m).await,
            CommandBody::SetQuota { root, limits } => self.setquota(&tag, &root, &limits).await,
            CommandBody::GetMetadata(cmd) => self.getmetadata(&tag, cmd).await,
            CommandBody::SetMetadata { mailbox, entries } => {
                self.setmetadata(&tag, mailbox, entries).await
            }
            CommandBody::Close => self.close(&tag, true).await,
            CommandBody::Unselect => self.close(&tag, false).await,
            CommandBody::Expunge => self.expunge(&tag, None).await,
            CommandBody::UidExpunge(set) => self.expunge(&tag, Some(set)).await,
            CommandBody::Search(s) => self.search(&tag, s).await,
            CommandBody::Sort(s) => self.sort(&tag, s).await,
            CommandBody::Thread(t) => self.thread(&tag, t).await,
            CommandBody::Fetch(f) => self.fetch(&tag, f, w).await?,
            CommandBody::Store(s) => self.store(&tag, s).await,
            CommandBody::Copy { uid, set, mailbox } => {
                self.copy(&tag, uid, &set, mailbox, false).await
            }
            CommandBody::Move { uid, set, mailbox } => {
                self.copy(&tag, uid, &set, mailbox, true).await
            }
            CommandBody::CancelUpdate(tags) => self.cancel_update(&tag, &tags),
            CommandBody::GenUrlAuth(pairs) => self.genurlauth(&tag, pairs).await,
            CommandBody::UrlFetch(args) => self.urlfetch(&tag, args).await,
            CommandBody::ResetKey {
                mailbox,
                mechanisms,
            } => self.resetkey(&tag, mailbox, mechanisms).await,
            CommandBody::Notify(n) => self.notify(&tag, n).await,
            CommandBody::SetAcl {
                mailbox,
                identifier,
                rights,
            } => self.setacl(&tag, mailbox, &identifier, &rights).await,
            CommandBody::DeleteAcl {
                mailbox,
                identifier,
            } => self.deleteacl(&tag, mailbox, &identifier).await,
            CommandBody::GetAcl(m) => self.getacl(&tag, m).await,
            CommandBody::ListRights {
                mailbox,
                identifier,
            } => self.listrights(&tag, mailbox, &identifier).await,
            CommandBody::MyRights(m) => self.myrights(&tag, m).await,
        }
        Ok(Control::Continue)
    }

    /// Ends the session: records Logout (with how and how long) if a user had logged in.
    /// Idempotent; the driver calls it whatever way the connection ended.
    pub async fn end(&mut self, disconnect: Disconnect) {
        if let Some(at) = self.login_at.take() {
            let duration = at.elapsed();
            if let Err(e) = self.backend.logout(&self.ctx, disconnect, duration).await {
                tracing::warn!(error = %e, "could not record Logout");
            }
        }
    }

    /// Whether an operator disabled the account since this session logged in — asked of the
    /// store at most once per [`ACCOUNT_RECHECK`] of activity, so a busy session pays one
    /// clock read per command. A store error keeps the session: it will fail on its own.
    async fn account_disabled(&mut self) -> bool {
        let Some(identity) = &self.identity else {
            return false;
        };
        if self.enabled_at.elapsed() < ACCOUNT_RECHECK {
            return false;
        }
        match self.backend.is_disabled(&identity.user).await {
            Ok(true) => {
                tracing::info!(user = %identity.user, "ending the session of a disabled account");
                true
            }
            Ok(false) | Err(_) => {
                self.enabled_at = Instant::now();
                false
            }
        }
    }

    /// Writes `* BYE text` (server shutting down, timeouts) to the buffer and flushes it.
    pub async fn bye(&mut self, text: &str, w: &mut Writer<'_>) -> std::io::Result<()> {
        let o = self.wopts();
        write_status(&mut self.out, None, Status::Bye, None, text, o);
        self.flush(w).await
    }
}

/// A token bucket of `rate` tokens a second holding at most one second's worth.
///
/// A command takes its token at once, even when that leaves the bucket in debt, and is told
/// how long to wait for the debt to be paid. The next refill counts from the moment of taking,
/// so time a sleep overshoots (timers fire up to a millisecond late) is credited, not lost: a
/// client kept at the limit gets exactly `rate` commands a second.
#[derive(Debug)]
struct RateBucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl RateBucket {
    fn new(rate: u32, now: Instant) -> RateBucket {
        let rate = f64::from(rate.max(1));
        RateBucket {
            rate,
            tokens: rate,
            at: now,
        }
    }

    /// Takes one token at `now`; returns how long the command must wait for it.
    fn take(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate) - 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_database_is_unavailable_and_a_newer_schema_a_server_failure() {
        let (status, code, text) = store_error(&StoreError::Unreachable {
            target: "db.internal:5432/mail".into(),
            reason: "connection refused".into(),
        });
        assert_eq!(status, Status::No);
        assert_eq!(code, Some(Code::Unavailable));
        assert!(
            !text.contains("db.internal"),
            "no internals to clients: {text}"
        );
        let (status, code, text) = store_error(&StoreError::SchemaTooNew { found: 3, known: 1 });
        assert_eq!(status, Status::No);
        assert_eq!(code, Some(Code::ServerBug));
        assert!(!text.contains("version"), "no internals to clients: {text}");
    }

    /// Drives a bucket as a client at the limit does: a command waits as long as it is told,
    /// but every sleep ends `late` after its deadline (a timer's granularity), and the next
    /// command follows at once. Returns the commands run in `secs` seconds.
    fn commands_in(rate: u32, secs: u64, late: Duration) -> u64 {
        let start = Instant::now();
        let end = start + Duration::from_secs(secs);
        let mut bucket = RateBucket::new(rate, start);
        let (mut now, mut n) = (start, 0u64);
        while now < end {
            let wait = bucket.take(now);
            if !wait.is_zero() {
                now += wait + late;
            }
            n += 1;
        }
        n
    }

    #[test]
    fn a_client_at_the_limit_gets_the_configured_rate() {
        // The burst (one second's worth) plus the rate for the rest, whatever the timers'
        // lateness: lost lateness once halved the rate of a client kept at the limit.
        for late in [
            Duration::ZERO,
            Duration::from_micros(300),
            Duration::from_millis(1),
        ] {
            let n = commands_in(1000, 10, late);
            assert!((10_900..=11_010).contains(&n), "{late:?}: {n} commands");
        }
        assert_eq!(commands_in(5, 2, Duration::ZERO), 5 + 10);
    }

    #[test]
    fn an_idle_client_saves_up_one_second_and_no_more() {
        let t0 = Instant::now();
        let mut bucket = RateBucket::new(100, t0);
        let later = t0 + Duration::from_secs(60);
        for _ in 0..100 {
            assert_eq!(bucket.take(later), Duration::ZERO);
        }
        let wait = bucket.take(later);
        assert_eq!(wait, Duration::from_millis(10));
    }
}
