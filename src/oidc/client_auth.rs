//! Client authentication at the token, introspection and revocation endpoints
//! (RFC 6749 §2.3.1): `client_secret_basic`, `client_secret_post`, `private_key_jwt`
//! (`client_assertion.rs`), and `none` for public clients. Basic credentials are form-urlencoded before base64 and are decoded as such, so
//! secrets holding `+ % : /` work. Secrets are compared in constant time.
//!
//! Cost is bounded: a keyed-digest secret costs microseconds; an argon2id `secret_hash` is
//! verified at most once per request, through the bounded verifier (a full queue is a fast
//! `503`). Failed authentications are counted per client address and client id (and per
//! address over all clients, more generously): past the budget, every attempt under it gets
//! `429` before any check, so the answer never tells a guesser that a secret was right.
//! Someone failing with a client's id from another address does not touch that client.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header};
use base64::Engine as _;

use super::clients::{CheapCheck, Client, ClientRegistry};
use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use super::throttle::{Budgets, Rule};
use crate::audit::{Audit, Event, Kind};
use crate::clock::Clock;
use crate::config::AuthMethod;
use crate::metrics::Metrics;
use crate::password::PasswordVerifier;
use crate::server::ClientAddr;

/// Failed client authentications allowed per client address and client id.
pub const FAILURES_PER_CLIENT_AND_ADDRESS: Rule = Rule {
    window: 300,
    limit: 20,
};
/// ... and per client address, over every client id (unknown ones included).
pub const FAILURES_PER_ADDRESS: Rule = Rule {
    window: 300,
    limit: 100,
};

/// What client authentication needs: the clients, the argon2 verifier, the failure
/// counters and the clock.
pub struct ClientAuth {
    pub registry: Arc<ClientRegistry>,
    pub metrics: Arc<Metrics>,
    pub audit: Arc<Audit>,
    pub verifier: Arc<PasswordVerifier>,
    pub budgets: Arc<Budgets>,
    pub clock: Arc<dyn Clock>,
    /// `private_key_jwt` assertions: their keys and the replay record.
    pub assertions: Arc<super::client_assertion::Assertions>,
}

/// A request from an authenticated client, with its remaining form parameters.
#[derive(Debug)]
pub struct ClientRequest {
    pub client: Arc<Client>,
    pub method: AuthMethod,
    /// The id of the secret it authenticated with (none for public clients).
    pub secret_id: Option<String>,
    pub params: Params,
    pub addr: ClientAddr,
}

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
fn argon2_candidate<'a>(decoded: &'a str, raw: Option<&'a str>) -> &'a str {
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

fn budget_keys(addr: ClientAddr, client_id: Option<&str>) -> Vec<(String, Rule)> {
    let addr = addr.budget_key();
    vec![
        (
            format!("client-auth:{addr}\n{}", client_id.unwrap_or("?")),
            FAILURES_PER_CLIENT_AND_ADDRESS,
        ),
        (format!("client-auth:{addr}"), FAILURES_PER_ADDRESS),
    ]
}

impl ClientAuth {
    /// Checks a `private_key_jwt` assertion under a reservation already taken. Returns the
    /// digest of its `jti`.
    async fn check_assertion(
        &self,
        client: &Client,
        assertion: &str,
        reservation: super::throttle::Reservation<'_>,
        fail: impl Fn() -> OAuthError,
    ) -> Result<String, OAuthError> {
        match self.assertions.check(client, assertion).await {
            Ok(jti) => {
                reservation.succeed(&[], self.clock.now());
                self.metrics
                    .client_auth(client.id(), Some("private_key_jwt"));
                Ok(jti)
            }
            Err("storage_unavailable") => {
                reservation.release();
                Err(OAuthError::new(
                    ErrorCode::TemporarilyUnavailable,
                    "the server's storage is unavailable; try again",
                )
                .with_retry_after(2))
            }
            Err(reason) => {
                reservation.fail(self.clock.now());
                self.metrics.client_auth(client.id(), None);
                tracing::info!(client_id = client.id(), reason, "client assertion refused");
                self.audit.record(
                    Event::new(Kind::ClientAuth, "failure")
                        .client(client.id())
                        .detail("method", "private_key_jwt")
                        .detail("reason", reason),
                );
                Err(fail())
            }
        }
    }

    /// Checks a presented secret; when it fails, one look at storage first (the client may
    /// have been rotated on another node a moment ago). Returns the client as checked and
    /// the id of the secret that matched.
    async fn authenticate(
        &self,
        client: Arc<Client>,
        addr: ClientAddr,
        secret: &str,
        raw: Option<&str>,
        reservation: super::throttle::Reservation<'_>,
        fail: impl Fn() -> OAuthError,
    ) -> Result<(Arc<Client>, String), OAuthError> {
        let mut client = client;
        let mut checked = self
            .check_secret(&client, secret, raw, reservation, fail())
            .await;
        if matches!(&checked, Err(e) if e.code == ErrorCode::InvalidClient)
            && client.may_reread()
            && let Some(newer) = self.registry.load_one(client.id()).await
            && !Arc::ptr_eq(&newer, &client)
        {
            client = newer;
            let reservation = self.reserve(addr, Some(client.id()))?;
            checked = self
                .check_secret(&client, secret, raw, reservation, fail())
                .await;
        }
        self.observe(&client, checked.as_ref().ok().map(String::as_str));
        Ok((client, checked?))
    }

    /// A secret check counted (by the secret that matched), and a failure audited.
    fn observe(&self, client: &Client, matched: Option<&str>) {
        self.metrics.client_auth(client.id(), matched);
        if let Some(id) = matched {
            crate::audit::note_client_secret(id);
        } else {
            self.audit.record(
                Event::new(Kind::ClientAuth, "failure")
                    .client(client.id())
                    .detail("reason", "wrong_secret"),
            );
        }
    }

    fn throttled(&self, seconds: i64) -> OAuthError {
        OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "too many failed client authentications from this address; try again later",
        )
        .with_status(StatusCode::TOO_MANY_REQUESTS)
        .with_retry_after(seconds)
    }

    /// Reserves an attempt for `client_id` (`None`: an unknown one) from `addr`.
    fn reserve(
        &self,
        addr: ClientAddr,
        client_id: Option<&str>,
    ) -> Result<super::throttle::Reservation<'_>, OAuthError> {
        self.budgets
            .reserve(budget_keys(addr, client_id), self.clock.now())
            .map_err(|r| self.throttled(r.wait))
    }

    /// Checks `decoded` (and `raw`, the Basic form as sent) against the client's live
    /// secrets, under a reservation already taken. Returns the id of the secret that matched.
    async fn check_secret(
        &self,
        client: &Client,
        decoded: &str,
        raw: Option<&str>,
        reservation: super::throttle::Reservation<'_>,
        fail: OAuthError,
    ) -> Result<String, OAuthError> {
        let now = self.clock.now();
        let mut needs_argon2 = false;
        for candidate in std::iter::once(decoded).chain(raw.filter(|r| *r != decoded)) {
            match client.cheap_check(candidate, now) {
                CheapCheck::Match(id) => {
                    reservation.succeed(&[], now);
                    return Ok(id);
                }
                CheapCheck::NoMatch => {}
                CheapCheck::NeedsArgon2 => needs_argon2 = true,
            }
        }
        let hashes = if needs_argon2 {
            client.argon2_hashes(now)
        } else {
            Vec::new()
        };
        let candidate = argon2_candidate(decoded, raw);
        for (slot, phc) in hashes {
            match self.verifier.verify(candidate, &phc).await {
                Ok(true) => {
                    reservation.succeed(&[], self.clock.now());
                    return Ok(client.remember_verified(slot, candidate));
                }
                Ok(false) => {}
                Err(crate::password::Busy) => {
                    reservation.release();
                    return Err(OAuthError::new(
                        ErrorCode::TemporarilyUnavailable,
                        "the server is busy verifying secrets; try again shortly",
                    )
                    .with_retry_after(1));
                }
            }
        }
        reservation.fail(self.clock.now());
        Err(fail)
    }
}

/// The credentials a token-style request presents, by the one method it used.
struct Presented {
    id: String,
    secret: Option<String>,
    /// A `private_key_jwt` client assertion.
    assertion: Option<String>,
    method: AuthMethod,
    /// The Basic secret as sent, before form-decoding.
    raw_basic_secret: Option<String>,
}

fn presented(
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

impl<S> FromRequest<S> for ClientRequest
where
    S: Send + Sync,
    Arc<ClientAuth>: FromRef<S>,
{
    type Rejection = OAuthError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let Ok(addr) = ClientAddr::from_request_parts(&mut parts, state).await;
        let authorization = parts
            .headers
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().map(str::to_owned));
        let mut params = Params::from_request(Request::from_parts(parts, body), state).await?;
        let auth = Arc::<ClientAuth>::from_ref(state);

        let Presented {
            id,
            secret,
            assertion,
            method,
            raw_basic_secret,
        } = presented(authorization, &mut params)?;
        let basic_used = method == AuthMethod::ClientSecretBasic;
        // One answer for every way of failing, so that it tells nothing about the client.
        let fail = || {
            OAuthError::invalid_client("client authentication failed")
                .with_basic_challenge(basic_used)
        };

        let client = auth.registry.find(&id).await;
        // Every attempt that presents a secret, or names an unknown client, is counted, and
        // refused unchecked once its budget is spent.
        let counted = secret.is_some() || assertion.is_some() || client.is_none();
        let reservation = if counted {
            Some(auth.reserve(addr, client.as_ref().map(|c| c.id()))?)
        } else {
            None
        };
        let Some(client) = client else {
            if let Some(r) = reservation {
                r.fail(auth.clock.now());
            }
            return Err(fail());
        };
        if !client.accepts_method(method) {
            tracing::debug!(
                client_id = ?id,
                method = method.as_str(),
                public = client.is_public(),
                "client used an authentication method it may not use"
            );
            if let Some(r) = reservation {
                r.fail(auth.clock.now());
            }
            return Err(fail());
        }
        let (client, secret_id) = match (secret, assertion, reservation) {
            (_, Some(assertion), Some(reservation)) => {
                let jti = auth
                    .check_assertion(&client, &assertion, reservation, fail)
                    .await?;
                (client, Some(jti))
            }
            (Some(secret), _, Some(reservation)) => {
                let raw = raw_basic_secret.as_deref().filter(|_| basic_used);
                let (client, id) = auth
                    .authenticate(client, addr, &secret, raw, reservation, fail)
                    .await?;
                (client, Some(id))
            }
            _ => (client, None),
        };
        Ok(Self {
            client,
            method,
            secret_id,
            params,
            addr,
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
