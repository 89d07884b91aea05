//! JWT access tokens (RFC 9068): issued with the active key, validated against our own keys,
//! revocable by `jti`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::clock::{Clock, UnixTime};
use crate::keys::{KeyError, KeyManager};
use crate::protocol::{ClientId, Issuer, Subject};
use crate::secret::random_token;
use crate::storage::{Storage, StorageError};

/// `aud`: one string when there is one audience, else a list (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn from_list(mut list: Vec<String>) -> Self {
        if list.len() == 1 {
            Self::One(list.remove(0))
        } else {
            Self::Many(list)
        }
    }

    pub fn contains(&self, aud: &str) -> bool {
        match self {
            Self::One(a) => a == aud,
            Self::Many(list) => list.iter().any(|a| a == aud),
        }
    }
}

/// The claims of an access token (RFC 9068 §2.2).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: Issuer,
    pub sub: Subject,
    pub aud: Audience,
    pub client_id: ClientId,
    pub iat: UnixTime,
    pub exp: UnixTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<UnixTime>,
    pub jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<UnixTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Claims the `claims` request parameter asked for at userinfo (OIDC Core §5.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_claims: Option<Vec<String>>,
    /// Claims a persona adds (mock mode).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// What to put in a new access token.
pub struct AccessTokenRequest<'a> {
    pub client_id: &'a str,
    pub sub: &'a str,
    pub scope: Option<&'a str>,
    pub audience: Vec<String>,
    pub lifetime: i64,
    pub auth_time: Option<UnixTime>,
    pub sid: Option<&'a str>,
    pub userinfo_claims: Option<Vec<String>>,
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// Issue as of this time instead of now (mock minting with `iat_offset`).
    pub issued_at: Option<UnixTime>,
    /// Use this `jti` (chosen before the token, to be recorded first); else a random one.
    pub jti: Option<String>,
}

pub struct Issued {
    pub token: String,
    pub claims: AccessTokenClaims,
}

pub struct TokenService {
    pub issuer: String,
    keys: Arc<KeyManager>,
    clock: Arc<dyn Clock>,
    storage: Arc<dyn Storage>,
    /// The longest any access token lives: how long a session's "ended" marker is kept.
    pub max_access_lifetime: i64,
}

pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Refresh tokens are stored under a hash that includes the client id, so a token presented
/// by another client is simply unknown, and the owner's token stays intact.
pub fn refresh_hash(client_id: &str, token: &str) -> String {
    crate::secret::sha256_b64url(format!("{client_id}\n{token}").as_bytes())
}

impl TokenService {
    pub fn new(
        issuer: String,
        keys: Arc<KeyManager>,
        clock: Arc<dyn Clock>,
        storage: Arc<dyn Storage>,
        max_access_lifetime: i64,
    ) -> Self {
        Self {
            issuer,
            keys,
            clock,
            storage,
            max_access_lifetime,
        }
    }

    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    pub fn issue_access_token(&self, req: AccessTokenRequest<'_>) -> Result<Issued, KeyError> {
        let now = req.issued_at.unwrap_or_else(|| self.clock.now());
        let audience = if req.audience.is_empty() {
            vec![self.issuer.clone()]
        } else {
            req.audience
        };
        let claims = AccessTokenClaims {
            iss: self.issuer.clone().into(),
            sub: req.sub.into(),
            aud: Audience::from_list(audience),
            client_id: req.client_id.into(),
            iat: now,
            exp: now + req.lifetime,
            nbf: None,
            jti: req.jti.unwrap_or_else(|| random_token(16)),
            scope: req.scope.filter(|s| !s.is_empty()).map(str::to_string),
            auth_time: req.auth_time,
            sid: req.sid.map(str::to_string),
            userinfo_claims: req.userinfo_claims,
            extra: req.extra,
        };
        let token = self.keys.sign(ACCESS_TOKEN_TYP, &claims)?;
        Ok(Issued { token, claims })
    }

    /// The claims of a valid access token we issued: signature by one of our keys, `typ`,
    /// `iss`, not expired, not revoked (by `jti`, or with the session it came from). `None`
    /// for anything else. A `kid` of ours this node has not loaded yet (another node just
    /// rotated) reloads the keys first.
    pub async fn validate_access_token(
        &self,
        token: &str,
    ) -> Result<Option<AccessTokenClaims>, StorageError> {
        self.keys.reload_for_unknown_kid(token, &self.issuer).await;
        let Some(claims) = self.decode_access_token(token) else {
            return Ok(None);
        };
        let now = self.clock.now();
        // Expired, or not valid yet (a minute of leeway for clocks that differ).
        if claims.exp <= now || claims.nbf.unwrap_or(claims.iat) > now + 60 {
            return Ok(None);
        }
        if self
            .storage
            .is_access_token_revoked(&claims.jti, claims.sid.as_deref())
            .await?
        {
            return Ok(None);
        }
        Ok(Some(claims))
    }

    /// Signature, `typ` and `iss` checks only (no expiry, no revocation).
    pub fn decode_access_token(&self, token: &str) -> Option<AccessTokenClaims> {
        let (payload, header) = self.keys.verify(token)?;
        if header.token_type() != Some(ACCESS_TOKEN_TYP) {
            return None;
        }
        let claims: AccessTokenClaims = serde_json::from_slice(&payload).ok()?;
        (claims.iss == self.issuer).then_some(claims)
    }

    /// A live refresh token of `client_id`: its family's grant data and idle expiry.
    pub async fn live_refresh_token(
        &self,
        token: &str,
        client_id: &str,
    ) -> Result<Option<(crate::model::RefreshFamilyRecord, UnixTime)>, StorageError> {
        let hash = refresh_hash(client_id, token);
        let Some((t, f)) = self.storage.get_refresh_token(&hash).await? else {
            return Ok(None);
        };
        let now = self.clock.now();
        let live = t.rotated_at.is_none()
            && t.idle_expires_at > now
            && f.revoked_at.is_none()
            && f.absolute_expires_at > now;
        Ok(live.then_some((f, t.idle_expires_at)))
    }

    /// Revokes a token if `client` is the client it was issued to: an access token by
    /// `jti`, a refresh token with its whole family (RFC 7009 §2.1), and, when the client
    /// has `logout_revokes_session`, the SSO session the family came from with everything
    /// it issued. Unknown, foreign and already-revoked tokens are silently ignored
    /// (RFC 7009 §2.2).
    pub async fn revoke(
        &self,
        token: &str,
        client: &crate::oidc::clients::Client,
    ) -> Result<Revoked, StorageError> {
        let client_id = client.id();
        let now = self.clock.now();
        let Some(claims) = self.decode_access_token(token) else {
            let hash = refresh_hash(client_id, token);
            if let Some((t, family)) = self.storage.get_refresh_token(&hash).await? {
                self.storage
                    .revoke_refresh_family(&t.family_id, now)
                    .await?;
                tracing::info!(
                    event = "token_revoked",
                    client_id,
                    sub = %family.sub,
                    kind = "refresh_token",
                    token_hash = %crate::secret::sha256_b64url(t.token_hash.as_bytes()),
                    "refresh token family revoked"
                );
                let mut revoked = Revoked::RefreshToken {
                    sub: family.sub.clone(),
                    ended_session: None,
                };
                if client.config.logout_revokes_session
                    && let Some(sid) = &family.sid
                {
                    revoked = Revoked::RefreshToken {
                        sub: family.sub.clone(),
                        ended_session: Some(sid.clone()),
                    };
                    let families = self
                        .storage
                        .end_session(sid, now, now + self.max_access_lifetime)
                        .await?;
                    tracing::info!(
                        event = "logout",
                        client_id,
                        sub = %family.sub,
                        via = "revocation",
                        families_revoked = families,
                        "session ended: its client revoked its refresh token"
                    );
                }
                return Ok(revoked);
            }
            return Ok(Revoked::Nothing);
        };
        if claims.client_id == client_id && claims.exp > now {
            self.storage
                .revoke_token_id(&claims.jti, claims.exp)
                .await?;
            tracing::info!(
                event = "token_revoked",
                client_id,
                sub = %claims.sub,
                jti_hash = %crate::secret::sha256_b64url(claims.jti.as_bytes()),
                "access token revoked"
            );
            return Ok(Revoked::AccessToken {
                sub: claims.sub.to_string(),
            });
        }
        Ok(Revoked::Nothing)
    }
}

/// What a revocation did (the client is told nothing of it; the audit log is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// Unknown, foreign, expired or already revoked.
    Nothing,
    AccessToken {
        sub: String,
    },
    /// The refresh token's family, and perhaps its session (this `sid`).
    RefreshToken {
        sub: String,
        ended_session: Option<String>,
    },
}
