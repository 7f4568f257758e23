//! `herald import imap`: a whole account on another IMAP server as a [`Source`].
//!
//! Every mailbox LIST returns (except `\Noselect` ones) is imported, named without the personal
//! namespace's prefix (`INBOX.` on Courier and Cyrus) and with `/` as the separator. Its
//! UIDVALIDITY and UIDNEXT come from STATUS; it is EXAMINEd (read-only, so nothing on the
//! source changes and `\Recent` is left alone); the positions come from `UID FETCH 1:* (UID
//! RFC822.SIZE)` and the messages from `UID FETCH <set> (UID FLAGS INTERNALDATE BODY.PEEK[])`,
//! one batch per request. The resume key is the source UID.
//!
//! The client is written here, over tokio, rather than taken from a crate: the shared stack
//! list vets no IMAP *client* (`async-imap` and its `imap-proto` parser are not on it), and
//! the part of the protocol an importer needs — LOGIN, LIST, EXAMINE, UID FETCH, LOGOUT, with
//! literals in both directions and STARTTLS — is a few hundred lines. Responses are read as a
//! line plus the literals it announces, then parsed into atoms, strings and lists; every line
//! and literal has a size limit, and every read a deadline.

use super::import::{self, Position, Source, SourceMailbox};
use crate::cli::{ImapImportArgs, ImapSecurity};
use anyhow::{Context as _, bail};
use herald_store::{ImportMessage, SpecialUse};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, BufReader,
};
use tokio::net::TcpStream;

/// Longest response line (a LIST or FETCH line without its literals).
const MAX_LINE: usize = 1 << 20;
/// Largest literal (one message).
const MAX_LITERAL: usize = 256 << 20;
/// Longest wait for the server's next bytes.
const READ_TIMEOUT: Duration = Duration::from_secs(300);

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A value in a response.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Atom(String),
    Str(Vec<u8>),
    Nil,
    List(Vec<Tok>),
}

impl Tok {
    fn text(&self) -> Option<String> {
        match self {
            Tok::Atom(a) => Some(a.clone()),
            Tok::Str(s) => Some(String::from_utf8_lossy(s).into_owned()),
            _ => None,
        }
    }
}

/// One response: its line (literals replaced by their `{n}` marks) and the literals.
#[derive(Debug, Default)]
struct Response {
    line: Vec<u8>,
    literals: VecDeque<Vec<u8>>,
}

impl Response {
    /// The tokens of the line, literals in place of their marks.
    fn tokens(&mut self) -> anyhow::Result<Vec<Tok>> {
        let mut p = Parser {
            s: &self.line,
            i: 0,
            literals: &mut self.literals,
        };
        p.list_items(None)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.line).into_owned()
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    literals: &'a mut VecDeque<Vec<u8>>,
}

impl Parser<'_> {
    fn list_items(&mut self, close: Option<u8>) -> anyhow::Result<Vec<Tok>> {
        let mut out = Vec::new();
        loop {
            while self.s.get(self.i) == Some(&b' ') {
                self.i += 1;
            }
            match self.s.get(self.i) {
                None if close.is_none() => return Ok(out),
                None => bail!("unterminated list"),
                Some(&c) if Some(c) == close => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'(') => {
                    self.i += 1;
                    out.push(Tok::List(self.list_items(Some(b')'))?));
                }
                Some(b'"') => out.push(Tok::Str(self.quoted()?)),
                Some(b'{') => out.push(Tok::Str(self.literal()?)),
                Some(_) => {
                    let a = self.atom();
                    if a.eq_ignore_ascii_case("NIL") {
                        out.push(Tok::Nil);
                    } else {
                        out.push(Tok::Atom(a));
                    }
                }
            }
        }
    }

    fn quoted(&mut self) -> anyhow::Result<Vec<u8>> {
        self.i += 1;
        let mut out = Vec::new();
        while let Some(&c) = self.s.get(self.i) {
            self.i += 1;
            match c {
                b'"' => return Ok(out),
                b'\\' => {
                    if let Some(&n) = self.s.get(self.i) {
                        out.push(n);
                        self.i += 1;
                    }
                }
                _ => out.push(c),
            }
        }
        bail!("unterminated quoted string")
    }

    fn literal(&mut self) -> anyhow::Result<Vec<u8>> {
        let end = self.s[self.i..]
            .iter()
            .position(|&b| b == b'}')
            .context("unterminated literal mark")?;
        self.i += end + 1;
        self.literals
            .pop_front()
            .context("a literal mark without its literal")
    }

    /// An atom; `[...]` sections (`BODY[]`, `[UIDVALIDITY 5]`) stay inside it.
    fn atom(&mut self) -> String {
        let start = self.i;
        let mut depth = 0;
        while let Some(&c) = self.s.get(self.i) {
            match c {
                b'[' => depth += 1,
                b']' => depth -= 1,
                b' ' | b'(' | b')' if depth <= 0 => break,
                _ => {}
            }
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }
}

/// A logged-in connection.
struct Client {
    io: BufReader<Box<dyn Io>>,
    tag: u32,
}

impl Client {
    async fn read_response(&mut self) -> anyhow::Result<Response> {
        let mut r = Response::default();
        loop {
            let mut line = Vec::new();
            let n = tokio::time::timeout(
                READ_TIMEOUT,
                (&mut self.io)
                    .take(MAX_LINE as u64 + 1)
                    .read_until(b'\n', &mut line),
            )
            .await
            .context("the server did not answer in time")??;
            if n == 0 {
                bail!("the server closed the connection");
            }
            if line.len() > MAX_LINE {
                bail!("a response line longer than {MAX_LINE} bytes");
            }
            let text = line
                .strip_suffix(b"\r\n")
                .or_else(|| line.strip_suffix(b"\n"))
                .unwrap_or(&line);
            r.line.extend_from_slice(text);
            // A line ending in `{n}` announces n bytes of literal, then the line goes on.
            let len = text
                .strip_suffix(b"}")
                .and_then(|t| t.iter().rposition(|&b| b == b'{').map(|i| &t[i + 1..]))
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| d.trim_end_matches('+').parse::<usize>().ok());
            let Some(len) = len else {
                return Ok(r);
            };
            if len > MAX_LITERAL {
                bail!("a literal of {len} bytes (at most {MAX_LITERAL})");
            }
            let mut lit = vec![0; len];
            tokio::time::timeout(READ_TIMEOUT, self.io.read_exact(&mut lit))
                .await
                .context("the server did not answer in time")??;
            r.literals.push_back(lit);
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.io.get_mut().write_all(bytes).await?;
        self.io.get_mut().flush().await?;
        Ok(())
    }

    /// Sends a command whose arguments are `parts` (each raw bytes, or a literal to send after
    /// the server's go-ahead) and collects the untagged responses up to the tagged one.
    async fn command(&mut self, parts: &[Arg<'_>]) -> anyhow::Result<Vec<Response>> {
        self.tag += 1;
        let tag = format!("h{}", self.tag);
        let mut buf = tag.clone().into_bytes();
        for part in parts {
            buf.push(b' ');
            match part {
                Arg::Raw(r) => buf.extend_from_slice(r.as_bytes()),
                Arg::String(s) => {
                    if let Some(q) = quoted(s) {
                        buf.extend_from_slice(q.as_bytes());
                    } else {
                        buf.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
                        self.send(&buf).await?;
                        buf.clear();
                        let r = self.read_response().await?;
                        if !r.line.starts_with(b"+") {
                            bail!("the server refused a literal: {}", r.text());
                        }
                        buf.extend_from_slice(s.as_bytes());
                    }
                }
            }
        }
        buf.extend_from_slice(b"\r\n");
        self.send(&buf).await?;
        let mut untagged = Vec::new();
        loop {
            let r = self.read_response().await?;
            if let Some(rest) = r
                .line
                .strip_prefix(tag.as_bytes())
                .and_then(|r| r.strip_prefix(b" "))
            {
                if rest.len() >= 2 && rest[..2].eq_ignore_ascii_case(b"OK") {
                    return Ok(untagged);
                }
                bail!("{}", String::from_utf8_lossy(rest));
            }
            if r.line.starts_with(b"+") {
                bail!("unexpected continuation request: {}", r.text());
            }
            untagged.push(r);
        }
    }
}

enum Arg<'a> {
    Raw(&'a str),
    String(&'a str),
}

/// A quoted string for `s`, or `None` when it needs a literal (CR, LF, NUL, 8-bit).
fn quoted(s: &str) -> Option<String> {
    if s.bytes()
        .any(|b| b == 0 || b == b'\r' || b == b'\n' || b >= 0x80)
    {
        return None;
    }
    Some(format!(
        "\"{}\"",
        s.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// The account on the source server.
pub struct ImapSource {
    client: Client,
    id: String,
    /// The source name of the mailbox EXAMINEd last.
    selected: Option<String>,
    /// Mailboxes STATUS found empty.
    empty: std::collections::HashSet<String>,
}

impl ImapSource {
    /// Connects, secures the connection as asked, and logs in.
    pub async fn connect(args: &ImapImportArgs) -> anyhow::Result<ImapSource> {
        let password = super::user::read_secret(&args.password_file)?;
        let security = args.security();
        let port = args.port.unwrap_or(match security {
            ImapSecurity::Tls => 993,
            _ => 143,
        });
        let tcp = TcpStream::connect((args.host.as_str(), port))
            .await
            .with_context(|| format!("cannot connect to {}:{port}", args.host))?;
        let io: Box<dyn Io> = match security {
            ImapSecurity::Tls => Box::new(tls(tcp, &args.host, args.ca_file.as_deref()).await?),
            _ => Box::new(tcp),
        };
        let mut client = Client {
            io: BufReader::new(io),
            tag: 0,
        };
        let greeting = client.read_response().await?;
        if !greeting.line.starts_with(b"* OK") && !greeting.line.starts_with(b"* PREAUTH") {
            bail!("the server refused the connection: {}", greeting.text());
        }
        if security == ImapSecurity::Starttls {
            client.command(&[Arg::Raw("STARTTLS")]).await?;
            if !client.io.buffer().is_empty() {
                // Bytes sent before the handshake would be taken as protected (CVE-2011-0411).
                bail!("the server sent data after its STARTTLS answer");
            }
            let Client { io, tag } = client;
            let plain = io.into_inner();
            let stream = tls(plain, &args.host, args.ca_file.as_deref()).await?;
            client = Client {
                io: BufReader::new(Box::new(stream)),
                tag,
            };
        }
        client
            .command(&[
                Arg::Raw("LOGIN"),
                Arg::String(&args.user),
                Arg::String(&password),
            ])
            .await
            .context("login refused")?;
        Ok(ImapSource {
            client,
            id: format!("imap:{}@{}:{port}", args.user, args.host),
            selected: None,
            empty: std::collections::HashSet::new(),
        })
    }

    /// Says goodbye; errors do not matter any more.
    pub async fn logout(&mut self) {
        let _ = self.client.command(&[Arg::Raw("LOGOUT")]).await;
    }

    async fn examine(&mut self, source_name: &str) -> anyhow::Result<()> {
        if self.selected.as_deref() == Some(source_name) {
            return Ok(());
        }
        let name = herald_imap::proto::mutf7::encode(source_name);
        self.client
            .command(&[Arg::Raw("EXAMINE"), Arg::String(&name)])
            .await?;
        self.selected = Some(source_name.to_owned());
        Ok(())
    }
}

/// Wraps `tcp` in TLS for `host`, trusting the system's roots and `ca_file`.
async fn tls<S: AsyncRead + AsyncWrite + Unpin>(
    tcp: S,
    host: &str,
    ca_file: Option<&std::path::Path>,
) -> anyhow::Result<tokio_rustls::client::TlsStream<S>> {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        for cert in rustls::pki_types::CertificateDer::pem_file_iter(path)
            .with_context(|| format!("cannot read {}", path.display()))?
        {
            roots.add(cert.with_context(|| format!("{}", path.display()))?)?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .with_context(|| format!("`{host}` is not a host name"))?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .with_context(|| format!("TLS with {host}"))
}

impl Source for ImapSource {
    fn id(&self) -> String {
        self.id.clone()
    }

    async fn mailboxes(&mut self) -> anyhow::Result<Vec<SourceMailbox>> {
        // A server whose personal namespace is `INBOX.` (Courier, Cyrus) lists `INBOX.Sent`
        // for what Herald and Dovecot call `Sent`. A server without NAMESPACE has no prefix.
        let prefix = match self.client.command(&[Arg::Raw("NAMESPACE")]).await {
            Ok(mut responses) => responses
                .iter_mut()
                .find_map(|r| personal_prefix(r).ok().flatten())
                .unwrap_or_default(),
            Err(_) => String::new(),
        };
        let responses = self
            .client
            .command(&[Arg::Raw("LIST"), Arg::Raw("\"\""), Arg::Raw("\"*\"")])
            .await?;
        let mut listed = Vec::new();
        for mut r in responses {
            let toks = r.tokens()?;
            let [
                Tok::Atom(star),
                Tok::Atom(kind),
                Tok::List(attrs),
                sep,
                name,
                ..,
            ] = &toks[..]
            else {
                continue;
            };
            if star != "*" || !kind.eq_ignore_ascii_case("LIST") {
                continue;
            }
            let attrs: Vec<String> = attrs.iter().filter_map(Tok::text).collect();
            if attrs.iter().any(|a| {
                a.eq_ignore_ascii_case("\\Noselect") || a.eq_ignore_ascii_case("\\NonExistent")
            }) {
                continue;
            }
            let Some(raw) = name.text() else { continue };
            let source_name = herald_imap::proto::mutf7::decode(raw.as_bytes())
                .map_err(|e| anyhow::anyhow!("mailbox name `{raw}`: {e}"))?;
            let sep = sep.text().and_then(|s| s.chars().next());
            let unprefixed = match source_name.strip_prefix(prefix.as_str()) {
                Some(rest) if !prefix.is_empty() && !rest.is_empty() => rest,
                _ => source_name.as_str(),
            };
            let herald_name = match sep {
                Some(c) if c != '/' => unprefixed.replace('/', "_").replace(c, "/"),
                _ => unprefixed.to_owned(),
            };
            let herald_name = if herald_name.eq_ignore_ascii_case("INBOX") {
                "INBOX".to_owned()
            } else {
                herald_name
            };
            let special_use = attrs.iter().find_map(|a| a.parse::<SpecialUse>().ok());
            listed.push((herald_name, source_name, special_use));
        }
        // Parents before children.
        listed.sort_by(|a, b| a.0.cmp(&b.0));
        listed.dedup_by(|a, b| a.0 == b.0);
        let mut out = Vec::with_capacity(listed.len());
        for (name, source_name, special_use) in listed {
            let ename = herald_imap::proto::mutf7::encode(&source_name);
            let mut status = self
                .client
                .command(&[
                    Arg::Raw("STATUS"),
                    Arg::String(&ename),
                    Arg::Raw("(MESSAGES UIDVALIDITY UIDNEXT)"),
                ])
                .await
                .with_context(|| format!("STATUS {source_name}"))?;
            let mut values = HashMap::new();
            for r in &mut status {
                let toks = r.tokens()?;
                if let Some(Tok::List(items)) = toks.get(3) {
                    for pair in items.chunks(2) {
                        if let [Tok::Atom(k), Tok::Atom(v)] = pair {
                            values.insert(k.to_ascii_uppercase(), v.parse::<u32>().ok());
                        }
                    }
                }
            }
            if values.get("MESSAGES").copied().flatten() == Some(0) {
                self.empty.insert(source_name.clone());
            }
            out.push(SourceMailbox {
                name,
                source_name,
                uidvalidity: values.get("UIDVALIDITY").copied().flatten(),
                uidnext: values.get("UIDNEXT").copied().flatten(),
                special_use,
            });
        }
        Ok(out)
    }

    async fn positions(
        &mut self,
        mailbox: &SourceMailbox,
        after: i64,
    ) -> anyhow::Result<Vec<Position>> {
        // Some servers answer `1:*` in an empty mailbox with an error.
        if self.empty.contains(&mailbox.source_name) {
            return Ok(Vec::new());
        }
        self.examine(&mailbox.source_name).await?;
        let first = u32::try_from(after.max(0))
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        let set = format!("{first}:*");
        let responses = self
            .client
            .command(&[
                Arg::Raw("UID FETCH"),
                Arg::Raw(&set),
                Arg::Raw("(UID RFC822.SIZE)"),
            ])
            .await?;
        let mut out = Vec::new();
        for mut r in responses {
            let Some(items) = fetch_items(&mut r)? else {
                continue;
            };
            let uid = items
                .get("UID")
                .and_then(Tok::text)
                .and_then(|u| u.parse::<u32>().ok());
            let size = items
                .get("RFC822.SIZE")
                .and_then(Tok::text)
                .and_then(|u| u.parse::<u64>().ok())
                .unwrap_or(0);
            // `n:*` also names the last message when every UID is below n.
            if let Some(uid) = uid
                && i64::from(uid) > after
            {
                out.push(Position {
                    key: i64::from(uid),
                    uid: Some(uid),
                    size,
                });
            }
        }
        out.sort_by_key(|p| p.key);
        out.dedup_by_key(|p| p.key);
        Ok(out)
    }

    async fn fetch(
        &mut self,
        mailbox: &SourceMailbox,
        positions: &[Position],
    ) -> anyhow::Result<Vec<ImportMessage>> {
        self.examine(&mailbox.source_name).await?;
        let set = positions
            .iter()
            .filter_map(|p| p.uid)
            .map(|u| u.to_string())
            .collect::<Vec<_>>()
            .join(",");
        if set.is_empty() {
            return Ok(Vec::new());
        }
        let responses = self
            .client
            .command(&[
                Arg::Raw("UID FETCH"),
                Arg::Raw(&set),
                Arg::Raw("(UID FLAGS INTERNALDATE BODY.PEEK[])"),
            ])
            .await?;
        let mut by_uid = HashMap::new();
        for mut r in responses {
            let Some(items) = fetch_items(&mut r)? else {
                continue;
            };
            let Some(uid) = items
                .get("UID")
                .and_then(Tok::text)
                .and_then(|u| u.parse::<u32>().ok())
            else {
                continue;
            };
            let Some(Tok::Str(content)) = items.get("BODY[]") else {
                continue;
            };
            let flags = match items.get("FLAGS") {
                Some(Tok::List(f)) => f.iter().filter_map(Tok::text).collect(),
                _ => Vec::new(),
            };
            let date = items
                .get("INTERNALDATE")
                .and_then(Tok::text)
                .and_then(|d| parse_internal_date(&d))
                .unwrap_or_else(herald_store::now_ms);
            by_uid.insert(
                uid,
                ImportMessage {
                    content: content.clone(),
                    flags: import::clean_flags(flags),
                    internal_date_ms: date,
                    uid: Some(uid),
                },
            );
        }
        Ok(positions
            .iter()
            .filter_map(|p| p.uid.and_then(|u| by_uid.remove(&u)))
            .collect())
    }
}

/// The first personal namespace's prefix from `* NAMESPACE (("INBOX." ".")) NIL NIL`, in
/// UTF-8; `None` for other responses.
fn personal_prefix(r: &mut Response) -> anyhow::Result<Option<String>> {
    let toks = r.tokens()?;
    let [Tok::Atom(star), Tok::Atom(kind), personal, ..] = &toks[..] else {
        return Ok(None);
    };
    if star != "*" || !kind.eq_ignore_ascii_case("NAMESPACE") {
        return Ok(None);
    }
    let Tok::List(spaces) = personal else {
        return Ok(Some(String::new()));
    };
    let prefix = match spaces.first() {
        Some(Tok::List(first)) => first.first().and_then(Tok::text).unwrap_or_default(),
        _ => String::new(),
    };
    let prefix = herald_imap::proto::mutf7::decode(prefix.as_bytes())
        .map_err(|e| anyhow::anyhow!("namespace prefix `{prefix}`: {e}"))?;
    Ok(Some(prefix))
}

/// The items of a `* n FETCH (…)` response by upper-case name; `None` for other responses.
fn fetch_items(r: &mut Response) -> anyhow::Result<Option<HashMap<String, Tok>>> {
    let toks = r.tokens()?;
    let [
        Tok::Atom(star),
        Tok::Atom(_),
        Tok::Atom(kind),
        Tok::List(items),
        ..,
    ] = &toks[..]
    else {
        return Ok(None);
    };
    if star != "*" || !kind.eq_ignore_ascii_case("FETCH") {
        return Ok(None);
    }
    let mut out = HashMap::new();
    for pair in items.chunks(2) {
        if let [Tok::Atom(k), v] = pair {
            out.insert(k.to_ascii_uppercase(), v.clone());
        }
    }
    Ok(Some(out))
}

/// `17-Jul-1996 02:44:25 -0700` (the day may be space-padded) in ms since the epoch.
fn parse_internal_date(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_str(s.trim(), "%e-%b-%Y %H:%M:%S %z")
        .ok()
        .map(|d| d.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(line: &str, literals: &[&[u8]]) -> Response {
        Response {
            line: line.as_bytes().to_vec(),
            literals: literals.iter().map(|l| l.to_vec()).collect(),
        }
    }

    #[test]
    fn fetch_responses_with_literals_parse() {
        let mut r = response(
            "* 3 FETCH (UID 42 FLAGS (\\Seen $Work) INTERNALDATE \" 7-Jul-1996 02:44:25 -0700\" BODY[] {5})",
            &[b"hello"],
        );
        let items = fetch_items(&mut r).unwrap().unwrap();
        assert_eq!(items["UID"], Tok::Atom("42".into()));
        assert_eq!(items["BODY[]"], Tok::Str(b"hello".to_vec()));
        assert_eq!(
            items["FLAGS"],
            Tok::List(vec![Tok::Atom("\\Seen".into()), Tok::Atom("$Work".into())])
        );
        let date = items["INTERNALDATE"].text().unwrap();
        assert_eq!(parse_internal_date(&date), Some(836_732_665_000));
        let mut other = response("* 4 EXPUNGE", &[]);
        assert!(fetch_items(&mut other).unwrap().is_none());
    }

    #[test]
    fn list_names_and_attributes_parse() {
        let mut r = response(r#"* LIST (\HasNoChildren \Sent) "." "Sent \"Items\"""#, &[]);
        let toks = r.tokens().unwrap();
        assert_eq!(toks[3], Tok::Str(b".".to_vec()));
        assert_eq!(toks[4], Tok::Str(b"Sent \"Items\"".to_vec()));
        let mut nil = response("* LIST (\\Noselect) NIL {3}", &[b"a/b"]);
        let toks = nil.tokens().unwrap();
        assert_eq!(toks[3], Tok::Nil);
        assert_eq!(toks[4], Tok::Str(b"a/b".to_vec()));
    }

    #[test]
    fn the_personal_namespace_prefix() {
        let mut courier = response(
            r##"* NAMESPACE (("INBOX." ".")) NIL (("#shared." "."))"##,
            &[],
        );
        assert_eq!(
            personal_prefix(&mut courier).unwrap().as_deref(),
            Some("INBOX.")
        );
        let mut dovecot = response(r#"* NAMESPACE (("" "/")) NIL NIL"#, &[]);
        assert_eq!(personal_prefix(&mut dovecot).unwrap().as_deref(), Some(""));
        let mut none = response("* NAMESPACE NIL NIL NIL", &[]);
        assert_eq!(personal_prefix(&mut none).unwrap().as_deref(), Some(""));
        let mut other = response("* OK fine", &[]);
        assert_eq!(personal_prefix(&mut other).unwrap(), None);
    }

    #[test]
    fn strings_that_need_a_literal() {
        assert_eq!(quoted(r#"pa"ss\"#).unwrap(), r#""pa\"ss\\""#);
        assert!(quoted("pässword").is_none());
        assert!(quoted("a\nb").is_none());
    }
}
