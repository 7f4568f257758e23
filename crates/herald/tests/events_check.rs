//! `herald events check` driven as a user runs it: the real binary, real files, stdin, exit codes.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn herald(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        pipe.write_all(input).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn events_data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../herald-events/tests")
        .join(name)
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn valid_events_exit_zero_with_a_summary() {
    let dir = events_data("golden");
    let mut all = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        all.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let out = herald(&["events", "check", "-"], Some(&all));
    // The 18 registered types, Herald's eight `vnd.herald.` ones, and the server form of
    // MetadataChange.
    assert_eq!(stdout(&out), "27 events, 0 invalid\n");
    assert_eq!(out.status.code(), Some(0));
    // No argument also means standard input.
    let out = herald(&["events", "check"], Some(&all));
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn each_bad_line_is_reported_with_its_number_type_and_reason() {
    let input = concat!(
        r#"{"event":"Login","uri":"imap://h","user":"a","serverDomain":"h","serverPort":143}"#,
        "\n",
        "this is not json\n",
        r#"{"event":"FlagsSet","uri":"imap://h/INBOX;UIDVALIDITY=3","uidset":"1:*","flagNames":"\\Recent"}"#,
        "\n",
        "\n",
        r#"{"event":"MessageNew","uri":"imap://h/INBOX"}"#,
        "\n",
        r#"{"user":"nobody"}"#,
        "\n",
        r#"{"event":"MailboxModseq","uri":"imap://h/INBOX","aclRights":"lr"}"#,
        "\n",
    );
    let out = herald(&["events", "check"], Some(input.as_bytes()));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert_eq!(lines.len(), 6, "{text}");
    assert!(lines[0].starts_with("line 2: ?: not JSON"), "{}", lines[0]);
    assert_eq!(
        lines[1],
        "line 3: FlagsSet: uidset: `*` is not allowed in an event's UID set; flagNames: \\Recent is not permitted in flagNames"
    );
    assert_eq!(
        lines[2],
        "line 5: MessageNew: uri: must include UIDVALIDITY; uri: must include the message's UID"
    );
    assert!(
        lines[3].starts_with("line 6: ?: missing `event`"),
        "{}",
        lines[3]
    );
    assert_eq!(
        lines[4],
        "line 7: MailboxModseq: unregistered event type `MailboxModseq` (vendor types start with `vnd.`); unregistered parameter `aclRights` (vendor parameters start with `vnd.`)"
    );
    assert_eq!(lines[5], "6 events, 5 invalid");
}

#[test]
fn cyrus_and_dovecot_streams() {
    let cyrus = events_data("data/cyrus-3.6.1-events.jsonl");
    let out = herald(&["events", "check", cyrus.to_str().unwrap()], None);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text.contains("MailboxModseq: unregistered event type"),
        "{text}"
    );
    assert!(text.contains("mailboxID: not an IMAP URL"), "{text}");
    assert!(text.ends_with("89 events, 69 invalid\n"), "{text}");

    let dovecot = events_data("data/dovecot-2.3.19-push-lua-events.jsonl");
    let out = herald(
        &[
            "events",
            "check",
            "--format",
            "dovecot",
            dovecot.to_str().unwrap(),
        ],
        None,
    );
    let text = stdout(&out);
    // Dovecot reports \Recent-only flag changes and quota warnings without the quota: both are
    // events RFC 5423 would not have, and check says so.
    assert!(text.contains("FlagsClear: flagNames: missing"), "{text}");
    assert!(
        text.contains("QuotaExceed: diskQuota/maxMessages"),
        "{text}"
    );
    assert!(text.starts_with("line "), "{text}");
    let auto = herald(&["events", "check", dovecot.to_str().unwrap()], None);
    assert_eq!(
        stdout(&auto),
        text,
        "auto-detection reads Dovecot lines the same way"
    );
    let strict = herald(
        &[
            "events",
            "check",
            "--format",
            "rfc5423",
            dovecot.to_str().unwrap(),
        ],
        None,
    );
    assert!(stdout(&strict).ends_with("48 events, 48 invalid\n"));
}

#[test]
fn unreadable_input_exits_two() {
    let out = herald(&["events", "check", "/nonexistent/events.jsonl"], None);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("cannot read /nonexistent/events.jsonl"),
        "{err}"
    );
    let dir = herald(&["events", "check", env!("CARGO_MANIFEST_DIR")], None);
    assert_eq!(
        dir.status.code(),
        Some(2),
        "a directory is not readable as events"
    );
}

#[test]
fn quiet_prints_only_the_summary() {
    let out = herald(&["events", "check", "-q"], Some(b"{}\n{}\n"));
    assert_eq!(stdout(&out), "2 events, 2 invalid\n");
    assert_eq!(out.status.code(), Some(1));
}

/// Lines of `path` once it holds `n` of them.
fn wait_lines(path: &std::path::Path, n: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} has {} lines, want {n}",
            path.display(),
            lines.len()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn what_herald_writes_in_each_of_its_formats_checks_clean() {
    let out = tempfile::tempdir().unwrap();
    let file = |format: &str| out.path().join(format!("{format}.jsonl"));
    let mut subscriptions = String::new();
    for format in ["rfc5423", "cloudevents", "cyrus"] {
        subscriptions.push_str(&format!(
            "[[subscription]]\nname = \"{format}\"\nformat = \"{format}\"\n\
             sink = {{ type = \"file\", path = \"{}\" }}\n",
            file(format).display()
        ));
    }
    let server = common::Server::start(&subscriptions);
    server.add_user("alice", "alice-pw");
    server.add_user("bob", "bob-pw");
    server.admin(&["user", "add", "root", "--password", "root-pw", "--admin"]);
    let lmtp = server.port("lmtp").to_string();
    server.python(
        "lmtp_deliver.py",
        &[
            &lmtp,
            "s@example.net",
            "bob@example.org",
            "--",
            "250",
            "--",
            "250",
        ],
    );
    // Every IMAP command: logins, appends, copies, moves, flags, renames, quotas, expunges.
    let imap = server.port("imap").to_string();
    server.python("imap_session.py", &[&imap]);
    let n = server.settled();
    assert!(n > 20, "{n} events");
    for format in ["rfc5423", "cloudevents", "cyrus"] {
        let path = file(format);
        wait_lines(&path, n);
        let checked = herald(&["events", "check", path.to_str().unwrap()], None);
        assert_eq!(
            stdout(&checked),
            format!("{n} events, 0 invalid\n"),
            "herald events check on Herald's own {format} output"
        );
        assert_eq!(checked.status.code(), Some(0), "{format}");
    }

    // CloudEvents lines are checked by their own rules, not waved through.
    let good = wait_lines(&file("cloudevents"), n)[0].clone();
    let mut envelope: serde_json::Value = serde_json::from_str(&good).unwrap();
    envelope["specversion"] = "0.3".into();
    let other = if envelope["data"]["event"] == "Login" {
        "MessageNew"
    } else {
        "Login"
    };
    envelope["type"] = format!("org.ietf.rfc5423.{other}").into();
    envelope["data"]["uri"] = "not a url".into();
    let bad = format!("{good}\n{envelope}\n");
    let checked = herald(&["events", "check", "-"], Some(bad.as_bytes()));
    let text = stdout(&checked);
    assert_eq!(checked.status.code(), Some(1), "{text}");
    assert!(text.starts_with("line 2: "), "{text}");
    let mismatch = format!("type: org.ietf.rfc5423.{other} but data is a");
    for reason in ["specversion", &mismatch, "uri"] {
        assert!(text.contains(reason), "{reason}: {text}");
    }
    assert!(text.ends_with("2 events, 1 invalid\n"), "{text}");
}

#[test]
fn herald_account_events_are_checked_too() {
    let good = std::fs::read(events_data("golden/vnd.herald.LoginFailed.json")).unwrap();
    let o = herald(&["events", "check", "-"], Some(&good));
    assert!(o.status.success(), "{}", stdout(&o));
    let bad = concat!(
        r#"{"event":"vnd.herald.LoginFailed","service":"imap","uri":"imap://h","clientIP":"192.0.2.1","vnd.herald.mechanism":"LOGIN","vnd.herald.reason":"bad-credentials"}"#,
        "\n",
        r#"{"event":"vnd.herald.LoginFailed","service":"imap","uri":"imap://h","user":"alice","clientIP":"192.0.2.1","vnd.herald.mechanism":"LOGIN","vnd.herald.reason":"bad-credentials","vnd.herald.password":"hunter2"}"#,
        "\n",
        r#"{"event":"vnd.herald.LoginFailed","service":"imap","uri":"imap://h","user":"alice","clientIP":"192.0.2.1","vnd.herald.mechanism":"LOGIN","vnd.herald.reason":"guessing"}"#,
        "\n",
        r#"{"event":"vnd.herald.AccountCreate","uri":"imap://alice@h"}"#,
        "\n",
    );
    let o = herald(&["events", "check", "-"], Some(bad.as_bytes()));
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("line 1: vnd.herald.LoginFailed: user: missing"),
        "{out}"
    );
    assert!(
        out.contains(
            "line 2: vnd.herald.LoginFailed: vnd.herald.password: an event never carries a password"
        ),
        "{out}"
    );
    assert!(
        out.contains("line 3: vnd.herald.LoginFailed: vnd.herald.reason:"),
        "{out}"
    );
    assert!(
        out.contains("line 4: vnd.herald.AccountCreate: user: missing"),
        "{out}"
    );
    assert!(out.contains("4 events, 4 invalid"), "{out}");
}

#[test]
fn acl_change_events_are_checked_too() {
    let good = std::fs::read(events_data("golden/vnd.herald.AclChange.json")).unwrap();
    let o = herald(&["events", "check", "-"], Some(&good));
    assert!(o.status.success(), "{}", stdout(&o));
    let bad = concat!(
        r#"{"event":"vnd.herald.AclChange","uri":"imap://alice@h","user":"alice","vnd.herald.aclIdentifier":"bob","vnd.herald.aclRights":"lr"}"#,
        "\n",
        r#"{"event":"vnd.herald.AclChange","uri":"imap://alice@h/Team","user":"alice","vnd.herald.aclRights":"lr"}"#,
        "\n",
        r#"{"event":"vnd.herald.AclChange","uri":"imap://alice@h/Team","user":"alice","vnd.herald.aclIdentifier":"bob","vnd.herald.aclRights":"lrZ"}"#,
        "\n",
    );
    let o = herald(&["events", "check", "-"], Some(bad.as_bytes()));
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("line 1: vnd.herald.AclChange: uri: must name a mailbox"),
        "{out}"
    );
    assert!(
        out.contains("line 2: vnd.herald.AclChange: vnd.herald.aclIdentifier: missing"),
        "{out}"
    );
    assert!(
        out.contains("line 3: vnd.herald.AclChange: vnd.herald.aclRights:"),
        "{out}"
    );
    assert!(out.contains("3 events, 3 invalid"), "{out}");
}
