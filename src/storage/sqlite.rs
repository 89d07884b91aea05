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
use crate::model::{
    AuthCodeRecord, AuthRequestRecord, ClientRecord, Redemption, RefreshFamilyRecord,
    RefreshTokenRecord, SessionRecord, SigningKeyRecord,
};

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

fn auth_request_from_row(row: &SqliteRow) -> Result<AuthRequestRecord> {
    Ok(AuthRequestRecord {
        id: row.try_get("id")?,
        client_id: row.try_get("client_id")?,
        request: row.try_get("request")?,
        csrf: row.try_get("csrf")?,
        binding_hash: row.try_get("binding_hash")?,
        session_id: row.try_get("session_id")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

fn session_from_row(row: &SqliteRow) -> Result<SessionRecord> {
    Ok(SessionRecord {
        id_hash: row.try_get("id_hash")?,
        sid: row.try_get("sid")?,
        sub: row.try_get("sub")?,
        identity: row.try_get("identity")?,
        auth_time: row.try_get("auth_time")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

fn code_from_row(row: &SqliteRow) -> Result<AuthCodeRecord> {
    Ok(AuthCodeRecord {
        code_hash: row.try_get("code_hash")?,
        client_id: row.try_get("client_id")?,
        grant: row.try_get("grant_data")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        redeemed_at: row.try_get("redeemed_at")?,
        family_id: row.try_get("family_id")?,
        access_jti: row.try_get("access_jti")?,
        access_exp: row.try_get("access_exp")?,
    })
}

fn family_from_row(row: &SqliteRow) -> Result<RefreshFamilyRecord> {
    Ok(RefreshFamilyRecord {
        id: row.try_get("id")?,
        client_id: row.try_get("client_id")?,
        sub: row.try_get("sub")?,
        grant: row.try_get("grant_data")?,
        created_at: row.try_get("created_at")?,
        absolute_expires_at: row.try_get("absolute_expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

fn refresh_from_row(row: &SqliteRow) -> Result<RefreshTokenRecord> {
    Ok(RefreshTokenRecord {
        token_hash: row.try_get("token_hash")?,
        family_id: row.try_get("family_id")?,
        created_at: row.try_get("created_at")?,
        idle_expires_at: row.try_get("idle_expires_at")?,
        rotated_at: row.try_get("rotated_at")?,
        access_jti: row.try_get("access_jti")?,
        access_exp: row.try_get("access_exp")?,
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
        sqlx::query("SELECT * FROM signing_keys ORDER BY activates_at, created_at, kid")
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
            "SELECT kid FROM signing_keys ORDER BY activates_at DESC, created_at DESC, kid DESC LIMIT 1",
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
        // Redeemed codes are kept a while past expiry so that late replays are recognised.
        let mut n = 0;
        for (sql, cutoff) in [
            ("DELETE FROM revoked_tokens WHERE expires_at < ?", now),
            ("DELETE FROM auth_requests WHERE expires_at < ?", now),
            ("DELETE FROM sessions WHERE expires_at < ?", now),
            ("DELETE FROM auth_codes WHERE expires_at < ?", now - 3600),
            ("DELETE FROM refresh_tokens WHERE idle_expires_at < ?", now),
            (
                "DELETE FROM refresh_families WHERE absolute_expires_at < ?",
                now,
            ),
        ] {
            n += sqlx::query(sql)
                .bind(cutoff)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(n)
    }

    async fn put_auth_request(&self, r: &AuthRequestRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO auth_requests (id, client_id, request, csrf, binding_hash, session_id, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET request = excluded.request, csrf = excluded.csrf,
                 binding_hash = excluded.binding_hash, session_id = excluded.session_id,
                 expires_at = excluded.expires_at",
        )
        .bind(&r.id)
        .bind(&r.client_id)
        .bind(&r.request)
        .bind(&r.csrf)
        .bind(&r.binding_hash)
        .bind(&r.session_id)
        .bind(r.created_at)
        .bind(r.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_auth_request(&self, id: &str) -> Result<Option<AuthRequestRecord>> {
        sqlx::query("SELECT * FROM auth_requests WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(auth_request_from_row)
            .transpose()
    }

    async fn delete_auth_request(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM auth_requests WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_session(&self, r: &SessionRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, sid, sub, identity, auth_time, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&r.id_hash)
        .bind(&r.sid)
        .bind(&r.sub)
        .bind(&r.identity)
        .bind(r.auth_time)
        .bind(r.created_at)
        .bind(r.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_session(&self, id_hash: &str) -> Result<Option<SessionRecord>> {
        sqlx::query("SELECT * FROM sessions WHERE id_hash = ?")
            .bind(id_hash)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(session_from_row)
            .transpose()
    }

    async fn delete_session(&self, id_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_sessions(&self, sub: Option<&str>) -> Result<u64> {
        let r = match sub {
            Some(sub) => {
                sqlx::query("DELETE FROM sessions WHERE sub = ?")
                    .bind(sub)
                    .execute(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("DELETE FROM sessions")
                    .execute(&self.pool)
                    .await?
            }
        };
        Ok(r.rows_affected())
    }

    async fn get_consent(&self, sub: &str, client_id: &str) -> Result<Option<Vec<String>>> {
        let scopes: Option<String> =
            sqlx::query_scalar("SELECT scopes FROM consents WHERE sub = ? AND client_id = ?")
                .bind(sub)
                .bind(client_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(scopes.map(|s| {
            s.split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        }))
    }

    async fn put_consent(
        &self,
        sub: &str,
        client_id: &str,
        scopes: &[String],
        now: UnixTime,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO consents (sub, client_id, scopes, granted_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (sub, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at",
        )
        .bind(sub)
        .bind(client_id)
        .bind(scopes.join(" "))
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn insert_auth_code(&self, c: &AuthCodeRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO auth_codes (code_hash, client_id, grant_data, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&c.code_hash)
        .bind(&c.client_id)
        .bind(&c.grant)
        .bind(c.created_at)
        .bind(c.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn redeem_auth_code(
        &self,
        code_hash: &str,
        now: UnixTime,
    ) -> Result<Redemption<AuthCodeRecord>> {
        let first = sqlx::query(
            "UPDATE auth_codes SET redeemed_at = ? WHERE code_hash = ? AND redeemed_at IS NULL RETURNING *",
        )
        .bind(now)
        .bind(code_hash)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = first {
            return Ok(Redemption::First(code_from_row(&row)?));
        }
        let again = sqlx::query("SELECT * FROM auth_codes WHERE code_hash = ?")
            .bind(code_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match again {
            Some(row) => Redemption::Again(code_from_row(&row)?),
            None => Redemption::Missing,
        })
    }

    async fn record_code_issuance(
        &self,
        code_hash: &str,
        family_id: Option<&str>,
        access_jti: &str,
        access_exp: UnixTime,
    ) -> Result<()> {
        sqlx::query("UPDATE auth_codes SET family_id = ?, access_jti = ?, access_exp = ? WHERE code_hash = ?")
            .bind(family_id)
            .bind(access_jti)
            .bind(access_exp)
            .bind(code_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_refresh_family(&self, f: &RefreshFamilyRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO refresh_families (id, client_id, sub, grant_data, created_at, absolute_expires_at, revoked_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&f.id)
        .bind(&f.client_id)
        .bind(&f.sub)
        .bind(&f.grant)
        .bind(f.created_at)
        .bind(f.absolute_expires_at)
        .bind(f.revoked_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_refresh_family(&self, id: &str) -> Result<Option<RefreshFamilyRecord>> {
        sqlx::query("SELECT * FROM refresh_families WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(family_from_row)
            .transpose()
    }

    async fn insert_refresh_token(&self, t: &RefreshTokenRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, family_id, created_at, idle_expires_at, rotated_at, access_jti, access_exp)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&t.token_hash)
        .bind(&t.family_id)
        .bind(t.created_at)
        .bind(t.idle_expires_at)
        .bind(t.rotated_at)
        .bind(&t.access_jti)
        .bind(t.access_exp)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        now: UnixTime,
    ) -> Result<Redemption<RefreshTokenRecord>> {
        let first = sqlx::query(
            "UPDATE refresh_tokens SET rotated_at = ? WHERE token_hash = ? AND rotated_at IS NULL RETURNING *",
        )
        .bind(now)
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = first {
            return Ok(Redemption::First(refresh_from_row(&row)?));
        }
        Ok(match self.get_refresh_token(token_hash).await? {
            Some(t) => Redemption::Again(t),
            None => Redemption::Missing,
        })
    }

    async fn get_refresh_token(&self, token_hash: &str) -> Result<Option<RefreshTokenRecord>> {
        sqlx::query("SELECT * FROM refresh_tokens WHERE token_hash = ?")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(refresh_from_row)
            .transpose()
    }

    async fn revoke_refresh_family(&self, family_id: &str, now: UnixTime) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE refresh_families SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(family_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO revoked_tokens (jti, expires_at)
             SELECT access_jti, access_exp FROM refresh_tokens
              WHERE family_id = ? AND access_jti IS NOT NULL AND access_exp > ?
             UNION
             SELECT access_jti, access_exp FROM auth_codes
              WHERE family_id = ? AND access_jti IS NOT NULL AND access_exp > ?
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(family_id)
        .bind(now)
        .bind(family_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn update_refresh_family_grant(&self, id: &str, grant: &str) -> Result<()> {
        sqlx::query("UPDATE refresh_families SET grant_data = ? WHERE id = ?")
            .bind(grant)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn put_identity(&self, sub: &str, identity: &str, now: UnixTime) -> Result<()> {
        sqlx::query(
            "INSERT INTO identities (sub, identity, updated_at) VALUES (?, ?, ?)
             ON CONFLICT (sub) DO UPDATE SET identity = excluded.identity, updated_at = excluded.updated_at",
        )
        .bind(sub)
        .bind(identity)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_identity(&self, sub: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT identity FROM identities WHERE sub = ?")
                .bind(sub)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}
