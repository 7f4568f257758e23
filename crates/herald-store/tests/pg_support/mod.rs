//! What every PostgreSQL test needs first: the service check of shared/SERVICES.md and a schema
//! of its own.
//!
//! Outside CI a test whose PostgreSQL is unreachable prints why and passes without running;
//! under `CI=true` it fails, because CI must exercise the real service. Each test works in a
//! freshly created schema, dropped at the end even when the test fails, so tests run in parallel
//! on one database and leave nothing behind.

use herald_store::postgres::PgConfig;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The machine's PostgreSQL (shared/SERVICES.md); `HERALD_TEST_POSTGRES_URL` points elsewhere.
pub fn url() -> String {
    std::env::var("HERALD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// The URL when PostgreSQL answers a query; otherwise prints why and returns `None` (skip), or
/// fails the test under `CI=true`.
pub async fn postgres_or_skip(test: &str) -> Option<String> {
    let url = url();
    let answer = tokio::time::timeout(Duration::from_secs(5), async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        client.simple_query("SELECT 1").await.map(drop)
    })
    .await;
    let why = match answer {
        Ok(Ok(())) => return Some(url),
        Ok(Err(e)) => {
            // The driver's text alone ("error connecting to server") does not say why.
            let mut why = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                why = format!("{why}: {c}");
                cause = c.source();
            }
            why
        }
        Err(_) => "no answer within 5 s".to_owned(),
    };
    let why = format!("{test}: PostgreSQL at {url} is unreachable ({why})");
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{why} (CI=true: this test must run; start PostgreSQL as shared/SERVICES.md says)"
    );
    eprintln!("SKIPPED {why}");
    None
}

/// Runs `body` with a configuration naming a fresh schema (created by Herald's migration on
/// first connect), then drops the schema, and fails as the body failed. Skips as
/// [`postgres_or_skip`] says.
pub async fn with_schema<F, Fut>(test: &str, pool_size: usize, body: F)
where
    F: FnOnce(PgConfig) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let Some(url) = postgres_or_skip(test).await else {
        return;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tag: String = test
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(20)
        .collect::<String>()
        .to_ascii_lowercase();
    let name = format!(
        "herald_t_{tag}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let config = PgConfig {
        url: url.clone(),
        pool_size,
        schema: Some(name.clone()),
    };
    // On its own task so that a panic in the body still lets the schema be dropped.
    let outcome = tokio::spawn(body(config)).await;
    drop_schema(&url, &name).await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("{test}: {e}"),
        }
    }
}

async fn drop_schema(url: &str, name: &str) {
    let result = async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
            .await
    }
    .await;
    if let Err(e) = result {
        eprintln!("could not drop the test schema {name}: {e}");
    }
}
