//! Harness for the conformance suite: the real server on `127.0.0.1:0` (SQLite or
//! PostgreSQL), a browser that keeps cookies and fills in the login and consent forms, and a
//! relying party built on the `openidconnect` crate.
//!
//! The tests in `tests/plans/` mirror the OpenID Foundation's Basic OP, Config OP,
//! RP-Initiated Logout plans and `oidcc-refresh-token`, one test per module.

use std::sync::Arc;

use base64::Engine as _;
use oidc_bridge::app::AppState;
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

pub mod app;
mod browser;
pub mod counting;
pub mod proxy;
pub use browser::{Browser, Outcome, Response, form_action, hidden};

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
    /// Where it listens (the issuer's origin, unless the test chose an issuer).
    pub base: String,
    pub clock: Arc<AdjustableClock>,
    pub state: AppState,
    pub http: reqwest::Client,
    /// Where `/metrics` answers, when the config sets `server.metrics_listen`.
    pub metrics: Option<String>,
    /// Where `/admin/` answers, when the config sets `admin.listen`.
    pub admin: Option<String>,
}

/// A fresh, empty PostgreSQL schema. `None` (skip) outside CI when no database is set;
/// under `CI` a missing database fails the test.
async fn postgres_store() -> Option<Arc<dyn Storage>> {
    let options = postgres_schema().await?;
    let store = PostgresStorage::connect_with(options)
        .await
        .expect("connect");
    Some(Arc::new(store))
}

/// Connection options for a fresh, empty PostgreSQL schema (several nodes may share it).
/// `None` outside CI when no database is set; under `CI` a missing database fails.
pub async fn postgres_schema() -> Option<sqlx::postgres::PgConnectOptions> {
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
    Some(base.options([("search_path", schema.as_str())]))
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
        Some(Self::start_full(&format!("{CONFIG}\n{extra_yaml}"), storage, port).await)
    }

    /// As [`Self::start_with`], on a listener the test bound first (so that its port can be
    /// handed out before the provider starts, with nobody able to take it meanwhile).
    pub async fn start_on_listener(
        backend: Backend,
        extra_yaml: &str,
        listener: tokio::net::TcpListener,
    ) -> Option<Self> {
        let storage = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(postgres_store().await?),
        };
        let yaml = format!("{CONFIG}\n{extra_yaml}");
        Some(Self::start_bound(&yaml, storage, listener, None).await)
    }

    /// The provider with `yaml` as its whole config (clients and users included) instead of
    /// the suite's, on `backend`.
    pub async fn start_config(backend: Backend, yaml: &str) -> Option<Self> {
        let storage = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(postgres_store().await?),
        };
        Some(Self::start_full(yaml, storage, 0).await)
    }

    /// The provider with `yaml` as its whole config, on `storage` (`None`: SQLite in memory).
    pub async fn start_full(yaml: &str, storage: Option<Arc<dyn Storage>>, port: u16) -> Self {
        Self::start_node(yaml, storage, port, None).await
    }

    /// As [`Self::start_full`], with `issuer` (several nodes of one provider share one).
    pub async fn start_node(
        yaml: &str,
        storage: Option<Arc<dyn Storage>>,
        port: u16,
        issuer: Option<&str>,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind");
        Self::start_bound(yaml, storage, listener, issuer).await
    }

    /// The provider with `yaml` as its whole config, on a bound `listener`.
    pub async fn start_bound(
        yaml: &str,
        storage: Option<Arc<dyn Storage>>,
        listener: tokio::net::TcpListener,
        issuer: Option<&str>,
    ) -> Self {
        let addr = listener.local_addr().expect("addr");
        let yaml = format!(
            "{yaml}\nsigning:\n  encryption_key: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
        );
        let mut config = oidc_bridge::config::from_yaml_str(&yaml, &|_| None).expect("config");
        let base = format!("http://{addr}");
        config.issuer = issuer.map_or_else(|| base.clone(), str::to_string);
        config.database = DatabaseUrl::new("sqlite::memory:");
        let clock = AdjustableClock::new();
        let served = app::serve(&config, listener, clock.clone(), storage).await;
        // The provider runs until the test process ends.
        std::mem::forget(served.shutdown);
        Self {
            issuer: config.issuer,
            base,
            clock,
            state: served.state,
            http: http_client(),
            metrics: served.metrics,
            admin: served.admin,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
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

    /// The metrics exposition (the config must set `server.metrics_listen`).
    pub async fn scrape(&self) -> String {
        let base = self.metrics.as_ref().expect("server.metrics_listen is set");
        let resp = self
            .http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("scrape");
        assert_eq!(resp.status(), 200);
        resp.text().await.expect("text")
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

/// `npm ci` in `dir` from its committed lockfile, once per test process, unless `installed`
/// (a file under `node_modules`) is already there.
pub fn npm_ci(dir: &std::path::Path, installed: &str) {
    static ONCE: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());
    let mut done = ONCE.lock().unwrap_or_else(|e| e.into_inner());
    if done.iter().any(|d| d == dir) || dir.join("node_modules").join(installed).exists() {
        return;
    }
    let status = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .expect("npm runs (Node.js is needed for this test)");
    assert!(status.success(), "npm ci failed in {}", dir.display());
    done.push(dir.to_path_buf());
}

/// A JSON `POST`; the status and the JSON answer (`null` if none).
pub async fn post_json(url: &str, body: Value) -> (u16, Value) {
    let resp = http_client()
        .post(url)
        .json(&body)
        .send()
        .await
        .expect("POST");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A mock issuer's recorded requests (`GET {issuer}/mock/requests`).
pub async fn mock_requests(issuer: &str) -> Value {
    http_client()
        .get(format!("{issuer}/mock/requests"))
        .send()
        .await
        .expect("GET /mock/requests")
        .json()
        .await
        .expect("JSON")
}

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

/// Runs a conformance module against SQLite and against PostgreSQL. With `start = f`, the
/// provider comes from `f(backend)` (an `async fn(Backend) -> Option<Op>`) instead of the
/// suite's own configuration.
#[macro_export]
macro_rules! module {
    ($name:ident, |$op:ident| $body:block) => {
        $crate::module!($name, start = conformance::Op::start, |$op| $body);
    };
    ($name:ident, start = $start:path, |$op:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn run($op: conformance::Op) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run($start(conformance::Backend::Sqlite).await.expect("sqlite")).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(op) = $start(conformance::Backend::Postgres).await {
                    run(op).await
                }
            }
        }
    };
}
