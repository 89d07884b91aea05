//! M1 (the `claims` parameter), M3 (unbounded authorization requests) and the request
//! parsing items I1–I4 and I6.

use crate::common::*;

/// M1: a client without a consent page gets no claim beyond its granted scopes, whatever
/// `claims` asks.
#[tokio::test]
async fn m1_a_client_that_skips_consent_gets_only_what_its_granted_scopes_release() {
    let op = start(Backend::Sqlite).await.expect("op");
    let claims = json!({"id_token": {"email": null, "groups": null}, "userinfo": {"email": null}})
        .to_string();
    let t = login(
        &op,
        &Browser::new(),
        "web2",
        "openid",
        &[("claims", &claims)],
    )
    .await;
    let id = jwt_claims(&s(&t, "id_token"));
    assert!(
        id.get("email").is_none() && id.get("groups").is_none(),
        "{id}"
    );
    let (_, ui) = op.userinfo(&s(&t, "access_token")).await;
    assert!(ui.get("email").is_none(), "{ui}");
    // Within its granted scopes, `claims` still places them.
    let t = login(
        &op,
        &Browser::new(),
        "web2",
        "openid email",
        &[("claims", &claims)],
    )
    .await;
    assert_eq!(jwt_claims(&s(&t, "id_token"))["email"], "alice@example.com");
}

/// M1: a client limited to `openid profile` asked, through `claims`, for e-mail and groups;
/// the consent page said only "Know who you are", and the tokens carried both.
#[tokio::test]
async fn m1_the_claims_parameter_cannot_release_what_the_clients_scopes_do_not() {
    let op = start(Backend::Sqlite).await.expect("op");
    let claims = json!({"userinfo": {"email": null, "groups": null}, "id_token": {"email": null, "groups": null}})
        .to_string();
    let b = Browser::new();
    let t = login(
        &op,
        &b,
        "web",
        "openid email groups",
        &[("claims", &claims)],
    )
    .await;
    let consent = b.consent_pages.lock().unwrap().join("\n");
    assert!(
        !consent.contains("email") && !consent.contains("groups"),
        "{consent}"
    );
    assert_eq!(t["scope"], "openid");
    let id = jwt_claims(&s(&t, "id_token"));
    assert!(
        id.get("email").is_none() && id.get("groups").is_none(),
        "{id}"
    );
    let (status, ui) = op.userinfo(&s(&t, "access_token")).await;
    assert_eq!(status, 200);
    assert!(
        ui.get("email").is_none() && ui.get("groups").is_none(),
        "{ui}"
    );
}

// M1: a claim asked for by name beyond the granted scopes is named on the consent page and
// released only after approval, which is remembered with the consent.
crate::per_backend!(
    m1_a_claim_asked_for_by_name_is_shown_and_consented_to,
    |backend| {
        let op = start(backend).await.expect("op");
        let claims = json!({"id_token": {"email": {"essential": true}}}).to_string();
        let b = Browser::new();
        let t = login(&op, &b, "open", "openid", &[("claims", &claims)]).await;
        let consent = b.consent_pages.lock().unwrap().join("\n");
        assert!(consent.contains("Also see, by name: email"), "{consent}");
        assert_eq!(jwt_claims(&s(&t, "id_token"))["email"], "alice@example.com");
        // Remembered with the consent: the same request asks no more.
        let again = Browser::new();
        login(&op, &again, "open", "openid", &[("claims", &claims)]).await;
        assert!(again.consent_pages.lock().unwrap().is_empty(), "remembered");
        // A claim not consented to before asks again.
        let name = json!({"id_token": {"name": null}}).to_string();
        let third = Browser::new();
        login(&op, &third, "open", "openid", &[("claims", &name)]).await;
        let page = third.consent_pages.lock().unwrap().join("\n");
        assert!(page.contains("Also see, by name: name"), "{page}");
    }
);

/// M3: every `/authorize` stored up to 64 KB for 30 minutes, without limit.
#[tokio::test]
async fn m3_oversized_authorization_parameters_are_refused() {
    let op = start(Backend::Sqlite).await.expect("op");
    let b = Browser::new();
    let (url, _) = authorize_url(&op, "web2", "openid", &[("state", &"A".repeat(1025))]);
    let r = b.request("GET", &url, None).await;
    assert_eq!(r.status, 400, "a state too long to echo is a page");
    assert!(r.location.is_none());
    for (name, len) in [
        ("nonce", 1025),
        ("login_hint", 256),
        ("claims", 4097),
        ("ui_locales", 256),
    ] {
        let (url, _) = authorize_url(&op, "web2", "openid", &[(name, &"B".repeat(len))]);
        let loc = b
            .request("GET", &url, None)
            .await
            .location
            .unwrap_or_default();
        assert!(loc.contains("error=invalid_request"), "{name}: {loc}");
    }
    let big = "C".repeat(1000);
    let many: Vec<(String, String)> = (0..20).map(|i| (format!("x{i}"), big.clone())).collect();
    let extra: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (url, _) = authorize_url(&op, "web2", "openid", &extra);
    assert_eq!(b.request("GET", &url, None).await.status, 413);
    assert_eq!(
        op.state.storage.count_auth_requests().await.expect("count"),
        0
    );
}

// M3: one address grew the database by 1 GB a minute. Now it may start
// `server.pending_requests_per_minute` (60 here) pending requests a minute; others are
// unaffected.
crate::per_backend!(
    m3_one_address_cannot_grow_pending_requests_past_its_budget,
    |backend| {
        let yaml = config("").replace(
            "trusted_proxies: [127.0.0.1/32]",
            "trusted_proxies: [127.0.0.1/32]\n  pending_requests_per_minute: 60",
        );
        let op = Op::start_config(backend, &yaml).await.expect("op");
        let b = Browser::new();
        b.set_header("X-Forwarded-For", "203.0.113.50");
        let mut refused = 0;
        for _ in 0..100 {
            let (url, _) = authorize_url(&op, "web2", "openid", &[("nonce", &"N".repeat(1000))]);
            b.forget_cookies();
            match b.request("GET", &url, None).await.status {
                200 => {}
                429 => refused += 1,
                other => panic!("unexpected {other}"),
            }
        }
        assert_eq!(refused, 40);
        assert_eq!(
            op.state.storage.count_auth_requests().await.expect("count"),
            60
        );
        let other = Browser::new();
        other.set_header("X-Forwarded-For", "198.51.100.60");
        let (url, _) = authorize_url(&op, "web2", "openid", &[]);
        assert_eq!(other.request("GET", &url, None).await.status, 200);
        op.clock.advance(61);
        b.forget_cookies();
        let (url, _) = authorize_url(&op, "web2", "openid", &[]);
        assert_eq!(
            b.request("GET", &url, None).await.status,
            200,
            "the budget refills"
        );
    }
);

/// I1: an access token was accepted as `id_token_hint`.
#[tokio::test]
async fn i1_an_access_token_is_not_an_id_token_hint() {
    let op = start(Backend::Sqlite).await.expect("op");
    let t = login(&op, &Browser::new(), "web2", "openid", &[]).await;
    let at = s(&t, "access_token");
    let (url, _) = authorize_url(
        &op,
        "web2",
        "openid",
        &[("id_token_hint", &at), ("prompt", "none")],
    );
    let loc = Browser::new()
        .request("GET", &url, None)
        .await
        .location
        .unwrap_or_default();
    assert!(loc.contains("error=invalid_request"), "{loc}");
    let logout = Browser::new()
        .request("GET", &op.url(&format!("/logout?id_token_hint={at}")), None)
        .await;
    assert_eq!(logout.status, 400);
    // The real ID token still works as a hint.
    let id = s(&t, "id_token");
    let (url, _) = authorize_url(
        &op,
        "web2",
        "openid",
        &[("id_token_hint", &id), ("prompt", "none")],
    );
    let loc = Browser::new()
        .request("GET", &url, None)
        .await
        .location
        .unwrap_or_default();
    assert!(loc.contains("error=login_required"), "{loc}");
}

/// I2: `grant_type=&grant_type=client_credentials` slipped past the repeated-parameter rule.
#[tokio::test]
async fn i2_a_repeated_parameter_is_refused_even_when_one_value_is_empty() {
    let op = start(Backend::Sqlite).await.expect("op");
    let resp = op
        .http
        .post(op.url("/token"))
        .header("Authorization", basic("svc", &secret_of("svc")))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=&grant_type=client_credentials")
        .send()
        .await
        .expect("token");
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"], "invalid_request");
}

/// I3: RFC 8252 §7.3 — a loopback redirect URI takes any port, nothing else changes.
#[tokio::test]
async fn i3_a_loopback_redirect_uri_accepts_any_port() {
    let op = start(Backend::Sqlite).await.expect("op");
    let (verifier, challenge) = pkce();
    let url = |redirect: &str| {
        format!(
            "{}?client_id=pub&response_type=code&scope=openid&state=s&code_challenge={challenge}&code_challenge_method=S256&redirect_uri={}",
            op.url("/authorize"),
            url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
        )
    };
    let q = Browser::new()
        .authorize(&url("http://127.0.0.1:53171/cb"))
        .await
        .callback();
    let code = q.get("code").expect("code");
    let (status, _, body) = post_form(
        &op,
        "/token",
        None,
        &[],
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "pub"),
            ("code", code),
            ("redirect_uri", "http://127.0.0.1:53171/cb"),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for other in [
        "http://127.0.0.1:53171/cb/",
        "http://localhost:53171/cb",
        "http://127.0.0.1:53171/other",
    ] {
        match Browser::new().authorize(&url(other)).await {
            Outcome::Page(400, _) => {}
            o => panic!("{other} must not be accepted: {o:?}"),
        }
    }
}

/// I4: `prompt=consent` was ignored for a `skip_consent` client.
#[tokio::test]
async fn i4_prompt_consent_asks_even_for_a_trusted_client() {
    let op = start(Backend::Sqlite).await.expect("op");
    let b = Browser::new();
    login(&op, &b, "web2", "openid", &[]).await;
    assert!(b.consent_pages.lock().unwrap().is_empty(), "skip_consent");
    login(&op, &b, "web2", "openid", &[("prompt", "consent")]).await;
    assert_eq!(
        b.consent_pages.lock().unwrap().len(),
        1,
        "prompt=consent asks"
    );
}

/// I6: the mock client accepted `javascript:` and `data:` redirect URIs, and pages had no
/// `form-action` policy.
#[tokio::test]
async fn i6_no_script_redirects_and_forms_post_only_where_they_should() {
    let up = oidc_bridge::testkit::MockIdp::builder()
        .start()
        .await
        .expect("mock");
    let b = Browser::new();
    for bad in ["javascript:alert(1)", "data:text/html,hi"] {
        let url = format!(
            "{}/authorize?client_id=mock-client&response_type=code&scope=openid&login_hint=u&redirect_uri={}",
            up.issuer(),
            url::form_urlencoded::byte_serialize(bad.as_bytes()).collect::<String>()
        );
        let r = b.request("GET", &url, None).await;
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.location.is_none());
    }
    let op = start(Backend::Sqlite).await.expect("op");
    let (url, _) = authorize_url(&op, "web2", "openid", &[]);
    let page = Browser::new().request("GET", &url, None).await;
    let csp = page.headers["content-security-policy"]
        .to_str()
        .expect("csp");
    assert!(csp.contains("form-action 'self'"), "{csp}");
    let (url, _) = authorize_url(&op, "web2", "openid", &[("response_mode", "form_post")]);
    let b = Browser::new();
    let first = b.request("GET", &url, None).await;
    let form = vec![
        (
            "request".to_string(),
            conformance::hidden(&first.body, "request").expect("request"),
        ),
        (
            "csrf".to_string(),
            conformance::hidden(&first.body, "csrf").expect("csrf"),
        ),
        ("username".to_string(), "alice".to_string()),
        ("password".to_string(), ALICE_PASSWORD.to_string()),
    ];
    let post = b.request("POST", &op.url("/login"), Some(&form)).await;
    let csp = post.headers["content-security-policy"]
        .to_str()
        .expect("csp");
    assert!(
        csp.contains("form-action https://two.example.com;"),
        "{csp}"
    );
}
