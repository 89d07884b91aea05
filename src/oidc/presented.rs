//! What a token-style request presents to authenticate its client, read before anything is
//! checked (RFC 6749 §2.3.1, RFC 7521 §4.2): HTTP Basic (form-urlencoded before base64),
//! `client_id` with `client_secret` in the body, a client assertion, or a bare `client_id`;
//! exactly one method.

use base64::Engine as _;

use super::error::OAuthError;
use super::params::Params;
use crate::config::AuthMethod;

/// Decodes `Basic base64(urlencode(id):urlencode(secret))`. Also returns the secret as sent,
/// undecoded: many clients (`curl -u`, for one) skip the urlencoding that RFC 6749 asks for.
pub fn parse_basic(value: &str) -> Option<(String, String, String)> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    let decode = |s: &str| -> Option<String> {
        let spaced = s.replace('+', " ");
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8()
            .ok()
            .map(|c| c.into_owned())
    };
    let id = decode(id)?;
    (!id.is_empty()).then_some(())?;
    Some((id, decode(secret)?, secret.to_string()))
}

/// For the one argon2id verification a Basic secret gets: the decoded form when the client
/// visibly encoded it (`%XX`), else the form as sent (`curl -u` sends `+` literally).
pub(super) fn argon2_candidate<'a>(decoded: &'a str, raw: Option<&'a str>) -> &'a str {
    match raw {
        Some(raw) if raw != decoded && !has_percent_escape(raw) => raw,
        _ => decoded,
    }
}

fn has_percent_escape(s: &str) -> bool {
    s.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
}

/// The credentials a token-style request presents, by the one method it used.
pub(super) struct Presented {
    pub(super) id: String,
    pub(super) secret: Option<String>,
    /// A `private_key_jwt` client assertion.
    pub(super) assertion: Option<String>,
    pub(super) method: AuthMethod,
    /// The Basic secret as sent, before form-decoding.
    pub(super) raw_basic_secret: Option<String>,
}

pub(super) fn presented(
    authorization: Option<Result<String, axum::http::header::ToStrError>>,
    params: &mut Params,
) -> Result<Presented, OAuthError> {
    let not_basic = || {
        OAuthError::invalid_client("the Authorization header is not valid HTTP Basic")
            .with_basic_challenge(true)
    };
    let basic = match authorization {
        None => None,
        Some(Ok(v)) => Some(parse_basic(&v).ok_or_else(not_basic)?),
        Some(Err(_)) => return Err(not_basic()),
    };
    let body_id = params.take("client_id");
    let body_secret = params.take("client_secret");
    if let Some(kind) = params.take("client_assertion_type") {
        return presented_assertion(
            kind,
            basic.is_some() || body_secret.is_some(),
            body_id,
            params,
        );
    }
    let raw_basic_secret = basic.as_ref().map(|(_, _, raw)| raw.clone());
    let (id, secret, method) = match (basic, body_id, body_secret) {
        (Some(_), _, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not both Basic and client_secret",
            ));
        }
        (Some((id, _, _)), Some(body_id), None) if body_id != id => {
            return Err(OAuthError::invalid_client(
                "client_id does not match the Basic credentials",
            )
            .with_basic_challenge(true));
        }
        (Some((id, secret, _)), _, None) => (id, Some(secret), AuthMethod::ClientSecretBasic),
        (None, Some(id), Some(secret)) => (id, Some(secret), AuthMethod::ClientSecretPost),
        (None, Some(id), None) => (id, None, AuthMethod::None),
        (None, None, _) => {
            return Err(OAuthError::invalid_client(
                "client authentication is required (HTTP Basic or client_id)",
            ));
        }
    };
    Ok(Presented {
        id,
        secret,
        assertion: None,
        method,
        raw_basic_secret,
    })
}

/// `client_assertion_type` and `client_assertion` (RFC 7521 §4.2), the only method used.
fn presented_assertion(
    kind: String,
    other_method: bool,
    body_id: Option<String>,
    params: &mut Params,
) -> Result<Presented, OAuthError> {
    if other_method {
        return Err(OAuthError::invalid_request(
            "use one client authentication method, not a client assertion and a secret",
        ));
    }
    if kind != super::client_assertion::ASSERTION_TYPE {
        return Err(OAuthError::invalid_client(
            "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ));
    }
    let assertion = params
        .take("client_assertion")
        .ok_or_else(|| OAuthError::invalid_request("client_assertion is required"))?;
    let claimed = super::client_assertion::claimed_client(&assertion);
    let id = match (body_id, claimed) {
        (Some(id), Some(sub)) if id != sub => {
            return Err(OAuthError::invalid_client(
                "client_id does not match the client assertion's sub",
            ));
        }
        (Some(id), _) | (None, Some(id)) => id,
        (None, None) => {
            return Err(OAuthError::invalid_client(
                "the client assertion names no client (sub)",
            ));
        }
    };
    Ok(Presented {
        id,
        secret: None,
        assertion: Some(assertion),
        method: AuthMethod::PrivateKeyJwt,
        raw_basic_secret: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(raw: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        // "a+b%:c/d" encoded as RFC 6749 §2.3.1 asks: + -> %2B, % -> %25, : -> %3A, / -> %2F.
        let header = basic("my%20app:a%2Bb%25%3Ac%2Fd");
        assert_eq!(
            parse_basic(&header),
            Some((
                "my app".into(),
                "a+b%:c/d".into(),
                "a%2Bb%25%3Ac%2Fd".into()
            ))
        );
    }

    #[test]
    fn one_argon2_candidate_whatever_the_encoding() {
        // RFC-encoded: the decoded form.
        assert_eq!(argon2_candidate("a+b", Some("a%2Bb")), "a+b");
        // curl -u with a literal plus: the form as sent.
        assert_eq!(argon2_candidate("a b", Some("a+b")), "a+b");
        assert_eq!(argon2_candidate("same", Some("same")), "same");
        assert_eq!(argon2_candidate("post", None), "post");
    }

    #[test]
    fn garbage_is_not_basic() {
        assert_eq!(parse_basic("Basic !!!"), None);
        assert_eq!(parse_basic("Bearer abc"), None);
        assert_eq!(parse_basic(&basic("no-colon")), None);
        assert_eq!(parse_basic(&basic(":secret")), None);
        assert_eq!(parse_basic("Basic"), None);
    }
}
