//! The PostgreSQL backend: several stateless nodes share one database. The statements are
//! shared with SQLite ([`super::sql`]); here are only the connection and the rotation lock.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::api::{PoolOptions, Result};
use crate::clock::UnixTime;
use crate::model::{
    AuthCodeRecord, AuthRequestRecord, ClientRecord, CodeIssuance, DeviceCodeRecord,
    DeviceDecision, Redemption, RefreshFamilyRecord, RefreshTokenRecord, SessionRecord,
    SigningKeyRecord,
};

pub struct PostgresStorage {
    pool: PgPool,
}

impl PostgresStorage {
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with_options(url, &PoolOptions::default()).await
    }

    pub async fn connect_with_options(url: &str, pool: &PoolOptions) -> Result<Self> {
        use std::str::FromStr as _;
        Self::connect_with_pool(PgConnectOptions::from_str(url)?, pool).await
    }

    /// Connects with an explicit options set (tests use it to pick a schema).
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self> {
        Self::connect_with_pool(options, &PoolOptions::default()).await
    }

    /// An unreachable database fails a request within `acquire_timeout`, never later.
    pub async fn connect_with_pool(options: PgConnectOptions, pool: &PoolOptions) -> Result<Self> {
        // No ping before each use of a busy connection (that would be a second round trip
        // for every statement). A connection is checked before use only when it may be
        // stale: it sat idle for a second or more (the server may have restarted meanwhile),
        // or some connection failed in the last ten seconds (then its siblings likely died
        // with it). So after an outage the first request on each dead connection does not
        // fail: the check closes it and the pool opens a fresh one.
        let pool = PgPoolOptions::new()
            .max_connections(pool.max_connections.unwrap_or(16))
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= Duration::from_secs(1)
                        || super::api::connection_failed_within(Duration::from_secs(10))
                    {
                        use sqlx::Connection as _;
                        conn.ping()
                            .await
                            .inspect_err(super::api::note_connection_failure)?;
                    }
                    Ok(true)
                })
            })
            .acquire_timeout(pool.acquire_timeout)
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    /// One transaction-scoped advisory lock serialises signing-key rotation across nodes.
    async fn key_lock(&self) -> Result<sqlx::Transaction<'_, sqlx::Postgres>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(7305001)")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}

fn migrator() -> sqlx::migrate::Migrator {
    super::migrations::postgres()
}

super::sql::shared_storage!(
    PostgresStorage,
    sqlx::Postgres,
    sqlx::postgres::PgRow,
    migrator
);
