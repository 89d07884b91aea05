//! The authorization endpoint (OIDC Core §3.1.2) and the interactive flow behind it: login,
//! consent, and the code redirect. Routes: `GET|POST /authorize`, `POST /login`,
//! `POST /consent`.
//!
//! A request that needs a page is stored (`auth_requests`) with a CSRF token and bound to
//! the browser by a cookie; the login and consent forms carry its id and token.

pub mod error;
mod finish;
mod flows;
mod pages;
mod pending;
pub mod request;
pub mod upstream;

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

pub use error::{AuthorizeError, respond_to_client};
pub use flows::{Flows, LoginFacts};
pub use pages::{consent_items, extra_claims};
pub use pending::PENDING_WINDOW;
pub use request::{AuthRequest, Prompt};

use super::clients::Client;
use super::params::{HtmlForm, Params};
use super::session::{hash_value, read_cookie};
use crate::federation::Route;
use crate::metrics::LoginResult;
use crate::model::{AuthRequestRecord, SessionRecord};
use crate::server::ClientAddr;
use crate::web;

impl Flows {
    /// A page that is not an error ("Signed out").
    pub fn page(&self, status: StatusCode, title: &str, message: &str) -> Response {
        web::message(status, &self.base, title, message)
    }

    /// The session named by the request's cookie, if it exists and has not expired.
    pub async fn current_session(
        &self,
        headers: &HeaderMap,
    ) -> Result<Option<SessionRecord>, crate::storage::StorageError> {
        let Some(value) = read_cookie(headers, &self.cookies.session) else {
            return Ok(None);
        };
        let session = self.storage.get_session(&hash_value(value)).await?;
        Ok(session.filter(|s| s.expires_at > self.clock.now()))
    }

    /// The `sub` of an ID token we issued to `client_id` (expired ones included), for
    /// `id_token_hint`. Access tokens (`typ: at+jwt`) and anything else typed are not ID
    /// tokens.
    pub fn hint_sub(&self, token: &str, client_id: Option<&str>) -> Option<String> {
        let (payload, header) = self.keys.verify(token)?;
        if header
            .token_type()
            .is_some_and(|t| !t.eq_ignore_ascii_case("JWT"))
        {
            return None;
        }
        let claims: serde_json::Value = serde_json::from_slice(&payload).ok()?;
        if claims["iss"] != self.issuer.as_str() {
            return None;
        }
        if let Some(client_id) = client_id {
            let aud_ok = match &claims["aud"] {
                serde_json::Value::String(a) => a == client_id,
                serde_json::Value::Array(list) => list.iter().any(|a| a == client_id),
                _ => false,
            };
            if !aud_ok {
                return None;
            }
        }
        claims["sub"].as_str().map(str::to_string)
    }

    /// Entry point for `GET` and `POST /authorize`.
    pub async fn authorize(
        &self,
        headers: &HeaderMap,
        addr: ClientAddr,
        params: Params,
    ) -> Result<Response, AuthorizeError> {
        if params.total_len() > request::MAX_REQUEST {
            return Err(AuthorizeError::page_with(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The sign-in request is too large.",
            ));
        }
        if let Some(hint) = params.get("id_token_hint") {
            self.keys.reload_for_unknown_kid(hint, &self.issuer).await;
        }
        if let Some(id) = params.get("client_id") {
            // Made through the admin API on another node a moment ago, perhaps.
            self.clients.find(id).await;
        }
        let (client, target) = request::trusted_target(&params, &self.clients)?;
        let req = request::parse(
            &params,
            &client,
            &target,
            |t| self.hint_sub(t, Some(client.id())),
            self.any_claims,
        )?;
        let session = self.current_session(headers).await?;
        // A new pending row is charged to the address that asks for it.
        let charge = self.charge_pending.then_some(addr);
        self.proceed(headers, req, None, session, Vec::new(), charge)
            .await
    }

    /// Decides what the request needs next (login, consent, or a code) and does it. A
    /// pending row it has to create is charged to `charge` (the requesting address).
    pub async fn proceed(
        &self,
        headers: &HeaderMap,
        req: AuthRequest,
        pending: Option<AuthRequestRecord>,
        session: Option<SessionRecord>,
        mut cookies: Vec<HeaderValue>,
        charge: Option<ClientAddr>,
    ) -> Result<Response, AuthorizeError> {
        let client = self
            .clients
            .find(&req.client_id)
            .await
            .ok_or_else(|| AuthorizeError::page("The application is no longer registered."))?;
        let now = self.clock.now();
        let mut req = req;
        let mut session = session.filter(|s| s.expires_at > now);
        if self.needs_login(&req, &session) && !req.has_prompt(Prompt::None) {
            // A connector may sign the person in without a page (the mock's queued logins).
            if let Some((s, cookie)) = self.silent(headers, &client, &req).await? {
                cookies.push(cookie);
                session = Some(s);
                req.login_done = true;
            }
        }
        if self.needs_login(&req, &session) {
            return self
                .ask_login(headers, &client, req, pending, cookies, charge)
                .await;
        }
        let Some(session) = session else {
            return Err(AuthorizeError::page(
                "Your session ended. Please sign in again.",
            ));
        };
        if let Err(refused) = self.check_access(&client, &req, &session) {
            if let Some(id) = &req.device {
                let deny = crate::model::DeviceDecision::Deny;
                if self.storage.decide_device_code(id, &deny, now).await? {
                    self.audit.record(
                        crate::audit::Event::new(crate::audit::Kind::DeviceAuthorization, "denied")
                            .client(client.id())
                            .subject(session.sub.as_str())
                            .detail("reason", "access_policy"),
                    );
                }
            }
            // Refused by this client, still signed in here: the session cookie stays.
            let resp = refused.respond(&self.issuer, &self.base);
            return Ok(with_cookies(resp, cookies));
        }
        if self.needs_consent(&client, &req, &session).await? {
            if req.has_prompt(Prompt::None) {
                return Err(AuthorizeError::redirect(
                    &req.target(),
                    "consent_required",
                    "the user must approve this application",
                ));
            }
            let (record, cookie) = self.pending(
                headers,
                &req,
                pending,
                Some(session.id_hash.clone()),
                charge,
            )?;
            self.storage.put_auth_request(&record).await?;
            cookies.extend(cookie);
            return Ok(self.consent_page(&client, &record, &session, &req, cookies));
        }
        let answered = pending.as_ref().map(|p| p.id.as_str());
        let resp = match &req.device {
            Some(id) => {
                self.approve_device(&client, &req, &session, answered, id)
                    .await?
            }
            None => self.issue_code(&client, &req, &session, answered).await?,
        };
        Ok(with_cookies(resp, cookies))
    }

    /// A sign-in without a page, when a connector has one queued (the mock's).
    async fn silent(
        &self,
        headers: &HeaderMap,
        client: &Client,
        req: &AuthRequest,
    ) -> Result<Option<(SessionRecord, HeaderValue)>, AuthorizeError> {
        let hint = req.login_hint.as_deref();
        let Some((connector, identity)) = self.connectors.silent_login(hint, client.id()) else {
            return Ok(None);
        };
        let (s, cookie) = self.start_session(headers, &identity).await?;
        self.record_login(
            connector,
            LoginResult::Success,
            LoginFacts {
                client: Some(client.id()),
                sub: Some(s.sub.as_str()),
                ..Default::default()
            },
        );
        tracing::info!(event = "login", connector, client_id = client.id(), sub = %s.sub, silent = true, "signed in without a page");
        Ok(Some((s, cookie)))
    }

    /// Whether the person must sign in (again) for this request.
    fn needs_login(&self, req: &AuthRequest, session: &Option<SessionRecord>) -> bool {
        let now = self.clock.now();
        let Some(s) = session else {
            return true;
        };
        let stale = req.max_age.is_some_and(|m| now - s.auth_time > m)
            || req.hint_sub.as_deref().is_some_and(|h| h != s.sub);
        !req.login_done
            && (req.has_prompt(Prompt::Login) || req.has_prompt(Prompt::SelectAccount) || stale)
    }

    /// Whether the consent page must be shown: `prompt=consent` (even for a `skip_consent`
    /// client, OIDC Core §3.1.2.1), or what the request asks is not yet consented to.
    async fn needs_consent(
        &self,
        client: &Client,
        req: &AuthRequest,
        session: &SessionRecord,
    ) -> Result<bool, AuthorizeError> {
        let must_ask = req.has_prompt(Prompt::Consent);
        if (client.config.skip_consent && !must_ask) || req.consent_done {
            return Ok(false);
        }
        if must_ask {
            return Ok(true);
        }
        let granted = self
            .storage
            .get_consent(&session.sub, client.id())
            .await?
            .unwrap_or_default();
        Ok(!consent_items(req).iter().all(|s| granted.contains(s)))
    }

    /// Sends the person to sign in: to the connector the request routes to, to the chooser,
    /// or to the password form.
    async fn ask_login(
        &self,
        headers: &HeaderMap,
        client: &Client,
        req: AuthRequest,
        pending: Option<AuthRequestRecord>,
        mut cookies: Vec<HeaderValue>,
        charge: Option<ClientAddr>,
    ) -> Result<Response, AuthorizeError> {
        if req.has_prompt(Prompt::None) {
            return Err(AuthorizeError::redirect(
                &req.target(),
                "login_required",
                "the user must sign in",
            ));
        }
        let route = if self.connectors.routes_sign_ins() {
            self.connectors
                .route(
                    &client.config.allowed_connectors,
                    req.connector_id.as_deref(),
                    req.login_hint.as_deref(),
                )
                .map_err(|e| {
                    AuthorizeError::redirect(&req.target(), "invalid_request", &e.to_string())
                })?
        } else {
            Route::Password
        };
        if let Route::Connector(id) = &route {
            return self
                .start_upstream(headers, req, pending, id, cookies, charge)
                .await;
        }
        let (record, cookie) = self.pending(headers, &req, pending, None, charge)?;
        self.storage.put_auth_request(&record).await?;
        cookies.extend(cookie);
        Ok(match route {
            Route::Chooser(ids) => {
                self.chooser_page(client, &record, &ids, None, StatusCode::OK, cookies)
            }
            other => {
                let username = req
                    .login_hint
                    .clone()
                    .or(req.hint_sub.clone())
                    .unwrap_or_default();
                let form = match &other {
                    Route::Form(id) => Some(id.as_str()),
                    _ => None,
                };
                self.login_page(
                    client,
                    &record,
                    form,
                    &username,
                    None,
                    StatusCode::OK,
                    cookies,
                )
            }
        })
    }
}

fn with_cookies(mut resp: Response, cookies: Vec<HeaderValue>) -> Response {
    for c in cookies {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

pub async fn get(
    State(flows): State<Arc<Flows>>,
    addr: ClientAddr,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, AuthorizeError> {
    let params = Params::parse(query.unwrap_or_default().as_bytes()).map_err(|e| {
        AuthorizeError::page(format!(
            "The sign-in request is malformed: {}.",
            e.description
        ))
    })?;
    flows.authorize(&headers, addr, params).await
}

pub async fn post(
    State(flows): State<Arc<Flows>>,
    addr: ClientAddr,
    headers: HeaderMap,
    form: Result<HtmlForm, Response>,
) -> Result<Response, AuthorizeError> {
    match form {
        Ok(HtmlForm(params)) => flows.authorize(&headers, addr, params).await,
        Err(resp) => Ok(resp),
    }
}
