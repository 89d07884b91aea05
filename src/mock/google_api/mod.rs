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
mod tests {
    use super::*;
    use josekit::jws::JwsHeader;

    const NOW: i64 = 1_700_000_000;
    const READONLY: &str = "https://www.googleapis.com/auth/admin.directory.group.readonly";

    fn account() -> ServiceAccount {
        ServiceAccount::generate("http://127.0.0.1:1/google").expect("generate")
    }

    /// Signs `claims` as a connector would, with the key file's PEM.
    fn sign(a: &ServiceAccount, claims: &Value, kid: Option<&str>) -> String {
        let signer = RS256
            .signer_from_pem(&a.private_key_pem)
            .expect("the key file's PEM loads");
        let mut header = JwsHeader::new();
        header.set_token_type("JWT");
        if let Some(k) = kid {
            header.set_key_id(k);
        }
        let payload = serde_json::to_vec(claims).expect("json");
        josekit::jws::serialize_compact(&payload, &header, &signer).expect("sign")
    }

    fn claims(a: &ServiceAccount) -> Value {
        json!({
            "iss": CLIENT_EMAIL,
            "sub": "admin@example.com",
            "aud": a.token_uri,
            "scope": format!("{READONLY} openid"),
            "iat": NOW,
            "exp": NOW + 3600,
        })
    }

    fn user(name: &str, email: Option<&str>, groups: &[&str]) -> (String, MockUserConfig) {
        let u = MockUserConfig {
            username: name.into(),
            email: email.map(str::to_string),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..MockUserConfig::default()
        };
        (name.to_string(), u)
    }

    fn directory(hd: Option<&str>) -> Directory {
        let mut groups = BTreeMap::new();
        groups.insert(
            "Eng@Example.com".to_string(),
            MockDirectoryGroup {
                name: Some("Engineering".into()),
                member_of: vec!["ALL@example.com".into(), "staff@example.com".into()],
            },
        );
        Directory::new(hd.map(str::to_string), groups)
    }

    #[test]
    fn the_key_file_is_a_google_service_account_key() {
        let a = account();
        assert!(a.private_key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_eq!(a.private_key_id.len(), 40);
        assert!(a.private_key_id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a.client_id.len(), 21);
        assert!(a.client_id.chars().all(|c| c.is_ascii_digit()));
        assert!(!a.client_id.starts_with('0'));
        let token_uri = "http://127.0.0.1:1/google/service-account/token";
        assert_eq!(a.token_uri, token_uri);
    }

    #[test]
    fn a_signed_assertion_is_accepted_with_or_without_kid() {
        let a = account();
        let expected = Issued {
            sub: Some("admin@example.com".into()),
            scopes: vec![READONLY.into(), "openid".into()],
            expires: NOW + TOKEN_LIFETIME,
        };
        let with_kid = sign(&a, &claims(&a), Some(&a.private_key_id));
        assert_eq!(a.check_assertion(&with_kid, NOW), Ok(expected));
        let without = sign(&a, &claims(&a), None);
        assert!(a.check_assertion(&without, NOW + 3599).is_ok());
        let mut own = claims(&a);
        own["sub"] = json!(CLIENT_EMAIL);
        let own = sign(&a, &own, None);
        let sub = a.check_assertion(&own, NOW).map(|g| g.sub);
        assert_eq!(sub, Ok(None), "the account naming itself is no delegation");
    }

    #[test]
    fn a_tampered_or_foreign_assertion_is_refused() {
        let a = account();
        let refused = |jwt: &str| a.check_assertion(jwt, NOW) == Err(Refusal::BadSignature);
        let good = sign(&a, &claims(&a), None);
        let parts: Vec<&str> = good.split('.').collect();
        let mut other = claims(&a);
        other["sub"] = json!("root@example.com");
        let forged = crate::secret::b64url(other.to_string().as_bytes());
        assert!(refused(&format!("{}.{forged}.{}", parts[0], parts[2])));
        let none = crate::secret::b64url(br#"{"alg":"none"}"#);
        assert!(refused(&format!("{none}.{}.", parts[1])), "alg none");
        let hs = crate::secret::b64url(br#"{"alg":"HS256"}"#);
        assert!(
            refused(&format!("{hs}.{}.{}", parts[1], parts[2])),
            "alg HS256"
        );
        assert!(refused(&sign(&a, &claims(&a), Some("another-key"))), "kid");
        let b = account();
        assert!(refused(&sign(&b, &claims(&a), None)), "another key");
        assert!(refused("not a jwt"));
        assert!(refused(&"a".repeat(MAX_ASSERTION + 1)));
        assert!(!refused(&good));
    }

    #[test]
    fn wrong_claims_are_refused() {
        let a = account();
        let with = |change: &dyn Fn(&mut Value)| {
            let mut c = claims(&a);
            change(&mut c);
            a.check_assertion(&sign(&a, &c, None), NOW)
        };
        let google = with(&|c| c["aud"] = json!("https://oauth2.googleapis.com/token"));
        assert_eq!(google, Err(Refusal::BadAudience));
        let iss = with(&|c| c["iss"] = json!("someone@else.iam.gserviceaccount.com"));
        assert_eq!(iss, Err(Refusal::UnknownAccount));
        assert_eq!(
            with(&|c| c["scope"] = json!("  ")),
            Err(Refusal::InvalidScope)
        );
        let no_scope = with(&|c| {
            if let Some(m) = c.as_object_mut() {
                m.remove("scope");
            }
        });
        assert_eq!(no_scope, Err(Refusal::InvalidScope));
        let sub = with(&|c| c["sub"] = json!(42));
        assert_eq!(sub, Err(Refusal::UnauthorizedClient));
        let listed = with(&|c| {
            let aud = c["aud"].clone();
            c["aud"] = json!(["x", aud]);
        });
        assert!(listed.is_ok(), "aud may be a list");
    }

    #[test]
    fn long_lived_expired_or_future_assertions_are_refused() {
        let a = account();
        let at = |iat: Value, exp: Value, now: i64| {
            let mut c = claims(&a);
            c["iat"] = iat;
            c["exp"] = exp;
            a.check_assertion(&sign(&a, &c, None), now)
        };
        let bad = Err(Refusal::BadTimes);
        assert_eq!(at(json!(NOW), json!(NOW + 7200), NOW), bad, "two hours");
        assert_eq!(
            at(json!(NOW), json!(NOW + 3601), NOW),
            bad,
            "an hour and a second"
        );
        assert_eq!(
            at(json!(NOW), json!(NOW + 3600), NOW + 3600),
            bad,
            "expired"
        );
        assert_eq!(
            at(json!(NOW + 61), json!(NOW + 600), NOW),
            bad,
            "issued later"
        );
        assert_eq!(
            at(json!(NOW), json!(NOW - 1), NOW - 10),
            bad,
            "exp before iat"
        );
        assert_eq!(at(json!("now"), json!(NOW + 60), NOW), bad, "not a number");
        assert_eq!(at(Value::Null, json!(NOW + 60), NOW), bad, "no iat");
        assert!(
            at(json!(NOW + 60), json!(NOW + 600), NOW).is_ok(),
            "a minute's skew"
        );
        assert!(at(json!(NOW - 3000), json!(NOW + 600), NOW).is_ok());
    }

    #[test]
    fn a_users_direct_groups_include_bare_names_in_the_hosted_domain() {
        let d = directory(Some("example.com"));
        let users: Users = [
            user(
                "alice",
                Some("Alice@Example.com"),
                &["ENG@example.com", "Platform", " "],
            ),
            user("bob@corp.test", None, &["ops"]),
            user("carl", None, &["ops@example.com"]),
        ]
        .into_iter()
        .collect();
        let alice = d
            .direct_groups(&users, " alice@EXAMPLE.com")
            .expect("alice");
        let got: Vec<(&str, &str)> = alice
            .iter()
            .map(|(e, n)| (e.as_str(), n.as_str()))
            .collect();
        let expected = [
            ("eng@example.com", "Engineering"),
            ("platform@example.com", "Platform"),
        ];
        assert_eq!(got, expected);
        let bob = d.direct_groups(&users, "bob@corp.test").expect("bob");
        assert_eq!(bob.keys().collect::<Vec<_>>(), ["ops@example.com"]);
        let bob = directory(None).direct_groups(&users, "bob@corp.test");
        let keys: Vec<String> = bob.expect("bob").into_keys().collect();
        assert_eq!(keys, ["ops@corp.test"], "no hosted domain: the user's own");
        let carl = d
            .direct_groups(&users, "carl@example.com")
            .expect("as his ID token says");
        assert_eq!(carl.get("ops@example.com").map(String::as_str), Some("ops"));
        assert_eq!(d.direct_groups(&users, "dora@example.com"), None);
        assert_eq!(d.direct_groups(&users, ""), None);
    }

    #[test]
    fn a_groups_direct_groups_are_its_member_of() {
        let d = directory(Some("example.com"));
        let users = Users::new();
        let eng = d.direct_groups(&users, "eng@EXAMPLE.com").expect("eng");
        let got: Vec<(&str, &str)> = eng.iter().map(|(e, n)| (e.as_str(), n.as_str())).collect();
        assert_eq!(
            got,
            [("all@example.com", "all"), ("staff@example.com", "staff")]
        );
        assert_eq!(
            d.direct_groups(&users, "all@example.com"),
            None,
            "not configured"
        );
    }

    #[test]
    fn only_configured_users_in_the_hosted_domain_may_be_impersonated() {
        let users: Users = [
            user("admin", Some("admin@example.com"), &[]),
            user("eve", Some("eve@other.test"), &[]),
            user("plain", None, &[]),
        ]
        .into_iter()
        .collect();
        let d = directory(Some("example.com"));
        assert!(d.may_impersonate(&users, "ADMIN@example.com"));
        assert!(
            d.may_impersonate(&users, "plain@example.com"),
            "as its ID token says"
        );
        assert!(
            !d.may_impersonate(&users, "eve@other.test"),
            "outside the domain"
        );
        assert!(!d.may_impersonate(&users, "nobody@example.com"));
        assert!(!d.may_impersonate(&users, "admin@example.com.evil"));
        assert!(directory(None).may_impersonate(&users, "eve@other.test"));
    }

    #[test]
    fn pages_are_offsets_clamped_to_200() {
        assert_eq!(page_window(450, None, None), Some((0, 200)));
        assert_eq!(page_window(450, Some("200"), None), Some((200, 400)));
        assert_eq!(page_window(450, Some("400"), None), Some((400, 450)));
        assert_eq!(page_window(400, Some("200"), Some("")), Some((200, 400)));
        assert_eq!(page_window(5, None, Some("2")), Some((0, 2)));
        assert_eq!(page_window(5, Some("4"), Some("2")), Some((4, 5)));
        assert_eq!(page_window(5, None, Some("0")), Some((0, 1)));
        assert_eq!(page_window(5, None, Some("-3")), Some((0, 1)));
        assert_eq!(page_window(500, None, Some("1000")), Some((0, 200)));
        assert_eq!(page_window(0, None, None), Some((0, 0)));
        assert_eq!(page_window(5, Some("5"), None), Some((5, 5)));
        assert_eq!(page_window(5, Some("abc"), None), None);
        assert_eq!(page_window(5, Some("6"), None), None);
        assert_eq!(page_window(5, Some("-1"), None), None);
        assert_eq!(page_window(5, None, Some("ten")), None);
        let huge = format!("{}", u128::MAX);
        assert_eq!(page_window(5, Some(&huge), None), None);
        assert_eq!(page_window(5, None, Some(&huge)), None);
    }

    #[test]
    fn issued_tokens_expire_and_are_capped() {
        let t = IssuedTokens::default();
        let issued = |expires| Issued {
            sub: None,
            scopes: vec![],
            expires,
        };
        t.insert("a", issued(NOW + 10), NOW);
        assert!(t.get("a", NOW + 9).is_some());
        assert!(t.get("a", NOW + 10).is_none(), "expired");
        assert!(t.get("b", NOW).is_none(), "unknown");
        t.insert("b", issued(NOW + 100), NOW + 20);
        assert_eq!(
            t.0.lock().expect("lock").len(),
            1,
            "the expired one is gone"
        );
        {
            let mut map = t.0.lock().expect("lock");
            for i in 0..MAX_ISSUED - 1 {
                let key = sha256_b64url(format!("t{i}").as_bytes());
                map.insert(key, issued(NOW + 1000 + i as i64));
            }
        }
        t.insert("new", issued(NOW + 100_000), NOW);
        assert_eq!(t.0.lock().expect("lock").len(), MAX_ISSUED);
        assert!(
            t.get("b", NOW).is_none(),
            "the soonest to expire went first"
        );
        assert!(t.get("new", NOW).is_some());
        assert!(t.get("t0", NOW).is_some());
    }

    #[test]
    fn group_ids_are_stable_and_google_shaped() {
        let g = group_json("eng@example.com", "Engineering");
        let id = g["id"].as_str().expect("id");
        assert_eq!(id.len(), 15);
        assert!(id.starts_with('0'));
        assert_eq!(group_json("eng@example.com", "x")["id"], g["id"]);
        assert_ne!(group_json("ops@example.com", "x")["id"], g["id"]);
        assert_eq!(g["directMembersCount"], "0");
    }

    async fn answer(r: Response) -> (u16, Value) {
        let status = r.status().as_u16();
        let body = axum::body::to_bytes(r.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, serde_json::from_slice(&body).expect("json"))
    }

    #[tokio::test]
    async fn refusals_are_googles() {
        let (status, body) = answer(Refusal::BadTimes.into_response()).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], "invalid_grant");
        let d = body["error_description"].as_str().expect("description");
        assert!(d.starts_with("Invalid JWT: Token must be a short-lived token (60 minutes)"));
        assert!(
            d.contains("and in a reasonable timeframe. Check your iat"),
            "{d}"
        );
        let (status, body) = answer(Refusal::UnauthorizedClient.into_response()).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("unauthorized_client"))
        );
        let grant = Refusal::UnsupportedGrantType("password".into());
        let (_, body) = answer(grant.into_response()).await;
        assert_eq!(body["error_description"], "Invalid grant_type: password");
        let (status, body) = answer(DirectoryError::PermissionDenied.into_response()).await;
        assert_eq!(status, 403);
        let message = "Not Authorized to access this resource/api";
        let expected =
            json!({"error": {"code": 403, "message": message, "status": "PERMISSION_DENIED"}});
        assert_eq!(body, expected);
        let (status, _) = answer(DirectoryError::NotFound.into_response()).await;
        assert_eq!(status, 404);
    }
}
