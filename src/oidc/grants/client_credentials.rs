//! The `client_credentials` grant (RFC 6749 §4.4): a confidential client gets a JWT access
//! token (RFC 9068) about itself: `sub` is its client_id.

use super::{Grants, TokenResponse, check_scope};
use crate::oidc::client_auth::ClientRequest;
use crate::oidc::error::OAuthError;
use crate::oidc::tokens::AccessTokenRequest;

pub async fn exchange(grants: &Grants, req: ClientRequest) -> Result<TokenResponse, OAuthError> {
    let client = &req.client;
    if client.is_public() {
        return Err(OAuthError::new(
            super::ErrorCode::UnauthorizedClient,
            "client_credentials needs a confidential client",
        ));
    }
    let allowed = client.config.scopes.clone().unwrap_or_default();
    let granted = match req.params.get("scope") {
        Some(s) => check_scope(Some(s), &allowed)?,
        None => allowed,
    };
    let scope = granted.join(" ");
    let lifetime = client
        .config
        .tokens
        .access_token
        .unwrap_or(grants.lifetimes.access_token)
        .get();
    let issued = grants
        .tokens
        .issue_access_token(AccessTokenRequest {
            client_id: client.id(),
            sub: client.id(),
            scope: Some(&scope),
            audience: client.config.audience.clone(),
            lifetime,
            auth_time: None,
            sid: None,
        })
        .map_err(|e| OAuthError::internal(&e))?;
    tracing::info!(
        event = "token_issued",
        grant_type = "client_credentials",
        client_id = client.id(),
        sub = client.id(),
        jti_hash = %crate::secret::sha256_b64url(issued.claims.jti.as_bytes()),
        expires_in = lifetime,
        "access token issued"
    );
    Ok(TokenResponse {
        access_token: issued.token,
        token_type: "Bearer",
        expires_in: lifetime,
        scope: (!scope.is_empty()).then_some(scope),
        refresh_token: None,
        id_token: None,
    })
}
