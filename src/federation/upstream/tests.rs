//! Unit tests of the upstream side.

use super::*;

fn upstream(yaml: &str) -> Upstream {
    let c = crate::config::from_yaml_str(yaml, &|_| None)
        .expect("config")
        .connectors
        .remove(0);
    Upstream::new(
        c,
        "https://bridge.example",
        Arc::new(crate::clock::SystemClock),
        Metrics::new(),
    )
    .expect("client")
}

#[test]
fn iss_must_name_the_connector_or_its_allowed_tenants() {
    let single =
        upstream("connectors: [{id: a, type: azure, tenant: t1, client_id: x, client_secret: y}]");
    assert!(single.is_issuer("https://login.microsoftonline.com/t1/v2.0"));
    assert!(!single.is_issuer("https://login.microsoftonline.com/t2/v2.0"));
    let multi = upstream(
        "connectors: [{id: a, type: azure, issuer: 'https://login.microsoftonline.com/organizations/v2.0', allowed_tenants: [t1], client_id: x, client_secret: y}]",
    );
    assert!(multi.is_issuer("https://login.microsoftonline.com/t1/v2.0"));
    assert!(
        !multi.is_issuer("https://login.microsoftonline.com/t9/v2.0"),
        "not allowed"
    );
    assert!(!multi.is_issuer("https://evil.example/t1/v2.0"));
    // `/consumers/` or `/common/` in another connector type's issuer is just a path.
    let oidc = upstream(
        "connectors: [{id: a, type: oidc, issuer: 'https://idp.example/common/x', client_id: x, client_secret: y}]",
    );
    assert!(!oidc.is_issuer("https://idp.example/t1/x"));
    assert!(oidc.is_issuer("https://idp.example/common/x"));
}
