//! A webhook receiver for the tests: records each request's `webhook-id` (the event's
//! `vnd.herald.id`) and answers 200; it can be stopped (its port closed) and started again on
//! the same port.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A webhook receiver that can be stopped (its port closed) and started again on the same port.
pub struct Receiver {
    pub port: u16,
    pub ids: Arc<Mutex<Vec<u64>>>,
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
    pub fn start(port: u16, ids: Arc<Mutex<Vec<u64>>>) -> Receiver {
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
    pub fn stop(mut self) -> (u16, Arc<Mutex<Vec<u64>>>) {
        self.running.store(false, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        (self.port, Arc::clone(&self.ids))
    }
}
