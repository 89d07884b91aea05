//! What a token exchange may reach (RFC 8693 §2.1): the `audience` and `resource`
//! parameters, each among the client's `token_exchange.audiences`.

use crate::config::TokenExchangePolicy;
use crate::oidc::client_auth::ClientRequest;
use crate::oidc::error::{ErrorCode, OAuthError};

pub const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The audiences asked for, each one the policy allows; at least one when `required`.
pub fn targets(
    req: &ClientRequest,
    policy: &TokenExchangePolicy,
    required: bool,
) -> Result<Vec<String>, OAuthError> {
    let mut out: Vec<String> = Vec::new();
    let params = &req.params;
    for (t, is_uri) in params
        .all("audience")
        .iter()
        .map(|a| (a, false))
        .chain(params.all("resource").iter().map(|r| (r, true)))
    {
        let uri_ok = !is_uri || url::Url::parse(t).is_ok_and(|u| u.fragment().is_none());
        let allowed = policy.audiences.iter().any(|a| a == t || a == "*");
        if !uri_ok || !allowed {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                format!(
                    "this client may not exchange tokens for `{}`",
                    t.chars().take(128).collect::<String>()
                ),
            ));
        }
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    if out.is_empty() && required {
        return Err(OAuthError::invalid_request(
            "name the target: audience or resource",
        ));
    }
    Ok(out)
}
