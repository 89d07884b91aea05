//! The storage conformance suite against every backend.

use std::sync::Arc;

use oidc_bridge::storage::conformance::{CHECKS, run};
use oidc_bridge::storage::{SqliteStorage, Storage};

use crate::helpers::postgres_store;

async fn sqlite_memory() -> Arc<dyn Storage> {
    let s = SqliteStorage::connect("sqlite::memory:")
        .await
        .expect("open");
    s.migrate().await.expect("migrate");
    Arc::new(s)
}

#[tokio::test]
async fn sqlite_memory_passes_the_storage_conformance_suite() {
    for check in CHECKS {
        run(check, sqlite_memory().await).await;
    }
}

#[tokio::test]
async fn sqlite_file_passes_the_storage_conformance_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, check) in CHECKS.iter().enumerate() {
        let url = format!("sqlite://{}", dir.path().join(format!("{i}.db")).display());
        let s = SqliteStorage::connect(&url).await.expect("open");
        s.migrate().await.expect("migrate");
        run(check, Arc::new(s)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_passes_the_storage_conformance_suite() {
    for check in CHECKS {
        let Some((store, _)) = postgres_store().await else {
            return;
        };
        run(check, store).await;
    }
}
