//! Resource indicators (RFC 8707): which resources a client may ask for, and what a token
//! request may narrow an authorization to. A resource becomes an access token's `aud`.

use super::clients::Client;
use super::error::{ErrorCode, OAuthError};

/// An absolute URI without a fragment (RFC 8707 §2).
fn is_resource(uri: &str) -> bool {
    url::Url::parse(uri).is_ok_and(|u| u.fragment().is_none())
}

/// Whether `client` may ask for `uri`: it lists it, or lists `*` (mock mode's client).
pub fn allowed(client: &Client, uri: &str) -> bool {
    let list = &client.config.agents.resources;
    is_resource(uri) && list.iter().any(|r| r == uri || r == "*")
}

fn refused(uri: &str) -> String {
    format!(
        "resource `{}` is not one this client may ask for",
        uri.chars().take(128).collect::<String>()
    )
}

/// The resources a request names, each one the client may ask for; else why not.
pub fn check_requested(client: &Client, requested: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for uri in requested {
        if !allowed(client, uri) {
            return Err(refused(uri));
        }
        if !out.contains(uri) {
            out.push(uri.clone());
        }
    }
    Ok(out)
}

/// What a token request may have of an authorization's resources (RFC 8707 §2.2): the
/// ones it names, each granted, or, naming none, all of them.
pub fn narrow(granted: &[String], requested: &[String]) -> Result<Vec<String>, OAuthError> {
    if requested.is_empty() {
        return Ok(granted.to_vec());
    }
    let mut out: Vec<String> = Vec::new();
    for uri in requested {
        if !granted.contains(uri) {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                format!(
                    "resource `{}` was not granted by the authorization",
                    uri.chars().take(128).collect::<String>()
                ),
            ));
        }
        if !out.contains(uri) {
            out.push(uri.clone());
        }
    }
    Ok(out)
}

/// What a token request may have of an authorization's `granted` resources: [`narrow`],
/// over those the client may still ask for (the config may have dropped one since).
pub fn narrow_for(
    client: &Client,
    granted: &[String],
    requested: &[String],
) -> Result<Vec<String>, OAuthError> {
    let current: Vec<String> = granted
        .iter()
        .filter(|r| allowed(client, r))
        .cloned()
        .collect();
    narrow(&current, requested)
}

/// [`check_requested`] as a token endpoint error.
pub fn check_at_token(client: &Client, requested: &[String]) -> Result<Vec<String>, OAuthError> {
    check_requested(client, requested).map_err(|d| OAuthError::new(ErrorCode::InvalidTarget, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_request_narrows_to_granted_resources_only() {
        let granted = vec![
            "https://a.example".to_string(),
            "https://b.example".to_string(),
        ];
        assert_eq!(narrow(&granted, &[]).expect("all"), granted);
        assert_eq!(
            narrow(&granted, &["https://b.example".into()]).expect("one"),
            ["https://b.example"]
        );
        let e = narrow(&granted, &["https://c.example".into()]).expect_err("not granted");
        assert_eq!(e.code, ErrorCode::InvalidTarget);
        assert!(narrow(&[], &["https://a.example".into()]).is_err());
    }

    #[test]
    fn resources_are_absolute_without_fragment() {
        assert!(is_resource("https://api.example/orders"));
        assert!(is_resource("urn:example:api"));
        assert!(!is_resource("api"));
        assert!(!is_resource("https://api.example/#x"));
    }
}
