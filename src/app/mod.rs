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

use crate::config::Config;
use crate::mock::state::MockState;
use crate::server::LiveRouter;
use reload::Reloader;
pub mod admin;
mod admin_auth;
mod admin_json;
mod build;
pub mod mock_mode;
pub mod ops;
pub mod reload;
mod router;
mod state;

pub use build::{
    Options, Shared, StartError, app_routes, assemble, build_state, control, key_policy,
    open_storage, pool_options, sealer,
};
pub use router::{MAX_BODY, finish, issuer_routes, router};
pub use state::AppState;

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

    /// Reloads the config on each `SIGHUP` (refusals are logged, every problem with its key
    /// path, and audited).
    pub fn reload_on_hangup(&self) -> std::io::Result<()> {
        #[cfg(unix)]
        {
            let reloader = self.reloader();
            let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    let id = crate::secret::random_token(12);
                    let _ = crate::audit::within(id, reloader.reload("sighup")).await;
                }
            });
        }
        Ok(())
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
