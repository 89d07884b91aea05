//! The okta persona's API service app: what a bridge uses instead of an API token to read
//! the Groups API. `GET {org}/service-app.json` hands out the app's `client_id` and private
//! key (generated at the first call; a mock, so handing it out is the point), and
//! `POST {org}/oauth2/v1/token` takes `client_credentials` with a `private_key_jwt` client
//! assertion (RFC 7523 §2.2), checked as Okta does (signature, `iss` = `sub` = the client,
//! `aud` the token URL, at most an hour long, a `jti` used once), and answers a scoped access
//! token the Groups API accepts as `Authorization: Bearer`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use josekit::jwk::KeyPair as _;
use josekit::jws::{JwsVerifier, RS256};
use serde_json::{Map, Value, json};

use crate::clock::{AdjustableClock, Clock as _};
use crate::secret::{random_token, sha256_b64url};

const CLIENT_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Issued tokens and seen `jti`s kept at most.
const MAX_KEPT: usize = 10_000;

struct Key {
    pem: String,
    kid: String,
    verifier: Box<dyn JwsVerifier>,
}

pub struct ServiceApp {
    client_id: String,
    token_url: String,
    clock: Arc<AdjustableClock>,
    key: tokio::sync::OnceCell<Key>,
    /// sha256(token) → (scopes, expires).
    issued: Mutex<HashMap<String, (Vec<String>, i64)>>,
    jtis: Mutex<HashSet<String>>,
}

/// Routes at `{mount}/service-app.json` and `{mount}/oauth2/v1/token`.
pub fn routes(mount: &str, app: Arc<ServiceApp>) -> Router {
    Router::new()
        .route(&format!("{mount}/service-app.json"), get(key_file))
        .route(&format!("{mount}/oauth2/v1/token"), post(token))
        .with_state(app)
}

impl ServiceApp {
    /// `org` is the public URL of the org (`http://127.0.0.1:8080/okta`).
    pub fn new(org: &str, clock: Arc<AdjustableClock>) -> Self {
        Self {
            client_id: format!(
                "0oa{}",
                &sha256_b64url(org.as_bytes())[..17].replace(['-', '_'], "x")
            ),
            token_url: format!("{org}/oauth2/v1/token"),
            clock,
            key: tokio::sync::OnceCell::new(),
            issued: Mutex::new(HashMap::new()),
            jtis: Mutex::new(HashSet::new()),
        }
    }

    /// Whether `token` is one of this app's live tokens with `scope`.
    pub fn accepts(&self, token: &str, scope: &str) -> bool {
        let now = self.clock.now();
        let issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        issued
            .get(&sha256_b64url(token.as_bytes()))
            .is_some_and(|(scopes, exp)| *exp > now && scopes.iter().any(|s| s == scope))
    }

    async fn key(&self) -> Result<&Key, String> {
        self.key
            .get_or_try_init(|| async {
                tokio::task::spawn_blocking(generate)
                    .await
                    .map_err(|e| e.to_string())?
            })
            .await
    }

    /// The client's claims if `assertion` is its valid, unused client assertion.
    fn check(&self, key: &Key, assertion: &str) -> Result<(), &'static str> {
        let verifier: &dyn JwsVerifier = &*key.verifier;
        let (payload, _) = josekit::jws::deserialize_compact_with_selector(assertion, |h| {
            Ok(h.key_id().is_none_or(|k| k == key.kid).then_some(verifier))
        })
        .map_err(|_| "The client_assertion signature is invalid.")?;
        let claims: Map<String, Value> = serde_json::from_slice(&payload)
            .map_err(|_| "The client_assertion is not valid JSON.")?;
        let text = |k: &str| claims.get(k).and_then(Value::as_str);
        if text("iss") != Some(&self.client_id) || text("sub") != Some(&self.client_id) {
            return Err("The client_assertion token has an invalid issuer or subject.");
        }
        if text("aud") != Some(&self.token_url) {
            return Err(
                "The audience claim for client_assertion must be the endpoint invoked for the request.",
            );
        }
        let now = self.clock.now();
        let (iat, exp) = (
            claims.get("iat").and_then(Value::as_i64),
            claims.get("exp").and_then(Value::as_i64),
        );
        match (iat, exp) {
            (Some(iat), Some(exp)) if exp > now && iat <= now + 60 && exp - iat <= 3600 => {}
            _ => return Err("The client_assertion token is expired or lasts over an hour."),
        }
        let jti = text("jti").ok_or("The client_assertion token must have a jti claim.")?;
        let mut jtis = self.jtis.lock().unwrap_or_else(|e| e.into_inner());
        if jtis.len() >= MAX_KEPT {
            jtis.clear();
        }
        if !jtis.insert(jti.to_string()) {
            return Err("The client_assertion token has already been used.");
        }
        Ok(())
    }
}

fn generate() -> Result<Key, String> {
    let pair = RS256.generate_key_pair(2048).map_err(|e| e.to_string())?;
    let der = pair.to_der_public_key();
    let pem = String::from_utf8(pair.to_pem_private_key()).map_err(|e| e.to_string())?;
    let verifier = RS256.verifier_from_der(&der).map_err(|e| e.to_string())?;
    Ok(Key {
        pem,
        kid: sha256_b64url(&der)[..16].to_string(),
        verifier: Box::new(verifier),
    })
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

async fn key_file(State(app): State<Arc<ServiceApp>>) -> Response {
    match app.key().await {
        Ok(k) => axum::Json(json!({
            "client_id": app.client_id,
            "key_id": k.kid,
            "private_key": k.pem,
            "token_url": app.token_url,
        }))
        .into_response(),
        Err(_) => oauth_error(StatusCode::SERVICE_UNAVAILABLE, "server_error", "no key"),
    }
}

async fn token(State(app): State<Arc<ServiceApp>>, body: Bytes) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |k: &str| form.get(k).map(String::as_str);
    if field("grant_type") != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server.",
        );
    }
    let Some(key) = app.key.get() else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The client has no registered key.",
        );
    };
    let assertion = match (field("client_assertion_type"), field("client_assertion")) {
        (Some(CLIENT_ASSERTION), Some(a)) if a.len() <= 16 * 1024 => a,
        _ => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Client authentication failed.",
            );
        }
    };
    if let Err(why) = app.check(key, assertion) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", why);
    }
    let scopes: Vec<String> = field("scope")
        .unwrap_or_default()
        .split_whitespace()
        .filter(|s| s.starts_with("okta."))
        .map(str::to_string)
        .collect();
    if scopes.is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "The authorization server resource does not have any configured default scopes, 'scope' must be provided.",
        );
    }
    let access = random_token(32);
    let now = app.clock.now();
    {
        let mut issued = app.issued.lock().unwrap_or_else(|e| e.into_inner());
        issued.retain(|_, (_, exp)| *exp > now);
        if issued.len() < MAX_KEPT {
            issued.insert(
                sha256_b64url(access.as_bytes()),
                (scopes.clone(), now + 3600),
            );
        }
    }
    axum::Json(json!({
        "token_type": "Bearer",
        "expires_in": 3600,
        "access_token": access,
        "scope": scopes.join(" "),
    }))
    .into_response()
}
