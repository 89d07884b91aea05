//! Registered clients: loaded from storage into memory at start, after the config's clients
//! are written to storage.
//!
//! A configured `secret` is stored as a keyed digest ([`ClientSecretKey`]) and checked in
//! microseconds. A `secret_hash` (argon2id, for operators who keep no plain secret) is
//! checked once through the bounded [`crate::password::PasswordVerifier`]; the SHA-256 of a
//! secret that verified is then kept in memory, so later requests compare in constant time
//! without paying argon2 again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use crate::clock::UnixTime;
use crate::config::{AuthMethod, ClientConfig, GrantType};
use crate::model::ClientRecord;
use crate::secret::{ClientSecretKey, ct_eq, sha256};
use crate::storage::{Storage, StorageError};

pub struct Client {
    pub config: ClientConfig,
    /// A keyed digest (`hmac-sha256$…`) or an argon2id PHC string.
    secret_hash: Option<String>,
    key: ClientSecretKey,
    /// SHA-256 of the last presented secret that passed argon2id.
    verified: Mutex<Option<[u8; 32]>>,
}

/// The outcome of the cheap part of a secret check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheapCheck {
    Match,
    NoMatch,
    /// Only argon2id can tell: this PHC string.
    NeedsArgon2,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.config.id)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(config: ClientConfig, secret_hash: Option<String>, key: ClientSecretKey) -> Self {
        Self {
            config,
            secret_hash,
            key,
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

    /// What can be said about `presented` without argon2id: a keyed digest is compared
    /// in constant time; an argon2id hash only through the digest of a secret that passed
    /// it before.
    pub fn cheap_check(&self, presented: &str) -> CheapCheck {
        let Some(stored) = &self.secret_hash else {
            return CheapCheck::NoMatch;
        };
        if ClientSecretKey::is_digest(stored) {
            return if self.key.matches(stored, presented) {
                CheapCheck::Match
            } else {
                CheapCheck::NoMatch
            };
        }
        let digest = sha256(presented.as_bytes());
        match *self.verified.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(known) if ct_eq(&known, &digest) => CheapCheck::Match,
            _ => CheapCheck::NeedsArgon2,
        }
    }

    /// The argon2id PHC string, when the secret is kept as one.
    pub fn argon2_hash(&self) -> Option<&str> {
        self.secret_hash
            .as_deref()
            .filter(|h| !ClientSecretKey::is_digest(h))
    }

    /// Remembers a secret that passed argon2id.
    pub fn remember_verified(&self, presented: &str) {
        *self.verified.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(sha256(presented.as_bytes()));
    }
}

pub struct ClientRegistry {
    clients: RwLock<HashMap<String, Arc<Client>>>,
    key: ClientSecretKey,
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

    /// An empty registry whose secrets are digested with `key`.
    pub fn new(key: ClientSecretKey) -> Self {
        Self {
            clients: RwLock::new(HashMap::new()),
            key,
        }
    }

    /// The key configured secrets are digested with.
    pub fn secret_key(&self) -> &ClientSecretKey {
        &self.key
    }

    pub fn insert(&self, client: Client) {
        self.clients
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(client.id().to_string(), Arc::new(client));
    }

    /// Takes a client out (its tokens stop working at once); false if there was none.
    pub fn remove(&self, id: &str) -> bool {
        self.clients
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)
            .is_some()
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
    pub async fn load(storage: &dyn Storage, key: ClientSecretKey) -> Result<Self, StorageError> {
        let registry = Self::new(key);
        for rec in storage.list_clients().await? {
            let config: ClientConfig = serde_json::from_str(&rec.metadata)
                .map_err(|e| StorageError::Corrupt(format!("client `{}`: {e}", rec.id)))?;
            registry.insert(Client::new(config, rec.secret_hash, registry.key.clone()));
        }
        Ok(registry)
    }
}

/// Writes the config's clients to storage and removes clients the config no longer lists.
/// A configured `secret` is stored as its keyed digest; a `secret_hash` as given.
pub async fn sync_from_config(
    storage: &dyn Storage,
    clients: &[ClientConfig],
    key: &ClientSecretKey,
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
            (None, Some(secret)) => Some(key.digest(secret.expose())),
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
    ///
    /// One exception, as RFC 8252 §7.3 requires: a loopback IP redirect URI
    /// (`http://127.0.0.1/…`, `http://[::1]/…`) matches with any port, the rest of the
    /// string still compared exactly.
    pub fn accepts_redirect_uri(&self, uri: &str) -> bool {
        self.config
            .redirect_uris
            .iter()
            .any(|r| r == uri || loopback_match(r, uri))
            || (self.config.any_redirect_uri && is_safe_any_redirect(uri))
    }

    /// The same client with other settings (mock mode changes lifetimes at run time).
    pub fn with_config(&self, config: ClientConfig) -> Self {
        Self::new(config, self.secret_hash.clone(), self.key.clone())
    }

    pub fn display_name(&self) -> &str {
        self.config.name.as_deref().unwrap_or(&self.config.id)
    }
}

/// `http://127.0.0.1[:port]rest` or `http://[::1][:port]rest`: the host and the rest.
fn split_loopback(uri: &str) -> Option<(&'static str, &str)> {
    for host in ["http://127.0.0.1", "http://[::1]"] {
        let Some(after) = uri.strip_prefix(host) else {
            continue;
        };
        let rest = match after.strip_prefix(':') {
            Some(p) => {
                let digits = p.bytes().take_while(u8::is_ascii_digit).count();
                if digits == 0 || p[..digits].parse::<u16>().is_err() {
                    return None;
                }
                &p[digits..]
            }
            None => after,
        };
        if rest.is_empty() || rest.starts_with('/') || rest.starts_with('?') {
            return Some((host, rest));
        }
        return None;
    }
    None
}

fn loopback_match(registered: &str, presented: &str) -> bool {
    match (split_loopback(registered), split_loopback(presented)) {
        (Some((h1, r1)), Some((h2, r2))) => h1 == h2 && r1 == r2 && !r2.contains('#'),
        _ => false,
    }
}

/// Mock mode's "any redirect URI": absolute, no fragment, and a scheme that navigates
/// (http, https, or an RFC 8252 private-use scheme such as `com.example.app`), never
/// `javascript:` or `data:`.
fn is_safe_any_redirect(uri: &str) -> bool {
    url::Url::parse(uri).is_ok_and(|u| {
        u.fragment().is_none()
            && (matches!(u.scheme(), "http" | "https") || u.scheme().contains('.'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_redirects_match_any_port_and_nothing_else() {
        let reg = "http://127.0.0.1/cb";
        assert!(loopback_match(reg, "http://127.0.0.1:51234/cb"));
        assert!(loopback_match(
            "http://127.0.0.1:8000/cb",
            "http://127.0.0.1:9/cb"
        ));
        assert!(loopback_match(
            "http://[::1]:8000/cb?x=1",
            "http://[::1]:1/cb?x=1"
        ));
        assert!(!loopback_match(reg, "http://127.0.0.1:51234/cb/"));
        assert!(!loopback_match(reg, "http://127.0.0.1:51234/cb/../cb"));
        assert!(!loopback_match(
            reg,
            "http://127.0.0.1:51234@evil.example/cb"
        ));
        assert!(!loopback_match(reg, "http://127.0.0.1.evil.example/cb"));
        assert!(!loopback_match(reg, "http://[::1]:5/cb"), "another host");
        assert!(!loopback_match(reg, "http://127.0.0.1:99999/cb"));
        assert!(!loopback_match(
            "http://localhost/cb",
            "http://localhost:5/cb"
        ));
        assert!(!loopback_match(
            "https://app.example.com/cb",
            "https://app.example.com:444/cb"
        ));
    }

    #[test]
    fn any_redirect_refuses_script_schemes() {
        assert!(is_safe_any_redirect("http://localhost:3000/cb"));
        assert!(is_safe_any_redirect("com.example.app:/cb"));
        assert!(!is_safe_any_redirect("javascript:alert(1)"));
        assert!(!is_safe_any_redirect("data:text/html,hi"));
        assert!(!is_safe_any_redirect("https://a.example/cb#frag"));
    }
}
