//! The `webhook` sink: HTTP POST per Standard Webhooks (DESIGN §6).
//!
//! **Request.** One event per request (the body is the encoded event), or, with `batch = N`
//! (N > 1), a JSON array of up to N events per request. Headers: `content-type:
//! application/json`, `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`
//! from [`crate::sign`] — one `v1,` signature per configured secret, so a receiver rotating keys
//! accepts either (`secret`, `secret_next`). Without a secret the request is sent unsigned.
//!
//! **`webhook-id`** names exactly one payload, because receivers deduplicate on it (Standard
//! Webhooks advice): for a single event it is the event's `vnd.herald.id` (`257`); for a JSON
//! array it is the first and last `vnd.herald.id` in the array (`257-262`, or `257-257` for an
//! array of one). Which events lie between two ids is fixed for a given subscription (the
//! outbox is gap-free and the filter is a pure function), so a batch re-sent after a failure or
//! a restart carries the same id only when it carries the same events; a retry that grew from
//! `[257]` to `[257..262]` gets a new id and is not dropped as a duplicate.
//!
//! **Ack point.** A 2xx answer is the receiver's acknowledgement: only then does `send` return
//! `Ok` and the dispatcher move the cursor. **410 Gone** means "stop sending" in the Standard
//! Webhooks convention: [`SinkError::Disable`], and the dispatcher disables the subscription
//! until an operator resumes it. Anything else — another status (redirects are not followed:
//! a POST must not silently turn into a GET elsewhere), a timeout, a refused connection, a TLS
//! failure — is [`SinkError::Retry`] and the dispatcher backs off.
//!
//! **Batches.** Without `batch`, one `send` may still carry several events; they are POSTed one by
//! one, in order, on one kept-alive connection, each only after the previous one was answered, and
//! the first failure fails the whole call. Several events per call amortise the dispatcher's outbox
//! read and its durable cursor commit, each of which costs more than a request to a fast receiver,
//! so a subscription catching up on a backlog spends its time on requests rather than on commits.
//! How many: as many as take about [`UNBATCHED_TIME`] at the time per request measured so far,
//! between [`UNBATCHED_MIN`] and [`UNBATCHED_MAX`]: a call stays short whatever the receiver's
//! speed (unless it slows down during one), so what waits for the call in flight — a replay of
//! parked events, deleting the subscription — does not wait long. After a failure the sink tells
//! the dispatcher how many events the receiver accepted ([`Sink::acknowledged`]); the cursor moves
//! past them and the retry starts at the refused one. A receiver may still see an event twice (an
//! answer lost, a crash before the cursor commit) — at-least-once, as DESIGN §6 promises; receivers
//! deduplicate on `webhook-id`.
//!
//! **Order.** Requests are never in flight concurrently: a receiver reads one subscription's
//! requests in outbox order, on whatever connection. Requests spread over several connections
//! could be read in another order (connections are served independently), and HTTP/1.1
//! pipelining on one connection is not offered by the client; one request at a time on a
//! kept-alive connection costs about 20 µs to a receiver on loopback (`herald bench
//! dispatch`), far below the cost per batch that long batches remove.
//!
//! **Timeout.** `timeout_ms` (default [`DEFAULT_TIMEOUT`]) bounds each whole request, connect
//! included, so a receiver that accepts and never answers cannot stall the subscription.
//!
//! **TLS.** `reqwest` with `default-features = false` and `rustls-no-provider` (plus `http2`):
//! rustls verifies servers with `rustls-platform-verifier`, which on Linux checks against the
//! system's root certificates, and uses the process-wide crypto provider — ring, installed by
//! [`ensure_crypto_provider`] if the binary has not done it yet. reqwest's default `rustls`
//! feature would pull in aws-lc-rs (a second crypto library and a C build), which STACK §1
//! rules out. (`cargo tree` still lists `openssl-probe`: a pure-Rust helper of
//! `rustls-native-certs` that finds the system's certificate files; it links no OpenSSL.)

use super::{BuildError, Outgoing, SendFuture, Sink, SinkError, redacted_url};
use crate::sign::Signer;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, USER_AGENT};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Default bound on one request, connect to last byte of the answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Fewest events one `send` takes when each event is its own request: the number before a
/// request was timed, and for a slow receiver.
pub const UNBATCHED_MIN: usize = 32;

/// Most events one `send` takes when each event is its own request.
pub const UNBATCHED_MAX: usize = 1000;

/// About how long one `send` of single-event requests takes, at the time per request measured
/// so far (see the module documentation).
pub const UNBATCHED_TIME: Duration = Duration::from_millis(250);

/// How many single-event requests fit in [`UNBATCHED_TIME`] at `per_request` (unknown: the
/// fewest), between [`UNBATCHED_MIN`] and [`UNBATCHED_MAX`].
fn unbatched_limit(per_request: Option<Duration>) -> usize {
    let Some(per_request) = per_request else {
        return UNBATCHED_MIN;
    };
    let fit = UNBATCHED_TIME.as_nanos() / per_request.as_nanos().max(1);
    usize::try_from(fit)
        .unwrap_or(usize::MAX)
        .clamp(UNBATCHED_MIN, UNBATCHED_MAX)
}

/// Largest `batch` accepted: bigger arrays make one failure re-send too much.
pub const MAX_BATCH: usize = 1000;

/// Installs ring as rustls's process-wide crypto provider unless one is installed already.
///
/// The binary does this once at start-up (STACK §1); calling it again is harmless, which lets
/// library code and tests that build HTTPS clients rely on it too.
pub fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err means another thread installed one first: that one is used, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// The host a webhook sink for `url` connects to, read by the parser the sink uses (WHATWG
/// URL rules): names in lower case, IP addresses in their canonical form (`0x7f.1` is
/// `127.0.0.1`), IPv6 addresses without brackets. For checks against allowed hosts.
pub fn target_host(url: &str) -> Result<String, BuildError> {
    let invalid = |what: String| BuildError::Invalid(format!("webhook sink: {what}"));
    let parsed = reqwest::Url::parse(url).map_err(|e| invalid(format!("url: {e}")))?;
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| invalid(format!("url {}: no host", redacted_url(&parsed))))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Ok(host.to_ascii_lowercase())
}

/// POSTs events to a URL.
pub struct WebhookSink {
    client: reqwest::Client,
    url: reqwest::Url,
    shown: String,
    signer: Option<Signer>,
    batch: Option<usize>,
    /// Moving average of the time a request took, answered or not.
    per_request: Option<Duration>,
    /// Events the receiver acknowledged in the current or last `send`.
    acknowledged: usize,
}

impl std::fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSink")
            .field("url", &self.shown)
            .field("signed", &self.signer.is_some())
            .field("batch", &self.batch)
            .finish()
    }
}

impl WebhookSink {
    /// A sink posting to `url`, signing with `secrets` (`whsec_…`, zero to two), sending up to
    /// `batch` events per request as a JSON array when `batch` > 1.
    pub fn new(
        url: &str,
        secrets: &[&str],
        batch: Option<usize>,
        timeout: Option<Duration>,
    ) -> Result<WebhookSink, BuildError> {
        let invalid = |what: String| BuildError::Invalid(format!("webhook sink: {what}"));
        let url = reqwest::Url::parse(url).map_err(|e| invalid(format!("url `{url}`: {e}")))?;
        let shown = redacted_url(&url);
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(format!(
                "url {shown}: the scheme must be http or https"
            )));
        }
        let signer = if secrets.is_empty() {
            None
        } else {
            Some(Signer::new(secrets).map_err(|e| invalid(e.to_string()))?)
        };
        let batch = match batch {
            None | Some(1) => None,
            Some(0) => return Err(invalid("batch must be at least 1".into())),
            Some(n) if n > MAX_BATCH => {
                return Err(invalid(format!("batch must be at most {MAX_BATCH}")));
            }
            Some(n) => Some(n),
        };
        let timeout = timeout.unwrap_or(DEFAULT_TIMEOUT);
        ensure_crypto_provider();
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("herald/", env!("CARGO_PKG_VERSION"))),
        );
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| invalid(format!("cannot build the HTTP client: {e}")))?;
        Ok(WebhookSink {
            client,
            url,
            shown,
            signer,
            batch,
            per_request: None,
            acknowledged: 0,
        })
    }

    /// POSTs one body and folds the time it took into the average.
    async fn post_timed(&mut self, id: &str, body: Vec<u8>) -> Result<(), SinkError> {
        let started = std::time::Instant::now();
        let result = self.post(id, body).await;
        let took = started.elapsed();
        self.per_request = Some(match self.per_request {
            None => took,
            Some(avg) => avg.mul_f64(0.875) + took.mul_f64(0.125),
        });
        result
    }

    /// POSTs one body under `webhook-id` `id`.
    async fn post(&self, id: &str, body: Vec<u8>) -> Result<(), SinkError> {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let mut request = self
            .client
            .post(self.url.clone())
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string());
        if let Some(signer) = &self.signer {
            let signed = signer.sign(id, timestamp, &body);
            request = request.header("webhook-signature", signed.signature);
        }
        let response = request.body(body).send().await.map_err(|e| {
            SinkError::Retry(format!("webhook {}: {}", self.shown, error_chain(&e)))
        })?;
        let status = response.status();
        if status.is_success() {
            // Read the (small) answer so the connection goes back to the pool; its content
            // does not matter, and failing to read it does not undo the acknowledgement.
            let _ = response.bytes().await;
            Ok(())
        } else if status == reqwest::StatusCode::GONE {
            Err(SinkError::Disable(format!(
                "webhook {} answered {status}",
                self.shown
            )))
        } else {
            Err(SinkError::Retry(format!(
                "webhook {} answered {status}",
                self.shown
            )))
        }
    }
}

/// An error with its causes (reqwest's own message is often just "error sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The `webhook-id` of a JSON-array body: `{first}-{last}` of its events' ids (see the module
/// documentation). `None` for an empty slice, which is never sent.
fn batch_id(events: &[Outgoing]) -> Option<String> {
    let first = events.first()?.id;
    let last = events.last()?.id;
    Some(format!("{first}-{last}"))
}

/// `[body, body, …]` from already-encoded JSON values.
fn json_array(events: &[Outgoing]) -> Vec<u8> {
    let mut out = Vec::with_capacity(events.iter().map(|o| o.body.len() + 1).sum::<usize>() + 2);
    out.push(b'[');
    for (i, o) in events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&o.body);
    }
    out.push(b']');
    out
}

impl Sink for WebhookSink {
    fn send<'a>(&'a mut self, batch: &'a [Outgoing]) -> SendFuture<'a> {
        Box::pin(async move {
            self.acknowledged = 0;
            let result = match self.batch {
                Some(n) => {
                    let mut result = Ok(());
                    for chunk in batch.chunks(n) {
                        let Some(id) = batch_id(chunk) else { continue };
                        result = self.post_timed(&id, json_array(chunk)).await;
                        if result.is_err() {
                            break;
                        }
                        self.acknowledged += chunk.len();
                    }
                    result
                }
                None => {
                    let mut result = Ok(());
                    for o in batch {
                        result = self.post_timed(&o.id.to_string(), o.body.clone()).await;
                        if result.is_err() {
                            break;
                        }
                        self.acknowledged += 1;
                    }
                    result
                }
            };
            if let Err(e) = &result {
                tracing::debug!(error = %e, "webhook sink: batch not acknowledged");
            }
            result
        })
    }

    fn max_batch(&self) -> usize {
        self.batch
            .unwrap_or_else(|| unbatched_limit(self.per_request))
    }

    fn acknowledged(&self) -> usize {
        self.acknowledged
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap as AxumHeaders, StatusCode};
    use axum::routing::post;
    use std::sync::{Arc, Mutex};

    const KEY_A: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const KEY_B: &str = "whsec_dGhpcyBpcyBhIHNlY29uZCBrZXkgZm9yIHRlc3Rz";

    /// What the test receiver saw, and what it answers.
    #[derive(Clone, Default)]
    struct Receiver {
        requests: Arc<Mutex<Vec<(AxumHeaders, Bytes)>>>,
        status: Arc<Mutex<Option<StatusCode>>>,
        delay: Arc<Mutex<Option<Duration>>>,
        /// A `webhook-id` answered 503.
        refuse: Arc<Mutex<Option<String>>>,
    }

    async fn hook(State(r): State<Receiver>, headers: AxumHeaders, body: Bytes) -> StatusCode {
        let delay = *r.delay.lock().unwrap();
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        let refused = r.refuse.lock().unwrap().as_deref() == headers["webhook-id"].to_str().ok();
        r.requests.lock().unwrap().push((headers, body));
        if refused {
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        r.status.lock().unwrap().unwrap_or(StatusCode::NO_CONTENT)
    }

    fn ids(r: &Receiver) -> Vec<String> {
        r.requests
            .lock()
            .unwrap()
            .iter()
            .map(|(h, _)| h["webhook-id"].to_str().unwrap().to_owned())
            .collect()
    }

    /// An axum receiver on 127.0.0.1:0; returns its URL.
    async fn receiver() -> (Receiver, String) {
        let r = Receiver::default();
        let app = Router::new()
            .route("/hook", post(hook))
            .with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (r, format!("http://{addr}/hook?token=s3cret"))
    }

    fn out(id: u64) -> Outgoing {
        Outgoing {
            id,
            event_type: "MessageNew".into(),
            user: Some("alice".into()),
            body: format!(r#"{{"event":"MessageNew","vnd.herald.id":{id}}}"#).into_bytes(),
        }
    }

    fn verifies(secret: &str, headers: &AxumHeaders, body: &[u8]) -> bool {
        let mut h = http::HeaderMap::new();
        for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            if let Some(v) = headers.get(name) {
                h.insert(name, v.to_str().unwrap().parse().unwrap());
            }
        }
        standardwebhooks::Webhook::new(secret)
            .unwrap()
            .verify(body, &h)
            .is_ok()
    }

    #[tokio::test]
    async fn one_signed_request_per_event_verifies_with_the_reference_library() {
        let (r, url) = receiver().await;
        let mut sink = WebhookSink::new(&url, &[KEY_A], None, None).unwrap();
        assert_eq!(sink.max_batch(), UNBATCHED_MIN);
        sink.send(&[out(7), out(8)]).await.unwrap();
        let seen = r.requests.lock().unwrap().clone();
        assert_eq!(seen.len(), 2);
        for ((headers, body), id) in seen.iter().zip([7u64, 8]) {
            assert_eq!(headers["webhook-id"], id.to_string().as_str());
            assert_eq!(headers["content-type"], "application/json");
            assert_eq!(body.as_ref(), out(id).body.as_slice());
            assert!(verifies(KEY_A, headers, body), "signature of {id}");
            assert!(!verifies(KEY_B, headers, body));
        }
    }

    #[tokio::test]
    async fn a_failure_tells_how_many_events_the_receiver_took_before_it() {
        let (r, url) = receiver().await;
        let mut sink = WebhookSink::new(&url, &[KEY_A], None, None).unwrap();
        *r.refuse.lock().unwrap() = Some("3".into());
        let batch: Vec<Outgoing> = (1..=5).map(out).collect();
        let err = sink.send(&batch).await.unwrap_err();
        assert!(matches!(err, SinkError::Retry(_)), "{err:?}");
        assert_eq!(
            ids(&r),
            ["1", "2", "3"],
            "in order, nothing after the refusal"
        );
        assert_eq!(sink.acknowledged(), 2);
        // The retry the dispatcher makes starts at the refused event.
        *r.refuse.lock().unwrap() = None;
        sink.send(&batch[2..]).await.unwrap();
        assert_eq!(ids(&r), ["1", "2", "3", "3", "4", "5"]);
        assert_eq!(sink.acknowledged(), 3);

        // With `batch`, whole arrays count.
        let (r, url) = receiver().await;
        let mut sink = WebhookSink::new(&url, &[KEY_A], Some(2), None).unwrap();
        *r.refuse.lock().unwrap() = Some("3-4".into());
        assert!(sink.send(&batch).await.is_err());
        assert_eq!(ids(&r), ["1-2", "3-4"]);
        assert_eq!(sink.acknowledged(), 2);
    }

    #[test]
    fn unbatched_calls_take_as_many_requests_as_fit_in_their_time() {
        assert_eq!(unbatched_limit(None), UNBATCHED_MIN, "nothing measured yet");
        assert_eq!(
            unbatched_limit(Some(Duration::from_micros(20))),
            UNBATCHED_MAX
        );
        assert_eq!(unbatched_limit(Some(Duration::from_millis(1))), 250);
        assert_eq!(
            unbatched_limit(Some(Duration::from_millis(100))),
            UNBATCHED_MIN,
            "a slow receiver gets short calls"
        );
        assert_eq!(unbatched_limit(Some(Duration::ZERO)), UNBATCHED_MAX);
    }

    #[tokio::test]
    async fn rotation_signs_with_both_secrets() {
        let (r, url) = receiver().await;
        let mut sink = WebhookSink::new(&url, &[KEY_A, KEY_B], None, None).unwrap();
        sink.send(&[out(1)]).await.unwrap();
        let (headers, body) = r.requests.lock().unwrap()[0].clone();
        assert_eq!(
            headers["webhook-signature"]
                .to_str()
                .unwrap()
                .matches("v1,")
                .count(),
            2
        );
        assert!(verifies(KEY_A, &headers, &body));
        assert!(verifies(KEY_B, &headers, &body));
    }

    #[tokio::test]
    async fn batches_are_json_arrays_named_after_their_first_and_last_event() {
        let (r, url) = receiver().await;
        let mut sink = WebhookSink::new(&url, &[KEY_A], Some(2), None).unwrap();
        assert_eq!(sink.max_batch(), 2);
        // The dispatcher never sends more than max_batch, but the sink copes if asked.
        sink.send(&[out(1), out(2), out(3)]).await.unwrap();
        let seen = r.requests.lock().unwrap().clone();
        assert_eq!(seen.len(), 2);
        let ids: Vec<&str> = seen
            .iter()
            .map(|(h, _)| h["webhook-id"].to_str().unwrap())
            .collect();
        assert_eq!(ids, ["1-2", "3-3"]);
        let first: serde_json::Value = serde_json::from_slice(&seen[0].1).unwrap();
        assert_eq!(first[0]["vnd.herald.id"], 1);
        assert_eq!(first[1]["vnd.herald.id"], 2);
        let second: serde_json::Value = serde_json::from_slice(&seen[1].1).unwrap();
        assert_eq!(second.as_array().unwrap().len(), 1);
        for (h, b) in &seen {
            assert!(verifies(KEY_A, h, b));
        }
    }

    #[tokio::test]
    async fn a_retried_batch_that_grew_gets_a_new_id_and_an_identical_one_keeps_it() {
        // A receiver that deduplicates on webhook-id: it keeps the first body per id.
        let (r, url) = receiver().await;
        let mut sink = WebhookSink::new(&url, &[KEY_A], Some(10), None).unwrap();
        // Before a restart only 257 was committed; after it, 257..=262 go out together.
        sink.send(&[out(257)]).await.unwrap();
        let grown: Vec<Outgoing> = (257..=262).map(out).collect();
        sink.send(&grown).await.unwrap();
        // The same batch again (its acknowledgement was lost).
        sink.send(&grown).await.unwrap();
        let seen = r.requests.lock().unwrap().clone();
        let ids: Vec<&str> = seen
            .iter()
            .map(|(h, _)| h["webhook-id"].to_str().unwrap())
            .collect();
        assert_eq!(ids, ["257-257", "257-262", "257-262"]);
        assert_eq!(seen[1].1, seen[2].1, "same id, same payload");
        let mut kept: std::collections::BTreeMap<&str, &Bytes> = Default::default();
        for (h, b) in &seen {
            assert!(verifies(KEY_A, h, b), "signature over the new id");
            kept.entry(h["webhook-id"].to_str().unwrap()).or_insert(b);
        }
        let mut delivered: Vec<u64> = Vec::new();
        for body in kept.values() {
            let v: serde_json::Value = serde_json::from_slice(body).unwrap();
            for e in v.as_array().unwrap() {
                delivered.push(e["vnd.herald.id"].as_u64().unwrap());
            }
        }
        delivered.sort_unstable();
        delivered.dedup();
        assert_eq!(
            delivered,
            (257..=262).collect::<Vec<_>>(),
            "nothing dropped"
        );
    }

    #[tokio::test]
    async fn unsigned_without_a_secret() {
        let (r, url) = receiver().await;
        let mut sink = WebhookSink::new(&url, &[], None, None).unwrap();
        sink.send(&[out(5)]).await.unwrap();
        let (headers, _) = r.requests.lock().unwrap()[0].clone();
        assert!(headers.get("webhook-signature").is_none());
        assert_eq!(headers["webhook-id"], "5");
        assert!(
            headers["webhook-timestamp"]
                .to_str()
                .unwrap()
                .parse::<i64>()
                .is_ok()
        );
    }

    #[tokio::test]
    async fn gone_disables_and_other_statuses_retry() {
        let (r, url) = receiver().await;
        let mut sink = WebhookSink::new(&url, &[KEY_A], None, None).unwrap();
        *r.status.lock().unwrap() = Some(StatusCode::GONE);
        let err = sink.send(&[out(1), out(2)]).await.unwrap_err();
        assert!(matches!(err, SinkError::Disable(_)), "{err:?}");
        assert_eq!(
            r.requests.lock().unwrap().len(),
            1,
            "stops at the first failure"
        );
        // The query (which may hold a credential) is not in the message.
        assert!(!err.to_string().contains("s3cret"), "{err}");
        for status in [
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::NOT_FOUND,
            StatusCode::MOVED_PERMANENTLY,
            StatusCode::TOO_MANY_REQUESTS,
        ] {
            *r.status.lock().unwrap() = Some(status);
            let err = sink.send(&[out(1)]).await.unwrap_err();
            assert!(matches!(err, SinkError::Retry(_)), "{status}: {err:?}");
            assert!(err.to_string().contains(status.as_str()), "{err}");
        }
        *r.status.lock().unwrap() = Some(StatusCode::ACCEPTED);
        sink.send(&[out(1)]).await.unwrap();
    }

    #[tokio::test]
    async fn a_receiver_that_does_not_answer_times_out() {
        let (r, url) = receiver().await;
        *r.delay.lock().unwrap() = Some(Duration::from_secs(5));
        let mut sink = WebhookSink::new(&url, &[], None, Some(Duration::from_millis(200))).unwrap();
        let started = std::time::Instant::now();
        let err = sink.send(&[out(1)]).await.unwrap_err();
        assert!(matches!(err, SinkError::Retry(_)), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn a_closed_port_is_retried() {
        // Bind then drop: nothing listens on the port any more.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut sink = WebhookSink::new(
            &format!("http://127.0.0.1:{port}/hook"),
            &[KEY_A],
            None,
            Some(Duration::from_secs(2)),
        )
        .unwrap();
        let err = sink.send(&[out(1)]).await.unwrap_err();
        assert!(matches!(err, SinkError::Retry(_)), "{err:?}");
    }

    #[tokio::test]
    async fn https_verifies_the_server_against_the_system_roots() {
        // A TLS server with a self-signed certificate is not trusted: the handshake fails and
        // the batch is retried, never delivered.
        ensure_crypto_provider();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let der = cert.cert.der().clone();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![der], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let handshakes = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&handshakes);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let ok = acceptor.accept(tcp).await.is_ok();
                seen.lock().unwrap().push(ok);
            }
        });
        let mut sink = WebhookSink::new(
            &format!("https://localhost:{port}/hook"),
            &[],
            None,
            Some(Duration::from_secs(5)),
        )
        .unwrap();
        let err = sink.send(&[out(1)]).await.unwrap_err();
        assert!(matches!(err, SinkError::Retry(_)), "{err:?}");
        assert!(
            err.to_string().to_lowercase().contains("certificate"),
            "{err}"
        );
    }

    #[test]
    fn the_target_host_is_the_one_the_sink_connects_to() {
        let host = |u: &str| target_host(u).unwrap();
        assert_eq!(
            host("https://u:p@Hooks.Example.ORG:8443/x?k=v"),
            "hooks.example.org"
        );
        assert_eq!(host("http://0x7f.1/hook"), "127.0.0.1");
        assert_eq!(host("http://2130706433/hook"), "127.0.0.1");
        assert_eq!(host("http://[::1]:9000/hook"), "::1");
        // Backslashes are path separators for http URLs, not part of the user info.
        assert_eq!(host("http://evil.test\\@good.example.org/"), "evil.test");
        assert!(target_host("not a url").is_err());
        assert!(target_host("file:///etc/passwd").is_err());
    }

    #[test]
    fn bad_configuration_is_refused() {
        let err = |r: Result<WebhookSink, BuildError>| r.unwrap_err().to_string();
        assert!(err(WebhookSink::new("not a url", &[], None, None)).contains("url"));
        assert!(err(WebhookSink::new("ftp://h/x", &[], None, None)).contains("scheme"));
        assert!(err(WebhookSink::new("http://h/x", &["hunter2"], None, None)).contains("whsec_"));
        assert!(err(WebhookSink::new("http://h/x", &[], Some(0), None)).contains("batch"));
        assert!(
            err(WebhookSink::new(
                "http://h/x",
                &[],
                Some(MAX_BATCH + 1),
                None
            ))
            .contains("batch")
        );
        let sink = WebhookSink::new("http://u:p@h/x?k=v", &[KEY_A], Some(1), None).unwrap();
        assert_eq!(sink.max_batch(), UNBATCHED_MIN);
        let shown = format!("{sink:?}");
        assert!(!shown.contains("k=v") && !shown.contains("u:p"), "{shown}");
    }
}
