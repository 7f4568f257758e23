//! A real MTA delivers into Herald: a private Postfix instance (its own configuration and queue
//! in a temporary directory, SMTP on a free loopback port) relays a message for `herald.test`
//! over LMTP into the real `herald serve`, and the MessageNew event shows Postfix's envelope.
//!
//! Postfix comes from Debian's package, installed by `.ci/install`. Without it (or without
//! root, which Postfix's master needs) the test is skipped with a message — and fails under
//! `CI=true`, where it must run.
#![allow(clippy::unwrap_used)]

mod common;

use common::Server;
use herald_events::EventType;
use std::path::Path;
use std::process::Command;

const POSTFIX: &str = "/usr/sbin/postfix";

fn skip(why: &str) -> bool {
    common::skip(&format!("{why} (run .ci/install as root)"));
    true
}

/// Stops the private Postfix when the test ends, however it ends.
struct Postfix {
    config: std::path::PathBuf,
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new(POSTFIX)
            .arg("-c")
            .arg(&self.config)
            .arg("stop")
            .status();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_config(root: &Path, smtp_port: u16, lmtp_port: u16) {
    let etc = root.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(root.join("spool")).unwrap();
    std::fs::create_dir_all(root.join("data")).unwrap();
    let r = root.display();
    std::fs::write(
        etc.join("main.cf"),
        format!(
            "compatibility_level = 3.6\nqueue_directory = {r}/spool\ndata_directory = {r}/data\n\
             mail_owner = postfix\nsetgid_group = postdrop\ninet_interfaces = 127.0.0.1\n\
             inet_protocols = ipv4\nmyhostname = mx.herald.test\nmydestination =\n\
             relay_domains = herald.test\nmynetworks = 127.0.0.0/8\n\
             smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n\
             transport_maps = inline:{{ herald.test=lmtp:inet:127.0.0.1:{lmtp_port} }}\n\
             lmtp_host_lookup = native\nsmtp_host_lookup = native\n\
             maillog_file = {r}/maillog\nmaillog_file_prefixes = {r}\n"
        ),
    )
    .unwrap();
    let services = [
        format!("127.0.0.1:{smtp_port} inet n - n - - smtpd"),
        "pickup unix n - n 60 1 pickup".into(),
        "cleanup unix n - n - 0 cleanup".into(),
        "qmgr unix n - n 300 1 qmgr".into(),
        "rewrite unix - - n - - trivial-rewrite".into(),
        "bounce unix - - n - 0 bounce".into(),
        "defer unix - - n - 0 bounce".into(),
        "trace unix - - n - 0 bounce".into(),
        "verify unix - - n - 1 verify".into(),
        "flush unix n - n 1000? 0 flush".into(),
        "proxymap unix - - n - - proxymap".into(),
        "smtp unix - - n - - smtp".into(),
        "relay unix - - n - - smtp".into(),
        "showq unix n - n - - showq".into(),
        "error unix - - n - - error".into(),
        "retry unix - - n - - error".into(),
        "discard unix - - n - - discard".into(),
        "lmtp unix - - n - - lmtp".into(),
        "anvil unix - - n - 1 anvil".into(),
        "scache unix - - n - 1 scache".into(),
        "postlog unix-dgram n - n - 1 postlogd".into(),
    ];
    std::fs::write(etc.join("master.cf"), services.join("\n") + "\n").unwrap();
    let status = Command::new("chown")
        .arg("postfix")
        .arg(root.join("data"))
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn postfix_relays_into_herald_over_lmtp() {
    if !Path::new(POSTFIX).exists() && skip("Postfix is not installed") {
        return;
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !is_root && skip("Postfix's master must be started as root") {
        return;
    }
    let server = Server::start("");
    server.add_user("alice", "pw");
    let root = tempfile::Builder::new()
        .prefix("pf")
        .tempdir_in("/tmp")
        .unwrap();
    let smtp_port = free_port();
    write_config(root.path(), smtp_port, server.port("lmtp"));
    let config = root.path().join("etc");
    let started = Command::new(POSTFIX)
        .arg("-c")
        .arg(&config)
        .arg("start")
        .output()
        .unwrap();
    let _postfix = Postfix {
        config: config.clone(),
    };
    let log = || std::fs::read_to_string(root.path().join("maillog")).unwrap_or_default();
    assert!(started.status.success(), "postfix start failed:\n{}", log());

    // Postfix's smtpd may take a moment to accept after `start` returns.
    let port = smtp_port.to_string();
    let mut sent = false;
    for _ in 0..50 {
        let out = Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/smtp_send.py"))
            .args([
                &port,
                "bob@example.net",
                "alice@herald.test",
                "relayed by postfix",
            ])
            .output()
            .unwrap();
        if out.status.success() {
            sent = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(sent, "could not submit to Postfix:\n{}", log());

    let events = server.wait_for(0, |e| e.iter().any(|e| e.event == EventType::MessageNew));
    let new = events
        .iter()
        .find(|e| e.event == EventType::MessageNew)
        .unwrap();
    new.validate().unwrap();
    assert_eq!(new.user.as_deref(), Some("alice"));
    let envelope = new.envelope.as_deref().unwrap();
    assert!(
        envelope.starts_with("MAIL FROM:<bob@example.net>"),
        "{envelope}"
    );
    assert!(
        envelope.ends_with("RCPT TO:<alice@herald.test>\r\n"),
        "{envelope}"
    );
    // Herald publishes the event when the delivery commits, before its 250 reaches Postfix;
    // Postfix's log line follows a moment later.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !log().contains("status=sent (250 2.0.0 delivered)") {
        assert!(
            std::time::Instant::now() < deadline,
            "Postfix did not log the delivery as sent:\n{}",
            log()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
