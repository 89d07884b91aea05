//! Which claims each scope releases (OIDC Core §5.4, plus `groups`), and the claims of an
//! identity as the OP releases them.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::federation::Identity;

/// Claims each scope releases (OIDC Core §5.4), plus `groups`.
pub fn scope_claims(scope: &str) -> &'static [&'static str] {
    match scope {
        "profile" => &[
            "name",
            "family_name",
            "given_name",
            "middle_name",
            "nickname",
            "preferred_username",
            "profile",
            "picture",
            "website",
            "gender",
            "birthdate",
            "zoneinfo",
            "locale",
            "updated_at",
            "upstream",
        ],
        "email" => &["email", "email_verified"],
        "address" => &["address"],
        "phone" => &["phone_number", "phone_number_verified"],
        "groups" => &["groups", "roles"],
        _ => &[],
    }
}

/// The scopes of your own (the config's `scopes:`) next to the standard ones: what each
/// releases, and how the consent page says it.
#[derive(Debug, Clone, Default)]
pub struct ScopeCatalog {
    custom: BTreeMap<String, Vec<String>>,
}

impl ScopeCatalog {
    pub fn new(custom: &crate::config::CustomScopes) -> Self {
        Self {
            custom: custom.clone(),
        }
    }

    /// The claims `scope` releases.
    pub fn claims<'a>(&'a self, scope: &str) -> Vec<&'a str> {
        match self.custom.get(scope) {
            Some(names) => names.iter().map(String::as_str).collect(),
            None => scope_claims(scope).to_vec(),
        }
    }

    pub fn is_custom(&self, scope: &str) -> bool {
        self.custom.contains_key(scope)
    }

    /// The custom scopes, for discovery's `scopes_supported`.
    pub fn custom_scopes(&self) -> impl Iterator<Item = &str> {
        self.custom.keys().map(String::as_str)
    }

    /// Every claim a custom scope releases, for discovery's `claims_supported`.
    pub fn custom_claims(&self) -> std::collections::BTreeSet<&str> {
        self.custom.values().flatten().map(String::as_str).collect()
    }

    /// How the consent page names `scope`, with the claims it releases.
    pub fn describe(&self, scope: &str) -> String {
        match self.custom.get(scope) {
            Some(names) => format!("See your {} ({scope})", names.join(", ")),
            None => crate::web::describe_scope(scope).to_string(),
        }
    }
}

/// Every claim `identity` has, as JSON (without `amr`).
pub fn all_claims(identity: &Identity) -> Map<String, Value> {
    let mut m = identity.extra.clone();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    put("sub", json!(identity.sub));
    if let Some(v) = &identity.preferred_username {
        put("preferred_username", json!(v));
    }
    if let Some(v) = &identity.name {
        put("name", json!(v));
    }
    if let Some(v) = &identity.email {
        put("email", json!(v));
        put(
            "email_verified",
            json!(identity.email_verified.unwrap_or(false)),
        );
    }
    put("groups", json!(identity.groups));
    if !identity.roles.is_empty() {
        put("roles", json!(identity.roles));
    }
    m
}

/// The claims of `identity` released by `scopes` plus those named in `requested` (the
/// `claims` parameter's `userinfo` or `id_token` member). `sub` is always there.
pub fn claims_for(
    identity: &Identity,
    scopes: &[String],
    requested: Option<&Value>,
    catalog: &ScopeCatalog,
) -> Map<String, Value> {
    let all = all_claims(identity);
    let mut out = Map::new();
    out.insert("sub".into(), json!(identity.sub));
    let mut names: Vec<&str> = scopes.iter().flat_map(|s| catalog.claims(s)).collect();
    if let Some(Value::Object(req)) = requested {
        names.extend(req.keys().map(String::as_str));
    }
    for n in names {
        if let Some(v) = all.get(n) {
            out.insert(n.to_string(), v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_release_only_their_claims() {
        let id = Identity {
            sub: "alice".into(),
            name: Some("Alice".into()),
            email: Some("a@example.com".into()),
            email_verified: Some(true),
            groups: vec!["dev".into()],
            ..Identity::default()
        };
        let cat = ScopeCatalog::default();
        let c = claims_for(&id, &["openid".into()], None, &cat);
        assert_eq!(c.keys().collect::<Vec<_>>(), ["sub"]);
        let c = claims_for(&id, &["openid".into(), "email".into()], None, &cat);
        assert_eq!(c["email"], "a@example.com");
        assert_eq!(c["email_verified"], true);
        assert!(c.get("name").is_none());
        let req = json!({"name": {"essential": true}});
        let c = claims_for(&id, &["openid".into()], Some(&req), &cat);
        assert_eq!(c["name"], "Alice");
        let c = claims_for(&id, &["groups".into()], None, &cat);
        assert_eq!(c["groups"], json!(["dev"]));
    }

    #[test]
    fn a_scope_of_your_own_releases_its_claims_and_nothing_else_does() {
        let mut id = Identity {
            sub: "alice".into(),
            ..Identity::default()
        };
        id.extra.insert("department".into(), json!("Platform"));
        id.extra.insert("employee_id".into(), json!("E-1"));
        let cat = ScopeCatalog::new(&BTreeMap::from([(
            "org".to_string(),
            vec!["department".to_string()],
        )]));
        let c = claims_for(&id, &["openid".into(), "profile".into()], None, &cat);
        assert!(c.get("department").is_none());
        let c = claims_for(&id, &["openid".into(), "org".into()], None, &cat);
        assert_eq!(c["department"], "Platform");
        assert!(c.get("employee_id").is_none(), "no scope releases it");
        assert_eq!(cat.describe("org"), "See your department (org)");
    }
}
