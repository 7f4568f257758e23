//! Herald's account and authentication events, and the parameters added for consumers that
//! follow mailboxes from events alone, end to end: the real `herald serve`, accounts made with
//! the real `herald user` commands, logins by Python's imaplib, deliveries by smtplib, and the
//! events as the event log (`events.jsonl`) and a subscription's file sink hold them.
#![allow(clippy::unwrap_used)]

mod common;

use common::Server;
use herald_events::{Event, EventType, vnd};

fn of(events: &[Event], t: EventType) -> Vec<&Event> {
    events.iter().filter(|e| e.event == t).collect()
}

#[test]
fn account_lifecycle_and_failed_logins_reach_the_stream() {
    let server = Server::start("");

    // `herald user add`: the account, then its INBOX with its UIDVALIDITY.
    server.add_user("alice", "alice-pw");
    let new = server.wait_for(0, |e| e.iter().any(|e| e.event == EventType::MailboxCreate));
    let kinds: Vec<&str> = new.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(kinds, ["vnd.herald.AccountCreate", "MailboxCreate"]);
    assert_eq!(new[0].user.as_deref(), Some("alice"));
    assert_eq!(new[0].service.as_deref(), Some("admincli"));
    let inbox = new[1].mailbox_id.as_ref().unwrap();
    assert_eq!(inbox.mailbox.as_deref(), Some("INBOX"));
    assert!(inbox.uidvalidity.is_some());

    // A wrong password over IMAP: exactly one LoginFailed, with the client, never the password.
    let imap = server.port("imap").to_string();
    let secret = "Tr0ub4dor-and-3";
    let mark = server.settled();
    assert_eq!(
        server
            .python("imap_login.py", &[&imap, "alice", secret, "--wrong"])
            .trim(),
        "refused"
    );
    server.wait_for(mark, |e| !of(e, EventType::LoginFailed).is_empty());
    let end = server.settled();
    let after = server.events()[mark..end].to_vec();
    let mark = end;
    let failed = of(&after, EventType::LoginFailed);
    assert_eq!(failed.len(), 1, "{after:#?}");
    let e = failed[0];
    assert_eq!(e.user.as_deref(), Some("alice"));
    assert_eq!(e.service.as_deref(), Some("imap"));
    assert_eq!(e.client_ip, Some("127.0.0.1".parse().unwrap()));
    assert!(e.client_port.is_some());
    assert_eq!(e.server_port, Some(server.port("imap")));
    assert_eq!(e.extension(vnd::MECHANISM).unwrap(), "LOGIN");
    assert_eq!(e.extension(vnd::REASON).unwrap(), "bad-credentials");
    e.validate().unwrap();
    assert!(of(&after, EventType::Login).is_empty());
    let log = std::fs::read_to_string(server.data.join("events.jsonl")).unwrap();
    assert!(!log.contains(secret), "the password reached the event log");

    // A name with no account: the client hears the same, the event says which.
    assert_eq!(
        server
            .python("imap_login.py", &[&imap, "mallory", secret, "--wrong"])
            .trim(),
        "refused"
    );
    let more = server.wait_for(mark, |e| !of(e, EventType::LoginFailed).is_empty());
    let e = of(&more, EventType::LoginFailed)[0];
    assert_eq!(e.user.as_deref(), Some("mallory"));
    assert_eq!(e.extension(vnd::REASON).unwrap(), "no-such-user");

    // POP3 USER/PASS: the same event, from `pop`.
    let mark = server.settled();
    let pop3 = server.port("pop3").to_string();
    assert_eq!(
        server
            .python("pop3_wrong.py", &[&pop3, "alice", secret])
            .trim(),
        "refused"
    );
    let more = server.wait_for(mark, |e| !of(e, EventType::LoginFailed).is_empty());
    let e = of(&more, EventType::LoginFailed)[0];
    assert_eq!(e.service.as_deref(), Some("pop"));
    assert_eq!(e.extension(vnd::MECHANISM).unwrap(), "USER");
    assert_eq!(e.extension(vnd::REASON).unwrap(), "bad-credentials");
    assert_eq!(e.client_ip, Some("127.0.0.1".parse().unwrap()));

    // `herald user passwd` and `herald user del`.
    let mark = server.settled();
    server.admin(&["user", "passwd", "alice", "--password", "new-alice-pw"]);
    let changed = server.wait_for(mark, |e| !of(e, EventType::PasswordChange).is_empty());
    let e = of(&changed, EventType::PasswordChange)[0];
    assert_eq!(e.user.as_deref(), Some("alice"));
    let log = std::fs::read_to_string(server.data.join("events.jsonl")).unwrap();
    assert!(!log.contains("new-alice-pw") && !log.contains("argon2"));
    let mark = server.settled();
    server.admin(&["user", "del", "alice"]);
    let gone = server.wait_for(mark, |e| !of(e, EventType::AccountDelete).is_empty());
    let kinds: Vec<&str> = gone.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(kinds, ["MailboxDelete", "vnd.herald.AccountDelete"]);

    // Everything the server wrote passes `herald events check`.
    let check = common::herald()
        .args(["events", "check"])
        .arg(server.data.join("events.jsonl"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let (status, _dir) = server.stop();
    assert!(status.success());
}

#[test]
fn a_subscription_naming_body_structure_gets_it_with_mailbox_id() {
    let dir = tempfile::tempdir().unwrap();
    let sink = dir.path().join("structured.jsonl");
    let server = Server::start_in(
        dir,
        &format!(
            "[[subscription]]\nname = \"structured\"\nevents = [\"MessageNew\"]\n\
             params = [\"uri\", \"mailboxID\", \"bodyStructure\"]\n\
             sink = {{ type = \"file\", path = {:?} }}\n",
            sink.display().to_string()
        ),
    );
    server.add_user("dave", "pw");
    let lmtp = server.port("lmtp").to_string();
    server.python("lmtp_bulk.py", &[&lmtp, "dave", "1"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let line = loop {
        let text = std::fs::read_to_string(&sink).unwrap_or_default();
        if let Some(l) = text.lines().next() {
            break l.to_owned();
        }
        assert!(std::time::Instant::now() < deadline, "nothing delivered");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let e = Event::from_json(&line).unwrap();
    assert_eq!(e.event, EventType::MessageNew);
    let structure = e
        .body_structure
        .as_deref()
        .unwrap_or_else(|| panic!("{line}"));
    assert!(structure.starts_with("(\"TEXT\" \"PLAIN\""), "{structure}");
    let mailbox = e.mailbox_id.as_ref().unwrap();
    assert_eq!(mailbox.mailbox.as_deref(), Some("INBOX"));
    assert_eq!(mailbox.uidvalidity, e.uri.as_ref().unwrap().uidvalidity);
    // The event log, which asks for no parameter by name, has no BODYSTRUCTURE.
    let logged = server.wait_for(0, |e| !of(e, EventType::MessageNew).is_empty());
    assert!(
        of(&logged, EventType::MessageNew)[0]
            .body_structure
            .is_none()
    );
}

/// Sends one tagged IMAP command on a raw connection and reads up to its tagged answer (or the
/// end of the connection); returns everything read.
fn imap_command(stream: &mut std::net::TcpStream, tag: &str, command: &str) -> String {
    use std::io::{BufRead as _, BufReader, Write as _};
    stream
        .write_all(format!("{tag} {command}\r\n").as_bytes())
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut all = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            return all;
        }
        all.push_str(&line);
        if line.starts_with(&format!("{tag} ")) {
            return all;
        }
    }
}

/// Sends `GET /events/stream` with an `Authorization` header; returns the reader positioned
/// after the status line, and that line.
fn request_stream(
    port: u16,
    authorization: &str,
) -> (std::io::BufReader<std::net::TcpStream>, String) {
    use std::io::{BufRead as _, Write as _};
    let mut http = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    http.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let request = format!(
        "GET /events/stream HTTP/1.1\r\nHost: localhost\r\nAuthorization: {authorization}\r\n\
         Connection: close\r\n\r\n"
    );
    http.write_all(request.as_bytes()).unwrap();
    let mut reader = std::io::BufReader::new(http);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    (reader, status)
}

/// Opens the live event stream; returns the status line and, for a refusal, the body.
fn http_get(port: u16, authorization: &str) -> String {
    use std::io::Read as _;
    let (mut reader, mut answer) = request_stream(port, authorization);
    if !answer.starts_with("HTTP/1.1 200") {
        // A refusal is short and closes the connection.
        reader.read_to_string(&mut answer).unwrap();
    }
    answer
}

/// Opens the live event stream and reads its response headers; the stream stays open.
fn open_stream(port: u16, authorization: &str) -> std::io::BufReader<std::net::TcpStream> {
    use std::io::BufRead as _;
    let (mut reader, mut line) = request_stream(port, authorization);
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    while line != "\r\n" {
        line.clear();
        reader.read_line(&mut line).unwrap();
    }
    reader
}

#[test]
fn a_disabled_account_is_refused_everywhere_and_its_open_session_ends() {
    let server = Server::start(
        "[http]\nlisten = [\"127.0.0.1:0\"]\n\
         tokens = [{ user = \"carol\", token = \"carol-token-0123456789\" }]\n",
    );
    server.add_user("carol", "carol-pw");
    let imap = server.port("imap");
    let pop3 = server.port("pop3");

    // A session opened before the account is disabled.
    let mut open = std::net::TcpStream::connect(("127.0.0.1", imap)).unwrap();
    open.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut greeting = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(&open), &mut greeting).unwrap();
    assert!(
        imap_command(&mut open, "a", "LOGIN carol carol-pw").contains("a OK"),
        "login before disabling"
    );
    assert!(imap_command(&mut open, "b", "SELECT INBOX").contains("b OK"));
    // And a POP3 session and an event stream, both open before the account is disabled.
    let mut pop = std::net::TcpStream::connect(("127.0.0.1", pop3)).unwrap();
    pop.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut pop_lines = std::io::BufReader::new(pop.try_clone().unwrap());
    let mut pop_say = |line: &str| -> String {
        use std::io::{BufRead as _, Write as _};
        if !line.is_empty() {
            pop.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        }
        let mut answer = String::new();
        pop_lines.read_line(&mut answer).unwrap();
        answer
    };
    assert!(pop_say("").starts_with("+OK"), "POP3 greeting");
    assert!(pop_say("USER carol").starts_with("+OK"));
    assert!(pop_say("PASS carol-pw").starts_with("+OK"), "POP3 login");
    let stream = open_stream(server.port("http"), "Bearer carol-token-0123456789");

    let mark = server.settled();
    let out = server.admin(&["user", "disable", "carol", "--reason", "abuse report 42"]);
    assert_eq!(out.trim(), "disabled carol");
    let new = server.wait_for(mark, |e| !of(e, EventType::AccountDisable).is_empty());
    let e = of(&new, EventType::AccountDisable)[0];
    assert_eq!(e.user.as_deref(), Some("carol"));
    assert_eq!(e.service.as_deref(), Some("admincli"));
    assert_eq!(e.extension(vnd::COMMENT).unwrap(), "abuse report 42");
    e.validate().unwrap();
    let list = server.admin(&["user", "list"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with("carol\t") && l.ends_with("disabled (abuse report 42)")),
        "{list}"
    );
    // Disabling twice says so and emits nothing.
    assert_eq!(
        server.admin(&["user", "disable", "carol"]).trim(),
        "carol was already disabled"
    );

    // New logins with the right password: refused with a reason the user can act on, recorded.
    let mark = server.settled();
    let refused = server.python(
        "login_disabled.py",
        &[&imap.to_string(), &pop3.to_string(), "carol", "carol-pw"],
    );
    assert!(refused.contains("imap: [CONTACTADMIN]"), "{refused}");
    assert!(refused.contains("pop3: -ERR [SYS/PERM]"), "{refused}");
    let new = server.wait_for(mark, |e| of(e, EventType::LoginFailed).len() >= 2);
    for e in of(&new, EventType::LoginFailed) {
        assert_eq!(e.extension(vnd::REASON).unwrap(), "account-disabled");
    }
    assert!(of(&new, EventType::Login).is_empty(), "{new:#?}");
    assert!(
        of(&new, EventType::AccountDisable).is_empty(),
        "disabled twice: {new:#?}"
    );
    // HTTP with the right password, or the account's API token: 403, not 401 (asking again
    // would not help).
    let http = server.port("http");
    for authorization in [
        "Basic Y2Fyb2w6Y2Fyb2wtcHc=",
        "Bearer carol-token-0123456789",
    ] {
        let answer = http_get(http, authorization);
        assert!(
            answer.starts_with("HTTP/1.1 403"),
            "{authorization}: {answer}"
        );
        assert!(answer.contains("disabled"), "{answer}");
    }

    // Mail still arrives.
    let lmtp = server.port("lmtp").to_string();
    server.python(
        "lmtp_deliver.py",
        &[
            &lmtp,
            "bob@example.net",
            "carol@example.org",
            "--",
            "250",
            "--",
            "250",
        ],
    );

    // The open session ends at its first command once the recheck interval has passed.
    std::thread::sleep(std::time::Duration::from_secs(6));
    let answer = imap_command(&mut open, "c", "NOOP");
    assert!(answer.starts_with("* BYE"), "{answer}");
    assert!(!answer.contains("c OK"), "{answer}");
    // So do the POP3 session and the event stream (which has no command to wait for).
    let answer = pop_say("STAT");
    assert!(answer.starts_with("-ERR [SYS/PERM]"), "{answer}");
    assert!(pop_say("").is_empty(), "the POP3 connection is closed");
    let rest = {
        use std::io::Read as _;
        let mut rest = Vec::new();
        let mut stream = stream;
        stream
            .read_to_end(&mut rest)
            .expect("the event stream ends instead of staying open");
        rest
    };
    assert!(
        String::from_utf8_lossy(&rest).ends_with("0\r\n\r\n"),
        "the stream's last chunk: {}",
        String::from_utf8_lossy(&rest)
    );

    // Enabled again: IMAP works as before and the delivered message is there.
    let mark = server.settled();
    assert_eq!(
        server.admin(&["user", "enable", "carol"]).trim(),
        "enabled carol"
    );
    server.wait_for(mark, |e| !of(e, EventType::AccountEnable).is_empty());
    assert_eq!(
        server
            .python("imap_login.py", &[&imap.to_string(), "carol", "carol-pw"])
            .trim(),
        "ok"
    );
    let answer = http_get(http, "Bearer carol-token-0123456789");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
