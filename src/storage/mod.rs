//! Persistence: one [`Storage`] trait named after what the server needs (`api.rs`), two
//! backends sharing one SQL text (`sql.rs`: SQLite, embedded; PostgreSQL, shared by several
//! nodes), and one conformance suite ([`conformance`]) that both must pass.

mod api;
#[cfg(any(test, feature = "testkit"))]
pub mod conformance;
mod migrations;
mod postgres;
mod sql;
mod sqlite;

use std::sync::Arc;

pub use api::{PoolOptions, Result, Storage, StorageError, session_marker};

/// A fresh in-memory SQLite database that several connections share (each call: another
/// database), for mock mode's issuers.
pub fn shared_memory_url() -> String {
    format!(
        "sqlite:file:mem-{}?mode=memory&cache=shared",
        crate::secret::random_token(9).replace(['-', '_'], "x")
    )
}
pub use postgres::PostgresStorage;
pub use sqlite::SqliteStorage;

use crate::config::{DatabaseKind, DatabaseUrl};

/// Opens the database named by `url` (creating a SQLite file if absent). Does not migrate.
pub async fn open(url: &DatabaseUrl, pool: &PoolOptions) -> Result<Arc<dyn Storage>> {
    Ok(match url.kind() {
        DatabaseKind::Sqlite => {
            Arc::new(SqliteStorage::connect_with_options(url.expose(), pool).await?)
        }
        DatabaseKind::Postgres => {
            Arc::new(PostgresStorage::connect_with_options(url.expose(), pool).await?)
        }
    })
}
