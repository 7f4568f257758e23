//! `herald bench …`: speed measurements users can repeat on their own machines.
//!
//! `bench check` generates a file of realistic events — every registered type, Herald's own
//! parameters, 1 % invalid lines — and times the `events check` engine on it, once with one
//! worker and once with all, reporting MB/s and the process's peak resident memory.

use super::check::{self, DovecotMode, Options};
use super::events::default_workers;
use crate::cli::BenchCheckArgs;
use anyhow::Context as _;
use herald_events::{Event, EventType, FlagNames, ImapUrl, Timestamp, UidSet, vnd};
use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::time::Instant;

/// The `i`-th generated event: a realistic mix over all 18 types.
pub fn sample_event(i: u64, now: Timestamp) -> Event {
    let t = EventType::REGISTERED[(i % 18) as usize].clone();
    let host = "mail.example.org";
    let user = format!("user{}", i % 5000);
    let uid = (i % 100_000) as u32 + 1;
    let validity = 1_732_345_678;
    let mut e = Event::new(t.clone());
    e.timestamp = Some(now);
    e.service = Some(if i.is_multiple_of(3) { "lmtp" } else { "imap" }.into());
    e.user = Some(user.clone());
    e.server_fqdn = Some(host.into());
    e.pid = Some(4242);
    let mailbox = ImapUrl::mailbox(host, Some(&user), "INBOX", Some(validity));
    e.uri = Some(mailbox.clone());
    use EventType::*;
    match t {
        MessageNew | MessageAppend => {
            e.uri = Some(ImapUrl::message(host, Some(&user), "INBOX", validity, uid));
            e.messages = Some(u64::from(uid));
            e.uidnext = Some(uid + 1);
            e.message_size = Some(2113 + i % 4000);
            e.modseq = Some(i + 1);
            if t == MessageNew {
                e.envelope = Some(format!(
                    "MAIL FROM:<sender{}@example.net> SIZE=2113\r\nRCPT TO:<{user}@example.org>\r\n",
                    i % 97
                ));
            } else {
                e.flag_names = Some(FlagNames::new(["\\Seen"]));
                e.set_extension(vnd::CAUSE, "append");
            }
        }
        MessageExpire | MessageExpunge | MessageRead | MessageTrash | FlagsSet | FlagsClear => {
            e.uidset = Some(UidSet::from_ranges([(uid, uid + 3), (uid + 10, uid + 10)]));
            e.uidnext = Some(uid + 20);
            e.messages = Some(u64::from(uid) + 11);
            if matches!(t, FlagsSet | FlagsClear) {
                e.flag_names = Some(FlagNames::new(["$Label1", "\\Flagged"]));
            }
        }
        QuotaExceed | QuotaWithin | QuotaChange => {
            e.uri = Some(ImapUrl::server(host, Some(&user)));
            e.disk_quota = Some(1 << 20);
            e.disk_used = Some(i % (1 << 20));
            e.max_messages = Some(100_000);
            e.messages = Some(i % 100_000);
        }
        Login | Logout => {
            e.uri = Some(ImapUrl::server(host, Some(&user)));
            e.server_domain = Some(host.into());
            e.server_port = Some(993);
            e.client_ip = Some(std::net::IpAddr::from([192, 0, 2, (i % 250) as u8]));
            e.client_port = Some(40_000 + (i % 20_000) as u16);
        }
        MailboxCreate | MailboxDelete | MailboxSubscribe | MailboxUnSubscribe => {
            let mb = ImapUrl::mailbox(host, Some(&user), format!("Projects/P{}", i % 300), Some(7));
            e.mailbox_id = Some(mb.clone());
            e.uri = Some(mb);
        }
        MailboxRename => {
            let mb = ImapUrl::mailbox(host, Some(&user), format!("Archive/{}", i % 300), Some(7));
            e.old_mailbox_id = Some(ImapUrl::mailbox(host, Some(&user), "Work", Some(7)));
            e.mailbox_id = Some(mb.clone());
            e.uri = Some(mb);
        }
        // Only the 18 registered types are sampled (`REGISTERED` above).
        LoginFailed | AccountCreate | AccountDelete | AccountDisable | AccountEnable
        | PasswordChange | MetadataChange | AclChange | Vendor(_) | Unregistered(_) => {}
    }
    e.set_herald_id(i + 1);
    e
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Runs `herald bench check`.
pub fn check(args: &BenchCheckArgs) -> anyhow::Result<ExitCode> {
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir(),
    };
    let path = dir.join(format!("herald-bench-{}.jsonl", std::process::id()));
    let target = args.mib << 20;
    eprintln!(
        "generating {} MiB of events in {} …",
        args.mib,
        path.display()
    );
    let started = Instant::now();
    let file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let now = Timestamp::now();
    let (mut written, mut lines, mut invalid) = (0u64, 0u64, 0u64);
    let mut last_pct = u64::MAX;
    while written < target {
        let line = if lines % 100 == 99 {
            invalid += 1;
            // A realistic fault: a flag event that reports \Recent.
            let mut e = sample_event(lines, now);
            e.event = EventType::FlagsSet;
            e.uidset = Some(UidSet::single(1));
            e.flag_names = Some(FlagNames::new(["\\Recent"]));
            e.to_json()
        } else {
            sample_event(lines, now).to_json()
        };
        w.write_all(line.as_bytes())?;
        w.write_all(b"\n")?;
        written += line.len() as u64 + 1;
        lines += 1;
        let pct = written * 100 / target.max(1);
        if pct / 10 != last_pct / 10 {
            eprint!("\r  {pct:3}%");
            last_pct = pct;
        }
    }
    w.flush()?;
    drop(w);
    eprintln!(
        "\r  {lines} events ({invalid} invalid), {:.1} MiB, generated in {:.1} s",
        written as f64 / (1 << 20) as f64,
        started.elapsed().as_secs_f64()
    );

    let mut results = Vec::new();
    for workers in [1, default_workers()] {
        let opts = Options {
            dovecot: DovecotMode::Auto,
            dovecot_host: "localhost".into(),
            max_line: 64 << 20,
            workers,
        };
        let file = std::fs::File::open(&path)?;
        let t = Instant::now();
        let summary = check::check_stream(file, &opts, |_| Ok(()))?;
        let secs = t.elapsed().as_secs_f64();
        anyhow::ensure!(
            summary.events == lines && summary.invalid == invalid,
            "check counted {} events / {} invalid, expected {lines} / {invalid}",
            summary.events,
            summary.invalid
        );
        let mbps = summary.bytes as f64 / 1e6 / secs;
        results.push((workers, mbps));
        println!(
            "events check, {workers} worker(s): {:.0} MB in {secs:.2} s = {mbps:.0} MB/s ({:.0} events/s)",
            summary.bytes as f64 / 1e6,
            summary.events as f64 / secs
        );
    }
    if let Some(kib) = peak_rss_kib() {
        println!("peak resident memory: {:.1} MiB", kib as f64 / 1024.0);
    }
    if !args.keep {
        std::fs::remove_file(&path)?;
    }
    Ok(ExitCode::SUCCESS)
}
