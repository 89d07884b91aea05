//! Device authorization requests, one-time values and the clients of a session: the
//! statements behind the device grant, `private_key_jwt` replay checks and back-channel
//! logout.

/// Hands the methods `sql/mod.rs` gave (`$first`), with these, to `tokens.rs`.
macro_rules! shared_agent_methods {
    ($ty:ident, { $($first:tt)* }) => {
        $crate::storage::sql::tokens::shared_token_methods! {
            $ty,
            {
                $($first)*

                async fn use_once(&self, key: &str, expires_at: UnixTime) -> Result<bool> {
                    let written = sqlx::query(
                        "INSERT INTO used_once (key, expires_at) VALUES ($1, $2)
                         ON CONFLICT (key) DO NOTHING",
                    )
                    .bind(key)
                    .bind(expires_at)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                    Ok(written == 1)
                }

                async fn insert_device_code(&self, d: &DeviceCodeRecord) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO device_codes (device_code_hash, user_code, id, client_id, request,
                             status, grant_data, created_at, expires_at, poll_interval)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    )
                    .bind(&d.device_code_hash)
                    .bind(&d.user_code)
                    .bind(&d.id)
                    .bind(&d.client_id)
                    .bind(&d.request)
                    .bind(d.status.as_str())
                    .bind(&d.grant)
                    .bind(d.created_at)
                    .bind(d.expires_at)
                    .bind(d.poll_interval)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn get_device_code(&self, user_code: &str) -> Result<Option<DeviceCodeRecord>> {
                    sqlx::query("SELECT * FROM device_codes WHERE user_code = $1")
                        .bind(user_code)
                        .fetch_optional(&self.pool)
                        .await?
                        .as_ref()
                        .map(rows::device_code)
                        .transpose()
                }

                async fn decide_device_code(
                    &self,
                    id: &str,
                    decision: &DeviceDecision,
                    now: UnixTime,
                ) -> Result<bool> {
                    let set = match decision {
                        DeviceDecision::Approve { .. } => "status = 'approved', grant_data = $3",
                        DeviceDecision::ApproveAfterPolls { .. } => {
                            "grant_data = $3, approve_after_polls = $4"
                        }
                        DeviceDecision::Deny => "status = 'denied'",
                        DeviceDecision::Expire => "expires_at = $2",
                    };
                    let sql = format!(
                        "UPDATE device_codes SET {set}
                          WHERE id = $1 AND status = 'pending' AND expires_at > $2"
                    );
                    let mut query = sqlx::query(&sql).bind(id).bind(now);
                    match decision {
                        DeviceDecision::Approve { grant } => query = query.bind(grant),
                        DeviceDecision::ApproveAfterPolls { grant, polls } => {
                            query = query.bind(grant).bind(*polls)
                        }
                        DeviceDecision::Deny | DeviceDecision::Expire => {}
                    }
                    let changed = query.execute(&self.pool).await?.rows_affected();
                    Ok(changed == 1)
                }

                async fn poll_device_code(
                    &self,
                    device_code_hash: &str,
                    client_id: &str,
                    now: UnixTime,
                ) -> Result<Option<DeviceCodeRecord>> {
                    // One statement: every SET expression reads the row as it was, so `slow_down`
                    // compares with the previous poll, and exactly one poll takes an approved
                    // grant (the one whose count is recorded in `taken_at_poll`).
                    sqlx::query(
                        "UPDATE device_codes SET
                             polls = polls + 1,
                             slow_down = CASE WHEN last_poll_at IS NOT NULL AND $2 - last_poll_at < poll_interval
                                 THEN 1 ELSE 0 END,
                             last_poll_at = $2,
                             status = CASE WHEN expires_at > $2 AND (status = 'approved' OR (status = 'pending'
                                     AND approve_after_polls IS NOT NULL AND grant_data IS NOT NULL
                                     AND polls + 1 >= approve_after_polls))
                                 THEN 'used' ELSE status END,
                             taken_at_poll = CASE WHEN expires_at > $2 AND (status = 'approved' OR (status = 'pending'
                                     AND approve_after_polls IS NOT NULL AND grant_data IS NOT NULL
                                     AND polls + 1 >= approve_after_polls))
                                 THEN polls + 1 ELSE taken_at_poll END
                          WHERE device_code_hash = $1 AND client_id = $3 RETURNING *",
                    )
                    .bind(device_code_hash)
                    .bind(now)
                    .bind(client_id)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(rows::device_code)
                    .transpose()
                }

                async fn note_session_client(
                    &self,
                    sid: &str,
                    client_id: &str,
                    expires_at: UnixTime,
                ) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO session_clients (sid, client_id, expires_at) VALUES ($1, $2, $3)
                         ON CONFLICT (sid, client_id) DO UPDATE SET expires_at = excluded.expires_at",
                    )
                    .bind(sid)
                    .bind(client_id)
                    .bind(expires_at)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn session_clients(&self, sid: &str) -> Result<Vec<String>> {
                    Ok(sqlx::query_scalar(
                        "SELECT client_id FROM session_clients WHERE sid = $1 ORDER BY client_id",
                    )
                    .bind(sid)
                    .fetch_all(&self.pool)
                    .await?)
                }
            }
        }
    };
}

pub(crate) use shared_agent_methods;
