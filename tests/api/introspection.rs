use serde_json::Value;

use crate::helpers::{SERVICE_SECRET, TestApp, basic};

#[tokio::test]
async fn introspection_reports_active_tokens_and_inactive_everything_else() {
    let app = TestApp::spawn().await;
    let token = app.service_token().await;
    let info = app.introspect(&token).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["client_id"], "service");
    assert_eq!(info["sub"], "service");
    assert_eq!(info["iss"], app.issuer.as_str());
    assert_eq!(info["token_type"], "Bearer");
    assert_eq!(info["scope"], "read write");

    for bogus in ["garbage", "a.b.c", &token[..token.len() - 4]] {
        assert_eq!(
            app.introspect(bogus).await,
            serde_json::json!({"active": false})
        );
    }

    // Expired once the clock passes `exp`.
    app.clock.advance(2 * 3600 + 1);
    assert_eq!(app.introspect(&token).await["active"], false);
}

#[tokio::test]
async fn revocation_answers_200_alike_and_revoked_tokens_go_inactive() {
    let app = TestApp::spawn().await;
    let token = app.service_token().await;
    let revoke = |t: String, auth: String| {
        let app = &app;
        async move {
            let resp = app
                .http
                .post(app.url("/revoke"))
                .header("Authorization", auth)
                .form(&[("token", t.as_str()), ("token_type_hint", "access_token")])
                .send()
                .await
                .expect("POST");
            assert_eq!(resp.headers()["cache-control"], "no-store");
            resp.status()
        }
    };
    // Another client cannot revoke it (and learns nothing: still 200).
    assert_eq!(
        revoke(token.clone(), basic("plain", "plain-secret-0123456789")).await,
        200
    );
    assert_eq!(app.introspect(&token).await["active"], true);
    // Its own client can; revoking again and revoking garbage are 200 too.
    for t in [token.clone(), token.clone(), "unknown".to_string()] {
        assert_eq!(revoke(t, basic("service", SERVICE_SECRET)).await, 200);
    }
    assert_eq!(
        app.introspect(&token).await,
        serde_json::json!({"active": false})
    );
}

/// Introspection as the public client `public` (it authenticates with its id alone).
async fn introspect_as_public(op: &conformance::Op, token: &str) -> Value {
    op.http
        .post(op.url("/introspect"))
        .form(&[("token", token), ("client_id", "public")])
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_client_can_introspect_only_its_own_tokens() {
    let op = conformance::Op::start(conformance::Backend::Sqlite)
        .await
        .expect("provider");
    let browser = conformance::Browser::new();
    let own = conformance::happy_flow(&op, &browser, "public", &["openid"], &[]).await;
    let body = introspect_as_public(&op, own.access_token()).await;
    assert_eq!(body["active"], true, "its own token: {body}");
    assert_eq!(body["client_id"], "public");
    assert_eq!(body["sub"], own.claims["sub"]);

    let other = conformance::happy_flow(&op, &browser, "client", &["openid"], &[]).await;
    let body = introspect_as_public(&op, other.access_token()).await;
    assert_eq!(
        body,
        serde_json::json!({"active": false}),
        "another client's token"
    );
}

#[tokio::test]
async fn introspection_requires_client_authentication() {
    let app = TestApp::spawn().await;
    let token = app.service_token().await;
    let resp = app
        .http
        .post(app.url("/introspect"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 401);
    let resp = app
        .http
        .post(app.url("/introspect"))
        .header("Authorization", basic("service", "nope"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 401);
}
