//! The POP3 session state machine on arbitrary client bytes, with the driver's answers played
//! by canned results: no panic in any state, every reply a well-formed POP3 line (`+OK`, `-ERR`,
//! a SASL `+ ` continuation, or a multi-line body ended by `.`), and every requested message
//! one the maildrop holds. The first byte picks how the input is split into reads and whether
//! the maildrop can be opened.

#![no_main]

use herald_pop3::wire::{Line, LineBuffer};
use herald_pop3::{AuthFailure, Config, Maildrop, MaildropError, MessageInfo, Session, Step};
use libfuzzer_sys::fuzz_target;
use std::collections::VecDeque;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let config = Config {
        hostname: "mail.example.org".into(),
        stls_available: first & 1 == 1,
        plaintext_auth: first & 2 == 2,
    };
    let maildrop = Maildrop {
        uidvalidity: 7,
        messages: (1..=4)
            .map(|uid| MessageInfo {
                uid,
                size: 100 * u64::from(uid),
            })
            .collect(),
    };
    let mut session = Session::new(config, first & 4 == 4);
    let mut lines = LineBuffer::new(255);
    let chunk = usize::from(first >> 3).max(1);
    for piece in rest.chunks(chunk) {
        lines.push(piece);
        while let Some(line) = lines.next_line() {
            let mut queue: VecDeque<Step> = match line {
                Line::Complete(l) => session.line(&l),
                Line::TooLong => session.line_too_long(),
            }
            .into();
            while let Some(step) = queue.pop_front() {
                match step {
                    Step::Reply(bytes) => {
                        assert!(bytes.ends_with(b"\r\n"), "{bytes:?}");
                        assert!(
                            bytes.starts_with(b"+OK")
                                || bytes.starts_with(b"-ERR")
                                || bytes.starts_with(b"+ ")
                                || bytes.ends_with(b".\r\n"),
                            "{:?}",
                            String::from_utf8_lossy(&bytes)
                        );
                    }
                    Step::Authenticate { password, .. } => {
                        let r = if password == "pw" {
                            Ok("alice".to_owned())
                        } else {
                            Err(AuthFailure::Credentials)
                        };
                        queue.extend(session.auth_result(r));
                    }
                    Step::OpenMaildrop { .. } => {
                        let r = if first & 8 == 8 {
                            Err(MaildropError::InUse)
                        } else {
                            Ok(maildrop.clone())
                        };
                        queue.extend(session.maildrop_result(r));
                    }
                    Step::SendMessage { uid, .. } => {
                        assert!(maildrop.messages.iter().any(|m| m.uid == uid), "uid {uid}");
                    }
                    Step::Commit { expunge } => {
                        for uid in &expunge {
                            assert!(maildrop.messages.iter().any(|m| m.uid == *uid));
                        }
                        queue.extend(session.commit_result(Ok(())));
                    }
                    Step::StartTls => {}
                    Step::Close => return,
                }
            }
        }
    }
});
