//! The dashboard: a live page for administrators at `GET /`.
//!
//! | method and path | does | who |
//! |---|---|---|
//! | `GET /` | the page: server-rendered HTML (subscriptions, accounts) | administrators |
//! | `GET /dashboard/app.js` · `/dashboard/style.css` | its script and style sheet | anyone |
//! | `GET /dashboard/summary` | what the page refreshes: subscriptions with their lag, accounts with their quota | administrators |
//!
//! **Logging in.** The page uses the API's own authentication: HTTP Basic with an administrator's
//! password. Without credentials `GET /` answers 401 with a `Basic` challenge, so a browser asks
//! for the user name and password and then sends them with every request to the origin — the
//! page's script, its live stream (`/events/stream`) and its calls to the admin API
//! (`/subscriptions…`) included. There is no session and no cookie: closing the browser logs
//! out. The same rules as the API apply (rate limits, no password over plain HTTP from another
//! host unless `[http] plaintext_auth`).
//!
//! **What the page shows.** The script follows `/events/stream` (Server-Sent Events) from a few
//! hundred events back, and draws the live table (filter by type and user; pause) and a chart
//! of event rates per type (a canvas, drawn by the script); it refreshes the subscription and
//! account tables from `/dashboard/summary` every few seconds, and its buttons call the admin
//! API (pause, resume, replay from an id, replay parked events, send a test event).
//!
//! **Hardening.** The assets are compiled into the binary and the page loads nothing else:
//! every answer carries a Content-Security-Policy allowing scripts, styles and connections
//! from the page's own origin only (no inline script or style, no frames), `nosniff`, and no
//! referrer. Every string from the store (account, subscription and mailbox names, errors) is
//! HTML-escaped here and set with `textContent` by the script. Cross-site requests that change
//! something are refused by [`same_origin`] (a browser that holds Basic credentials would
//! otherwise send them with another site's form).

use crate::auth::Caller;
use crate::{ApiError, HttpState};
use axum::Json;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use herald_events::EventType;
use herald_notify::dispatch::SubscriptionStatus;
use serde::Serialize;
use std::fmt::Write as _;

/// The page's script.
pub const APP_JS: &str = include_str!("dashboard/app.js");

/// The page's style sheet.
pub const STYLE_CSS: &str = include_str!("dashboard/style.css");

/// What the page may load and do: its own script, style sheet and connections, nothing else.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// How many events before the current end of the outbox the page's stream starts at, so its
/// table and chart are not empty on a quiet server.
pub const BACKFILL: u64 = 500;

/// One subscription as the page shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SubscriptionRow {
    /// Name.
    pub name: String,
    /// `config` or `api`.
    pub origin: String,
    /// `active`, `paused` or `disabled`.
    pub state: &'static str,
    /// The sink's type (`webhook`, `file`, …).
    pub sink: String,
    /// Last acknowledged event id.
    pub cursor: u64,
    /// Events committed after the cursor.
    pub lag_events: u64,
    /// Age of the oldest event not yet delivered, in seconds (0 when caught up).
    pub lag_seconds: f64,
    /// The latest delivery error, or why the receiver disabled it.
    pub last_error: Option<String>,
    /// Parked (dead-lettered) events.
    pub parked: usize,
    /// Events delivered since the process started.
    pub delivered: u64,
}

/// One account as the page shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AccountRow {
    /// Name.
    pub name: String,
    /// An administrator.
    pub admin: bool,
    /// Octets stored.
    pub used_bytes: u64,
    /// Storage limit in kilobytes, if any.
    pub storage_kb: Option<u64>,
    /// Messages stored.
    pub used_messages: u64,
    /// Message-count limit, if any.
    pub max_messages: Option<u64>,
    /// `Some` while the account is disabled: the operator's note, or "" without one.
    pub disabled: Option<String>,
}

/// `GET /dashboard/summary`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    /// The outbox's last event id.
    pub head: u64,
    /// Every subscription, by name; empty when event delivery is not running.
    pub subscriptions: Vec<SubscriptionRow>,
    /// Every account, by name.
    pub accounts: Vec<AccountRow>,
}

/// Reads what the page shows. The lag of a subscription is computed as `/metrics` does: events
/// after its cursor, and the age of the first of them.
pub async fn summary_of(state: &HttpState) -> Result<Summary, ApiError> {
    let store = &state.store;
    let bounds = store.outbox_bounds().await?;
    let head = bounds.head;
    let statuses: Vec<SubscriptionStatus> = match &state.dispatcher {
        Some(d) => d.list().await?,
        None => Vec::new(),
    };
    let lag =
        crate::health::Lag::read(store, Some(bounds), statuses.iter().map(|s| s.cursor)).await?;
    let mut subscriptions: Vec<SubscriptionRow> = statuses
        .into_iter()
        .map(|s| {
            let (lag_events, lag_seconds) = lag.of(s.cursor);
            let sink = serde_json::to_value(&s.config.sink)
                .ok()
                .and_then(|v| v.get("type").and_then(|t| t.as_str().map(str::to_owned)))
                .unwrap_or_default();
            SubscriptionRow {
                last_error: s.last_error.or(s.disabled_reason),
                name: s.name,
                origin: s.origin,
                state: s.state,
                sink,
                cursor: s.cursor,
                lag_events,
                lag_seconds,
                parked: s.parked,
                delivered: s.delivered,
            }
        })
        .collect();
    subscriptions.sort_by(|a, b| a.name.cmp(&b.name));
    let mut accounts: Vec<AccountRow> = store
        .list_users()
        .await?
        .into_iter()
        .map(|u| AccountRow {
            name: u.name,
            admin: u.admin,
            used_bytes: u.quota.used_bytes,
            storage_kb: u.quota.storage_kb,
            used_messages: u.quota.used_messages,
            max_messages: u.quota.max_messages,
            disabled: u.disabled.map(|_| u.disabled_reason.unwrap_or_default()),
        })
        .collect();
    accounts.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Summary {
        head,
        subscriptions,
        accounts,
    })
}

/// The headers every dashboard answer carries.
fn hardened(mut response: Response, content_type: &'static str, cache: &'static str) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

const HTML: &str = "text/html; charset=utf-8";

/// An error as a small page, keeping the error's status and headers (a 401's challenges, a
/// 429's `Retry-After`). The Basic challenge goes first, so a browser asks for a password.
fn error_page(e: ApiError) -> Response {
    let what = e.to_string();
    let mut response = e.into_response();
    let status = response.status();
    let challenges: Vec<HeaderValue> = response
        .headers()
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .cloned()
        .collect();
    let retry = response.headers().get(header::RETRY_AFTER).cloned();
    let hint = match status {
        StatusCode::UNAUTHORIZED => {
            "Log in with the user name and password of a Herald administrator account."
        }
        StatusCode::FORBIDDEN => "The dashboard is for administrator accounts only.",
        _ => "",
    };
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Herald: {code}</title><link rel=\"stylesheet\" href=\"/dashboard/style.css\"></head>\
<body><main class=\"refusal\"><h1>{code}</h1><p>{what}</p><p>{hint}</p></main></body></html>\n",
        code = escape(&status.to_string()),
        what = escape(&what),
        hint = escape(hint),
    );
    response = (status, body).into_response();
    let h = response.headers_mut();
    let mut challenges = challenges;
    challenges.sort_by_key(|c| !c.as_bytes().starts_with(b"Basic"));
    for c in challenges {
        h.append(header::WWW_AUTHENTICATE, c);
    }
    if let Some(r) = retry {
        h.insert(header::RETRY_AFTER, r);
    }
    hardened(response, HTML, "no-store")
}

/// The caller, if an administrator.
async fn admin(state: &HttpState, request: Request) -> Result<Caller, ApiError> {
    let (mut parts, _) = request.into_parts();
    let caller = Caller::from_request_parts(&mut parts, state).await?;
    caller.require_admin()?;
    Ok(caller)
}

/// `GET /`.
pub async fn page(State(state): State<HttpState>, request: Request) -> Response {
    let caller = match admin(&state, request).await {
        Ok(c) => c,
        Err(e) => return error_page(e),
    };
    match summary_of(&state).await {
        Ok(summary) => hardened(
            (StatusCode::OK, render(&caller.user, &summary)).into_response(),
            HTML,
            "no-store",
        ),
        Err(e) => error_page(e),
    }
}

/// `GET /dashboard/summary`.
pub async fn summary(State(state): State<HttpState>, request: Request) -> Response {
    let result = match admin(&state, request).await {
        Ok(_) => summary_of(&state).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(s) => hardened(Json(s).into_response(), "application/json", "no-store"),
        Err(e) => e.into_response(),
    }
}

/// `GET /dashboard/app.js`.
pub async fn script() -> Response {
    hardened(
        APP_JS.into_response(),
        "text/javascript; charset=utf-8",
        "no-cache",
    )
}

/// `GET /dashboard/style.css`.
pub async fn style() -> Response {
    hardened(
        STYLE_CSS.into_response(),
        "text/css; charset=utf-8",
        "no-cache",
    )
}

/// Refuses (403) a request that changes something when a browser says it comes from another
/// site. Browsers that send `Sec-Fetch-Site` are trusted on it (`same-origin` and `none` pass,
/// which also holds behind a proxy that rewrites `Host`); older ones are judged by `Origin`
/// against `Host`. Clients that are not browsers send neither header and are not affected.
pub async fn same_origin(request: Request, next: axum::middleware::Next) -> Response {
    if !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) && cross_site(request.headers())
    {
        tracing::warn!(path = %request.uri().path(), "http: refused a cross-site request");
        return ApiError::Forbidden("cross-site requests are refused".into()).into_response();
    }
    next.run(request).await
}

fn cross_site(headers: &HeaderMap) -> bool {
    let get = |name: HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = get(HeaderName::from_static("sec-fetch-site")) {
        // `same-site` is a sibling host, which may be someone else's.
        return !matches!(site, "same-origin" | "none");
    }
    let Some(origin) = get(header::ORIGIN) else {
        return false;
    };
    // `null` (a sandboxed or privacy-sensitive context) cannot be matched to anything.
    let origin_host = origin.split_once("://").map(|(_, rest)| rest);
    match (origin_host, get(header::HOST)) {
        (Some(o), Some(host)) => !o.eq_ignore_ascii_case(host),
        _ => true,
    }
}

/// HTML-escapes text for an element's content or a quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Octets in a short human form (`1.5 MiB`).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A `<meter>` for `used` of `limit`, with its text and the limit's; "no limit" without one.
fn usage(out: &mut String, used: u64, limit: Option<(u64, String)>, text: &str) {
    match limit {
        Some((limit, limit_text)) => {
            let _ = write!(
                out,
                "<meter min=\"0\" max=\"{limit}\" low=\"{}\" high=\"{}\" optimum=\"0\" value=\"{}\">\
</meter> <span>{} of {}</span>",
                limit.saturating_mul(7) / 10,
                limit.saturating_mul(9) / 10,
                used.min(limit),
                escape(text),
                escape(&limit_text),
            );
        }
        None => {
            let _ = write!(out, "<span>{} (no limit)</span>", escape(text));
        }
    }
}

/// Renders a subscription's row (the script renders the same from `/dashboard/summary`).
fn subscription_row(out: &mut String, s: &SubscriptionRow) {
    let name = escape(&s.name);
    let _ = write!(
        out,
        "<tr data-name=\"{name}\"><td class=\"name\">{name}</td><td>{}</td>\
<td class=\"state state-{state}\">{state}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
<td class=\"num\">{:.1}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"error\">{}</td>\
<td class=\"actions\"><button type=\"button\" data-action=\"pause\">Pause</button>\
<button type=\"button\" data-action=\"resume\">Resume</button>\
<input type=\"number\" min=\"1\" placeholder=\"event id\" aria-label=\"replay from event id\">\
<button type=\"button\" data-action=\"replay\">Replay from</button>\
<button type=\"button\" data-action=\"replay-parked\">Replay parked</button>\
<button type=\"button\" data-action=\"test\">Send test</button></td></tr>",
        escape(&s.sink),
        s.cursor,
        s.lag_events,
        s.lag_seconds,
        s.parked,
        s.delivered,
        escape(s.last_error.as_deref().unwrap_or("")),
        state = escape(s.state),
    );
    out.push('\n');
}

fn account_row(out: &mut String, a: &AccountRow) {
    let _ = write!(
        out,
        "<tr data-name=\"{name}\"><td class=\"name\">{name}{admin}</td><td class=\"quota\">",
        name = escape(&a.name),
        admin = if a.admin {
            " <span class=\"badge\">admin</span>"
        } else {
            ""
        },
    );
    if let Some(reason) = &a.disabled {
        let _ = write!(
            out,
            " <span class=\"badge badge-disabled\" title=\"{}\">disabled</span>",
            escape(reason)
        );
    }
    usage(
        out,
        a.used_bytes.div_ceil(1024),
        a.storage_kb
            .map(|kb| (kb, human_bytes(kb.saturating_mul(1024)))),
        &human_bytes(a.used_bytes),
    );
    out.push_str("</td><td class=\"quota\">");
    usage(
        out,
        a.used_messages,
        a.max_messages.map(|m| (m, m.to_string())),
        &format!("{} messages", a.used_messages),
    );
    out.push_str("</td></tr>\n");
}

/// The page for `user`.
pub fn render(user: &str, summary: &Summary) -> String {
    let types: Vec<&str> = EventType::REGISTERED.iter().map(|t| t.as_str()).collect();
    let mut out = String::with_capacity(8192);
    let _ = write!(
        out,
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Herald dashboard</title>
<link rel="stylesheet" href="/dashboard/style.css">
<script src="/dashboard/app.js" defer></script>
</head>
<body data-head="{head}" data-backfill="{BACKFILL}" data-types="{types}">
<header><h1>Herald</h1><span class="who">signed in as <b>{user}</b></span>
<span id="connection" class="connection">connecting…</span></header>
<p id="notice" class="notice" role="status"></p>
<main>
<section id="events">
<h2>Live events</h2>
<div class="controls">
<label>Type <select id="filter-type"><option value="">all</option></select></label>
<label>User <input id="filter-user" type="search" placeholder="any"></label>
<button type="button" id="pause-stream">Pause</button>
<span id="stream-status"></span>
</div>
<div class="table-wrap"><table id="event-table"><thead><tr><th>id</th><th>time</th><th>type</th><th>user</th><th>mailbox</th></tr></thead>
<tbody></tbody></table></div>
</section>
<section id="subscriptions">
<h2>Subscriptions</h2>
<table id="subscription-table"><thead><tr><th>name</th><th>sink</th><th>state</th><th>cursor</th>
<th>lag (events)</th><th>lag (s)</th><th>parked</th><th>delivered</th><th>last error</th><th></th></tr></thead>
<tbody>
"#,
        head = summary.head,
        types = escape(&types.join(",")),
        user = escape(user),
    );
    for s in &summary.subscriptions {
        subscription_row(&mut out, s);
    }
    out.push_str("</tbody></table>\n<p class=\"empty\" id=\"no-subscriptions\"");
    if !summary.subscriptions.is_empty() {
        out.push_str(" hidden");
    }
    out.push_str(
        ">No subscriptions.</p>\n</section>\n<section id=\"rates\">\n\
<h2>Events per minute by type, last 10 minutes</h2>\n\
<canvas id=\"rate-chart\" width=\"720\" height=\"200\">Event rates need the page's script.</canvas>\n\
<ul id=\"rate-legend\" class=\"legend\"></ul>\n\
</section>\n\
<section id=\"accounts\">\n<h2>Accounts</h2>\n\
<table id=\"account-table\"><thead><tr><th>account</th><th>storage</th><th>messages</th></tr></thead>\n<tbody>\n",
    );
    for a in &summary.accounts {
        account_row(&mut out, a);
    }
    out.push_str("</tbody></table>\n</section>\n</main>\n</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn page_escapes_every_name() {
        let evil = "<img src=x onerror=alert(1)>";
        let summary = Summary {
            head: 7,
            subscriptions: vec![SubscriptionRow {
                name: evil.into(),
                origin: "api".into(),
                state: "paused",
                sink: "webhook".into(),
                cursor: 3,
                lag_events: 4,
                lag_seconds: 1.5,
                last_error: Some(format!("refused: {evil}")),
                parked: 2,
                delivered: 9,
            }],
            accounts: vec![AccountRow {
                name: evil.into(),
                admin: true,
                used_bytes: 3 * 1024 * 1024,
                storage_kb: Some(10 * 1024),
                used_messages: 5,
                max_messages: None,
                disabled: Some(format!("abuse {evil}")),
            }],
        };
        let page = render(evil, &summary);
        assert!(!page.contains("<img"), "{page}");
        assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(page.contains("data-head=\"7\""));
        assert!(page.contains("3.0 MiB of 10.0 MiB"), "{page}");
        assert!(page.contains("5 messages (no limit)"));
        assert!(page.contains("state-paused"));
        assert!(
            page.contains("title=\"abuse &lt;img src=x onerror=alert(1)&gt;\">disabled</span>"),
            "a disabled account is marked, with the operator's note: {page}"
        );
        // Nothing inline for the policy to refuse, nothing from elsewhere.
        assert!(!page.contains("style="));
        assert!(!page.contains("<script>"));
        assert!(!page.contains("://"));
    }

    #[test]
    fn cross_site_requests() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
            }
            h
        };
        assert!(!cross_site(&headers(&[("host", "127.0.0.1:8080")])));
        assert!(!cross_site(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
            ("sec-fetch-site", "same-origin"),
        ])));
        assert!(cross_site(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "https://evil.example"),
        ])));
        assert!(cross_site(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "null"),
        ])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "same-site")])));
        // Behind a proxy the browser's word counts, not the rewritten Host.
        assert!(!cross_site(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "https://mail.example.org"),
            ("sec-fetch-site", "same-origin"),
        ])));
    }

    #[test]
    fn sizes() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}
