//! The dashboard in a real browser: headless Chromium, driven over the Chrome DevTools Protocol
//! (a WebSocket), loads `GET /` from the real `herald serve`, is challenged for a password and
//! logs in as an administrator, sees a message delivered over LMTP appear in the live table,
//! shows a mailbox name made of markup as text, filters the table, pauses and resumes a
//! subscription with its buttons (each change checked through the JSON API too), sends a test
//! event and replays from an id with them (checked in the subscription's file), and runs
//! without a script error or a Content-Security-Policy violation. The test keeps a screenshot
//! of the page at `target/dashboard.png` and prints its path.
//!
//! Runs only when Chromium is installed (Debian's `chromium-headless-shell` or `chromium`;
//! `.ci/install` installs the first); otherwise it says why and passes, except under `CI=true`,
//! where it fails. `DASHBOARD_SCREENSHOT=PATH` writes the screenshot there instead.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine as _;
use common::Server;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

const ADMIN: (&str, &str) = ("root", "root-pw");

/// The Chromium binary, if one is installed; under CI=true its absence fails the test.
fn chromium() -> Option<PathBuf> {
    for name in ["chromium-headless-shell", "chromium"] {
        for dir in ["/usr/bin", "/usr/local/bin"] {
            let p = Path::new(dir).join(name);
            if p.exists() {
                return Some(p);
            }
        }
    }
    let missing =
        "Chromium is not installed (Debian package chromium-headless-shell; see .ci/install)";
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{missing} (CI=true): run .ci/install"
    );
    eprintln!("skipping: {missing}");
    None
}

/// A headless browser with its DevTools endpoint; killed when dropped.
struct Browser {
    child: Child,
    ws: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn launch(binary: &Path) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1400,1100",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own process group: Debian's launcher is a shell script that runs the browser
            // as a child, so killing the script alone would leave the browser running.
            .process_group(0)
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if let Some(url) = line.trim().strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.to_owned());
                }
                line.clear();
            }
        });
        let ws = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("Chromium did not print its DevTools address");
        Browser {
            child,
            ws,
            _profile: profile,
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole group: the launcher, the browser and its zygote and renderers.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// A minimal DevTools client: commands by id, and a reader task that answers the page's
/// password challenges and keeps what the page reported (exceptions, console errors, CSP).
struct Cdp {
    out: mpsc::UnboundedSender<Message>,
    pending: Pending,
    next: Arc<AtomicU64>,
    session: Option<String>,
    problems: Arc<Mutex<Vec<String>>>,
    challenges: Arc<AtomicUsize>,
}

fn send(
    out: &mpsc::UnboundedSender<Message>,
    next: &AtomicU64,
    session: Option<&str>,
    method: &str,
    params: Value,
) -> u64 {
    let id = next.fetch_add(1, Ordering::Relaxed);
    let mut m = json!({ "id": id, "method": method, "params": params });
    if let Some(s) = session {
        m["sessionId"] = s.into();
    }
    out.send(Message::Text(m.to_string().into())).unwrap();
    id
}

impl Cdp {
    async fn connect(url: &str) -> Cdp {
        let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let (mut sink, mut stream) = socket.split();
        let (out, mut rx) = mpsc::unbounded_channel::<Message>();
        tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
        });
        let pending: Pending = Arc::default();
        let next = Arc::new(AtomicU64::new(1));
        let problems: Arc<Mutex<Vec<String>>> = Arc::default();
        let challenges = Arc::new(AtomicUsize::new(0));
        {
            let (pending, next, problems, challenges, out) = (
                pending.clone(),
                next.clone(),
                problems.clone(),
                challenges.clone(),
                out.clone(),
            );
            tokio::spawn(async move {
                while let Some(Ok(m)) = stream.next().await {
                    let Message::Text(text) = m else { continue };
                    let v: Value = serde_json::from_str(&text).unwrap();
                    if let Some(id) = v["id"].as_u64() {
                        if let Some(tx) = pending.lock().unwrap().remove(&id) {
                            let _ = tx.send(v);
                        }
                        continue;
                    }
                    let session = v["sessionId"].as_str();
                    let p = &v["params"];
                    match v["method"].as_str().unwrap_or("") {
                        "Fetch.requestPaused" => {
                            send(
                                &out,
                                &next,
                                session,
                                "Fetch.continueRequest",
                                json!({ "requestId": p["requestId"] }),
                            );
                        }
                        "Fetch.authRequired" => {
                            // The browser's password prompt, answered as a user would.
                            challenges.fetch_add(1, Ordering::Relaxed);
                            send(
                                &out,
                                &next,
                                session,
                                "Fetch.continueWithAuth",
                                json!({
                                    "requestId": p["requestId"],
                                    "authChallengeResponse": {
                                        "response": "ProvideCredentials",
                                        "username": ADMIN.0,
                                        "password": ADMIN.1,
                                    },
                                }),
                            );
                        }
                        "Runtime.exceptionThrown" => problems
                            .lock()
                            .unwrap()
                            .push(format!("exception: {}", p["exceptionDetails"])),
                        "Runtime.consoleAPICalled" if p["type"] == "error" => problems
                            .lock()
                            .unwrap()
                            .push(format!("console.error: {}", p["args"])),
                        "Log.entryAdded" => {
                            let text = p["entry"]["text"].as_str().unwrap_or("");
                            if text.contains("Content Security Policy")
                                || p["entry"]["source"] == "security"
                            {
                                problems.lock().unwrap().push(format!("log: {text}"));
                            }
                        }
                        _ => {}
                    }
                }
            });
        }
        Cdp {
            out,
            pending,
            next,
            session: None,
            problems,
            challenges,
        }
    }

    async fn call(&self, method: &str, params: Value) -> Value {
        let (tx, rx) = oneshot::channel();
        // Registered before sending, so the answer cannot arrive first.
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.pending.lock().unwrap().insert(id, tx);
        let mut m = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = &self.session {
            m["sessionId"] = s.clone().into();
        }
        self.out.send(Message::Text(m.to_string().into())).unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .unwrap_or_else(|_| panic!("{method}: no answer"))
            .unwrap();
        assert!(answer.get("error").is_none(), "{method}: {answer}");
        answer["result"].clone()
    }

    /// Evaluates `expression` in the page (awaiting a promise); its value.
    async fn eval(&self, expression: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            )
            .await;
        assert!(r.get("exceptionDetails").is_none(), "{expression}: {r}");
        r["result"]["value"].clone()
    }

    /// Waits until `expression` is true in the page.
    async fn wait_until(&self, what: &str, expression: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.eval(expression).await == json!(true) {
                return;
            }
            if Instant::now() > deadline {
                let body = self
                    .eval("document.body ? document.body.innerText : ''")
                    .await;
                panic!(
                    "timed out waiting for {what}; the page shows:\n{}",
                    body.as_str().unwrap_or("")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the element `selector` names with the mouse, at its centre.
    async fn click(&self, selector: &str) {
        let at = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({sel}); if (!e) return null; \
                 e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); \
                 return [r.x + r.width / 2, r.y + r.height / 2]; }})()",
                sel = json!(selector)
            ))
            .await;
        let (x, y) = (
            at[0].as_f64().unwrap_or_else(|| panic!("no {selector}")),
            at[1].as_f64().unwrap(),
        );
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
            )
            .await;
        }
    }
}

/// `GET path` with the administrator's password; the status and the body.
fn api_get(server: &Server, path: &str) -> (u16, String) {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", ADMIN.0, ADMIN.1));
    let mut s = std::net::TcpStream::connect(server.addrs["http"]).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {auth}\r\nConnection: close\r\n\r\n",
        server.addrs["http"]
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn subscription_state(server: &Server, name: &str) -> String {
    let (status, body) = api_get(server, &format!("/subscriptions/{name}"));
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["state"].as_str().unwrap().to_owned()
}

fn screenshot_path() -> PathBuf {
    if let Some(p) = std::env::var_os("DASHBOARD_SCREENSHOT") {
        return PathBuf::from(p);
    }
    // CARGO_TARGET_TMPDIR is `target/tmp`: the screenshot goes next to it.
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("dashboard.png")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_live_events_and_drives_subscriptions_in_chromium() {
    let Some(binary) = chromium() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let server = Server::start(&format!(
        "[[subscription]]\nname = \"audit\"\nsink = {{ type = \"file\", path = \"{}\" }}\n\
         [[subscription]]\nname = \"new-mail\"\nevents = [\"MessageNew\"]\n\
         sink = {{ type = \"file\", path = \"{}\" }}\n",
        audit.display(),
        dir.path().join("new-mail.jsonl").display()
    ));
    server.add_user("alice", "alice-pw");
    server.admin(&["user", "add", ADMIN.0, "--password", ADMIN.1, "--admin"]);
    server.admin(&[
        "quota",
        "set",
        "alice",
        "--storage-kb",
        "64",
        "--messages",
        "10",
    ]);
    let url = format!("http://{}/", server.addrs["http"]);

    let browser = Browser::launch(&binary);
    let mut cdp = Cdp::connect(&browser.ws).await;
    let target = cdp
        .call("Target.createTarget", json!({ "url": "about:blank" }))
        .await;
    let attached = cdp
        .call(
            "Target.attachToTarget",
            json!({ "targetId": target["targetId"], "flatten": true }),
        )
        .await;
    cdp.session = Some(attached["sessionId"].as_str().unwrap().to_owned());
    for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
        cdp.call(domain, json!({})).await;
    }
    cdp.call(
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": 1400, "height": 1100, "deviceScaleFactor": 1, "mobile": false }),
    )
    .await;
    // Requests pass through so the browser's password prompt can be answered.
    cdp.call(
        "Fetch.enable",
        json!({ "handleAuthRequests": true, "patterns": [{ "urlPattern": "*" }] }),
    )
    .await;

    // Logging in: the page challenges, the browser answers, the stream goes live.
    cdp.call("Page.navigate", json!({ "url": url })).await;
    cdp.wait_until(
        "the page to load and its stream to go live",
        "document.getElementById('connection')?.textContent === 'live'",
    )
    .await;
    assert!(
        cdp.challenges.load(Ordering::Relaxed) >= 1,
        "the page asked for no password"
    );
    // From now on the browser sends the credentials it logged in with by itself.
    cdp.call("Fetch.disable", json!({})).await;
    assert_eq!(
        cdp.eval("document.querySelector('#account-table tr[data-name=\"alice\"] meter')?.max")
            .await,
        json!(64),
        "alice's storage quota bar"
    );

    // An LMTP delivery appears as a row.
    server.python(
        "lmtp_deliver.py",
        &[
            &server.port("lmtp").to_string(),
            "s@example.net",
            "alice@example.org",
            "--",
            "250",
            "--",
            "250",
        ],
    );
    let row = |t: &str, user: &str, mailbox: &str| {
        format!(
            "[...document.querySelectorAll('#event-table tbody tr')].some(tr => \
             tr.cells[2].textContent === {} && tr.cells[3].textContent === {} && \
             tr.cells[4].textContent === {})",
            json!(t),
            json!(user),
            json!(mailbox)
        )
    };
    cdp.wait_until(
        "the delivery's MessageNew row",
        &row("MessageNew", "alice", "INBOX"),
    )
    .await;

    // A mailbox named with markup is shown as text, not made into elements.
    let evil = "<svg onload>Spam<b>";
    server.python(
        "imap_create.py",
        &[&server.port("imap").to_string(), "alice", "alice-pw", evil],
    );
    cdp.wait_until(
        "the MailboxCreate row",
        &row("MailboxCreate", "alice", evil),
    )
    .await;
    assert_eq!(
        cdp.eval("document.querySelectorAll('#event-table svg, #event-table b').length")
            .await,
        json!(0)
    );

    // Filtering by user hides every row; clearing the filter brings them back.
    cdp.eval(
        "(() => { const f = document.getElementById('filter-user'); f.value = 'nobody'; \
         f.dispatchEvent(new Event('input')); })()",
    )
    .await;
    assert_eq!(
        cdp.eval("document.querySelectorAll('#event-table tbody tr').length")
            .await,
        json!(0)
    );
    cdp.eval(
        "(() => { const f = document.getElementById('filter-user'); f.value = ''; \
         f.dispatchEvent(new Event('input')); })()",
    )
    .await;
    cdp.wait_until(
        "rows after clearing the filter",
        &row("MessageNew", "alice", "INBOX"),
    )
    .await;

    // Pause and resume a subscription with its buttons; the API agrees each time.
    let state_is = |s: &str| {
        format!(
            "document.querySelector('#subscription-table tr[data-name=\"audit\"] td.state')?.textContent === {}",
            json!(s)
        )
    };
    cdp.wait_until("the audit subscription active", &state_is("active"))
        .await;
    cdp.click("#subscription-table tr[data-name=\"audit\"] button[data-action=\"pause\"]")
        .await;
    cdp.wait_until("the audit subscription paused", &state_is("paused"))
        .await;
    assert_eq!(subscription_state(&server, "audit"), "paused");
    // While paused it falls behind, and the table says by how much.
    server.python(
        "lmtp_deliver.py",
        &[
            &server.port("lmtp").to_string(),
            "s@example.net",
            "alice@example.org",
            "--",
            "250",
            "--",
            "250",
        ],
    );
    cdp.wait_until(
        "the paused subscription's lag",
        "Number(document.querySelector('#subscription-table tr[data-name=\"audit\"]').cells[4].textContent) > 0",
    )
    .await;
    let screenshot = cdp
        .call(
            "Page.captureScreenshot",
            json!({ "format": "png", "captureBeyondViewport": true }),
        )
        .await;
    cdp.click("#subscription-table tr[data-name=\"audit\"] button[data-action=\"resume\"]")
        .await;
    cdp.wait_until("the audit subscription active again", &state_is("active"))
        .await;
    assert_eq!(subscription_state(&server, "audit"), "active");

    // "Send test" reaches the sink; "Replay from" 1 delivers the first event again.
    let notice = |text: &str| {
        format!(
            "document.getElementById('notice').textContent === {}",
            json!(text)
        )
    };
    cdp.click("#subscription-table tr[data-name=\"audit\"] button[data-action=\"test\"]")
        .await;
    cdp.wait_until(
        "the test event's notice",
        &notice("audit: test event delivered"),
    )
    .await;
    let sink_lines = |pred: &dyn Fn(&Value) -> bool| {
        std::fs::read_to_string(&audit)
            .unwrap_or_default()
            .lines()
            .filter(|l| pred(&serde_json::from_str(l).unwrap()))
            .count()
    };
    assert_eq!(sink_lines(&|e| e["event"] == "vnd.herald.test"), 1);
    cdp.eval(
        "document.querySelector('#subscription-table tr[data-name=\"audit\"] input').value = '1'",
    )
    .await;
    cdp.click("#subscription-table tr[data-name=\"audit\"] button[data-action=\"replay\"]")
        .await;
    cdp.wait_until("the replay's notice", &notice("audit: active"))
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while sink_lines(&|e| e["vnd.herald.id"] == 1) < 2 {
        assert!(Instant::now() < deadline, "event 1 was not delivered again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Disabling an account shows at the next refresh, with the operator's note.
    server.admin(&["user", "disable", "alice", "--reason", "abuse report 7"]);
    cdp.wait_until(
        "alice's disabled badge",
        "document.querySelector('#account-table tr[data-name=\"alice\"] .badge-disabled')\
         ?.title === 'abuse report 7'",
    )
    .await;

    // The page kept to its policy: no script errors, nothing refused by the CSP.
    let problems = cdp.problems.lock().unwrap().clone();
    assert!(problems.is_empty(), "the page reported: {problems:#?}");

    let png = base64::engine::general_purpose::STANDARD
        .decode(screenshot["data"].as_str().unwrap())
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    let path = screenshot_path();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, png).unwrap();
    println!("dashboard screenshot: {}", path.display());
    eprintln!("dashboard screenshot: {}", path.display());
    drop(browser);
}
