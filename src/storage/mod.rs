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
