//! Token exchange (RFC 8693) through openid-client's generic grant: a Backstage backend
//! trades its user's token for a downstream API's, with delegation, down-scoping and the
//! refusals a client relies on.

use super::*;
use conformance::module;

/// Alice's Backstage access token (for the issuer, as Backstage gets it).
async fn user_token(op: &Op) -> String {
    let lines = backstage_sign_in(op, &[]).await;
    assert_eq!(lines[0]["ok"], true, "{}", lines[0]);
    lines[0]["response"]["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

fn exchange_env(subject: &str, extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut env = backstage_env();
    env.push(("SUBJECT_TOKEN", subject.to_string()));
    for (k, v) in extra {
        env.push((k, v.to_string()));
    }
    env
}

module!(
    a_backend_exchanges_its_users_token_for_a_downstream_api,
    start = start,
    |op| {
        let subject = user_token(&op).await;
        let answer = node_one(
            &op,
            "exchange",
            &exchange_env(
                &subject,
                &[("AUDIENCES", CATALOG), ("SCOPE", "openid profile")],
            ),
        )
        .await;
        assert_eq!(answer["ok"], true, "{answer}");
        let r = &answer["response"];
        assert_eq!(
            r["issued_token_type"],
            "urn:ietf:params:oauth:token-type:access_token"
        );
        assert_eq!(r["token_type"], "Bearer");
        assert!(
            r.get("refresh_token").is_none() && r.get("id_token").is_none(),
            "{r}"
        );
        assert_eq!(r["scope"], "openid profile", "narrowed");
        let c = &answer["access_claims"];
        assert_eq!(c["aud"], CATALOG);
        assert_eq!(c["sub"], "alice");
        assert_eq!(c["client_id"], "backstage");
        assert_eq!(
            c["groups"],
            json!(["platform"]),
            "through the group pipeline again"
        );
        assert!(c.get("act").is_none(), "no actor: no act");
        let subject_exp = conformance::jwt_claims(&subject)["exp"]
            .as_i64()
            .expect("exp");
        assert!(
            c["exp"].as_i64().expect("exp") <= subject_exp,
            "never outlives the subject token"
        );
    }
);

module!(an_actor_token_makes_it_delegation, start = start, |op| {
    let subject = user_token(&op).await;
    // Backstage acts for alice: its own token is the actor token.
    let own = node_one(&op, "client_credentials", &backstage_env()).await;
    let actor = own["response"]["access_token"]
        .as_str()
        .expect("backstage token");
    let answer = node_one(
        &op,
        "exchange",
        &exchange_env(&subject, &[("AUDIENCES", ORDERS), ("ACTOR_TOKEN", actor)]),
    )
    .await;
    assert_eq!(answer["ok"], true, "{answer}");
    let delegated = answer["response"]["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    assert_eq!(
        answer["access_claims"]["act"],
        json!({"sub": "backstage", "client_id": "backstage"})
    );
    assert_eq!(answer["access_claims"]["aud"], ORDERS);

    // Exchanged again (to the catalog), the delegation stays: it is never shed.
    let again = node_one(
        &op,
        "exchange",
        &exchange_env(&delegated, &[("AUDIENCES", CATALOG)]),
    )
    .await;
    assert_eq!(again["ok"], true, "{again}");
    assert_eq!(again["access_claims"]["act"]["sub"], "backstage");

    // Another client's token proves nothing about who acts.
    let agent = node_one(&op, "client_credentials", &agent_env()).await;
    let foreign = agent["response"]["access_token"]
        .as_str()
        .expect("agent token");
    let refused = node_one(
        &op,
        "exchange",
        &exchange_env(&subject, &[("AUDIENCES", ORDERS), ("ACTOR_TOKEN", foreign)]),
    )
    .await;
    assert_eq!(refused["error"], "invalid_request", "{refused}");
});

module!(
    exchanges_the_client_may_not_make_are_refused,
    start = start,
    |op| {
        let subject = user_token(&op).await;
        type Case = (&'static str, Vec<(&'static str, String)>, &'static str);
        let cases: Vec<Case> = vec![
            (
                "an audience outside token_exchange.audiences",
                exchange_env(&subject, &[("AUDIENCES", "https://payroll.example.test")]),
                "invalid_target",
            ),
            (
                "a resource outside token_exchange.audiences",
                exchange_env(&subject, &[("RESOURCES", BILLING)]),
                "invalid_target",
            ),
            (
                "a wider scope",
                exchange_env(
                    &subject,
                    &[("AUDIENCES", CATALOG), ("SCOPE", "openid groups")],
                ),
                "invalid_scope",
            ),
            (
                "a subject token that is not ours",
                exchange_env("eyJhbGciOiJub25lIn0.e30.", &[("AUDIENCES", CATALOG)]),
                "invalid_request",
            ),
            (
                "a token type it does not take",
                exchange_env(
                    &subject,
                    &[
                        ("AUDIENCES", CATALOG),
                        (
                            "SUBJECT_TOKEN_TYPE",
                            "urn:ietf:params:oauth:token-type:saml2",
                        ),
                    ],
                ),
                "invalid_request",
            ),
        ];
        for (case, env, error) in cases {
            let answer = node_one(&op, "exchange", &env).await;
            assert_eq!(answer["error"], error, "{case}: {answer}");
        }

        // The agent may not exchange a token issued to Backstage (it was neither issued to it
        // nor meant for it).
        let mut env = agent_env();
        env.push(("SUBJECT_TOKEN", subject.clone()));
        env.push(("AUDIENCES", CATALOG.into()));
        let answer = node_one(&op, "exchange", &env).await;
        assert_eq!(answer["error"], "invalid_request", "{answer}");

        // A client without the grant.
        let answer = node_one(
            &op,
            "exchange",
            &[
                ("CLIENT_ID", "cli".to_string()),
                ("SUBJECT_TOKEN", subject),
                ("AUDIENCES", CATALOG.into()),
            ],
        )
        .await;
        assert_eq!(answer["error"], "unauthorized_client", "{answer}");

        let d = op.discovery().await;
        let grants = d["grant_types_supported"].to_string();
        assert!(
            grants.contains("urn:ietf:params:oauth:grant-type:token-exchange"),
            "{grants}"
        );
    }
);

/// A provider with an Okta connector (the mock's okta persona upstream) whose tokens the
/// `cli-exchange` client may exchange, as Dex's connectors allow.
async fn with_upstream(backend: Backend) -> Option<(Op, String)> {
    let upstream = oidc_bridge::testkit::MockIdp::builder()
        .host("localhost")
        .config_yaml(
            "mock:\n  issuers:\n    - id: okta\n      persona: okta\n      users:\n        - { username: jane@example.com, email: jane@example.com, groups: [Engineering, Everyone] }\n",
        )
        .start()
        .await
        .expect("upstream");
    let okta = upstream.issuer_of("okta").expect("okta").to_string();
    // The upstream runs until the test process ends.
    std::mem::forget(upstream);
    let yaml = format!(
        r#"
clients:
  - id: cli-exchange
    secret: cli-exchange-secret-0123
    grant_types: [urn:ietf:params:oauth:grant-type:token-exchange]
    token_exchange:
      connectors: [okta]
      subject_token_types: [urn:ietf:params:oauth:token-type:id_token, urn:ietf:params:oauth:token-type:access_token]
      audiences: [{CATALOG}]
connectors:
  - id: okta
    type: okta
    issuer: {okta}
    client_id: mock-client
    client_secret: mock-secret
    groups:
      exclude: ["^everyone$"]
"#
    );
    Some((Op::start_config(backend, &yaml).await?, okta))
}

/// A token the upstream mints for jane, issued to the connector's client.
async fn upstream_tokens(okta: &str, extra: Value) -> Value {
    let mut body = json!({"sub": "jane@example.com", "groups": ["Engineering", "Everyone"], "scope": "openid profile email groups"});
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    let (status, t) = conformance::post_json(&format!("{okta}/mock/tokens"), body).await;
    assert_eq!(status, 200, "{t}");
    t
}

async fn upstream_exchange(backend: Backend) {
    let Some((op, okta)) = with_upstream(backend).await else {
        return;
    };
    let minted = upstream_tokens(&okta, json!({})).await;
    let id_token = minted["id_token"].as_str().expect("upstream id_token");
    let env = |token: &str, kind: &str, extra: &[(&'static str, &str)]| {
        let mut env = vec![
            ("CLIENT_ID", "cli-exchange".to_string()),
            ("CLIENT_SECRET", "cli-exchange-secret-0123".to_string()),
            ("SUBJECT_TOKEN", token.to_string()),
            (
                "SUBJECT_TOKEN_TYPE",
                format!("urn:ietf:params:oauth:token-type:{kind}"),
            ),
            ("CONNECTOR_ID", "okta".to_string()),
        ];
        env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        env
    };
    // An upstream ID token for this provider's ID token (kubectl's way through Dex).
    let answer = node_one(
        &op,
        "exchange",
        &env(
            id_token,
            "id_token",
            &[
                (
                    "REQUESTED_TOKEN_TYPE",
                    "urn:ietf:params:oauth:token-type:id_token",
                ),
                ("SCOPE", "openid groups"),
            ],
        ),
    )
    .await;
    assert_eq!(answer["ok"], true, "{answer}");
    let r = &answer["response"];
    assert_eq!(
        r["issued_token_type"],
        "urn:ietf:params:oauth:token-type:id_token"
    );
    assert_eq!(r["token_type"], "N_A");
    let ours = conformance::jwt_claims(r["access_token"].as_str().expect("token"));
    assert_eq!(ours["iss"], op.issuer.as_str());
    assert_eq!(ours["aud"], "cli-exchange");
    assert_eq!(
        ours["groups"],
        json!(["engineering"]),
        "the connector's group pipeline"
    );
    let sub = ours["sub"].as_str().expect("sub").to_string();
    let upstream = conformance::jwt_claims(id_token);
    let signed_in = upstream.get("auth_time").unwrap_or(&upstream["iat"]);
    assert_eq!(
        &ours["auth_time"], signed_in,
        "when the person signed in upstream"
    );

    // An access token for the catalog's audience, from the same ID token: the same person.
    let answer = node_one(
        &op,
        "exchange",
        &env(id_token, "id_token", &[("AUDIENCES", CATALOG)]),
    )
    .await;
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(
        answer["response"]["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert_eq!(answer["access_claims"]["aud"], CATALOG);
    assert_eq!(answer["access_claims"]["sub"], sub.as_str());

    // An upstream access token is refused: userinfo would vouch for any app's.
    let access = minted["access_token"]
        .as_str()
        .expect("upstream access_token");
    let answer = node_one(&op, "exchange", &env(access, "access_token", &[])).await;
    assert_eq!(answer["error"], "invalid_request", "{answer}");

    // Refusals: an expired upstream token, a connector the client may not use, a target
    // outside its audiences.
    let expired = upstream_tokens(&okta, json!({"defect": "expired"})).await;
    let stale = expired["id_token"].as_str().expect("id_token");
    for (case, env, error) in [
        (
            "an expired upstream token",
            env(stale, "id_token", &[]),
            "invalid_request",
        ),
        (
            "another connector",
            {
                let mut e = env(id_token, "id_token", &[]);
                e[4].1 = "azure".into();
                e
            },
            "invalid_request",
        ),
        (
            "a target outside its audiences",
            env(id_token, "id_token", &[("AUDIENCES", ORDERS)]),
            "invalid_target",
        ),
    ] {
        let answer = node_one(&op, "exchange", &env).await;
        assert_eq!(answer["error"], error, "{case}: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_token_is_exchanged_through_its_connector_sqlite() {
    upstream_exchange(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_token_is_exchanged_through_its_connector_postgres() {
    upstream_exchange(Backend::Postgres).await;
}
