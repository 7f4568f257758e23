//! Password hashes: argon2id PHC strings (`$argon2id$v=19$…`), the RustCrypto `argon2` crate
//! with its default parameters (OWASP's minimum: 19 MiB, 2 passes).
//!
//! Hashing is deliberately slow, so callers run it on a blocking thread, never on the writer
//! thread (it would stall every other commit). Salts come from `ring`'s system RNG, the
//! project's one crypto provider.

use crate::{Result, StoreError};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use ring::rand::{SecureRandom, SystemRandom};

/// Hashes a password into a PHC string.
pub fn hash(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| StoreError::Io(std::io::Error::other("system random source failed")))?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| StoreError::InvalidArgument(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::InvalidArgument(format!("password hash: {e}")))
}

/// True when `password` matches the PHC string. A malformed stored hash never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A valid hash of a random password, verified against when the user does not exist so that
/// a wrong user name costs the same time as a wrong password.
pub fn dummy() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash("herald-dummy-password").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash("s3cret").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("s3cret", &h));
        assert!(!verify("S3cret", &h));
        assert!(!verify("s3cret", "not a hash"));
        assert_ne!(h, hash("s3cret").unwrap(), "salted");
    }
}
