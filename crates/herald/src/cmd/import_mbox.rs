//! `herald import mbox`: one mbox file as a [`Source`] of one mailbox.
//!
//! Read as mboxrd, which also reads mboxo: a line starting with `From ` separates messages,
//! and one `>` is taken off body lines that match `>+From ` (mboxo's single level of quoting
//! is undone the same way). The blank line a writer puts before the next separator is not
//! part of the message.
//!
//! Per message: INTERNALDATE from the separator line's date (asctime, optionally with a zone),
//! else from the `Date:` header, else now; flags from `Status:` (`R` \Seen) and `X-Status:`
//! (`A` \Answered, `F` \Flagged, `T` \Draft, `D` \Deleted) and keywords from `X-Keywords:`;
//! UIDs from `X-UID:` with UIDVALIDITY and UIDNEXT from the first message's `X-IMAPbase:`
//! (as Dovecot and UW-IMAP write them). Those bookkeeping headers are removed from the
//! message, as the servers that wrote them hide them. The resume key is the message's place
//! in the file.
//!
//! The file is scanned once for the separators (16 bytes of memory per message); contents are
//! read a batch at a time.

use super::import::{self, Position, Source, SourceMailbox};
use anyhow::Context as _;
use herald_store::ImportMessage;
use std::io::{BufReader, Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};

/// An mbox file imported into one mailbox.
#[derive(Debug)]
pub struct Mbox {
    path: PathBuf,
    mailbox: String,
    /// (offset of the separator line, length up to the next one) of every message.
    messages: Vec<(u64, u64)>,
    uidvalidity: Option<u32>,
    uidnext: Option<u32>,
}

impl Mbox {
    /// Opens `path` and finds its messages; they go to `mailbox`.
    pub fn open(path: &Path, mailbox: &str) -> anyhow::Result<Mbox> {
        let path = path
            .canonicalize()
            .with_context(|| format!("cannot open {}", path.display()))?;
        let file = std::fs::File::open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let messages = scan(BufReader::new(file))
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut mbox = Mbox {
            path,
            mailbox: mailbox.to_owned(),
            messages,
            uidvalidity: None,
            uidnext: None,
        };
        if let Some(&first) = mbox.messages.first() {
            let raw = mbox.read(first)?;
            let parsed = parse_message(&raw);
            mbox.uidvalidity = parsed.imap_base.map(|b| b.0);
            mbox.uidnext = parsed.imap_base.map(|b| b.1);
        }
        Ok(mbox)
    }

    fn read(&self, (offset, len): (u64, u64)) -> anyhow::Result<Vec<u8>> {
        let mut file = std::fs::File::open(&self.path)?;
        file.seek(SeekFrom::Start(offset))?;
        let mut buf = Vec::with_capacity(len as usize);
        file.take(len).read_to_end(&mut buf)?;
        Ok(buf)
    }
}

impl Source for Mbox {
    fn id(&self) -> String {
        format!("mbox:{}", self.path.display())
    }

    async fn mailboxes(&mut self) -> anyhow::Result<Vec<SourceMailbox>> {
        Ok(vec![SourceMailbox {
            name: self.mailbox.clone(),
            source_name: self.mailbox.clone(),
            uidvalidity: self.uidvalidity,
            uidnext: self.uidnext,
            special_use: None,
        }])
    }

    async fn positions(
        &mut self,
        _mailbox: &SourceMailbox,
        after: i64,
    ) -> anyhow::Result<Vec<Position>> {
        Ok(self
            .messages
            .iter()
            .enumerate()
            .map(|(i, &(_, len))| Position {
                key: i as i64 + 1,
                uid: None,
                size: len,
            })
            .filter(|p| p.key > after)
            .collect())
    }

    async fn fetch(
        &mut self,
        _mailbox: &SourceMailbox,
        positions: &[Position],
    ) -> anyhow::Result<Vec<ImportMessage>> {
        let mut out = Vec::with_capacity(positions.len());
        for p in positions {
            let Some(&at) = usize::try_from(p.key - 1)
                .ok()
                .and_then(|i| self.messages.get(i))
            else {
                continue;
            };
            let raw = self.read(at)?;
            let m = parse_message(&raw);
            out.push(ImportMessage {
                content: import::crlf(m.content),
                flags: m.flags,
                internal_date_ms: m.date_ms.unwrap_or_else(herald_store::now_ms),
                uid: if self.uidvalidity.is_some() {
                    m.uid
                } else {
                    None
                },
            });
        }
        Ok(out)
    }
}

/// Finds the separator lines: (offset, length up to the next separator or the end).
fn scan(mut r: impl std::io::BufRead) -> std::io::Result<Vec<(u64, u64)>> {
    let mut starts = Vec::new();
    let mut offset = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        if line.starts_with(b"From ") {
            starts.push(offset);
        }
        offset += n as u64;
    }
    let mut out = Vec::with_capacity(starts.len());
    for (i, &s) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(offset);
        out.push((s, end - s));
    }
    Ok(out)
}

/// One message taken out of its mbox framing.
#[derive(Debug, Default, PartialEq, Eq)]
struct Parsed {
    content: Vec<u8>,
    flags: Vec<String>,
    date_ms: Option<i64>,
    uid: Option<u32>,
    /// `X-IMAPbase: UIDVALIDITY UIDNEXT …`.
    imap_base: Option<(u32, u32)>,
}

/// Headers that are the mbox writer's bookkeeping, not the message's.
const BOOKKEEPING: [&str; 6] = [
    "status",
    "x-status",
    "x-keywords",
    "x-uid",
    "x-imap",
    "x-imapbase",
];

/// Parses one message: the separator line, the headers (bookkeeping ones read and removed),
/// the body unquoted.
fn parse_message(raw: &[u8]) -> Parsed {
    let mut p = Parsed::default();
    let mut lines = raw.split_inclusive(|&b| b == b'\n').peekable();
    let from_line = lines.next().unwrap_or_default();
    p.date_ms = from_line_date(from_line);
    let mut in_headers = true;
    let mut skipping = false;
    let mut date_header = None;
    let mut body: Vec<&[u8]> = Vec::new();
    for line in lines {
        if in_headers {
            let bare = trim_eol(line);
            if bare.is_empty() {
                in_headers = false;
                p.content.extend_from_slice(line);
                continue;
            }
            if skipping && matches!(bare.first(), Some(b' ' | b'\t')) {
                continue;
            }
            skipping = false;
            let text = String::from_utf8_lossy(bare);
            if let Some((name, value)) = text.split_once(':') {
                let lname = name.trim().to_ascii_lowercase();
                let value = value.trim();
                if BOOKKEEPING.contains(&lname.as_str()) {
                    skipping = true;
                    read_bookkeeping(&mut p, &lname, value);
                    continue;
                }
                if lname == "date" {
                    date_header = Some(value.to_owned());
                }
            }
            p.content.extend_from_slice(line);
        } else {
            body.push(line);
        }
    }
    // The blank line before the next separator belongs to the framing.
    if body.last().is_some_and(|l| trim_eol(l).is_empty()) {
        body.pop();
    }
    for line in body {
        let quoted = line.iter().take_while(|&&b| b == b'>').count();
        if quoted > 0 && line[quoted..].starts_with(b"From ") {
            p.content.extend_from_slice(&line[1..]);
        } else {
            p.content.extend_from_slice(line);
        }
    }
    if p.date_ms.is_none() {
        p.date_ms = date_header
            .and_then(|d| chrono::DateTime::parse_from_rfc2822(&d).ok())
            .map(|d| d.timestamp_millis());
    }
    p.flags = import::clean_flags(std::mem::take(&mut p.flags));
    p
}

fn read_bookkeeping(p: &mut Parsed, name: &str, value: &str) {
    match name {
        "status" if value.contains('R') => p.flags.push("\\Seen".into()),
        "x-status" => {
            for (c, f) in [
                ('A', "\\Answered"),
                ('F', "\\Flagged"),
                ('T', "\\Draft"),
                ('D', "\\Deleted"),
            ] {
                if value.contains(c) {
                    p.flags.push(f.into());
                }
            }
        }
        "x-keywords" => p.flags.extend(
            value
                .split(|c: char| c == ',' || c.is_ascii_whitespace())
                .filter(|k| !k.is_empty())
                .map(str::to_owned),
        ),
        "x-uid" => p.uid = value.parse().ok().filter(|&u| u > 0),
        "x-imapbase" => {
            let mut f = value
                .split_ascii_whitespace()
                .map(|v| v.parse::<u32>().ok());
            if let (Some(Some(v)), Some(Some(n))) = (f.next(), f.next())
                && v > 0
            {
                p.imap_base = Some((v, n));
            }
        }
        _ => {}
    }
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The date of a separator line, `From sender Sat Jan  3 01:05:34 1996` (asctime, in UTC
/// as the writers of today use it), optionally with a numeric zone before or after the year.
/// Read by the shape of its words, since writers differ in their order.
fn from_line_date(line: &[u8]) -> Option<i64> {
    let text = String::from_utf8_lossy(trim_eol(line));
    let rest = text.strip_prefix("From ")?;
    let mut words = rest.split_ascii_whitespace();
    words.next()?; // the envelope sender
    let (mut month, mut day, mut time, mut year, mut zone) = (None, None, None, None, "+0000");
    for w in words {
        if w.contains(':') {
            time = Some(w);
        } else if (w.starts_with('+') || w.starts_with('-')) && w.len() == 5 {
            zone = w;
        } else if let Ok(n) = w.parse::<u32>() {
            if n > 31 {
                year = Some(n);
            } else {
                day = Some(n);
            }
        } else if w.len() == 3 && month.is_none() && day.is_none() {
            // The first three-letter word after the weekday is the month.
            if chrono::NaiveDate::parse_from_str(&format!("1 {w} 2000"), "%d %b %Y").is_ok() {
                month = Some(w);
            }
        }
    }
    let stamp = format!("{:02} {} {} {} {zone}", day?, month?, year?, time?);
    chrono::DateTime::parse_from_str(&stamp, "%d %b %Y %H:%M:%S %z")
        .ok()
        .map(|d| d.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MBOX: &[u8] = b"From alice@example.org Sat Jan  3 01:05:34 1996\n\
X-IMAPbase: 1700000000 9 $Work\n\
Status: RO\n\
X-Status: AF\n\
X-Keywords: $Work Later\n\
X-UID: 3\n\
Subject: first\n\
\n\
Hello\n\
>From the start\n\
>>From deeper\n\
\n\
From bob@example.org Mon Feb 12 10:00:00 2024 +0100\n\
Subject: second\n\
Date: Mon, 12 Feb 2024 09:00:00 +0000\n\
\n\
Body\n";

    #[test]
    fn separators_split_messages() {
        let spans = scan(MBOX).unwrap();
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[0].0, 0);
        assert_eq!(spans[1].0 + spans[1].1, MBOX.len() as u64);
    }

    #[test]
    fn a_message_loses_its_framing_and_keeps_its_state() {
        let spans = scan(MBOX).unwrap();
        let first = &MBOX[..spans[0].1 as usize];
        let p = parse_message(first);
        assert_eq!(
            String::from_utf8_lossy(&p.content),
            "Subject: first\n\nHello\nFrom the start\n>From deeper\n"
        );
        assert_eq!(
            p.flags,
            ["\\Seen", "\\Answered", "\\Flagged", "$Work", "Later"]
        );
        assert_eq!(p.uid, Some(3));
        assert_eq!(p.imap_base, Some((1700000000, 9)));
        // 1996-01-03T01:05:34Z
        assert_eq!(p.date_ms, Some(820_631_134_000));
        let second = &MBOX[spans[1].0 as usize..];
        let p = parse_message(second);
        assert_eq!(p.date_ms, Some(1_707_728_400_000), "zone of the From_ line");
        assert!(p.flags.is_empty());
    }

    #[test]
    fn separator_dates_in_their_variants() {
        let d = |l: &str| from_line_date(l.as_bytes());
        assert_eq!(d("From a Sat Jan  3 01:05:34 1996"), Some(820_631_134_000));
        assert_eq!(
            d("From a Sat Jan 03 01:05:34 1996 +0000"),
            Some(820_631_134_000)
        );
        assert_eq!(
            d("From a Sat Jan  3 02:05:34 +0100 1996"),
            Some(820_631_134_000)
        );
        assert_eq!(d("From MAILER-DAEMON"), None);
    }

    #[test]
    fn the_date_header_is_the_fallback() {
        let p = parse_message(b"From someone\nDate: Mon, 12 Feb 2024 09:00:00 +0000\n\nx\n");
        assert_eq!(p.date_ms, Some(1_707_728_400_000));
    }

    #[tokio::test]
    async fn a_file_is_one_mailbox_resumable_by_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("box.mbox");
        std::fs::write(&path, MBOX).unwrap();
        let mut m = Mbox::open(&path, "Archive/1996").unwrap();
        let boxes = m.mailboxes().await.unwrap();
        assert_eq!(boxes[0].name, "Archive/1996");
        assert_eq!(boxes[0].uidvalidity, Some(1700000000));
        let all = m.positions(&boxes[0], 0).await.unwrap();
        assert_eq!(all.len(), 2);
        let rest = m.positions(&boxes[0], 1).await.unwrap();
        assert_eq!(rest[0].key, 2);
        let msgs = m.fetch(&boxes[0], &all).await.unwrap();
        assert_eq!(msgs[0].uid, Some(3));
        assert!(msgs[1].content.starts_with(b"Subject: second\r\n"));
    }
}
