//! The `[http]` section of the configuration file.
//!
//! ```toml
//! [http]
//! listen = ["127.0.0.1:8080"]          # DESIGN §3 default
//! tls_listen = ["127.0.0.1:8443"]      # HTTPS with the [tls] certificate
//! public_url = "https://mail.example.org:8443"   # base of signed message links
//! tokens = [
//!   { user = "alice", sha256 = "9f86d081884c7d65…" },   # hex SHA-256 of the token (preferred)
//!   { user = "ops",   token = "s3cr3t-long-random" },  # or the token itself
//! ]
//! max_streams = 1000                    # concurrent SSE/WebSocket streams
//! max_streams_per_user = 10             # of which one account may hold
//! keepalive_secs = 15                   # keep-alive on idle streams
//! max_connections = 512                 # per listener; more wait in the backlog
//! max_connections_per_ip = 64           # more are refused with 503
//! header_timeout_secs = 10              # to send the request line and headers
//! request_timeout_secs = 30             # to send the body and get the answer's head
//! plaintext_auth = false                # Basic passwords over plain HTTP (default: loopback only)
//! metrics_public = false                # GET /metrics without credentials (default: admins only)
//! ```
//!
//! A token acts as its account: it sees that account's events, and it is an administrator's
//! token when (and as long as) the account is an administrator. A token naming an account that
//! does not exist is refused. Tokens may be written as their SHA-256 so the configuration file
//! need not hold the secret; in memory only the digest is kept either way.
//!
//! `public_url` names where subscribers reach `/messages`; without it the first listener whose
//! address is not a wildcard (`0.0.0.0`, `::`) is used, an HTTPS one first (see
//! [`HttpConfig::link_base`]). With only wildcard listeners no address is known that a
//! subscriber could reach, so Herald signs no links rather than name `0.0.0.0`.
//!
//! Two keys bound what an administrator's API call can make the server write or reach (see
//! [`crate::admin`]); subscriptions of the configuration file are trusted and not checked:
//!
//! ```toml
//! file_sink_dir = "/var/lib/herald/sinks"        # API-created file sinks write only in here
//! webhook_hosts = ["*.example.org", "127.0.0.1"] # API-created webhooks target only these hosts
//! ```
//!
//! Without `file_sink_dir` the API refuses `file` sinks; with it, a new file sink's path must
//! resolve inside it and name a file that does not exist yet. An empty `webhook_hosts` allows
//! any host.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// `[http]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Listening addresses; default `127.0.0.1:8080`.
    #[serde(default)]
    pub listen: Vec<SocketAddr>,
    /// HTTPS listening addresses, served with the `[tls]` certificate; none by default.
    #[serde(default)]
    pub tls_listen: Vec<SocketAddr>,
    /// Bearer tokens.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// The directory inside which `file` sinks created through the admin API may write; without
    /// it the API refuses them.
    pub file_sink_dir: Option<PathBuf>,
    /// Host patterns (`*` and `?` wildcards, case-insensitive) that webhook sinks created
    /// through the admin API must target; empty = any host.
    #[serde(default)]
    pub webhook_hosts: Vec<String>,
    /// Host patterns (as `webhook_hosts`) that WebPush endpoints users register over
    /// `POST /push/subscriptions` must name; empty = any host. Herald POSTs to a registered
    /// endpoint, so an operator can hold users to the browsers' push services.
    #[serde(default)]
    pub push_hosts: Vec<String>,
    /// Most concurrent live streams (default 1000); more get 503.
    pub max_streams: Option<usize>,
    /// Most concurrent live streams one account may open (default 10); more get 429.
    pub max_streams_per_user: Option<usize>,
    /// Seconds between keep-alives on an idle stream (default 15).
    pub keepalive_secs: Option<u64>,
    /// The URL subscribers reach this server at, for signed message links
    /// (`vnd.herald.contentURL`); default: the first HTTPS, else HTTP, listener that is not
    /// a wildcard address (see [`HttpConfig::link_base`]).
    pub public_url: Option<String>,
    /// How long a signed message link stays valid, in seconds (default 7 days).
    pub link_ttl_secs: Option<u64>,
    /// Most concurrent connections per listener (default 512); more wait in the kernel's
    /// backlog.
    pub max_connections: Option<usize>,
    /// Most concurrent connections from one client address (default 64); more are refused.
    pub max_connections_per_ip: Option<usize>,
    /// Seconds a client has to send a request's headers (default 10).
    pub header_timeout_secs: Option<u64>,
    /// Seconds a client has to send a request's body and get the answer's head (default 30).
    pub request_timeout_secs: Option<u64>,
    /// Accept HTTP Basic passwords over plain HTTP. Defaults to true when every listener is on
    /// loopback, false otherwise; a loopback client is always allowed.
    pub plaintext_auth: Option<bool>,
    /// Serve `GET /metrics` to anyone who can reach the listener (default false: an
    /// administrator's password or token, as the admin API).
    pub metrics_public: Option<bool>,
}

/// One bearer token.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// The account the token acts as.
    pub user: String,
    /// The token itself.
    #[serde(default)]
    pub token: Option<String>,
    /// Or its SHA-256, as 64 hex digits.
    #[serde(default)]
    pub sha256: Option<String>,
}

impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        f.debug_struct("TokenConfig")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Why `[http]` is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A token entry has neither or both of `token` and `sha256`.
    #[error("[http] tokens: the entry for `{0}` needs exactly one of `token` and `sha256`")]
    TokenForm(String),
    /// `sha256` is not 64 hex digits.
    #[error("[http] tokens: the `sha256` for `{0}` must be 64 hexadecimal digits")]
    Digest(String),
    /// A token shorter than 16 characters is too easy to guess.
    #[error("[http] tokens: the token for `{0}` is shorter than 16 characters")]
    Short(String),
    /// Two entries share a token.
    #[error("[http] tokens: the same token is configured twice (for `{0}`)")]
    Duplicate(String),
    /// `public_url` is not an absolute `http://` or `https://` URL.
    #[error("[http] public_url = \"{0}\": must be an absolute http:// or https:// URL with a host")]
    PublicUrl(String),
}

/// Where signed message links point, as [`HttpConfig::link_base`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkBase {
    /// Links start with this URL (no trailing `/`).
    Url(String),
    /// Every listener is a wildcard address (this one, say) and `public_url` is unset: no
    /// address a subscriber could reach is known, so no link is signed.
    Unreachable(SocketAddr),
    /// No HTTP listener at all: nothing would answer a link.
    NoListener,
}

impl LinkBase {
    /// Why links are off, in an operator's words; `None` when links are signed.
    pub fn refusal(&self) -> Option<String> {
        match self {
            LinkBase::Url(_) => None,
            LinkBase::Unreachable(addr) => Some(format!(
                "message links are off: [http] public_url is unset and every HTTP listener is a \
                 wildcard address ({addr}) that subscribers cannot reach; set [http] public_url \
                 (e.g. \"https://mail.example.org:{}\")",
                addr.port()
            )),
            LinkBase::NoListener => {
                Some("message links are off: no [http] listener serves /messages".to_owned())
            }
        }
    }
}

impl HttpConfig {
    /// The base of signed message links: `public_url` when set, else the first HTTPS
    /// listener, else the first HTTP listener, among `tls`/`plain` (the addresses actually
    /// bound, so port 0 has become a port) whose address is not a wildcard.
    pub fn link_base(
        &self,
        plain: &[SocketAddr],
        tls: &[SocketAddr],
    ) -> Result<LinkBase, ConfigError> {
        if let Some(url) = &self.public_url {
            return check_public_url(url).map(LinkBase::Url);
        }
        let reachable = |a: &&SocketAddr| !a.ip().is_unspecified();
        if let Some(a) = tls.iter().find(reachable) {
            return Ok(LinkBase::Url(format!("https://{a}")));
        }
        if let Some(a) = plain.iter().find(reachable) {
            return Ok(LinkBase::Url(format!("http://{a}")));
        }
        Ok(match tls.iter().chain(plain).next() {
            Some(a) => LinkBase::Unreachable(*a),
            None => LinkBase::NoListener,
        })
    }
}

/// True when `sub`'s content policy puts a signed link in events whose message it leaves out,
/// so it needs a [`LinkBase::Url`].
pub fn wants_links(sub: &herald_notify::SubscriptionConfig) -> bool {
    sub.content.max_bytes > 0 && sub.content.reference.http
}

/// `public_url` without its trailing `/`, when it is an absolute HTTP(S) URL with a host.
fn check_public_url(url: &str) -> Result<String, ConfigError> {
    let bad = || ConfigError::PublicUrl(url.to_owned());
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty()
        || host.contains('@')
        || rest.contains(['?', '#'])
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad());
    }
    let bare = host.rsplit_once(':').map_or(host, |(h, _)| h);
    if bare == "0.0.0.0" || bare == "[::]" {
        return Err(bad());
    }
    Ok(url.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_hides_tokens() {
        let c: HttpConfig = toml::from_str(
            r#"
listen = ["127.0.0.1:8080"]
tokens = [{ user = "alice", token = "0123456789abcdef" }]
"#,
        )
        .unwrap();
        assert_eq!(c.listen.len(), 1);
        assert!(!format!("{c:?}").contains("0123456789abcdef"));
        assert!(toml::from_str::<HttpConfig>("lisen = []").is_err());
        assert_eq!(c.file_sink_dir, None);
        assert!(c.webhook_hosts.is_empty());
        let c: HttpConfig = toml::from_str(
            "file_sink_dir = \"/srv/sinks\"\nwebhook_hosts = [\"*.example.org\", \"127.0.0.1\"]\n",
        )
        .unwrap();
        assert_eq!(c.file_sink_dir, Some(PathBuf::from("/srv/sinks")));
        assert_eq!(c.webhook_hosts, ["*.example.org", "127.0.0.1"]);
    }

    #[test]
    fn links_name_a_reachable_address_or_none() {
        let a = |s: &str| -> SocketAddr { s.parse().unwrap() };
        let none = HttpConfig::default();
        // HTTPS first, then HTTP; wildcards never.
        assert_eq!(
            none.link_base(
                &[a("127.0.0.1:8080")],
                &[a("0.0.0.0:8443"), a("[::1]:8443")]
            ),
            Ok(LinkBase::Url("https://[::1]:8443".into()))
        );
        assert_eq!(
            none.link_base(&[a("0.0.0.0:8080"), a("192.0.2.7:8080")], &[a("[::]:8443")]),
            Ok(LinkBase::Url("http://192.0.2.7:8080".into()))
        );
        let wild = none
            .link_base(&[a("0.0.0.0:8080")], &[a("[::]:8443")])
            .unwrap();
        assert_eq!(wild, LinkBase::Unreachable(a("[::]:8443")));
        let why = wild.refusal().unwrap();
        assert!(
            why.contains("public_url") && why.contains("[::]:8443"),
            "{why}"
        );
        assert_eq!(none.link_base(&[], &[]), Ok(LinkBase::NoListener));
        // An explicit public_url wins, even over wildcard listeners.
        let set = HttpConfig {
            public_url: Some("https://mail.example.org:8443/".into()),
            ..HttpConfig::default()
        };
        assert_eq!(
            set.link_base(&[a("0.0.0.0:8080")], &[]),
            Ok(LinkBase::Url("https://mail.example.org:8443".into()))
        );
        assert_eq!(LinkBase::Url("x".into()).refusal(), None);
        for bad in [
            "mail.example.org",
            "ftp://mail.example.org",
            "https://",
            "https://user@host",
            "http://0.0.0.0:8080",
            "http://[::]:8080",
            "https://h/x?y=1",
            "https://h x",
        ] {
            let c = HttpConfig {
                public_url: Some(bad.into()),
                ..HttpConfig::default()
            };
            assert!(
                matches!(c.link_base(&[], &[]), Err(ConfigError::PublicUrl(_))),
                "{bad}"
            );
        }
    }
}
