//! Records the storage layer keeps. Plain data: only `Storage` does I/O.

use std::fmt;

use crate::clock::UnixTime;
use crate::config::SigningAlgorithm;

/// A client as stored: its settings as JSON and its secret as an argon2id hash.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientRecord {
    pub id: String,
    /// argon2id PHC string; `None` for public clients.
    pub secret_hash: Option<String>,
    /// [`crate::config::ClientConfig`] serialised as JSON.
    pub metadata: String,
    pub updated_at: UnixTime,
}

impl fmt::Debug for ClientRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientRecord")
            .field("id", &self.id)
            .field(
                "secret_hash",
                &self.secret_hash.as_ref().map(|_| "[redacted]"),
            )
            .field("metadata", &self.metadata)
            .finish()
    }
}

/// A signing key pair. The private part is sealed with the configured encryption key.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub alg: SigningAlgorithm,
    /// AES-256-GCM sealed PKCS#8 DER (see `keys::seal`).
    pub private_key: Vec<u8>,
    /// The public JWK as published in JWKS.
    pub public_jwk: String,
    pub created_at: UnixTime,
    /// When it starts signing. Before then it is `next`: published but unused.
    pub activates_at: UnixTime,
}

impl fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("private_key", &"[redacted]")
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .finish()
    }
}
