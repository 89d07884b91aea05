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
