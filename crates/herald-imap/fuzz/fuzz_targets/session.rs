//! The session state machine on arbitrary client bytes, against the in-memory store: no panic,
//! whatever the state. The first byte chooses a prefix (none, logged in, or logged in with INBOX
//! selected) so the fuzzer reaches every state quickly, and where the input is split into reads.

#![no_main]

use herald_imap::ImapConfig;
use herald_imap::session::memory::MemoryBackend;
use herald_imap::session::{Control, Peer, Session};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

const MSG: &[u8] = b"From: \"A, B\" <a@b.c>, g: x@y;, (c) d@e\r\nSubject: =?utf-8?q?x?=\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nbody\r\n--X\r\nContent-Type: text/plain\r\n\r\nhi\r\n--X--\r\n";

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let backend = MemoryBackend::new();
    backend.add_user("alice", "pw", false);
    backend.add_user("root", "pw", true);
    for _ in 0..3 {
        let _ = backend.deliver("alice", "INBOX", MSG);
    }
    let config = ImapConfig {
        max_literal: 4096,
        max_line: 1024,
        max_command: 8192,
        commands_per_second: u32::MAX,
        ..ImapConfig::default()
    };
    let peer = Peer {
        client: "192.0.2.1:1000".parse().expect("addr"),
        server: "192.0.2.2:143".parse().expect("addr"),
    };
    let mut session = Session::new(backend, Arc::new(config), peer, false, true);
    let prefix: &[u8] = match first % 3 {
        0 => b"",
        1 => b"p LOGIN alice pw\r\n",
        _ => b"p LOGIN alice pw\r\nq SELECT INBOX\r\n",
    };
    let split = usize::from(first / 3).min(rest.len());
    runtime().block_on(async {
        let mut out: Vec<u8> = Vec::new();
        for piece in [prefix, &rest[..split], &rest[split..]] {
            match session.input(piece, &mut out).await {
                Ok(Control::Continue) => {}
                Ok(Control::StartTls) => session.tls_started(),
                Ok(Control::Close) | Err(_) => break,
            }
            out.clear();
            if session.is_idling() {
                let _ = session.idle_wakeup(&mut out).await;
            }
        }
        session.end(herald_store::Disconnect::Abort).await;
    });
});
