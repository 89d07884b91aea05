//! The SQL both backends run: one text, `$N` placeholders (which sqlx binds on SQLite too),
//! expanded once per backend by [`shared_storage!`]. A backend keeps only what truly differs:
//! how it connects, its migrations, and the lock that serialises signing-key rotation
//! (`BEGIN IMMEDIATE` on SQLite, an advisory lock on PostgreSQL).
//!
//! Statements that must happen together run in one transaction: a refresh token is marked
//! rotated in the same transaction that writes its successor, so a failure between the two
//! leaves the old token usable rather than the family lost.

/// Implements [`super::Storage`] for `$ty`, whose `pool` field is a `sqlx::Pool<$db>` and
/// which has `async fn key_lock(&self) -> Result<sqlx::Transaction<'_, $db>>`.
macro_rules! shared_storage {
    ($ty:ident, $db:ty, $row:ty, $migrator:path) => {
        mod rows {
            use sqlx::Row as _;

            use super::super::api::{Result, alg};
            use crate::model::{
                AuthCodeRecord, AuthRequestRecord, ClientRecord, RefreshFamilyRecord,
                RefreshTokenRecord, SessionRecord, SigningKeyRecord,
            };

            pub fn key(row: &$row) -> Result<SigningKeyRecord> {
                Ok(SigningKeyRecord {
                    kid: row.try_get("kid")?,
                    alg: alg(row.try_get("alg")?)?,
                    private_key: row.try_get("private_key")?,
                    public_jwk: row.try_get("public_jwk")?,
                    created_at: row.try_get("created_at")?,
                    activates_at: row.try_get("activates_at")?,
                })
            }

            pub fn client(row: &$row) -> Result<ClientRecord> {
                Ok(ClientRecord {
                    id: row.try_get("id")?,
                    secret_hash: row.try_get("secret_hash")?,
                    metadata: row.try_get("metadata")?,
                    updated_at: row.try_get("updated_at")?,
                })
            }

            pub fn auth_request(row: &$row) -> Result<AuthRequestRecord> {
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

            pub fn session(row: &$row) -> Result<SessionRecord> {
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

            pub fn code(row: &$row) -> Result<AuthCodeRecord> {
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
                    replayed_at: row.try_get("replayed_at")?,
                })
            }

            /// A family from a row whose family columns are prefixed `f_` (a join) or not.
            pub fn family(row: &$row, p: &str) -> Result<RefreshFamilyRecord> {
                let c = |name: &str| format!("{p}{name}");
                Ok(RefreshFamilyRecord {
                    id: row.try_get(c("id").as_str())?,
                    client_id: row.try_get(c("client_id").as_str())?,
                    sub: row.try_get(c("sub").as_str())?,
                    grant: row.try_get(c("grant_data").as_str())?,
                    created_at: row.try_get(c("created_at").as_str())?,
                    absolute_expires_at: row.try_get(c("absolute_expires_at").as_str())?,
                    revoked_at: row.try_get(c("revoked_at").as_str())?,
                    sid: row.try_get(c("sid").as_str())?,
                })
            }

            pub fn refresh(row: &$row) -> Result<RefreshTokenRecord> {
                Ok(RefreshTokenRecord {
                    token_hash: row.try_get("token_hash")?,
                    family_id: row.try_get("family_id")?,
                    created_at: row.try_get("created_at")?,
                    idle_expires_at: row.try_get("idle_expires_at")?,
                    rotated_at: row.try_get("rotated_at")?,
                    access_jti: row.try_get("access_jti")?,
                    access_exp: row.try_get("access_exp")?,
                    successor_response: row.try_get("successor_response")?,
                })
            }
        }

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

        #[async_trait::async_trait]
        impl super::api::Storage for $ty {
            async fn ping(&self) -> Result<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn migrate(&self) -> Result<()> {
                $migrator().run(&self.pool).await?;
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
                let marker = sid.map(super::api::session_marker);
                let found = sqlx::query("SELECT jti FROM revoked_tokens WHERE jti = $1 OR jti = $2")
                    .bind(jti)
                    .bind(marker)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(found.is_some())
            }

            async fn purge_expired(&self, now: UnixTime) -> Result<u64> {
                // Redeemed codes are kept a while past expiry so that late replays are recognised.
                let mut n = 0;
                for (sql, cutoff) in [
                    ("DELETE FROM revoked_tokens WHERE expires_at < $1", now),
                    ("DELETE FROM auth_requests WHERE expires_at < $1", now),
                    ("DELETE FROM sessions WHERE expires_at < $1", now),
                    ("DELETE FROM auth_codes WHERE expires_at < $1", now - 3600),
                    ("DELETE FROM refresh_tokens WHERE idle_expires_at < $1", now),
                    ("DELETE FROM refresh_families WHERE absolute_expires_at < $1", now),
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
                .execute(&self.pool)
                .await?;
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

            async fn delete_session(&self, id_hash: &str) -> Result<()> {
                sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
                    .bind(id_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn delete_sessions(&self, sub: Option<&str>) -> Result<u64> {
                let r = match sub {
                    Some(sub) => {
                        sqlx::query("DELETE FROM sessions WHERE sub = $1")
                            .bind(sub)
                            .execute(&self.pool)
                            .await?
                    }
                    None => sqlx::query("DELETE FROM sessions").execute(&self.pool).await?,
                };
                Ok(r.rows_affected())
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
                .bind(super::api::session_marker(sid))
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

            async fn insert_auth_code(&self, c: &AuthCodeRecord) -> Result<()> {
                sqlx::query(
                    "INSERT INTO auth_codes (code_hash, client_id, grant_data, created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5)",
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
                client_id: &str,
                issuance: &CodeIssuance,
                now: UnixTime,
            ) -> Result<Redemption<AuthCodeRecord>> {
                // What the redemption will issue is recorded with it, so that a replay racing
                // the first redemption already knows what to revoke.
                let first = sqlx::query(
                    "UPDATE auth_codes SET redeemed_at = $1, family_id = $2, access_jti = $3, access_exp = $4
                      WHERE code_hash = $5 AND client_id = $6 AND redeemed_at IS NULL RETURNING *",
                )
                .bind(now)
                .bind(&issuance.family_id)
                .bind(&issuance.access_jti)
                .bind(issuance.access_exp)
                .bind(code_hash)
                .bind(client_id)
                .fetch_optional(&self.pool)
                .await?;
                if let Some(row) = first {
                    return Ok(Redemption::First(rows::code(&row)?));
                }
                let again = sqlx::query("SELECT * FROM auth_codes WHERE code_hash = $1")
                    .bind(code_hash)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(match again {
                    Some(row) => {
                        let r = rows::code(&row)?;
                        if r.client_id == client_id {
                            Redemption::Again(r)
                        } else {
                            Redemption::Foreign(r)
                        }
                    }
                    None => Redemption::Missing,
                })
            }

            async fn mark_code_replayed(&self, code_hash: &str, now: UnixTime) -> Result<()> {
                sqlx::query(
                    "UPDATE auth_codes SET replayed_at = $1 WHERE code_hash = $2 AND replayed_at IS NULL",
                )
                .bind(now)
                .bind(code_hash)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn create_refresh_family(
                &self,
                f: &RefreshFamilyRecord,
                first: &RefreshTokenRecord,
                revoked_if_code_replayed: Option<&str>,
            ) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "INSERT INTO refresh_families
                         (id, client_id, sub, grant_data, created_at, absolute_expires_at, revoked_at, sid)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&f.id)
                .bind(&f.client_id)
                .bind(&f.sub)
                .bind(&f.grant)
                .bind(f.created_at)
                .bind(f.absolute_expires_at)
                .bind(f.revoked_at)
                .bind(&f.sid)
                .execute(&mut *tx)
                .await?;
                sqlx::query(INSERT_REFRESH_TOKEN)
                    .bind(&first.token_hash)
                    .bind(&first.family_id)
                    .bind(first.created_at)
                    .bind(first.idle_expires_at)
                    .bind(first.rotated_at)
                    .bind(&first.access_jti)
                    .bind(first.access_exp)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                // Checked after the family is visible to everyone: a replay that marked the
                // code (or a logout that ended the session) before this found no family to
                // revoke, so it is revoked here; one that comes after this finds the family
                // and revokes it itself.
                if revoked_if_code_replayed.is_some() || f.sid.is_some() {
                    let revoked = sqlx::query(
                        "UPDATE refresh_families SET revoked_at = $1
                          WHERE id = $2 AND revoked_at IS NULL
                            AND (EXISTS (SELECT 1 FROM auth_codes
                                          WHERE code_hash = $3 AND replayed_at IS NOT NULL)
                                 OR EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $4))",
                    )
                    .bind(f.created_at)
                    .bind(&f.id)
                    .bind(revoked_if_code_replayed)
                    .bind(f.sid.as_deref().map(super::api::session_marker))
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                    if revoked > 0 {
                        sqlx::query(REVOKE_FAMILY_ACCESS_TOKENS)
                            .bind(&f.id)
                            .bind(f.created_at)
                            .execute(&self.pool)
                            .await?;
                    }
                }
                Ok(())
            }

            async fn get_refresh_family(&self, id: &str) -> Result<Option<RefreshFamilyRecord>> {
                sqlx::query("SELECT * FROM refresh_families WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(|r| rows::family(r, ""))
                    .transpose()
            }

            async fn get_refresh_token(
                &self,
                token_hash: &str,
            ) -> Result<Option<(RefreshTokenRecord, RefreshFamilyRecord)>> {
                let row = sqlx::query(
                    "SELECT t.*, f.id AS f_id, f.client_id AS f_client_id, f.sub AS f_sub,
                            f.grant_data AS f_grant_data, f.created_at AS f_created_at,
                            f.absolute_expires_at AS f_absolute_expires_at,
                            f.revoked_at AS f_revoked_at, f.sid AS f_sid
                       FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
                      WHERE t.token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
                match row {
                    Some(r) => Ok(Some((rows::refresh(&r)?, rows::family(&r, "f_")?))),
                    None => Ok(None),
                }
            }

            async fn rotate_refresh_token(
                &self,
                token_hash: &str,
                successor: &RefreshTokenRecord,
                response: &[u8],
                now: UnixTime,
            ) -> Result<Redemption<RefreshTokenRecord>> {
                let mut tx = self.pool.begin().await?;
                let first = sqlx::query(
                    "UPDATE refresh_tokens SET rotated_at = $1, successor_response = $2
                      WHERE token_hash = $3 AND rotated_at IS NULL RETURNING *",
                )
                .bind(now)
                .bind(response)
                .bind(token_hash)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = first else {
                    tx.rollback().await?;
                    let again = sqlx::query("SELECT * FROM refresh_tokens WHERE token_hash = $1")
                        .bind(token_hash)
                        .fetch_optional(&self.pool)
                        .await?;
                    return Ok(match again {
                        Some(r) => Redemption::Again(rows::refresh(&r)?),
                        None => Redemption::Missing,
                    });
                };
                let old = rows::refresh(&row)?;
                sqlx::query(INSERT_REFRESH_TOKEN)
                    .bind(&successor.token_hash)
                    .bind(&successor.family_id)
                    .bind(successor.created_at)
                    .bind(successor.idle_expires_at)
                    .bind(successor.rotated_at)
                    .bind(&successor.access_jti)
                    .bind(successor.access_exp)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(Redemption::First(old))
            }

            async fn revoke_refresh_family(&self, family_id: &str, now: UnixTime) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "UPDATE refresh_families SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                )
                .bind(now)
                .bind(family_id)
                .execute(&mut *tx)
                .await?;
                sqlx::query(REVOKE_FAMILY_ACCESS_TOKENS)
                    .bind(family_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn update_refresh_family_grant(&self, id: &str, grant: &str) -> Result<()> {
                sqlx::query("UPDATE refresh_families SET grant_data = $1 WHERE id = $2")
                    .bind(grant)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn put_identity(&self, sub: &str, identity: &str, now: UnixTime) -> Result<()> {
                sqlx::query(
                    "INSERT INTO identities (sub, identity, updated_at) VALUES ($1, $2, $3)
                     ON CONFLICT (sub) DO UPDATE SET identity = excluded.identity,
                         updated_at = excluded.updated_at",
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
                    sqlx::query_scalar("SELECT identity FROM identities WHERE sub = $1")
                        .bind(sub)
                        .fetch_optional(&self.pool)
                        .await?,
                )
            }
        }
    };
}

pub(super) use shared_storage;
