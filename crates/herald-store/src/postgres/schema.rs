//! Herald's PostgreSQL schema: created and migrated by Herald itself, never by hand.
//!
//! Why so: an operator points several nodes at one database and starts them; the first to get
//! there creates the tables, a newer node upgrades them, and an older node must refuse to run on
//! tables it does not understand rather than corrupt them.
//!
//! How:
//! - `herald_schema` holds one row, the version; a database without it is at version 0.
//! - [`MIGRATIONS`] are applied in order, **each in its own transaction** together with the
//!   version bump, so a crash between two leaves a consistent, lower version to resume from.
//! - Every step first takes a transaction-scoped advisory lock keyed on the schema name. Two
//!   processes starting at once queue on it: the second re-reads the version after the first
//!   committed and finds nothing left to do. The lock goes with the transaction, so a process
//!   that dies while migrating cannot leave it held (a session lock would stay with a pooled
//!   connection).
//! - A version above [`VERSION`] is refused with [`StoreError::SchemaTooNew`] naming both.

use crate::error::{Result, StoreError};
use tokio_postgres::IsolationLevel;

/// The advisory lock class of schema migration (`'HRLD'` as a big-endian i32); the second key
/// is the hash of the schema name, so tests in separate schemas do not wait for each other.
const LOCK_CLASS: i32 = 0x4852_4c44;

/// Version 1: the outbox.
///
/// - `outbox`: one row per event, `event` the JSON exactly as committed (text, not `jsonb`,
///   which would reorder keys and normalise numbers). `id` is given by `outbox_head`, not by a
///   sequence: sequences hand out values before commit, so they do not follow commit order.
/// - `outbox_head`: one row, the last id given out. Appending events updates it in the
///   appending transaction; its row lock orders the appenders (see `outbox`).
const V1: &str = r#"
CREATE TABLE outbox (
    id    bigint PRIMARY KEY,
    event text NOT NULL
);
CREATE TABLE outbox_head (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    last_id  bigint NOT NULL CHECK (last_id >= 0)
);
INSERT INTO outbox_head (last_id) VALUES (0);
"#;

/// The migrations, in order: entry `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[V1];

/// The schema version this code creates and understands.
pub const VERSION: i32 = MIGRATIONS.len() as i32;

/// What one [`migrate`](super::Postgres::migrate) did: equal versions mean nothing to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// The version found.
    pub from: i32,
    /// The version left (always [`VERSION`]).
    pub to: i32,
}

/// Applies the missing migrations, one transaction each (see the module doc).
pub(super) async fn migrate(
    client: &mut deadpool_postgres::Object,
    schema: Option<&str>,
) -> Result<Migration> {
    let lock_key = match schema {
        Some(name) => name.to_owned(),
        None => client
            .query_one("SELECT coalesce(current_schema(), '')", &[])
            .await?
            .get(0),
    };
    let mut from = None;
    loop {
        // READ COMMITTED whatever the database's default: each statement after the lock must
        // see what the process that held it before committed, not a snapshot taken before the
        // wait (REPEATABLE READ would re-apply a migration already done, and fail).
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::ReadCommitted)
            .start()
            .await?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            &[&LOCK_CLASS, &lock_key],
        )
        .await?;
        // Created under the lock: two concurrent `CREATE … IF NOT EXISTS` of one name can still
        // collide on a catalog index. And only when missing: `IF NOT EXISTS` checks the CREATE
        // privilege first, which a role given ready-made tables need not have.
        if let Some(name) = schema {
            let missing: bool = tx
                .query_one("SELECT to_regnamespace($1) IS NULL", &[&name])
                .await?
                .get(0);
            if missing {
                // Checked by `check_schema_name`, so it needs no quoting.
                tx.batch_execute(&format!("CREATE SCHEMA {name}")).await?;
            }
        }
        let missing: bool = tx
            .query_one("SELECT to_regclass('herald_schema') IS NULL", &[])
            .await?
            .get(0);
        if missing {
            tx.batch_execute(
                "CREATE TABLE herald_schema (
                     only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
                     version  integer NOT NULL
                 )",
            )
            .await?;
        }
        let found: i32 = tx
            .query_opt("SELECT version FROM herald_schema", &[])
            .await?
            .map_or(0, |row| row.get(0));
        let from = *from.get_or_insert(found);
        if found < 0 {
            return Err(StoreError::Corrupt(format!(
                "the PostgreSQL schema version is {found}"
            )));
        }
        if found > VERSION {
            return Err(StoreError::SchemaTooNew {
                found: i64::from(found),
                known: i64::from(VERSION),
            });
        }
        if found == VERSION {
            tx.commit().await?;
            return Ok(Migration { from, to: VERSION });
        }
        tx.batch_execute(MIGRATIONS[found as usize]).await?;
        tx.execute(
            "INSERT INTO herald_schema (version) VALUES ($1)
             ON CONFLICT (only_row) DO UPDATE SET version = excluded.version",
            &[&(found + 1)],
        )
        .await?;
        tx.commit().await?;
        tracing::debug!(version = found + 1, "applied a PostgreSQL schema migration");
    }
}
