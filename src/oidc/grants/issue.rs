//! Issuing tokens for a grant: the access token, the ID token, refresh families and their
//! tokens. The grants (`authorization_code.rs`, `refresh_token.rs`, `client_credentials.rs`)
//! decide what to issue; this is how.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::audit::{Event, Kind};
use crate::clock::{Clock, UnixTime};
use crate::config::TokenLifetimes;
use crate::keys::KeyManager;
use crate::model::{RefreshFamilyRecord, RefreshTokenRecord};
use crate::oidc::clients::Client;
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::oidc::grant::Grant;
use crate::oidc::id_token;
use crate::oidc::shape::{Shaped, TokenShape};
use crate::oidc::tokens::{AccessTokenRequest, TokenService};
use crate::secret::{random_token, sha256_b64url};
use crate::storage::Storage;

/// A successful token response (RFC 6749 §5.1).
#[derive(Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// Token exchange (RFC 8693 §2.2.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

pub struct Grants {
    /// Seals the response that carried a rotated refresh token's successor.
    pub sealer: crate::keys::Sealer,
    /// One upstream refresh per family at a time (see `refresh_token.rs`).
    pub upstream_locks: UpstreamLocks,
    pub tokens: Arc<TokenService>,
    pub keys: Arc<KeyManager>,
    pub storage: Arc<dyn Storage>,
    pub clock: Arc<dyn Clock>,
    pub lifetimes: TokenLifetimes,
    /// What a token says beyond the released claims (mock personas); plain otherwise.
    pub shape: Arc<dyn TokenShape>,
    /// Asked at refresh whether an identity still holds.
    pub connectors: Arc<crate::federation::ConnectorRegistry>,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub audit: Arc<crate::audit::Audit>,
    /// What the scopes of your own release.
    pub scopes: Arc<crate::oidc::claims::ScopeCatalog>,
}

/// What a caller minting tokens directly (the mock's `POST /mock/tokens`) may change about
/// an issuance.
#[derive(Debug, Default)]
pub struct Overrides {
    /// Issue as of this time (both tokens' `iat`) instead of now.
    pub issued_at: Option<UnixTime>,
    /// Both tokens live this long instead of the client's lifetimes.
    pub lifetime: Option<i64>,
    /// Claims added to both tokens (`nbf`, say).
    pub claims: Map<String, Value>,
    /// An ID token even when the scope has no `openid` (a test author asked for one).
    pub id_token_always: bool,
    /// No ID token whatever the scope (token exchange issues an access token only).
    pub no_id_token: bool,
}

/// Per-family locks, kept only while someone holds one.
#[derive(Default)]
pub struct UpstreamLocks(
    std::sync::Mutex<std::collections::HashMap<String, std::sync::Weak<tokio::sync::Mutex<()>>>>,
);

/// What [`Grants::issue`] produced besides the response.
pub struct IssuedTokens {
    pub response: TokenResponse,
    pub access_jti: String,
    pub access_exp: UnixTime,
}

impl IssuedTokens {
    /// The answer for a new access token (and ID token): no refresh token yet.
    fn bearer(
        access: crate::oidc::tokens::Issued,
        lifetime: i64,
        scope: Option<String>,
        id_token: Option<String>,
    ) -> Self {
        Self {
            access_jti: access.claims.jti.clone(),
            access_exp: access.claims.exp,
            response: TokenResponse {
                access_token: access.token,
                token_type: "Bearer".into(),
                expires_in: lifetime,
                scope,
                refresh_token: None,
                id_token,
                issued_token_type: None,
            },
        }
    }
}

impl Grants {
    /// The lock of refresh family `id`'s upstream refresh.
    pub fn upstream_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self
            .upstream_locks
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(lock) = map.get(id).and_then(std::sync::Weak::upgrade) {
            return lock;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        map.insert(id.to_string(), Arc::downgrade(&lock));
        lock
    }

    /// `aud` of a user's access token: the resources of `grant` (RFC 8707) when it names
    /// some; else the client's configured audiences plus this issuer, so that the token also
    /// works at userinfo.
    pub fn user_token_audience(&self, client: &Client, grant: &Grant) -> Vec<String> {
        if !grant.resources.is_empty() {
            return grant.resources.clone();
        }
        let mut aud = client.config.audience.clone();
        if !aud.is_empty() && !aud.contains(&self.tokens.issuer) {
            aud.push(self.tokens.issuer.clone());
        }
        aud
    }

    pub fn access_lifetime(&self, client: &Client) -> i64 {
        client
            .config
            .tokens
            .access_token
            .unwrap_or(self.lifetimes.access_token)
            .get()
    }

    /// Issues an access token and an ID token for `grant`. `nonce` goes in only on the code
    /// exchange (OIDC Core §12.2: a refreshed ID token has none). `jti`: the access token's
    /// id, when it had to be recorded before the token existed.
    pub fn issue(
        &self,
        client: &Client,
        grant: &Grant,
        include_nonce: bool,
        jti: Option<String>,
    ) -> Result<IssuedTokens, OAuthError> {
        self.issue_with(client, grant, include_nonce, jti, &Overrides::default())
    }

    /// [`Self::issue`], with what [`Overrides`] changes.
    pub fn issue_with(
        &self,
        client: &Client,
        grant: &Grant,
        include_nonce: bool,
        jti: Option<String>,
        overrides: &Overrides,
    ) -> Result<IssuedTokens, OAuthError> {
        let lifetime = overrides
            .lifetime
            .unwrap_or_else(|| self.access_lifetime(client));
        let scope = grant.scope.join(" ");
        // What this client may see of the groups.
        let mut grant = grant.clone();
        grant.identity.groups =
            crate::federation::groups::for_client(&grant.identity.groups, &client.config.groups);
        let grant = &grant;
        let mut shaped = self.shape.shape(&grant.identity, client.id(), &grant.scope);
        for (k, v) in &overrides.claims {
            shaped.id_token.insert(k.clone(), v.clone());
            shaped.access_token.insert(k.clone(), v.clone());
        }
        if let Some(act) = &grant.act {
            shaped.access_token.insert("act".into(), act.clone());
        }
        let access = self
            .tokens
            .issue_access_token(AccessTokenRequest {
                client_id: client.id(),
                sub: &shaped.sub,
                scope: Some(&scope),
                audience: self.user_token_audience(client, grant),
                lifetime,
                auth_time: Some(grant.auth_time),
                sid: grant.sid.as_deref(),
                userinfo_claims: grant
                    .claims
                    .as_ref()
                    .and_then(|c| c.get("userinfo"))
                    .and_then(|u| u.as_object())
                    .map(|o| o.keys().cloned().collect()),
                extra: person_claims(
                    client,
                    &grant.identity,
                    &self.tokens.issuer,
                    shaped.access_token.clone(),
                ),
                issued_at: overrides.issued_at,
                jti,
            })
            .map_err(|e| OAuthError::internal(&e))?;
        let wants_id_token = overrides.id_token_always || grant.scope.iter().any(|s| s == "openid");
        let id_token = if wants_id_token && !overrides.no_id_token {
            Some(self.id_token(
                client,
                grant,
                include_nonce,
                &access.token,
                &shaped,
                overrides,
            )?)
        } else {
            None
        };
        Ok(IssuedTokens::bearer(
            access,
            lifetime,
            Some(scope),
            id_token,
        ))
    }

    /// The ID token that goes with `access_token`.
    fn id_token(
        &self,
        client: &Client,
        grant: &Grant,
        include_nonce: bool,
        access_token: &str,
        shaped: &Shaped,
        overrides: &Overrides,
    ) -> Result<String, OAuthError> {
        let lifetime = overrides.lifetime.unwrap_or_else(|| {
            client
                .config
                .tokens
                .id_token
                .unwrap_or(self.lifetimes.id_token)
                .get()
        });
        id_token::sign(
            &self.keys,
            &id_token::IdTokenRequest {
                issuer: &self.tokens.issuer,
                client_id: client.id(),
                grant,
                now: overrides.issued_at.unwrap_or_else(|| self.clock.now()),
                lifetime,
                include_nonce,
                access_token,
                shaped,
                groups_always: client.config.groups.always,
                catalog: &self.scopes,
                fixed: &client.config.claims,
            },
        )
        .map_err(|e| OAuthError::internal(&e))
    }

    /// An access token about a machine (`sub` is a client): no person, no session, no ID
    /// token. `extra`: claims beyond RFC 9068's (`act`).
    pub fn machine_token(
        &self,
        client: &Client,
        sub: &str,
        scope: &[String],
        audience: Vec<String>,
        lifetime: i64,
        extra: Map<String, Value>,
    ) -> Result<IssuedTokens, OAuthError> {
        let scope = scope.join(" ");
        let access = self
            .tokens
            .issue_access_token(AccessTokenRequest {
                client_id: client.id(),
                sub,
                scope: Some(&scope),
                audience,
                lifetime,
                auth_time: None,
                sid: None,
                userinfo_claims: None,
                extra,
                issued_at: None,
                jti: None,
            })
            .map_err(|e| OAuthError::internal(&e))?;
        let scope = (!scope.is_empty()).then_some(scope);
        Ok(IssuedTokens::bearer(access, lifetime, scope, None))
    }

    /// Tokens were issued: an audit line (client, subject, hashed token id, lifetime) and the
    /// `tokens_issued` counter.
    pub fn issued(
        &self,
        event: &str,
        grant_type: &str,
        client_id: &str,
        sub: &str,
        jti: &str,
        expires_in: i64,
    ) {
        self.metrics.token_issued(grant_type, client_id);
        self.audit.record(
            Event::new(Kind::TokenIssued, "success")
                .client(client_id)
                .subject(sub)
                .detail("grant_type", grant_type)
                .detail("jti_hash", sha256_b64url(jti.as_bytes()))
                .detail("expires_in", expires_in),
        );
        tracing::info!(
            event,
            grant_type,
            client_id,
            sub,
            jti_hash = %sha256_b64url(jti.as_bytes()),
            expires_in,
            "tokens issued"
        );
    }

    fn idle_lifetime(&self, client: &Client) -> i64 {
        client
            .config
            .tokens
            .refresh_token_idle
            .unwrap_or(self.lifetimes.refresh_token_idle)
            .get()
    }

    pub fn absolute_lifetime(&self, client: &Client) -> i64 {
        client
            .config
            .tokens
            .refresh_token_absolute
            .unwrap_or(self.lifetimes.refresh_token_absolute)
            .get()
    }

    /// Starts refresh family `family_id` for `grant` with its first token, in one storage
    /// call; the family is revoked at once if `code_hash` was replayed meanwhile. Returns the
    /// token.
    pub async fn new_family(
        &self,
        client: &Client,
        grant: &Grant,
        family_id: &str,
        access: (&str, UnixTime),
        code_hash: Option<&str>,
    ) -> Result<String, OAuthError> {
        let now = self.clock.now();
        let family = RefreshFamilyRecord {
            id: family_id.to_string(),
            client_id: client.id().to_string(),
            sub: grant.sub.to_string(),
            grant: serde_json::to_string(grant).map_err(|e| OAuthError::internal(&e))?,
            created_at: now,
            absolute_expires_at: now + self.absolute_lifetime(client),
            revoked_at: None,
            sid: grant.sid.clone(),
        };
        let (token, first) = self.refresh_token(client, &family, access);
        self.storage
            .create_refresh_family(&family, &first, code_hash)
            .await?;
        Ok(token)
    }

    /// A new refresh token of `family`, and its record, not yet stored.
    pub fn refresh_token(
        &self,
        client: &Client,
        family: &RefreshFamilyRecord,
        (access_jti, access_exp): (&str, UnixTime),
    ) -> (String, RefreshTokenRecord) {
        let now = self.clock.now();
        let token = random_token(32);
        let record = RefreshTokenRecord {
            token_hash: crate::oidc::tokens::refresh_hash(client.id(), &token),
            family_id: family.id.clone(),
            created_at: now,
            idle_expires_at: (now + self.idle_lifetime(client)).min(family.absolute_expires_at),
            rotated_at: None,
            access_jti: Some(access_jti.to_string()),
            access_exp: Some(access_exp),
            successor_response: None,
        };
        (token, record)
    }
}

/// What a user's access token carries beyond RFC 9068's claims: `extra` (a token shape's),
/// the client's fixed claims, and its `access_token_claims` (RFC 9068 §2.2.3.1). A list
/// longer than `access_token_claims_max` is left out and named a distributed claim whose
/// source is userinfo (OIDC Core §5.6.2), where the same access token reads it: a token
/// never carries part of a list, which an API could take for the whole.
fn person_claims(
    client: &Client,
    identity: &crate::federation::Identity,
    issuer: &str,
    mut extra: Map<String, Value>,
) -> Map<String, Value> {
    use crate::config::AccessTokenClaim;
    for (k, v) in &client.config.claims {
        extra.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let mut distributed = Map::new();
    for which in &client.config.access_token_claims {
        let values = match which {
            AccessTokenClaim::Groups => &identity.groups,
            AccessTokenClaim::Roles => &identity.roles,
        };
        if values.len() > client.config.access_token_claims_max {
            distributed.insert(which.as_str().into(), Value::from("userinfo"));
        } else {
            extra.insert(which.as_str().into(), serde_json::json!(values));
        }
    }
    if !distributed.is_empty() {
        extra.insert("_claim_names".into(), Value::Object(distributed));
        extra.insert(
            "_claim_sources".into(),
            serde_json::json!({"userinfo": {"endpoint": format!("{issuer}{}", crate::oidc::discovery::USERINFO_PATH)}}),
        );
    }
    extra
}

/// Validates a requested `scope` against what the client may have (RFC 6749 §3.3).
pub fn check_scope(requested: Option<&str>, allowed: &[String]) -> Result<Vec<String>, OAuthError> {
    let Some(requested) = requested else {
        return Ok(Vec::new());
    };
    let mut granted = Vec::new();
    for s in requested.split(' ').filter(|s| !s.is_empty()) {
        if !allowed.iter().any(|a| a == s) {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                format!(
                    "scope `{}` is not allowed for this client",
                    s.chars().take(64).collect::<String>()
                ),
            ));
        }
        if !granted.iter().any(|g| g == s) {
            granted.push(s.to_string());
        }
    }
    Ok(granted)
}
