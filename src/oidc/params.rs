//! Form parameters of the OAuth endpoints, parsed strictly (RFC 6749 §3.1, §3.2): the body
//! must be `application/x-www-form-urlencoded`, bounded in size, and no parameter may appear
//! twice, but for the ones defined to repeat (`resource`, RFC 8707 §2; `audience`,
//! RFC 8693 §2.1). Empty values count as absent.

use std::collections::HashMap;

use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};

use super::error::OAuthError;

/// Largest request body the OAuth endpoints accept.
pub const MAX_BODY: usize = 64 * 1024;

/// Parameters that may be sent more than once.
pub const REPEATABLE: &[&str] = &["resource", "audience"];

/// At most this many values of a repeatable parameter.
pub const MAX_REPEATS: usize = 16;

#[derive(Default)]
pub struct Params(HashMap<String, String>, HashMap<String, Vec<String>>);

impl std::fmt::Debug for Params {
    // Values can be secrets, codes or tokens: print only the names.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Params {
    /// Parses urlencoded text; a repeated parameter is an `invalid_request`, even when one
    /// of its values is empty (RFC 6749 §3.1, §3.2). Empty values count as absent.
    pub fn parse(bytes: &[u8]) -> Result<Self, OAuthError> {
        let mut map = HashMap::new();
        let mut multi: HashMap<String, Vec<String>> = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        for (k, v) in form_urlencoded::parse(bytes) {
            if REPEATABLE.contains(&k.as_ref()) {
                let values = multi.entry(k.into_owned()).or_default();
                if values.len() >= MAX_REPEATS {
                    return Err(OAuthError::invalid_request(format!(
                        "at most {MAX_REPEATS} values of one parameter"
                    )));
                }
                if !v.is_empty() {
                    values.push(v.into_owned());
                }
                continue;
            }
            if !seen.insert(k.clone()) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter `{}` was sent more than once",
                    k.chars().take(64).collect::<String>()
                )));
            }
            if !v.is_empty() {
                map.insert(k.into_owned(), v.into_owned());
            }
        }
        Ok(Self(map, multi))
    }

    /// Every value of a repeatable parameter, in order.
    pub fn all(&self, name: &str) -> &[String] {
        self.1.get(name).map(Vec::as_slice).unwrap_or_default()
    }

    /// The length of every name and value together.
    pub fn total_len(&self) -> usize {
        let repeated: usize = self
            .1
            .iter()
            .map(|(k, vs)| vs.iter().map(|v| k.len() + v.len()).sum::<usize>())
            .sum();
        self.0.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() + repeated
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn take(&mut self, name: &str) -> Option<String> {
        self.0.remove(name)
    }

    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("missing parameter `{name}`")))
    }
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = OAuthError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !is_form {
            return Err(OAuthError::invalid_request(
                "Content-Type must be application/x-www-form-urlencoded",
            )
            .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        }
        let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY)
            .await
            .map_err(|_| {
                OAuthError::invalid_request(format!("request body exceeds {MAX_BODY} bytes"))
                    .with_status(StatusCode::PAYLOAD_TOO_LARGE)
            })?;
        Self::parse(&bytes)
    }
}

/// Form parameters of a browser-facing endpoint: like [`Params`], but a bad body is an HTML
/// page for the person, not a JSON error.
pub struct HtmlForm(pub Params);

impl<S: Send + Sync> FromRequest<S> for HtmlForm {
    type Rejection = axum::response::Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Params::from_request(req, state)
            .await
            .map(HtmlForm)
            .map_err(|e| {
                crate::web::message(
                    e.status,
                    "",
                    "Sign-in error",
                    &format!("The form could not be read: {}.", e.description),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused_and_empty_ones_ignored() {
        assert!(Params::parse(b"a=1&a=2").is_err());
        assert!(Params::parse(b"grant_type=&grant_type=client_credentials").is_err());
        let p = Params::parse(b"a=1&b=&c=x%2By+z").expect("parse");
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x+y z"));
        assert!(format!("{p:?}").contains('c') && !format!("{p:?}").contains("x+y"));
    }

    #[test]
    fn resource_and_audience_may_repeat() {
        let p = Params::parse(b"resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb&audience=x")
            .expect("parse");
        assert_eq!(p.all("resource"), ["https://a", "https://b"]);
        assert_eq!(p.all("audience"), ["x"]);
        assert!(p.all("scope").is_empty());
        assert_eq!(p.get("resource"), None, "read with all()");
        let many = "resource=https%3A%2F%2Fa&".repeat(MAX_REPEATS + 1);
        assert!(Params::parse(many.as_bytes()).is_err());
    }
}
