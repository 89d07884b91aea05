//! The admin API's bearer token: the configured token's SHA-256 compared in constant time,
//! or an argon2id `token_hash` verified once through the bounded verifier and then by the
//! digest of the token that passed.

use std::sync::{Arc, Mutex};

use crate::config::AdminConfig;
use crate::password::PasswordVerifier;
use crate::secret::{ct_eq, sha256};

enum Kind {
    /// SHA-256 of the configured token.
    Digest([u8; 32]),
    /// An argon2id hash, and the digest of the token that last passed it.
    Hash {
        phc: String,
        verified: Mutex<Option<[u8; 32]>>,
    },
}

pub struct AdminToken {
    kind: Kind,
    verifier: Arc<PasswordVerifier>,
}

impl AdminToken {
    /// `None` when the config sets no admin token (the admin API is off).
    pub fn from_config(config: &AdminConfig, verifier: Arc<PasswordVerifier>) -> Option<Self> {
        let kind = match (&config.token, &config.token_hash) {
            (Some(t), _) => Kind::Digest(sha256(t.expose().as_bytes())),
            (None, Some(h)) => Kind::Hash {
                phc: h.clone(),
                verified: Mutex::new(None),
            },
            (None, None) => return None,
        };
        Some(Self { kind, verifier })
    }

    pub async fn accepts(&self, presented: &str) -> bool {
        let digest = sha256(presented.as_bytes());
        match &self.kind {
            Kind::Digest(d) => ct_eq(d, &digest),
            Kind::Hash { phc, verified } => {
                if verified
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_some_and(|k| ct_eq(&k, &digest))
                {
                    return true;
                }
                let ok = matches!(self.verifier.verify(presented, phc).await, Ok(true));
                if ok {
                    *verified.lock().unwrap_or_else(|e| e.into_inner()) = Some(digest);
                }
                ok
            }
        }
    }
}
