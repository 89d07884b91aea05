//! The upstream side of a connector, through the `openidconnect` crate: discovery, the
//! authorization URL (code + PKCE S256 + state + nonce), the code exchange, ID token
//! validation, userinfo, refresh, and (azure) the Graph group lookup.
//!
//! ID tokens are checked for signature through a cached JWKS (kept as long as the upstream's
//! `Cache-Control` says, refetched on an unknown `kid` at most once a minute), exact `iss`
//! (azure multi-tenant: the `{tenantid}` template filled in and the tenant allow-listed),
//! `aud`, `exp` and `iat` with a minute of leeway, `nonce`, and an algorithm allow-list that
//! never admits `none` or HMAC.

use std::sync::Arc;
use std::time::Duration;

use openidconnect::core::{CoreClient, CoreJsonWebKeySet, CoreProviderMetadata};
use openidconnect::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken, Nonce,
    OAuth2TokenResponse as _, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken,
    RequestTokenError, Scope, TokenResponse as _,
};
use serde_json::Value;

use crate::clock::{Clock, UnixTime};
use crate::config::{AuthMethod, ConnectorConfig, ConnectorKind};
use crate::metrics::Metrics;

pub mod assertion;
mod error;
pub mod github;
pub mod google;
mod graph;
mod http;
pub mod okta;
mod token_auth;
mod verify;
pub use error::UpstreamError;
pub use http::{CappedHttp, HttpError, MAX_RESPONSE};
use http::{max_age, read_capped};
pub use verify::{check_id_token, parse_discovery};

/// The largest Graph page read.
pub const MAX_GRAPH_PAGE: usize = 4 * 1024 * 1024;
/// An unknown `kid` refetches JWKS at most this often.
const JWKS_REFETCH_INTERVAL: i64 = 60;

struct Cached {
    metadata: CoreProviderMetadata,
    /// `authorization_response_iss_parameter_supported` (RFC 9207 §3).
    sends_iss: bool,
    jwks: CoreJsonWebKeySet,
    jwks_expires: UnixTime,
    jwks_fetched: UnixTime,
    metadata_fetched: UnixTime,
}

/// What a successful login or refresh upstream gave.
pub struct UpstreamLogin {
    /// ID-token claims, with userinfo claims added when `get_userinfo` is on.
    pub claims: Value,
    pub access_token: String,
    pub refresh_token: Option<String>,
}

/// The secrets of one upstream authorization request, kept until the callback. `Debug`
/// shows the connector only: the state, nonce and PKCE verifier never reach a log.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Pending {
    pub connector: String,
    pub state: String,
    pub nonce: String,
    pub verifier: String,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("connector", &self.connector)
            .finish_non_exhaustive()
    }
}

pub struct Upstream {
    pub config: ConnectorConfig,
    pub redirect_uri: String,
    http: CappedHttp,
    clock: Arc<dyn Clock>,
    cache: tokio::sync::Mutex<Option<Cached>>,
    metrics: Arc<Metrics>,
    /// `private_key_jwt`: signs the assertion each token request carries.
    assertion: Option<assertion::ClientAssertion>,
}

fn unavailable(e: impl std::fmt::Display) -> UpstreamError {
    UpstreamError::Unavailable(e.to_string())
}

impl Upstream {
    /// Fails when the HTTP client cannot be built (never falls back to one without the
    /// timeout and the redirect policy).
    pub fn new(
        config: ConnectorConfig,
        bridge_issuer: &str,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, UpstreamError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout.get().max(1) as u64))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| UpstreamError::Invalid(format!("cannot build the HTTP client: {e}")))?;
        let assertion = match &config.client_key {
            Some(k) => Some(assertion::ClientAssertion::new(
                &config.client_id,
                k.private_key.expose(),
                k.key_id.as_deref(),
                k.x5t.as_deref().zip(k.x5t_s256.as_deref()),
            )?),
            None => None,
        };
        Ok(Self {
            assertion,
            redirect_uri: format!("{bridge_issuer}/callback/{}", config.id),
            config,
            http: CappedHttp(http),
            clock,
            cache: tokio::sync::Mutex::new(None),
            metrics,
        })
    }

    /// Runs one request to the upstream's `endpoint`, counted and timed by result.
    async fn observed<T>(
        &self,
        endpoint: &'static str,
        request: impl std::future::Future<Output = Result<T, UpstreamError>>,
    ) -> Result<T, UpstreamError> {
        let start = std::time::Instant::now();
        let result = request.await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(UpstreamError::Unavailable(_)) => "unavailable",
            Err(UpstreamError::Refused(_)) => "refused",
            Err(UpstreamError::Invalid(_) | UpstreamError::UnknownKey(_)) => "invalid",
        };
        self.metrics
            .upstream(&self.config.id, endpoint, outcome, start.elapsed());
        result
    }

    /// Azure `common` / `organizations` / `consumers`: the issuer is a `{tenantid}` template.
    pub fn multi_tenant(&self) -> bool {
        self.config.kind == ConnectorKind::Azure
            && ["/common/", "/organizations/", "/consumers/"]
                .iter()
                .any(|t| self.config.issuer.contains(t))
    }

    async fn get_json(
        &self,
        endpoint: &'static str,
        url: &str,
        bearer: Option<&str>,
    ) -> Result<(Value, Option<i64>), UpstreamError> {
        self.observed(endpoint, self.get_json_capped(url, bearer, MAX_RESPONSE))
            .await
    }

    async fn get_json_capped(
        &self,
        url: &str,
        bearer: Option<&str>,
        cap: usize,
    ) -> Result<(Value, Option<i64>), UpstreamError> {
        let mut req = self.http.0.get(url).header("Accept", "application/json");
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(unavailable)?;
        let status = resp.status();
        let age = max_age(resp.headers());
        if status.is_server_error() {
            return Err(UpstreamError::Unavailable(format!(
                "{url} answered {status}"
            )));
        }
        if !status.is_success() {
            return Err(UpstreamError::Invalid(format!("{url} answered {status}")));
        }
        let bytes = read_capped(resp, cap).await.map_err(|e| match e {
            HttpError::Transport(e) => UpstreamError::Unavailable(e.to_string()),
            other => UpstreamError::Invalid(format!("{url}: {other}")),
        })?;
        let body = serde_json::from_slice::<Value>(&bytes)
            .map_err(|e| UpstreamError::Invalid(format!("{url}: not JSON ({e})")))?;
        Ok((body, age))
    }

    async fn fetch_jwks(&self, uri: &str) -> Result<(CoreJsonWebKeySet, i64), UpstreamError> {
        let (body, age) = self.get_json("jwks", uri, None).await?;
        let jwks = serde_json::from_value(body)
            .map_err(|e| UpstreamError::Invalid(format!("JWKS: {e}")))?;
        Ok((jwks, age.unwrap_or(300).clamp(0, 86_400)))
    }

    /// Discovery and JWKS, cached.
    async fn cached(
        &self,
        force_jwks: bool,
    ) -> Result<(CoreProviderMetadata, CoreJsonWebKeySet), UpstreamError> {
        let now = self.clock.now();
        let mut cache = self.cache.lock().await;
        let stale_metadata = cache
            .as_ref()
            .is_none_or(|c| now - c.metadata_fetched > 86_400);
        if stale_metadata {
            let url = format!("{}/.well-known/openid-configuration", self.config.issuer);
            let (body, _) = self.get_json("discovery", &url, None).await?;
            let (metadata, sends_iss) =
                parse_discovery(body, &self.config.issuer, self.multi_tenant())?;
            let (jwks, age) = self.fetch_jwks(metadata.jwks_uri().as_str()).await?;
            *cache = Some(Cached {
                metadata,
                sends_iss,
                jwks,
                jwks_expires: now + age,
                jwks_fetched: now,
                metadata_fetched: now,
            });
        } else if let Some(c) = cache.as_mut() {
            let due = now >= c.jwks_expires;
            let may_force = force_jwks && now - c.jwks_fetched >= JWKS_REFETCH_INTERVAL;
            if due || may_force {
                let (jwks, age) = self.fetch_jwks(c.metadata.jwks_uri().as_str()).await?;
                c.jwks = jwks;
                c.jwks_expires = now + age;
                c.jwks_fetched = now;
            }
        }
        let c = cache
            .as_ref()
            .ok_or_else(|| UpstreamError::Unavailable("no metadata".into()))?;
        Ok((c.metadata.clone(), c.jwks.clone()))
    }

    fn client(
        &self,
        metadata: CoreProviderMetadata,
    ) -> Result<
        openidconnect::core::CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        UpstreamError,
    > {
        let redirect = RedirectUrl::new(self.redirect_uri.clone())
            .map_err(|e| UpstreamError::Invalid(format!("redirect URI: {e}")))?;
        // With private_key_jwt, no secret: the client id goes in the body with the
        // assertion (`assertion_params`).
        let secret = (self.assertion.is_none())
            .then(|| ClientSecret::new(self.config.client_secret.expose().to_string()));
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            secret,
        )
        .set_redirect_uri(redirect);
        Ok(match self.config.token_endpoint_auth_method {
            AuthMethod::ClientSecretPost | AuthMethod::PrivateKeyJwt => {
                client.set_auth_type(AuthType::RequestBody)
            }
            _ => client.set_auth_type(AuthType::BasicAuth),
        })
    }

    /// The upstream issuer as the bridge expects to see it (template unfilled).
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// Whether `iss` (from an authorization response) names this connector's issuer: the
    /// configured one, or for multi-tenant Entra ID its template with an allowed tenant.
    pub fn is_issuer(&self, iss: &str) -> bool {
        if !self.multi_tenant() {
            return iss == self.config.issuer;
        }
        self.config.allowed_tenants.iter().any(|t| {
            ["/common/", "/organizations/", "/consumers/"]
                .iter()
                .any(|seg| self.config.issuer.replacen(seg, &format!("/{t}/"), 1) == iss)
        })
    }

    /// Whether the upstream says it sends `iss` in authorization responses.
    pub async fn sends_iss(&self) -> bool {
        self.cache
            .lock()
            .await
            .as_ref()
            .is_some_and(|c| c.sends_iss)
    }

    /// Where to send the browser, and the secrets to keep until the callback.
    pub async fn authorization_url(
        &self,
        state: String,
        login_hint: Option<&str>,
    ) -> Result<(String, Pending), UpstreamError> {
        let (metadata, _) = self.cached(false).await?;
        let client = self.client(metadata)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let nonce = Nonce::new_random();
        let state_for_url = state.clone();
        let nonce_for_url = nonce.clone();
        let mut req = client
            .authorize_url(
                openidconnect::core::CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state_for_url),
                move || nonce_for_url,
            )
            .set_pkce_challenge(challenge);
        for s in self.config.scopes.iter().filter(|s| *s != "openid") {
            req = req.add_scope(Scope::new(s.clone()));
        }
        if let Some(h) = login_hint {
            req = req.add_extra_param("login_hint", h.to_string());
        }
        if let crate::config::KindSettings::Google(g) = &self.config.settings {
            // Google: the Workspace domain(s) to sign in with, and a refresh token.
            match g.hosted_domains.as_slice() {
                [] => {}
                [one] => req = req.add_extra_param("hd", one.clone()),
                _ => req = req.add_extra_param("hd", "*"),
            }
            req = req.add_extra_param("access_type", "offline");
        }
        let (url, _, _) = req.url();
        Ok((
            url.to_string(),
            Pending {
                connector: self.config.id.clone(),
                state,
                nonce: nonce.secret().clone(),
                verifier: verifier.secret().clone(),
            },
        ))
    }

    /// Exchanges the code and validates what comes back.
    pub async fn exchange(
        &self,
        code: &str,
        pending: &Pending,
    ) -> Result<UpstreamLogin, UpstreamError> {
        let (metadata, _) = self.cached(false).await?;
        let extra = self.assertion_params(&metadata)?;
        let client = self.client(metadata)?;
        let mut request = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| UpstreamError::Invalid(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier.clone()));
        for (k, v) in extra {
            request = request.add_extra_param(k, v);
        }
        let response = self
            .observed("token", async {
                request.request_async(&self.http).await.map_err(token_error)
            })
            .await?;
        let raw = response
            .id_token()
            .ok_or_else(|| UpstreamError::Invalid("no id_token in the token response".into()))?
            .to_string();
        let claims = self.verify(&raw, Some(&pending.nonce)).await?;
        self.finish(claims, &response).await
    }

    /// Refreshes upstream with a refresh token it issued earlier.
    pub async fn refresh(&self, refresh_token: &str) -> Result<UpstreamLogin, UpstreamError> {
        let (metadata, _) = self.cached(false).await?;
        let extra = self.assertion_params(&metadata)?;
        let client = self.client(metadata)?;
        let token = RefreshToken::new(refresh_token.to_string());
        let mut request = client
            .exchange_refresh_token(&token)
            .map_err(|e| UpstreamError::Invalid(e.to_string()))?;
        for (k, v) in extra {
            request = request.add_extra_param(k, v);
        }
        let response = self
            .observed("token", async {
                request.request_async(&self.http).await.map_err(token_error)
            })
            .await?;
        let claims = match response.id_token() {
            Some(t) => self.verify(&t.to_string(), None).await?,
            None => Value::Object(Default::default()),
        };
        let mut login = self.finish(claims, &response).await?;
        if login.refresh_token.is_none() {
            login.refresh_token = Some(refresh_token.to_string());
        }
        Ok(login)
    }

    async fn finish(
        &self,
        mut claims: Value,
        response: &openidconnect::core::CoreTokenResponse,
    ) -> Result<UpstreamLogin, UpstreamError> {
        let access_token = response.access_token().secret().clone();
        if self.config.get_userinfo {
            let (metadata, _) = self.cached(false).await?;
            if let Some(endpoint) = metadata.userinfo_endpoint() {
                let (info, _) = self
                    .get_json("userinfo", endpoint.as_str(), Some(&access_token))
                    .await?;
                if claims.get("sub").is_some() && info.get("sub") != claims.get("sub") {
                    return Err(UpstreamError::Invalid(
                        "userinfo names another subject".into(),
                    ));
                }
                if let (Some(c), Some(i)) = (claims.as_object_mut(), info.as_object()) {
                    for (k, v) in i {
                        c.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
            }
        }
        Ok(UpstreamLogin {
            claims,
            access_token,
            refresh_token: response.refresh_token().map(|t| t.secret().clone()),
        })
    }

    /// Validates an upstream ID token and returns all its claims.
    pub async fn verify(&self, raw: &str, nonce: Option<&str>) -> Result<Value, UpstreamError> {
        match self.verify_once(raw, nonce, false).await {
            Err(UpstreamError::UnknownKey(_)) => {
                // A key the cached JWKS does not have: the upstream rotated. Refetch (at most
                // once a minute) and try again.
                self.verify_once(raw, nonce, true).await
            }
            other => other,
        }
    }

    async fn verify_once(
        &self,
        raw: &str,
        nonce: Option<&str>,
        refetch: bool,
    ) -> Result<Value, UpstreamError> {
        let (metadata, jwks) = self.cached(refetch).await?;
        check_id_token(
            &self.config,
            self.multi_tenant(),
            &metadata,
            jwks,
            raw,
            nonce,
            self.clock.now(),
        )
    }
}

fn token_error(
    e: RequestTokenError<
        HttpError,
        openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    >,
) -> UpstreamError {
    match e {
        RequestTokenError::ServerResponse(r) => UpstreamError::Refused(r.error().to_string()),
        RequestTokenError::Request(HttpError::Transport(e)) => {
            UpstreamError::Unavailable(e.to_string())
        }
        RequestTokenError::Request(e @ HttpError::ServerError(_)) => {
            UpstreamError::Unavailable(e.to_string())
        }
        RequestTokenError::Request(e) => UpstreamError::Invalid(format!("token response: {e}")),
        RequestTokenError::Parse(e, _) => UpstreamError::Invalid(format!("token response: {e}")),
        RequestTokenError::Other(e) => UpstreamError::Invalid(e),
    }
}

#[cfg(test)]
mod tests;
