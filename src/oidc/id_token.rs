//! ID tokens (OIDC Core §2, §3.1.3.6): claims, `at_hash`, signing with the active key.

use serde_json::{Map, Value, json};

use super::claims::{ScopeCatalog, claims_for};
use super::grant::Grant;
use super::shape::Shaped;
use crate::clock::UnixTime;
use crate::config::SigningAlgorithm;
use crate::keys::{KeyError, KeyManager};
use crate::secret::b64url;

/// `at_hash`: the left half of the hash of the access token, with the hash that goes with
/// the signing algorithm (SHA-512 for Ed25519).
pub fn at_hash(alg: SigningAlgorithm, access_token: &str) -> String {
    let digest: Vec<u8> = match alg {
        SigningAlgorithm::EdDSA => openssl::sha::sha512(access_token.as_bytes()).to_vec(),
        _ => openssl::sha::sha256(access_token.as_bytes()).to_vec(),
    };
    b64url(&digest[..digest.len() / 2])
}

/// What goes into one ID token.
pub struct IdTokenRequest<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub grant: &'a Grant,
    pub now: UnixTime,
    pub lifetime: i64,
    /// Only on the code exchange (OIDC Core §12.2).
    pub include_nonce: bool,
    pub access_token: &'a str,
    /// The token shape's subject and claims.
    pub shaped: &'a Shaped,
    /// The client asked for `groups` in every ID token.
    pub groups_always: bool,
    /// What the scopes of your own release (they release into the ID token too).
    pub catalog: &'a ScopeCatalog,
    /// The client's fixed claims.
    pub fixed: &'a Map<String, Value>,
}

pub fn sign(keys: &KeyManager, r: &IdTokenRequest<'_>) -> Result<String, KeyError> {
    let (issuer, client_id, grant, now) = (r.issuer, r.client_id, r.grant, r.now);
    let key = keys.active().ok_or(KeyError::NoActiveKey)?;
    let mut claims = Map::new();
    // Groups go in the ID token when the scope asks for them; other profile claims only
    // where the `claims` parameter asks (the rest is at userinfo, OIDC Core §5.4).
    let mut scopes: Vec<String> = Vec::new();
    if grant.scope.iter().any(|s| s == "groups") || r.groups_always {
        scopes.push("groups".into());
    }
    scopes.extend(
        grant
            .scope
            .iter()
            .filter(|s| r.catalog.is_custom(s))
            .cloned(),
    );
    let requested = grant.claims.as_ref().and_then(|c| c.get("id_token"));
    for (k, v) in claims_for(&grant.identity, &scopes, requested, r.catalog) {
        claims.insert(k, v);
    }
    for (k, v) in r.fixed {
        claims.entry(k.clone()).or_insert_with(|| v.clone());
    }
    for k in &r.shaped.drop {
        claims.remove(*k);
    }
    for (k, v) in &r.shaped.id_token {
        claims.insert(k.clone(), v.clone());
    }
    claims.insert("iss".into(), json!(issuer));
    claims.insert("sub".into(), json!(r.shaped.sub));
    claims.insert("aud".into(), json!(client_id));
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + r.lifetime));
    claims.insert("auth_time".into(), json!(grant.auth_time));
    if r.include_nonce
        && let Some(n) = &grant.nonce
    {
        claims.insert("nonce".into(), json!(n));
    }
    if let Some(sid) = &grant.sid {
        claims.insert("sid".into(), json!(sid));
    }
    if !grant.identity.amr.is_empty() {
        claims.insert("amr".into(), json!(grant.identity.amr));
    }
    claims.insert("at_hash".into(), json!(at_hash(key.alg, r.access_token)));
    keys.sign_with(&key, "JWT", &Value::Object(claims))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_the_oidc_core_example() {
        // OIDC Core A.3: access token "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y" -> at_hash
        // "77QmUPtjPfzWtF2AnpK9RQ" with RS256.
        assert_eq!(
            at_hash(
                SigningAlgorithm::RS256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
