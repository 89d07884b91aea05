//! How an upstream exchange failed.

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Down, slow or unreachable: try again later.
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
    /// It answered, but with something unusable or invalid.
    #[error("the identity provider's answer is not valid: {0}")]
    Invalid(String),
    /// Signed with a key the cached JWKS does not have (the upstream may have rotated).
    #[error("the identity provider's answer is signed with a key it does not publish: {0}")]
    UnknownKey(String),
    /// It refused (an OAuth error such as `invalid_grant` or `access_denied`).
    #[error("the identity provider refused: {0}")]
    Refused(String),
}
