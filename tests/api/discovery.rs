use crate::helpers::{CONFIG, Spawn, TestApp};

#[tokio::test]
async fn discovery_names_the_issuer_byte_for_byte_and_only_implemented_endpoints() {
    let app = TestApp::spawn().await;
    let resp = app
        .http
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let doc: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(doc["issuer"], app.issuer.as_str());
    assert_eq!(doc["jwks_uri"], format!("{}/jwks", app.issuer).as_str());
    assert_eq!(doc["token_endpoint"], app.url("/token").as_str());
    assert_eq!(
        doc["introspection_endpoint"],
        app.url("/introspect").as_str()
    );
    assert_eq!(doc["revocation_endpoint"], app.url("/revoke").as_str());
    assert_eq!(
        doc["grant_types_supported"],
        serde_json::json!(["authorization_code", "refresh_token", "client_credentials"])
    );
    assert_eq!(
        doc["authorization_endpoint"],
        app.url("/authorize").as_str()
    );
    // Every advertised endpoint answers (with something other than 404).
    for key in [
        "token_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
        "jwks_uri",
        "authorization_endpoint",
        "userinfo_endpoint",
        "end_session_endpoint",
    ] {
        let url = doc[key].as_str().expect("url");
        let status = app.http.post(url).send().await.expect("req").status();
        assert_ne!(status, 404, "{key}");
    }
    let rfc8414 = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(rfc8414, doc);
    // No client is configured for the agent features: none is advertised.
    for key in [
        "device_authorization_endpoint",
        "backchannel_logout_supported",
        "backchannel_logout_session_supported",
        "token_endpoint_auth_signing_alg_values_supported",
    ] {
        assert!(doc.get(key).is_none(), "{key} advertised: {doc}");
    }
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post", "none"])
    );
}

#[tokio::test]
async fn an_issuer_with_a_path_serves_everything_under_it() {
    let app = TestApp::spawn_with(Spawn {
        issuer_path: Some("/tenant/a".into()),
        ..Spawn::default()
    })
    .await;
    let http = reqwest::Client::new();
    let doc: serde_json::Value = http
        .get(format!("{}/.well-known/openid-configuration", app.issuer))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(doc["issuer"], app.issuer.as_str());
    let jwks = http
        .get(doc["jwks_uri"].as_str().expect("jwks_uri"))
        .send()
        .await
        .expect("GET");
    assert_eq!(jwks.status(), 200);
    let probe = http.get(app.url("/healthz")).send().await.expect("GET");
    assert_eq!(probe.status(), 200);
}

#[tokio::test]
async fn jwks_carries_public_parts_only_with_kid_use_and_alg() {
    for alg in ["RS256", "PS256", "ES256", "EdDSA"] {
        let app = TestApp::spawn_with(Spawn {
            yaml: format!("{CONFIG}\nsigning:\n  algorithm: {alg}\n"),
            ..Spawn::default()
        })
        .await;
        let resp = app.http.get(app.url("/jwks")).send().await.expect("GET");
        assert_eq!(resp.headers()["content-type"], "application/jwk-set+json");
        let jwks: serde_json::Value = resp.json().await.expect("json");
        let keys = jwks["keys"].as_array().expect("keys");
        assert_eq!(keys.len(), 1, "{alg}");
        let k = &keys[0];
        assert!(k["kid"].as_str().is_some_and(|s| !s.is_empty()));
        assert_eq!(k["use"], "sig");
        assert_eq!(k["alg"], alg);
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert!(k.get(private).is_none(), "{alg} JWKS leaks `{private}`");
        }
        let token = app.service_token().await;
        let header = crate::helpers::jwt_header(&token);
        assert_eq!(header["alg"], alg);
        assert_eq!(header["typ"], "at+jwt");
        crate::helpers::verify_with_third_party(&jwks, &token)
            .unwrap_or_else(|e| panic!("{alg}: third-party verification failed: {e}"));
    }
}

#[tokio::test]
async fn probes_report_liveness_and_readiness() {
    let app = TestApp::spawn().await;
    let base = app.base.clone();
    let live = app
        .http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("GET");
    assert_eq!(live.status(), 200);
    let ready: serde_json::Value = app
        .http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["checks"]["signing_key"], true);
    assert_eq!(ready["checks"]["storage"], true);
    assert_eq!(ready["checks"]["migrations"], true);
}
