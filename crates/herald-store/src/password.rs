//! Password hashes: argon2id PHC strings (`$argon2id$v=19$…`), the RustCrypto `argon2` crate.
//! New hashes use [`PasswordParams`] (`[auth] argon2_*`; by default OWASP's recommendation of
//! 19 MiB and 2 passes, and never less than OWASP's floor); stored hashes are verified with the
//! parameters written in them, so changing the settings never locks anyone out.
//!
//! Hashing is deliberately slow, so callers run it on a blocking thread through [`run_blocking`],
//! never on the writer thread (it would stall every other commit). Salts come from `ring`'s system
//! RNG, the project's one crypto provider.
//!
//! **Working memory is pooled.** Each hash needs `m_cost` KiB (19 MiB). Allocating that per
//! login made glibc raise its adaptive mmap threshold and keep the freed blocks in per-thread
//! arenas: a server that had seen a thousand logins on tokio's blocking threads held over a
//! gigabyte. Instead a small pool of buffers is reused, and at most `limit` hashes run at once
//! (the machine's cores, at least two) — which also keeps a burst of logins from taking every
//! core. Memory for hashing is therefore bounded by `limit × 19 MiB`, whatever the login count.

use crate::error::{Result, StoreError};
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use ring::rand::{SecureRandom, SystemRandom};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};

/// Argon2id cost of new password hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordParams {
    /// Memory per hash, KiB (`[auth] argon2_memory_kib`).
    pub memory_kib: u32,
    /// Passes over the memory (`[auth] argon2_iterations`).
    pub iterations: u32,
    /// Lanes (`[auth] argon2_parallelism`).
    pub parallelism: u32,
}

impl Default for PasswordParams {
    /// OWASP's recommended argon2id setting: 19 MiB, 2 passes, 1 lane.
    fn default() -> PasswordParams {
        PasswordParams {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl PasswordParams {
    /// Refuses settings below OWASP's argon2id floor: its equivalent settings run from 46 MiB
    /// × 1 pass to 7 MiB × 5 passes, so at least 7 MiB and at least 35 MiB × passes.
    pub fn check(&self) -> Result<()> {
        let work = u64::from(self.memory_kib) * u64::from(self.iterations);
        if self.memory_kib < 7 * 1024 || work < 35 * 1024 || self.parallelism == 0 {
            return Err(StoreError::InvalidArgument(format!(
                "argon2 parameters m={} KiB, t={}, p={} are below the OWASP minimum \
                 (at least 7 MiB, and memory × passes at least 35 MiB, e.g. 19 MiB × 2)",
                self.memory_kib, self.iterations, self.parallelism
            )));
        }
        // Above these a setting is a mistake, not hardening: a hash would take seconds or
        // more memory than a server should give one login.
        if self.memory_kib > 1024 * 1024 || self.iterations > 64 || self.parallelism > 16 {
            return Err(StoreError::InvalidArgument(format!(
                "argon2 parameters m={} KiB, t={}, p={} are too large \
                 (at most 1 GiB, 64 passes, 16 lanes)",
                self.memory_kib, self.iterations, self.parallelism
            )));
        }
        self.argon2().map(|_| ())
    }

    fn argon2(&self) -> Result<Params> {
        Params::new(self.memory_kib, self.iterations, self.parallelism, None).map_err(argon2_error)
    }
}

/// Buffers up to this many blocks go back to the pool (the largest configured cost).
static POOLED_BLOCKS: AtomicUsize = AtomicUsize::new(0);

fn pooled_blocks() -> usize {
    POOLED_BLOCKS
        .load(Ordering::Relaxed)
        .max(Params::default().block_count())
}

/// Lets the pool keep buffers of `params`' size (called when a store opens).
pub fn configure(params: &PasswordParams) {
    if let Ok(p) = params.argon2() {
        POOLED_BLOCKS.fetch_max(p.block_count(), Ordering::Relaxed);
    }
}

struct Pool {
    state: Mutex<PoolState>,
    freed: Condvar,
    limit: usize,
}

struct PoolState {
    free: Vec<Vec<Block>>,
    in_use: usize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        state: Mutex::new(PoolState {
            free: Vec::new(),
            in_use: 0,
        }),
        freed: Condvar::new(),
        limit: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .max(2),
    })
}

/// Longest password accepted, in bytes: argon2 hashes any length, so an unbounded one would
/// only be a way to burn CPU.
pub const MAX_PASSWORD: usize = 1024;

/// Refuses passwords no account may have: empty, or longer than [`MAX_PASSWORD`].
pub fn check(password: &str) -> Result<()> {
    if password.is_empty() {
        return Err(StoreError::InvalidArgument(
            "the password must not be empty".into(),
        ));
    }
    if password.len() > MAX_PASSWORD {
        return Err(StoreError::InvalidArgument(format!(
            "the password is longer than {MAX_PASSWORD} bytes"
        )));
    }
    Ok(())
}

/// Runs a hash (`f` calls [`hash`] or [`verify`]) on a blocking thread, for callers on the async
/// runtime. It first waits, asynchronously and first come first served, for one of the pool's
/// slots, so queued hashes hold no blocking threads (which store reads need) while they wait.
pub async fn run_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    static SLOTS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    let slots = SLOTS.get_or_init(|| tokio::sync::Semaphore::new(pool().limit));
    // Never closed, so a slot always comes; without one the pool's own bound still holds.
    let _slot = slots.acquire().await.ok();
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| StoreError::Closed)
}

/// Returns its permit (and, when it is the usual size, its buffer) to the pool even if the hash
/// panics, so a panic cannot leak a permit and slowly block every login.
struct Lease {
    buffer: Vec<Block>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let pool = pool();
        let keep = pooled_blocks();
        let mut state = pool.state.lock().unwrap_or_else(|p| p.into_inner());
        state.in_use -= 1;
        // A stored hash with a larger memory cost gets a one-off buffer; keeping it would break
        // the pool's bound.
        if self.buffer.len() <= keep {
            state.free.push(std::mem::take(&mut self.buffer));
        }
        drop(state);
        pool.freed.notify_one();
    }
}

/// Runs `f` with a working buffer of `blocks` argon2 blocks from the pool, waiting while
/// `limit` hashes are already running.
fn with_memory<T>(blocks: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
    let pool = pool();
    let mut lease = {
        let mut state = pool.state.lock().unwrap_or_else(|p| p.into_inner());
        while state.in_use >= pool.limit {
            state = pool.freed.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        state.in_use += 1;
        Lease {
            buffer: state.free.pop().unwrap_or_default(),
        }
    };
    lease.buffer.resize(blocks, Block::default());
    f(&mut lease.buffer)
}

fn argon2_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::InvalidArgument(format!("password hash: {e}"))
}

/// Hashes a password into a PHC string with the default parameters.
pub fn hash(password: &str) -> Result<String> {
    hash_with(password, &PasswordParams::default())
}

/// Hashes a password into a PHC string with `params`.
pub fn hash_with(password: &str, params: &PasswordParams) -> Result<String> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| StoreError::Io(std::io::Error::other("system random source failed")))?;
    let salt_string = SaltString::encode_b64(&salt).map_err(argon2_error)?;
    let params = params.argon2()?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    with_memory(params.block_count(), |memory| {
        argon.hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, memory)
    })
    .map_err(argon2_error)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(argon2_error)?,
        salt: Some(salt_string.as_salt()),
        hash: Some(Output::new(&out).map_err(argon2_error)?),
    };
    Ok(phc.to_string())
}

/// Checks a pre-hashed password (a PHC string, as `herald user add --password-hash` takes it):
/// Argon2 (id, i or d) with a salt and an output, and parameters `verify` will run — within
/// the same bounds as configured costs, so one imported hash cannot make every login of its
/// account take seconds or a gigabyte. Cost below the configured floor is accepted: the hash
/// comes from another system and is re-hashed at Herald's cost only when its owner changes
/// the password.
pub fn check_phc(phc: &str) -> Result<()> {
    let bad = |why: &str| {
        StoreError::InvalidArgument(format!(
            "not a usable password hash ({why}); expected a PHC string such as \
             `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`"
        ))
    };
    let parsed = PasswordHash::new(phc).map_err(|e| bad(&e.to_string()))?;
    Algorithm::try_from(parsed.algorithm).map_err(|_| bad("only argon2id, argon2i, argon2d"))?;
    let params = Params::try_from(&parsed).map_err(|e| bad(&e.to_string()))?;
    if params.m_cost() > 1024 * 1024 || params.t_cost() > 64 || params.p_cost() > 16 {
        return Err(bad("cost above 1 GiB, 64 passes or 16 lanes"));
    }
    if let Some(v) = parsed.version {
        Version::try_from(v).map_err(|_| bad("unknown argon2 version"))?;
    }
    let salt = parsed.salt.ok_or_else(|| bad("no salt"))?;
    let mut salt_buf = [0u8; 64];
    salt.decode_b64(&mut salt_buf)
        .map_err(|_| bad("salt is not base64"))?;
    if parsed.hash.is_none() {
        return Err(bad("no hash output"));
    }
    Ok(())
}

/// True when `password` matches the PHC string. A malformed stored hash never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
        parsed.salt,
        parsed.hash,
    ) else {
        return false;
    };
    let version = parsed
        .version
        .and_then(|v| Version::try_from(v).ok())
        .unwrap_or(Version::V0x13);
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let blocks = params.block_count();
    let argon = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    let computed = with_memory(blocks, |memory| {
        argon.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, memory)
    });
    // `Output`'s equality is constant-time.
    computed.is_ok() && Output::new(&out).is_ok_and(|o| o == expected)
}

/// A valid hash of a password no one has, with `params`: verified against when the user does
/// not exist, so that a wrong user name costs the same time as a wrong password.
pub fn dummy(params: &PasswordParams) -> String {
    hash_with("herald-dummy-password", params).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    #[test]
    fn parameters_below_the_owasp_floor_are_refused() {
        assert!(PasswordParams::default().check().is_ok());
        for (m, t) in [
            (46 * 1024, 1),
            (12 * 1024, 3),
            (7 * 1024, 5),
            (64 * 1024, 3),
        ] {
            let p = PasswordParams {
                memory_kib: m,
                iterations: t,
                parallelism: 1,
            };
            assert!(p.check().is_ok(), "{p:?}");
        }
        for (m, t, par) in [
            (4096, 10, 1),
            (19 * 1024, 1, 1),
            (8 * 1024, 4, 1),
            (19456, 2, 0),
            (u32::MAX, 2, 1),
            (19456, 1000, 1),
            (19456, 2, 64),
        ] {
            let p = PasswordParams {
                memory_kib: m,
                iterations: t,
                parallelism: par,
            };
            assert!(p.check().is_err(), "{p:?}");
        }
        let strong = PasswordParams {
            memory_kib: 46 * 1024,
            iterations: 1,
            parallelism: 1,
        };
        let h = hash_with("pw", &strong).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=47104,t=1,p=1$"), "{h}");
        assert!(verify("pw", &h));
    }

    #[test]
    fn pre_hashed_passwords_are_checked_before_they_are_stored() {
        let ours = hash("secret").unwrap();
        check_phc(&ours).unwrap();
        let argon2i = ours.replacen("$argon2id$", "$argon2i$", 1);
        check_phc(&argon2i).unwrap();
        for bad in [
            "",
            "secret",
            "{SHA512-CRYPT}$6$abc$def",
            "$bcrypt$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
            "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
            "$argon2id$v=19$m=19456,t=2,p=1",
        ] {
            assert!(check_phc(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hash_and_verify() {
        let h = hash("s3cret").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("s3cret", &h));
        assert!(!verify("S3cret", &h));
        assert!(!verify("s3cret", "not a hash"));
        assert_ne!(h, hash("s3cret").unwrap(), "salted");
    }

    #[test]
    fn interoperates_with_the_crates_own_phc_code() {
        // Hashes made by the standard API (older Herald data) verify here, and ours verify there.
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let theirs = Argon2::default()
            .hash_password(b"pw", &salt)
            .unwrap()
            .to_string();
        assert!(verify("pw", &theirs));
        assert!(!verify("px", &theirs));
        let ours = hash("pw").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default().verify_password(b"pw", &parsed).is_ok());
        // Other parameters are honoured from the PHC string.
        let light = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"pw", &salt)
        .unwrap()
        .to_string();
        assert!(verify("pw", &light));
    }

    #[test]
    fn concurrent_hashes_share_a_bounded_pool() {
        let dummy: &'static str = Box::leak(dummy(&PasswordParams::default()).into_boxed_str());
        let threads: Vec<_> = (0..8)
            .map(|i| std::thread::spawn(move || verify(&format!("p{i}"), dummy)))
            .collect();
        for t in threads {
            assert!(!t.join().unwrap());
        }
        // Other tests hash in parallel: only the bounds are certain.
        let state = pool().state.lock().unwrap();
        assert!(state.in_use <= pool().limit);
        assert!(
            state.free.len() + state.in_use <= pool().limit,
            "{} buffers",
            state.free.len()
        );
    }
}
