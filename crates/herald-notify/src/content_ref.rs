//! Signed, expiring references to a message, for subscribers whose content policy left the
//! message out (RFC 5423 §4.1: "include a URLAUTH reference for larger messages").
//!
//! Herald gives an HTTP URL signed the way URLAUTH signs an IMAP URL: the message's IMAP URL,
//! an expiry time, and an HMAC-SHA256 over both with a server key —
//! `http://host:8080/messages?uri=<IMAP URL>&expires=<unix seconds>&sig=<base64url>`.
//! The HTTP server checks the signature and the expiry before serving the bytes, so the link
//! grants exactly one message, for a limited time, without an account password. The key lives in
//! the data directory (`content.key`, 32 random bytes, mode 0600) and survives restarts, so links
//! stay valid until they expire.
//!
//! The other reference is the RFC's own: a URLAUTH-authorized IMAP URL ([`urlauth_url`],
//! `vnd.herald.urlauth`) with access `authuser`, so any user of the server can URLFETCH it
//! over IMAP, while the HTTP link needs no account but needs Herald's HTTP listener. Its token is
//! signed with the owner's mailbox access key (`herald_store::urlauth`), so the owner's RESETKEY
//! revokes it like any URL the owner authorized with GENURLAUTH.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use herald_events::ImapUrl;
use ring::hmac;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

/// Signs and verifies message references.
#[derive(Clone)]
pub struct ContentSigner {
    key: hmac::Key,
    base: String,
    ttl: Duration,
}

impl std::fmt::Debug for ContentSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentSigner")
            .field("base", &self.base)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// Characters left alone when the IMAP URL goes into a query string.
fn query_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:/@!$'()*,;".contains(&b)
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for &b in s.as_bytes() {
        if query_safe(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl ContentSigner {
    /// A signer with an explicit key (tests, or a key shared by several nodes).
    pub fn new(key: &[u8], base_url: &str, ttl: Duration) -> ContentSigner {
        ContentSigner {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
            base: base_url.trim_end_matches('/').to_owned(),
            ttl,
        }
    }

    /// Loads `DATA/content.key`, creating it with 32 random bytes on first use.
    pub fn load_or_create(
        data: &Path,
        base_url: &str,
        ttl: Duration,
    ) -> std::io::Result<ContentSigner> {
        let path = data.join("content.key");
        let key = match std::fs::read(&path) {
            Ok(k) if k.len() >= 32 => k,
            Ok(_) => {
                return Err(std::io::Error::other(format!(
                    "{} is too short",
                    path.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = vec![0u8; 32];
                ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
                    .map_err(|_| {
                        std::io::Error::other("the system random number generator failed")
                    })?;
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                let mut f = opts.open(&path)?;
                f.write_all(&key)?;
                f.sync_all()?;
                key
            }
            Err(e) => return Err(e),
        };
        Ok(ContentSigner::new(&key, base_url, ttl))
    }

    /// What is signed: the IMAP URL and the expiry, newline-separated (a URL has no newline, so
    /// the pair reads back one way only).
    fn signed_bytes(uri: &str, expires: i64) -> Vec<u8> {
        format!("{uri}\n{expires}").into_bytes()
    }

    /// The reference for the message `uri` names, valid until `now + ttl`.
    pub fn reference(&self, uri: &ImapUrl, now_secs: i64) -> String {
        let uri = uri.to_string();
        let expires = now_secs.saturating_add(self.ttl.as_secs() as i64);
        let tag = hmac::sign(&self.key, &Self::signed_bytes(&uri, expires));
        let sig = URL_SAFE_NO_PAD.encode(tag.as_ref());
        format!(
            "{}/messages?uri={}&expires={expires}&sig={sig}",
            self.base,
            percent_encode(&uri)
        )
    }

    /// True when `sig` signs (`uri`, `expires`) and `expires` is not past.
    pub fn verify(&self, uri: &str, expires: i64, sig: &str, now_secs: i64) -> bool {
        if expires < now_secs {
            return false;
        }
        let Ok(sig) = URL_SAFE_NO_PAD.decode(sig) else {
            return false;
        };
        hmac::verify(&self.key, &Self::signed_bytes(uri, expires), &sig).is_ok()
    }
}

/// A URLAUTH-authorized IMAP URL (RFC 4467, access `authuser`, mechanism `INTERNAL`) of the
/// message `uri` names, owned by `owner`, signed with the mailbox's access key `key`, valid
/// until `expire_ms` (ms since the epoch) when given. `None` when `uri` names no message with
/// its UIDVALIDITY (URLFETCH could not tell it from a message of a re-created mailbox).
pub fn urlauth_url(
    uri: &ImapUrl,
    owner: &str,
    key: &herald_store::urlauth::AccessKey,
    expire_ms: Option<i64>,
) -> Option<String> {
    uri.uid?;
    uri.uidvalidity?;
    let mut url = uri.clone();
    url.user = Some(owner.to_owned());
    url.auth = None;
    url.search = None;
    url.section = None;
    url.partial = None;
    url.urlauth = Some(herald_events::UrlAuth {
        expire: match expire_ms {
            Some(ms) => Some(herald_events::Timestamp::from_unix_millis(ms, 0)?),
            None => None,
        },
        access: herald_events::Access::AuthUser.to_string(),
        verifier: None,
    });
    let rump = url.to_string();
    let token = herald_store::urlauth::token(key, &rump);
    Some(format!(
        "{rump}:{}:{token}",
        herald_store::urlauth::INTERNAL
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> (String, i64, String) {
        let query = url.split_once('?').unwrap().1;
        let mut uri = String::new();
        let (mut exp, mut sig) = (0, String::new());
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap();
            match k {
                "uri" => {
                    let bytes = v.as_bytes();
                    let mut out = Vec::new();
                    let mut i = 0;
                    while i < bytes.len() {
                        if bytes[i] == b'%' {
                            out.push(u8::from_str_radix(&v[i + 1..i + 3], 16).unwrap());
                            i += 3;
                        } else {
                            out.push(bytes[i]);
                            i += 1;
                        }
                    }
                    uri = String::from_utf8(out).unwrap();
                }
                "expires" => exp = v.parse().unwrap(),
                "sig" => sig = v.to_owned(),
                _ => panic!("{k}"),
            }
        }
        (uri, exp, sig)
    }

    #[test]
    fn a_reference_verifies_until_it_expires_and_only_for_its_message() {
        let s = ContentSigner::new(
            &[7u8; 32],
            "http://127.0.0.1:8080/",
            Duration::from_secs(3600),
        );
        let uri = ImapUrl::message("mail.example.org", Some("alice"), "Entwürfe & Co", 3, 42);
        let url = s.reference(&uri, 1_000);
        assert!(
            url.starts_with("http://127.0.0.1:8080/messages?uri=imap://alice@mail.example.org/")
        );
        let (u, exp, sig) = parse(&url);
        assert_eq!(u, uri.to_string());
        assert_eq!(exp, 4_600);
        assert!(s.verify(&u, exp, &sig, 4_600));
        assert!(!s.verify(&u, exp, &sig, 4_601), "expired");
        assert!(
            !s.verify(&u.replace("UID=42", "UID=43"), exp, &sig, 1_000),
            "another message"
        );
        assert!(!s.verify(&u, exp + 1, &sig, 1_000), "a longer life");
        let other = ContentSigner::new(&[8u8; 32], "http://x", Duration::from_secs(1));
        assert!(!other.verify(&u, exp, &sig, 1_000), "another key");
        assert!(!s.verify(&u, exp, "%%%", 1_000));
    }

    #[test]
    fn a_urlauth_url_names_the_message_and_verifies_with_the_key() {
        let key = [3u8; 32];
        let uri = ImapUrl::message("mail.example.org", Some("alice"), "Entwürfe", 7, 42);
        let url = urlauth_url(&uri, "alice", &key, Some(1_800_000_000_000)).unwrap();
        assert!(
            url.starts_with(
                "imap://alice@mail.example.org/Entw%C3%BCrfe;UIDVALIDITY=7/;UID=42;EXPIRE=2027-01-15T08:00:00.000+00:00;URLAUTH=authuser:INTERNAL:"
            ),
            "{url}"
        );
        let parsed: ImapUrl = url.parse().unwrap();
        assert_eq!(parsed.uid, Some(42));
        let (rump, mech, token) = herald_store::urlauth::split(&url).unwrap();
        assert_eq!(mech, "INTERNAL");
        assert!(herald_store::urlauth::verify(&key, rump, token));
        assert!(!herald_store::urlauth::verify(&[4u8; 32], rump, token));
        let forever = urlauth_url(&uri, "alice", &key, None).unwrap();
        assert!(!forever.contains("EXPIRE"), "{forever}");
        let mailbox = ImapUrl::mailbox("h", Some("alice"), "INBOX", Some(1));
        assert_eq!(urlauth_url(&mailbox, "alice", &key, None), None);
    }

    #[test]
    fn the_key_is_created_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a =
            ContentSigner::load_or_create(dir.path(), "http://h", Duration::from_secs(60)).unwrap();
        let b =
            ContentSigner::load_or_create(dir.path(), "http://h", Duration::from_secs(60)).unwrap();
        let uri = ImapUrl::message("h", None, "INBOX", 1, 1);
        let (u, exp, sig) = parse(&a.reference(&uri, 0));
        assert!(b.verify(&u, exp, &sig, 0));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("content.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
