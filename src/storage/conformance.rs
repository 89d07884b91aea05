//! The storage conformance suite: every backend must pass every check here.
//!
//! `tests/storage.rs` runs it against SQLite (file and memory) and PostgreSQL. Each check
//! takes a freshly migrated, empty store.

use std::sync::Arc;

use super::api::{Storage, StorageError};
use crate::config::SigningAlgorithm;
use crate::model::{
    AuthCodeRecord, AuthRequestRecord, ClientRecord, CodeIssuance, Redemption, RefreshFamilyRecord,
    RefreshTokenRecord, SessionRecord, SigningKeyRecord,
};

/// Every check, by name, for backends to run one by one.
pub const CHECKS: &[&str] = &[
    "clients_round_trip",
    "migrate_is_idempotent",
    "signing_key_add_is_compare_and_swap",
    "pending_keys_are_superseded",
    "concurrent_rotation_adds_one_key",
    "revocation_and_purge",
    "auth_requests_round_trip",
    "sessions_round_trip",
    "consents_round_trip",
    "auth_code_is_single_use_under_concurrency",
    "auth_code_of_another_client_is_left_untouched",
    "family_of_a_replayed_code_is_born_revoked",
    "refresh_token_rotates_once_under_concurrency",
    "failed_rotation_leaves_the_token_usable",
    "family_revocation_revokes_its_access_tokens",
    "ending_a_session_revokes_what_it_issued",
    "identities_round_trip",
    "duplicate_records_are_conflicts",
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
        "auth_requests_round_trip" => auth_requests_round_trip(&*s).await,
        "sessions_round_trip" => sessions_round_trip(&*s).await,
        "consents_round_trip" => consents_round_trip(&*s).await,
        "auth_code_is_single_use_under_concurrency" => auth_code_single_use(s).await,
        "auth_code_of_another_client_is_left_untouched" => auth_code_foreign(&*s).await,
        "family_of_a_replayed_code_is_born_revoked" => replayed_code_family(&*s).await,
        "refresh_token_rotates_once_under_concurrency" => refresh_rotates_once(s).await,
        "failed_rotation_leaves_the_token_usable" => failed_rotation(&*s).await,
        "family_revocation_revokes_its_access_tokens" => family_revocation(&*s).await,
        "ending_a_session_revokes_what_it_issued" => end_session(&*s).await,
        "identities_round_trip" => identities_round_trip(&*s).await,
        "duplicate_records_are_conflicts" => duplicate_records(&*s).await,
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
    s.put_auth_request(&r).await.expect("put");
    s.purge_expired(101).await.expect("purge");
    assert!(
        s.get_auth_request("req1").await.expect("get").is_none(),
        "expired ones go"
    );
}

fn session(id: &str, sub: &str) -> SessionRecord {
    SessionRecord {
        id_hash: id.into(),
        sid: format!("sid-{id}"),
        sub: sub.into(),
        identity: "{}".into(),
        auth_time: 10,
        created_at: 10,
        expires_at: 1_000,
    }
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
    s.delete_session("a").await.expect("delete");
    assert_eq!(s.get_session("a").await.expect("get"), None);
    assert_eq!(s.delete_sessions(Some("alice")).await.expect("delete"), 1);
    assert!(s.get_session("c").await.expect("get").is_some());
    assert_eq!(s.delete_sessions(None).await.expect("delete all"), 1);
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

fn code(hash: &str, client: &str) -> AuthCodeRecord {
    AuthCodeRecord {
        code_hash: hash.into(),
        client_id: client.into(),
        grant: "{}".into(),
        created_at: 1,
        expires_at: 61,
        redeemed_at: None,
        family_id: None,
        access_jti: None,
        access_exp: None,
        replayed_at: None,
    }
}

fn issuance(family: Option<&str>, jti: &str) -> CodeIssuance {
    CodeIssuance {
        family_id: family.map(str::to_string),
        access_jti: jti.into(),
        access_exp: 3_000,
    }
}

pub async fn auth_code_single_use(s: Arc<dyn Storage>) {
    s.insert_auth_code(&code("code", "web"))
        .await
        .expect("insert");
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let jti = format!("jti-{i}");
            s.redeem_auth_code("code", "web", &issuance(Some("fam"), &jti), 5)
                .await
                .expect("redeem")
        }));
    }
    let mut first = Vec::new();
    for t in tasks {
        match t.await.expect("join") {
            Redemption::First(c) => {
                assert_eq!(c.grant, "{}");
                first.push(c.access_jti.clone());
            }
            Redemption::Again(c) => assert_eq!(c.redeemed_at, Some(5)),
            other => panic!("the code exists and is web's: {other:?}"),
        }
    }
    assert_eq!(
        first.len(),
        1,
        "exactly one of 20 concurrent redemptions wins"
    );
    // The winner's issuance is recorded with the redemption: a replay sees it.
    match s
        .redeem_auth_code("code", "web", &issuance(None, "later"), 6)
        .await
        .expect("redeem")
    {
        Redemption::Again(c) => {
            assert_eq!(c.family_id.as_deref(), Some("fam"));
            assert_eq!(Some(c.access_jti), first.pop());
        }
        other => panic!("expected Again, got {other:?}"),
    }
    assert_eq!(
        s.redeem_auth_code("nope", "web", &issuance(None, "j"), 6)
            .await
            .expect("redeem"),
        Redemption::Missing
    );
}

pub async fn auth_code_foreign(s: &dyn Storage) {
    s.insert_auth_code(&code("c-web", "web"))
        .await
        .expect("insert");
    match s
        .redeem_auth_code("c-web", "intruder", &issuance(None, "j-x"), 5)
        .await
        .expect("redeem")
    {
        Redemption::Foreign(c) => assert_eq!(c.redeemed_at, None, "left unredeemed"),
        other => panic!("expected Foreign, got {other:?}"),
    }
    assert!(matches!(
        s.redeem_auth_code("c-web", "web", &issuance(None, "j-1"), 6)
            .await
            .expect("redeem"),
        Redemption::First(_)
    ));
}

pub async fn replayed_code_family(s: &dyn Storage) {
    s.insert_auth_code(&code("c-r", "web"))
        .await
        .expect("insert");
    let Redemption::First(_) = s
        .redeem_auth_code("c-r", "web", &issuance(Some("f-r"), "j-r"), 5)
        .await
        .expect("redeem")
    else {
        panic!("first redemption");
    };
    // The replay arrives while the first redemption is still creating its family.
    s.mark_code_replayed("c-r", 6).await.expect("mark");
    s.create_refresh_family(&family("f-r"), &refresh("t-r", "f-r", "j-r"), Some("c-r"))
        .await
        .expect("family");
    let f = s
        .get_refresh_family("f-r")
        .await
        .expect("get")
        .expect("exists");
    assert!(f.revoked_at.is_some(), "revoked as soon as it exists");
    // Without a replay, a family is born live.
    s.create_refresh_family(
        &family("f-ok"),
        &refresh("t-ok", "f-ok", "j-ok"),
        Some("c-none"),
    )
    .await
    .expect("family");
    let f = s
        .get_refresh_family("f-ok")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(f.revoked_at, None);
}

fn family(id: &str) -> RefreshFamilyRecord {
    RefreshFamilyRecord {
        id: id.into(),
        client_id: "web".into(),
        sub: "alice".into(),
        grant: "{}".into(),
        created_at: 1,
        absolute_expires_at: 10_000,
        revoked_at: None,
        sid: Some(format!("sid-{id}")),
    }
}

fn refresh(hash: &str, family_id: &str, jti: &str) -> RefreshTokenRecord {
    RefreshTokenRecord {
        token_hash: hash.into(),
        family_id: family_id.into(),
        created_at: 1,
        idle_expires_at: 5_000,
        rotated_at: None,
        access_jti: Some(jti.into()),
        access_exp: Some(3_000),
        successor_response: None,
    }
}

pub async fn refresh_rotates_once(s: Arc<dyn Storage>) {
    s.create_refresh_family(&family("f1"), &refresh("r1", "f1", "j1"), None)
        .await
        .expect("family");
    let mut tasks = Vec::new();
    for i in 0..10 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let next = refresh(&format!("r1-next-{i}"), "f1", &format!("j1-{i}"));
            let response = format!("response {i}").into_bytes();
            s.rotate_refresh_token("r1", &next, &response, 100 + i)
                .await
                .expect("rotate")
        }));
    }
    let mut winners = Vec::new();
    let mut stored = Vec::new();
    for t in tasks {
        match t.await.expect("join") {
            Redemption::First(old) => winners.push(old),
            Redemption::Again(t) => {
                assert!(t.rotated_at.is_some());
                stored.push(
                    t.successor_response
                        .expect("the winner's response is stored"),
                );
            }
            other => panic!("exists: {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1);
    // Every loser sees the one response the winner stored.
    stored.dedup();
    assert_eq!(stored.len(), 1, "one successor, not a fork");
    let (old, fam) = s
        .get_refresh_token("r1")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(old.successor_response.as_ref(), stored.first());
    assert_eq!(fam, family("f1"));
    // Exactly one successor was written.
    let mut successors = 0;
    for i in 0..10 {
        if s.get_refresh_token(&format!("r1-next-{i}"))
            .await
            .expect("get")
            .is_some()
        {
            successors += 1;
        }
    }
    assert_eq!(successors, 1);
    assert_eq!(
        s.rotate_refresh_token("zz", &refresh("zz-next", "f1", "j"), b"x", 1)
            .await
            .expect("rotate"),
        Redemption::Missing
    );
}

pub async fn failed_rotation(s: &dyn Storage) {
    s.create_refresh_family(&family("f3"), &refresh("r3a", "f3", "j3a"), None)
        .await
        .expect("family");
    s.create_refresh_family(&family("f4"), &refresh("taken", "f4", "j4"), None)
        .await
        .expect("family");
    // The successor cannot be written (its hash collides): the old token must not be
    // marked rotated either, so that a retry succeeds instead of looking like reuse.
    let collide = refresh("taken", "f3", "j3b");
    assert!(matches!(
        s.rotate_refresh_token("r3a", &collide, b"resp", 10).await,
        Err(StorageError::Conflict(_))
    ));
    let (t, _) = s
        .get_refresh_token("r3a")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(t.rotated_at, None, "rolled back");
    assert!(matches!(
        s.rotate_refresh_token("r3a", &refresh("r3b", "f3", "j3b"), b"resp", 11)
            .await
            .expect("retry"),
        Redemption::First(_)
    ));
}

pub async fn family_revocation(s: &dyn Storage) {
    s.create_refresh_family(&family("f2"), &refresh("r2", "f2", "j2"), None)
        .await
        .expect("family");
    assert!(matches!(
        s.rotate_refresh_token("r2", &refresh("r3", "f2", "j3"), b"resp", 20)
            .await
            .expect("rotate"),
        Redemption::First(_)
    ));
    s.insert_auth_code(&code("c2", "web")).await.expect("code");
    let Redemption::First(_) = s
        .redeem_auth_code("c2", "web", &issuance(Some("f2"), "j0"), 5)
        .await
        .expect("redeem")
    else {
        panic!("first redemption");
    };
    s.revoke_refresh_family("f2", 50).await.expect("revoke");
    s.revoke_refresh_family("f2", 60)
        .await
        .expect("revoking twice is fine");
    assert_eq!(
        s.get_refresh_family("f2")
            .await
            .expect("get")
            .and_then(|f| f.revoked_at),
        Some(50)
    );
    for jti in ["j0", "j2", "j3"] {
        assert!(
            s.is_access_token_revoked(jti, None).await.expect("check"),
            "{jti}"
        );
    }
}

pub async fn end_session(s: &dyn Storage) {
    let session = SessionRecord {
        id_hash: "h-end".into(),
        sid: "sid-f5".into(),
        sub: "alice".into(),
        identity: "{}".into(),
        auth_time: 1,
        created_at: 1,
        expires_at: 1_000,
    };
    s.create_session(&session).await.expect("session");
    s.create_refresh_family(&family("f5"), &refresh("r5", "f5", "j5"), None)
        .await
        .expect("family");
    s.create_refresh_family(&family("f6"), &refresh("r6", "f6", "j6"), None)
        .await
        .expect("another session's family");
    assert!(
        !s.is_access_token_revoked("other-jti", Some("sid-f5"))
            .await
            .expect("check")
    );
    assert_eq!(s.end_session("sid-f5", 100, 4_000).await.expect("end"), 1);
    assert_eq!(s.get_session("h-end").await.expect("get"), None);
    let f5 = s.get_refresh_family("f5").await.expect("get").expect("f5");
    assert_eq!(f5.revoked_at, Some(100));
    assert!(s.is_access_token_revoked("j5", None).await.expect("check"));
    // Any access token of the session, whatever its jti, is refused by its sid.
    assert!(
        s.is_access_token_revoked("other-jti", Some("sid-f5"))
            .await
            .expect("check")
    );
    let f6 = s.get_refresh_family("f6").await.expect("get").expect("f6");
    assert_eq!(f6.revoked_at, None, "other sessions are untouched");
    assert!(
        !s.is_access_token_revoked("j6", Some("sid-f6"))
            .await
            .expect("check")
    );
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
    s.insert_auth_code(&code("dup", "web"))
        .await
        .expect("insert");
    assert!(matches!(
        s.insert_auth_code(&code("dup", "web")).await,
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
