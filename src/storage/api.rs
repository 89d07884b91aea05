//! What the server needs from storage: the [`Storage`] trait, its errors and the pool's
//! options. Backends implement it; nothing here knows a backend.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::clock::UnixTime;
use crate::model::{
    AuthCodeRecord, AuthRequestRecord, ClientRecord, CodeIssuance, DeviceCodeRecord,
    DeviceDecision, Redemption, RefreshFamilyRecord, RefreshTokenRecord, SessionRecord,
    SigningKeyRecord,
};

/// What can go wrong in storage, typed so that callers can tell a missing or duplicate
/// record from a database that is away.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The record asked for does not exist.
    #[error("not found")]
    NotFound,
    /// A record with that key exists already (a unique constraint).
    #[error("already exists: {0}")]
    Conflict(String),
    /// The database failed or could not be reached.
    #[error("database error: {0}")]
    Backend(sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// Stored data that cannot be read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// When this process last saw a database connection fail (milliseconds on [`since_start`]),
/// 0 if never. One process serves one database, so one signal will do: after a failure the
/// pool checks idle connections before handing them out, since they may have died too.
static CONNECTION_FAILED_AT: AtomicU64 = AtomicU64::new(0);

fn since_start() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    // +1: a failure in the very first millisecond still reads as "seen".
    START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// Whether `e` says the connection (not the statement) failed: the socket, TLS, the
/// protocol, the server shutting down (SQLSTATE class 57) or a connection exception (08).
fn is_connection_failure(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("57") || c.starts_with("08")),
        _ => false,
    }
}

/// Remembers `e` if it says a connection failed.
pub(crate) fn note_connection_failure(e: &sqlx::Error) {
    if is_connection_failure(e) {
        CONNECTION_FAILED_AT.store(since_start(), Ordering::Relaxed);
    }
}

/// Whether a connection failed within `window`.
pub(crate) fn connection_failed_within(window: Duration) -> bool {
    let at = CONNECTION_FAILED_AT.load(Ordering::Relaxed);
    at != 0 && since_start().saturating_sub(at) <= window.as_millis() as u64
}

impl From<sqlx::Error> for StorageError {
    fn from(e: sqlx::Error) -> Self {
        note_connection_failure(&e);
        match &e {
            sqlx::Error::RowNotFound => Self::NotFound,
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                Self::Conflict(d.message().to_string())
            }
            _ => Self::Backend(e),
        }
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> Result<()>;

    /// Applies pending migrations.
    async fn migrate(&self) -> Result<()>;

    /// How many of this build's migrations the database has not applied (0: current).
    async fn pending_migrations(&self) -> Result<usize>;

    /// The connection pool now: (open, idle, at most).
    fn pool_stats(&self) -> (u32, u32, u32);

    async fn upsert_client(&self, client: &ClientRecord) -> Result<()>;
    /// Adds a client unless one with its id exists; false if one does.
    async fn create_client(&self, client: &ClientRecord) -> Result<bool>;
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
    /// Whether an access token is revoked: by its `jti`, or because the session `sid` it
    /// came from was ended. One round trip.
    async fn is_access_token_revoked(&self, jti: &str, sid: Option<&str>) -> Result<bool>;

    /// Deletes records that have expired by `now`. Returns how many went.
    async fn purge_expired(&self, now: UnixTime) -> Result<u64>;

    /// Inserts or replaces a pending authorization request.
    async fn put_auth_request(&self, req: &AuthRequestRecord) -> Result<()>;
    async fn get_auth_request(&self, id: &str) -> Result<Option<AuthRequestRecord>>;
    async fn delete_auth_request(&self, id: &str) -> Result<()>;
    /// How many pending requests are stored (benchmarks and tests watch growth).
    async fn count_auth_requests(&self) -> Result<u64>;

    /// Creates a session and stores its identity as its subject's latest claims (what
    /// `get_identity` answers), in one transaction.
    async fn create_session(&self, session: &SessionRecord) -> Result<()>;
    async fn get_session(&self, id_hash: &str) -> Result<Option<SessionRecord>>;
    /// Ends one session; its `sid` and `sub`, if it existed.
    async fn delete_session(&self, id_hash: &str) -> Result<Option<(String, String)>>;
    /// Ends every session of `sub`; `None` ends all sessions. Returns the `sid` and `sub`
    /// of each.
    async fn delete_sessions(&self, sub: Option<&str>) -> Result<Vec<(String, String)>>;
    /// Ends the session `sid` and what it issued, in one transaction: the session row goes,
    /// every refresh family started from it is revoked with its access tokens, and access
    /// tokens carrying that `sid` are refused until `marker_expires_at`. Returns how many
    /// families were revoked.
    async fn end_session(
        &self,
        sid: &str,
        now: UnixTime,
        marker_expires_at: UnixTime,
    ) -> Result<u64>;

    /// The scopes `sub` has granted `client_id`.
    async fn get_consent(&self, sub: &str, client_id: &str) -> Result<Option<Vec<String>>>;
    async fn put_consent(
        &self,
        sub: &str,
        client_id: &str,
        scopes: &[String],
        now: UnixTime,
    ) -> Result<()>;

    /// Stores a code; `answered` names the pending authorization request it answers, which
    /// goes in the same transaction.
    async fn insert_auth_code(&self, code: &AuthCodeRecord, answered: Option<&str>) -> Result<()>;
    /// Marks a code redeemed by `client_id`, atomically, recording what the redemption will
    /// issue: of any number of concurrent calls, exactly one gets `First`. A code bound to
    /// another client is left untouched (`Foreign`), so whoever merely saw a code cannot
    /// burn it.
    async fn redeem_auth_code(
        &self,
        code_hash: &str,
        client_id: &str,
        issuance: &CodeIssuance,
        now: UnixTime,
    ) -> Result<Redemption<AuthCodeRecord>>;
    /// Notes that a redeemed code was presented again, so that a family its first
    /// redemption is still creating is born revoked.
    async fn mark_code_replayed(&self, code_hash: &str, now: UnixTime) -> Result<()>;

    /// Creates a refresh family with its first token, in one transaction. It is then revoked
    /// if `revoked_if_code_replayed` was replayed meanwhile, or its session (`sid`) has
    /// ended (checked once the family is visible, so no replay or logout can miss it).
    async fn create_refresh_family(
        &self,
        family: &RefreshFamilyRecord,
        first: &RefreshTokenRecord,
        revoked_if_code_replayed: Option<&str>,
    ) -> Result<()>;
    async fn get_refresh_family(&self, id: &str) -> Result<Option<RefreshFamilyRecord>>;
    /// A refresh token with its family, in one round trip.
    async fn get_refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<(RefreshTokenRecord, RefreshFamilyRecord)>>;
    /// Rotates a refresh token in one transaction: marks it rotated, keeps `response` (the
    /// sealed token response that carries `successor`) with it, and inserts `successor`;
    /// or, if anything fails, does neither. Of concurrent calls exactly one gets `First`;
    /// the others get `Again` with the stored row (and its `successor_response`).
    async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        successor: &RefreshTokenRecord,
        response: &[u8],
        now: UnixTime,
    ) -> Result<Redemption<RefreshTokenRecord>>;
    /// Revokes a family and every access token recorded against it. Idempotent.
    async fn revoke_refresh_family(&self, family_id: &str, now: UnixTime) -> Result<()>;

    /// Replaces what a refresh family grants (its identity after an upstream refresh).
    async fn update_refresh_family_grant(&self, id: &str, grant: &str) -> Result<()>;

    /// Stores the latest claims of an identity (JSON), keyed by its `sub`.
    async fn put_identity(&self, sub: &str, identity: &str, now: UnixTime) -> Result<()>;
    async fn get_identity(&self, sub: &str) -> Result<Option<String>>;

    /// Records `key` as used until `expires_at`; false if it already was, on any node (a
    /// replayed client assertion).
    async fn use_once(&self, key: &str, expires_at: UnixTime) -> Result<bool>;

    /// Stores a device authorization request; `Conflict` when its user code is taken.
    async fn insert_device_code(&self, device: &DeviceCodeRecord) -> Result<()>;
    /// A device authorization request by its user code.
    async fn get_device_code(&self, user_code: &str) -> Result<Option<DeviceCodeRecord>>;
    /// Decides the pending, unexpired request `id`; false if it was not pending.
    async fn decide_device_code(
        &self,
        id: &str,
        decision: &DeviceDecision,
        now: UnixTime,
    ) -> Result<bool>;
    /// One poll of a device code by `client_id`, in one statement: counted, `slow_down` set
    /// when it came sooner than the interval after the previous one, and an approved grant
    /// taken (status `used`) by exactly one poll. A code of another client is left
    /// untouched (`None`).
    async fn poll_device_code(
        &self,
        device_code_hash: &str,
        client_id: &str,
        now: UnixTime,
    ) -> Result<Option<DeviceCodeRecord>>;

    /// Records that `client_id` got tokens from session `sid` (back-channel logout).
    async fn note_session_client(
        &self,
        sid: &str,
        client_id: &str,
        expires_at: UnixTime,
    ) -> Result<()>;
    /// The clients recorded for session `sid`.
    async fn session_clients(&self, sid: &str) -> Result<Vec<String>>;
}

/// The `revoked_tokens` key that marks every access token of session `sid` revoked.
pub fn session_marker(sid: &str) -> String {
    format!("sid:{sid}")
}

/// How the connection pool behaves (`database.acquire_timeout`, `database.max_connections`).
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// How long a request may wait for a connection before it fails (and, on SQLite, for a
    /// lock). An unreachable database is answered within this time.
    pub acquire_timeout: std::time::Duration,
    /// `None`: 8 for SQLite, 16 for PostgreSQL.
    pub max_connections: Option<u32>,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            acquire_timeout: std::time::Duration::from_secs(2),
            max_connections: None,
        }
    }
}

/// Parses a stored algorithm name.
pub(crate) fn alg(s: &str) -> Result<crate::config::SigningAlgorithm> {
    crate::config::SigningAlgorithm::parse(s)
        .ok_or_else(|| StorageError::Corrupt(format!("unknown signing algorithm `{s}`")))
}
