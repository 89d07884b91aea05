//! Checks of what the grants rely on: single-use codes, refresh rotation, revocation of
//! families and sessions, each under concurrency where it matters.

use std::sync::Arc;

use crate::model::{Redemption, SessionRecord};
use crate::storage::api::{Storage, StorageError};

use super::fixtures::*;

pub async fn auth_code_single_use(s: Arc<dyn Storage>) {
    s.insert_auth_code(&code("code", "web"), None)
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
    s.insert_auth_code(&code("c-web", "web"), None)
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
    s.insert_auth_code(&code("c-r", "web"), None)
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
    s.insert_auth_code(&code("c2", "web"), None)
        .await
        .expect("code");
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
