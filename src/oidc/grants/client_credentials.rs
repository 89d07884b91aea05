//! The `client_credentials` grant (RFC 6749 §4.4): a confidential client gets a JWT access
//! token (RFC 9068) about itself: `sub` is its client_id. Its `aud` is the `resource`s it
//! names (RFC 8707), each one it may ask for, else its configured audience.

use super::issue::{Grants, TokenResponse, check_scope};
use crate::oidc::client_auth::ClientRequest;
use crate::oidc::error::OAuthError;

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
    let resources = crate::oidc::resource::check_at_token(client, req.params.all("resource"))?;
    let audience = if resources.is_empty() {
        client.config.audience.clone()
    } else {
        resources
    };
    let lifetime = grants.access_lifetime(client);
    let issued = grants.machine_token(
        client,
        client.id(),
        &granted,
        audience,
        lifetime,
        Default::default(),
    )?;
    grants.issued(
        "token_issued",
        "client_credentials",
        client.id(),
        client.id(),
        &issued.access_jti,
        lifetime,
    );
    Ok(issued.response)
}
