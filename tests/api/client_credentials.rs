use serde_json::Value;

use crate::helpers::{SERVICE_SECRET, TestApp, basic, jwt_claims, verify_with_third_party};

#[tokio::test]
async fn a_token_from_curl_u_verifies_against_jwks_with_a_third_party_library() {
    let app = TestApp::spawn().await;
    let url = app.url("/token");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args([
                "-sS",
                "-u",
                "plain:plain-secret-0123456789",
                "-d",
                "grant_type=client_credentials",
            ])
            .arg(url)
            .output()
            .expect("curl runs")
    })
    .await
    .expect("join");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300, "per-client lifetime");
    let token = body["access_token"].as_str().expect("token");
    let claims = verify_with_third_party(&app.jwks().await, token).expect("verifies");
    assert_eq!(claims["iss"], app.issuer.as_str());
    assert_eq!(claims["sub"], "plain");
    assert_eq!(claims["client_id"], "plain");
    assert_eq!(claims["aud"], "https://api.example.com");
    assert_eq!(
        claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat"),
        300
    );
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
}

#[tokio::test]
async fn basic_secret_with_plus_percent_colon_slash_works_when_form_encoded() {
    let app = TestApp::spawn().await;
    let resp = app
        .http
        .post(app.url("/token"))
        .header("Authorization", basic("service", SERVICE_SECRET))
        .form(&[("grant_type", "client_credentials"), ("scope", "read")])
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["pragma"], "no-cache");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["scope"], "read");
    let claims = jwt_claims(body["access_token"].as_str().expect("token"));
    assert_eq!(claims["scope"], "read");
    assert_eq!(
        claims["aud"],
        app.issuer.as_str(),
        "default audience is the issuer"
    );
}

#[tokio::test]
async fn an_unencoded_basic_secret_as_curl_sends_it_also_works() {
    let app = TestApp::spawn().await;
    let raw = format!("service:{SERVICE_SECRET}");
    let header = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, raw)
    );
    let resp = app
        .http
        .post(app.url("/token"))
        .header("Authorization", header)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn client_secret_post_works_and_unrequested_scope_gives_all_allowed() {
    let app = TestApp::spawn().await;
    let body: Value = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "service"),
            ("client_secret", SERVICE_SECRET),
        ])
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("json");
    assert_eq!(body["scope"], "read write");
}

#[tokio::test]
async fn a_wrong_secret_is_401_invalid_client_with_a_basic_challenge() {
    let app = TestApp::spawn().await;
    // Right secret first, so the fast path is warm: a wrong one must still fail.
    app.service_token().await;
    for secret in ["wrong", "s3cret+with%odd:chars/and-mor", ""] {
        let resp = app
            .http
            .post(app.url("/token"))
            .header("Authorization", basic("service", secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("POST");
        assert_eq!(resp.status(), 401, "secret {secret:?}");
        assert!(
            resp.headers()["www-authenticate"]
                .to_str()
                .expect("ascii")
                .starts_with("Basic realm=")
        );
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["error"], "invalid_client");
    }
    let resp = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "service"),
            ("client_secret", "wrong"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn grants_are_limited_to_what_the_client_registered() {
    let app = TestApp::spawn().await;
    // A public client may not use client_credentials.
    let resp = app
        .http
        .post(app.url("/token"))
        .form(&[("grant_type", "client_credentials"), ("client_id", "spa")])
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"], "unauthorized_client");
    // A scope the client may not have.
    let resp = app
        .http
        .post(app.url("/token"))
        .header("Authorization", basic("service", SERVICE_SECRET))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "read admin"),
        ])
        .send()
        .await
        .expect("POST");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"], "invalid_scope");
    // A confidential client may not skip its secret.
    let resp = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "service"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 401);
}
