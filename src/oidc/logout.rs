//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): `GET|POST /logout` with
//! `id_token_hint`, `client_id`, `post_logout_redirect_uri` and `state`.
//!
//! Ending a session ends what it issued: refresh tokens and access tokens carrying its
//! `sid` stop working at once.
//!
//! A signed-in user confirms on a page (its form carries a CSRF token derived from the
//! session cookie). A `post_logout_redirect_uri` is used only when it exactly matches one the
//! client registered, and the client is known from a valid `id_token_hint` or `client_id`;
//! otherwise the person sees an error or a "signed out" page, never a redirect.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::authorize::{AuthorizeError, Flows};
use super::params::{HtmlForm, Params};
use super::session::read_cookie;
use crate::audit::{Event, Kind};
use crate::secret::{ct_eq, sha256_b64url};
use crate::web;

struct Checked {
    client_id: Option<String>,
    client_name: Option<String>,
    redirect: Option<String>,
}

fn csrf_for(session_cookie: &str) -> String {
    sha256_b64url(format!("logout\n{session_cookie}").as_bytes())
}

fn refuse(message: &str) -> AuthorizeError {
    AuthorizeError::titled(StatusCode::BAD_REQUEST, "Sign-out error", message)
}

fn check(flows: &Flows, p: &Params) -> Result<Checked, AuthorizeError> {
    let mut client_id = p.get("client_id").map(str::to_string);
    if let Some(hint) = p.get("id_token_hint") {
        let (payload, header) = flows
            .keys
            .verify(hint)
            .filter(|(_, h)| h.token_type().is_none_or(|t| t.eq_ignore_ascii_case("JWT")))
            .ok_or_else(|| refuse("The id_token_hint is not an ID token this provider issued."))?;
        let _ = header;
        let claims: serde_json::Value = serde_json::from_slice(&payload)
            .map_err(|_| refuse("The id_token_hint cannot be read."))?;
        if claims["iss"] != flows.issuer.as_str() {
            return Err(refuse("The id_token_hint was issued by another provider."));
        }
        let aud: Vec<String> = match &claims["aud"] {
            serde_json::Value::String(a) => vec![a.clone()],
            serde_json::Value::Array(list) => list
                .iter()
                .filter_map(|a| a.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        match &client_id {
            Some(c) if !aud.contains(c) => {
                return Err(refuse("The id_token_hint was issued to another client."));
            }
            Some(_) => {}
            None => client_id = aud.into_iter().next(),
        }
    }
    let client = match &client_id {
        Some(id) => Some(
            flows
                .clients
                .get(id)
                .ok_or_else(|| refuse("The application is not registered."))?,
        ),
        None => None,
    };
    let redirect = match p.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let client = client.as_ref().ok_or_else(|| {
                refuse(
                    "A post_logout_redirect_uri needs an id_token_hint or client_id to be trusted.",
                )
            })?;
            let any = client.config.any_redirect_uri && url::Url::parse(uri).is_ok();
            if !any
                && !client
                    .config
                    .post_logout_redirect_uris
                    .iter()
                    .any(|r| r == uri)
            {
                return Err(refuse(
                    "The post_logout_redirect_uri is not one the application registered.",
                ));
            }
            let mut url = url::Url::parse(uri).map_err(|_| refuse("Invalid redirect URI."))?;
            if let Some(state) = p.get("state") {
                url.query_pairs_mut().append_pair("state", state);
            }
            Some(url.to_string())
        }
    };
    Ok(Checked {
        client_id: client.as_ref().map(|c| c.id().to_string()),
        client_name: client.map(|c| c.display_name().to_string()),
        redirect,
    })
}

fn finish(flows: &Flows, checked: Checked, clear: bool) -> Response {
    let mut resp = match checked.redirect {
        Some(to) => {
            let mut r = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = HeaderValue::from_str(&to) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            web::secure_headers(&mut r);
            r
        }
        None => flows.page(
            StatusCode::OK,
            "Signed out",
            "You are signed out. You can close this window.",
        ),
    };
    if clear {
        resp.headers_mut()
            .append(header::SET_COOKIE, flows.cookies.clear_session());
    }
    resp
}

fn storage_failed(e: crate::storage::StorageError) -> AuthorizeError {
    tracing::error!(error = %e, "storage failure at logout");
    AuthorizeError::titled(
        StatusCode::SERVICE_UNAVAILABLE,
        "Sign-out error",
        "Try again.",
    )
}

async fn handle(
    flows: &Flows,
    headers: &HeaderMap,
    p: Params,
    confirming: bool,
) -> Result<Response, AuthorizeError> {
    if let Some(hint) = p.get("id_token_hint") {
        flows.keys.reload_for_unknown_kid(hint, &flows.issuer).await;
    }
    let checked = check(flows, &p)?;
    let cookie = read_cookie(headers, &flows.cookies.session);
    let session = flows
        .current_session(headers)
        .await
        .map_err(storage_failed)?;
    let (Some(session), Some(cookie)) = (session, cookie) else {
        // Nobody is signed in here: nothing to confirm.
        return Ok(finish(flows, checked, cookie.is_some()));
    };
    let csrf = csrf_for(cookie);
    let confirmed = confirming
        && p.get("confirm") == Some("yes")
        && p.get("csrf")
            .is_some_and(|c| ct_eq(c.as_bytes(), csrf.as_bytes()));
    if !confirmed {
        let username = serde_json::from_str::<crate::federation::Identity>(&session.identity)
            .ok()
            .and_then(|i| i.preferred_username);
        let mut page = web::render(
            StatusCode::OK,
            &web::LogoutView {
                assets: &flows.base,
                action: format!("{}/logout", flows.base),
                csrf: &csrf,
                client_name: checked.client_name.as_deref(),
                username: username.as_deref(),
                id_token_hint: p.get("id_token_hint"),
                client_id: p.get("client_id"),
                post_logout_redirect_uri: p.get("post_logout_redirect_uri"),
                state: p.get("state"),
            },
        );
        // The confirmed form's answer redirects to the checked post-logout URI.
        let targets: Vec<String> = checked.redirect.iter().cloned().collect();
        web::allow_form_targets(&mut page, Some(&targets));
        return Ok(page);
    }
    // The session ends with everything it issued: its refresh families are revoked with
    // their access tokens, and its other access tokens are refused from now on.
    let now = flows.clock.now();
    let families = flows
        .storage
        .end_session(&session.sid, now, now + flows.max_access_lifetime)
        .await
        .map_err(storage_failed)?;
    tracing::info!(event = "logout", sub = %session.sub, families_revoked = families, "session ended");
    flows.backchannel.session_ended(&session.sid, &session.sub);
    let mut event = Event::new(Kind::Logout, "success")
        .subject(session.sub.as_str())
        .detail("families_revoked", families);
    if let Some(c) = &checked.client_id {
        event = event.client(c.as_str());
    }
    flows.audit.record(event);
    Ok(finish(flows, checked, true))
}

pub async fn get(
    State(flows): State<Arc<Flows>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, AuthorizeError> {
    let p = Params::parse(q.unwrap_or_default().as_bytes()).map_err(|e| refuse(&e.description))?;
    handle(&flows, &headers, p, false).await
}

pub async fn post(
    State(flows): State<Arc<Flows>>,
    headers: HeaderMap,
    form: Result<HtmlForm, Response>,
) -> Result<Response, AuthorizeError> {
    match form {
        Ok(HtmlForm(p)) => handle(&flows, &headers, p, true).await,
        Err(resp) => Ok(resp),
    }
}
