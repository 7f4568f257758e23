//! Locks that hold across the nodes of a cluster: PostgreSQL session advisory locks, taken on
//! one connection of this process's own.
//!
//! Why advisory locks on a session: a lock held by a session is released by the server when the
//! session ends, however it ends. A node that is killed, or cut off from the database, cannot
//! leave a lock behind; nothing has to expire or be renewed. The POP3 maildrop lock (RFC 1939:
//! one session per maildrop) is the user: a second POP3 session for one account is refused on
//! every node while the first lasts.
//!
//! One task owns the connection and takes requests in order, so a release is never overtaken
//! by a later acquire of the same lock. Advisory locks of one session nest, so this process
//! must not take one twice; callers keep their own in-process exclusion first (the POP3 server
//! does). If the connection breaks, every lock this node held is gone at once: the task logs
//! it, and the next request opens a new connection.

use super::Postgres;
use crate::error::{Result, StoreError};
use tokio::sync::{mpsc, oneshot};

enum Request {
    Acquire(i64, oneshot::Sender<Result<bool>>),
    Release(i64),
}

/// This process's end of the lock task.
#[derive(Debug, Clone)]
pub(crate) struct Locks {
    tx: mpsc::UnboundedSender<Request>,
}

/// A lock held across the cluster; released when dropped.
#[derive(Debug)]
pub struct HeldLock {
    key: i64,
    tx: mpsc::UnboundedSender<Request>,
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        let _ = self.tx.send(Request::Release(self.key));
    }
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Acquire(k, _) => write!(f, "Acquire({k})"),
            Request::Release(k) => write!(f, "Release({k})"),
        }
    }
}

impl Locks {
    /// Starts the task; it ends when every [`Locks`] and [`HeldLock`] is gone.
    pub(crate) fn start(pg: Postgres) -> Locks {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(pg, rx));
        Locks { tx }
    }

    /// Takes the lock named `name` unless another session holds it (`None`).
    pub(crate) async fn try_lock(&self, name: &str) -> Result<Option<HeldLock>> {
        let key = crate::threading::key(&format!("herald-lock/{name}"));
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request::Acquire(key, reply))
            .map_err(|_| StoreError::Closed)?;
        let taken = answer.await.map_err(|_| StoreError::Closed)??;
        Ok(taken.then(|| HeldLock {
            key,
            tx: self.tx.clone(),
        }))
    }
}

async fn run(pg: Postgres, mut rx: mpsc::UnboundedReceiver<Request>) {
    let mut client: Option<tokio_postgres::Client> = None;
    while let Some(request) = rx.recv().await {
        if client
            .as_ref()
            .is_some_and(tokio_postgres::Client::is_closed)
        {
            tracing::warn!(target = %pg.target(), "the lock connection broke: the locks this node held are released");
            client = None;
        }
        if client.is_none() {
            match pg.config.connect(tokio_postgres::NoTls).await {
                Ok((c, connection)) => {
                    tokio::spawn(connection);
                    client = Some(c);
                }
                Err(e) => {
                    let e = StoreError::Unreachable {
                        target: pg.target().to_owned(),
                        reason: e.to_string(),
                    };
                    if let Request::Acquire(_, reply) = request {
                        let _ = reply.send(Err(e));
                    }
                    continue;
                }
            }
        }
        let Some(c) = client.as_ref() else { continue };
        match request {
            Request::Acquire(key, reply) => {
                let taken = c
                    .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                    .await
                    .map(|row| row.get::<_, bool>(0))
                    .map_err(StoreError::from);
                let _ = reply.send(taken);
            }
            Request::Release(key) => {
                if let Err(e) = c.execute("SELECT pg_advisory_unlock($1)", &[&key]).await {
                    tracing::warn!(error = %e, "cannot release a lock (the connection's end releases it)");
                }
            }
        }
    }
}
