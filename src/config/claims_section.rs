//! Claims beyond the standard ones: the top-level `scopes:` (scopes of your own and the
//! claims each releases), the claims a connector maps from upstream (`connectors[].claims`)
//! and a local user has (`users[].claims`), a client's fixed `claims`, its
//! `access_token_claims`, and the checks that keep them from shadowing registered names.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::parties::*;
use super::settings::CustomScopes;
use super::tree::{Obj, Problem, Reader, index, join};

/// Claim names with a meaning already (RFC 7519, OIDC Core §2, §5.1 and §5.6.2, RFC 9068,
/// RFC 8693, and this provider's own): a mapped or fixed claim may not take one.
pub const REGISTERED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "at_hash",
    "c_hash",
    "s_hash",
    "sid",
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "email",
    "email_verified",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "phone_number",
    "phone_number_verified",
    "address",
    "updated_at",
    "groups",
    "roles",
    "entitlements",
    "scope",
    "client_id",
    "cnf",
    "act",
    "may_act",
    "events",
    "typ",
    "_claim_names",
    "_claim_sources",
    "upstream",
    "userinfo_claims",
];

/// Scopes with a fixed meaning here: a scope under `scopes:` may not take one.
pub const STANDARD_SCOPES: &[&str] = &[
    "openid",
    "profile",
    "email",
    "address",
    "phone",
    "groups",
    "offline_access",
];

/// A claim name: letters, digits, `_`, `-`, `.`, `:` (so `https://` names are out, but
/// `org:team` is in), at most 64 characters.
fn valid_claim_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b))
}

/// Problems with `name` as the name of a claim of your own, if any.
fn claim_name_problem(name: &str) -> Option<String> {
    if !valid_claim_name(name) {
        return Some(format!(
            "`{name}` is not a claim name (letters, digits, _ - . :, at most 64)"
        ));
    }
    REGISTERED_CLAIMS.contains(&name).then(|| {
        format!("`{name}` is a registered claim with its own meaning; choose another name")
    })
}

/// The top-level `scopes:`: `org: [department, employee_id]`.
pub(super) fn read_scopes(r: &mut Reader, v: Option<&Value>) -> CustomScopes {
    let mut out = BTreeMap::new();
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return out;
    };
    let Value::Object(m) = v else {
        r.problem(
            "scopes",
            "must be a mapping of scope name to the claims it releases",
        );
        return out;
    };
    for (scope, claims) in m {
        let path = join("scopes", scope);
        if STANDARD_SCOPES.contains(&scope.as_str()) {
            r.problem(
                &path,
                format!("`{scope}` is a standard scope; name yours differently"),
            );
        } else if scope.is_empty()
            || !scope
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
        {
            r.problem(
                &path,
                "is not a scope token (RFC 6749 §3.3: no spaces, quotes or backslashes)",
            );
        }
        let names: Vec<String> = match claims {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, c)| match c.as_str() {
                    Some(name) => {
                        if let Some(p) = claim_name_problem(name) {
                            r.problem(index(&path, i), p);
                        }
                        Some(name.to_string())
                    }
                    None => {
                        r.problem(index(&path, i), "must be a claim name (a string)");
                        None
                    }
                })
                .collect(),
            _ => {
                r.problem(
                    &path,
                    "must be a list of the claim names this scope releases",
                );
                Vec::new()
            }
        };
        out.insert(scope.clone(), names);
    }
    out
}

/// `connectors[].claims`: `department: "hr.department"` (a dotted path into the upstream
/// claims).
pub(super) fn read_mapped_claims(r: &mut Reader, o: &Obj<'_>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let path = o.key_path("claims");
    match o.get("claims") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (name, from) in m {
                if let Some(p) = claim_name_problem(name) {
                    r.problem(join(&path, name), p);
                }
                match from.as_str().filter(|s| !s.is_empty()) {
                    Some(p) => {
                        out.insert(name.clone(), p.to_string());
                    }
                    None => r.problem(
                        join(&path, name),
                        "must be a dotted path into the upstream claims, such as `hr.department`",
                    ),
                }
            }
        }
        Some(_) => r.problem(
            &path,
            "must be a mapping of claim name to upstream claim path",
        ),
    }
    out
}

/// A mapping of claim name to value (`users[].claims`, `clients[].claims`).
pub(super) fn read_claim_values(r: &mut Reader, o: &Obj<'_>) -> Map<String, Value> {
    let path = o.key_path("claims");
    match o.get("claims") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => {
            for name in m.keys() {
                if let Some(p) = claim_name_problem(name) {
                    r.problem(join(&path, name), p);
                }
            }
            m.clone()
        }
        Some(_) => {
            r.problem(&path, "must be a mapping of claim name to value");
            Map::new()
        }
    }
}

/// `clients[].access_token_claims: [groups, roles]`.
pub(super) fn read_access_token_claims(r: &mut Reader, o: &Obj<'_>) -> Vec<AccessTokenClaim> {
    let mut out = Vec::new();
    for (i, name) in r
        .strings(o, "access_token_claims")
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        match name.as_str() {
            "groups" => out.push(AccessTokenClaim::Groups),
            "roles" => out.push(AccessTokenClaim::Roles),
            other => r.problem(
                index(&o.key_path("access_token_claims"), i),
                format!("`{other}` is not groups or roles"),
            ),
        }
    }
    out.dedup();
    out
}

/// Checks across sections: a claim of your own is released by some scope, a client's
/// fixed claim does not collide with one a scope releases, a client asks only for scopes
/// that exist, and required or denied groups can be produced by a group pipeline.
pub(super) fn check_claims(
    r: &mut Reader,
    warnings: &mut Vec<Problem>,
    parts: (
        &CustomScopes,
        &[ClientConfig],
        &[UserConfig],
        &[ConnectorConfig],
    ),
    local_rules: &GroupRules,
) {
    let (scopes, clients, users, connectors) = parts;
    let released: std::collections::HashSet<&str> =
        scopes.values().flatten().map(String::as_str).collect();
    let unreleased = |name: &str| !released.contains(name);
    for (i, c) in connectors.iter().enumerate() {
        for name in c.claims.keys().filter(|n| unreleased(n)) {
            warnings.push(Problem {
                path: join(&join(&index("connectors", i), "claims"), name),
                message: format!(
                    "no scope releases `{name}`: add it to a scope under `scopes:`, or it reaches no client"
                ),
            });
        }
    }
    for (i, u) in users.iter().enumerate() {
        for name in u.claims.keys().filter(|n| unreleased(n)) {
            warnings.push(Problem {
                path: join(&join(&index("users", i), "claims"), name),
                message: format!(
                    "no scope releases `{name}`: add it to a scope under `scopes:`, or it reaches no client"
                ),
            });
        }
    }
    let slugifies = local_rules.slugify && connectors.iter().all(|c| c.groups.slugify);
    for (i, c) in clients.iter().enumerate() {
        let at = index("clients", i);
        for name in c.claims.keys().filter(|n| released.contains(n.as_str())) {
            r.problem(
                join(&join(&at, "claims"), name),
                format!(
                    "`{name}` is also released by a scope under `scopes:`; a client's fixed claim may not shadow a person's"
                ),
            );
        }
        // A scope of a client that signs no person in (client credentials) is an API's
        // permission, meant to release nothing.
        let signs_people_in = c.grant_types.iter().any(|g| {
            matches!(
                g,
                super::parties::GrantType::AuthorizationCode
                    | super::parties::GrantType::DeviceCode
            )
        });
        for (j, s) in c
            .scopes
            .iter()
            .flatten()
            .enumerate()
            .filter(|_| signs_people_in)
        {
            if !STANDARD_SCOPES.contains(&s.as_str()) && !scopes.contains_key(s) {
                warnings.push(Problem {
                    path: index(&join(&at, "scopes"), j),
                    message: format!("`{s}` is neither a standard scope nor one under `scopes:`: it releases nothing"),
                });
            }
        }
        for key in ["require_groups", "deny_groups"] {
            let list = if key == "require_groups" {
                &c.require_groups
            } else {
                &c.deny_groups
            };
            for (j, g) in list.iter().enumerate() {
                if slugifies && g.contains(|ch: char| ch.is_whitespace() || ch.is_uppercase()) {
                    warnings.push(Problem {
                        path: index(&join(&at, key), j),
                        message: format!(
                            "`{g}` can never match: every group pipeline lowercases and slugifies names (write it as `{}`; `groups explain` shows the names)",
                            g.to_lowercase().split_whitespace().collect::<Vec<_>>().join("-")
                        ),
                    });
                }
            }
        }
    }
}

/// What the top-level `groups:` accepts that does nothing for local users.
pub(super) fn local_group_warnings(v: Option<&Value>, warnings: &mut Vec<Problem>) {
    let Some(Value::Object(m)) = v else {
        return;
    };
    for key in [
        "claims",
        "unmapped",
        "trust_display_names",
        "shared_namespace",
        "required",
    ] {
        if m.contains_key(key) {
            warnings.push(Problem {
                path: join("groups", key),
                message:
                    "does nothing for local users (their groups are listed in `users[].groups`)"
                        .into(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_names_of_your_own_cannot_shadow_registered_ones() {
        assert!(claim_name_problem("department").is_none());
        assert!(claim_name_problem("org:team").is_none());
        assert!(claim_name_problem("email").is_some());
        assert!(claim_name_problem("sub").is_some());
        assert!(claim_name_problem("_claim_names").is_some());
        assert!(claim_name_problem("a b").is_some());
        assert!(claim_name_problem("").is_some());
    }

    fn problems(yaml: &str) -> Vec<String> {
        match crate::config::from_yaml_str(yaml, &|_| None) {
            Ok(_) => Vec::new(),
            Err(p) => {
                p.0.iter()
                    .map(|p| format!("{}: {}", p.path, p.message))
                    .collect()
            }
        }
    }

    #[test]
    fn collisions_with_registered_claims_and_scopes_are_config_errors_with_their_key_paths() {
        let yaml = r#"
scopes:
  profile: [department]
  org: [department, email, team]
connectors:
  - { id: okta, type: oidc, issuer: "https://idp.example", client_id: x, client_secret: y,
      claims: { sub: id, department: hr.dept, team: graph.department } }
clients:
  - { id: app, secret: a-secret-of-16-chars, redirect_uris: ["http://127.0.0.1/cb"],
      claims: { iss: me, department: x }, access_token_claims: [groups, entitlements] }
users:
  - { username: u, password: a-password, claims: { name: N } }
"#;
        let p = problems(yaml);
        for expected in [
            "scopes.profile: `profile` is a standard scope",
            "scopes.org[1]: `email` is a registered claim",
            "connectors[0].claims.sub: `sub` is a registered claim",
            "connectors[0].claims.team: `graph.` paths read Microsoft Graph",
            "clients[0].claims.iss: `iss` is a registered claim",
            "clients[0].claims.department: `department` is also released by a scope",
            "clients[0].access_token_claims[1]: `entitlements` is not groups or roles",
            "users[0].claims.name: `name` is a registered claim",
        ] {
            assert!(
                p.iter().any(|m| m.starts_with(expected)),
                "{expected} in {p:#?}"
            );
        }
    }

    #[test]
    fn an_unreleased_claim_and_an_unmatchable_required_group_are_warned_about() {
        let yaml = r#"
connectors:
  - { id: okta, type: oidc, issuer: "https://idp.example", client_id: x, client_secret: y,
      claims: { department: hr.dept } }
clients:
  - { id: app, secret: a-secret-of-16-chars, redirect_uris: ["http://127.0.0.1/cb"],
      require_groups: ["Platform Team"], scopes: [openid, nope] }
"#;
        let c = crate::config::from_yaml_str(yaml, &|_| None).expect("loads");
        let w: Vec<String> = c
            .warnings
            .iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect();
        for expected in [
            "connectors[0].claims.department: no scope releases `department`",
            "clients[0].require_groups[0]: `Platform Team` can never match",
            "clients[0].scopes[1]: `nope` is neither a standard scope",
        ] {
            assert!(
                w.iter().any(|m| m.starts_with(expected)),
                "{expected} in {w:#?}"
            );
        }
    }
}
