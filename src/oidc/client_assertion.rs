//! `private_key_jwt` client authentication (RFC 7523 §2.2 and §3, OIDC Core §9): a JWT the
//! client signed with a key it registered (`jwks`, or `jwks_uri`), checked strictly.
//!
//! - `alg` is the client's one algorithm (`token_endpoint_auth_signing_alg`, else what its
//!   key implies); `none` and HMAC never verify.
//! - `iss` and `sub` are the client id; `aud` names this issuer or one of its endpoints.
//! - `exp` is in the future and at most ten minutes away; `nbf` and `iat` not in the
//!   future (a minute of leeway).
//! - `jti` is used once, across nodes: it is recorded in storage until the assertion
//!   expires, and a second use is refused.
//!
//! A `jwks_uri` is fetched with a timeout and a size cap, kept five minutes, and fetched
//! again when an assertion names a `kid` it lacks (at most every 30 seconds). While the URI
//! fails, the set that worked last stays in use for an hour at most.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::client_keys::ClientKeys;
use super::clients::Client;
use crate::clock::{Clock, UnixTime};
use crate::storage::Storage;

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The longest client assertion read.
pub const MAX_ASSERTION: usize = 8 * 1024;
/// The largest JWK Set read from a `jwks_uri`.
pub const MAX_REMOTE_JWKS: usize = 64 * 1024;
/// How far ahead an assertion's `exp` may be.
const MAX_AHEAD: i64 = 600;
const LEEWAY: i64 = 60;
/// How long a fetched JWK Set is kept.
const REMOTE_TTL: i64 = 300;
/// The soonest a JWK Set is fetched again for an unknown `kid`.
const REFETCH_AFTER: i64 = 30;

/// Why an assertion was refused (for the log and the audit line; the client hears only
/// `invalid_client`).
pub type Refusal = &'static str;

/// A JWK Set as last fetched: when it was last tried, when it last worked, and its keys
/// (none: it never worked, or not within [`STALE_LIMIT`]).
type Fetched = (UnixTime, UnixTime, Option<Arc<ClientKeys>>);

/// How long a set that worked stays in use while its URI fails.
const STALE_LIMIT: i64 = 3600;

pub struct Assertions {
    issuer: String,
    storage: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    /// `jwks_uri` → when it was fetched, and its keys.
    remote: Mutex<HashMap<String, Fetched>>,
    /// One fetch at a time per URI (a slow one delays no other client).
    fetching: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// The claims of an unverified JWT (for the client id an assertion names).
fn unverified_claims(token: &str) -> Option<Value> {
    let part = token.split('.').nth(1)?;
    let bytes =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn unverified_kid(token: &str) -> Option<String> {
    let part = token.split('.').next()?;
    let bytes =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, part).ok()?;
    let header: Value = serde_json::from_slice(&bytes).ok()?;
    header.get("kid")?.as_str().map(str::to_string)
}

/// The client an assertion says it comes from (`sub`), unverified: only to find the client
/// whose keys then verify it.
pub fn claimed_client(assertion: &str) -> Option<String> {
    if assertion.len() > MAX_ASSERTION {
        return None;
    }
    unverified_claims(assertion)?
        .get("sub")?
        .as_str()
        .map(str::to_string)
}

fn audience_ok(aud: &Value, accepted: &[String]) -> bool {
    match aud {
        Value::String(a) => accepted.contains(a),
        Value::Array(list) => list
            .iter()
            .any(|a| a.as_str().is_some_and(|a| accepted.iter().any(|x| x == a))),
        _ => false,
    }
}

impl Assertions {
    pub fn new(issuer: String, storage: Arc<dyn Storage>, clock: Arc<dyn Clock>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            issuer,
            storage,
            clock,
            http,
            remote: Mutex::new(HashMap::new()),
            fetching: Mutex::new(HashMap::new()),
        }
    }

    /// Checks `assertion` as `client`'s. Returns a digest of its `jti` (for the audit log).
    pub async fn check(&self, client: &Client, assertion: &str) -> Result<String, Refusal> {
        if assertion.len() > MAX_ASSERTION {
            return Err("assertion_too_long");
        }
        let keys = self.keys_for(client, assertion).await?;
        let payload = keys.verify(assertion).ok_or("bad_signature")?;
        let claims: Value = serde_json::from_slice(&payload).map_err(|_| "not_json")?;
        let now = self.clock.now();
        let id = client.id();
        if claims["iss"] != id || claims["sub"] != id {
            return Err("iss_or_sub_not_client");
        }
        let accepted: Vec<String> = std::iter::once(self.issuer.clone())
            .chain(
                [
                    super::discovery::TOKEN_PATH,
                    super::discovery::INTROSPECT_PATH,
                    super::discovery::REVOKE_PATH,
                    super::discovery::DEVICE_AUTHORIZATION_PATH,
                ]
                .iter()
                .map(|p| format!("{}{p}", self.issuer)),
            )
            .collect();
        if !audience_ok(&claims["aud"], &accepted) {
            return Err("wrong_audience");
        }
        let exp = claims["exp"].as_i64().ok_or("no_exp")?;
        if exp <= now {
            return Err("expired");
        }
        if exp > now + MAX_AHEAD + LEEWAY {
            return Err("exp_too_far_ahead");
        }
        for early in ["nbf", "iat"] {
            if claims[early].as_i64().is_some_and(|t| t > now + LEEWAY) {
                return Err("not_yet_valid");
            }
        }
        let jti = claims["jti"]
            .as_str()
            .filter(|j| !j.is_empty() && j.len() <= 256)
            .ok_or("no_jti")?;
        let digest = crate::secret::sha256_b64url(format!("{id}\n{jti}").as_bytes());
        let fresh = self
            .storage
            .use_once(&format!("client-assertion:{digest}"), exp + LEEWAY)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "recording a client assertion's jti failed");
                "storage_unavailable"
            })?;
        if !fresh {
            return Err("replayed");
        }
        Ok(digest)
    }

    /// The keys that may have signed `assertion`: the client's inline ones, or those of
    /// its `jwks_uri`.
    async fn keys_for(&self, client: &Client, assertion: &str) -> Result<Arc<ClientKeys>, Refusal> {
        let agents = &client.config.agents;
        if agents.jwks.is_some() {
            return client.assertion_keys().ok_or("no_usable_key");
        }
        let uri = agents.jwks_uri.as_deref().ok_or("no_keys_registered")?;
        let kid = unverified_kid(assertion);
        let now = self.clock.now();
        let cached = self.cached(uri);
        if let Some((tried, _, keys)) = &cached {
            let fresh = now - tried < REMOTE_TTL;
            let knows = keys.as_ref().is_some_and(|k| k.knows(kid.as_deref()));
            if fresh && (knows || now - tried < REFETCH_AFTER) {
                return keys.clone().ok_or("jwks_uri_unusable");
            }
        }
        let lock = {
            let mut locks = self.fetching.lock().unwrap_or_else(|e| e.into_inner());
            // One entry per URI ever configured: bounded by the clients.
            locks.entry(uri.to_string()).or_default().clone()
        };
        let _one = lock.lock().await;
        // Fetched by someone else meanwhile?
        if let Some((tried, _, keys)) = self.cached(uri)
            && cached.as_ref().is_none_or(|(before, _, _)| tried > *before)
        {
            return keys.ok_or("jwks_uri_unusable");
        }
        let entry = match self.fetch(uri, client).await {
            Ok(k) => (now, now, Some(Arc::new(k))),
            Err(e) => {
                tracing::warn!(client_id = client.id(), jwks_uri = uri, error = %e, "fetching a client's jwks_uri failed");
                // A set that worked stays in use while the URI fails, for an hour at most:
                // a key the client removed must not stay trusted because its URI is down.
                match &cached {
                    Some((_, worked, keys)) if now - worked < STALE_LIMIT => {
                        (now, *worked, keys.clone())
                    }
                    _ => (now, now - STALE_LIMIT, None),
                }
            }
        };
        let keys = entry.2.clone();
        self.remote
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uri.to_string(), entry);
        keys.ok_or("jwks_uri_unusable")
    }

    fn cached(&self, uri: &str) -> Option<Fetched> {
        self.remote
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(uri)
            .cloned()
    }

    async fn fetch(&self, uri: &str, client: &Client) -> Result<ClientKeys, String> {
        let mut resp = self
            .http
            .get(uri)
            .header(
                reqwest::header::ACCEPT,
                "application/jwk-set+json, application/json",
            )
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("answered {}", resp.status()));
        }
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_REMOTE_JWKS as u64)
        {
            return Err(format!("larger than {MAX_REMOTE_JWKS} bytes"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > MAX_REMOTE_JWKS {
                return Err(format!("larger than {MAX_REMOTE_JWKS} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let set: Value = serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))?;
        ClientKeys::from_jwks(client.config.agents.assertion_alg(), &set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_is_a_string_or_a_list_naming_us() {
        let ours = vec!["https://id.example".to_string()];
        assert!(audience_ok(&Value::from("https://id.example"), &ours));
        assert!(audience_ok(
            &serde_json::json!(["x", "https://id.example"]),
            &ours
        ));
        assert!(!audience_ok(&Value::from("https://evil.example"), &ours));
        assert!(!audience_ok(&serde_json::json!(42), &ours));
        assert!(!audience_ok(&Value::Null, &ours));
    }
}
