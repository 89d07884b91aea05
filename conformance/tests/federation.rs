//! The federation broker end to end, in one process: the bridge federates to Okta- and
//! Azure-shaped mock personas (on `localhost`, so their cookies stay apart from the bridge's
//! on 127.0.0.1), and a relying party (the `openidconnect` crate) logs in through each.

use conformance::post_json as post;
use conformance::{Backend, Browser, CALLBACK, Op, Outcome, http_client, jwt_claims};
use oidc_bridge::testkit::MockIdp;
use serde_json::{Value, json};

const UPSTREAM: &str = r#"
mock:
  issuers:
    - id: okta
      persona: okta
      users:
        - { username: jane@example.com, name: Jane Doe, email: jane@example.com, groups: [Engineering, "Platform Team", Everyone] }
        - { username: nogroups@example.com, groups: [Everyone] }
        - { username: many@example.com, email: many@example.com, groups: [OKTAGROUPS] }
    - id: azure
      persona: azure
      tenant: 72f988bf-86f1-41af-91ab-2d7cd011db47
      users:
        - { username: jane@example.com, name: Jane Doe, groups: [Engineering, "Data Science"] }
        - { username: big@contoso.com, name: Big Groups, groups: [GROUPS] }
"#;

struct Fed {
    upstream: MockIdp,
    bridge: Op,
    okta: String,
}

async fn start(extra_connector_yaml: &str) -> Fed {
    start_with(|_| extra_connector_yaml.to_string()).await
}

/// `extra(okta_issuer)` returns more connectors (YAML list items).
async fn start_with(extra: impl Fn(&str) -> String) -> Fed {
    let groups: Vec<String> = (0..250).map(|i| format!("Team {i:03}")).collect();
    let upstream = MockIdp::builder()
        .host("localhost")
        .config_yaml(
            &UPSTREAM
                .replace("OKTAGROUPS", &okta_groups().join(", "))
                .replace("GROUPS", &groups.join(", ")),
        )
        .start()
        .await
        .expect("upstream starts");
    let okta = upstream.issuer_of("okta").expect("okta").to_string();
    let azure = upstream.issuer_of("azure").expect("azure").to_string();
    let graph = azure.replace("/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0", "/graph");
    let extra_connector_yaml = extra(&okta);
    let yaml = format!(
        r#"
server:
  metrics_listen: 127.0.0.1:0
connectors:
  - id: okta
    type: okta
    name: Okta
    issuer: {okta}
    client_id: mock-client
    client_secret: mock-secret
    email_domains: [example.com]
    groups:
      exclude: ["^everyone$"]
      prefix: okta
      prefix_separator: "-"
  - id: azure
    type: azure
    name: Entra ID
    issuer: {azure}
    graph_url: {graph}
    client_id: mock-client
    client_secret: mock-secret
    email_domains: [contoso.com]
    verified_email_domains: [contoso.com]
    groups:
      unmapped: drop
      trust_display_names: true
{extra_connector_yaml}
"#
    );
    let bridge = Op::start_with(Backend::Sqlite, &yaml)
        .await
        .expect("bridge starts");
    Fed {
        upstream,
        bridge,
        okta,
    }
}

/// The whole round trip: RP → bridge → upstream (headless login by login_hint) → bridge →
/// RP, then the code exchange with openidconnect. Returns the RP's tokens.
async fn login(fed: &Fed, browser: &Browser, extra: &[(&str, &str)]) -> conformance::Tokens {
    browser.follow_until(CALLBACK);
    let rp = fed.bridge.rp("client").await;
    let p = rp.authorize_url(&["profile", "email", "groups", "offline_access"], extra);
    let q = browser.authorize(&p.url).await.callback();
    let code = q
        .get("code")
        .unwrap_or_else(|| panic!("no code: {q:?}"))
        .clone();
    rp.exchange(&code, p).await
}

async fn userinfo(fed: &Fed, t: &conformance::Tokens) -> Value {
    let (status, body) = fed.bridge.userinfo(t.access_token()).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn okta_and_azure_logins_give_normalized_groups_in_the_id_token_and_userinfo() {
    let fed = start("").await;
    let t = login(
        &fed,
        &Browser::new(),
        &[("connector_id", "okta"), ("login_hint", "jane@example.com")],
    )
    .await;
    assert_eq!(
        t.claims["groups"],
        json!(["okta-engineering", "okta-platform-team"])
    );
    let ui = userinfo(&fed, &t).await;
    assert_eq!(ui["groups"], t.claims["groups"]);
    assert_eq!(ui["email"], "jane@example.com");
    assert_eq!(
        ui["upstream"]["idp"], "okta",
        "upstream claims are namespaced"
    );
    assert!(
        ui["upstream"]["sub"]
            .as_str()
            .expect("okta sub")
            .starts_with("00u")
    );
    assert!(
        ui.get("ver").is_none() && ui.get("idp").is_none(),
        "no foreign top-level claims"
    );

    // Azure: GUIDs named through Graph, then slugified; no prefix configured.
    let t = login(
        &fed,
        &Browser::new(),
        &[
            ("connector_id", "azure"),
            ("login_hint", "jane@example.com"),
        ],
    )
    .await;
    assert_eq!(t.claims["groups"], json!(["data-science", "engineering"]));
    let ui = userinfo(&fed, &t).await;
    assert_eq!(ui["groups"], json!(["data-science", "engineering"]));
    assert_eq!(
        ui["upstream"]["tid"],
        "72f988bf-86f1-41af-91ab-2d7cd011db47"
    );
}

#[tokio::test]
async fn an_overage_user_with_250_groups_gets_all_250() {
    let fed = start("").await;
    let t = login(&fed, &Browser::new(), &[("login_hint", "big@contoso.com")]).await;
    let groups = t.claims["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 250);
    assert_eq!(groups[0], "team-000");
    assert!(
        t.claims.get("_claim_names").is_none(),
        "no overage indirection downstream"
    );
}

#[tokio::test]
async fn the_same_person_through_both_idps_gets_two_subs_stable_across_logins() {
    let fed = start("").await;
    let okta1 = login(
        &fed,
        &Browser::new(),
        &[("connector_id", "okta"), ("login_hint", "jane@example.com")],
    )
    .await;
    let okta2 = login(
        &fed,
        &Browser::new(),
        &[("connector_id", "okta"), ("login_hint", "jane@example.com")],
    )
    .await;
    let azure = login(
        &fed,
        &Browser::new(),
        &[
            ("connector_id", "azure"),
            ("login_hint", "jane@example.com"),
        ],
    )
    .await;
    assert_eq!(okta1.claims["sub"], okta2.claims["sub"], "stable");
    assert_ne!(
        okta1.claims["sub"], azure.claims["sub"],
        "never derived from e-mail"
    );
    assert_eq!(okta1.claims["sub"].as_str().expect("sub").len(), 43);
}

#[tokio::test]
async fn linking_by_verified_email_is_an_option_off_by_default_and_only_in_owned_domains() {
    let fed = start_with(|okta| {
        format!(
            r#"  - id: okta-linked
    type: okta
    name: Okta (linked)
    issuer: {okta}
    client_id: mock-client
    client_secret: mock-secret
    link_by_email: true
    verified_email_domains: [example.com]
  - id: okta-elsewhere
    type: okta
    name: Okta (linked, another domain)
    issuer: {okta}
    client_id: mock-client
    client_secret: mock-secret
    link_by_email: true
    verified_email_domains: [other.example]
"#
        )
    })
    .await;
    let hint = |c: &'static str| [("connector_id", c), ("login_hint", "jane@example.com")];
    let linked = login(&fed, &Browser::new(), &hint("okta-linked")).await;
    let elsewhere = login(&fed, &Browser::new(), &hint("okta-elsewhere")).await;
    let plain = login(&fed, &Browser::new(), &hint("okta")).await;
    // The subject of the address itself: whichever connector owns example.com tomorrow
    // gives the same one.
    let by_address = oidc_bridge::secret::sha256_b64url(b"email\njane@example.com");
    assert_eq!(
        linked.claims["sub"],
        by_address.as_str(),
        "linked by the verified address"
    );
    assert_ne!(
        elsewhere.claims["sub"],
        by_address.as_str(),
        "a connector that does not own the domain never links it"
    );
    assert_ne!(
        plain.claims["sub"],
        by_address.as_str(),
        "not linked without the option"
    );
}

#[tokio::test]
async fn a_login_hint_domain_picks_the_connector_and_otherwise_a_chooser_is_shown() {
    let fed = start("").await;
    let rp = fed.bridge.rp("client").await;
    let p = rp.authorize_url(&[], &[]);
    let b = Browser::new();
    b.expect_no_login();
    match b.authorize(&p.url).await {
        Outcome::Page(200, body) => {
            assert!(
                body.contains("Continue with Okta") && body.contains("Continue with Entra ID"),
                "{body}"
            );
            assert!(
                body.contains("a username and password"),
                "local users exist"
            );
        }
        other => panic!("expected the chooser: {other:?}"),
    }
    // contoso.com is Entra ID's domain: straight there (and back) without a page.
    let t = login(&fed, &Browser::new(), &[("login_hint", "jane@contoso.com")]).await;
    assert_eq!(
        t.claims["upstream"],
        Value::Null,
        "upstream claims are not in the ID token"
    );
    let ui = userinfo(&fed, &t).await;
    assert_eq!(ui["upstream"]["idp"], "azure");
}

#[tokio::test]
async fn required_groups_refuse_the_login_on_a_clear_page() {
    let fed = start_with(|okta| {
        format!(
            r#"  - id: strict
    type: okta
    name: Strict Okta
    issuer: {okta}
    client_id: mock-client
    client_secret: mock-secret
    groups:
      include: ["^engineering$"]
      required: true
"#
        )
    })
    .await;
    let rp = fed.bridge.rp("client").await;
    let p = rp.authorize_url(
        &[],
        &[
            ("connector_id", "strict"),
            ("login_hint", "nogroups@example.com"),
        ],
    );
    match Browser::new_following(CALLBACK).authorize(&p.url).await {
        Outcome::Page(403, body) => {
            assert!(body.contains("none of your groups is allowed"), "{body}")
        }
        other => panic!("expected the refusal page: {other:?}"),
    }
    let t = login(
        &fed,
        &Browser::new(),
        &[
            ("connector_id", "strict"),
            ("login_hint", "jane@example.com"),
        ],
    )
    .await;
    assert_eq!(t.claims["groups"], json!(["engineering"]));
}

#[tokio::test]
async fn an_upstream_key_rotation_mid_test_breaks_no_login() {
    let fed = start("").await;
    let hint = [("connector_id", "okta"), ("login_hint", "jane@example.com")];
    login(&fed, &Browser::new(), &hint).await;
    let (status, _) = post(
        &format!("{}/mock/keys/rotate", fed.okta),
        json!({"publish_ahead": 0}),
    )
    .await;
    assert_eq!(status, 200);
    // The bridge refetches JWKS for an unknown kid at most once a minute.
    fed.bridge.clock.advance(61);
    let t = login(&fed, &Browser::new(), &hint).await;
    assert_eq!(
        t.claims["groups"],
        json!(["okta-engineering", "okta-platform-team"])
    );
}

#[tokio::test]
async fn an_upstream_outage_gives_an_error_page_then_recovers() {
    let fed = start("").await;
    // Discovery down before the first login: the chooser says so, and offers a retry.
    post(
        &format!("{}/mock/faults", fed.okta),
        json!({"endpoint": "discovery", "effect": {"status": {"status": 503}}, "times": 1}),
    )
    .await;
    let rp = fed.bridge.rp("client").await;
    let p = rp.authorize_url(
        &[],
        &[("connector_id", "okta"), ("login_hint", "jane@example.com")],
    );
    let b = Browser::new_following(CALLBACK);
    match b.authorize(&p.url).await {
        Outcome::Page(502, body) => assert!(
            body.contains("cannot be reached") && body.contains("Try again"),
            "{body}"
        ),
        other => panic!("expected the outage page: {other:?}"),
    }
    // The token endpoint down at the callback: a clear page, never a 500.
    post(
        &format!("{}/mock/faults", fed.okta),
        json!({"endpoint": "token", "effect": {"status": {"status": 503}}, "times": 1}),
    )
    .await;
    match Browser::new_following(CALLBACK).authorize(&p.url).await {
        Outcome::Page(502, body) => assert!(body.contains("Okta"), "{body}"),
        other => panic!("expected the failure page: {other:?}"),
    }
    // Recovered.
    let t = login(
        &fed,
        &Browser::new(),
        &[("connector_id", "okta"), ("login_hint", "jane@example.com")],
    )
    .await;
    assert_eq!(
        t.claims["groups"],
        json!(["okta-engineering", "okta-platform-team"])
    );
}

#[tokio::test]
async fn a_group_removed_upstream_is_gone_from_the_next_refresh_after_the_staleness_window() {
    let fed = start("").await;
    let t = login(
        &fed,
        &Browser::new(),
        &[("connector_id", "okta"), ("login_hint", "jane@example.com")],
    )
    .await;
    let rt = t.refresh_token().expect("refresh token").to_string();
    let resp = http_client()
        .put(format!("{}/mock/users/jane@example.com", fed.okta))
        .json(&json!({"groups": ["Engineering"]}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(resp.status(), 200);
    let refresh = |rt: String| {
        let bridge = &fed.bridge;
        async move {
            bridge
                .token_request(
                    "client",
                    &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
                )
                .await
        }
    };
    let (status, _, body) = refresh(rt).await;
    assert_eq!(status, 200, "{body}");
    let groups = jwt_claims(body["id_token"].as_str().expect("id_token"))["groups"].clone();
    assert_eq!(
        groups,
        json!(["okta-engineering", "okta-platform-team"]),
        "still fresh: no upstream call"
    );
    fed.bridge.clock.advance(16 * 60);
    let (status, _, body) = refresh(body["refresh_token"].as_str().expect("rt").to_string()).await;
    assert_eq!(status, 200, "{body}");
    let id = jwt_claims(body["id_token"].as_str().expect("id_token"));
    assert_eq!(id["groups"], json!(["okta-engineering"]));
    assert_eq!(id["sub"], t.claims["sub"]);
    let (_, ui) = fed
        .bridge
        .userinfo(body["access_token"].as_str().expect("at"))
        .await;
    assert_eq!(ui["groups"], json!(["okta-engineering"]));

    // The upstream refuses (the user was disabled): our refresh fails and the family dies.
    post(
        &format!("{}/mock/faults", fed.okta),
        json!({"endpoint": "token", "grant_type": "refresh_token", "effect": {"oauth_error": {"error": "invalid_grant"}}}),
    )
    .await;
    fed.bridge.clock.advance(16 * 60);
    let next = body["refresh_token"].as_str().expect("rt").to_string();
    let (status, _, body) = refresh(next.clone()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let (status, _, _) = refresh(next).await;
    assert_eq!(status, 400);
    let _ = &fed.upstream;
}

#[tokio::test]
async fn upstream_access_denied_reaches_the_client_and_a_mixed_up_callback_is_refused() {
    let fed = start("").await;
    let rp = fed.bridge.rp("client").await;
    let p = rp.authorize_url(
        &[],
        &[("connector_id", "okta"), ("login_hint", "jane@example.com")],
    );
    let b = Browser::new();
    let first = b.request("GET", &p.url, None).await;
    let upstream_url = first.location.expect("redirect to the upstream");
    assert!(upstream_url.starts_with(&fed.okta), "{upstream_url}");
    let state = url::Url::parse(&upstream_url)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state");
    // The answer arriving at another connector's callback: refused (mix-up).
    let wrong = b
        .request(
            "GET",
            &format!("{}/callback/azure?code=x&state={state}", fed.bridge.issuer),
            None,
        )
        .await;
    assert_eq!(wrong.status, 403);
    // The upstream advertises RFC 9207 `iss`: an answer without it is refused.
    let no_iss = b
        .request(
            "GET",
            &format!(
                "{}/callback/okta?error=access_denied&state={state}",
                fed.bridge.issuer
            ),
            None,
        )
        .await;
    assert_eq!(no_iss.status, 403);
    // access_denied upstream: the client hears access_denied.
    let iss: String = url::form_urlencoded::byte_serialize(fed.okta.as_bytes()).collect();
    let denied = b
        .request(
            "GET",
            &format!(
                "{}/callback/okta?error=access_denied&state={state}&iss={iss}",
                fed.bridge.issuer
            ),
            None,
        )
        .await;
    let loc = denied.location.expect("redirect to the client");
    assert!(loc.starts_with(CALLBACK), "{loc}");
    assert!(loc.contains("error=access_denied"));
    assert!(loc.contains(&format!("state={}", p.state)));
}

#[tokio::test]
async fn a_slow_upstream_times_out_into_a_clear_page() {
    let fed = start_with(|okta| {
        format!(
            r#"  - id: impatient
    type: okta
    name: Impatient Okta
    issuer: {okta}
    client_id: mock-client
    client_secret: mock-secret
    timeout: 1s
"#
        )
    })
    .await;
    // Warm the discovery cache, then make the token endpoint slower than the timeout.
    login(
        &fed,
        &Browser::new(),
        &[
            ("connector_id", "impatient"),
            ("login_hint", "jane@example.com"),
        ],
    )
    .await;
    post(
        &format!("{}/mock/faults", fed.okta),
        json!({"endpoint": "token", "effect": {"delay_ms": 1500}, "times": 1}),
    )
    .await;
    let rp = fed.bridge.rp("client").await;
    let p = rp.authorize_url(
        &[],
        &[
            ("connector_id", "impatient"),
            ("login_hint", "jane@example.com"),
        ],
    );
    match Browser::new_following(CALLBACK).authorize(&p.url).await {
        Outcome::Page(502, body) => assert!(body.contains("did not answer in time"), "{body}"),
        other => panic!("expected the timeout page: {other:?}"),
    }
}

#[tokio::test]
async fn clients_see_only_their_connectors_and_their_view_of_groups() {
    let fed = start("").await;
    // Add a client limited to Entra ID, seeing only `eng…` groups, at most one, always.
    let listener_yaml = "";
    let _ = listener_yaml;
    let bridge = Op::start_with(
        Backend::Sqlite,
        &format!(
            r#"
connectors:
  - id: okta
    type: okta
    issuer: {}
    client_id: mock-client
    client_secret: mock-secret
  - id: azure
    type: azure
    issuer: {}
    graph_url: {}
    client_id: mock-client
    client_secret: mock-secret
    groups: {{ trust_display_names: true }}
"#,
            fed.okta,
            fed.upstream.issuer_of("azure").expect("azure"),
            fed.upstream
                .issuer_of("azure")
                .expect("azure")
                .replace("/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0", "/graph"),
        ),
    )
    .await
    .expect("bridge");
    bridge.state.clients.update("client", |c| {
        c.allowed_connectors = vec!["azure".into()];
        c.groups.include = vec!["^(eng|data)".into()];
        c.groups.max = 1;
        c.groups.always = true;
    });
    let rp = bridge.rp("client").await;
    let p = rp.authorize_url(
        &[],
        &[("connector_id", "okta"), ("login_hint", "jane@example.com")],
    );
    let q = Browser::new_following(CALLBACK)
        .authorize(&p.url)
        .await
        .callback();
    assert_eq!(
        q["error"], "invalid_request",
        "okta is not allowed for this client: {q:?}"
    );
    // Without groups scope, groups come anyway (always), filtered and capped.
    let p = rp.authorize_url(&[], &[("login_hint", "jane@example.com")]);
    let q = Browser::new_following(CALLBACK)
        .authorize(&p.url)
        .await
        .callback();
    let t = rp.exchange(q.get("code").expect("code"), p).await;
    assert_eq!(t.claims["groups"], json!(["data-science"]));
    let (_, ui) = bridge.userinfo(t.access_token()).await;
    assert_eq!(ui["groups"], json!(["data-science"]));
    // Entra ID's preferred_username is used as the address, unverified outside the allow-list.
    assert_eq!(ui.get("email"), None, "no email scope");
}

#[tokio::test]
async fn entra_addresses_are_verified_only_with_xms_edov_from_the_owning_tenant() {
    let fed = start("").await;
    // No `email` claim: preferred_username is shown as the address, never as a verified one.
    for hint in ["jane@example.com", "big@contoso.com"] {
        let t = login(
            &fed,
            &Browser::new(),
            &[("connector_id", "azure"), ("login_hint", hint)],
        )
        .await;
        let ui = userinfo(&fed, &t).await;
        assert_eq!(ui["email"], hint);
        assert_eq!(
            ui["email_verified"], false,
            "a UPN is not e-mail proof: {hint}"
        );
    }
    // The optional claims `email` and `xms_edov: true` from the tenant owning contoso.com.
    let azure = fed.upstream.issuer_of("azure").expect("azure").to_string();
    let (status, _) = post(
        &format!("{azure}/mock/next-login"),
        json!({"login_hint": "owner@contoso.com", "claims": {"email": "owner@contoso.com", "xms_edov": true}}),
    )
    .await;
    assert_eq!(status, 201);
    let t = login(
        &fed,
        &Browser::new(),
        &[
            ("connector_id", "azure"),
            ("login_hint", "owner@contoso.com"),
        ],
    )
    .await;
    let ui = userinfo(&fed, &t).await;
    assert_eq!(ui["email"], "owner@contoso.com");
    assert_eq!(ui["email_verified"], true);
}

/// The line of `text` for `name` with exactly these labels, and its value.
fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let prefix = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
async fn metrics_count_logins_tokens_refresh_reuse_and_upstream_failures_by_label() {
    let fed = start("").await;
    let hint = [("connector_id", "okta"), ("login_hint", "jane@example.com")];
    let t = login(&fed, &Browser::new(), &hint).await;
    // A refresh, then the rotated token again after the grace window: reuse.
    let rt = t.refresh_token().expect("refresh token").to_string();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
    ];
    let (status, _, _) = fed.bridge.token_request("client", &form).await;
    assert_eq!(status, 200);
    fed.bridge.clock.advance(6);
    let (status, _, _) = fed.bridge.token_request("client", &form).await;
    assert_eq!(status, 400, "reuse is refused");
    // The upstream's token endpoint fails at the callback.
    post(
        &format!("{}/mock/faults", fed.okta),
        json!({"endpoint": "token", "effect": {"status": {"status": 503}}, "times": 1}),
    )
    .await;
    let rp = fed.bridge.rp("client").await;
    let p = rp.authorize_url(&[], &hint);
    match Browser::new_following(CALLBACK).authorize(&p.url).await {
        Outcome::Page(502, _) => {}
        other => panic!("expected the failure page: {other:?}"),
    }

    let text = fed.bridge.scrape().await;
    let value = |name: &str, labels: &str| {
        sample(&text, name, labels).unwrap_or_else(|| panic!("no {name}{{{labels}}} in\n{text}"))
    };
    assert_eq!(
        value(
            "oidc_bridge_logins_total",
            r#"connector="okta",result="success""#
        ),
        1.0
    );
    assert_eq!(
        value(
            "oidc_bridge_logins_total",
            r#"connector="okta",result="error""#
        ),
        1.0
    );
    assert_eq!(
        value(
            "oidc_bridge_tokens_issued_total",
            r#"grant_type="authorization_code",client_id="client""#
        ),
        1.0
    );
    assert_eq!(
        value(
            "oidc_bridge_tokens_issued_total",
            r#"grant_type="refresh_token",client_id="client""#
        ),
        1.0
    );
    assert_eq!(
        value(
            "oidc_bridge_refresh_token_reuse_detected_total",
            r#"client_id="client""#
        ),
        1.0
    );
    assert_eq!(
        value(
            "oidc_bridge_upstream_requests_total",
            r#"connector="okta",endpoint="token",result="unavailable""#
        ),
        1.0
    );
    assert!(
        value(
            "oidc_bridge_upstream_requests_total",
            r#"connector="okta",endpoint="token",result="ok""#
        ) >= 1.0
    );
    assert_eq!(
        value(
            "oidc_bridge_http_requests_total",
            r#"route="/token",method="POST",status="400""#
        ),
        1.0,
        "routes are the router's patterns"
    );
    assert!(value("oidc_bridge_signing_keys", r#"state="active""#) >= 1.0);
    assert!(text.contains("oidc_bridge_password_hash_queue_depth 0"));
    assert!(text.contains("oidc_bridge_db_pool_max_connections "));
    // Not on the main listener.
    let resp = fed
        .bridge
        .http
        .get(fed.bridge.url("/metrics"))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn the_metrics_listener_is_off_unless_configured() {
    let op = Op::start(Backend::Sqlite).await.expect("op");
    assert!(
        op.metrics.is_none(),
        "no listener without server.metrics_listen"
    );
    let resp = op.http.get(op.url("/metrics")).send().await.expect("GET");
    assert_eq!(resp.status(), 404, "and never on the main listener");
}

/// 250 groups: more than the 100 an Okta token carries, and more than one Groups API page.
fn okta_groups() -> Vec<String> {
    (0..250).map(|i| format!("Squad {i:03}")).collect()
}

/// Okta puts at most 100 groups in a token and drops the rest without a word. With
/// `groups_api` the bridge sees a token at the cap and reads every group from the Groups API
/// (paged by `Link`), so all 250 reach the client; without it, 100 do.
#[tokio::test]
async fn an_okta_user_in_250_groups_gets_all_250_through_the_groups_api() {
    let fed = start_with(|okta| {
        format!(
            "  - {{ id: okta-api, type: okta, issuer: \"{okta}\", client_id: mock-client, client_secret: mock-secret,\n      groups: {{ prefix: api, prefix_separator: \"-\" }}, groups_api: {{ token: mock-okta-api-token }} }}\n"
        )
    })
    .await;
    let hint = [("login_hint", "many@example.com")];
    let t = login(
        &fed,
        &Browser::new(),
        &[&hint[..], &[("connector_id", "okta")]].concat(),
    )
    .await;
    assert_eq!(
        t.claims["groups"].as_array().map(Vec::len),
        Some(100),
        "the token's 100, without groups_api"
    );
    let t = login(
        &fed,
        &Browser::new(),
        &[&hint[..], &[("connector_id", "okta-api")]].concat(),
    )
    .await;
    let groups = t.claims["groups"].as_array().expect("groups").clone();
    assert_eq!(groups.len(), 250);
    assert!(groups.contains(&json!("api-squad-249")), "{groups:?}");
    let ui = userinfo(&fed, &t).await;
    assert_eq!(ui["groups"].as_array().map(Vec::len), Some(250));
    // A `marker` group (one an org's claim rule adds when it cut the list) sends even a
    // short token's groups to the API.
    let api_calls = |okta: String| async move {
        let seen = conformance::mock_requests(&okta).await;
        seen.to_string().matches("/api/v1/users/").count()
    };
    assert_eq!(
        api_calls(fed.okta.clone()).await,
        2,
        "two pages for the okta-api sign-in, none without groups_api"
    );
    let fed_marker = start_with(|okta| {
        format!(
            "  - {{ id: okta-marker, type: okta, issuer: \"{okta}\", client_id: mock-client, client_secret: mock-secret,\n      groups: {{ prefix: m, prefix_separator: \"-\" }}, groups_api: {{ token: mock-okta-api-token, marker: Everyone }} }}\n"
        )
    })
    .await;
    let t = login(
        &fed_marker,
        &Browser::new(),
        &[
            ("connector_id", "okta-marker"),
            ("login_hint", "jane@example.com"),
        ],
    )
    .await;
    assert_eq!(
        t.claims["groups"],
        json!(["m-engineering", "m-everyone", "m-platform-team"])
    );
    assert_eq!(
        api_calls(fed_marker.okta.clone()).await,
        1,
        "the Groups API was read"
    );
    // A wrong API token is an upstream failure, not a login with 100 groups.
    let fed = start_with(|okta| {
        format!(
            "  - {{ id: okta-api, type: okta, issuer: \"{okta}\", client_id: mock-client, client_secret: mock-secret,\n      groups_api: {{ token: wrong-token }} }}\n"
        )
    })
    .await;
    let rp = fed.bridge.rp("client").await;
    let browser = Browser::new();
    browser.follow_until(CALLBACK);
    let p = rp.authorize_url(
        &["groups"],
        &[&hint[..], &[("connector_id", "okta-api")]].concat(),
    );
    match browser.authorize(&p.url).await {
        Outcome::Page(status, body) => {
            assert_eq!(status, 502, "{body}");
            assert!(body.contains("could not be verified"), "{body}");
        }
        other => panic!("{other:?}"),
    }
}

/// The Groups API through an OAuth 2.0 service app instead of an API token: client
/// credentials with a `private_key_jwt` assertion at `{org}/oauth2/v1/token`, the scoped token
/// cached across sign-ins.
#[tokio::test]
async fn an_okta_service_app_reads_the_groups_api_with_private_key_jwt() {
    // The upstream (and a bridge this test does not use); the service app's key comes from it.
    let upstream = start("").await;
    let okta = upstream.okta.clone();
    let org = okta.replace("/oauth2/default", "");
    let app: Value = http_client()
        .get(format!("{org}/service-app.json"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    let key_file = tempfile::NamedTempFile::new().expect("temp");
    std::fs::write(key_file.path(), app["private_key"].as_str().expect("pem")).expect("write");
    let yaml = format!(
        "connectors:\n  - {{ id: okta-app, type: okta, issuer: \"{okta}\", client_id: mock-client, client_secret: mock-secret,\n      groups_api: {{ client_id: \"{}\", private_key_file: \"{}\", key_id: \"{}\" }} }}\n",
        app["client_id"].as_str().expect("client_id"),
        key_file.path().display(),
        app["key_id"].as_str().expect("key_id"),
    );
    let fed = Fed {
        bridge: Op::start_with(Backend::Sqlite, &yaml)
            .await
            .expect("bridge starts"),
        upstream: upstream.upstream,
        okta: okta.clone(),
    };
    let hint = [
        ("connector_id", "okta-app"),
        ("login_hint", "many@example.com"),
    ];
    for _ in 0..2 {
        let t = login(&fed, &Browser::new(), &hint).await;
        assert_eq!(t.claims["groups"].as_array().map(Vec::len), Some(250));
    }
    let text = conformance::mock_requests(&okta).await.to_string();
    assert_eq!(
        text.matches("/oauth2/v1/token").count(),
        1,
        "one service-app token for both sign-ins: {text}"
    );
    // A key the app does not have is refused: the sign-in fails rather than keep 100 groups.
    let other = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .expect("openssl genpkey");
    std::fs::write(key_file.path(), &other.stdout).expect("write");
    let yaml = yaml.replace("okta-app", "okta-other");
    let fed = Fed {
        bridge: Op::start_with(Backend::Sqlite, &yaml)
            .await
            .expect("bridge starts"),
        ..fed
    };
    let rp = fed.bridge.rp("client").await;
    let browser = Browser::new();
    browser.follow_until(CALLBACK);
    let p = rp.authorize_url(
        &["groups"],
        &[
            ("connector_id", "okta-other"),
            ("login_hint", "many@example.com"),
        ],
    );
    match browser.authorize(&p.url).await {
        Outcome::Page(status, body) => assert_eq!(status, 502, "{body}"),
        other => panic!("{other:?}"),
    }
}

/// An RSA key and a self-signed certificate for it (Entra ID's certificate credentials).
fn key_and_certificate() -> (Vec<u8>, Vec<u8>, Value) {
    use base64::Engine as _;
    use openssl::{asn1::Asn1Time, hash::MessageDigest, pkey::PKey, rsa::Rsa, x509};
    let rsa = Rsa::generate(2048).expect("rsa");
    let b64 = |v: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let jwk =
        json!({"kty": "RSA", "kid": "k1", "n": b64(rsa.n().to_vec()), "e": b64(rsa.e().to_vec())});
    let key = PKey::from_rsa(rsa).expect("pkey");
    let mut name = x509::X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", "oidc-bridge").expect("cn");
    let name = name.build();
    let mut cert = x509::X509Builder::new().expect("cert");
    cert.set_version(2).expect("v3");
    cert.set_subject_name(&name).expect("subject");
    cert.set_issuer_name(&name).expect("issuer");
    cert.set_pubkey(&key).expect("pubkey");
    cert.set_not_before(&Asn1Time::days_from_now(0).expect("now"))
        .expect("nb");
    cert.set_not_after(&Asn1Time::days_from_now(30).expect("later"))
        .expect("na");
    cert.sign(&key, MessageDigest::sha256()).expect("sign");
    let pem = key.private_key_to_pem_pkcs8().expect("pem");
    (pem, cert.build().to_pem().expect("cert pem"), jwk)
}

#[tokio::test]
async fn connectors_sign_their_token_requests_with_a_key_and_store_no_secret() {
    let (key, cert, jwk) = key_and_certificate();
    let dir = tempfile::tempdir().expect("dir");
    let (key_file, cert_file) = (dir.path().join("bridge.key"), dir.path().join("bridge.crt"));
    std::fs::write(&key_file, key).expect("key");
    std::fs::write(&cert_file, cert).expect("cert");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let bridge = format!("http://{}", listener.local_addr().expect("addr"));
    // The upstream knows the bridge by its public key only: no secret.
    let upstream_yaml = format!(
        r#"{}
clients:
  - id: bridge-by-key
    token_endpoint_auth_method: private_key_jwt
    jwks: {{"keys": [{jwk}]}}
    redirect_uris: [{bridge}/callback/azure-key, {bridge}/callback/okta-key]
    grant_types: [authorization_code, refresh_token]
    skip_consent: true
"#,
        UPSTREAM
            .replace("OKTAGROUPS", "Everyone")
            .replace("GROUPS", "Everyone")
    );
    let upstream = MockIdp::builder()
        .host("localhost")
        .config_yaml(&upstream_yaml)
        .start()
        .await
        .expect("upstream starts");
    let azure = upstream.issuer_of("azure").expect("azure").to_string();
    let okta = upstream.issuer_of("okta").expect("okta").to_string();
    let graph = azure.replace("/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0", "/graph");
    let yaml = format!(
        r#"
connectors:
  - id: azure-key
    type: azure
    issuer: {azure}
    graph_url: {graph}
    client_id: bridge-by-key
    token_endpoint_auth_method: private_key_jwt
    private_key_file: {}
    certificate_file: {}
  - id: okta-key
    type: okta
    issuer: {okta}
    client_id: bridge-by-key
    token_endpoint_auth_method: private_key_jwt
    private_key_file: {}
    private_key_id: k1
"#,
        key_file.display(),
        cert_file.display(),
        key_file.display()
    );
    let op = Op::start_on_listener(Backend::Sqlite, &yaml, listener)
        .await
        .expect("bridge starts");
    let fed = Fed {
        upstream,
        bridge: op,
        okta,
    };
    for connector in ["azure-key", "okta-key"] {
        let t = login(
            &fed,
            &Browser::new(),
            &[
                ("connector_id", connector),
                ("login_hint", "jane@example.com"),
            ],
        )
        .await;
        let ui = userinfo(&fed, &t).await;
        assert_eq!(
            ui["upstream"]["idp"], connector,
            "signed in through {connector}"
        );
    }
    // What the upstream's token endpoint was sent: an assertion, never a secret.
    let log = conformance::mock_requests(&fed.okta).await;
    let token_calls: Vec<&Value> = log
        .as_array()
        .expect("log")
        .iter()
        .filter(|r| r["endpoint"] == "token")
        .collect();
    assert!(!token_calls.is_empty(), "{log}");
    for call in token_calls {
        let params = &call["params"];
        assert_eq!(
            params["client_assertion_type"],
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "{call}"
        );
        assert!(params.get("client_secret").is_none(), "{call}");
        assert_eq!(call["client_id"], "bridge-by-key");
    }
}
