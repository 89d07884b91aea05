//! A client's settings for agents, CLIs and APIs, as plain data (read and checked by
//! `agents_section.rs`): resource indicators, token exchange, `private_key_jwt` keys,
//! back-channel logout.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The token types token exchange takes as a subject or actor (RFC 8693 §3).
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";

/// At most this many keys in a client's `jwks` (and read from its `jwks_uri`).
pub const MAX_CLIENT_KEYS: usize = 16;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientAgents {
    /// Resource indicators this client may ask for (`resource`); each becomes an access
    /// token's `aud`. `*`: any absolute URI.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_exchange: Option<TokenExchangePolicy>,
    /// `private_key_jwt`: the client's public keys, inline (a JWK Set) ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    /// ... or where to fetch them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// The one algorithm its assertions may use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
}

impl Default for ClientAgents {
    fn default() -> Self {
        Self {
            resources: Vec::new(),
            token_exchange: None,
            jwks: None,
            jwks_uri: None,
            token_endpoint_auth_signing_alg: None,
            backchannel_logout_uri: None,
            backchannel_logout_session_required: true,
        }
    }
}

/// Who may exchange tokens through this client, and for what (RFC 8693).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenExchangePolicy {
    /// Audiences (the `audience` or `resource` parameter) a token may be exchanged for;
    /// `*`: any.
    pub audiences: Vec<String>,
    /// The subject token types taken; the default is this provider's access tokens.
    pub subject_token_types: Vec<String>,
    /// Connectors whose upstream tokens (ID or access tokens, validated by the connector) may
    /// be exchanged for this provider's, with `connector_id` in the request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connectors: Vec<String>,
}
