//! The engine of `herald events check`: validates a stream of JSON lines in bounded memory.
//!
//! Shape: one reader cuts the input into blocks of whole lines (a few MiB each), worker threads
//! decode and validate blocks in parallel, and the reader's thread prints the reports in input
//! order. Channels are bounded, so memory is a small multiple of the block size whatever the
//! input's length; a line longer than `max_line` is skipped as it streams past, never buffered.
//! Decoding borrows from the block (see `herald_events::json`), which is what makes one core
//! validate hundreds of MB/s; the second core doubles it.
//!
//! Each line is read in the shape it has (auto mode): an RFC 5423 object first (the fast path,
//! Herald's `rfc5423` and `cyrus` formats), else a CloudEvents envelope (`specversion`; Herald's
//! `cloudevents` format) checked by its own rules with its `data` as an event, else Dovecot's.

use herald_events::{Event, dovecot};
use herald_notify::format::CLOUDEVENTS_TYPE_PREFIX;
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, mpsc};

/// The block size the reader hands to workers.
const BLOCK: usize = 4 << 20;

/// How to read lines.
#[derive(Debug, Clone)]
pub struct Options {
    /// Map lines in Dovecot's shape (auto-detected when `auto_dovecot`).
    pub dovecot: DovecotMode,
    /// Host for IMAP URLs built from Dovecot events.
    pub dovecot_host: String,
    /// Longest line accepted.
    pub max_line: usize,
    /// Worker threads (at least 1).
    pub workers: usize,
}

/// Whether lines are Dovecot's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DovecotMode {
    /// Never: RFC 5423 JSON only.
    Never,
    /// When a line has no `event` but has Dovecot's `name` or is a quota warning.
    Auto,
    /// Always.
    Always,
}

/// What a check found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Non-blank lines read.
    pub events: u64,
    /// Lines that were not valid events.
    pub invalid: u64,
    /// Bytes read.
    pub bytes: u64,
}

/// One bad line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// 1-based line number.
    pub line: u64,
    /// The event type, or `?` when the line did not decode.
    pub event: String,
    /// Every reason, `; `-separated.
    pub reason: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}: {}", self.line, self.event, self.reason)
    }
}

/// Validates one line (without its newline).
pub fn check_line(line: &[u8], opts: &Options) -> Result<(), (String, String)> {
    let event = match opts.dovecot {
        DovecotMode::Always => from_dovecot(line, opts)?,
        DovecotMode::Never => {
            Event::from_slice(line).map_err(|e| ("?".to_owned(), e.to_string()))?
        }
        DovecotMode::Auto => match Event::from_slice(line) {
            Ok(e) => e,
            Err(e) => {
                // Not an RFC 5423 object: one of the other shapes, told apart per line.
                let value = serde_json::from_slice::<serde_json::Value>(line).ok();
                let object = value.as_ref().and_then(|v| v.as_object());
                if let Some(envelope) = object.filter(|o| o.contains_key("specversion")) {
                    return check_cloudevent(envelope);
                }
                if object.is_some_and(dovecot::looks_like_dovecot) {
                    from_dovecot(line, opts)?
                } else {
                    return Err(decode_failure(e));
                }
            }
        },
    };
    event
        .validate()
        .map_err(|v| (event.event.as_str().to_owned(), v.to_string()))
}

/// A CloudEvents 1.0 structured-mode envelope (Herald's `cloudevents` format): the envelope's
/// required attributes, then its `data` as an RFC 5423 event under the same rules as a plain
/// line, and a `type` that names that event when it is in Herald's namespace.
fn check_cloudevent(
    envelope: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), (String, String)> {
    let text = |key: &str| envelope.get(key).and_then(|v| v.as_str());
    let data = envelope.get("data").and_then(|d| d.as_object());
    let name = data
        .and_then(|d| d.get("event"))
        .and_then(|e| e.as_str())
        .or_else(|| text("type"))
        .unwrap_or("?")
        .to_owned();
    let mut reasons = Vec::new();
    if text("specversion") != Some("1.0") {
        reasons.push("cloudevents: specversion: must be \"1.0\"".to_owned());
    }
    for key in ["id", "source", "type"] {
        if text(key).is_none_or(str::is_empty) {
            reasons.push(format!(
                "cloudevents: {key}: missing or not a non-empty string"
            ));
        }
    }
    if let Some(time) = envelope.get("time")
        && time
            .as_str()
            .is_none_or(|t| t.parse::<herald_events::Timestamp>().is_err())
    {
        reasons.push("cloudevents: time: not an RFC 3339 time".to_owned());
    }
    if let Some(kind) = envelope.get("datacontenttype")
        && kind.as_str() != Some("application/json")
    {
        reasons.push("cloudevents: datacontenttype: must be application/json".to_owned());
    }
    match data {
        None => reasons.push("cloudevents: data: missing or not an object".to_owned()),
        Some(data) => {
            let json = serde_json::Value::Object(data.clone()).to_string();
            match Event::from_json(&json) {
                Err(e) => reasons.push(format!("data: {}", decode_failure(e).1)),
                Ok(event) => {
                    if let Some(t) = text("type")
                        && let Some(named) = t.strip_prefix(CLOUDEVENTS_TYPE_PREFIX)
                        && named != event.event.as_str()
                    {
                        reasons.push(format!(
                            "cloudevents: type: {t} but data is a {}",
                            event.event
                        ));
                    }
                    if let Err(v) = event.validate() {
                        reasons.push(format!("data: {v}"));
                    }
                }
            }
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err((name, reasons.join("; ")))
    }
}

fn decode_failure(e: herald_events::DecodeError) -> (String, String) {
    let reason = if e.is_syntax() {
        format!("not JSON: {e}")
    } else {
        e.to_string()
    };
    ("?".to_owned(), reason)
}

fn from_dovecot(line: &[u8], opts: &Options) -> Result<Event, (String, String)> {
    let value: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| ("?".to_owned(), format!("not JSON: {e}")))?;
    dovecot::from_dovecot(value, &opts.dovecot_host)
        .map_err(|e| ("?".to_owned(), format!("dovecot: {e}")))
}

struct Block {
    index: u64,
    first_line: u64,
    data: Vec<u8>,
    /// Lines over `max_line` that belong before or inside this block (blanked in `data`).
    too_long: Vec<u64>,
}

struct Report {
    events: u64,
    findings: Vec<Finding>,
}

fn check_block(block: &Block, opts: &Options) -> Report {
    let mut report = Report {
        events: block.too_long.len() as u64,
        findings: block
            .too_long
            .iter()
            .map(|&line| Finding {
                line,
                event: "?".into(),
                reason: format!("line longer than {} bytes, skipped", opts.max_line),
            })
            .collect(),
    };
    for (line_no, line) in (block.first_line..).zip(block.data.split(|&b| b == b'\n')) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if !line.iter().all(u8::is_ascii_whitespace) {
            report.events += 1;
            if let Err((event, reason)) = check_line(line, opts) {
                report.findings.push(Finding {
                    line: line_no,
                    event,
                    reason,
                });
            }
        }
    }
    report.findings.sort_by_key(|f| f.line);
    report
}

/// Reads `input` to the end, validating every line and calling `on_finding` in input order.
/// Returns an I/O error only when reading fails.
pub fn check_stream(
    mut input: impl Read + Send,
    opts: &Options,
    mut on_finding: impl FnMut(&Finding) -> io::Result<()>,
) -> io::Result<Summary> {
    let workers = opts.workers.max(1);
    let (block_tx, block_rx) = mpsc::sync_channel::<Block>(workers * 2);
    let (report_tx, report_rx) = mpsc::sync_channel::<(u64, Report)>(workers * 2);
    let block_rx = Arc::new(Mutex::new(block_rx));
    let mut summary = Summary::default();

    std::thread::scope(|scope| -> io::Result<()> {
        for _ in 0..workers {
            let rx = Arc::clone(&block_rx);
            let tx = report_tx.clone();
            scope.spawn(move || {
                loop {
                    let next = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => return,
                    };
                    let Ok(block) = next else { return };
                    let report = check_block(&block, opts);
                    if tx.send((block.index, report)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(report_tx);

        // The reader runs on its own thread so this one can print reports as they complete.
        let reader = scope.spawn(move || read_blocks(&mut input, opts.max_line, &block_tx));

        let mut pending = BTreeMap::new();
        let mut next = 0u64;
        let mut print_error = None;
        for (index, report) in report_rx.iter() {
            pending.insert(index, report);
            while let Some(report) = pending.remove(&next) {
                summary.events += report.events;
                summary.invalid += report.findings.len() as u64;
                for f in &report.findings {
                    if print_error.is_none()
                        && let Err(e) = on_finding(f)
                    {
                        print_error = Some(e);
                    }
                }
                next += 1;
            }
        }
        let read = reader
            .join()
            .map_err(|_| io::Error::other("reader thread panicked"))??;
        summary.bytes = read;
        match print_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    })?;
    Ok(summary)
}

fn read_blocks(
    input: &mut impl Read,
    max_line: usize,
    tx: &mpsc::SyncSender<Block>,
) -> io::Result<u64> {
    let mut bytes = 0u64;
    let mut too_long = Vec::new();
    let mut buf: Vec<u8> = Vec::with_capacity(BLOCK * 2);
    let mut index = 0u64;
    let mut line = 1u64;
    // While skipping an over-long line, bytes are dropped until its newline.
    let mut skipping = false;
    let mut eof = false;
    while !eof {
        let start = buf.len();
        buf.resize(start + BLOCK, 0);
        let n = loop {
            match input.read(&mut buf[start..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        buf.truncate(start + n);
        bytes += n as u64;
        eof = n == 0;
        if skipping {
            match memchr::memchr(b'\n', &buf) {
                Some(i) => {
                    buf.drain(..=i);
                    line += 1;
                    skipping = false;
                }
                None => {
                    buf.clear();
                    continue;
                }
            }
        }
        let cut = if eof {
            buf.len()
        } else {
            match memchr::memrchr(b'\n', &buf) {
                Some(i) => i + 1,
                None => {
                    if buf.len() > max_line {
                        too_long.push(line);
                        buf.clear();
                        skipping = true;
                    }
                    continue;
                }
            }
        };
        if cut == 0 && (too_long.is_empty() || !eof) {
            continue;
        }
        let rest = buf.split_off(cut);
        let mut data = std::mem::replace(&mut buf, rest);
        // Lines over the limit inside a block are reported by position and blanked.
        let mut offset = 0;
        let mut n_lines = 0u64;
        while offset < data.len() {
            let end = memchr::memchr(b'\n', &data[offset..])
                .map(|i| offset + i)
                .unwrap_or(data.len());
            if end - offset > max_line {
                too_long.push(line + n_lines);
                data[offset..end].fill(b' ');
            }
            n_lines += 1;
            offset = end + 1;
        }
        if data.last() == Some(&b'\n') {
            data.pop();
        }
        let block = Block {
            index,
            first_line: line,
            data,
            too_long: std::mem::take(&mut too_long),
        };
        line += n_lines;
        index += 1;
        if tx.send(block).is_err() {
            break;
        }
    }
    Ok(bytes)
}

/// Prints findings to `out` and the summary line; returns the summary.
pub fn check_to(
    input: impl Read + Send,
    opts: &Options,
    quiet: bool,
    out: &mut impl Write,
) -> io::Result<Summary> {
    let summary = check_stream(input, opts, |f| {
        if quiet { Ok(()) } else { writeln!(out, "{f}") }
    })?;
    writeln!(
        out,
        "{} events, {} invalid",
        summary.events, summary.invalid
    )?;
    out.flush()?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(max_line: usize, workers: usize) -> Options {
        Options {
            dovecot: DovecotMode::Auto,
            dovecot_host: "h".into(),
            max_line,
            workers,
        }
    }

    const GOOD: &str =
        r#"{"event":"Login","uri":"imap://h","user":"a","serverDomain":"h","serverPort":143}"#;

    fn run(input: &str, max_line: usize) -> (Summary, Vec<String>) {
        let mut found = Vec::new();
        let s = check_stream(input.as_bytes(), &opts(max_line, 2), |f| {
            found.push(f.to_string());
            Ok(())
        })
        .unwrap();
        (s, found)
    }

    #[test]
    fn reports_bad_lines_by_number_in_order() {
        let input = format!("{GOOD}\nnot json\n\n{GOOD}\n{{\"event\":\"Login\"}}\r\n");
        let (s, found) = run(&input, 1 << 20);
        assert_eq!((s.events, s.invalid), (4, 2));
        assert!(
            found[0].starts_with("line 2: ?: not JSON: expected"),
            "{}",
            found[0]
        );
        assert!(
            found[1].starts_with("line 5: Login: uri: missing"),
            "{}",
            found[1]
        );
    }

    #[test]
    fn order_and_numbers_survive_many_blocks() {
        // Enough lines to span several blocks and workers.
        let mut input = String::new();
        let mut expected = Vec::new();
        for i in 1..=60_000u64 {
            if i % 9_973 == 0 {
                input.push_str("{}\n");
                expected.push(i);
            } else {
                input.push_str(GOOD);
                input.push('\n');
            }
        }
        let (s, found) = run(&input, 1 << 20);
        assert_eq!(s.events, 60_000);
        let lines: Vec<u64> = found
            .iter()
            .map(|f| f.split(':').next().unwrap()[5..].parse().unwrap())
            .collect();
        assert_eq!(lines, expected);
    }

    #[test]
    fn over_long_lines_are_skipped_not_buffered() {
        let long = format!(
            "{{\"event\":\"vnd.x\",\"vnd.pad\":\"{}\"}}",
            "x".repeat(BLOCK * 3)
        );
        let input = format!("{GOOD}\n{long}\n{GOOD}\n");
        let (s, found) = run(&input, 1000);
        assert_eq!((s.events, s.invalid), (3, 1));
        assert_eq!(found, ["line 2: ?: line longer than 1000 bytes, skipped"]);
        // Inside one block, and as the last line, the report keeps its place in the order.
        let short_long = format!(
            "{{\"event\":\"vnd.x\",\"vnd.pad\":\"{}\"}}",
            "x".repeat(2000)
        );
        let input = format!("{short_long}\nnot json\n{short_long}");
        let (s, found) = run(&input, 1000);
        assert_eq!((s.events, s.invalid), (3, 3));
        assert!(found[0].starts_with("line 1: ?: line longer"));
        assert!(found[1].starts_with("line 2: ?: not JSON"));
        assert!(found[2].starts_with("line 3: ?: line longer"));
    }

    #[test]
    fn last_line_without_newline() {
        let (s, found) = run(&format!("{GOOD}\n{{\"event\":\"Nope\"}}"), 1 << 20);
        assert_eq!((s.events, s.invalid), (2, 1));
        assert!(found[0].starts_with("line 2: Nope: unregistered event type"));
    }
}
