//! Limits on authentication attempts, shared by every listener of a server (IMAP, POP3, HTTP).
//!
//! An attempt is **counted before its password is checked**: [`AuthLimiter::begin`] records it
//! as a failure at once and hands back an [`Attempt`]; only [`Attempt::succeeded`] takes that
//! one record back. So a burst of parallel guesses cannot slip past the limit while their hashes
//! run, a guess whose connection drops mid-check still counts, and one account's successful
//! login never clears failures made against another account.
//!
//! Three limits apply to each attempt:
//! - **per client**: `max_failures` per `window`, where a client is an IPv4 address, the whole
//!   of 127.0.0.0/8 (every loopback address is the same machine), or an IPv6 /64 (what one
//!   subscriber usually holds) — so hopping addresses inside one's own range buys nothing;
//! - **per account**: `max_account_failures` per `window` against one user name, from any
//!   client, which bounds a guessing campaign spread over many addresses. A client that has
//!   logged in to that account before (within a day) is exempt from this limit, so an attacker
//!   cannot lock the owner out of their own account from the owner's usual address;
//! - **in flight**: password hashing is slow by design, so at most `max_in_flight` checks may
//!   be queued or running server-wide and at most `max_in_flight_per_client` from one client.
//!   Past that an attempt is refused at once instead of waiting, and one client cannot fill the
//!   queue that every other user's login goes through.
//!
//! Every refusal and every failure is logged at `warn` with a fixed message and the client's
//! address as `rip=`, a form fail2ban can follow (README "Logs"). The tables are bounded
//! (`max_clients` entries each; the stalest entry goes first), so an attacker spraying
//! addresses or user names costs a fixed amount of memory.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a successful login exempts its client from the account's limit.
const TRUSTED_FOR: Duration = Duration::from_secs(24 * 3600);

/// Longest user name kept as an account key; longer names are cut (they cannot exist).
const MAX_ACCOUNT_KEY: usize = 256;

/// Why an attempt was refused before its password was looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The client used up its failures; it may try again after the duration.
    Client(Duration),
    /// The account had too many failures from clients it does not know.
    Account(Duration),
    /// Too many password checks are queued, server-wide or from this client.
    Busy,
}

impl Refusal {
    /// When the client may try again (`Busy`: a short while).
    pub fn retry_after(self) -> Duration {
        match self {
            Refusal::Client(d) | Refusal::Account(d) => d.max(Duration::from_secs(1)),
            Refusal::Busy => Duration::from_secs(1),
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Refusal::Client(_) => "too many failures from this client",
            Refusal::Account(_) => "too many failures for this account",
            Refusal::Busy => "too many checks in flight",
        }
    }
}

/// Limits for authentication; see the module doc.
#[derive(Debug)]
pub struct AuthLimiter {
    max_failures: usize,
    max_account_failures: usize,
    window: Duration,
    max_clients: usize,
    max_in_flight: usize,
    max_in_flight_per_client: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    clients: HashMap<IpAddr, Bucket>,
    accounts: HashMap<String, Bucket>,
    trusted: HashMap<(IpAddr, String), Instant>,
    in_flight: usize,
}

/// Recent failures (oldest first) and checks in flight of one client or account.
#[derive(Debug, Default)]
struct Bucket {
    failures: VecDeque<Instant>,
    in_flight: usize,
}

impl Bucket {
    fn expire(&mut self, now: Instant, window: Duration) {
        while self
            .failures
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= window)
        {
            self.failures.pop_front();
        }
    }

    /// `Some(retry_after)` when the bucket is full.
    fn full(&self, max: usize, now: Instant, window: Duration) -> Option<Duration> {
        (self.failures.len() >= max).then(|| {
            let oldest = self.failures.front().copied().unwrap_or(now);
            window.saturating_sub(now.saturating_duration_since(oldest))
        })
    }

    /// Takes back the failure recorded at `at` (the attempt succeeded).
    fn forget(&mut self, at: Instant) {
        if let Some(i) = self.failures.iter().rposition(|t| *t == at) {
            self.failures.remove(i);
        }
    }

    fn idle(&self) -> bool {
        self.failures.is_empty() && self.in_flight == 0
    }
}

/// Drops the stalest idle-most entry of a full table, so it can take `key`.
fn make_room<K: std::hash::Hash + Eq + Clone, V>(
    table: &mut HashMap<K, V>,
    key: &K,
    max: usize,
    age: impl Fn(&V) -> Option<Instant>,
) {
    if table.contains_key(key) || table.len() < max {
        return;
    }
    let stalest = table
        .iter()
        .min_by_key(|(_, v)| age(v))
        .map(|(k, _)| k.clone());
    if let Some(k) = stalest {
        table.remove(&k);
    }
}

/// The key a client's failures are counted under (see the module doc).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)),
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => client_key(IpAddr::V4(v4)),
            None if v6.is_loopback() => IpAddr::V6(v6),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

fn account_key(user: &str) -> String {
    let mut end = user.len().min(MAX_ACCOUNT_KEY);
    while !user.is_char_boundary(end) {
        end -= 1;
    }
    user[..end].to_lowercase()
}

impl Default for AuthLimiter {
    /// Ten failures per client and twenty per account per five minutes; 64 checks in flight,
    /// 8 from one client; 100,000 clients and accounts tracked.
    fn default() -> Self {
        AuthLimiter::new(10, Duration::from_secs(300), 100_000)
    }
}

impl AuthLimiter {
    /// A limiter allowing `max_failures` per `window` per client, twice that per account, and
    /// the default in-flight bounds.
    pub fn new(max_failures: usize, window: Duration, max_clients: usize) -> AuthLimiter {
        let max_failures = max_failures.max(1);
        AuthLimiter {
            max_failures,
            max_account_failures: max_failures * 2,
            window,
            max_clients: max_clients.max(1),
            max_in_flight: 64,
            max_in_flight_per_client: 8,
            state: Mutex::new(State::default()),
        }
    }

    /// Sets the per-account failure limit.
    pub fn with_account_limit(mut self, max: usize) -> AuthLimiter {
        self.max_account_failures = max.max(1);
        self
    }

    /// Sets how many password checks may be in flight, in all and from one client.
    pub fn with_in_flight(mut self, total: usize, per_client: usize) -> AuthLimiter {
        self.max_in_flight = total.max(1);
        self.max_in_flight_per_client = per_client.max(1);
        self
    }

    /// Admits an attempt by `ip` to log in as `user` through `service`, counting it as a failure
    /// until [`Attempt::succeeded`] says otherwise; or refuses it (and logs the refusal).
    pub fn begin(
        self: &Arc<Self>,
        service: &'static str,
        ip: IpAddr,
        user: &str,
    ) -> Result<Attempt, Refusal> {
        self.begin_at(service, ip, user, Instant::now())
    }

    fn begin_at(
        self: &Arc<Self>,
        service: &'static str,
        ip: IpAddr,
        user: &str,
        now: Instant,
    ) -> Result<Attempt, Refusal> {
        let client = client_key(ip);
        let account = account_key(user);
        let refused = {
            let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let state = &mut *guard;
            self.admit(state, client, &account, now).err()
        };
        if let Some(refusal) = refused {
            herald_metrics::global().login(
                herald_metrics::Protocol::from_name(service),
                herald_metrics::LoginResult::Refused,
            );
            tracing::warn!(
                rip = %ip,
                user = ?user,
                service,
                reason = refusal.reason(),
                "authentication refused"
            );
            return Err(refusal);
        }
        Ok(Attempt {
            limiter: Arc::clone(self),
            service,
            ip,
            client,
            account,
            at: now,
            done: false,
        })
    }

    fn admit(
        &self,
        state: &mut State,
        client: IpAddr,
        account: &str,
        now: Instant,
    ) -> Result<(), Refusal> {
        let window = self.window;
        if let Some(c) = state.clients.get_mut(&client) {
            c.expire(now, window);
            if let Some(wait) = c.full(self.max_failures, now, window) {
                return Err(Refusal::Client(wait));
            }
        }
        let trusted = state
            .trusted
            .get(&(client, account.to_owned()))
            .is_some_and(|t| now.saturating_duration_since(*t) < TRUSTED_FOR);
        if let Some(a) = state.accounts.get_mut(account) {
            a.expire(now, window);
            if !trusted && let Some(wait) = a.full(self.max_account_failures, now, window) {
                return Err(Refusal::Account(wait));
            }
        }
        let client_in_flight = state.clients.get(&client).map_or(0, |c| c.in_flight);
        if state.in_flight >= self.max_in_flight
            || client_in_flight >= self.max_in_flight_per_client
        {
            return Err(Refusal::Busy);
        }
        let last = |b: &Bucket| b.failures.back().copied();
        make_room(&mut state.clients, &client, self.max_clients, last);
        make_room(
            &mut state.accounts,
            &account.to_owned(),
            self.max_clients,
            last,
        );
        for bucket in [
            state.clients.entry(client).or_default(),
            state.accounts.entry(account.to_owned()).or_default(),
        ] {
            bucket.failures.push_back(now);
            bucket.in_flight += 1;
        }
        state.in_flight += 1;
        Ok(())
    }

    fn finish(&self, attempt: &Attempt, ok: bool) {
        herald_metrics::global().login(
            herald_metrics::Protocol::from_name(attempt.service),
            if ok {
                herald_metrics::LoginResult::Ok
            } else {
                herald_metrics::LoginResult::Failed
            },
        );
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let state = &mut *guard;
        state.in_flight = state.in_flight.saturating_sub(1);
        let buckets = [
            state.clients.get_mut(&attempt.client),
            state.accounts.get_mut(&attempt.account),
        ];
        for b in buckets.into_iter().flatten() {
            b.in_flight = b.in_flight.saturating_sub(1);
            if ok {
                b.forget(attempt.at);
            }
        }
        if state.clients.get(&attempt.client).is_some_and(Bucket::idle) {
            state.clients.remove(&attempt.client);
        }
        if state
            .accounts
            .get(&attempt.account)
            .is_some_and(Bucket::idle)
        {
            state.accounts.remove(&attempt.account);
        }
        if ok {
            let key = (attempt.client, attempt.account.clone());
            make_room(&mut state.trusted, &key, self.max_clients, |t| Some(*t));
            state.trusted.insert(key, Instant::now());
        }
    }
}

/// One admitted authentication attempt. It counts as a failure unless [`Attempt::succeeded`]
/// is called — also when it is dropped unresolved (a connection that vanished mid-check).
#[derive(Debug)]
#[must_use = "an attempt counts as a failure until it is resolved"]
pub struct Attempt {
    limiter: Arc<AuthLimiter>,
    service: &'static str,
    ip: IpAddr,
    client: IpAddr,
    account: String,
    at: Instant,
    done: bool,
}

impl Attempt {
    /// The credentials were right: the attempt no longer counts against anyone.
    pub fn succeeded(mut self) {
        self.done = true;
        self.limiter.finish(&self, true);
    }

    /// The credentials were wrong: the attempt stays counted, and the failure is logged.
    pub fn failed(mut self, user: &str) {
        self.done = true;
        tracing::warn!(
            rip = %self.ip,
            user = ?user,
            service = self.service,
            "authentication failed"
        );
        self.limiter.finish(&self, false);
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if !self.done {
            self.limiter.finish(self, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    fn limiter(max: usize, window: u64) -> Arc<AuthLimiter> {
        Arc::new(AuthLimiter::new(max, Duration::from_secs(window), 100))
    }

    #[test]
    fn blocks_after_the_limit_until_the_window_passes() {
        let l = limiter(3, 60);
        let t0 = Instant::now();
        for i in 0..3 {
            let a = l.begin_at("test", A, "bob", t0 + Duration::from_secs(i));
            a.unwrap().failed("bob");
        }
        let wait = l
            .begin_at("test", A, "carol", t0 + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(wait, Refusal::Client(Duration::from_secs(50)));
        assert!(
            l.begin_at("test", B, "carol", t0).is_ok(),
            "other clients are not affected"
        );
        assert!(
            l.begin_at("test", A, "bob", t0 + Duration::from_secs(60))
                .is_ok()
        );
    }

    #[test]
    fn a_success_does_not_clear_failures_against_other_accounts() {
        let l = limiter(3, 60);
        for _ in 0..2 {
            l.begin("test", A, "alice").unwrap().failed("alice");
        }
        // The attacker's own account logs in fine, again and again…
        for _ in 0..5 {
            l.begin("test", A, "mallory").unwrap().succeeded();
        }
        // …but that buys no further guesses at alice.
        l.begin("test", A, "alice").unwrap().failed("alice");
        assert!(matches!(
            l.begin("test", A, "alice"),
            Err(Refusal::Client(_))
        ));
    }

    #[test]
    fn parallel_attempts_are_counted_before_they_are_checked() {
        let l =
            Arc::new(AuthLimiter::new(10, Duration::from_secs(60), 100).with_in_flight(1000, 1000));
        let admitted: Vec<_> = (0..600)
            .filter_map(|_| l.begin("test", A, "alice").ok())
            .collect();
        assert_eq!(admitted.len(), 10, "only the limit's worth is ever checked");
        drop(admitted);
        assert!(
            l.begin("test", A, "alice").is_err(),
            "dropped attempts count as failures"
        );
    }

    #[test]
    fn loopback_and_ipv6_neighbours_share_one_budget() {
        let l = limiter(2, 60);
        l.begin("test", "127.0.0.1".parse().unwrap(), "x")
            .unwrap()
            .failed("x");
        l.begin("test", "127.9.8.7".parse().unwrap(), "y")
            .unwrap()
            .failed("y");
        assert!(l.begin("test", "127.0.0.2".parse().unwrap(), "z").is_err());
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        l.begin("test", v6("2001:db8:1:2::1"), "x")
            .unwrap()
            .failed("x");
        l.begin("test", v6("2001:db8:1:2:ffff::9"), "y")
            .unwrap()
            .failed("y");
        assert!(l.begin("test", v6("2001:db8:1:2::77"), "z").is_err());
        assert!(
            l.begin("test", v6("2001:db8:1:3::1"), "z").is_ok(),
            "another /64"
        );
        assert_eq!(client_key(v6("::ffff:192.0.2.1")), A);
    }

    #[test]
    fn an_account_is_limited_across_clients_but_not_for_its_owner() {
        let l = Arc::new(AuthLimiter::new(10, Duration::from_secs(60), 1000).with_account_limit(5));
        // The owner logs in from A.
        l.begin("test", A, "alice").unwrap().succeeded();
        // Five addresses try one guess each.
        for i in 0..5u8 {
            let ip = IpAddr::V4(Ipv4Addr::new(198, 51, 100, i));
            l.begin("test", ip, "alice").unwrap().failed("alice");
        }
        let sixth = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 77));
        assert!(matches!(
            l.begin("test", sixth, "Alice"),
            Err(Refusal::Account(_))
        ));
        assert!(
            l.begin("test", A, "alice").is_ok(),
            "the owner's client still gets in"
        );
    }

    #[test]
    fn in_flight_checks_are_bounded_per_client_and_in_all() {
        let l = Arc::new(AuthLimiter::new(100, Duration::from_secs(60), 100).with_in_flight(3, 2));
        let a1 = l.begin("test", A, "u1").unwrap();
        let _a2 = l.begin("test", A, "u2").unwrap();
        assert_eq!(l.begin("test", A, "u3").unwrap_err(), Refusal::Busy);
        let _b1 = l.begin("test", B, "u4").unwrap();
        assert_eq!(
            l.begin("test", IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)), "u5")
                .unwrap_err(),
            Refusal::Busy
        );
        a1.succeeded();
        assert!(l.begin("test", A, "u3").is_ok());
    }

    #[test]
    fn the_tables_are_bounded() {
        let l = Arc::new(AuthLimiter::new(1, Duration::from_secs(60), 2));
        for i in 0..10u8 {
            let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, i));
            l.begin("test", ip, &format!("u{i}")).unwrap().failed("u");
        }
        let state = l.state.lock().unwrap();
        assert!(state.clients.len() <= 2 && state.accounts.len() <= 2);
    }
}
