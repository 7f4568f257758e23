//! The `webpush` sink end to end: a user registers a browser's push subscription over the HTTP
//! API, an LMTP delivery to that user reaches a local push service (a tiny HTTP server in this
//! test) as an RFC 8291 message with a VAPID (RFC 8292) signature that the push service checks
//! and a browser-like key pair decrypts; when the push service answers 410 the push
//! subscription disappears.
#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::Server;
use herald_events::{Event, EventType};
use herald_notify::sink::webpush;
use p256::ecdsa::signature::Verifier as _;
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One request the push service received.
struct Push {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// A push service on loopback: records every request and answers with `status`.
struct PushService {
    addr: SocketAddr,
    status: Arc<AtomicU16>,
    received: mpsc::Receiver<Push>,
}

impl PushService {
    fn start() -> PushService {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let status = Arc::new(AtomicU16::new(201));
        let (tx, received) = mpsc::channel();
        let answer = status.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { break };
                let (tx, answer) = (tx.clone(), answer.clone());
                std::thread::spawn(move || serve(conn, tx, answer));
            }
        });
        PushService {
            addr,
            status,
            received,
        }
    }

    fn next(&self) -> Push {
        self.received
            .recv_timeout(Duration::from_secs(30))
            .expect("no push arrived")
    }
}

/// HTTP/1.1 with keep-alive, as the sink's client uses it.
fn serve(conn: std::net::TcpStream, tx: mpsc::Sender<Push>, status: Arc<AtomicU16>) {
    let mut writer = conn.try_clone().unwrap();
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let code = status.load(Ordering::SeqCst);
        let _ = tx.send(Push {
            path,
            headers,
            body,
        });
        let reason = if code == 201 { "Created" } else { "Gone" };
        if write!(
            writer,
            "HTTP/1.1 {code} {reason}\r\ncontent-length: 0\r\n\r\n"
        )
        .is_err()
        {
            return;
        }
    }
}

/// One HTTP/1.1 request to Herald with Basic credentials; the status code and the body.
fn call(server: &Server, method: &str, path: &str, auth: &str, body: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(server.addrs["http"]).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let basic = STANDARD.encode(auth);
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {basic}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (code, body.to_owned())
}

fn deliver(server: &Server, to: &str) {
    server.python(
        "lmtp_deliver.py",
        &[
            &server.port("lmtp").to_string(),
            "s@example.net",
            to,
            "--",
            "250",
            "--",
            "250",
        ],
    );
}

fn b64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).unwrap()
}

/// What the push service checks of `Authorization: vapid t=JWT, k=KEY` (RFC 8292 §2–3).
fn check_vapid(push: &Push, origin: &str, subject: &str) -> String {
    let value = &push.headers["authorization"];
    let rest = value.strip_prefix("vapid ").expect(value);
    let mut token = "";
    let mut key = "";
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=').unwrap();
        match k {
            "t" => token = v,
            "k" => key = v,
            _ => {}
        }
    }
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    let header: serde_json::Value = serde_json::from_slice(&b64(parts[0])).unwrap();
    assert_eq!(header["alg"], "ES256");
    let public = p256::ecdsa::VerifyingKey::from_sec1_bytes(&b64(key)).unwrap();
    let signature = p256::ecdsa::Signature::from_slice(&b64(parts[2])).unwrap();
    public
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
        .expect("the VAPID signature verifies with k");
    let claims: serde_json::Value = serde_json::from_slice(&b64(parts[1])).unwrap();
    assert_eq!(claims["aud"], origin);
    assert_eq!(claims["sub"], subject);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let exp = claims["exp"].as_u64().unwrap();
    assert!(exp > now && exp <= now + 24 * 3600, "exp {exp}, now {now}");
    key.to_owned()
}

#[test]
fn lmtp_delivery_is_pushed_encrypted_and_a_gone_subscription_is_removed() {
    let push = PushService::start();
    let keys = tempfile::tempdir().unwrap();
    let vapid_path = keys.path().join("vapid.pem");
    let subject = "mailto:ops@example.org";
    let server = Server::start(&format!(
        r#"
[[subscription]]
name = "phones"
events = ["MessageNew"]
params = ["uri", "user", "messages"]
sink = {{ type = "webpush", vapid_key = "{}", subject = "{subject}" }}
"#,
        vapid_path.display()
    ));
    server.add_user("alice", "pw-alice");
    server.add_user("bob", "pw-bob");

    // Herald generated the VAPID key, readable by its owner only, and tells pages its public key.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&vapid_path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let (code, body) = call(&server, "GET", "/push/vapid", "alice:pw-alice", "");
    assert_eq!(code, 200, "{body}");
    let vapid: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(vapid[0]["subscription"], "phones");
    let application_server_key = vapid[0]["applicationServerKey"]
        .as_str()
        .unwrap()
        .to_owned();

    // The browser's side: a P-256 key pair and an auth secret, as PushManager.subscribe() makes.
    let browser = webpush::random_secret().unwrap();
    let auth: [u8; 16] = *b"sixteen byte sec";
    let p256dh = URL_SAFE_NO_PAD.encode(browser.public_key().to_encoded_point(false).as_bytes());
    let endpoint = format!("http://{}/push/alice-phone", push.addr);
    let subscription = serde_json::json!({
        "endpoint": endpoint,
        "expirationTime": null,
        "keys": { "p256dh": p256dh, "auth": URL_SAFE_NO_PAD.encode(auth) },
    });

    // Registration is validated.
    let mut bad = subscription.clone();
    bad["endpoint"] = "http://push.example.net/x".into();
    let (code, body) = call(
        &server,
        "POST",
        "/push/subscriptions",
        "alice:pw-alice",
        &bad.to_string(),
    );
    assert_eq!(code, 400, "plain http to a non-loopback host: {body}");
    let mut bad = subscription.clone();
    bad["keys"]["p256dh"] = "AAAA".into();
    let (code, _) = call(
        &server,
        "POST",
        "/push/subscriptions",
        "alice:pw-alice",
        &bad.to_string(),
    );
    assert_eq!(code, 400, "a key that is no P-256 point");

    let (code, body) = call(
        &server,
        "POST",
        "/push/subscriptions",
        "alice:pw-alice",
        &subscription.to_string(),
    );
    assert_eq!(code, 201, "{body}");
    let (code, body) = call(&server, "GET", "/push/subscriptions", "alice:pw-alice", "");
    assert_eq!(code, 200);
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{body}");
    assert_eq!(listed[0]["endpoint"], endpoint.as_str());
    let (_, body) = call(&server, "GET", "/push/subscriptions", "bob:pw-bob", "");
    assert_eq!(body, "[]", "bob sees none of alice's");

    // A delivery to bob pushes nothing (he has no push subscription); one to alice is pushed.
    deliver(&server, "bob@example.org");
    deliver(&server, "alice@example.org");
    let got = push.next();
    assert_eq!(got.path, "/push/alice-phone");
    assert_eq!(got.headers["content-encoding"], "aes128gcm");
    assert_eq!(got.headers["urgency"], "high");
    assert_eq!(got.headers["ttl"], "86400");
    let k = check_vapid(&got, &format!("http://{}", push.addr), subject);
    assert_eq!(k, application_server_key);
    assert!(got.body.len() <= webpush::MAX_MESSAGE);
    let plain = webpush::decrypt(&got.body, &browser, &auth).expect("decrypts");
    let event = Event::from_json(std::str::from_utf8(&plain).unwrap()).unwrap();
    assert_eq!(event.event, EventType::MessageNew);
    assert_eq!(event.user.as_deref(), Some("alice"));
    assert!(event.uri.is_some());
    assert!(
        event.message_size.is_none() && event.envelope.is_none(),
        "the subscription's params shape the payload"
    );
    assert!(
        push.received.try_recv().is_err(),
        "exactly one push for one delivery"
    );

    // The browser unsubscribed: the push service answers 410 and Herald forgets the endpoint.
    push.status.store(410, Ordering::SeqCst);
    deliver(&server, "alice@example.org");
    let gone = push.next();
    assert_eq!(gone.path, "/push/alice-phone");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = call(&server, "GET", "/push/subscriptions", "alice:pw-alice", "");
        if body == "[]" {
            break;
        }
        assert!(Instant::now() < deadline, "still listed: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A gone push subscription is not a failure: the event counts as delivered.
    server.admin(&["user", "add", "ops", "--password", "pw-ops", "--admin"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, body) = call(&server, "GET", "/subscriptions/phones", "ops:pw-ops", "");
        assert_eq!(code, 200, "{body}");
        let status: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(status["parked"], 0, "{body}");
        if status["state"] == "active" && status["delivered"].as_u64() >= Some(3) {
            assert!(status["last_error"].is_null(), "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "{body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
