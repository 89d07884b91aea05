//! What the hostile tests share: the review's set-up (its clients and users, a trusted
//! proxy on loopback so that each test can speak from many addresses), raw token requests,
//! and an authorization-code login as a browser does it.

use std::sync::OnceLock;

pub use conformance::{Backend, Browser, Op, Outcome, basic, http_client, jwt_claims};
pub use serde_json::{Value, json};

pub const ALICE_PASSWORD: &str = conformance::PASSWORD;
pub const HASHED_SECRET: &str = "hashed-secret-0123456789";

/// An argon2id hash of [`HASHED_SECRET`], made once per test binary.
fn hashed() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| oidc_bridge::secret::hash_password(HASHED_SECRET).expect("hash"))
}

/// The review's `serve` set-up, plus a client kept as an argon2id hash, a resource server
/// and a client whose revocation does not end the session. Requests from 127.0.0.1 may
/// say where they come from (`X-Forwarded-For`).
pub fn config(extra: &str) -> String {
    format!(
        r#"
server:
  trusted_proxies: [127.0.0.1/32]
clients:
  - {{ id: web, name: Web App, secret: web-secret-0123456789, scopes: [openid, profile],
      redirect_uris: [https://app.example.com/cb], post_logout_redirect_uris: [https://app.example.com/bye] }}
  - {{ id: web2, secret: web2-secret-0123456789, redirect_uris: [https://two.example.com/cb], skip_consent: true }}
  - {{ id: open, secret: open-secret-0123456789, redirect_uris: [https://open.example.com/cb] }}
  - {{ id: quiet, secret: quiet-secret-0123456789, redirect_uris: [https://quiet.example.com/cb],
      skip_consent: true, logout_revokes_session: false }}
  - {{ id: pub, redirect_uris: ["http://127.0.0.1/cb"], token_endpoint_auth_method: none, skip_consent: true }}
  - {{ id: hashed, secret_hash: "{hash}", grant_types: [client_credentials] }}
  - {{ id: svc, secret: svc-secret-0123456789, grant_types: [client_credentials], scopes: [openid, profile, email, groups] }}
  - {{ id: api, secret: api-secret-0123456789, grant_types: [client_credentials], resource_server_for: [web2] }}
  - {{ id: gateway, secret: gateway-secret-0123456789, grant_types: [client_credentials], resource_server_for: ["*"] }}
users:
  - {{ username: alice, password: "{ALICE_PASSWORD}", email: alice@example.com, name: Alice Liddell,
      groups: [platform-team, developers, admins] }}
  - {{ username: bob, password: builder-pass-0123, email: bob@example.com, groups: [developers] }}
{extra}
"#,
        hash = hashed(),
    )
}

pub async fn start(backend: Backend) -> Option<Op> {
    Op::start_config(backend, &config("")).await
}

pub fn secret_of(client: &str) -> String {
    match client {
        "hashed" => HASHED_SECRET.into(),
        other => format!("{other}-secret-0123456789"),
    }
}

pub fn redirect_of(client: &str) -> &'static str {
    match client {
        "web" => "https://app.example.com/cb",
        "web2" => "https://two.example.com/cb",
        "open" => "https://open.example.com/cb",
        "quiet" => "https://quiet.example.com/cb",
        "pub" => "http://127.0.0.1/cb",
        _ => "https://nowhere.example/cb",
    }
}

/// A raw form POST to `path` with `authorization` (if any) and extra headers.
pub async fn post_form(
    op: &Op,
    path: &str,
    authorization: Option<String>,
    headers: &[(&str, &str)],
    form: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = op.http.post(op.url(path)).form(form);
    if let Some(a) = authorization {
        req = req.header("Authorization", a);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let h = resp.headers().clone();
    (status, h, resp.json().await.unwrap_or(Value::Null))
}

/// A token request authenticated with `client`'s Basic credentials.
pub async fn token(
    op: &Op,
    client: &str,
    form: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    post_form(
        op,
        "/token",
        Some(basic(client, &secret_of(client))),
        &[],
        form,
    )
    .await
}

pub fn pkce() -> (String, String) {
    let verifier = oidc_bridge::secret::random_token(48);
    let challenge = oidc_bridge::secret::b64url(&oidc_bridge::secret::sha256(verifier.as_bytes()));
    (verifier, challenge)
}

/// `/authorize` for `client` with PKCE, `scope` and `extra` parameters.
pub fn authorize_url(
    op: &Op,
    client: &str,
    scope: &str,
    extra: &[(&str, &str)],
) -> (String, String) {
    let (verifier, challenge) = pkce();
    let mut url = url::Url::parse(&op.url("/authorize")).expect("url");
    url.query_pairs_mut()
        .append_pair("client_id", client)
        .append_pair("response_type", "code")
        .append_pair("scope", scope)
        .append_pair("redirect_uri", redirect_of(client))
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    if !extra.iter().any(|(k, _)| *k == "state") {
        url.query_pairs_mut().append_pair("state", "st");
    }
    for (k, v) in extra {
        url.query_pairs_mut().append_pair(k, v);
    }
    (url.to_string(), verifier)
}

/// A full login in `browser` and the code exchange: the token response.
pub async fn login(
    op: &Op,
    browser: &Browser,
    client: &str,
    scope: &str,
    extra: &[(&str, &str)],
) -> Value {
    let (url, verifier) = authorize_url(op, client, scope, extra);
    let code = browser.authorize(&url).await.code();
    exchange(op, client, &code, &verifier).await
}

pub async fn exchange(op: &Op, client: &str, code: &str, verifier: &str) -> Value {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_of(client)),
        ("code_verifier", verifier),
    ];
    let (status, _, body) = if client == "pub" {
        form.push(("client_id", "pub"));
        post_form(op, "/token", None, &[], &form).await
    } else {
        token(op, client, &form).await
    };
    assert_eq!(status, 200, "code exchange: {body}");
    body
}

pub async fn refresh(op: &Op, client: &str, rt: &str) -> (u16, Value) {
    let (status, _, body) = token(
        op,
        client,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await;
    (status, body)
}

pub fn s(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
        .to_string()
}

/// Runs `$body` on SQLite and on PostgreSQL (a fresh schema), with the review's set-up.
#[macro_export]
macro_rules! both {
    ($name:ident, |$op:ident| $body:block) => {
        conformance::module!($name, start = $crate::common::start, |$op| $body);
    };
}

/// Runs `$body` once per backend, with the backend in hand (for tests that start their own
/// provider); on PostgreSQL only when it is available (under `CI` its absence fails).
#[macro_export]
macro_rules! per_backend {
    ($name:ident, |$backend:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn run($backend: conformance::Backend) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run(conformance::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if conformance::postgres_schema().await.is_some() {
                    run(conformance::Backend::Postgres).await
                }
            }
        }
    };
}
