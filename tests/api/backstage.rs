//! Backstage's OIDC client, for real: openid-client v5 (the library Backstage's OIDC
//! provider is built on) with Backstage's defaults, from `tests/backstage/`, against the
//! server on SQLite and on PostgreSQL.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use crate::helpers::{Spawn, TestApp, postgres_store};

const YAML: &str = r#"
clients:
  - id: backstage
    name: Backstage
    secret: "backstage-secret+/=:%-0123456789"
    redirect_uris: [http://localhost:7007/api/auth/oidc/handler/frame]
    grant_types: [authorization_code, refresh_token]
users:
  - username: alice
    password: "wonderland-password"
    email: alice@example.com
    name: Alice Liddell
    groups: [platform-team]
"#;

fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/backstage")
}

/// `npm ci` once, from the committed lockfile.
fn install() {
    conformance::npm_ci(&project_dir(), "openid-client/package.json");
}

async fn run_against(app: &TestApp) -> serde_json::Value {
    let issuer = app.issuer.clone();
    let out = tokio::task::spawn_blocking(move || {
        install();
        Command::new("node")
            .arg("backstage-client.mjs")
            .current_dir(project_dir())
            .env("ISSUER", issuer)
            .env("CLIENT_ID", "backstage")
            .env("CLIENT_SECRET", "backstage-secret+/=:%-0123456789")
            .env(
                "REDIRECT_URI",
                "http://localhost:7007/api/auth/oidc/handler/frame",
            )
            .env("USERNAME", "alice")
            .env("PASSWORD", "wonderland-password")
            .output()
            .expect("node runs")
    })
    .await
    .expect("join");
    assert!(
        out.status.success(),
        "openid-client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON line")
}

fn check(app: &TestApp, seen: &serde_json::Value) {
    assert_eq!(seen["issuer"], app.issuer.as_str());
    assert_eq!(seen["prompt_none_error"], "login_required");
    assert_eq!(seen["sub"], "alice");
    // openid-client reports `expires_in` as its `expires_at` less the time it is read, which
    // can be a second later than the answer: a one-hour token reads 3600 or 3599.
    let expires_in = seen["expires_in"].as_i64().expect("expires_in");
    assert!((3599..=3600).contains(&expires_in), "{expires_in}");
    assert_eq!(seen["has_refresh_token"], true, "no offline_access needed");
    assert_eq!(
        seen["id_token_groups"],
        serde_json::json!(["platform-team"])
    );
    assert_eq!(seen["userinfo"]["sub"], "alice");
    assert_eq!(seen["userinfo"]["email"], "alice@example.com");
    assert_eq!(seen["userinfo"]["name"], "Alice Liddell");
    assert_eq!(seen["refreshed_sub"], "alice");
    assert_eq!(seen["refresh_rotated"], true);
    assert_eq!(seen["userinfo_after_refresh"], "alice");
    assert_eq!(seen["refresh_after_revoke"], "invalid_grant");
}

#[tokio::test]
async fn backstage_openid_client_signs_in_refreshes_and_revokes_on_sqlite() {
    let app = TestApp::spawn_with(Spawn {
        yaml: YAML.into(),
        ..Spawn::default()
    })
    .await;
    let seen = run_against(&app).await;
    check(&app, &seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backstage_openid_client_signs_in_refreshes_and_revokes_on_postgres() {
    let Some((store, _)) = postgres_store().await else {
        return;
    };
    let app = TestApp::spawn_with(Spawn {
        yaml: format!(
            "{YAML}\nsigning:\n  encryption_key: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
        ),
        storage: Some(store as Arc<dyn oidc_bridge::storage::Storage>),
        ..Spawn::default()
    })
    .await;
    let seen = run_against(&app).await;
    check(&app, &seen);
}
