//! Assembling mock mode (a composition root, so the app's job): the root issuer plus each
//! `mock.issuers` entry, every one with its own in-memory storage, keys, clock, faults and
//! users, on one listener.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

use crate::app::{self, AppState, Options, StartError};
use crate::clock::AdjustableClock;
use crate::config::{
    ClientConfig, ClientTokenLifetimes, Config, DatabaseUrl, GrantType, MockUserConfig,
    PersonaKind, SigningAlgorithm,
};
use crate::mock::control;
use crate::mock::github_api::{self, GithubApi};
use crate::mock::google_api::{self, GoogleApi};
use crate::mock::graph::{self, Graph};
use crate::mock::inspect::inspect;
use crate::mock::okta_api::{self, OktaApi};
use crate::mock::okta_app::{self, ServiceApp};
use crate::mock::persona::{Persona, guid};
use crate::mock::state::MockState;
use crate::mock::{BUILTIN_CLIENT_ID, BUILTIN_CLIENT_SECRET};
use crate::storage::{SqliteStorage, Storage};

/// The built-in confidential client: any redirect URI, every grant, no consent page.
pub fn builtin_client() -> ClientConfig {
    ClientConfig {
        id: BUILTIN_CLIENT_ID.into(),
        name: Some("Mock client".into()),
        secret: Some(crate::secret::SecretString::new(BUILTIN_CLIENT_SECRET)),
        // Stored as a keyed digest: checked in microseconds, from the first request on.
        secret_hash: None,
        secrets: Vec::new(),
        any_redirect_uri: true,
        redirect_uris: Vec::new(),
        post_logout_redirect_uris: Vec::new(),
        grant_types: GrantType::ALL.to_vec(),
        token_endpoint_auth_method: None,
        scopes: None,
        audience: Vec::new(),
        require_pkce: false,
        skip_consent: true,
        tokens: ClientTokenLifetimes::default(),
        allowed_connectors: Vec::new(),
        groups: Default::default(),
        logout_revokes_session: true,
        resource_server_for: Vec::new(),
        require_groups: Vec::new(),
        deny_groups: Vec::new(),
        claims: Default::default(),
        access_token_claims: Vec::new(),
        access_token_claims_max: crate::config::ACCESS_TOKEN_CLAIMS_MAX,
        // Any resource, and token exchange to any audience.
        agents: crate::config::ClientAgents {
            resources: vec!["*".into()],
            token_exchange: Some(crate::config::TokenExchangePolicy {
                audiences: vec!["*".into()],
                subject_token_types: vec![crate::config::ACCESS_TOKEN_TYPE.into()],
                connectors: Vec::new(),
            }),
            ..Default::default()
        },
    }
}

/// One issuer of a mock server.
#[derive(Clone)]
pub struct MockIssuer {
    pub id: String,
    pub issuer: String,
    pub persona: Persona,
    pub state: AppState,
    pub mock: Arc<MockState>,
}

pub struct MockServer {
    listener: TcpListener,
    router: Router,
    pub issuers: Vec<MockIssuer>,
    maintenance: Vec<tokio::task::JoinHandle<()>>,
    server: crate::config::ServerConfig,
}

#[derive(Default)]
pub struct MockOptions {
    /// The root issuer; default `http://{bound address}`.
    pub issuer: Option<String>,
    /// A PKCS#8 DER private key for the root issuer (`--key-file`).
    pub key: Option<(SigningAlgorithm, Vec<u8>)>,
}

fn users_of(config: &Config) -> Vec<MockUserConfig> {
    config
        .users
        .iter()
        .map(|u| MockUserConfig {
            username: u.username.clone(),
            name: u.name.clone(),
            email: u.email.clone(),
            groups: u.groups.clone(),
            ..MockUserConfig::default()
        })
        .collect()
}

struct Plan {
    id: String,
    issuer: String,
    persona: Persona,
    users: Vec<MockUserConfig>,
    graph_mount: Option<String>,
    /// okta: the org URL its Groups API is served under, and the API token it accepts.
    okta_api: Option<(String, String)>,
    /// google: the Directory API's groups.
    directory_groups: std::collections::BTreeMap<String, crate::config::MockDirectoryGroup>,
}

fn plans(config: &Config, root: &str) -> Vec<Plan> {
    let mut out = vec![Plan {
        id: "default".into(),
        issuer: root.to_string(),
        persona: Persona::Plain,
        users: users_of(config)
            .into_iter()
            .chain(config.mock.users.clone())
            .collect(),
        graph_mount: None,
        okta_api: None,
        directory_groups: Default::default(),
    }];
    for i in &config.mock.issuers {
        let mount = format!("{root}{}", i.path);
        let (issuer, persona, graph_mount) = match i.persona {
            PersonaKind::Plain => (mount.clone(), Persona::Plain, None),
            PersonaKind::Google => (
                mount.clone(),
                Persona::Google {
                    hosted_domain: i.hosted_domain.clone(),
                },
                None,
            ),
            PersonaKind::Github => (mount.clone(), Persona::Github, None),
            PersonaKind::Gitlab => (mount.clone(), Persona::Gitlab, None),
            PersonaKind::Okta => (
                format!("{mount}/oauth2/default"),
                Persona::Okta {
                    org_id: format!(
                        "00o{}",
                        &guid(&format!("okta-org:{}", i.id)).replace('-', "")[..17]
                    ),
                },
                None,
            ),
            PersonaKind::Azure => {
                let tenant = i
                    .tenant
                    .clone()
                    .unwrap_or_else(|| guid(&format!("tenant:{}", i.id)));
                (
                    format!("{mount}/{tenant}/v2.0"),
                    Persona::Azure {
                        tenant,
                        overage_limit: i.overage_limit,
                        graph_url: format!("{mount}/graph"),
                    },
                    Some(mount.clone()),
                )
            }
        };
        let okta_api =
            (i.persona == PersonaKind::Okta).then(|| (mount.clone(), i.api_token.clone()));
        out.push(Plan {
            id: i.id.clone(),
            issuer,
            persona,
            users: i.users.clone(),
            graph_mount,
            okta_api,
            directory_groups: i.directory_groups.clone(),
        });
    }
    out
}

fn path_of(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| u.path().trim_end_matches('/').to_string())
        .unwrap_or_default()
}

impl MockServer {
    /// Builds every issuer and binds nothing new: `listener` is already bound.
    pub async fn build(
        mut config: Config,
        listener: TcpListener,
        opts: MockOptions,
    ) -> Result<Self, StartError> {
        let addr = listener
            .local_addr()
            .map_err(|e| StartError::Bind(config.listen, e))?;
        let root = opts
            .issuer
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        config.database = DatabaseUrl::new("sqlite::memory:");
        if !config.clients.iter().any(|c| c.id == BUILTIN_CLIENT_ID) {
            config.clients.push(builtin_client());
        }
        let initial_lifetimes: HashMap<String, ClientTokenLifetimes> = config
            .clients
            .iter()
            .map(|c| (c.id.clone(), c.tokens.clone()))
            .collect();

        let mut issuers = Vec::new();
        let mut routes = Router::new();
        let mut maintenance = Vec::new();
        for (n, plan) in plans(&config, &root).into_iter().enumerate() {
            let mut cfg = config.clone();
            cfg.issuer = plan.issuer.clone();
            if n > 0 {
                cfg.users = Vec::new();
            }
            let clock = AdjustableClock::new();
            let mock = Arc::new(MockState {
                issuer: plan.issuer.clone(),
                base: path_of(&plan.issuer),
                clock: clock.clone(),
                faults: Default::default(),
                requests: Mutex::new(Default::default()),
                next_logins: Mutex::new(Vec::new()),
                users: std::sync::RwLock::new(
                    plan.users
                        .iter()
                        .map(|u| (u.username.clone(), u.clone()))
                        .collect(),
                ),
                auto_login: config.mock.auto_login,
                mock_login: true,
                persona: plan.persona.clone(),
                initial_lifetimes: initial_lifetimes.clone(),
                admin_token: None,
            });
            let storage: Arc<dyn Storage> =
                Arc::new(SqliteStorage::connect(&crate::storage::shared_memory_url()).await?);
            let key = if n == 0 { opts.key.clone() } else { None };
            let options = Options {
                clock: clock.clone(),
                storage: Some(storage),
                key_maintenance: Duration::from_secs(30),
                shape: Arc::new(plan.persona.clone()),
                mock: Some(mock.clone()),
                keys_in_background: key.is_none(),
                initial_key: key,
            };
            let state = app::build_state(&cfg, &options).await?;
            maintenance.push(app::spawn_maintenance(&state, options.key_maintenance));
            let inspected = app::issuer_routes(&cfg, state.clone())
                .layer(axum::middleware::from_fn_with_state(mock.clone(), inspect));
            routes = routes
                .merge(inspected.clone())
                .merge(control::routes(Arc::new(app::control(
                    &state,
                    mock.clone(),
                    cfg.signing.publish_ahead,
                ))));
            if let (Some(mount), Persona::Azure { graph_url, .. }) =
                (&plan.graph_mount, &plan.persona)
            {
                let g = graph::routes(
                    &path_of(mount),
                    Arc::new(Graph {
                        tokens: state.tokens.clone(),
                        storage: state.storage.clone(),
                        persona: plan.persona.clone(),
                        url: graph_url.clone(),
                    }),
                )
                .layer(axum::middleware::from_fn_with_state(mock.clone(), inspect));
                routes = routes.merge(g);
            }
            if let Persona::Google { hosted_domain } = &plan.persona {
                let (base, m, hd, groups) = (
                    plan.issuer.clone(),
                    mock.clone(),
                    hosted_domain.clone(),
                    plan.directory_groups.clone(),
                );
                // The service account's RSA key: generated off the runtime.
                let api = tokio::task::spawn_blocking(move || GoogleApi::new(base, m, hd, groups))
                    .await
                    .map_err(|e| StartError::EncryptionKey(format!("google persona: {e}")))?
                    .map_err(|e| StartError::EncryptionKey(format!("google persona: {e}")))?;
                let api = Arc::new(api);
                let api = google_api::routes(&path_of(&plan.issuer), api.clone())
                    .merge(google_api::users::routes(&path_of(&plan.issuer), api))
                    .layer(axum::middleware::from_fn_with_state(mock.clone(), inspect));
                routes = routes.merge(api);
            }
            if plan.persona == Persona::Github {
                let gh = Arc::new(GithubApi {
                    tokens: state.tokens.clone(),
                    storage: state.storage.clone(),
                    persona: plan.persona.clone(),
                    issuer: inspected.clone(),
                    base: plan.issuer.clone(),
                });
                let api = github_api::routes(&path_of(&plan.issuer), gh.clone())
                    .merge(github_api::memberships::routes(&path_of(&plan.issuer), gh))
                    .layer(axum::middleware::from_fn_with_state(mock.clone(), inspect));
                routes = routes.merge(api);
            }
            if let Some((org, token)) = &plan.okta_api {
                let app = Arc::new(ServiceApp::new(org, mock.clock.clone()));
                let api = okta_api::routes(
                    &path_of(org),
                    Arc::new(OktaApi {
                        storage: state.storage.clone(),
                        token: token.clone(),
                        app: app.clone(),
                        url: org.clone(),
                    }),
                )
                .merge(okta_app::routes(&path_of(org), app))
                .layer(axum::middleware::from_fn_with_state(mock.clone(), inspect));
                routes = routes.merge(api);
            }
            issuers.push(MockIssuer {
                id: plan.id,
                issuer: plan.issuer,
                persona: plan.persona,
                state,
                mock,
            });
        }
        let router = app::finish(routes, issuers[0].state.clone());
        Ok(Self {
            listener,
            router,
            issuers,
            maintenance,
            server: config.server.clone(),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let limits = crate::server::Limits::from(&self.server);
        let result = crate::server::serve(self.listener, self.router, limits, shutdown).await;
        for m in self.maintenance {
            m.abort();
        }
        result
    }
}

/// Reads `--key-file`, creating it (mode 0600) with a fresh key when absent.
pub fn load_or_create_key_file(path: &PathBuf, alg: SigningAlgorithm) -> Result<Vec<u8>, String> {
    use std::io::Write as _;
    match std::fs::read(path) {
        Ok(bytes) => pem_to_der(&bytes).ok_or_else(|| {
            format!(
                "{} does not hold a PEM \"PRIVATE KEY\" (PKCS#8)",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let der =
                crate::keys::KeyManager::generate_private_der(alg).map_err(|e| e.to_string())?;
            let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &der);
            let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
            for line in b64.as_bytes().chunks(64) {
                pem.push_str(std::str::from_utf8(line).unwrap_or_default());
                pem.push('\n');
            }
            pem.push_str("-----END PRIVATE KEY-----\n");
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts
                .open(path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            f.write_all(pem.as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(der)
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn pem_to_der(pem: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(pem).ok()?;
    let body: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN PRIVATE KEY-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, body).ok()
}
