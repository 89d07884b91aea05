//! The GitHub connector: OAuth 2.0 with state and PKCE (GitHub issues no ID token), then the
//! REST API as the person: `/user` (the numeric id is the immutable id), `/user/emails`
//! (only a verified address: the preferred domain's, else the primary), `/user/teams` and,
//! for each configured org, a membership check. Groups are `org` and `org-team` (the team's
//! slug; the separator is `team_separator`), valid Backstage entity names as they come.
//! With `orgs`, only their members sign in, and an org's `teams` list narrows it to those
//! teams. The token is kept sealed, so a refresh past `groups_max_staleness` reads the
//! teams again (and a revoked app or a person who left the org ends the session).
//!
//! What GitHub answered is one JSON document, [`Answers`]; the pure [`raw_groups`] and
//! [`claims_of`] make the identity from it, and `groups explain` reads the same document.

use std::sync::Arc;

use async_trait::async_trait;

mod answers;
pub use answers::{Answers, Team, claims_of, raw_groups};

use super::connector::{
    ConnectorError, Identity, PendingUpstream, RedirectConnector, RefreshConnector, Refreshed,
    UpstreamSession,
};
use super::groups;
use super::identity;
use super::upstream::github::GithubTokens;
use super::upstream::{Upstream, UpstreamError};
use crate::clock::Clock;
use crate::config::{ConnectorConfig, GithubSettings, KindSettings};
use crate::keys::Sealer;
use crate::metrics::Metrics;

pub struct GithubConnector {
    upstream: Upstream,
    github: GithubSettings,
    sealer: Sealer,
    clock: Arc<dyn Clock>,
}

impl GithubConnector {
    pub fn new(
        config: ConnectorConfig,
        bridge_issuer: &str,
        sealer: Sealer,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, UpstreamError> {
        let KindSettings::Github(github) = config.settings.clone() else {
            return Err(UpstreamError::Invalid(format!(
                "connector {} is not a github connector",
                config.id
            )));
        };
        Ok(Self {
            upstream: Upstream::new(config, bridge_issuer, clock.clone(), metrics)?,
            github,
            sealer,
            clock,
        })
    }

    fn config(&self) -> &ConnectorConfig {
        &self.upstream.config
    }

    /// Everything GitHub says of the person behind `token`.
    async fn answers(&self, token: &str) -> Result<Answers, UpstreamError> {
        let up = &self.upstream;
        let user = up.github_object("/user", token).await?;
        let login = user["login"]
            .as_str()
            .ok_or_else(|| UpstreamError::Invalid("GitHub /user has no login".into()))?
            .to_string();
        let emails = up.github_list("/user/emails", token).await?;
        let teams: Vec<Team> = up
            .github_list("/user/teams", token)
            .await?
            .iter()
            .filter_map(|t| {
                Some(Team {
                    org: t["organization"]["login"].as_str()?.to_string(),
                    org_id: t["organization"]["id"].as_u64(),
                    slug: t["slug"].as_str()?.to_string(),
                    name: t["name"].as_str().unwrap_or_default().to_string(),
                })
            })
            .collect();
        let mut orgs = Vec::new();
        if self.github.orgs.is_empty() {
            for o in up.github_list("/user/orgs", token).await? {
                if let Some(l) = o["login"].as_str() {
                    orgs.push(l.to_string());
                }
            }
        } else {
            for o in &self.github.orgs {
                let member = match o.id {
                    Some(id) => up.github_membership_id(&o.name, token).await? == Some(id),
                    None => up.github_member(&o.name, &login, token).await?,
                };
                if member {
                    orgs.push(o.name.clone());
                }
            }
        }
        Ok(Answers {
            user,
            emails,
            orgs,
            teams,
        })
    }

    /// The identity for a sign-in with `tokens`, with the tokens sealed for refresh.
    async fn identity(&self, tokens: &GithubTokens) -> Result<Identity, ConnectorError> {
        let cfg = self.config();
        let answers = self.answers(&tokens.access_token).await?;
        let raw = raw_groups(&self.github, &answers)
            .map_err(|why| ConnectorError::Upstream(UpstreamError::Refused(why)))?;
        let outcome = groups::normalize(&cfg.groups, &raw);
        if cfg.groups.required && outcome.groups.is_empty() {
            return Err(ConnectorError::NoRequiredGroup);
        }
        let claims = claims_of(&self.github, &cfg.issuer, &answers)
            .ok_or_else(|| ConnectorError::Identity("GitHub /user has no id".into()))?;
        let mut identity =
            identity::build(cfg, &claims, outcome.groups).map_err(ConnectorError::Identity)?;
        let sealed = serde_json::to_vec(tokens)
            .ok()
            .and_then(|json| self.sealer.seal(&json, &cfg.id).ok())
            .map(|s| crate::secret::b64url(&s));
        identity.upstream_session = Some(UpstreamSession {
            connector: cfg.id.clone(),
            refresh_token: sealed,
            fetched_at: self.clock.now(),
        });
        Ok(identity)
    }

    fn tokens_of(&self, session: &UpstreamSession) -> Result<GithubTokens, ConnectorError> {
        use base64::Engine as _;
        let sealed = session
            .refresh_token
            .as_ref()
            .ok_or(ConnectorError::ReauthenticationRequired)?;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sealed)
            .ok()
            .and_then(|b| self.sealer.open(&b, &self.config().id).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| ConnectorError::Identity("the stored GitHub token is unreadable".into()))
    }
}

#[async_trait]
impl RedirectConnector for GithubConnector {
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
        let cfg = self.config();
        let (challenge, verifier) = openidconnect::PkceCodeChallenge::new_random_sha256();
        let mut url = url::Url::parse(&format!("{}/login/oauth/authorize", cfg.issuer))
            .map_err(|e| UpstreamError::Invalid(format!("base_url: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", &cfg.client_id)
                .append_pair("redirect_uri", &self.upstream.redirect_uri)
                .append_pair("scope", &cfg.scopes.join(" "))
                .append_pair("state", &state)
                .append_pair("code_challenge", challenge.as_str())
                .append_pair("code_challenge_method", "S256")
                .append_pair("allow_signup", "false");
            if let Some(h) = login_hint {
                q.append_pair("login", h);
            }
        }
        Ok((
            url.to_string(),
            PendingUpstream {
                connector: cfg.id.clone(),
                state,
                nonce: String::new(),
                verifier: verifier.secret().clone(),
            },
        ))
    }

    /// GitHub sends no `iss`; one that is there must name `base_url`.
    async fn accepts_issuer(&self, iss: Option<&str>) -> bool {
        iss.is_none_or(|i| i.trim_end_matches('/') == self.config().issuer)
    }

    async fn finish(
        &self,
        code: &str,
        pending: &PendingUpstream,
    ) -> Result<Identity, ConnectorError> {
        let tokens = self
            .upstream
            .github_token(&[
                ("code", code),
                ("redirect_uri", &self.upstream.redirect_uri),
                ("code_verifier", &pending.verifier),
            ])
            .await?;
        self.identity(&tokens).await
    }
}

#[async_trait]
impl RefreshConnector for GithubConnector {
    /// Past `groups_max_staleness`: the user and teams read again with the kept token
    /// (renewed first when it expires and GitHub gave a refresh token).
    async fn refresh(&self, identity: &Identity) -> Result<Refreshed, ConnectorError> {
        let Some(session) = &identity.upstream_session else {
            return Ok(Refreshed::Unchanged);
        };
        if self.clock.now() - session.fetched_at <= self.config().groups_max_staleness.get() {
            return Ok(Refreshed::Unchanged);
        }
        let mut tokens = self.tokens_of(session)?;
        if let (Some(exp), Some(rt)) = (tokens.expires_at, tokens.refresh_token.clone())
            && self.clock.now() >= exp.saturating_sub(60)
        {
            tokens = self
                .upstream
                .github_token(&[("grant_type", "refresh_token"), ("refresh_token", &rt)])
                .await?;
        }
        let mut fresh = self.identity(&tokens).await?;
        fresh.sub = identity.sub.clone();
        Ok(Refreshed::Renewed(fresh))
    }
}
