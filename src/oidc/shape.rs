//! The token-shape hook: who may change what a token says about a person beyond what the
//! OP releases by scope. A real provider has no shape ([`PlainShape`]); the mock's personas
//! make tokens look like Okta's or Entra ID's through it.

use serde_json::{Map, Value};

use crate::federation::Identity;
use crate::protocol::Subject;

/// Per-token claims a shape adds or replaces.
#[derive(Debug, Default)]
pub struct Shaped {
    /// The `sub` put in tokens (and returned by userinfo).
    pub sub: Subject,
    pub id_token: Map<String, Value>,
    pub access_token: Map<String, Value>,
    /// ID-token claims to leave out (e.g. `groups` on overage).
    pub drop: Vec<&'static str>,
}

impl Shaped {
    /// Nothing changed: the identity's own `sub`.
    pub fn plain(identity: &Identity) -> Self {
        Self {
            sub: identity.sub.clone(),
            ..Self::default()
        }
    }
}

pub trait TokenShape: Send + Sync {
    /// What tokens issued to `client_id` for `identity` say besides the released claims.
    fn shape(&self, identity: &Identity, client_id: &str, scopes: &[String]) -> Shaped;

    /// The identity's key (the `sub` it was stored under) from an access token's `sub` and
    /// other claims: the inverse of a per-client `sub`.
    fn identity_key<'a>(&self, sub: &'a str, _claims: &'a Map<String, Value>) -> &'a str {
        sub
    }
}

/// A real provider's tokens: the identity as it is.
pub struct PlainShape;

impl TokenShape for PlainShape {
    fn shape(&self, identity: &Identity, _client_id: &str, _scopes: &[String]) -> Shaped {
        Shaped::plain(identity)
    }
}
