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
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::connector::{
    ConnectorError, Identity, PendingUpstream, RedirectConnector, RefreshConnector, Refreshed,
    UpstreamSession,
};
use super::groups::{self, RawGroup};
use super::identity;
use super::upstream::github::GithubTokens;
use super::upstream::{Upstream, UpstreamError};
use crate::clock::Clock;
use crate::config::{ConnectorConfig, GithubSettings, KindSettings};
use crate::keys::Sealer;
use crate::metrics::Metrics;

/// A team, as `/user/teams` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Team {
    pub org: String,
    /// The org's numeric id, as `/user/teams` gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<u64>,
    pub slug: String,
    pub name: String,
}

/// What GitHub said of one person.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Answers {
    /// `/user`: `id`, `login`, `name`, `email`.
    pub user: Value,
    /// `/user/emails`.
    #[serde(default)]
    pub emails: Vec<Value>,
    /// The orgs the person is a member of (among the configured ones, when there are).
    #[serde(default)]
    pub orgs: Vec<String>,
    #[serde(default)]
    pub teams: Vec<Team>,
}

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

/// Groups from what GitHub said: per org the person may sign in through, the org and its
/// teams (an org's `teams` list keeps only those). `Err`: `orgs` are configured and none
/// admits the person.
pub fn raw_groups(github: &GithubSettings, a: &Answers) -> Result<Vec<RawGroup>, String> {
    let mut out = Vec::new();
    let member = |org: &str| a.orgs.iter().any(|o| o.eq_ignore_ascii_case(org));
    fn teams_of<'a>(a: &'a Answers, org: &'a str) -> impl Iterator<Item = &'a Team> + 'a {
        a.teams
            .iter()
            .filter(move |t| t.org.eq_ignore_ascii_case(org))
    }
    let mut push = |org: &str, teams: Vec<&Team>| {
        out.push(RawGroup {
            value: org.to_string(),
            source: format!("github:org {org}"),
            display_name: None,
        });
        for t in teams {
            out.push(RawGroup {
                value: format!("{org}{}{}", github.team_separator, t.slug),
                source: format!("github:team {org}/{} ({})", t.slug, t.name),
                display_name: None,
            });
        }
    };
    if github.orgs.is_empty() {
        let mut orgs: Vec<&str> = a.orgs.iter().map(String::as_str).collect();
        orgs.extend(a.teams.iter().map(|t| t.org.as_str()));
        orgs.sort_by_key(|o| o.to_lowercase());
        orgs.dedup_by(|x, y| x.eq_ignore_ascii_case(y));
        for org in orgs {
            push(org, teams_of(a, org).collect());
        }
        return Ok(out);
    }
    for o in &github.orgs {
        if !member(&o.name) {
            continue;
        }
        // Pinned by id: only teams of that org, whatever it is called now.
        let teams: Vec<&Team> = teams_of(a, &o.name)
            .filter(|t| o.id.is_none() || t.org_id == o.id)
            .filter(|t| {
                o.teams.is_empty()
                    || o.teams
                        .iter()
                        .any(|w| w.eq_ignore_ascii_case(&t.slug) || w.eq_ignore_ascii_case(&t.name))
            })
            .collect();
        if !o.teams.is_empty() && teams.is_empty() {
            continue;
        }
        push(&o.name, teams);
    }
    if out.is_empty() {
        let names: Vec<&str> = github.orgs.iter().map(|o| o.name.as_str()).collect();
        return Err(format!(
            "not a member of the required GitHub orgs or teams ({})",
            names.join(", ")
        ));
    }
    Ok(out)
}

/// The e-mail to use: a verified address in the preferred domain, else the verified
/// primary one; never an unverified address.
fn email_of(github: &GithubSettings, a: &Answers) -> Option<String> {
    let verified = |e: &&Value| e["verified"] == Value::Bool(true);
    let address = |e: &Value| e["email"].as_str().map(str::to_string);
    if let Some(domain) = &github.preferred_email_domain {
        let found = a.emails.iter().filter(verified).find(|e| {
            e["email"]
                .as_str()
                .and_then(|x| x.rsplit_once('@'))
                .is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain))
        });
        if let Some(e) = found {
            return address(e);
        }
    }
    a.emails
        .iter()
        .filter(verified)
        .find(|e| e["primary"] == Value::Bool(true))
        .and_then(address)
}

/// The person as claims: `sub` the numeric id (or the login, with `use_login_as_id`),
/// `preferred_username` the login, `name`, and the chosen e-mail.
pub fn claims_of(github: &GithubSettings, base_url: &str, a: &Answers) -> Option<Value> {
    let id = match &a.user["id"] {
        Value::Number(n) => n.to_string(),
        Value::String(s) if !s.is_empty() => s.clone(),
        _ => return None,
    };
    let login = a.user["login"].as_str()?;
    let mut claims = json!({
        "iss": base_url,
        "sub": if github.use_login_as_id { login.to_string() } else { id.clone() },
        "preferred_username": login,
        "login": login,
        "github_id": id,
    });
    if let Some(n) = a.user["name"].as_str().filter(|n| !n.is_empty()) {
        claims["name"] = json!(n);
    }
    if let Some(e) = email_of(github, a) {
        claims["email"] = json!(e);
        claims["email_verified"] = json!(true);
    }
    Some(claims)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(yaml_orgs: &str) -> GithubSettings {
        let c = crate::config::from_yaml_str(
            &format!("connectors: [{{id: gh, type: github, client_id: a, client_secret: b, orgs: {yaml_orgs}}}]"),
            &|_| None,
        )
        .expect("config")
        .connectors
        .remove(0);
        match c.settings {
            KindSettings::Github(g) => g,
            _ => panic!("github"),
        }
    }

    fn alice() -> Answers {
        Answers {
            user: json!({"id": 42, "login": "alice", "name": "Alice"}),
            emails: vec![
                json!({"email": "alice@home.example", "primary": true, "verified": true}),
                json!({"email": "alice@acme.com", "primary": false, "verified": false}),
            ],
            orgs: vec!["acme".into(), "other".into()],
            teams: vec![
                Team {
                    org: "acme".into(),
                    org_id: None,
                    slug: "platform".into(),
                    name: "Platform".into(),
                },
                Team {
                    org: "acme".into(),
                    org_id: None,
                    slug: "sales".into(),
                    name: "Sales".into(),
                },
                Team {
                    org: "other".into(),
                    org_id: None,
                    slug: "x".into(),
                    name: "X".into(),
                },
            ],
        }
    }

    fn values(raw: &[RawGroup]) -> Vec<&str> {
        raw.iter().map(|g| g.value.as_str()).collect()
    }

    #[test]
    fn an_org_team_list_keeps_only_those_teams_and_other_orgs_are_ignored() {
        let raw =
            raw_groups(&settings("[{name: acme, teams: [Platform]}]"), &alice()).expect("admitted");
        assert_eq!(values(&raw), ["acme", "acme-platform"]);
        assert_eq!(raw[1].source, "github:team acme/platform (Platform)");
    }

    #[test]
    fn no_allowed_team_or_org_refuses_the_sign_in() {
        let err = raw_groups(&settings("[{name: acme, teams: [security]}]"), &alice())
            .expect_err("refused");
        assert!(err.contains("acme"), "{err}");
        assert!(raw_groups(&settings("[nope]"), &alice()).is_err());
    }

    #[test]
    fn without_orgs_every_org_and_team_is_a_group() {
        let raw = raw_groups(&settings("[]"), &alice()).expect("anyone");
        // `.`: no org name or team slug holds one, so no new org can mint acme's team groups.
        assert_eq!(
            values(&raw),
            ["acme", "acme.platform", "acme.sales", "other", "other.x"]
        );
    }

    #[test]
    fn an_org_pinned_by_id_counts_only_its_own_teams() {
        let pinned = settings("[{name: acme, id: 7}]");
        let mut a = alice();
        a.teams[0].org_id = Some(7);
        a.teams[1].org_id = Some(8); // an `acme` team of another org: the name was reused
        let raw = raw_groups(&pinned, &a).expect("admitted");
        assert_eq!(values(&raw), ["acme", "acme-platform"]);
    }

    #[test]
    fn orgs_whose_group_names_could_meet_are_refused_with_a_dash() {
        let err = crate::config::from_yaml_str(
            "connectors: [{id: gh, type: github, client_id: a, client_secret: b, orgs: [acme, acme-labs]}]",
            &|_| None,
        )
        .expect_err("acme's team labs would be the org acme-labs");
        assert!(
            err.to_string().contains("connectors[0].team_separator"),
            "{err}"
        );
        let ok = crate::config::from_yaml_str(
            "connectors: [{id: gh, type: github, client_id: a, client_secret: b, orgs: [acme, acme-labs], team_separator: '.'}]",
            &|_| None,
        );
        assert!(ok.is_ok());
        let err = crate::config::from_yaml_str(
            "connectors: [{id: gh, type: github, client_id: a, client_secret: b, link_by_email: true, verified_email_domains: [acme.com]}]",
            &|_| None,
        )
        .expect_err("no linking by GitHub addresses");
        assert!(err.to_string().contains("link_by_email"), "{err}");
    }

    #[test]
    fn only_a_verified_address_is_the_email() {
        let s = settings("[]");
        assert_eq!(
            claims_of(&s, "https://github.com", &alice()).expect("id")["email"],
            "alice@home.example"
        );
        let mut unverified = alice();
        unverified.emails = vec![json!({"email": "a@x.com", "primary": true, "verified": false})];
        assert!(
            claims_of(&s, "https://github.com", &unverified)
                .expect("id")
                .get("email")
                .is_none()
        );
        let c = claims_of(&s, "https://github.com", &alice()).expect("id");
        assert_eq!(c["sub"], "42", "the numeric id, not the login");
    }
}
