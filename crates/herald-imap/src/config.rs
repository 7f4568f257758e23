//! [`ImapConfig`]: everything a deployment tunes about the IMAP service, in one plain struct the
//! binary fills from its configuration and tests build in one line. The session reads the
//! protocol limits; the driver reads the timers.

use crate::session::summaries::Summaries;
use herald_net::AuthLimiter;
use std::sync::Arc;
use std::time::Duration;

/// Default IDLE keep-alive: well above Dovecot's 2 minutes (each keep-alive wakes a phone's
/// radio) and below the 29 minutes after which RFC 2177 clients re-issue IDLE.
pub const DEFAULT_IDLE_KEEPALIVE: Duration = Duration::from_secs(15 * 60);

/// The default command rate of one connection. It bounds what one connection of cheap
/// commands (a NOOP loop, pipelined) takes from the others, yet stays above what a bulk
/// client does on one connection: `imaplib` appends about 2,000 messages a second here, and
/// a limit below that would be the migration's bottleneck.
pub const DEFAULT_COMMANDS_PER_SECOND: u32 = 5000;

/// IMAP service settings.
#[derive(Debug, Clone)]
pub struct ImapConfig {
    /// The server's name, in the greeting and `serverFQDN`-facing texts.
    pub hostname: String,
    /// Largest literal accepted (an APPENDed message); larger ones are refused before a byte of
    /// them is read (`NO [TOOBIG]`).
    pub max_literal: u64,
    /// Longest command line.
    pub max_line: usize,
    /// Most bytes buffered for one command (lines plus non-APPEND literals).
    pub max_command: usize,
    /// Interval between `* OK Still here` lines while a client IDLEs.
    pub idle_keepalive: Duration,
    /// A connection that has not authenticated within this time is closed.
    pub unauthenticated_timeout: Duration,
    /// An authenticated connection silent this long (and not IDLE) is closed (RFC 9051 §5.4:
    /// at least 30 minutes).
    pub autologout: Duration,
    /// At most this many commands per second per connection, after a burst of one second's
    /// worth; more are delayed, not refused.
    pub commands_per_second: u32,
    /// Refuse LOGIN and AUTHENTICATE (advertise `LOGINDISABLED`) on connections without TLS.
    pub login_disabled_without_tls: bool,
    /// Failed-authentication limits per client IP, shared by every listener.
    pub auth_limiter: Arc<AuthLimiter>,
    /// Message summaries FETCH keeps for every session (a clone of the config shares them).
    pub summaries: Summaries,
}

impl ImapConfig {
    /// Defaults for `hostname`: 64 MiB literals, 15-minute IDLE keep-alive, 60 s to log in,
    /// 30-minute autologout, [`DEFAULT_COMMANDS_PER_SECOND`], plaintext login allowed.
    pub fn new(hostname: impl Into<String>) -> ImapConfig {
        ImapConfig {
            hostname: hostname.into(),
            max_literal: 64 * 1024 * 1024,
            max_line: 64 * 1024,
            max_command: 1024 * 1024,
            idle_keepalive: DEFAULT_IDLE_KEEPALIVE,
            unauthenticated_timeout: Duration::from_secs(60),
            autologout: Duration::from_secs(31 * 60),
            commands_per_second: DEFAULT_COMMANDS_PER_SECOND,
            login_disabled_without_tls: false,
            auth_limiter: Arc::new(AuthLimiter::default()),
            summaries: Summaries::default(),
        }
    }
}

impl Default for ImapConfig {
    fn default() -> ImapConfig {
        ImapConfig::new("localhost")
    }
}
