//! Per-client-IP limits on failed authentication, shared by every listener of a server.
//!
//! A client may fail `max_failures` times within `window`; further attempts are refused until
//! the oldest failure leaves the window. Success clears the client's record. The table is
//! bounded (`max_clients`): when full, the entry whose last failure is oldest is dropped, so an
//! attacker spraying addresses costs a fixed amount of memory.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failure-rate limits for authentication.
#[derive(Debug)]
pub struct AuthLimiter {
    max_failures: usize,
    window: Duration,
    max_clients: usize,
    table: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl Default for AuthLimiter {
    /// Ten failures per client per five minutes; 100,000 clients tracked.
    fn default() -> Self {
        AuthLimiter::new(10, Duration::from_secs(300), 100_000)
    }
}

impl AuthLimiter {
    /// A limiter allowing `max_failures` per `window` per client IP.
    pub fn new(max_failures: usize, window: Duration, max_clients: usize) -> AuthLimiter {
        AuthLimiter {
            max_failures: max_failures.max(1),
            window,
            max_clients: max_clients.max(1),
            table: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(retry_after)` when `ip` has used up its failures.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        self.check_at(ip, Instant::now())
    }

    fn check_at(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let Some(failures) = table.get_mut(&ip) else {
            return Ok(());
        };
        while failures
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            failures.pop_front();
        }
        if failures.is_empty() {
            table.remove(&ip);
            return Ok(());
        }
        if failures.len() >= self.max_failures {
            let oldest = failures.front().copied().unwrap_or(now);
            return Err(self.window.saturating_sub(now.duration_since(oldest)));
        }
        Ok(())
    }

    /// Records a failed attempt by `ip`.
    pub fn failure(&self, ip: IpAddr) {
        self.failure_at(ip, Instant::now());
    }

    fn failure_at(&self, ip: IpAddr, now: Instant) {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if !table.contains_key(&ip) && table.len() >= self.max_clients {
            let stalest = table
                .iter()
                .min_by_key(|(_, f)| f.back().copied().unwrap_or(now))
                .map(|(k, _)| *k);
            if let Some(k) = stalest {
                table.remove(&k);
            }
        }
        let failures = table.entry(ip).or_default();
        failures.push_back(now);
        while failures.len() > self.max_failures {
            failures.pop_front();
        }
    }

    /// Clears `ip`'s record after a successful login.
    pub fn success(&self, ip: IpAddr) {
        self.table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn blocks_after_the_limit_until_the_window_passes() {
        let l = AuthLimiter::new(3, Duration::from_secs(60), 10);
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(l.check_at(A, t0).is_ok(), "attempt {i}");
            l.failure_at(A, t0 + Duration::from_secs(i));
        }
        let wait = l.check_at(A, t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(l.check_at(B, t0).is_ok(), "other clients are not affected");
        assert!(l.check_at(A, t0 + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn success_clears_and_the_table_is_bounded() {
        let l = AuthLimiter::new(1, Duration::from_secs(60), 2);
        l.failure(A);
        assert!(l.check(A).is_err());
        l.success(A);
        assert!(l.check(A).is_ok());
        for i in 0..10u8 {
            l.failure(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, i)));
        }
        assert!(l.table.lock().unwrap().len() <= 2);
    }
}
