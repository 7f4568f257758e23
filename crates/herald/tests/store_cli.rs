//! End to end: the real `herald` binary on a temporary data directory — `user add/list/del`,
//! `quota set` (QuotaChange), `events tail` with `--from` and `--follow`, `expire` and
//! `bench store`, and a data directory left open to others made private.
#![allow(clippy::unwrap_used)]

use herald_events::{Event, EventType};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn herald(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("--data")
        .arg(data)
        .args(args)
        .env("HERALD_LOG", "warn")
        .output()
        .unwrap()
}

fn ok(data: &Path, args: &[&str]) -> String {
    let out = herald(data, args);
    assert!(
        out.status.success(),
        "herald {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every line is a valid event; returns them.
fn events(text: &str) -> Vec<Event> {
    text.lines()
        .map(|l| {
            let e = Event::from_json(l).unwrap();
            e.validate().unwrap();
            assert_eq!(e.to_json(), l, "tail prints the stored JSON unchanged");
            e
        })
        .collect()
}

#[test]
fn a_data_directory_open_to_others_is_tightened() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    ok(&data, &["user", "add", "alice", "--password", "pw"]);
    let mode = std::fs::metadata(&data).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

/// Runs `herald` with `input` on its standard input (not a terminal).
fn herald_with_input(data: &Path, args: &[&str], input: &str) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("--data")
        .arg(data)
        .args(args)
        .env("HERALD_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Whether `user` can log in with `password`, asked of the store itself.
fn logs_in(data: &Path, user: &str, password: &str) -> bool {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut config = herald_store::StoreConfig::new(data);
        config.durable = false;
        let store = herald_store::Store::open(config).await.unwrap();
        let ok = store.authenticate(user, password, None).await.is_ok();
        store.close().await;
        ok
    })
}

#[test]
fn passwords_come_from_a_file_stdin_or_a_hash_never_from_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("pw.txt");
    std::fs::write(&file, "s3cret word\n").unwrap();
    let file = file.to_str().unwrap();
    ok(&data, &["user", "add", "alice", "--password-file", file]);
    assert!(
        logs_in(&data, "alice", "s3cret word"),
        "the line ending is not part of it"
    );
    let out = herald_with_input(
        &data,
        &["user", "passwd", "alice", "--password-file", "-"],
        "n3w\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(logs_in(&data, "alice", "n3w"));
    assert!(!logs_in(&data, "alice", "s3cret word"));
    // A hash made elsewhere is stored as it is.
    let phc = herald_store::password::hash("from elsewhere").unwrap();
    ok(&data, &["user", "add", "bob", "--password-hash", &phc]);
    assert!(logs_in(&data, "bob", "from elsewhere"));
    // Refused, each with a message that says why, and nothing created.
    let refused = [
        herald_with_input(
            &data,
            &["user", "add", "carol", "--password-file", "-"],
            "\n",
        ),
        herald(
            &data,
            &[
                "user",
                "add",
                "carol",
                "--password-hash",
                "{SHA512-CRYPT}$6$x$y",
            ],
        ),
        // No password at all, and standard input is not a terminal to ask at.
        herald_with_input(&data, &["user", "add", "carol"], ""),
        herald(
            &data,
            &[
                "user",
                "add",
                "carol",
                "--password",
                "x",
                "--password-file",
                file,
            ],
        ),
    ];
    let why = [
        "is empty",
        "not a usable password hash",
        "--password-file",
        "cannot be used with",
    ];
    for (out, why) in refused.iter().zip(why) {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(why), "{why}: {err}");
    }
    assert!(!ok(&data, &["user", "list"]).contains("carol"));
}

#[test]
fn admin_commands_in_the_wrong_directory_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nowhere");
    for args in [
        &["user", "list"][..],
        &["user", "del", "alice"],
        &["quota", "set", "alice", "--messages", "5"],
        &["events", "tail"],
        &["expire"],
    ] {
        let out = herald(&data, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("no Herald data directory"),
            "{args:?}: {err}"
        );
        assert!(!data.exists(), "{args:?} created {}", data.display());
    }
}

#[test]
fn user_add_list_del() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(ok(&data, &["user", "add", "alice", "--password", "pw"]).contains("alice"));
    ok(
        &data,
        &["user", "add", "root", "--password", "pw", "--admin"],
    );
    let dup = herald(&data, &["user", "add", "alice", "--password", "x"]);
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
    let list = ok(&data, &["user", "list"]);
    let rows: Vec<&str> = list.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{list}");
    assert!(rows[0].starts_with("alice\tno\t"));
    assert!(rows[1].starts_with("root\tyes\t"));
    ok(&data, &["user", "del", "alice"]);
    assert!(!ok(&data, &["user", "list"]).contains("alice"));
    assert!(!herald(&data, &["user", "del", "alice"]).status.success());
    // Each account announced itself and its INBOX; deleting alice deleted her INBOX, then
    // her account — all from admincli.
    let e = events(&ok(&data, &["events", "tail"]));
    let kinds: Vec<&str> = e.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "vnd.herald.AccountCreate",
            "MailboxCreate",
            "vnd.herald.AccountCreate",
            "MailboxCreate",
            "MailboxDelete",
            "vnd.herald.AccountDelete"
        ]
    );
    assert!(e.iter().all(|e| e.service.as_deref() == Some("admincli")));
    assert_eq!(e[4].user.as_deref(), Some("alice"));
}

#[test]
fn quota_set_emits_quota_change_and_tail_prints_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("herald.toml");
    std::fs::write(&config, "[server]\nhostname = \"mail.example.org\"\n").unwrap();
    ok(&data, &["user", "add", "alice", "--password", "pw"]);
    let out = ok(
        &data,
        &[
            "--config",
            config.to_str().unwrap(),
            "quota",
            "set",
            "alice",
            "--storage-kb",
            "2048",
            "--messages",
            "100",
        ],
    );
    assert!(out.contains("2048"), "{out}");
    ok(&data, &["quota", "set", "alice", "--messages", "100"]);
    ok(&data, &["quota", "set", "alice", "--messages", "7"]);
    assert!(!herald(&data, &["quota", "set", "alice"]).status.success());
    assert!(
        !herald(&data, &["quota", "set", "nobody", "--messages", "1"])
            .status
            .success()
    );
    // After alice's AccountCreate and INBOX.
    let e = events(&ok(&data, &["events", "tail"]))[2..].to_vec();
    assert_eq!(e.len(), 2, "an unchanged quota emits nothing");
    assert_eq!(e[0].event, EventType::QuotaChange);
    assert_eq!(e[0].user.as_deref(), Some("alice"));
    assert_eq!(e[0].service.as_deref(), Some("admincli"));
    assert_eq!(
        (e[0].disk_quota, e[0].max_messages),
        (Some(2048), Some(100))
    );
    assert_eq!(e[0].server_fqdn.as_deref(), Some("mail.example.org"));
    assert_eq!(e[0].herald_id(), Some(3));
    assert_eq!(e[1].max_messages, Some(7));
    let from4 = events(&ok(&data, &["events", "tail", "--from", "4"]));
    assert_eq!(from4.len(), 1);
    assert_eq!(from4[0].herald_id(), Some(4));
    let user_list = ok(&data, &["user", "list"]);
    assert!(
        user_list.contains("alice\tno\t2048\t7\t0\t0"),
        "{user_list}"
    );
}

#[test]
fn tail_follow_sees_another_process_commit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(&data, &["user", "add", "alice", "--password", "pw"]);
    ok(&data, &["quota", "set", "alice", "--messages", "1"]);
    let mut tail = Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("--data")
        .arg(&data)
        .args(["events", "tail", "--follow"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = tail.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    // AccountCreate, the INBOX's MailboxCreate and the first QuotaChange are there already.
    for id in 1..=3 {
        let line = rx.recv_timeout(Duration::from_secs(20)).unwrap();
        assert_eq!(events(&line)[0].herald_id(), Some(id));
    }
    ok(&data, &["quota", "set", "alice", "--messages", "2"]);
    let second = rx.recv_timeout(Duration::from_secs(20));
    tail.kill().unwrap();
    tail.wait().unwrap();
    let e = events(&second.unwrap());
    assert_eq!((e[0].herald_id(), e[0].max_messages), (Some(4), Some(2)));
}

#[test]
fn expire_applies_policies_and_emits_message_expire() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(&data, &["user", "add", "alice", "--password", "pw"]);
    // Put old and new messages in with the library, as a delivery would.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = herald_store::Store::open(herald_store::StoreConfig::new(&data))
            .await
            .unwrap();
        let ctx = herald_store::SessionContext::user("imap", "alice");
        store.create_mailbox(&ctx, "Trash", None).await.unwrap();
        let day = 86_400_000;
        for age in [40, 2, 35] {
            let when = herald_store::now_ms() - age * day;
            store
                .append(&ctx, "Trash", b"old".to_vec(), &[], Some(when))
                .await
                .unwrap();
        }
        store.close().await;
    });
    let before = events(&ok(&data, &["events", "tail"])).len() as u64;
    assert!(
        !herald(&data, &["expire", "policy", "alice", "Nope", "--days", "3"])
            .status
            .success()
    );
    ok(
        &data,
        &["expire", "policy", "alice", "Trash", "--days", "30"],
    );
    let out = ok(&data, &["expire"]);
    assert!(out.contains("alice/Trash: expired 2 messages"), "{out}");
    let e = events(&ok(
        &data,
        &["events", "tail", "--from", &(before + 1).to_string()],
    ));
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].event, EventType::MessageExpire);
    assert_eq!(e[0].uidset.as_ref().unwrap().to_string(), "1,3");
    assert_eq!(e[0].service.as_deref(), Some("admincli"));
    assert!(ok(&data, &["expire"]).contains("expired 0 messages"));
    ok(&data, &["expire", "policy", "alice", "Trash", "--off"]);
}

#[test]
fn bench_store_reports_rates_for_each_writer_count() {
    let dir = tempfile::tempdir().unwrap();
    let bench = dir.path().join("bench");
    let stdout = ok(
        dir.path(),
        &[
            "bench",
            "store",
            "--count",
            "300",
            "--writers",
            "1,4",
            "--dir",
            bench.to_str().unwrap(),
        ],
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with("writers=1: 300 deliveries in "),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("writers=4: 300 deliveries in "),
        "{stdout}"
    );
    assert!(lines.iter().all(|l| l.ends_with(" deliveries/s")));
    assert!(!bench.exists(), "removed without --keep");
}

#[test]
fn bench_imap_mix_paces_its_sessions_at_the_rate_asked() {
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args([
            "bench",
            "imap",
            "--mix",
            "--users",
            "1",
            "--clients",
            "2",
            "--secs",
            "3",
            "--prefill",
            "5",
            "--rate",
            "60",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for kind in [
        "LIST",
        "SELECT",
        "FETCH BODY[]",
        "STORE \\Deleted",
        "EXPUNGE",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(kind)),
            "{kind}: {stdout}"
        );
    }
    assert!(stdout.contains("paced at 60 commands/s: "), "{stdout}");
    let last = stdout.lines().last().unwrap_or_default();
    // `imap mix: N commands in S s = R commands/s, server CPU X ms per command`
    let rate: f64 = last
        .split(" = ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no rate in {last:?}"));
    // Two sessions on a fixed schedule: about 60 commands/s (a session's first round is
    // two commands short), never the hundreds an unpaced loop sends.
    assert!((35.0..=75.0).contains(&rate), "{last}");
    assert!(last.contains("server CPU "), "{last}");
}

#[test]
fn bench_lmtp_reports_rates_and_one_event_per_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let bench = dir.path().join("bench");
    // It checks that the deliveries committed exactly one event each (the accounts' own
    // events do not count) and fails otherwise.
    let stdout = ok(
        dir.path(),
        &[
            "bench",
            "lmtp",
            "--count",
            "60",
            "--connections",
            "1,2",
            "--dir",
            bench.to_str().unwrap(),
        ],
    );
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("lmtp, ")).collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].starts_with("lmtp, 1 connection(s): 60 deliveries in "));
    assert!(lines[1].starts_with("lmtp, 2 connection(s): 60 deliveries in "));
    assert!(
        lines.iter().all(|l| l.ends_with(" deliveries/s")),
        "{stdout}"
    );
}
