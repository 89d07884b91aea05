//! The LDAP / Active Directory connector: a password connector behind the bridge's own form
//! and its throttling. A search bind (the service account, or anonymous) finds the user,
//! then the password is checked by binding as the user (or, with `password_check: compare`,
//! by comparing `userPassword`), then groups are searched with the user/group attribute
//! matchers: direct, nested by searching again for each group found (a visited set stops
//! cycles), or Active Directory's `LDAP_MATCHING_RULE_IN_CHAIN` in one search.
//!
//! Every connection is TLS (`ldaps://` or StartTLS, with the connector's CA) unless the
//! config says `insecure_no_tls`. An empty password is refused before the directory is
//! asked: a simple bind with one is an unauthenticated bind, which many servers accept.
//! What the directory answered (the user's DN and attributes, each group and how it was
//! reached) is one JSON document, [`Answers`], from which the pure [`raw_groups`] and
//! [`claims_of`] make the identity; `groups explain` reads the same document.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry, ldap_escape};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::connector::{
    ConnectorError, Identity, LoginFailure, LoginForm, PasswordConnector, PasswordPrompt,
    RefreshConnector, Refreshed, UpstreamSession,
};
use super::groups::{self, RawGroup};
use super::identity;
use crate::clock::Clock;
use crate::config::{
    ConnectorConfig, KindSettings, LdapScope, LdapSettings, NestedGroups, PasswordCheck,
};
use crate::metrics::Metrics;

/// At most this many groups are followed for one user (nested searches stop there).
const MAX_GROUPS: usize = 1000;
/// LDAP sign-ins at once per connector; the rest wait (the directory is not flooded).
const CONCURRENT: usize = 16;
/// Active Directory's transitive-membership matching rule.
pub const IN_CHAIN: &str = "1.2.840.113556.1.4.1941";

/// One group the directory returned, and through which group it was reached (nested).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoundGroup {
    pub dn: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

/// What the directory said of one person: their entry and their groups.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Answers {
    pub dn: String,
    /// Attribute → values, as read.
    pub attributes: HashMap<String, Vec<String>>,
    #[serde(default)]
    pub groups: Vec<FoundGroup>,
}

/// Why talking to the directory failed.
#[derive(Debug, thiserror::Error)]
enum LdapFailure {
    #[error("the directory cannot be reached: {0}")]
    Unavailable(String),
    #[error("wrong username or password")]
    WrongCredentials,
    #[error("{0}")]
    Refused(String),
}

impl From<ldap3::LdapError> for LdapFailure {
    fn from(e: ldap3::LdapError) -> Self {
        match e {
            ldap3::LdapError::LdapResult { result } => Self::Refused(format!(
                "the directory answered {}: {}",
                result.rc, result.text
            )),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

pub struct LdapConnector {
    config: ConnectorConfig,
    ldap: LdapSettings,
    tls: Option<native_tls::TlsConnector>,
    gate: tokio::sync::Semaphore,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
}

impl LdapConnector {
    /// Fails when the config is not an LDAP connector's or its CA file cannot be used.
    pub fn new(
        config: ConnectorConfig,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, String> {
        let KindSettings::Ldap(ldap) = config.settings.clone() else {
            return Err(format!("connector {} is not an ldap connector", config.id));
        };
        let tls = match &ldap.ca_file {
            None => None,
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
                let ca = native_tls::Certificate::from_pem(&pem)
                    .map_err(|e| format!("{path} is not a PEM certificate: {e}"))?;
                let connector = native_tls::TlsConnector::builder()
                    .add_root_certificate(ca)
                    .build()
                    .map_err(|e| format!("TLS for {path}: {e}"))?;
                Some(connector)
            }
        };
        Ok(Self {
            config,
            ldap,
            tls,
            gate: tokio::sync::Semaphore::new(CONCURRENT),
            clock,
            metrics,
        })
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.config.timeout.get().max(1) as u64)
    }

    /// A connection, bound as the search account (or anonymous).
    async fn connect(&self) -> Result<Ldap, LdapFailure> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.timeout())
            .set_starttls(self.ldap.start_tls);
        if let Some(tls) = &self.tls {
            settings = settings.set_connector(tls.clone());
        }
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.ldap.url).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(error = %e, "LDAP connection ended");
            }
        });
        ldap.with_timeout(self.timeout());
        self.bind_service(&mut ldap).await?;
        Ok(ldap)
    }

    async fn bind_service(&self, ldap: &mut Ldap) -> Result<(), LdapFailure> {
        let (dn, pw) = match (&self.ldap.bind_dn, &self.ldap.bind_password) {
            (Some(dn), Some(pw)) => (dn.as_str(), pw.expose()),
            _ => ("", ""),
        };
        let result = ldap
            .with_timeout(self.timeout())
            .simple_bind(dn, pw)
            .await?;
        if result.rc != 0 {
            return Err(LdapFailure::Unavailable(format!(
                "the search account cannot bind ({}: {})",
                result.rc, result.text
            )));
        }
        Ok(())
    }

    fn attributes(&self) -> Vec<String> {
        let u = &self.ldap.user_search;
        let mut attrs: Vec<String> = [&u.id_attr, &u.username_attr, &u.email_attr, &u.name_attr]
            .into_iter()
            .filter(|a| a.as_str() != "dn")
            .cloned()
            .collect();
        attrs.extend(self.config.claims.values().cloned());
        attrs.sort();
        attrs.dedup();
        attrs
    }

    async fn search(
        &self,
        ldap: &mut Ldap,
        base: &str,
        scope: LdapScope,
        filter: &str,
        attrs: Vec<String>,
    ) -> Result<Vec<SearchEntry>, LdapFailure> {
        let scope = match scope {
            LdapScope::Sub => Scope::Subtree,
            LdapScope::One => Scope::OneLevel,
        };
        let (entries, _) = ldap
            .with_timeout(self.timeout())
            .search(base, scope, filter, attrs)
            .await?
            .success()?;
        // ldap3 panics on an entry it cannot parse: a broken answer is an error here.
        entries
            .into_iter()
            .map(|e| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| SearchEntry::construct(e)))
                    .map_err(|_| {
                        LdapFailure::Refused("the directory sent an unreadable entry".into())
                    })
            })
            .collect()
    }

    /// The one entry `filter` finds under the user base (none, or several: `None`).
    async fn find_user(
        &self,
        ldap: &mut Ldap,
        filter: &str,
    ) -> Result<Option<SearchEntry>, LdapFailure> {
        let u = &self.ldap.user_search;
        let mut found = self
            .search(ldap, &u.base_dn, u.scope, filter, self.attributes())
            .await?;
        if found.len() > 1 {
            tracing::warn!(connector = %self.config.id, matches = found.len(), "the user search matched several entries: nobody signs in with it");
            return Ok(None);
        }
        Ok(found.pop())
    }

    /// The groups of the user `entry`, as configured.
    async fn find_groups(
        &self,
        ldap: &mut Ldap,
        entry: &SearchEntry,
    ) -> Result<Vec<FoundGroup>, LdapFailure> {
        let Some(g) = &self.ldap.group_search else {
            return Ok(Vec::new());
        };
        let member = if g.user_attr == "dn" {
            Some(entry.dn.clone())
        } else {
            entry
                .attrs
                .get(&g.user_attr)
                .and_then(|v| v.first())
                .cloned()
        };
        let Some(member) = member else {
            return Ok(Vec::new());
        };
        let attrs = vec![g.name_attr.clone()];
        let matcher = |value: &str, chain: bool| {
            let rule = if chain {
                format!(":{IN_CHAIN}:")
            } else {
                String::new()
            };
            format!(
                "(&{}({}{rule}={}))",
                g.filter,
                g.group_attr,
                ldap_escape(value)
            )
        };
        let name_of = |e: &SearchEntry| {
            e.attrs
                .get(&g.name_attr)
                .and_then(|v| v.first())
                .cloned()
                .unwrap_or_else(|| e.dn.clone())
        };
        let chain = g.nested == NestedGroups::InChain;
        let first = self
            .search(
                ldap,
                &g.base_dn,
                g.scope,
                &matcher(&member, chain),
                attrs.clone(),
            )
            .await?;
        let mut out: Vec<FoundGroup> = Vec::new();
        let mut seen = BTreeSet::new();
        let mut queue = VecDeque::new();
        for e in first {
            if seen.insert(e.dn.to_lowercase()) {
                queue.push_back((e.dn.clone(), name_of(&e)));
                out.push(FoundGroup {
                    dn: e.dn.clone(),
                    name: name_of(&e),
                    via: None,
                });
            }
        }
        if g.nested != NestedGroups::Recursive {
            return Ok(out);
        }
        while let Some((dn, name)) = queue.pop_front() {
            if out.len() >= MAX_GROUPS {
                tracing::warn!(connector = %self.config.id, "nested groups stop at {MAX_GROUPS}");
                break;
            }
            let parents = self
                .search(
                    ldap,
                    &g.base_dn,
                    g.scope,
                    &matcher(&dn, false),
                    attrs.clone(),
                )
                .await?;
            for p in parents {
                if seen.insert(p.dn.to_lowercase()) {
                    queue.push_back((p.dn.clone(), name_of(&p)));
                    out.push(FoundGroup {
                        dn: p.dn.clone(),
                        name: name_of(&p),
                        via: Some(name.clone()),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Search, check the password, read the groups: what the directory says of `username`.
    async fn sign_in(&self, username: &str, password: &str) -> Result<Answers, LdapFailure> {
        let mut ldap = self.connect().await?;
        let filter = self
            .ldap
            .user_search
            .filter
            .replace("{username}", &ldap_escape(username));
        let Some(entry) = self.find_user(&mut ldap, &filter).await? else {
            return Err(LdapFailure::WrongCredentials);
        };
        match self.ldap.password_check {
            PasswordCheck::Bind => {
                let r = ldap
                    .with_timeout(self.timeout())
                    .simple_bind(&entry.dn, password)
                    .await?;
                match r.rc {
                    0 => {}
                    // invalidCredentials; anything else (locked, expired) is refused alike.
                    49 => return Err(LdapFailure::WrongCredentials),
                    rc => {
                        tracing::info!(connector = %self.config.id, rc, text = %r.text, "the directory refused the user's bind");
                        return Err(LdapFailure::WrongCredentials);
                    }
                }
                self.bind_service(&mut ldap).await?;
            }
            PasswordCheck::Compare => {
                let equal = ldap
                    .with_timeout(self.timeout())
                    .compare(&entry.dn, "userPassword", password)
                    .await?
                    .equal()?;
                if !equal {
                    return Err(LdapFailure::WrongCredentials);
                }
            }
        }
        let groups = self.find_groups(&mut ldap, &entry).await?;
        let _ = ldap.unbind().await;
        Ok(answers(entry, groups))
    }

    /// What the directory says of the person with immutable id `id` now (no password).
    async fn look_up(&self, id: &str) -> Result<Option<Answers>, LdapFailure> {
        let mut ldap = self.connect().await?;
        let u = &self.ldap.user_search;
        let entry = if u.id_attr == "dn" {
            let found = self
                .search(
                    &mut ldap,
                    id,
                    LdapScope::Sub,
                    "(objectClass=*)",
                    self.attributes(),
                )
                .await;
            match found {
                Ok(mut v) if v.len() == 1 => v.pop(),
                Ok(_) | Err(LdapFailure::Refused(_)) => None,
                Err(e) => return Err(e),
            }
        } else {
            let filter = format!("({}={})", u.id_attr, ldap_escape(id));
            self.find_user(&mut ldap, &filter).await?
        };
        let Some(entry) = entry else {
            return Ok(None);
        };
        let groups = self.find_groups(&mut ldap, &entry).await?;
        let _ = ldap.unbind().await;
        Ok(Some(answers(entry, groups)))
    }

    fn observe(
        &self,
        what: &'static str,
        started: Instant,
        result: &Result<impl Sized, LdapFailure>,
    ) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(LdapFailure::Unavailable(_)) => "unavailable",
            Err(LdapFailure::WrongCredentials) => "refused",
            Err(LdapFailure::Refused(_)) => "invalid",
        };
        self.metrics
            .upstream(&self.config.id, what, outcome, started.elapsed());
    }

    /// The identity for what the directory said.
    pub fn identity(&self, answers: &Answers) -> Result<Identity, ConnectorError> {
        let outcome = groups::normalize(&self.config.groups, &raw_groups(&self.config, answers));
        if self.config.groups.required && outcome.groups.is_empty() {
            return Err(ConnectorError::NoRequiredGroup);
        }
        let claims = claims_of(&self.ldap, &self.config, answers).ok_or_else(|| {
            ConnectorError::Identity(format!(
                "the entry has no {}",
                self.ldap.user_search.id_attr
            ))
        })?;
        let mut identity = identity::build(&self.config, &claims, outcome.groups)
            .map_err(ConnectorError::Identity)?;
        identity.amr = vec!["pwd".into()];
        identity.upstream_session = Some(UpstreamSession {
            connector: self.config.id.clone(),
            refresh_token: None,
            fetched_at: self.clock.now(),
        });
        Ok(identity)
    }
}

fn answers(entry: SearchEntry, groups: Vec<FoundGroup>) -> Answers {
    let mut attributes = entry.attrs;
    for (k, vals) in entry.bin_attrs {
        // Binary values (Active Directory's objectGUID): base64url.
        attributes.insert(k, vals.iter().map(|v| crate::secret::b64url(v)).collect());
    }
    Answers {
        dn: entry.dn,
        attributes,
        groups,
    }
}

fn first<'a>(a: &'a Answers, attr: &str) -> Option<&'a str> {
    if attr == "dn" {
        return Some(&a.dn);
    }
    // Attribute names are case-insensitive.
    a.attributes
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attr))
        .and_then(|(_, v)| v.first())
        .map(String::as_str)
        .filter(|s| !s.is_empty())
}

/// The groups as the directory gave them, each with how it was found.
pub fn raw_groups(config: &ConnectorConfig, a: &Answers) -> Vec<RawGroup> {
    let attr = match &config.settings {
        KindSettings::Ldap(l) => l.group_search.as_ref().map(|g| g.group_attr.clone()),
        _ => None,
    }
    .unwrap_or_else(|| "member".into());
    a.groups
        .iter()
        .map(|g| RawGroup {
            value: g.name.clone(),
            source: match &g.via {
                None => format!("ldap:{attr} {}", g.dn),
                Some(via) => format!("ldap:{attr} {} (nested, via {via})", g.dn),
            },
            display_name: None,
        })
        .collect()
}

/// The entry as claims: `sub` (the immutable id), `preferred_username`, `email`, `name`,
/// and each mapped claim's attribute (one value: a string; several: a list).
pub fn claims_of(ldap: &LdapSettings, config: &ConnectorConfig, a: &Answers) -> Option<Value> {
    let u = &ldap.user_search;
    let mut claims = json!({
        "sub": first(a, &u.id_attr)?,
        "dn": a.dn,
    });
    for (claim, attr) in [
        ("preferred_username", &u.username_attr),
        ("email", &u.email_attr),
        ("name", &u.name_attr),
    ] {
        if let Some(v) = first(a, attr) {
            claims[claim] = json!(v);
        }
    }
    for attr in config.claims.values() {
        if let Some((_, vals)) = a
            .attributes
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(attr))
        {
            claims[attr.as_str()] = match vals.as_slice() {
                [one] => json!(one),
                many => json!(many),
            };
        }
    }
    Some(claims)
}

#[async_trait]
impl PasswordConnector for LdapConnector {
    fn id(&self) -> &str {
        &self.config.id
    }

    fn name(&self) -> &str {
        &self.config.name
    }

    fn email_domains(&self) -> &[String] {
        &self.config.email_domains
    }

    fn prompt(&self) -> PasswordPrompt {
        PasswordPrompt {
            note: None,
            password_required: true,
            extra: Vec::new(),
            throttled: true,
        }
    }

    async fn login(&self, form: &LoginForm<'_>) -> Result<Identity, LoginFailure> {
        // An empty password would make an unauthenticated bind, which "succeeds".
        if form.password.is_empty() || form.username.chars().any(char::is_control) {
            return Err(LoginFailure::WrongCredentials);
        }
        let _turn = self.gate.acquire().await.map_err(|_| LoginFailure::Busy)?;
        let started = Instant::now();
        let result = self.sign_in(form.username, form.password).await;
        self.observe("bind", started, &result);
        match result {
            Ok(answers) => self.identity(&answers).map_err(|e| match e {
                ConnectorError::NoRequiredGroup => LoginFailure::Invalid(
                    "None of your groups is allowed to sign in here. Ask your administrator for access.".into(),
                ),
                other => LoginFailure::Invalid(other.to_string()),
            }),
            Err(LdapFailure::WrongCredentials) => Err(LoginFailure::WrongCredentials),
            Err(e @ (LdapFailure::Unavailable(_) | LdapFailure::Refused(_))) => {
                tracing::warn!(connector = %self.config.id, error = %e, "LDAP sign-in failed");
                Err(LoginFailure::Unavailable)
            }
        }
    }
}

#[async_trait]
impl RefreshConnector for LdapConnector {
    /// Past `groups_max_staleness`, the entry and its groups are read again as the search
    /// account: gone from the directory, the refresh is refused.
    async fn refresh(&self, identity: &Identity) -> Result<Refreshed, ConnectorError> {
        let Some(session) = &identity.upstream_session else {
            return Ok(Refreshed::Unchanged);
        };
        if self.clock.now() - session.fetched_at <= self.config.groups_max_staleness.get() {
            return Ok(Refreshed::Unchanged);
        }
        let Some(id) = identity
            .extra
            .get("upstream")
            .and_then(|u| u["sub"].as_str())
        else {
            return Err(ConnectorError::ReauthenticationRequired);
        };
        let started = Instant::now();
        let found = self.look_up(id).await;
        self.observe("search", started, &found);
        match found {
            Ok(Some(answers)) => {
                let mut fresh = self.identity(&answers)?;
                fresh.sub = identity.sub.clone();
                fresh.amr = identity.amr.clone();
                Ok(Refreshed::Renewed(fresh))
            }
            Ok(None) => Ok(Refreshed::Gone),
            Err(e) => Err(ConnectorError::Unavailable(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connector(yaml: &str) -> ConnectorConfig {
        crate::config::from_yaml_str(yaml, &|_| None)
            .expect("config")
            .connectors
            .remove(0)
    }

    const YAML: &str = "connectors: [{id: corp, type: ldap, url: 'ldaps://ldap.example', user_search: {base_dn: 'ou=people,dc=x'}, group_search: {base_dn: 'ou=groups,dc=x', nested: true}, claims: {department: departmentNumber}}]";

    #[test]
    fn nested_groups_say_how_they_were_reached() {
        let c = connector(YAML);
        let a = Answers {
            dn: "uid=a,ou=people,dc=x".into(),
            attributes: HashMap::new(),
            groups: vec![
                FoundGroup {
                    dn: "cn=platform,ou=groups,dc=x".into(),
                    name: "platform".into(),
                    via: None,
                },
                FoundGroup {
                    dn: "cn=eng,ou=groups,dc=x".into(),
                    name: "eng".into(),
                    via: Some("platform".into()),
                },
            ],
        };
        let raw = raw_groups(&c, &a);
        assert_eq!(raw[0].value, "platform");
        assert_eq!(raw[0].source, "ldap:member cn=platform,ou=groups,dc=x");
        assert_eq!(
            raw[1].source,
            "ldap:member cn=eng,ou=groups,dc=x (nested, via platform)"
        );
    }

    #[test]
    fn claims_come_from_the_configured_attributes_whatever_their_case() {
        let c = connector(YAML);
        let KindSettings::Ldap(l) = &c.settings else {
            panic!("ldap")
        };
        let mut attributes = HashMap::new();
        attributes.insert("entryUUID".to_string(), vec!["u-1".to_string()]);
        attributes.insert("Mail".to_string(), vec!["a@x.com".to_string()]);
        attributes.insert(
            "departmentNumber".to_string(),
            vec!["42".to_string(), "43".to_string()],
        );
        let a = Answers {
            dn: "uid=a,dc=x".into(),
            attributes,
            groups: vec![],
        };
        let claims = claims_of(l, &c, &a).expect("an id");
        assert_eq!(claims["sub"], "u-1");
        assert_eq!(claims["email"], "a@x.com");
        assert_eq!(claims["departmentNumber"], json!(["42", "43"]));
        let no_id = Answers {
            attributes: HashMap::new(),
            ..a
        };
        assert!(
            claims_of(l, &c, &no_id).is_none(),
            "no entryUUID: no identity"
        );
    }

    #[test]
    fn plain_ldap_needs_start_tls_or_an_explicit_insecure_flag() {
        let err = crate::config::from_yaml_str(
            "connectors: [{id: corp, type: ldap, url: 'ldap://ldap.example', user_search: {base_dn: 'dc=x'}}]",
            &|_| None,
        )
        .expect_err("clear-text LDAP refused");
        assert!(err.to_string().contains("connectors[0].url"), "{err}");
    }
}
