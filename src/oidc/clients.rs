//! Registered clients: loaded from storage into memory at start, after the config's clients
//! are written to storage. Clients made through the admin API live in storage only; a node
//! that does not know a client asks storage ([`ClientRegistry::find`]), so one made on
//! another node works at once, and every node refreshes its copy every few seconds
//! (`app::spawn_maintenance`) for changes and removals.
//!
//! A client may hold several secrets, each with an optional end: both work during a
//! rotation's overlap, and the check says which one matched.
//!
//! A configured `secret` is stored as a keyed digest ([`ClientSecretKey`]) and checked in
//! microseconds. A `secret_hash` (argon2id, for operators who keep no plain secret) is
//! checked once through the bounded [`crate::password::PasswordVerifier`]; the SHA-256 of a
//! secret that verified is then kept in memory, so later requests compare in constant time
//! without paying argon2 again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use super::client_keys::ClientKeys;
use crate::clock::UnixTime;
use crate::config::{AuthMethod, ClientConfig, GrantType};
use crate::model::{ClientRecord, ClientSource, StoredSecret};
use crate::secret::{ClientSecretKey, ct_eq, sha256, sha256_b64url};
use crate::storage::{Storage, StorageError};

/// One secret of a client, with the digest of the last presented value that passed
/// argon2id (when it is kept as an argon2id hash).
struct Slot {
    secret: StoredSecret,
    verified: Mutex<Option<[u8; 32]>>,
}

pub struct Client {
    pub config: ClientConfig,
    pub source: ClientSource,
    slots: Arc<Vec<Slot>>,
    key: ClientSecretKey,
    /// The stored record this was built from, to tell when storage has changed it.
    stored: Option<Arc<ClientRecord>>,
    /// When storage was last asked whether the secrets changed (after a failed check).
    reread: Mutex<Option<Instant>>,
    /// Its inline `jwks`, parsed on first use.
    assertion_keys: OnceLock<Option<Arc<ClientKeys>>>,
}

/// The outcome of the cheap part of a secret check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheapCheck {
    /// This secret (its id).
    Match(String),
    NoMatch,
    /// Only argon2id can tell.
    NeedsArgon2,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.config.id)
            .finish_non_exhaustive()
    }
}

/// A secret's default name: a fingerprint of its hash (never of the secret).
pub fn secret_fingerprint(hash: &str) -> String {
    sha256_b64url(hash.as_bytes()).chars().take(8).collect()
}

impl Client {
    pub fn new(config: ClientConfig, secrets: Vec<StoredSecret>, key: ClientSecretKey) -> Self {
        let slots = secrets
            .into_iter()
            .map(|secret| Slot {
                secret,
                verified: Mutex::new(None),
            })
            .collect();
        Self {
            config,
            source: ClientSource::Config,
            slots: Arc::new(slots),
            key,
            stored: None,
            reread: Mutex::new(None),
            assertion_keys: OnceLock::new(),
        }
    }

    /// A client as storage holds it.
    pub fn from_record(rec: ClientRecord, key: ClientSecretKey) -> Result<Self, StorageError> {
        let config: ClientConfig = serde_json::from_str(&rec.metadata)
            .map_err(|e| StorageError::Corrupt(format!("client `{}`: {e}", rec.id)))?;
        let mut secrets = rec.secrets.clone();
        if secrets.is_empty()
            && let Some(hash) = &rec.secret_hash
        {
            secrets.push(StoredSecret {
                id: secret_fingerprint(hash),
                hash: hash.clone(),
                created_at: None,
                expires_at: None,
            });
        }
        let mut client = Self::new(config, secrets, key);
        client.source = rec.source;
        client.stored = Some(Arc::new(rec));
        Ok(client)
    }

    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// No secret and no keys: it cannot authenticate.
    pub fn is_public(&self) -> bool {
        self.slots.is_empty() && !self.uses_keys()
    }

    /// It authenticates with `private_key_jwt`.
    pub fn uses_keys(&self) -> bool {
        self.config.token_endpoint_auth_method == Some(AuthMethod::PrivateKeyJwt)
    }

    /// The verifiers of its inline `jwks`, parsed once.
    pub fn assertion_keys(&self) -> Option<Arc<ClientKeys>> {
        self.assertion_keys
            .get_or_init(|| {
                let set = self.config.agents.jwks.as_ref()?;
                let alg = self.config.agents.assertion_alg();
                ClientKeys::from_jwks(alg, set)
                    .map_err(|e| tracing::error!(client_id = self.id(), error = %e, "the client's jwks is unusable"))
                    .ok()
                    .map(Arc::new)
            })
            .clone()
    }

    /// Its secrets (hashes only), live or not.
    pub fn secrets(&self) -> impl Iterator<Item = &StoredSecret> {
        self.slots.iter().map(|s| &s.secret)
    }

    fn live(&self, now: UnixTime) -> impl Iterator<Item = (usize, &Slot)> {
        self.slots
            .iter()
            .enumerate()
            .filter(move |(_, s)| s.secret.expires_at.is_none_or(|end| now < end))
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

    /// What can be said about `presented` without argon2id, over the secrets live at `now`:
    /// a keyed digest is compared in constant time; an argon2id hash only through the
    /// digest of a value that passed it before.
    pub fn cheap_check(&self, presented: &str, now: UnixTime) -> CheapCheck {
        let digest = sha256(presented.as_bytes());
        let mut needs_argon2 = false;
        for (_, slot) in self.live(now) {
            let stored = &slot.secret.hash;
            if ClientSecretKey::is_digest(stored) {
                if self.key.matches(stored, presented) {
                    return CheapCheck::Match(slot.secret.id.clone());
                }
                continue;
            }
            match *slot.verified.lock().unwrap_or_else(|e| e.into_inner()) {
                Some(known) if ct_eq(&known, &digest) => {
                    return CheapCheck::Match(slot.secret.id.clone());
                }
                _ => needs_argon2 = true,
            }
        }
        if needs_argon2 {
            CheapCheck::NeedsArgon2
        } else {
            CheapCheck::NoMatch
        }
    }

    /// The live secrets kept as argon2id PHC strings: (slot, hash).
    pub fn argon2_hashes(&self, now: UnixTime) -> Vec<(usize, String)> {
        self.live(now)
            .filter(|(_, s)| !ClientSecretKey::is_digest(&s.secret.hash))
            .map(|(i, s)| (i, s.secret.hash.clone()))
            .collect()
    }

    /// Remembers a value that passed argon2id for secret `slot`; returns that secret's id.
    pub fn remember_verified(&self, slot: usize, presented: &str) -> String {
        let Some(s) = self.slots.get(slot) else {
            return String::new();
        };
        *s.verified.lock().unwrap_or_else(|e| e.into_inner()) = Some(sha256(presented.as_bytes()));
        s.secret.id.clone()
    }

    /// True at most once a second per client: whether a failed check may ask storage for
    /// newer secrets (a rotation made on another node).
    pub fn may_reread(&self) -> bool {
        let mut last = self.reread.lock().unwrap_or_else(|e| e.into_inner());
        let due = last.is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
        if due {
            *last = Some(Instant::now());
        }
        due
    }
}

pub struct ClientRegistry {
    clients: RwLock<HashMap<String, Arc<Client>>>,
    key: ClientSecretKey,
    storage: Option<Arc<dyn Storage>>,
}

impl ClientRegistry {
    /// A client known to this node.
    pub fn get(&self, id: &str) -> Option<Arc<Client>> {
        self.clients
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// A client known to this node, or else one storage has (made through the admin API on
    /// another node a moment ago).
    pub async fn find(&self, id: &str) -> Option<Arc<Client>> {
        if let Some(c) = self.get(id) {
            return Some(c);
        }
        self.load_one(id).await
    }

    /// Reads client `id` from storage into the registry (or out of it, when gone).
    pub async fn load_one(&self, id: &str) -> Option<Arc<Client>> {
        let storage = self.storage.as_ref()?;
        match storage.get_client(id).await {
            Ok(Some(rec)) => {
                if let Some(known) = self.get(id)
                    && known.stored.as_deref() == Some(&rec)
                {
                    return Some(known);
                }
                match Client::from_record(rec, self.key.clone()) {
                    Ok(c) => {
                        let c = Arc::new(c);
                        self.put(c.clone());
                        Some(c)
                    }
                    Err(e) => {
                        tracing::error!(client_id = %id, error = %e, "stored client unreadable");
                        None
                    }
                }
            }
            Ok(None) => {
                self.remove(id);
                None
            }
            Err(e) => {
                tracing::warn!(client_id = %id, error = %e, "reading a client failed");
                self.get(id)
            }
        }
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
            storage: None,
        }
    }

    /// The key configured secrets are digested with.
    pub fn secret_key(&self) -> &ClientSecretKey {
        &self.key
    }

    pub fn insert(&self, client: Client) {
        self.put(Arc::new(client));
    }

    fn put(&self, client: Arc<Client>) {
        self.clients
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(client.id().to_string(), client);
    }

    /// Takes a client out (its tokens stop working at once); false if there was none.
    pub fn remove(&self, id: &str) -> bool {
        self.clients
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)
            .is_some()
    }

    /// Replaces a client's settings in memory; false if there is no such client.
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
    pub async fn load(
        storage: Arc<dyn Storage>,
        key: ClientSecretKey,
    ) -> Result<Self, StorageError> {
        let mut registry = Self::new(key);
        registry.storage = Some(storage);
        registry.refresh().await?;
        Ok(registry)
    }

    /// Brings the registry up to date with storage: new and changed clients read, removed
    /// ones dropped; an unchanged client keeps its entry (and what it has verified).
    pub async fn refresh(&self) -> Result<(), StorageError> {
        let Some(storage) = &self.storage else {
            return Ok(());
        };
        let records = storage.list_clients().await?;
        let mut fresh = HashMap::new();
        for rec in records {
            let id = rec.id.clone();
            let known = self.get(&id);
            let client = match known {
                Some(k) if k.stored.as_deref() == Some(&rec) => k,
                _ => Arc::new(Client::from_record(rec, self.key.clone())?),
            };
            fresh.insert(id, client);
        }
        *self.clients.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }
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
        Self {
            config,
            source: self.source,
            slots: self.slots.clone(),
            key: self.key.clone(),
            stored: self.stored.clone(),
            reread: Mutex::new(None),
            assertion_keys: OnceLock::new(),
        }
    }

    /// Where this client's pages' forms may lead (its redirect URIs); `None` when it may use
    /// any redirect URI.
    pub fn form_targets(&self) -> Option<&[String]> {
        (!self.config.any_redirect_uri).then_some(self.config.redirect_uris.as_slice())
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
