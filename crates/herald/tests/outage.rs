//! DESIGN §6 under failure: the webhook receiver is down while 10,000 events are committed,
//! `herald serve` is killed with SIGKILL halfway and restarted, then the receiver comes back.
//! Every event must arrive, in outbox order, none lost; repeats (at-least-once) are allowed and
//! removed by id, as a receiver would. And a file sink and a webhook through a dozen SIGKILLs
//! under LMTP load: every line of the file an event, nothing lost, nothing out of order.
#![allow(clippy::unwrap_used)]

mod common;

use common::receiver::Receiver;
use common::{Server, read_log};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[test]
fn ten_thousand_events_survive_a_receiver_outage_and_a_sigkill() {
    const N: usize = 10_000;
    let ids = Arc::new(Mutex::new(Vec::new()));
    let receiver = Receiver::start(0, Arc::clone(&ids));
    let hook = format!("http://127.0.0.1:{}/hook", receiver.port);
    let extra = format!(
        "[[subscription]]\nname = \"hook\"\nevents = [\"MessageNew\"]\n\
         retry = {{ initial_ms = 20, max_ms = 300 }}\n\
         sink = {{ type = \"webhook\", url = \"{hook}\", secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\" }}\n"
    );
    let server = Server::start(&extra);
    server.add_user("olga", "pw");
    // The receiver goes away before the load starts.
    let (port, ids) = receiver.stop();
    let lmtp = server.port("lmtp").to_string();
    server.python("lmtp_bulk.py", &[&lmtp, "olga", &(N / 2).to_string()]);
    let (dir, data) = server.kill();

    let server = Server::start_in(dir, &extra);
    let lmtp = server.port("lmtp").to_string();
    server.python("lmtp_bulk.py", &[&lmtp, "olga", &(N / 2).to_string()]);
    assert!(
        ids.lock().unwrap().is_empty(),
        "nothing could be delivered while the receiver was down"
    );

    let receiver = Receiver::start(port, Arc::clone(&ids));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut seen = ids.lock().unwrap().clone();
        seen.sort_unstable();
        seen.dedup();
        if seen.len() >= N {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {N} events arrived",
            seen.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    receiver.stop();
    let arrived = ids.lock().unwrap().clone();
    // In order: after removing repeats, the ids are exactly the outbox's MessageNew ids.
    let mut first_seen = Vec::with_capacity(N);
    let mut seen = std::collections::HashSet::new();
    for id in &arrived {
        if seen.insert(*id) {
            first_seen.push(*id);
        }
    }
    let committed: Vec<u64> = read_log(&data.join("events.jsonl"))
        .iter()
        .filter(|e| e.event == herald_events::EventType::MessageNew)
        .map(|e| e.herald_id().unwrap())
        .collect();
    assert_eq!(committed.len(), N);
    assert_eq!(first_seen, committed, "every event, once per id, in order");
    eprintln!(
        "outage test: {N} events delivered, {} requests (repeats after the kill: {})",
        arrived.len(),
        arrived.len() - N
    );
}

/// Reads one SMTP reply (to its last line); `None` when the connection is gone.
fn reply(reader: &mut BufReader<TcpStream>) -> Option<String> {
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line.len() < 4 || line.as_bytes()[3] != b'-' {
            return Some(line);
        }
    }
}

/// Delivers messages to `user` over LMTP, one after another, until the server goes away.
fn lmtp_load(addr: std::net::SocketAddr, user: &str) {
    let Ok(stream) = TcpStream::connect(addr) else {
        return;
    };
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut say = |text: &str, reader: &mut BufReader<TcpStream>| -> Option<String> {
        writer.write_all(text.as_bytes()).ok()?;
        reply(reader)
    };
    if reply(&mut reader).is_none() || say("LHLO load\r\n", &mut reader).is_none() {
        return;
    }
    for n in 0.. {
        let steps = [
            "MAIL FROM:<load@example.net>\r\n".to_owned(),
            format!("RCPT TO:<{user}@example.org>\r\n"),
            "DATA\r\n".to_owned(),
            format!("Subject: load {n}\r\n\r\nbody {n}\r\n.\r\n"),
        ];
        for step in &steps {
            if say(step, &mut reader).is_none() {
                return;
            }
        }
    }
}

#[test]
fn a_file_sink_and_a_webhook_stay_whole_through_repeated_kills_under_load() {
    const KILLS: u64 = 12;
    let dir = tempfile::tempdir().unwrap();
    let sink = dir.path().join("sink.jsonl");
    let ids = Arc::new(Mutex::new(Vec::new()));
    let receiver = Receiver::start(0, Arc::clone(&ids));
    let extra = format!(
        "[[subscription]]\nname = \"file\"\nsink = {{ type = \"file\", path = \"{}\" }}\n\
         [[subscription]]\nname = \"hook\"\nevents = [\"MessageNew\"]\n\
         retry = {{ initial_ms = 20, max_ms = 300 }}\n\
         sink = {{ type = \"webhook\", url = \"http://127.0.0.1:{}/hook\" }}\n",
        sink.display(),
        receiver.port
    );
    let mut dir = dir;
    let mut server = Server::start_in(dir, &extra);
    server.add_user("kim", "pw");
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    for _ in 0..KILLS {
        let lmtp = server.addrs["lmtp"];
        let load = std::thread::spawn(move || lmtp_load(lmtp, "kim"));
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(150 + (seed >> 33) % 350));
        let (d, _) = server.kill();
        load.join().unwrap();
        dir = d;
        server = Server::start_in(dir, &extra);
    }
    // Let both sinks catch up with the outbox, then stop cleanly.
    let head: u64 = server
        .admin(&["events", "tail"])
        .lines()
        .last()
        .map(|l| {
            herald_events::Event::from_json(l)
                .unwrap()
                .herald_id()
                .unwrap()
        })
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while read_log(&sink).last().and_then(|e| e.herald_id()) < Some(head) {
        assert!(Instant::now() < deadline, "the file sink did not catch up");
        std::thread::sleep(Duration::from_millis(50));
    }
    let data = server.data.clone();
    let (status, _dir) = server.stop();
    assert!(status.success());
    receiver.stop();

    let committed = read_log(&data.join("events.jsonl"));
    assert_eq!(committed.last().and_then(|e| e.herald_id()), Some(head));
    // The file: every line an event (read_log panics on one that is not), every event there,
    // in order once repeats after a kill are removed.
    let mut in_file = Vec::new();
    for id in read_log(&sink).iter().map(|e| e.herald_id().unwrap()) {
        if in_file.last().is_none_or(|last| id > *last) {
            in_file.push(id);
        } else {
            assert!(in_file.contains(&id), "event {id} arrived out of order");
        }
    }
    let all: Vec<u64> = committed.iter().map(|e| e.herald_id().unwrap()).collect();
    assert_eq!(in_file, all, "the file holds every committed event");
    // The webhook: every MessageNew, first arrivals in outbox order.
    let mut first_seen = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for id in ids.lock().unwrap().iter() {
        if seen.insert(*id) {
            first_seen.push(*id);
        }
    }
    let news: Vec<u64> = committed
        .iter()
        .filter(|e| e.event == herald_events::EventType::MessageNew)
        .map(|e| e.herald_id().unwrap())
        .collect();
    assert!(
        news.len() > KILLS as usize,
        "the load delivered too little: {}",
        news.len()
    );
    assert_eq!(
        first_seen, news,
        "every MessageNew reached the webhook, in order"
    );
    eprintln!(
        "kill test: {KILLS} kills, {} events committed, {} MessageNew, {} webhook requests",
        all.len(),
        news.len(),
        ids.lock().unwrap().len()
    );
}
