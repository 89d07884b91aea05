//! The client authentication of the token requests a connector sends (with
//! `private_key_jwt`, an assertion for the upstream's token endpoint, `assertion.rs`), and
//! an upstream access token vouched for by its userinfo endpoint (token exchange).

use openidconnect::core::CoreProviderMetadata;

use super::Upstream;
use super::assertion::ASSERTION_TYPE;
use super::error::UpstreamError;
use serde_json::Value;

impl Upstream {
    /// `client_assertion_type` and `client_assertion` for a request to the token endpoint
    /// of `metadata`, with private_key_jwt; none otherwise.
    pub(super) fn assertion_params(
        &self,
        metadata: &CoreProviderMetadata,
    ) -> Result<Vec<(&'static str, String)>, UpstreamError> {
        let Some(signer) = &self.assertion else {
            return Ok(Vec::new());
        };
        let token_url = metadata
            .token_endpoint()
            .ok_or_else(|| UpstreamError::Invalid("discovery names no token endpoint".into()))?;
        let assertion = signer.sign(token_url.as_str(), self.clock.now())?;
        Ok(vec![
            ("client_assertion_type", ASSERTION_TYPE.to_string()),
            ("client_assertion", assertion),
        ])
    }

    /// The claims userinfo answers for `access_token` (which must name a `sub`): the
    /// upstream vouches for a token it issued.
    pub async fn userinfo_for(&self, access_token: &str) -> Result<Value, UpstreamError> {
        let (metadata, _) = self.cached(false).await?;
        let endpoint = metadata.userinfo_endpoint().ok_or_else(|| {
            UpstreamError::Invalid("the upstream has no userinfo endpoint".into())
        })?;
        let (claims, _) = self
            .get_json("userinfo", endpoint.as_str(), Some(access_token))
            .await?;
        if claims["sub"].as_str().is_none_or(str::is_empty) {
            return Err(UpstreamError::Invalid("userinfo names no subject".into()));
        }
        Ok(claims)
    }
}
