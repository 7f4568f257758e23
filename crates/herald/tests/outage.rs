//! DESIGN §6 under failure: the webhook receiver is down while 10,000 events are committed,
//! `herald serve` is killed with SIGKILL halfway and restarted, then the receiver comes back.
//! Every event must arrive, in outbox order, none lost; repeats (at-least-once) are allowed and
//! removed by id, as a receiver would.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Server, read_log};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A webhook receiver that can be stopped (its port closed) and started again on the same port.
struct Receiver {
    port: u16,
    ids: Arc<Mutex<Vec<u64>>>,
    running: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn serve_one(stream: TcpStream, ids: &Mutex<Vec<u64>>, running: &AtomicBool) {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .ok();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    while running.load(Ordering::SeqCst) {
        let (mut id, mut length) = (None, 0usize);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    if !running.load(Ordering::SeqCst) {
                        return;
                    }
                    continue;
                }
                Err(_) => return,
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("webhook-id") {
                    id = v.trim().parse::<u64>().ok();
                } else if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if let Some(id) = id {
            ids.lock().unwrap().push(id);
        }
        if writer
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

impl Receiver {
    fn start(port: u16, ids: Arc<Mutex<Vec<u64>>>) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let running = Arc::new(AtomicBool::new(true));
        let (r, i) = (Arc::clone(&running), Arc::clone(&ids));
        let thread = std::thread::spawn(move || {
            let mut workers = Vec::new();
            while r.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        let (r, i) = (Arc::clone(&r), Arc::clone(&i));
                        workers.push(std::thread::spawn(move || serve_one(s, &i, &r)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            for w in workers {
                let _ = w.join();
            }
        });
        Receiver {
            port,
            ids,
            running,
            thread: Some(thread),
        }
    }

    /// Closes the port and every connection.
    fn stop(mut self) -> (u16, Arc<Mutex<Vec<u64>>>) {
        self.running.store(false, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        (self.port, Arc::clone(&self.ids))
    }
}

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
