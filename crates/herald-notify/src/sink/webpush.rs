//! The `webpush` sink: events pushed to users' browsers and phones (RFC 8030), encrypted per
//! RFC 8291 and signed with VAPID (RFC 8292).
//!
//! **Who receives what.** Users register push subscriptions over the HTTP API (`POST
//! /push/subscriptions` with what a browser's `PushManager.subscribe()` returns); the store keeps
//! them. Each event the subscription's filters pass is pushed to every push subscription of the
//! event's `user` (events without a user, or a user with none, are acknowledged at once). The
//! payload is the event as the subscription encodes it (format, `params` allow-list, content
//! policy), encrypted for that browser.
//!
//! **Size.** A push message carries at most 4096 bytes (RFC 8030 §7.2), which leaves
//! [`MAX_PLAINTEXT`] bytes of plaintext after RFC 8291's header and tag. A larger event is
//! replaced by a minimal notification ([`minimal`]): `event`, `user`, `uri` and
//! `vnd.herald.id` (whatever of them the encoded event has, at the top level or in a CloudEvents
//! `data`), plus `"vnd.herald.trimmed": true`, so the application knows to fetch the rest.
//!
//! **Headers.** `TTL` (`ttl_secs`, default a day: how long the push service keeps a message for
//! an offline device), `Urgency` (`high` for MessageNew, `low` for flag, read and expunge
//! churn, `normal` otherwise; RFC 8030 §5.3 — a phone may hold back low-urgency messages to save
//! battery), `Content-Encoding: aes128gcm`, and `Authorization: vapid t=<JWT>, k=<public key>`
//! (RFC 8292 §3): an ES256 JWT whose `aud` is the endpoint's origin, `exp` 12 hours on and
//! `sub` the configured `subject`. A token is reused for an origin until it has less than an
//! hour to live.
//!
//! **Answers.** 2xx (a push service answers 201 Created) accepts the push. 404 and 410 mean the
//! push subscription is gone (RFC 8030 §7.3, the user unsubscribed or the browser dropped it):
//! it is removed from the store and logged, and counts as done. Anything else (429, 5xx, a
//! timeout, another 4xx) is [`SinkError::Retry`]: the subscription's retry policy backs off
//! and parks as for any sink. An event is acknowledged once each of its pushes was accepted or
//! its push subscription removed; after a failure the sink remembers which push subscriptions
//! already accepted the first unacknowledged event, so the retry does not push to them again
//! (unless the process restarts: at-least-once, receivers deduplicate on `vnd.herald.id`).
//!
//! **VAPID key.** `vapid_key` names a file holding the application server's P-256 private key:
//! PEM (PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`) or the base64url raw 32-byte scalar
//! (what most WebPush libraries print). When the file does not exist Herald generates a key
//! and writes it as PKCS#8 PEM with mode 0600. The public key — the `applicationServerKey` a
//! page passes to `PushManager.subscribe()` — is logged at every start.
//!
//! **Why these crates.** The crates vetted first (STACK §11): `web-push` sends through
//! isahc/curl or hyper-tls (OpenSSL); `ece` encrypts through OpenSSL by default;
//! `web-push-native` 0.5 builds on RustCrypto but signs VAPID through `jwt-simple` (a
//! multi-algorithm JWT stack, large for one ES256 signature) whose `aud` drops the port (a
//! wrong origin for a push service on a non-default port), brings `sha2` 0.11/`hkdf` 0.13 next
//! to the 0.10 line `p256` uses, and cannot encrypt with a given salt and key, so RFC 8291's
//! Appendix A cannot be checked through it. The construction itself is small (two HKDFs and
//! one AES-GCM record), so it is written here: ring (already the project's crypto) does HKDF,
//! AES-128-GCM and randomness; RustCrypto's `p256` does the two things ring cannot — ECDH with
//! a stored private key (ring's agreement keys are ephemeral only, so neither the RFC's test
//! vector nor a receiver can be written on it) and loading a raw scalar or SEC1 key for ES256.
//! The Appendix A vector is a unit test below.

use super::{BuildError, Outgoing, SendFuture, Sink, SinkError, redacted_url};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use herald_store::{PushSubscription, Store, StoreError};
use p256::ecdsa::signature::Signer as _;
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding};
use p256::{PublicKey, SecretKey};
use ring::rand::{SecureRandom as _, SystemRandom};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Largest push message a push service must accept (RFC 8030 §7.2).
pub const MAX_MESSAGE: usize = 4096;

/// RFC 8291's header (16 salt + 4 record size + 1 key id length + 65 key) and RFC 8188's
/// padding delimiter and AES-GCM tag.
const OVERHEAD: usize = 16 + 4 + 1 + 65 + 1 + 16;

/// Largest plaintext that fits one push message (3993 bytes, RFC 8291 §4).
pub const MAX_PLAINTEXT: usize = MAX_MESSAGE - OVERHEAD;

/// Record size written in the header (RFC 8291 §4 and its Appendix A use 4096).
const RECORD_SIZE: u32 = 4096;

/// Default `TTL`: a day.
pub const DEFAULT_TTL: u32 = 86_400;

/// Default bound on one push request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a VAPID token is valid (RFC 8292 §2: at most 24 hours).
const TOKEN_LIFETIME: u64 = 12 * 3600;

/// A token is signed again once it has less than this to live.
const TOKEN_RENEW: u64 = 3600;

/// Most push subscriptions one account may register.
pub const MAX_PER_USER: usize = 32;

/// Longest endpoint URL accepted.
pub const MAX_ENDPOINT: usize = 2048;

/// Why encryption or decryption failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// A key is not a P-256 key of the expected form.
    #[error("bad key: {0}")]
    Key(&'static str),
    /// The plaintext does not fit one push message.
    #[error("plaintext of {0} bytes is larger than {MAX_PLAINTEXT}")]
    TooLarge(usize),
    /// The message is malformed or does not authenticate.
    #[error("cannot decrypt: {0}")]
    Decrypt(&'static str),
    /// The system's random generator failed.
    #[error("no randomness")]
    Random,
}

/// A `ring::hkdf` output length.
struct Len(usize);

impl ring::hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-SHA-256 (RFC 5869): extract with `salt` from `ikm`, expand with `info` to `N` bytes.
fn hkdf<const N: usize>(salt: &[u8], ikm: &[u8], info: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, salt).extract(ikm);
    // Only fails for an output longer than 255 hash lengths; N is 12, 16 or 32.
    if let Ok(okm) = prk.expand(&[info], Len(N)) {
        let _ = okm.fill(&mut out);
    }
    out
}

/// The content encryption key and nonce for one message (RFC 8291 §3.3–3.4, RFC 8188 §2.2–2.3).
fn keys(
    ecdh_secret: &[u8],
    auth: &[u8; 16],
    ua_public: &[u8],
    as_public: &[u8],
    salt: &[u8; 16],
) -> ([u8; 16], [u8; 12]) {
    let mut key_info = Vec::with_capacity(14 + 65 + 65);
    key_info.extend_from_slice(b"WebPush: info\0");
    key_info.extend_from_slice(ua_public);
    key_info.extend_from_slice(as_public);
    let ikm: [u8; 32] = hkdf(auth, ecdh_secret, &key_info);
    let cek = hkdf(salt, &ikm, b"Content-Encoding: aes128gcm\0");
    let nonce = hkdf(salt, &ikm, b"Content-Encoding: nonce\0");
    (cek, nonce)
}

fn ecdh(secret: &SecretKey, public: &PublicKey) -> [u8; 32] {
    let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), public.as_affine());
    let mut out = [0u8; 32];
    out.copy_from_slice(shared.raw_secret_bytes());
    out
}

fn uncompressed(public: &PublicKey) -> Vec<u8> {
    public.to_encoded_point(false).as_bytes().to_vec()
}

/// A random P-256 private key from ring's generator.
pub fn random_secret() -> Result<SecretKey, CryptoError> {
    let rng = SystemRandom::new();
    // A uniformly random 32-byte string is a valid scalar but for ~2^-32 of them.
    for _ in 0..16 {
        let mut bytes = [0u8; 32];
        rng.fill(&mut bytes).map_err(|_| CryptoError::Random)?;
        if let Ok(key) = SecretKey::from_slice(&bytes) {
            return Ok(key);
        }
    }
    Err(CryptoError::Random)
}

/// Encrypts `plaintext` for a browser whose keys are `ua_public` (`p256dh`) and `auth`
/// (RFC 8291 with the aes128gcm content coding, one record).
pub fn encrypt(
    plaintext: &[u8],
    ua_public: &PublicKey,
    auth: &[u8; 16],
) -> Result<Vec<u8>, CryptoError> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| CryptoError::Random)?;
    encrypt_with(plaintext, ua_public, auth, &random_secret()?, &salt)
}

/// [`encrypt`] with a given sender key and salt (for RFC 8291's test vector).
fn encrypt_with(
    plaintext: &[u8],
    ua_public: &PublicKey,
    auth: &[u8; 16],
    as_secret: &SecretKey,
    salt: &[u8; 16],
) -> Result<Vec<u8>, CryptoError> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(CryptoError::TooLarge(plaintext.len()));
    }
    let as_public = uncompressed(&as_secret.public_key());
    let (cek, nonce) = keys(
        &ecdh(as_secret, ua_public),
        auth,
        &uncompressed(ua_public),
        &as_public,
        salt,
    );
    let mut out = Vec::with_capacity(plaintext.len() + OVERHEAD);
    out.extend_from_slice(salt);
    out.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    out.push(as_public.len() as u8);
    out.extend_from_slice(&as_public);
    let header = out.len();
    out.extend_from_slice(plaintext);
    // RFC 8188 §2: the last record's padding starts with 0x02 (and here has nothing after it).
    out.push(2);
    let key = aead_key(&cek)?;
    let mut record = out.split_off(header);
    key.seal_in_place_append_tag(
        ring::aead::Nonce::assume_unique_for_key(nonce),
        ring::aead::Aad::empty(),
        &mut record,
    )
    .map_err(|_| CryptoError::Key("AES-GCM"))?;
    out.extend_from_slice(&record);
    Ok(out)
}

fn aead_key(cek: &[u8; 16]) -> Result<ring::aead::LessSafeKey, CryptoError> {
    ring::aead::UnboundKey::new(&ring::aead::AES_128_GCM, cek)
        .map(ring::aead::LessSafeKey::new)
        .map_err(|_| CryptoError::Key("AES-GCM"))
}

/// Decrypts a push message as the browser holding `ua_secret` and `auth` does (one record, as
/// [`encrypt`] writes). For tests and Rust receivers.
pub fn decrypt(
    message: &[u8],
    ua_secret: &SecretKey,
    auth: &[u8; 16],
) -> Result<Vec<u8>, CryptoError> {
    let bad = CryptoError::Decrypt;
    if message.len() < 21 {
        return Err(bad("shorter than the header"));
    }
    let mut salt = [0u8; 16];
    salt.copy_from_slice(&message[..16]);
    let idlen = usize::from(message[20]);
    let key_id = message
        .get(21..21 + idlen)
        .ok_or(bad("key id past the end"))?;
    let as_public = PublicKey::from_sec1_bytes(key_id).map_err(|_| bad("key id is no key"))?;
    let ua_public = ua_secret.public_key();
    let (cek, nonce) = keys(
        &ecdh(ua_secret, &as_public),
        auth,
        &uncompressed(&ua_public),
        key_id,
        &salt,
    );
    let mut record = message[21 + idlen..].to_vec();
    let plain = aead_key(&cek)?
        .open_in_place(
            ring::aead::Nonce::assume_unique_for_key(nonce),
            ring::aead::Aad::empty(),
            &mut record,
        )
        .map_err(|_| bad("does not authenticate"))?;
    // Strip the padding: zeros, then the 0x02 delimiter of a last record.
    let end = plain
        .iter()
        .rposition(|&b| b != 0)
        .ok_or(bad("no delimiter"))?;
    if plain[end] != 2 {
        return Err(bad("not a last record"));
    }
    Ok(plain[..end].to_vec())
}

/// base64url as browsers write it (`PushSubscription.toJSON()`: no padding), padding tolerated.
pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

/// A browser's `keys.p256dh`: an uncompressed P-256 point.
pub fn parse_p256dh(text: &str) -> Result<PublicKey, String> {
    let bytes = b64url_decode(text).ok_or("keys.p256dh is not base64url")?;
    if bytes.len() != 65 || bytes[0] != 4 {
        return Err("keys.p256dh is not an uncompressed P-256 point (65 bytes)".into());
    }
    PublicKey::from_sec1_bytes(&bytes).map_err(|_| "keys.p256dh is not on the P-256 curve".into())
}

/// A browser's `keys.auth`: 16 bytes.
pub fn parse_auth(text: &str) -> Result<[u8; 16], String> {
    let bytes = b64url_decode(text).ok_or("keys.auth is not base64url")?;
    <[u8; 16]>::try_from(bytes.as_slice()).map_err(|_| "keys.auth is not 16 bytes".into())
}

/// Checks an endpoint a user registers: an absolute `https` URL with a host (`http` only for a
/// loopback host, which only a local test push service uses), at most [`MAX_ENDPOINT`] bytes.
pub fn check_endpoint(endpoint: &str) -> Result<reqwest::Url, String> {
    if endpoint.len() > MAX_ENDPOINT {
        return Err(format!("endpoint longer than {MAX_ENDPOINT} bytes"));
    }
    let url = reqwest::Url::parse(endpoint).map_err(|e| format!("endpoint: {e}"))?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("endpoint has no host")?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback());
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err("endpoint must be an https URL".into()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("endpoint must not carry credentials".into());
    }
    Ok(url)
}

/// Checks what a browser's `PushSubscription.toJSON()` gave, as a user registers it; returns
/// the endpoint as parsed (its host is what `[http] push_hosts` is checked against).
pub fn check_subscription(
    endpoint: &str,
    p256dh: &str,
    auth: &str,
) -> Result<reqwest::Url, String> {
    let url = check_endpoint(endpoint)?;
    parse_p256dh(p256dh)?;
    parse_auth(auth)?;
    Ok(url)
}

/// The application server's VAPID key (RFC 8292).
pub struct VapidKey {
    signing: p256::ecdsa::SigningKey,
    public: String,
}

impl std::fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VapidKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl VapidKey {
    /// A key from its secret.
    pub fn new(secret: &SecretKey) -> VapidKey {
        VapidKey {
            signing: p256::ecdsa::SigningKey::from(secret),
            public: URL_SAFE_NO_PAD.encode(uncompressed(&secret.public_key())),
        }
    }

    /// Reads a key file: PEM (PKCS#8 or SEC1) or a base64url raw scalar.
    pub fn parse(text: &str) -> Result<VapidKey, String> {
        let text = text.trim();
        let secret = if text.contains("-----BEGIN EC PRIVATE KEY-----") {
            SecretKey::from_sec1_pem(text).map_err(|e| format!("SEC1 PEM: {e}"))?
        } else if text.contains("-----BEGIN") {
            SecretKey::from_pkcs8_pem(text).map_err(|e| format!("PKCS#8 PEM: {e}"))?
        } else {
            let raw = b64url_decode(text)
                .ok_or("neither PEM nor a base64url P-256 private key (32 bytes)")?;
            SecretKey::from_slice(&raw).map_err(|_| "not a P-256 private key (32 bytes)")?
        };
        Ok(VapidKey::new(&secret))
    }

    /// Loads the key at `path`, or generates one there (PKCS#8 PEM, mode 0600) when the file
    /// does not exist. Tells which in the second value (true: generated).
    pub fn load_or_create(path: &Path) -> Result<(VapidKey, bool), String> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok((
                VapidKey::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?,
                false,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let secret = random_secret().map_err(|e| e.to_string())?;
                let pem = secret
                    .to_pkcs8_pem(LineEnding::LF)
                    .map_err(|e| format!("cannot encode the key: {e}"))?;
                write_private(path, pem.as_bytes())
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                Ok((VapidKey::new(&secret), true))
            }
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// The public key, base64url uncompressed point: the browser's `applicationServerKey` and
    /// the `k` of the `Authorization` header.
    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// An ES256 JWT (RFC 7515/7519) for `audience` (an origin) expiring at `exp` (Unix
    /// seconds), with `sub` = `subject`.
    pub fn token(&self, audience: &str, exp: u64, subject: &str) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = serde_json::json!({ "aud": audience, "exp": exp, "sub": subject });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let input = format!("{header}.{claims}");
        // JWS ES256 is the fixed 64-byte r || s, not DER.
        let signature: p256::ecdsa::Signature = self.signing.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    /// The `Authorization` header value for `token` (RFC 8292 §3).
    pub fn authorization(&self, token: &str) -> String {
        format!("vapid t={token}, k={}", self.public)
    }
}

/// Creates `path` (and its directory) with `data`, readable by the owner only.
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(data)?;
    file.sync_all()
}

/// The minimal notification sent instead of an event too large for a push message (see the
/// module documentation).
pub fn minimal(o: &Outgoing) -> Vec<u8> {
    let parsed: serde_json::Value = serde_json::from_slice(&o.body).unwrap_or_default();
    let field = |name: &str| {
        parsed
            .get(name)
            .or_else(|| parsed.get("data").and_then(|d| d.get(name)))
            .cloned()
    };
    let mut out = serde_json::Map::new();
    out.insert("event".into(), o.event_type.clone().into());
    if let Some(user) = &o.user {
        out.insert("user".into(), user.clone().into());
    }
    if let Some(uri) = field("uri") {
        out.insert("uri".into(), uri);
    }
    out.insert("vnd.herald.id".into(), o.id.into());
    out.insert("vnd.herald.trimmed".into(), true.into());
    serde_json::Value::Object(out).to_string().into_bytes()
}

/// What the push message of `o` carries: the encoded event, or [`minimal`] when too large.
pub fn payload(o: &Outgoing) -> Vec<u8> {
    if o.body.len() <= MAX_PLAINTEXT {
        o.body.clone()
    } else {
        minimal(o)
    }
}

/// The `Urgency` of an event type (RFC 8030 §5.3).
pub fn urgency(event_type: &str) -> &'static str {
    match event_type {
        "MessageNew" => "high",
        "FlagsSet" | "FlagsClear" | "MessageRead" | "MessageTrash" | "MessageExpunge"
        | "MessageExpire" => "low",
        _ => "normal",
    }
}

/// How a push went.
enum Pushed {
    /// The push service took it.
    Accepted,
    /// The push subscription no longer exists (404/410).
    Gone(String),
}

/// Pushes events to users' push subscriptions.
pub struct WebPushSink {
    store: Store,
    client: reqwest::Client,
    vapid: VapidKey,
    subject: String,
    ttl: u32,
    /// Signed tokens by origin, with their expiry.
    tokens: HashMap<String, (String, u64)>,
    /// Events acknowledged in the current or last `send`.
    acknowledged: usize,
    /// The first unacknowledged event and the endpoints that already accepted it.
    partial: Option<(u64, HashSet<String>)>,
}

impl std::fmt::Debug for WebPushSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebPushSink")
            .field("vapid", &self.vapid)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The VAPID `subject` must be a `mailto:` or `https:` URL (RFC 8292 §2.1): checked when the
/// configuration is read, before anything starts.
pub fn check_subject(subject: &str) -> Result<(), BuildError> {
    if subject.starts_with("mailto:") && subject.len() > 7 || subject.starts_with("https://") {
        return Ok(());
    }
    Err(BuildError::Invalid(format!(
        "webpush sink: subject `{subject}` must be a mailto: or https: URL (RFC 8292 §2.1)"
    )))
}

impl WebPushSink {
    /// A sink signing with the key in `vapid_key` (generated when missing) as `subject`
    /// (`mailto:` or `https:`), reading push subscriptions from `store`.
    pub fn new(
        store: Store,
        vapid_key: &str,
        subject: &str,
        ttl: Option<u32>,
        timeout: Option<Duration>,
    ) -> Result<WebPushSink, BuildError> {
        let invalid = |what: String| BuildError::Invalid(format!("webpush sink: {what}"));
        check_subject(subject)?;
        let (vapid, created) = VapidKey::load_or_create(Path::new(vapid_key)).map_err(&invalid)?;
        if created {
            tracing::info!(
                path = vapid_key,
                public_key = vapid.public_key(),
                "webpush: generated a VAPID key; give browsers this applicationServerKey"
            );
        } else {
            tracing::info!(
                public_key = vapid.public_key(),
                "webpush: VAPID applicationServerKey"
            );
        }
        let timeout = timeout.unwrap_or(DEFAULT_TIMEOUT);
        super::webhook::ensure_crypto_provider();
        let client = reqwest::Client::builder()
            .user_agent(concat!("herald/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| invalid(format!("cannot build the HTTP client: {e}")))?;
        Ok(WebPushSink {
            store,
            client,
            vapid,
            subject: subject.to_owned(),
            ttl: ttl.unwrap_or(DEFAULT_TTL),
            tokens: HashMap::new(),
            acknowledged: 0,
            partial: None,
        })
    }

    /// The `Authorization` value for `url`'s origin, signing a new token when needed.
    fn authorization(&mut self, url: &reqwest::Url) -> String {
        let origin = url.origin().ascii_serialization();
        let now = now_secs();
        let token = match self.tokens.get(&origin) {
            Some((token, exp)) if *exp > now + TOKEN_RENEW => token.clone(),
            _ => {
                let exp = now + TOKEN_LIFETIME;
                let token = self.vapid.token(&origin, exp, &self.subject);
                self.tokens.insert(origin, (token.clone(), exp));
                token
            }
        };
        self.vapid.authorization(&token)
    }

    /// Pushes `plaintext` to one push subscription.
    async fn push(
        &mut self,
        sub: &PushSubscription,
        plaintext: &[u8],
        urgency: &str,
    ) -> Result<Pushed, SinkError> {
        let url = match check_endpoint(&sub.endpoint) {
            Ok(url) => url,
            Err(e) => return Ok(Pushed::Gone(e)),
        };
        let shown = redacted_url(&url);
        let keys = parse_p256dh(&sub.p256dh).and_then(|k| Ok((k, parse_auth(&sub.auth)?)));
        let (ua_public, auth) = match keys {
            Ok(k) => k,
            Err(e) => return Ok(Pushed::Gone(e)),
        };
        let body = encrypt(plaintext, &ua_public, &auth)
            .map_err(|e| SinkError::Retry(format!("webpush {shown}: {e}")))?;
        let authorization = self.authorization(&url);
        let response = self
            .client
            .post(url)
            .header("TTL", self.ttl.to_string())
            .header("Urgency", urgency)
            .header("Content-Encoding", "aes128gcm")
            .header("Content-Type", "application/octet-stream")
            .header("Authorization", authorization)
            .body(body)
            .send()
            .await
            .map_err(|e| SinkError::Retry(format!("webpush {shown}: {e}")))?;
        let status = response.status();
        let _ = response.bytes().await;
        if status.is_success() {
            Ok(Pushed::Accepted)
        } else if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
            Ok(Pushed::Gone(format!("the push service answered {status}")))
        } else {
            Err(SinkError::Retry(format!(
                "webpush {shown} answered {status}"
            )))
        }
    }

    /// Pushes one event to every push subscription of its user.
    async fn deliver(&mut self, o: &Outgoing) -> Result<(), SinkError> {
        let Some(user) = &o.user else { return Ok(()) };
        let subs = match self.store.push_subscriptions(user).await {
            Ok(subs) => subs,
            // The account is gone, and its push subscriptions with it.
            Err(StoreError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(SinkError::Retry(format!("webpush: store: {e}"))),
        };
        if subs.is_empty() {
            return Ok(());
        }
        let plaintext = payload(o);
        if plaintext.len() != o.body.len() {
            tracing::debug!(
                id = o.id,
                bytes = o.body.len(),
                "webpush: event too large for a push message; sending a minimal notification"
            );
        }
        let urgency = urgency(&o.event_type);
        let mut done = match self.partial.take() {
            Some((id, done)) if id == o.id => done,
            _ => HashSet::new(),
        };
        for sub in &subs {
            if done.contains(&sub.endpoint) {
                continue;
            }
            match self.push(sub, &plaintext, urgency).await {
                Ok(Pushed::Accepted) => {}
                Ok(Pushed::Gone(why)) => {
                    tracing::info!(
                        user = %sub.user,
                        endpoint = %crate::sink::redact_url(&sub.endpoint),
                        reason = %why,
                        "webpush: push subscription expired; removed"
                    );
                    match self
                        .store
                        .delete_push_subscription(&sub.user, &sub.endpoint)
                        .await
                    {
                        Ok(()) | Err(StoreError::NotFound { .. }) => {}
                        Err(e) => {
                            self.partial = Some((o.id, done));
                            return Err(SinkError::Retry(format!("webpush: store: {e}")));
                        }
                    }
                }
                Err(e) => {
                    self.partial = Some((o.id, done));
                    return Err(e);
                }
            }
            done.insert(sub.endpoint.clone());
        }
        Ok(())
    }
}

impl Sink for WebPushSink {
    fn send<'a>(&'a mut self, batch: &'a [Outgoing]) -> SendFuture<'a> {
        Box::pin(async move {
            self.acknowledged = 0;
            for o in batch {
                if let Err(e) = self.deliver(o).await {
                    tracing::debug!(error = %e, "webpush sink: event not acknowledged");
                    return Err(e);
                }
                self.acknowledged += 1;
            }
            Ok(())
        })
    }

    fn max_batch(&self) -> usize {
        64
    }

    fn acknowledged(&self) -> usize {
        self.acknowledged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &str) -> Vec<u8> {
        b64url_decode(text).unwrap()
    }

    fn secret(text: &str) -> SecretKey {
        SecretKey::from_slice(&b64(text)).unwrap()
    }

    /// RFC 8291 Appendix A, byte for byte.
    #[test]
    fn rfc8291_appendix_a() {
        let plaintext = b64("V2hlbiBJIGdyb3cgdXAsIEkgd2FudCB0byBiZSBhIHdhdGVybWVsb24");
        assert_eq!(plaintext, b"When I grow up, I want to be a watermelon");
        let as_secret = secret("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw");
        assert_eq!(
            URL_SAFE_NO_PAD.encode(uncompressed(&as_secret.public_key())),
            "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
        );
        let ua_secret = secret("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94");
        let ua_public = parse_p256dh(
            "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
        )
        .unwrap();
        assert_eq!(ua_secret.public_key(), ua_public);
        let salt: [u8; 16] = b64("DGv6ra1nlYgDCS1FRnbzlw").try_into().unwrap();
        let auth = parse_auth("BTBZMqHH6r4Tts7J_aSIgg").unwrap();
        let expected = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN";
        let got = encrypt_with(&plaintext, &ua_public, &auth, &as_secret, &salt).unwrap();
        assert_eq!(URL_SAFE_NO_PAD.encode(&got), expected);
        assert_eq!(
            decrypt(&b64(expected), &ua_secret, &auth).unwrap(),
            plaintext
        );
    }

    #[test]
    fn random_encryption_round_trips_and_authenticates() {
        let ua = random_secret().unwrap();
        let auth = [7u8; 16];
        let msg = encrypt(b"{\"event\":\"MessageNew\"}", &ua.public_key(), &auth).unwrap();
        assert_eq!(
            decrypt(&msg, &ua, &auth).unwrap(),
            b"{\"event\":\"MessageNew\"}"
        );
        let mut tampered = msg.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(decrypt(&tampered, &ua, &auth).is_err());
        assert!(decrypt(&msg, &ua, &[8u8; 16]).is_err());
        // The largest plaintext fills a push message exactly; one more byte is refused.
        let full = encrypt(&[b'x'; MAX_PLAINTEXT], &ua.public_key(), &auth).unwrap();
        assert_eq!(full.len(), MAX_MESSAGE);
        assert_eq!(
            encrypt(&[b'x'; MAX_PLAINTEXT + 1], &ua.public_key(), &auth),
            Err(CryptoError::TooLarge(MAX_PLAINTEXT + 1))
        );
    }

    #[test]
    fn vapid_token_verifies_with_the_public_key() {
        use p256::ecdsa::signature::Verifier as _;
        let key = VapidKey::new(&random_secret().unwrap());
        let token = key.token(
            "https://push.example.net",
            1_900_000_000,
            "mailto:ops@example.org",
        );
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value = serde_json::from_slice(&b64(parts[0])).unwrap();
        assert_eq!(header["alg"], "ES256");
        let claims: serde_json::Value = serde_json::from_slice(&b64(parts[1])).unwrap();
        assert_eq!(claims["aud"], "https://push.example.net");
        assert_eq!(claims["exp"], 1_900_000_000u64);
        assert_eq!(claims["sub"], "mailto:ops@example.org");
        let public = p256::ecdsa::VerifyingKey::from_sec1_bytes(&b64(key.public_key())).unwrap();
        let signature = p256::ecdsa::Signature::from_slice(&b64(parts[2])).unwrap();
        let signed = format!("{}.{}", parts[0], parts[1]);
        assert!(public.verify(signed.as_bytes(), &signature).is_ok());
        assert!(public.verify(b"something else", &signature).is_err());
        assert_eq!(
            key.authorization(&token),
            format!("vapid t={token}, k={}", key.public_key())
        );
    }

    #[test]
    fn key_files_pem_raw_and_generated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/vapid.pem");
        let (made, created) = VapidKey::load_or_create(&path).unwrap();
        assert!(created);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (again, created) = VapidKey::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(made.public_key(), again.public_key());
        // The raw form most WebPush libraries print, and SEC1 PEM.
        let raw = VapidKey::parse("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw\n").unwrap();
        assert_eq!(
            raw.public_key(),
            "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
        );
        let sec1 = secret("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw")
            .to_sec1_pem(LineEnding::LF)
            .unwrap();
        assert_eq!(
            VapidKey::parse(&sec1).unwrap().public_key(),
            raw.public_key()
        );
        assert!(VapidKey::parse("not a key").is_err());
    }

    #[test]
    fn large_events_become_minimal_notifications() {
        let small = Outgoing {
            id: 9,
            event_type: "MessageNew".into(),
            user: Some("alice".into()),
            body: br#"{"event":"MessageNew","uri":"imap://alice@h/INBOX;UIDVALIDITY=1/;UID=1"}"#
                .to_vec(),
        };
        assert_eq!(payload(&small), small.body);
        let big_content = "x".repeat(MAX_PLAINTEXT);
        let big = Outgoing {
            body: serde_json::json!({
                "event": "MessageNew",
                "user": "alice",
                "uri": "imap://alice@h/INBOX;UIDVALIDITY=1/;UID=1",
                "messageContent": big_content,
                "vnd.herald.id": 9,
            })
            .to_string()
            .into_bytes(),
            ..small.clone()
        };
        let trimmed: serde_json::Value = serde_json::from_slice(&payload(&big)).unwrap();
        assert_eq!(
            trimmed,
            serde_json::json!({
                "event": "MessageNew",
                "user": "alice",
                "uri": "imap://alice@h/INBOX;UIDVALIDITY=1/;UID=1",
                "vnd.herald.id": 9,
                "vnd.herald.trimmed": true,
            })
        );
        // CloudEvents: the uri is inside `data`.
        let cloud = Outgoing {
            body: serde_json::json!({
                "specversion": "1.0",
                "data": { "uri": "imap://alice@h/INBOX", "messageContent": big_content },
            })
            .to_string()
            .into_bytes(),
            ..small
        };
        let trimmed: serde_json::Value = serde_json::from_slice(&payload(&cloud)).unwrap();
        assert_eq!(trimmed["uri"], "imap://alice@h/INBOX");
        assert!(payload(&cloud).len() <= MAX_PLAINTEXT);
    }

    #[test]
    fn endpoints_must_be_https_except_on_loopback() {
        assert!(check_endpoint("https://push.example.net/send/abc").is_ok());
        assert!(check_endpoint("http://127.0.0.1:8080/p").is_ok());
        assert!(check_endpoint("http://[::1]/p").is_ok());
        assert!(check_endpoint("http://push.example.net/p").is_err());
        assert!(check_endpoint("ftp://push.example.net/p").is_err());
        assert!(check_endpoint("https://u:pw@push.example.net/p").is_err());
        assert!(check_endpoint("not a url").is_err());
        assert!(check_endpoint(&format!("https://h/{}", "a".repeat(MAX_ENDPOINT))).is_err());
        assert!(parse_auth("AAAA").is_err());
        assert!(parse_p256dh("BTBZMqHH6r4Tts7J_aSIgg").is_err());
    }

    #[test]
    fn urgency_follows_the_event() {
        assert_eq!(urgency("MessageNew"), "high");
        assert_eq!(urgency("FlagsSet"), "low");
        assert_eq!(urgency("QuotaExceed"), "normal");
    }
}
