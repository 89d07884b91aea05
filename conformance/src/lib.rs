//! Harness for the conformance suite: the real server on `127.0.0.1:0` (SQLite or
//! PostgreSQL), a browser that keeps cookies and fills in the login and consent forms, and a
//! relying party built on the `openidconnect` crate.
//!
//! The tests in `tests/plans/` mirror the OpenID Foundation's Basic OP, Config OP,
//! RP-Initiated Logout plans and `oidcc-refresh-token`, one test per module.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use oidc_bridge::app::{AppState, Application, Options};
use oidc_bridge::clock::AdjustableClock;
use oidc_bridge::config::DatabaseUrl;
use oidc_bridge::storage::{PostgresStorage, Storage};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenClaims, CoreProviderMetadata, CoreTokenResponse,
};
use openidconnect::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse as _, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse as _,
};
use serde_json::Value;

pub const CALLBACK: &str = "https://rp.example.test/callback";
pub const POST_LOGOUT: &str = "https://rp.example.test/post_logout_redirect";
pub const USER: &str = "alice";
pub const PASSWORD: &str = "correct horse battery staple";
pub const SECRET: &str = "conformance-secret+with%odd:chars/1";

/// The three static clients the Basic plan needs, and a public one.
const CONFIG: &str = r#"
clients:
  - id: client
    name: Conformance RP
    secret: "conformance-secret+with%odd:chars/1"
    redirect_uris: [https://rp.example.test/callback]
    post_logout_redirect_uris: [https://rp.example.test/post_logout_redirect]
    grant_types: [authorization_code, refresh_token]
  - id: client_secret_post
    secret: "conformance-secret+with%odd:chars/1"
    token_endpoint_auth_method: client_secret_post
    redirect_uris: [https://rp.example.test/callback]
    grant_types: [authorization_code]
  - id: client2
    secret: "conformance-secret+with%odd:chars/1"
    redirect_uris: [https://rp.example.test/callback]
    grant_types: [authorization_code, refresh_token]
  - id: public
    redirect_uris: [https://rp.example.test/callback]
    grant_types: [authorization_code, refresh_token]
users:
  - username: alice
    password: "correct horse battery staple"
    email: alice@example.com
    name: Alice Liddell
    groups: [Wonderland, Developers]
"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The provider under test.
pub struct Op {
    pub issuer: String,
    pub clock: Arc<AdjustableClock>,
    pub state: AppState,
    pub http: reqwest::Client,
}

/// A fresh, empty PostgreSQL schema. `None` (skip) outside CI when no database is set;
/// under `CI` a missing database fails the test.
async fn postgres_store() -> Option<Arc<dyn Storage>> {
    use std::str::FromStr as _;
    let url = match std::env::var("OIDC_BRIDGE_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => u,
        _ if std::env::var("CI").is_ok() => {
            panic!("OIDC_BRIDGE_TEST_POSTGRES_URL is not set: CI must run the PostgreSQL tests")
        }
        _ => return None,
    };
    let schema = format!(
        "c_{}",
        oidc_bridge::secret::random_token(9)
            .to_lowercase()
            .replace(['-', '_'], "x")
    );
    let base = sqlx::postgres::PgConnectOptions::from_str(&url).expect("postgres url");
    let pool = sqlx::PgPool::connect_with(base.clone())
        .await
        .expect("PostgreSQL must be reachable");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&pool)
        .await
        .expect("create schema");
    pool.close().await;
    let store = PostgresStorage::connect_with(base.options([("search_path", schema.as_str())]))
        .await
        .expect("connect");
    Some(Arc::new(store))
}

impl Op {
    /// Starts the provider; `None` when the backend is not available (see above).
    pub async fn start(backend: Backend) -> Option<Self> {
        Self::start_with(backend, "").await
    }

    pub async fn start_with(backend: Backend, extra_yaml: &str) -> Option<Self> {
        Self::start_on_port(backend, extra_yaml, 0).await
    }

    /// As [`Self::start_with`], on a given port (0: any).
    pub async fn start_on_port(backend: Backend, extra_yaml: &str, port: u16) -> Option<Self> {
        let storage = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(postgres_store().await?),
        };
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let yaml = format!(
            "{CONFIG}\nsigning:\n  encryption_key: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n{extra_yaml}"
        );
        let mut config = oidc_bridge::config::from_yaml_str(&yaml, &|_| None).expect("config");
        config.issuer = format!("http://{addr}");
        config.database = DatabaseUrl::new("sqlite::memory:");
        let clock = AdjustableClock::new();
        let app = Application::with_listener(
            &config,
            listener,
            Options {
                clock: clock.clone(),
                storage,
                ..Options::default()
            },
        )
        .await
        .expect("provider starts");
        let state = app.state().clone();
        tokio::spawn(app.run_until(std::future::pending()));
        Some(Self {
            issuer: config.issuer,
            clock,
            state,
            http: http_client(),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    pub async fn discovery(&self) -> Value {
        self.http
            .get(self.url("/.well-known/openid-configuration"))
            .send()
            .await
            .expect("discovery")
            .json()
            .await
            .expect("json")
    }

    /// A relying party for `client_id` using the openidconnect crate.
    pub async fn rp(&self, client_id: &str) -> Rp {
        let metadata = CoreProviderMetadata::discover_async(
            IssuerUrl::new(self.issuer.clone()).expect("issuer"),
            &self.http,
        )
        .await
        .expect("openidconnect discovers the provider");
        let secret = (client_id != "public").then(|| ClientSecret::new(SECRET.to_string()));
        let mut client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(client_id.to_string()),
            secret,
        )
        .set_redirect_uri(RedirectUrl::new(CALLBACK.to_string()).expect("redirect"));
        if client_id == "client_secret_post" {
            client = client.set_auth_type(AuthType::RequestBody);
        }
        Rp {
            client,
            http: self.http.clone(),
        }
    }

    /// A raw token request with `client`'s Basic credentials.
    pub async fn token_request(
        &self,
        client_id: &str,
        form: &[(&str, &str)],
    ) -> (u16, HeaderMap, Value) {
        let resp = self
            .http
            .post(self.url("/token"))
            .header("Authorization", basic(client_id, SECRET))
            .form(form)
            .send()
            .await
            .expect("token request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, headers, resp.json().await.unwrap_or(Value::Null))
    }

    /// Userinfo with a Bearer token; status and body.
    pub async fn userinfo(&self, access_token: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(self.url("/userinfo"))
            .header("Authorization", format!("Bearer {access_token}"))
            .send()
            .await
            .expect("userinfo");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

pub type HeaderMap = reqwest::header::HeaderMap;

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

pub fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

type DiscoveredClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

pub struct Rp {
    pub client: DiscoveredClient,
    http: reqwest::Client,
}

/// One authorization request's secrets.
pub struct Pending {
    pub url: String,
    pub state: String,
    pub nonce: Nonce,
    pub verifier: PkceCodeVerifier,
}

/// Tokens from one code exchange, with the ID token verified by openidconnect.
pub struct Tokens {
    pub response: CoreTokenResponse,
    pub id_token: String,
    pub claims: Value,
}

impl Tokens {
    pub fn access_token(&self) -> &str {
        self.response.access_token().secret()
    }

    pub fn refresh_token(&self) -> Option<&str> {
        self.response.refresh_token().map(|t| t.secret().as_str())
    }
}

impl Rp {
    /// An authorization URL with PKCE S256, `state` and `nonce`, plus `scopes` and `extra`
    /// parameters.
    pub fn authorize_url(&self, scopes: &[&str], extra: &[(&str, &str)]) -> Pending {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = self
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for s in scopes {
            req = req.add_scope(Scope::new((*s).to_string()));
        }
        for (k, v) in extra.iter().filter(|(k, _)| *k != "state" && *k != "nonce") {
            req = req.add_extra_param(*k, *v);
        }
        let (mut url, state, nonce) = req.url();
        let mut pending = Pending {
            url: String::new(),
            state: state.secret().clone(),
            nonce,
            verifier,
        };
        // A test-chosen state or nonce replaces the random one.
        for (k, v) in extra.iter().filter(|(k, _)| *k == "state" || *k == "nonce") {
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .into_owned()
                .map(|(name, old)| {
                    if name == *k {
                        (name, v.to_string())
                    } else {
                        (name, old)
                    }
                })
                .collect();
            url.query_pairs_mut().clear().extend_pairs(pairs);
            if *k == "state" {
                pending.state = v.to_string();
            } else {
                pending.nonce = Nonce::new(v.to_string());
            }
        }
        pending.url = url.to_string();
        pending
    }

    /// Exchanges a code and verifies the ID token (signature via JWKS, iss, aud, exp, nonce)
    /// with openidconnect.
    pub async fn exchange(&self, code: &str, pending: Pending) -> Tokens {
        let response = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .expect("token endpoint")
            .set_pkce_verifier(pending.verifier)
            .request_async(&self.http)
            .await
            .expect("code exchange succeeds");
        let id_token = response.id_token().expect("an id_token").clone();
        let verified: &CoreIdTokenClaims = id_token
            .claims(&self.client.id_token_verifier(), &pending.nonce)
            .expect("openidconnect verifies the ID token");
        let _ = verified;
        let raw = id_token.to_string();
        let claims = jwt_claims(&raw);
        Tokens {
            response,
            id_token: raw,
            claims,
        }
    }
}

pub fn jwt_part(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).expect("JWT part");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("json")
}

pub fn jwt_claims(token: &str) -> Value {
    jwt_part(token, 1)
}

pub fn jwt_header(token: &str) -> Value {
    jwt_part(token, 0)
}

/// Where an authorization request ended.
#[derive(Debug)]
pub enum Outcome {
    /// Redirected to the client: the callback URL's query.
    Callback(HashMap<String, String>),
    /// A form_post page: its action and fields.
    FormPost(String, HashMap<String, String>),
    /// A page for the person (an error, a login form with an error, a logout page).
    Page(u16, String),
}

impl Outcome {
    pub fn callback(self) -> HashMap<String, String> {
        match self {
            Outcome::Callback(q) => q,
            other => panic!("expected a redirect to the client, got {other:?}"),
        }
    }

    pub fn code(self) -> String {
        let q = self.callback();
        q.get("code")
            .unwrap_or_else(|| panic!("no code in callback: {q:?}"))
            .clone()
    }
}

/// A browser: keeps cookies, follows our own redirects, fills in forms.
pub struct Browser {
    http: reqwest::Client,
    /// Cookies by host, then name (ports share cookies, as in browsers).
    jar: Mutex<HashMap<String, HashMap<String, String>>>,
    /// Follow redirects until one starts with this (the client's redirect URI).
    stop_at: Mutex<Option<String>>,
    /// Credentials typed into a login form; `None` means the test expects no login form.
    login: Mutex<Option<(String, String)>>,
    /// Answer to a consent page.
    pub allow_consent: bool,
    pub pages_seen: Mutex<Vec<&'static str>>,
    /// Origin of the last request, against which form actions (paths) resolve.
    origin: Mutex<String>,
}

pub struct Response {
    pub status: u16,
    pub location: Option<String>,
    pub headers: HeaderMap,
    pub body: String,
}

/// The value of a hidden input, as rendered by our templates.
pub fn hidden(body: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\" value=\"");
    let start = body.find(&needle)? + needle.len();
    let end = body[start..].find('"')?;
    Some(html_unescape(&body[start..start + end]))
}

fn form_action(body: &str) -> Option<String> {
    let start = body.find("<form method=\"post\" action=\"")? + 28;
    let end = body[start..].find('"')?;
    Some(html_unescape(&body[start..start + end]))
}

fn html_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        let end = after.find(';').unwrap_or(0);
        let entity = &after[1..end.max(1)];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") || e.starts_with("#X") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) if end > 0 => {
                out.push(c);
                rest = &after[end + 1..];
            }
            _ => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        Self {
            http: http_client(),
            jar: Mutex::new(HashMap::new()),
            stop_at: Mutex::new(None),
            login: Mutex::new(Some((USER.into(), PASSWORD.into()))),
            allow_consent: true,
            pages_seen: Mutex::new(Vec::new()),
            origin: Mutex::new(String::new()),
        }
    }

    /// From now on a login form ends the flow (as a `Page`) instead of being filled in.
    pub fn expect_no_login(&self) {
        *self.login.lock().unwrap() = None;
    }

    pub fn set_login(&self, user: &str, password: &str) {
        *self.login.lock().unwrap() = Some((user.into(), password.into()));
    }

    /// A browser that follows redirects until one goes to `prefix`.
    pub fn new_following(prefix: &str) -> Self {
        let b = Self::new();
        b.follow_until(prefix);
        b
    }

    /// Follow redirects (to other servers: an upstream IdP) until one goes to `prefix`.
    pub fn follow_until(&self, prefix: &str) {
        *self.stop_at.lock().unwrap() = Some(prefix.to_string());
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar
            .lock()
            .unwrap()
            .values()
            .find_map(|m| m.get(name).cloned())
    }

    pub fn forget_cookies(&self) {
        self.jar.lock().unwrap().clear();
    }

    pub async fn request(
        &self,
        method: &str,
        url: &str,
        form: Option<&[(String, String)]>,
    ) -> Response {
        let host = url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        let cookie = {
            let jar = self.jar.lock().unwrap();
            jar.get(&host)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default()
        };
        let mut req = match method {
            "POST" => self.http.post(url),
            _ => self.http.get(url),
        };
        if !cookie.is_empty() {
            req = req.header("Cookie", cookie);
        }
        if let Some(f) = form {
            req = req.form(f);
        }
        if let Ok(u) = url::Url::parse(url) {
            *self.origin.lock().unwrap() = u.origin().ascii_serialization();
        }
        let resp = req.send().await.expect("browser request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        {
            let mut all = self.jar.lock().unwrap();
            let jar = all.entry(host.clone()).or_default();
            for sc in headers.get_all("set-cookie") {
                let sc = sc.to_str().unwrap_or("");
                let first = sc.split(';').next().unwrap_or("");
                if let Some((k, v)) = first.split_once('=') {
                    if v.is_empty() || sc.contains("Max-Age=0") {
                        jar.remove(k);
                    } else {
                        jar.insert(k.to_string(), v.to_string());
                    }
                }
            }
        }
        let location = headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp.text().await.unwrap_or_default();
        Response {
            status,
            location,
            headers,
            body,
        }
    }

    /// Runs an authorization request to its end, signing in and consenting as configured.
    pub async fn authorize(&self, url: &str) -> Outcome {
        let first = self.request("GET", url, None).await;
        self.drive(first).await
    }

    /// `POST` to the authorization endpoint with the query of `url` as the form body.
    pub async fn authorize_post(&self, url: &str) -> Outcome {
        let parsed = url::Url::parse(url).expect("url");
        let form: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        let endpoint = format!(
            "{}://{}{}",
            parsed.scheme(),
            parsed
                .host_str()
                .map(|h| format!("{h}:{}", parsed.port().unwrap_or(80)))
                .unwrap_or_default(),
            parsed.path()
        );
        let first = self.request("POST", &endpoint, Some(&form)).await;
        self.drive(first).await
    }

    async fn drive(&self, mut resp: Response) -> Outcome {
        for _ in 0..20 {
            if let Some(loc) = resp.location.clone() {
                let stop = self.stop_at.lock().unwrap().clone();
                let absolute = if loc.starts_with('/') {
                    format!("{}{loc}", self.origin.lock().unwrap())
                } else {
                    loc.clone()
                };
                if let Some(prefix) = stop
                    && !absolute.starts_with(&prefix)
                {
                    resp = self.request("GET", &absolute, None).await;
                    continue;
                }
                let u = url::Url::parse(&absolute).expect("redirect URL");
                return Outcome::Callback(u.query_pairs().into_owned().collect());
            }
            let body = resp.body.clone();
            let is_login = body.contains("name=\"password\"");
            let is_consent = body.contains("name=\"decision\"");
            if resp.status == 200 && body.contains("document.forms[0].submit()") {
                let action = form_action(&body).expect("form_post action");
                let mut fields = HashMap::new();
                for part in body.split("<input type=\"hidden\" name=\"").skip(1) {
                    let name = part.split('"').next().unwrap_or("").to_string();
                    if let Some(v) = hidden(&body, &name) {
                        fields.insert(name, v);
                    }
                }
                return Outcome::FormPost(action, fields);
            }
            let base = self.origin.lock().unwrap().clone();
            // node-oidc-provider's development pages (a third-party upstream IdP).
            if resp.status == 200 && body.contains("/interaction/") && body.contains("<form") {
                let start = body.find("action=\"").expect("action") + 8;
                let end = body[start..].find('"').expect("quote") + start;
                let action = html_unescape(&body[start..end]);
                let action = if action.starts_with('/') {
                    format!("{base}{action}")
                } else {
                    action
                };
                let mut form: Vec<(String, String)> = Vec::new();
                for part in body.split("type=\"hidden\" name=\"").skip(1) {
                    let name = part.split('"').next().unwrap_or("").to_string();
                    if let Some(v) = part
                        .split("value=\"")
                        .nth(1)
                        .and_then(|v| v.split('"').next())
                    {
                        form.push((name, html_unescape(v)));
                    }
                }
                if body.contains("name=\"login\"") {
                    self.pages_seen.lock().unwrap().push("upstream-login");
                    form.push(("login".into(), "alice".into()));
                    form.push(("password".into(), "anything".into()));
                } else {
                    self.pages_seen.lock().unwrap().push("upstream-consent");
                }
                resp = self.request("POST", &action, Some(&form)).await;
                continue;
            }
            if is_login && resp.status == 200 {
                self.pages_seen.lock().unwrap().push("login");
                let Some((user, pass)) = self.login.lock().unwrap().clone() else {
                    return Outcome::Page(resp.status, body);
                };
                let form = vec![
                    (
                        "request".to_string(),
                        hidden(&body, "request").expect("request id"),
                    ),
                    ("csrf".to_string(), hidden(&body, "csrf").expect("csrf")),
                    ("username".to_string(), user),
                    ("password".to_string(), pass),
                ];
                let action = form_action(&body).expect("action");
                resp = self
                    .request("POST", &format!("{base}{action}"), Some(&form))
                    .await;
                continue;
            }
            if is_consent && resp.status == 200 {
                self.pages_seen.lock().unwrap().push("consent");
                let form = vec![
                    (
                        "request".to_string(),
                        hidden(&body, "request").expect("request id"),
                    ),
                    ("csrf".to_string(), hidden(&body, "csrf").expect("csrf")),
                    (
                        "decision".to_string(),
                        if self.allow_consent { "allow" } else { "deny" }.to_string(),
                    ),
                ];
                let action = form_action(&body).expect("action");
                resp = self
                    .request("POST", &format!("{base}{action}"), Some(&form))
                    .await;
                continue;
            }
            return Outcome::Page(resp.status, body);
        }
        panic!("too many steps");
    }
}

/// The whole happy flow "H": authorize (signing in and consenting), then the code exchange
/// through openidconnect.
pub async fn happy_flow(
    op: &Op,
    browser: &Browser,
    client_id: &str,
    scopes: &[&str],
    extra: &[(&str, &str)],
) -> Tokens {
    let rp = op.rp(client_id).await;
    let pending = rp.authorize_url(scopes, extra);
    let q = browser.authorize(&pending.url).await.callback();
    assert_eq!(q.get("state"), Some(&pending.state), "AZ-4: state echoed");
    assert_eq!(q.get("iss"), Some(&op.issuer), "AZ-2: iss is the issuer");
    assert!(!q.contains_key("error"), "AZ-3: {q:?}");
    let code = q.get("code").expect("AZ-5: code").clone();
    rp.exchange(&code, pending).await
}

/// Runs a conformance module against SQLite and against PostgreSQL.
#[macro_export]
macro_rules! module {
    ($name:ident, |$op:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn run($op: conformance::Op) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run(conformance::Op::start(conformance::Backend::Sqlite).await.expect("sqlite")).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(op) = conformance::Op::start(conformance::Backend::Postgres).await {
                    run(op).await
                }
            }
        }
    };
}
