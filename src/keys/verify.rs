//! Verifying what this provider signed, and noticing a key another node just added.

use josekit::jws::JwsHeader;

use super::KeyManager;

fn unverified_part(token: &str, i: usize) -> Option<serde_json::Value> {
    let part = token.split('.').nth(i)?;
    if part.len() > 16 * 1024 {
        return None;
    }
    let bytes =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn unverified_kid(token: &str) -> Option<String> {
    unverified_part(token, 0)?
        .get("kid")?
        .as_str()
        .map(str::to_string)
}

fn unverified_iss(token: &str) -> Option<String> {
    unverified_part(token, 1)?
        .get("iss")?
        .as_str()
        .map(str::to_string)
}

impl KeyManager {
    /// Verifies a compact JWS against the key its `kid` names. Returns the payload and header.
    /// The algorithm must be the key's own: `none` and HMAC never verify.
    pub fn verify(&self, token: &str) -> Option<(Vec<u8>, JwsHeader)> {
        let set = self.set();
        josekit::jws::deserialize_compact_with_selector(token, |header| {
            let key = header
                .key_id()
                .and_then(|kid| set.keys.iter().find(|k| k.kid == kid));
            Ok(match key {
                Some(k) if header.algorithm() == Some(k.alg.as_str()) => Some(&*k.verifier),
                _ => None,
            })
        })
        .ok()
    }

    /// When `token` names a `kid` this node does not know and claims to come from `issuer`
    /// (unverified: it is only a hint), reloads the keys from storage, at most once every
    /// two seconds: another node sharing the database may just have rotated.
    pub async fn reload_for_unknown_kid(&self, token: &str, issuer: &str) {
        let Some(kid) = unverified_kid(token) else {
            return;
        };
        if self.set().keys.iter().any(|k| k.kid == kid) {
            return;
        }
        if unverified_iss(token).as_deref() != Some(issuer) {
            return;
        }
        let now = self.clock.now();
        {
            let mut last = self.forced_reload.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| now >= t && now - t < 2) {
                return;
            }
            *last = Some(now);
        }
        // Debug-escaped: the kid comes from an unverified token.
        tracing::info!(kid = ?kid.chars().take(64).collect::<String>(), "a token names a key this node has not loaded: reloading keys");
        if let Err(e) = self.refresh().await {
            tracing::warn!(error = %e, "reloading keys failed");
        }
    }
}
