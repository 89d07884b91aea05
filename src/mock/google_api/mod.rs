//! The google persona's Workspace side: what a `type: google` connector calls to read groups
//! with a service account and domain-wide delegation (the persona's ID tokens carry none).
//! `GET {mount}/service-account.json` is the key file (private key and all: users download
//! it); `POST {mount}/service-account/token` the JWT-bearer grant (RFC 7523 §2.1) checked as
//! Google checks it; `GET {mount}/admin/directory/v1/groups?userKey=…` the groups a user or
//! a group is a *direct* member of (the connector walks the rest), paged with `pageToken`;
//! `users.get` is in `users`. Errors are Google's: RFC 6749 JSON, `{"error": {…}}`.

pub mod users;
mod wire;

use wire::{bearer, group_json, hex, page_window};

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use josekit::jwk::KeyPair as _;
use josekit::jws::{JwsVerifier, RS256};
use serde_json::{Map, Value, json};

use super::state::{MockState, truncate_value};
use crate::config::{MockDirectoryGroup, MockUserConfig};
use crate::secret::{random_token, sha256, sha256_b64url};

pub const CLIENT_EMAIL: &str = "bridge-reader@mock-project.iam.gserviceaccount.com";
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
pub const GROUP_SCOPES: [&str; 2] = [
    "https://www.googleapis.com/auth/admin.directory.group.readonly",
    "https://www.googleapis.com/auth/admin.directory.group",
];
const CERTS: &str = "https://www.googleapis.com/robot/v1/metadata/x509/";
/// `expires_in` as Google's; live tokens kept; the longest assertion read.
const TOKEN_LIFETIME: i64 = 3599;
const MAX_ISSUED: usize = 10_000;
const MAX_ASSERTION: usize = 16 * 1024;

pub struct GoogleApi {
    state: Arc<MockState>,
    account: ServiceAccount,
    directory: Directory,
    issued: IssuedTokens,
}

/// Routes at `{mount}/service-account.json`, `{mount}/service-account/token`,
/// `{mount}/admin/directory/v1/groups`.
pub fn routes(mount: &str, api: Arc<GoogleApi>) -> Router {
    Router::new()
        .route(&format!("{mount}/service-account.json"), get(key_file))
        .route(&format!("{mount}/service-account/token"), post(token))
        .route(&format!("{mount}/admin/directory/v1/groups"), get(groups))
        .with_state(api)
}

impl GoogleApi {
    /// Generates the service account's RSA-2048 key (josekit, OpenSSL) once. `base` is the
    /// public URL of `mount`, e.g. `http://127.0.0.1:8080/google`.
    pub fn new(
        base: String,
        state: Arc<MockState>,
        hosted_domain: Option<String>,
        groups: BTreeMap<String, MockDirectoryGroup>,
    ) -> Result<Self, String> {
        Ok(Self {
            state,
            account: ServiceAccount::generate(&base)?,
            directory: Directory::new(hosted_domain, groups),
            issued: IssuedTokens::default(),
        })
    }

    /// The service-account key file (Google's JSON key format) a connector is configured with.
    pub fn key_file(&self) -> Value {
        let a = &self.account;
        let cert = CLIENT_EMAIL.replace('@', "%40");
        json!({
            "type": "service_account",
            "project_id": "mock-project",
            "private_key_id": a.private_key_id,
            "private_key": a.private_key_pem,
            "client_email": CLIENT_EMAIL,
            "client_id": a.client_id,
            "auth_uri": a.auth_uri,
            "token_uri": a.token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": format!("{CERTS}{cert}"),
            "universe_domain": "googleapis.com",
        })
    }

    /// The JWT-bearer grant: checks the assertion and whom it impersonates, issues a token.
    fn exchange(&self, grant_type: Option<&str>, jwt: Option<&str>) -> Result<Value, Refusal> {
        if grant_type != Some(JWT_BEARER) {
            let shown = truncate_value(grant_type.unwrap_or(""));
            return Err(Refusal::UnsupportedGrantType(shown));
        }
        let jwt = jwt.ok_or(Refusal::MissingAssertion)?;
        let now = self.state.clock.current();
        let grant = self.account.check_assertion(jwt, now)?;
        if let Some(sub) = &grant.sub {
            let users = self.state.users.read().unwrap_or_else(|e| e.into_inner());
            if !self.directory.may_impersonate(&users, sub) {
                return Err(Refusal::UnauthorizedClient);
            }
        }
        let token = format!("ya29.mock-{}", random_token(32));
        self.issued.insert(&token, grant, now);
        Ok(json!({"access_token": token, "expires_in": TOKEN_LIFETIME, "token_type": "Bearer"}))
    }

    /// `groups.list?userKey=`: one page of the direct groups of a user or a group.
    fn list_groups(&self, bearer: Option<&str>, q: &Params) -> Result<Value, DirectoryError> {
        let now = self.state.clock.current();
        let issued = bearer.and_then(|t| self.issued.get(t, now));
        let issued = issued.ok_or(DirectoryError::Unauthenticated)?;
        if !issued.may_read_groups() {
            return Err(DirectoryError::PermissionDenied);
        }
        let key = q.get("userKey").map(|k| k.trim()).filter(|k| !k.is_empty());
        let key = key.ok_or(DirectoryError::InvalidInput)?;
        let users = self.state.users.read().unwrap_or_else(|e| e.into_inner());
        let direct = self.directory.direct_groups(&users, key);
        let direct = direct.ok_or(DirectoryError::NotFound)?;
        let param = |k: &str| q.get(k).map(String::as_str);
        let window = page_window(direct.len(), param("pageToken"), param("maxResults"));
        let (start, end) = window.ok_or(DirectoryError::InvalidInput)?;
        let page = direct.iter().skip(start).take(end.saturating_sub(start));
        let groups: Vec<Value> = page.map(|(e, name)| group_json(e, name)).collect();
        let mut body = json!({"kind": "admin#directory#groups", "etag": "\"mock\""});
        // Google leaves `groups` out of an empty answer.
        if !groups.is_empty() {
            body["groups"] = json!(groups);
        }
        if end < direct.len() {
            body["nextPageToken"] = json!(end.to_string());
        }
        Ok(body)
    }
}

type Params = HashMap<String, String>;
type Users = HashMap<String, MockUserConfig>;
type Api = State<Arc<GoogleApi>>;

async fn key_file(State(api): Api) -> Response {
    axum::Json(api.key_file()).into_response()
}

async fn token(State(api): Api, body: Bytes) -> Response {
    let form: Params = form_urlencoded::parse(&body).into_owned().collect();
    let param = |k: &str| form.get(k).map(String::as_str);
    let answer = api.exchange(param("grant_type"), param("assertion"));
    let no_store = [(header::CACHE_CONTROL, "no-store")];
    answer.map(|a| (no_store, axum::Json(a))).into_response()
}

async fn groups(State(api): Api, headers: HeaderMap, Query(q): Query<Params>) -> Response {
    api.list_groups(bearer(&headers), &q)
        .map(axum::Json)
        .into_response()
}

/// The service account: its key pair, and what its key file says.
struct ServiceAccount {
    /// 40 hex digits, from the public key: the `kid` an assertion may name.
    private_key_id: String,
    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as Google's key files carry it.
    private_key_pem: String,
    verifier: Box<dyn JwsVerifier>,
    client_id: String,
    auth_uri: String,
    token_uri: String,
}

impl ServiceAccount {
    fn generate(base: &str) -> Result<Self, String> {
        let failed = |e: josekit::JoseError| format!("the service account's key: {e}");
        let pair = RS256.generate_key_pair(2048).map_err(failed)?;
        let public_der = pair.to_der_public_key();
        let verifier = RS256.verifier_from_der(&public_der).map_err(failed)?;
        let private_key_pem = String::from_utf8(pair.to_pem_private_key())
            .map_err(|_| "the service account's PEM key is not UTF-8".to_string())?;
        Ok(Self {
            private_key_id: hex(&sha256(&public_der)[..20]),
            private_key_pem,
            verifier: Box::new(verifier),
            client_id: super::persona::numeric(&format!("google-service-account:{base}"), 21),
            auth_uri: format!("{base}/authorize"),
            token_uri: format!("{base}/service-account/token"),
        })
    }

    /// Google's checks of a JWT-bearer assertion at `now`: an RS256 signature by this key
    /// (a `kid`, if any, is this key's), `iss` this account, `aud` the token URI, `iat` and
    /// `exp` at most an hour apart around `now`, and some `scope`. Answers the token's grant.
    fn check_assertion(&self, assertion: &str, now: i64) -> Result<Issued, Refusal> {
        if assertion.len() > MAX_ASSERTION {
            return Err(Refusal::BadSignature);
        }
        let kid = self.private_key_id.as_str();
        let verifier: &dyn JwsVerifier = &*self.verifier;
        let (payload, _) = josekit::jws::deserialize_compact_with_selector(assertion, |h| {
            Ok(h.key_id().is_none_or(|k| k == kid).then_some(verifier))
        })
        .map_err(|_| Refusal::BadSignature)?;
        let claims: Map<String, Value> =
            serde_json::from_slice(&payload).map_err(|_| Refusal::BadSignature)?;
        let claim = |k: &str| claims.get(k).and_then(Value::as_str);
        if claim("iss") != Some(CLIENT_EMAIL) {
            return Err(Refusal::UnknownAccount);
        }
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => claim("aud").into_iter().collect(),
        };
        if !audiences.contains(&self.token_uri.as_str()) {
            return Err(Refusal::BadAudience);
        }
        let time = |k: &str| claims.get(k).and_then(Value::as_i64);
        let times = time("iat").zip(time("exp"));
        if !times.is_some_and(|(iat, exp)| reasonable_timeframe(iat, exp, now)) {
            return Err(Refusal::BadTimes);
        }
        let scope = claim("scope").unwrap_or_default();
        let scopes: Vec<String> = scope.split_whitespace().map(str::to_string).collect();
        if scopes.is_empty() {
            return Err(Refusal::InvalidScope);
        }
        let sub = match claims.get("sub") {
            None | Some(Value::Null) => None,
            // The account naming itself is no delegation.
            Some(Value::String(s)) if s.eq_ignore_ascii_case(CLIENT_EMAIL) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(Refusal::UnauthorizedClient),
        };
        let expires = now.saturating_add(TOKEN_LIFETIME);
        Ok(Issued {
            sub,
            scopes,
            expires,
        })
    }
}

/// Google's limits: `exp` after `now` and after `iat`, `iat` at most a minute ahead of
/// `now`, and an hour at most between them.
fn reasonable_timeframe(iat: i64, exp: i64, now: i64) -> bool {
    let live = exp > now && exp > iat;
    live && iat <= now.saturating_add(60) && exp.saturating_sub(iat) <= 3600
}

/// Why the token endpoint refuses, each answered as Google answers it.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    UnsupportedGrantType(String),
    MissingAssertion,
    BadSignature,
    UnknownAccount,
    BadAudience,
    BadTimes,
    InvalidScope,
    UnauthorizedClient,
}

const SHORT_LIVED: &str = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a \
    reasonable timeframe. Check your iat and exp values in the JWT claim.";
const INVALID_SCOPE: &str = "Invalid OAuth scope or ID token audience provided.";
const UNAUTHORIZED_CLIENT: &str = "Client is unauthorized to retrieve access tokens using this \
    method, or client not authorized for any of the scopes requested.";

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = match self {
            Self::UnauthorizedClient => StatusCode::UNAUTHORIZED,
            _ => StatusCode::BAD_REQUEST,
        };
        let of = |error, d: &str| (error, d.to_string());
        let grant = |d: &str| of("invalid_grant", d);
        let (error, description) = match self {
            Self::UnsupportedGrantType(g) => {
                ("unsupported_grant_type", format!("Invalid grant_type: {g}"))
            }
            Self::MissingAssertion => {
                of("invalid_request", "Missing required parameter: assertion")
            }
            Self::BadSignature => grant("Invalid JWT Signature."),
            Self::UnknownAccount => grant("Invalid grant: account not found"),
            Self::BadAudience => grant("Invalid JWT: Failed audience check."),
            Self::BadTimes => grant(SHORT_LIVED),
            Self::InvalidScope => of("invalid_scope", INVALID_SCOPE),
            Self::UnauthorizedClient => of("unauthorized_client", UNAUTHORIZED_CLIENT),
        };
        let body = json!({"error": error, "error_description": description});
        let no_store = [(header::CACHE_CONTROL, "no-store")];
        (status, no_store, axum::Json(body)).into_response()
    }
}

/// Why the Directory API refuses, as Google's JSON error.
#[derive(Debug, PartialEq, Eq)]
enum DirectoryError {
    Unauthenticated,
    PermissionDenied,
    NotFound,
    InvalidInput,
}

const UNAUTHENTICATED: &str = "Request had invalid authentication credentials.";
const NOT_AUTHORIZED: &str = "Not Authorized to access this resource/api";

impl IntoResponse for DirectoryError {
    fn into_response(self) -> Response {
        let (status, message, code) = match self {
            Self::Unauthenticated => (401, UNAUTHENTICATED, "UNAUTHENTICATED"),
            Self::PermissionDenied => (403, NOT_AUTHORIZED, "PERMISSION_DENIED"),
            Self::NotFound => (404, "Resource Not Found: userKey", "NOT_FOUND"),
            Self::InvalidInput => (400, "Invalid Input", "INVALID_ARGUMENT"),
        };
        let body = json!({"error": {"code": status, "message": message, "status": code}});
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        (status, axum::Json(body)).into_response()
    }
}

/// An access token this API issued.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Issued {
    sub: Option<String>,
    scopes: Vec<String>,
    expires: i64,
}

impl Issued {
    /// Delegated (a `sub`), with a Directory group scope.
    fn may_read_groups(&self) -> bool {
        let scopes = &self.scopes;
        self.sub.is_some() && scopes.iter().any(|s| GROUP_SCOPES.contains(&s.as_str()))
    }
}

/// The live access tokens, by the SHA-256 of the token, at most [`MAX_ISSUED`].
#[derive(Default)]
struct IssuedTokens(Mutex<HashMap<String, Issued>>);

impl IssuedTokens {
    /// Keeps `issued` under `token`; drops the expired, and the soonest to expire when full.
    fn insert(&self, token: &str, issued: Issued, now: i64) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, t| t.expires > now);
        if map.len() >= MAX_ISSUED {
            let soonest = map.iter().min_by_key(|(_, t)| t.expires);
            if let Some(k) = soonest.map(|(k, _)| k.clone()) {
                map.remove(&k);
            }
        }
        map.insert(sha256_b64url(token.as_bytes()), issued);
    }

    /// The token's grant, unless it is unknown or has expired.
    fn get(&self, token: &str, now: i64) -> Option<Issued> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let found = map.get(&sha256_b64url(token.as_bytes()));
        found.filter(|t| t.expires > now).cloned()
    }
}

/// The Workspace directory: its domain, and its groups by lower-case e-mail. Its users are
/// the issuer's (`MockState::users`), read on each request.
struct Directory {
    hosted_domain: Option<String>,
    groups: BTreeMap<String, MockDirectoryGroup>,
}

/// A user's e-mail as the mock issuer's ID tokens carry it (`MockState::identity`), lower-case.
fn user_email(username: &str, u: &MockUserConfig) -> String {
    match &u.email {
        Some(e) => e.to_lowercase(),
        None if username.contains('@') => username.to_lowercase(),
        None => format!("{username}@example.com").to_lowercase(),
    }
}

impl Directory {
    fn new(hosted_domain: Option<String>, groups: BTreeMap<String, MockDirectoryGroup>) -> Self {
        let lower = |s: &String| s.trim().to_lowercase();
        let groups = groups.into_iter().map(|(email, mut g)| {
            g.member_of = g.member_of.iter().map(lower).collect();
            (lower(&email), g)
        });
        Self {
            hosted_domain: hosted_domain.as_ref().map(lower),
            groups: groups.collect(),
        }
    }

    /// Whether an assertion may impersonate `sub`: a configured user, in the hosted domain.
    fn may_impersonate(&self, users: &Users, sub: &str) -> bool {
        let sub = sub.trim().to_lowercase();
        let domain = sub.rsplit_once('@').map(|(_, d)| d);
        let in_domain = self.hosted_domain.is_none() || self.hosted_domain.as_deref() == domain;
        in_domain && users.iter().any(|(n, u)| user_email(n, u) == sub)
    }

    /// The groups `key` (a user's or a group's e-mail, any case) is a direct member of:
    /// e-mail to name. `None` when it is neither.
    fn direct_groups(&self, users: &Users, key: &str) -> Option<BTreeMap<String, String>> {
        let key = key.trim().to_lowercase();
        let mut found: Option<BTreeMap<String, String>> = None;
        for (username, u) in users {
            if user_email(username, u) == key {
                found
                    .get_or_insert_with(BTreeMap::new)
                    .extend(self.groups_of_user(username, u));
            }
        }
        if found.is_some() {
            return found;
        }
        let named = |e: &String| (e.clone(), self.group_name(e, None));
        if let Some(g) = self.groups.get(&key) {
            return Some(g.member_of.iter().map(named).collect());
        }
        // A group that has members exists, in no group of its own unless configured.
        users
            .iter()
            .any(|(n, u)| self.groups_of_user(n, u).contains_key(&key))
            .then(BTreeMap::new)
    }

    /// A user's direct groups: e-mail to name (a bare name is a group of the domain).
    fn groups_of_user(&self, username: &str, u: &MockUserConfig) -> BTreeMap<String, String> {
        let email = user_email(username, u);
        let own = email.rsplit_once('@').map(|(_, d)| d.to_string());
        let domain = self.hosted_domain.clone().or(own).unwrap_or_default();
        let mut out = BTreeMap::new();
        for g in u.groups.iter().map(|g| g.trim()).filter(|g| !g.is_empty()) {
            let bare = (!g.contains('@')).then_some(g);
            let e = match bare {
                Some(name) => format!("{}@{domain}", name.to_lowercase()),
                None => g.to_lowercase(),
            };
            let name = self.group_name(&e, bare);
            out.insert(e, name);
        }
        out
    }

    /// A group's `name`: as configured, else the bare name it was given by, else its
    /// e-mail's local part.
    fn group_name(&self, email: &str, bare: Option<&str>) -> String {
        let configured = self.groups.get(email).and_then(|g| g.name.clone());
        let local = || email.split('@').next().unwrap_or(email).to_string();
        let given = configured.or_else(|| bare.map(str::to_string));
        given.unwrap_or_else(local)
    }
}

#[cfg(test)]
mod tests;
