//! The authentication cache: a successful password check remembered for a while, so a client
//! that logs in again (a phone reconnecting every few minutes) does not pay for argon2 again.
//!
//! What is kept is never the password: each entry is an HMAC-SHA-256, under a key drawn at
//! start-up and never stored, of the user name, the account's stored password hash (its PHC
//! string) and the password given. The lookup recomputes that tag from the credentials of the
//! moment, so:
//! * a changed password (a new PHC string, from this process, the CLI or another node) can
//!   never match an old entry — the cache forgets it at once; a deleted account has no PHC
//!   string to match;
//! * failed checks are never stored, so the cache cannot speed up guessing;
//! * a memory dump yields tags that are useless without the key.
//!
//! Entries expire after the configured time (`[auth] cache_ttl_secs`; 0 turns the cache off)
//! and the table is bounded: when full, expired entries go first, then everything.

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most entries kept.
const MAX_ENTRIES: usize = 100_000;

/// See the module documentation.
#[derive(Debug)]
pub struct AuthCache {
    key: Option<hmac::Key>,
    ttl: Duration,
    /// Tag → (user, expiry); the user lets [`AuthCache::forget_user`] drop entries eagerly.
    entries: Mutex<HashMap<[u8; 32], (String, Instant)>>,
}

impl AuthCache {
    /// A cache whose entries live `ttl`; `Duration::ZERO` (or a failing random source)
    /// disables it.
    pub fn new(ttl: Duration) -> AuthCache {
        let mut secret = [0u8; 32];
        let key = (!ttl.is_zero() && SystemRandom::new().fill(&mut secret).is_ok())
            .then(|| hmac::Key::new(hmac::HMAC_SHA256, &secret));
        AuthCache {
            key,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn tag(&self, user: &str, phc: &str, password: &str) -> Option<[u8; 32]> {
        let key = self.key.as_ref()?;
        let mut ctx = hmac::Context::with_key(key);
        // Length-prefixed, so no two different triples feed the same bytes.
        for part in [user, phc, password] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part.as_bytes());
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        Some(out)
    }

    /// True when this password was verified for `user` against this stored hash less than
    /// the cache's lifetime ago.
    pub fn hit(&self, user: &str, phc: &str, password: &str) -> bool {
        let Some(tag) = self.tag(user, phc, password) else {
            return false;
        };
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(&tag)
            .is_some_and(|(_, expires)| *expires > Instant::now())
    }

    /// Remembers a successful check.
    pub fn insert(&self, user: &str, phc: &str, password: &str) {
        let Some(tag) = self.tag(user, phc, password) else {
            return;
        };
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (_, expires)| *expires > now);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        let Some(expires) = now.checked_add(self.ttl) else {
            return;
        };
        entries.insert(tag, (user.to_owned(), expires));
    }

    /// Drops every entry of `user` (its password changed or the account went away here; the
    /// PHC binding already makes them unusable, this frees them).
    pub fn forget_user(&self, user: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|_, (u, _)| u != user);
    }

    /// Entries held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_only_the_same_user_hash_and_password() {
        let c = AuthCache::new(Duration::from_secs(60));
        assert!(!c.hit("alice", "$phc1", "pw"));
        c.insert("alice", "$phc1", "pw");
        assert!(c.hit("alice", "$phc1", "pw"));
        assert!(!c.hit("alice", "$phc1", "pw2"), "another password");
        assert!(!c.hit("alice", "$phc2", "pw"), "the password was changed");
        assert!(!c.hit("bob", "$phc1", "pw"), "another user");
        // Length prefixes: moving bytes between fields gives another tag.
        assert!(!c.hit("alic", "e$phc1", "pw"));
        c.forget_user("alice");
        assert!(!c.hit("alice", "$phc1", "pw"));
        assert!(c.is_empty());
    }

    #[test]
    fn entries_expire_and_zero_disables() {
        let c = AuthCache::new(Duration::from_millis(30));
        c.insert("alice", "$phc", "pw");
        assert!(c.hit("alice", "$phc", "pw"));
        std::thread::sleep(Duration::from_millis(60));
        assert!(!c.hit("alice", "$phc", "pw"));
        let off = AuthCache::new(Duration::ZERO);
        off.insert("alice", "$phc", "pw");
        assert!(!off.hit("alice", "$phc", "pw"));
        assert!(off.is_empty());
    }

    #[test]
    fn the_table_is_bounded() {
        let c = AuthCache::new(Duration::from_secs(60));
        for i in 0..MAX_ENTRIES + 10 {
            c.insert(&format!("u{i}"), "$phc", "pw");
        }
        assert!(c.len() <= MAX_ENTRIES);
    }
}
