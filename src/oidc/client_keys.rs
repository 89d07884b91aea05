//! A `private_key_jwt` client's public keys, each parsed once into a verifier for the one
//! algorithm the client may use (never per request).

use serde_json::Value;

use crate::config::{MAX_CLIENT_KEYS, SigningAlgorithm, jwk_verifier};

pub struct ClientKeys {
    pub alg: SigningAlgorithm,
    keys: Vec<(Option<String>, Box<dyn josekit::jws::JwsVerifier>)>,
}

impl std::fmt::Debug for ClientKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKeys")
            .field("alg", &self.alg)
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl ClientKeys {
    /// The usable keys of a JWK Set: public keys of `alg`'s type meant for signatures (no
    /// `use`, or `use: sig`). Others are skipped; a set with none is an error.
    pub fn from_jwks(alg: SigningAlgorithm, set: &Value) -> Result<Self, String> {
        let list = set
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("not a JWK Set")?;
        let mut keys = Vec::new();
        for jwk in list.iter().take(MAX_CLIENT_KEYS) {
            let private = ["d", "p", "q", "k"].iter().any(|k| jwk.get(k).is_some());
            let for_signing = jwk.get("use").is_none_or(|u| u == "sig");
            if private || !for_signing {
                continue;
            }
            if let Ok(v) = jwk_verifier(alg, jwk) {
                let kid = jwk.get("kid").and_then(Value::as_str).map(str::to_string);
                keys.push((kid, v));
            }
        }
        if keys.is_empty() {
            return Err(format!("no usable {} public key", alg.as_str()));
        }
        Ok(Self { alg, keys })
    }

    pub fn knows(&self, kid: Option<&str>) -> bool {
        kid.is_none_or(|kid| self.keys.iter().any(|(k, _)| k.as_deref() == Some(kid)))
    }

    /// Verifies a compact JWS with the key its `kid` names (every key when it names none):
    /// its payload, if one verified it. The header's `alg` must be the client's.
    pub fn verify(&self, token: &str) -> Option<Vec<u8>> {
        for (kid, verifier) in &self.keys {
            let verified = josekit::jws::deserialize_compact_with_selector(token, |h| {
                let kid_ok = match (h.key_id(), kid) {
                    (Some(named), Some(k)) => named == k,
                    (Some(_), None) => false,
                    (None, _) => true,
                };
                Ok((kid_ok && h.algorithm() == Some(self.alg.as_str())).then_some(&**verifier))
            });
            if let Ok((payload, _)) = verified {
                return Some(payload);
            }
        }
        None
    }
}
