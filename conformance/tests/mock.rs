//! Mock IdP mode, driven the way a downstream crate would: `oidc_bridge::testkit` starts it
//! in-process, and the control API is exercised over real HTTP.

use conformance::app::{Spawn, TestApp};
use conformance::post_json as post;
use conformance::{Browser, Outcome, http_client, jwt_claims, jwt_header};
use oidc_bridge::testkit::{Defect, Effect, MintRequest, MockIdp, Rule};
use serde_json::{Value, json};

async fn form(url: &str, auth: (&str, &str), fields: &[(&str, &str)]) -> (u16, Value) {
    let resp = http_client()
        .post(url)
        .basic_auth(auth.0, Some(auth.1))
        .form(fields)
        .send()
        .await
        .expect("POST");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn userinfo(idp_issuer: &str, token: &str) -> u16 {
    http_client()
        .get(format!("{idp_issuer}/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET")
        .status()
        .as_u16()
}

const CLIENT: (&str, &str) = ("mock-client", "mock-secret");

#[tokio::test]
async fn a_minted_30s_token_is_inactive_and_refused_once_the_clock_moves_31s() {
    let idp = MockIdp::builder()
        .user("alice", &["qa"])
        .start()
        .await
        .expect("start");
    let iss = idp.issuer().to_string();
    let (status, t) = post(
        &format!("{iss}/mock/tokens"),
        json!({"sub": "alice", "expires_in": 30}),
    )
    .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["expires_in"], 30);
    let at = t["access_token"].as_str().expect("access_token");
    let (_, info) = form(&format!("{iss}/introspect"), CLIENT, &[("token", at)]).await;
    assert_eq!(info["active"], true);
    assert_eq!(userinfo(&iss, at).await, 200);
    let (status, clock) = post(&format!("{iss}/mock/clock"), json!({"offset_seconds": 31})).await;
    assert_eq!(status, 200);
    assert_eq!(clock["offset_seconds"], 31);
    let (_, info) = form(&format!("{iss}/introspect"), CLIENT, &[("token", at)]).await;
    assert_eq!(info, json!({"active": false}));
    assert_eq!(userinfo(&iss, at).await, 401);
}

#[tokio::test]
async fn a_refresh_after_the_absolute_lifetime_fails_with_invalid_grant() {
    let idp = MockIdp::builder().start().await.expect("start");
    let iss = idp.issuer().to_string();
    let resp = http_client()
        .put(format!("{iss}/mock/clients/mock-client/lifetimes"))
        .json(
            &json!({"access_token": 240, "refresh_token_idle": 600, "refresh_token_absolute": 900}),
        )
        .send()
        .await
        .expect("PUT");
    assert_eq!(resp.status(), 200);
    let t = idp
        .mint(MintRequest {
            sub: Some("bob".into()),
            ..Default::default()
        })
        .await
        .expect("mint");
    assert_eq!(t["expires_in"], 240, "the new per-client lifetime applies");
    let mut rt = t["refresh_token"].as_str().expect("refresh").to_string();
    for _ in 0..2 {
        idp.clock().advance(400);
        let (status, body) = form(
            &format!("{iss}/token"),
            CLIENT,
            &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        rt = body["refresh_token"].as_str().expect("rotated").to_string();
    }
    idp.clock().advance(200);
    let (status, body) = form(
        &format!("{iss}/token"),
        CLIENT,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "past 900 s absolute"
    );
}

#[tokio::test]
async fn short_access_lifetimes_are_refused_unless_forced_because_backstage_would_refresh_always() {
    let idp = MockIdp::builder().start().await.expect("start");
    let url = format!("{}/mock/clients/mock-client/lifetimes", idp.issuer());
    let resp = http_client()
        .put(&url)
        .json(&json!({"access_token": 60}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.expect("json");
    assert!(
        body["error_description"]
            .as_str()
            .expect("text")
            .contains("Backstage"),
        "{body}"
    );
    let resp = http_client()
        .put(&url)
        .json(&json!({"access_token": 60, "force": true}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(resp.status(), 200);
    let resp = http_client()
        .put(format!("{}/mock/clients/nobody/lifetimes", idp.issuer()))
        .json(&json!({"access_token": 300}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn a_one_shot_503_fault_on_the_token_endpoint_hits_once() {
    let idp = MockIdp::builder().start().await.expect("start");
    let iss = idp.issuer().to_string();
    let (status, rule) = post(
        &format!("{iss}/mock/faults"),
        json!({"endpoint": "token", "grant_type": "client_credentials", "effect": {"status": {"status": 503}}, "times": 1}),
    )
    .await;
    assert_eq!(status, 201, "{rule}");
    let cc = [("grant_type", "client_credentials")];
    assert_eq!(form(&format!("{iss}/token"), CLIENT, &cc).await.0, 503);
    assert_eq!(form(&format!("{iss}/token"), CLIENT, &cc).await.0, 200);
    let rules: Value = http_client()
        .get(format!("{iss}/mock/faults"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(rules, json!([]), "a spent rule is gone");
}

#[tokio::test]
async fn faults_can_be_oauth_errors_delays_or_dropped_connections_and_are_cleared() {
    let idp = MockIdp::builder().start().await.expect("start");
    let iss = idp.issuer().to_string();
    idp.inject(Rule {
        id: String::new(),
        endpoint: "token".into(),
        client_id: Some("mock-client".into()),
        grant_type: None,
        effect: Effect::OauthError {
            error: "temporarily_unavailable".into(),
            error_description: None,
            status: Some(503),
        },
        times: None,
        hits: 0,
    })
    .expect("rule");
    for _ in 0..2 {
        let (status, body) = form(
            &format!("{iss}/token"),
            CLIENT,
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (503, Some("temporarily_unavailable"))
        );
    }
    let resp = http_client()
        .delete(format!("{iss}/mock/faults"))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(resp.status(), 204);
    assert_eq!(
        form(
            &format!("{iss}/token"),
            CLIENT,
            &[("grant_type", "client_credentials")]
        )
        .await
        .0,
        200
    );

    post(
        &format!("{iss}/mock/faults"),
        json!({"endpoint": "jwks", "effect": "drop", "times": 1}),
    )
    .await;
    let dropped = http_client()
        .get(format!("{iss}/jwks"))
        .send()
        .await
        .and_then(|r| r.error_for_status());
    let failed = match dropped {
        Err(_) => true,
        Ok(r) => r.bytes().await.is_err(),
    };
    assert!(failed, "the connection was dropped");
    assert_eq!(
        http_client()
            .get(format!("{iss}/jwks"))
            .send()
            .await
            .expect("GET")
            .status(),
        200
    );

    let (status, _) = post(
        &format!("{iss}/mock/faults"),
        json!({"endpoint": "userinfo", "effect": {"delay_ms": 50}, "times": 1}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, body) = post(
        &format!("{iss}/mock/faults"),
        json!({"endpoint": "nowhere", "effect": "drop"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn a_rotated_key_shows_up_in_jwks_and_signs_at_once_with_publish_ahead_0() {
    let idp = MockIdp::builder().start().await.expect("start");
    let iss = idp.issuer().to_string();
    let before = idp.mint(MintRequest::default()).await.expect("mint");
    let (status, body) = post(
        &format!("{iss}/mock/keys/rotate"),
        json!({"publish_ahead": 0}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let kid = body["kid"].as_str().expect("kid");
    let jwks: Value = http_client()
        .get(format!("{iss}/jwks"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert!(kids.contains(&kid), "{kids:?}");
    assert!(
        kids.contains(
            &jwt_header(before["id_token"].as_str().expect("id"))
                .get("kid")
                .and_then(Value::as_str)
                .expect("old kid")
        )
    );
    let after = idp.mint(MintRequest::default()).await.expect("mint");
    assert_eq!(
        jwt_header(after["id_token"].as_str().expect("id"))["kid"],
        kid
    );
}

#[tokio::test]
async fn every_defect_makes_the_token_it_says() {
    let idp = MockIdp::builder().start().await.expect("start");
    let iss = idp.issuer().to_string();
    let jwks: Value = http_client()
        .get(format!("{iss}/jwks"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    let kids: Vec<String> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_string())
        .collect();
    let now = idp.clock().current();
    for defect in [
        Defect::Expired,
        Defect::NotYetValid,
        Defect::WrongIssuer,
        Defect::WrongAudience,
        Defect::UnknownKid,
        Defect::BadSignature,
        Defect::AlgNone,
    ] {
        let t = idp
            .mint(MintRequest {
                defect: Some(defect),
                ..Default::default()
            })
            .await
            .expect("mint");
        let id = t["id_token"].as_str().expect("id_token");
        let (h, c) = (jwt_header(id), jwt_claims(id));
        match defect {
            Defect::Expired => assert!(c["exp"].as_i64().expect("exp") < now),
            Defect::NotYetValid => assert!(c["nbf"].as_i64().expect("nbf") > now),
            Defect::WrongIssuer => assert_ne!(c["iss"], iss.as_str()),
            Defect::WrongAudience => assert_ne!(c["aud"], "mock-client"),
            Defect::UnknownKid => {
                assert!(!kids.contains(&h["kid"].as_str().expect("kid").to_string()))
            }
            Defect::BadSignature => {
                let (status, info) = form(
                    &format!("{iss}/introspect"),
                    CLIENT,
                    &[("token", t["access_token"].as_str().expect("at"))],
                )
                .await;
                assert_eq!((status, info["active"].as_bool()), (200, Some(false)));
            }
            Defect::AlgNone => {
                assert_eq!(h["alg"], "none");
                assert!(id.ends_with('.'));
            }
        }
        // None of them is accepted by the issuer itself.
        assert_eq!(
            userinfo(&iss, t["access_token"].as_str().expect("at")).await,
            401,
            "{defect:?}"
        );
    }
    let (status, body) = post(&format!("{iss}/mock/tokens"), json!({"defect": "melted"})).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn the_clock_can_be_frozen_and_read() {
    let idp = MockIdp::builder().start().await.expect("start");
    let iss = idp.issuer().to_string();
    let (status, c) = post(
        &format!("{iss}/mock/clock"),
        json!({"frozen_at": "2030-01-02T03:04:05Z"}),
    )
    .await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["now"], "2030-01-02T03:04:05Z");
    let t = idp.mint(MintRequest::default()).await.expect("mint");
    assert_eq!(
        jwt_claims(t["id_token"].as_str().expect("id"))["iat"],
        1_893_553_445
    );
    let c: Value = http_client()
        .get(format!("{iss}/mock/clock"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(c["frozen_at"], "2030-01-02T03:04:05Z");
    let (status, _) = post(
        &format!("{iss}/mock/clock"),
        json!({"frozen_at": "yesterday"}),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn headless_login_with_login_hint_and_queued_identities() {
    let idp = MockIdp::builder()
        .user("carol", &["ops"])
        .start()
        .await
        .expect("start");
    let iss = idp.issuer().to_string();
    let b = Browser::new();
    b.expect_no_login();
    let url = format!(
        "{iss}/authorize?client_id=mock-client&response_type=code&scope=openid%20groups&redirect_uri=http://localhost:3000/cb&state=s&login_hint=carol"
    );
    let code = b.authorize(&url).await.code();
    let (_, t) = form(
        &format!("{iss}/token"),
        CLIENT,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://localhost:3000/cb"),
        ],
    )
    .await;
    let c = jwt_claims(t["id_token"].as_str().expect("id_token"));
    assert_eq!(c["sub"], "carol");
    assert_eq!(
        c["groups"],
        json!(["ops"]),
        "configured users have fixed claims"
    );

    let (status, _) = post(&format!("{iss}/mock/next-login"), json!({"sub": "queued-1", "groups": ["x"], "claims": {"department": "QA"}, "client_id": "mock-client"})).await;
    assert_eq!(status, 201);
    let fresh = Browser::new();
    fresh.expect_no_login();
    let url = format!(
        "{iss}/authorize?client_id=mock-client&response_type=code&scope=openid%20groups&redirect_uri=http://localhost:3000/cb&state=s"
    );
    let code = fresh.authorize(&url).await.code();
    let (_, t) = form(
        &format!("{iss}/token"),
        CLIENT,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://localhost:3000/cb"),
        ],
    )
    .await;
    let c = jwt_claims(t["id_token"].as_str().expect("id_token"));
    assert_eq!(c["sub"], "queued-1");
    assert_eq!(c["groups"], json!(["x"]));
    let ui: Value = http_client()
        .get(format!("{iss}/userinfo"))
        .bearer_auth(t["access_token"].as_str().expect("at"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(ui["sub"], "queued-1");

    // Without a hint or a queued identity, the mock login page: any username, groups, claims.
    let page = Browser::new();
    page.expect_no_login();
    match page.authorize(&url).await {
        Outcome::Page(200, body) => {
            assert!(body.contains("Mock identity provider"), "{body}");
            assert!(body.contains("name=\"groups\"") && body.contains("name=\"claims\""));
        }
        other => panic!("expected the login page, got {other:?}"),
    }
    let b = Browser::new();
    b.set_login("dave", "ignored");
    assert!(matches!(b.authorize(&url).await, Outcome::Callback(_)));
}

#[tokio::test]
async fn requests_are_recorded_with_secrets_redacted_and_can_be_cleared() {
    let idp = MockIdp::builder().start().await.expect("start");
    let iss = idp.issuer().to_string();
    form(
        &format!("{iss}/token"),
        CLIENT,
        &[
            ("grant_type", "client_credentials"),
            ("client_secret", "leak-me"),
        ],
    )
    .await;
    let list: Value = http_client()
        .get(format!(
            "{iss}/mock/requests?endpoint=token&client_id=mock-client"
        ))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    let r = &list[0];
    assert_eq!(r["method"], "POST");
    assert_eq!(r["params"]["grant_type"], "client_credentials");
    assert_eq!(r["params"]["client_secret"], "[redacted]");
    assert!(!list.to_string().contains("leak-me"));
    assert_eq!(
        http_client()
            .delete(format!("{iss}/mock/requests"))
            .send()
            .await
            .expect("DELETE")
            .status(),
        204
    );
    let list: Value = http_client()
        .get(format!("{iss}/mock/requests?endpoint=token"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn sessions_can_be_revoked_and_reset_restores_everything() {
    let idp = MockIdp::builder().start().await.expect("start");
    let iss = idp.issuer().to_string();
    let b = Browser::new();
    let url = format!(
        "{iss}/authorize?client_id=mock-client&response_type=code&scope=openid&redirect_uri=http://localhost:3000/cb&login_hint=erin"
    );
    b.authorize(&url).await.code();
    let silent = format!(
        "{iss}/authorize?client_id=mock-client&response_type=code&scope=openid&redirect_uri=http://localhost:3000/cb&prompt=none"
    );
    assert!(
        b.authorize(&silent).await.callback().contains_key("code"),
        "session lives"
    );
    let (status, body) = post(
        &format!("{iss}/mock/sessions/revoke"),
        json!({"sub": "erin"}),
    )
    .await;
    assert_eq!((status, body["revoked"].as_u64()), (200, Some(1)));
    assert_eq!(
        b.authorize(&silent).await.callback()["error"],
        "login_required"
    );

    post(&format!("{iss}/mock/clock"), json!({"offset_seconds": 999})).await;
    post(
        &format!("{iss}/mock/faults"),
        json!({"endpoint": "jwks", "effect": {"status": {"status": 500}}}),
    )
    .await;
    let resp = http_client()
        .post(format!("{iss}/mock/reset"))
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 204);
    assert_eq!(idp.clock().offset(), 0);
    assert_eq!(
        http_client()
            .get(format!("{iss}/jwks"))
            .send()
            .await
            .expect("GET")
            .status(),
        200
    );
}

const PERSONAS: &str = r#"
clients:
  - id: second-app
    secret: second-app-secret-0123
    redirect_uris: [http://localhost:4000/cb]
    grant_types: [authorization_code, refresh_token]
    skip_consent: true
    require_pkce: false
mock:
  issuers:
    - id: okta
      persona: okta
    - id: azure
      persona: azure
      tenant: 72f988bf-86f1-41af-91ab-2d7cd011db47
      users:
        - username: big@contoso.com
          name: Big Groups
          groups: [GROUPS]
        - username: small@contoso.com
          groups: [Engineering, Platform]
"#;

async fn code_flow(issuer: &str, client: (&str, &str), redirect: &str, hint: &str) -> Value {
    let b = Browser::new();
    b.expect_no_login();
    let url = format!(
        "{issuer}/authorize?client_id={}&response_type=code&scope=openid%20profile%20email%20groups&redirect_uri={redirect}&login_hint={hint}",
        client.0
    );
    let code = b.authorize(&url).await.code();
    let (status, t) = form(
        &format!("{issuer}/token"),
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
        ],
    )
    .await;
    assert_eq!(status, 200, "{t}");
    t
}

fn persona_idp() -> oidc_bridge::testkit::MockIdpBuilder {
    let groups: Vec<String> = (0..250).map(|i| format!("group-{i:03}")).collect();
    MockIdp::builder().config_yaml(&PERSONAS.replace("GROUPS", &groups.join(", ")))
}

#[tokio::test]
async fn the_okta_persona_looks_like_okta() {
    let idp = persona_idp().start().await.expect("start");
    let iss = idp.issuer_of("okta").expect("okta").to_string();
    assert!(iss.ends_with("/okta/oauth2/default"), "{iss}");
    let d: Value = http_client()
        .get(format!("{iss}/.well-known/openid-configuration"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(d["issuer"], iss.as_str());
    let t = code_flow(&iss, CLIENT, "http://localhost:3000/cb", "jane@example.com").await;
    let c = jwt_claims(t["id_token"].as_str().expect("id_token"));
    let sub = c["sub"].as_str().expect("sub");
    assert!(sub.starts_with("00u") && sub.len() == 20, "{sub}");
    assert_eq!(c["ver"], 1);
    assert!(c["idp"].as_str().expect("idp").starts_with("00o"));
    assert_eq!(c["preferred_username"], "jane@example.com");
    let a = jwt_claims(t["access_token"].as_str().expect("at"));
    assert_eq!(a["cid"], "mock-client");
    assert_eq!(a["uid"], sub);
    assert!(
        a["scp"]
            .as_array()
            .expect("scp")
            .iter()
            .any(|s| s == "groups")
    );
}

#[tokio::test]
async fn the_azure_persona_has_tid_oid_per_client_sub_and_guid_groups() {
    let idp = persona_idp().start().await.expect("start");
    let iss = idp.issuer_of("azure").expect("azure").to_string();
    assert!(
        iss.ends_with("/azure/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"),
        "{iss}"
    );
    let a = code_flow(
        &iss,
        CLIENT,
        "http://localhost:3000/cb",
        "small@contoso.com",
    )
    .await;
    let b = code_flow(
        &iss,
        ("second-app", "second-app-secret-0123"),
        "http://localhost:4000/cb",
        "small@contoso.com",
    )
    .await;
    let (ca, cb) = (
        jwt_claims(a["id_token"].as_str().expect("id")),
        jwt_claims(b["id_token"].as_str().expect("id")),
    );
    assert_eq!(ca["tid"], "72f988bf-86f1-41af-91ab-2d7cd011db47");
    assert_eq!(ca["ver"], "2.0");
    assert_eq!(ca["oid"], cb["oid"], "one user");
    assert_ne!(ca["sub"], cb["sub"], "a pairwise sub per client");
    assert_eq!(ca["preferred_username"], "small@contoso.com");
    let groups = ca["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 2);
    assert!(groups.iter().all(|g| {
        g.as_str()
            .is_some_and(|g| g.len() == 36 && g.matches('-').count() == 4)
    }));
    let ui: Value = http_client()
        .get(format!("{iss}/userinfo"))
        .bearer_auth(a["access_token"].as_str().expect("at"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(ui["sub"], ca["sub"], "userinfo sub matches the ID token");
}

#[tokio::test]
async fn an_azure_overage_users_250_groups_come_back_through_the_graph_like_endpoint() {
    let idp = persona_idp().start().await.expect("start");
    let iss = idp.issuer_of("azure").expect("azure").to_string();
    let t = code_flow(&iss, CLIENT, "http://localhost:3000/cb", "big@contoso.com").await;
    let c = jwt_claims(t["id_token"].as_str().expect("id_token"));
    assert!(c.get("groups").is_none(), "over the limit: no groups claim");
    assert_eq!(c["_claim_names"]["groups"], "src1");
    assert!(c["_claim_sources"]["src1"]["endpoint"].is_string());
    let graph = iss.replace("/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0", "/graph");
    let mut url = format!("{graph}/v1.0/me/transitiveMemberOf?$select=id,displayName");
    let mut names = Vec::new();
    let mut pages = 0;
    loop {
        let resp = http_client()
            .get(&url)
            .bearer_auth(t["access_token"].as_str().expect("at"))
            .send()
            .await
            .expect("GET");
        assert_eq!(resp.status(), 200);
        let page: Value = resp.json().await.expect("json");
        for g in page["value"].as_array().expect("value") {
            assert_eq!(g["@odata.type"], "#microsoft.graph.group");
            names.push(g["displayName"].as_str().expect("name").to_string());
        }
        pages += 1;
        match page["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_string(),
            None => break,
        }
    }
    assert_eq!(names.len(), 250);
    assert_eq!(pages, 3, "paged by 100");
    let unauth = http_client()
        .get(format!("{graph}/v1.0/me/transitiveMemberOf"))
        .send()
        .await
        .expect("GET");
    assert_eq!(unauth.status(), 401);
}

#[tokio::test]
async fn issuers_have_their_own_clocks_and_faults() {
    let idp = persona_idp().start().await.expect("start");
    let okta = idp.issuer_of("okta").expect("okta").to_string();
    post(
        &format!("{okta}/mock/faults"),
        json!({"endpoint": "discovery", "effect": {"status": {"status": 500}}}),
    )
    .await;
    let status = |u: String| async move {
        http_client()
            .get(u)
            .send()
            .await
            .expect("GET")
            .status()
            .as_u16()
    };
    assert_eq!(
        status(format!("{okta}/.well-known/openid-configuration")).await,
        500
    );
    assert_eq!(
        status(format!("{}/.well-known/openid-configuration", idp.issuer())).await,
        200
    );
    post(
        &format!("{okta}/mock/clock"),
        json!({"offset_seconds": 100}),
    )
    .await;
    assert_eq!(idp.clock().offset(), 0, "the root clock did not move");
}

#[tokio::test]
async fn serve_exposes_the_control_api_only_with_the_admin_token() {
    let app = TestApp::spawn_with(Spawn {
        yaml: "mock:\n  control_api: true\n  admin_token: staging-admin-token-123\n".into(),
        ..Spawn::default()
    })
    .await;
    let url = app.url("/mock/clock");
    assert_eq!(
        http_client().get(&url).send().await.expect("GET").status(),
        401
    );
    let ok = http_client()
        .get(&url)
        .bearer_auth("staging-admin-token-123")
        .send()
        .await
        .expect("GET");
    assert_eq!(ok.status(), 200);
    // Without the setting there is no control API at all.
    let app = TestApp::spawn_with(Spawn {
        yaml: "{}".into(),
        ..Spawn::default()
    })
    .await;
    let resp = http_client()
        .get(app.url("/mock/clock"))
        .bearer_auth("anything")
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 404);
}
