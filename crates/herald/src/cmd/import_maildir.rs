//! `herald import maildir`: a Dovecot or Courier Maildir++ tree as a [`Source`].
//!
//! Layout (Maildir++): the root's `cur/` and `new/` are INBOX; a subfolder is a directory
//! `.Name.Sub` beside them, named in modified UTF-7 with `.` as the hierarchy separator, and
//! becomes the mailbox `Name/Sub` (Herald's separator is `/`). A directory without `cur/` is
//! not a folder (Courier's `courierimapkeywords/`, for instance).
//!
//! Per folder:
//! - flags from the file name's info suffix `:2,` — `D` \Draft, `F` \Flagged, `R` \Answered,
//!   `S` \Seen, `T` \Deleted, and the letters `a`..`z` for the keywords numbered 0..25 in
//!   `dovecot-keywords`; messages still in `new/` have none;
//! - UIDs, UIDVALIDITY and the next UID from `dovecot-uidlist` (versions 1 and 3). Files it
//!   does not list yet get UIDs from its next UID on, in name order, as Dovecot would give
//!   them. Without the file there are no UIDs; the resume key is then the message's place in
//!   name order (Maildir names start with the delivery time, so new mail sorts last);
//! - INTERNALDATE from the file's modification time, which is where Dovecot keeps it.

use super::import::{self, Position, Source, SourceMailbox};
use anyhow::Context as _;
use herald_store::ImportMessage;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A Maildir++ tree.
#[derive(Debug)]
pub struct Maildir {
    root: PathBuf,
    /// The messages of the folder last listed by `positions`, by key.
    current: HashMap<i64, Entry>,
}

/// One message file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    path: PathBuf,
    flags: Vec<String>,
    date_ms: i64,
}

impl Maildir {
    /// Opens the tree at `root`, which must be a maildir (with `cur/`).
    pub fn open(root: &Path) -> anyhow::Result<Maildir> {
        let root = root
            .canonicalize()
            .with_context(|| format!("cannot open maildir {}", root.display()))?;
        if !root.join("cur").is_dir() {
            anyhow::bail!(
                "{} is not a maildir: it has no cur/ directory",
                root.display()
            );
        }
        Ok(Maildir {
            root,
            current: HashMap::new(),
        })
    }
}

impl Source for Maildir {
    fn id(&self) -> String {
        format!("maildir:{}", self.root.display())
    }

    async fn mailboxes(&mut self) -> anyhow::Result<Vec<SourceMailbox>> {
        let mut out = vec![folder_mailbox(&self.root, "INBOX".into(), String::new())?];
        let mut subs = Vec::new();
        for entry in std::fs::read_dir(&self.root)
            .with_context(|| format!("cannot read {}", self.root.display()))?
        {
            let entry = entry?;
            let Some(dir) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !dir.starts_with('.') || dir == "." || dir == ".." {
                continue;
            }
            if !entry.path().join("cur").is_dir() {
                continue;
            }
            subs.push((folder_name(&dir)?, dir));
        }
        // Parents before children, whatever order the directory listing had.
        subs.sort();
        for (name, dir) in subs {
            out.push(folder_mailbox(&self.root.join(&dir), name, dir)?);
        }
        Ok(out)
    }

    async fn positions(
        &mut self,
        mailbox: &SourceMailbox,
        after: i64,
    ) -> anyhow::Result<Vec<Position>> {
        let dir = self.root.join(&mailbox.source_name);
        let listed = scan(&dir)?;
        self.current.clear();
        let mut out = Vec::new();
        for (pos, entry) in listed {
            if pos.key > after {
                out.push(pos);
                self.current.insert(pos.key, entry);
            }
        }
        Ok(out)
    }

    async fn fetch(
        &mut self,
        _mailbox: &SourceMailbox,
        positions: &[Position],
    ) -> anyhow::Result<Vec<ImportMessage>> {
        let mut out = Vec::with_capacity(positions.len());
        for p in positions {
            let Some(e) = self.current.get(&p.key) else {
                continue;
            };
            let content = match std::fs::read(&e.path) {
                Ok(c) => c,
                // Moved between the listing and now (a running Dovecot marking it read): the
                // same message under its new name.
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    match find_moved(&e.path) {
                        Some(path) => std::fs::read(&path)
                            .with_context(|| format!("cannot read {}", path.display()))?,
                        None => continue,
                    }
                }
                Err(err) => {
                    return Err(err).with_context(|| format!("cannot read {}", e.path.display()));
                }
            };
            out.push(ImportMessage {
                content: import::crlf(content),
                flags: e.flags.clone(),
                internal_date_ms: e.date_ms,
                uid: p.uid,
            });
        }
        Ok(out)
    }
}

/// The mailbox of one folder directory, with what its `dovecot-uidlist` header says.
fn folder_mailbox(dir: &Path, name: String, source_name: String) -> anyhow::Result<SourceMailbox> {
    let uidlist = read_uidlist(dir)?;
    let (uidvalidity, uidnext) = match &uidlist {
        Some(u) => (Some(u.uidvalidity), Some(u.next_uid)),
        None => (None, None),
    };
    Ok(SourceMailbox {
        name,
        source_name,
        uidvalidity,
        uidnext,
        special_use: None,
    })
}

/// `.Lists.rust` → `Lists/rust` (modified UTF-7 decoded).
fn folder_name(dir: &str) -> anyhow::Result<String> {
    let inner = dir.strip_prefix('.').unwrap_or(dir);
    let mut levels = Vec::new();
    for level in inner.split('.') {
        let decoded = herald_imap::proto::mutf7::decode(level.as_bytes())
            .map_err(|e| anyhow::anyhow!("folder {dir}: {e}"))?;
        levels.push(decoded);
    }
    Ok(levels.join("/"))
}

/// A folder's `dovecot-uidlist`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Uidlist {
    uidvalidity: u32,
    next_uid: u32,
    /// Base file name (before `:`) → UID.
    uids: HashMap<String, u32>,
}

fn read_uidlist(dir: &Path) -> anyhow::Result<Option<Uidlist>> {
    let path = dir.join("dovecot-uidlist");
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_uidlist(&text)
            .map(Some)
            .with_context(|| format!("{}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Parses `dovecot-uidlist`: a header (`1 UIDVALIDITY NEXTUID`, or `3 V<uidvalidity>
/// N<nextuid> G<guid> …`), then one line per message: `UID FILENAME` (version 1) or
/// `UID [EXTENSIONS…] :FILENAME` (version 3).
fn parse_uidlist(text: &str) -> anyhow::Result<Uidlist> {
    let mut lines = text.lines();
    let header = lines.next().context("empty dovecot-uidlist")?;
    let mut fields = header.split_ascii_whitespace();
    let version = fields.next().unwrap_or_default();
    let mut list = Uidlist::default();
    match version {
        "1" => {
            list.uidvalidity = fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            list.next_uid = fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        }
        "2" | "3" => {
            for f in fields {
                if let Some(v) = f.strip_prefix('V') {
                    list.uidvalidity = v.parse().unwrap_or(0);
                } else if let Some(v) = f.strip_prefix('N') {
                    list.next_uid = v.parse().unwrap_or(0);
                }
            }
        }
        other => anyhow::bail!("unknown dovecot-uidlist version `{other}`"),
    }
    if list.uidvalidity == 0 {
        anyhow::bail!("dovecot-uidlist header without a UIDVALIDITY: `{header}`");
    }
    for line in lines {
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        let (uid, rest) = line.split_once(' ').unwrap_or((line, ""));
        let Ok(uid) = uid.parse::<u32>() else {
            continue;
        };
        let file = match rest.find(':') {
            Some(i) if version != "1" => &rest[i + 1..],
            _ => rest.trim_start(),
        };
        if uid == 0 || file.is_empty() {
            continue;
        }
        list.next_uid = list.next_uid.max(uid.saturating_add(1));
        list.uids.insert(base_name(file).to_owned(), uid);
    }
    Ok(list)
}

/// A Maildir file name without its info suffix (`:2,…`).
fn base_name(file: &str) -> &str {
    file.split_once(':').map_or(file, |(b, _)| b)
}

/// Parses `dovecot-keywords`: `INDEX NAME` lines; index 0 is the letter `a`.
fn parse_keywords(text: &str) -> HashMap<u8, String> {
    let mut out = HashMap::new();
    for line in text.lines() {
        if let Some((i, name)) = line.trim_end().split_once(' ')
            && let Ok(i) = i.parse::<u8>()
            && i < 26
            && !name.is_empty()
        {
            out.insert(b'a' + i, name.to_owned());
        }
    }
    out
}

/// The flags of a file name's info suffix (`:2,FRSabc`).
fn flags_of(file: &str, keywords: &HashMap<u8, String>) -> Vec<String> {
    let Some((_, info)) = file.split_once(':') else {
        return Vec::new();
    };
    let Some(letters) = info.strip_prefix("2,") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for b in letters.bytes() {
        let flag = match b {
            b'D' => Some("\\Draft".to_owned()),
            b'F' => Some("\\Flagged".to_owned()),
            b'R' => Some("\\Answered".to_owned()),
            b'S' => Some("\\Seen".to_owned()),
            b'T' => Some("\\Deleted".to_owned()),
            b'a'..=b'z' => keywords.get(&b).cloned(),
            // `P` (passed) has no IMAP flag; other letters mean nothing here.
            _ => None,
        };
        if let Some(f) = flag {
            out.push(f);
        }
    }
    import::clean_flags(out)
}

/// Lists a folder's messages with their positions: by UID when `dovecot-uidlist` exists,
/// else by name.
fn scan(dir: &Path) -> anyhow::Result<Vec<(Position, Entry)>> {
    let keywords = match std::fs::read_to_string(dir.join("dovecot-keywords")) {
        Ok(t) => parse_keywords(&t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
        Err(e) => return Err(e).context("cannot read dovecot-keywords"),
    };
    let uidlist = read_uidlist(dir)?;
    let mut files = Vec::new();
    for sub in ["cur", "new"] {
        let d = dir.join(sub);
        let read = match std::fs::read_dir(&d) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", d.display())),
        };
        for entry in read {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let meta = entry.metadata()?;
            if !meta.is_file() {
                continue;
            }
            let flags = if sub == "cur" {
                flags_of(&name, &keywords)
            } else {
                Vec::new()
            };
            files.push((
                base_name(&name).to_owned(),
                Entry {
                    path: entry.path(),
                    flags,
                    date_ms: import::mtime_ms(&meta),
                },
                meta.len(),
            ));
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::with_capacity(files.len());
    match uidlist {
        Some(list) => {
            let mut unlisted = Vec::new();
            for (base, entry, size) in files {
                match list.uids.get(&base) {
                    Some(&uid) => out.push((
                        Position {
                            key: i64::from(uid),
                            uid: Some(uid),
                            size,
                        },
                        entry,
                    )),
                    None => unlisted.push((entry, size)),
                }
            }
            out.sort_by_key(|(p, _)| p.key);
            let mut next = list.next_uid;
            for (entry, size) in unlisted {
                out.push((
                    Position {
                        key: i64::from(next),
                        uid: Some(next),
                        size,
                    },
                    entry,
                ));
                next = next.saturating_add(1);
            }
        }
        None => {
            for (i, (_, entry, size)) in files.into_iter().enumerate() {
                out.push((
                    Position {
                        key: i as i64 + 1,
                        uid: None,
                        size,
                    },
                    entry,
                ));
            }
        }
    }
    Ok(out)
}

/// The file a message moved to since it was listed: the same base name in `cur/` with other
/// flags (Dovecot renames a file when its flags change, or moves it from `new/`).
fn find_moved(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let base = base_name(name);
    let cur = path.parent()?.parent()?.join("cur");
    std::fs::read_dir(cur).ok()?.flatten().find_map(|e| {
        let n = e.file_name();
        let n = n.to_str()?;
        (base_name(n) == base).then(|| e.path())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uidlist_version_3_and_1() {
        let v3 = "3 V1700000000 N12 G0123456789abcdef\n\
                  4 :1700000001.M1P1.host,S=120:2,S\n\
                  7 W130 :1700000002.M2P1.host,S=125\n\
                  junk line\n";
        let u = parse_uidlist(v3).unwrap();
        assert_eq!((u.uidvalidity, u.next_uid), (1700000000, 12));
        assert_eq!(u.uids["1700000001.M1P1.host,S=120"], 4);
        assert_eq!(u.uids["1700000002.M2P1.host,S=125"], 7);
        let v1 = parse_uidlist("1 1234 3\n1 a.host\n5 b.host:2,S\n").unwrap();
        assert_eq!(
            (v1.uidvalidity, v1.next_uid),
            (1234, 6),
            "raised past the last UID"
        );
        assert_eq!(v1.uids["b.host"], 5);
        assert!(parse_uidlist("9 V1\n").is_err());
        assert!(parse_uidlist("3 N5\n").is_err(), "no UIDVALIDITY");
    }

    #[test]
    fn info_suffix_flags_and_keywords() {
        let kw = parse_keywords("0 $Forwarded\n1 Junk\n2\n30 toolate\n");
        assert_eq!(kw.len(), 2);
        assert_eq!(
            flags_of("123.host,S=5:2,FRSTab", &kw),
            [
                "\\Flagged",
                "\\Answered",
                "\\Seen",
                "\\Deleted",
                "$Forwarded",
                "Junk"
            ]
        );
        assert_eq!(flags_of("123.host:2,DPz", &kw), ["\\Draft"]);
        assert!(flags_of("123.host", &kw).is_empty());
        assert!(flags_of("123.host:1,S", &kw).is_empty());
    }

    #[test]
    fn folder_names_follow_maildir_plus_plus() {
        assert_eq!(folder_name(".Lists.rust").unwrap(), "Lists/rust");
        assert_eq!(folder_name(".Entw&APw-rfe").unwrap(), "Entwürfe");
        assert!(folder_name(".bad&-x&").is_err());
    }

    #[tokio::test]
    async fn a_tree_lists_its_folders_and_messages() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in [
            "cur",
            "new",
            "tmp",
            ".Work/cur",
            ".Work/new",
            ".Work.Old/cur",
            "stray",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("cur/100.a.host:2,S"), "Subject: a\n\nA\n").unwrap();
        std::fs::write(root.join("new/200.b.host"), "Subject: b\n\nB\n").unwrap();
        std::fs::write(root.join(".Work/cur/300.c.host:2,Fa"), "Subject: c\n\nC\n").unwrap();
        std::fs::write(root.join(".Work/dovecot-keywords"), "0 $Work\n").unwrap();
        std::fs::write(
            root.join(".Work/dovecot-uidlist"),
            "3 V55 N9\n8 :300.c.host\n",
        )
        .unwrap();
        let mut m = Maildir::open(root).unwrap();
        let boxes = m.mailboxes().await.unwrap();
        let names: Vec<&str> = boxes.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["INBOX", "Work", "Work/Old"]);
        assert_eq!(
            (boxes[1].uidvalidity, boxes[1].uidnext),
            (Some(55), Some(9))
        );
        let inbox = m.positions(&boxes[0], 0).await.unwrap();
        assert_eq!(inbox.iter().map(|p| p.key).collect::<Vec<_>>(), [1, 2]);
        let msgs = m.fetch(&boxes[0], &inbox).await.unwrap();
        assert_eq!(msgs[0].flags, ["\\Seen"]);
        assert!(msgs[1].flags.is_empty(), "new/ has no flags");
        assert_eq!(msgs[0].content, b"Subject: a\r\n\r\nA\r\n");
        assert_eq!(
            m.positions(&boxes[0], 1).await.unwrap().len(),
            1,
            "resumes after 1"
        );
        let work = m.positions(&boxes[1], 0).await.unwrap();
        assert_eq!((work[0].key, work[0].uid), (8, Some(8)));
        let msgs = m.fetch(&boxes[1], &work).await.unwrap();
        assert_eq!(msgs[0].flags, ["\\Flagged", "$Work"]);
        assert!(Maildir::open(&root.join("stray")).is_err());
    }
}
