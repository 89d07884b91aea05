//! The storage conformance suite: every backend must pass every check here.
//!
//! `tests/storage.rs` runs it against SQLite (file and memory) and PostgreSQL. Each check
//! takes a freshly migrated, empty store.

use std::sync::Arc;

use super::Storage;
use crate::config::SigningAlgorithm;
use crate::model::{ClientRecord, SigningKeyRecord};

/// Every check, by name, for backends to run one by one.
pub const CHECKS: &[&str] = &[
    "clients_round_trip",
    "migrate_is_idempotent",
    "signing_key_add_is_compare_and_swap",
    "pending_keys_are_superseded",
    "concurrent_rotation_adds_one_key",
    "revocation_and_purge",
];

/// Runs the named check. Panics (fails the test) on any deviation.
pub async fn run(name: &str, s: Arc<dyn Storage>) {
    match name {
        "clients_round_trip" => clients_round_trip(&*s).await,
        "migrate_is_idempotent" => migrate_is_idempotent(&*s).await,
        "signing_key_add_is_compare_and_swap" => signing_key_add_is_compare_and_swap(&*s).await,
        "pending_keys_are_superseded" => pending_keys_are_superseded(&*s).await,
        "concurrent_rotation_adds_one_key" => concurrent_rotation_adds_one_key(s).await,
        "revocation_and_purge" => revocation_and_purge(&*s).await,
        other => panic!("unknown conformance check {other}"),
    }
}

fn key(kid: &str, activates_at: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.into(),
        alg: SigningAlgorithm::ES256,
        private_key: vec![0, 1, 2, 255],
        public_jwk: format!(r#"{{"kid":"{kid}"}}"#),
        created_at: 1_000,
        activates_at,
    }
}

fn kids(keys: &[SigningKeyRecord]) -> Vec<&str> {
    keys.iter().map(|k| k.kid.as_str()).collect()
}

pub async fn clients_round_trip(s: &dyn Storage) {
    let mut c = ClientRecord {
        id: "web".into(),
        secret_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        metadata: r#"{"id":"web"}"#.into(),
        updated_at: 10,
    };
    s.upsert_client(&c).await.expect("insert");
    assert_eq!(s.get_client("web").await.expect("get"), Some(c.clone()));
    c.secret_hash = None;
    c.metadata = r#"{"id":"web","name":"Web"}"#.into();
    c.updated_at = 11;
    s.upsert_client(&c).await.expect("update");
    assert_eq!(s.get_client("web").await.expect("get"), Some(c.clone()));
    let other = ClientRecord {
        id: "api".into(),
        ..c.clone()
    };
    s.upsert_client(&other).await.expect("insert");
    let ids: Vec<String> = s
        .list_clients()
        .await
        .expect("list")
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, ["api", "web"]);
    assert!(s.delete_client("web").await.expect("delete"));
    assert!(!s.delete_client("web").await.expect("delete again"));
    assert_eq!(s.get_client("web").await.expect("get"), None);
}

pub async fn migrate_is_idempotent(s: &dyn Storage) {
    s.upsert_client(&ClientRecord {
        id: "kept".into(),
        secret_hash: None,
        metadata: "{}".into(),
        updated_at: 1,
    })
    .await
    .expect("insert");
    s.migrate().await.expect("second migrate");
    assert!(s.get_client("kept").await.expect("get").is_some());
}

pub async fn signing_key_add_is_compare_and_swap(s: &dyn Storage) {
    assert!(
        s.add_signing_key(None, &key("k1", 100))
            .await
            .expect("add k1")
    );
    assert!(
        !s.add_signing_key(None, &key("k1b", 100))
            .await
            .expect("add stale"),
        "a writer that saw no keys must not add one once k1 exists"
    );
    assert!(
        s.add_signing_key(Some("k1"), &key("k2", 200))
            .await
            .expect("add k2")
    );
    assert!(
        !s.add_signing_key(Some("k1"), &key("k2b", 200))
            .await
            .expect("stale")
    );
    let keys = s.list_signing_keys().await.expect("list");
    assert_eq!(kids(&keys), ["k1", "k2"]);
    assert_eq!(keys[0], key("k1", 100), "a key reads back byte for byte");
    assert!(s.delete_signing_key("k1").await.expect("delete"));
    assert_eq!(kids(&s.list_signing_keys().await.expect("list")), ["k2"]);
}

pub async fn pending_keys_are_superseded(s: &dyn Storage) {
    assert!(
        s.add_signing_key(None, &key("active", 100))
            .await
            .expect("add")
    );
    assert!(
        s.add_signing_key(Some("active"), &key("pending", 5_000))
            .await
            .expect("add")
    );
    // An immediate rotation replaces the pending key, which never signed anything.
    assert!(
        s.add_signing_key(Some("pending"), &key("now", 200))
            .await
            .expect("add")
    );
    assert_eq!(
        kids(&s.list_signing_keys().await.expect("list")),
        ["active", "now"]
    );
}

pub async fn concurrent_rotation_adds_one_key(s: Arc<dyn Storage>) {
    assert!(s.add_signing_key(None, &key("k0", 100)).await.expect("add"));
    let mut tasks = Vec::new();
    for i in 0..10 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.add_signing_key(Some("k0"), &key(&format!("racer{i}"), 200 + i))
                .await
                .expect("add")
        }));
    }
    let mut added = 0;
    for t in tasks {
        if t.await.expect("join") {
            added += 1;
        }
    }
    assert_eq!(added, 1, "exactly one of ten concurrent rotations may win");
    assert_eq!(s.list_signing_keys().await.expect("list").len(), 2);
}

pub async fn revocation_and_purge(s: &dyn Storage) {
    assert!(!s.is_token_id_revoked("jti-1").await.expect("check"));
    s.revoke_token_id("jti-1", 100).await.expect("revoke");
    s.revoke_token_id("jti-1", 100)
        .await
        .expect("revoking twice is fine");
    s.revoke_token_id("jti-2", 300).await.expect("revoke");
    assert!(s.is_token_id_revoked("jti-1").await.expect("check"));
    assert_eq!(s.purge_expired(200).await.expect("purge"), 1);
    assert!(!s.is_token_id_revoked("jti-1").await.expect("check"));
    assert!(s.is_token_id_revoked("jti-2").await.expect("check"));
}
