//! What the interactive-flows issue demands beyond the certification plans: concurrent code
//! redemption, CSRF, throttling, cookie flags, page headers, consent memory, PKCE refusals.

use super::*;
use conformance::{CALLBACK, module};

module!(
    twenty_concurrent_redemptions_of_one_code_give_one_success,
    |op| {
        let rp = op.rp("client").await;
        let p = rp.authorize_url(&[], &[]);
        let code = Browser::new().authorize(&p.url).await.code();
        let verifier = p.verifier.secret().clone();
        let op = std::sync::Arc::new(op);
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (op, code, verifier) = (op.clone(), code.clone(), verifier.clone());
            tasks.push(tokio::spawn(async move {
                op.token_request(
                    "client",
                    &[
                        ("grant_type", "authorization_code"),
                        ("code", &code),
                        ("redirect_uri", CALLBACK),
                        ("code_verifier", &verifier),
                    ],
                )
                .await
            }));
        }
        let mut ok = 0;
        for t in tasks {
            let (status, _, body) = t.await.expect("join");
            match status {
                200 => ok += 1,
                400 => assert_eq!(body["error"], "invalid_grant"),
                other => panic!("unexpected {other}: {body}"),
            }
        }
        assert_eq!(ok, 1);
    }
);

module!(login_form_without_a_valid_csrf_token_is_refused, |op| {
    let p = op.rp("client").await.authorize_url(&[], &[]);
    let b = Browser::new();
    let page = b.request("GET", &p.url, None).await;
    let request = conformance::hidden(&page.body, "request").expect("request id");
    for csrf in [None, Some("forged")] {
        let mut form = vec![
            ("request".to_string(), request.clone()),
            ("username".to_string(), "alice".to_string()),
            ("password".to_string(), conformance::PASSWORD.to_string()),
        ];
        if let Some(c) = csrf {
            form.push(("csrf".into(), c.into()));
        }
        let resp = b.request("POST", &op.url("/login"), Some(&form)).await;
        assert_eq!(resp.status, 403, "{csrf:?}");
        assert!(resp.location.is_none());
    }
    // The right token from another browser (no binding cookie) is refused too.
    let csrf = conformance::hidden(&page.body, "csrf").expect("csrf");
    let other = Browser::new();
    let form = vec![
        ("request".to_string(), request),
        ("csrf".to_string(), csrf),
        ("username".to_string(), "alice".to_string()),
        ("password".to_string(), conformance::PASSWORD.to_string()),
    ];
    let resp = other.request("POST", &op.url("/login"), Some(&form)).await;
    assert_eq!(resp.status, 403);
});

module!(failed_logins_are_throttled, |op| {
    let p = op.rp("client").await.authorize_url(&[], &[]);
    let b = Browser::new();
    b.set_login("alice", "wrong password");
    for _ in 0..5 {
        match b.authorize(&p.url).await {
            Outcome::Page(401, body) => assert!(body.contains("Wrong username or password")),
            other => panic!("{other:?}"),
        }
    }
    b.set_login("alice", conformance::PASSWORD);
    match b.authorize(&p.url).await {
        Outcome::Page(429, body) => {
            assert!(body.contains("Too many failed sign-in attempts"), "{body}")
        }
        other => panic!("throttled even with the right password: {other:?}"),
    }
    op.clock.advance(901);
    assert!(matches!(b.authorize(&p.url).await, Outcome::Callback(_)));
});

module!(session_cookie_flags_and_page_headers, |op| {
    let p = op.rp("client").await.authorize_url(&[], &[]);
    let b = Browser::new();
    let page = b.request("GET", &p.url, None).await;
    for (h, want) in [
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(page.headers[h], want, "{h}");
    }
    let csp = page.headers["content-security-policy"]
        .to_str()
        .expect("csp");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let form = vec![
        (
            "request".to_string(),
            conformance::hidden(&page.body, "request").expect("id"),
        ),
        (
            "csrf".to_string(),
            conformance::hidden(&page.body, "csrf").expect("csrf"),
        ),
        ("username".to_string(), "alice".to_string()),
        ("password".to_string(), conformance::PASSWORD.to_string()),
    ];
    let resp = b.request("POST", &op.url("/login"), Some(&form)).await;
    let cookie = resp
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_string())
        .find(|c| c.contains("oidc_bridge_session_"))
        .expect("session cookie");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    // A plain-http loopback issuer: not Secure, so no __Host- prefix (browsers refuse one).
    assert!(
        !cookie.contains("Secure") && cookie.starts_with("oidc_bridge_session_"),
        "{cookie}"
    );
});

#[tokio::test]
async fn https_issuers_get_host_prefixed_secure_cookies() {
    let c = oidc_bridge::oidc::session::Cookies::new("https://id.example.com", 3600);
    let v = c.set_session("x");
    let v = v.to_str().expect("ascii");
    assert!(
        v.starts_with("__Host-oidc_bridge_session_") && v.contains("=x;"),
        "{v}"
    );
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/", "Secure"] {
        assert!(v.contains(flag), "{v}");
    }
    assert!(!v.contains("Domain"));
}

module!(consent_is_remembered_per_user_client_and_scope_set, |op| {
    let b = Browser::new();
    happy_flow(&op, &b, "client", &["email"], &[]).await;
    happy_flow(&op, &b, "client", &["email"], &[]).await;
    happy_flow(&op, &b, "client", &["profile"], &[]).await;
    happy_flow(&op, &b, "client", &["email"], &[("prompt", "consent")]).await;
    let pages = b.pages_seen.lock().expect("lock").clone();
    assert_eq!(
        pages,
        ["login", "consent", "consent", "consent"],
        "new scope and prompt=consent ask again"
    );
    // Denying consent sends access_denied to the client.
    let p = op.rp("client2").await.authorize_url(&[], &[]);
    let mut denying = Browser::new();
    denying.allow_consent = false;
    let q = denying.authorize(&p.url).await.callback();
    assert_eq!(
        check_error_redirect(&op, &q, Some(&p.state)),
        "access_denied"
    );
});

module!(pkce_is_required_and_plain_refused, |op| {
    let p = op.rp("client").await.authorize_url(&[], &[]);
    let b = Browser::new();
    let q = b
        .authorize(&without_param(
            &without_param(&p.url, "code_challenge"),
            "code_challenge_method",
        ))
        .await
        .callback();
    assert_eq!(
        check_error_redirect(&op, &q, Some(&p.state)),
        "invalid_request"
    );
    let q = b
        .authorize(&with_param(&p.url, "code_challenge_method", "plain"))
        .await
        .callback();
    assert_eq!(
        check_error_redirect(&op, &q, Some(&p.state)),
        "invalid_request"
    );
    // A wrong verifier at the token endpoint.
    let code = b.authorize(&p.url).await.code();
    let (status, _, body) = op
        .token_request(
            "client",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", &"x".repeat(43)),
            ],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
});

module!(response_mode_form_post_posts_code_state_and_iss, |op| {
    let rp = op.rp("client").await;
    let p = rp.authorize_url(&[], &[("response_mode", "form_post")]);
    match Browser::new().authorize(&p.url).await {
        Outcome::FormPost(action, fields) => {
            assert_eq!(action, CALLBACK);
            assert_eq!(fields.get("state"), Some(&p.state));
            assert_eq!(fields.get("iss"), Some(&op.issuer));
            let code = fields.get("code").expect("code").clone();
            rp.exchange(&code, p).await;
        }
        other => panic!("{other:?}"),
    }
});

module!(unknown_client_gets_an_error_page_never_a_redirect, |op| {
    let p = op.rp("client").await.authorize_url(&[], &[]);
    match Browser::new()
        .authorize(&with_param(&p.url, "client_id", "nobody"))
        .await
    {
        Outcome::Page(400, body) => assert!(body.contains("not registered")),
        other => panic!("{other:?}"),
    }
});

module!(
    groups_scope_puts_groups_in_the_id_token_and_userinfo,
    |op| {
        // The user's groups are `Wonderland` and `Developers`: local groups go through the
        // top-level pipeline (lowercased, slugified, sorted) like every connector's.
        let t = happy_flow(&op, &Browser::new(), "client", &["groups"], &[]).await;
        assert_eq!(t.claims["groups"], json!(["developers", "wonderland"]));
        let (_, ui) = op.userinfo(t.access_token()).await;
        assert_eq!(ui["groups"], json!(["developers", "wonderland"]));
    }
);
