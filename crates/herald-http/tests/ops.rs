//! The operators' routes over loopback: `/healthz`, `/readyz` (no authentication; readiness
//! follows the binary's flag and the store) and `/metrics` (administrators only unless
//! `metrics_public`), with the gauges a scrape reads from the store and the dispatcher.
#![allow(clippy::unwrap_used)]

use herald_http::{HttpConfig, HttpState};
use herald_net::AuthLimiter;
use herald_notify::dispatch::Dispatcher;
use herald_store::{SessionContext, Store, StoreConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const ROOT_TOKEN: &str = "root-token-0123456789";
const ALICE_TOKEN: &str = "alice-token-0123456789";

struct Server {
    _dir: tempfile::TempDir,
    store: Store,
    addr: SocketAddr,
    state: HttpState,
    dispatcher: Arc<Dispatcher>,
    shutdown: CancellationToken,
}

async fn start(extra: &str) -> Server {
    herald_notify::sink::webhook::ensure_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path().join("data"));
    config.durable = false;
    let store = Store::open(config).await.unwrap();
    let admin = SessionContext::admin_cli();
    store
        .add_user(&admin, "alice", "alice-pw", false)
        .await
        .unwrap();
    store
        .add_user(&admin, "root", "root-pw", true)
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let subscription: herald_notify::SubscriptionConfig = toml::from_str(&format!(
        "name = \"audit\"\nsink = {{ type = \"file\", path = {:?} }}\n",
        dir.path().join("audit.jsonl").display().to_string()
    ))
    .unwrap();
    let dispatcher = Dispatcher::start(store.clone(), vec![subscription], shutdown.clone())
        .await
        .unwrap();
    let http: HttpConfig = toml::from_str(&format!(
        "{extra}\ntokens = [{{ user = \"root\", token = \"{ROOT_TOKEN}\" }}, \
         {{ user = \"alice\", token = \"{ALICE_TOKEN}\" }}]\n"
    ))
    .unwrap();
    let state = HttpState::new(
        store.clone(),
        Some(Arc::clone(&dispatcher)),
        &http,
        Arc::new(AuthLimiter::default()),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(herald_http::serve(
        listener,
        state.clone(),
        shutdown.clone(),
    ));
    Server {
        _dir: dir,
        store,
        addr,
        state,
        dispatcher,
        shutdown,
    }
}

impl Server {
    async fn get(&self, path: &str, token: Option<&str>) -> (u16, String, String) {
        let mut request = reqwest::Client::new().get(format!("http://{}{path}", self.addr));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let kind = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, kind, response.text().await.unwrap())
    }
}

/// The value of the sample line that starts with `prefix` (name and labels).
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix) && l[prefix.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn health_and_readiness_need_no_credentials() {
    let s = start("").await;
    let (status, _, body) = s.get("/healthz", None).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    // Not ready until the binary says every listener is bound.
    let (status, _, body) = s.get("/readyz", None).await;
    assert_eq!(status, 503, "{body}");
    s.state.readiness().set(true);
    let (status, _, body) = s.get("/readyz", None).await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    // A closed store is not ready, whatever the flag says; the process is still alive.
    s.store.close().await;
    let (status, _, body) = s.get("/readyz", None).await;
    assert_eq!(status, 503);
    assert!(body.contains("store"), "{body}");
    assert_eq!(s.get("/healthz", None).await.0, 200);
    s.shutdown.cancel();
}

#[tokio::test]
async fn metrics_are_for_administrators_and_show_the_outbox_and_subscriptions() {
    let s = start("").await;
    s.state.readiness().set(true);
    assert_eq!(s.get("/metrics", None).await.0, 401);
    assert_eq!(s.get("/metrics", Some(ALICE_TOKEN)).await.0, 403);
    let alice = SessionContext::user("imap", "alice");
    for name in ["a", "b", "c"] {
        s.store.create_mailbox(&alice, name, None).await.unwrap();
    }
    let head = s.store.last_event_id().await.unwrap();
    // Wait until the subscription has delivered them.
    for _ in 0..200 {
        if s.dispatcher.get("audit").await.unwrap().cursor == head {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, kind, text) = s.get("/metrics", Some(ROOT_TOKEN)).await;
    assert_eq!(status, 200, "{text}");
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    let h = head as f64;
    assert_eq!(sample(&text, "herald_ready"), Some(1.0));
    assert_eq!(sample(&text, "herald_outbox_head_id"), Some(h));
    assert_eq!(sample(&text, "herald_outbox_oldest_id"), Some(1.0));
    assert_eq!(sample(&text, "herald_outbox_events"), Some(h));
    let sub = "{subscription=\"audit\"}";
    assert_eq!(
        sample(&text, &format!("herald_subscription_cursor{sub}")),
        Some(h)
    );
    assert_eq!(
        sample(&text, &format!("herald_subscription_lag_events{sub}")),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!("herald_subscription_delivered_events_total{sub}")
        ),
        Some(3.0)
    );
    assert!(
        sample(
            &text,
            &format!("herald_subscription_sink_duration_seconds_count{sub}")
        )
        .unwrap()
            >= 1.0
    );
    assert_eq!(
        sample(
            &text,
            "herald_subscription_state{subscription=\"audit\",state=\"active\"}"
        ),
        Some(1.0)
    );
    assert!(
        sample(
            &text,
            "herald_events_committed_total{type=\"MailboxCreate\"}"
        )
        .unwrap()
            >= 3.0
    );
    assert!(sample(&text, "herald_store_commit_duration_seconds_count").unwrap() >= 3.0);
    // HTTP logins are counted, the scrape's own included.
    assert!(
        sample(
            &text,
            "herald_logins_total{protocol=\"http\",result=\"ok\"}"
        )
        .unwrap()
            >= 1.0
    );

    // A paused subscription falls behind: lag in events and in seconds.
    s.dispatcher.pause("audit").await.unwrap();
    s.store.create_mailbox(&alice, "d", None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, _, text) = s.get("/metrics", Some(ROOT_TOKEN)).await;
    assert_eq!(
        sample(&text, &format!("herald_subscription_lag_events{sub}")),
        Some(1.0)
    );
    let lag = sample(&text, &format!("herald_subscription_lag_seconds{sub}")).unwrap();
    assert!((1.0..60.0).contains(&lag), "{lag}");
    assert_eq!(
        sample(
            &text,
            "herald_subscription_state{subscription=\"audit\",state=\"paused\"}"
        ),
        Some(1.0)
    );
    s.shutdown.cancel();
}

#[tokio::test]
async fn metrics_public_opens_the_route() {
    let s = start("metrics_public = true").await;
    let (status, _, text) = s.get("/metrics", None).await;
    assert_eq!(status, 200);
    assert!(
        text.contains("# TYPE herald_outbox_head_id gauge"),
        "{text}"
    );
    assert_eq!(sample(&text, "herald_ready"), Some(0.0));
    s.shutdown.cancel();
}
