//! The Prometheus text exposition (format 0.0.4) that `GET /metrics` serves.
//!
//! A scrape builds a [`Scrape`] from what only it can read cheaply at that moment (the
//! outbox's bounds, each subscription's cursor and lag, the readiness flag) and [`render`]s it
//! together with the process-wide instruments of [`crate::global`] and the registered command
//! tables. Encoding goes through prometheus-client's text encoder, so names, label escaping,
//! `_total` suffixes and cumulative `le` buckets are as Prometheus expects; a registry is built
//! per scrape around one collector, which keeps the instruments themselves free of any
//! registry (and of its locks).
//!
//! Metric names are a contract with dashboards (`examples/grafana-herald.json`) and alerts: the
//! README lists them, and changing one is a breaking change.

use crate::histogram::HistogramSnapshot;
use crate::{LoginResult, METRICS, Protocol, SubscriptionMetrics};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

/// Every metric family the exposition can contain, as its `# TYPE` line names it (counters
/// with their `_total`). The README lists them and the example dashboard uses only these.
pub const FAMILIES: &[&str] = &[
    "herald_build_info",
    "herald_ready",
    "herald_events_committed_total",
    "herald_events_pruned_total",
    "herald_outbox_head_id",
    "herald_outbox_oldest_id",
    "herald_outbox_events",
    "herald_event_log_cursor",
    "herald_store_commits_total",
    "herald_store_failed_commits_total",
    "herald_store_flushes_total",
    "herald_store_commit_duration_seconds",
    "herald_store_commit_batch_operations",
    "herald_subscription_state",
    "herald_subscription_cursor",
    "herald_subscription_lag_events",
    "herald_subscription_lag_seconds",
    "herald_subscription_parked",
    "herald_subscription_delivered_events_total",
    "herald_subscription_retries_total",
    "herald_subscription_parked_events_total",
    "herald_subscription_sink_duration_seconds",
    "herald_sessions",
    "herald_connections_total",
    "herald_connections_refused_total",
    "herald_logins_total",
    "herald_tls_certificate_reloads_total",
    "herald_commands_total",
    "herald_command_duration_seconds",
];

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The outbox as a scrape found it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxGauges {
    /// The highest event id committed.
    pub head: u64,
    /// The oldest event id still kept (`None`: the outbox is empty).
    pub oldest: Option<u64>,
    /// Events in the outbox.
    pub events: u64,
}

/// One subscription as a scrape found it.
#[derive(Debug, Clone)]
pub struct SubscriptionGauges {
    /// Its name (the `subscription` label).
    pub name: String,
    /// `active`, `paused` or `disabled`.
    pub state: &'static str,
    /// The last event id its sink acknowledged.
    pub cursor: u64,
    /// Events committed after the cursor.
    pub lag_events: u64,
    /// Age of the oldest event not yet acknowledged, in seconds (0 when caught up).
    pub lag_seconds: f64,
    /// Events parked now (in the store).
    pub parked_now: u64,
    /// Its delivery counters.
    pub counters: Arc<SubscriptionMetrics>,
}

/// What a scrape adds to the process-wide instruments.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    /// The server is ready (store open, listeners bound).
    pub ready: bool,
    /// The outbox, when it could be read.
    pub outbox: Option<OutboxGauges>,
    /// Every subscription.
    pub subscriptions: Vec<SubscriptionGauges>,
    /// The last event id the event log (`events.jsonl`) has made durable, when it runs.
    pub event_log_cursor: Option<u64>,
}

/// Renders the exposition.
pub fn render(scrape: Scrape) -> Result<String, fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Everything(scrape)));
    let mut out = String::with_capacity(16 * 1024);
    prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)?;
    Ok(out)
}

#[derive(Debug)]
struct Everything(Scrape);

/// A family of samples of one type; families without samples are left out.
fn family<L: EncodeLabelSet, V>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    kind: MetricType,
    samples: &[(L, V)],
    mut write: impl FnMut(&mut prometheus_client::encoding::MetricEncoder<'_>, &V) -> fmt::Result,
) -> fmt::Result {
    if samples.is_empty() {
        return Ok(());
    }
    let mut metric = enc.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in samples {
        let mut sample = metric.encode_family(labels)?;
        write(&mut sample, value)?;
    }
    Ok(())
}

fn counter<L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    samples: &[(L, u64)],
) -> fmt::Result {
    family(enc, name, help, MetricType::Counter, samples, |m, v| {
        m.encode_counter::<NoLabelSet, _, u64>(v, None)
    })
}

fn gauge<L: EncodeLabelSet, V: prometheus_client::encoding::EncodeGaugeValue>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    samples: &[(L, V)],
) -> fmt::Result {
    family(enc, name, help, MetricType::Gauge, samples, |m, v| {
        m.encode_gauge(v)
    })
}

fn histogram<L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    samples: &[(L, HistogramSnapshot)],
) -> fmt::Result {
    family(enc, name, help, MetricType::Histogram, samples, |m, h| {
        m.encode_histogram::<NoLabelSet>(h.sum, h.count, &h.buckets, None)
    })
}

/// No labels.
const NONE: [(&str, &str); 0] = [];

impl Collector for Everything {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let m = &METRICS;
        let s = &self.0;
        gauge(
            &mut enc,
            "herald_build_info",
            "Herald's version (always 1).",
            &[([("version", env!("CARGO_PKG_VERSION"))], 1u64)],
        )?;
        gauge(
            &mut enc,
            "herald_ready",
            "1 when the store is open and every listener is bound (as /readyz answers 200).",
            &[(NONE, u64::from(s.ready))],
        )?;

        // Events and the outbox.
        let mut events: Vec<([(&str, String); 1], u64)> = herald_events::EventType::REGISTERED
            .iter()
            .zip(&m.events)
            .map(|(t, n)| ([("type", t.as_str().to_owned())], n.load(Ordering::Relaxed)))
            .collect();
        events.extend(
            m.other_events
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .map(|(name, n)| ([("type", name.clone())], *n)),
        );
        counter(
            &mut enc,
            "herald_events_committed",
            "Events committed to the outbox by this process, by type.",
            &events,
        )?;
        counter(
            &mut enc,
            "herald_events_pruned",
            "Events removed from the outbox by retention.",
            &[(NONE, m.events_pruned.load(Ordering::Relaxed))],
        )?;
        if let Some(o) = s.outbox {
            gauge(
                &mut enc,
                "herald_outbox_head_id",
                "The highest event id (vnd.herald.id) committed.",
                &[(NONE, o.head)],
            )?;
            gauge(
                &mut enc,
                "herald_outbox_oldest_id",
                "The oldest event id still in the outbox (0 when it is empty).",
                &[(NONE, o.oldest.unwrap_or(0))],
            )?;
            gauge(
                &mut enc,
                "herald_outbox_events",
                "Events in the outbox.",
                &[(NONE, o.events)],
            )?;
        }
        if let Some(c) = s.event_log_cursor {
            gauge(
                &mut enc,
                "herald_event_log_cursor",
                "The last event id the event log (events.jsonl) has written and synced.",
                &[(NONE, c)],
            )?;
        }

        // The store writer.
        counter(
            &mut enc,
            "herald_store_commits",
            "Store transactions committed (each a group of operations; one fsync unless it holds only flag changes and \\Recent claims).",
            &[(NONE, m.commits.load(Ordering::Relaxed))],
        )?;
        counter(
            &mut enc,
            "herald_store_failed_commits",
            "Store transactions that failed as a whole.",
            &[(NONE, m.failed_commits.load(Ordering::Relaxed))],
        )?;
        counter(
            &mut enc,
            "herald_store_flushes",
            "WAL fsyncs of the flush thread for flag changes answered before their fsync, by result.",
            &[
                ([("result", "ok")], m.flushes[0].load(Ordering::Relaxed)),
                ([("result", "failed")], m.flushes[1].load(Ordering::Relaxed)),
            ],
        )?;
        histogram(
            &mut enc,
            "herald_store_commit_duration_seconds",
            "Time from BEGIN to the end of COMMIT (its fsync included) of each store transaction.",
            &[(NONE, m.commit_latency.snapshot())],
        )?;
        histogram(
            &mut enc,
            "herald_store_commit_batch_operations",
            "Operations group-committed in each store transaction.",
            &[(NONE, m.commit_ops.snapshot())],
        )?;

        // Subscriptions.
        let subs = &s.subscriptions;
        let by_sub = |v: &dyn Fn(&SubscriptionGauges) -> u64| -> Vec<([(&str, &str); 1], u64)> {
            subs.iter()
                .map(|g| ([("subscription", g.name.as_str())], v(g)))
                .collect()
        };
        gauge(
            &mut enc,
            "herald_subscription_state",
            "1 for the state each subscription is in (active, failing, paused or disabled).",
            &subs
                .iter()
                .map(|g| {
                    (
                        [("subscription", g.name.as_str()), ("state", g.state)],
                        1u64,
                    )
                })
                .collect::<Vec<_>>(),
        )?;
        gauge(
            &mut enc,
            "herald_subscription_cursor",
            "The last event id the subscription's sink acknowledged.",
            &by_sub(&|g| g.cursor),
        )?;
        gauge(
            &mut enc,
            "herald_subscription_lag_events",
            "Events committed after the subscription's cursor.",
            &by_sub(&|g| g.lag_events),
        )?;
        gauge(
            &mut enc,
            "herald_subscription_lag_seconds",
            "Age of the oldest event the subscription has not delivered (0 when caught up).",
            &subs
                .iter()
                .map(|g| ([("subscription", g.name.as_str())], g.lag_seconds))
                .collect::<Vec<_>>(),
        )?;
        gauge(
            &mut enc,
            "herald_subscription_parked",
            "Events parked (dead-lettered) now.",
            &by_sub(&|g| g.parked_now),
        )?;
        counter(
            &mut enc,
            "herald_subscription_delivered_events",
            "Events the subscription's sink acknowledged since Herald started.",
            &by_sub(&|g| g.counters.delivered.load(Ordering::Relaxed)),
        )?;
        counter(
            &mut enc,
            "herald_subscription_retries",
            "Sends to the sink that failed (each retried, or parked after park_after_secs).",
            &by_sub(&|g| g.counters.retries.load(Ordering::Relaxed)),
        )?;
        counter(
            &mut enc,
            "herald_subscription_parked_events",
            "Events parked since Herald started.",
            &by_sub(&|g| g.counters.parked.load(Ordering::Relaxed)),
        )?;
        histogram(
            &mut enc,
            "herald_subscription_sink_duration_seconds",
            "Time each send to the sink took, failed sends included.",
            &subs
                .iter()
                .map(|g| {
                    (
                        [("subscription", g.name.as_str())],
                        g.counters.sink_latency.snapshot(),
                    )
                })
                .collect::<Vec<_>>(),
        )?;

        // Sessions, connections and logins.
        let per_protocol = |v: &dyn Fn(usize) -> u64| -> Vec<([(&str, &str); 1], u64)> {
            Protocol::ALL
                .iter()
                .map(|p| ([("protocol", p.as_str())], v(*p as usize)))
                .filter(|(_, n)| *n > 0)
                .collect()
        };
        gauge(
            &mut enc,
            "herald_sessions",
            "Connections open now, by protocol.",
            &Protocol::ALL
                .iter()
                .filter(|p| **p != Protocol::Other)
                .map(|p| {
                    (
                        [("protocol", p.as_str())],
                        m.sessions[*p as usize].load(Ordering::Relaxed),
                    )
                })
                .collect::<Vec<_>>(),
        )?;
        counter(
            &mut enc,
            "herald_connections",
            "Connections accepted, by protocol.",
            &per_protocol(&|p| m.connections[p].load(Ordering::Relaxed)),
        )?;
        counter(
            &mut enc,
            "herald_connections_refused",
            "Connections refused because their client had too many open, by protocol.",
            &per_protocol(&|p| m.refused_connections[p].load(Ordering::Relaxed)),
        )?;
        let mut logins = Vec::new();
        for p in [Protocol::Imap, Protocol::Pop3, Protocol::Http] {
            for r in LoginResult::ALL {
                logins.push((
                    [("protocol", p.as_str()), ("result", r.as_str())],
                    m.logins[p as usize][r as usize].load(Ordering::Relaxed),
                ));
            }
        }
        counter(
            &mut enc,
            "herald_logins",
            "Login attempts by protocol and result (ok, failed, or refused by the limiter).",
            &logins,
        )?;
        counter(
            &mut enc,
            "herald_tls_certificate_reloads",
            "Certificate reloads on SIGHUP by result (failed: the old certificate stayed).",
            &[
                ([("result", "ok")], m.tls_reloads[0].load(Ordering::Relaxed)),
                (
                    [("result", "failed")],
                    m.tls_reloads[1].load(Ordering::Relaxed),
                ),
            ],
        )?;

        // Commands.
        let tables = m.commands.lock().unwrap_or_else(PoisonError::into_inner);
        let mut counts = Vec::new();
        let mut latencies = Vec::new();
        for t in tables.iter() {
            for (i, name) in t.names.iter().enumerate() {
                let n = t.counts[i].load(Ordering::Relaxed);
                if n == 0 {
                    continue;
                }
                let labels = [("protocol", t.protocol), ("command", *name)];
                counts.push((labels, n));
                if t.latency[i].count() > 0 {
                    latencies.push((labels, t.latency[i].snapshot()));
                }
            }
        }
        drop(tables);
        counter(
            &mut enc,
            "herald_commands",
            "Commands received, by protocol and command.",
            &counts,
        )?;
        histogram(
            &mut enc,
            "herald_command_duration_seconds",
            "Time Herald took to carry out each command, by protocol and command (LMTP: RCPT and DATA).",
            &latencies,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    crate::command_table!(static TABLE = ("imap", ["NOOP", "FETCH"]));

    #[test]
    fn renders_prometheus_text() {
        crate::register_commands(&TABLE);
        TABLE.record(1, Duration::from_millis(2));
        crate::global().login(Protocol::Imap, LoginResult::Ok);
        let sub = Arc::new(SubscriptionMetrics::default());
        sub.delivered(3);
        sub.sink_latency
            .observe_duration(Duration::from_micros(300));
        let text = render(Scrape {
            ready: true,
            outbox: Some(OutboxGauges {
                head: 10,
                oldest: Some(4),
                events: 7,
            }),
            subscriptions: vec![SubscriptionGauges {
                name: "audit\"x".into(),
                state: "active",
                cursor: 8,
                lag_events: 2,
                lag_seconds: 1.5,
                parked_now: 0,
                counters: sub,
            }],
            event_log_cursor: Some(10),
        })
        .unwrap();
        for line in [
            "# TYPE herald_events_committed_total counter",
            "herald_events_committed_total{type=\"MessageNew\"} ",
            "herald_ready 1",
            "herald_outbox_head_id 10",
            "herald_outbox_oldest_id 4",
            "herald_outbox_events 7",
            "herald_subscription_cursor{subscription=\"audit\\\"x\"} 8",
            "herald_subscription_lag_seconds{subscription=\"audit\\\"x\"} 1.5",
            "herald_subscription_delivered_events_total{subscription=\"audit\\\"x\"} 3",
            "herald_subscription_sink_duration_seconds_bucket{subscription=\"audit\\\"x\",le=\"0.0005\"} 1",
            "herald_commands_total{protocol=\"imap\",command=\"FETCH\"} 1",
            "herald_command_duration_seconds_bucket{protocol=\"imap\",command=\"FETCH\",le=\"0.0025\"} 1",
            "herald_command_duration_seconds_count{protocol=\"imap\",command=\"FETCH\"} 1",
            "herald_logins_total{protocol=\"imap\",result=\"ok\"} ",
            "herald_store_commit_duration_seconds_bucket{le=\"+Inf\"} ",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(
            !text.contains("command=\"NOOP\""),
            "unused commands are left out"
        );
    }

    // Its own table: tests run in parallel, and the other one counts TABLE's commands exactly.
    crate::command_table!(static OTHER = ("pop3", ["STAT"]));

    #[test]
    fn families_are_exactly_the_documented_ones() {
        crate::register_commands(&OTHER);
        OTHER.record(0, Duration::from_millis(1));
        let m = crate::global();
        drop(m.session_opened(Protocol::Other));
        m.connection_refused(Protocol::Other);
        let text = render(Scrape {
            ready: false,
            outbox: Some(OutboxGauges::default()),
            subscriptions: vec![SubscriptionGauges {
                name: "s".into(),
                state: "paused",
                cursor: 0,
                lag_events: 0,
                lag_seconds: 0.0,
                parked_now: 0,
                counters: Arc::default(),
            }],
            event_log_cursor: Some(0),
        })
        .unwrap();
        let mut types: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        types.sort_unstable();
        let mut families = FAMILIES.to_vec();
        families.sort_unstable();
        assert_eq!(types, families);
    }
}
