//! The SQL both backends run: one text, `$N` placeholders (which sqlx binds on SQLite too),
//! expanded once per backend by [`shared_storage!`] (`rows.rs` reads rows, `tokens.rs` holds
//! the code and refresh-token statements, `agents.rs` the device grant's and the one-time
//! values'). A backend keeps only what truly differs:
//! how it connects, its migrations, and the lock that serialises signing-key rotation
//! (`BEGIN IMMEDIATE` on SQLite, an advisory lock on PostgreSQL).
//!
//! Statements that must happen together run in one transaction: a refresh token is marked
//! rotated in the same transaction that writes its successor, so a failure between the two
//! leaves the old token usable rather than the family lost.

pub(super) mod agents;
pub(super) mod rows;
pub(super) mod tokens;

/// Implements [`super::Storage`] for `$ty`, whose `pool` field is a `sqlx::Pool<$db>` and
/// which has `async fn key_lock(&self) -> Result<sqlx::Transaction<'_, $db>>`: the row
/// readers, then the methods here, handed with the rest to `tokens.rs`, which emits the impl.
macro_rules! shared_storage {
    ($ty:ident, $db:ty, $row:ty, $migrator:path) => {
        $crate::storage::sql::rows::shared_rows!($row);

        /// Rows the purge deletes per statement.
        const PURGE_BATCH: u64 = 500;

        /// Stores `$2` as the latest claims of subject `$1` at `$3`.
        const UPSERT_IDENTITY: &str = "INSERT INTO identities (sub, identity, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (sub) DO UPDATE SET identity = excluded.identity,
                 updated_at = excluded.updated_at";

        const INSERT_REFRESH_TOKEN: &str = "INSERT INTO refresh_tokens
             (token_hash, family_id, created_at, idle_expires_at, rotated_at, access_jti, access_exp)
             VALUES ($1, $2, $3, $4, $5, $6, $7)";

        /// Revokes the access tokens recorded against family `$1` that are still live at `$2`.
        const REVOKE_FAMILY_ACCESS_TOKENS: &str = "INSERT INTO revoked_tokens (jti, expires_at)
             SELECT access_jti, access_exp FROM refresh_tokens
              WHERE family_id = $1 AND access_jti IS NOT NULL AND access_exp > $2
             UNION
             SELECT access_jti, access_exp FROM auth_codes
              WHERE family_id = $1 AND access_jti IS NOT NULL AND access_exp > $2
             ON CONFLICT (jti) DO NOTHING";

        /// Inserts client `c`, `on_conflict` deciding what an existing id gets; rows written.
        async fn write_client(
            pool: &sqlx::Pool<$db>,
            c: &$crate::model::ClientRecord,
            on_conflict: &str,
        ) -> Result<u64> {
            let sql = format!(
                "INSERT INTO clients (id, secret_hash, metadata, updated_at, source, secrets)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) {on_conflict}"
            );
            Ok(sqlx::query(&sql)
                .bind(&c.id)
                .bind(&c.secret_hash)
                .bind(&c.metadata)
                .bind(c.updated_at)
                .bind(c.source.as_str())
                .bind(secrets_json(&c.secrets)?)
                .execute(pool)
                .await?
                .rows_affected())
        }

        fn secrets_json(secrets: &[$crate::model::StoredSecret]) -> Result<String> {
            serde_json::to_string(secrets)
                .map_err(|e| $crate::storage::api::StorageError::Corrupt(format!("client secrets: {e}")))
        }

        $crate::storage::sql::agents::shared_agent_methods! {
            $ty,
            {
                async fn ping(&self) -> Result<()> {
                    sqlx::query("SELECT 1").execute(&self.pool).await?;
                    Ok(())
                }

                async fn migrate(&self) -> Result<()> {
                    $migrator().run(&self.pool).await?;
                    Ok(())
                }

                fn pool_stats(&self) -> (u32, u32, u32) {
                    (
                        self.pool.size(),
                        u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
                        self.pool.options().get_max_connections(),
                    )
                }

                async fn pending_migrations(&self) -> Result<usize> {
                    let applied: Vec<i64> =
                        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                            .fetch_all(&self.pool)
                            .await?;
                    Ok($migrator()
                        .iter()
                        .filter(|m| !applied.contains(&m.version))
                        .count())
                }

                async fn upsert_client(&self, c: &ClientRecord) -> Result<()> {
                    write_client(
                        &self.pool,
                        c,
                        "DO UPDATE SET secret_hash = excluded.secret_hash,
                             metadata = excluded.metadata, updated_at = excluded.updated_at,
                             source = excluded.source, secrets = excluded.secrets",
                    )
                    .await?;
                    Ok(())
                }

                async fn create_client(&self, c: &ClientRecord) -> Result<bool> {
                    Ok(write_client(&self.pool, c, "DO NOTHING").await? > 0)
                }

                async fn get_client(&self, id: &str) -> Result<Option<ClientRecord>> {
                    sqlx::query("SELECT * FROM clients WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?
                        .as_ref()
                        .map(rows::client)
                        .transpose()
                }

                async fn list_clients(&self) -> Result<Vec<ClientRecord>> {
                    sqlx::query("SELECT * FROM clients ORDER BY id")
                        .fetch_all(&self.pool)
                        .await?
                        .iter()
                        .map(rows::client)
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
                    sqlx::query("SELECT * FROM signing_keys ORDER BY activates_at, created_at, kid")
                        .fetch_all(&self.pool)
                        .await?
                        .iter()
                        .map(rows::key)
                        .collect()
                }

                async fn add_signing_key(
                    &self,
                    expected_newest: Option<&str>,
                    key: &SigningKeyRecord,
                ) -> Result<bool> {
                    let mut tx = self.key_lock().await?;
                    let newest: Option<String> = sqlx::query_scalar(
                        "SELECT kid FROM signing_keys ORDER BY activates_at DESC, created_at DESC, kid DESC LIMIT 1",
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
                    sqlx::query(
                        "INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2)
                         ON CONFLICT (jti) DO NOTHING",
                    )
                    .bind(jti)
                    .bind(expires_at)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn is_access_token_revoked(&self, jti: &str, sid: Option<&str>) -> Result<bool> {
                    let marker = sid.map($crate::storage::api::session_marker);
                    let found = sqlx::query("SELECT jti FROM revoked_tokens WHERE jti = $1 OR jti = $2")
                        .bind(jti)
                        .bind(marker)
                        .fetch_optional(&self.pool)
                        .await?;
                    Ok(found.is_some())
                }

                async fn purge_expired(&self, now: UnixTime) -> Result<u64> {
                    // In batches of PURGE_BATCH rows, each its own short statement, so that
                    // requests writing meanwhile wait for one batch at most.
                    // Redeemed codes are kept a while past expiry so that late replays are
                    // recognised.
                    let mut n = 0;
                    for (table, key, column, cutoff) in [
                        ("revoked_tokens", "jti", "expires_at", now),
                        ("auth_requests", "id", "expires_at", now),
                        ("sessions", "id_hash", "expires_at", now),
                        ("auth_codes", "code_hash", "expires_at", now - 3600),
                        ("refresh_tokens", "token_hash", "idle_expires_at", now),
                        ("refresh_families", "id", "absolute_expires_at", now),
                        ("used_once", "key", "expires_at", now),
                        // Kept an hour past expiry, so that a late poll hears `expired_token`.
                        ("device_codes", "device_code_hash", "expires_at", now - 3600),
                        ("session_clients", "sid", "expires_at", now),
                    ] {
                        let sql = format!(
                            "DELETE FROM {table} WHERE {key} IN
                             (SELECT {key} FROM {table} WHERE {column} < $1 LIMIT {PURGE_BATCH})"
                        );
                        loop {
                            let gone = {
                                sqlx::query(&sql)
                                    .bind(cutoff)
                                    .execute(&self.pool)
                                    .await?
                                    .rows_affected()
                            };
                            n += gone;
                            if gone < PURGE_BATCH {
                                break;
                            }
                            tokio::task::yield_now().await;
                        }
                    }
                    Ok(n)
                }

                async fn put_auth_request(&self, r: &AuthRequestRecord) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO auth_requests (id, client_id, request, csrf, binding_hash, session_id, created_at, expires_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
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
                    sqlx::query("SELECT * FROM auth_requests WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?
                        .as_ref()
                        .map(rows::auth_request)
                        .transpose()
                }

                async fn delete_auth_request(&self, id: &str) -> Result<()> {
                    sqlx::query("DELETE FROM auth_requests WHERE id = $1")
                        .bind(id)
                        .execute(&self.pool)
                        .await?;
                    Ok(())
                }

                async fn count_auth_requests(&self) -> Result<u64> {
                    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM auth_requests")
                        .fetch_one(&self.pool)
                        .await?;
                    Ok(n.max(0) as u64)
                }

                async fn create_session(&self, r: &SessionRecord) -> Result<()> {
                    let mut tx = self.pool.begin().await?;
                    sqlx::query(
                        "INSERT INTO sessions (id_hash, sid, sub, identity, auth_time, created_at, expires_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(&r.id_hash)
                    .bind(&r.sid)
                    .bind(&r.sub)
                    .bind(&r.identity)
                    .bind(r.auth_time)
                    .bind(r.created_at)
                    .bind(r.expires_at)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(UPSERT_IDENTITY)
                        .bind(&r.sub)
                        .bind(&r.identity)
                        .bind(r.created_at)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn get_session(&self, id_hash: &str) -> Result<Option<SessionRecord>> {
                    sqlx::query("SELECT * FROM sessions WHERE id_hash = $1")
                        .bind(id_hash)
                        .fetch_optional(&self.pool)
                        .await?
                        .as_ref()
                        .map(rows::session)
                        .transpose()
                }

                async fn delete_session(&self, id_hash: &str) -> Result<Option<(String, String)>> {
                    let row = sqlx::query("DELETE FROM sessions WHERE id_hash = $1 RETURNING sid, sub")
                        .bind(id_hash)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.map(|r| Ok((sqlx::Row::try_get(&r, "sid")?, sqlx::Row::try_get(&r, "sub")?)))
                        .transpose()
                }

                async fn delete_sessions(&self, sub: Option<&str>) -> Result<Vec<(String, String)>> {
                    let rows = match sub {
                        Some(sub) => {
                            sqlx::query("DELETE FROM sessions WHERE sub = $1 RETURNING sid, sub")
                                .bind(sub)
                                .fetch_all(&self.pool)
                                .await?
                        }
                        None => {
                            sqlx::query("DELETE FROM sessions RETURNING sid, sub")
                                .fetch_all(&self.pool)
                                .await?
                        }
                    };
                    rows.iter()
                        .map(|r| Ok((sqlx::Row::try_get(r, "sid")?, sqlx::Row::try_get(r, "sub")?)))
                        .collect()
                }

                async fn end_session(
                    &self,
                    sid: &str,
                    now: UnixTime,
                    marker_expires_at: UnixTime,
                ) -> Result<u64> {
                    let mut tx = self.pool.begin().await?;
                    sqlx::query("DELETE FROM sessions WHERE sid = $1")
                        .bind(sid)
                        .execute(&mut *tx)
                        .await?;
                    // Access tokens of the session, with or without a refresh family, carry its sid.
                    sqlx::query(
                        "INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2)
                         ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at",
                    )
                    .bind($crate::storage::api::session_marker(sid))
                    .bind(marker_expires_at)
                    .execute(&mut *tx)
                    .await?;
                    let families: Vec<String> = sqlx::query_scalar(
                        "UPDATE refresh_families SET revoked_at = $1
                          WHERE sid = $2 AND revoked_at IS NULL RETURNING id",
                    )
                    .bind(now)
                    .bind(sid)
                    .fetch_all(&mut *tx)
                    .await?;
                    for f in &families {
                        sqlx::query(REVOKE_FAMILY_ACCESS_TOKENS)
                            .bind(f)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                    Ok(families.len() as u64)
                }

                async fn get_consent(&self, sub: &str, client_id: &str) -> Result<Option<Vec<String>>> {
                    let scopes: Option<String> =
                        sqlx::query_scalar("SELECT scopes FROM consents WHERE sub = $1 AND client_id = $2")
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
                        "INSERT INTO consents (sub, client_id, scopes, granted_at) VALUES ($1, $2, $3, $4)
                         ON CONFLICT (sub, client_id) DO UPDATE SET scopes = excluded.scopes,
                             granted_at = excluded.granted_at",
                    )
                    .bind(sub)
                    .bind(client_id)
                    .bind(scopes.join(" "))
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }
            }
        }
    };
}

pub(crate) use shared_storage;
