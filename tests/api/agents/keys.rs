//! `private_key_jwt` (RFC 7523) and resource indicators (RFC 8707), through openid-client.

use super::*;
use conformance::{jwt_claims, module};

fn claims(answer: &Value) -> &Value {
    assert_eq!(answer["ok"], true, "{answer}");
    &answer["access_claims"]
}

module!(
    private_key_jwt_gets_a_token_for_one_resource,
    start = start,
    |op| {
        let mut env = agent_env();
        env.push(("RESOURCES", ORDERS.into()));
        env.push(("SCOPE", "read".into()));
        let answer = node_one(&op, "client_credentials", &env).await;
        let c = claims(&answer);
        assert_eq!(c["aud"], ORDERS, "the resource is the audience");
        assert_eq!(c["sub"], "agent");
        assert_eq!(c["client_id"], "agent");
        assert_eq!(c["scope"], "read");

        // A resource the client may not ask for.
        let mut env = agent_env();
        env.push(("RESOURCES", BILLING.into()));
        let refused = node_one(&op, "client_credentials", &env).await;
        assert_eq!(refused["error"], "invalid_target", "{refused}");

        let d = op.discovery().await;
        let methods = d["token_endpoint_auth_methods_supported"].to_string();
        assert!(methods.contains("private_key_jwt"), "{methods}");
        assert_eq!(
            d["token_endpoint_auth_signing_alg_values_supported"],
            json!(["RS256"])
        );
    }
);

module!(
    a_replayed_client_assertion_is_refused,
    start = start,
    |op| {
        let mut env = agent_env();
        let jti = oidc_bridge::secret::random_token(12);
        env.push(("FIXED_JTI", jti));
        let first = node_one(&op, "client_credentials", &env).await;
        assert_eq!(first["ok"], true, "{first}");
        let again = node_one(&op, "client_credentials", &env).await;
        assert_eq!(again["error"], "invalid_client", "{again}");
        assert_eq!(again["status"], 401);
    }
);

/// A client assertion signed here, to break one rule at a time.
fn assertion(op: &Op, change: impl FnOnce(&mut Value), alg: &str) -> String {
    let now = op.clock.current();
    let mut claims = json!({
        "iss": "agent", "sub": "agent", "aud": op.issuer,
        "iat": now, "exp": now + 60, "jti": oidc_bridge::secret::random_token(12),
    });
    change(&mut claims);
    let mut header = josekit::jws::JwsHeader::new();
    header.set_key_id("agent-1");
    let payload = claims.to_string();
    if alg == "HS256" {
        let signer = josekit::jws::HS256
            .signer_from_bytes(b"a shared secret that is not ours!!")
            .expect("hmac");
        return josekit::jws::serialize_compact(payload.as_bytes(), &header, &signer)
            .expect("sign");
    }
    let signer = josekit::jws::RS256
        .signer_from_pem(agent_key().0.as_bytes())
        .expect("signer");
    josekit::jws::serialize_compact(payload.as_bytes(), &header, &signer).expect("sign")
}

async fn token_with(op: &Op, assertion: &str) -> (u16, Value) {
    let resp = op
        .http
        .post(op.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ])
        .send()
        .await
        .expect("POST");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

module!(assertions_are_checked_strictly, start = start, |op| {
    let (status, ok) = token_with(&op, &assertion(&op, |_| {}, "RS256")).await;
    assert_eq!(status, 200, "the baseline is accepted: {ok}");
    assert_eq!(
        jwt_claims(ok["access_token"].as_str().expect("at"))["sub"],
        "agent"
    );
    let later = op.clock.current() + 3600;
    let cases: Vec<(&str, String)> = vec![
        (
            "another audience",
            assertion(&op, |c| c["aud"] = json!("https://evil.example"), "RS256"),
        ),
        (
            "another issuer",
            assertion(&op, |c| c["iss"] = json!("someone"), "RS256"),
        ),
        (
            "expired",
            assertion(
                &op,
                |c| c["exp"] = json!(c["iat"].as_i64().expect("iat") - 1),
                "RS256",
            ),
        ),
        (
            "exp far ahead",
            assertion(&op, |c| c["exp"] = json!(later), "RS256"),
        ),
        (
            "no jti",
            assertion(
                &op,
                |c| {
                    c.as_object_mut().expect("object").remove("jti");
                },
                "RS256",
            ),
        ),
        ("HMAC", assertion(&op, |_| {}, "HS256")),
    ];
    for (case, a) in cases {
        let (status, body) = token_with(&op, &a).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{case}: {body}"
        );
    }
    // Both a secret and an assertion: one method only.
    let resp = op
        .http
        .post(op.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_secret", "whatever-it-is-0123456789"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion(&op, |_| {}, "RS256")),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 400);
});

/// A JWK Set server for `agent-remote`, and how many times it was asked.
async fn jwks_server(body: String) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            let body = body.clone();
            async move { ([("content-type", "application/json")], body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/jwks", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (url, hits)
}

async fn remote(
    backend: Backend,
    body: String,
) -> Option<(Op, std::sync::Arc<std::sync::atomic::AtomicUsize>)> {
    let (url, hits) = jwks_server(body).await;
    Some((start_with(backend, &url).await?, hits))
}

async fn jwks_uri_keys_are_fetched_once_and_capped(backend: Backend) {
    let set = json!({"keys": [agent_key().1]}).to_string();
    let Some((op, hits)) = remote(backend, set).await else {
        return;
    };
    let mut env = agent_env();
    env[0].1 = "agent-remote".into();
    for _ in 0..2 {
        let answer = node_one(&op, "client_credentials", &env).await;
        assert_eq!(claims(&answer)["sub"], "agent-remote");
    }
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "kept, not fetched per request"
    );

    // A set over 64 KiB is not read.
    let mut keys = vec![agent_key().1.clone()];
    keys.push(json!({"kty": "oct", "k": "x".repeat(70 * 1024)}));
    let Some((op, _)) = remote(backend, json!({"keys": keys}).to_string()).await else {
        return;
    };
    let answer = node_one(&op, "client_credentials", &env).await;
    assert_eq!(answer["error"], "invalid_client", "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_uri_keys_are_fetched_once_and_capped_sqlite() {
    jwks_uri_keys_are_fetched_once_and_capped(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_uri_keys_are_fetched_once_and_capped_postgres() {
    jwks_uri_keys_are_fetched_once_and_capped(Backend::Postgres).await;
}

module!(
    a_user_token_narrows_to_one_granted_resource,
    start = start,
    |op| {
        let both = format!("{ORDERS} {BILLING}");
        let lines = backstage_sign_in(
            &op,
            &[
                ("RESOURCES", both.clone()),
                ("TOKEN_RESOURCES", ORDERS.into()),
                ("REFRESH_RESOURCES", BILLING.into()),
            ],
        )
        .await;
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(
            claims(&lines[0])["aud"],
            ORDERS,
            "the code exchange asked for orders"
        );
        assert_eq!(claims(&lines[0])["groups"], json!(["platform"]));
        assert_eq!(
            claims(&lines[1])["aud"],
            BILLING,
            "the refresh narrowed to billing"
        );

        // A refresh may not reach a resource the authorization did not grant.
        let lines = backstage_sign_in(
            &op,
            &[
                ("RESOURCES", ORDERS.into()),
                ("REFRESH_RESOURCES", BILLING.into()),
            ],
        )
        .await;
        assert_eq!(
            claims(&lines[0])["aud"],
            ORDERS,
            "all granted, when none is named"
        );
        assert_eq!(lines[1]["error"], "invalid_target", "{}", lines[1]);

        // Nor may the authorization request name one the client may not have.
        let lines = backstage_sign_in(&op, &[("RESOURCES", CATALOG.into())]).await;
        assert_eq!(lines[0]["error"], "invalid_target", "{}", lines[0]);
    }
);

#[test]
fn key_mistakes_are_listed_with_their_key_paths() {
    let dir = tempfile::tempdir().expect("dir");
    let key = dir.path().join("k.pem");
    std::fs::write(&key, &agent_key().0).expect("write");
    let other = openssl::rsa::Rsa::generate(2048).expect("rsa");
    let other = openssl::pkey::PKey::from_rsa(other).expect("pkey");
    let mut name = openssl::x509::X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", "other").expect("cn");
    let name = name.build();
    let mut cert = openssl::x509::X509Builder::new().expect("cert");
    cert.set_subject_name(&name).expect("subject");
    cert.set_issuer_name(&name).expect("issuer");
    cert.set_pubkey(&other).expect("pubkey");
    let day = |n| openssl::asn1::Asn1Time::days_from_now(n).expect("time");
    cert.set_not_before(&day(0)).expect("not before");
    cert.set_not_after(&day(1)).expect("not after");
    cert.sign(&other, openssl::hash::MessageDigest::sha256())
        .expect("sign");
    let cert_file = dir.path().join("other.crt");
    std::fs::write(&cert_file, cert.build().to_pem().expect("pem")).expect("write");
    let yaml = format!(
        r#"
connectors:
  - {{id: a, type: azure, tenant: t1, client_id: x, token_endpoint_auth_method: private_key_jwt, private_key_file: {k}}}
  - {{id: b, type: okta, issuer: "https://acme.okta.com", client_id: x, client_secret: also-a-secret-0123, token_endpoint_auth_method: private_key_jwt, private_key_file: {k}}}
  - {{id: c, type: github, client_id: x, token_endpoint_auth_method: private_key_jwt, private_key_file: {k}}}
  - {{id: d, type: azure, tenant: t1, client_id: x, token_endpoint_auth_method: private_key_jwt, private_key_file: {k}, certificate_file: {c}}}
  - {{id: e, type: oidc, issuer: "https://idp.example", client_id: x, client_secret: a-secret-0123456789, private_key_file: {k}}}
clients:
  - {{id: f, token_endpoint_auth_method: private_key_jwt, grant_types: [client_credentials]}}
  - {{id: g, secret: a-secret-0123456789, jwks_uri: "http://example.com/jwks", grant_types: [client_credentials]}}
  - {{id: h, token_endpoint_auth_method: private_key_jwt, jwks: {{keys: [{{kty: RSA, n: x, e: AQAB, d: secret}}]}}, grant_types: [client_credentials]}}
  - {{id: i, secret: a-secret-0123456789, grant_types: [urn:ietf:params:oauth:grant-type:token-exchange]}}
  - {{id: j, resources: ["not a uri", "https://a.example/#frag"], grant_types: [client_credentials], secret: a-secret-0123456789}}
"#,
        k = key.display(),
        c = cert_file.display()
    );
    let problems = oidc_bridge::config::from_yaml_str(&yaml, &|_| None)
        .expect_err("mistakes")
        .to_string();
    for expected in [
        "connectors[0].certificate_file: is required",
        "connectors[1].client_secret: is not used with private_key_jwt",
        "connectors[2].token_endpoint_auth_method: private_key_jwt is offered for oidc, okta and azure",
        "connectors[3].certificate_file: does not hold the private key's public key",
        "connectors[4].private_key_file: is used only with token_endpoint_auth_method: private_key_jwt",
        "clients[0].token_endpoint_auth_method: is private_key_jwt: give `jwks` or `jwks_uri`",
        "clients[1].token_endpoint_auth_method: must be private_key_jwt",
        "clients[1].jwks_uri: uses plain http",
        "clients[2].jwks.keys[0]: holds private key material",
        "clients[3].token_exchange: is required for the token-exchange grant",
        "clients[4].resources[0]: `not a uri` is not an absolute URI",
        "clients[4].resources[1]: must not contain a fragment",
    ] {
        assert!(
            problems.contains(expected),
            "missing `{expected}` in:\n{problems}"
        );
    }
}

#[test]
fn an_api_permission_scope_of_a_machine_client_is_not_warned_about() {
    let yaml = r#"
clients:
  - {id: machine, secret: a-secret-0123456789, grant_types: [client_credentials], scopes: [read]}
  - {id: web, secret: a-secret-0123456789, redirect_uris: ["https://app.example/cb"], scopes: [openid, read]}
"#;
    let config = oidc_bridge::config::from_yaml_str(yaml, &|_| None).expect("valid");
    let warned: Vec<String> = config.warnings.iter().map(|w| w.path.clone()).collect();
    assert_eq!(warned, ["clients[1].scopes[1]"], "{:?}", config.warnings);
}

/// A JWK Set server that can start failing.
async fn failing_jwks_server(
    body: String,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let failing = std::sync::Arc::new(AtomicBool::new(false));
    let flag = failing.clone();
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let body = body.clone();
            let fail = flag.load(Ordering::SeqCst);
            async move {
                let status = if fail { 503 } else { 200 };
                (
                    axum::http::StatusCode::from_u16(status).expect("status"),
                    [("content-type", "application/json")],
                    body,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/jwks", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (url, failing)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_jwks_uri_keeps_its_last_keys_for_an_hour_at_most() {
    let set = json!({"keys": [agent_key().1]}).to_string();
    let (url, failing) = failing_jwks_server(set).await;
    let op = start_with(Backend::Sqlite, &url).await.expect("op");
    // Signed here, at the provider's clock (which the test moves).
    let remote = |op: &Op| {
        assertion(
            op,
            |c| {
                c["iss"] = json!("agent-remote");
                c["sub"] = json!("agent-remote");
            },
            "RS256",
        )
    };
    assert_eq!(token_with(&op, &remote(&op)).await.0, 200, "fetched");
    failing.store(true, std::sync::atomic::Ordering::SeqCst);
    op.clock.advance(400);
    let (status, body) = token_with(&op, &remote(&op)).await;
    assert_eq!(
        status, 200,
        "the set that worked, while the URI fails: {body}"
    );
    op.clock.advance(3600);
    let (status, body) = token_with(&op, &remote(&op)).await;
    assert_eq!(status, 401, "no longer after an hour: {body}");
}
