//! The token endpoint's grants (RFC 6749 §4): the client is already authenticated; each
//! grant checks what it needs and issues tokens.

mod client_credentials;

use std::sync::Arc;

use serde::Serialize;

use super::client_auth::ClientRequest;
use super::error::{ErrorCode, OAuthError};
use super::tokens::TokenService;
use crate::config::{GrantType, TokenLifetimes};

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

pub struct Grants {
    pub tokens: Arc<TokenService>,
    pub lifetimes: TokenLifetimes,
}

impl Grants {
    pub async fn exchange(&self, req: ClientRequest) -> Result<TokenResponse, OAuthError> {
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
            GrantType::ClientCredentials => client_credentials::exchange(self, req).await,
            GrantType::AuthorizationCode | GrantType::RefreshToken => Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                format!("grant_type `{}` is not supported yet", grant.as_str()),
            )),
        }
    }
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
