//! `herald subscriptions list|pause|resume|replay`: the running server's subscriptions, through
//! its HTTP admin API.
//!
//! Subscriptions live in the server: its dispatcher holds their state, in-flight batches and
//! retry timers, and writes their cursors. Changing the store underneath it would race with
//! all of that, so this command asks the server, as `doveadm` asks Dovecot, with the same
//! administrator credentials the API takes. Lag comes from the server's `/metrics`.

use crate::cli::{SubscriptionsArgs, SubscriptionsCommand};
use anyhow::{Context as _, bail};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

/// Runs one `herald subscriptions` command.
pub async fn run(args: &SubscriptionsArgs, http_listen: &[SocketAddr]) -> anyhow::Result<ExitCode> {
    let base = base_url(args.url.as_deref(), http_listen);
    let auth = credentials(args)?;
    herald_notify::sink::webhook::ensure_crypto_provider();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build the HTTP client")?;
    let api = Api { client, base, auth };
    let (answer, status) = match &args.command {
        SubscriptionsCommand::List => {
            let list = api.call(Method::GET, "/subscriptions").await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(ExitCode::SUCCESS);
            }
            let lag = api.lag().await.unwrap_or_default();
            print!("{}", table(&list, &lag));
            return Ok(ExitCode::SUCCESS);
        }
        SubscriptionsCommand::Pause { name } => {
            let a = api
                .call(Method::POST, &format!("/subscriptions/{}/pause", seg(name)))
                .await?;
            (a, format!("paused {name}"))
        }
        SubscriptionsCommand::Resume { name } => {
            let a = api
                .call(
                    Method::POST,
                    &format!("/subscriptions/{}/resume", seg(name)),
                )
                .await?;
            (a, format!("resumed {name}"))
        }
        SubscriptionsCommand::Replay {
            name, parked: true, ..
        } => {
            let a = api
                .call(
                    Method::POST,
                    &format!("/subscriptions/{}/parked/replay", seg(name)),
                )
                .await?;
            let n = a.get("delivered").and_then(Value::as_u64).unwrap_or(0);
            (a, format!("{name}: {n} parked event(s) delivered"))
        }
        SubscriptionsCommand::Replay { name, from, .. } => {
            let from = from.context("--from ID or --parked is required")?;
            let a = api
                .call(
                    Method::POST,
                    &format!("/subscriptions/{}/replay?from={from}", seg(name)),
                )
                .await?;
            (a, format!("{name} will deliver again from event {from}"))
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        let state = answer.get("state").and_then(Value::as_str);
        match state {
            Some(state) => println!("{status} (now {state})"),
            None => println!("{status}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// How to authenticate.
enum Auth {
    Basic(String, String),
    Bearer(String),
}

/// The API of one server.
struct Api {
    client: reqwest::Client,
    base: String,
    auth: Auth,
}

impl Api {
    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.client.request(method, format!("{}{path}", self.base));
        match &self.auth {
            Auth::Basic(u, p) => r.basic_auth(u, Some(p)),
            Auth::Bearer(t) => r.bearer_auth(t),
        }
    }

    /// One call; an error answer becomes an error naming what the server said.
    async fn call(&self, method: Method, path: &str) -> anyhow::Result<Value> {
        let answer = self.request(method, path).send().await.with_context(|| {
            format!(
                "cannot reach Herald's HTTP API at {} — is `herald serve` running there? \
                 (--url sets the address)",
                self.base
            )
        })?;
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let said = body
            .get("error")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| status.to_string());
        match status {
            StatusCode::UNAUTHORIZED => {
                bail!("the server refused the credentials ({said}); an administrator's are needed")
            }
            StatusCode::FORBIDDEN => bail!("not allowed: {said}"),
            StatusCode::NOT_FOUND => bail!("{said}"),
            _ => bail!("the server answered {status}: {said}"),
        }
    }

    /// Each subscription's lag in events, from `/metrics`.
    async fn lag(&self) -> anyhow::Result<HashMap<String, u64>> {
        let text = self
            .request(Method::GET, "/metrics")
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        Ok(lag_from_metrics(&text))
    }
}

/// `herald_subscription_lag_events{subscription="NAME"} N` lines, by name.
fn lag_from_metrics(text: &str) -> HashMap<String, u64> {
    let prefix = "herald_subscription_lag_events{subscription=\"";
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(prefix)?;
            let (label, value) = rest.rsplit_once("\"} ")?;
            let name = label.replace("\\\"", "\"").replace("\\\\", "\\");
            Some((name, value.trim().parse::<f64>().ok()? as u64))
        })
        .collect()
}

/// A path segment with the characters a URL path cannot carry escaped.
fn seg(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `--url`, or the first configured listener (a wildcard address asked on loopback).
fn base_url(url: Option<&str>, listen: &[SocketAddr]) -> String {
    if let Some(u) = url {
        return u.trim_end_matches('/').to_owned();
    }
    match listen.first() {
        Some(addr) => {
            let ip = match addr.ip() {
                ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
                ip if ip.is_unspecified() => "[::1]".to_owned(),
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                ip => ip.to_string(),
            };
            format!("http://{ip}:{}", addr.port())
        }
        None => "http://127.0.0.1:8080".to_owned(),
    }
}

/// Credentials from `--token-file`, `--user` (+ password), or `HERALD_TOKEN`.
fn credentials(args: &SubscriptionsArgs) -> anyhow::Result<Auth> {
    if let Some(path) = &args.token_file {
        let token = super::user::read_secret(path)?;
        if token.is_empty() {
            bail!("the token file {} is empty", path.display());
        }
        return Ok(Auth::Bearer(token));
    }
    if let Some(user) = &args.user {
        let password = match &args.password_file {
            Some(path) => super::user::read_secret(path)?,
            None if std::io::stdin().is_terminal() => super::user::prompt("Password: ")?,
            None => {
                bail!("--user {user} needs --password-file FILE (or `-`) when not at a terminal")
            }
        };
        return Ok(Auth::Basic(user.clone(), password));
    }
    match std::env::var("HERALD_TOKEN") {
        Ok(t) if !t.is_empty() => Ok(Auth::Bearer(t)),
        _ => bail!(
            "no credentials: pass --token-file FILE, or --user NAME (with --password-file or at \
             a terminal), or set HERALD_TOKEN; an administrator's are needed"
        ),
    }
}

/// The list as a table, one row per subscription.
fn table(list: &Value, lag: &HashMap<String, u64>) -> String {
    let mut rows = vec![
        [
            "name",
            "state",
            "cursor",
            "lag",
            "delivered",
            "parked",
            "origin",
            "last error",
        ]
        .map(str::to_owned),
    ];
    for s in list.as_array().map(Vec::as_slice).unwrap_or_default() {
        let text = |k: &str| match s.get(k) {
            Some(Value::String(v)) => v.clone(),
            Some(Value::Null) | None => "-".to_owned(),
            Some(v) => v.to_string(),
        };
        let name = text("name");
        let state = match s.get("disabled_reason").and_then(Value::as_str) {
            Some(why) => format!("{} ({why})", text("state")),
            None => text("state"),
        };
        let lag = lag.get(&name).map_or("-".to_owned(), u64::to_string);
        rows.push([
            name,
            state,
            text("cursor"),
            lag,
            text("delivered"),
            text("parked"),
            text("origin"),
            text("last_error"),
        ]);
    }
    let widths: Vec<usize> = (0..8)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_read_from_the_metrics_page_with_escaped_names() {
        let text = "# TYPE herald_subscription_lag_events gauge\n\
            herald_subscription_lag_events{subscription=\"audit\"} 12\n\
            herald_subscription_lag_events{subscription=\"a\\\"b\"} 0\n\
            herald_subscription_cursor{subscription=\"audit\"} 3\n";
        let lag = lag_from_metrics(text);
        assert_eq!(lag.get("audit"), Some(&12));
        assert_eq!(lag.get("a\"b"), Some(&0));
        assert_eq!(lag.len(), 2);
    }

    #[test]
    fn names_are_escaped_in_paths_and_wildcards_asked_on_loopback() {
        assert_eq!(seg("a b/c"), "a%20b%2Fc");
        let any: SocketAddr = "0.0.0.0:8081".parse().unwrap();
        assert_eq!(base_url(None, &[any]), "http://127.0.0.1:8081");
        assert_eq!(base_url(None, &[]), "http://127.0.0.1:8080");
        assert_eq!(base_url(Some("http://h:1/"), &[any]), "http://h:1");
    }
}
