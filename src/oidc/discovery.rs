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
pub const AUTHORIZE_PATH: &str = "/authorize";
pub const USERINFO_PATH: &str = "/userinfo";
pub const LOGOUT_PATH: &str = "/logout";
pub const DEVICE_AUTHORIZATION_PATH: &str = "/device_authorization";
pub const DEVICE_PATH: &str = "/device";

/// The discovery document, serialised.
#[derive(Clone)]
pub struct Discovery(pub Bytes);

impl Discovery {
    pub fn build(config: &Config) -> Self {
        let iss = &config.issuer;
        let agents = Agents::of(config);
        let mut auth_methods = vec!["client_secret_basic", "client_secret_post", "none"];
        if !agents.assertion_algs.is_empty() {
            auth_methods.insert(2, "private_key_jwt");
        }
        let alg = [config.signing.algorithm.as_str()];
        let mut scopes: Vec<&str> = crate::oidc::authorize::request::SUPPORTED_SCOPES.to_vec();
        scopes.extend(config.scopes.keys().map(String::as_str));
        let mut claims: Vec<&str> = vec![
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "at_hash",
            "sid",
            "amr",
            "name",
            "preferred_username",
            "email",
            "email_verified",
            "groups",
            "roles",
        ];
        for c in config.scopes.values().flatten() {
            if !claims.contains(&c.as_str()) {
                claims.push(c);
            }
        }
        let doc = serde_json::json!({
            "issuer": iss,
            "authorization_endpoint": format!("{iss}{AUTHORIZE_PATH}"),
            "token_endpoint": format!("{iss}{TOKEN_PATH}"),
            "userinfo_endpoint": format!("{iss}{USERINFO_PATH}"),
            "jwks_uri": format!("{iss}{JWKS_PATH}"),
            "end_session_endpoint": format!("{iss}{LOGOUT_PATH}"),
            "introspection_endpoint": format!("{iss}{INTROSPECT_PATH}"),
            "revocation_endpoint": format!("{iss}{REVOKE_PATH}"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "form_post"],
            "grant_types_supported": agents.grant_types,
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": alg,
            "access_token_signing_alg_values_supported": alg,
            "token_endpoint_auth_methods_supported": &auth_methods,
            "introspection_endpoint_auth_methods_supported": &auth_methods,
            "revocation_endpoint_auth_methods_supported": &auth_methods,
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": scopes,
            "claims_supported": claims,
            "claims_parameter_supported": true,
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
            "authorization_response_iss_parameter_supported": true,
            "prompt_values_supported": ["none", "login", "consent", "select_account"],
            "display_values_supported": ["page"],
        });
        let mut doc = doc;
        agents.advertise(iss, &mut doc);
        Self(Bytes::from(doc.to_string()))
    }
}

/// What the configured clients use of the agent features: each is advertised only when
/// some client is configured for it (RFC 8414 §2, RFC 8628 §4, Back-Channel Logout §2.1).
struct Agents {
    grant_types: Vec<&'static str>,
    assertion_algs: Vec<&'static str>,
    device: bool,
    backchannel: bool,
}

impl Agents {
    fn of(config: &Config) -> Self {
        use crate::config::GrantType;
        let clients = &config.clients;
        let uses = |g: GrantType| clients.iter().any(|c| c.grant_types.contains(&g));
        let mut grant_types = vec!["authorization_code", "refresh_token", "client_credentials"];
        for g in [GrantType::DeviceCode, GrantType::TokenExchange] {
            if uses(g) {
                grant_types.push(g.as_str());
            }
        }
        let mut assertion_algs = Vec::new();
        for c in clients {
            if c.token_endpoint_auth_method == Some(crate::config::AuthMethod::PrivateKeyJwt) {
                let alg = c.agents.assertion_alg().as_str();
                if !assertion_algs.contains(&alg) {
                    assertion_algs.push(alg);
                }
            }
        }
        Self {
            grant_types,
            assertion_algs,
            device: uses(GrantType::DeviceCode),
            backchannel: clients
                .iter()
                .any(|c| c.agents.backchannel_logout_uri.is_some()),
        }
    }

    fn advertise(&self, iss: &str, doc: &mut serde_json::Value) {
        if self.device {
            doc["device_authorization_endpoint"] =
                format!("{iss}{DEVICE_AUTHORIZATION_PATH}").into();
        }
        if !self.assertion_algs.is_empty() {
            for endpoint in ["token", "introspection", "revocation"] {
                doc[format!("{endpoint}_endpoint_auth_signing_alg_values_supported")] =
                    serde_json::json!(self.assertion_algs);
            }
        }
        if self.backchannel {
            doc["backchannel_logout_supported"] = true.into();
            doc["backchannel_logout_session_supported"] = true.into();
        }
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
    keys.wait_active().await;
    let mut resp = json(keys.jwks());
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    resp
}
