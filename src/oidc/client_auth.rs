//! Client authentication at the token, introspection and revocation endpoints
//! (RFC 6749 §2.3.1): `client_secret_basic`, `client_secret_post`, `private_key_jwt`
//! (`client_assertion.rs`), and `none` for public clients; what a request presents is read by
//! `presented.rs`. Basic credentials are form-urlencoded before base64 and are decoded as such, so
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

use super::clients::{CheapCheck, Client, ClientRegistry};
use super::error::{ErrorCode, OAuthError};
use super::params::Params;
pub use super::presented::parse_basic;
use super::presented::{Presented, argon2_candidate, presented};
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
