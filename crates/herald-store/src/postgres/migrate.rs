//! Copying an embedded store (a data directory) into PostgreSQL, so an operator who outgrows
//! one machine keeps everything: accounts and password hashes, mailboxes with their UIDVALIDITY
//! and UIDNEXT, messages with their UIDs, flags, MODSEQs and content, quotas, the outbox with
//! its ids, subscriptions' cursors and parked events, METADATA, ACLs, URLAUTH keys. Clients
//! see the same mailboxes and download nothing again; consumers resume on the same event ids.
//!
//! How:
//! - The source is read in one SQLite read transaction: one consistent snapshot, even if a
//!   process were writing (the server should be stopped: what it commits after the snapshot
//!   would not be copied).
//! - The target is written in **one** PostgreSQL transaction: a failed or interrupted copy
//!   leaves nothing behind, and the command can simply be run again.
//! - The target must be empty (no account, no event): a copy never merges two stores.
//! - Tables have the same shape on both sides (`schema` version 3 mirrors SQLite's version
//!   14), so each is copied column by column as it is. Message content kept in files by the
//!   embedded store moves into the database. Identity counters are set past the copied ids,
//!   and the outbox head to the last id ever given out, so ids are never reused.
//! - Afterwards the copy is checked: row counts per table, and the store's own consistency
//!   check on the PostgreSQL side.

use super::conn::PgDb;
use super::{PgConfig, Postgres};
use crate::blobs::BlobDir;
use crate::error::{Result, StoreError};
use crate::sql::{self, Arg, Db, Value};
use std::borrow::Cow;
use std::path::Path;
use tokio::runtime::Handle;

/// The tables copied, parents first. `blob_trash` is not: it lists files to unlink.
const TABLES: &[&str] = &[
    "meta",
    "accounts",
    "mailboxes",
    "subscriptions",
    "blobs",
    "messages",
    "expunged",
    "thread_refs",
    "outbox",
    "deliveries",
    "parked",
    "push_subscriptions",
    "metadata",
    "urlauth_keys",
    "acl",
];

/// Columns of `mailboxes` the trigger on `messages` keeps (schema version 4).
const COUNTED: &[&str] = &["unseen", "deleted", "bytes"];

/// Rows per `INSERT`: fewer round trips than one row at a time, well below PostgreSQL's
/// 65535 parameters for any table here.
const ROWS_PER_INSERT: usize = 200;

/// How far a copy is, for a progress display.
#[derive(Debug, Clone, Copy)]
pub struct MigrateProgress<'a> {
    /// The table being copied.
    pub table: &'a str,
    /// Rows copied so far, over all tables.
    pub done: u64,
    /// Rows to copy, over all tables.
    pub total: u64,
}

/// What a copy did.
#[derive(Debug, Clone, Default)]
pub struct MigrateReport {
    /// `(table, rows)` in copy order.
    pub tables: Vec<(String, u64)>,
    /// Message contents moved from files into the database.
    pub files: u64,
    /// The outbox head (the last event id given out) now in PostgreSQL.
    pub last_event_id: u64,
}

/// Copies the embedded store in `data` into the empty PostgreSQL store `target`, calling
/// `progress` as it goes; see the module documentation.
pub async fn migrate_embedded(
    data: &Path,
    target: &PgConfig,
    progress: impl FnMut(MigrateProgress<'_>) + Send + 'static,
) -> Result<MigrateReport> {
    let db_path = data.join(crate::embedded::DB_FILE);
    if !db_path.is_file() {
        return Err(StoreError::InvalidArgument(format!(
            "no Herald store in {}",
            data.display()
        )));
    }
    let pg = Postgres::connect(target).await?;
    let client = pg.client().await?;
    let blobs = BlobDir::open(data)?;
    let handle = Handle::current();
    let data = data.to_path_buf();
    tokio::task::spawn_blocking(move || {
        // Brings an older data directory to the version the copy expects, as opening it would.
        let mut source = crate::embedded::schema::connect(
            &db_path,
            true,
            std::time::Duration::from_secs(10),
            false,
        )?;
        crate::embedded::schema::migrate(&mut source)?;
        let target = PgDb::new(client, handle);
        copy(&source, &target, &blobs, progress).map_err(|e| match e {
            Copy::Store(e) => e,
            Copy::Sql(e) => e.into(),
        })
    })
    .await
    .map_err(|_| StoreError::Closed)?
    .map_err(|e| {
        tracing::warn!(data = %data.display(), error = %e, "the copy to PostgreSQL failed");
        e
    })
}

enum Copy {
    Store(StoreError),
    Sql(sql::Error),
}

impl From<sql::Error> for Copy {
    fn from(e: sql::Error) -> Copy {
        Copy::Sql(e)
    }
}

impl From<StoreError> for Copy {
    fn from(e: StoreError) -> Copy {
        Copy::Store(e)
    }
}

fn copy(
    source: &rusqlite::Connection,
    target: &PgDb,
    blobs: &BlobDir,
    mut progress: impl FnMut(MigrateProgress<'_>),
) -> std::result::Result<MigrateReport, Copy> {
    let src: &dyn Db = source;
    let dst: &dyn Db = target;
    src.execute_batch("BEGIN")?;
    dst.execute_batch("BEGIN")?;
    let result = (|| {
        let existing: i64 = dst.query_row(
            "SELECT (SELECT COUNT(*) FROM accounts) + (SELECT COUNT(*) FROM outbox)",
            (),
            |r| r.get(0),
        )?;
        if existing > 0 {
            return Err(Copy::Store(StoreError::InvalidArgument(
                "the PostgreSQL store is not empty: copy into a new database or schema".into(),
            )));
        }
        let mut counts = Vec::new();
        let mut total = 0u64;
        for table in TABLES {
            let n: i64 =
                src.query_row(&format!("SELECT COUNT(*) FROM {table}"), (), |r| r.get(0))?;
            counts.push(n.max(0) as u64);
            total += n.max(0) as u64;
        }
        let mut report = MigrateReport::default();
        let mut done = 0u64;
        for table in TABLES {
            let mut columns = columns(source, table)?;
            if *table == "mailboxes" {
                // Kept by the trigger on `messages` as their rows arrive: copied, they would
                // count twice.
                columns.retain(|c| !COUNTED.contains(&c.as_str()));
            }
            let data_column = (*table == "blobs").then(|| {
                (
                    columns.iter().position(|c| c == "data"),
                    columns.iter().position(|c| c == "sha256"),
                )
            });
            let mut pending: Vec<Vec<Arg<'static>>> = Vec::with_capacity(ROWS_PER_INSERT);
            let mut copied = 0u64;
            let mut failure: Option<Copy> = None;
            let read = src.each(
                &format!("SELECT {} FROM {table}", columns.join(", ")),
                &[],
                &mut |row| {
                    let mut values: Vec<Arg<'static>> = (0..columns.len())
                        .map(|i| row.value(i).map(owned))
                        .collect::<sql::Result<_>>()?;
                    if let Some((Some(data), Some(sha))) = data_column
                        && matches!(values[data], Arg::Null)
                    {
                        // Content the embedded store kept in a file moves into the row.
                        match file_content(blobs, &values[sha]) {
                            Ok(bytes) => {
                                values[data] = Arg::Blob(Cow::Owned(bytes));
                                report.files += 1;
                            }
                            Err(e) => {
                                // Any error stops the read; the one to report is kept.
                                failure = Some(Copy::Store(e));
                                return Err(sql::Error::NoRow);
                            }
                        }
                    }
                    pending.push(values);
                    if pending.len() == ROWS_PER_INSERT {
                        insert(dst, table, &columns, &pending)?;
                        copied += pending.len() as u64;
                        pending.clear();
                        progress(MigrateProgress {
                            table,
                            done: done + copied,
                            total,
                        });
                    }
                    Ok(())
                },
            );
            read.map_err(|e| failure.take().unwrap_or(Copy::Sql(e)))?;
            if !pending.is_empty() {
                insert(dst, table, &columns, &pending)?;
                copied += pending.len() as u64;
            }
            done += copied;
            progress(MigrateProgress { table, done, total });
            report.tables.push(((*table).to_owned(), copied));
        }
        // Ids are never reused: identity counters go past what was copied, and the outbox head
        // to the last id ever given out (events may have been pruned since).
        for table in ["accounts", "mailboxes", "blobs"] {
            dst.query_row(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                                   GREATEST((SELECT MAX(id) FROM {table}), 1),
                                   (SELECT MAX(id) FROM {table}) IS NOT NULL)"
                ),
                (),
                |_| Ok(()),
            )?;
        }
        let last: i64 = src.query_row(crate::embedded::schema::SELECT_LAST_EVENT_ID, (), |r| {
            r.get(0)
        })?;
        dst.execute("UPDATE outbox_head SET last_id = ?1", [last])?;
        report.last_event_id = last.max(0) as u64;
        // The copy is checked before it commits.
        for ((table, copied), expected) in report.tables.iter().zip(&counts) {
            let found: i64 =
                dst.query_row(&format!("SELECT COUNT(*) FROM {table}"), (), |r| r.get(0))?;
            if found.max(0) as u64 != *expected || copied != expected {
                return Err(Copy::Store(StoreError::Corrupt(format!(
                    "{table}: {expected} rows in the data directory, {found} copied"
                ))));
            }
        }
        Ok(report)
    })();
    let _ = src.execute_batch("ROLLBACK");
    match result {
        Ok(report) => {
            dst.execute_batch("COMMIT")?;
            Ok(report)
        }
        Err(e) => {
            let _ = dst.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// The columns of an embedded table, in order.
fn columns(source: &rusqlite::Connection, table: &str) -> sql::Result<Vec<String>> {
    let db: &dyn Db = source;
    db.query_map(&format!("PRAGMA table_info({table})"), (), |r| r.get(1))
}

fn owned(v: Value<'_>) -> Arg<'static> {
    match v {
        Value::Null => Arg::Null,
        Value::Int(i) => Arg::Int(i),
        Value::Real(r) => Arg::Real(r),
        Value::Text(t) => Arg::Text(Cow::Owned(t.to_owned())),
        Value::Blob(b) => Arg::Blob(Cow::Owned(b.to_vec())),
    }
}

fn file_content(blobs: &BlobDir, sha: &Arg<'_>) -> Result<Vec<u8>> {
    let key = match sha {
        Arg::Blob(b) => <[u8; 32]>::try_from(b.as_ref()).ok(),
        _ => None,
    }
    .ok_or_else(|| StoreError::Corrupt("a blob row without a SHA-256".into()))?;
    blobs.read(&key)
}

/// One multi-row `INSERT` of `rows` into `table`.
fn insert(
    dst: &dyn Db,
    table: &str,
    columns: &[String],
    rows: &[Vec<Arg<'static>>],
) -> sql::Result<()> {
    let width = columns.len();
    let values: Vec<String> = (0..rows.len())
        .map(|r| {
            let marks: Vec<String> = (1..=width).map(|c| format!("?{}", r * width + c)).collect();
            format!("({})", marks.join(", "))
        })
        .collect();
    let sql = format!(
        "INSERT INTO {table} ({}) VALUES {}",
        columns.join(", "),
        values.join(", ")
    );
    let args: Vec<Arg<'_>> = rows.iter().flatten().cloned().collect();
    dst.run(&sql, &args)?;
    Ok(())
}
