//! What an authorization grants (`Grant`): stored with the code, then with the refresh
//! family, and read back by every later grant. Plain data; its JSON is a stored contract.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::UnixTime;
use crate::federation::Identity;
use crate::protocol::{ClientId, RedirectUri, Subject};

/// What an authorization grants.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grant {
    pub sub: Subject,
    pub client_id: ClientId,
    pub scope: Vec<String>,
    pub redirect_uri: RedirectUri,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: UnixTime,
    pub sid: Option<String>,
    /// The `claims` request parameter.
    pub claims: Option<Value>,
    pub identity: Identity,
    /// Resource indicators granted (RFC 8707); the access tokens' `aud` is among them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// Delegation (RFC 8693 §4.1): who acts for `sub`, as the `act` claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Value>,
}
