//! OfflineIMAP (offlineimap3) against the real `herald serve`: a 370-message account in five
//! folders (one nested, one `\Sent`) is synchronised down to a Maildir with its flags; a second
//! run changes nothing on either side (no new files, no renamed ones, no message or flag events
//! on the server); a flag, an expunge and an APPEND made on the server come down; a message
//! marked seen and a message added in the Maildir go up.
//!
//! Runs only when `offlineimap` is installed (`.ci/install` installs Debian's offlineimap3);
//! otherwise it says why and passes, except under `CI=true`, where a missing offlineimap fails
//! the test. OfflineIMAP talks only to Herald on 127.0.0.1, one-shot (`-o`), with a time limit.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Server, run_bounded};
use herald_events::{Event, EventType, vnd};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The account: folder, special-use, messages (filled with `imap_fill.py … varied`).
const FOLDERS: [(&str, &str, u32); 5] = [
    ("INBOX", "", 150),
    ("Lists", "", 100),
    ("Archive", "", 20),
    ("Archive/2023", "", 60),
    ("Sent", "\\Sent", 40),
];

fn offlineimap_available() -> bool {
    let found = Command::new("offlineimap")
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        common::skip("offlineimap is not installed (Debian package offlineimap3; see .ci/install)");
    }
    found
}

/// The Maildir flags `imap_fill.py … varied` gives message `i` (sorted, as Maildir wants them).
fn filled_flags(i: u32) -> String {
    let mut f: Vec<char> = [('S', 3), ('F', 5), ('R', 7), ('D', 11)]
        .iter()
        .filter(|(_, d)| i.is_multiple_of(*d))
        .map(|(c, _)| *c)
        .collect();
    f.sort_unstable();
    f.into_iter().collect()
}

/// The local name of a server folder: OfflineIMAP's Maildir separator is `.`.
fn local_name(folder: &str) -> String {
    folder.replace('/', ".")
}

/// One Maildir message as OfflineIMAP left it.
#[derive(Debug, Clone, PartialEq)]
struct Local {
    path: PathBuf,
    flags: String,
    body: String,
}

/// Every message of a Maildir folder by Message-ID.
fn maildir(dir: &Path) -> BTreeMap<String, Local> {
    let mut out = BTreeMap::new();
    for sub in ["new", "cur"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let flags = name.split_once(":2,").map_or("", |(_, f)| f).to_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let id = text
                .lines()
                .find_map(|l| l.strip_prefix("Message-ID: "))
                .unwrap_or_else(|| panic!("no Message-ID in {}", path.display()))
                .trim()
                .to_owned();
            let body = text.split_once("\n\n").map_or("", |(_, b)| b).to_owned();
            let old = out.insert(id.clone(), Local { path, flags, body });
            assert!(old.is_none(), "{id} twice in {}", dir.display());
        }
    }
    out
}

/// Every file name under the Maildir root (names carry the flags, so this shows renames too).
fn all_files(root: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for (folder, ..) in FOLDERS {
        for sub in ["new", "cur", "tmp"] {
            for entry in std::fs::read_dir(root.join(local_name(folder)).join(sub)).unwrap() {
                out.insert(entry.unwrap().path());
            }
        }
    }
    out
}

/// The server's view of a folder: Message-ID → (UID, sorted flags).
fn server_view(server: &Server, folder: &str) -> BTreeMap<String, (u32, String)> {
    let port = server.port("imap").to_string();
    let out = server.python("imap_dump.py", &[&port, "frank", "frank-pw", folder]);
    out.lines()
        .map(|l| {
            let mut it = l.splitn(3, ' ');
            let uid = it.next().unwrap().parse().unwrap();
            let flags = it.next().unwrap();
            let id = it.next().unwrap().to_owned();
            let flags = if flags == "-" { "" } else { flags };
            (id, (uid, flags.to_owned()))
        })
        .collect()
}

struct Sync {
    config: PathBuf,
    mail: PathBuf,
    _dir: tempfile::TempDir,
}

impl Sync {
    fn new(port: u16) -> Sync {
        let dir = tempfile::tempdir().unwrap();
        let mail = dir.path().join("mail");
        let config = dir.path().join("offlineimaprc");
        std::fs::create_dir_all(&mail).unwrap();
        std::fs::write(
            &config,
            format!(
                "[general]\naccounts = herald\nmetadata = {meta}\nfsync = false\n\
                 socktimeout = 30\n\n\
                 [Account herald]\nlocalrepository = local\nremoterepository = remote\n\n\
                 [Repository local]\ntype = Maildir\nlocalfolders = {mail}\n\n\
                 [Repository remote]\ntype = IMAP\nremotehost = 127.0.0.1\n\
                 remoteport = {port}\nremoteuser = frank\nremotepass = frank-pw\n\
                 ssl = no\nstarttls = no\nmaxconnections = 1\nholdconnectionopen = no\n",
                meta = dir.path().join("meta").display(),
                mail = mail.display(),
            ),
        )
        .unwrap();
        Sync {
            config,
            mail,
            _dir: dir,
        }
    }

    /// One single-threaded, one-shot run; fails the test if OfflineIMAP fails or hangs, or
    /// reports an error while exiting 0.
    fn run(&self) -> String {
        let debug = std::env::var("OFFLINEIMAP_DEBUG").as_deref() == Ok("1");
        let mut cmd = Command::new("offlineimap");
        cmd.arg("-c")
            .arg(&self.config)
            .args(["-o", "-1", "-u", "basic"]);
        if debug {
            cmd.args(["-d", "imap"]);
        }
        let ran = run_bounded(&mut cmd, Duration::from_secs(180));
        assert!(ran.success(), "offlineimap failed: {ran}");
        let text = format!("{}{}", ran.stdout, ran.stderr);
        assert!(
            !text.contains("ERROR") && !text.contains("Traceback"),
            "offlineimap reported an error: {ran}"
        );
        if debug {
            eprintln!("{text}");
        }
        text
    }

    fn folder(&self, folder: &str) -> PathBuf {
        self.mail.join(local_name(folder))
    }
}

/// The events of a run that began after `mark` (from [`Server::settled`]), once every session
/// it opened has ended.
fn run_events(server: &Server, mark: usize) -> Vec<Event> {
    server.wait_for(mark, |e| {
        let logins = e.iter().filter(|e| e.event == EventType::Login).count();
        let logouts = e.iter().filter(|e| e.event == EventType::Logout).count();
        logins > 0 && logins == logouts
    });
    let end = server.settled();
    server.events()[mark..end].to_vec()
}

/// The events other than Login and Logout, as `Type mailbox uidset`.
fn changes(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter(|e| !matches!(e.event, EventType::Login | EventType::Logout))
        .map(|e| {
            format!(
                "{} {} {}",
                e.event,
                e.mailbox().unwrap_or("-"),
                e.uidset.as_ref().map_or("-".into(), |u| u.to_string())
            )
        })
        .collect()
}

#[test]
fn offlineimap_syncs_down_and_up() {
    if !offlineimap_available() {
        return;
    }
    let server = Server::start("");
    server.add_user("frank", "frank-pw");
    let port = server.port("imap");
    let p = port.to_string();
    let create: Vec<String> = FOLDERS
        .iter()
        .filter(|(f, ..)| *f != "INBOX")
        .map(|(f, u, _)| {
            if u.is_empty() {
                f.to_string()
            } else {
                format!("{f}={u}")
            }
        })
        .collect();
    let mut args = vec![p.as_str(), "frank", "frank-pw"];
    args.extend(create.iter().map(String::as_str));
    server.python("imap_create.py", &args);
    for (folder, _, n) in FOLDERS {
        server.python(
            "imap_fill.py",
            &[&p, "frank", "frank-pw", folder, &n.to_string(), "varied"],
        );
    }
    let sync = Sync::new(port);

    // (a) Down: every message, with its flags, in the folder it came from.
    let mark = server.settled();
    sync.run();
    let events = run_events(&server, mark);
    assert_eq!(
        changes(&events),
        Vec::<String>::new(),
        "the first sync changed the server"
    );
    for (folder, _, n) in FOLDERS {
        let local = maildir(&sync.folder(folder));
        let want: BTreeMap<String, String> = (0..n)
            .map(|i| {
                let id = format!("<fill-{}-{i}@example.net>", local_name(folder));
                (id, filled_flags(i))
            })
            .collect();
        let got: BTreeMap<String, String> = local
            .iter()
            .map(|(id, m)| (id.clone(), m.flags.clone()))
            .collect();
        assert_eq!(got, want, "{folder}");
        for (id, m) in &local {
            let i = id
                .rsplit('-')
                .next()
                .unwrap()
                .trim_end_matches("@example.net>");
            assert_eq!(m.body.trim_end(), format!("body of message {i}"), "{id}");
        }
    }

    // (b) Again: nothing to do, on either side.
    let files = all_files(&sync.mail);
    let mark = server.settled();
    sync.run();
    let events = run_events(&server, mark);
    assert_eq!(
        changes(&events),
        Vec::<String>::new(),
        "the second run changed the server"
    );
    assert_eq!(
        all_files(&sync.mail),
        files,
        "the second run changed the Maildir"
    );

    // (c) Changes on the server come down: a flag, an expunge, a new message.
    let lists = server_view(&server, "Lists");
    let (uid_flag, _) = lists["<fill-Lists-1@example.net>"];
    let (uid_gone, _) = lists["<fill-Lists-2@example.net>"];
    let new_uid = server.python(
        "imap_change.py",
        &[
            &p,
            "frank",
            "frank-pw",
            "Lists",
            &uid_flag.to_string(),
            "\\Flagged",
            &uid_gone.to_string(),
            "<server-new@example.net>",
        ],
    );
    assert_eq!(new_uid.trim(), "101");
    let before = maildir(&sync.folder("Lists"));
    let mark = server.settled();
    sync.run();
    let events = run_events(&server, mark);
    assert_eq!(
        changes(&events),
        Vec::<String>::new(),
        "pulling changed the server"
    );
    let after = maildir(&sync.folder("Lists"));
    assert_eq!(after["<fill-Lists-1@example.net>"].flags, "F");
    assert!(!after.contains_key("<fill-Lists-2@example.net>"));
    assert_eq!(after["<server-new@example.net>"].flags, "");
    assert_eq!(after["<server-new@example.net>"].body.trim_end(), "new");
    assert_eq!(after.len(), before.len());
    for (id, m) in &after {
        if !id.starts_with("<fill-Lists-1@") && !id.starts_with("<server-new@") {
            assert_eq!(m, &before[id], "{id} changed");
        }
    }

    // (d) Changes in the Maildir go up: a message marked seen, a message added.
    let inbox = sync.folder("INBOX");
    let local = maildir(&inbox);
    let target = &local["<fill-INBOX-1@example.net>"];
    assert_eq!(target.flags, "", "message 1 starts unseen");
    let name = target
        .path
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    std::fs::rename(&target.path, inbox.join("cur").join(format!("{name}S"))).unwrap();
    std::fs::write(
        inbox.join("new").join("1700000000.local1.herald-test"),
        "From: me@example.org\nSubject: written offline\nMessage-ID: <local-1@example.org>\n\nwritten offline\n",
    )
    .unwrap();
    let mark = server.settled();
    sync.run();
    let events = run_events(&server, mark);
    let appended: Vec<&Event> = events
        .iter()
        .filter(|e| e.event == EventType::MessageAppend)
        .collect();
    assert_eq!(appended.len(), 1, "{:?}", changes(&events));
    assert_eq!(appended[0].mailbox(), Some("INBOX"));
    assert_eq!(
        appended[0].extension(vnd::CAUSE).and_then(|v| v.as_str()),
        Some("append")
    );
    let view = server_view(&server, "INBOX");
    let (uid1, _) = view["<fill-INBOX-1@example.net>"];
    assert_eq!(
        changes(&events),
        // OfflineIMAP uploads new messages before it syncs flags.
        [
            "MessageAppend INBOX -".to_owned(),
            format!("MessageRead INBOX {uid1}"),
        ],
        "what pushing did on the server"
    );
    assert_eq!(view["<fill-INBOX-1@example.net>"].1, "\\Seen");
    assert_eq!(view["<local-1@example.org>"], (151, String::new()));
    assert_eq!(view.len(), 151);
    // The Maildir file of the pushed message now carries its UID.
    let local = maildir(&inbox);
    let pushed = local["<local-1@example.org>"].path.file_name().unwrap();
    assert!(
        pushed.to_string_lossy().contains(",U=151"),
        "{}",
        pushed.to_string_lossy()
    );

    // And once more: both sides agree, so nothing moves.
    let files = all_files(&sync.mail);
    let mark = server.settled();
    sync.run();
    let events = run_events(&server, mark);
    assert_eq!(changes(&events), Vec::<String>::new());
    assert_eq!(all_files(&sync.mail), files);
}
