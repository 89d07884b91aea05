//! The UserInfo endpoint (OIDC Core §5.3): `GET` or `POST`, with the access token as a
//! Bearer header or (POST) an `access_token` form field. Errors follow RFC 6750 §3 with a
//! `WWW-Authenticate: Bearer` challenge.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use serde_json::{Map, Value};

use super::claims::{ScopeCatalog, claims_for};
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
    /// What the scopes of your own release.
    pub scopes: Arc<ScopeCatalog>,
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

/// An RFC 6750 §3 error: a status, a `WWW-Authenticate: Bearer` challenge (with the error
/// code when there is one) and a JSON body.
#[derive(Debug)]
pub struct BearerError {
    status: StatusCode,
    code: Option<&'static str>,
    description: std::borrow::Cow<'static, str>,
}

impl BearerError {
    fn new(status: StatusCode, code: &'static str, description: &'static str) -> Self {
        Self {
            status,
            code: Some(code),
            description: description.into(),
        }
    }

    fn invalid_request(description: &'static str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    fn invalid_token(description: &'static str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_token", description)
    }

    /// No credentials at all: a bare challenge (RFC 6750 §3.1).
    fn no_token() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: None,
            description: "an access token is required".into(),
        }
    }

    fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "storage failure at userinfo");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "try again",
        )
    }
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let challenge = match self.code {
            Some(code) => format!(
                r#"Bearer realm="oidc-bridge", error="{code}", error_description="{}""#,
                self.description
            ),
            None => r#"Bearer realm="oidc-bridge""#.to_string(),
        };
        let body = serde_json::json!({
            "error": self.code.unwrap_or("invalid_request"),
            "error_description": self.description,
        });
        let mut resp = (self.status, Json(body)).into_response();
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }
}

fn header_token(headers: &HeaderMap) -> Result<Option<String>, BearerError> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed =
        || BearerError::invalid_request("the Authorization header is not a Bearer token");
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

/// The access token, from the header or (POST, form-encoded) the body, but not both.
async fn presented_token(req: Request) -> Result<String, BearerError> {
    let from_header = header_token(req.headers())?;
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let from_body = if req.method() == Method::POST && is_form {
        match Params::from_request(req, &()).await {
            Ok(mut p) => p.take("access_token"),
            Err(e) => {
                return Err(BearerError {
                    status: e.status,
                    code: Some("invalid_request"),
                    description: e.description.clone(),
                });
            }
        }
    } else {
        None
    };
    match (from_header, from_body) {
        (Some(_), Some(_)) => Err(BearerError::invalid_request(
            "send the access token once, not in both header and body",
        )),
        (Some(t), None) | (None, Some(t)) => Ok(t),
        (None, None) => Err(BearerError::no_token()),
    }
}

impl Userinfo {
    /// The claims of the person behind `token`, as the token's scopes (and `claims`
    /// request) release them to its client.
    async fn claims(&self, token: &str) -> Result<Map<String, Value>, BearerError> {
        let claims = self
            .tokens
            .validate_access_token(token)
            .await
            .map_err(|e| BearerError::unavailable(&e))?
            .ok_or_else(|| {
                BearerError::invalid_token("the access token is invalid, expired or revoked")
            })?;
        // A client_credentials token is about the client, not a person: it has no
        // `auth_time`, and no user's profile may be read with it.
        if claims.auth_time.is_none() {
            return Err(BearerError::invalid_token(
                "this access token was issued to a client for itself, not for a user",
            ));
        }
        // The client it was issued to is gone: its tokens go with it.
        let client = self.clients.get(&claims.client_id).ok_or_else(|| {
            BearerError::invalid_token(
                "the client this access token was issued to is no longer registered",
            )
        })?;
        if !claims.aud.contains(&self.tokens.issuer) {
            return Err(BearerError::invalid_token(
                "the access token is not meant for this provider (aud)",
            ));
        }
        let mut scopes: Vec<String> = claims
            .scope
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if !scopes.iter().any(|s| s == "openid") {
            return Err(BearerError::new(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                "the access token was not issued with the openid scope",
            ));
        }
        let mut identity = self
            .identity(&claims)
            .await
            .map_err(|e| BearerError::unavailable(&e))?
            .ok_or_else(|| {
                BearerError::invalid_token("the user of this access token no longer exists")
            })?;
        // Claims the `claims` request parameter asked for at userinfo travel in the token.
        let requested = claims
            .userinfo_claims
            .as_ref()
            .map(|names| Value::Object(names.iter().map(|n| (n.clone(), Value::Null)).collect()));
        identity.groups =
            crate::federation::groups::for_client(&identity.groups, &client.config.groups);
        // `groups.always`, or groups in the access tokens (whose overage points here).
        let in_tokens = !client.config.access_token_claims.is_empty();
        if (client.config.groups.always || in_tokens) && !scopes.iter().any(|s| s == "groups") {
            scopes.push("groups".into());
        }
        let mut body = claims_for(&identity, &scopes, requested.as_ref(), &self.scopes);
        for (k, v) in &client.config.claims {
            body.entry(k.clone()).or_insert_with(|| v.clone());
        }
        // The same `sub` as the ID token (a token shape may make it per-client).
        body.insert("sub".into(), Value::String(claims.sub.to_string()));
        Ok(body)
    }
}

pub async fn handle(State(ui): State<Arc<Userinfo>>, req: Request) -> Response {
    let result = async {
        let token = presented_token(req).await?;
        ui.claims(&token).await
    }
    .await;
    match result {
        Ok(body) => {
            let mut resp = Json(body).into_response();
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => e.into_response(),
    }
}
