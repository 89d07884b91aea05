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

use super::{AuthRequest, AuthorizeError, Flows, respond_to_client};
use crate::federation::LoginError;
use crate::federation::upstream::UpstreamError;
use crate::model::AuthRequestRecord;
use crate::oidc::clients::Client;
use crate::oidc::params::{HtmlForm, Params};
use crate::oidc::session::{hash_value, read_cookie};
use crate::secret::{ct_eq, random_token};
use crate::web;

/// Where a login should go.
pub enum Route {
    Connector(String),
    Chooser(Vec<String>),
    Local,
}

impl Flows {
    /// Connectors this client may use, and whether local login is among the choices.
    fn choices(&self, client: &Client) -> (Vec<String>, bool) {
        let allowed = &client.config.allowed_connectors;
        let ids: Vec<String> = self
            .federation
            .order
            .iter()
            .filter(|id| allowed.is_empty() || allowed.contains(id))
            .cloned()
            .collect();
        let local =
            !self.users.is_empty() && (allowed.is_empty() || allowed.iter().any(|a| a == "local"));
        (ids, local)
    }

    /// `connector_id`, then a `login_hint` in a connector's `email_domains`, then the only
    /// connector when there are no local users; otherwise the chooser.
    pub fn route(&self, client: &Client, req: &AuthRequest) -> Result<Route, AuthorizeError> {
        let (ids, local) = self.choices(client);
        if let Some(wanted) = &req.connector_id {
            return if wanted == "local" && local {
                Ok(Route::Local)
            } else if ids.contains(wanted) {
                Ok(Route::Connector(wanted.clone()))
            } else {
                Err(AuthorizeError::redirect(
                    &req.target(),
                    "invalid_request",
                    "connector_id names no connector this client may use",
                ))
            };
        }
        if let Some(domain) = req
            .login_hint
            .as_deref()
            .and_then(|h| h.rsplit_once('@'))
            .map(|(_, d)| d.to_lowercase())
            && let Some(id) = ids.iter().find(|id| {
                self.federation
                    .get(id)
                    .is_some_and(|c| c.config.email_domains.contains(&domain))
            })
        {
            return Ok(Route::Connector(id.clone()));
        }
        Ok(match (ids.len(), local) {
            (0, _) => Route::Local,
            (1, false) => Route::Connector(ids[0].clone()),
            _ => Route::Chooser(ids),
        })
    }

    pub fn chooser_page(
        &self,
        client: &Client,
        record: &AuthRequestRecord,
        ids: &[String],
        error: Option<String>,
        status: StatusCode,
        cookies: Vec<HeaderValue>,
    ) -> Response {
        let (_, local) = self.choices(client);
        let mut options: Vec<(String, String)> = ids
            .iter()
            .filter_map(|id| {
                self.federation
                    .get(id)
                    .map(|c| (id.clone(), c.config.name.clone()))
            })
            .collect();
        if local && error.is_none() {
            options.push(("local".into(), "a username and password".into()));
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
        cookies: Vec<HeaderValue>,
        charge: Option<crate::server::ClientAddr>,
    ) -> Result<Response, AuthorizeError> {
        let client = self
            .clients
            .get(&req.client_id)
            .ok_or_else(|| AuthorizeError::page("The application is no longer registered."))?;
        let up = self
            .federation
            .get(connector_id)
            .cloned()
            .ok_or_else(|| AuthorizeError::page("That sign-in option no longer exists."))?;
        req.upstream = None;
        let (mut record, cookie) = self.pending(headers, &req, pending, None, charge)?;
        let mut cookies = cookies;
        cookies.extend(cookie);
        let state = format!("{}.{}", record.id, random_token(24));
        match up.authorization_url(state, req.login_hint.as_deref()).await {
            Ok((url, pending)) => {
                req.upstream = Some(pending);
                record.request =
                    serde_json::to_string(&req).map_err(|e| AuthorizeError::internal(&e))?;
                self.storage.put_auth_request(&record).await?;
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
            Err(e) => {
                tracing::warn!(connector = connector_id, error = %e, "upstream unavailable at sign-in");
                record.request =
                    serde_json::to_string(&req).map_err(|e| AuthorizeError::internal(&e))?;
                self.storage.put_auth_request(&record).await?;
                Ok(self.chooser_page(
                    &client,
                    &record,
                    &[connector_id.to_string()],
                    Some(format!(
                        "{} cannot be reached right now. Try again in a moment.",
                        up.config.name
                    )),
                    StatusCode::BAD_GATEWAY,
                    cookies,
                ))
            }
        }
    }
}

/// `POST /connector`: the person picked a sign-in option.
pub async fn choose(
    State(flows): State<Arc<Flows>>,
    headers: HeaderMap,
    form: Result<HtmlForm, Response>,
) -> Response {
    let form = match form {
        Ok(HtmlForm(f)) => f,
        Err(resp) => return resp,
    };
    let (record, mut req) = match flows.load_pending(&headers, &form).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let choice = form.get("connector").unwrap_or("").to_string();
    req.connector_id = Some(choice.clone());
    let Some(client) = flows.clients.get(&req.client_id) else {
        return flows.fail(AuthorizeError::page(
            "The application is no longer registered.",
        ));
    };
    let result = match flows.route(&client, &req) {
        Ok(Route::Local) => {
            let username = req.login_hint.clone().unwrap_or_default();
            return flows.login_page(
                &client,
                &record,
                &username,
                None,
                StatusCode::OK,
                Vec::new(),
            );
        }
        Ok(Route::Connector(id)) => {
            flows
                .start_upstream(&headers, req, Some(record), &id, Vec::new(), None)
                .await
        }
        Ok(Route::Chooser(_)) | Err(_) => {
            return flows.page(
                StatusCode::BAD_REQUEST,
                "Sign-in error",
                "That sign-in option is not available here.",
            );
        }
    };
    result.unwrap_or_else(|e| flows.fail(e))
}

fn upstream_page(flows: &Flows, name: &str, e: &UpstreamError) -> Response {
    let (status, message) = match e {
        UpstreamError::Unavailable(_) => (
            StatusCode::BAD_GATEWAY,
            format!("{name} did not answer in time. Go back to the application and try again."),
        ),
        UpstreamError::Invalid(_) => (
            StatusCode::BAD_GATEWAY,
            format!("{name} sent an answer that could not be verified, so you were not signed in."),
        ),
        UpstreamError::Refused(why) => (
            StatusCode::FORBIDDEN,
            format!("{name} did not sign you in ({why})."),
        ),
    };
    flows.page(status, "Sign-in failed", &message)
}

/// `GET /callback/{connector_id}`: the upstream IdP sends the browser back here.
pub async fn callback(
    State(flows): State<Arc<Flows>>,
    Path(connector_id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let expired = || {
        flows.page(
            StatusCode::BAD_REQUEST,
            "Sign-in expired",
            "This sign-in is no longer pending. Go back to the application and start again.",
        )
    };
    let params = match Params::parse(query.unwrap_or_default().as_bytes()) {
        Ok(p) => p,
        Err(e) => return flows.page(StatusCode::BAD_REQUEST, "Sign-in error", &e.description),
    };
    let Some(state) = params.get("state") else {
        return expired();
    };
    let request_id = state.split('.').next().unwrap_or_default();
    let record = match flows.storage.get_auth_request(request_id).await {
        Ok(Some(r)) if r.expires_at > flows.clock.now() => r,
        Ok(_) => return expired(),
        Err(e) => return flows.fail(AuthorizeError::internal(&e)),
    };
    let bound = read_cookie(&headers, &flows.cookies.binding)
        .is_some_and(|v| ct_eq(hash_value(v).as_bytes(), record.binding_hash.as_bytes()));
    let Ok(mut req) = serde_json::from_str::<AuthRequest>(&record.request) else {
        return expired();
    };
    let Some(pending) = req.upstream.clone() else {
        return expired();
    };
    let mixed_up =
        pending.connector != connector_id || !ct_eq(pending.state.as_bytes(), state.as_bytes());
    if !bound || mixed_up {
        tracing::warn!(connector = ?connector_id, bound, mixed_up, "upstream callback refused");
        return flows.page(
            StatusCode::FORBIDDEN,
            "Sign-in refused",
            "This answer does not belong to the sign-in started in this browser.",
        );
    }
    let Some(up) = flows.federation.get(&connector_id).cloned() else {
        return expired();
    };
    // RFC 9207: `iss` must name the connector's issuer (for a multi-tenant Entra ID
    // connector, its template filled with an allowed tenant), and must be there when the
    // upstream says it sends it.
    let iss_ok = match params.get("iss") {
        Some(iss) => up.is_issuer(iss),
        None => !up.sends_iss().await,
    };
    if !iss_ok {
        tracing::warn!(connector = %up.config.id, "upstream callback refused: iss does not name the connector's issuer");
        return flows.page(
            StatusCode::FORBIDDEN,
            "Sign-in refused",
            "The answer came from another identity provider than the one you were sent to.",
        );
    }
    if let Some(error) = params.get("error") {
        tracing::info!(connector = %up.config.id, error = ?error, "upstream returned an error");
        if error == "access_denied" {
            let _ = flows.storage.delete_auth_request(&record.id).await;
            return respond_to_client(
                &flows.issuer,
                &req.target(),
                &[
                    ("error", "access_denied"),
                    ("error_description", "the identity provider denied access"),
                ],
            );
        }
        return upstream_page(
            &flows,
            &up.config.name,
            &UpstreamError::Refused(error.to_string()),
        );
    }
    let Some(code) = params.get("code") else {
        return flows.page(
            StatusCode::BAD_REQUEST,
            "Sign-in error",
            "The identity provider sent no code.",
        );
    };
    let login = match up.exchange(code, &pending).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(connector = %up.config.id, error = %e, "upstream code exchange failed");
            return upstream_page(&flows, &up.config.name, &e);
        }
    };
    let (identity, outcome) = match flows.federation.identity(&up, &login).await {
        Ok(x) => x,
        Err(LoginError::NoRequiredGroup) => {
            tracing::info!(connector = %up.config.id, "login refused: no required group");
            return flows.page(
                StatusCode::FORBIDDEN,
                "Not allowed",
                &format!(
                    "You signed in with {}, but none of your groups is allowed to use this service. Ask your administrator for access.",
                    up.config.name
                ),
            );
        }
        Err(LoginError::Upstream(e)) => return upstream_page(&flows, &up.config.name, &e),
        Err(LoginError::ReauthenticationRequired) => {
            return upstream_page(
                &flows,
                &up.config.name,
                &UpstreamError::Refused("sign in again".into()),
            );
        }
        Err(LoginError::Identity(why)) => {
            return flows.page(
                StatusCode::BAD_GATEWAY,
                "Sign-in failed",
                &format!("{}: {why}", up.config.name),
            );
        }
    };
    let (session, cookie) = match flows.start_session(&headers, &identity).await {
        Ok(x) => x,
        Err(e) => return flows.fail(AuthorizeError::internal(&e)),
    };
    tracing::info!(
        event = "login",
        connector = %up.config.id,
        client_id = %req.client_id,
        sub = %session.sub,
        groups = outcome.groups.len(),
        "user signed in upstream"
    );
    req.login_done = true;
    req.upstream = None;
    let mut record = record;
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
        .unwrap_or_else(|e| flows.fail(e))
}
