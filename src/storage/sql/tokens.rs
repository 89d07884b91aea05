//! Authorization codes, refresh families and tokens, and stored identities: the statements
//! whose atomicity the token grants rely on.

/// The [`Storage`](crate::storage::Storage) impl for `$ty`: the methods `sql/mod.rs` hands
/// over (`$first`), then these.
macro_rules! shared_token_methods {
    ($ty:ident, { $($first:tt)* }) => {
        #[async_trait::async_trait]
        impl $crate::storage::api::Storage for $ty {
            $($first)*

            async fn insert_auth_code(
                &self,
                c: &AuthCodeRecord,
                answered: Option<&str>,
            ) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "INSERT INTO auth_codes (code_hash, client_id, grant_data, created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&c.code_hash)
                .bind(&c.client_id)
                .bind(&c.grant)
                .bind(c.created_at)
                .bind(c.expires_at)
                .execute(&mut *tx)
                .await?;
                if let Some(id) = answered {
                    sqlx::query("DELETE FROM auth_requests WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
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
                    .bind(f.sid.as_deref().map($crate::storage::api::session_marker))
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
                sqlx::query(UPSERT_IDENTITY)
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

pub(crate) use shared_token_methods;
