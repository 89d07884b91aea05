//! Live reload: `SIGHUP` or `POST /admin/reload` re-reads the config file and, when it is
//! sound, builds a new state over the same storage, keys, counters and audit log (clients,
//! users, connectors, group rules and lifetimes from the new file) and swaps the router.
//! Requests in flight finish on the router they started on; nothing is dropped.
//!
//! A config with any problem is refused whole: every problem is logged with its key path
//! (and answered by `POST /admin/reload`), and the running config stays. Keys that only a
//! restart can change (listeners, database, issuer, encryption key, audit output, admin
//! token) count as problems when they differ.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use axum::Router;
use serde_json::{Value, json};

use super::build::{Options, Shared, app_routes, assemble};
use super::router::finish;
use super::state::AppState;
use crate::audit::{Event, Kind};
use crate::config::{Config, Problem, load_file};
use crate::mock::state::MockState;
use crate::server::LiveRouter;

pub struct Reloader {
    path: Option<PathBuf>,
    options: Options,
    shared: Shared,
    live: LiveRouter,
    /// The config now serving.
    current: tokio::sync::Mutex<Config>,
    /// The admin routes, merged into each new router when they share the main listener.
    admin: OnceLock<Router>,
    /// `mock.control_api`'s state, when `serve` runs with it.
    control: Option<Arc<MockState>>,
}

impl Reloader {
    pub fn new(
        config: &Config,
        options: Options,
        shared: Shared,
        live: LiveRouter,
        control: Option<Arc<MockState>>,
    ) -> Self {
        Self {
            control,
            path: config.source.clone(),
            options,
            shared,
            live,
            current: tokio::sync::Mutex::new(config.clone()),
            admin: OnceLock::new(),
        }
    }

    pub(super) fn set_admin_routes(&self, routes: Router) {
        let _ = self.admin.set(routes);
    }

    /// The router for `config`'s state, with the admin routes when they are on this listener.
    pub(super) fn router(&self, config: &Config, state: AppState) -> Router {
        let mut routes = app_routes(config, &state, self.control.as_ref());
        if let Some(admin) = self.admin.get() {
            routes = routes.merge(admin.clone());
        }
        finish(routes, state)
    }

    /// Re-reads the file; on success the new config serves from the next request on and a
    /// summary is returned, else every problem (the running config stays). `trigger` says
    /// what asked (`sighup`, `admin`).
    pub async fn reload(&self, trigger: &str) -> Result<Value, Vec<Problem>> {
        let mut current = self.current.lock().await;
        let outcome = self.try_reload(&current).await;
        match outcome {
            Ok((config, summary)) => {
                *current = config;
                tracing::info!(trigger, %summary, "config reloaded");
                self.shared.audit.record(
                    Event::new(Kind::ConfigReload, "success")
                        .detail("trigger", trigger)
                        .detail("config", summary.clone()),
                );
                Ok(summary)
            }
            Err(problems) => {
                for p in &problems {
                    tracing::error!(key = %p.path, trigger, "config reload refused: {}", p.message);
                }
                let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
                self.shared.audit.record(
                    Event::new(Kind::ConfigReload, "refused")
                        .detail("trigger", trigger)
                        .detail("problems", listed),
                );
                Err(problems)
            }
        }
    }

    async fn try_reload(&self, old: &Config) -> Result<(Config, Value), Vec<Problem>> {
        let Some(path) = &self.path else {
            return Err(vec![problem(
                "",
                "the server was not started from a config file",
            )]);
        };
        let config = load_file(path).map_err(|p| p.0)?;
        let fixed = restart_only(old, &config);
        if !fixed.is_empty() {
            return Err(fixed);
        }
        let state = assemble(&config, &self.options, &self.shared)
            .await
            .map_err(|e| vec![problem("", e.to_string())])?;
        self.live.set(self.router(&config, state));
        let summary = json!({
            "clients": config.clients.len(),
            "users": config.users.len(),
            "connectors": config.connectors.len(),
        });
        Ok((config, summary))
    }
}

fn problem(path: &str, message: impl Into<String>) -> Problem {
    Problem {
        path: path.into(),
        message: message.into(),
    }
}

/// What differs in keys only a restart applies.
fn restart_only(old: &Config, new: &Config) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut check = |path: &str, same: bool| {
        if !same {
            out.push(problem(
                path,
                "changed, but only a restart applies it; restore it or restart",
            ));
        }
    };
    check("issuer", old.issuer == new.issuer);
    check("listen", old.listen == new.listen);
    check("database", old.database == new.database);
    check(
        "signing.encryption_key",
        old.signing.encryption_key == new.signing.encryption_key,
    );
    check(
        "server.metrics_listen",
        old.server.metrics_listen == new.server.metrics_listen,
    );
    check("audit.output", old.audit.output == new.audit.output);
    check(
        "admin",
        old.admin.token.as_ref().map(|t| t.expose())
            == new.admin.token.as_ref().map(|t| t.expose())
            && old.admin.token_hash == new.admin.token_hash
            && old.admin.listen == new.admin.listen,
    );
    check(
        "mock.control_api",
        old.mock.control_api == new.mock.control_api,
    );
    out
}
