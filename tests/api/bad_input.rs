//! Every endpoint against malformed requests: each gets a 4xx with an RFC 6749 error body,
//! never a 5xx.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{SERVICE_SECRET, TestApp, basic};

const ERRORS: &[&str] = &[
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "unsupported_token_type",
];

struct Case {
    name: &'static str,
    method: Method,
    path: &'static str,
    content_type: Option<&'static str>,
    authorization: Option<String>,
    body: Vec<u8>,
    status: StatusCode,
    error: &'static str,
}

fn form_case(
    name: &'static str,
    path: &'static str,
    body: &str,
    status: u16,
    error: &'static str,
) -> Case {
    Case {
        name,
        method: Method::POST,
        path,
        content_type: Some("application/x-www-form-urlencoded"),
        authorization: Some(basic("service", SERVICE_SECRET)),
        body: body.as_bytes().to_vec(),
        status: StatusCode::from_u16(status).expect("status"),
        error,
    }
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (path, needs) in [
        ("/token", "grant_type=client_credentials"),
        ("/introspect", "token=abc"),
        ("/revoke", "token=abc"),
    ] {
        cases.push(form_case(
            "missing parameter",
            path,
            "",
            400,
            "invalid_request",
        ));
        cases.push(form_case(
            "duplicated parameter",
            path,
            &format!("{needs}&{needs}"),
            400,
            "invalid_request",
        ));
        cases.push(form_case(
            "oversized body",
            path,
            &format!("{needs}&pad={}", "x".repeat(100 * 1024)),
            413,
            "invalid_request",
        ));
        cases.push(Case {
            name: "wrong content type",
            content_type: Some("application/json"),
            body: br#"{"grant_type":"client_credentials","token":"abc"}"#.to_vec(),
            ..form_case("", path, "", 415, "invalid_request")
        });
        cases.push(Case {
            name: "no content type",
            content_type: None,
            ..form_case("", path, needs, 415, "invalid_request")
        });
        for method in [Method::GET, Method::PUT, Method::DELETE] {
            cases.push(Case {
                name: "wrong method",
                method,
                ..form_case("", path, needs, 405, "invalid_request")
            });
        }
        for garbage in [
            "Basic !!!not-base64!!!".to_string(),
            "Bearer some-token".to_string(),
            format!("Basic {}", "bm8tY29sb24="), // "no-colon"
            "Basic".to_string(),
            "Basic OnNlY3JldA==".to_string(), // ":secret"
            basic("nobody", "whatever"),
        ] {
            cases.push(Case {
                name: "garbage Authorization",
                authorization: Some(garbage),
                ..form_case("", path, needs, 401, "invalid_client")
            });
        }
        cases.push(Case {
            name: "duplicated client_id",
            authorization: None,
            ..form_case(
                "",
                path,
                &format!("{needs}&client_id=spa&client_id=spa"),
                400,
                "invalid_request",
            )
        });
        cases.push(Case {
            name: "Basic and client_secret together",
            ..form_case(
                "",
                path,
                &format!("{needs}&client_secret=x"),
                400,
                "invalid_request",
            )
        });
    }
    cases.push(form_case(
        "unknown grant_type",
        "/token",
        "grant_type=password",
        400,
        "unsupported_grant_type",
    ));
    cases.push(form_case(
        "oversized grant_type",
        "/token",
        &format!("grant_type={}", "g".repeat(20_000)),
        400,
        "unsupported_grant_type",
    ));
    for path in ["/.well-known/openid-configuration", "/jwks"] {
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            cases.push(Case {
                name: "wrong method",
                method,
                path,
                content_type: None,
                authorization: None,
                body: Vec::new(),
                status: StatusCode::METHOD_NOT_ALLOWED,
                error: "invalid_request",
            });
        }
    }
    cases
}

#[tokio::test]
async fn every_endpoint_answers_bad_input_with_a_4xx_and_an_oauth_error_body() {
    let app = TestApp::spawn().await;
    let mut failures = Vec::new();
    for case in cases() {
        let mut req = app.http.request(case.method.clone(), app.url(case.path));
        if let Some(ct) = case.content_type {
            req = req.header("Content-Type", ct);
        }
        if let Some(auth) = &case.authorization {
            req = req.header("Authorization", auth);
        }
        let resp = req.body(case.body.clone()).send().await.expect("request");
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let label = format!("{} {} ({})", case.method, case.path, case.name);
        if status != case.status {
            failures.push(format!(
                "{label}: status {status}, want {}: {body}",
                case.status
            ));
        }
        let error = body["error"].as_str().unwrap_or("");
        if error != case.error || !ERRORS.contains(&error) {
            failures.push(format!("{label}: error {error:?}, want {}", case.error));
        }
        if !body["error_description"].is_string() {
            failures.push(format!("{label}: no error_description"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn a_non_utf8_authorization_header_is_invalid_client() {
    let app = TestApp::spawn().await;
    let value = reqwest::header::HeaderValue::from_bytes(b"Basic \xff\xfe").expect("opaque header");
    let resp = app
        .http
        .post(app.url("/token"))
        .header("Authorization", value)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn userinfo_answers_bad_input_with_rfc_6750_errors() {
    let app = TestApp::spawn().await;
    type Case<'a> = (
        Method,
        Option<&'a str>,
        Option<&'a str>,
        &'a str,
        u16,
        Option<&'a str>,
    );
    let cases: Vec<Case> = vec![
        (Method::GET, None, None, "", 401, None),
        (
            Method::GET,
            Some("Bearer"),
            None,
            "",
            400,
            Some("invalid_request"),
        ),
        (
            Method::GET,
            Some("Basic abc"),
            None,
            "",
            400,
            Some("invalid_request"),
        ),
        (
            Method::GET,
            Some("Bearer not-a-token"),
            None,
            "",
            401,
            Some("invalid_token"),
        ),
        (
            Method::POST,
            Some("Bearer x"),
            Some("application/x-www-form-urlencoded"),
            "access_token=y",
            400,
            Some("invalid_request"),
        ),
        (
            Method::POST,
            None,
            Some("application/x-www-form-urlencoded"),
            "access_token=a&access_token=b",
            400,
            Some("invalid_request"),
        ),
        (
            Method::PUT,
            Some("Bearer x"),
            None,
            "",
            405,
            Some("invalid_request"),
        ),
        (Method::DELETE, None, None, "", 405, Some("invalid_request")),
    ];
    for (method, auth, ct, body, status, error) in cases {
        let mut req = app.http.request(method.clone(), app.url("/userinfo"));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        if let Some(c) = ct {
            req = req.header("Content-Type", c);
        }
        let resp = req.body(body.to_string()).send().await.expect("request");
        let label = format!("{method} {auth:?} {body:?}");
        assert_eq!(resp.status().as_u16(), status, "{label}");
        if status == 401 {
            let challenge = resp.headers()["www-authenticate"].to_str().expect("ascii");
            assert!(challenge.starts_with("Bearer"), "{label}: {challenge}");
        }
        let json: Value = resp.json().await.unwrap_or(Value::Null);
        if let Some(e) = error {
            assert_eq!(json["error"], e, "{label}");
        }
    }
}
