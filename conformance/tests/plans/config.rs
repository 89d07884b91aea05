//! Config OP plan (`oidcc-config-certification-test-plan`): the discovery document, checked
//! as `oidcc-discovery-endpoint-verification` does, with `https` relaxed to the issuer's own
//! scheme on loopback.

use super::*;
use conformance::module;

fn is_endpoint_url(op: &Op, v: &Value) -> bool {
    let scheme = if op.issuer.starts_with("https://") {
        "https"
    } else {
        "http"
    };
    v.as_str()
        .and_then(|s| url::Url::parse(s).ok())
        .is_some_and(|u| u.scheme() == scheme && u.host().is_some())
}

module!(oidcc_discovery_endpoint_verification, |op| {
    let resp = op
        .http
        .get(op.url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 200, "DISC-1");
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("application/json"),
        "DISC-2"
    );
    let d: Value = resp.json().await.expect("json");
    let list = |k: &str| -> Vec<String> {
        d[k].as_array()
            .unwrap_or_else(|| panic!("{k} is an array"))
            .iter()
            .map(|v| v.as_str().expect("string").to_string())
            .collect()
    };
    assert!(
        list("response_types_supported").contains(&"code".to_string()),
        "DISC-3"
    );
    assert_eq!(d["issuer"], op.issuer.as_str(), "DISC-5");
    let iss = url::Url::parse(&op.issuer).expect("DISC-6");
    assert!(iss.query().is_none() && iss.fragment().is_none() && iss.username().is_empty());
    assert!(
        list("subject_types_supported").contains(&"public".to_string()),
        "DISC-9"
    );
    assert!(
        list("id_token_signing_alg_values_supported").contains(&"RS256".to_string()),
        "DISC-10"
    );
    for k in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
    ] {
        assert!(is_endpoint_url(&op, &d[k]), "DISC-12..16: {k}");
    }
    for (k, v) in d.as_object().expect("object") {
        if k.ends_with("_endpoint") {
            assert!(is_endpoint_url(&op, v), "DISC-27: {k}");
        }
        if k.ends_with("_supported") && !k.ends_with("_parameter_supported") {
            assert!(
                v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
                "DISC-7: {k}"
            );
        }
        if k.ends_with("_parameter_supported") {
            assert!(v.is_boolean(), "DISC-7: {k}");
        }
    }
    assert!(d["claims_supported"].is_array(), "DISC-21");
    assert!(!list("grant_types_supported").is_empty(), "DISC-22");
    let scopes = list("scopes_supported");
    assert!(scopes.contains(&"openid".to_string()), "DISC-23");
    for s in &scopes {
        assert!(
            !s.is_empty()
                && s.bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)),
            "DISC-24: {s}"
        );
    }
    assert_eq!(
        list("code_challenge_methods_supported"),
        ["S256"],
        "DISC-28"
    );
    assert!(
        list("token_endpoint_auth_methods_supported").contains(&"client_secret_basic".to_string()),
        "DISC-A1"
    );
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);

    // DISC-16 and JWKS-0..7.
    let jwks: Value = op
        .http
        .get(d["jwks_uri"].as_str().expect("jwks_uri"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JWKS-0");
    let keys = jwks["keys"].as_array().expect("JWKS-2");
    let mut kids = std::collections::HashSet::new();
    for k in keys {
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert!(k.get(private).is_none(), "JWKS-1");
        }
        assert_ne!(k["kty"], "oct", "JWKS-1");
        assert_eq!(k["kty"], "RSA");
        for member in ["n", "e"] {
            let v = k[member].as_str().expect("JWKS-2");
            assert!(
                v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "unpadded base64url"
            );
        }
        let kid = k["kid"].as_str().expect("JWKS-6");
        assert!(kids.insert(kid.to_string()), "JWKS-7: unique kid");
    }
});
