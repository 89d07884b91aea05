//! The browser's round trip through an upstream IdP: the connector chooser
//! (`POST /connector`), the redirect out, and `GET /callback/{connector_id}`.
//!
//! The upstream `state` is `{pending request id}.{random}`; the callback must come back to
//! the connector the request went to (a mix-up guard), with that exact state, in the browser
//! the request is bound to, and with `iss` (when sent) equal to the connector's issuer.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::AuthorizeError;
use super::flows::Flows;
use super::request::AuthRequest;
use crate::federation::upstream::UpstreamError;
use crate::federation::{ConnectorError, PendingUpstream, RedirectConnector, Route};
use crate::metrics::LoginResult;
use crate::model::AuthRequestRecord;
use crate::oidc::clients::Client;
use crate::oidc::params::{HtmlForm, Params};
use crate::oidc::session::{hash_value, read_cookie};
use crate::secret::{ct_eq, random_token};
use crate::web;

impl Flows {
    pub fn chooser_page(
        &self,
        client: &Client,
        record: &AuthRequestRecord,
        ids: &[String],
        error: Option<String>,
        status: StatusCode,
        cookies: Vec<HeaderValue>,
    ) -> Response {
        let (_, password) = self.connectors.choices(&client.config.allowed_connectors);
        let mut options: Vec<(String, String)> = ids
            .iter()
            .filter_map(|id| {
                self.connectors
                    .name_of(id)
                    .map(|name| (id.clone(), name.to_string()))
            })
            .collect();
        if password && error.is_none() {
            options.push((
                crate::federation::registry::PASSWORD_CHOICE.into(),
                "a username and password".into(),
            ));
        }
        let mut resp = web::render(
            status,
            &web::ChooserView {
                assets: &self.base,
                action: format!("{}/connector", self.base),
                client_name: client.display_name(),
                error,
                options,
                request_id: &record.id,
                csrf: &record.csrf,
            },
        );
        // The answer leads to an upstream IdP (whose address only its discovery tells).
        web::allow_form_targets(&mut resp, None);
        for c in cookies {
            resp.headers_mut().append(header::SET_COOKIE, c);
        }
        resp
    }

    /// Sends the browser to the connector's IdP. If it cannot be reached, a page says so and
    /// offers to try again: the pending request is kept.
    pub async fn start_upstream(
        &self,
        headers: &HeaderMap,
        mut req: AuthRequest,
        pending: Option<AuthRequestRecord>,
        connector_id: &str,
        mut cookies: Vec<HeaderValue>,
        charge: Option<crate::server::ClientAddr>,
    ) -> Result<Response, AuthorizeError> {
        let client = self
            .clients
            .find(&req.client_id)
            .await
            .ok_or_else(|| AuthorizeError::page("The application is no longer registered."))?;
        let up = self
            .connectors
            .redirect(connector_id)
            .cloned()
            .ok_or_else(|| AuthorizeError::page("That sign-in option no longer exists."))?;
        req.upstream = None;
        let (mut record, cookie) = self.pending(headers, &req, pending, None, charge)?;
        cookies.extend(cookie);
        let state = format!("{}.{}", record.id, random_token(24));
        let started = up.start(state, req.login_hint.as_deref()).await;
        let url = match started {
            Ok((url, secrets)) => {
                req.upstream = Some(secrets);
                Some(url)
            }
            Err(e) => {
                tracing::warn!(connector = connector_id, error = %e, "upstream unavailable at sign-in");
                None
            }
        };
        record.request = serde_json::to_string(&req).map_err(|e| AuthorizeError::internal(&e))?;
        self.storage.put_auth_request(&record).await?;
        let Some(url) = url else {
            return Ok(self.chooser_page(
                &client,
                &record,
                &[connector_id.to_string()],
                Some(format!(
                    "{} cannot be reached right now. Try again in a moment.",
                    up.name()
                )),
                StatusCode::BAD_GATEWAY,
                cookies,
            ));
        };
        let mut resp = StatusCode::SEE_OTHER.into_response();
        if let Ok(v) = HeaderValue::from_str(&url) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        web::secure_headers(&mut resp);
        for c in cookies {
            resp.headers_mut().append(header::SET_COOKIE, c);
        }
        Ok(resp)
    }

    /// The page for a connector that did not sign the person in.
    fn connector_error(&self, name: &str, e: &ConnectorError) -> AuthorizeError {
        let (status, title, message) = match e {
            ConnectorError::Upstream(UpstreamError::Unavailable(_))
            | ConnectorError::Unavailable(_) => (
                StatusCode::BAD_GATEWAY,
                "Sign-in failed",
                format!("{name} did not answer in time. Go back to the application and try again."),
            ),
            ConnectorError::Upstream(UpstreamError::Invalid(_) | UpstreamError::UnknownKey(_)) => (
                StatusCode::BAD_GATEWAY,
                "Sign-in failed",
                format!(
                    "{name} sent an answer that could not be verified, so you were not signed in."
                ),
            ),
            ConnectorError::Upstream(UpstreamError::Refused(why)) => (
                StatusCode::FORBIDDEN,
                "Sign-in failed",
                format!("{name} did not sign you in ({why})."),
            ),
            ConnectorError::ReauthenticationRequired => (
                StatusCode::FORBIDDEN,
                "Sign-in failed",
                format!("{name} did not sign you in (sign in again)."),
            ),
            ConnectorError::NoRequiredGroup => (
                StatusCode::FORBIDDEN,
                "Not allowed",
                format!(
                    "You signed in with {name}, but none of your groups is allowed to use this service. Ask your administrator for access."
                ),
            ),
            ConnectorError::Identity(why) => (
                StatusCode::BAD_GATEWAY,
                "Sign-in failed",
                format!("{name}: {why}"),
            ),
        };
        AuthorizeError::titled(status, title, message)
    }

    /// The pending request a callback answers, if it belongs to this browser and this
    /// connector: otherwise the page to show instead.
    async fn callback_request(
        &self,
        connector_id: &str,
        headers: &HeaderMap,
        params: &Params,
    ) -> Result<(AuthRequestRecord, AuthRequest, PendingUpstream), AuthorizeError> {
        let expired = expired;
        let state = params.get("state").ok_or_else(expired)?;
        let request_id = state.split('.').next().unwrap_or_default();
        let record = match self.storage.get_auth_request(request_id).await {
            Ok(Some(r)) if r.expires_at > self.clock.now() => r,
            Ok(_) => return Err(expired()),
            Err(e) => return Err(AuthorizeError::internal(&e)),
        };
        let bound = read_cookie(headers, &self.cookies.binding)
            .is_some_and(|v| ct_eq(hash_value(v).as_bytes(), record.binding_hash.as_bytes()));
        let req = serde_json::from_str::<AuthRequest>(&record.request).map_err(|_| expired())?;
        let pending = req.upstream.clone().ok_or_else(expired)?;
        let mixed_up =
            pending.connector != connector_id || !ct_eq(pending.state.as_bytes(), state.as_bytes());
        if !bound || mixed_up {
            tracing::warn!(connector = ?connector_id, bound, mixed_up, "upstream callback refused");
            return Err(AuthorizeError::titled(
                StatusCode::FORBIDDEN,
                "Sign-in refused",
                "This answer does not belong to the sign-in started in this browser.",
            ));
        }
        Ok((record, req, pending))
    }

    /// The callback's answer: an identity, or the page (or client redirect) to show.
    /// The callback's answer, counted in `logins` by connector and result.
    async fn callback_identity(
        &self,
        up: &dyn RedirectConnector,
        params: &Params,
        record: &AuthRequestRecord,
        req: &AuthRequest,
        pending: &PendingUpstream,
    ) -> Result<crate::federation::Identity, AuthorizeError> {
        let (result, answer) = self
            .callback_outcome(up, params, record, req, pending)
            .await;
        let reason = match result {
            LoginResult::Success => None,
            LoginResult::Error => Some("upstream_error"),
            _ => Some("upstream_refused"),
        };
        let sub = answer.as_ref().ok().map(|i| i.sub.as_str());
        self.record_login(
            up.id(),
            result,
            super::flows::LoginFacts {
                client: Some(&req.client_id),
                sub,
                reason,
                ..Default::default()
            },
        );
        answer
    }

    async fn callback_outcome(
        &self,
        up: &dyn RedirectConnector,
        params: &Params,
        record: &AuthRequestRecord,
        req: &AuthRequest,
        pending: &PendingUpstream,
    ) -> (
        LoginResult,
        Result<crate::federation::Identity, AuthorizeError>,
    ) {
        let failed = |e| (LoginResult::Failure, Err(e));
        if !up.accepts_issuer(params.get("iss")).await {
            tracing::warn!(connector = %up.id(), "upstream callback refused: iss does not name the connector's issuer");
            return failed(AuthorizeError::titled(
                StatusCode::FORBIDDEN,
                "Sign-in refused",
                "The answer came from another identity provider than the one you were sent to.",
            ));
        }
        if let Some(error) = params.get("error") {
            tracing::info!(connector = %up.id(), error = ?error, "upstream returned an error");
            if error == "access_denied" {
                let _ = self.storage.delete_auth_request(&record.id).await;
                return failed(AuthorizeError::redirect(
                    &req.target(),
                    "access_denied",
                    "the identity provider denied access",
                ));
            }
            let refused = ConnectorError::Upstream(UpstreamError::Refused(error.to_string()));
            return failed(self.connector_error(up.name(), &refused));
        }
        let Some(code) = params.get("code") else {
            return failed(AuthorizeError::page("The identity provider sent no code."));
        };
        match up.finish(code, pending).await {
            Ok(identity) => (LoginResult::Success, Ok(identity)),
            Err(e) => {
                tracing::warn!(connector = %up.id(), error = %e, "upstream sign-in failed");
                let result = match &e {
                    ConnectorError::Upstream(
                        UpstreamError::Unavailable(_)
                        | UpstreamError::Invalid(_)
                        | UpstreamError::UnknownKey(_),
                    )
                    | ConnectorError::Unavailable(_) => LoginResult::Error,
                    _ => LoginResult::Failure,
                };
                (result, Err(self.connector_error(up.name(), &e)))
            }
        }
    }
}

/// The page for a sign-in that is no longer pending.
fn expired() -> AuthorizeError {
    AuthorizeError::titled(
        StatusCode::BAD_REQUEST,
        "Sign-in expired",
        "This sign-in is no longer pending. Go back to the application and start again.",
    )
}

/// `POST /connector`: the person picked a sign-in option.
pub async fn choose(
    State(flows): State<Arc<Flows>>,
    headers: HeaderMap,
    form: Result<HtmlForm, Response>,
) -> Result<Response, AuthorizeError> {
    let form = match form {
        Ok(HtmlForm(f)) => f,
        Err(resp) => return Ok(resp),
    };
    let (record, mut req) = flows.load_pending(&headers, &form).await?;
    let choice = form.get("connector").unwrap_or("").to_string();
    req.connector_id = Some(choice.clone());
    let client = flows
        .clients
        .find(&req.client_id)
        .await
        .ok_or_else(|| AuthorizeError::page("The application is no longer registered."))?;
    let route = flows.connectors.route(
        &client.config.allowed_connectors,
        Some(&choice),
        req.login_hint.as_deref(),
    );
    match route {
        Ok(route @ (Route::Password | Route::Form(_))) => {
            let username = req.login_hint.clone().unwrap_or_default();
            let form = match &route {
                Route::Form(id) => Some(id.as_str()),
                _ => None,
            };
            Ok(flows.login_page(
                &client,
                &record,
                form,
                &username,
                None,
                StatusCode::OK,
                Vec::new(),
            ))
        }
        Ok(Route::Connector(id)) => {
            flows
                .start_upstream(&headers, req, Some(record), &id, Vec::new(), None)
                .await
        }
        Ok(Route::Chooser(_)) | Err(_) => Err(AuthorizeError::page(
            "That sign-in option is not available here.",
        )),
    }
}

/// `GET /callback/{connector_id}`: the upstream IdP sends the browser back here.
pub async fn callback(
    State(flows): State<Arc<Flows>>,
    Path(connector_id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, AuthorizeError> {
    let params = Params::parse(query.unwrap_or_default().as_bytes())
        .map_err(|e| AuthorizeError::page(e.description))?;
    let (mut record, mut req, pending) = flows
        .callback_request(&connector_id, &headers, &params)
        .await?;
    let up = flows
        .connectors
        .redirect(&connector_id)
        .cloned()
        .ok_or_else(expired)?;
    let identity = flows
        .callback_identity(&*up, &params, &record, &req, &pending)
        .await?;
    let (session, cookie) = flows
        .start_session(&headers, &identity)
        .await
        .map_err(|e| AuthorizeError::internal(&e))?;
    tracing::info!(
        event = "login",
        connector = %up.id(),
        client_id = %req.client_id,
        sub = %session.sub,
        groups = identity.groups.len(),
        "user signed in upstream"
    );
    req.login_done = true;
    req.upstream = None;
    record.session_id = Some(session.id_hash.clone());
    flows
        .proceed(
            &headers,
            req,
            Some(record),
            Some(session),
            vec![cookie],
            None,
        )
        .await
}
