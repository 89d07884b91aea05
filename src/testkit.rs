//! An in-process mock IdP for Rust tests (feature `testkit`).
//!
//! It is `oidc-bridge mock` on a free port of 127.0.0.1, with handles for the clock, faults
//! and minting, and it shuts down when dropped.
//!
//! ```no_run
//! use oidc_bridge::testkit::{MintRequest, MockIdp};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let idp = MockIdp::builder()
//!     .user("alice", &["developers"])
//!     .start()
//!     .await?;
//! // Point the code under test at `idp.issuer()` with `idp.client_id()` / `idp.client_secret()`.
//! let tokens = idp
//!     .mint(MintRequest { sub: Some("alice".into()), expires_in: Some(30), ..Default::default() })
//!     .await?;
//! assert!(tokens["access_token"].is_string());
//! idp.clock().advance(31); // now that token is expired everywhere in the IdP
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use serde_json::Value;
use tokio::net::TcpListener;

use crate::app::mock_mode::{MockIssuer, MockOptions, MockServer};
pub use crate::mock::faults::{Effect, Rule};
pub use crate::mock::mint::{Defect, MintRequest};
pub use crate::mock::state::QueuedLogin;

use crate::clock::AdjustableClock;
use crate::config::{Config, MockUserConfig};

/// Builds a [`MockIdp`].
#[derive(Default)]
pub struct MockIdpBuilder {
    yaml: Option<String>,
    users: Vec<MockUserConfig>,
    host: Option<String>,
}

impl MockIdpBuilder {
    /// A user with fixed claims: `username`, an e-mail of `username@example.com`, `groups`.
    pub fn user(mut self, username: &str, groups: &[&str]) -> Self {
        self.users.push(MockUserConfig {
            username: username.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..MockUserConfig::default()
        });
        self
    }

    /// A config in the same YAML as `oidc-bridge mock --config` (clients, `mock.issuers`…).
    pub fn config_yaml(mut self, yaml: &str) -> Self {
        self.yaml = Some(yaml.to_string());
        self
    }

    /// The host name in the issuer (default `127.0.0.1`), e.g. `localhost` to keep its
    /// cookies apart from another server's on 127.0.0.1 in the same test.
    pub fn host(mut self, host: &str) -> Self {
        self.host = Some(host.to_string());
        self
    }

    pub async fn start(self) -> Result<MockIdp, Box<dyn std::error::Error + Send + Sync>> {
        let mut config: Config = match &self.yaml {
            Some(y) => crate::config::from_yaml_str(y, &|k| std::env::var(k).ok())?,
            None => Config::defaults(),
        };
        config.mock.users.extend(self.users);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        config.listen = listener.local_addr()?;
        let issuer = self
            .host
            .as_ref()
            .map(|h| format!("http://{h}:{}", config.listen.port()));
        let server = MockServer::build(
            config,
            listener,
            MockOptions {
                issuer,
                ..MockOptions::default()
            },
        )
        .await?;
        let issuers = server.issuers.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = server
                .run_until(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(MockIdp {
            issuers,
            shutdown: Some(tx),
            task,
        })
    }
}

/// A running mock IdP. Dropping it stops the server.
pub struct MockIdp {
    issuers: Vec<MockIssuer>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl MockIdp {
    pub fn builder() -> MockIdpBuilder {
        MockIdpBuilder::default()
    }

    fn root(&self) -> &MockIssuer {
        &self.issuers[0]
    }

    /// The root issuer, e.g. `http://127.0.0.1:41234`.
    pub fn issuer(&self) -> &str {
        &self.root().issuer
    }

    /// The issuer of a `mock.issuers` entry by id (`"default"` is the root).
    pub fn issuer_of(&self, id: &str) -> Option<&str> {
        self.issuers
            .iter()
            .find(|i| i.id == id)
            .map(|i| i.issuer.as_str())
    }

    pub fn client_id(&self) -> &'static str {
        crate::mock::BUILTIN_CLIENT_ID
    }

    pub fn client_secret(&self) -> &'static str {
        crate::mock::BUILTIN_CLIENT_SECRET
    }

    /// The root issuer's clock: every issuance and check uses it.
    pub fn clock(&self) -> &Arc<AdjustableClock> {
        &self.root().mock.clock
    }

    /// Adds a fault rule to the root issuer.
    pub fn inject(&self, rule: Rule) -> Result<Rule, String> {
        self.root().mock.faults.add(rule)
    }

    pub fn clear_faults(&self) {
        self.root().mock.faults.clear();
    }

    /// Queues the identity of the next matching login.
    pub fn queue_login(&self, login: QueuedLogin) {
        self.root()
            .mock
            .next_logins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(login);
    }

    /// Mints tokens at the root issuer, as `POST /mock/tokens` does.
    pub async fn mint(&self, req: MintRequest) -> Result<Value, String> {
        let root = self.root();
        let control =
            crate::app::control(&root.state, root.mock.clone(), crate::config::Seconds(0));
        crate::mock::mint::mint(&control, req)
            .await
            .map_err(|e| e.to_string())
    }
}

impl Drop for MockIdp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.abort();
    }
}
