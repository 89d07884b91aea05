//! H2 (account takeover by e-mail linking), M4 (group spoofing), L7 (unbounded upstream
//! answers, Graph paging to any host) and L10 (no upstream re-check), against mock
//! upstreams run in the test.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use oidc_bridge::testkit::MockIdp;

use crate::common::*;

const TENANT: &str = "11111111-2222-3333-4444-555555555555";

async fn upstream(extra: &str) -> MockIdp {
    MockIdp::builder()
        .host("localhost")
        .config_yaml(&format!(
            r#"
mock:
  issuers:
    - {{ id: okta, persona: okta }}
    - {{ id: azure, persona: azure, tenant: {TENANT}, overage_limit: 3 }}
{extra}
"#
        ))
        .start()
        .await
        .expect("upstream")
}

fn graph_of(up: &MockIdp) -> String {
    up.issuer_of("azure")
        .expect("azure")
        .replace(&format!("/{TENANT}/v2.0"), "/graph")
}

/// The review's `fed` set-up, with each verified domain owned by one connector.
fn fed_config(up: &MockIdp, extra: &str) -> String {
    let okta = up.issuer_of("okta").expect("okta");
    let azure = up.issuer_of("azure").expect("azure");
    config(&format!(
        r#"
connectors:
  - {{ id: okta, type: oidc, issuer: "{okta}", client_id: mock-client, client_secret: mock-secret,
      link_by_email: true, verified_email_domains: [contoso.com] }}
  - {{ id: selfservice, type: oidc, issuer: "{root}", client_id: mock-client, client_secret: mock-secret,
      get_userinfo: true, link_by_email: true, verified_email_domains: [selfservice.example],
      groups: {{ prefix: self }} }}
  - {{ id: entra, type: azure, issuer: "{azure}", graph_url: "{graph}", client_id: mock-client,
      client_secret: mock-secret, get_userinfo: true, link_by_email: true,
      verified_email_domains: [fabrikam.com], groups: {{ prefix: entra }} }}
{extra}
"#,
        root = up.issuer(),
        graph = graph_of(up),
    ))
}

/// One federated login through `connector`, optionally with the identity the upstream
/// signs in next; the bridge's tokens and userinfo.
async fn fed_login(
    op: &Op,
    up_issuer: &str,
    connector: &str,
    hint: &str,
    queued: Option<Value>,
) -> (Value, Value) {
    if let Some(mut q) = queued {
        q["login_hint"] = json!(hint);
        let resp = http_client()
            .post(format!("{up_issuer}/mock/next-login"))
            .json(&q)
            .send()
            .await
            .expect("queue");
        assert_eq!(resp.status(), 201);
    }
    let b = Browser::new_following(redirect_of("web2"));
    let t = login(
        op,
        &b,
        "web2",
        "openid profile email groups",
        &[("connector_id", connector), ("login_hint", hint)],
    )
    .await;
    let (status, ui) = op.userinfo(&s(&t, "access_token")).await;
    assert_eq!(status, 200, "{ui}");
    (jwt_claims(&s(&t, "id_token")), ui)
}

// H2: an address the upstream calls unverified, or one from a connector that is not the
// domain's authority, gave the attacker the victim's `sub` and rewrote the victim's claims.
crate::per_backend!(h2_linking_by_email_cannot_take_an_account_over, |backend| {
    let up = upstream("").await;
    let op = Op::start_config(backend, &fed_config(&up, ""))
        .await
        .expect("bridge");
    let okta = up.issuer_of("okta").expect("okta");
    let azure = up.issuer_of("azure").expect("azure");
    let (victim, victim_ui) = fed_login(&op, okta, "okta", "victim@contoso.com", None).await;
    let by_address = oidc_bridge::secret::sha256_b64url(b"email\nvictim@contoso.com");
    assert_eq!(
        victim["sub"],
        by_address.as_str(),
        "the domain's authority links"
    );

    for verified in [json!(false), json!(true), Value::Null] {
        let (attacker, ui) = fed_login(
            &op,
            up.issuer(),
            "selfservice",
            "mallory",
            Some(json!({"claims": {"email": "victim@contoso.com", "email_verified": verified}, "groups": ["evil"]})),
        )
        .await;
        assert_ne!(attacker["sub"], victim["sub"], "email_verified {verified}");
        if verified == json!(false) {
            assert_eq!(ui["email_verified"], false, "never upgraded");
        }
    }
    // Entra's `email`, even with xms_edov, from a tenant that does not own contoso.com.
    let (attacker, ui) = fed_login(
        &op,
        azure,
        "entra",
        "mallory@fabrikam.com",
        Some(json!({"claims": {"email": "victim@contoso.com", "xms_edov": true}, "groups": ["Platform Team"]})),
    )
    .await;
    assert_ne!(attacker["sub"], victim["sub"]);
    assert_eq!(ui["email_verified"], false);
    // The victim's own token still reads the victim's claims.
    let again = op
        .state
        .storage
        .get_identity(&s(&victim, "sub"))
        .await
        .expect("get");
    let again: Value = serde_json::from_str(&again.expect("stored")).expect("json");
    assert_eq!(
        again["extra"]["upstream"]["idp"],
        victim_ui["upstream"]["idp"]
    );
    assert_eq!(again["email"], "victim@contoso.com");

    // Two connectors verifying one domain is refused outright.
    let both = fed_config(&up, "").replace("[selfservice.example]", "[contoso.com]");
    let both = format!(
        "{both}\nsigning:\n  encryption_key: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
    );
    let err = oidc_bridge::config::from_yaml_str(&both, &|_| None).expect_err("refused");
    assert!(
        err.0
            .iter()
            .any(|p| p.path == "connectors[1].verified_email_domains[0]"),
        "{err}"
    );
});

/// M4: a Microsoft 365 group any user can create and call "Platform Team" became the
/// `platform-team` of Backstage. Graph display names are now used only on request.
#[tokio::test]
async fn m4_graph_display_names_are_not_trusted_by_default() {
    let up = upstream("").await;
    let azure = up.issuer_of("azure").expect("azure");
    let op = Op::start_config(Backend::Sqlite, &fed_config(&up, ""))
        .await
        .expect("bridge");
    let groups = || Some(json!({"groups": ["Platform Team"]}));
    let (id, _) = fed_login(&op, azure, "entra", "m@fabrikam.com", groups()).await;
    assert_eq!(
        id["groups"],
        json!([]),
        "an unnamed object id is dropped (unmapped: drop)"
    );

    let guid = oidc_bridge::mock::persona::Persona::Azure {
        tenant: TENANT.into(),
        overage_limit: 3,
        graph_url: String::new(),
    }
    .group_id("Platform Team");
    let mapped = fed_config(&up, "").replace(
        "groups: { prefix: entra }",
        &format!("groups: {{ prefix: entra, map: {{ \"{guid}\": platform-team }} }}"),
    );
    let op = Op::start_config(Backend::Sqlite, &mapped)
        .await
        .expect("bridge");
    let (id, _) = fed_login(&op, azure, "entra", "m@fabrikam.com", groups()).await;
    assert_eq!(
        id["groups"],
        json!(["entra:platform-team"]),
        "the map names it"
    );

    let trusting = fed_config(&up, "").replace(
        "groups: { prefix: entra }",
        "groups: { prefix: entra, trust_display_names: true }",
    );
    let op = Op::start_config(Backend::Sqlite, &trusting)
        .await
        .expect("bridge");
    let (id, _) = fed_login(&op, azure, "entra", "m@fabrikam.com", groups()).await;
    assert_eq!(
        id["groups"],
        json!(["entra:platform-team"]),
        "named by Graph on request"
    );
}

/// M4: connectors sharing one unprefixed namespace, and trusted display names, are
/// flagged by `check-config`.
#[test]
fn m4_check_config_warns_about_shared_group_namespaces_and_display_names() {
    let yaml = |a: &str, b: &str| {
        format!(
            r#"
connectors:
  - {{ id: one, type: oidc, issuer: "https://one.example", client_id: a, client_secret: b, groups: {a} }}
  - {{ id: two, type: azure, tenant: {TENANT}, client_id: a, client_secret: b, groups: {b} }}
"#
        )
    };
    let load = |a: &str, b: &str| {
        oidc_bridge::config::from_yaml_str(&yaml(a, b), &|_| None).expect("valid")
    };
    let c = load("{}", "{ trust_display_names: true }");
    let text: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        text.iter()
            .any(|w| w.contains("can emit the same group names")),
        "{text:?}"
    );
    assert!(
        text.iter().any(|w| w.contains("Graph displayName")),
        "{text:?}"
    );
    let c = load("{ shared_namespace: true }", "{ shared_namespace: true }");
    assert!(c.warnings.is_empty(), "shared on purpose: {:?}", c.warnings);
    let c = load("{ prefix: one }", "{ prefix: two }");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

/// A loopback server answering every request with `body` (as JSON), counting requests.
async fn fake(body: impl Fn(&str) -> String + Send + Sync + 'static) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let hits = Arc::new(AtomicUsize::new(0));
    let (h, b) = (hits.clone(), Arc::new(body));
    let base2 = base.clone();
    let app = axum::Router::new().fallback(move || {
        let (h, b, base) = (h.clone(), b.clone(), base2.clone());
        async move {
            h.fetch_add(1, Ordering::SeqCst);
            ([("content-type", "application/json")], b(&base))
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, hits)
}

/// L7: a 400 MB discovery document took the bridge to 1 GB. Upstream answers are now read
/// through a cap and refused past it.
#[tokio::test]
async fn l7_an_oversized_upstream_answer_is_refused() {
    let (evil, _) = fake(|base| {
        json!({
            "issuer": base, "authorization_endpoint": format!("{base}/a"),
            "token_endpoint": format!("{base}/t"), "jwks_uri": format!("{base}/j"),
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "padding": "x".repeat(3 * 1024 * 1024),
        })
        .to_string()
    })
    .await;
    let yaml = config(&format!(
        "connectors:\n  - {{ id: evil, type: oidc, issuer: \"{evil}\", client_id: a, client_secret: b }}\n"
    ));
    let op = Op::start_config(Backend::Sqlite, &yaml)
        .await
        .expect("bridge");
    let (url, _) = authorize_url(&op, "web2", "openid", &[("connector_id", "evil")]);
    let resp = Browser::new().request("GET", &url, None).await;
    assert_eq!(
        resp.status, 502,
        "refused, not followed: {:?}",
        resp.location
    );
    assert!(resp.body.contains("cannot be reached"), "{}", resp.body);
}

/// L7: Graph's `@odata.nextLink` was followed to any host, with the Graph bearer token.
#[tokio::test]
async fn l7_graph_paging_never_leaves_graph_url() {
    let (elsewhere, stolen) = fake(|_| json!({"value": []}).to_string()).await;
    let next = format!("{elsewhere}/v1.0/steal?$skiptoken=1");
    let (graph, _) = fake(move |_| json!({"value": [], "@odata.nextLink": next}).to_string()).await;
    let up = upstream("").await;
    let yaml = fed_config(&up, "").replace(&graph_of(&up), &graph);
    let op = Op::start_config(Backend::Sqlite, &yaml)
        .await
        .expect("bridge");
    let azure = up.issuer_of("azure").expect("azure");
    // More groups than the persona's overage limit: the bridge must ask Graph.
    let q = json!({"login_hint": "m@fabrikam.com", "groups": ["a", "b", "c", "d", "e"]});
    http_client()
        .post(format!("{azure}/mock/next-login"))
        .json(&q)
        .send()
        .await
        .expect("queue");
    let (url, _) = authorize_url(
        &op,
        "web2",
        "openid",
        &[("connector_id", "entra"), ("login_hint", "m@fabrikam.com")],
    );
    match Browser::new_following(redirect_of("web2"))
        .authorize(&url)
        .await
    {
        Outcome::Page(502, body) => assert!(body.contains("could not be verified"), "{body}"),
        other => panic!("expected a refusal page: {other:?}"),
    }
    assert_eq!(
        stolen.load(Ordering::SeqCst),
        0,
        "the bearer token went nowhere else"
    );
}

// L10: an upstream that gave no refresh token was never asked again; a person disabled
// there kept refreshing here for the family's 30 days.
crate::per_backend!(
    l10_without_an_upstream_refresh_token_a_stale_identity_must_sign_in_again,
    |backend| {
        let up = MockIdp::builder()
        .host("localhost")
        .config_yaml(
            r#"
clients:
  - { id: norefresh, secret: norefresh-secret-0123, redirect_uris: ["http://127.0.0.1/callback/plain"],
      grant_types: [authorization_code], skip_consent: true }
"#,
        )
        .start()
        .await
        .expect("upstream");
        let yaml = config(&format!(
            "connectors:\n  - {{ id: plain, type: oidc, issuer: \"{}\", client_id: norefresh, client_secret: norefresh-secret-0123 }}\n",
            up.issuer()
        ));
        let op = Op::start_config(backend, &yaml).await.expect("bridge");
        let t = login(
            &op,
            &Browser::new_following(redirect_of("web2")),
            "web2",
            "openid",
            &[("connector_id", "plain"), ("login_hint", "dana")],
        )
        .await;
        let (status, fresh) = refresh(&op, "web2", &s(&t, "refresh_token")).await;
        assert_eq!(status, 200, "still within groups_max_staleness: {fresh}");
        op.clock.advance(16 * 60);
        let (status, body) = refresh(&op, "web2", &s(&fresh, "refresh_token")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "{body}"
        );
    }
);

/// Two tabs refreshing a stale federated identity at once presented the upstream refresh
/// token twice; an upstream that rotates (and has no grace window) took the second for
/// theft, and the bridge then revoked its own family. One upstream refresh per family at a
/// time: the second tab gets the first one's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_of_a_stale_federated_identity_ask_upstream_once() {
    let up = MockIdp::builder()
        .host("localhost")
        .config_yaml("tokens: { refresh_reuse_grace: 0s }\n")
        .start()
        .await
        .expect("upstream");
    let yaml = config(&format!(
        "connectors:\n  - {{ id: plain, type: oidc, issuer: \"{}\", client_id: mock-client, client_secret: mock-secret, groups_max_staleness: 1s }}\n",
        up.issuer()
    ));
    let op = Arc::new(
        Op::start_config(Backend::Sqlite, &yaml)
            .await
            .expect("bridge"),
    );
    let t = login(
        &op,
        &Browser::new_following(redirect_of("web2")),
        "web2",
        "openid",
        &[("connector_id", "plain"), ("login_hint", "erin")],
    )
    .await;
    op.clock.advance(5);
    let rt = s(&t, "refresh_token");
    let mut tabs = Vec::new();
    for _ in 0..2 {
        let (op, rt) = (op.clone(), rt.clone());
        tabs.push(tokio::spawn(async move { refresh(&op, "web2", &rt).await }));
    }
    let mut successors = Vec::new();
    for t in tabs {
        let (status, body) = t.await.expect("join");
        assert_eq!(status, 200, "{body}");
        successors.push(s(&body, "refresh_token"));
    }
    assert_eq!(successors[0], successors[1], "one refresh, one successor");
    let (status, body) = refresh(&op, "web2", &successors[0]).await;
    assert_eq!(status, 200, "the family is alive: {body}");
}
