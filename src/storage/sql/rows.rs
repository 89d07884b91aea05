//! Reading rows into records, for both backends.

/// A `rows` module of readers for the backend's row type.
macro_rules! shared_rows {
    ($row:ty) => {
        mod rows {
            use sqlx::Row as _;

            use crate::model::{
                AuthCodeRecord, AuthRequestRecord, ClientRecord, ClientSource, DeviceCodeRecord,
                DeviceStatus, RefreshFamilyRecord, RefreshTokenRecord, SessionRecord,
                SigningKeyRecord,
            };
            use $crate::storage::api::{Result, StorageError, alg};

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
                    source: {
                        let s: String = row.try_get("source")?;
                        ClientSource::parse(&s)
                            .ok_or_else(|| StorageError::Corrupt(format!("client source `{s}`")))?
                    },
                    secrets: {
                        let s: String = row.try_get("secrets")?;
                        serde_json::from_str(&s)
                            .map_err(|e| StorageError::Corrupt(format!("client secrets: {e}")))?
                    },
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

            pub fn device_code(row: &$row) -> Result<DeviceCodeRecord> {
                let status: String = row.try_get("status")?;
                Ok(DeviceCodeRecord {
                    device_code_hash: row.try_get("device_code_hash")?,
                    user_code: row.try_get("user_code")?,
                    id: row.try_get("id")?,
                    client_id: row.try_get("client_id")?,
                    request: row.try_get("request")?,
                    status: DeviceStatus::parse(&status).ok_or_else(|| {
                        StorageError::Corrupt(format!("device status `{status}`"))
                    })?,
                    grant: row.try_get("grant_data")?,
                    created_at: row.try_get("created_at")?,
                    expires_at: row.try_get("expires_at")?,
                    poll_interval: row.try_get("poll_interval")?,
                    last_poll_at: row.try_get("last_poll_at")?,
                    polls: row.try_get("polls")?,
                    slow_down: row.try_get::<i64, _>("slow_down")? != 0,
                    approve_after_polls: row.try_get("approve_after_polls")?,
                    taken_at_poll: row.try_get("taken_at_poll")?,
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
    };
}

pub(crate) use shared_rows;
