//! The authorization endpoint (OIDC Core §3.1.2) and the interactive flow behind it: login,
//! consent, and the code redirect. Routes: `GET|POST /authorize`, `POST /login`,
//! `POST /consent`.
//!
//! A request that needs a page is stored (`auth_requests`) with a CSRF token and bound to
//! the browser by a cookie; the login and consent forms carry its id and token.

pub mod error;
pub mod request;
pub mod upstream;

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

pub use error::{AuthorizeError, respond_to_client};
pub use request::{AuthRequest, Prompt};

use super::clients::{Client, ClientRegistry};
use super::grant::Grant;
use super::identity::LocalUsers;
use super::params::{HtmlForm, Params};
use super::session::{Cookies, DeviceCookies, hash_value, new_secret, read_cookie};
use super::throttle::{Budgets, Rule};
use crate::clock::Clock;
use crate::config::TokenLifetimes;
use crate::keys::KeyManager;
use crate::model::{AuthCodeRecord, AuthRequestRecord, SessionRecord};
use crate::secret::{ct_eq, random_token, sha256_b64url};
use crate::server::ClientAddr;
use crate::storage::Storage;
use crate::web;

/// How long a login or consent page stays usable.
const PENDING_LIFETIME: i64 = 900;

/// How long the pending-request budget's window is: `server.pending_requests_per_minute`
/// per address in it. With requests capped at 16 KiB (a stored row holds under 8 KiB) and
/// rows purged 15 minutes after they were created (at most 5 more until the purge runs),
/// one address can hold at most 20 × that many rows: 120 a minute ≈ 19 MB.
pub const PENDING_WINDOW: i64 = 60;

pub struct Flows {
    pub issuer: String,
    /// The issuer's path, which prefixes every route and asset.
    pub base: String,
    pub storage: Arc<dyn Storage>,
    pub clients: Arc<ClientRegistry>,
    pub keys: Arc<KeyManager>,
    pub clock: Arc<dyn Clock>,
    pub users: Arc<LocalUsers>,
    pub lifetimes: TokenLifetimes,
    pub cookies: Cookies,
    /// Failed sign-ins, per username, address and device (see `login.rs`).
    pub login_budgets: Budgets,
    pub devices: DeviceCookies,
    /// Pending requests started, per address, and how many a minute.
    pub pending_budgets: Budgets,
    pub pending_per_minute: u32,
    /// The longest any access token lives (how long logout keeps refusing a session's).
    pub max_access_lifetime: i64,
    /// Mock mode: a login page that takes any username, and headless auto-login.
    pub mock: Option<Arc<crate::mock::state::MockState>>,
    /// Upstream IdPs.
    pub federation: Arc<crate::federation::Federation>,
}

impl Flows {
    pub fn fail(&self, e: AuthorizeError) -> Response {
        e.respond(&self.issuer, &self.base)
    }

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
        params: Result<Params, String>,
    ) -> Response {
        let params = match params {
            Ok(p) => p,
            Err(why) => return self.fail(AuthorizeError::page(why)),
        };
        if params.total_len() > request::MAX_REQUEST {
            return self.fail(AuthorizeError::page_with(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The sign-in request is too large.",
            ));
        }
        if let Some(hint) = params.get("id_token_hint") {
            self.keys.reload_for_unknown_kid(hint, &self.issuer).await;
        }
        let result = async {
            let (client, target) = request::trusted_target(&params, &self.clients)?;
            let mock_login = self.mock.as_ref().is_some_and(|m| m.mock_login);
            let req = request::parse(
                &params,
                &client,
                &target,
                |t| self.hint_sub(t, Some(client.id())),
                mock_login,
            )?;
            let session = self.current_session(headers).await?;
            // A new pending row is charged to the address that asks for it (mock mode, a
            // test tool on loopback, never).
            let charge = (!mock_login).then_some(addr);
            self.proceed(headers, req, None, session, Vec::new(), charge)
                .await
        }
        .await;
        result.unwrap_or_else(|e| self.fail(e))
    }

    /// Counts a request that may store a pending row against its address's budget.
    fn charge_pending(&self, addr: ClientAddr) -> Result<(), AuthorizeError> {
        let now = self.clock.now();
        let key = format!("pending:{}", addr.budget_key());
        let rule = Rule {
            window: PENDING_WINDOW,
            limit: self.pending_per_minute,
        };
        if let Some(wait) = self.pending_budgets.exhausted(&key, rule, now) {
            tracing::info!(ip = %addr, retry_after = wait, "authorization requests throttled");
            return Err(AuthorizeError::page_with(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many sign-in attempts from your network. Wait a minute and try again.",
            ));
        }
        self.pending_budgets.record_failure(vec![(key, rule)], now);
        Ok(())
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
            .get(&req.client_id)
            .ok_or_else(|| AuthorizeError::page("The application is no longer registered."))?;
        let now = self.clock.now();
        let target = req.target();
        let session = session.filter(|s| s.expires_at > now);

        let mut req = req;
        let mut session = session;
        let stale = |req: &AuthRequest, s: &SessionRecord| {
            req.max_age.is_some_and(|m| now - s.auth_time > m)
                || req.hint_sub.as_deref().is_some_and(|h| h != s.sub)
        };
        let needs_login = |req: &AuthRequest, session: &Option<SessionRecord>| match session {
            None => true,
            Some(s) => {
                !req.login_done
                    && (req.has_prompt(Prompt::Login)
                        || req.has_prompt(Prompt::SelectAccount)
                        || stale(req, s))
            }
        };
        // Mock mode, headless: a queued identity, or the user named by login_hint, signs in
        // without a page.
        if needs_login(&req, &session)
            && !req.has_prompt(Prompt::None)
            && let Some(mock) = self.mock.as_ref().filter(|m| m.auto_login && m.mock_login)
        {
            let queued = mock.take_queued(req.login_hint.as_deref(), client.id());
            let identity = match (&queued, &req.login_hint) {
                (Some(q), hint) => Some(mock.queued_identity(q, hint.as_deref().unwrap_or("user"))),
                (None, Some(hint)) => Some(mock.identity(hint, None, &Default::default())),
                (None, None) => None,
            };
            if let Some(identity) = identity {
                let (s, cookie) = self.start_session(headers, &identity).await?;
                tracing::info!(event = "login", client_id = client.id(), sub = %s.sub, mock = true, "mock auto-login");
                cookies.push(cookie);
                session = Some(s);
                req.login_done = true;
            }
        }
        let needs_login = needs_login(&req, &session);
        if needs_login {
            if req.has_prompt(Prompt::None) {
                return Err(AuthorizeError::redirect(
                    &target,
                    "login_required",
                    "the user must sign in",
                ));
            }
            if !self.federation.is_empty() && !self.mock.as_ref().is_some_and(|m| m.mock_login) {
                match self.route(&client, &req)? {
                    upstream::Route::Connector(id) => {
                        return self
                            .start_upstream(headers, req, pending, &id, cookies, charge)
                            .await;
                    }
                    upstream::Route::Chooser(ids) => {
                        let (record, cookie) =
                            self.pending(headers, &req, pending, None, charge)?;
                        self.storage.put_auth_request(&record).await?;
                        cookies.extend(cookie);
                        return Ok(self.chooser_page(
                            &client,
                            &record,
                            &ids,
                            None,
                            StatusCode::OK,
                            cookies,
                        ));
                    }
                    upstream::Route::Local => {}
                }
            }
            let (record, cookie) = self.pending(headers, &req, pending, None, charge)?;
            self.storage.put_auth_request(&record).await?;
            cookies.extend(cookie);
            let username = req
                .login_hint
                .clone()
                .or(req.hint_sub.clone())
                .unwrap_or_default();
            return Ok(self.login_page(&client, &record, &username, None, StatusCode::OK, cookies));
        }
        let Some(session) = session else {
            return Err(AuthorizeError::page(
                "Your session ended. Please sign in again.",
            ));
        };

        // prompt=consent asks even a skip_consent client's user (OIDC Core §3.1.2.1).
        let must_ask = req.has_prompt(Prompt::Consent);
        if (!client.config.skip_consent || must_ask) && !req.consent_done {
            let granted = if client.config.skip_consent {
                Vec::new()
            } else {
                self.storage
                    .get_consent(&session.sub, client.id())
                    .await?
                    .unwrap_or_default()
            };
            let covered = consent_items(&req).iter().all(|s| granted.contains(s));
            if must_ask || !covered {
                if req.has_prompt(Prompt::None) {
                    return Err(AuthorizeError::redirect(
                        &target,
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
        }

        if let Some(p) = pending {
            self.storage.delete_auth_request(&p.id).await?;
        }
        let mut resp = self.issue_code(&client, &req, &session).await?;
        for c in cookies {
            resp.headers_mut().append(header::SET_COOKIE, c);
        }
        Ok(resp)
    }

    /// The stored form of a pending request, created or updated, plus a binding cookie to
    /// set. A new one is charged to `charge`'s budget first.
    pub(crate) fn pending(
        &self,
        headers: &HeaderMap,
        req: &AuthRequest,
        existing: Option<AuthRequestRecord>,
        session_id: Option<String>,
        charge: Option<ClientAddr>,
    ) -> Result<(AuthRequestRecord, Option<HeaderValue>), AuthorizeError> {
        let json = serde_json::to_string(req).map_err(|e| AuthorizeError::internal(&e))?;
        let now = self.clock.now();
        if let Some(mut r) = existing {
            r.request = json;
            r.session_id = session_id.or(r.session_id);
            return Ok((r, None));
        }
        if let Some(addr) = charge {
            self.charge_pending(addr)?;
        }
        let (binding_hash, cookie) = match read_cookie(headers, &self.cookies.binding) {
            Some(v) => (hash_value(v), None),
            None => {
                let (v, h) = new_secret();
                (h, Some(self.cookies.set_binding(&v)))
            }
        };
        Ok((
            AuthRequestRecord {
                id: random_token(16),
                client_id: req.client_id.clone(),
                request: json,
                csrf: random_token(24),
                binding_hash,
                session_id,
                created_at: now,
                expires_at: now + PENDING_LIFETIME,
            },
            cookie,
        ))
    }

    /// Loads a pending request posted back by a form, checking expiry, CSRF token and the
    /// browser-binding cookie.
    pub async fn load_pending(
        &self,
        headers: &HeaderMap,
        form: &Params,
    ) -> Result<(AuthRequestRecord, AuthRequest), Response> {
        let expired = || {
            self.page(
                StatusCode::BAD_REQUEST,
                "Sign-in expired",
                "This sign-in page has expired. Go back to the application and start again.",
            )
        };
        let forged = || {
            self.page(
                StatusCode::FORBIDDEN,
                "Sign-in refused",
                "The form could not be verified (missing or wrong CSRF token). Go back to the application and start again.",
            )
        };
        let id = form.get("request").ok_or_else(expired)?;
        let record = match self.storage.get_auth_request(id).await {
            Ok(Some(r)) if r.expires_at > self.clock.now() => r,
            Ok(_) => return Err(expired()),
            Err(e) => return Err(self.fail(AuthorizeError::internal(&e))),
        };
        let csrf_ok = form
            .get("csrf")
            .is_some_and(|c| ct_eq(c.as_bytes(), record.csrf.as_bytes()));
        let bound = read_cookie(headers, &self.cookies.binding)
            .is_some_and(|v| ct_eq(hash_value(v).as_bytes(), record.binding_hash.as_bytes()));
        if !csrf_ok || !bound {
            return Err(forged());
        }
        let req: AuthRequest = serde_json::from_str(&record.request)
            .map_err(|e| self.fail(AuthorizeError::internal(&e)))?;
        Ok((record, req))
    }

    pub fn login_page(
        &self,
        client: &Client,
        record: &AuthRequestRecord,
        username: &str,
        error: Option<String>,
        status: StatusCode,
        cookies: Vec<HeaderValue>,
    ) -> Response {
        let mut resp = web::render(
            status,
            &web::LoginView {
                assets: &self.base,
                action: format!("{}/login", self.base),
                client_name: client.display_name(),
                error,
                request_id: &record.id,
                csrf: &record.csrf,
                username,
                mock: self.mock.as_ref().is_some_and(|m| m.mock_login),
            },
        );
        for c in cookies {
            resp.headers_mut().append(header::SET_COOKIE, c);
        }
        resp
    }

    fn consent_page(
        &self,
        client: &Client,
        record: &AuthRequestRecord,
        session: &SessionRecord,
        req: &AuthRequest,
        cookies: Vec<HeaderValue>,
    ) -> Response {
        let username = serde_json::from_str::<super::identity::Identity>(&session.identity)
            .ok()
            .and_then(|i| i.preferred_username)
            .unwrap_or_else(|| session.sub.clone());
        let mut resp = web::render(
            StatusCode::OK,
            &web::ConsentView {
                assets: &self.base,
                action: format!("{}/consent", self.base),
                client_name: client.display_name(),
                username: &username,
                scopes: req.scope.iter().map(|s| web::describe_scope(s)).collect(),
                claims: extra_claims(req),
                request_id: &record.id,
                csrf: &record.csrf,
            },
        );
        for c in cookies {
            resp.headers_mut().append(header::SET_COOKIE, c);
        }
        resp
    }

    async fn issue_code(
        &self,
        client: &Client,
        req: &AuthRequest,
        session: &SessionRecord,
    ) -> Result<Response, AuthorizeError> {
        let identity =
            serde_json::from_str(&session.identity).map_err(|e| AuthorizeError::internal(&e))?;
        let grant = Grant {
            sub: session.sub.clone(),
            client_id: client.id().to_string(),
            scope: req.scope.clone(),
            redirect_uri: req.redirect_uri.clone(),
            nonce: req.nonce.clone(),
            code_challenge: req.code_challenge.clone(),
            auth_time: session.auth_time,
            sid: Some(session.sid.clone()),
            claims: req.claims.clone(),
            identity,
        };
        let code = random_token(32);
        let now = self.clock.now();
        self.storage
            .insert_auth_code(&AuthCodeRecord {
                code_hash: sha256_b64url(code.as_bytes()),
                client_id: client.id().to_string(),
                grant: serde_json::to_string(&grant).map_err(|e| AuthorizeError::internal(&e))?,
                created_at: now,
                expires_at: now + self.lifetimes.authorization_code.get(),
                redeemed_at: None,
                family_id: None,
                access_jti: None,
                access_exp: None,
                replayed_at: None,
            })
            .await?;
        Ok(respond_to_client(
            &self.issuer,
            &req.target(),
            &[("code", &code)],
        ))
    }

    /// Starts a session for `identity`, replacing the browser's previous one.
    pub async fn start_session(
        &self,
        headers: &HeaderMap,
        identity: &super::identity::Identity,
    ) -> Result<(SessionRecord, HeaderValue), crate::storage::StorageError> {
        if let Some(old) = read_cookie(headers, &self.cookies.session) {
            self.storage.delete_session(&hash_value(old)).await?;
        }
        let (value, id_hash) = new_secret();
        let now = self.clock.now();
        let session = SessionRecord {
            id_hash,
            sid: random_token(16),
            sub: identity.sub.clone(),
            identity: serde_json::to_string(identity).unwrap_or_else(|_| "{}".into()),
            auth_time: now,
            created_at: now,
            expires_at: now + self.lifetimes.session.get(),
        };
        self.storage.create_session(&session).await?;
        self.storage
            .put_identity(&session.sub, &session.identity, now)
            .await?;
        Ok((session, self.cookies.set_session(&value)))
    }
}

/// What a consent covers: the scopes, plus `claim:NAME` for each claim the `claims`
/// parameter asks for beyond what those scopes release.
pub fn consent_items(req: &AuthRequest) -> Vec<String> {
    let mut items = req.scope.clone();
    items.extend(extra_claims(req).into_iter().map(|c| format!("claim:{c}")));
    items
}

/// Claims the `claims` parameter asks for that the granted scopes do not release.
pub fn extra_claims(req: &AuthRequest) -> Vec<String> {
    request::requested_claim_names(req.claims.as_ref())
        .into_iter()
        .filter(|c| {
            !req.scope
                .iter()
                .any(|s| super::identity::scope_claims(s).contains(&c.as_str()))
        })
        .collect()
}

pub async fn get(
    State(flows): State<Arc<Flows>>,
    addr: ClientAddr,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes())
        .map_err(|e| format!("The sign-in request is malformed: {}.", e.description));
    flows.authorize(&headers, addr, params).await
}

pub async fn post(
    State(flows): State<Arc<Flows>>,
    addr: ClientAddr,
    headers: HeaderMap,
    form: Result<HtmlForm, Response>,
) -> Response {
    match form {
        Ok(HtmlForm(params)) => flows.authorize(&headers, addr, Ok(params)).await,
        Err(resp) => resp,
    }
}
