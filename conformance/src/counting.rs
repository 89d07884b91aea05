//! A [`Storage`] that counts the calls it passes on: each call is one database round trip
//! (every method is one statement or one transaction), so the tests can assert how many a
//! flow costs, as counts rather than times.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use oidc_bridge::clock::UnixTime;
use oidc_bridge::model::{
    AuthCodeRecord, AuthRequestRecord, ClientRecord, CodeIssuance, DeviceCodeRecord,
    DeviceDecision, Redemption, RefreshFamilyRecord, RefreshTokenRecord, SessionRecord,
    SigningKeyRecord,
};
use oidc_bridge::storage::{Result, Storage};

/// Wraps a store; [`CountingStorage::take`] returns the methods called since the last take.
pub struct CountingStorage {
    inner: Arc<dyn Storage>,
    calls: Mutex<Vec<&'static str>>,
}

impl CountingStorage {
    pub fn new(inner: Arc<dyn Storage>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            calls: Mutex::new(Vec::new()),
        })
    }

    /// The calls since the last take, in order; background work (the client refresh, key
    /// maintenance, purges) is left out, since it is not part of any request.
    pub fn take(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.calls.lock().unwrap())
            .into_iter()
            .filter(|c| !matches!(*c, "list_clients" | "list_signing_keys" | "purge_expired"))
            .collect()
    }

    fn note(&self, name: &'static str) {
        self.calls.lock().unwrap().push(name);
    }
}

macro_rules! counted {
    ($( fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty; )*) => {
        #[async_trait]
        impl Storage for CountingStorage {
            fn pool_stats(&self) -> (u32, u32, u32) {
                self.inner.pool_stats()
            }
            $(
                async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    self.note(stringify!($name));
                    self.inner.$name($($arg),*).await
                }
            )*
        }
    };
}

counted! {
    fn ping(&self) -> Result<()>;
    fn migrate(&self) -> Result<()>;
    fn pending_migrations(&self) -> Result<usize>;
    fn upsert_client(&self, client: &ClientRecord) -> Result<()>;
    fn create_client(&self, client: &ClientRecord) -> Result<bool>;
    fn get_client(&self, id: &str) -> Result<Option<ClientRecord>>;
    fn list_clients(&self) -> Result<Vec<ClientRecord>>;
    fn delete_client(&self, id: &str) -> Result<bool>;
    fn list_signing_keys(&self) -> Result<Vec<SigningKeyRecord>>;
    fn add_signing_key(&self, expected_newest: Option<&str>, key: &SigningKeyRecord) -> Result<bool>;
    fn delete_signing_key(&self, kid: &str) -> Result<bool>;
    fn revoke_token_id(&self, jti: &str, expires_at: UnixTime) -> Result<()>;
    fn is_access_token_revoked(&self, jti: &str, sid: Option<&str>) -> Result<bool>;
    fn purge_expired(&self, now: UnixTime) -> Result<u64>;
    fn put_auth_request(&self, req: &AuthRequestRecord) -> Result<()>;
    fn get_auth_request(&self, id: &str) -> Result<Option<AuthRequestRecord>>;
    fn delete_auth_request(&self, id: &str) -> Result<()>;
    fn count_auth_requests(&self) -> Result<u64>;
    fn create_session(&self, session: &SessionRecord) -> Result<()>;
    fn get_session(&self, id_hash: &str) -> Result<Option<SessionRecord>>;
    fn delete_session(&self, id_hash: &str) -> Result<Option<(String, String)>>;
    fn delete_sessions(&self, sub: Option<&str>) -> Result<Vec<(String, String)>>;
    fn end_session(&self, sid: &str, now: UnixTime, marker_expires_at: UnixTime) -> Result<u64>;
    fn get_consent(&self, sub: &str, client_id: &str) -> Result<Option<Vec<String>>>;
    fn put_consent(&self, sub: &str, client_id: &str, scopes: &[String], now: UnixTime) -> Result<()>;
    fn insert_auth_code(&self, code: &AuthCodeRecord, answered: Option<&str>) -> Result<()>;
    fn redeem_auth_code(&self, code_hash: &str, client_id: &str, issuance: &CodeIssuance, now: UnixTime) -> Result<Redemption<AuthCodeRecord>>;
    fn mark_code_replayed(&self, code_hash: &str, now: UnixTime) -> Result<()>;
    fn create_refresh_family(&self, family: &RefreshFamilyRecord, first: &RefreshTokenRecord, revoked_if_code_replayed: Option<&str>) -> Result<()>;
    fn get_refresh_family(&self, id: &str) -> Result<Option<RefreshFamilyRecord>>;
    fn get_refresh_token(&self, token_hash: &str) -> Result<Option<(RefreshTokenRecord, RefreshFamilyRecord)>>;
    fn rotate_refresh_token(&self, token_hash: &str, successor: &RefreshTokenRecord, response: &[u8], now: UnixTime) -> Result<Redemption<RefreshTokenRecord>>;
    fn revoke_refresh_family(&self, family_id: &str, now: UnixTime) -> Result<()>;
    fn update_refresh_family_grant(&self, id: &str, grant: &str) -> Result<()>;
    fn put_identity(&self, sub: &str, identity: &str, now: UnixTime) -> Result<()>;
    fn get_identity(&self, sub: &str) -> Result<Option<String>>;
    fn use_once(&self, key: &str, expires_at: UnixTime) -> Result<bool>;
    fn insert_device_code(&self, device: &DeviceCodeRecord) -> Result<()>;
    fn get_device_code(&self, user_code: &str) -> Result<Option<DeviceCodeRecord>>;
    fn decide_device_code(&self, id: &str, decision: &DeviceDecision, now: UnixTime) -> Result<bool>;
    fn poll_device_code(&self, device_code_hash: &str, client_id: &str, now: UnixTime) -> Result<Option<DeviceCodeRecord>>;
    fn note_session_client(&self, sid: &str, client_id: &str, expires_at: UnixTime) -> Result<()>;
    fn session_clients(&self, sid: &str) -> Result<Vec<String>>;
}
