//! The application: state with `FromRef` sub-states, the router, and start-up.
//!
//! Start-up order: resolve the encryption key, open and migrate storage, write the config's
//! clients, load keys (creating the first), then serve. Tests bind `127.0.0.1:0` and pass
//! the listener in.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;

use tokio::net::TcpListener;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Seconds};
use crate::federation::{ConnectorRegistry, LocalConnector, OidcConnector};
use crate::keys::seal::{KeySource, resolve_key};
use crate::keys::{KeyError, KeyManager, KeyPolicy, Sealer};
use crate::mock::connector::MockConnector;
use crate::mock::state::MockState;
use crate::oidc::authorize::Flows;
use crate::oidc::client_auth::ClientAuth;
use crate::oidc::clients::{ClientRegistry, sync_from_config};
use crate::oidc::discovery::Discovery;
use crate::oidc::grants::Grants;
use crate::oidc::session::{Cookies, DeviceCookies};
use crate::oidc::shape::{PlainShape, TokenShape};
use crate::oidc::throttle::Budgets;
use crate::oidc::tokens::TokenService;
use crate::oidc::userinfo::Userinfo;
use crate::password::PasswordVerifier;
use crate::secret::ClientSecretKey;
use crate::server::TrustedProxies;
use crate::storage::{Storage, StorageError};
pub mod mock_mode;
pub mod ops;
mod router;
mod state;

pub use router::{MAX_BODY, finish, issuer_routes, router};
pub use state::AppState;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error("{0}")]
    EncryptionKey(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("connector: {0}")]
    Connector(#[from] crate::federation::upstream::UpstreamError),
}

/// What tests and embedders may swap.
pub struct Options {
    pub clock: Arc<dyn Clock>,
    /// Use this store instead of opening `config.database`.
    pub storage: Option<Arc<dyn Storage>>,
    /// How often keys are reloaded, rotated and pruned.
    pub key_maintenance: Duration,
    /// How tokens are shaped (mock personas); [`PlainShape`] for a real provider.
    pub shape: Arc<dyn TokenShape>,
    /// Mock mode's per-issuer state; `None` for a real provider.
    pub mock: Option<Arc<MockState>>,
    /// Make the first signing key in the background (mock mode starts in milliseconds).
    pub keys_in_background: bool,
    /// A key to use instead of generating one (`mock --key-file`).
    pub initial_key: Option<(crate::config::SigningAlgorithm, Vec<u8>)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            storage: None,
            key_maintenance: Duration::from_secs(30),
            shape: Arc::new(PlainShape),
            mock: None,
            keys_in_background: false,
            initial_key: None,
        }
    }
}

/// How the configured pool behaves.
pub fn pool_options(config: &Config) -> crate::storage::PoolOptions {
    crate::storage::PoolOptions {
        acquire_timeout: Duration::from_secs(
            config.database_pool.acquire_timeout.get().max(1) as u64
        ),
        max_connections: config.database_pool.max_connections,
    }
}

/// Opens and migrates storage.
pub async fn open_storage(config: &Config) -> Result<Arc<dyn Storage>, StorageError> {
    let storage = crate::storage::open(&config.database, &pool_options(config)).await?;
    storage.migrate().await?;
    Ok(storage)
}

pub fn key_policy(config: &Config) -> KeyPolicy {
    KeyPolicy {
        algorithm: config.signing.algorithm,
        rotation_period: config.signing.rotation_period,
        publish_ahead: config.signing.publish_ahead,
        // Retired keys outlive the longest token they signed, with an hour to spare for
        // clock skew and caches.
        retain_for: Seconds(config.longest_signed_token_lifetime().get() + 3600),
    }
}

/// Resolves the encryption key, logging where it came from.
pub fn sealer(config: &Config) -> Result<Sealer, StartError> {
    let (key, source) = resolve_key(config).map_err(StartError::EncryptionKey)?;
    match source {
        KeySource::File(path, true) => tracing::warn!(
            path = %path.display(),
            "no signing.encryption_key configured: generated one beside the database (mode 0600); \
             back it up with the database, or set signing.encryption_key"
        ),
        KeySource::File(path, false) => {
            tracing::info!(path = %path.display(), "using the encryption key beside the database")
        }
        KeySource::Ephemeral => {
            tracing::info!("in-memory database: signing keys are encrypted with a per-process key")
        }
        KeySource::Config | KeySource::Environment => {}
    }
    Ok(Sealer::new(key))
}

/// Builds the state: storage, clients, keys, token services.
pub async fn build_state(config: &Config, options: &Options) -> Result<AppState, StartError> {
    let sealer = sealer(config)?;
    for w in &config.warnings {
        tracing::warn!(key = %w.path, "{}", w.message);
    }
    let storage = match &options.storage {
        Some(s) => {
            s.migrate().await?;
            s.clone()
        }
        None => open_storage(config).await?,
    };
    let clock = options.clock.clone();
    let secret_key = ClientSecretKey::new(sealer.derive("client-secret"));
    sync_from_config(&*storage, &config.clients, &secret_key, clock.now()).await?;
    let clients = Arc::new(ClientRegistry::load(&*storage, secret_key).await?);
    let verifier = PasswordVerifier::for_this_machine();
    let client_auth = Arc::new(ClientAuth {
        registry: clients.clone(),
        verifier: verifier.clone(),
        budgets: Budgets::default(),
        clock: clock.clone(),
    });
    let devices = DeviceCookies::new(sealer.derive("device-cookie"));
    // How long after a logout tokens of the session may still turn up: the longest access
    // token, issued from a code redeemed just after the logout.
    let max_access_lifetime = config
        .clients
        .iter()
        .filter_map(|c| c.tokens.access_token)
        .fold(config.tokens.access_token, std::cmp::max)
        .get()
        + config.tokens.authorization_code.get();
    for u in &config.users {
        if u.password.is_some() {
            tracing::warn!(
                username = %u.username,
                "user has a plain-text `password` in the config: for development only; \
                 use password_hash (oidc-bridge hash-password)"
            );
        }
    }
    let keys = match (&options.initial_key, options.keys_in_background) {
        (Some((alg, der)), _) => {
            KeyManager::start_with_key(
                storage.clone(),
                sealer.clone(),
                clock.clone(),
                key_policy(config),
                *alg,
                der,
            )
            .await?
        }
        (None, true) => KeyManager::start_in_background(
            storage.clone(),
            sealer.clone(),
            clock.clone(),
            key_policy(config),
        ),
        (None, false) => {
            KeyManager::start(
                storage.clone(),
                sealer.clone(),
                clock.clone(),
                key_policy(config),
            )
            .await?
        }
    };
    let tokens = Arc::new(TokenService::new(
        config.issuer.clone(),
        keys.clone(),
        clock.clone(),
        storage.clone(),
        max_access_lifetime,
    ));
    let metrics = crate::metrics::Metrics::new();
    let connectors = Arc::new(
        connectors(
            config,
            options,
            ConnectorParts {
                metrics: &metrics,
                sealer: &sealer,
                verifier: &verifier,
                clients: &clients,
                storage: &storage,
            },
        )
        .await?,
    );
    let mock_login = options.mock.as_ref().is_some_and(|m| m.mock_login);
    let grants = Arc::new(Grants {
        sealer: sealer.clone(),
        upstream_locks: Default::default(),
        tokens: tokens.clone(),
        keys: keys.clone(),
        storage: storage.clone(),
        clock: clock.clone(),
        lifetimes: config.tokens.clone(),
        shape: options.shape.clone(),
        connectors: connectors.clone(),
        metrics: metrics.clone(),
    });
    let flows = Arc::new(Flows {
        issuer: config.issuer.clone(),
        base: config.issuer_path(),
        storage: storage.clone(),
        clients: clients.clone(),
        keys: keys.clone(),
        clock: clock.clone(),
        lifetimes: config.tokens.clone(),
        cookies: Cookies::new(&config.issuer, config.tokens.session.get()),
        login_budgets: Budgets::default(),
        devices,
        pending_budgets: Budgets::default(),
        pending_per_minute: config.server.pending_requests_per_minute,
        max_access_lifetime,
        connectors: connectors.clone(),
        // Mock logins: a test author chose every claim a user has, and a test tool on
        // loopback is not charged for the pending requests it starts.
        any_claims: mock_login,
        charge_pending: !mock_login,
        metrics: metrics.clone(),
    });
    let userinfo = Arc::new(Userinfo {
        tokens: tokens.clone(),
        clients: clients.clone(),
        connectors,
        storage: storage.clone(),
        shape: options.shape.clone(),
    });
    Ok(AppState {
        storage,
        keys,
        clients,
        client_auth,
        verifier,
        trusted_proxies: TrustedProxies::with_header(
            config.server.trusted_proxies.clone(),
            config.server.forwarded_header,
        ),
        tokens,
        grants,
        flows,
        userinfo,
        discovery: Discovery::build(config),
        metrics,
    })
}

/// What the connectors are built from, besides the config.
struct ConnectorParts<'a> {
    metrics: &'a Arc<crate::metrics::Metrics>,
    sealer: &'a Sealer,
    verifier: &'a Arc<PasswordVerifier>,
    clients: &'a Arc<ClientRegistry>,
    storage: &'a Arc<dyn Storage>,
}

/// The connectors of one issuer: the configured upstreams, the local users, and in mock mode
/// the mock connector (its form in front of the local one, its silent logins with
/// `mock.auto_login`, and its refresh for what it signed in or minted).
async fn connectors(
    config: &Config,
    options: &Options,
    parts: ConnectorParts<'_>,
) -> Result<ConnectorRegistry, StartError> {
    let mut registry = ConnectorRegistry::new();
    for c in &config.connectors {
        registry.add_upstream(Arc::new(OidcConnector::new(
            c.clone(),
            &config.issuer,
            parts.sealer.clone(),
            options.clock.clone(),
            parts.metrics.clone(),
        )?));
    }
    let local = {
        let list = config.users.clone();
        let verifier = parts.verifier.clone();
        // Plain-text development passwords are hashed once, off the runtime.
        tokio::task::spawn_blocking(move || LocalConnector::new(&list, verifier))
            .await
            .map_err(|e| StartError::EncryptionKey(format!("preparing users: {e}")))?
    };
    registry.set_password(Arc::new(local));
    if let Some(mock) = &options.mock {
        let connector = Arc::new(MockConnector::new(
            mock.clone(),
            parts.clients.clone(),
            parts.storage.clone(),
        ));
        registry.set_other_refresh(connector.clone());
        if mock.mock_login {
            registry.put_password_form_first(connector.clone());
            if mock.auto_login {
                registry.set_silent(connector);
            }
        }
    }
    Ok(registry)
}

/// The control API's handles on one issuer.
pub fn control(
    state: &AppState,
    mock: Arc<MockState>,
    publish_ahead: Seconds,
) -> crate::mock::state::Control {
    crate::mock::state::Control {
        mock,
        keys: state.keys.clone(),
        clients: state.clients.clone(),
        storage: state.storage.clone(),
        grants: state.grants.clone(),
        publish_ahead,
    }
}

/// Background work: keys reloaded, rotated and pruned every `period`; expired codes,
/// sessions, pending requests and refresh tokens purged every five minutes.
pub fn spawn_maintenance(state: &AppState, period: Duration) -> tokio::task::JoinHandle<()> {
    let keys = state.keys.spawn_maintenance(period);
    let storage = state.storage.clone();
    let clock = state.flows.clock.clone();
    tokio::spawn(async move {
        let _keys = AbortOnDrop(keys);
        let mut tick = tokio::time::interval(Duration::from_secs(300));
        loop {
            tick.tick().await;
            match storage.purge_expired(clock.now()).await {
                Ok(n) if n > 0 => tracing::debug!(purged = n, "expired records removed"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "purging expired records failed"),
            }
        }
    })
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A built server, bound and ready to run.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
    limits: crate::server::Limits,
    maintenance: tokio::task::JoinHandle<()>,
    /// `server.metrics_listen`, bound.
    metrics: Option<TcpListener>,
}

impl Application {
    /// Builds everything and binds `config.listen`.
    pub async fn build(config: &Config, options: Options) -> Result<Self, StartError> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| StartError::Bind(config.listen, e))?;
        Self::with_listener(config, listener, options).await
    }

    pub async fn with_listener(
        config: &Config,
        listener: TcpListener,
        mut options: Options,
    ) -> Result<Self, StartError> {
        let control_state = if config.mock.control_api && options.mock.is_none() {
            let mock = MockState::for_serve(config);
            options.clock = mock.clock.clone();
            options.mock = Some(mock.clone());
            Some(mock)
        } else {
            None
        };
        let state = build_state(config, &options).await?;
        let maintenance = spawn_maintenance(&state, options.key_maintenance);
        let mut routes = issuer_routes(config, state.clone());
        if let Some(mock) = control_state {
            tracing::warn!(
                "MOCK CONTROL API ENABLED at {}/mock/: anyone with the admin token can mint tokens,                  move the clock and inject faults. For staging only, never production.",
                config.issuer
            );
            routes = routes
                .layer(axum::middleware::from_fn_with_state(
                    mock.clone(),
                    crate::mock::inspect::inspect,
                ))
                .merge(crate::mock::control::routes(Arc::new(control(
                    &state,
                    mock,
                    config.signing.publish_ahead,
                ))));
        }
        let metrics = match config.server.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|e| StartError::Bind(addr, e))?,
            ),
            None => None,
        };
        Ok(Self {
            listener,
            router: finish(routes, state.clone()),
            state,
            limits: crate::server::Limits::from(&config.server),
            maintenance,
            metrics,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Where `/metrics` is served, if `server.metrics_listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then drains open requests.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let metrics = self.metrics.map(|listener| {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(%addr, "metrics at /metrics");
            }
            let router = router::metrics_router(self.state.clone());
            let limits = self.limits.clone();
            tokio::spawn(crate::server::serve(
                listener,
                router,
                limits,
                std::future::pending(),
            ))
        });
        let result = crate::server::serve(self.listener, self.router, self.limits, shutdown).await;
        self.maintenance.abort();
        if let Some(m) = metrics {
            m.abort();
        }
        result
    }
}
