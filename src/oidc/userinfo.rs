//! The UserInfo endpoint (OIDC Core §5.3): `GET` or `POST`, with the access token as a
//! Bearer header or (POST) an `access_token` form field. Errors follow RFC 6750 §3 with a
//! `WWW-Authenticate: Bearer` challenge.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::claims::claims_for;
use super::params::Params;
use super::shape::TokenShape;
use super::tokens::TokenService;
use crate::federation::{ConnectorRegistry, Identity};

pub struct Userinfo {
    pub tokens: Arc<TokenService>,
    pub clients: Arc<super::clients::ClientRegistry>,
    /// Where a connector keeps the current identity (local users).
    pub connectors: Arc<ConnectorRegistry>,
    pub storage: Arc<dyn crate::storage::Storage>,
    pub shape: Arc<dyn TokenShape>,
}

impl Userinfo {
    /// The identity behind an access token: a local user, else the claims stored at login.
    async fn identity(
        &self,
        claims: &super::tokens::AccessTokenClaims,
    ) -> Result<Option<Identity>, crate::storage::StorageError> {
        let key = self.shape.identity_key(&claims.sub, &claims.extra);
        if let Some(id) = self.connectors.lookup(key) {
            return Ok(Some(id));
        }
        Ok(self
            .storage
            .get_identity(key)
            .await?
            .and_then(|json| serde_json::from_str(&json).ok()))
    }
}

fn bearer_error(status: StatusCode, code: Option<&str>, description: &str) -> Response {
    let challenge = match code {
        Some(code) => format!(
            r#"Bearer realm="oidc-bridge", error="{code}", error_description="{description}""#
        ),
        None => r#"Bearer realm="oidc-bridge""#.to_string(),
    };
    let body = match code {
        Some(code) => serde_json::json!({"error": code, "error_description": description}),
        None => serde_json::json!({"error": "invalid_request", "error_description": description}),
    };
    let mut resp = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn header_token(headers: &HeaderMap) -> Result<Option<String>, Response> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || {
        bearer_error(
            StatusCode::BAD_REQUEST,
            Some("invalid_request"),
            "the Authorization header is not a Bearer token",
        )
    };
    let v = v.to_str().map_err(|_| malformed())?;
    match v.trim().split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim().to_string()))
        }
        _ => Err(malformed()),
    }
}

pub async fn handle(State(ui): State<Arc<Userinfo>>, req: Request) -> Response {
    let from_header = match header_token(req.headers()) {
        Ok(t) => t,
        Err(resp) => return resp,
    };
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let from_body = if req.method() == Method::POST && is_form {
        match Params::from_request(req, &()).await {
            Ok(mut p) => p.take("access_token"),
            Err(e) => return bearer_error(e.status, Some("invalid_request"), &e.description),
        }
    } else {
        None
    };
    let token = match (from_header, from_body) {
        (Some(_), Some(_)) => {
            return bearer_error(
                StatusCode::BAD_REQUEST,
                Some("invalid_request"),
                "send the access token once, not in both header and body",
            );
        }
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => {
            return bearer_error(
                StatusCode::UNAUTHORIZED,
                None,
                "an access token is required",
            );
        }
    };
    let claims = match ui.tokens.validate_access_token(&token).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return bearer_error(
                StatusCode::UNAUTHORIZED,
                Some("invalid_token"),
                "the access token is invalid, expired or revoked",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "storage failure at userinfo");
            return bearer_error(
                StatusCode::SERVICE_UNAVAILABLE,
                Some("temporarily_unavailable"),
                "try again",
            );
        }
    };
    // A client_credentials token is about the client, not a person: it has no
    // `auth_time`, and no user's profile may be read with it.
    if claims.auth_time.is_none() {
        return bearer_error(
            StatusCode::UNAUTHORIZED,
            Some("invalid_token"),
            "this access token was issued to a client for itself, not for a user",
        );
    }
    // The client it was issued to is gone: its tokens go with it.
    let Some(client) = ui.clients.get(&claims.client_id) else {
        return bearer_error(
            StatusCode::UNAUTHORIZED,
            Some("invalid_token"),
            "the client this access token was issued to is no longer registered",
        );
    };
    if !claims.aud.contains(&ui.tokens.issuer) {
        return bearer_error(
            StatusCode::UNAUTHORIZED,
            Some("invalid_token"),
            "the access token is not meant for this provider (aud)",
        );
    }
    let scopes: Vec<String> = claims
        .scope
        .as_deref()
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if !scopes.iter().any(|s| s == "openid") {
        return bearer_error(
            StatusCode::FORBIDDEN,
            Some("insufficient_scope"),
            "the access token was not issued with the openid scope",
        );
    }
    let identity = match ui.identity(&claims).await {
        Ok(Some(id)) => id,
        Ok(None) => {
            return bearer_error(
                StatusCode::UNAUTHORIZED,
                Some("invalid_token"),
                "the user of this access token no longer exists",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "storage failure at userinfo");
            return bearer_error(
                StatusCode::SERVICE_UNAVAILABLE,
                Some("temporarily_unavailable"),
                "try again",
            );
        }
    };
    // Claims the `claims` request parameter asked for at userinfo travel in the token.
    let requested = claims.userinfo_claims.as_ref().map(|names| {
        serde_json::Value::Object(
            names
                .iter()
                .map(|n| (n.clone(), serde_json::Value::Null))
                .collect(),
        )
    });
    let mut identity = identity;
    identity.groups =
        crate::federation::groups::for_client(&identity.groups, &client.config.groups);
    let mut scopes = scopes;
    if client.config.groups.always && !scopes.iter().any(|s| s == "groups") {
        scopes.push("groups".into());
    }
    let mut body = claims_for(&identity, &scopes, requested.as_ref());
    // The same `sub` as the ID token (a persona may make it per-client).
    body.insert("sub".into(), serde_json::Value::String(claims.sub.clone()));
    let mut resp = Json(body).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
