//! The identity a federated person gets here.
//!
//! `sub` = base64url(SHA-256("{connector id}\n{upstream immutable id}")), 43 characters:
//! stable across logins and refreshes, unique per connector, never derived from e-mail. The
//! upstream immutable id is the upstream `sub` (Okta's `00u…` user id, any OIDC issuer's
//! `sub`), and for Entra ID `{tid}/{oid}` (its `sub` differs per application).
//!
//! With `link_by_email: true` on a connector, a person whose upstream e-mail is verified gets
//! `sub` = base64url(SHA-256("email\n{lowercased address}")) instead, so that moving a
//! domain from one IdP to another keeps its people's subjects. Only addresses in the
//! connector's `verified_email_domains` link, and config refuses a domain listed by two
//! connectors: an address can link through its domain's one authority and no other.
//!
//! What counts as verified: an explicit `email_verified: false` never does. Elsewhere an
//! address in one of the connector's domains does (the IdP is the domain's authority), and so
//! does `email_verified: true`, which still links only inside those domains. Entra ID's
//! `email` is an unverified, editable attribute: it counts only with the `xms_edov: true`
//! optional claim (the domain owner verified it) and from the tenant that owns the domain;
//! `preferred_username` and `upn` are never treated as e-mail proof.
//!
//! Upstream claims that keep their meaning go under one namespaced `upstream` claim
//! (`idp`, `iss`, `sub`, `tid`, `oid`, `amr`, Google's `hd`), never over registered claim
//! names.

use serde_json::{Map, Value, json};

use super::connector::Identity;
use crate::config::{ConnectorConfig, ConnectorKind};
use crate::secret::sha256_b64url;

fn text(claims: &Value, key: &str) -> Option<String> {
    claims[key]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn looks_like_email(s: &str) -> bool {
    let mut parts = s.splitn(2, '@');
    matches!((parts.next(), parts.next()), (Some(a), Some(d)) if !a.is_empty() && d.contains('.') && !d.contains('@'))
}

/// The immutable upstream id: `{tid}/{oid}` for Entra ID, else `sub`.
pub fn upstream_id(connector: &ConnectorConfig, claims: &Value) -> Result<String, String> {
    match connector.kind {
        ConnectorKind::Azure => match (text(claims, "tid"), text(claims, "oid")) {
            (Some(tid), Some(oid)) => Ok(format!("{tid}/{oid}")),
            _ => Err("the Entra ID token has no tid and oid".into()),
        },
        _ => text(claims, "sub").ok_or_else(|| "the ID token has no sub".into()),
    }
}

pub fn subject(connector_id: &str, upstream_id: &str) -> String {
    sha256_b64url(format!("{connector_id}\n{upstream_id}").as_bytes())
}

fn truthy(v: &Value) -> bool {
    v.as_bool() == Some(true) || v == "true" || v == "1" || v.as_i64() == Some(1)
}

fn domain_of(addr: &str) -> Option<String> {
    addr.rsplit_once('@').map(|(_, d)| d.to_lowercase())
}

/// Whether `addr` may be linked by e-mail through this connector: its domain is one the
/// connector is the authority for (and for Entra ID, from the tenant that owns it).
fn owns(connector: &ConnectorConfig, claims: &Value, addr: &str) -> bool {
    let Some(domain) = domain_of(addr) else {
        return false;
    };
    connector.verified_email_domains.iter().any(|d| {
        d.domain == domain
            && match (&d.tenant, connector.kind) {
                (_, k) if k != ConnectorKind::Azure => true,
                (Some(t), _) => claims["tid"].as_str() == Some(t.as_str()),
                (None, _) => false,
            }
    })
}

/// The e-mail, whether it counts as verified, and whether it may link identities.
pub fn email(connector: &ConnectorConfig, claims: &Value) -> (Option<String>, bool, bool) {
    match connector.kind {
        ConnectorKind::Azure => {
            // Entra ID's `email` is not proof of ownership (the "nOAuth" class): verified
            // only when the domain owner vouches for it (`xms_edov`) from the owning tenant.
            // Without an `email`, a UPN-like name is shown, never verified.
            let email = text(claims, "email");
            let verified = email
                .as_deref()
                .is_some_and(|a| truthy(&claims["xms_edov"]) && owns(connector, claims, a));
            let addr = email.or_else(|| {
                text(claims, "preferred_username")
                    .filter(|s| looks_like_email(s))
                    .or_else(|| text(claims, "upn").filter(|s| looks_like_email(s)))
            });
            (addr, verified, verified)
        }
        _ => {
            let addr = text(claims, "email");
            let said = &claims["email_verified"];
            let explicit_false = said.as_bool() == Some(false) || said == "false";
            let owned = addr.as_deref().is_some_and(|a| owns(connector, claims, a));
            let verified = !explicit_false && (truthy(said) || owned);
            (addr, verified, verified && owned)
        }
    }
}

/// The value at a dotted `path` (`hr.department`) in `claims`. A key that itself holds a
/// dot (`https://example.com/dept`) is found too: the whole path is tried as one key first.
pub fn at_path<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut v = claims;
    for part in path.split('.') {
        v = v.get(part)?;
    }
    Some(v)
}

pub fn build(
    connector: &ConnectorConfig,
    claims: &Value,
    groups: Vec<String>,
) -> Result<Identity, String> {
    let up_id = upstream_id(connector, claims)?;
    let (email, email_verified, linkable) = email(connector, claims);
    let sub = match (&email, connector.link_by_email && linkable) {
        (Some(addr), true) => sha256_b64url(format!("email\n{}", addr.to_lowercase()).as_bytes()),
        _ => subject(&connector.id, &up_id),
    };
    let mut upstream = Map::new();
    upstream.insert("idp".into(), json!(connector.id));
    for k in ["iss", "sub", "tid", "oid", "amr", "hd"] {
        if let Some(v) = claims.get(k).filter(|v| !v.is_null()) {
            upstream.insert(k.into(), v.clone());
        }
    }
    let mut extra = Map::new();
    extra.insert("upstream".into(), Value::Object(upstream));
    if let Some(p) = text(claims, "picture") {
        extra.insert("picture".into(), json!(p));
    }
    // Claims of your own, mapped from upstream paths (`connectors[].claims`).
    for (name, path) in &connector.claims {
        if let Some(v) = at_path(claims, path).filter(|v| !v.is_null()) {
            extra.insert(name.clone(), v.clone());
        }
    }
    let mut roles: Vec<String> = connector
        .roles_claims
        .iter()
        .flat_map(|p| match at_path(claims, p) {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        })
        .collect();
    roles.sort();
    roles.dedup();
    Ok(Identity {
        sub: sub.into(),
        preferred_username: text(claims, "preferred_username").or_else(|| email.clone()),
        name: text(claims, "name"),
        email,
        email_verified: Some(email_verified),
        groups,
        roles,
        amr: claims["amr"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        local: false,
        upstream_session: None,
        extra,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_detection_is_conservative() {
        assert!(looks_like_email("a@b.com"));
        assert!(!looks_like_email("a@b"));
        assert!(!looks_like_email("@b.com"));
        assert!(!looks_like_email("user"));
    }

    fn connector(kind: ConnectorKind, domains: &[(&str, Option<&str>)]) -> ConnectorConfig {
        let yaml = "connectors:\n  - {id: c, type: oidc, issuer: 'https://idp.example', client_id: x, client_secret: y}\n";
        let mut c = crate::config::from_yaml_str(yaml, &|_| None)
            .expect("config")
            .connectors
            .remove(0);
        c.kind = kind;
        c.link_by_email = true;
        c.verified_email_domains = domains
            .iter()
            .map(|(d, t)| crate::config::VerifiedDomain {
                domain: d.to_string(),
                tenant: t.map(str::to_string),
            })
            .collect();
        c
    }

    #[test]
    fn an_explicit_false_is_never_upgraded() {
        let c = connector(ConnectorKind::Oidc, &[("contoso.com", None)]);
        let claims = json!({"sub": "m", "email": "victim@contoso.com", "email_verified": false});
        assert!(!email(&c, &claims).1);
        assert!(!email(&c, &claims).2);
        let claims = json!({"sub": "m", "email": "victim@contoso.com"});
        assert_eq!(
            email(&c, &claims),
            (Some("victim@contoso.com".into()), true, true)
        );
        // Verified upstream, but not a domain this connector answers for: shown, not linked.
        let claims = json!({"sub": "m", "email": "a@fabrikam.com", "email_verified": true});
        assert_eq!(
            email(&c, &claims),
            (Some("a@fabrikam.com".into()), true, false)
        );
    }

    #[test]
    fn entra_email_links_only_with_xms_edov_from_the_owning_tenant() {
        let c = connector(ConnectorKind::Azure, &[("contoso.com", Some("t-contoso"))]);
        let base = json!({"tid": "t-contoso", "oid": "o", "email": "victim@contoso.com"});
        assert!(!email(&c, &base).2, "no xms_edov");
        let mut edov = base.clone();
        edov["xms_edov"] = json!(true);
        assert!(email(&c, &edov).2);
        edov["tid"] = json!("t-partner");
        assert!(!email(&c, &edov).2, "another tenant");
        let upn = json!({"tid": "t-contoso", "oid": "o", "preferred_username": "victim@contoso.com", "xms_edov": true});
        assert!(!email(&c, &upn).1, "a UPN is not e-mail proof");
    }

    #[test]
    fn subjects_differ_per_connector_for_the_same_upstream_id() {
        assert_ne!(subject("okta", "00u1"), subject("azure", "00u1"));
        assert_eq!(subject("okta", "00u1").len(), 43);
    }
}
