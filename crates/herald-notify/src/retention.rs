//! The retention task: removes old, acknowledged events from the outbox in the background
//! (`[events] retain_days`, `retain_events`).
//!
//! What may go is the store's decision (`herald_store::retention`: only events every
//! subscription has acknowledged, none parked, none the event log has not made durable, never
//! the newest). This task only asks, every interval, in batches: each batch is one short writer
//! transaction, and the next is asked for only after the previous one committed, so mail
//! commits queued meanwhile go first and a large backlog of old events never holds the writer
//! for long.
//!
//! The same task sweeps the thread identifiers that expunged messages leave behind
//! (`Store::sweep_threads`), an account at a time and only where enough went to be worth it.

use herald_store::retention::RetentionPolicy;
use herald_store::{Store, StoreError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Default time between two passes.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// Prunes as `policy` says at start and then every `interval`, until `shutdown`.
pub async fn run(
    store: Store,
    policy: RetentionPolicy,
    interval: Duration,
    shutdown: CancellationToken,
) {
    loop {
        if policy.prunes() {
            match pass(&store, &policy, &shutdown).await {
                Ok((0, _)) => {}
                Ok((pruned, oldest)) => {
                    tracing::info!(pruned, oldest = ?oldest, "retention: removed old events from the outbox");
                }
                Err(StoreError::Closed) => return,
                Err(e) => tracing::warn!("retention: {e}; trying again later"),
            }
        }
        match sweep(&store, &shutdown).await {
            Ok(()) => {}
            Err(StoreError::Closed) => return,
            Err(e) => tracing::warn!("thread sweep: {e}; trying again later"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// One pass: batches until the store says there is nothing more to remove now. Returns how
/// many events went and the oldest id kept.
async fn pass(
    store: &Store,
    policy: &RetentionPolicy,
    shutdown: &CancellationToken,
) -> Result<(u64, Option<u64>), StoreError> {
    let mut pruned = 0;
    loop {
        let report = store.prune_events(policy).await?;
        pruned += report.pruned;
        if !report.more || shutdown.is_cancelled() {
            return Ok((pruned, report.oldest));
        }
        tokio::task::yield_now().await;
    }
}

/// Sweeps every account that is due, one transaction each.
async fn sweep(store: &Store, shutdown: &CancellationToken) -> Result<(), StoreError> {
    while let Some((account, removed)) = store.sweep_threads().await? {
        tracing::debug!(
            account,
            removed,
            "swept thread identifiers of gone messages"
        );
        if shutdown.is_cancelled() {
            break;
        }
        tokio::task::yield_now().await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_store::{DeliveryRecord, SessionContext, StoreConfig};

    #[tokio::test]
    async fn the_task_prunes_in_batches_behind_the_slowest_subscription() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = StoreConfig::new(dir.path());
        config.durable = false;
        let store = Store::open(config).await.unwrap();
        let admin = SessionContext::admin_cli();
        store.add_user(&admin, "alice", "pw", false).await.unwrap();
        let alice = SessionContext::user("imap", "alice");
        // 25 events: AccountCreate, the INBOX's MailboxCreate and 23 more.
        for i in 0..23 {
            store
                .create_mailbox(&alice, &format!("m{i}"), None)
                .await
                .unwrap();
        }
        store
            .put_delivery(DeliveryRecord {
                name: "slow".into(),
                config: "{}".into(),
                origin: "api".into(),
                paused: true,
                disabled_reason: None,
                cursor: 17,
                stats: Default::default(),
            })
            .await
            .unwrap();
        let policy = RetentionPolicy {
            max_events: Some(2),
            max_age_secs: None,
            batch: 4,
        };
        let token = CancellationToken::new();
        let task = tokio::spawn(run(
            store.clone(),
            policy,
            Duration::from_millis(20),
            token.clone(),
        ));
        let mut oldest = None;
        for _ in 0..200 {
            oldest = store.outbox_bounds().await.unwrap().oldest;
            if oldest == Some(18) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Up to the paused subscription's cursor, not to the two newest the policy keeps.
        assert_eq!(oldest, Some(18));
        store.set_delivery_cursor("slow", 25).await.unwrap();
        for _ in 0..200 {
            oldest = store.outbox_bounds().await.unwrap().oldest;
            if oldest == Some(24) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(oldest, Some(24));
        token.cancel();
        task.await.unwrap();
    }
}
