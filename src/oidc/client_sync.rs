//! The config's clients written to storage: each configured secret as stored (a `secret` as
//! its keyed digest, a `secret_hash` as given, each of `secrets` with its end), configured
//! clients the config no longer lists removed, clients made through the admin API kept.

use std::collections::HashMap;

use super::clients::secret_fingerprint;
use crate::clock::UnixTime;
use crate::config::ClientConfig;
use crate::model::{ClientRecord, ClientSource, StoredSecret};
use crate::secret::ClientSecretKey;
use crate::storage::{Storage, StorageError};

/// The secrets a configured client holds, as stored: a `secret` as its keyed digest, a
/// `secret_hash` as given, or each of `secrets`.
pub fn configured_secrets(c: &ClientConfig, key: &ClientSecretKey) -> Vec<StoredSecret> {
    let one = |id: Option<&String>, hash: String, expires_at| StoredSecret {
        id: id.cloned().unwrap_or_else(|| secret_fingerprint(&hash)),
        hash,
        created_at: None,
        expires_at,
    };
    match (&c.secret_hash, &c.secret) {
        (Some(given), _) => vec![one(None, given.clone(), None)],
        (None, Some(secret)) if c.secrets.is_empty() => {
            vec![one(None, key.digest(secret.expose()), None)]
        }
        _ => c
            .secrets
            .iter()
            .filter_map(|s| {
                let hash = match (&s.hash, &s.secret) {
                    (Some(h), _) => h.clone(),
                    (None, Some(plain)) => key.digest(plain.expose()),
                    (None, None) => return None,
                };
                Some(one(s.id.as_ref(), hash, s.expires))
            })
            .collect(),
    }
}

/// Writes the config's clients to storage and removes configured clients the config no
/// longer lists (clients made through the admin API stay). A config client replaces an API
/// client of the same id, with a warning.
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
        let secrets = configured_secrets(c, key);
        if old.is_some_and(|o| {
            o.metadata == metadata
                && o.secrets == secrets
                && o.secret_hash.is_none()
                && o.source == ClientSource::Config
        }) {
            continue;
        }
        if old.is_some_and(|o| o.source == ClientSource::Api) {
            tracing::warn!(client_id = %c.id, "the config defines a client made through the admin API: the config's wins");
        }
        storage
            .upsert_client(&ClientRecord {
                id: c.id.clone(),
                secret_hash: None,
                metadata,
                updated_at: now,
                source: ClientSource::Config,
                secrets,
            })
            .await?;
    }
    for (id, rec) in &existing {
        if rec.source == ClientSource::Config && !clients.iter().any(|c| &c.id == id) {
            storage.delete_client(id).await?;
            tracing::info!(client_id = %id, "client removed: no longer in the config");
        }
    }
    Ok(())
}
