//! The subscription admin API: a JSON face on the dispatcher, for administrators only.
//!
//! | method and path | does | answers |
//! |---|---|---|
//! | `GET /subscriptions` | list | 200 `[SubscriptionStatus]` |
//! | `POST /subscriptions` | create from a `SubscriptionConfig` (the `[[subscription]]` keys as JSON) | 201 status; 400 invalid; 403 a sink the policy below refuses; 409 exists (name, or a file sink's file) |
//! | `GET /subscriptions/{name}` | one | 200 status; 404 |
//! | `DELETE /subscriptions/{name}` | delete (API-created only) | 204; 404; 409 from the config file |
//! | `POST /subscriptions/{name}/pause` · `/resume` | stop / restart delivery (resume also clears a 410 disable) | 200 status |
//! | `POST /subscriptions/{name}/replay?from=ID` | re-deliver from event `ID` on (inclusive) | 200 status; 400 without `from`; 409 `ID` already pruned by retention |
//! | `GET /subscriptions/{name}/parked` | dead-lettered events | 200 `[Parked]` |
//! | `POST /subscriptions/{name}/parked/replay` | retry them | 200 `{"delivered": n}` |
//! | `POST /subscriptions/{name}/test` | send one `vnd.herald.test` event (id 0, never committed) to the sink, paused or not, filters bypassed | 200 `{"sent": "vnd.herald.test"}`; 502 the receiver refused it (the error says why) |
//!
//! A status's `config` never carries secrets: webhook secrets read `whsec_…redacted` and sink
//! URLs lose their user info, query and fragment ([`SubscriptionConfig::redacted`]).
//!
//! Errors are `{"error": "…"}` with the status [`crate::ApiError`] maps to. The handlers hold no
//! state of their own: the dispatcher persists every change in the store, so what the API says
//! is what survives a restart.
//!
//! **What an API-created sink may touch** ([`SinkPolicy`]). A subscription from the
//! configuration file is the operator's and is trusted; one created through the API must not
//! turn an admin account into "write any file the server can write" or "reach any host":
//!
//! - a `file` sink is refused (403) unless `[http] file_sink_dir` is set. Its `path`, relative to
//!   that directory or absolute, may not contain `..`; its parent directory must exist and,
//!   symbolic links resolved, lie inside the directory (else 403); and the file — nor any of
//!   the names rotation would move it to (`path.1` … `path.9`) — must not exist yet (409): the
//!   file is created here with `O_EXCL`, so it is never one the sink did not create. Names
//!   ending in `.<digits>` are kept for rotated files (403). The resolved absolute path is what
//!   the subscription stores, and the file is removed again if the creation fails.
//! - a `webpush` sink is refused (403): its `vapid_key` is a server path Herald would read or
//!   create, so it is configured in the configuration file only.
//! - with `[http] webhook_hosts`, a `webhook` sink's host (as the sink's own URL parser reads
//!   it) must match one of the patterns (else 403).

use crate::auth::Caller;
use crate::{ApiError, HttpConfig, HttpState};
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use herald_notify::dispatch::{DispatchError, Dispatcher, Parked, SubscriptionStatus, TEST_EVENT};
use herald_notify::glob::Glob;
use herald_notify::sink::file::KEEP;
use herald_notify::{SinkConfig, SubscriptionConfig};
use serde::Deserialize;
use std::path::{Component, PathBuf};
use std::sync::Arc;

/// What sinks of subscriptions created through the API may write to or reach (`[http]
/// file_sink_dir`, `webhook_hosts`).
#[derive(Debug, Clone, Default)]
pub struct SinkPolicy {
    file_sink_dir: Option<PathBuf>,
    webhook_hosts: Vec<Glob>,
    push_hosts: Vec<Glob>,
}

/// A file created for a new file sink: removed when dropped, unless [`CreatedFile::keep`] says
/// the subscription now owns it.
#[derive(Debug)]
struct CreatedFile(Option<PathBuf>);

impl CreatedFile {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for CreatedFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take()
            && let Err(e) = std::fs::remove_file(&path)
        {
            tracing::warn!(path = %path.display(), "http: cannot remove an unused sink file: {e}");
        }
    }
}

impl SinkPolicy {
    /// The policy `[http]` configures.
    pub fn new(config: &HttpConfig) -> SinkPolicy {
        SinkPolicy {
            file_sink_dir: config.file_sink_dir.clone(),
            webhook_hosts: config
                .webhook_hosts
                .iter()
                .map(|p| Glob::new(&p.to_ascii_lowercase()))
                .collect(),
            push_hosts: config
                .push_hosts
                .iter()
                .map(|p| Glob::new(&p.to_ascii_lowercase()))
                .collect(),
        }
    }

    /// Checks the host of a WebPush endpoint a user registers against `[http] push_hosts`
    /// (any host when empty). `host` as the endpoint's URL parser reads it: lower case.
    pub(crate) fn admit_push_host(&self, host: &str) -> Result<(), ApiError> {
        if self.push_hosts.is_empty() || self.push_hosts.iter().any(|g| g.matches(host)) {
            return Ok(());
        }
        Err(ApiError::Forbidden(format!(
            "push service host `{host}` is not allowed by [http] push_hosts"
        )))
    }

    /// Checks the sink of a subscription about to be created through the API. A file sink's
    /// file is created here (and its path in `config` replaced by the resolved one); the
    /// returned guard removes it unless kept.
    fn admit(&self, config: &mut SubscriptionConfig) -> Result<CreatedFile, ApiError> {
        match &mut config.sink {
            SinkConfig::File { path, .. } => {
                let created = self.create_file(path)?;
                *path = created
                    .to_str()
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "file sink path {}: not UTF-8",
                            created.display()
                        ))
                    })?
                    .to_owned();
                Ok(CreatedFile(Some(created)))
            }
            SinkConfig::WebPush { .. } => Err(ApiError::Forbidden(
                "webpush sinks are configured in the configuration file (their vapid_key is a \
                 server path)"
                    .into(),
            )),
            SinkConfig::Webhook { url, .. } if !self.webhook_hosts.is_empty() => {
                let host = herald_notify::sink::webhook::target_host(url)
                    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
                if !self.webhook_hosts.iter().any(|g| g.matches(&host)) {
                    return Err(ApiError::Forbidden(format!(
                        "webhook host `{host}` is not allowed by [http] webhook_hosts"
                    )));
                }
                Ok(CreatedFile(None))
            }
            _ => Ok(CreatedFile(None)),
        }
    }

    /// Resolves `requested` inside `file_sink_dir` and creates the file, which must not exist.
    fn create_file(&self, requested: &str) -> Result<PathBuf, ApiError> {
        let forbidden =
            |why: &str| ApiError::Forbidden(format!("file sink path `{requested}`: {why}"));
        let Some(dir) = &self.file_sink_dir else {
            return Err(ApiError::Forbidden(
                "file sinks cannot be created through the API unless [http] file_sink_dir is set"
                    .into(),
            ));
        };
        let root = std::fs::canonicalize(dir).map_err(|e| {
            ApiError::Unavailable(format!("[http] file_sink_dir {}: {e}", dir.display()))
        })?;
        let wanted = std::path::Path::new(requested);
        if wanted
            .components()
            .any(|c| matches!(c, Component::ParentDir))
        {
            return Err(forbidden("`..` is not allowed"));
        }
        if !matches!(wanted.components().next_back(), Some(Component::Normal(_))) {
            return Err(ApiError::BadRequest(format!(
                "file sink path `{requested}` names no file"
            )));
        }
        let joined = root.join(wanted);
        let (Some(name), Some(parent)) = (joined.file_name(), joined.parent()) else {
            return Err(ApiError::BadRequest(format!(
                "file sink path `{requested}` names no file"
            )));
        };
        if std::path::Path::new(name)
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(forbidden(
                "names ending in `.<digits>` are kept for rotated files",
            ));
        }
        let parent = std::fs::canonicalize(parent).map_err(|e| {
            ApiError::BadRequest(format!("file sink path `{requested}`: its directory: {e}"))
        })?;
        if !parent.starts_with(&root) {
            return Err(forbidden("outside [http] file_sink_dir"));
        }
        let path = parent.join(name);
        let rotated = (1..=KEEP).map(|n| {
            let mut p = path.clone().into_os_string();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        });
        let exists = |p: &PathBuf| std::fs::symlink_metadata(p).is_ok();
        if std::iter::once(path.clone())
            .chain(rotated)
            .any(|p| exists(&p))
        {
            return Err(ApiError::Conflict(format!(
                "file sink path `{requested}`: the file (or a rotated one) exists; a sink created \
                 through the API writes only a file it creates"
            )));
        }
        // O_EXCL: fails if anything, a symbolic link included, appeared at the name meanwhile.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => {
                    ApiError::Conflict(format!("file sink path `{requested}`: the file exists"))
                }
                _ => ApiError::BadRequest(format!("file sink path `{requested}`: {e}")),
            })?;
        Ok(path)
    }
}

fn dispatcher(state: &HttpState, caller: &Caller) -> Result<Arc<Dispatcher>, ApiError> {
    caller.require_admin()?;
    state
        .dispatcher
        .clone()
        .ok_or_else(|| ApiError::Unavailable("event delivery is not running".into()))
}

/// `GET /subscriptions`.
pub async fn list(
    State(state): State<HttpState>,
    caller: Caller,
) -> Result<Json<Vec<SubscriptionStatus>>, ApiError> {
    Ok(Json(dispatcher(&state, &caller)?.list().await?))
}

/// `POST /subscriptions`.
pub async fn create(
    State(state): State<HttpState>,
    caller: Caller,
    body: Result<Json<SubscriptionConfig>, JsonRejection>,
) -> Result<(StatusCode, Json<SubscriptionStatus>), ApiError> {
    let d = dispatcher(&state, &caller)?;
    let Json(mut config) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    // An invalid configuration or a taken name is answered before a sink file is created for
    // nothing.
    herald_notify::Subscription::compile(config.clone()).map_err(DispatchError::from)?;
    if let Some(why) = &state.link_refusal
        && crate::config::wants_links(&config)
    {
        return Err(ApiError::BadRequest(format!(
            "{why}; this subscription's content policy needs them (or set content.reference = \"urlauth\" or false)"
        )));
    }
    if d.get(&config.name).await.is_ok() {
        return Err(DispatchError::Exists(config.name).into());
    }
    let created = state.sink_policy.admit(&mut config)?;
    // On an error the guard removes a file created for the sink.
    let status = d.create(config).await?;
    created.keep();
    tracing::info!(by = %caller.user, name = %status.name, "http: subscription created");
    Ok((StatusCode::CREATED, Json(status)))
}

/// `GET /subscriptions/{name}`.
pub async fn get(
    State(state): State<HttpState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<SubscriptionStatus>, ApiError> {
    Ok(Json(dispatcher(&state, &caller)?.get(&name).await?))
}

/// `DELETE /subscriptions/{name}`.
pub async fn delete(
    State(state): State<HttpState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    dispatcher(&state, &caller)?.delete(&name).await?;
    tracing::info!(by = %caller.user, %name, "http: subscription deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /subscriptions/{name}/pause`.
pub async fn pause(
    State(state): State<HttpState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<SubscriptionStatus>, ApiError> {
    Ok(Json(dispatcher(&state, &caller)?.pause(&name).await?))
}

/// `POST /subscriptions/{name}/resume`.
pub async fn resume(
    State(state): State<HttpState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<SubscriptionStatus>, ApiError> {
    Ok(Json(dispatcher(&state, &caller)?.resume(&name).await?))
}

/// The query of `replay`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayQuery {
    /// First event id to deliver again.
    pub from: u64,
}

/// `POST /subscriptions/{name}/replay?from=ID`.
pub async fn replay(
    State(state): State<HttpState>,
    caller: Caller,
    Path(name): Path<String>,
    q: Result<Query<ReplayQuery>, QueryRejection>,
) -> Result<Json<SubscriptionStatus>, ApiError> {
    let d = dispatcher(&state, &caller)?;
    let Query(q) = q.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let status = d.replay(&name, q.from).await?;
    tracing::info!(by = %caller.user, %name, from = q.from, "http: subscription replay");
    Ok(Json(status))
}

/// `GET /subscriptions/{name}/parked`.
pub async fn parked(
    State(state): State<HttpState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Vec<Parked>>, ApiError> {
    Ok(Json(dispatcher(&state, &caller)?.parked(&name).await?))
}

/// `POST /subscriptions/{name}/parked/replay`.
pub async fn replay_parked(
    State(state): State<HttpState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let delivered = dispatcher(&state, &caller)?.replay_parked(&name).await?;
    Ok(Json(serde_json::json!({ "delivered": delivered })))
}

/// `POST /subscriptions/{name}/test`: the event names the administrator who asked.
pub async fn send_test(
    State(state): State<HttpState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let d = dispatcher(&state, &caller)?;
    match d.send_test(&name, &caller.user).await {
        Ok(()) => {}
        Err(DispatchError::Sink { error, .. }) => {
            return Err(ApiError::BadGateway(format!(
                "subscription `{name}`: the test event was not delivered: {error}"
            )));
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(by = %caller.user, %name, "http: test event sent");
    Ok(Json(serde_json::json!({ "sent": TEST_EVENT })))
}
