//! Basic OP plan (`oidcc-basic-certification-test-plan`): the 35 modules that run with
//! static clients (`oidcc-refresh-token` is in refresh.rs).

use super::*;
use conformance::{CALLBACK, Rp, module};

async fn rp(op: &Op) -> Rp {
    op.rp("client").await
}

/// H, then userinfo with the access token: UI-1..UI-8. Returns the userinfo body.
async fn userinfo_ok(op: &Op, tokens: &conformance::Tokens) -> Value {
    let (status, body) = op.userinfo(tokens.access_token()).await;
    assert_eq!(status, 200, "UI-1: {body}");
    assert_eq!(body["sub"], tokens.claims["sub"], "UI-8");
    body
}

module!(oidcc_server, |op| {
    let b = Browser::new();
    let rp = rp(&op).await;
    let p = rp.authorize_url(&[], &[]);
    let q = b.authorize(&p.url).await.callback();
    let code = q["code"].clone();
    assert!(code.len() >= 22, "code carries at least 128 bits");
    assert_eq!(q["iss"], op.issuer);
    let t = rp.exchange(&code, p).await;
    check_id_token(&op, &t.claims, "client");
    for k in t.claims.as_object().expect("object").keys() {
        assert!(
            ALLOWED_ID_TOKEN_CLAIMS.contains(&k.as_str()),
            "IDT-16: unrequested claim {k}"
        );
    }
    assert!(
        openidconnect::OAuth2TokenResponse::expires_in(&t.response).is_some(),
        "expires_in present"
    );
    let header = jwt_header(&t.id_token);
    assert_eq!(header["alg"], "RS256");
    assert!(header["kid"].is_string());
    assert_eq!(header["typ"], "JWT");
    // at_hash computed by the openidconnect crate, with the key the JWKS publishes: not by
    // the code under test.
    let jwks: openidconnect::core::CoreJsonWebKeySet = op
        .http
        .get(op.url("/jwks"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("jwks json");
    let key = jwks
        .keys()
        .iter()
        .find(|k| {
            openidconnect::JsonWebKey::key_id(*k).map(|id| id.as_str()) == header["kid"].as_str()
        })
        .expect("the signing key is published");
    let expected = openidconnect::AccessTokenHash::from_token(
        &openidconnect::AccessToken::new(t.access_token().to_string()),
        &openidconnect::core::CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        key,
    )
    .expect("at_hash");
    assert_eq!(t.claims["at_hash"], expected.as_str(), "IDT-13");
    userinfo_ok(&op, &t).await;
});

module!(oidcc_response_type_missing, |op| {
    let b = Browser::new();
    let p = rp(&op).await.authorize_url(&[], &[]);
    let url = without_param(&p.url, "response_type");
    let q = b.authorize(&url).await.callback();
    let e = check_error_redirect(&op, &q, Some(&p.state));
    assert!(
        e == "invalid_request" || e == "unsupported_response_type",
        "{e}"
    );
});

module!(oidcc_userinfo_get, |op| {
    let t = happy_flow(&op, &Browser::new(), "client", &[], &[]).await;
    let resp = op
        .http
        .get(op.url("/userinfo"))
        .header("Authorization", format!("bearer {}", t.access_token()))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 200, "scheme is case-insensitive");
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("application/json")
    );
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["sub"], t.claims["sub"]);
});

module!(oidcc_userinfo_post_header, |op| {
    let t = happy_flow(&op, &Browser::new(), "client", &[], &[]).await;
    let resp = op
        .http
        .post(op.url("/userinfo"))
        .header("Authorization", format!("Bearer {}", t.access_token()))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["sub"], t.claims["sub"]);
});

module!(oidcc_userinfo_post_body, |op| {
    let t = happy_flow(&op, &Browser::new(), "client", &[], &[]).await;
    let resp = op
        .http
        .post(op.url("/userinfo"))
        .form(&[("access_token", t.access_token())])
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["sub"], t.claims["sub"]);
});

module!(
    oidcc_ensure_request_without_nonce_succeeds_for_code_flow,
    |op| {
        let p = rp(&op).await.authorize_url(&[], &[]);
        let url = without_param(&p.url, "nonce");
        let q = Browser::new().authorize(&url).await.callback();
        assert!(q.contains_key("code"), "{q:?}");
        assert_eq!(q["state"], p.state);
    }
);

async fn scope_test(op: &Op, scopes: &[&str]) -> (conformance::Tokens, Value) {
    let d = op.discovery().await;
    for s in scopes {
        assert!(
            d["scopes_supported"]
                .as_array()
                .expect("scopes")
                .iter()
                .any(|x| x == s),
            "{s} is in scopes_supported, so the module runs rather than skips"
        );
    }
    let t = happy_flow(op, &Browser::new(), "client", scopes, &[]).await;
    let ui = userinfo_ok(op, &t).await;
    (t, ui)
}

module!(oidcc_scope_profile, |op| {
    let (_, ui) = scope_test(&op, &["profile"]).await;
    assert_eq!(ui["name"], "Alice Liddell");
    assert_eq!(ui["preferred_username"], "alice");
    assert!(ui.get("email").is_none(), "email needs the email scope");
});

module!(oidcc_scope_email, |op| {
    let (t, ui) = scope_test(&op, &["email"]).await;
    assert_eq!(ui["email"], "alice@example.com");
    assert_eq!(ui["email_verified"], true);
    assert!(
        t.claims.get("email").is_none(),
        "email is served at userinfo"
    );
    assert!(t.claims.get("name").is_none());
    assert!(ui.get("name").is_none());
});

module!(oidcc_scope_address, |op| {
    let (_, ui) = scope_test(&op, &["address"]).await;
    assert!(ui["sub"].is_string());
});

module!(oidcc_scope_phone, |op| {
    let (_, ui) = scope_test(&op, &["phone"]).await;
    assert!(ui["sub"].is_string());
});

module!(oidcc_scope_all, |op| {
    let (_, ui) = scope_test(&op, &["email", "phone", "address", "profile"]).await;
    assert_eq!(ui["email"], "alice@example.com");
    assert_eq!(ui["name"], "Alice Liddell");
});

module!(oidcc_alternate_happy_flow, |op| {
    let rp = rp(&op).await;
    let p = rp.authorize_url(&["email"], &[]);
    let mut u = url::Url::parse(&p.url).expect("url");
    let mut pairs: Vec<(String, String)> = u.query_pairs().into_owned().collect();
    for (k, v) in pairs.iter_mut() {
        if k == "scope" {
            *v = "email openid".into();
        }
    }
    pairs.sort_by(|a, b| b.0.cmp(&a.0));
    u.query_pairs_mut().clear().extend_pairs(pairs);
    let code = Browser::new().authorize(u.as_str()).await.code();
    let t = rp.exchange(&code, p).await;
    let ui = userinfo_ok(&op, &t).await;
    assert_eq!(ui["email"], "alice@example.com");
});

module!(oidcc_display_page, |op| {
    let t = happy_flow(&op, &Browser::new(), "client", &[], &[("display", "page")]).await;
    check_id_token(&op, &t.claims, "client");
});

module!(oidcc_display_popup, |op| {
    let t = happy_flow(&op, &Browser::new(), "client", &[], &[("display", "popup")]).await;
    check_id_token(&op, &t.claims, "client");
});

module!(oidcc_prompt_login, |op| {
    let b = Browser::new();
    let first = happy_flow(&op, &b, "client", &[], &[]).await;
    op.clock.advance(1);
    let second = happy_flow(&op, &b, "client", &[], &[("prompt", "login")]).await;
    let logins = b
        .pages_seen
        .lock()
        .expect("lock")
        .iter()
        .filter(|p| **p == "login")
        .count();
    assert_eq!(logins, 2, "prompt=login asks again");
    assert!(
        second.claims["auth_time"].as_i64() > first.claims["auth_time"].as_i64(),
        "auth_time strictly increases"
    );
});

module!(oidcc_prompt_none_not_logged_in, |op| {
    let state = long_state(128);
    let p = rp(&op).await.authorize_url(&[], &[("prompt", "none")]);
    let url = with_param(&p.url, "state", &state);
    let q = Browser::new().authorize(&url).await.callback();
    let e = check_error_redirect(&op, &q, Some(&state));
    assert!(
        [
            "login_required",
            "interaction_required",
            "account_selection_required",
            "consent_required"
        ]
        .contains(&e.as_str())
    );
});

module!(oidcc_prompt_none_logged_in, |op| {
    let b = Browser::new();
    let first = happy_flow(&op, &b, "client", &[], &[]).await;
    b.expect_no_login();
    let second = happy_flow(&op, &b, "client", &[], &[("prompt", "none")]).await;
    assert_eq!(first.claims["sub"], second.claims["sub"]);
    assert_eq!(first.claims["auth_time"], second.claims["auth_time"]);
});

module!(oidcc_max_age_1, |op| {
    let b = Browser::new();
    let first = happy_flow(&op, &b, "client", &[], &[]).await;
    op.clock.advance(2);
    let second = happy_flow(&op, &b, "client", &[], &[("max_age", "1")]).await;
    let at = second.claims["auth_time"]
        .as_i64()
        .expect("auth_time after max_age");
    assert!(at > first.claims["auth_time"].as_i64().expect("auth_time"));
    assert!(at >= op.clock.current() - 301);
});

module!(oidcc_max_age_10000, |op| {
    let b = Browser::new();
    let first = happy_flow(&op, &b, "client", &[], &[("max_age", "15000")]).await;
    b.expect_no_login();
    let second = happy_flow(&op, &b, "client", &[], &[("max_age", "10000")]).await;
    assert!(first.claims["auth_time"].is_i64());
    assert_eq!(first.claims["auth_time"], second.claims["auth_time"]);
    assert_eq!(first.claims["sub"], second.claims["sub"]);
});

module!(oidcc_ensure_request_with_unknown_parameter_succeeds, |op| {
    happy_flow(&op, &Browser::new(), "client", &[], &[("extra", "foobar")]).await;
});

module!(oidcc_id_token_hint, |op| {
    let b = Browser::new();
    let first = happy_flow(&op, &b, "client", &[], &[]).await;
    b.expect_no_login();
    let second = happy_flow(
        &op,
        &b,
        "client",
        &[],
        &[("prompt", "none"), ("id_token_hint", &first.id_token)],
    )
    .await;
    assert_eq!(first.claims["sub"], second.claims["sub"]);
    assert_eq!(first.claims["auth_time"], second.claims["auth_time"]);
});

module!(oidcc_login_hint, |op| {
    let hint = "buffy@127.0.0.1";
    let p = rp(&op).await.authorize_url(&[], &[("login_hint", hint)]);
    let b = Browser::new();
    let page = b.request("GET", &p.url, None).await;
    assert!(
        page.body.contains(&format!("value=\"{hint}\"")),
        "login_hint pre-fills the form"
    );
    happy_flow(&op, &Browser::new(), "client", &[], &[("login_hint", hint)]).await;
});

module!(oidcc_ui_locales, |op| {
    happy_flow(&op, &Browser::new(), "client", &[], &[("ui_locales", "se")]).await;
});

module!(oidcc_claims_locales, |op| {
    happy_flow(
        &op,
        &Browser::new(),
        "client",
        &[],
        &[("claims_locales", "se")],
    )
    .await;
});

module!(oidcc_ensure_request_with_acr_values_succeeds, |op| {
    let t = happy_flow(
        &op,
        &Browser::new(),
        "client",
        &[],
        &[("acr_values", "1 2")],
    )
    .await;
    if let Some(acr) = t.claims.get("acr") {
        assert!(acr.as_str().is_some_and(|a| !a.is_empty()), "IDT-10");
    }
});

async fn code_then_reuse(
    op: &Op,
    wait: i64,
) -> (conformance::Tokens, u16, reqwest::header::HeaderMap, Value) {
    let rp = rp(op).await;
    let p = rp.authorize_url(&[], &[]);
    let code = Browser::new().authorize(&p.url).await.code();
    let verifier = p.verifier.secret().clone();
    let t = rp.exchange(&code, p).await;
    op.clock.advance(wait);
    let (status, headers, body) = op
        .token_request(
            "client",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    (t, status, headers, body)
}

module!(oidcc_codereuse, |op| {
    let (_, status, headers, body) = code_then_reuse(&op, 0).await;
    assert_eq!(status, 400, "TERR-1");
    assert!(
        headers["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("application/json"),
        "TERR-2"
    );
    assert_eq!(body["error"], "invalid_grant", "TERR-3");
});

module!(oidcc_codereuse_30seconds, |op| {
    let (t, status, _, body) = code_then_reuse(&op, 30).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    let (status, _) = op.userinfo(t.access_token()).await;
    assert_eq!(status, 401, "the replay revoked the first access token");
    let (status, _, body) = op
        .token_request(
            "client",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", t.refresh_token().expect("rt")),
            ],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "and its refresh token"
    );
});

module!(oidcc_ensure_registered_redirect_uri, |op| {
    let p = rp(&op).await.authorize_url(&[], &[]);
    let url = with_param(&p.url, "redirect_uri", &format!("{CALLBACK}/aBcDeFgHiJ"));
    match Browser::new().authorize(&url).await {
        Outcome::Page(status, body) => {
            assert_eq!(status, 400);
            assert!(body.contains("redirect_uri"), "{body}");
        }
        other => panic!("must show an error page, not {other:?}"),
    }
});

module!(oidcc_ensure_post_request_succeeds, |op| {
    let rp = rp(&op).await;
    let p = rp.authorize_url(&[], &[]);
    let q = Browser::new().authorize_post(&p.url).await.callback();
    assert_eq!(q["state"], p.state);
    let t = rp.exchange(&q["code"], p).await;
    check_id_token(&op, &t.claims, "client");
});

module!(oidcc_server_client_secret_post, |op| {
    let d = op.discovery().await;
    assert!(
        d["token_endpoint_auth_methods_supported"]
            .as_array()
            .expect("listed")
            .iter()
            .any(|m| m == "client_secret_post")
    );
    let t = happy_flow(&op, &Browser::new(), "client_secret_post", &[], &[]).await;
    check_id_token(&op, &t.claims, "client_secret_post");
});

module!(
    oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported,
    |op| {
        let p = rp(&op).await.authorize_url(&[], &[]);
        let claims = json!({"state": "in-object", "nonce": "n", "client_id": "client"});
        let object = format!(
            "eyJhbGciOiJub25lIn0.{}.",
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                claims.to_string()
            )
        );
        let url = with_param(
            &without_param(&without_param(&p.url, "state"), "nonce"),
            "request",
            &object,
        );
        let q = Browser::new().authorize(&url).await.callback();
        assert_eq!(check_error_redirect(&op, &q, None), "request_not_supported");
    }
);

module!(oidcc_claims_essential, |op| {
    let claims = json!({"userinfo": {"name": {"essential": true}}}).to_string();
    let t = happy_flow(&op, &Browser::new(), "client", &[], &[("claims", &claims)]).await;
    assert!(
        t.claims.get("name").is_none(),
        "asked for at userinfo, not in the ID token"
    );
    let ui = userinfo_ok(&op, &t).await;
    assert_eq!(ui["name"], "Alice Liddell");
});

module!(oidcc_ensure_request_object_with_redirect_uri, |op| {
    let p = rp(&op).await.authorize_url(&[], &[]);
    let object = format!(
        "eyJhbGciOiJub25lIn0.{}.",
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            json!({"redirect_uri": CALLBACK}).to_string()
        )
    );
    let url = with_param(
        &with_param(&p.url, "redirect_uri", &format!("{CALLBACK}_invalid")),
        "request",
        &object,
    );
    match Browser::new().authorize(&url).await {
        Outcome::Page(400, _) => {}
        other => panic!("must not redirect to the valid callback: {other:?}"),
    }
});

module!(oidcc_ensure_request_with_valid_pkce_succeeds, |op| {
    // A 128-character verifier from the unreserved set.
    let verifier: String = "A1b2-._~".chars().cycle().take(128).collect();
    let challenge = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        oidc_bridge::secret::sha256(verifier.as_bytes()),
    );
    let p = rp(&op).await.authorize_url(&[], &[]);
    let url = with_param(&p.url, "code_challenge", &challenge);
    let code = Browser::new().authorize(&url).await.code();
    let (status, _, body) = op
        .token_request(
            "client",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["id_token"].is_string());
});
