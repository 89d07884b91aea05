//! Checks of the plain records: clients, keys, revocations, pending requests, sessions,
//! consents, identities, conflicts.

use std::sync::Arc;

use crate::model::{AuthRequestRecord, ClientRecord, ClientSource, SessionRecord, StoredSecret};
use crate::storage::api::{Storage, StorageError};

use super::fixtures::*;

pub async fn clients_round_trip(s: &dyn Storage) {
    let mut c = ClientRecord {
        id: "web".into(),
        secret_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        metadata: r#"{"id":"web"}"#.into(),
        updated_at: 10,
        source: ClientSource::Config,
        secrets: Vec::new(),
    };
    s.upsert_client(&c).await.expect("insert");
    assert_eq!(s.get_client("web").await.expect("get"), Some(c.clone()));
    c.secret_hash = None;
    c.source = ClientSource::Api;
    c.secrets = vec![
        StoredSecret {
            id: "old".into(),
            hash: "hmac-sha256$x".into(),
            created_at: Some(1),
            expires_at: Some(100),
        },
        StoredSecret {
            id: "new".into(),
            hash: "hmac-sha256$y".into(),
            created_at: Some(2),
            expires_at: None,
        },
    ];
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
    // Creating never overwrites: a second node making the same id is told it exists.
    let taken = ClientRecord {
        metadata: "{}".into(),
        ..c.clone()
    };
    assert!(!s.create_client(&taken).await.expect("create taken"));
    assert_eq!(s.get_client("web").await.expect("get"), Some(c.clone()));
    let fresh = ClientRecord {
        id: "fresh".into(),
        ..c.clone()
    };
    assert!(s.create_client(&fresh).await.expect("create"));
    assert_eq!(s.get_client("fresh").await.expect("get"), Some(fresh));
    assert!(s.delete_client("fresh").await.expect("delete fresh"));
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
        source: ClientSource::Config,
        secrets: Vec::new(),
    })
    .await
    .expect("insert");
    s.migrate().await.expect("second migrate");
    assert!(s.get_client("kept").await.expect("get").is_some());
    assert_eq!(
        s.pending_migrations().await.expect("pending"),
        0,
        "every migration of this build is applied"
    );
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
    assert!(
        !s.is_access_token_revoked("jti-1", None)
            .await
            .expect("check")
    );
    s.revoke_token_id("jti-1", 100).await.expect("revoke");
    s.revoke_token_id("jti-1", 100)
        .await
        .expect("revoking twice is fine");
    s.revoke_token_id("jti-2", 300).await.expect("revoke");
    assert!(
        s.is_access_token_revoked("jti-1", None)
            .await
            .expect("check")
    );
    assert_eq!(s.purge_expired(200).await.expect("purge"), 1);
    assert!(
        !s.is_access_token_revoked("jti-1", None)
            .await
            .expect("check")
    );
    assert!(
        s.is_access_token_revoked("jti-2", Some("sid-x"))
            .await
            .expect("check")
    );
    // More than one purge batch: every expired row goes, the live one stays.
    for i in 0..1_234 {
        s.revoke_token_id(&format!("old-{i}"), 150)
            .await
            .expect("revoke");
    }
    assert_eq!(s.purge_expired(200).await.expect("purge"), 1_234);
    assert!(
        s.is_access_token_revoked("jti-2", None)
            .await
            .expect("check")
    );
}

pub async fn auth_requests_round_trip(s: &dyn Storage) {
    let mut r = AuthRequestRecord {
        id: "req1".into(),
        client_id: "web".into(),
        request: "{}".into(),
        csrf: "csrf".into(),
        binding_hash: "bind".into(),
        session_id: None,
        created_at: 1,
        expires_at: 100,
    };
    s.put_auth_request(&r).await.expect("put");
    r.session_id = Some("sess".into());
    s.put_auth_request(&r).await.expect("update");
    assert!(s.get_auth_request("req1").await.expect("get") == Some(r.clone()));
    assert_eq!(s.purge_expired(50).await.expect("purge"), 0);
    s.delete_auth_request("req1").await.expect("delete");
    assert!(s.get_auth_request("req1").await.expect("get").is_none());
    // A code answering the request takes it away in the same transaction.
    s.insert_auth_code(&code("answers-req1", "web"), Some("req1"))
        .await
        .expect("code");
    assert!(s.get_auth_request("req1").await.expect("get").is_none());
    s.put_auth_request(&r).await.expect("put");
    s.purge_expired(101).await.expect("purge");
    assert!(
        s.get_auth_request("req1").await.expect("get").is_none(),
        "expired ones go"
    );
}

pub async fn sessions_round_trip(s: &dyn Storage) {
    s.create_session(&session("a", "alice"))
        .await
        .expect("create");
    s.create_session(&session("b", "alice"))
        .await
        .expect("create");
    s.create_session(&session("c", "bob"))
        .await
        .expect("create");
    assert_eq!(
        s.get_session("a").await.expect("get"),
        Some(session("a", "alice"))
    );
    assert_eq!(
        s.get_identity("bob").await.expect("identity"),
        Some(session("c", "bob").identity),
        "a session stores its identity as the subject's latest claims"
    );
    let ended = s.delete_session("a").await.expect("delete");
    assert_eq!(ended.map(|(_, sub)| sub).as_deref(), Some("alice"));
    assert_eq!(s.get_session("a").await.expect("get"), None);
    assert_eq!(s.delete_session("a").await.expect("again"), None);
    let ended = s.delete_sessions(Some("alice")).await.expect("delete");
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].1, "alice");
    assert!(s.get_session("c").await.expect("get").is_some());
    assert_eq!(s.delete_sessions(None).await.expect("delete all").len(), 1);
}

pub async fn consents_round_trip(s: &dyn Storage) {
    assert_eq!(s.get_consent("alice", "web").await.expect("get"), None);
    let scopes = vec!["openid".to_string(), "email".to_string()];
    s.put_consent("alice", "web", &scopes, 5)
        .await
        .expect("put");
    assert_eq!(
        s.get_consent("alice", "web").await.expect("get"),
        Some(scopes)
    );
    s.put_consent("alice", "web", &["openid".to_string()], 6)
        .await
        .expect("replace");
    assert_eq!(
        s.get_consent("alice", "web").await.expect("get"),
        Some(vec!["openid".to_string()])
    );
    assert_eq!(s.get_consent("alice", "other").await.expect("get"), None);
}

pub async fn identities_round_trip(s: &dyn Storage) {
    s.create_refresh_family(&family("f9"), &refresh("r9", "f9", "j9"), None)
        .await
        .expect("family");
    s.update_refresh_family_grant("f9", r#"{"new":true}"#)
        .await
        .expect("update");
    assert_eq!(
        s.get_refresh_family("f9")
            .await
            .expect("get")
            .map(|f| f.grant),
        Some(r#"{"new":true}"#.to_string())
    );
    assert_eq!(s.get_identity("u1").await.expect("get"), None);
    s.put_identity("u1", r#"{"sub":"u1"}"#, 1)
        .await
        .expect("put");
    s.put_identity("u1", r#"{"sub":"u1","name":"N"}"#, 2)
        .await
        .expect("update");
    assert_eq!(
        s.get_identity("u1").await.expect("get").as_deref(),
        Some(r#"{"sub":"u1","name":"N"}"#)
    );
}

/// A second record under the same key is a typed conflict, not a database failure.
pub async fn duplicate_records(s: &dyn Storage) {
    s.insert_auth_code(&code("dup", "web"), None)
        .await
        .expect("insert");
    assert!(matches!(
        s.insert_auth_code(&code("dup", "web"), None).await,
        Err(StorageError::Conflict(_))
    ));
    let session = SessionRecord {
        id_hash: "h-dup".into(),
        sid: "sid-dup".into(),
        sub: "alice".into(),
        identity: "{}".into(),
        auth_time: 1,
        created_at: 1,
        expires_at: 1_000,
    };
    s.create_session(&session).await.expect("session");
    assert!(matches!(
        s.create_session(&session).await,
        Err(StorageError::Conflict(_))
    ));
}
