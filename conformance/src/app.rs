//! `TestApp`: the real server on 127.0.0.1:0 with the API tests' configuration, and
//! [`serve`], which starts it (and every [`crate::Op`]) the one way.

use std::sync::Arc;

use base64::Engine as _;
use oidc_bridge::app::{AppState, Application, Options};
use oidc_bridge::clock::AdjustableClock;
use oidc_bridge::config::{Config, DatabaseUrl};
use oidc_bridge::storage::Storage;
use openidconnect::JsonWebKey as _;
use openidconnect::core::{CoreJsonWebKeySet, CoreJwsSigningAlgorithm};
use serde_json::Value;
use tokio::net::TcpListener;

use crate::{basic, http_client, jwt_claims, jwt_header};

/// A running server.
pub struct Served {
    pub state: AppState,
    /// Where `/metrics` answers (`server.metrics_listen`), as a base URL.
    pub metrics: Option<String>,
    /// Where `/admin/` answers when `admin.listen` is set, as a base URL.
    pub admin: Option<String>,
    /// Send to stop it; the task ends once it has let go of its port and database.
    pub shutdown: tokio::sync::oneshot::Sender<()>,
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts the server for `config` on `listener`, with `clock` and (optionally) `storage`.
pub async fn serve(
    config: &Config,
    listener: TcpListener,
    clock: Arc<AdjustableClock>,
    storage: Option<Arc<dyn Storage>>,
) -> Served {
    let app = Application::with_listener(
        config,
        listener,
        Options {
            clock,
            storage,
            ..Options::default()
        },
    )
    .await
    .expect("the server starts");
    let state = app.state().clone();
    let metrics = app.metrics_addr().map(|a| format!("http://{a}"));
    let admin = app.admin_addr().map(|a| format!("http://{a}"));
    let (shutdown, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        app.run_until(async {
            let _ = rx.await;
        })
        .await
        .expect("server runs");
    });
    Served {
        state,
        metrics,
        admin,
        shutdown,
        task,
    }
}

/// A confidential client whose secret holds `+ % : /`, a plain one, and a public one.
pub const CONFIG: &str = r#"
tokens:
  access_token: 2h
clients:
  - id: service
    secret: "s3cret+with%odd:chars/and-more"
    grant_types: [client_credentials]
    scopes: [read, write]
  - id: plain
    secret: plain-secret-0123456789
    grant_types: [client_credentials]
    audience: [https://api.example.com]
    tokens:
      access_token: 5m
  - id: spa
    redirect_uris: [http://127.0.0.1:9999/cb]
    grant_types: [authorization_code]
"#;

pub const SERVICE_SECRET: &str = "s3cret+with%odd:chars/and-more";

pub struct TestApp {
    /// The configured issuer (`iss`).
    pub issuer: String,
    /// Where the server listens, for requests.
    pub base: String,
    pub http: reqwest::Client,
    pub clock: Arc<AdjustableClock>,
    pub state: AppState,
    /// Where `/metrics` answers, when the config sets `server.metrics_listen`.
    pub metrics: Option<String>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

pub struct Spawn {
    pub yaml: String,
    pub database: String,
    pub storage: Option<Arc<dyn Storage>>,
    pub clock: Option<Arc<AdjustableClock>>,
    /// A fixed issuer; by default `http://{bound address}`.
    pub issuer: Option<String>,
    /// A path after the bound address for the issuer (`/tenant/a`).
    pub issuer_path: Option<String>,
}

impl Default for Spawn {
    fn default() -> Self {
        Self {
            yaml: CONFIG.to_string(),
            database: "sqlite::memory:".into(),
            storage: None,
            clock: None,
            issuer: None,
            issuer_path: None,
        }
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Spawn::default()).await
    }

    pub async fn spawn_with(opts: Spawn) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut config: Config =
            oidc_bridge::config::from_yaml_str(&opts.yaml, &|_| None).expect("test config");
        let base = format!("http://{addr}");
        config.issuer = opts
            .issuer
            .unwrap_or_else(|| format!("{base}{}", opts.issuer_path.as_deref().unwrap_or("")));
        config.listen = addr;
        config.database = DatabaseUrl::new(opts.database);
        let clock = opts.clock.unwrap_or_default();
        let served = serve(&config, listener, clock.clone(), opts.storage).await;
        Self {
            issuer: config.issuer,
            base,
            http: http_client(),
            clock,
            state: served.state,
            metrics: served.metrics,
            shutdown: Some(served.shutdown),
            server: Some(served.task),
        }
    }

    /// Stops the server and waits until it has let go of its port and database.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(s) = self.server.take() {
            s.await.expect("server task");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let resp = self.http.get(self.url(path)).send().await.expect("GET");
        assert_eq!(resp.status(), 200, "GET {path}");
        resp.json().await.expect("json")
    }

    pub async fn jwks(&self) -> Value {
        self.get_json("/jwks").await
    }

    /// A client_credentials token for `service`, authenticated with correctly encoded Basic.
    pub async fn service_token(&self) -> String {
        let resp = self
            .http
            .post(self.url("/token"))
            .header("Authorization", basic("service", SERVICE_SECRET))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("token request");
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.expect("json");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    pub async fn introspect(&self, token: &str) -> Value {
        let resp = self
            .http
            .post(self.url("/introspect"))
            .header("Authorization", basic("service", SERVICE_SECRET))
            .form(&[("token", token)])
            .send()
            .await
            .expect("introspect");
        assert_eq!(resp.status(), 200);
        resp.json().await.expect("json")
    }
}

/// Verifies a compact JWS against a JWKS with the `openidconnect` crate's JOSE code, not
/// ours. Returns the claims.
pub fn verify_with_third_party(jwks: &Value, token: &str) -> Result<Value, String> {
    let set: CoreJsonWebKeySet = serde_json::from_value(jwks.clone()).map_err(|e| e.to_string())?;
    let header = jwt_header(token);
    let alg: CoreJwsSigningAlgorithm =
        serde_json::from_value(header["alg"].clone()).map_err(|e| e.to_string())?;
    let kid = header["kid"].as_str().ok_or("no kid")?;
    let key = set
        .keys()
        .iter()
        .find(|k| k.key_id().map(|id| id.as_str()) == Some(kid))
        .ok_or_else(|| format!("kid {kid} not in JWKS"))?;
    let (signing_input, signature) = token.rsplit_once('.').ok_or("not a JWS")?;
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|e| e.to_string())?;
    key.verify_signature(&alg, signing_input.as_bytes(), &signature)
        .map_err(|e| format!("{e:?}"))?;
    Ok(jwt_claims(token))
}
