//! Signing keys: generation, persistence, rotation, and the JWKS document.
//!
//! A key's state follows from time alone: `next` before its `activates_at`, `active` while it
//! is the newest key that has activated, `retired` once a successor activates. A retired key
//! stays published for `retain_for` (longer than any token it signed can live), then is
//! deleted. Every node derives the same states from the same rows, so nodes sharing
//! PostgreSQL agree on the one active key; adding a key is a compare-and-swap on the newest
//! kid ([`Storage::add_signing_key`]), so two nodes rotating at once add one key.

mod generate;
pub mod seal;
mod state;
mod verify;

use state::build_jwks;
pub use state::{KeyInfo, KeyMeta, KeyState, LoadedKey, describe};

use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use josekit::jwk::Jwk;
use josekit::jws::JwsHeader;
use serde::Serialize;

use crate::clock::{Clock, UnixTime};
use crate::config::{Seconds, SigningAlgorithm};
use crate::model::SigningKeyRecord;
use crate::secret::random_token;
use crate::storage::{Storage, StorageError};
pub use generate::{Signer, Verifier};
pub use seal::Sealer;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Seal(#[from] seal::SealError),
    #[error("key operation failed: {0}")]
    Jose(#[from] josekit::JoseError),
    #[error("stored key `{0}` is unreadable")]
    Corrupt(String),
    #[error("no signing key is active")]
    NoActiveKey,
    #[error("key generation task failed")]
    Join,
}

/// When keys rotate and how long they stay published.
#[derive(Debug, Clone)]
pub struct KeyPolicy {
    pub algorithm: SigningAlgorithm,
    pub rotation_period: Seconds,
    pub publish_ahead: Seconds,
    /// How long a retired key stays in JWKS: longer than the longest token lifetime.
    pub retain_for: Seconds,
}

/// The keys known at one moment, with JWKS serialised once.
struct KeySet {
    /// Sorted by `activates_at`, then `kid`.
    keys: Vec<Arc<LoadedKey>>,
    jwks: Bytes,
    /// Kids in JWKS and their states, to notice when time alone changes what is published.
    published: Vec<(String, KeyState)>,
}

pub struct KeyManager {
    storage: Arc<dyn Storage>,
    sealer: Sealer,
    clock: Arc<dyn Clock>,
    policy: RwLock<KeyPolicy>,
    current: RwLock<Arc<KeySet>>,
    reload: tokio::sync::Mutex<()>,
    /// When a reload was last forced by an unknown `kid` (rate-limited).
    forced_reload: std::sync::Mutex<Option<UnixTime>>,
    /// Bumped whenever the key set changes, so callers can wait for the first key.
    changed: tokio::sync::watch::Sender<u64>,
    /// Told of every key this node creates (the audit log listens).
    on_created: std::sync::OnceLock<KeyCreatedHook>,
}

/// Called with the kid, algorithm and activation time of each key created.
pub type KeyCreatedHook = Box<dyn Fn(&str, &str, UnixTime) + Send + Sync>;

/// Index of the active key: the newest that has activated by `now`.
fn active_index(keys: &[Arc<LoadedKey>], now: UnixTime) -> Option<usize> {
    keys.iter().rposition(|k| k.activates_at <= now)
}

fn metas(keys: &[Arc<LoadedKey>]) -> Vec<KeyMeta> {
    keys.iter().map(|k| k.meta.clone()).collect()
}

impl KeyManager {
    /// Loads keys from storage, creating the first one if there is none.
    pub async fn start(
        storage: Arc<dyn Storage>,
        sealer: Sealer,
        clock: Arc<dyn Clock>,
        policy: KeyPolicy,
    ) -> Result<Arc<Self>, KeyError> {
        let mgr = Self::new(storage, sealer, clock, policy);
        mgr.refresh().await?;
        Ok(mgr)
    }

    /// Like [`Self::start`], but the first key is made in the background, so a mock IdP
    /// answers discovery before RSA key generation is done. Signing waits for it
    /// ([`Self::wait_active`]).
    ///
    /// Keys a database already holds are loaded before this returns (so JWKS is never empty
    /// for a moment on a restart); only a database without keys gets its first one in the
    /// background.
    pub async fn start_in_background(
        storage: Arc<dyn Storage>,
        sealer: Sealer,
        clock: Arc<dyn Clock>,
        policy: KeyPolicy,
    ) -> Result<Arc<Self>, KeyError> {
        let mgr = Self::new(storage, sealer, clock, policy);
        if !mgr.storage.list_signing_keys().await?.is_empty() {
            mgr.refresh().await?;
            return Ok(mgr);
        }
        let m = mgr.clone();
        tokio::spawn(async move {
            if let Err(e) = m.refresh().await {
                tracing::error!(error = %e, "creating the first signing key failed");
            }
        });
        Ok(mgr)
    }

    /// Starts with a key made elsewhere (`mock --key-file`) instead of generating one.
    pub async fn start_with_key(
        storage: Arc<dyn Storage>,
        sealer: Sealer,
        clock: Arc<dyn Clock>,
        policy: KeyPolicy,
        alg: SigningAlgorithm,
        private_der: &[u8],
    ) -> Result<Arc<Self>, KeyError> {
        let mgr = Self::new(storage, sealer, clock, policy);
        mgr.import(alg, private_der).await?;
        Ok(mgr)
    }

    /// Waits (at most ten seconds) until a key is active: at once, except right after a
    /// mock IdP started. Returns whether one is.
    pub async fn wait_active(&self) -> bool {
        let mut rx = self.changed.subscribe();
        let wait = async {
            while self.active().is_none() {
                if rx.changed().await.is_err() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), wait).await;
        self.active().is_some()
    }

    /// Adds a key made elsewhere (`mock --key-file`), active at once, if there is none yet.
    pub async fn import(&self, alg: SigningAlgorithm, private_der: &[u8]) -> Result<(), KeyError> {
        let public_jwk = generate::public_jwk(alg, private_der)?;
        let kid = public_jwk
            .key_id()
            .map(str::to_string)
            .unwrap_or_else(|| random_token(12));
        let now = self.clock.now();
        let record = SigningKeyRecord {
            private_key: self.sealer.seal(private_der, &kid)?,
            public_jwk: public_jwk.to_string(),
            kid,
            alg,
            created_at: now,
            activates_at: now,
        };
        self.storage.add_signing_key(None, &record).await?;
        self.refresh().await
    }

    /// A fresh key pair as PKCS#8 DER, for `mock --key-file`.
    pub fn generate_private_der(alg: SigningAlgorithm) -> Result<Vec<u8>, KeyError> {
        Ok(generate::generate(alg, "unused")?.private_der)
    }

    /// Signs with the active key under a header of the caller's choosing (`kid`, `typ`):
    /// mock mode uses it to make tokens with deliberate defects.
    pub fn sign_with_header(
        &self,
        header: &serde_json::Map<String, serde_json::Value>,
        claims: &serde_json::Value,
    ) -> Result<String, KeyError> {
        let key = self.active().ok_or(KeyError::NoActiveKey)?;
        let mut header = header.clone();
        header.insert("alg".into(), serde_json::json!(key.alg.as_str()));
        let enc = |v: &serde_json::Value| crate::secret::b64url(v.to_string().as_bytes());
        let input = format!(
            "{}.{}",
            enc(&serde_json::Value::Object(header)),
            enc(claims)
        );
        let signature = key.signer.sign(input.as_bytes())?;
        Ok(format!("{input}.{}", crate::secret::b64url(&signature)))
    }

    fn new(
        storage: Arc<dyn Storage>,
        sealer: Sealer,
        clock: Arc<dyn Clock>,
        policy: KeyPolicy,
    ) -> Arc<Self> {
        Arc::new(Self {
            storage,
            sealer,
            clock,
            policy: RwLock::new(policy),
            current: RwLock::new(Arc::new(KeySet {
                keys: Vec::new(),
                jwks: Bytes::from_static(br#"{"keys":[]}"#),
                published: Vec::new(),
            })),
            reload: tokio::sync::Mutex::new(()),
            forced_reload: std::sync::Mutex::new(None),
            changed: tokio::sync::watch::Sender::new(0),
            on_created: std::sync::OnceLock::new(),
        })
    }

    /// Sets what is told of each key created (once; later calls are ignored).
    pub fn on_created(&self, hook: KeyCreatedHook) {
        let _ = self.on_created.set(hook);
    }

    /// A reloaded config's algorithm, rotation period and retention (from the next
    /// rotation on).
    pub fn set_policy(&self, policy: KeyPolicy) {
        *self.policy.write().unwrap_or_else(|e| e.into_inner()) = policy;
    }

    pub fn policy(&self) -> KeyPolicy {
        self.policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set(&self) -> Arc<KeySet> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The JWKS document, serialised once per change of keys.
    pub fn jwks(&self) -> Bytes {
        self.set().jwks.clone()
    }

    /// The key that signs now.
    pub fn active(&self) -> Option<Arc<LoadedKey>> {
        let set = self.set();
        active_index(&set.keys, self.clock.now()).map(|i| set.keys[i].clone())
    }

    pub fn list(&self) -> Vec<KeyInfo> {
        describe(
            &metas(&self.set().keys),
            self.clock.now(),
            self.policy().retain_for,
        )
    }

    /// Signs `claims` as a compact JWS with the active key, with header `typ` and `kid`.
    pub fn sign(&self, typ: &str, claims: &impl Serialize) -> Result<String, KeyError> {
        let key = self.active().ok_or(KeyError::NoActiveKey)?;
        self.sign_with(&key, typ, claims)
    }

    /// Signs with a given key (one the caller looked at, e.g. to pick a hash for `at_hash`).
    pub fn sign_with(
        &self,
        key: &LoadedKey,
        typ: &str,
        claims: &impl Serialize,
    ) -> Result<String, KeyError> {
        let payload = serde_json::to_vec(claims)
            .map_err(|e| KeyError::Jose(josekit::JoseError::InvalidJson(e.into())))?;
        let mut header = JwsHeader::new();
        header.set_token_type(typ);
        Ok(josekit::jws::serialize_compact(
            &payload,
            &header,
            &*key.signer,
        )?)
    }

    /// Creates a key that starts signing after `publish_ahead`. `expected_newest` guards
    /// against concurrent rotation: when another node rotated first, nothing is added.
    /// Returns the new kid, or `None` when another rotation won.
    pub async fn rotate(&self, publish_ahead: Seconds) -> Result<Option<String>, KeyError> {
        let newest = self
            .storage
            .list_signing_keys()
            .await?
            .last()
            .map(|k| k.kid.clone());
        let now = self.clock.now();
        let added = self
            .add_key(newest.as_deref(), now + publish_ahead.get().max(0))
            .await?;
        self.refresh().await?;
        Ok(added)
    }

    async fn add_key(
        &self,
        expected_newest: Option<&str>,
        activates_at: UnixTime,
    ) -> Result<Option<String>, KeyError> {
        let alg = self.policy().algorithm;
        let kid = random_token(12);
        let kid2 = kid.clone();
        let generated = tokio::task::spawn_blocking(move || generate::generate(alg, &kid2))
            .await
            .map_err(|_| KeyError::Join)??;
        // created_at strictly increases, so that a key activating in the same second as
        // its predecessor still orders after it.
        let latest_created = self
            .storage
            .list_signing_keys()
            .await?
            .iter()
            .map(|k| k.created_at)
            .max()
            .unwrap_or(i64::MIN);
        let record = SigningKeyRecord {
            private_key: self.sealer.seal(&generated.private_der, &kid)?,
            public_jwk: generated.public_jwk.to_string(),
            kid: kid.clone(),
            alg,
            created_at: self.clock.now().max(latest_created.saturating_add(1)),
            activates_at,
        };
        let added = self
            .storage
            .add_signing_key(expected_newest, &record)
            .await?;
        if added {
            tracing::info!(kid = %kid, alg = alg.as_str(), activates_at, "signing key created");
            if let Some(hook) = self.on_created.get() {
                hook(&kid, alg.as_str(), activates_at);
            }
        }
        Ok(added.then_some(kid))
    }

    /// Reloads keys from storage, rotates when due, prunes keys no longer published, and
    /// rebuilds JWKS when what is published changed. Cheap when nothing changed.
    pub async fn refresh(&self) -> Result<(), KeyError> {
        let _guard = self.reload.lock().await;
        let policy = self.policy();
        let mut records = self.storage.list_signing_keys().await?;
        let now = self.clock.now();

        if let Some(expected) = self.rotation_due(&records, &policy, now) {
            let activates_at = match expected.as_deref() {
                // The very first key: nothing is cached anywhere yet, so it signs at once.
                None => now,
                Some(_) => {
                    let active = records.iter().rev().find(|r| r.activates_at <= now);
                    let scheduled = active
                        .map(|a| a.activates_at + policy.rotation_period.get())
                        .unwrap_or(now);
                    scheduled.max(now + policy.publish_ahead.get())
                }
            };
            self.add_key(expected.as_deref(), activates_at).await?;
            records = self.storage.list_signing_keys().await?;
        }

        let current = self.set();
        let mut keys = Vec::with_capacity(records.len());
        for r in &records {
            match current.keys.iter().find(|k| k.kid == r.kid) {
                Some(k) => keys.push(k.clone()),
                None => keys.push(Arc::new(self.load(r)?)),
            }
        }

        // Prune retired keys past their publication window.
        let infos = describe(&metas(&keys), now, policy.retain_for);
        for i in &infos {
            if i.published_until.is_some_and(|until| until < now) {
                self.storage.delete_signing_key(&i.kid).await?;
                tracing::info!(kid = %i.kid, "retired signing key removed from JWKS");
            }
        }
        let published: Vec<&KeyInfo> = infos
            .iter()
            .filter(|i| i.published_until.is_none_or(|until| until >= now))
            .collect();
        let kids: Vec<(String, KeyState)> =
            published.iter().map(|i| (i.kid.clone(), i.state)).collect();
        let same_keys = keys.len() == current.keys.len()
            && keys
                .iter()
                .zip(&current.keys)
                .all(|(a, b)| Arc::ptr_eq(a, b));
        if same_keys && kids == current.published {
            return Ok(());
        }
        keys.retain(|k| kids.iter().any(|(kid, _)| *kid == k.kid));
        let jwks = build_jwks(&keys, &published);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(KeySet {
            keys,
            jwks,
            published: kids,
        });
        self.changed.send_modify(|v| *v += 1);
        Ok(())
    }

    /// `Some(expected_newest)` when a key must be added now.
    fn rotation_due(
        &self,
        records: &[SigningKeyRecord],
        policy: &KeyPolicy,
        now: UnixTime,
    ) -> Option<Option<String>> {
        let Some(newest) = records.last() else {
            return Some(None);
        };
        if newest.activates_at > now {
            return None; // a successor is already published and waiting
        }
        let due = newest.activates_at + policy.rotation_period.get() - policy.publish_ahead.get();
        (now >= due || newest.alg != policy.algorithm).then(|| Some(newest.kid.clone()))
    }

    fn load(&self, r: &SigningKeyRecord) -> Result<LoadedKey, KeyError> {
        let der = self.sealer.open(&r.private_key, &r.kid)?;
        let jwk = Jwk::from_bytes(r.public_jwk.as_bytes())
            .map_err(|_| KeyError::Corrupt(r.kid.clone()))?;
        let (signer, verifier) = generate::load(r.alg, &r.kid, &der, &jwk)?;
        let public_jwk: serde_json::Value =
            serde_json::from_str(&r.public_jwk).map_err(|_| KeyError::Corrupt(r.kid.clone()))?;
        Ok(LoadedKey {
            meta: KeyMeta::from(r),
            public_jwk,
            signer,
            verifier,
        })
    }

    /// Runs [`Self::refresh`] every `period` until the returned handle is aborted.
    pub fn spawn_maintenance(
        self: &Arc<Self>,
        period: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        let mgr = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(mgr) = mgr.upgrade() else { break };
                if let Err(e) = mgr.refresh().await {
                    tracing::warn!(error = %e, "signing key maintenance failed; will retry");
                }
            }
        })
    }
}
