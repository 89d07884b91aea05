//! Rotation, publication ahead of use, retention, restarts and several nodes.

use std::sync::Arc;

use oidc_bridge::config::Seconds;
use oidc_bridge::keys::KeyState;

use crate::helpers::{CONFIG, Spawn, TestApp, jwt_header, postgres_store, verify_with_third_party};

fn kids(jwks: &serde_json::Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_string())
        .collect()
}

#[tokio::test]
async fn the_next_key_is_in_jwks_before_it_signs_and_old_tokens_verify_after_rotation() {
    let app = TestApp::spawn().await;
    let old_kid = kids(&app.jwks().await)[0].clone();
    let before = app.service_token().await;

    let new_kid = app
        .state
        .keys
        .rotate(Seconds::hours(1))
        .await
        .expect("rotate")
        .expect("added");
    let jwks = app.jwks().await;
    assert_eq!(
        kids(&jwks),
        [old_kid.clone(), new_kid.clone()],
        "active first, then next"
    );
    let during = app.service_token().await;
    assert_eq!(
        jwt_header(&during)["kid"],
        old_kid.as_str(),
        "next key must not sign yet"
    );

    app.clock.advance(3600 + 1);
    app.state.keys.refresh().await.expect("refresh");
    let after = app.service_token().await;
    assert_eq!(
        jwt_header(&after)["kid"],
        new_kid.as_str(),
        "new key signs after lead time"
    );
    let jwks = app.jwks().await;
    assert_eq!(
        kids(&jwks),
        [new_kid.clone(), old_kid.clone()],
        "retired key still published"
    );
    // The token signed before the rotation still verifies, with a third party and with us.
    verify_with_third_party(&jwks, &before).expect("old token verifies");
    assert_eq!(app.introspect(&before).await["active"], true);

    let states: Vec<(String, KeyState)> = app
        .state
        .keys
        .list()
        .into_iter()
        .map(|k| (k.kid, k.state))
        .collect();
    assert_eq!(
        states,
        [
            (old_kid.clone(), KeyState::Retired),
            (new_kid.clone(), KeyState::Active)
        ]
    );

    // Past the retention window (longest token lifetime 2h, plus 1h), the old key goes.
    app.clock.advance(3 * 3600 + 60);
    app.state.keys.refresh().await.expect("refresh");
    assert_eq!(kids(&app.jwks().await), [new_kid]);
}

#[tokio::test]
async fn scheduled_rotation_publishes_ahead_then_switches() {
    let app = TestApp::spawn_with(Spawn {
        yaml: format!("{CONFIG}\nsigning:\n  rotation_period: 2h\n  publish_ahead: 30m\n"),
        ..Spawn::default()
    })
    .await;
    let first = kids(&app.jwks().await);
    assert_eq!(first.len(), 1);
    app.clock.advance(90 * 60 + 1);
    app.state.keys.refresh().await.expect("refresh");
    let jwks = kids(&app.jwks().await);
    assert_eq!(jwks.len(), 2, "next key published 30m ahead");
    assert_eq!(
        jwt_header(&app.service_token().await)["kid"],
        first[0].as_str()
    );
    app.clock.advance(30 * 60);
    assert_eq!(
        jwt_header(&app.service_token().await)["kid"],
        jwks[1].as_str()
    );
}

#[tokio::test]
async fn a_restart_on_the_same_sqlite_file_keeps_keys_and_clients() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("bridge.db").display());
    let issuer = Some("https://id.example.test".to_string());
    let first = TestApp::spawn_with(Spawn {
        database: db.clone(),
        issuer: issuer.clone(),
        ..Spawn::default()
    })
    .await;
    let kid_before = kids(&first.jwks().await);
    let token = first.service_token().await;
    first.stop().await;
    assert!(
        dir.path().join("bridge.db.key").exists(),
        "the generated encryption key sits beside the database"
    );

    let second = TestApp::spawn_with(Spawn {
        database: db,
        issuer,
        ..Spawn::default()
    })
    .await;
    assert_eq!(kids(&second.jwks().await), kid_before);
    // The client still authenticates (introspection uses it) and the old token is valid.
    assert_eq!(second.introspect(&token).await["active"], true);
    let clients = second.state.storage.list_clients().await.expect("list");
    assert_eq!(
        clients.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["plain", "service", "spa"]
    );
    assert_eq!(clients[1].secrets.len(), 1, "one configured secret");
    let secret_hash = clients[1].secrets[0].hash.as_str();
    assert!(
        secret_hash.starts_with("hmac-sha256$")
            && !secret_hash.contains(crate::helpers::SERVICE_SECRET),
        "configured secrets are stored as keyed digests, never in the clear: {secret_hash}"
    );
    let fresh = second.service_token().await;
    assert_eq!(jwt_header(&fresh)["kid"], kid_before[0].as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_rotating_at_once_on_postgres_end_with_one_active_key() {
    let Some((store_a, options)) = postgres_store().await else {
        return;
    };
    let store_b: Arc<dyn oidc_bridge::storage::Storage> = Arc::new(
        oidc_bridge::storage::PostgresStorage::connect_with(options)
            .await
            .expect("second pool"),
    );
    let yaml = format!(
        "{CONFIG}\nsigning:\n  encryption_key: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
    );
    let issuer = Some("https://id.example.test".to_string());
    let a = TestApp::spawn_with(Spawn {
        yaml: yaml.clone(),
        issuer: issuer.clone(),
        storage: Some(store_a),
        ..Spawn::default()
    })
    .await;
    let b = TestApp::spawn_with(Spawn {
        yaml,
        issuer,
        storage: Some(store_b),
        ..Spawn::default()
    })
    .await;
    assert_eq!(
        kids(&a.jwks().await),
        kids(&b.jwks().await),
        "one first key"
    );

    for _ in 0..3 {
        let (ra, rb) = tokio::join!(
            a.state.keys.rotate(Seconds(0)),
            b.state.keys.rotate(Seconds(0))
        );
        let added = [ra.expect("a"), rb.expect("b")]
            .into_iter()
            .filter(Option::is_some)
            .count();
        assert!(added >= 1);
        a.state.keys.refresh().await.expect("refresh");
        b.state.keys.refresh().await.expect("refresh");
        for node in [&a, &b] {
            let active: Vec<_> = node
                .state
                .keys
                .list()
                .into_iter()
                .filter(|k| k.state == KeyState::Active)
                .map(|k| k.kid)
                .collect();
            assert_eq!(active.len(), 1, "exactly one active key");
        }
        let ta = a.service_token().await;
        let tb = b.service_token().await;
        assert_eq!(
            jwt_header(&ta)["kid"],
            jwt_header(&tb)["kid"],
            "both nodes sign with it"
        );
        // Each node accepts the other's tokens.
        assert_eq!(a.introspect(&tb).await["active"], true);
        assert_eq!(b.introspect(&ta).await["active"], true);
        verify_with_third_party(&a.jwks().await, &tb).expect("b's token verifies with a's JWKS");
    }
}
