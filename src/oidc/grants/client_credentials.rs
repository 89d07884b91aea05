//! The `client_credentials` grant (RFC 6749 §4.4): a confidential client gets a JWT access
//! token (RFC 9068) about itself: `sub` is its client_id. Its `aud` is the `resource`s it
//! names (RFC 8707), each one it may ask for, else its configured audience.

use super::issue::{Grants, TokenResponse, check_scope};
use crate::oidc::client_auth::ClientRequest;
use crate::oidc::error::OAuthError;
use crate::oidc::tokens::AccessTokenRequest;

pub async fn exchange(grants: &Grants, req: ClientRequest) -> Result<TokenResponse, OAuthError> {
    let client = &req.client;
    if client.is_public() {
        return Err(OAuthError::new(
            crate::oidc::error::ErrorCode::UnauthorizedClient,
            "client_credentials needs a confidential client",
        ));
    }
    let allowed = client.config.scopes.clone().unwrap_or_default();
    let granted = match req.params.get("scope") {
        Some(s) => check_scope(Some(s), &allowed)?,
        None => allowed,
    };
    let scope = granted.join(" ");
    let resources = crate::oidc::resource::check_at_token(client, req.params.all("resource"))?;
    let audience = if resources.is_empty() {
        client.config.audience.clone()
    } else {
        resources
    };
    let lifetime = grants.access_lifetime(client);
    let issued = grants
        .tokens
        .issue_access_token(AccessTokenRequest {
            client_id: client.id(),
            sub: client.id(),
            scope: Some(&scope),
            audience,
            lifetime,
            auth_time: None,
            sid: None,
            userinfo_claims: None,
            extra: Default::default(),
            issued_at: None,
            jti: None,
        })
        .map_err(|e| OAuthError::internal(&e))?;
    grants.issued(
        "token_issued",
        "client_credentials",
        client.id(),
        client.id(),
        &issued.claims.jti,
        lifetime,
    );
    Ok(TokenResponse {
        access_token: issued.token,
        token_type: "Bearer".into(),
        expires_in: lifetime,
        scope: (!scope.is_empty()).then_some(scope),
        refresh_token: None,
        id_token: None,
        issued_token_type: None,
    })
}
