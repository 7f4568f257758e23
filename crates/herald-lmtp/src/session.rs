//! The LMTP delivery session (RFC 2033) as a state machine without I/O.
//!
//! Command syntax comes from `smtp-proto` (Stalwart's sans-I/O SMTP/LMTP parser, STACK §4) and
//! its `DataReceiver` undoes dot-stuffing; what LMTP adds is ours: recipients are resolved as
//! they arrive, and after the DATA terminator every accepted recipient gets its own reply, each
//! matching that recipient's own store commit (message + MessageNew event).
//!
//! The driver feeds raw bytes with [`Session::input`] and carries out the requests the session
//! returns ([`Step::ResolveRecipient`], [`Step::Deliver`]), answering with
//! [`Session::recipient_result`] and [`Session::delivery_result`]. Pipelined commands that arrive
//! while a request is out stay buffered and are processed, in order, once it is answered.

use smtp_proto::Request;
use smtp_proto::request::receiver::DataReceiver;

/// Longest command line accepted (RFC 5321 allows 512; ESMTP parameters need more).
pub const MAX_COMMAND_LINE: usize = 2048;
/// Longest message line (RFC 5322 §2.1.1: 998 octets plus CRLF).
pub const MAX_MESSAGE_LINE: usize = 998;
/// Most recipients of one transaction; RCPTs past it get `452 4.5.3` and the client sends
/// them in another (RFC 5321 §4.5.3.1.10; a server must take at least 100). Every recipient's
/// delivery commits in one store transaction, so this bounds that transaction too.
pub const MAX_RECIPIENTS: usize = 1000;

/// Listener settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The server's name, in the greeting and LHLO reply.
    pub hostname: String,
    /// Largest message accepted, in octets (advertised as SIZE).
    pub max_message_size: u64,
    /// STARTTLS can be offered.
    pub starttls_available: bool,
}

/// A recipient the driver resolved to a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The address as given in RCPT TO.
    pub address: String,
    /// The account it delivers to.
    pub account: String,
    /// The mailbox (`detail` of `user+detail@domain` when that mailbox exists, else INBOX).
    pub mailbox: String,
    /// The RCPT TO command line as received, with ESMTP parameters, without CRLF: it becomes
    /// part of the MessageNew event's `envelope` (RFC 5423 §5).
    pub rcpt_line: String,
}

/// Why a recipient was refused at RCPT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientError {
    /// No such account (550 5.1.1).
    Unknown,
    /// Over quota now (452 4.2.2), or the message can never fit (552 5.2.2).
    OverQuota {
        /// True when even an empty mailbox could not hold the message.
        permanent: bool,
    },
    /// Temporary failure (451 4.3.0).
    Temporary(String),
}

/// The result of one recipient's delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryError {
    /// Over quota (452 4.2.2), or the message can never fit (552 5.2.2).
    OverQuota {
        /// True when even an empty mailbox could not hold the message.
        permanent: bool,
    },
    /// The recipient no longer exists (550 5.1.1).
    Unknown,
    /// Temporary failure (451 4.3.0).
    Temporary(String),
}

/// The kinds of command, for metrics: the index of a command's counter and latency histogram
/// in [`crate::COMMANDS`]. Commands are counted as the session reads them; the time of RCPT
/// (looking the recipient up) and DATA (from the final dot to the last reply: storing the
/// message and committing every recipient) is recorded by the driver, which does that work.
/// The others are answered in-line in microseconds and only counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    /// `LHLO`
    Lhlo,
    /// `EHLO` or `HELO` (refused: this is LMTP)
    Ehlo,
    /// `MAIL`
    Mail,
    /// `RCPT`
    Rcpt,
    /// `DATA`
    Data,
    /// `BDAT` (refused)
    Bdat,
    /// `RSET`
    Rset,
    /// `NOOP`
    Noop,
    /// `QUIT`
    Quit,
    /// `VRFY`
    Vrfy,
    /// `STARTTLS`
    StartTls,
    /// Anything else the grammar knows (AUTH, EXPN, HELP…), refused.
    Other,
}

impl CommandKind {
    /// Every kind's name, indexed by the kind.
    pub const NAMES: [&'static str; 12] = [
        "LHLO", "EHLO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "QUIT", "VRFY", "STARTTLS",
        "OTHER",
    ];

    /// The kind of a parsed request.
    pub fn of<T>(request: &Request<T>) -> CommandKind {
        match request {
            Request::Lhlo { .. } => CommandKind::Lhlo,
            Request::Ehlo { .. } | Request::Helo { .. } => CommandKind::Ehlo,
            Request::Mail { .. } => CommandKind::Mail,
            Request::Rcpt { .. } => CommandKind::Rcpt,
            Request::Data => CommandKind::Data,
            Request::Bdat { .. } => CommandKind::Bdat,
            Request::Rset => CommandKind::Rset,
            Request::Noop { .. } => CommandKind::Noop,
            Request::Quit => CommandKind::Quit,
            Request::Vrfy { .. } => CommandKind::Vrfy,
            Request::StartTls => CommandKind::StartTls,
            _ => CommandKind::Other,
        }
    }

    /// The command's name.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send these bytes.
    Reply(Vec<u8>),
    /// Resolve an RCPT TO address; answer with [`Session::recipient_result`].
    ResolveRecipient {
        /// The address (`user`, `user@domain`, `user+detail@domain`).
        address: String,
        /// Local part before any `+`.
        user: String,
        /// The part after `+`, if any.
        detail: Option<String>,
        /// SIZE declared at MAIL FROM, for an early quota check.
        size: Option<u64>,
        /// The RCPT TO line as received (without CRLF).
        rcpt_line: String,
    },
    /// Deliver `message` to every recipient (one store commit each, or one for all with per-
    /// recipient outcomes); answer with [`Session::delivery_result`] in recipient order.
    Deliver(Delivery),
    /// Upgrade to TLS now (the 220 reply was sent).
    StartTls,
    /// Close the connection after the replies before it.
    Close,
}

/// A message ready for the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The reverse-path (empty for a bounce, `<>`).
    pub sender: String,
    /// The MAIL FROM line as received, without CRLF.
    pub mail_from_line: String,
    /// The client's LHLO name.
    pub lhlo: String,
    /// The accepted recipients, in RCPT order.
    pub recipients: Vec<Recipient>,
    /// The message with CRLF line endings, dot-stuffing undone, no trace headers yet.
    pub message: Vec<u8>,
}

impl Delivery {
    /// The `envelope` parameter for one recipient (RFC 5423 §5): the MAIL FROM line and that
    /// recipient's RCPT TO line, each with CRLF.
    pub fn envelope(&self, recipient: &Recipient) -> String {
        format!("{}\r\n{}\r\n", self.mail_from_line, recipient.rcpt_line)
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    /// Before LHLO.
    Greeted,
    /// After LHLO, no transaction.
    Ready,
    /// MAIL given; collecting recipients.
    Mail,
    /// Receiving message data.
    Data,
    /// A request is with the driver.
    Waiting,
    /// QUIT or a fatal error.
    Closed,
}

/// Why the message data were refused as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataFault {
    TooBig,
    LineTooLong,
}

/// One LMTP session.
pub struct Session {
    config: Config,
    phase: Phase,
    input: Vec<u8>,
    lhlo: String,
    sender: String,
    mail_from_line: String,
    declared_size: Option<u64>,
    recipients: Vec<Recipient>,
    data: Vec<u8>,
    receiver: Option<DataReceiver>,
    fault: Option<DataFault>,
    tls: bool,
    /// Skipping the rest of an over-long command line.
    discarding: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("phase", &self.phase)
            .field("recipients", &self.recipients.len())
            .field("data", &self.data.len())
            .finish()
    }
}

fn reply(code: u16, status: &str, text: &str) -> Step {
    Step::Reply(format!("{code} {status} {text}\r\n").into_bytes())
}

impl Session {
    /// A new session; send [`Session::greeting`] first.
    pub fn new(config: Config, tls: bool) -> Session {
        Session {
            config,
            phase: Phase::Greeted,
            input: Vec::new(),
            lhlo: String::new(),
            sender: String::new(),
            mail_from_line: String::new(),
            declared_size: None,
            recipients: Vec::new(),
            data: Vec::new(),
            receiver: None,
            fault: None,
            tls,
            discarding: false,
        }
    }

    /// The 220 greeting.
    pub fn greeting(&self) -> Vec<u8> {
        format!("220 {} Herald LMTP ready\r\n", self.config.hostname).into_bytes()
    }

    /// True once the session has ended.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// True while the message data are being received (a drop now delivers nothing).
    pub fn in_data(&self) -> bool {
        self.phase == Phase::Data
    }

    fn reset_transaction(&mut self) {
        self.sender.clear();
        self.mail_from_line.clear();
        self.declared_size = None;
        self.recipients.clear();
        self.data = Vec::new();
        self.receiver = None;
        self.fault = None;
    }

    /// Feeds received bytes; returns what to do. While a request is with the driver, the bytes
    /// are buffered.
    pub fn input(&mut self, bytes: &[u8]) -> Vec<Step> {
        self.input.extend_from_slice(bytes);
        self.process()
    }

    fn process(&mut self) -> Vec<Step> {
        let mut steps = Vec::new();
        loop {
            match self.phase {
                Phase::Waiting | Phase::Closed => return steps,
                Phase::Data => {
                    if !self.ingest_data(&mut steps) {
                        return steps;
                    }
                }
                _ => {
                    let Some(end) = self.input.iter().position(|&b| b == b'\n') else {
                        if self.input.len() > MAX_COMMAND_LINE {
                            // Drop what we have and the rest of the line as it arrives: its tail
                            // must not be read as a command of its own.
                            self.input.clear();
                            if !self.discarding {
                                self.discarding = true;
                                steps.push(reply(500, "5.5.2", "line too long"));
                            }
                        }
                        return steps;
                    };
                    let line: Vec<u8> = self.input.drain(..=end).collect();
                    if self.discarding {
                        self.discarding = false;
                        continue;
                    }
                    if line.len() > MAX_COMMAND_LINE {
                        steps.push(reply(500, "5.5.2", "line too long"));
                        continue;
                    }
                    self.command(&line, &mut steps);
                }
            }
        }
    }

    fn command(&mut self, line: &[u8], steps: &mut Vec<Step>) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
            // A bare CR (or other control) would end up in the event's `envelope`, where a
            // consumer splitting on line ends sees a command the client never gave.
            steps.push(reply(
                501,
                "5.5.2",
                "control characters in the command line",
            ));
            return;
        }
        let raw = canonical_verb(text);
        let qualified = qualify_bare_recipient(line, &self.config.hostname);
        let line = qualified.as_deref().unwrap_or(line);
        let request = match Request::parse(&mut line.iter()) {
            Ok(r) => r.into_owned(),
            Err(smtp_proto::Error::UnknownCommand) => {
                steps.push(reply(500, "5.5.1", "command not recognized"));
                return;
            }
            Err(smtp_proto::Error::InvalidSenderAddress) => {
                steps.push(reply(501, "5.1.7", "bad sender address syntax"));
                return;
            }
            Err(smtp_proto::Error::InvalidRecipientAddress) => {
                steps.push(reply(501, "5.1.3", "bad recipient address syntax"));
                return;
            }
            Err(smtp_proto::Error::SyntaxError { syntax }) => {
                steps.push(reply(501, "5.5.4", &format!("syntax: {syntax}")));
                return;
            }
            Err(smtp_proto::Error::InvalidParameter { param }) => {
                steps.push(reply(501, "5.5.4", &format!("invalid parameter {param}")));
                return;
            }
            Err(smtp_proto::Error::UnsupportedParameter { param }) => {
                steps.push(reply(
                    555,
                    "5.5.4",
                    &format!("unsupported parameter {param}"),
                ));
                return;
            }
            Err(_) => {
                steps.push(reply(501, "5.5.4", "syntax error"));
                return;
            }
        };
        crate::COMMANDS.count(CommandKind::of(&request) as usize);
        match request {
            Request::Lhlo { host } => {
                self.reset_transaction();
                self.lhlo = host;
                self.phase = Phase::Ready;
                let mut text = format!(
                    "250-{}\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n",
                    self.config.hostname
                );
                if self.config.starttls_available && !self.tls {
                    text.push_str("250-STARTTLS\r\n");
                }
                text.push_str(&format!("250 SIZE {}\r\n", self.config.max_message_size));
                steps.push(Step::Reply(text.into_bytes()));
            }
            Request::Ehlo { .. } | Request::Helo { .. } => {
                steps.push(reply(500, "5.5.1", "this is LMTP: use LHLO"));
            }
            Request::StartTls => {
                if self.tls || !self.config.starttls_available {
                    steps.push(reply(454, "4.7.0", "TLS not available"));
                } else if self.phase != Phase::Ready && self.phase != Phase::Greeted {
                    steps.push(reply(503, "5.5.1", "STARTTLS only outside a transaction"));
                } else {
                    self.tls = true;
                    self.phase = Phase::Greeted;
                    // Anything pipelined after STARTTLS must not be read as plaintext.
                    self.input.clear();
                    steps.push(reply(220, "2.0.0", "ready to start TLS"));
                    steps.push(Step::StartTls);
                }
            }
            Request::Mail { from } => {
                if self.phase == Phase::Greeted {
                    steps.push(reply(503, "5.5.1", "LHLO first"));
                } else if self.phase == Phase::Mail {
                    steps.push(reply(503, "5.5.1", "nested MAIL command"));
                } else if from.size as u64 > self.config.max_message_size {
                    steps.push(reply(552, "5.3.4", "message exceeds the size limit"));
                } else {
                    self.reset_transaction();
                    self.sender = from.address;
                    self.declared_size = (from.size > 0).then_some(from.size as u64);
                    self.mail_from_line = raw;
                    self.phase = Phase::Mail;
                    steps.push(reply(250, "2.1.0", "sender ok"));
                }
            }
            Request::Rcpt { to } => {
                if self.phase != Phase::Mail {
                    steps.push(reply(503, "5.5.1", "MAIL first"));
                    return;
                }
                if self.recipients.len() >= MAX_RECIPIENTS {
                    steps.push(reply(452, "4.5.3", "too many recipients"));
                    return;
                }
                let address = to.address;
                let local = address
                    .rsplit_once('@')
                    .map_or(address.as_str(), |(l, _)| l);
                let (user, detail) = match local.split_once('+') {
                    Some((u, d)) => (u.to_owned(), (!d.is_empty()).then(|| d.to_owned())),
                    None => (local.to_owned(), None),
                };
                if user.is_empty() {
                    steps.push(reply(550, "5.1.1", "no such user"));
                    return;
                }
                self.phase = Phase::Waiting;
                steps.push(Step::ResolveRecipient {
                    address: address.clone(),
                    user,
                    detail,
                    size: self.declared_size,
                    rcpt_line: raw,
                });
            }
            Request::Data => {
                if self.phase != Phase::Mail {
                    steps.push(reply(503, "5.5.1", "MAIL first"));
                } else if self.recipients.is_empty() {
                    steps.push(reply(503, "5.5.1", "no valid recipients"));
                } else {
                    self.phase = Phase::Data;
                    self.receiver = Some(DataReceiver::new());
                    steps.push(Step::Reply(
                        b"354 end data with <CR><LF>.<CR><LF>\r\n".to_vec(),
                    ));
                }
            }
            Request::Bdat { .. } => steps.push(reply(502, "5.5.1", "CHUNKING not offered")),
            Request::Rset => {
                self.reset_transaction();
                if self.phase != Phase::Greeted {
                    self.phase = Phase::Ready;
                }
                steps.push(reply(250, "2.0.0", "reset"));
            }
            Request::Noop { .. } => steps.push(reply(250, "2.0.0", "ok")),
            Request::Quit => {
                self.phase = Phase::Closed;
                steps.push(reply(221, "2.0.0", "bye"));
                steps.push(Step::Close);
            }
            Request::Vrfy { .. } => steps.push(reply(252, "2.5.0", "cannot verify")),
            _ => steps.push(reply(502, "5.5.1", "command not implemented")),
        }
    }

    /// Feeds buffered input to the data receiver; true when the message ended.
    fn ingest_data(&mut self, steps: &mut Vec<Step>) -> bool {
        let Some(receiver) = self.receiver.as_mut() else {
            return false;
        };
        let input = std::mem::take(&mut self.input);
        let mut iter = input.iter();
        let before = self.data.len();
        let done = receiver.ingest(&mut iter, &mut self.data);
        self.input = iter.as_slice().to_vec();
        if self.data.len() as u64 > self.config.max_message_size {
            // Keep reading to the terminator, but stop keeping bytes: memory stays bounded.
            self.fault = Some(DataFault::TooBig);
            self.data
                .truncate(before.min(self.config.max_message_size as usize));
        }
        if !done {
            return false;
        }
        self.receiver = None;
        let message = normalise_line_endings(std::mem::take(&mut self.data));
        if self.fault.is_none() && has_long_line(&message) {
            self.fault = Some(DataFault::LineTooLong);
        }
        let recipients = std::mem::take(&mut self.recipients);
        match self.fault.take() {
            Some(fault) => {
                let (code, status, text) = match fault {
                    DataFault::TooBig => (552, "5.3.4", "message exceeds the size limit"),
                    DataFault::LineTooLong => (554, "5.6.0", "line longer than 998 octets"),
                };
                for _ in &recipients {
                    steps.push(reply(code, status, text));
                }
                self.reset_transaction();
                self.phase = Phase::Ready;
            }
            None => {
                self.phase = Phase::Waiting;
                steps.push(Step::Deliver(Delivery {
                    sender: self.sender.clone(),
                    mail_from_line: self.mail_from_line.clone(),
                    lhlo: self.lhlo.clone(),
                    recipients,
                    message,
                }));
            }
        }
        true
    }

    /// The driver's answer to [`Step::ResolveRecipient`].
    pub fn recipient_result(&mut self, rcpt: Result<Recipient, RecipientError>) -> Vec<Step> {
        self.phase = Phase::Mail;
        let mut steps = vec![match rcpt {
            Ok(r) => {
                self.recipients.push(r);
                reply(250, "2.1.5", "recipient ok")
            }
            Err(RecipientError::Unknown) => reply(550, "5.1.1", "no such user"),
            Err(RecipientError::OverQuota { permanent: false }) => {
                reply(452, "4.2.2", "mailbox over quota")
            }
            Err(RecipientError::OverQuota { permanent: true }) => {
                reply(552, "5.2.2", "message larger than the mailbox quota")
            }
            Err(RecipientError::Temporary(why)) => reply(451, "4.3.0", &why),
        }];
        steps.extend(self.process());
        steps
    }

    /// The driver's answer to [`Step::Deliver`]: one result per recipient, in order.
    pub fn delivery_result(&mut self, results: Vec<Result<(), DeliveryError>>) -> Vec<Step> {
        let mut steps: Vec<Step> = results
            .into_iter()
            .map(|r| match r {
                Ok(()) => reply(250, "2.0.0", "delivered"),
                Err(DeliveryError::OverQuota { permanent: false }) => {
                    reply(452, "4.2.2", "mailbox over quota")
                }
                Err(DeliveryError::OverQuota { permanent: true }) => {
                    reply(552, "5.2.2", "message larger than the mailbox quota")
                }
                Err(DeliveryError::Unknown) => reply(550, "5.1.1", "no such user"),
                Err(DeliveryError::Temporary(why)) => reply(451, "4.3.0", &why),
            })
            .collect();
        self.reset_transaction();
        self.phase = Phase::Ready;
        steps.extend(self.process());
        steps
    }
}

/// `RCPT TO:<alice>` names a local account without a domain (LMTP, RFC 2033, delivers to local
/// mailboxes). smtp-proto's address grammar wants a domain, so such a path is parsed as
/// `<alice@hostname>`; the envelope keeps the line as the client sent it.
fn qualify_bare_recipient(line: &[u8], hostname: &str) -> Option<Vec<u8>> {
    let head = line.get(..8)?;
    if !head.eq_ignore_ascii_case(b"RCPT TO:") {
        return None;
    }
    let open = line.iter().position(|&b| b == b'<')?;
    let close = open + line[open..].iter().position(|&b| b == b'>')?;
    let path = &line[open + 1..close];
    if path.is_empty() || path.contains(&b'@') {
        return None;
    }
    let mut out = Vec::with_capacity(line.len() + hostname.len() + 1);
    out.extend_from_slice(&line[..close]);
    out.push(b'@');
    out.extend_from_slice(hostname.as_bytes());
    out.extend_from_slice(&line[close..]);
    Some(out)
}

/// `mail from:<a@b>` → `MAIL FROM:<a@b>`: the `envelope` parameter carries the command lines
/// with the verb in its canonical spelling; address and parameters stay exactly as sent.
fn canonical_verb(line: &str) -> String {
    for verb in ["MAIL FROM:", "RCPT TO:"] {
        if line
            .get(..verb.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(verb))
        {
            return format!("{verb}{}", &line[verb.len()..]);
        }
    }
    line.to_owned()
}

/// Turns bare LF into CRLF (some MTAs hand over LF-only data); CRLF stays as it is.
pub fn normalise_line_endings(message: Vec<u8>) -> Vec<u8> {
    let bare = message
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' && (i == 0 || message[i - 1] != b'\r'))
        .count();
    if bare == 0 {
        return message;
    }
    let mut out = Vec::with_capacity(message.len() + bare);
    for (i, &b) in message.iter().enumerate() {
        if b == b'\n' && (i == 0 || message[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

fn has_long_line(message: &[u8]) -> bool {
    message
        .split(|&b| b == b'\n')
        .any(|l| l.strip_suffix(b"\r").unwrap_or(l).len() > MAX_MESSAGE_LINE)
}

/// The `Return-Path:` and `Received:` headers Herald prepends (RFC 5321 §4.4). The same bytes for
/// every recipient — no `for <rcpt>` clause — so a message to many users is stored once.
pub fn trace_headers(
    delivery: &Delivery,
    client: Option<std::net::IpAddr>,
    hostname: &str,
    id: &str,
    date_rfc5322: &str,
) -> String {
    let from = match client {
        Some(ip) => format!("{} ([{ip}])", delivery.lhlo),
        None => delivery.lhlo.clone(),
    };
    format!(
        "Return-Path: <{}>\r\nReceived: from {from}\r\n\tby {hostname} (Herald) with LMTP id {id};\r\n\t{date_rfc5322}\r\n",
        delivery.sender
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            hostname: "mail.example.org".into(),
            max_message_size: 1000,
            starttls_available: false,
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

    fn resolve(s: &mut Session, steps: Vec<Step>) -> Vec<Step> {
        let mut out = Vec::new();
        let mut pending = steps;
        loop {
            let mut next = Vec::new();
            for step in pending {
                match step {
                    Step::ResolveRecipient {
                        address,
                        user,
                        detail,
                        rcpt_line,
                        ..
                    } => {
                        let r = if user == "nobody" {
                            Err(RecipientError::Unknown)
                        } else if user == "full" {
                            Err(RecipientError::OverQuota { permanent: false })
                        } else {
                            Ok(Recipient {
                                address,
                                account: user,
                                mailbox: detail.unwrap_or_else(|| "INBOX".into()),
                                rcpt_line,
                            })
                        };
                        next.extend(s.recipient_result(r));
                    }
                    other => out.push(other),
                }
            }
            if next.is_empty() {
                return out;
            }
            pending = next;
        }
    }

    #[test]
    fn pipelined_transaction_with_per_recipient_replies() {
        let mut s = Session::new(config(), false);
        let steps = s.input(b"LHLO mx.example.net\r\n");
        assert!(text(&steps).contains("250-PIPELINING\r\n"));
        assert!(text(&steps).ends_with("250 SIZE 1000\r\n"));
        let steps = s.input(
            b"MAIL FROM:<bob@example.net> SIZE=20\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<nobody@example.org>\r\nRCPT TO:<carol+Lists@example.org> NOTIFY=NEVER\r\nDATA\r\n",
        );
        let steps = resolve(&mut s, steps);
        assert_eq!(
            text(&steps),
            "250 2.1.0 sender ok\r\n250 2.1.5 recipient ok\r\n550 5.1.1 no such user\r\n250 2.1.5 recipient ok\r\n354 end data with <CR><LF>.<CR><LF>\r\n"
        );
        let steps = s.input(b"Subject: hi\r\n\r\n..dotted\nbare LF\r\n.\r\nQUIT\r\n");
        let [Step::Deliver(d)] = steps.as_slice() else {
            panic!("{steps:?}")
        };
        assert_eq!(d.message, b"Subject: hi\r\n\r\n.dotted\r\nbare LF\r\n");
        assert_eq!(d.recipients.len(), 2);
        assert_eq!(d.recipients[1].mailbox, "Lists");
        assert_eq!(
            d.envelope(&d.recipients[1]),
            "MAIL FROM:<bob@example.net> SIZE=20\r\nRCPT TO:<carol+Lists@example.org> NOTIFY=NEVER\r\n"
        );
        let steps = s.delivery_result(vec![
            Ok(()),
            Err(DeliveryError::OverQuota { permanent: false }),
        ]);
        // One reply per accepted recipient, then the pipelined QUIT.
        assert_eq!(
            text(&steps),
            "250 2.0.0 delivered\r\n452 4.2.2 mailbox over quota\r\n221 2.0.0 bye\r\n"
        );
        assert_eq!(steps.last(), Some(&Step::Close));
    }

    #[test]
    fn recipients_past_the_limit_get_452_and_the_accepted_ones_their_delivery() {
        let mut s = Session::new(config(), false);
        s.input(b"LHLO x\r\nMAIL FROM:<a@b>\r\n");
        let mut replies = String::new();
        for i in 0..=MAX_RECIPIENTS {
            let steps = s.input(format!("RCPT TO:<u{i}@example.org>\r\n").as_bytes());
            replies.push_str(&text(&resolve(&mut s, steps)));
        }
        assert_eq!(
            replies.matches("250 2.1.5 recipient ok\r\n").count(),
            MAX_RECIPIENTS
        );
        assert!(
            replies.ends_with("452 4.5.3 too many recipients\r\n"),
            "{}",
            &replies[replies.len() - 60..]
        );
        let data = s.input(b"DATA\r\nx\r\n.\r\n");
        let steps = resolve(&mut s, data);
        let Some(Step::Deliver(d)) = steps.iter().find(|s| matches!(s, Step::Deliver(_))) else {
            panic!("{steps:?}")
        };
        assert_eq!(d.recipients.len(), MAX_RECIPIENTS);
        assert_eq!(d.recipients[0].account, "u0");
    }

    #[test]
    fn bare_user_and_detail_recipients() {
        let mut s = Session::new(config(), false);
        let steps =
            s.input(b"LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice>\r\nRCPT TO:<bob+Work>\r\n");
        let requested: Vec<(String, Option<String>)> = steps
            .iter()
            .filter_map(|s| match s {
                Step::ResolveRecipient { user, detail, .. } => Some((user.clone(), detail.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(requested, [("alice".to_owned(), None)]);
        let mut steps = resolve(&mut s, steps);
        let data = s.input(b"DATA\r\nx\r\n.\r\n");
        steps.extend(resolve(&mut s, data));
        let Some(Step::Deliver(d)) = steps.iter().find(|s| matches!(s, Step::Deliver(_))) else {
            panic!("{steps:?}")
        };
        assert_eq!(d.recipients[0].account, "alice");
        assert_eq!(
            (
                d.recipients[1].account.as_str(),
                d.recipients[1].mailbox.as_str()
            ),
            ("bob", "Work")
        );
        // The envelope keeps the path as the client sent it.
        assert_eq!(d.recipients[0].rcpt_line, "RCPT TO:<alice>");
    }

    #[test]
    fn an_over_long_line_across_reads_gets_one_reply_and_its_tail_is_not_a_command() {
        let mut s = Session::new(config(), false);
        s.input(b"LHLO x\r\n");
        let mut long = b"NOOP ".to_vec();
        long.extend(std::iter::repeat_n(b'x', MAX_COMMAND_LINE + 10));
        assert_eq!(text(&s.input(&long)), "500 5.5.2 line too long\r\n");
        // The line goes on in the next reads; its tail looks like a command.
        assert_eq!(text(&s.input(&[b'y'; 5000])), "");
        assert_eq!(
            text(&s.input(b"QUIT\r\n")),
            "",
            "the tail of the long line is dropped"
        );
        assert_eq!(text(&s.input(b"NOOP\r\n")), "250 2.0.0 ok\r\n");
    }

    #[test]
    fn ordering_rules() {
        let mut s = Session::new(config(), false);
        assert_eq!(
            text(&s.input(b"MAIL FROM:<a@b>\r\n")),
            "503 5.5.1 LHLO first\r\n"
        );
        assert_eq!(
            text(&s.input(b"EHLO x\r\n")),
            "500 5.5.1 this is LMTP: use LHLO\r\n"
        );
        s.input(b"LHLO x\r\n");
        assert_eq!(
            text(&s.input(b"RCPT TO:<a@b>\r\n")),
            "503 5.5.1 MAIL first\r\n"
        );
        assert_eq!(text(&s.input(b"DATA\r\n")), "503 5.5.1 MAIL first\r\n");
        s.input(b"MAIL FROM:<>\r\n");
        assert_eq!(
            text(&s.input(b"DATA\r\n")),
            "503 5.5.1 no valid recipients\r\n"
        );
        assert_eq!(
            text(&s.input(b"MAIL FROM:<a@b>\r\n")),
            "503 5.5.1 nested MAIL command\r\n"
        );
        assert_eq!(text(&s.input(b"RSET\r\n")), "250 2.0.0 reset\r\n");
        assert_eq!(
            text(&s.input(b"BOGUS\r\n")),
            "500 5.5.1 command not recognized\r\n"
        );
    }

    #[test]
    fn size_limits() {
        let mut s = Session::new(config(), false);
        s.input(b"LHLO x\r\n");
        assert_eq!(
            text(&s.input(b"MAIL FROM:<a@b> SIZE=5000\r\n")),
            "552 5.3.4 message exceeds the size limit\r\n"
        );
        let steps = s.input(b"MAIL FROM:<a@b>\r\nRCPT TO:<u1@x>\r\nRCPT TO:<u2@x>\r\nDATA\r\n");
        resolve(&mut s, steps);
        let mut big = vec![b'x'; 900];
        big.extend_from_slice(b"\r\n");
        for _ in 0..5 {
            assert!(s.input(&big).is_empty());
        }
        let steps = s.input(b".\r\n");
        assert_eq!(
            text(&steps),
            "552 5.3.4 message exceeds the size limit\r\n552 5.3.4 message exceeds the size limit\r\n"
        );
        assert!(!s.in_data());
    }

    #[test]
    fn long_lines_are_refused() {
        let mut s = Session::new(
            Config {
                max_message_size: 10_000,
                ..config()
            },
            false,
        );
        let steps = s.input(b"LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@x>\r\nDATA\r\n");
        resolve(&mut s, steps);
        let mut msg = vec![b'y'; 999];
        msg.extend_from_slice(b"\r\n.\r\n");
        assert_eq!(
            text(&s.input(&msg)),
            "554 5.6.0 line longer than 998 octets\r\n"
        );
    }

    #[test]
    fn over_quota_and_unknown_at_rcpt() {
        let mut s = Session::new(config(), false);
        let steps = s.input(b"LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<full@x>\r\nRCPT TO:<@x>\r\n");
        assert_eq!(
            text(&resolve(&mut s, steps)),
            "250-mail.example.org\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 SIZE 1000\r\n250 2.1.0 sender ok\r\n452 4.2.2 mailbox over quota\r\n501 5.1.3 bad recipient address syntax\r\n"
        );
    }

    #[test]
    fn a_dropped_connection_mid_data_delivers_nothing() {
        let mut s = Session::new(config(), false);
        let steps = s.input(b"LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@x>\r\nDATA\r\nSubject: half");
        let steps = resolve(&mut s, steps);
        assert!(!steps.iter().any(|s| matches!(s, Step::Deliver(_))));
        assert!(s.in_data());
    }

    #[test]
    fn trace_headers_are_the_same_for_every_recipient() {
        let d = Delivery {
            sender: "bob@example.net".into(),
            mail_from_line: "MAIL FROM:<bob@example.net>".into(),
            lhlo: "mx.example.net".into(),
            recipients: vec![],
            message: vec![],
        };
        let h = trace_headers(
            &d,
            Some("127.0.0.1".parse().unwrap()),
            "mail.example.org",
            "abc",
            "Tue, 24 Nov 2026 10:00:00 +0000",
        );
        assert_eq!(
            h,
            "Return-Path: <bob@example.net>\r\nReceived: from mx.example.net ([127.0.0.1])\r\n\tby mail.example.org (Herald) with LMTP id abc;\r\n\tTue, 24 Nov 2026 10:00:00 +0000\r\n"
        );
    }

    #[test]
    fn control_characters_in_a_command_are_refused() {
        let mut s = Session::new(config(), false);
        let replies = text(
            &s.input(b"LHLO x\r\nMAIL FROM:<a@b>\rRCPT TO:<evil@x>\r\nMAIL FROM:<a@b>\x1b[2J\r\n"),
        );
        assert_eq!(
            replies
                .matches("501 5.5.2 control characters in the command line")
                .count(),
            2,
            "{replies}"
        );
        assert!(!replies.contains("250 2.1.0"), "{replies}");
    }

    #[test]
    fn envelope_lines_have_canonical_verbs() {
        assert_eq!(
            canonical_verb("mail FROM:<a@b> SIZE=9"),
            "MAIL FROM:<a@b> SIZE=9"
        );
        assert_eq!(canonical_verb("Rcpt to:<C@d>"), "RCPT TO:<C@d>");
        assert_eq!(canonical_verb("DATA"), "DATA");
    }

    #[test]
    fn line_endings() {
        assert_eq!(
            normalise_line_endings(b"a\nb\r\nc\n".to_vec()),
            b"a\r\nb\r\nc\r\n"
        );
        assert_eq!(normalise_line_endings(b"\n".to_vec()), b"\r\n");
    }
}
