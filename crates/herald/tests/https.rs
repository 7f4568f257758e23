//! HTTPS and certificate reload on the real `herald serve`: `[http] tls_listen` serves health,
//! the JSON API, SSE, WebSocket and signed message links with the `[tls]` certificate; SIGHUP
//! makes new HTTPS and IMAPS connections present a renewed certificate while an open stream
//! carries on, and a broken certificate file on SIGHUP changes nothing. Signed links never name
//! a wildcard address. The clients are rustls over std sockets, trusting the test's
//! certificates and reporting which one the server presented.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Server, herald, run_bounded};
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// `root:root-pw` for HTTP Basic.
const ROOT: &str = "cm9vdDpyb290LXB3";

/// Writes a new self-signed certificate for localhost over `dir/cert.pem` and `dir/key.pem`.
fn write_cert(dir: &Path) -> CertificateDer<'static> {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
    cert.cert.der().clone()
}

/// A client that trusts exactly `certs`.
fn client(certs: &[CertificateDer<'static>]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs {
        roots.add(c.clone()).unwrap();
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

/// Connects with TLS and completes the handshake; returns the stream and the certificate the
/// server presented.
fn connect(addr: SocketAddr, config: &Arc<rustls::ClientConfig>) -> (Tls, CertificateDer<'static>) {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::clone(config), name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).unwrap();
    }
    let presented = tls.conn.peer_certificates().unwrap()[0]
        .clone()
        .into_owned();
    (tls, presented)
}

/// Reads until the peer closes (with or without close_notify).
fn read_all(tls: &mut Tls) -> String {
    let mut bytes = Vec::new();
    match tls.read_to_end(&mut bytes) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => {}
        Err(e) => panic!("read: {e}"),
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `GET path` over HTTPS; returns the status code, the body and the presented certificate.
fn get(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
    path: &str,
    basic: Option<&str>,
) -> (u16, String, CertificateDer<'static>) {
    let (mut tls, presented) = connect(addr, config);
    let auth = basic
        .map(|b| format!("Authorization: Basic {b}\r\n"))
        .unwrap_or_default();
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let text = read_all(&mut tls);
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned(), presented)
}

/// A `POST` with a JSON body over plain HTTP; returns the status code and the body.
fn post_plain(addr: SocketAddr, path: &str, basic: &str, json: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {basic}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (
        head.split(' ').nth(1).unwrap().parse().unwrap(),
        body.to_owned(),
    )
}

/// An open SSE stream over HTTPS.
struct Sse {
    tls: Tls,
    seen: String,
}

impl Sse {
    fn open(addr: SocketAddr, config: &Arc<rustls::ClientConfig>, path: &str) -> Sse {
        let (mut tls, _) = connect(addr, config);
        write!(
            tls,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic {ROOT}\r\n\
             Accept: text/event-stream\r\n\r\n"
        )
        .unwrap();
        Sse {
            tls,
            seen: String::new(),
        }
    }

    /// Reads until the stream has carried `n` `data:` lines in all; returns them.
    fn events(&mut self, n: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let data: Vec<serde_json::Value> = self
                .seen
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .map(|d| serde_json::from_str(d).unwrap())
                .collect();
            if data.len() >= n {
                assert!(self.seen.starts_with("HTTP/1.1 200"), "{}", self.seen);
                return data;
            }
            assert!(Instant::now() < deadline, "stream so far: {}", self.seen);
            let mut buf = [0u8; 4096];
            let got = self.tls.read(&mut buf).unwrap();
            assert!(got > 0, "stream closed: {}", self.seen);
            self.seen.push_str(&String::from_utf8_lossy(&buf[..got]));
        }
    }
}

/// Opens `/events/ws` over TLS and returns the first text message.
fn websocket_first(addr: SocketAddr, config: &Arc<rustls::ClientConfig>, query: &str) -> String {
    let (mut tls, _) = connect(addr, config);
    write!(
        tls,
        "GET /events/ws?{query} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic {ROOT}\r\n\
         Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        tls.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    loop {
        let mut h = [0u8; 2];
        tls.read_exact(&mut h).unwrap();
        let len = match h[1] & 0x7f {
            126 => {
                let mut l = [0u8; 2];
                tls.read_exact(&mut l).unwrap();
                u64::from(u16::from_be_bytes(l))
            }
            127 => {
                let mut l = [0u8; 8];
                tls.read_exact(&mut l).unwrap();
                u64::from_be_bytes(l)
            }
            n => u64::from(n),
        };
        let mut payload = vec![0u8; usize::try_from(len).unwrap()];
        tls.read_exact(&mut payload).unwrap();
        // Text frames carry events; pings (keep-alive) are skipped.
        if h[0] & 0x0f == 1 {
            return String::from_utf8(payload).unwrap();
        }
    }
}

fn deliver(server: &Server, to: &str) {
    let lmtp = server.port("lmtp").to_string();
    server.python(
        "lmtp_deliver.py",
        &[&lmtp, "s@example.net", to, "--", "250", "--", "250"],
    );
}

/// Waits until a new connection to `addr` presents `want`.
fn wait_for_certificate(addr: SocketAddr, config: &Arc<rustls::ClientConfig>, want: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, presented) = connect(addr, config);
        if presented.as_ref() == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{addr} still presents the old certificate"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads `herald_tls_certificate_reloads_total{result=…}` from `/metrics`.
fn reloads(https: SocketAddr, config: &Arc<rustls::ClientConfig>, result: &str) -> u64 {
    let (status, body, _) = get(https, config, "/metrics", None);
    assert_eq!(status, 200, "{body}");
    let prefix = format!("herald_tls_certificate_reloads_total{{result=\"{result}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in {body}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn https_serves_the_api_streams_and_links_and_reloads_its_certificate_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let first = write_cert(dir.path());
    let sink = dir.path().join("links.jsonl");
    let server = Server::start(&format!(
        "[imap]\nlisten = [\"127.0.0.1:0\"]\ntls_listen = [\"127.0.0.1:0\"]\n\
         [http]\nlisten = [\"127.0.0.1:0\"]\ntls_listen = [\"127.0.0.1:0\"]\nmetrics_public = true\n\
         [tls]\ncert = \"{}\"\nkey = \"{}\"\n\
         [[subscription]]\nname = \"links\"\nevents = [\"MessageNew\"]\ncontent = {{ max_bytes = 10 }}\n\
         sink = {{ type = \"file\", path = \"{}\" }}\n",
        dir.path().join("cert.pem").display(),
        dir.path().join("key.pem").display(),
        sink.display()
    ));
    let (https, imaps) = (server.addrs["https"], server.addrs["imaps"]);
    server.add_user("alice", "alice-pw");
    server.admin(&["user", "add", "root", "--password", "root-pw", "--admin"]);
    // The client trusts the first certificate and the one that will replace it: what matters is
    // which one the server presents.
    let second_key = tempfile::tempdir().unwrap();
    let second = write_cert(second_key.path());
    let trust = client(&[first.clone(), second.clone()]);

    // Health and the JSON API over HTTPS.
    let (status, body, presented) = get(https, &trust, "/healthz", None);
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    assert_eq!(presented, first);
    let (status, body, _) = get(https, &trust, "/subscriptions", Some(ROOT));
    assert_eq!(status, 200, "{body}");
    let subs: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(subs[0]["name"], "links", "{subs}");
    let (status, _, _) = get(https, &trust, "/subscriptions", None);
    assert_eq!(status, 401);

    // A delivery reaches an SSE stream and a WebSocket over HTTPS.
    deliver(&server, "alice@example.org");
    let mut stream = Sse::open(https, &trust, "/events/stream?from=0&events=MessageNew");
    let got = stream.events(1);
    assert_eq!(got[0]["user"], "alice");
    let ws: serde_json::Value =
        serde_json::from_str(&websocket_first(https, &trust, "from=0&events=MessageNew")).unwrap();
    assert_eq!(ws["event"], "MessageNew");
    assert_eq!(ws["vnd.herald.id"], got[0]["vnd.herald.id"]);

    // The subscription's content policy left the message out with a signed link naming the
    // HTTPS listener, and the link serves the message over HTTPS without credentials.
    let deadline = Instant::now() + Duration::from_secs(20);
    let link = loop {
        let text = std::fs::read_to_string(&sink).unwrap_or_default();
        if let Some(line) = text.lines().next() {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            break event["vnd.herald.contentURL"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "nothing in {}", sink.display());
        std::thread::sleep(Duration::from_millis(50));
    };
    let path = link
        .strip_prefix(&format!("https://{https}"))
        .unwrap_or_else(|| panic!("{link} does not name https://{https}"));
    let (status, body, _) = get(https, &trust, path, None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Subject: Herald end-to-end"), "{body}");

    // IMAPS presents the same certificate.
    let (mut imap, presented) = connect(imaps, &trust);
    assert_eq!(presented, first);
    let mut greeting = [0u8; 4];
    imap.read_exact(&mut greeting).unwrap();
    assert_eq!(&greeting, b"* OK");

    // Renewal: new files, SIGHUP; new connections on both listeners get the new certificate.
    std::fs::copy(
        second_key.path().join("key.pem"),
        dir.path().join("key.pem"),
    )
    .unwrap();
    std::fs::copy(
        second_key.path().join("cert.pem"),
        dir.path().join("cert.pem"),
    )
    .unwrap();
    server.signal("HUP");
    wait_for_certificate(https, &trust, &second);
    wait_for_certificate(imaps, &trust, &second);
    assert_eq!(reloads(https, &trust, "ok"), 1);
    // The stream opened before the reload carries on: the next delivery arrives on it.
    deliver(&server, "alice@example.org");
    let got = stream.events(2);
    assert_eq!(got[1]["event"], "MessageNew");
    assert!(got[1]["vnd.herald.id"].as_u64() > got[0]["vnd.herald.id"].as_u64());
    // So does the IMAPS session.
    imap.write_all(b"a NOOP\r\n").unwrap();
    let mut answer = Vec::new();
    while !String::from_utf8_lossy(&answer).contains("a OK") {
        let mut buf = [0u8; 512];
        let n = imap.read(&mut buf).unwrap();
        assert!(n > 0, "IMAPS session closed after the reload");
        answer.extend_from_slice(&buf[..n]);
    }

    // A broken certificate file on SIGHUP: an error, the renewed certificate stays, and the
    // server keeps serving.
    std::fs::write(
        dir.path().join("cert.pem"),
        "-----BEGIN CERTIFICATE-----\nnope\n",
    )
    .unwrap();
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(20);
    while reloads(https, &trust, "failed") == 0 {
        assert!(
            Instant::now() < deadline,
            "the failed reload was not counted"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, _, presented) = get(https, &trust, "/healthz", None);
    assert_eq!((status, presented), (200, second.clone()));
    let (_, presented) = connect(imaps, &trust);
    assert_eq!(presented, second);
    let (status, _) = server.stop();
    assert!(status.success(), "{status}");
}

/// Writes a configuration with every listener on an ephemeral loopback port but HTTP on a
/// wildcard address, plus `extra`.
fn wildcard_config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let config = dir.join("herald.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\npath = \"{}\"\n[imap]\nlisten = [\"127.0.0.1:0\"]\n\
             [pop3]\nlisten = [\"127.0.0.1:0\"]\n[lmtp]\nlisten = [\"127.0.0.1:0\"]\n\
             [http]\nlisten = [\"0.0.0.0:0\"]\n{extra}",
            dir.join("data").display()
        ),
    )
    .unwrap();
    config
}

#[test]
fn links_never_name_a_wildcard_address() {
    // A subscription that needs links, and nothing but a wildcard to name: Herald will not
    // start, and says what to set.
    let dir = tempfile::tempdir().unwrap();
    let config = wildcard_config(
        dir.path(),
        "[[subscription]]\nname = \"big\"\ncontent = { max_bytes = 10 }\nsink = { type = \"stdout\" }\n",
    );
    let ran = run_bounded(
        herald().args(["serve", "--config"]).arg(&config),
        Duration::from_secs(30),
    );
    assert!(ran.status.is_some_and(|s| !s.success()), "{ran}");
    assert!(
        ran.stderr.contains("public_url") && ran.stderr.contains("big"),
        "{ran}"
    );
    // `public_url` set: it starts.
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&format!(
        "[http]\nlisten = [\"0.0.0.0:0\"]\npublic_url = \"https://mail.example.org\"\n\
         [[subscription]]\nname = \"big\"\nevents = [\"MessageNew\"]\n\
         content = {{ max_bytes = 10 }}\n\
         sink = {{ type = \"file\", path = \"{}\" }}\n",
        dir.path().join("big.jsonl").display()
    ));
    server.add_user("alice", "alice-pw");
    deliver(&server, "alice@example.org");
    let deadline = Instant::now() + Duration::from_secs(20);
    let line = loop {
        let text = std::fs::read_to_string(dir.path().join("big.jsonl")).unwrap_or_default();
        if let Some(line) = text.lines().next() {
            break line.to_owned();
        }
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    };
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    let link = event["vnd.herald.contentURL"].as_str().unwrap();
    assert!(
        link.starts_with("https://mail.example.org/messages?"),
        "{link}"
    );
    drop(server);

    // Without a subscription needing links Herald starts; the API refuses to create one and
    // says why.
    let server = Server::start("[http]\nlisten = [\"0.0.0.0:0\"]\n");
    server.admin(&["user", "add", "root", "--password", "root-pw", "--admin"]);
    let http = SocketAddr::from(([127, 0, 0, 1], server.port("http")));
    let (status, body) = post_plain(
        http,
        "/subscriptions",
        ROOT,
        r#"{"name":"big","content":{"max_bytes":10},"sink":{"type":"stdout"}}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("public_url"), "{body}");
    let (status, body) = post_plain(
        http,
        "/subscriptions",
        ROOT,
        r#"{"name":"small","content":{"max_bytes":10,"reference":false},"sink":{"type":"stdout"}}"#,
    );
    assert_eq!(status, 201, "{body}");
}

#[test]
fn sighup_without_tls_keeps_serving() {
    // SIGHUP's default action ends a process; Herald handles it even with nothing to reload.
    let server = Server::start("");
    server.signal("HUP");
    server.signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
    let mut s = TcpStream::connect(server.addrs["http"]).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let (status, _) = server.stop();
    assert!(status.success(), "{status}");
}
