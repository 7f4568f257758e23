//! The LMTP session state machine on arbitrary client bytes, with the driver's answers played
//! by canned results: no panic, every reply a well-formed SMTP reply line (three digits, then a
//! space or a hyphen), one delivery outcome asked per accepted recipient, and no delivery larger
//! than the advertised SIZE. The first byte picks how the input is split into reads and which
//! recipients exist.

#![no_main]

use herald_lmtp::{Config, DeliveryError, Recipient, RecipientError, Session, Step};
use libfuzzer_sys::fuzz_target;
use std::collections::VecDeque;

const MAX: u64 = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let config = Config {
        hostname: "mail.example.org".into(),
        max_message_size: MAX,
        starttls_available: first & 1 == 1,
    };
    let mut session = Session::new(config, false);
    let chunk = usize::from(first >> 2).max(1);
    for piece in rest.chunks(chunk) {
        let mut queue: VecDeque<Step> = session.input(piece).into();
        while let Some(step) = queue.pop_front() {
            match step {
                Step::Reply(bytes) => {
                    let text = String::from_utf8_lossy(&bytes);
                    for line in text.split_terminator("\r\n") {
                        let b = line.as_bytes();
                        assert!(
                            b.len() >= 4
                                && b[..3].iter().all(u8::is_ascii_digit)
                                && (b[3] == b' ' || b[3] == b'-'),
                            "{text:?}"
                        );
                    }
                    assert!(bytes.ends_with(b"\r\n"), "{text:?}");
                }
                Step::ResolveRecipient {
                    address,
                    user,
                    rcpt_line,
                    ..
                } => {
                    let r = match (user.as_str(), first & 2 == 2) {
                        ("alice", _) => Ok(Recipient {
                            address,
                            account: user,
                            mailbox: "INBOX".into(),
                            rcpt_line,
                        }),
                        ("full", true) => Err(RecipientError::OverQuota { permanent: false }),
                        _ => Err(RecipientError::Unknown),
                    };
                    queue.extend(session.recipient_result(r));
                }
                Step::Deliver(delivery) => {
                    assert!(!delivery.recipients.is_empty());
                    assert!(delivery.message.len() as u64 <= MAX);
                    let results = delivery
                        .recipients
                        .iter()
                        .enumerate()
                        .map(|(i, _)| match i % 3 {
                            0 => Ok(()),
                            1 => Err(DeliveryError::OverQuota { permanent: true }),
                            _ => Err(DeliveryError::Temporary("busy".into())),
                        })
                        .collect();
                    queue.extend(session.delivery_result(results));
                }
                Step::StartTls => {}
                Step::Close => return,
            }
        }
    }
});
