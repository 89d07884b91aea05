//! Checks of what the agent grants rely on: one-time values across callers, and a device
//! request's polls (the interval, exactly one taker of an approved grant, denial, expiry,
//! the mock's approval after N polls).

use std::sync::Arc;

use crate::model::{DeviceCodeRecord, DeviceDecision, DeviceStatus};
use crate::storage::api::{Storage, StorageError};

fn device(hash: &str, user_code: &str, id: &str) -> DeviceCodeRecord {
    DeviceCodeRecord {
        device_code_hash: hash.into(),
        user_code: user_code.into(),
        id: id.into(),
        client_id: "cli".into(),
        request: "{}".into(),
        status: DeviceStatus::Pending,
        grant: None,
        created_at: 100,
        expires_at: 700,
        poll_interval: 5,
        last_poll_at: None,
        polls: 0,
        slow_down: false,
        approve_after_polls: None,
        taken_at_poll: None,
    }
}

pub async fn used_once_under_concurrency(s: Arc<dyn Storage>) {
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.use_once("client-assertion:x", 200).await.expect("use")
        }));
    }
    let mut fresh = 0;
    for t in tasks {
        fresh += usize::from(t.await.expect("join"));
    }
    assert_eq!(fresh, 1, "exactly one of 20 concurrent uses is the first");
    assert!(s.use_once("client-assertion:y", 200).await.expect("use"));
    s.purge_expired(201).await.expect("purge");
    assert!(
        s.use_once("client-assertion:x", 400).await.expect("use"),
        "purged once expired"
    );
}

pub async fn device_polls(s: &dyn Storage) {
    s.insert_device_code(&device("h1", "BCDFGHJK", "id1"))
        .await
        .expect("insert");
    let dup = s.insert_device_code(&device("h2", "BCDFGHJK", "id2")).await;
    assert!(matches!(dup, Err(StorageError::Conflict(_))), "{dup:?}");
    let got = s
        .get_device_code("BCDFGHJK")
        .await
        .expect("get")
        .expect("found");
    assert_eq!(got, device("h1", "BCDFGHJK", "id1"));
    let p = s
        .poll_device_code("h1", "cli", 110)
        .await
        .expect("poll")
        .expect("found");
    assert_eq!(
        (p.polls, p.slow_down, p.status),
        (1, false, DeviceStatus::Pending)
    );
    let p = s
        .poll_device_code("h1", "cli", 112)
        .await
        .expect("poll")
        .expect("found");
    assert!(
        p.slow_down,
        "2 seconds after the last poll, under the 5-second interval"
    );
    let p = s
        .poll_device_code("h1", "cli", 117)
        .await
        .expect("poll")
        .expect("found");
    assert!(!p.slow_down && !p.taken_now());
    let approve = DeviceDecision::Approve {
        grant: "{\"g\":1}".into(),
    };
    assert!(
        s.decide_device_code("id1", &approve, 118)
            .await
            .expect("decide")
    );
    assert!(
        !s.decide_device_code("id1", &DeviceDecision::Deny, 118)
            .await
            .expect("decide"),
        "decided once"
    );
    let foreign = s.poll_device_code("h1", "other", 118).await.expect("poll");
    assert!(
        foreign.is_none(),
        "another client's poll neither counts nor takes the grant"
    );
    let p = s
        .poll_device_code("h1", "cli", 119)
        .await
        .expect("poll")
        .expect("found");
    assert!(
        p.taken_now(),
        "an approved grant is taken, even by a hasty poll"
    );
    assert_eq!(p.grant.as_deref(), Some("{\"g\":1}"));
    let p = s
        .poll_device_code("h1", "cli", 130)
        .await
        .expect("poll")
        .expect("found");
    assert!(
        !p.taken_now() && p.status == DeviceStatus::Used,
        "taken once"
    );
    assert!(
        s.poll_device_code("nope", "cli", 130)
            .await
            .expect("poll")
            .is_none()
    );
}

pub async fn device_decisions(s: &dyn Storage) {
    for (h, code, id) in [
        ("d", "DDDDDDDD", "i-d"),
        ("e", "FFFFFFFF", "i-e"),
        ("n", "GGGGGGGG", "i-n"),
    ] {
        s.insert_device_code(&device(h, code, id))
            .await
            .expect("insert");
    }
    assert!(
        s.decide_device_code("i-d", &DeviceDecision::Deny, 120)
            .await
            .expect("deny")
    );
    let p = s
        .poll_device_code("d", "cli", 121)
        .await
        .expect("poll")
        .expect("found");
    assert_eq!(p.status, DeviceStatus::Denied);
    assert!(
        s.decide_device_code("i-e", &DeviceDecision::Expire, 120)
            .await
            .expect("expire")
    );
    let p = s
        .poll_device_code("e", "cli", 121)
        .await
        .expect("poll")
        .expect("found");
    assert!(p.expires_at <= 121 && p.status == DeviceStatus::Pending);
    let approve = DeviceDecision::Approve { grant: "{}".into() };
    assert!(
        !s.decide_device_code("i-e", &approve, 121)
            .await
            .expect("decide"),
        "an expired request cannot be approved"
    );
    let after = DeviceDecision::ApproveAfterPolls {
        grant: "{\"n\":3}".into(),
        polls: 3,
    };
    assert!(
        s.decide_device_code("i-n", &after, 120)
            .await
            .expect("decide")
    );
    let taken: Vec<bool> = {
        let mut v = Vec::new();
        for t in [130, 140, 150, 160] {
            let p = s
                .poll_device_code("n", "cli", t)
                .await
                .expect("poll")
                .expect("found");
            v.push(p.taken_now());
        }
        v
    };
    assert_eq!(
        taken,
        [false, false, true, false],
        "the third poll succeeds, once"
    );
}

pub async fn session_clients(s: &dyn Storage) {
    s.note_session_client("sid-1", "b", 500)
        .await
        .expect("note");
    s.note_session_client("sid-1", "a", 500)
        .await
        .expect("note");
    s.note_session_client("sid-1", "a", 600)
        .await
        .expect("again");
    s.note_session_client("sid-2", "c", 500)
        .await
        .expect("note");
    assert_eq!(s.session_clients("sid-1").await.expect("list"), ["a", "b"]);
    assert!(s.session_clients("sid-3").await.expect("list").is_empty());
}
