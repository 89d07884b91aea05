//! What GitHub said of one person, as one JSON document ([`Answers`]), and the pure
//! functions a sign-in, a refresh and `groups explain` make of it: the groups (with the org
//! and team allow-lists) and the claims (the numeric id, the login, a verified e-mail).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::GithubSettings;
use crate::federation::groups::RawGroup;

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
            crate::config::KindSettings::Github(g) => g,
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
