//! The mock issuer's middleware: records each request (secrets redacted) and applies the
//! first fault rule that matches it.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::faults::Effect;
use super::state::{MockState, RecordedRequest, truncate_value};
use crate::clock::Clock as _;

/// The largest body read for the log; larger is a `413` (the endpoints take less anyway).
const MAX_INSPECTED_BODY: usize = 1024 * 1024;

/// Parameters whose values never appear in the request log.
const SECRET_PARAMS: &[&str] = &[
    "client_secret",
    "password",
    "code",
    "code_verifier",
    "refresh_token",
    "access_token",
    "token",
    "id_token_hint",
    "csrf",
    "client_assertion",
];

/// Which endpoint a path (below the issuer's path) is.
fn endpoint_of(rest: &str) -> &'static str {
    match rest {
        "/.well-known/openid-configuration" | "/.well-known/oauth-authorization-server" => {
            "discovery"
        }
        "/jwks" => "jwks",
        "/token" => "token",
        "/authorize" => "authorize",
        "/userinfo" => "userinfo",
        "/introspect" => "introspect",
        "/revoke" => "revoke",
        "/logout" => "logout",
        "/login" => "login",
        "/consent" => "consent",
        r if r.contains("/v1.0/") => "graph",
        _ => "other",
    }
}

fn basic_client_id(req: &Request) -> Option<String> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let id = text.split(':').next()?;
    percent_encoding::percent_decode_str(&id.replace('+', " "))
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

pub async fn inspect(State(mock): State<Arc<MockState>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let rest = path.strip_prefix(&mock.base).unwrap_or(&path).to_string();
    let endpoint = endpoint_of(&rest);
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_INSPECTED_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return crate::oidc::error::OAuthError::invalid_request(format!(
                "request body exceeds {MAX_INSPECTED_BODY} bytes"
            ))
            .with_status(StatusCode::PAYLOAD_TOO_LARGE)
            .into_response();
        }
    };
    let req = Request::from_parts(parts, Body::from(bytes.clone()));

    let mut params = Map::new();
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let query = req.uri().query().unwrap_or("").as_bytes().to_vec();
    for source in [&query[..], if is_form { &bytes[..] } else { &[][..] }] {
        for (k, v) in form_urlencoded::parse(source) {
            let v = if SECRET_PARAMS.contains(&k.as_ref()) {
                "[redacted]".to_string()
            } else {
                truncate_value(&v)
            };
            if params.len() < 64 {
                params.insert(truncate_value(&k), Value::String(v));
            }
        }
    }
    let client_id = params
        .get("client_id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| basic_client_id(&req));
    let grant_type = params
        .get("grant_type")
        .and_then(Value::as_str)
        .map(str::to_string);
    mock.record(RecordedRequest {
        time: mock.clock.now(),
        method: req.method().to_string(),
        path: truncate_value(&path),
        endpoint: endpoint.to_string(),
        client_id: client_id.as_deref().map(truncate_value),
        params,
    });

    let Some(rule) = mock
        .faults
        .take(endpoint, client_id.as_deref(), grant_type.as_deref())
    else {
        return next.run(req).await;
    };
    tracing::warn!(
        event = "fault_injected",
        rule = %rule.id,
        endpoint,
        client_id = client_id.as_deref().unwrap_or(""),
        effect = ?rule.effect,
        "mock fault injected"
    );
    match rule.effect {
        Effect::DelayMs(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            next.run(req).await
        }
        Effect::Status { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            (status, body.unwrap_or_default()).into_response()
        }
        Effect::OauthError {
            error,
            error_description,
            status,
        } => {
            let status =
                StatusCode::from_u16(status.unwrap_or(400)).unwrap_or(StatusCode::BAD_REQUEST);
            let mut body = json!({ "error": error });
            if let Some(d) = error_description {
                body["error_description"] = json!(d);
            }
            (
                status,
                [(header::CACHE_CONTROL, "no-store")],
                axum::Json(body),
            )
                .into_response()
        }
        Effect::Drop => {
            // A body that fails at once: the server closes the connection mid-response.
            let stream = futures_util::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::other("fault: connection dropped"))
            });
            Response::new(Body::from_stream(stream))
        }
    }
}
