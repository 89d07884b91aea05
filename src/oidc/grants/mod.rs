//! The token endpoint's grants (RFC 6749 §4): the client is already authenticated; each
//! grant checks what it needs and issues tokens through [`Grants::issue`] (`issue.rs`).

mod authorization_code;
mod client_credentials;
mod device_code;
mod exchange_target;
mod issue;
mod refresh_token;
mod token_exchange;
mod upstream_exchange;

pub use issue::{Grants, IssuedTokens, Overrides, TokenResponse, UpstreamLocks, check_scope};

use crate::config::GrantType;
use crate::oidc::client_auth::ClientRequest;
use crate::oidc::error::{ErrorCode, OAuthError};

/// Runs the grant a token request names.
pub async fn exchange(grants: &Grants, req: ClientRequest) -> Result<TokenResponse, OAuthError> {
    if !grants.keys.wait_active().await {
        return Err(OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "no signing key is available yet",
        ));
    }
    let grant_type = req.params.require("grant_type")?;
    let grant = GrantType::parse(grant_type).ok_or_else(|| {
        OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            format!(
                "grant_type `{}` is not supported",
                grant_type.chars().take(64).collect::<String>()
            ),
        )
    })?;
    if !req.client.allows_grant(grant) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            format!("this client may not use the {} grant", grant.as_str()),
        ));
    }
    match grant {
        GrantType::ClientCredentials => client_credentials::exchange(grants, req).await,
        GrantType::AuthorizationCode => authorization_code::exchange(grants, req).await,
        GrantType::RefreshToken => refresh_token::exchange(grants, req).await,
        GrantType::TokenExchange => token_exchange::exchange(grants, req).await,
        GrantType::DeviceCode => device_code::exchange(grants, req).await,
    }
}
