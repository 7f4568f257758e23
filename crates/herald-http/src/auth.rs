//! Who is asking: HTTP Basic with an account's password, or a bearer token (DESIGN §6).
//!
//! - `Authorization: Basic base64(user:password)` is checked by [`Store::authenticate`], the
//!   same check IMAP and POP3 use, so one password works everywhere.
//! - `Authorization: Bearer <token>` is looked up among `[http] tokens` by its SHA-256; a token
//!   acts as its account, whose administrator flag is read from the store on each request so
//!   revoking it takes effect at once.
//!
//! Every attempt counts against the client and the account in the [`AuthLimiter`] the IMAP and
//! POP3 servers share, before it is checked; once a limit is used up, requests get 429 with
//! `Retry-After` before any password is checked (argon2 is deliberately slow, so unchecked
//! guessing would also be a CPU sink).
//! A Basic password over plain HTTP from a non-loopback client is refused (403) unless
//! `[http] plaintext_auth` allows it — by default only when every listener is on loopback.
//! A request without credentials is not a failure — browsers and `curl --anyauth` probe first —
//! and gets 401 with a `WWW-Authenticate` challenge for both schemes. Neither passwords nor
//! tokens are ever logged; failures log the user name tried (escaped) and the address.
//! A successful password login records a Login event (`service` = `http`) once per account and
//! client address within [`LOGIN_WINDOW`]: HTTP has no sessions, and a polling client must not
//! make one event per request. Bearer tokens, keys configured for machines, record none.

use crate::ApiError;
use crate::HttpState;
use crate::config::{ConfigError, TokenConfig};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine as _;
use herald_store::{LoginFailure, SessionContext, Store, StoreError};
use ring::digest::{SHA256, digest};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// The authenticated client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The account whose events the caller sees.
    pub user: String,
    /// Sees every account's events and may use the admin API.
    pub admin: bool,
}

impl Caller {
    /// Fails unless the caller is an administrator.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "`{}` is not an administrator",
                self.user
            )))
        }
    }
}

/// The configured tokens, by SHA-256 digest.
#[derive(Debug, Default)]
pub struct Tokens {
    by_digest: HashMap<[u8; 32], String>,
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, bytes).as_ref());
    out
}

fn parse_hex(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// The hex SHA-256 of a token, as `[http] tokens = [{ sha256 = … }]` expects it.
pub fn token_digest(token: &str) -> String {
    sha256(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Tokens {
    /// Compiles `[http] tokens`.
    pub fn new(config: &[TokenConfig]) -> Result<Tokens, ConfigError> {
        let mut by_digest = HashMap::new();
        for t in config {
            let d = match (&t.token, &t.sha256) {
                (Some(token), None) => {
                    if token.chars().count() < 16 {
                        return Err(ConfigError::Short(t.user.clone()));
                    }
                    sha256(token.as_bytes())
                }
                (None, Some(hex)) => {
                    parse_hex(hex).ok_or_else(|| ConfigError::Digest(t.user.clone()))?
                }
                _ => return Err(ConfigError::TokenForm(t.user.clone())),
            };
            if by_digest.insert(d, t.user.clone()).is_some() {
                return Err(ConfigError::Duplicate(t.user.clone()));
            }
        }
        Ok(Tokens { by_digest })
    }

    /// How many tokens are configured.
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// True when no token is configured.
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// The account a token acts as. The lookup is by digest, so its timing says nothing about
    /// how much of a token matched.
    fn user(&self, token: &str) -> Option<&str> {
        self.by_digest
            .get(&sha256(token.as_bytes()))
            .map(String::as_str)
    }
}

/// What the `Authorization` header carried.
enum Credentials {
    Basic { user: String, password: String },
    Bearer(String),
}

fn parse_authorization(value: &str) -> Option<Credentials> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        Some(Credentials::Basic {
            user: user.to_owned(),
            password: password.to_owned(),
        })
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Some(Credentials::Bearer(rest.to_owned()))
    } else {
        None
    }
}

async fn is_admin(store: &Store, user: &str) -> Result<Option<bool>, StoreError> {
    match store.account_state(user).await? {
        Some(s) if s.disabled => Err(StoreError::AccountDisabled),
        s => Ok(s.map(|s| s.admin)),
    }
}

/// The answer (403) to right credentials of a disabled account.
const DISABLED: &str = "this account is disabled, contact your administrator";

/// Authenticates a request's `Authorization` header, from `ip`, over `transport` (`None`: a
/// router used without [`crate::serve`], which cannot tell; treated as trusted).
pub async fn authenticate(
    state: &HttpState,
    authorization: Option<&str>,
    ip: IpAddr,
    transport: Option<crate::Transport>,
) -> Result<Caller, ApiError> {
    let Some(value) = authorization else {
        return Err(ApiError::Unauthorized);
    };
    let credentials = parse_authorization(value);
    if matches!(credentials, Some(Credentials::Basic { .. }))
        && transport.is_some_and(|t| !t.tls)
        && !state.plaintext_auth
        && !ip.is_loopback()
    {
        // As IMAP's LOGINDISABLED and POP3's plaintext rule: a password never crosses the
        // network in clear unless the operator allowed it.
        tracing::warn!(rip = %ip, "http: refused a Basic password over plain HTTP");
        if let Some(Credentials::Basic { user, .. }) = &credentials {
            record_failure(state, ip, user, LoginFailure::PlaintextRefused).await;
        }
        return Err(ApiError::Forbidden(
            "passwords are not accepted over plain HTTP; use HTTPS or a bearer token".into(),
        ));
    }
    let tried = match &credentials {
        Some(Credentials::Basic { user, .. }) => user.clone(),
        Some(Credentials::Bearer(_)) => "(token)".to_owned(),
        None => String::new(),
    };
    // Counted before anything is checked, so parallel guesses cannot outrun the limit.
    let basic_user = match &credentials {
        Some(Credentials::Basic { user, .. }) => Some(user.clone()),
        _ => None,
    };
    let attempt = match state.limiter.begin("http", ip, &tried) {
        Ok(a) => a,
        Err(refusal) => {
            if let Some(user) = &basic_user {
                record_failure(state, ip, user, LoginFailure::RateLimited).await;
            }
            return Err(ApiError::TooManyFailures(refusal.retry_after()));
        }
    };
    let outcome = match credentials {
        None => Ok(None),
        Some(Credentials::Basic { user, password }) => {
            match state.store.authenticate(&user, &password, None).await {
                Ok(id) => Ok(Some(Caller {
                    user: id.user,
                    admin: id.admin,
                })),
                Err(StoreError::AuthFailed) => Ok(None),
                Err(StoreError::AccountDisabled) => {
                    attempt.succeeded();
                    record_failure(state, ip, &user, LoginFailure::AccountDisabled).await;
                    return Err(ApiError::Forbidden(DISABLED.into()));
                }
                Err(e) => Err(e),
            }
        }
        Some(Credentials::Bearer(token)) => match state.tokens.user(&token) {
            None => Ok(None),
            Some(user) => is_admin(&state.store, user).await.map(|admin| {
                admin.map(|admin| Caller {
                    user: user.to_owned(),
                    admin,
                })
            }),
        },
    };
    let outcome = match outcome {
        Err(StoreError::AccountDisabled) => {
            attempt.succeeded();
            return Err(ApiError::Forbidden(DISABLED.into()));
        }
        other => other?,
    };
    match outcome {
        Some(caller) => {
            attempt.succeeded();
            Ok(caller)
        }
        None => {
            attempt.failed(&tried);
            // A bearer token names no user to report; a wrong password does.
            if let Some(user) = &basic_user {
                record_failure(state, ip, user, LoginFailure::BadCredentials).await;
            }
            Err(ApiError::Unauthorized)
        }
    }
}

/// HTTP has no sessions: a client sends its credentials with every request. A Login event
/// (`service` = `http`) is recorded when an account authenticates with its password from an
/// address it has not
/// logged in from within this window, so an operator sees HTTP logins as they see IMAP and
/// POP3 ones without one event per request of a polling dashboard. HTTP has no Logout.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(600);

/// Most (account, address) pairs remembered; past this the oldest half is forgotten, which at
/// worst records a Login again.
const MAX_RECENT_LOGINS: usize = 10_000;

/// The accounts that logged in over HTTP lately, by client address.
#[derive(Debug, Default)]
pub struct RecentLogins(std::sync::Mutex<HashMap<(String, IpAddr), Instant>>);

impl RecentLogins {
    /// Whether `user` from `ip` makes a new login at `now` (and remembers it if so).
    fn is_new(&self, user: &str, ip: IpAddr, now: Instant) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let key = (user.to_owned(), ip);
        if seen
            .get(&key)
            .is_some_and(|at| now.duration_since(*at) < LOGIN_WINDOW)
        {
            return false;
        }
        if seen.len() >= MAX_RECENT_LOGINS {
            seen.retain(|_, at| now.duration_since(*at) < LOGIN_WINDOW);
            if seen.len() >= MAX_RECENT_LOGINS {
                let mut times: Vec<Instant> = seen.values().copied().collect();
                times.sort_unstable();
                let cut = times[times.len() / 2];
                seen.retain(|_, at| *at > cut);
            }
        }
        seen.insert(key, now);
        true
    }
}

/// Records a Login event for `caller` unless it logged in from this address lately
/// ([`LOGIN_WINDOW`]). A store failure is logged: it must not fail the request it came with.
async fn record_login(
    state: &HttpState,
    caller: &Caller,
    peer: Option<SocketAddr>,
    transport: Option<crate::Transport>,
) {
    let ip = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.ip());
    if !state.logins.is_new(&caller.user, ip, Instant::now()) {
        return;
    }
    let mut ctx = match (peer, transport) {
        (Some(peer), Some(t)) => SessionContext::connection("http", peer, t.local),
        _ => SessionContext::service("http"),
    };
    ctx.user = Some(caller.user.clone());
    if let Err(e) = state.store.login(&ctx).await {
        tracing::error!(user = %caller.user, "http: cannot record the login: {e}");
    }
}

/// Commits `vnd.herald.LoginFailed` for a refused Basic login; the response does not depend
/// on it, so a store error is only logged.
async fn record_failure(state: &HttpState, ip: IpAddr, user: &str, failure: LoginFailure) {
    let mut ctx = SessionContext::service("http");
    ctx.client_ip = Some(ip);
    if let Err(e) = state.store.login_failed(&ctx, user, "Basic", failure).await {
        tracing::warn!(error = %e, "could not record a failed login");
    }
}

impl FromRequestParts<HttpState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &HttpState) -> Result<Self, ApiError> {
        // Without connect info (a router used without `serve`) every client shares one bucket.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let ip = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.ip());
        let header = match parts.headers.get(AUTHORIZATION) {
            None => None,
            Some(v) => Some(v.to_str().map_err(|_| ApiError::Unauthorized)?),
        };
        let transport = parts.extensions.get::<crate::Transport>().copied();
        let caller = authenticate(state, header, ip, transport).await?;
        // A password is a user logging in; a token is a configured machine (a stream consumer,
        // a scraper) presenting its key, which is no login event.
        if header
            .and_then(parse_authorization)
            .is_some_and(|c| matches!(c, Credentials::Basic { .. }))
        {
            record_login(state, &caller, peer, transport).await;
        }
        Ok(caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_by_digest_or_plain() {
        let plain = "0123456789abcdef-alice";
        let t = Tokens::new(&[
            TokenConfig {
                user: "alice".into(),
                token: Some(plain.into()),
                sha256: None,
            },
            TokenConfig {
                user: "bob".into(),
                token: None,
                sha256: Some(token_digest("bob's-long-token-value")),
            },
        ])
        .unwrap();
        assert_eq!(t.user(plain), Some("alice"));
        assert_eq!(t.user("bob's-long-token-value"), Some("bob"));
        assert_eq!(t.user("0123456789abcdef"), None);
        let bad = |token: Option<&str>, sha: Option<&str>| {
            Tokens::new(&[TokenConfig {
                user: "x".into(),
                token: token.map(Into::into),
                sha256: sha.map(Into::into),
            }])
            .unwrap_err()
        };
        assert_eq!(bad(Some("short"), None), ConfigError::Short("x".into()));
        assert_eq!(bad(None, Some("abc")), ConfigError::Digest("x".into()));
        assert_eq!(bad(None, None), ConfigError::TokenForm("x".into()));
        let dup = TokenConfig {
            user: "x".into(),
            token: Some(plain.into()),
            sha256: None,
        };
        assert_eq!(
            Tokens::new(&[dup.clone(), dup]).unwrap_err(),
            ConfigError::Duplicate("x".into())
        );
    }

    #[test]
    fn authorization_headers() {
        match parse_authorization("Basic YWxpY2U6cDpx") {
            Some(Credentials::Basic { user, password }) => {
                assert_eq!((user.as_str(), password.as_str()), ("alice", "p:q"));
            }
            _ => panic!("basic"),
        }
        assert!(matches!(
            parse_authorization("bearer abc"),
            Some(Credentials::Bearer(t)) if t == "abc"
        ));
        assert!(parse_authorization("Basic !!!").is_none());
        assert!(parse_authorization("Digest x").is_none());
        assert!(parse_authorization("Basic").is_none());
    }
}
