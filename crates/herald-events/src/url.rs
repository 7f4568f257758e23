//! IMAP URLs (RFC 5092): how an event names a server, a mailbox or a message.
//!
//! The grammar, in the parts Herald builds and reads:
//!
//! ```text
//! imap://[user[;AUTH=mech]@]host[:port]/mailbox[;UIDVALIDITY=n][?search]
//! imap://…/mailbox[;UIDVALIDITY=n]/;UID=n[/;SECTION=s][/;PARTIAL=o[.l]][;EXPIRE=t];URLAUTH=a:m:token
//! ```
//!
//! Mailbox names are UTF-8 (RFC 5092 §3.2 converts IMAP's modified UTF-7 to UTF-8 first) and
//! percent-encoded outside the `bchar` set; `/` stays literal because it is the hierarchy
//! separator. Keywords such as `;UIDVALIDITY=` are case-insensitive on input and upper-case on
//! output, and hex escapes are upper-case, so every value prints one canonical way and a
//! canonical URL parses and prints back byte for byte.

use crate::Timestamp;
use std::fmt;
use std::str::FromStr;

/// Why an IMAP URL did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// The scheme is not `imap://`.
    #[error("not an IMAP URL (must start with imap://)")]
    Scheme,
    /// The host part is missing or malformed.
    #[error("bad host `{0}`")]
    Host(String),
    /// The port is not a number from 1 to 65535.
    #[error("bad port `{0}`")]
    Port(String),
    /// A `%` escape is not two hex digits, or the decoded bytes are not UTF-8.
    #[error("bad percent-encoding in `{0}`")]
    Encoding(String),
    /// A character that must be percent-encoded appears literally.
    #[error("character `{0}` must be percent-encoded")]
    Unescaped(char),
    /// A `;KEY=value` part is unknown, repeated, out of order or has a bad value.
    #[error("bad URL parameter `{0}`")]
    Parameter(String),
    /// `;UID=` without a mailbox, or a section without a UID, and the like.
    #[error("incomplete URL: {0}")]
    Structure(&'static str),
}

/// A URLAUTH URL's authorization part (RFC 4467 §3): `[;EXPIRE=t];URLAUTH=access` and, in an
/// authorized URL, `:mechanism:token`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UrlAuth {
    /// `;EXPIRE=` time after which the URL no longer works.
    pub expire: Option<Timestamp>,
    /// The access identifier: `anonymous`, `authuser`, `user+NAME` or `submit+NAME`.
    pub access: String,
    /// The mechanism and token of an authorized URL; `None` in a "rump" URL, the form a
    /// client hands to GENURLAUTH for the server to authorize.
    pub verifier: Option<Verifier>,
}

/// The `:mechanism:token` that ends a URLAUTH-authorized URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Verifier {
    /// The authorization mechanism, e.g. `INTERNAL`.
    pub mechanism: String,
    /// The verifier token (hex or another `achar` string).
    pub token: String,
}

/// An access identifier (RFC 4467 §3): who may fetch a URLAUTH-authorized URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Access {
    /// `anonymous`: anyone, even without logging in.
    Anonymous,
    /// `authuser`: any authenticated user of the server.
    AuthUser,
    /// `user+NAME`: the user NAME.
    User(String),
    /// `submit+NAME`: a message submission entity acting for NAME.
    Submit(String),
}

impl Access {
    /// Reads an access identifier (case-insensitive keywords, the user name as written).
    pub fn parse(s: &str) -> Option<Access> {
        if s.eq_ignore_ascii_case("anonymous") {
            Some(Access::Anonymous)
        } else if s.eq_ignore_ascii_case("authuser") {
            Some(Access::AuthUser)
        } else if let Some(user) = strip_prefix_ci(s, "user+").filter(|u| !u.is_empty()) {
            Some(Access::User(user.to_owned()))
        } else {
            strip_prefix_ci(s, "submit+")
                .filter(|u| !u.is_empty())
                .map(|u| Access::Submit(u.to_owned()))
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Access::Anonymous => f.write_str("anonymous"),
            Access::AuthUser => f.write_str("authuser"),
            Access::User(u) => write!(f, "user+{u}"),
            Access::Submit(u) => write!(f, "submit+{u}"),
        }
    }
}

/// A byte range within a message part (`;PARTIAL=offset[.length]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Partial {
    /// First octet.
    pub offset: u32,
    /// Number of octets (non-zero), or to the end.
    pub length: Option<u32>,
}

/// An IMAP URL naming a server, a mailbox or a message.
///
/// Fields are public so consumers can read them directly; a URL built by hand should follow the
/// grammar (a UID needs a mailbox, a section needs a UID), which [`ImapUrl::check`] verifies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImapUrl {
    /// The user name in the authority (`alice` in `imap://alice@host/`).
    pub user: Option<String>,
    /// `;AUTH=` mechanism, or `*` for any.
    pub auth: Option<String>,
    /// Host: a DNS name, an IPv4 address, or an IPv6 address in brackets.
    pub host: String,
    /// Port, when not the default 143.
    pub port: Option<u16>,
    /// The mailbox name, decoded to UTF-8 (hierarchy separator `/`).
    pub mailbox: Option<String>,
    /// `;UIDVALIDITY=`.
    pub uidvalidity: Option<u32>,
    /// `?search` criteria of a message-list URL, decoded.
    pub search: Option<String>,
    /// `/;UID=`.
    pub uid: Option<u32>,
    /// `/;SECTION=`, decoded.
    pub section: Option<String>,
    /// `/;PARTIAL=`.
    pub partial: Option<Partial>,
    /// `;URLAUTH=` with its optional `;EXPIRE=`.
    pub urlauth: Option<UrlAuth>,
}

impl ImapUrl {
    /// A URL naming a server, optionally with the user (`imap://alice@host`).
    pub fn server(host: impl Into<String>, user: Option<&str>) -> ImapUrl {
        ImapUrl {
            user: user.map(str::to_owned),
            auth: None,
            host: host.into(),
            port: None,
            mailbox: None,
            uidvalidity: None,
            search: None,
            uid: None,
            section: None,
            partial: None,
            urlauth: None,
        }
    }

    /// A URL naming a mailbox, with its UIDVALIDITY when known.
    pub fn mailbox(
        host: impl Into<String>,
        user: Option<&str>,
        mailbox: impl Into<String>,
        uidvalidity: Option<u32>,
    ) -> ImapUrl {
        ImapUrl {
            mailbox: Some(mailbox.into()),
            uidvalidity,
            ..ImapUrl::server(host, user)
        }
    }

    /// A URL naming one message.
    pub fn message(
        host: impl Into<String>,
        user: Option<&str>,
        mailbox: impl Into<String>,
        uidvalidity: u32,
        uid: u32,
    ) -> ImapUrl {
        ImapUrl {
            uid: Some(uid),
            ..ImapUrl::mailbox(host, user, mailbox, Some(uidvalidity))
        }
    }

    /// This URL with the port set (omitted for 143, the default).
    pub fn with_port(mut self, port: u16) -> ImapUrl {
        self.port = (port != 143).then_some(port);
        self
    }

    /// The URL of the mailbox this URL points into (drops UID, section, partial, search, auth).
    pub fn mailbox_url(&self) -> ImapUrl {
        ImapUrl {
            search: None,
            uid: None,
            section: None,
            partial: None,
            urlauth: None,
            ..self.clone()
        }
    }

    /// Checks the structural rules that the grammar implies and public fields cannot enforce.
    pub fn check(&self) -> Result<(), UrlError> {
        if self.host.is_empty() {
            return Err(UrlError::Host(String::new()));
        }
        if self.mailbox.as_deref() == Some("") {
            return Err(UrlError::Structure("empty mailbox name"));
        }
        if self.mailbox.is_none()
            && (self.uidvalidity.is_some() || self.uid.is_some() || self.search.is_some())
        {
            return Err(UrlError::Structure(
                "UIDVALIDITY, UID or search without a mailbox",
            ));
        }
        if self.uid.is_none()
            && (self.section.is_some() || self.partial.is_some() || self.urlauth.is_some())
        {
            return Err(UrlError::Structure(
                "SECTION, PARTIAL or URLAUTH without a UID",
            ));
        }
        if self.uid.is_some() && self.search.is_some() {
            return Err(UrlError::Structure("a URL has either a UID or a search"));
        }
        if self.uid == Some(0) || self.uidvalidity == Some(0) {
            return Err(UrlError::Structure("UID and UIDVALIDITY are non-zero"));
        }
        Ok(())
    }
}

/// Characters of RFC 5092's `achar` other than ALPHA/DIGIT: unreserved, `sub-delims-sh`, `&`, `=`.
fn is_achar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$'()*+,&=".contains(&b)
}

/// `bchar` = `achar` / ":" / "@" / "/".
fn is_bchar(b: u8) -> bool {
    is_achar(b) || b":@/".contains(&b)
}

fn encode_into(out: &mut impl fmt::Write, s: &str, allowed: fn(u8) -> bool) -> fmt::Result {
    for &b in s.as_bytes() {
        if allowed(b) {
            out.write_char(char::from(b))?;
        } else {
            write!(out, "%{b:02X}")?;
        }
    }
    Ok(())
}

fn decode(s: &str, allowed: fn(u8) -> bool) -> Result<String, UrlError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| UrlError::Encoding(s.to_owned()))?;
            out.push(hex);
            i += 3;
        } else if allowed(b) {
            out.push(b);
            i += 1;
        } else {
            let c = s[i..].chars().next().unwrap_or('?');
            return Err(UrlError::Unescaped(c));
        }
    }
    String::from_utf8(out).map_err(|_| UrlError::Encoding(s.to_owned()))
}

fn nz_number(s: &str, what: &str) -> Result<u32, UrlError> {
    match s.parse::<u32>() {
        Ok(n) if n > 0 && !s.starts_with('0') && s.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(UrlError::Parameter(format!("{what}{s}"))),
    }
}

/// Splits `s` at the first occurrence of a case-insensitive ASCII `prefix`, if `s` starts with it.
fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn parse_host_port(authority: &str) -> Result<(String, Option<u16>), UrlError> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or_else(|| UrlError::Host(authority.to_owned()))?;
        let inner = &rest[..end];
        if inner.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(UrlError::Host(authority.to_owned()));
        }
        let after = &rest[end + 1..];
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| UrlError::Host(authority.to_owned()))?,
            ),
        };
        (authority[..end + 2].to_owned(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (authority.to_owned(), None),
        }
    };
    let host_ok = !host.is_empty()
        && (host.starts_with('[')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%".contains(&b)));
    if !host_ok {
        return Err(UrlError::Host(host));
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => return Err(UrlError::Port(p.to_owned())),
        },
    };
    Ok((host, port))
}

impl FromStr for ImapUrl {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = strip_prefix_ci(s, "imap://").ok_or(UrlError::Scheme)?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (host, port) = parse_host_port(hostport)?;
        let mut url = ImapUrl::server(host, None);
        url.port = port;
        if let Some(info) = userinfo {
            let (user, auth) = match info.find(';') {
                Some(i) => (&info[..i], Some(&info[i..])),
                None => (info, None),
            };
            if !user.is_empty() {
                url.user = Some(decode(user, is_achar)?);
            }
            if let Some(auth) = auth {
                let mech = strip_prefix_ci(auth, ";AUTH=")
                    .ok_or_else(|| UrlError::Parameter(auth.to_owned()))?;
                if mech.is_empty() {
                    return Err(UrlError::Parameter(auth.to_owned()));
                }
                url.auth = Some(if mech == "*" {
                    "*".to_owned()
                } else {
                    decode(mech, is_achar)?
                });
            }
            if url.user.is_none() && url.auth.is_none() {
                return Err(UrlError::Host(authority.to_owned()));
            }
        }
        let Some(path) = path else { return Ok(url) };
        if path.is_empty() {
            return Ok(url);
        }
        parse_command(path, &mut url)?;
        url.check()?;
        Ok(url)
    }
}

/// Parses what follows `host/`: the mailbox and its parameters, or a message part.
fn parse_command(path: &str, url: &mut ImapUrl) -> Result<(), UrlError> {
    // The mailbox runs up to the first `;` or `?`: both must be escaped inside names.
    let end = path.find([';', '?']).unwrap_or(path.len());
    let mut mailbox = &path[..end];
    let mut rest = &path[end..];
    // `INBOX/;UID=7` (no UIDVALIDITY): the slash belongs to the UID part.
    if mailbox.ends_with('/') && strip_prefix_ci(rest, ";UID=").is_some() {
        mailbox = &mailbox[..mailbox.len() - 1];
        rest = &path[end - 1..];
    }
    if mailbox.is_empty() {
        return Err(UrlError::Structure("empty mailbox name"));
    }
    url.mailbox = Some(decode(mailbox, is_bchar)?);
    if let Some(r) = strip_prefix_ci(rest, ";UIDVALIDITY=") {
        let end = r.find(['/', '?', ';']).unwrap_or(r.len());
        url.uidvalidity = Some(nz_number(&r[..end], ";UIDVALIDITY=")?);
        rest = &r[end..];
    }
    if let Some(search) = rest.strip_prefix('?') {
        url.search = Some(decode(search, is_bchar)?);
        return Ok(());
    }
    if rest.is_empty() {
        return Ok(());
    }
    let r = strip_prefix_ci(rest, "/;UID=").ok_or_else(|| UrlError::Parameter(rest.to_owned()))?;
    let end = r.find(['/', ';']).unwrap_or(r.len());
    url.uid = Some(nz_number(&r[..end], ";UID=")?);
    rest = &r[end..];
    if let Some(r) = strip_prefix_ci(rest, "/;SECTION=") {
        let end = r.find(['/', ';']).unwrap_or(r.len());
        if end == 0 {
            return Err(UrlError::Parameter(rest.to_owned()));
        }
        url.section = Some(decode(&r[..end], is_bchar_no_slash)?);
        rest = &r[end..];
    }
    if let Some(r) = strip_prefix_ci(rest, "/;PARTIAL=") {
        let end = r.find(['/', ';']).unwrap_or(r.len());
        let range = &r[..end];
        let bad = || UrlError::Parameter(format!(";PARTIAL={range}"));
        let (offset, length) = match range.split_once('.') {
            Some((o, l)) => (o, Some(l)),
            None => (range, None),
        };
        if offset.is_empty() || !offset.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let offset = offset.parse::<u32>().map_err(|_| bad())?;
        let length = length
            .map(|l| nz_number(l, ";PARTIAL=.").map_err(|_| bad()))
            .transpose()?;
        url.partial = Some(Partial { offset, length });
        rest = &r[end..];
    }
    if rest.is_empty() {
        return Ok(());
    }
    let mut expire = None;
    if let Some(r) = strip_prefix_ci(rest, ";EXPIRE=") {
        let end = r.find(';').unwrap_or(r.len());
        expire = Some(
            r[..end]
                .parse::<Timestamp>()
                .map_err(|_| UrlError::Parameter(format!(";EXPIRE={}", &r[..end])))?,
        );
        rest = &r[end..];
    }
    let r =
        strip_prefix_ci(rest, ";URLAUTH=").ok_or_else(|| UrlError::Parameter(rest.to_owned()))?;
    // `access` alone is a rump (RFC 4467 `url-rump`); `access:mechanism:token` is authorized.
    let mut parts = r.splitn(3, ':');
    let access = parts.next().unwrap_or_default();
    let verifier = match (parts.next(), parts.next()) {
        (None, None) => None,
        (Some(mechanism), Some(token)) => Some(Verifier {
            mechanism: mechanism.to_owned(),
            token: token.to_owned(),
        }),
        _ => return Err(UrlError::Parameter(rest.to_owned())),
    };
    if access.is_empty() {
        return Err(UrlError::Parameter(rest.to_owned()));
    }
    if let Some(v) = &verifier
        && (v.mechanism.is_empty()
            || v.token.is_empty()
            || !v
                .mechanism
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            || !v.token.bytes().all(is_achar))
    {
        return Err(UrlError::Parameter(rest.to_owned()));
    }
    url.urlauth = Some(UrlAuth {
        expire,
        access: decode(access, is_access_char)?,
        verifier,
    });
    Ok(())
}

fn is_bchar_no_slash(b: u8) -> bool {
    is_bchar(b) && b != b'/'
}

/// The access identifier is `anonymous`, `authuser`, or `user+`/`submit+` and an `enc-user`.
fn is_access_char(b: u8) -> bool {
    is_achar(b)
}

impl fmt::Display for ImapUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("imap://")?;
        if self.user.is_some() || self.auth.is_some() {
            if let Some(user) = &self.user {
                encode_into(f, user, is_achar)?;
            }
            if let Some(auth) = &self.auth {
                f.write_str(";AUTH=")?;
                if auth == "*" {
                    f.write_str("*")?;
                } else {
                    encode_into(f, auth, is_achar)?;
                }
            }
            f.write_str("@")?;
        }
        f.write_str(&self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        let Some(mailbox) = &self.mailbox else {
            return Ok(());
        };
        f.write_str("/")?;
        encode_into(f, mailbox, is_bchar)?;
        if let Some(v) = self.uidvalidity {
            write!(f, ";UIDVALIDITY={v}")?;
        }
        if let Some(search) = &self.search {
            f.write_str("?")?;
            encode_into(f, search, is_bchar)?;
        }
        if let Some(uid) = self.uid {
            write!(f, "/;UID={uid}")?;
        }
        if let Some(section) = &self.section {
            f.write_str("/;SECTION=")?;
            encode_into(f, section, is_bchar_no_slash)?;
        }
        if let Some(p) = self.partial {
            write!(f, "/;PARTIAL={}", p.offset)?;
            if let Some(l) = p.length {
                write!(f, ".{l}")?;
            }
        }
        if let Some(auth) = &self.urlauth {
            if let Some(expire) = &auth.expire {
                write!(f, ";EXPIRE={expire}")?;
            }
            f.write_str(";URLAUTH=")?;
            encode_into(f, &auth.access, is_access_char)?;
            if let Some(v) = &auth.verifier {
                write!(f, ":{}:{}", v.mechanism, v.token)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rt(s: &str) -> ImapUrl {
        let url: ImapUrl = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(url.to_string(), s, "canonical URL prints back unchanged");
        url
    }

    #[test]
    fn design_example() {
        let url = rt("imap://alice@mail.example.org/INBOX;UIDVALIDITY=1732345678/;UID=7");
        assert_eq!(url.user.as_deref(), Some("alice"));
        assert_eq!(url.mailbox.as_deref(), Some("INBOX"));
        assert_eq!(url.uidvalidity, Some(1_732_345_678));
        assert_eq!(url.uid, Some(7));
        assert_eq!(
            url,
            ImapUrl::message("mail.example.org", Some("alice"), "INBOX", 1_732_345_678, 7)
        );
    }

    #[test]
    fn server_mailbox_and_hierarchy() {
        rt("imap://oracle.localhost");
        rt("imap://oracle.localhost/user/test/a/b/c;UIDVALIDITY=1795424307");
        rt("imap://bob@[::1]:1143/Sent");
        rt("imap://;AUTH=*@host/INBOX");
        rt("imap://fred;AUTH=GSSAPI@host/INBOX?SUBJECT%20shadows");
    }

    #[test]
    fn utf8_and_reserved_characters_are_percent_encoded() {
        let url = ImapUrl::mailbox("h", Some("jo@home"), "Entwürfe;x?y #1", Some(3));
        let s = url.to_string();
        assert_eq!(
            s,
            "imap://jo%40home@h/Entw%C3%BCrfe%3Bx%3Fy%20%231;UIDVALIDITY=3"
        );
        assert_eq!(s.parse::<ImapUrl>().unwrap(), url);
    }

    #[test]
    fn keywords_are_case_insensitive_and_printed_upper_case() {
        let url: ImapUrl = "IMAP://h/INBOX;uidvalidity=5/;uid=2".parse().unwrap();
        assert_eq!(url.to_string(), "imap://h/INBOX;UIDVALIDITY=5/;UID=2");
        let no_validity: ImapUrl = "imap://h/INBOX/;UID=9".parse().unwrap();
        assert_eq!(no_validity.mailbox.as_deref(), Some("INBOX"));
        assert_eq!(no_validity.uid, Some(9));
    }

    #[test]
    fn urlauth_reference() {
        let url = rt(
            "imap://joe@example.com/INBOX;UIDVALIDITY=1/;UID=20/;SECTION=1.2;EXPIRE=2026-11-24T10:00:00.000+00:00;URLAUTH=user+fred:INTERNAL:91354a473744909de610943775f92038",
        );
        let auth = url.urlauth.unwrap();
        assert_eq!(auth.access, "user+fred");
        let v = auth.verifier.unwrap();
        assert_eq!(v.mechanism, "INTERNAL");
        assert_eq!(v.token, "91354a473744909de610943775f92038");
        rt("imap://h/INBOX;UIDVALIDITY=1/;UID=20/;PARTIAL=0.1024");
    }

    #[test]
    fn urlauth_rump() {
        let url = rt("imap://joe@example.com/INBOX/;UID=20/;SECTION=1.2;URLAUTH=submit+fred");
        let auth = url.urlauth.unwrap();
        assert_eq!(auth.access, "submit+fred");
        assert_eq!(auth.verifier, None);
        assert_eq!(auth.expire, None);
        let url = rt(
            "imap://joe@h/INBOX;UIDVALIDITY=3/;UID=2;EXPIRE=2026-11-24T10:00:00.000+00:00;URLAUTH=anonymous",
        );
        assert!(url.urlauth.unwrap().expire.is_some());
    }

    #[test]
    fn access_identifiers() {
        assert_eq!(Access::parse("anonymous"), Some(Access::Anonymous));
        assert_eq!(Access::parse("AuthUser"), Some(Access::AuthUser));
        assert_eq!(
            Access::parse("user+fred"),
            Some(Access::User("fred".into()))
        );
        assert_eq!(
            Access::parse("Submit+fred"),
            Some(Access::Submit("fred".into()))
        );
        for bad in ["", "user+", "submit+", "fred", "anyone"] {
            assert_eq!(Access::parse(bad), None, "{bad}");
        }
        assert_eq!(Access::User("fred".into()).to_string(), "user+fred");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "http://h/INBOX",
            "imap://",
            "imap://h:0/",
            "imap://h:99999/",
            "imap://h/INBOX;UIDVALIDITY=0",
            "imap://h/INBOX;UIDVALIDITY=x",
            "imap://h/INBOX/;UID=0",
            "imap://h/INBOX;FOO=1",
            "imap://h/IN BOX",
            "imap://h/%ZZ",
            "imap://h/%FF",
            "imap://h//;UID=3",
            "imap://h/INBOX/;UID=3;URLAUTH=a:b",
            "imap://h/INBOX/;UID=3;URLAUTH=",
            "imap://h/INBOX/;UID=3;URLAUTH=a:INTERNAL:",
            "imap://h/INBOX/;UID=3;URLAUTH=a::tok",
            "imap://@h/",
        ] {
            assert!(bad.parse::<ImapUrl>().is_err(), "{bad} should be rejected");
        }
    }

    fn name() -> impl Strategy<Value = String> {
        // Any UTF-8 except that a mailbox never ends in '/' (the hierarchy delimiter).
        "[a-zA-Z0-9 ;?#%@:/&=ü漢\\-._~]{1,12}".prop_filter("trailing /", |s| !s.ends_with('/'))
    }

    prop_compose! {
        fn arb_url()(
            user in proptest::option::of("[a-z@;:%ü]{1,8}"),
            host in "[a-z][a-z0-9.-]{0,15}",
            port in proptest::option::of(1u16..),
            mailbox in proptest::option::of(name()),
            uidvalidity in proptest::option::of(1u32..),
            uid in proptest::option::of(1u32..),
            section in proptest::option::of("[0-9]{1,3}(\\.[0-9]{1,2})?(\\.MIME|\\.HEADER)?"),
        ) -> ImapUrl {
            let mut url = ImapUrl::server(host, user.as_deref());
            url.port = port;
            if let Some(m) = mailbox {
                url.mailbox = Some(m);
                url.uidvalidity = uidvalidity;
                url.uid = uid;
                if uid.is_some() {
                    url.section = section;
                }
            }
            url
        }
    }

    proptest! {
        #[test]
        fn build_print_parse_round_trip(url in arb_url()) {
            prop_assert!(url.check().is_ok());
            let text = url.to_string();
            let back: ImapUrl = text.parse().map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            prop_assert_eq!(&back, &url);
            prop_assert_eq!(back.to_string(), text);
        }

        #[test]
        fn parser_never_panics(s in "imap://[ -~]{0,40}") {
            let _ = s.parse::<ImapUrl>();
        }
    }
}
