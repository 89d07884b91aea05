//! Database round trips per flow, counted by a storage wrapper (counts, not times), on
//! SQLite and PostgreSQL: a full code + PKCE login with a password at most 6, a refresh at
//! most 2, a client_credentials token none once the client is known.

use std::collections::HashMap;
use std::sync::Arc;

use conformance::counting::CountingStorage;
use conformance::{Browser, CALLBACK, Op};
use oidc_bridge::storage::{PostgresStorage, SqliteStorage, Storage};
use serde_json::Value;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const SECRET: &str = "round-trip-secret-0123456789";

fn yaml() -> String {
    format!(
        r#"
clients:
  - id: portal
    secret: {SECRET}
    redirect_uris: [{CALLBACK}]
    grant_types: [authorization_code, refresh_token, client_credentials]
    skip_consent: true
users:
  - username: alice
    password: "correct horse battery staple"
    email: alice@example.com
    groups: [Developers]
"#
    )
}

async fn store(postgres: bool) -> Option<Arc<dyn Storage>> {
    if postgres {
        let options = conformance::postgres_schema().await?;
        Some(Arc::new(
            PostgresStorage::connect_with(options)
                .await
                .expect("connect"),
        ))
    } else {
        Some(Arc::new(
            SqliteStorage::connect("sqlite::memory:")
                .await
                .expect("sqlite"),
        ))
    }
}

async fn token(op: &Op, form: &[(&str, &str)]) -> Value {
    let resp = op
        .http
        .post(op.url("/token"))
        .basic_auth("portal", Some(SECRET))
        .form(form)
        .send()
        .await
        .expect("token");
    assert_eq!(resp.status(), 200);
    resp.json().await.expect("json")
}

async fn run(postgres: bool) {
    let Some(inner) = store(postgres).await else {
        return;
    };
    let counting = CountingStorage::new(inner);
    let op = Op::start_full(&yaml(), Some(counting.clone()), 0).await;

    // client_credentials: none once the client is known.
    token(&op, &[("grant_type", "client_credentials")]).await;
    counting.take();
    token(&op, &[("grant_type", "client_credentials")]).await;
    assert_eq!(counting.take(), Vec::<&str>::new(), "client_credentials");

    // A full login: authorize, the password form, the code redeemed.
    let url = format!(
        "{}/authorize?client_id=portal&response_type=code&scope=openid%20offline_access&state=st\
         &redirect_uri={CALLBACK}&code_challenge={CHALLENGE}&code_challenge_method=S256",
        op.base
    );
    let q: HashMap<String, String> = Browser::new().authorize(&url).await.callback();
    let tokens = token(
        &op,
        &[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    let login = counting.take();
    assert!(
        login.len() <= 6,
        "a full login: {} round trips: {login:?}",
        login.len()
    );

    // A refresh.
    let rt = tokens["refresh_token"].as_str().expect("refresh token");
    token(
        &op,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await;
    let refresh = counting.take();
    assert!(
        refresh.len() <= 2,
        "a refresh: {} round trips: {refresh:?}",
        refresh.len()
    );
    eprintln!(
        "round trips ({}): login {login:?}, refresh {refresh:?}",
        if postgres { "postgres" } else { "sqlite" }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trips_per_flow_on_sqlite() {
    run(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trips_per_flow_on_postgres() {
    run(true).await;
}
