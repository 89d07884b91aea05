//! Which claims each scope releases (OIDC Core §5.4, plus `groups`), and the claims of an
//! identity as the OP releases them.

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
        "groups" => &["groups"],
        _ => &[],
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
    m
}

/// The claims of `identity` released by `scopes` plus those named in `requested` (the
/// `claims` parameter's `userinfo` or `id_token` member). `sub` is always there.
pub fn claims_for(
    identity: &Identity,
    scopes: &[String],
    requested: Option<&Value>,
) -> Map<String, Value> {
    let all = all_claims(identity);
    let mut out = Map::new();
    out.insert("sub".into(), json!(identity.sub));
    let mut names: Vec<&str> = scopes
        .iter()
        .flat_map(|s| scope_claims(s))
        .copied()
        .collect();
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
        let c = claims_for(&id, &["openid".into()], None);
        assert_eq!(c.keys().collect::<Vec<_>>(), ["sub"]);
        let c = claims_for(&id, &["openid".into(), "email".into()], None);
        assert_eq!(c["email"], "a@example.com");
        assert_eq!(c["email_verified"], true);
        assert!(c.get("name").is_none());
        let req = json!({"name": {"essential": true}});
        let c = claims_for(&id, &["openid".into()], Some(&req));
        assert_eq!(c["name"], "Alice");
        let c = claims_for(&id, &["groups".into()], None);
        assert_eq!(c["groups"], json!(["dev"]));
    }
}
