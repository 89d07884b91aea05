//! Back-Channel Logout OP plan (`oidcc-backchannel-rp-initiated-logout-certification-test-plan`:
//! `oidcc-backchannel-logout-discovery-endpoint-verification`,
//! `oidcc-backchannel-rp-initiated-logout`), plus what the plan leaves out: a session
//! ended by revoking its refresh token, every client of the session told, and delivery
//! retried while a client fails.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use conformance::app::verify_with_third_party;
use conformance::{Backend, CALLBACK, POST_LOGOUT, SECRET};

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// One back-channel request a client received: its content type and form fields.
#[derive(Debug)]
struct Received {
    content_type: String,
    form: Vec<(String, String)>,
}

/// A client's back-channel logout endpoint: answers 500 to the first `failures` requests,
/// then 200 with `Cache-Control: no-store` (§2.8).
async fn receiver(
    failures: usize,
) -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<Received>,
    Arc<AtomicUsize>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let app = axum::Router::new().route(
        "/backchannel_logout",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            let _ = tx.send(Received {
                content_type: headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string(),
                form: url::form_urlencoded::parse(body.as_bytes())
                    .into_owned()
                    .collect(),
            });
            async move {
                let status = if n < failures { 500 } else { 200 };
                (
                    axum::http::StatusCode::from_u16(status).expect("status"),
                    [("cache-control", "no-store")],
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/backchannel_logout",
        listener.local_addr().expect("addr")
    );
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (url, rx, calls)
}

/// Two clients with `backchannel_logout_uri` (one URL: the token's `aud` tells them apart)
/// and one without.
fn yaml(uri: &str) -> String {
    format!(
        r#"
clients:
  - id: bcl
    secret: "{SECRET}"
    redirect_uris: [{CALLBACK}]
    post_logout_redirect_uris: [{POST_LOGOUT}]
    grant_types: [authorization_code, refresh_token]
    backchannel_logout_uri: {uri}
  - id: bcl2
    secret: "{SECRET}"
    redirect_uris: [{CALLBACK}]
    grant_types: [authorization_code]
    backchannel_logout_uri: {uri}
  - id: client
    secret: "{SECRET}"
    redirect_uris: [{CALLBACK}]
    grant_types: [authorization_code]
users:
  - username: alice
    password: "{}"
"#,
        conformance::PASSWORD
    )
}

async fn start(
    backend: Backend,
    failures: usize,
) -> Option<(
    Op,
    tokio::sync::mpsc::UnboundedReceiver<Received>,
    Arc<AtomicUsize>,
)> {
    let (uri, rx, calls) = receiver(failures).await;
    let op = Op::start_config(backend, &yaml(&uri)).await?;
    Some((op, rx, calls))
}

/// The next logout token a client received (within 30 seconds: a bound, not a measurement),
/// with the request checked as `oidcc-backchannel-rp-initiated-logout` does.
async fn next_token(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Received>) -> String {
    let got = tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv())
        .await
        .expect("the client is told in time")
        .expect("a request");
    assert!(
        got.content_type
            .starts_with("application/x-www-form-urlencoded"),
        "OIDCBCL-2.5: {got:?}"
    );
    assert_eq!(got.form.len(), 1, "OIDCBCL-2.5: only logout_token: {got:?}");
    assert_eq!(got.form[0].0, "logout_token");
    got.form[0].1.clone()
}

/// `ValidateLogoutTokenSignature`, `ValidateLogoutTokenClaims`, `CheckLogoutTokenNoNonce`,
/// `CheckLogoutTokenHasSubOrSid`, and the ID token's `sub` and `sid`.
async fn check_logout_token(op: &Op, token: &str, client_id: &str, id_token: &Value) {
    let jwks = op
        .http
        .get(op.url("/jwks"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let claims = verify_with_third_party(&jwks, token).expect("OIDCBCL-2.4: signed by the OP");
    assert_eq!(
        jwt_header(token)["typ"],
        "logout+jwt",
        "OIDCBCL-2.4: explicitly typed"
    );
    assert_eq!(claims["iss"], op.issuer.as_str());
    assert_eq!(claims["aud"], client_id);
    let iat = claims["iat"].as_i64().expect("iat");
    assert!(claims["exp"].as_i64().expect("exp") > iat);
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16), "jti");
    assert_eq!(
        claims["events"],
        json!({ EVENT: {} }),
        "the back-channel logout event"
    );
    assert!(claims.get("nonce").is_none(), "OIDCBCL-2.4: no nonce");
    assert_eq!(
        claims["sub"], id_token["sub"],
        "CheckIdTokenSubMatchesLogoutToken"
    );
    assert_eq!(
        claims["sid"], id_token["sid"],
        "CheckIdTokenSidMatchesLogoutToken"
    );
}

/// The end-session request with `id_token_hint`, confirmed; where it sent the browser.
async fn end_session(
    op: &Op,
    b: &Browser,
    id_token: &str,
    state: &str,
) -> std::collections::HashMap<String, String> {
    let mut url = url::Url::parse(&op.url("/logout")).expect("url");
    url.query_pairs_mut()
        .append_pair("id_token_hint", id_token)
        .append_pair("post_logout_redirect_uri", POST_LOGOUT)
        .append_pair("state", state);
    let page = b.request("GET", url.as_str(), None).await;
    let mut form: Vec<(String, String)> =
        ["csrf", "id_token_hint", "post_logout_redirect_uri", "state"]
            .iter()
            .filter_map(|n| conformance::hidden(&page.body, n).map(|v| (n.to_string(), v)))
            .collect();
    form.push(("confirm".into(), "yes".into()));
    let done = b.request("POST", &op.url("/logout"), Some(&form)).await;
    let to = done.location.expect("redirected to the post-logout URI");
    assert!(to.starts_with(POST_LOGOUT), "{to}");
    url::Url::parse(&to)
        .expect("url")
        .query_pairs()
        .into_owned()
        .collect()
}

macro_rules! on_both {
    ($name:ident, $run:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$run(conformance::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$run(conformance::Backend::Postgres).await
            }
        }
    };
}

async fn discovery(backend: Backend) {
    let Some((op, _, _)) = start(backend, 0).await else {
        return;
    };
    let d = op.discovery().await;
    assert_eq!(d["backchannel_logout_supported"], true, "OIDCBCL-2.1");
    assert_eq!(
        d["backchannel_logout_session_supported"], true,
        "OIDCBCL-2.1: sid is sent"
    );
    // A provider without such clients does not say it.
    let Some(plain) = Op::start(backend).await else {
        return;
    };
    assert!(
        plain
            .discovery()
            .await
            .get("backchannel_logout_supported")
            .is_none()
    );
}
on_both!(
    oidcc_backchannel_logout_discovery_endpoint_verification,
    discovery
);

async fn rp_initiated(backend: Backend) {
    let Some((op, mut rx, _)) = start(backend, 0).await else {
        return;
    };
    let b = Browser::new();
    let t = happy_flow(&op, &b, "bcl", &[], &[]).await;
    let q = end_session(&op, &b, &t.id_token, "after-logout").await;
    assert_eq!(
        q.get("state").map(String::as_str),
        Some("after-logout"),
        "CheckPostLogoutState"
    );
    let token = next_token(&mut rx).await;
    check_logout_token(&op, &token, "bcl", &t.claims).await;
    // The session is gone: prompt=none must fail.
    b.expect_no_login();
    let p = op.rp("bcl").await.authorize_url(&[], &[("prompt", "none")]);
    let q = b.authorize(&p.url).await.callback();
    assert_eq!(
        check_error_redirect(&op, &q, Some(&p.state)),
        "login_required"
    );
}
on_both!(oidcc_backchannel_rp_initiated_logout, rp_initiated);

async fn every_client(backend: Backend) {
    let Some((op, mut rx, _)) = start(backend, 0).await else {
        return;
    };
    let b = Browser::new();
    let first = happy_flow(&op, &b, "bcl", &[], &[]).await;
    let second = happy_flow(&op, &b, "bcl2", &[], &[]).await;
    let _third = happy_flow(&op, &b, "client", &[], &[]).await;
    assert_eq!(
        first.claims["sid"], second.claims["sid"],
        "one session, two clients"
    );
    end_session(&op, &b, &first.id_token, "s").await;
    let mut auds = Vec::new();
    for _ in 0..2 {
        let token = next_token(&mut rx).await;
        let aud = jwt_claims(&token)["aud"].as_str().expect("aud").to_string();
        let id_token = if aud == "bcl" {
            &first.claims
        } else {
            &second.claims
        };
        check_logout_token(&op, &token, &aud, id_token).await;
        auds.push(aud);
    }
    auds.sort();
    assert_eq!(
        auds,
        ["bcl", "bcl2"],
        "each client with a back-channel URI, once"
    );
}
on_both!(every_client_of_the_session_is_told, every_client);

async fn revoked(backend: Backend) {
    let Some((op, mut rx, _)) = start(backend, 0).await else {
        return;
    };
    let b = Browser::new();
    let t = happy_flow(&op, &b, "bcl", &[], &[]).await;
    let refresh = t.refresh_token().expect("a refresh token").to_string();
    let resp = op
        .http
        .post(op.url("/revoke"))
        .header("Authorization", conformance::basic("bcl", SECRET))
        .form(&[("token", refresh.as_str())])
        .send()
        .await
        .expect("revoke");
    assert_eq!(resp.status(), 200);
    let token = next_token(&mut rx).await;
    check_logout_token(&op, &token, "bcl", &t.claims).await;
}
on_both!(
    revoking_a_refresh_token_ends_the_session_for_its_clients,
    revoked
);

async fn retried(backend: Backend) {
    let Some((op, mut rx, calls)) = start(backend, 2).await else {
        return;
    };
    let b = Browser::new();
    let t = happy_flow(&op, &b, "bcl", &[], &[]).await;
    end_session(&op, &b, &t.id_token, "s").await;
    let tokens = [
        next_token(&mut rx).await,
        next_token(&mut rx).await,
        next_token(&mut rx).await,
    ];
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "two failures, then delivered"
    );
    assert!(
        tokens.iter().all(|t| t == &tokens[0]),
        "the same logout token each time"
    );
}
on_both!(delivery_is_retried_while_the_client_fails, retried);

/// Mock mode: the control API's `sessions/revoke` tells the clients as a sign-out would,
/// so client authors can test their back-channel handling against the mock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mock_tells_clients_of_the_sessions_it_revokes() {
    let (uri, mut rx, _) = receiver(0).await;
    let idp = oidc_bridge::testkit::MockIdp::builder()
        .config_yaml(&format!(
            "clients:\n  - id: bcl\n    secret: \"{SECRET}\"\n    redirect_uris: [{CALLBACK}]\n    backchannel_logout_uri: {uri}\n    skip_consent: true\n"
        ))
        .user("alice", &["qa"])
        .start()
        .await
        .expect("mock");
    let iss = idp.issuer().to_string();
    let mut authorize = url::Url::parse(&format!("{iss}/authorize")).expect("url");
    authorize
        .query_pairs_mut()
        .append_pair("client_id", "bcl")
        .append_pair("redirect_uri", CALLBACK)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid")
        .append_pair("login_hint", "alice")
        .append_pair(
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        )
        .append_pair("code_challenge_method", "S256");
    let b = Browser::new();
    let q = b.authorize(authorize.as_str()).await.callback();
    assert!(q.contains_key("code"), "{q:?}");
    let (status, body) = conformance::post_json(
        &format!("{iss}/mock/sessions/revoke"),
        json!({"sub": "alice"}),
    )
    .await;
    assert_eq!((status, body["revoked"].as_u64()), (200, Some(1)), "{body}");
    let token = next_token(&mut rx).await;
    let claims = jwt_claims(&token);
    assert_eq!(claims["aud"], "bcl");
    assert_eq!(claims["sub"], "alice");
    assert!(claims["sid"].is_string());
    assert_eq!(jwt_header(&token)["typ"], "logout+jwt");
}

async fn replaced(backend: Backend) {
    let Some((op, mut rx, _)) = start(backend, 0).await else {
        return;
    };
    let b = Browser::new();
    let first = happy_flow(&op, &b, "bcl", &[], &[]).await;
    // Signing in again in the same browser replaces the session: the old one has ended.
    let second = happy_flow(&op, &b, "bcl", &[], &[("prompt", "login")]).await;
    assert_ne!(first.claims["sid"], second.claims["sid"]);
    let token = next_token(&mut rx).await;
    check_logout_token(&op, &token, "bcl", &first.claims).await;
}
on_both!(a_session_replaced_by_a_new_sign_in_is_told, replaced);
