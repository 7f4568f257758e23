//! The PostgreSQL backend's foundation: a connection pool, a schema Herald creates and migrates
//! itself, and an outbox whose ids follow commit order (issue 11).
//!
//! Why PostgreSQL: operators who outgrow one machine already run it, and several stateless
//! Herald nodes can share one database. Why `tokio-postgres` with `deadpool-postgres` and not
//! `sqlx`: sqlx cannot sit in one build with `rusqlite` (STACK §8), and tokio-postgres pipelines.
//! No TLS: the database is on loopback here (STACK §11); a later step adds `tokio-postgres-rustls`
//! when a remote database needs it.
//!
//! What this module promises already, and later steps build on:
//! - [`Postgres::connect`] opens a pool from a `postgres://` URL, fails with
//!   [`StoreError::Unreachable`] when the database does not answer, and migrates the schema
//!   (`schema`): versioned, one transaction per migration, under an advisory lock so that two
//!   nodes starting at once do not collide, refusing a schema newer than the code
//!   ([`StoreError::SchemaTooNew`]).
//! - [`append_events`] writes events inside the caller's transaction, so a change and its events
//!   commit together, and [`Postgres::events_after`] reads them back. Ids are dense and strictly
//!   increasing in commit order, so a reader following the outbox can never skip an event that
//!   commits late: `outbox` holds the argument.
//!
//! It is not yet a variant of [`crate::backend::AnyBackend`]: nothing above the backend contract
//! sees it until the mailbox operations exist on it.

mod backend;
mod conn;
mod listen;
mod locks;
mod migrate;
mod outbox;
mod schema;

pub use backend::PgBackend;
pub use locks::HeldLock;
pub use migrate::{MigrateProgress, MigrateReport, migrate_embedded};
pub use outbox::append_events;
pub use schema::{Migration, VERSION};

use crate::error::{Result, StoreError};
use crate::model::StoredEvent;
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use std::time::Duration;
use tokio_postgres::NoTls;
use tokio_postgres::config::Host;

/// How long opening one connection may take before the database counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the PostgreSQL store lives and how many connections it may hold.
#[derive(Clone, PartialEq, Eq)]
pub struct PgConfig {
    /// `postgres://user[:password]@host[:port]/database[?options]`.
    pub url: String,
    /// The most connections the pool opens; callers beyond it wait for one to come back.
    pub pool_size: usize,
    /// The PostgreSQL schema (namespace) holding Herald's tables, created if missing; `None`
    /// uses the connection's own `search_path` (normally `public`). Lowercase letters, digits
    /// and `_` only, starting with a letter or `_`, at most 63 bytes: it is written into each
    /// connection's `search_path`, so it is checked rather than quoted.
    pub schema: Option<String>,
}

impl PgConfig {
    /// A configuration with the default pool size (16) and no schema of its own.
    pub fn new(url: impl Into<String>) -> PgConfig {
        PgConfig {
            url: url.into(),
            pool_size: 16,
            schema: None,
        }
    }
}

impl PgConfig {
    /// `host:port/database` of the URL, never its password; `(unparsable URL)` when it does
    /// not parse.
    pub fn target(&self) -> String {
        match self.url.parse::<tokio_postgres::Config>() {
            Ok(pg) => describe(&pg),
            Err(_) => "(unparsable URL)".to_owned(),
        }
    }
}

/// Shows where the database is but never the URL, which may hold a password.
impl std::fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConfig")
            .field("target", &self.target())
            .field("pool_size", &self.pool_size)
            .field("schema", &self.schema)
            .finish()
    }
}

/// A pool of connections to Herald's PostgreSQL database, with its schema up to date.
#[derive(Clone)]
pub struct Postgres {
    pool: Pool,
    /// The connection settings, for connections outside the pool (notifications).
    config: tokio_postgres::Config,
    /// `host:port/database`, never the password: what errors and logs name.
    target: String,
    schema: Option<String>,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("target", &self.target)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl Postgres {
    /// Opens the pool, proves the database answers by taking one connection, and brings the
    /// schema to [`VERSION`].
    pub async fn connect(config: &PgConfig) -> Result<Postgres> {
        let pg = Postgres::pool(config)?;
        let migration = pg.migrate().await?;
        if migration.from != migration.to {
            tracing::info!(
                target = %pg.target,
                from = migration.from,
                to = migration.to,
                "migrated the PostgreSQL schema"
            );
        }
        Ok(pg)
    }

    /// Builds the pool without connecting (connections open on first use).
    fn pool(config: &PgConfig) -> Result<Postgres> {
        if config.pool_size == 0 {
            return Err(StoreError::InvalidArgument(
                "the PostgreSQL pool size must be at least 1".into(),
            ));
        }
        let mut pg: tokio_postgres::Config = config.url.parse().map_err(|e| {
            // The parser's message never repeats the URL, so no password can leak through it.
            StoreError::InvalidArgument(format!("the PostgreSQL URL does not parse: {e}"))
        })?;
        // Options already in the URL are kept. The server's NOTICEs ("schema … does not exist,
        // skipping") would reach the log at INFO through the driver: warnings and up only.
        let mut options = pg.get_options().unwrap_or_default().to_owned();
        if !options.is_empty() {
            options.push(' ');
        }
        options.push_str("-c client_min_messages=warning");
        if let Some(schema) = &config.schema {
            check_schema_name(schema)?;
            // Every pooled connection starts with Herald's schema first, so no statement has to
            // name it.
            options.push_str(&format!(" -c search_path={schema}"));
        }
        pg.options(options);
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(CONNECT_TIMEOUT);
        }
        if pg.get_application_name().is_none() {
            pg.application_name("herald");
        }
        let target = describe(&pg);
        let manager = Manager::from_config(
            pg.clone(),
            NoTls,
            ManagerConfig {
                // A connection that died is noticed by `is_closed`; a test query per checkout
                // would cost a round trip on every operation.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::InvalidArgument(format!("PostgreSQL pool: {e}")))?;
        Ok(Postgres {
            pool,
            config: pg,
            target,
            schema: config.schema.clone(),
        })
    }

    /// Brings the schema to [`VERSION`]; a no-op when it already is there. [`Postgres::connect`]
    /// calls it; it is safe to call again, from any number of processes at once.
    pub async fn migrate(&self) -> Result<Migration> {
        let mut client = self.client().await?;
        schema::migrate(&mut client, self.schema.as_deref()).await
    }

    /// A connection from the pool, for a transaction that changes state together with
    /// [`append_events`]. It goes back to the pool when dropped.
    pub async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(|e| self.pool_error(e))
    }

    /// Up to `limit` events with ids above `after`, ascending. A reader that passes the last id
    /// it saw as `after` sees every committed event exactly once and in order (see `outbox`).
    pub async fn events_after(&self, after: u64, limit: usize) -> Result<Vec<StoredEvent>> {
        let client = self.client().await?;
        outbox::events_after(&client, after, limit).await
    }

    /// The id of the last committed event (0 when none ever was).
    pub async fn last_event_id(&self) -> Result<u64> {
        let client = self.client().await?;
        outbox::last_id(&client).await
    }

    /// `host:port/database` of the database, for messages (never the password).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Failing to get a connection: the pool was closed, or opening one failed. The latter
    /// means the database is unreachable unless the server answered with an error of its own
    /// (a missing database, a refused role), which is kept as it is.
    fn pool_error(&self, e: PoolError) -> StoreError {
        match e {
            PoolError::Closed => StoreError::Closed,
            PoolError::Backend(e) if e.as_db_error().is_some() => StoreError::Postgres(e),
            other => StoreError::Unreachable {
                target: self.target.clone(),
                reason: with_causes(&other),
            },
        }
    }
}

/// Drops the schema `config.schema` with everything in it (a benchmark's or a test's); does
/// nothing when it is absent or the configuration names none.
pub async fn drop_schema(config: &PgConfig) -> Result<()> {
    let Some(schema) = &config.schema else {
        return Ok(());
    };
    check_schema_name(schema)?;
    let mut plain = config.clone();
    plain.schema = None;
    plain.pool_size = 1;
    let pg = Postgres::pool(&plain)?;
    let client = pg.client().await?;
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await?;
    Ok(())
}

/// The error and its causes: the driver's own text ("error connecting to server") says nothing
/// of why (refused, timed out, unknown host) until its source is added.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// Refuses a schema name that would need quoting in `search_path`.
fn check_schema_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if first_ok && rest_ok && name.len() <= 63 && !name.starts_with("pg_") {
        Ok(())
    } else {
        Err(StoreError::InvalidArgument(format!(
            "PostgreSQL schema name `{name}`: use lowercase letters, digits and `_`, start with a \
             letter or `_`, at most 63 bytes, not `pg_…`"
        )))
    }
}

/// `host:port/database` for messages.
fn describe(pg: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = pg
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = pg
                .get_ports()
                .get(i)
                .or_else(|| pg.get_ports().first())
                .copied()
                .unwrap_or(5432);
            match host {
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(dir) => format!("{}:{port}", dir.display()),
            }
        })
        .collect();
    let hosts = if hosts.is_empty() {
        "localhost:5432".to_owned()
    } else {
        hosts.join(",")
    };
    match pg.get_dbname() {
        Some(db) => format!("{hosts}/{db}"),
        None => hosts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_that_need_quoting_are_refused() {
        for good in ["herald", "_h", "herald_test_42"] {
            assert!(check_schema_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Herald",
            "9lives",
            "a b",
            "a;drop",
            "a\"b",
            "pg_catalog",
            &"x".repeat(64),
        ] {
            assert!(check_schema_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_target_names_host_port_and_database_but_not_the_password() {
        let pg: tokio_postgres::Config = "postgres://alice:s3cret@db.example:6543/mail"
            .parse()
            .unwrap();
        let target = describe(&pg);
        assert_eq!(target, "db.example:6543/mail");
        assert!(!target.contains("s3cret"));
        let mut config = PgConfig::new("postgres://alice:s3cret@db.example:6543/mail");
        config.schema = Some("herald".into());
        let debug = format!("{config:?}");
        assert!(debug.contains("db.example:6543/mail"), "{debug}");
        assert!(!debug.contains("s3cret"), "{debug}");
    }

    #[test]
    fn a_bad_url_or_pool_size_is_refused_before_connecting() {
        let err = Postgres::pool(&PgConfig::new("not a url")).unwrap_err();
        assert!(matches!(err, StoreError::InvalidArgument(_)), "{err}");
        let mut config = PgConfig::new("postgres://127.0.0.1/test");
        config.pool_size = 0;
        assert!(matches!(
            Postgres::pool(&config),
            Err(StoreError::InvalidArgument(_))
        ));
    }

    #[tokio::test]
    async fn a_closed_port_is_reported_as_unreachable_naming_the_target() {
        // Port 1 on loopback: nothing listens there, so the connection is refused at once.
        let err = Postgres::connect(&PgConfig::new("postgres://herald:pw@127.0.0.1:1/test"))
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, StoreError::Unreachable { .. }),
            "{err:?}: {message}"
        );
        assert!(message.contains("127.0.0.1:1/test"), "{message}");
        assert!(message.contains("refused"), "the cause is given: {message}");
        assert!(!message.contains("pw"), "{message}");
    }
}
