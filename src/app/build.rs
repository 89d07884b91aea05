//! Building the state from a config: what is opened once per process ([`Shared`]:
//! storage, keys, the verifier, counters, the audit log, the client registry) and what is
//! built anew on each reload ([`assemble`]: clients synced, users, connectors, lifetimes).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;

use super::router::issuer_routes;
use super::state::AppState;
use crate::audit::Audit;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConnectorKind, Seconds};
use crate::federation::github::GithubConnector;
use crate::federation::ldap::LdapConnector;
use crate::federation::{ConnectorRegistry, LocalConnector, OidcConnector};
use crate::keys::seal::{KeySource, resolve_key};
use crate::keys::{KeyError, KeyManager, KeyPolicy, Sealer};
use crate::mock::connector::MockConnector;
use crate::mock::state::MockState;
use crate::oidc::authorize::Flows;
use crate::oidc::client_auth::ClientAuth;
use crate::oidc::client_sync::sync_from_config;
use crate::oidc::clients::ClientRegistry;
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
            (None, true) => {
                KeyManager::start_in_background(
                    storage.clone(),
                    sealer.clone(),
                    clock.clone(),
                    key_policy(config),
                )
                .await?
            }
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
        assertions: Arc::new(crate::oidc::client_assertion::Assertions::new(
            config.issuer.clone(),
            storage.clone(),
            clock.clone(),
        )),
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
    let scopes = Arc::new(crate::oidc::claims::ScopeCatalog::new(&config.scopes));
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
        scopes: scopes.clone(),
    });
    let backchannel = Arc::new(crate::oidc::backchannel::Backchannel::new(
        config.issuer.clone(),
        keys.clone(),
        clients.clone(),
        storage.clone(),
        clock.clone(),
        audit.clone(),
    ));
    let flows = Arc::new(Flows {
        backchannel: backchannel.clone(),
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
        scopes: scopes.clone(),
    });
    let userinfo = Arc::new(Userinfo {
        tokens: tokens.clone(),
        clients: clients.clone(),
        connectors,
        storage: storage.clone(),
        shape: options.shape.clone(),
        scopes,
    });
    Ok(AppState::new(super::state::Parts {
        backchannel,
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
    }))
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
        match c.kind {
            ConnectorKind::Ldap => registry.add_directory(Arc::new(
                LdapConnector::new(c.clone(), options.clock.clone(), parts.metrics.clone())
                    .map_err(|e| {
                        StartError::Connector(crate::federation::upstream::UpstreamError::Invalid(
                            format!("{}: {e}", c.id),
                        ))
                    })?,
            )),
            ConnectorKind::Github => registry.add_upstream(Arc::new(GithubConnector::new(
                c.clone(),
                &config.issuer,
                parts.sealer.clone(),
                options.clock.clone(),
                parts.metrics.clone(),
            )?)),
            _ => registry.add_exchangeable(Arc::new(OidcConnector::new(
                c.clone(),
                &config.issuer,
                parts.sealer.clone(),
                options.clock.clone(),
                parts.metrics.clone(),
            )?)),
        }
    }
    let local = {
        let list = config.users.clone();
        let rules = config.groups.clone();
        let verifier = parts.verifier.clone();
        // Plain-text development passwords are hashed once, off the runtime.
        tokio::task::spawn_blocking(move || LocalConnector::new(&list, &rules, verifier))
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
        backchannel: state.backchannel.clone(),
        publish_ahead,
    }
}

/// One issuer's routes, with the mock control API when `serve` runs with
/// `mock.control_api`.
pub fn app_routes(
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
