//! The PostgreSQL backend: the operations, reads and group commit of `crate::sql` on a pool of
//! PostgreSQL connections, with every message's content inside the database.
//!
//! - **Writes**: one writer thread per process, as on SQLite, group-committing what is queued.
//!   Its transaction first locks the outbox's counter row (`SELECT … FOR UPDATE` on
//!   `outbox_head`), so the writers of all processes sharing the database take turns, one
//!   batch at a time. That is what the operations assume (they read a mailbox row, then
//!   write what follows from it, as under SQLite's single writer), and it gives the outbox
//!   its order: ids are taken under the lock and the new last id is written just before
//!   `COMMIT`, so they follow commit order (the argument is in `outbox`). Each batch costs one
//!   commit flush; a batch of `\Recent` claims alone commits with `synchronous_commit = off`.
//! - **Reads**: each on a blocking thread with a pooled connection, in one `REPEATABLE READ`
//!   read-only transaction, so a read of several statements sees one snapshot, as on SQLite.
//! - **Content**: always in `blobs.data`; nodes share nothing but the database.

use super::conn::PgDb;
use super::listen;
use super::{PgConfig, Postgres};
use crate::backend::{Answer, Applied, Backend, Op, Query};
use crate::blobs::{self, BlobRef};
use crate::config::StoreConfig;
use crate::context::SessionContext;
use crate::error::{Result, StoreError};
use crate::notify::Notifier;
use crate::sql::{self, Db, Shared, reads, writer};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::runtime::Handle;
use tokio::sync::watch;

/// The PostgreSQL backend; see the module documentation.
#[derive(Debug)]
pub struct PgBackend {
    shared: Arc<Shared>,
    pg: Postgres,
    writer: writer::Writer,
    /// The task hearing other processes' commits (`listen`), stopped at close.
    listener: tokio::task::AbortHandle,
    /// Locks across the cluster (`locks`).
    locks: super::locks::Locks,
}

impl PgBackend {
    /// Connects, brings the schema up to date and starts the writer thread.
    pub async fn open(config: StoreConfig, pg_config: &PgConfig) -> Result<PgBackend> {
        // The data directory keeps this node's own files (the event log), private as the
        // embedded store's.
        crate::embedded::private_dir(&config.path)?;
        let pg = Postgres::connect(pg_config).await?;
        let last_id = pg.last_event_id().await?;
        let shared = Arc::new(Shared {
            config,
            blobs: None,
            notifier: Notifier::new(last_id),
        });
        let channel = listen::channel(pg_config.schema.as_deref());
        // Tells this process's notifications from the others' on the shared channel.
        let mut random = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
            .map_err(|_| StoreError::Corrupt("no random numbers from the system".into()))?;
        let token = u64::from_be_bytes(random);
        let engine = PgWriter {
            channel: channel.clone(),
            token,
            pg: pg.clone(),
            handle: Handle::current(),
            db: Mutex::new(Some(PgDb::new(pg.client().await?, Handle::current()))),
        };
        let writer = writer::Writer::start(engine, Arc::clone(&shared))?;
        // Tasks last: nothing after them can fail and leave them running.
        let listener = tokio::spawn(listen::run(pg.clone(), channel, token, Arc::clone(&shared)))
            .abort_handle();
        let locks = super::locks::Locks::start(pg.clone());
        tracing::debug!(target = %pg.target(), last_id, "PostgreSQL store opened");
        Ok(PgBackend {
            shared,
            pg,
            writer,
            listener,
            locks,
        })
    }
}

impl Backend for PgBackend {
    async fn submit(&self, ctx: SessionContext, op: Op) -> Result<Applied> {
        self.writer.submit(ctx, op).await
    }

    async fn submit_many(&self, ops: Vec<(SessionContext, Op)>) -> Vec<Result<Applied>> {
        self.writer.submit_many(ops).await
    }

    async fn query(&self, q: Query) -> Result<Answer> {
        if let Query::EventsAfter { after, limit } = q
            && let Some(events) = self.shared.notifier.recent_after(after, limit)
        {
            return Ok(Answer::Events(events));
        }
        let client = self.pg.client().await?;
        let shared = Arc::clone(&self.shared);
        let handle = Handle::current();
        tokio::task::spawn_blocking(move || {
            let db = PgDb::new(client, handle);
            db.batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
            let answer = reads::answer(&db, &shared, q);
            // Read-only: ending it either way changes nothing.
            db.batch("ROLLBACK")?;
            answer
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }

    async fn put_blob(&self, data: Vec<u8>) -> Result<BlobRef> {
        Ok(BlobRef {
            sha256: blobs::sha256(&data),
            data: Arc::new(data),
            on_file: false,
        })
    }

    fn outbox_watch(&self) -> watch::Receiver<u64> {
        self.shared.notifier.outbox()
    }

    fn mailbox_watch(&self, mailbox_id: i64) -> watch::Receiver<u64> {
        self.shared.notifier.mailbox(mailbox_id)
    }

    async fn close(&self) {
        self.writer.close().await;
        self.listener.abort();
    }

    fn is_open(&self) -> bool {
        self.writer.is_open()
    }

    async fn try_lock(&self, name: &str) -> Result<Option<crate::backend::ClusterLock>> {
        Ok(self
            .locks
            .try_lock(name)
            .await?
            .map(crate::backend::ClusterLock::Postgres))
    }
}

/// The writer thread's connection, replaced by a fresh one from the pool when the database
/// closed it (a restart, a network cut), so the writer outlives such an outage.
struct PgWriter {
    /// The notification channel and this process's token on it (`listen`).
    channel: String,
    token: u64,
    pg: Postgres,
    handle: Handle,
    db: Mutex<Option<PgDb>>,
}

impl PgWriter {
    /// Runs `f` on the current connection. Never a new one: a transaction lives on its
    /// connection, and a `COMMIT` sent on a fresh one would "succeed" with nothing to commit.
    fn with<T>(&self, f: impl FnOnce(&PgDb) -> sql::Result<T>) -> sql::Result<T> {
        let slot = self.db.lock().unwrap_or_else(PoisonError::into_inner);
        match slot.as_ref() {
            Some(db) => f(db),
            None => Err(sql::Error::Pool("the writer has no connection".into())),
        }
    }

    /// Replaces a connection the database closed, between transactions only.
    fn reconnect(&self) -> sql::Result<()> {
        let mut slot = self.db.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_none_or(PgDb::is_closed) {
            *slot = None;
            let client = self
                .handle
                .block_on(self.pg.client())
                .map_err(|e| sql::Error::Pool(e.to_string()))?;
            *slot = Some(PgDb::new(client, self.handle.clone()));
            tracing::info!(target = %self.pg.target(), "the store writer reconnected to PostgreSQL");
        }
        Ok(())
    }
}

impl writer::Engine for PgWriter {
    fn db(&self) -> &dyn Db {
        self
    }

    /// One round trip: the writer waits for every statement in turn, so the batch's own
    /// statements go together.
    /// A light batch sets `synchronous_commit` off for its own transaction (`SET LOCAL`), in
    /// the same round trip.
    fn begin(&self, light: bool) -> sql::Result<u64> {
        self.reconnect()?;
        self.with(|db| {
            let last = db.simple(if light {
                "BEGIN; SET LOCAL synchronous_commit = off; \
                 SELECT last_id FROM outbox_head FOR UPDATE"
            } else {
                "BEGIN; SELECT last_id FROM outbox_head FOR UPDATE"
            })?;
            last.as_deref()
                .and_then(|l| l.parse::<u64>().ok())
                .ok_or(sql::Error::NoRow)
        })
    }

    /// The notification goes out with the commit, and only if it commits (`listen`). In one
    /// round trip too: the channel is a checked schema name and the payload digits, hex and
    /// commas, quoted by `literal` all the same. An error stops the statements after it, so a
    /// failed update never reaches `COMMIT`.
    fn commit(&self, last_id: u64, mailboxes: &[i64]) -> sql::Result<()> {
        let payload = listen::payload(self.token, last_id, mailboxes);
        self.with(|db| {
            db.simple(&format!(
                "UPDATE outbox_head SET last_id = {last_id} WHERE last_id < {last_id}; \
                 SELECT pg_notify({}, {}); COMMIT",
                literal(&self.channel),
                literal(&payload)
            ))
            .map(drop)
        })
    }

    fn rollback(&self) {
        let _ = self.with(|db| db.batch("ROLLBACK"));
    }

    fn aborted(&self) -> bool {
        self.db
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_none_or(PgDb::is_closed)
    }

    /// `SET LOCAL` lasted until the transaction ended: nothing to undo.
    fn restore_durability(&self) -> sql::Result<()> {
        Ok(())
    }
}

/// A string as an SQL literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The writer's statements go to its current connection.
impl Db for PgWriter {
    fn dialect(&self) -> sql::Dialect {
        sql::Dialect::Postgres
    }
    fn run(&self, sql: &str, args: &[sql::Arg<'_>]) -> sql::Result<usize> {
        self.with(|db| db.run(sql, args))
    }
    fn each(
        &self,
        sql: &str,
        args: &[sql::Arg<'_>],
        f: &mut dyn FnMut(&dyn sql::Row) -> sql::Result<()>,
    ) -> sql::Result<()> {
        self.with(|db| db.each(sql, args, f))
    }
    fn batch(&self, sql: &str) -> sql::Result<()> {
        self.with(|db| db.batch(sql))
    }
}
