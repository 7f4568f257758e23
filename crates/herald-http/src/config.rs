//! The `[http]` section of the configuration file.
//!
//! ```toml
//! [http]
//! listen = ["127.0.0.1:8080"]          # DESIGN §3 default
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
    /// Most concurrent live streams (default 1000); more get 503.
    pub max_streams: Option<usize>,
    /// Most concurrent live streams one account may open (default 10); more get 429.
    pub max_streams_per_user: Option<usize>,
    /// Seconds between keep-alives on an idle stream (default 15).
    pub keepalive_secs: Option<u64>,
    /// The URL subscribers reach this server at, for signed message links
    /// (`vnd.herald.contentURL`); default `http://` + the first listening address.
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
}
