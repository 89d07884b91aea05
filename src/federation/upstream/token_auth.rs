//! The client authentication of the token requests a connector sends: with
//! `private_key_jwt`, an assertion for the upstream's token endpoint (`assertion.rs`).

use openidconnect::core::CoreProviderMetadata;

use super::Upstream;
use super::assertion::ASSERTION_TYPE;
use super::error::UpstreamError;

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
}
