//! The configuration file (TOML, DESIGN §4) and the defaults that apply without one.
//!
//! The file is read into typed sections that reject unknown keys, so a typo (`listn = …`) is an
//! error naming the key instead of a silently ignored setting. `--data` wins over
//! `[store] path`; without either the data directory is `./herald-data` (DESIGN §3). The keys
//! DESIGN §4 names are a contract; the others are documented in the README.

use anyhow::{Context as _, bail};
use herald_notify::SubscriptionConfig;
use herald_store::StoreConfig;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The default data directory.
pub const DEFAULT_DATA: &str = "herald-data";

/// The whole configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `[server]`.
    #[serde(default)]
    pub server: ServerSection,
    /// `[store]`.
    #[serde(default)]
    pub store: StoreSection,
    /// `[imap]`.
    #[serde(default)]
    pub imap: Option<ListenSection>,
    /// `[pop3]`.
    #[serde(default)]
    pub pop3: Option<ListenSection>,
    /// `[lmtp]`.
    #[serde(default)]
    pub lmtp: Option<ListenSection>,
    /// `[http]`: event streams and the admin API (keys in `herald_http::config`).
    #[serde(default)]
    pub http: Option<herald_http::HttpConfig>,
    /// `[tls]`.
    #[serde(default)]
    pub tls: Option<TlsSection>,
    /// `[events]`.
    #[serde(default)]
    pub events: EventsSection,
    /// `[auth]`.
    #[serde(default)]
    pub auth: AuthSection,
    /// `[[subscription]]`.
    #[serde(default)]
    pub subscription: Vec<SubscriptionConfig>,
    /// `[log]`.
    #[serde(default)]
    pub log: LogSection,
    /// `[metadata]`.
    #[serde(default)]
    pub metadata: MetadataSection,
}

/// `[metadata]`: the limits on IMAP METADATA (RFC 5464) the store enforces; unset keys keep
/// the defaults of `herald_store::MetadataLimits`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataSection {
    /// Largest value in octets (`[METADATA MAXSIZE n]`).
    pub max_value_bytes: Option<u64>,
    /// Most entries a mailbox (or the server) holds as one user sees it.
    pub max_entries_per_mailbox: Option<u64>,
    /// Most entries one user holds.
    pub max_entries_per_user: Option<u64>,
}

/// `[log]`: how Herald logs (what it logs is `HERALD_LOG`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// `text` (the default) or `json`; `--log-format` wins.
    pub format: Option<crate::cli::LogFormat>,
}

/// The log format the configuration file asks for, read before logging starts. A file that
/// cannot be read or parsed gives `None` here: the command's own load reports why.
pub fn log_format(config: Option<&Path>) -> Option<crate::cli::LogFormat> {
    let text = std::fs::read_to_string(config?).ok()?;
    toml::from_str::<FileConfig>(&text).ok()?.log.format
}

/// `[auth]`: password hashing and the login cache.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// Seconds a successful login is remembered so the same credentials skip argon2 (default
    /// 600; 0 turns the cache off). Failures are never cached; a password change is seen at
    /// once.
    pub cache_ttl_secs: Option<u64>,
    /// Argon2id memory per new hash, KiB (default 19456 = 19 MiB).
    pub argon2_memory_kib: Option<u32>,
    /// Argon2id passes (default 2). Memory × passes must stay at or above OWASP's floor.
    pub argon2_iterations: Option<u32>,
    /// Argon2id lanes (default 1).
    pub argon2_parallelism: Option<u32>,
}

/// `[server]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// `serverFQDN` of every event and the host of every IMAP URL; in a cluster, the
    /// cluster's name.
    pub hostname: Option<String>,
    /// This node's name in a cluster (`backend = "postgres"`), in every event it makes as
    /// `vnd.herald.node` (default: the machine's host name).
    pub node: Option<String>,
    /// How long a node's hold on a subscription lasts without renewal: when a node dies,
    /// another takes its subscriptions over within this time and a quarter (default 8).
    pub lease_secs: Option<u64>,
}

/// Default `[server] lease_secs`: a dead node's subscriptions move within 10 s.
pub const DEFAULT_LEASE_SECS: u64 = 8;

/// `[store]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// `embedded` (the default) or `postgres`.
    pub backend: Option<String>,
    /// Data directory: the whole store when embedded; with PostgreSQL only this node's own
    /// files (the event log).
    pub path: Option<PathBuf>,
    /// `postgres://user[:password]@host[:port]/database` for `backend = "postgres"`.
    pub url: Option<String>,
    /// Most PostgreSQL connections this process opens (default 16).
    pub pool_size: Option<usize>,
    /// The PostgreSQL schema holding Herald's tables (default: the connection's
    /// `search_path`, normally `public`); several installations can share one database.
    pub schema: Option<String>,
    /// When a flag change (STORE) is answered on the embedded store: `deferred` (the
    /// default) once committed, flushed to disk within 10 ms, its events published only once
    /// flushed; `commit` only after the flush, as every other write.
    pub flag_sync: Option<String>,
}

/// A listener section (`[imap]`, `[pop3]`, `[lmtp]`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenSection {
    /// Plain (STARTTLS-capable) listening addresses.
    #[serde(default)]
    pub listen: Vec<SocketAddr>,
    /// Implicit-TLS listening addresses (IMAPS 993, POP3S 995); need `[tls]`.
    #[serde(default)]
    pub tls_listen: Vec<SocketAddr>,
    /// Most concurrent connections (default 1000).
    pub max_connections: Option<usize>,
    /// Most concurrent connections from one client address, an IPv4 address or an IPv6 /64
    /// (default 100 for IMAP and POP3; none for LMTP, whose client is the MTA).
    pub max_connections_per_ip: Option<usize>,
    /// Largest message accepted, in bytes (LMTP SIZE, IMAP APPEND literal).
    pub max_message_size: Option<u64>,
    /// Allow passwords over unencrypted connections (POP3, IMAP). Defaults to true for
    /// loopback-only listeners, false otherwise.
    pub plaintext_auth: Option<bool>,
    /// IMAP only: commands one connection may send per second before the next ones are
    /// delayed (never refused); one second's worth may come at once (default 5000).
    pub commands_per_second: Option<u32>,
    /// IMAP only: MiB of message summaries (header, ENVELOPE, BODYSTRUCTURE) FETCH keeps for
    /// every session (default 64; 0 keeps none).
    pub summary_cache_mb: Option<u64>,
    /// LMTP only: where `user+detail@` delivers — `never` (INBOX), `subscribed` (the default: a
    /// folder the user subscribes to, never `\Sent` or `\Drafts`) or `any`.
    pub detail_delivery: Option<String>,
}

/// `[tls]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// `[events]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsSection {
    /// Event groups to generate; empty = all.
    #[serde(default)]
    pub groups: Vec<String>,
    /// RFC 5423 §4.2: `\Seen`/`\Deleted` as FlagsSet instead of MessageRead/MessageTrash.
    #[serde(default)]
    pub seen_deleted_as_flags: bool,
    /// Write every event to `DATA/events.jsonl` (default true).
    pub log: Option<bool>,
    /// Remove events every subscription has acknowledged once they are older than this many
    /// days (default 30; 0 keeps them whatever their age).
    pub retain_days: Option<u64>,
    /// Keep at most this many of the newest events; acknowledged older ones are removed
    /// (default: no limit). Whichever of the two limits an event passes first removes it.
    pub retain_events: Option<u64>,
    /// Seconds between two retention passes (default 60).
    pub prune_interval_secs: Option<u64>,
    /// Rotate `events.jsonl` before it would pass this many bytes (default 134217728, 128 MiB;
    /// 0 never rotates).
    pub log_max_bytes: Option<u64>,
    /// Rotated event logs kept, `events.jsonl.1` … `.N` (default 8).
    pub log_keep: Option<usize>,
}

/// Default `[events] retain_days`.
pub const DEFAULT_RETAIN_DAYS: u64 = 30;

/// What `[events]` says about retention and the event log's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// What the background task removes.
    pub policy: herald_store::retention::RetentionPolicy,
    /// How often it runs.
    pub interval: std::time::Duration,
    /// `events.jsonl` rotation: the size limit (`None`: never) and the files kept.
    pub log_max_bytes: Option<u64>,
    /// Rotated files kept.
    pub log_keep: usize,
}

impl EventsSection {
    /// Checks and applies the defaults of the retention and rotation keys.
    pub fn retention(&self) -> anyhow::Result<Retention> {
        let days = self.retain_days.unwrap_or(DEFAULT_RETAIN_DAYS);
        anyhow::ensure!(
            days <= 36_500,
            "[events] retain_days = {days}: at most 36500 (0 keeps events whatever their age)"
        );
        if let Some(n) = self.retain_events {
            anyhow::ensure!(
                n >= 1,
                "[events] retain_events = 0: at least 1 (the newest event always stays); leave \
                 it out for no limit"
            );
        }
        let interval = self
            .prune_interval_secs
            .unwrap_or(herald_notify::retention::DEFAULT_INTERVAL.as_secs());
        anyhow::ensure!(
            (1..=86_400).contains(&interval),
            "[events] prune_interval_secs = {interval}: from 1 to 86400"
        );
        let max_bytes = self
            .log_max_bytes
            .unwrap_or(herald_notify::log::DEFAULT_MAX_BYTES);
        anyhow::ensure!(
            max_bytes == 0 || max_bytes >= 1024,
            "[events] log_max_bytes = {max_bytes}: at least 1024 (0 never rotates)"
        );
        let keep = self.log_keep.unwrap_or(herald_notify::log::DEFAULT_KEEP);
        anyhow::ensure!(
            (1..=herald_notify::log::MAX_KEEP).contains(&keep),
            "[events] log_keep = {keep}: from 1 to {}",
            herald_notify::log::MAX_KEEP
        );
        Ok(Retention {
            policy: herald_store::retention::RetentionPolicy {
                max_age_secs: (days > 0).then_some(days * 86_400),
                max_events: self.retain_events,
                ..herald_store::retention::RetentionPolicy::default()
            },
            interval: std::time::Duration::from_secs(interval),
            log_max_bytes: (max_bytes > 0).then_some(max_bytes),
            log_keep: keep,
        })
    }
}

/// Reads the configuration file, or the defaults when there is none.
pub fn load(config: Option<&Path>) -> anyhow::Result<FileConfig> {
    let Some(path) = config else {
        return Ok(FileConfig::default());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file: FileConfig =
        toml::from_str(&text).with_context(|| format!("in {}", path.display()))?;
    for (name, section) in [
        ("imap", &file.imap),
        ("pop3", &file.pop3),
        ("lmtp", &file.lmtp),
    ] {
        let Some(s) = section else { continue };
        if name != "lmtp" && s.detail_delivery.is_some() {
            bail!(
                "in {}: [{name}] detail_delivery is an [lmtp] setting",
                path.display()
            );
        }
        if name != "imap" && s.commands_per_second.is_some() {
            bail!(
                "in {}: [{name}] commands_per_second is an [imap] setting",
                path.display()
            );
        }
        if name != "imap" && s.summary_cache_mb.is_some() {
            bail!(
                "in {}: [{name}] summary_cache_mb is an [imap] setting",
                path.display()
            );
        }
        if s.commands_per_second == Some(0) {
            bail!(
                "in {}: [imap] commands_per_second must be at least 1",
                path.display()
            );
        }
        // LMTP has no login (its client is the MTA): a password policy there would read as if
        // it protected something.
        if name == "lmtp" && s.plaintext_auth.is_some() {
            bail!(
                "in {}: [lmtp] plaintext_auth means nothing: LMTP has no login; remove it",
                path.display()
            );
        }
    }
    for group in &file.events.groups {
        if herald_events::EventGroup::from_name(group).is_none() {
            bail!(
                "in {}: [events] groups: `{group}` is not a group (message, quota, flags, access, mailbox, subscription, account, metadata)",
                path.display()
            );
        }
    }
    // Unique, well-formed names: two tables of one name would share one cursor.
    herald_notify::subscription::check_configured(&file.subscription)
        .with_context(|| format!("in {}", path.display()))?;
    // Everything a subscription says is checked before anything starts — event and parameter
    // names, and the sink's URL and secrets (without connecting) — so a mistake stops Herald
    // before it opens the store or binds a port, instead of failing every delivery later.
    for s in &file.subscription {
        herald_notify::Subscription::compile(s.clone())
            .with_context(|| format!("in {}", path.display()))?;
        herald_notify::sink::check(&s.sink)
            .with_context(|| format!("in {}: subscription `{}`", path.display(), s.name))?;
    }
    file.events
        .retention()
        .with_context(|| format!("in {}", path.display()))?;
    Ok(file)
}

/// Builds the store configuration from `--data` and the file.
pub fn store_config(data: Option<&Path>, file: &FileConfig) -> anyhow::Result<StoreConfig> {
    let postgres = match file.store.backend.as_deref() {
        None | Some("embedded") => {
            if file.store.url.is_some()
                || file.store.pool_size.is_some()
                || file.store.schema.is_some()
            {
                bail!(
                    "[store] url, pool_size and schema are for backend = \"postgres\"; the \
                     embedded store uses [store] path"
                );
            }
            None
        }
        Some("postgres") => {
            let Some(url) = file.store.url.clone() else {
                bail!(
                    "[store] backend = \"postgres\" needs url = \"postgres://user@host/database\""
                );
            };
            let pool_size = file.store.pool_size.unwrap_or(16);
            anyhow::ensure!(
                (1..=1000).contains(&pool_size),
                "[store] pool_size = {pool_size}: between 1 and 1000"
            );
            let mut pg = herald_store::postgres::PgConfig::new(url);
            pg.pool_size = pool_size;
            pg.schema = file.store.schema.clone();
            Some(pg)
        }
        Some(other) => {
            bail!("[store] backend = \"{other}\": use \"embedded\" (the default) or \"postgres\"")
        }
    };
    let path = match (data, &file.store.path) {
        (Some(d), _) => d.to_path_buf(),
        (None, Some(p)) => p.clone(),
        (None, None) => PathBuf::from(DEFAULT_DATA),
    };
    let mut c = StoreConfig::new(path);
    c.defer_flag_sync = match file.store.flag_sync.as_deref() {
        None | Some("deferred") => true,
        Some("commit") => false,
        Some(other) => bail!(
            "[store] flag_sync = \"{other}\": use \"deferred\" (the default: a STORE is \
             answered before its fsync, its events published after) or \"commit\""
        ),
    };
    if postgres.is_some() {
        let node = file.server.node.clone().unwrap_or_else(system_hostname);
        anyhow::ensure!(
            !node.is_empty() && node.len() <= 255 && !node.chars().any(char::is_control),
            "[server] node = {node:?}: a name of 1 to 255 printable characters"
        );
        c.node = Some(node);
    } else if file.server.node.is_some() || file.server.lease_secs.is_some() {
        bail!(
            "[server] node and lease_secs are for a cluster of nodes on one database \
             ([store] backend = \"postgres\")"
        );
    }
    if let Some(secs) = file.server.lease_secs {
        anyhow::ensure!(
            (2..=300).contains(&secs),
            "[server] lease_secs = {secs}: between 2 and 300"
        );
    }
    c.postgres = postgres;
    c.server_fqdn = file.server.hostname.clone().unwrap_or_else(system_hostname);
    let auth = &file.auth;
    if let Some(s) = auth.cache_ttl_secs {
        anyhow::ensure!(
            s <= 86_400,
            "[auth] cache_ttl_secs = {s}: at most 86400 (a day); a password check older than \
             that should be made again"
        );
        c.auth_cache_ttl = std::time::Duration::from_secs(s);
    }
    c.password.memory_kib = auth.argon2_memory_kib.unwrap_or(c.password.memory_kib);
    c.password.iterations = auth.argon2_iterations.unwrap_or(c.password.iterations);
    c.password.parallelism = auth.argon2_parallelism.unwrap_or(c.password.parallelism);
    c.password
        .check()
        .map_err(|e| anyhow::anyhow!("[auth]: {e}"))?;
    c.seen_deleted_as_flags = file.events.seen_deleted_as_flags;
    c.event_groups = file
        .events
        .groups
        .iter()
        .filter_map(|g| herald_events::EventGroup::from_name(g))
        .collect();
    let m = &file.metadata;
    let limits = &mut c.metadata;
    limits.max_value_bytes = m.max_value_bytes.unwrap_or(limits.max_value_bytes);
    limits.max_entries_per_mailbox = m
        .max_entries_per_mailbox
        .unwrap_or(limits.max_entries_per_mailbox);
    limits.max_entries_per_user = m
        .max_entries_per_user
        .unwrap_or(limits.max_entries_per_user);
    // A value travels inside one IMAP command (at most 1 MiB), with its entry name beside it;
    // a limit of nothing would make METADATA unusable.
    anyhow::ensure!(
        (1..=512 * 1024).contains(&limits.max_value_bytes),
        "[metadata] max_value_bytes = {}: between 1 and 524288",
        limits.max_value_bytes
    );
    anyhow::ensure!(
        limits.max_entries_per_mailbox >= 1 && limits.max_entries_per_user >= 1,
        "[metadata] max_entries_per_mailbox and max_entries_per_user are at least 1"
    );
    Ok(c)
}

/// The machine's host name, or `localhost`.
fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_configuration_loads_and_its_subscriptions_compile() {
        let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/herald.toml");
        let file = load(Some(&sample)).unwrap();
        assert_eq!(file.server.hostname.as_deref(), Some("mail.example.org"));
        let store = store_config(None, &file).unwrap();
        assert_eq!(store.path, Path::new("/var/lib/herald"));
        assert_eq!(file.subscription.len(), 2);
        for s in &file.subscription {
            herald_notify::Subscription::compile(s.clone()).unwrap();
        }
    }

    fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let file = dir.path().join("herald.toml");
        std::fs::write(&file, text).unwrap();
        file
    }

    #[test]
    fn keys_of_design_section_4() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            &dir,
            r#"
[server]
hostname = "mail.example.org"
[store]
backend = "embedded"
path = "/srv/h"
[imap]
listen = ["127.0.0.1:1143"]
[pop3]
listen = ["127.0.0.1:1110"]
[lmtp]
listen = ["127.0.0.1:2424"]
[http]
listen = ["127.0.0.1:8080"]
[events]
groups = ["message", "quota", "flags", "access", "mailbox", "subscription"]
seen_deleted_as_flags = true
[[subscription]]
name = "audit"
events = ["MessageNew", "flags"]
sink = { type = "stdout" }
"#,
        );
        let f = load(Some(&file)).unwrap();
        let c = store_config(None, &f).unwrap();
        assert_eq!(c.path, PathBuf::from("/srv/h"));
        assert_eq!(c.server_fqdn, "mail.example.org");
        assert!(c.seen_deleted_as_flags);
        assert_eq!(
            f.imap.as_ref().unwrap().listen,
            ["127.0.0.1:1143".parse().unwrap()]
        );
        assert_eq!(f.subscription.len(), 1);
        let c = store_config(Some(Path::new("/other")), &f).unwrap();
        assert_eq!(c.path, PathBuf::from("/other"), "--data wins");
        let c = store_config(None, &FileConfig::default()).unwrap();
        assert_eq!(c.path, PathBuf::from(DEFAULT_DATA));
    }

    #[test]
    fn http_section() {
        let dir = tempfile::tempdir().unwrap();
        let f = load(Some(&write(
            &dir,
            "[http]\nlisten = [\"127.0.0.1:0\"]\ntls_listen = [\"[::1]:8443\"]\n\
             public_url = \"https://mail.example.org:8443\"\n\
             tokens = [{ user = \"alice\", sha256 = \"ab\" }]\n",
        )))
        .unwrap();
        let http = f.http.unwrap();
        assert_eq!(http.tokens[0].user, "alice");
        assert_eq!(http.tls_listen, ["[::1]:8443".parse().unwrap()]);
        assert_eq!(
            http.public_url.as_deref(),
            Some("https://mail.example.org:8443")
        );
        let err = format!(
            "{:#}",
            load(Some(&write(&dir, "[http]\ntokns = []\n"))).unwrap_err()
        );
        assert!(err.contains("tokns"), "{err}");
    }

    #[test]
    fn the_imap_command_rate_is_an_imap_setting_of_at_least_one() {
        let dir = tempfile::tempdir().unwrap();
        let text = "[imap]\ncommands_per_second = 20000\nsummary_cache_mb = 8\n";
        let imap = load(Some(&write(&dir, text))).unwrap().imap.unwrap();
        assert_eq!(imap.commands_per_second, Some(20000));
        assert_eq!(imap.summary_cache_mb, Some(8));
        for (text, says) in [
            (
                "[pop3]\ncommands_per_second = 10\n",
                "[pop3] commands_per_second is an [imap] setting",
            ),
            (
                "[imap]\ncommands_per_second = 0\n",
                "commands_per_second must be at least 1",
            ),
            (
                "[lmtp]\nsummary_cache_mb = 8\n",
                "[lmtp] summary_cache_mb is an [imap] setting",
            ),
        ] {
            let err = format!("{:#}", load(Some(&write(&dir, text))).unwrap_err());
            assert!(err.contains(says), "{err}");
        }
    }

    #[test]
    fn subscription_names_are_unique_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let sub = |name: &str| {
            format!("[[subscription]]\nname = \"{name}\"\nsink = {{ type = \"stdout\" }}\n")
        };
        let twice = format!("{}{}{}", sub("hook"), sub("audit"), sub("hook"));
        let err = format!("{:#}", load(Some(&write(&dir, &twice))).unwrap_err());
        assert!(err.contains("`hook`") && err.contains("unique"), "{err}");
        let long = sub(&"n".repeat(65));
        let err = format!("{:#}", load(Some(&write(&dir, &long))).unwrap_err());
        assert!(err.contains("1 to 64 characters"), "{err}");
        let f = load(Some(&write(
            &dir,
            &format!("{}{}", sub("a.b-c_1"), sub("x")),
        )))
        .unwrap();
        assert_eq!(f.subscription.len(), 2);
    }

    #[test]
    fn mistakes_are_errors_that_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let err = |text: &str| format!("{:#}", load(Some(&write(&dir, text))).unwrap_err());
        assert!(err("[imap]\nlisn = []\n").contains("lisn"));
        assert!(err("[imap]\nlisten = [\"localhost\"]\n").contains("listen"));
        assert!(err("[events]\ngroups = [\"mesage\"]\n").contains("mesage"));
        assert!(err("[sever]\n").contains("sever"));
        let f = load(Some(&write(&dir, "[store]\nbackend = \"postgres\"\n"))).unwrap();
        assert!(format!("{:#}", store_config(None, &f).unwrap_err()).contains("needs url"));
        let f = load(Some(&write(&dir, "[store]\nbackend = \"mysql\"\n"))).unwrap();
        assert!(format!("{:#}", store_config(None, &f).unwrap_err()).contains("mysql"));
        let f = load(Some(&write(&dir, "[store]\nurl = \"postgres://h/d\"\n"))).unwrap();
        assert!(
            store_config(None, &f).is_err(),
            "a URL without the backend is a mistake"
        );
        let f = load(Some(&write(
            &dir,
            "[store]\nbackend = \"postgres\"\nurl = \"postgres://herald@db/mail\"\n\
             pool_size = 4\nschema = \"herald\"\n",
        )))
        .unwrap();
        let pg = store_config(None, &f).unwrap().postgres.unwrap();
        assert_eq!(
            (pg.url.as_str(), pg.pool_size, pg.schema.as_deref()),
            ("postgres://herald@db/mail", 4, Some("herald"))
        );
        // Cluster keys: only with PostgreSQL, and within their bounds.
        let pg = "[store]\nbackend = \"postgres\"\nurl = \"postgres://h/d\"\n";
        let cluster = |server: &str| {
            let f = load(Some(&write(&dir, &format!("[server]\n{server}\n{pg}")))).unwrap();
            store_config(None, &f).map_err(|e| format!("{e:#}"))
        };
        let c = cluster("node = \"mx1\"\nlease_secs = 5").unwrap();
        assert_eq!(c.node.as_deref(), Some("mx1"));
        assert!(
            cluster("").unwrap().node.is_some(),
            "the host name by default"
        );
        assert!(
            cluster("lease_secs = 1")
                .unwrap_err()
                .contains("lease_secs")
        );
        assert!(
            cluster("lease_secs = 301")
                .unwrap_err()
                .contains("lease_secs")
        );
        assert!(cluster("node = \"\"").unwrap_err().contains("node"));
        let f = load(Some(&write(&dir, &format!("{pg}pool_size = 0\n")))).unwrap();
        assert!(format!("{:#}", store_config(None, &f).unwrap_err()).contains("pool_size"));
        let f = load(Some(&write(&dir, "[server]\nnode = \"mx1\"\n"))).unwrap();
        assert!(format!("{:#}", store_config(None, &f).unwrap_err()).contains("cluster"));
        let flag_sync = |v: &str| {
            let f = load(Some(&write(
                &dir,
                &format!("[store]\nflag_sync = \"{v}\"\n"),
            )))
            .unwrap();
            store_config(None, &f).map(|c| c.defer_flag_sync)
        };
        assert!(flag_sync("deferred").unwrap());
        assert!(!flag_sync("commit").unwrap());
        assert!(format!("{:#}", flag_sync("later").unwrap_err()).contains("flag_sync"));
        let f = load(Some(&write(&dir, "[store]\n"))).unwrap();
        assert!(
            store_config(None, &f).unwrap().defer_flag_sync,
            "deferred by default"
        );
        assert!(load(Some(&dir.path().join("missing.toml"))).is_err());
    }

    #[test]
    fn events_retention_and_rotation() {
        use herald_store::retention::RetentionPolicy;
        let dir = tempfile::tempdir().unwrap();
        // The defaults: acknowledged events older than 30 days go; the log rotates at 128 MiB.
        let r = EventsSection::default().retention().unwrap();
        assert_eq!(
            r.policy,
            RetentionPolicy {
                max_age_secs: Some(30 * 86_400),
                ..RetentionPolicy::default()
            }
        );
        assert_eq!((r.log_max_bytes, r.log_keep), (Some(128 << 20), 8));
        assert_eq!(r.interval.as_secs(), 60);
        let f = load(Some(&write(
            &dir,
            "[events]\nretain_days = 0\nretain_events = 1000\nlog_max_bytes = 0\nlog_keep = 3\n\
             prune_interval_secs = 5\n",
        )))
        .unwrap();
        let r = f.events.retention().unwrap();
        assert_eq!(r.policy.max_age_secs, None, "0 days: no age limit");
        assert_eq!(r.policy.max_events, Some(1000));
        assert_eq!((r.log_max_bytes, r.log_keep), (None, 3));
        assert_eq!(r.interval.as_secs(), 5);
        let err = |text: &str| format!("{:#}", load(Some(&write(&dir, text))).unwrap_err());
        assert!(err("[events]\nretain_events = 0\n").contains("retain_events"));
        assert!(err("[events]\nlog_keep = 0\n").contains("log_keep"));
        assert!(err("[events]\nlog_max_bytes = 10\n").contains("log_max_bytes"));
        assert!(err("[events]\nprune_interval_secs = 0\n").contains("prune_interval_secs"));
        assert!(err("[events]\nretain_days = 99999999\n").contains("retain_days"));
        assert!(err("[events]\nretain_dys = 3\n").contains("retain_dys"));
    }

    #[test]
    fn metadata_section_sets_the_limits() {
        let dir = tempfile::tempdir().unwrap();
        let f = load(Some(&write(
            &dir,
            "[metadata]\nmax_value_bytes = 100\nmax_entries_per_user = 7\n",
        )))
        .unwrap();
        let c = store_config(None, &f).unwrap();
        assert_eq!(c.metadata.max_value_bytes, 100);
        assert_eq!(c.metadata.max_entries_per_user, 7);
        assert_eq!(
            c.metadata.max_entries_per_mailbox,
            herald_store::MetadataLimits::default().max_entries_per_mailbox
        );
        let zero = load(Some(&write(&dir, "[metadata]\nmax_value_bytes = 0\n"))).unwrap();
        let e = format!("{:#}", store_config(None, &zero).unwrap_err());
        assert!(e.contains("max_value_bytes"), "{e}");
        assert!(load(Some(&write(&dir, "[metadata]\nmax_size = 1\n"))).is_err());
    }

    #[test]
    fn auth_section_sets_the_cache_and_argon2_cost() {
        let dir = tempfile::tempdir().unwrap();
        let f = load(Some(&write(
            &dir,
            "[auth]\ncache_ttl_secs = 0\nargon2_memory_kib = 65536\nargon2_iterations = 3\n",
        )))
        .unwrap();
        let c = store_config(None, &f).unwrap();
        assert_eq!(c.auth_cache_ttl, std::time::Duration::ZERO);
        assert_eq!((c.password.memory_kib, c.password.iterations), (65536, 3));
        let defaults = store_config(None, &FileConfig::default()).unwrap();
        assert_eq!(defaults.auth_cache_ttl.as_secs(), 600);
        let weak = load(Some(&write(&dir, "[auth]\nargon2_memory_kib = 1024\n"))).unwrap();
        let e = format!("{:#}", store_config(None, &weak).unwrap_err());
        assert!(e.contains("[auth]") && e.contains("OWASP"), "{e}");
        let long = load(Some(&write(&dir, "[auth]\ncache_ttl_secs = 99999999999\n"))).unwrap();
        let e = format!("{:#}", store_config(None, &long).unwrap_err());
        assert!(e.contains("cache_ttl_secs"), "{e}");
        let huge = load(Some(&write(
            &dir,
            "[auth]\nargon2_memory_kib = 4000000000\n",
        )))
        .unwrap();
        assert!(store_config(None, &huge).is_err());
    }
}
