//! `groups explain`: each step from upstream claims (or a local user's groups) to the final
//! `groups`, the claims a connector maps, what a client sees of it, and whether the client's
//! access policy admits the person.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::config::{Config, GroupRules};
use crate::federation::{Identity, UpstreamSession, groups, identity, local, policy};

/// Whose groups to explain.
pub(super) enum Source {
    /// Upstream claims (a JSON file) through a connector's rules.
    Connector { connector: String, claims: PathBuf },
    /// A local user through the top-level `groups:` rules.
    User(String),
}

pub(super) fn run(
    config: &Config,
    source: &Source,
    client: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let mut out = String::new();
    let (rules, raw, person) = match source {
        Source::Connector { connector, claims } => {
            let Some(c) = config.connectors.iter().find(|c| &c.id == connector) else {
                let known: Vec<&str> = config.connectors.iter().map(|c| c.id.as_str()).collect();
                bail!(
                    "no connector `{connector}` in the config (known: {})",
                    known.join(", ")
                );
            };
            let text = std::fs::read_to_string(claims)
                .with_context(|| format!("cannot read {}", claims.display()))?;
            let claims: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", claims.display()))?;
            out.push_str(&rules_line(
                &format!("connector {} ({:?})", c.id, c.kind),
                &c.groups,
            ));
            if claims["_claim_names"]["groups"].is_string() {
                out.push_str("note: the claims show a group overage; at sign-in the groups come from Graph (not called here)\n");
            }
            for (name, path) in &c.claims {
                match identity::at_path(&claims, path).filter(|v| !v.is_null()) {
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
            (
                &c.groups,
                groups::extract(&claims, &c.groups.claims),
                person,
            )
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
    if rules.required && outcome.groups.is_empty() && matches!(source, Source::Connector { .. }) {
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
