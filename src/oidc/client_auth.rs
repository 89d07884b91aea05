//! Client authentication at the token, introspection and revocation endpoints
//! (RFC 6749 §2.3.1): `client_secret_basic`, `client_secret_post`, and `none` for public
//! clients. Basic credentials are form-urlencoded before base64 and are decoded as such, so
//! secrets holding `+ % : /` work. Secrets are compared in constant time.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequest, Request};
use axum::http::header;
use base64::Engine as _;

use super::clients::{Client, ClientRegistry};
use super::error::OAuthError;
use super::params::Params;
use crate::config::AuthMethod;

/// A request from an authenticated client, with its remaining form parameters.
#[derive(Debug)]
pub struct ClientRequest {
    pub client: Arc<Client>,
    pub method: AuthMethod,
    pub params: Params,
}

/// Decodes `Basic base64(urlencode(id):urlencode(secret))`. Also returns the secret as sent,
/// undecoded: many clients (`curl -u`, for one) skip the urlencoding that RFC 6749 asks for.
fn parse_basic(value: &str) -> Option<(String, String, String)> {
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

impl<S> FromRequest<S> for ClientRequest
where
    S: Send + Sync,
    Arc<ClientRegistry>: FromRef<S>,
{
    type Rejection = OAuthError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let authorization = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().map(str::to_owned));
        let mut params = Params::from_request(req, state).await?;
        let registry = Arc::<ClientRegistry>::from_ref(state);

        let basic = match authorization {
            None => None,
            Some(Ok(v)) => Some(parse_basic(&v).ok_or_else(|| {
                OAuthError::invalid_client("the Authorization header is not valid HTTP Basic")
                    .with_basic_challenge(true)
            })?),
            Some(Err(_)) => {
                return Err(OAuthError::invalid_client(
                    "the Authorization header is not valid HTTP Basic",
                )
                .with_basic_challenge(true));
            }
        };
        let body_id = params.take("client_id");
        let body_secret = params.take("client_secret");

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
        let basic_used = method == AuthMethod::ClientSecretBasic;
        let fail =
            |why: &'static str| OAuthError::invalid_client(why).with_basic_challenge(basic_used);

        let client = registry
            .get(&id)
            .ok_or_else(|| fail("client authentication failed"))?;
        if !client.accepts_method(method) {
            return Err(fail(if client.is_public() {
                "this public client authenticates with client_id only"
            } else if method == AuthMethod::None {
                "this confidential client must authenticate with its secret"
            } else {
                "this client must use its registered token_endpoint_auth_method"
            }));
        }
        if let Some(secret) = secret {
            let ok = client.verify_secret(&secret).await
                || match raw_basic_secret {
                    Some(raw) if raw != secret => client.verify_secret(&raw).await,
                    _ => false,
                };
            if !ok {
                return Err(fail("client authentication failed"));
            }
        }
        Ok(Self {
            client,
            method,
            params,
        })
    }
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
    fn garbage_is_not_basic() {
        assert_eq!(parse_basic("Basic !!!"), None);
        assert_eq!(parse_basic("Bearer abc"), None);
        assert_eq!(parse_basic(&basic("no-colon")), None);
        assert_eq!(parse_basic(&basic(":secret")), None);
        assert_eq!(parse_basic("Basic"), None);
    }
}
