//! The API tests' helpers: the shared harness (`conformance`), and a PostgreSQL store.

use std::sync::Arc;

pub use conformance::app::{CONFIG, SERVICE_SECRET, Spawn, TestApp, verify_with_third_party};
pub use conformance::{basic, jwt_claims, jwt_header};
use oidc_bridge::storage::{PostgresStorage, Storage};

/// A store on a fresh, empty PostgreSQL schema, and its connection options. `None` (the
/// PostgreSQL half skipped) outside CI when no database is set; in CI its absence fails.
pub async fn postgres_store() -> Option<(Arc<dyn Storage>, sqlx::postgres::PgConnectOptions)> {
    let options = conformance::postgres_schema().await?;
    let store = PostgresStorage::connect_with(options.clone())
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    Some((Arc::new(store), options))
}
