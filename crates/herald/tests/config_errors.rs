//! Configuration mistakes stop `herald serve` at start: it exits non-zero within seconds, with
//! a message that names the problem (the key and its section, or the sink whose URL does not
//! parse), instead of serving with a setting silently ignored or a sink that can never deliver.
#![allow(clippy::unwrap_used)]

mod common;

use common::{herald, run_bounded};
use std::time::{Duration, Instant};

/// Runs `herald serve --config` on `sections` (plus a data directory and listeners on free
/// ports, so a configuration wrongly accepted makes Herald serve until the time limit) and
/// returns what it printed on standard error.
fn refused(sections: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    let mut text = format!(
        "[store]\npath = \"{}\"\n",
        dir.path().join("data").display()
    );
    for proto in ["imap", "pop3", "lmtp", "http"] {
        if !sections.contains(&format!("[{proto}]")) {
            text.push_str(&format!("[{proto}]\nlisten = [\"127.0.0.1:0\"]\n"));
        }
    }
    text.push_str(sections);
    std::fs::write(&config, &text).unwrap();
    let started = Instant::now();
    let ran = run_bounded(
        herald().args(["serve", "--config"]).arg(&config),
        Duration::from_secs(15),
    );
    let status = ran
        .status
        .unwrap_or_else(|| panic!("herald serve accepted:\n{text}\n{ran}"));
    assert!(!status.success(), "herald serve accepted:\n{text}\n{ran}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "refused only after {:?}",
        started.elapsed()
    );
    assert!(
        !dir.path().join("data").exists(),
        "the configuration is checked before the data directory is touched"
    );
    ran.stderr
}

fn subscription(sink: &str) -> String {
    format!("[[subscription]]\nname = \"s\"\nsink = {sink}\n")
}

#[test]
fn a_sink_url_that_cannot_parse_stops_serve() {
    for (sink, names) in [
        (
            r#"{ type = "webhook", url = "http//hooks.example.net/h" }"#,
            &["`s`", "url"][..],
        ),
        (
            r#"{ type = "nats", url = "nats://[::1", subject = "herald" }"#,
            &["`s`", "nats", "URL"],
        ),
        (
            r#"{ type = "nats", url = "not a url", subject = "herald" }"#,
            &["`s`", "nats", "URL"],
        ),
        (
            r#"{ type = "mqtt", url = "mqtt://127.0.0.1:99999", topic = "t" }"#,
            &["`s`", "mqtt"],
        ),
        (
            r#"{ type = "amqp", url = "amqp://guest:guest@127.0.0.1:notaport/", exchange = "x" }"#,
            &["`s`", "amqp", "URL"],
        ),
        (
            r#"{ type = "redis", url = "redis//127.0.0.1", stream = "k" }"#,
            &["`s`", "redis", "URL"],
        ),
    ] {
        let err = refused(&subscription(sink));
        for name in names {
            assert!(err.contains(name), "{sink}: `{name}` not in: {err}");
        }
    }
}

#[test]
fn a_key_that_means_nothing_in_its_section_stops_serve() {
    let cases: Vec<(String, &[&str])> = vec![
        (
            "[imap]\nlisten = [\"127.0.0.1:0\"]\nlisne = []\n".into(),
            &["lisne"],
        ),
        (
            "[server]\nhostnme = \"mail.example.org\"\n".into(),
            &["hostnme"],
        ),
        (
            "[http]\nlisten = [\"127.0.0.1:0\"]\npublc_url = \"x\"\n".into(),
            &["publc_url"],
        ),
        (
            // LMTP has no login, so a password policy there means nothing.
            "[lmtp]\nlisten = [\"127.0.0.1:0\"]\nplaintext_auth = true\n".into(),
            &["[lmtp]", "plaintext_auth"],
        ),
        (
            "[pop3]\nlisten = [\"127.0.0.1:0\"]\ndetail_delivery = \"any\"\n".into(),
            &["[pop3]", "detail_delivery"],
        ),
        (
            // A webhook's secret on a broker sink.
            subscription(
                r#"{ type = "mqtt", url = "mqtt://127.0.0.1:1883", topic = "t", secret = "whsec_x" }"#,
            ),
            &["secret"],
        ),
        (
            format!(
                "{}retry = {{ initial = 5 }}\n",
                subscription(r#"{ type = "stdout" }"#)
            ),
            &["initial"],
        ),
        (
            format!(
                "{}content = {{ max_byte = 5 }}\n",
                subscription(r#"{ type = "stdout" }"#)
            ),
            &["max_byte"],
        ),
    ];
    for (sections, names) in cases {
        let err = refused(&sections);
        for name in names {
            assert!(err.contains(name), "{sections}: `{name}` not in: {err}");
        }
    }
}
