//! The OIDC, Okta and Entra ID connectors: an [`Upstream`] (the `openidconnect` side) plus
//! the group pipeline and the identity a login makes here. They redirect and they refresh.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use super::connector::{
    ConnectorError, Identity, PendingUpstream, RedirectConnector, RefreshConnector, Refreshed,
    TokenIdentity, UpstreamSession,
};
use super::groups::{self, Outcome, RawGroup};
use super::identity;
use super::upstream::google::Directory;
use super::upstream::okta::ServiceAppClient;
use super::upstream::{Upstream, UpstreamError, UpstreamLogin};
use crate::clock::Clock;
use crate::config::{ConnectorConfig, ConnectorKind, KindSettings};
use crate::keys::Sealer;
use crate::metrics::Metrics;

/// One configured upstream IdP.
pub struct OidcConnector {
    upstream: Upstream,
    /// google: the Directory API's service account (its key parsed once).
    directory: Option<Directory>,
    /// okta: the Groups API's service app, when `groups_api` names one.
    okta_app: Option<ServiceAppClient>,
    /// Seals the upstream refresh token kept in the identity.
    sealer: Sealer,
    clock: Arc<dyn Clock>,
}

impl OidcConnector {
    pub fn new(
        config: ConnectorConfig,
        bridge_issuer: &str,
        sealer: Sealer,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, UpstreamError> {
        let directory = match &config.settings {
            KindSettings::Google(g) => g.directory.as_ref().map(Directory::new).transpose()?,
            _ => None,
        };
        let okta_app = match &config.groups_api {
            Some(api) => ServiceAppClient::new(api)?,
            None => None,
        };
        Ok(Self {
            directory,
            okta_app,
            upstream: Upstream::new(config, bridge_issuer, clock.clone(), metrics)?,
            sealer,
            clock,
        })
    }

    fn config(&self) -> &ConnectorConfig {
        &self.upstream.config
    }

    /// The groups of an upstream login, through the connector's pipeline.
    pub async fn groups(&self, login: &UpstreamLogin) -> Result<Outcome, UpstreamError> {
        Ok(groups::normalize(
            &self.config().groups,
            &self.raw_groups(login).await?,
        ))
    }

    /// The groups as the upstream gave them. Entra ID group GUIDs are looked up in Graph
    /// when the token has an overage marker, or (with `trust_display_names`) when `map` does
    /// not name them all.
    pub async fn raw_groups(&self, login: &UpstreamLogin) -> Result<Vec<RawGroup>, UpstreamError> {
        let cfg = self.config();
        let mut raw = groups::extract(&login.claims, &cfg.groups.claims);
        if cfg.kind == ConnectorKind::Okta {
            return self.okta_groups(login, raw).await;
        }
        if let (KindSettings::Google(google), Some(dir)) = (&cfg.settings, &self.directory) {
            return self.google_groups(google, dir, &login.claims).await;
        }
        if cfg.kind != ConnectorKind::Azure {
            return Ok(raw);
        }
        let overage = login.claims["_claim_names"]["groups"].is_string()
            || login.claims["hasgroups"] == Value::Bool(true);
        // Display names are looked up only when the connector trusts them (M365 group names
        // are chosen by their creators and not unique).
        let unnamed = cfg.groups.trust_display_names
            && raw.iter().any(|g| {
                groups::looks_like_guid(&g.value) && !cfg.groups.map.contains_key(&g.value)
            });
        if !overage && !unnamed {
            return Ok(raw);
        }
        let mut from_graph = self.upstream.graph_groups(&login.access_token).await?;
        if !cfg.groups.trust_display_names {
            for (_, name) in &mut from_graph {
                *name = None;
            }
        }
        if overage {
            raw.retain(|g| g.source != "groups");
            raw.extend(from_graph.into_iter().map(|(id, name)| RawGroup {
                value: id,
                source: "graph:transitiveMemberOf".into(),
                display_name: name,
            }));
        } else {
            let names: HashMap<String, Option<String>> = from_graph.into_iter().collect();
            for g in &mut raw {
                if let Some(Some(n)) = names.get(&g.value) {
                    g.display_name = Some(n.clone());
                }
            }
        }
        Ok(raw)
    }

    /// okta: the token's groups, or (with `groups_api`, when the token holds the 100 Okta
    /// puts in at most, or the configured `marker` group, or `always`) every group from the
    /// Groups API instead.
    async fn okta_groups(
        &self,
        login: &UpstreamLogin,
        mut raw: Vec<RawGroup>,
    ) -> Result<Vec<RawGroup>, UpstreamError> {
        let Some(api) = &self.config().groups_api else {
            return Ok(raw);
        };
        let in_token = raw.iter().filter(|g| g.source == "groups").count();
        let marked = api
            .marker
            .as_ref()
            .is_some_and(|m| raw.iter().any(|g| &g.value == m));
        if !api.always && !marked && in_token < crate::config::OKTA_TOKEN_GROUPS {
            return Ok(raw);
        }
        let Some(user) = login.claims["sub"].as_str() else {
            return Ok(raw);
        };
        let names = self
            .upstream
            .okta_groups(api, self.okta_app.as_ref(), user)
            .await?;
        raw.retain(|g| g.source != "groups");
        raw.extend(names.into_iter().map(|value| RawGroup {
            value,
            source: "okta:groups_api".into(),
            display_name: None,
        }));
        Ok(raw)
    }

    /// google: the person's Directory groups, never the token's. Only a Workspace account
    /// (`hd`) with a verified address is looked up: Google vouches for an address only there.
    async fn google_groups(
        &self,
        google: &crate::config::GoogleSettings,
        dir: &Directory,
        claims: &Value,
    ) -> Result<Vec<RawGroup>, UpstreamError> {
        let (Some(email), Some(hd)) = (claims["email"].as_str(), claims["hd"].as_str()) else {
            return Ok(Vec::new());
        };
        if claims["email_verified"] != Value::Bool(true) {
            return Ok(Vec::new());
        }
        let found = self.upstream.google_groups(dir, email, hd).await?;
        Ok(super::google::raw_groups(google, hd, &found))
    }

    /// The identity for an upstream login, with its upstream session kept for refresh.
    pub async fn identity(&self, login: &UpstreamLogin) -> Result<Identity, ConnectorError> {
        let cfg = self.config();
        if let KindSettings::Google(google) = &cfg.settings {
            super::google::check_hosted_domain(google, &login.claims)
                .map_err(|why| ConnectorError::Upstream(UpstreamError::Refused(why)))?;
        }
        let outcome = self.groups(login).await?;
        if cfg.groups.required && outcome.groups.is_empty() {
            return Err(ConnectorError::NoRequiredGroup);
        }
        let claims = self.with_graph_profile(login).await?;
        let mut identity =
            identity::build(cfg, &claims, outcome.groups).map_err(ConnectorError::Identity)?;
        identity.upstream_session = Some(UpstreamSession {
            connector: cfg.id.clone(),
            refresh_token: login
                .refresh_token
                .as_ref()
                .and_then(|t| self.sealer.seal(t.as_bytes(), &cfg.id).ok())
                .map(|sealed| crate::secret::b64url(&sealed)),
            fetched_at: self.clock.now(),
        });
        Ok(identity)
    }

    /// The login's claims, with Graph's profile under `graph` when a mapped claim names a
    /// `graph.` path (azure only; the config refuses it elsewhere).
    async fn with_graph_profile<'a>(
        &self,
        login: &'a UpstreamLogin,
    ) -> Result<std::borrow::Cow<'a, Value>, UpstreamError> {
        let fields: Vec<&str> = self
            .config()
            .claims
            .values()
            .filter_map(|p| p.strip_prefix("graph."))
            .filter_map(|p| p.split('.').next())
            .collect();
        if fields.is_empty() || self.config().kind != ConnectorKind::Azure {
            return Ok(std::borrow::Cow::Borrowed(&login.claims));
        }
        // Graph failing (throttled, consent missing) leaves the mapped claims out; it does not
        // refuse the sign-in or end a session at refresh.
        let profile = match self
            .upstream
            .graph_profile(&login.access_token, &fields)
            .await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(connector = %self.config().id, error = %e, "Graph profile unavailable: its mapped claims are left out");
                return Ok(std::borrow::Cow::Borrowed(&login.claims));
            }
        };
        let mut claims = login.claims.clone();
        if let Value::Object(m) = &mut claims {
            m.insert("graph".into(), profile);
        }
        Ok(std::borrow::Cow::Owned(claims))
    }

    /// The upstream refresh token kept in `session`, unsealed.
    fn refresh_token_of(&self, session: &UpstreamSession) -> Result<String, ConnectorError> {
        use base64::Engine as _;
        let Some(sealed) = &session.refresh_token else {
            // Nothing to ask upstream with: a person disabled there must not keep refreshing
            // here until the family's absolute lifetime.
            return Err(ConnectorError::ReauthenticationRequired);
        };
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sealed)
            .ok()
            .and_then(|b| self.sealer.open(&b, &self.config().id).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                ConnectorError::Identity("the stored upstream refresh token is unreadable".into())
            })
    }
}

#[async_trait]
impl RedirectConnector for OidcConnector {
    fn id(&self) -> &str {
        &self.config().id
    }

    fn name(&self) -> &str {
        &self.config().name
    }

    fn email_domains(&self) -> &[String] {
        &self.config().email_domains
    }

    async fn start(
        &self,
        state: String,
        login_hint: Option<&str>,
    ) -> Result<(String, PendingUpstream), UpstreamError> {
        self.upstream.authorization_url(state, login_hint).await
    }

    /// RFC 9207: `iss` must name the connector's issuer (for a multi-tenant Entra ID
    /// connector, its template filled with an allowed tenant), and must be there when the
    /// upstream says it sends it.
    async fn accepts_issuer(&self, iss: Option<&str>) -> bool {
        match iss {
            Some(iss) => self.upstream.is_issuer(iss),
            None => !self.upstream.sends_iss().await,
        }
    }

    async fn finish(
        &self,
        code: &str,
        pending: &PendingUpstream,
    ) -> Result<Identity, ConnectorError> {
        let login = self.upstream.exchange(code, pending).await?;
        self.identity(&login).await
    }
}

impl OidcConnector {
    /// google without an upstream refresh token (Google gives one only at first consent):
    /// the Directory groups read again for the e-mail signed in with; the rest stands.
    async fn regroup(&self, identity: &Identity) -> Result<Refreshed, ConnectorError> {
        let hd = identity
            .extra
            .get("upstream")
            .and_then(|u| u["hd"].as_str());
        // Suspended or archived in the Directory (which Google's own refresh would say): gone.
        if let (Some(dir), Some(email), Some(hd)) = (&self.directory, &identity.email, hd)
            && !self.upstream.google_user_active(dir, email, hd).await?
        {
            return Ok(Refreshed::Gone);
        }
        let claims = serde_json::json!({
            "email": identity.email,
            "email_verified": identity.email_verified.unwrap_or(false),
            "hd": hd,
        });
        let login = UpstreamLogin {
            claims,
            access_token: String::new(),
            refresh_token: None,
        };
        let outcome = self.groups(&login).await?;
        if self.config().groups.required && outcome.groups.is_empty() {
            return Err(ConnectorError::NoRequiredGroup);
        }
        let mut fresh = identity.clone();
        fresh.groups = outcome.groups;
        if let Some(s) = &mut fresh.upstream_session {
            s.fetched_at = self.clock.now();
        }
        Ok(Refreshed::Renewed(fresh))
    }
}

/// Token exchange: an upstream ID token is checked as at sign-in (signature, `iss`, `aud`
/// this connector's client id, expiry; no nonce), then makes an identity as a sign-in does
/// (the group pipeline, Graph or the Groups API when they apply), with no upstream refresh
/// token and no upstream access token.
#[async_trait]
impl TokenIdentity for OidcConnector {
    async fn token_identity(&self, id_token: &str) -> Result<(Identity, i64), ConnectorError> {
        let login = UpstreamLogin {
            claims: self.upstream.verify(id_token, None).await?,
            access_token: String::new(),
            refresh_token: None,
        };
        let signed_in = login.claims["auth_time"]
            .as_i64()
            .or_else(|| login.claims["iat"].as_i64())
            .unwrap_or_else(|| self.clock.now());
        Ok((self.identity(&login).await?, signed_in))
    }
}

#[async_trait]
impl RefreshConnector for OidcConnector {
    /// Past the connector's `groups_max_staleness`, asks upstream again; before it, the
    /// identity stands.
    async fn refresh(&self, identity: &Identity) -> Result<Refreshed, ConnectorError> {
        let Some(session) = &identity.upstream_session else {
            return Ok(Refreshed::Unchanged);
        };
        if self.clock.now() - session.fetched_at <= self.config().groups_max_staleness.get() {
            return Ok(Refreshed::Unchanged);
        }
        let token = match self.refresh_token_of(session) {
            Err(ConnectorError::ReauthenticationRequired) if self.directory.is_some() => {
                return self.regroup(identity).await;
            }
            other => other?,
        };
        let mut login = self.upstream.refresh(&token).await?;
        // A refresh response may carry no ID token: keep what we knew.
        let no_id_token = login.claims.get("sub").is_none();
        if no_id_token {
            let mut kept = serde_json::Map::new();
            if let Some(u) = identity.extra.get("upstream") {
                for k in ["sub", "tid", "oid", "iss", "hd"] {
                    if let Some(v) = u.get(k) {
                        kept.insert(k.into(), v.clone());
                    }
                }
            }
            if let Some(e) = &identity.email {
                kept.insert("email".into(), Value::String(e.clone()));
                kept.insert(
                    "email_verified".into(),
                    Value::Bool(identity.email_verified.unwrap_or(false)),
                );
            }
            login.claims = Value::Object(kept);
        }
        let mut fresh = self.identity(&login).await?;
        // The subject never changes on refresh.
        fresh.sub = identity.sub.clone();
        if fresh.email.is_none() {
            fresh.email = identity.email.clone();
            fresh.email_verified = identity.email_verified;
        }
        if fresh.name.is_none() {
            fresh.name = identity.name.clone();
        }
        if no_id_token {
            // Roles and mapped claims came with the ID token: without one, they stand.
            fresh.roles = identity.roles.clone();
            for name in self.config().claims.keys() {
                if let Some(v) = identity.extra.get(name) {
                    fresh.extra.entry(name.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        Ok(Refreshed::Renewed(fresh))
    }
}
