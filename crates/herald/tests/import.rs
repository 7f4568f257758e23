//! `herald import` end to end: a generated Dovecot Maildir (with `dovecot-uidlist`,
//! `dovecot-keywords` and subfolders) imported into the live server's data directory and read
//! back over IMAP; imports interrupted (by a full quota, by SIGKILL) and run again; and a whole
//! account copied from a real Dovecot, started here as a private instance on a loopback port,
//! compared with what Herald then serves.
//!
//! The Dovecot test runs only when Dovecot is installed (`.ci/install` installs the Debian
//! package `dovecot-imapd`); otherwise it says why and passes, except under `CI=true`, where a
//! missing Dovecot fails it.
#![allow(clippy::unwrap_used)]

mod common;

use common::Server;
use herald_events::{Event, EventType, vnd};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

/// Runs `herald import ARGS --config CONFIG`; returns (success, stdout, stderr).
fn import(server: &Server, args: &[&str]) -> (bool, String, String) {
    let out = common::herald()
        .arg("import")
        .args(args)
        .arg("--config")
        .arg(&server.config)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn import_ok(server: &Server, args: &[&str]) -> String {
    let (ok, stdout, stderr) = import(server, args);
    assert!(ok, "herald import {args:?} failed:\n{stdout}\n{stderr}");
    stdout
}

/// What an account looks like over IMAP (tests/python/imap_snapshot.py).
fn snapshot(port: u16, user: &str, password: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/imap_snapshot.py");
    let out = Command::new("python3")
        .arg(path)
        .args([&port.to_string(), user, password])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "imap_snapshot.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The events stored so far (the outbox, through `herald events tail`).
fn stored_events(server: &Server) -> Vec<Event> {
    server
        .admin(&["events", "tail"])
        .lines()
        .map(|l| Event::from_json(l).unwrap())
        .collect()
}

fn imports(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| {
            e.event == EventType::MessageAppend
                && e.extension(vnd::CAUSE).and_then(|v| v.as_str()) == Some("import")
        })
        .count()
}

/// Writes a message file with the given modification time (seconds since the epoch).
fn put(path: PathBuf, content: &str, mtime: u64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, content).unwrap();
    let f = std::fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(mtime))
        .unwrap();
}

fn maildir(root: &Path) {
    for d in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
}

fn msg(n: u32) -> String {
    format!("From: a@example.org\nSubject: m{n}\nMessage-ID: <m{n}@example.org>\n\nbody {n}\n")
}

/// The messages of one mailbox of a snapshot: (uid, flags, date, sha256) rows.
fn rows(snap: &Value, mailbox: &str) -> Vec<(u64, Vec<String>, i64)> {
    snap[mailbox]["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no mailbox {mailbox} in {snap:#}"))
        .iter()
        .map(|r| {
            let flags = r[1]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap().to_owned())
                .collect();
            (r[0].as_u64().unwrap(), flags, r[2].as_i64().unwrap())
        })
        .collect()
}

#[test]
fn a_dovecot_maildir_keeps_uids_flags_keywords_and_dates() {
    let sinks = tempfile::tempdir().unwrap();
    let (all, live) = (
        sinks.path().join("all.jsonl"),
        sinks.path().join("live.jsonl"),
    );
    let server = Server::start(&format!(
        "[[subscription]]\nname = \"all\"\nevents = [\"MessageAppend\"]\n\
         sink = {{ type = \"file\", path = \"{}\" }}\n\
         [[subscription]]\nname = \"live\"\nevents = [\"MessageAppend\"]\n\
         exclude_causes = [\"import\"]\nsink = {{ type = \"file\", path = \"{}\" }}\n",
        all.display(),
        live.display()
    ));
    server.add_user("alice", "alice-pw");
    let src = tempfile::tempdir().unwrap();
    let root = src.path().join("Maildir");
    maildir(&root);
    std::fs::write(
        root.join("dovecot-uidlist"),
        "3 V1600000000 N20 G2b4c1a\n\
         3 :1600000001.M1P1.host,S=80\n\
         7 W95 :1600000002.M2P1.host,S=81\n",
    )
    .unwrap();
    std::fs::write(root.join("dovecot-keywords"), "0 $Forwarded\n1 Work\n").unwrap();
    put(
        root.join("cur/1600000001.M1P1.host,S=80:2,RS"),
        &msg(1),
        1_600_000_001,
    );
    put(
        root.join("cur/1600000002.M2P1.host,S=81:2,Fab"),
        &msg(2),
        1_600_000_002,
    );
    // Not in the uidlist yet: it gets the next UID, as Dovecot would give it.
    put(
        root.join("new/1600000003.M3P1.host"),
        &msg(3),
        1_600_000_003,
    );
    let rust = root.join(".Lists.rust");
    maildir(&rust);
    std::fs::write(
        rust.join("dovecot-uidlist"),
        "3 V1600000100 N3\n1 :a.host\n2 :b.host\n",
    )
    .unwrap();
    std::fs::write(rust.join("dovecot-keywords"), "0 $Label1\n").unwrap();
    put(rust.join("cur/a.host:2,S"), &msg(4), 1_600_000_100);
    put(rust.join("cur/b.host:2,Ta"), &msg(5), 1_600_000_200);
    // No uidlist: appended in name order with Herald's own UIDs.
    let drafts = root.join(".Entw&APw-rfe");
    maildir(&drafts);
    put(drafts.join("cur/x.host:2,D"), &msg(6), 1_600_000_300);

    let out = import_ok(
        &server,
        &["maildir", root.to_str().unwrap(), "--user", "alice"],
    );
    assert!(
        out.contains("imported 6 messages into 3 mailboxes of alice"),
        "{out}"
    );

    let snap = snapshot(server.port("imap"), "alice", "alice-pw");
    assert_eq!(snap["INBOX"]["uidvalidity"], 1_600_000_000);
    assert_eq!(snap["INBOX"]["uidnext"], 21);
    let s = |v: &[&str]| v.iter().map(|f| (*f).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        rows(&snap, "INBOX"),
        [
            (3, s(&["\\Answered", "\\Seen"]), 1_600_000_001),
            (7, s(&["$Forwarded", "Work", "\\Flagged"]), 1_600_000_002),
            (20, s(&[]), 1_600_000_003),
        ]
    );
    assert_eq!(snap["Lists/rust"]["uidvalidity"], 1_600_000_100);
    assert_eq!(snap["Lists/rust"]["uidnext"], 3);
    assert_eq!(
        rows(&snap, "Lists/rust"),
        [
            (1, s(&["\\Seen"]), 1_600_000_100),
            (2, s(&["$Label1", "\\Deleted"]), 1_600_000_200),
        ]
    );
    // The folder name was modified UTF-7 on disk; IMAP shows it the same way.
    assert_eq!(
        rows(&snap, "Entw&APw-rfe"),
        [(1, s(&["\\Draft"]), 1_600_000_300)]
    );
    assert!(snap.get("Lists").is_none() || snap["Lists"]["messages"] == Value::Array(vec![]));

    let events = stored_events(&server);
    assert_eq!(
        imports(&events),
        6,
        "one MessageAppend per message, cause import"
    );
    let first = events
        .iter()
        .find(|e| e.event == EventType::MessageAppend)
        .unwrap();
    assert_eq!(first.service.as_deref(), Some("admincli"));
    assert!(first.validate().is_ok(), "{}", first.to_json());

    // A subscription with `exclude_causes = ["import"]` sees a client's APPEND but none of
    // the import's events; one without sees them all.
    server.python(
        "imap_fill.py",
        &[
            &server.port("imap").to_string(),
            "alice",
            "alice-pw",
            "INBOX",
            "1",
        ],
    );
    let wait = |path: &Path, n: usize| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let events = common::read_log(path);
            if events.len() >= n || std::time::Instant::now() > deadline {
                return events;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let everything = wait(&all, 7);
    assert_eq!((everything.len(), imports(&everything)), (7, 6));
    let filtered = wait(&live, 1);
    assert_eq!(filtered.len(), 1, "{filtered:#?}");
    assert_eq!(
        filtered[0].extension(vnd::CAUSE).and_then(|v| v.as_str()),
        Some("append")
    );

    // Run again: nothing new, no event.
    let out = import_ok(
        &server,
        &["maildir", root.to_str().unwrap(), "--user", "alice"],
    );
    assert!(out.contains("imported 0 messages"), "{out}");
    assert_eq!(imports(&stored_events(&server)), 6);
    // A message delivered to the Maildir since is picked up by the next run.
    put(
        root.join("new/1600000009.M9P1.host"),
        &msg(9),
        1_600_000_009,
    );
    let out = import_ok(
        &server,
        &["maildir", root.to_str().unwrap(), "--user", "alice"],
    );
    assert!(out.contains("imported 1 messages"), "{out}");
    let snap = snapshot(server.port("imap"), "alice", "alice-pw");
    let uids: Vec<u64> = rows(&snap, "INBOX").iter().map(|r| r.0).collect();
    assert_eq!(uids, [3, 7, 20, 21, 22], "after the APPEND's 21");
}

/// A Maildir of `n` messages with a uidlist (UIDs 1..=n).
fn big_maildir(root: &Path, n: u32) {
    maildir(root);
    let mut list = format!("3 V1700000000 N{}\n", n + 1);
    for i in 1..=n {
        let name = format!("{}.M{i}P1.host", 1_700_000_000 + i);
        list.push_str(&format!("{i} :{name}\n"));
        put(root.join(format!("cur/{name}:2,S")), &msg(i), 1_700_000_000);
    }
    std::fs::write(root.join("dovecot-uidlist"), list).unwrap();
}

fn inbox_uids(server: &Server, user: &str) -> Vec<u64> {
    let snap = snapshot(server.port("imap"), user, "pw");
    rows(&snap, "INBOX").iter().map(|r| r.0).collect()
}

#[test]
fn an_interrupted_import_resumes_without_duplicates() {
    let server = Server::start("");
    let src = tempfile::tempdir().unwrap();
    let root = src.path().join("Maildir");
    big_maildir(&root, 600);
    let path = root.to_str().unwrap();

    // Interrupted by the quota: the first batch (200) commits, the second does not fit.
    server.add_user("carol", "pw");
    server.admin(&["quota", "set", "carol", "--messages", "250"]);
    let (ok, stdout, stderr) = import(&server, &["maildir", path, "--user", "carol"]);
    assert!(!ok, "{stdout}{stderr}");
    assert!(stderr.contains("quota"), "{stderr}");
    assert_eq!(inbox_uids(&server, "carol"), (1..=200).collect::<Vec<_>>());
    server.admin(&["quota", "set", "carol", "--messages", "100000"]);
    let out = import_ok(&server, &["maildir", path, "--user", "carol"]);
    assert!(
        out.contains("INBOX: 400 imported, 200 already there"),
        "{out}"
    );
    assert_eq!(inbox_uids(&server, "carol"), (1..=600).collect::<Vec<_>>());

    // Interrupted by SIGKILL, wherever it lands (a larger source, so it lands inside).
    let big = src.path().join("Big");
    big_maildir(&big, 3000);
    let path = big.to_str().unwrap();
    server.add_user("dave", "pw");
    let before = imports(&stored_events(&server));
    let mut child = common::herald()
        .args(["import", "maildir", path, "--user", "dave", "--config"])
        .arg(&server.config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while imports(&stored_events(&server)) == before && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = imports(&stored_events(&server)) - before;
    eprintln!("the import was killed after {partial} of 3000 messages");
    import_ok(&server, &["maildir", path, "--user", "dave"]);
    assert_eq!(inbox_uids(&server, "dave"), (1..=3000).collect::<Vec<_>>());
    assert_eq!(
        imports(&stored_events(&server)) - before,
        3000,
        "one event per message"
    );
}

#[test]
fn an_mbox_imports_into_one_mailbox_and_resumes() {
    let server = Server::start("");
    server.add_user("erin", "pw");
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("old.mbox");
    std::fs::write(
        &file,
        "From a@example.org Sat Jan  3 01:05:34 1996\nStatus: RO\nX-Status: A\n\
         Subject: one\n\nHello\n>From the start\n\n\
         From b@example.org Mon Feb 12 10:00:00 2024\nSubject: two\n\nBye\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let out = import_ok(
        &server,
        &["mbox", f, "--user", "erin", "--mailbox", "Archive/Old"],
    );
    assert!(out.contains("imported 2 messages"), "{out}");
    let out = import_ok(
        &server,
        &["mbox", f, "--user", "erin", "--mailbox", "Archive/Old"],
    );
    assert!(out.contains("imported 0 messages"), "{out}");
    let snap = snapshot(server.port("imap"), "erin", "pw");
    let s = |v: &[&str]| v.iter().map(|f| (*f).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        rows(&snap, "Archive/Old"),
        [
            (1, s(&["\\Answered", "\\Seen"]), 820_631_134),
            (2, s(&[]), 1_707_732_000),
        ]
    );
}

// ---- a real Dovecot ------------------------------------------------------------------------

fn dovecot_binary() -> Option<PathBuf> {
    let found = ["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "Dovecot is not installed (CI=true): run .ci/install"
        );
        eprintln!(
            "skipping: Dovecot is not installed (Debian package dovecot-imapd; see .ci/install)"
        );
    }
    found
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A private Dovecot: its own configuration, runtime and mail directories, passwd-file
/// authentication, IMAP (with STARTTLS) and IMAPS on loopback ports, with a certificate made
/// here for 127.0.0.1 (`ca`). Stopped (`dovecot stop`) when dropped.
struct Dovecot {
    binary: PathBuf,
    config: PathBuf,
    port: u16,
    tls_port: u16,
    ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl Dovecot {
    fn start(binary: PathBuf, user: &str, password: &str) -> Dovecot {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        let me = whoami();
        // As root, Dovecot drops privileges to its own system users (the package made them)
        // and refuses to give mail to root; otherwise everything runs as the current user.
        let (internal, login, mail_user) = if me == "root" {
            ("dovecot", "dovenull", "dovecot")
        } else {
            (me.as_str(), me.as_str(), me.as_str())
        };
        for d in ["run", "state", "mail"] {
            std::fs::create_dir_all(base.join(d)).unwrap();
        }
        Command::new("chmod").arg("755").arg(base).status().unwrap();
        Command::new("chown")
            .arg(format!("{mail_user}:"))
            .arg(base.join("mail"))
            .status()
            .unwrap();
        std::fs::write(base.join("passwd"), format!("{user}:{{PLAIN}}{password}\n")).unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
        let ca = base.join("cert.pem");
        std::fs::write(&ca, cert.cert.pem()).unwrap();
        std::fs::write(base.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
        let (port, tls_port) = (free_port(), free_port());
        let b = base.display();
        let config = base.join("dovecot.conf");
        std::fs::write(
            &config,
            format!(
                "base_dir = {b}/run\n\
                 state_dir = {b}/state\n\
                 log_path = {b}/dovecot.log\n\
                 protocols = imap\n\
                 listen = 127.0.0.1\n\
                 ssl = yes\n\
                 ssl_cert = <{b}/cert.pem\n\
                 ssl_key = <{b}/key.pem\n\
                 disable_plaintext_auth = no\n\
                 auth_mechanisms = plain login\n\
                 default_internal_user = {internal}\n\
                 default_login_user = {login}\n\
                 first_valid_uid = 1\n\
                 mail_location = maildir:{b}/mail/%u\n\
                 namespace inbox {{\n  inbox = yes\n  separator = /\n}}\n\
                 passdb {{\n  driver = passwd-file\n  args = {b}/passwd\n}}\n\
                 userdb {{\n  driver = static\n  args = uid={mail_user} gid={mail_user} home={b}/mail/%u\n}}\n\
                 service imap-login {{\n  chroot =\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {tls_port}\n  }}\n}}\n\
                 service anvil {{\n  chroot =\n}}\n"
            ),
        )
        .unwrap();
        let status = Command::new(&binary)
            .arg("-c")
            .arg(&config)
            .status()
            .unwrap();
        let log = || std::fs::read_to_string(base.join("dovecot.log")).unwrap_or_default();
        assert!(status.success(), "dovecot did not start:\n{}", log());
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "dovecot does not listen:\n{}",
                log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Dovecot {
            binary,
            config,
            port,
            tls_port,
            ca,
            _dir: dir,
        }
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.config)
            .arg("stop")
            .status();
    }
}

#[test]
fn a_whole_account_copies_from_a_real_dovecot() {
    let Some(binary) = dovecot_binary() else {
        return;
    };
    let dovecot = Dovecot::start(binary, "alice", "dove-pw");
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/imap_seed.py");
    let out = Command::new("python3")
        .arg(seed)
        .args([&dovecot.port.to_string(), "alice", "dove-pw"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "imap_seed.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let source = snapshot(dovecot.port, "alice", "dove-pw");

    let server = Server::start("");
    server.add_user("bob", "bob-pw");
    let pw = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(pw.path(), "dove-pw\n").unwrap();
    let port = dovecot.port.to_string();
    let args = [
        "imap",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--plain",
        "--user",
        "alice",
        "--password-file",
        pw.path().to_str().unwrap(),
        "--to-user",
        "bob",
    ];
    let out = import_ok(&server, &args);
    assert!(out.contains("imported 7 messages"), "{out}");
    let copied = snapshot(server.port("imap"), "bob", "bob-pw");
    for (name, mailbox) in source.as_object().unwrap() {
        assert_eq!(
            &copied[name], mailbox,
            "{name}: Herald serves what Dovecot did"
        );
    }
    // Herald makes the parents of a new mailbox real (empty) mailboxes; Dovecot lists them
    // as \NonExistent. Nothing else is extra.
    for (name, mailbox) in copied.as_object().unwrap() {
        assert!(
            source.get(name).is_some() || mailbox["messages"] == Value::Array(vec![]),
            "{name} is extra: {copied:#}"
        );
    }
    let inbox = rows(&copied, "INBOX");
    assert_eq!(inbox.len(), 4, "{copied:#}");
    assert_eq!(inbox[2].0, 4, "the expunged UID 3 stays a gap");
    assert_eq!(imports(&stored_events(&server)), 7);

    // Again: nothing more.
    let out = import_ok(&server, &args);
    assert!(out.contains("imported 0 messages"), "{out}");
    assert_eq!(imports(&stored_events(&server)), 7);

    // The same over implicit TLS and over STARTTLS, trusting the test's certificate.
    let ca = dovecot.ca.to_str().unwrap();
    let tls_port = dovecot.tls_port.to_string();
    for (to, security, port) in [("carol", "--tls", &tls_port), ("dave", "--starttls", &port)] {
        server.add_user(to, "pw");
        let out = import_ok(
            &server,
            &[
                "imap",
                "--host",
                "127.0.0.1",
                "--port",
                port,
                security,
                "--ca-file",
                ca,
                "--user",
                "alice",
                "--password-file",
                pw.path().to_str().unwrap(),
                "--to-user",
                to,
            ],
        );
        assert!(out.contains("imported 7 messages"), "{security}: {out}");
        let copied = snapshot(server.port("imap"), to, "pw");
        assert_eq!(copied["INBOX"], source["INBOX"], "{security}");
    }
    // Without the certificate the server is not trusted, and nothing is imported.
    server.add_user("erin", "pw");
    let (ok, _, stderr) = import(
        &server,
        &[
            "imap",
            "--host",
            "127.0.0.1",
            "--port",
            &tls_port,
            "--user",
            "alice",
            "--password-file",
            pw.path().to_str().unwrap(),
            "--to-user",
            "erin",
        ],
    );
    assert!(!ok && stderr.contains("TLS"), "{stderr}");
}
