//! Registered clients: loaded from storage into memory at start, after the config's clients
//! are written to storage (secrets hashed with argon2id).
//!
//! A secret is checked with argon2id once; the SHA-256 of a secret that verified is then kept
//! in memory, so later requests compare in constant time without paying argon2 again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use crate::clock::UnixTime;
use crate::config::{AuthMethod, ClientConfig, GrantType};
use crate::model::ClientRecord;
use crate::secret::{ct_eq, hash_password, sha256, verify_password};
use crate::storage::{Storage, StorageError};

pub struct Client {
    pub config: ClientConfig,
    secret_hash: Option<String>,
    /// SHA-256 of the last presented secret that passed argon2id.
    verified: Mutex<Option<[u8; 32]>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.config.id)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(config: ClientConfig, secret_hash: Option<String>) -> Self {
        Self {
            config,
            secret_hash,
            verified: Mutex::new(None),
        }
    }

    pub fn id(&self) -> &str {
        &self.config.id
    }

    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none()
    }

    pub fn allows_grant(&self, g: GrantType) -> bool {
        self.config.grant_types.contains(&g)
    }

    /// Whether this client may authenticate with `method`.
    pub fn accepts_method(&self, method: AuthMethod) -> bool {
        match (self.is_public(), self.config.token_endpoint_auth_method) {
            (true, _) => method == AuthMethod::None,
            (false, Some(required)) => method == required,
            (false, None) => method != AuthMethod::None,
        }
    }

    /// Checks a presented secret; argon2id runs off the async threads, once per secret.
    pub async fn verify_secret(self: &Arc<Self>, presented: &str) -> bool {
        let Some(hash) = self.secret_hash.clone() else {
            return false;
        };
        let digest = sha256(presented.as_bytes());
        if let Some(known) = *self.verified.lock().unwrap_or_else(|e| e.into_inner())
            && ct_eq(&known, &digest)
        {
            return true;
        }
        let presented = presented.to_string();
        let ok = tokio::task::spawn_blocking(move || verify_password(&presented, &hash))
            .await
            .unwrap_or(false);
        if ok {
            *self.verified.lock().unwrap_or_else(|e| e.into_inner()) = Some(digest);
        }
        ok
    }
}

#[derive(Default)]
pub struct ClientRegistry {
    clients: RwLock<HashMap<String, Arc<Client>>>,
}

impl ClientRegistry {
    pub fn get(&self, id: &str) -> Option<Arc<Client>> {
        self.clients
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    pub fn all(&self) -> Vec<Arc<Client>> {
        let mut v: Vec<_> = self
            .clients
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| a.id().cmp(b.id()));
        v
    }

    pub fn insert(&self, client: Client) {
        self.clients
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(client.id().to_string(), Arc::new(client));
    }

    /// Replaces a client's settings; false if there is no such client.
    pub fn update(&self, id: &str, change: impl FnOnce(&mut ClientConfig)) -> bool {
        let mut clients = self.clients.write().unwrap_or_else(|e| e.into_inner());
        let Some(old) = clients.get(id) else {
            return false;
        };
        let mut config = old.config.clone();
        change(&mut config);
        let new = Arc::new(old.with_config(config));
        clients.insert(id.to_string(), new);
        true
    }

    /// Reads every client from storage.
    pub async fn load(storage: &dyn Storage) -> Result<Self, StorageError> {
        let registry = Self::default();
        for rec in storage.list_clients().await? {
            let config: ClientConfig = serde_json::from_str(&rec.metadata)
                .map_err(|e| StorageError::Corrupt(format!("client `{}`: {e}", rec.id)))?;
            registry.insert(Client::new(config, rec.secret_hash));
        }
        Ok(registry)
    }
}

/// Writes the config's clients to storage and removes clients the config no longer lists.
/// A secret is re-hashed only when it changed.
pub async fn sync_from_config(
    storage: &dyn Storage,
    clients: &[ClientConfig],
    now: UnixTime,
) -> Result<(), StorageError> {
    let existing: HashMap<String, ClientRecord> = storage
        .list_clients()
        .await?
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect();
    for c in clients {
        let metadata = serde_json::to_string(c)
            .map_err(|e| StorageError::Corrupt(format!("client `{}`: {e}", c.id)))?;
        let old = existing.get(&c.id);
        let secret_hash = match (&c.secret_hash, &c.secret) {
            (Some(given), _) => Some(given.clone()),
            (None, None) => None,
            (None, Some(secret)) => {
                let secret = secret.expose().to_string();
                let old_hash = old.and_then(|o| o.secret_hash.clone());
                tokio::task::spawn_blocking(move || match old_hash {
                    Some(h) if verify_password(&secret, &h) => Ok(h),
                    _ => hash_password(&secret),
                })
                .await
                .map_err(|e| StorageError::Corrupt(format!("hashing task: {e}")))?
                .map_err(|e| StorageError::Corrupt(format!("hashing: {e}")))
                .map(Some)?
            }
        };
        if old.is_some_and(|o| o.metadata == metadata && o.secret_hash == secret_hash) {
            continue;
        }
        storage
            .upsert_client(&ClientRecord {
                id: c.id.clone(),
                secret_hash,
                metadata,
                updated_at: now,
            })
            .await?;
    }
    for id in existing.keys() {
        if !clients.iter().any(|c| &c.id == id) {
            storage.delete_client(id).await?;
            tracing::info!(client_id = %id, "client removed: no longer in the config");
        }
    }
    Ok(())
}

impl Client {
    /// Exact string match against the registered redirect URIs (OAuth 2.0 Security BCP
    /// §4.1.3), never a prefix or normalised comparison.
    pub fn accepts_redirect_uri(&self, uri: &str) -> bool {
        self.config.redirect_uris.iter().any(|r| r == uri)
            || (self.config.any_redirect_uri
                && url::Url::parse(uri).is_ok_and(|u| u.fragment().is_none()))
    }

    /// The same client with other settings (mock mode changes lifetimes at run time).
    pub fn with_config(&self, config: ClientConfig) -> Self {
        Self::new(config, self.secret_hash.clone())
    }

    pub fn display_name(&self) -> &str {
        self.config.name.as_deref().unwrap_or(&self.config.id)
    }
}
