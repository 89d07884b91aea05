//! The SQLite backend: the embedded default, a file or `sqlite::memory:`.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row as _;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
};

use super::{Result, Storage, alg};
use crate::clock::UnixTime;
use crate::model::{ClientRecord, SigningKeyRecord};

pub struct SqliteStorage {
    pool: SqlitePool,
}

impl SqliteStorage {
    pub async fn connect(url: &str) -> Result<Self> {
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let options = if memory {
            options
        } else {
            options.journal_mode(SqliteJournalMode::Wal)
        };
        // An in-memory database lives as long as its one connection: keep exactly one, forever.
        let pool = if memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(8)
        }
        .connect_with(options)
        .await?;
        Ok(Self { pool })
    }
}

fn key_from_row(row: &SqliteRow) -> Result<SigningKeyRecord> {
    Ok(SigningKeyRecord {
        kid: row.try_get("kid")?,
        alg: alg(row.try_get("alg")?)?,
        private_key: row.try_get("private_key")?,
        public_jwk: row.try_get("public_jwk")?,
        created_at: row.try_get("created_at")?,
        activates_at: row.try_get("activates_at")?,
    })
}

fn client_from_row(row: &SqliteRow) -> Result<ClientRecord> {
    Ok(ClientRecord {
        id: row.try_get("id")?,
        secret_hash: row.try_get("secret_hash")?,
        metadata: row.try_get("metadata")?,
        updated_at: row.try_get("updated_at")?,
    })
}

#[async_trait]
impl Storage for SqliteStorage {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn migrate(&self) -> Result<()> {
        super::migrations::sqlite().run(&self.pool).await?;
        Ok(())
    }

    async fn upsert_client(&self, c: &ClientRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO clients (id, secret_hash, metadata, updated_at) VALUES (?, ?, ?, ?)
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
        sqlx::query("SELECT * FROM clients WHERE id = ?")
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
        let r = sqlx::query("DELETE FROM clients WHERE id = ?")
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
        // IMMEDIATE takes the write lock up front, so the check and the insert are one step
        // even with other processes on the same file.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let newest: Option<String> = sqlx::query_scalar(
            "SELECT kid FROM signing_keys ORDER BY activates_at DESC, kid DESC LIMIT 1",
        )
        .fetch_optional(&mut *tx)
        .await?;
        if newest.as_deref() != expected_newest {
            return Ok(false);
        }
        sqlx::query("DELETE FROM signing_keys WHERE activates_at > ?")
            .bind(key.activates_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_key, public_jwk, created_at, activates_at)
             VALUES (?, ?, ?, ?, ?, ?)",
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
        let r = sqlx::query("DELETE FROM signing_keys WHERE kid = ?")
            .bind(kid)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn revoke_token_id(&self, jti: &str, expires_at: UnixTime) -> Result<()> {
        sqlx::query("INSERT INTO revoked_tokens (jti, expires_at) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING")
            .bind(jti)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn is_token_id_revoked(&self, jti: &str) -> Result<bool> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM revoked_tokens WHERE jti = ?")
            .bind(jti)
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    async fn purge_expired(&self, now: UnixTime) -> Result<u64> {
        let r = sqlx::query("DELETE FROM revoked_tokens WHERE expires_at < ?")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }
}
