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
use crate::model::{
    AuthCodeRecord, AuthRequestRecord, ClientRecord, Redemption, RefreshFamilyRecord,
    RefreshTokenRecord, SessionRecord, SigningKeyRecord,
};

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

    /// All signing keys, ordered by `activates_at`, `created_at`, then `kid`.
    async fn list_signing_keys(&self) -> Result<Vec<SigningKeyRecord>>;

    /// Adds `key` if, and only if, the newest key (greatest `activates_at`, `created_at`,
    /// then `kid`) is
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

    /// Inserts or replaces a pending authorization request.
    async fn put_auth_request(&self, req: &AuthRequestRecord) -> Result<()>;
    async fn get_auth_request(&self, id: &str) -> Result<Option<AuthRequestRecord>>;
    async fn delete_auth_request(&self, id: &str) -> Result<()>;

    async fn create_session(&self, session: &SessionRecord) -> Result<()>;
    async fn get_session(&self, id_hash: &str) -> Result<Option<SessionRecord>>;
    async fn delete_session(&self, id_hash: &str) -> Result<()>;
    /// Ends every session of `sub`; `None` ends all sessions. Returns how many.
    async fn delete_sessions(&self, sub: Option<&str>) -> Result<u64>;

    /// The scopes `sub` has granted `client_id`.
    async fn get_consent(&self, sub: &str, client_id: &str) -> Result<Option<Vec<String>>>;
    async fn put_consent(
        &self,
        sub: &str,
        client_id: &str,
        scopes: &[String],
        now: UnixTime,
    ) -> Result<()>;

    async fn insert_auth_code(&self, code: &AuthCodeRecord) -> Result<()>;
    /// Marks a code redeemed, atomically: of any number of concurrent calls, exactly one
    /// gets `First`.
    async fn redeem_auth_code(
        &self,
        code_hash: &str,
        now: UnixTime,
    ) -> Result<Redemption<AuthCodeRecord>>;
    /// Records what a redeemed code issued, so a replay can revoke it.
    async fn record_code_issuance(
        &self,
        code_hash: &str,
        family_id: Option<&str>,
        access_jti: &str,
        access_exp: UnixTime,
    ) -> Result<()>;

    async fn create_refresh_family(&self, family: &RefreshFamilyRecord) -> Result<()>;
    async fn get_refresh_family(&self, id: &str) -> Result<Option<RefreshFamilyRecord>>;
    async fn insert_refresh_token(&self, token: &RefreshTokenRecord) -> Result<()>;
    /// Marks a refresh token rotated, atomically: of concurrent calls exactly one gets
    /// `First`; later ones get `Again` with the time of the first rotation.
    async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        now: UnixTime,
    ) -> Result<Redemption<RefreshTokenRecord>>;
    async fn get_refresh_token(&self, token_hash: &str) -> Result<Option<RefreshTokenRecord>>;
    /// Revokes a family and every access token recorded against it. Idempotent.
    async fn revoke_refresh_family(&self, family_id: &str, now: UnixTime) -> Result<()>;

    /// Replaces what a refresh family grants (its identity after an upstream refresh).
    async fn update_refresh_family_grant(&self, id: &str, grant: &str) -> Result<()>;

    /// Stores the latest claims of an identity (JSON), keyed by its `sub`.
    async fn put_identity(&self, sub: &str, identity: &str, now: UnixTime) -> Result<()>;
    async fn get_identity(&self, sub: &str) -> Result<Option<String>>;
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
