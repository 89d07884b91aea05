//! `oidcc-refresh-token` (§4.1), plus the refresh behaviour the interactive-flows issue
//! demands: two tabs within the grace window, reuse after it, idle and absolute expiry.

use super::*;
use conformance::module;

async fn refresh(
    op: &Op,
    client: &str,
    token: &str,
    scope: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    op.token_request(client, &form).await
}

fn entropy_ok(token: &str) -> bool {
    token.len() >= 22 && token.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

module!(oidcc_refresh_token, |op| {
    let d = op.discovery().await;
    assert!(
        d["grant_types_supported"]
            .as_array()
            .expect("list")
            .iter()
            .any(|g| g == "refresh_token"),
        "RT-2"
    );
    let b = Browser::new();
    let t1 = happy_flow(
        &op,
        &b,
        "client",
        &["offline_access"],
        &[("prompt", "consent")],
    )
    .await;
    let rt = t1.refresh_token().expect("a refresh token").to_string();
    assert!(entropy_ok(&rt), "RT-1");
    op.clock.advance(1);
    let (status, headers, body) = refresh(&op, "client", &rt, Some("openid offline_access")).await;
    assert_eq!(status, 200, "RT-3: {body}");
    assert!(
        headers["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("application/json"),
        "RT-4"
    );
    assert!(
        headers["cache-control"]
            .to_str()
            .expect("cc")
            .contains("no-store"),
        "RT-5"
    );
    assert!(
        body["token_type"]
            .as_str()
            .expect("RT-6")
            .eq_ignore_ascii_case("bearer"),
        "RT-7"
    );
    let access = body["access_token"].as_str().expect("RT-6");
    assert!(entropy_ok(access), "RT-8");
    assert!(body["expires_in"].as_i64().is_some_and(|e| e > 0), "RT-9");
    assert_ne!(access, t1.access_token(), "RT-10");
    assert!(
        entropy_ok(body["refresh_token"].as_str().expect("rotated")),
        "RT-11"
    );
    let id = jwt_claims(body["id_token"].as_str().expect("refreshed id_token"));
    assert_eq!(id["iss"], t1.claims["iss"], "RT-12");
    assert_eq!(id["sub"], t1.claims["sub"], "RT-12");
    assert_ne!(id["iat"], t1.claims["iat"], "RT-12: fresh iat");
    assert_eq!(id["aud"], t1.claims["aud"], "RT-12");
    assert_eq!(id["auth_time"], t1.claims["auth_time"], "RT-12");
    assert!(
        id.get("nonce").is_none(),
        "no nonce in a refreshed ID token"
    );
    assert!(id.get("azp").is_none());
    let (status, _) = op.userinfo(access).await;
    assert_eq!(status, 200, "RT-13");

    // Client 2, with a 43-character nonce and no scope on refresh.
    let nonce: String = "n0nCe"
        .chars()
        .cycle()
        .take(39)
        .chain("-._~".chars())
        .collect();
    let t2 = happy_flow(&op, &b, "client2", &[], &[("nonce", &nonce)]).await;
    let rt2 = t2
        .refresh_token()
        .expect("client2 refresh token")
        .to_string();
    let (status, _, _) = refresh(&op, "client2", &rt2, None).await;
    assert_eq!(status, 200);
    // Client 2's (already rotated) token presented by client 1: rejected.
    let (status, headers, body) = refresh(&op, "client", &rt2, Some("openid")).await;
    assert_eq!(status, 400, "RT-14");
    assert!(
        headers["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("application/json")
    );
    assert_eq!(body["error"], "invalid_grant", "RT-14");
});

async fn first_refresh_token(op: &Op, client: &str) -> String {
    happy_flow(op, &Browser::new(), client, &[], &[])
        .await
        .refresh_token()
        .expect("refresh token")
        .to_string()
}

module!(
    refresh_two_tabs_within_the_grace_window_both_succeed,
    |op| {
        let rt = first_refresh_token(&op, "client").await;
        let (a, b) = tokio::join!(
            refresh(&op, "client", &rt, None),
            refresh(&op, "client", &rt, None)
        );
        assert_eq!((a.0, b.0), (200, 200), "{} {}", a.2, b.2);
        op.clock.advance(4);
        let (status, _, _) = refresh(&op, "client", &rt, None).await;
        assert_eq!(status, 200, "still inside the 5 s window");
        // Each tab's new token keeps working.
        for tab in [&a.2, &b.2] {
            let next = tab["refresh_token"].as_str().expect("rotated");
            let (status, _, body) = refresh(&op, "client", next, None).await;
            assert_eq!(status, 200, "{body}");
        }
    }
);

module!(refresh_reuse_after_the_window_kills_the_family, |op| {
    let rt = first_refresh_token(&op, "client").await;
    let (status, _, body) = refresh(&op, "client", &rt, None).await;
    assert_eq!(status, 200);
    let child = body["refresh_token"].as_str().expect("child").to_string();
    let access = body["access_token"].as_str().expect("access").to_string();
    op.clock.advance(6);
    let (status, _, body) = refresh(&op, "client", &rt, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _, body) = refresh(&op, "client", &child, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "the family is dead"
    );
    assert_eq!(op.userinfo(&access).await.0, 401, "and its access tokens");
});

module!(refresh_idle_and_absolute_lifetimes_apply, |op| {
    // Defaults: idle 7d, absolute 30d.
    let rt = first_refresh_token(&op, "client").await;
    op.clock.advance(7 * 86_400 + 1);
    let (status, _, body) = refresh(&op, "client", &rt, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "idle expiry"
    );

    let mut rt = first_refresh_token(&op, "client").await;
    for _ in 0..4 {
        op.clock.advance(6 * 86_400);
        let (status, _, body) = refresh(&op, "client", &rt, None).await;
        assert_eq!(
            status,
            200,
            "used within the idle window at day {}: {body}",
            op.clock.current()
        );
        rt = body["refresh_token"].as_str().expect("rotated").to_string();
    }
    // Day 30: inside the idle window of the last token, past the family's absolute lifetime.
    op.clock.advance(6 * 86_400);
    let (status, _, body) = refresh(&op, "client", &rt, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "absolute expiry"
    );
});

module!(refresh_tokens_go_only_to_clients_with_the_grant, |op| {
    let t = happy_flow(&op, &Browser::new(), "client_secret_post", &[], &[]).await;
    assert!(t.refresh_token().is_none());
    let t = happy_flow(&op, &Browser::new(), "client", &[], &[]).await;
    assert!(t.refresh_token().is_some(), "no offline_access needed");
});
