//! How `herald serve` starts and stops: every port is bound before delivery begins, and a stop
//! delivers the events of the sessions it ends (their Logout) before it exits.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Server, herald, read_log};
use herald_events::{EventType, vnd};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn a_stop_delivers_the_logouts_of_the_sessions_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let sink = dir.path().join("sink.jsonl");
    let server = Server::start_in(
        dir,
        &format!(
            "[[subscription]]\nname = \"audit\"\nevents = [\"access\"]\nsink = {{ type = \"file\", path = \"{}\" }}\n",
            sink.display()
        ),
    );
    server.add_user("alice", "pw");
    let imap = TcpStream::connect(server.addrs["imap"]).unwrap();
    imap.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(imap.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    (&imap).write_all(b"a LOGIN alice pw\r\n").unwrap();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line.starts_with("a ") {
            assert!(line.starts_with("a OK"), "{line}");
            break;
        }
    }
    server.wait_for(0, |e| e.iter().any(|e| e.event == EventType::Login));
    let (status, _dir) = server.stop();
    assert!(status.success(), "{status:?}");
    // The session ended by the stop recorded its Logout, and the subscription got it before
    // the process exited — not on some later start.
    let delivered = read_log(&sink);
    let logout = delivered
        .iter()
        .find(|e| e.event == EventType::Logout)
        .unwrap_or_else(|| panic!("no Logout delivered: {delivered:?}"));
    assert_eq!(logout.extension(vnd::DISCONNECT).unwrap(), "shutdown");
}

/// Runs `herald serve` on a data directory in `dir` with `sections` of configuration, expecting
/// it to refuse to start.
fn serve_fails(dir: &tempfile::TempDir, sections: &str) -> std::process::Output {
    let config = dir.path().join("herald.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\npath = \"{}\"\n{sections}",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let out = herald()
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success(), "serve started");
    out
}

#[test]
fn a_port_in_use_stops_serve_before_delivery_starts() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let sink = dir.path().join("sink.jsonl");
    let out = serve_fails(
        &dir,
        &format!(
            "[imap]\nlisten = [\"127.0.0.1:0\"]\n[http]\nlisten = [\"127.0.0.1:0\"]\n\
             [pop3]\nlisten = [\"127.0.0.1:0\"]\n[lmtp]\nlisten = [\"127.0.0.1:{port}\"]\n\
             [[subscription]]\nname = \"audit\"\nsink = {{ type = \"file\", path = \"{}\" }}\n",
            sink.display()
        ),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("subscription:"),
        "delivery started before every port was bound: {stdout}"
    );
    assert!(!sink.exists(), "the sink was opened");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&port.to_string()),
        "the error names the port: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_bad_detail_delivery_setting_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = serve_fails(
        &dir,
        "[lmtp]\nlisten = [\"127.0.0.1:0\"]\ndetail_delivery = \"sometimes\"\n",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("detail_delivery `sometimes`: expected never, subscribed or any"),
        "{stderr}"
    );
}

#[test]
fn a_failed_login_is_logged_as_one_plain_line_fail2ban_can_match() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("herald.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\npath = \"{}\"\n[imap]\nlisten = [\"127.0.0.1:0\"]\n[http]\nlisten = [\"127.0.0.1:0\"]\n\
             [pop3]\nlisten = [\"127.0.0.1:0\"]\n[lmtp]\nlisten = [\"127.0.0.1:0\"]\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let log = dir.path().join("stderr.log");
    let mut child = herald()
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut imap = None;
    let mut line = String::new();
    while imap.is_none() {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "serve ended");
        imap = line
            .strip_prefix("listening: imap ")
            .map(|a| a.trim().to_owned());
    }
    let c = TcpStream::connect(imap.unwrap()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = BufReader::new(c.try_clone().unwrap());
    reader.read_line(&mut line).unwrap();
    (&c).write_all(b"a LOGIN \"mallory\\\\x\" wrong\r\n")
        .unwrap();
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert!(line.contains("AUTHENTICATIONFAILED"), "{line}");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    let failed = text
        .lines()
        .find(|l| l.contains("authentication failed"))
        .unwrap_or_else(|| panic!("no failure logged:\n{text}"));
    // What a fail2ban filter `authentication (failed|refused) rip=<HOST>` needs: no colour codes,
    // the address right after `rip=`, the user name quoted and escaped.
    assert!(!failed.contains('\x1b'), "{failed:?}");
    assert!(
        failed.contains(r#"authentication failed rip=127.0.0.1 user="mallory\\x" service="imap""#),
        "{failed}"
    );
}
