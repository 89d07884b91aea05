//! The federation broker: connectors to upstream IdPs (generic OIDC, Okta, Entra ID, mock
//! personas), the login round trip through them, one group-normalization pipeline, and the
//! identity a federated person gets here.

pub mod groups;
pub mod identity;
pub mod upstream;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::clock::Clock;
use crate::config::{ConnectorConfig, ConnectorKind};
use crate::keys::Sealer;
use crate::oidc::identity::{Identity, UpstreamSession};
use groups::{Outcome, RawGroup};
use upstream::{Upstream, UpstreamError, UpstreamLogin};

/// Why a federated login could not complete.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The group pipeline left nothing and the connector requires a group.
    #[error("no group of yours is allowed to sign in here")]
    NoRequiredGroup,
    #[error("{0}")]
    Identity(String),
    /// The claims are past `groups_max_staleness` and there is no upstream refresh token
    /// to renew them with: the person must sign in upstream again.
    #[error("the upstream identity must be checked again by signing in")]
    ReauthenticationRequired,
}

/// Every connector, by id.
pub struct Federation {
    pub connectors: HashMap<String, Arc<Upstream>>,
    /// In the config's order, for the chooser page.
    pub order: Vec<String>,
    sealer: Sealer,
    clock: Arc<dyn Clock>,
}

impl Federation {
    pub fn new(
        configs: &[ConnectorConfig],
        bridge_issuer: &str,
        sealer: Sealer,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, UpstreamError> {
        let mut connectors = HashMap::new();
        for c in configs {
            let up = Upstream::new(c.clone(), bridge_issuer, clock.clone())?;
            connectors.insert(c.id.clone(), Arc::new(up));
        }
        Ok(Self {
            connectors,
            order: configs.iter().map(|c| c.id.clone()).collect(),
            sealer,
            clock,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.connectors.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Upstream>> {
        self.connectors.get(id)
    }

    /// The groups of an upstream login, through the connector's pipeline. Entra ID group
    /// GUIDs are named from Graph when the token has an overage marker or when `map` does not
    /// name them all.
    pub async fn groups(
        &self,
        up: &Upstream,
        login: &UpstreamLogin,
    ) -> Result<Outcome, UpstreamError> {
        Ok(groups::normalize(
            &up.config.groups,
            &self.raw_groups(up, login).await?,
        ))
    }

    pub async fn raw_groups(
        &self,
        up: &Upstream,
        login: &UpstreamLogin,
    ) -> Result<Vec<RawGroup>, UpstreamError> {
        let cfg = &up.config;
        let mut raw = groups::extract(&login.claims, &cfg.groups.claims);
        if cfg.kind == ConnectorKind::Azure {
            let overage = login.claims["_claim_names"]["groups"].is_string()
                || login.claims["hasgroups"] == Value::Bool(true);
            // Display names are looked up only when the connector trusts them (M365 group
            // names are chosen by their creators and not unique).
            let unnamed = cfg.groups.trust_display_names
                && raw.iter().any(|g| {
                    groups::looks_like_guid(&g.value) && !cfg.groups.map.contains_key(&g.value)
                });
            if overage || unnamed {
                let mut from_graph = up.graph_groups(&login.access_token).await?;
                if !cfg.groups.trust_display_names {
                    for (_, name) in &mut from_graph {
                        *name = None;
                    }
                }
                let names: HashMap<String, Option<String>> = from_graph.iter().cloned().collect();
                if overage {
                    raw.retain(|g| g.source != "groups");
                    raw.extend(from_graph.into_iter().map(|(id, name)| RawGroup {
                        value: id,
                        source: "graph:transitiveMemberOf".into(),
                        display_name: name,
                    }));
                } else {
                    for g in &mut raw {
                        if let Some(Some(n)) = names.get(&g.value) {
                            g.display_name = Some(n.clone());
                        }
                    }
                }
            }
        }
        Ok(raw)
    }

    /// The identity for an upstream login, with its upstream session kept for refresh.
    pub async fn identity(
        &self,
        up: &Upstream,
        login: &UpstreamLogin,
    ) -> Result<(Identity, Outcome), LoginError> {
        let outcome = self.groups(up, login).await?;
        if up.config.groups.required && outcome.groups.is_empty() {
            return Err(LoginError::NoRequiredGroup);
        }
        let mut identity = identity::build(&up.config, &login.claims, outcome.groups.clone())
            .map_err(LoginError::Identity)?;
        identity.upstream_session = Some(UpstreamSession {
            connector: up.config.id.clone(),
            refresh_token: login
                .refresh_token
                .as_ref()
                .and_then(|t| self.sealer.seal(t.as_bytes(), &up.config.id).ok())
                .map(|sealed| crate::secret::b64url(&sealed)),
            fetched_at: self.clock.now(),
        });
        Ok((identity, outcome))
    }

    /// Refreshes a federated identity upstream if its claims are older than the connector's
    /// `groups_max_staleness`. `Ok(None)`: still fresh (or nothing to refresh with).
    pub async fn refresh_if_stale(
        &self,
        identity: &Identity,
    ) -> Result<Option<Identity>, LoginError> {
        let Some(session) = &identity.upstream_session else {
            return Ok(None);
        };
        let Some(up) = self.get(&session.connector) else {
            return Err(LoginError::Upstream(UpstreamError::Refused(
                "the connector is gone".into(),
            )));
        };
        if self.clock.now() - session.fetched_at <= up.config.groups_max_staleness.get() {
            return Ok(None);
        }
        let Some(sealed) = &session.refresh_token else {
            // Nothing to ask upstream with: a person disabled there must not keep
            // refreshing here until the family's absolute lifetime.
            return Err(LoginError::ReauthenticationRequired);
        };
        use base64::Engine as _;
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sealed)
            .ok()
            .and_then(|b| self.sealer.open(&b, &up.config.id).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                LoginError::Identity("the stored upstream refresh token is unreadable".into())
            })?;
        let mut login = up.refresh(&token).await?;
        // A refresh response may carry no ID token: keep what we knew.
        if login.claims.get("sub").is_none() {
            let mut kept = serde_json::Map::new();
            if let Some(u) = identity.extra.get("upstream") {
                for k in ["sub", "tid", "oid", "iss"] {
                    if let Some(v) = u.get(k) {
                        kept.insert(k.into(), v.clone());
                    }
                }
            }
            login.claims = Value::Object(kept);
        }
        let (mut fresh, _) = self.identity(up, &login).await?;
        // The subject never changes on refresh.
        fresh.sub = identity.sub.clone();
        if fresh.email.is_none() {
            fresh.email = identity.email.clone();
            fresh.email_verified = identity.email_verified;
        }
        if fresh.name.is_none() {
            fresh.name = identity.name.clone();
        }
        Ok(Some(fresh))
    }
}
