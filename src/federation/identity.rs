//! The identity a federated person gets here.
//!
//! `sub` = base64url(SHA-256("{connector id}\n{upstream immutable id}")), 43 characters:
//! stable across logins and refreshes, unique per connector, never derived from e-mail. The
//! upstream immutable id is the upstream `sub` (Okta's `00u…` user id, any OIDC issuer's
//! `sub`), and for Entra ID `{tid}/{oid}` (its `sub` differs per application).
//!
//! With `link_by_email: true` on a connector, a person whose upstream e-mail is verified gets
//! `sub` = base64url(SHA-256("email\n{lowercased address}")) instead, so the same verified
//! address from two such connectors is one person. Off by default: enable it only for IdPs
//! you trust to verify addresses.
//!
//! Upstream claims that keep their meaning go under one namespaced `upstream` claim
//! (`idp`, `iss`, `sub`, `tid`, `oid`, `amr`), never over registered claim names.

use serde_json::{Map, Value, json};

use crate::config::{ConnectorConfig, ConnectorKind};
use crate::oidc::identity::Identity;
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

/// The e-mail and whether it counts as verified.
pub fn email(connector: &ConnectorConfig, claims: &Value) -> (Option<String>, bool) {
    let domain_verified = |addr: &str| {
        addr.rsplit('@').next().is_some_and(|d| {
            connector
                .verified_email_domains
                .iter()
                .any(|v| v.eq_ignore_ascii_case(d))
        })
    };
    match connector.kind {
        ConnectorKind::Azure => {
            // Entra ID does not verify `email`; fall back to the UPN-like names when they
            // look like an address. Verified only for allow-listed domains.
            let addr = text(claims, "email")
                .or_else(|| text(claims, "preferred_username").filter(|s| looks_like_email(s)))
                .or_else(|| text(claims, "upn").filter(|s| looks_like_email(s)));
            let verified = addr.as_deref().is_some_and(domain_verified);
            (addr, verified)
        }
        _ => {
            let addr = text(claims, "email");
            let verified = claims["email_verified"].as_bool().unwrap_or(false)
                || claims["email_verified"] == "true"
                || addr.as_deref().is_some_and(domain_verified);
            (addr, verified)
        }
    }
}

pub fn build(
    connector: &ConnectorConfig,
    claims: &Value,
    groups: Vec<String>,
) -> Result<Identity, String> {
    let up_id = upstream_id(connector, claims)?;
    let (email, email_verified) = email(connector, claims);
    let sub = match (&email, connector.link_by_email && email_verified) {
        (Some(addr), true) => sha256_b64url(format!("email\n{}", addr.to_lowercase()).as_bytes()),
        _ => subject(&connector.id, &up_id),
    };
    let mut upstream = Map::new();
    upstream.insert("idp".into(), json!(connector.id));
    for k in ["iss", "sub", "tid", "oid", "amr"] {
        if let Some(v) = claims.get(k).filter(|v| !v.is_null()) {
            upstream.insert(k.into(), v.clone());
        }
    }
    let mut extra = Map::new();
    extra.insert("upstream".into(), Value::Object(upstream));
    if let Some(p) = text(claims, "picture") {
        extra.insert("picture".into(), json!(p));
    }
    Ok(Identity {
        sub,
        preferred_username: text(claims, "preferred_username").or_else(|| email.clone()),
        name: text(claims, "name"),
        email,
        email_verified: Some(email_verified),
        groups,
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

    #[test]
    fn subjects_differ_per_connector_for_the_same_upstream_id() {
        assert_ne!(subject("okta", "00u1"), subject("azure", "00u1"));
        assert_eq!(subject("okta", "00u1").len(), 43);
    }
}
