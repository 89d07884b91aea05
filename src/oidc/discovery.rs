//! OpenID Connect Discovery 1.0 §4 and RFC 8414 metadata, and the JWKS (RFC 7517).
//!
//! Both are served from bytes serialised once: discovery at start, JWKS whenever the set of
//! published keys changes. Discovery advertises only what is implemented.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::Response;

use crate::config::Config;
use crate::keys::KeyManager;

pub const JWKS_PATH: &str = "/jwks";
pub const TOKEN_PATH: &str = "/token";
pub const INTROSPECT_PATH: &str = "/introspect";
pub const REVOKE_PATH: &str = "/revoke";

/// The discovery document, serialised.
#[derive(Clone)]
pub struct Discovery(pub Bytes);

impl Discovery {
    pub fn build(config: &Config) -> Self {
        let iss = &config.issuer;
        let auth_methods = ["client_secret_basic", "client_secret_post", "none"];
        let doc = serde_json::json!({
            "issuer": iss,
            "jwks_uri": format!("{iss}{JWKS_PATH}"),
            "token_endpoint": format!("{iss}{TOKEN_PATH}"),
            "introspection_endpoint": format!("{iss}{INTROSPECT_PATH}"),
            "revocation_endpoint": format!("{iss}{REVOKE_PATH}"),
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": auth_methods,
            "introspection_endpoint_auth_methods_supported": auth_methods,
            "revocation_endpoint_auth_methods_supported": auth_methods,
            "access_token_signing_alg_values_supported": [config.signing.algorithm.as_str()],
        });
        Self(Bytes::from(doc.to_string()))
    }
}

fn json(bytes: Bytes) -> Response {
    let mut resp = Response::new(Body::from(bytes));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    resp
}

pub async fn get(State(discovery): State<Discovery>) -> Response {
    json(discovery.0)
}

pub async fn jwks(State(keys): State<Arc<KeyManager>>) -> Response {
    let mut resp = json(keys.jwks());
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    resp
}
