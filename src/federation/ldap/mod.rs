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

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry, ldap_escape};

mod answers;
mod failure;
mod lookup;
pub use answers::{Answers, FoundGroup, answers, claims_of, raw_groups};
use failure::LdapFailure;

use super::connector::{
    ConnectorError, Identity, LoginFailure, LoginForm, PasswordConnector, PasswordPrompt,
    UpstreamSession,
};
use super::groups;
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

pub struct LdapConnector {
    config: ConnectorConfig,
    ldap: LdapSettings,
    tls: Option<native_tls::TlsConnector>,
    gate: tokio::sync::Semaphore,
    /// What a user search asks for, worked out once.
    attributes: Vec<String>,
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
        let tls = ldap.ca_file.as_deref().map(trusting).transpose()?;
        Ok(Self {
            attributes: user_attributes(&config, &ldap),
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

    fn attributes(&self) -> &[String] {
        &self.attributes
    }

    async fn search(
        &self,
        ldap: &mut Ldap,
        base: &str,
        scope: LdapScope,
        filter: &str,
        attrs: &[String],
    ) -> Result<Vec<SearchEntry>, LdapFailure> {
        let scope = match scope {
            LdapScope::Sub => Scope::Subtree,
            LdapScope::One => Scope::OneLevel,
            LdapScope::Base => Scope::Base,
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
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&g.user_attr))
                .and_then(|(_, v)| v.first())
                .cloned()
        };
        let Some(member) = member else {
            return Ok(Vec::new());
        };
        let chain = g.nested == NestedGroups::InChain;
        let first = self.groups_holding(ldap, &member, chain).await?;
        let mut out: Vec<FoundGroup> = Vec::new();
        let mut seen = BTreeSet::new();
        for found in first {
            if seen.insert(found.dn.to_lowercase()) {
                out.push(found);
            }
        }
        if g.nested != NestedGroups::Recursive {
            return Ok(out);
        }
        // Breadth first: each group's own groups, once each (a cycle ends here).
        let mut queue: VecDeque<(String, String)> =
            out.iter().map(|f| (f.dn.clone(), f.name.clone())).collect();
        while let Some((dn, name)) = queue.pop_front() {
            if out.len() >= MAX_GROUPS {
                tracing::warn!(connector = %self.config.id, "nested groups stop at {MAX_GROUPS}");
                break;
            }
            for mut parent in self.groups_holding(ldap, &dn, false).await? {
                if seen.insert(parent.dn.to_lowercase()) {
                    queue.push_back((parent.dn.clone(), parent.name.clone()));
                    parent.via = Some(name.clone());
                    out.push(parent);
                }
            }
        }
        Ok(out)
    }

    /// The groups whose `group_attr` holds `value` (with `chain`: transitively, by Active
    /// Directory's matching rule).
    async fn groups_holding(
        &self,
        ldap: &mut Ldap,
        value: &str,
        chain: bool,
    ) -> Result<Vec<FoundGroup>, LdapFailure> {
        let Some(g) = &self.ldap.group_search else {
            return Ok(Vec::new());
        };
        let rule = if chain {
            format!(":{IN_CHAIN}:")
        } else {
            String::new()
        };
        let filter = format!(
            "(&{}({}{rule}={}))",
            g.filter,
            g.group_attr,
            ldap_escape(value)
        );
        let found = self
            .search(
                ldap,
                &g.base_dn,
                g.scope,
                &filter,
                std::slice::from_ref(&g.name_attr),
            )
            .await?;
        Ok(found
            .into_iter()
            .map(|e| FoundGroup {
                name: e
                    .attrs
                    .get(&g.name_attr)
                    .and_then(|v| v.first())
                    .cloned()
                    .unwrap_or_else(|| e.dn.clone()),
                dn: e.dn,
                via: None,
            })
            .collect())
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
            Err(LdapFailure::Refused(_) | LdapFailure::NoSuchObject) => "invalid",
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
            Err(
                e @ (LdapFailure::Unavailable(_)
                | LdapFailure::Refused(_)
                | LdapFailure::NoSuchObject),
            ) => {
                tracing::warn!(connector = %self.config.id, error = %e, "LDAP sign-in failed");
                Err(LoginFailure::Unavailable)
            }
        }
    }
}

/// A TLS connector that trusts the CA certificates in the PEM file at `path` and nothing
/// else (the system's roots are not trusted alongside them).
fn trusting(path: &str) -> Result<native_tls::TlsConnector, String> {
    let pem = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let mut builder = native_tls::TlsConnector::builder();
    builder.disable_built_in_roots(true);
    let mut found = 0;
    for block in pem.split_inclusive("-----END CERTIFICATE-----") {
        if !block.contains("-----BEGIN CERTIFICATE-----") {
            continue;
        }
        let ca = native_tls::Certificate::from_pem(block.trim().as_bytes())
            .map_err(|e| format!("{path}: certificate {}: {e}", found + 1))?;
        builder.add_root_certificate(ca);
        found += 1;
    }
    if found == 0 {
        return Err(format!("{path} holds no PEM certificate"));
    }
    builder.build().map_err(|e| format!("TLS for {path}: {e}"))
}

/// The attributes a user search asks for: the id, the profile, the member attribute groups
/// list, and every mapped claim's (`dn` is the entry's own, never asked).
fn user_attributes(config: &ConnectorConfig, ldap: &LdapSettings) -> Vec<String> {
    let u = &ldap.user_search;
    let member_attr = ldap.group_search.as_ref().map(|g| &g.user_attr);
    let mut attrs: Vec<String> = [&u.id_attr, &u.username_attr, &u.email_attr, &u.name_attr]
        .into_iter()
        .chain(member_attr)
        .filter(|a| a.as_str() != "dn")
        .cloned()
        .collect();
    attrs.extend(config.claims.values().cloned());
    attrs.sort();
    attrs.dedup();
    attrs
}
