//! Records the storage layer keeps. Plain data: only `Storage` does I/O.

use std::fmt;

use crate::clock::UnixTime;
use crate::config::SigningAlgorithm;

/// A client as stored: its settings as JSON and its secrets as hashes.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientRecord {
    pub id: String,
    /// One secret, as written before clients could hold several (read as a secret without
    /// an end when `secrets` is empty); new writes leave it `None`.
    pub secret_hash: Option<String>,
    /// [`crate::config::ClientConfig`] serialised as JSON.
    pub metadata: String,
    pub updated_at: UnixTime,
    /// Where the client is defined.
    pub source: ClientSource,
    /// Its secrets; empty for public clients.
    pub secrets: Vec<StoredSecret>,
}

/// Where a client is defined: the config file (read-only through the admin API) or the
/// admin API (lives in the database only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientSource {
    Config,
    Api,
}

impl ClientSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientSource::Config => "config",
            ClientSource::Api => "api",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "config" => Some(ClientSource::Config),
            "api" => Some(ClientSource::Api),
            _ => None,
        }
    }
}

/// One client secret: a keyed digest (`hmac-sha256$…`) or an argon2id PHC string, never
/// the secret itself.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredSecret {
    /// Its name in metrics, the audit log and the admin API.
    pub id: String,
    pub hash: String,
    pub created_at: Option<UnixTime>,
    /// It stops working at this time.
    pub expires_at: Option<UnixTime>,
}

impl fmt::Debug for StoredSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredSecret")
            .field("id", &self.id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
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
            .field("source", &self.source)
            .field("secrets", &self.secrets)
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

/// A pending authorization request, between `/authorize` and the code redirect.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthRequestRecord {
    pub id: String,
    pub client_id: String,
    /// The validated request, as JSON (`oidc::authorize::AuthRequest`).
    pub request: String,
    /// The CSRF token its forms must carry.
    pub csrf: String,
    /// SHA-256 of the cookie that binds it to one browser.
    pub binding_hash: String,
    /// Set once the user has authenticated for this request.
    pub session_id: Option<String>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

/// An SSO session. The cookie holds a random value; only its hash is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub id_hash: String,
    /// The session id put in ID tokens (`sid`), unrelated to the cookie value.
    pub sid: String,
    pub sub: String,
    /// The authenticated identity's claims, as JSON (`oidc::identity::Identity`).
    pub identity: String,
    pub auth_time: UnixTime,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

/// An authorization code, stored by hash. Kept after redemption so that a replay can be
/// recognised and what the code issued revoked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthCodeRecord {
    pub code_hash: String,
    pub client_id: String,
    /// What the code grants, as JSON (`oidc::grant::Grant`).
    pub grant: String,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub redeemed_at: Option<UnixTime>,
    pub family_id: Option<String>,
    pub access_jti: Option<String>,
    pub access_exp: Option<UnixTime>,
    /// When a redeemed code was presented again.
    pub replayed_at: Option<UnixTime>,
}

/// What a code's redemption is about to issue, recorded atomically with the redemption.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeIssuance {
    pub family_id: Option<String>,
    pub access_jti: String,
    pub access_exp: UnixTime,
}

/// All refresh tokens descending from one authorization share a family; reuse of a rotated
/// token revokes the whole family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshFamilyRecord {
    pub id: String,
    pub client_id: String,
    pub sub: String,
    pub grant: String,
    pub created_at: UnixTime,
    pub absolute_expires_at: UnixTime,
    pub revoked_at: Option<UnixTime>,
    /// The SSO session the family was started from (`sid`), ended with it.
    pub sid: Option<String>,
}

#[derive(Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    pub token_hash: String,
    pub family_id: String,
    pub created_at: UnixTime,
    pub idle_expires_at: UnixTime,
    /// When it was first exchanged for a successor.
    pub rotated_at: Option<UnixTime>,
    /// The access token issued alongside it, revoked with the family.
    pub access_jti: Option<String>,
    pub access_exp: Option<UnixTime>,
    /// Once rotated: the token response that carried the successor, sealed, so that a retry
    /// inside the grace window gets the same successor instead of forking the family.
    pub successor_response: Option<Vec<u8>>,
}

impl fmt::Debug for RefreshTokenRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshTokenRecord")
            .field("family_id", &self.family_id)
            .field("created_at", &self.created_at)
            .field("idle_expires_at", &self.idle_expires_at)
            .field("rotated_at", &self.rotated_at)
            .field(
                "successor_response",
                &self.successor_response.as_ref().map(|_| "[sealed]"),
            )
            .finish_non_exhaustive()
    }
}

/// The outcome of redeeming something single-use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redemption<T> {
    /// This call redeemed it.
    First(T),
    /// It had been redeemed before (a replay); the record as stored.
    Again(T),
    /// It exists but belongs to another client; untouched.
    Foreign(T),
    Missing,
}

/// Where a device authorization request (RFC 8628) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    /// Waiting for its person.
    Pending,
    /// Approved: the next poll gets the tokens.
    Approved,
    Denied,
    /// Its tokens were issued.
    Used,
}

impl DeviceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Used => "used",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Approved, Self::Denied, Self::Used]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// A device authorization request: its device code (hashed), the user code a person types,
/// and what polling has seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCodeRecord {
    pub device_code_hash: String,
    pub user_code: String,
    /// Names the request in the browser flow (never shown to the device).
    pub id: String,
    pub client_id: String,
    /// What the device asked for (JSON: scope, resources).
    pub request: String,
    pub status: DeviceStatus,
    /// The grant (JSON) once approved.
    pub grant: Option<String>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub poll_interval: i64,
    pub last_poll_at: Option<UnixTime>,
    pub polls: i64,
    /// The poll that returned this came sooner than the interval allows.
    pub slow_down: bool,
    /// Mock mode: approved with `grant` once polled this many times.
    pub approve_after_polls: Option<i64>,
    /// The poll that took the grant (so exactly one poll gets the tokens).
    pub taken_at_poll: Option<i64>,
}

impl DeviceCodeRecord {
    /// Whether the poll that returned this record is the one that took its grant.
    pub fn taken_now(&self) -> bool {
        self.status == DeviceStatus::Used && self.taken_at_poll == Some(self.polls)
    }
}

/// What a person (or the mock's control API) decided about a device request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceDecision {
    Approve {
        grant: String,
    },
    /// Mock mode: approve once the device has polled this many times in all.
    ApproveAfterPolls {
        grant: String,
        polls: i64,
    },
    Deny,
    /// Mock mode: the code expires now.
    Expire,
}
