//! The PostgreSQL backend: several stateless nodes share one database.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row as _;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};

use super::{Result, Storage, alg};
use crate::clock::UnixTime;
use crate::model::{ClientRecord, SigningKeyRecord};

pub struct PostgresStorage {
    pool: PgPool,
}

impl PostgresStorage {
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(Self { pool })
    }

    /// Connects with an explicit options set (tests use it to pick a schema).
    pub async fn connect_with(options: sqlx::postgres::PgConnectOptions) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }
}

fn key_from_row(row: &PgRow) -> Result<SigningKeyRecord> {
    Ok(SigningKeyRecord {
        kid: row.try_get("kid")?,
        alg: alg(row.try_get("alg")?)?,
        private_key: row.try_get("private_key")?,
        public_jwk: row.try_get("public_jwk")?,
        created_at: row.try_get("created_at")?,
        activates_at: row.try_get("activates_at")?,
    })
}

fn client_from_row(row: &PgRow) -> Result<ClientRecord> {
    Ok(ClientRecord {
        id: row.try_get("id")?,
        secret_hash: row.try_get("secret_hash")?,
        metadata: row.try_get("metadata")?,
        updated_at: row.try_get("updated_at")?,
    })
}

#[async_trait]
impl Storage for PostgresStorage {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn migrate(&self) -> Result<()> {
        super::migrations::postgres().run(&self.pool).await?;
        Ok(())
    }

    async fn upsert_client(&self, c: &ClientRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO clients (id, secret_hash, metadata, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET secret_hash = excluded.secret_hash,
                 metadata = excluded.metadata, updated_at = excluded.updated_at",
        )
        .bind(&c.id)
        .bind(&c.secret_hash)
        .bind(&c.metadata)
        .bind(c.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_client(&self, id: &str) -> Result<Option<ClientRecord>> {
        sqlx::query("SELECT * FROM clients WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(client_from_row)
            .transpose()
    }

    async fn list_clients(&self) -> Result<Vec<ClientRecord>> {
        sqlx::query("SELECT * FROM clients ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(client_from_row)
            .collect()
    }

    async fn delete_client(&self, id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM clients WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn list_signing_keys(&self) -> Result<Vec<SigningKeyRecord>> {
        sqlx::query("SELECT * FROM signing_keys ORDER BY activates_at, kid")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(key_from_row)
            .collect()
    }

    async fn add_signing_key(
        &self,
        expected_newest: Option<&str>,
        key: &SigningKeyRecord,
    ) -> Result<bool> {
        // One transaction-scoped advisory lock serialises rotation across every node.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(7305001)")
            .execute(&mut *tx)
            .await?;
        let newest: Option<String> = sqlx::query_scalar(
            "SELECT kid FROM signing_keys ORDER BY activates_at DESC, kid DESC LIMIT 1",
        )
        .fetch_optional(&mut *tx)
        .await?;
        if newest.as_deref() != expected_newest {
            return Ok(false);
        }
        sqlx::query("DELETE FROM signing_keys WHERE activates_at > $1")
            .bind(key.activates_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_key, public_jwk, created_at, activates_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&key.kid)
        .bind(key.alg.as_str())
        .bind(&key.private_key)
        .bind(&key.public_jwk)
        .bind(key.created_at)
        .bind(key.activates_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn delete_signing_key(&self, kid: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
            .bind(kid)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn revoke_token_id(&self, jti: &str, expires_at: UnixTime) -> Result<()> {
        sqlx::query("INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING")
            .bind(jti)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn is_token_id_revoked(&self, jti: &str) -> Result<bool> {
        let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM revoked_tokens WHERE jti = $1")
            .bind(jti)
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    async fn purge_expired(&self, now: UnixTime) -> Result<u64> {
        let r = sqlx::query("DELETE FROM revoked_tokens WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }
}
