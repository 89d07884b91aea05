//! Token lifecycle: L1 (grace window forks), L2 (codes burnt by anyone), L3 (client tokens
//! at userinfo), L8 (introspection for all), L9 (logout leaves tokens alive), I9 (removed
//! clients' tokens). Storage-backed, so on both backends.

use crate::both;
use crate::common::*;

// L1: replaying a just-rotated token inside the grace window gave a second, independent
// successor; both branches then refreshed forever.
both!(
    l1_a_retry_in_the_grace_window_gets_the_same_successor,
    |op| {
        let t = login(&op, &Browser::new(), "web2", "openid offline_access", &[]).await;
        let rt0 = s(&t, "refresh_token");
        let (status, first) = refresh(&op, "web2", &rt0).await;
        assert_eq!(status, 200, "{first}");
        let (status, retry) = refresh(&op, "web2", &rt0).await;
        assert_eq!(status, 200, "inside the grace window: {retry}");
        assert_eq!(retry["refresh_token"], first["refresh_token"], "no fork");
        assert_eq!(
            retry["access_token"], first["access_token"],
            "the same response"
        );
        op.clock.advance(6);
        let (status, body) = refresh(&op, "web2", &rt0).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );
        let (status, _) = refresh(&op, "web2", &s(&first, "refresh_token")).await;
        assert_eq!(status, 400, "reuse after the window revokes the family");
    }
);

// L2: a code presented by another client (even a public client id) was burnt, and after
// redemption that presentation revoked the victim's tokens.
both!(
    l2_a_code_is_not_burnt_by_a_client_it_was_not_issued_to,
    |op| {
        let b = Browser::new();
        let (url, verifier) = authorize_url(&op, "web2", "openid offline_access", &[]);
        let code = b.authorize(&url).await.code();
        let theft = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect_of("web2")),
            ("code_verifier", verifier.as_str()),
        ];
        let (status, _, body) = token(&op, "open", &theft).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );
        let mut as_public = theft.to_vec();
        as_public.push(("client_id", "pub"));
        let (status, _, _) = post_form(&op, "/token", None, &[], &as_public).await;
        assert_eq!(status, 400);
        let t = exchange(&op, "web2", &code, &verifier).await;
        // After redemption, someone else's presentation revokes nothing.
        let (status, _, _) = post_form(&op, "/token", None, &[], &as_public).await;
        assert_eq!(status, 400);
        assert_eq!(op.userinfo(&s(&t, "access_token")).await.0, 200);
        assert_eq!(refresh(&op, "web2", &s(&t, "refresh_token")).await.0, 200);
    }
);

// L2: after redemption, anyone who saw a public client's code (and knows its public
// client_id) revoked the victim's tokens by presenting it. Without the PKCE verifier the
// presentation now revokes nothing; with it, it is a real replay.
both!(l2_a_used_code_without_its_verifier_revokes_nothing, |op| {
    let (url, verifier) = authorize_url(&op, "pub", "openid offline_access", &[]);
    let code = Browser::new().authorize(&url).await.code();
    let t = exchange(&op, "pub", &code, &verifier).await;
    let replay = |v: Option<&str>| {
        let mut form = vec![
            ("grant_type", "authorization_code".to_string()),
            ("client_id", "pub".to_string()),
            ("code", code.clone()),
            ("redirect_uri", redirect_of("pub").to_string()),
        ];
        if let Some(v) = v {
            form.push(("code_verifier", v.to_string()));
        }
        form
    };
    let send = |form: Vec<(&'static str, String)>| {
        let op = &op;
        async move {
            let f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post_form(op, "/token", None, &[], &f).await.0
        }
    };
    assert_eq!(send(replay(None)).await, 400);
    assert_eq!(
        send(replay(Some(
            "wrong-verifier-wrong-verifier-wrong-verifier-0"
        )))
        .await,
        400
    );
    assert_eq!(
        op.userinfo(&s(&t, "access_token")).await.0,
        200,
        "nothing revoked"
    );
    assert_eq!(send(replay(Some(&verifier))).await, 400);
    assert_eq!(
        op.userinfo(&s(&t, "access_token")).await.0,
        401,
        "a real replay revokes"
    );
});

// L9: a code issued before a logout and redeemed after it started a family that outlived
// the logout.
both!(
    l9_a_code_redeemed_after_logout_issues_nothing_that_lasts,
    |op| {
        let b = Browser::new();
        let (url, verifier) = authorize_url(&op, "web2", "openid offline_access", &[]);
        let code = b.authorize(&url).await.code();
        let page = b.request("GET", &op.url("/logout"), None).await;
        let csrf = conformance::hidden(&page.body, "csrf").expect("confirmation page");
        let form = vec![
            ("confirm".to_string(), "yes".to_string()),
            ("csrf".to_string(), csrf),
        ];
        assert_eq!(
            b.request("POST", &op.url("/logout"), Some(&form))
                .await
                .status,
            200
        );
        let t = exchange(&op, "web2", &code, &verifier).await;
        assert_eq!(op.userinfo(&s(&t, "access_token")).await.0, 401);
        assert_eq!(refresh(&op, "web2", &s(&t, "refresh_token")).await.0, 400);
    }
);

// L3: a client named like a user got that user's profile at /userinfo.
both!(l3_a_client_token_is_not_a_user_token, |op| {
    let (status, _, t) = token(
        &op,
        "svc",
        &[
            ("grant_type", "client_credentials"),
            ("scope", "openid profile email groups"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{t}");
    let (status, body) = op.userinfo(&s(&t, "access_token")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token")),
        "{body}"
    );
    let yaml = config("").replace("id: svc,", "id: alice,");
    let err = oidc_bridge::config::from_yaml_str(&yaml, &|_| None).expect_err("refused");
    assert!(err.to_string().contains("is also a username"), "{err}");
});

// L8: any confidential client could introspect every other client's tokens.
both!(
    l8_introspection_answers_only_the_tokens_client_or_its_resource_server,
    |op| {
        let t = login(&op, &Browser::new(), "web2", "openid", &[]).await;
        let at = s(&t, "access_token");
        let ask = |client: &'static str| {
            let at = at.clone();
            let op = &op;
            async move {
                let (status, _, body) = post_form(
                    op,
                    "/introspect",
                    Some(basic(client, &secret_of(client))),
                    &[],
                    &[("token", &at)],
                )
                .await;
                assert_eq!(status, 200, "{body}");
                body["active"].clone()
            }
        };
        assert_eq!(ask("web2").await, true, "its own client");
        assert_eq!(ask("api").await, true, "a resource server for web2");
        assert_eq!(
            ask("gateway").await,
            true,
            "a resource server for every client"
        );
        assert_eq!(ask("open").await, false, "another client");
        assert_eq!(ask("svc").await, false, "another client");
    }
);

// L9: after logout, the session's refresh token still refreshed and its access token still
// worked. Backstage signs out by revoking its refresh token only.
both!(l9_logout_and_revocation_end_what_the_session_issued, |op| {
    let b = Browser::new();
    let t = login(&op, &b, "web2", "openid offline_access", &[]).await;
    let other = login(&op, &b, "open", "openid", &[]).await; // same SSO session
    let page = b.request("GET", &op.url("/logout"), None).await;
    let csrf = conformance::hidden(&page.body, "csrf").expect("confirmation page");
    let form = vec![
        ("confirm".to_string(), "yes".to_string()),
        ("csrf".to_string(), csrf),
    ];
    assert_eq!(
        b.request("POST", &op.url("/logout"), Some(&form))
            .await
            .status,
        200
    );
    assert_eq!(refresh(&op, "web2", &s(&t, "refresh_token")).await.0, 400);
    assert_eq!(op.userinfo(&s(&t, "access_token")).await.0, 401);
    assert_eq!(
        op.userinfo(&s(&other, "access_token")).await.0,
        401,
        "every client of it"
    );

    // Revoking a refresh token ends the session (logout_revokes_session, the default)...
    let b = Browser::new();
    let t = login(&op, &b, "web2", "openid offline_access", &[]).await;
    let other = login(&op, &b, "open", "openid", &[]).await;
    let (status, _, _) = post_form(
        &op,
        "/revoke",
        Some(basic("web2", &secret_of("web2"))),
        &[],
        &[("token", &s(&t, "refresh_token"))],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(op.userinfo(&s(&other, "access_token")).await.0, 401);
    b.expect_no_login();
    let (url, _) = authorize_url(&op, "web2", "openid", &[]);
    assert!(
        matches!(b.authorize(&url).await, Outcome::Page(200, body) if body.contains("name=\"password\"")),
        "the SSO session is over: sign in again"
    );
    // ...unless the client says otherwise.
    let b = Browser::new();
    let t = login(&op, &b, "quiet", "openid offline_access", &[]).await;
    let (status, _, _) = post_form(
        &op,
        "/revoke",
        Some(basic("quiet", &secret_of("quiet"))),
        &[],
        &[("token", &s(&t, "refresh_token"))],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(refresh(&op, "quiet", &s(&t, "refresh_token")).await.0, 400);
    b.expect_no_login();
    let (url, _) = authorize_url(&op, "quiet", "openid", &[]);
    assert!(
        matches!(b.authorize(&url).await, Outcome::Callback(q) if q.contains_key("code")),
        "the SSO session lives on: no sign-in needed"
    );
});

// I9: a client removed from the config kept its tokens working at /userinfo, outside its
// groups view. (A restart without it, or a reload, takes it out of the registry.)
both!(i9_a_removed_clients_tokens_stop_working, |op| {
    let t = login(&op, &Browser::new(), "open", "openid", &[]).await;
    let at = s(&t, "access_token");
    assert_eq!(op.userinfo(&at).await.0, 200);
    assert!(op.state.clients.remove("open"));
    let (status, body) = op.userinfo(&at).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token")),
        "{body}"
    );
    let (_, _, body) = post_form(
        &op,
        "/introspect",
        Some(basic("gateway", &secret_of("gateway"))),
        &[],
        &[("token", &at)],
    )
    .await;
    assert_eq!(
        body["active"], false,
        "inactive for every resource server too"
    );
});
