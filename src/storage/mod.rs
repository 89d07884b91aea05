//! Persistence: one [`Storage`] trait named after what the server needs, two backends
//! (SQLite, embedded; PostgreSQL, shared by several nodes), one conformance suite
//! ([`conformance`]) that both must pass.

pub mod conformance;
mod migrations;
mod postgres;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

pub use postgres::PostgresStorage;
pub use sqlite::SqliteStorage;

use crate::clock::UnixTime;
use crate::config::{DatabaseKind, DatabaseUrl};
use crate::model::{ClientRecord, SigningKeyRecord};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> Result<()>;

    /// Applies pending migrations.
    async fn migrate(&self) -> Result<()>;

    async fn upsert_client(&self, client: &ClientRecord) -> Result<()>;
    async fn get_client(&self, id: &str) -> Result<Option<ClientRecord>>;
    async fn list_clients(&self) -> Result<Vec<ClientRecord>>;
    async fn delete_client(&self, id: &str) -> Result<bool>;

    /// All signing keys, ordered by `activates_at` then `kid`.
    async fn list_signing_keys(&self) -> Result<Vec<SigningKeyRecord>>;

    /// Adds `key` if, and only if, the newest key (greatest `activates_at`, then `kid`) is
    /// still `expected_newest` (`None`: there are no keys). Pending keys that would activate
    /// after `key` never signed anything and are dropped. Atomic across nodes, so two nodes
    /// rotating at once add one key. Returns whether the key was added.
    async fn add_signing_key(
        &self,
        expected_newest: Option<&str>,
        key: &SigningKeyRecord,
    ) -> Result<bool>;

    async fn delete_signing_key(&self, kid: &str) -> Result<bool>;

    /// Records that the token with id `jti` is revoked until it would have expired anyway.
    async fn revoke_token_id(&self, jti: &str, expires_at: UnixTime) -> Result<()>;
    async fn is_token_id_revoked(&self, jti: &str) -> Result<bool>;

    /// Deletes records that have expired by `now`. Returns how many went.
    async fn purge_expired(&self, now: UnixTime) -> Result<u64>;
}

/// Opens the database named by `url` (creating a SQLite file if absent). Does not migrate.
pub async fn open(url: &DatabaseUrl) -> Result<Arc<dyn Storage>> {
    Ok(match url.kind() {
        DatabaseKind::Sqlite => Arc::new(SqliteStorage::connect(url.expose()).await?),
        DatabaseKind::Postgres => Arc::new(PostgresStorage::connect(url.expose()).await?),
    })
}

/// Parses a stored algorithm name.
fn alg(s: &str) -> Result<crate::config::SigningAlgorithm> {
    crate::config::SigningAlgorithm::parse(s)
        .ok_or_else(|| StorageError::Corrupt(format!("unknown signing algorithm `{s}`")))
}
