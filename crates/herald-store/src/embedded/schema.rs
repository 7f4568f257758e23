//! The SQLite schema and connection settings.
//!
//! - `journal_mode=WAL`: readers never block the writer nor each other, and a commit appends to
//!   one file (the WAL), which is what makes a single fsync per commit possible.
//! - `synchronous=FULL` (when durable): the WAL is fsynced at every commit, so an acknowledged
//!   change survives power loss; `NORMAL` would only survive process crashes.
//! - `temp_store=MEMORY` on the writer: every operation of a batch runs in its own savepoint,
//!   whose journal of pages it changed spilled past 64 KiB into a file under `/var/tmp` —
//!   two `pwrite`s per page, about three per delivery under concurrent load, for a file that
//!   is never read unless an operation fails. It is bounded by the pages one batch changes.
//! - `busy_timeout`: the CLI and the server may open the same data directory; SQLite's file
//!   locks serialise their writers, and the timeout turns contention into waiting.
//! - `foreign_keys` stays off: every delete is done explicitly by the operation that owns it,
//!   which also keeps the counters (usage, messages, refcounts) in step in one place.
//!
//! Counters (`accounts.used_*`, `mailboxes.messages`, `blobs.refcount`) are denormalised so that
//! a delivery is O(1); `Store::check_consistency` recomputes them from the rows.
//! `AUTOINCREMENT` on `mailboxes` and `accounts` guarantees ids are never reused, even after rows
//! are deleted — IDLE keys on mailbox ids. Outbox ids, on which consumers resume, are given by
//! the writer after the last one ([`LAST_EVENT_ID`]), and retention never removes the newest
//! event; the outbox has no `AUTOINCREMENT` since version 18, which spared every commit a
//! write of `sqlite_sequence`.

use crate::error::{Result, StoreError};
use rusqlite::Connection;
use std::path::Path;
use std::time::Duration;

/// `PRAGMA user_version` of this schema.
pub const VERSION: i64 = 18;

/// [`LAST_EVENT_ID`]'s text, a literal for `concat!`.
macro_rules! last_event_id {
    () => {
        "max(COALESCE((SELECT max(id) FROM outbox), 0),
            COALESCE((SELECT value FROM meta WHERE key = 'outbox_last'), 0))"
    };
}

/// The last outbox id given out, as a scalar SQL expression: the newest row's (retention
/// always keeps it), or the one version 18's upgrade recorded in `meta` (`outbox_last`) for a
/// store whose outbox had been emptied before.
pub const LAST_EVENT_ID: &str = last_event_id!();

/// `SELECT` of [`LAST_EVENT_ID`], a constant so that the writer's every batch reads it with no
/// text to build.
pub const SELECT_LAST_EVENT_ID: &str = concat!("SELECT ", last_event_id!());

const SCHEMA: &str = r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE accounts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT NOT NULL UNIQUE,
    password_hash    TEXT NOT NULL,
    admin            INTEGER NOT NULL DEFAULT 0,
    quota_storage_kb INTEGER,
    quota_messages   INTEGER,
    used_bytes       INTEGER NOT NULL DEFAULT 0,
    used_messages    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE mailboxes (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id    INTEGER NOT NULL,
    name          TEXT NOT NULL,
    uidvalidity   INTEGER NOT NULL,
    uidnext       INTEGER NOT NULL DEFAULT 1,
    highestmodseq INTEGER NOT NULL DEFAULT 1,
    messages      INTEGER NOT NULL DEFAULT 0,
    noselect      INTEGER NOT NULL DEFAULT 0,
    special_use   TEXT,
    max_age_secs  INTEGER,
    UNIQUE (account_id, name)
);
CREATE TABLE subscriptions (
    account_id INTEGER NOT NULL,
    name       TEXT NOT NULL,
    PRIMARY KEY (account_id, name)
) WITHOUT ROWID;
CREATE TABLE blobs (
    id       INTEGER PRIMARY KEY,
    sha256   BLOB NOT NULL UNIQUE,
    size     INTEGER NOT NULL,
    refcount INTEGER NOT NULL,
    data     BLOB
);
CREATE TABLE blob_trash (
    sha256 BLOB PRIMARY KEY
) WITHOUT ROWID;
CREATE TABLE messages (
    mailbox_id   INTEGER NOT NULL,
    uid          INTEGER NOT NULL,
    blob_id      INTEGER NOT NULL,
    size         INTEGER NOT NULL,
    internaldate INTEGER NOT NULL,
    flags        TEXT NOT NULL DEFAULT '',
    modseq       INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX messages_by_date ON messages (mailbox_id, internaldate);
CREATE TABLE outbox (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    event TEXT NOT NULL
);
"#;

/// Version 2: event delivery state — subscriptions with their durable cursors, and parked
/// (dead-lettered) events. Kept in the store so that a cursor moves in a commit like everything
/// else, and the CLI and the HTTP API see one truth.
const SCHEMA_V2: &str = r#"
CREATE TABLE deliveries (
    name            TEXT PRIMARY KEY,
    config          TEXT NOT NULL,
    origin          TEXT NOT NULL,
    paused          INTEGER NOT NULL DEFAULT 0,
    disabled_reason TEXT,
    cursor          INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE parked (
    delivery  TEXT NOT NULL,
    event_id  INTEGER NOT NULL,
    reason    TEXT NOT NULL,
    parked_ms INTEGER NOT NULL,
    PRIMARY KEY (delivery, event_id)
) WITHOUT ROWID;
"#;

/// Opens a connection with Herald's settings.
pub fn connect(path: &Path, durable: bool, busy: Duration, read_only: bool) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(busy)?;
    // journal_mode returns a row; query it rather than execute.
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Corrupt(format!(
            "cannot switch the database to WAL (journal_mode={mode})"
        )));
    }
    conn.pragma_update(None, "synchronous", if durable { "FULL" } else { "NORMAL" })?;
    if read_only {
        conn.pragma_update(None, "query_only", true)?;
    } else {
        conn.pragma_update(None, "temp_store", "MEMORY")?;
    }
    conn.set_prepared_statement_cache_capacity(256);
    Ok(conn)
}

/// Version 3: the outbox id after which an account's events begin, so a deleted and re-created
/// account name never sees the events of the account it replaced.
const SCHEMA_V3: &str = r#"
ALTER TABLE accounts ADD COLUMN first_event INTEGER NOT NULL DEFAULT 0;
"#;

/// Version 4: the first UID no IMAP session has yet been told of as `\Recent` (RFC 3501
/// §2.3.2; existing mailboxes start with nothing recent), and when each message was saved to
/// its mailbox (RFC 8514 SAVEDATE; unknown for messages older than the upgrade).
const SCHEMA_V4: &str = r#"
ALTER TABLE mailboxes ADD COLUMN recent_uid INTEGER NOT NULL DEFAULT 1;
UPDATE mailboxes SET recent_uid = uidnext;
ALTER TABLE messages ADD COLUMN savedate INTEGER;
"#;

/// Version 5: expunge tombstones, so QRESYNC can name exactly the UIDs expunged since a MODSEQ
/// (RFC 7162 §3.2.5.2), and threads (RFC 8474 THREADID).
///
/// - `expunged` holds one row per expunged UID with the MODSEQ of its expunge. Every expunge
///   with a MODSEQ above `mailboxes.tombstone_floor` has its row; below the floor rows may be
///   gone (pruned, or the expunge predates this version: existing mailboxes start with the
///   floor at their HIGHESTMODSEQ). `mailboxes.tombstones` counts the rows, so pruning needs
///   no scan to know when to run.
/// - `threads` counts the messages of each thread (like `blobs.refcount`), and `thread_refs`
///   maps the Message-IDs an account's messages carry or reply to onto their thread; both
///   rows go with the thread's last message. Messages stored before this version get one
///   thread per account and content (copies of a message share it).
const SCHEMA_V5: &str = r#"
CREATE TABLE expunged (
    mailbox_id INTEGER NOT NULL,
    uid        INTEGER NOT NULL,
    modseq     INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX expunged_by_modseq ON expunged (mailbox_id, modseq);
ALTER TABLE mailboxes ADD COLUMN tombstones INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN tombstone_floor INTEGER NOT NULL DEFAULT 0;
UPDATE mailboxes SET tombstone_floor = highestmodseq;
CREATE TABLE threads (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    refcount INTEGER NOT NULL
);
CREATE TABLE thread_refs (
    account_id INTEGER NOT NULL,
    msgid      TEXT NOT NULL,
    thread_id  INTEGER NOT NULL,
    PRIMARY KEY (account_id, msgid)
) WITHOUT ROWID;
CREATE INDEX thread_refs_by_thread ON thread_refs (thread_id);
ALTER TABLE messages ADD COLUMN thread_id INTEGER NOT NULL DEFAULT 0;
CREATE TEMP TABLE v5_threads AS
    SELECT b.account_id AS account_id, m.blob_id AS blob_id, COUNT(*) AS n
    FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id
    GROUP BY b.account_id, m.blob_id;
CREATE INDEX temp.v5_threads_key ON v5_threads (blob_id, account_id);
INSERT INTO threads (id, refcount) SELECT rowid, n FROM v5_threads;
UPDATE messages SET thread_id = COALESCE((
    SELECT t.rowid FROM v5_threads t JOIN mailboxes b ON b.account_id = t.account_id
    WHERE b.id = messages.mailbox_id AND t.blob_id = messages.blob_id), 0);
DROP TABLE temp.v5_threads;
"#;

/// Version 6: threads cost one small index entry per Message-ID and nothing on expunge.
///
/// Version 5 counted each thread's messages and removed a thread's identifiers with its last
/// message, which wrote three more pages per stored message (the counter row, its sequence
/// and an index by thread). Now a new thread takes the account's next number
/// (`accounts.next_thread`, on the row every delivery already updates for the usage), numbers
/// are never reused, and `thread_refs` may keep identifiers of threads whose messages are all
/// gone: a late reply to one joins that (empty) thread, which is what threading should do.
/// Such leftovers are removed in the background once an account's expunges since its last
/// sweep (`accounts.thread_debt`) pass a quarter of its messages. `thread_refs` keys the
/// identifiers by a 64-bit hash (`threading::key`) instead of their text; `rekey_threads`
/// converts the version 5 rows.
const SCHEMA_V6: &str = r#"
ALTER TABLE thread_refs RENAME TO thread_refs_v5;
CREATE TABLE thread_refs (
    account_id INTEGER NOT NULL,
    key        INTEGER NOT NULL,
    thread_id  INTEGER NOT NULL,
    PRIMARY KEY (account_id, key)
) WITHOUT ROWID;
ALTER TABLE accounts ADD COLUMN next_thread INTEGER NOT NULL DEFAULT 1;
ALTER TABLE accounts ADD COLUMN thread_debt INTEGER NOT NULL DEFAULT 0;
UPDATE accounts SET next_thread = (SELECT COALESCE(MAX(id), 0) + 1 FROM threads);
DROP TABLE threads;
DELETE FROM sqlite_sequence WHERE name = 'threads';
"#;

/// Version 7: each subscription's delivery counters and current failure, so that a restart
/// neither resets what was delivered nor shows a subscription that keeps failing as healthy.
const SCHEMA_V7: &str = r#"
ALTER TABLE deliveries ADD COLUMN delivered INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN failing_since_ms INTEGER;
ALTER TABLE deliveries ADD COLUMN last_error TEXT;
"#;

/// Version 8 (WebPush): the push subscriptions users register over the HTTP API (RFC 8030: a
/// push service endpoint and the browser's RFC 8291 keys), one row per account and endpoint.
/// Keyed by account id, so a deleted and re-created account name does not inherit them; the
/// account's deletion removes them. Self-contained and idempotent (`IF NOT EXISTS`): a new table
/// and nothing else, so the step can be renumbered or re-run.
const SCHEMA_V8: &str = r#"
CREATE TABLE IF NOT EXISTS push_subscriptions (
    account_id INTEGER NOT NULL,
    endpoint   TEXT NOT NULL,
    p256dh     TEXT NOT NULL,
    auth       TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (account_id, endpoint)
) WITHOUT ROWID;
"#;

/// Version 9 (account state): an account can be disabled by an operator. `disabled_ms` is when
/// (NULL: enabled) and `disabled_reason` the operator's note; a disabled account keeps its mail
/// and still receives deliveries, but no session may authenticate as it.
const SCHEMA_V9: &str = r#"
ALTER TABLE accounts ADD COLUMN disabled_ms INTEGER;
ALTER TABLE accounts ADD COLUMN disabled_reason TEXT;
"#;

/// Version 10 (METADATA, RFC 5464): mailbox and server annotations. `mailbox_id` 0 holds server
/// entries (mailbox ids start at 1); `owner_id` is the account whose `/private/` entry the row
/// is, 0 for a `/shared/` one. Keyed by ids, so a RENAME moves a mailbox's entries with it for
/// free and a re-created name starts empty. Self-contained and idempotent (`IF NOT EXISTS`).
const SCHEMA_V10: &str = r#"
CREATE TABLE IF NOT EXISTS metadata (
    mailbox_id INTEGER NOT NULL,
    owner_id   INTEGER NOT NULL,
    name       TEXT NOT NULL,
    value      BLOB NOT NULL,
    PRIMARY KEY (mailbox_id, owner_id, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS metadata_by_owner ON metadata (owner_id);
"#;

/// Version 11 (URLAUTH, RFC 4467): one mailbox access key per mailbox, the HMAC key of the
/// `INTERNAL` mechanism (`crate::urlauth`). Keyed by mailbox id, so a mailbox deleted and
/// re-created under the same name never inherits the old key (nor the URLs issued under it);
/// `account_id` lets RESETKEY without a mailbox, and an account's deletion, find them all.
/// Self-contained and idempotent (`IF NOT EXISTS`): new table and index only, so the step can
/// be renumbered or re-run.
const SCHEMA_V11: &str = r#"
CREATE TABLE IF NOT EXISTS urlauth_keys (
    mailbox_id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    key        BLOB NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS urlauth_keys_account ON urlauth_keys (account_id);
"#;

/// Version 12 (RFC 4314 ACL): one row per mailbox and identifier (an account name or
/// `anyone`) with its rights as a string of RFC 4314 letters in canonical order. Keyed by
/// mailbox id, so RENAME keeps a mailbox's ACL and a mailbox created again under the name of a
/// deleted one starts without it; deleting a mailbox or an account deletes its rows (and an
/// account's deletion also the rows naming it). `acl_identifier` answers "what is shared with
/// this user" (LIST, event streams). Self-contained and idempotent, so it can be renumbered.
const SCHEMA_V12: &str = r#"
CREATE TABLE IF NOT EXISTS acl (
    mailbox_id INTEGER NOT NULL,
    identifier TEXT NOT NULL,
    rights     TEXT NOT NULL,
    PRIMARY KEY (mailbox_id, identifier)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS acl_identifier ON acl (identifier);
"#;

/// Version 13: messages by MODSEQ. A session's update after any change asks for the messages
/// of its mailbox above its MODSEQ (`reads::changes`); without this index that read walked the
/// whole mailbox, for every session of it, after every change.
const SCHEMA_V13: &str = r#"
CREATE INDEX IF NOT EXISTS messages_by_modseq ON messages (mailbox_id, modseq);
"#;

/// Version 14 (a cluster of nodes): which node delivers a subscription, and until when
/// (`lease_node`, `lease_until_ms`, ms since the epoch; 0: nobody). See `Op::ClaimDelivery`.
/// New columns with defaults only, added by [`add_lease_columns`] only where missing (SQLite
/// has no `ADD COLUMN IF NOT EXISTS`), so the step can be renumbered or re-run.
const SCHEMA_V14: &str = r#"
ALTER TABLE deliveries ADD COLUMN lease_node TEXT;
ALTER TABLE deliveries ADD COLUMN lease_until_ms INTEGER NOT NULL DEFAULT 0;
"#;

/// Version 15: what STATUS asks of a mailbox kept with it, so STATUS reads one row instead
/// of every message (clients ask it of every folder, often). `unseen` (messages without
/// `\Seen`), `deleted` (with `\Deleted`) and `bytes` (the sum of their sizes) are kept by
/// triggers on `messages`, so every path that adds, removes or re-flags a message keeps them
/// (the consistency check recounts them). Existing mailboxes are counted once here.
const SCHEMA_V15: &str = r#"
ALTER TABLE mailboxes ADD COLUMN unseen INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
UPDATE mailboxes SET
    unseen = (SELECT count(*) FROM messages m WHERE m.mailbox_id = mailboxes.id
                AND instr(' ' || m.flags || ' ', ' \Seen ') = 0),
    deleted = (SELECT count(*) FROM messages m WHERE m.mailbox_id = mailboxes.id
                AND instr(' ' || m.flags || ' ', ' \Deleted ') > 0),
    bytes = (SELECT coalesce(sum(m.size), 0) FROM messages m WHERE m.mailbox_id = mailboxes.id);
CREATE TRIGGER messages_counted AFTER INSERT ON messages BEGIN
    UPDATE mailboxes SET
        unseen = unseen + (instr(' ' || NEW.flags || ' ', ' \Seen ') = 0),
        deleted = deleted + (instr(' ' || NEW.flags || ' ', ' \Deleted ') > 0),
        bytes = bytes + NEW.size
    WHERE id = NEW.mailbox_id;
END;
CREATE TRIGGER messages_uncounted AFTER DELETE ON messages BEGIN
    UPDATE mailboxes SET
        unseen = unseen - (instr(' ' || OLD.flags || ' ', ' \Seen ') = 0),
        deleted = deleted - (instr(' ' || OLD.flags || ' ', ' \Deleted ') > 0),
        bytes = bytes - OLD.size
    WHERE id = OLD.mailbox_id;
END;
CREATE TRIGGER messages_recounted AFTER UPDATE OF flags ON messages BEGIN
    UPDATE mailboxes SET
        unseen = unseen - (instr(' ' || OLD.flags || ' ', ' \Seen ') = 0)
                        + (instr(' ' || NEW.flags || ' ', ' \Seen ') = 0),
        deleted = deleted - (instr(' ' || OLD.flags || ' ', ' \Deleted ') > 0)
                          + (instr(' ' || NEW.flags || ' ', ' \Deleted ') > 0)
    WHERE id = NEW.mailbox_id;
END;
"#;

/// Version 16: no index of messages by INTERNALDATE. No statement used it (expiry reads a
/// mailbox by UID, and SEARCH filters its snapshot), yet every message stored or expunged
/// wrote a page of it: about one WAL frame in thirteen of an APPEND.
const SCHEMA_V16: &str = r#"
DROP INDEX IF EXISTS messages_by_date;
"#;

/// Version 17: the `\Deleted` messages of each mailbox, for EXPUNGE, which before read every
/// message of the mailbox to find them: under the IMAP mix, 56 % of the writer thread's
/// samples. A partial index holds only the messages flagged so, and is written only when that
/// flag comes or goes.
const SCHEMA_V17: &str = r#"
CREATE INDEX IF NOT EXISTS messages_deleted ON messages (mailbox_id, uid)
    WHERE instr(' ' || flags || ' ', ' \Deleted ') > 0;
"#;

/// Version 18: the outbox without `AUTOINCREMENT`. Every event's insert also rewrote the
/// outbox's row of `sqlite_sequence`, a page of its own: one WAL frame in eleven of a
/// delivery. The writer numbers events itself (after [`LAST_EVENT_ID`]), so the table only
/// has to keep its newest row, which retention does. The last id given out is kept in `meta`
/// first, for an outbox that retention emptied.
const SCHEMA_V18: &str = r#"
INSERT OR REPLACE INTO meta (key, value) VALUES ('outbox_last', max(
    COALESCE((SELECT value FROM meta WHERE key = 'outbox_last'), 0),
    COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0),
    COALESCE((SELECT max(id) FROM outbox), 0)));
CREATE TABLE outbox_v18 (
    id    INTEGER PRIMARY KEY,
    event TEXT NOT NULL
);
INSERT INTO outbox_v18 (id, event) SELECT id, event FROM outbox ORDER BY id;
DROP TABLE outbox;
ALTER TABLE outbox_v18 RENAME TO outbox;
"#;

/// Applies the step `sql` unless `table` already has `column`, the first it adds: SQLite has
/// no `ADD COLUMN IF NOT EXISTS`, and a step's columns (with what else it creates) come in one
/// transaction, so either all of it is there or none. Versions 14 and 15 are applied so, and
/// can be re-run.
fn add_columns_once(
    tx: &rusqlite::Transaction<'_>,
    (table, column): (&str, &str),
    sql: &str,
) -> Result<()> {
    let has: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
        [table, column],
        |r| r.get(0),
    )?;
    if !has {
        tx.execute_batch(sql)?;
    }
    Ok(())
}

/// [`SCHEMA_V14`], once.
fn add_lease_columns(tx: &rusqlite::Transaction<'_>) -> Result<()> {
    add_columns_once(tx, ("deliveries", "lease_node"), SCHEMA_V14)
}

/// [`SCHEMA_V15`], once.
fn add_status_counters(tx: &rusqlite::Transaction<'_>) -> Result<()> {
    add_columns_once(tx, ("mailboxes", "unseen"), SCHEMA_V15)
}

/// Second half of version 6: hashes version 5's textual identifiers into the new table.
fn rekey_threads(tx: &rusqlite::Transaction<'_>) -> Result<()> {
    {
        let mut old = tx.prepare("SELECT account_id, msgid, thread_id FROM thread_refs_v5")?;
        let mut insert = tx.prepare(
            "INSERT OR IGNORE INTO thread_refs (account_id, key, thread_id) VALUES (?1, ?2, ?3)",
        )?;
        let mut rows = old.query([])?;
        while let Some(row) = rows.next()? {
            let (account, id, thread): (i64, String, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
            insert.execute(rusqlite::params![
                account,
                crate::threading::key(&id),
                thread
            ])?;
        }
    }
    tx.execute_batch("DROP TABLE thread_refs_v5;")?;
    Ok(())
}

/// Creates the schema on a new database, checks the version of an existing one.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    match version {
        0 => {
            tx.execute_batch(SCHEMA)?;
            tx.execute_batch(SCHEMA_V2)?;
            tx.execute_batch(SCHEMA_V3)?;
            tx.execute_batch(SCHEMA_V4)?;
            tx.execute_batch(SCHEMA_V5)?;
            tx.execute_batch(SCHEMA_V6)?;
            rekey_threads(&tx)?;
            tx.execute_batch(SCHEMA_V7)?;
            tx.execute_batch(SCHEMA_V8)?;
            tx.execute_batch(SCHEMA_V9)?;
            tx.execute_batch(SCHEMA_V10)?;
            tx.execute_batch(SCHEMA_V11)?;
            tx.execute_batch(SCHEMA_V12)?;
            tx.execute_batch(SCHEMA_V13)?;
            add_lease_columns(&tx)?;
            add_status_counters(&tx)?;
            tx.execute_batch(SCHEMA_V16)?;
            tx.execute_batch(SCHEMA_V17)?;
            tx.execute_batch(SCHEMA_V18)?;
            tx.pragma_update(None, "user_version", VERSION)?;
            tx.commit()?;
            tracing::debug!("created store schema version {VERSION}");
            Ok(())
        }
        1..=17 => {
            // Each step from the found version on, in order.
            let steps = [
                SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5, SCHEMA_V6, SCHEMA_V7, SCHEMA_V8,
                SCHEMA_V9, SCHEMA_V10, SCHEMA_V11, SCHEMA_V12, SCHEMA_V13, SCHEMA_V14, SCHEMA_V15,
                SCHEMA_V16, SCHEMA_V17, SCHEMA_V18,
            ];
            for step in &steps[(version - 1) as usize..] {
                if *step == SCHEMA_V14 {
                    add_lease_columns(&tx)?;
                    continue;
                }
                if *step == SCHEMA_V15 {
                    add_status_counters(&tx)?;
                    continue;
                }
                tx.execute_batch(step)?;
                if *step == SCHEMA_V6 {
                    rekey_threads(&tx)?;
                }
            }
            tx.pragma_update(None, "user_version", VERSION)?;
            tx.commit()?;
            tracing::info!("upgraded the store schema from version {version} to {VERSION}");
            Ok(())
        }
        VERSION => Ok(()),
        v => Err(StoreError::Corrupt(format!(
            "schema version {v}, this Herald understands {VERSION}"
        ))),
    }
}
