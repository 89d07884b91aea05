//! `groups explain`: each step from what an upstream said (or a local user's groups) to the
//! final `groups`, the claims a connector maps, what a client sees of it, and whether the
//! client's access policy admits the person.
//!
//! What `--claims` holds depends on the connector's type: an ID token's claims (with
//! userinfo's) for `oidc`, `okta` and `azure`; for `google`, those plus the Directory's
//! `directory_groups` (`[{email, name, via}]`); for `github`, GitHub's answers
//! (`{user, emails, orgs, teams: [{org, slug, name}]}`); for `ldap`, the directory's
//! (`{dn, attributes, groups: [{dn, name, via}]}`). `--lookup USERNAME` asks an LDAP
//! directory itself, as the search account.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::config::{Config, ConnectorConfig, GroupRules, KindSettings};
use crate::federation::{
    Identity, UpstreamSession, github, google, groups, identity, ldap, local, policy,
};

/// Whose groups to explain.
pub(super) enum Source {
    /// Upstream claims (a JSON file) through a connector's rules.
    Connector { connector: String, claims: PathBuf },
    /// An LDAP connector's directory, asked now for this username.
    Lookup { connector: String, username: String },
    /// A local user through the top-level `groups:` rules.
    User(String),
}

fn connector<'a>(config: &'a Config, id: &str) -> anyhow::Result<&'a ConnectorConfig> {
    match config.connectors.iter().find(|c| c.id == id) {
        Some(c) => Ok(c),
        None => {
            let known: Vec<&str> = config.connectors.iter().map(|c| c.id.as_str()).collect();
            bail!(
                "no connector `{id}` in the config (known: {})",
                known.join(", ")
            )
        }
    }
}

/// The raw groups in what connector `c`'s upstream said (`doc`), by the connector's type;
/// a line for each check that would refuse the sign-in.
fn raw_groups(
    c: &ConnectorConfig,
    doc: &Value,
    out: &mut String,
) -> anyhow::Result<Vec<groups::RawGroup>> {
    Ok(match &c.settings {
        KindSettings::Google(g) => {
            if let Err(why) = google::check_hosted_domain(g, doc) {
                out.push_str(&format!("login would be REFUSED: {why}\n"));
            }
            if g.directory.is_none() {
                out.push_str("note: no directory: Google's ID tokens carry no groups\n");
            }
            let hd = doc["hd"].as_str().unwrap_or_default();
            google::raw_groups(g, hd, &google::from_claims(doc))
        }
        KindSettings::Github(g) => {
            let answers: github::Answers = serde_json::from_value(doc.clone())
                .context("a github connector's file holds GitHub's answers: {\"user\", \"emails\", \"orgs\", \"teams\"}")?;
            match github::raw_groups(g, &answers) {
                Ok(raw) => raw,
                Err(why) => {
                    out.push_str(&format!("login would be REFUSED: {why}\n"));
                    Vec::new()
                }
            }
        }
        KindSettings::Ldap(_) => ldap::raw_groups(c, &ldap_answers(doc)?),
        KindSettings::None => groups::extract(doc, &c.groups.claims),
    })
}

fn ldap_answers(doc: &Value) -> anyhow::Result<ldap::Answers> {
    serde_json::from_value(doc.clone()).context(
        "an ldap connector's file holds the directory's answers: {\"dn\", \"attributes\", \"groups\"}",
    )
}

/// The claims the connector's mapped `claims` are read from: the document itself, or
/// (GitHub, LDAP) the claims a sign-in makes of it.
fn claims_of(c: &ConnectorConfig, doc: &Value) -> anyhow::Result<Value> {
    Ok(match &c.settings {
        KindSettings::Github(g) => {
            let answers: github::Answers = serde_json::from_value(doc.clone())?;
            github::claims_of(g, &c.issuer, &answers).unwrap_or(Value::Null)
        }
        KindSettings::Ldap(l) => ldap::claims_of(l, c, &ldap_answers(doc)?).unwrap_or(Value::Null),
        _ => doc.clone(),
    })
}

/// What `source` names: a connector's upstream document, read from a file or (LDAP) asked.
async fn document(config: &Config, source: &Source) -> anyhow::Result<Option<Value>> {
    Ok(Some(match source {
        Source::User(_) => return Ok(None),
        Source::Connector { claims, .. } => {
            let text = std::fs::read_to_string(claims)
                .with_context(|| format!("cannot read {}", claims.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", claims.display()))?
        }
        Source::Lookup {
            connector: id,
            username,
        } => {
            let c = connector(config, id)?;
            if !matches!(c.settings, KindSettings::Ldap(_)) {
                bail!(
                    "--lookup asks an LDAP directory: `{id}` is a {:?} connector",
                    c.kind
                );
            }
            let ldap = ldap::LdapConnector::new(
                c.clone(),
                std::sync::Arc::new(crate::clock::SystemClock),
                crate::metrics::Metrics::new(),
            )
            .map_err(anyhow::Error::msg)?;
            match ldap
                .lookup_username(username)
                .await
                .map_err(anyhow::Error::msg)?
            {
                Some(answers) => serde_json::to_value(answers)?,
                None => bail!("the directory has no single entry for `{username}`"),
            }
        }
    }))
}

pub(super) async fn run(
    config: &Config,
    source: &Source,
    client: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let mut out = String::new();
    let claims = document(config, source).await?.unwrap_or(Value::Null);
    let (rules, raw, person) = match source {
        Source::Connector { connector: id, .. } | Source::Lookup { connector: id, .. } => {
            let c = connector(config, id)?;
            out.push_str(&rules_line(
                &format!("connector {} ({:?})", c.id, c.kind),
                &c.groups,
            ));
            if claims["_claim_names"]["groups"].is_string() {
                out.push_str("note: the claims show a group overage; at sign-in the groups come from Graph (not called here)\n");
            }
            let raw = raw_groups(c, &claims, &mut out)?;
            let mapped = claims_of(c, &claims)?;
            for (name, path) in &c.claims {
                match identity::at_path(&mapped, path).filter(|v| !v.is_null()) {
                    Some(v) => out.push_str(&format!("claim {name} <- {path}: {v}\n")),
                    None => out.push_str(&format!("claim {name} <- {path}: absent, left out\n")),
                }
            }
            let person = Identity {
                upstream_session: Some(UpstreamSession {
                    connector: c.id.clone(),
                    refresh_token: None,
                    fetched_at: 0,
                }),
                ..Identity::default()
            };
            (&c.groups, raw, person)
        }
        Source::User(name) => {
            let Some(u) = config.users.iter().find(|u| &u.username == name) else {
                bail!("no local user `{name}` in the config");
            };
            out.push_str(&rules_line(
                &format!("local user {name}: top-level groups"),
                &config.groups,
            ));
            let person = Identity {
                local: true,
                ..Identity::default()
            };
            (&config.groups, local::raw_groups(u), person)
        }
    };
    let outcome = groups::normalize(rules, &raw);
    steps(&mut out, &raw, &outcome);
    if rules.required && outcome.groups.is_empty() && !matches!(source, Source::User(_)) {
        out.push_str("login would be REFUSED: groups.required is set and no group is left\n");
    }
    if let Some(id) = client {
        let Some(cl) = config.clients.iter().find(|x| x.id == id) else {
            bail!("no client `{id}` in the config");
        };
        let seen = groups::for_client(&outcome.groups, &cl.groups);
        out.push_str(&format!(
            "client {id}: include {:?}, max {} -> ({}) {:?}\n",
            cl.groups.include,
            cl.groups.max,
            seen.len(),
            seen
        ));
        let person = Identity {
            groups: outcome.groups.clone(),
            ..person
        };
        match policy::admits(cl, &person) {
            Ok(()) => out.push_str(&format!("client {id}: access policy admits this person\n")),
            Err(r) => out.push_str(&format!(
                "client {id}: access policy REFUSES this person ({}): {}\n",
                r.reason(),
                r.description()
            )),
        }
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

fn rules_line(what: &str, r: &GroupRules) -> String {
    format!(
        "{what}: claims {:?}; map {} entr{}; unmapped {:?}; case {:?}; slugify {}; prefix {}; required {}\n",
        r.claims,
        r.map.len(),
        if r.map.len() == 1 { "y" } else { "ies" },
        r.unmapped,
        r.case,
        if r.slugify { "on" } else { "off" },
        r.prefix
            .as_ref()
            .map(|p| format!("\"{p}{}\"", r.prefix_separator))
            .unwrap_or_else(|| "none".into()),
        if r.required { "yes" } else { "no" },
    )
}

fn steps(out: &mut String, raw: &[groups::RawGroup], outcome: &groups::Outcome) {
    out.push_str(&format!("upstream groups ({}):\n", raw.len()));
    for step in &outcome.steps {
        out.push_str(&format!("  {:?} [{}]\n", step.input, step.source));
        out.push_str(&format!("      {}\n", step.why.join("; ")));
        match &step.output {
            Some(o) => out.push_str(&format!("      -> kept as {o:?}\n")),
            None => out.push_str("      -> dropped\n"),
        }
    }
    if outcome.collisions.is_empty() {
        out.push_str("collisions: none\n");
    }
    for col in &outcome.collisions {
        out.push_str(&format!(
            "collision: {:?} <- {:?} (one group; tell them apart with groups.map)\n",
            col.group, col.inputs
        ));
    }
    out.push_str(&format!(
        "result ({}): {:?}\n",
        outcome.groups.len(),
        outcome.groups
    ));
}
