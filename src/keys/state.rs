//! Key states (next, active, retired) as functions of time, and the JWKS document.

use std::sync::Arc;

use axum::body::Bytes;
use serde::Serialize;

use super::generate::{Signer, Verifier};
use crate::clock::UnixTime;
use crate::config::{Seconds, SigningAlgorithm};
use crate::model::SigningKeyRecord;

/// A key parsed once at load: signer and verifier ready for the hot path.
pub struct LoadedKey {
    pub meta: KeyMeta,
    pub(super) public_jwk: serde_json::Value,
    pub(super) signer: Signer,
    pub(super) verifier: Verifier,
}

impl std::ops::Deref for LoadedKey {
    type Target = KeyMeta;
    fn deref(&self) -> &KeyMeta {
        &self.meta
    }
}

/// What the states are computed from.
#[derive(Debug, Clone)]
pub struct KeyMeta {
    pub kid: String,
    pub alg: SigningAlgorithm,
    pub created_at: UnixTime,
    pub activates_at: UnixTime,
}

impl From<&SigningKeyRecord> for KeyMeta {
    fn from(r: &SigningKeyRecord) -> Self {
        Self {
            kid: r.kid.clone(),
            alg: r.alg,
            created_at: r.created_at,
            activates_at: r.activates_at,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Next,
    Active,
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Active => "active",
            Self::Retired => "retired",
        }
    }
}

/// What `keys list` shows of one key.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: &'static str,
    pub state: KeyState,
    pub created_at: UnixTime,
    pub activates_at: UnixTime,
    /// When a successor took over (retired keys only).
    pub retired_at: Option<UnixTime>,
    /// Until when JWKS keeps it (retired keys only).
    pub published_until: Option<UnixTime>,
}

/// The state of each key at `now`; `keys` sorted by `activates_at`, then `kid`.
pub fn describe(keys: &[KeyMeta], now: UnixTime, retain_for: Seconds) -> Vec<KeyInfo> {
    let active = keys.iter().rposition(|k| k.activates_at <= now);
    keys.iter()
        .enumerate()
        .map(|(i, k)| {
            let state = match active {
                Some(a) if i == a => KeyState::Active,
                Some(a) if i < a => KeyState::Retired,
                _ if k.activates_at > now => KeyState::Next,
                _ => KeyState::Retired,
            };
            let retired_at = (state == KeyState::Retired)
                .then(|| keys.get(i + 1).map(|n| n.activates_at))
                .flatten();
            KeyInfo {
                kid: k.kid.clone(),
                alg: k.alg.as_str(),
                state,
                created_at: k.created_at,
                activates_at: k.activates_at,
                retired_at,
                published_until: retired_at.map(|r| r + retain_for.get()),
            }
        })
        .collect()
}

/// JWKS with the active key first, then waiting keys, then retired ones.
pub(super) fn build_jwks(keys: &[Arc<LoadedKey>], published: &[&KeyInfo]) -> Bytes {
    let rank = |s: KeyState| match s {
        KeyState::Active => 0,
        KeyState::Next => 1,
        KeyState::Retired => 2,
    };
    let mut order: Vec<(&KeyInfo, &Arc<LoadedKey>)> = published
        .iter()
        .filter_map(|i| keys.iter().find(|k| k.kid == i.kid).map(|k| (*i, k)))
        .collect();
    order.sort_by_key(|(i, k)| (rank(i.state), std::cmp::Reverse(k.activates_at)));
    let jwks = serde_json::json!({
        "keys": order.iter().map(|(_, k)| &k.public_jwk).collect::<Vec<_>>()
    });
    Bytes::from(jwks.to_string())
}
