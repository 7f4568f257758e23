//! Webhook signatures in the Standard Webhooks convention (DESIGN §6): headers `webhook-id`,
//! `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256(key, id.timestamp.body)>`.
//!
//! A secret is configured as `whsec_` + base64(key). Two secrets may be configured while a
//! receiver rotates keys; every request then carries one signature per secret, space-separated,
//! and a receiver holding either key accepts it. HMAC comes from `ring`, the project's single
//! crypto provider.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;

/// The prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// Why a secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The secret does not start with `whsec_`.
    #[error("a webhook secret starts with `whsec_` followed by base64")]
    Prefix,
    /// The part after `whsec_` is not base64.
    #[error("the webhook secret after `whsec_` is not valid base64")]
    Base64,
    /// The key is shorter than 24 bytes (Standard Webhooks asks for 24 to 64).
    #[error("the webhook secret's key is {0} bytes; at least 24 are required")]
    TooShort(usize),
}

/// A set of signing keys (one, or two during rotation).
#[derive(Clone)]
pub struct Signer {
    keys: Vec<hmac::Key>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "Signer({} key(s))", self.keys.len())
    }
}

/// The three headers of a signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `webhook-id`: the event's `vnd.herald.id`, or `first-last` for a batch.
    pub id: String,
    /// `webhook-timestamp`: seconds since the Unix epoch.
    pub timestamp: i64,
    /// `webhook-signature`: `v1,<sig>` per key, space-separated.
    pub signature: String,
}

impl Signer {
    /// Builds a signer from `whsec_…` secrets (at least one).
    pub fn new<S: AsRef<str>>(secrets: &[S]) -> Result<Signer, SecretError> {
        let keys = secrets
            .iter()
            .map(|s| {
                let b64 = s
                    .as_ref()
                    .strip_prefix(SECRET_PREFIX)
                    .ok_or(SecretError::Prefix)?;
                let key = STANDARD.decode(b64).map_err(|_| SecretError::Base64)?;
                if key.len() < 24 {
                    return Err(SecretError::TooShort(key.len()));
                }
                Ok(hmac::Key::new(hmac::HMAC_SHA256, &key))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Signer { keys })
    }

    /// Signs `body` sent as message `id` at `timestamp`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> SignedHeaders {
        let mut signature = String::new();
        for key in &self.keys {
            let mut ctx = hmac::Context::with_key(key);
            ctx.update(id.as_bytes());
            ctx.update(b".");
            ctx.update(timestamp.to_string().as_bytes());
            ctx.update(b".");
            ctx.update(body);
            if !signature.is_empty() {
                signature.push(' ');
            }
            signature.push_str("v1,");
            signature.push_str(&STANDARD.encode(ctx.sign().as_ref()));
        }
        SignedHeaders {
            id: id.to_owned(),
            timestamp,
            signature,
        }
    }
}

/// Generates a new random secret in `whsec_` form (32-byte key).
pub fn generate_secret() -> String {
    use ring::rand::SecureRandom as _;
    let mut key = [0u8; 32];
    // The system RNG failing is not recoverable and never happens on Linux with getrandom.
    ring::rand::SystemRandom::new()
        .fill(&mut key)
        .expect("system random number generator");
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn verify_with_reference(secret: &str, h: &SignedHeaders, body: &[u8]) -> bool {
        let mut headers = http::HeaderMap::new();
        headers.insert("webhook-id", h.id.parse().unwrap());
        headers.insert(
            "webhook-timestamp",
            h.timestamp.to_string().parse().unwrap(),
        );
        headers.insert("webhook-signature", h.signature.parse().unwrap());
        standardwebhooks::Webhook::new(secret)
            .unwrap()
            .verify(body, &headers)
            .is_ok()
    }

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    #[test]
    fn signatures_verify_with_the_reference_library() {
        let body = br#"{"event":"MessageNew","vnd.herald.id":7}"#;
        let h = Signer::new(&[KEY_A]).unwrap().sign("7", now(), body);
        assert!(h.signature.starts_with("v1,"));
        assert!(verify_with_reference(KEY_A, &h, body));
        // A changed body or id fails.
        assert!(!verify_with_reference(KEY_A, &h, b"{}"));
        let other = SignedHeaders {
            id: "8".into(),
            ..h.clone()
        };
        assert!(!verify_with_reference(KEY_A, &other, body));
    }

    #[test]
    fn rotation_signs_with_both_keys() {
        let key_b = generate_secret();
        let h = Signer::new(&[KEY_A, key_b.as_str()])
            .unwrap()
            .sign("42", now(), b"[]");
        assert_eq!(h.signature.matches("v1,").count(), 2);
        assert!(verify_with_reference(KEY_A, &h, b"[]"));
        assert!(verify_with_reference(&key_b, &h, b"[]"));
        let key_c = generate_secret();
        assert!(!verify_with_reference(&key_c, &h, b"[]"));
    }

    #[test]
    fn known_answer() {
        // Computed independently with Python: base64(hmac.new(key, b"msg_1.1614265330.{}", sha256)).
        let h = Signer::new(&[KEY_A])
            .unwrap()
            .sign("msg_1", 1_614_265_330, b"{}");
        assert_eq!(h.signature, KNOWN_SIGNATURE);
    }

    const KNOWN_SIGNATURE: &str = "v1,ZztYR0IIDCBCUcYzh8ZE+qsQWpIgtHU7R1hpe8htaD4=";

    #[test]
    fn bad_secrets() {
        assert_eq!(Signer::new(&["abc"]).unwrap_err(), SecretError::Prefix);
        assert_eq!(Signer::new(&["whsec_!!"]).unwrap_err(), SecretError::Base64);
        assert_eq!(
            Signer::new(&["whsec_AAAA"]).unwrap_err(),
            SecretError::TooShort(3)
        );
        assert!(format!("{:?}", Signer::new(&[KEY_A]).unwrap()).contains("1 key"));
    }
}
