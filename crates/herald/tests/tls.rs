//! TLS end to end: a certificate made for the test, `[tls]` in the configuration, and Python's
//! stock clients using LMTP STARTTLS, POP3 STLS (on a listener that refuses clear-text
//! passwords) and POP3 over implicit TLS.
#![allow(clippy::unwrap_used)]

mod common;

use common::Server;

#[test]
fn starttls_stls_and_implicit_tls() {
    let certs = tempfile::tempdir().unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (c, k) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    std::fs::write(&c, cert.cert.pem()).unwrap();
    std::fs::write(&k, cert.signing_key.serialize_pem()).unwrap();
    let server = Server::start_with(
        "127.0.0.1:0",
        &format!(
            "[pop3]\nlisten = [\"127.0.0.1:0\"]\ntls_listen = [\"127.0.0.1:0\"]\nplaintext_auth = false\n\
             [tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            c.display(),
            k.display()
        ),
    );
    server.add_user("erin", "pw");
    let (lmtp, pop3, pop3s) = (
        server.port("lmtp").to_string(),
        server.port("pop3").to_string(),
        server.port("pop3s").to_string(),
    );
    let out = server.python("tls_sessions.py", &[&lmtp, &pop3, &pop3s, "erin", "pw"]);
    assert_eq!(out.trim(), "ok");
    // A command pipelined in clear text behind STLS is dropped, not run over TLS.
    assert_eq!(server.python("stls_injection.py", &[&pop3]).trim(), "ok");
    let events = server.wait_for(0, |e| {
        e.iter()
            .filter(|e| e.event == herald_events::EventType::Logout)
            .count()
            == 2
    });
    assert!(events.iter().all(|e| e.validate().is_ok()));
}
