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

use crate::audit::Audit;
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
use crate::server::{LiveRouter, TrustedProxies};
use crate::storage::{Storage, StorageError};
use reload::Reloader;
pub mod admin;
pub mod mock_mode;
pub mod ops;
pub mod reload;
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
#[derive(Clone)]
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

/// What outlives a reload: opened once per process and shared by every state built
/// from a config since.
#[derive(Clone)]
pub struct Shared {
    pub sealer: Sealer,
    pub storage: Arc<dyn Storage>,
    pub keys: Arc<KeyManager>,
    pub verifier: Arc<PasswordVerifier>,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub audit: Arc<Audit>,
    pub clients: Arc<ClientRegistry>,
    client_budgets: Arc<Budgets>,
    login_budgets: Arc<Budgets>,
    pending_budgets: Arc<Budgets>,
}

impl Shared {
    /// Storage (opened and migrated), the signing keys, the audit log and the counters.
    pub async fn open(config: &Config, options: &Options) -> Result<Self, StartError> {
        let sealer = sealer(config)?;
        let storage = match &options.storage {
            Some(s) => {
                s.migrate().await?;
                s.clone()
            }
            None => open_storage(config).await?,
        };
        let clock = options.clock.clone();
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
        let audit = Audit::open(config.audit.output.as_ref(), clock.clone()).map_err(|e| {
            StartError::EncryptionKey(format!("opening the audit log (audit.output): {e}"))
        })?;
        let audit = Arc::new(audit);
        let hook_audit = audit.clone();
        keys.on_created(Box::new(move |kid, alg, activates_at| {
            hook_audit.record(
                crate::audit::Event::new(crate::audit::Kind::KeyRotation, "success")
                    .detail("kid", kid)
                    .detail("alg", alg)
                    .detail("activates_at", activates_at),
            );
        }));
        let secret_key = ClientSecretKey::new(sealer.derive("client-secret"));
        sync_from_config(&*storage, &config.clients, &secret_key, clock.now()).await?;
        let clients = Arc::new(ClientRegistry::load(storage.clone(), secret_key).await?);
        Ok(Self {
            sealer,
            storage,
            keys,
            verifier: PasswordVerifier::for_this_machine(),
            metrics: crate::metrics::Metrics::new(),
            audit,
            clients,
            client_budgets: Default::default(),
            login_budgets: Default::default(),
            pending_budgets: Default::default(),
        })
    }
}

/// Builds the state: storage, clients, keys, token services.
pub async fn build_state(config: &Config, options: &Options) -> Result<AppState, StartError> {
    let shared = Shared::open(config, options).await?;
    assemble(config, options, &shared).await
}

/// The state for `config` over `shared`: at start, and again on each reload (the config's
/// clients written to storage, users, connectors, group rules and lifetimes read anew).
pub async fn assemble(
    config: &Config,
    options: &Options,
    shared: &Shared,
) -> Result<AppState, StartError> {
    for w in &config.warnings {
        tracing::warn!(key = %w.path, "{}", w.message);
    }
    let Shared {
        sealer,
        storage,
        keys,
        verifier,
        metrics,
        audit,
        clients,
        ..
    } = shared.clone();
    let clock = options.clock.clone();
    sync_from_config(
        &*storage,
        &config.clients,
        clients.secret_key(),
        clock.now(),
    )
    .await?;
    clients.refresh().await?;
    keys.set_policy(key_policy(config));
    let client_auth = Arc::new(ClientAuth {
        registry: clients.clone(),
        verifier: verifier.clone(),
        budgets: shared.client_budgets.clone(),
        clock: clock.clone(),
        metrics: metrics.clone(),
        audit: audit.clone(),
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
    let tokens = Arc::new(TokenService::new(
        config.issuer.clone(),
        keys.clone(),
        clock.clone(),
        storage.clone(),
        max_access_lifetime,
    ));
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
        audit: audit.clone(),
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
        login_budgets: shared.login_budgets.clone(),
        devices,
        pending_budgets: shared.pending_budgets.clone(),
        pending_per_minute: config.server.pending_requests_per_minute,
        max_access_lifetime,
        connectors: connectors.clone(),
        // Mock logins: a test author chose every claim a user has, and a test tool on
        // loopback is not charged for the pending requests it starts.
        any_claims: mock_login,
        charge_pending: !mock_login,
        metrics: metrics.clone(),
        audit: audit.clone(),
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
        audit,
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

/// How often each node rereads the clients from storage.
pub const CLIENT_REFRESH: Duration = Duration::from_secs(2);

/// Background work: clients reread every [`CLIENT_REFRESH`]; keys reloaded, rotated and pruned every `period`; expired codes,
/// sessions, pending requests and refresh tokens purged every five minutes.
pub fn spawn_maintenance(state: &AppState, period: Duration) -> tokio::task::JoinHandle<()> {
    let keys = state.keys.spawn_maintenance(period);
    let storage = state.storage.clone();
    let clock = state.flows.clock.clone();
    let registry = state.clients.clone();
    // Clients changed through the admin API on another node reach this one within this.
    let clients = tokio::spawn(async move {
        let mut tick = tokio::time::interval(CLIENT_REFRESH);
        loop {
            tick.tick().await;
            if let Err(e) = registry.refresh().await {
                tracing::warn!(error = %e, "refreshing clients from storage failed");
            }
        }
    });
    tokio::spawn(async move {
        let _keys = AbortOnDrop(keys);
        let _clients = AbortOnDrop(clients);
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

/// One issuer's routes, with the mock control API when `serve` runs with
/// `mock.control_api`.
pub(crate) fn app_routes(
    config: &Config,
    state: &AppState,
    control_state: Option<&Arc<MockState>>,
) -> Router {
    let mut routes = issuer_routes(config, state.clone());
    if let Some(mock) = control_state {
        routes = routes
            .layer(axum::middleware::from_fn_with_state(
                mock.clone(),
                crate::mock::inspect::inspect,
            ))
            .merge(crate::mock::control::routes(Arc::new(control(
                state,
                mock.clone(),
                config.signing.publish_ahead,
            ))));
    }
    routes
}

async fn bind(addr: Option<SocketAddr>) -> Result<Option<TcpListener>, StartError> {
    match addr {
        Some(addr) => Ok(Some(
            TcpListener::bind(addr)
                .await
                .map_err(|e| StartError::Bind(addr, e))?,
        )),
        None => Ok(None),
    }
}

/// A built server, bound and ready to run.
pub struct Application {
    listener: TcpListener,
    router: LiveRouter,
    state: AppState,
    limits: crate::server::Limits,
    maintenance: tokio::task::JoinHandle<()>,
    /// `server.metrics_listen`, bound.
    metrics: Option<TcpListener>,
    /// `admin.listen`, bound, with its router.
    admin: Option<(TcpListener, Router)>,
    reloader: Arc<Reloader>,
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
        let shared = Shared::open(config, &options).await?;
        let state = assemble(config, &options, &shared).await?;
        let maintenance = spawn_maintenance(&state, options.key_maintenance);
        if control_state.is_some() {
            tracing::warn!(
                "MOCK CONTROL API ENABLED at {}/mock/: anyone with the admin token can mint tokens, \
                 move the clock and inject faults. For staging only, never production.",
                config.issuer
            );
        }
        let metrics = bind(config.server.metrics_listen).await?;
        let admin_listener = bind(config.admin.listen).await?;
        let live = LiveRouter::new(Router::new());
        let clock = options.clock.clone();
        let reloader = Arc::new(Reloader::new(
            config,
            options,
            shared.clone(),
            live.clone(),
            control_state,
        ));
        let admin_routes = admin::Admin::new(&config.admin, &shared, clock, reloader.clone())
            .map(|a| admin::routes(Arc::new(a)));
        let admin = match (admin_routes, admin_listener) {
            (Some(routes), Some(l)) => Some((l, finish(routes, state.clone()))),
            (Some(routes), None) => {
                reloader.set_admin_routes(routes);
                None
            }
            (None, _) => None,
        };
        live.set(reloader.router(config, state.clone()));
        Ok(Self {
            listener,
            router: live,
            state,
            limits: crate::server::Limits::from(&config.server),
            maintenance,
            metrics,
            admin,
            reloader,
        })
    }

    /// What reloads the config (`SIGHUP`, `POST /admin/reload`).
    pub fn reloader(&self) -> Arc<Reloader> {
        self.reloader.clone()
    }

    /// Where the admin API is served, if `admin.listen` is set.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|(l, _)| l.local_addr().ok())
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
        let admin = self.admin.map(|(listener, router)| {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(%addr, "admin API at /admin/");
            }
            tokio::spawn(crate::server::serve(
                listener,
                router,
                self.limits.clone(),
                std::future::pending(),
            ))
        });
        let result = crate::server::serve(self.listener, self.router, self.limits, shutdown).await;
        self.maintenance.abort();
        for task in [metrics, admin].into_iter().flatten() {
            task.abort();
        }
        result
    }
}
