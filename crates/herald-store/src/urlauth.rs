//! Mailbox access keys for IMAP URLAUTH (RFC 4467) and the `INTERNAL` mechanism built on them.
//!
//! A URLAUTH-authorized URL is a "rump" URL (everything up to and including the access
//! identifier, `…;URLAUTH=authuser`) followed by `:INTERNAL:` and a token. The token is
//! HMAC-SHA256 of the rump's exact bytes under the **mailbox access key** of the mailbox the URL
//! names, in lower-case hex. So a URL proves that its mailbox's owner (or Herald on their
//! behalf, for events) authorized exactly that URL — any change to the host, user, mailbox,
//! UIDVALIDITY, UID, section, expiry or access identifier changes the rump and the token no
//! longer matches; and resetting the key revokes every URL issued under it.
//!
//! Keys live in the store (table `urlauth_keys`, one row per mailbox, 256 random bits from
//! `ring`'s system CSPRNG), created by the first GENURLAUTH (or event reference) that needs one,
//! deleted by RESETKEY and with their mailbox or account. A deleted key is never reused: the
//! next use creates a fresh one, which is how RESETKEY "replaces" it.
//!
//! **No event for key changes.** RESETKEY changes no mail state RFC 5423 describes and its
//! Appendix A names no such event; the keys are credentials private to the account (as push
//! subscriptions are, which emit nothing either), and an event would announce to every
//! subscriber that a user just revoked their links — information about the user, not about the
//! mailbox. A consumer holding a revoked `vnd.herald.urlauth` learns it from URLFETCH's NIL.
//!
//! Verification compares HMAC tags with `ring::hmac::verify`, which runs in constant time.

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// Length in bytes of a mailbox access key (256 bits; RFC 4467 §7 asks for at least 128).
pub const KEY_LEN: usize = 32;

/// A mailbox access key.
pub type AccessKey = [u8; KEY_LEN];

/// The one authorization mechanism Herald implements (RFC 4467 §7).
pub const INTERNAL: &str = "INTERNAL";

/// A fresh random key, or `None` if the system's random number generator failed.
pub fn new_key() -> Option<AccessKey> {
    let mut key = [0u8; KEY_LEN];
    SystemRandom::new().fill(&mut key).ok()?;
    Some(key)
}

/// The `INTERNAL` token of `rump` under `key`: HMAC-SHA256, lower-case hex.
pub fn token(key: &AccessKey, rump: &str) -> String {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), rump.as_bytes());
    let mut out = String::with_capacity(tag.as_ref().len() * 2);
    for b in tag.as_ref() {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|p| {
            let d = |c: u8| char::from(c).to_digit(16);
            Some((d(p[0])? * 16 + d(p[1])?) as u8)
        })
        .collect()
}

/// True when `token` (hex, either case) is the `INTERNAL` token of `rump` under `key`. The
/// comparison of the tags takes the same time wherever they differ.
pub fn verify(key: &AccessKey, rump: &str, token: &str) -> bool {
    let Some(tag) = unhex(token) else {
        return false;
    };
    hmac::verify(
        &hmac::Key::new(hmac::HMAC_SHA256, key),
        rump.as_bytes(),
        &tag,
    )
    .is_ok()
}

/// Splits an authorized URL into its rump, mechanism and token (`None` when it does not end
/// in `;URLAUTH=access:mechanism:token`). Neither the mechanism nor the token may contain `:`,
/// so the last two colons delimit them.
pub fn split(url: &str) -> Option<(&str, &str, &str)> {
    let mut parts = url.rsplitn(3, ':');
    let token = parts.next()?;
    let mechanism = parts.next()?;
    let rump = parts.next()?;
    let at = rump.to_ascii_uppercase().rfind(";URLAUTH=")?;
    // The access identifier follows `;URLAUTH=` and is not empty.
    if rump.len() <= at + ";URLAUTH=".len() || token.is_empty() || mechanism.is_empty() {
        return None;
    }
    Some((rump, mechanism, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUMP: &str = "imap://alice@h/INBOX;UIDVALIDITY=7/;UID=3;URLAUTH=authuser";

    #[test]
    fn a_token_verifies_only_for_its_rump_and_key() {
        let key = [9u8; KEY_LEN];
        let t = token(&key, RUMP);
        assert_eq!(t.len(), 64);
        assert!(verify(&key, RUMP, &t));
        assert!(verify(&key, RUMP, &t.to_ascii_uppercase()));
        assert!(!verify(&[8u8; KEY_LEN], RUMP, &t), "another key");
        assert!(!verify(&key, &RUMP.replace("UID=3", "UID=4"), &t));
        assert!(!verify(&key, &RUMP.replace("authuser", "anonymous"), &t));
        assert!(!verify(&key, RUMP, &t[..62]), "a shorter token");
        assert!(!verify(&key, RUMP, &format!("{t}00")), "a longer token");
        assert!(!verify(&key, RUMP, "zz"), "not hex");
        assert!(!verify(&key, RUMP, ""), "empty");
        let mut flipped = t.clone().into_bytes();
        flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
        assert!(!verify(&key, RUMP, std::str::from_utf8(&flipped).unwrap()));
    }

    #[test]
    fn keys_are_random() {
        let (a, b) = (new_key().unwrap(), new_key().unwrap());
        assert_ne!(a, b);
        assert_ne!(a, [0u8; KEY_LEN]);
    }

    #[test]
    fn split_finds_rump_mechanism_and_token() {
        let url = format!("{RUMP}:INTERNAL:abcd");
        assert_eq!(split(&url), Some((RUMP, "INTERNAL", "abcd")));
        assert_eq!(split(RUMP), None, "a rump alone");
        assert_eq!(split("imap://h/INBOX/;UID=1;URLAUTH=:INTERNAL:ab"), None);
        assert_eq!(split("imap://h/INBOX/;UID=1:INTERNAL:ab"), None);
        assert_eq!(split(&format!("{RUMP}:INTERNAL:")), None);
    }
}
