//! H1 (argon2id on demand), M2 (login throttling) and I5 (client enumeration).

use std::sync::Arc;

use crate::common::*;

fn from(addr: &str) -> [(&'static str, String); 1] {
    [("X-Forwarded-For", addr.to_string())]
}

async fn cc(
    op: &Op,
    client: &str,
    secret: &str,
    addr: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let h = from(addr);
    let headers: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    post_form(
        op,
        "/token",
        Some(basic(client, secret)),
        &headers,
        &[("grant_type", "client_credentials")],
    )
    .await
}

/// H1: the review sent 48 concurrent wrong secrets for a client whose secret is an argon2id
/// hash, each from a fresh address; every one ran argon2id on an unbounded pool. Now the
/// verifications wait in a bounded queue and the rest are refused at once with a 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_a_flood_of_wrong_secrets_is_refused_fast_once_the_verifier_is_full() {
    let op = Arc::new(start(Backend::Sqlite).await.expect("op"));
    // More than the workers and their queue can hold (sixteen per core waiting).
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut tasks = Vec::new();
    for i in 0..cores * 17 + 48 {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            cc(
                &op,
                "hashed",
                "wrong%41secret",
                &format!("198.18.{}.{}", i / 200, i % 200 + 1),
            )
            .await
        }));
    }
    let (mut refused, mut busy) = (0, 0);
    for t in tasks {
        let (status, headers, body) = t.await.expect("join");
        match status {
            401 => {
                refused += 1;
                assert_eq!(body["error"], "invalid_client");
            }
            503 => {
                busy += 1;
                assert_eq!(body["error"], "temporarily_unavailable", "{body}");
                assert!(
                    headers.contains_key("retry-after"),
                    "503 carries Retry-After"
                );
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(
        busy > 0,
        "no request was shed: {refused} refused, {busy} busy"
    );
    // Correct secrets keep working: a keyed digest never queues; a hashed one that
    // verified once is then compared without argon2id.
    assert_eq!(cc(&op, "svc", &secret_of("svc"), "198.18.9.9").await.0, 200);
    while op.state.verifier.queued() > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(cc(&op, "hashed", HASHED_SECRET, "198.18.9.10").await.0, 200);
    let before = op.state.verifier.completed();
    for _ in 0..5 {
        assert_eq!(cc(&op, "hashed", HASHED_SECRET, "198.18.9.10").await.0, 200);
    }
    assert_eq!(
        op.state.verifier.completed(),
        before,
        "no argon2id for a known secret"
    );
}

/// H1: a Basic secret holding `%` or `+` was verified twice (decoded and as sent).
#[tokio::test]
async fn h1_one_verification_per_request_whatever_the_basic_encoding() {
    let op = start(Backend::Sqlite).await.expect("op");
    for (i, secret) in ["wrong%41secret", "wrong+secret", "plainwrongsecret"]
        .iter()
        .enumerate()
    {
        let before = op.state.verifier.completed();
        let (status, _, _) = cc(&op, "hashed", secret, &format!("198.18.20.{i}")).await;
        assert_eq!(status, 401);
        assert_eq!(op.state.verifier.completed() - before, 1, "{secret}");
    }
}

/// H1: failed client authentication is throttled per client address (and client id), so
/// someone failing with a client's id elsewhere never locks that client out; once a budget
/// is spent every attempt under it is refused unchecked, so a 200 never tells a guesser
/// that a secret was right.
#[tokio::test]
async fn h1_failed_client_authentication_is_throttled_per_address() {
    let op = start(Backend::Sqlite).await.expect("op");
    let attacker = "203.0.113.66";
    for _ in 0..20 {
        assert_eq!(
            cc(&op, "svc", "a-wrong-secret-000000", attacker).await.0,
            401
        );
    }
    let (status, headers, body) = cc(&op, "svc", "a-wrong-secret-000000", attacker).await;
    assert_eq!(status, 429, "{body}");
    assert!(headers.contains_key("retry-after"));
    assert_eq!(
        cc(&op, "svc", &secret_of("svc"), attacker).await.0,
        429,
        "no oracle: the right secret is refused too from the spent budget"
    );
    // The client itself, elsewhere, is untouched; so is another client at that address.
    assert_eq!(
        cc(&op, "svc", &secret_of("svc"), "198.51.100.5").await.0,
        200
    );
    assert_eq!(cc(&op, "api", &secret_of("api"), attacker).await.0, 200);
    // Another address has its own budget; unknown client ids count too.
    assert_eq!(
        cc(&op, "svc", "a-wrong-secret-000000", "198.51.100.5")
            .await
            .0,
        401
    );
    for i in 0..20 {
        let id = format!("nobody-{i}");
        assert_eq!(
            cc(&op, &id, "whatever-secret-0000", "198.51.100.6").await.0,
            401
        );
    }
    assert_eq!(
        cc(&op, "nobody-x", "whatever-secret-0000", "198.51.100.6")
            .await
            .0,
        429
    );
}

/// I5: unknown clients, wrong secrets and wrong methods all read the same.
#[tokio::test]
async fn i5_client_authentication_failures_tell_nothing_about_the_client() {
    let op = start(Backend::Sqlite).await.expect("op");
    let unknown = cc(&op, "nobody", "whatever-secret-0000", "198.51.100.20")
        .await
        .2;
    let wrong = cc(&op, "svc", "whatever-secret-0000", "198.51.100.21")
        .await
        .2;
    let public = cc(&op, "pub", "whatever-secret-0000", "198.51.100.22")
        .await
        .2;
    assert_eq!(unknown, wrong);
    assert_eq!(unknown, public, "a public client is not revealed as such");
}

async fn attempt(op: &Op, b: &Browser, user: &str, password: &str) -> u16 {
    b.set_login(user, password);
    b.expect_no_login();
    let (url, _) = authorize_url(op, "web2", "openid", &[]);
    let page = b.request("GET", &url, None).await;
    if page.location.is_some() {
        return 303; // signed in already
    }
    let form = vec![
        (
            "request".to_string(),
            conformance::hidden(&page.body, "request").expect("request"),
        ),
        (
            "csrf".to_string(),
            conformance::hidden(&page.body, "csrf").expect("csrf"),
        ),
        ("username".to_string(), user.to_string()),
        ("password".to_string(), password.to_string()),
    ];
    let resp = b.request("POST", &op.url("/login"), Some(&form)).await;
    if resp.status == 303 { 303 } else { resp.status }
}

fn browser_at(addr: &str) -> Browser {
    let b = Browser::new();
    b.set_header("X-Forwarded-For", addr);
    b
}

/// M2 (a): twenty concurrent guesses all passed a check made before any had failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m2_concurrent_guesses_cannot_exceed_the_budget() {
    let op = Arc::new(start(Backend::Sqlite).await.expect("op"));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            attempt(
                &op,
                &browser_at("203.0.113.7"),
                "bob",
                &format!("guess-{i}"),
            )
            .await
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.expect("join"));
    }
    let evaluated = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(evaluated, 5, "{statuses:?}");
    assert_eq!(refused, 15, "{statuses:?}");
}

/// M2: an IPv6 attacker does not get a fresh budget per address of its /64.
#[tokio::test]
async fn m2_ipv6_addresses_share_their_64s_budget() {
    let op = start(Backend::Sqlite).await.expect("op");
    for i in 0..30 {
        let addr = format!("2001:db8:7:7::{:x}", i + 1);
        assert_eq!(
            attempt(&op, &browser_at(&addr), &format!("nobody{i}"), "x").await,
            401
        );
    }
    assert_eq!(
        attempt(&op, &browser_at("2001:db8:7:7:ffff::1"), "bob", "y").await,
        429
    );
    assert_eq!(
        attempt(&op, &browser_at("2001:db8:7:8::1"), "alice", ALICE_PASSWORD).await,
        303,
        "another /64"
    );
}

/// M2 (b): behind the load balancer, thirty failures for thirty users locked out everyone,
/// correct passwords included. With the balancer as a trusted proxy, each address has its
/// own budget.
#[tokio::test]
async fn m2_one_addresss_failures_do_not_lock_out_others_behind_the_proxy() {
    let op = start(Backend::Sqlite).await.expect("op");
    for i in 0..31 {
        let status = attempt(&op, &browser_at("203.0.113.8"), &format!("nobody{i}"), "x").await;
        assert_eq!(status, if i < 30 { 401 } else { 429 }, "attempt {i}");
    }
    assert_eq!(
        attempt(&op, &browser_at("198.51.100.30"), "alice", ALICE_PASSWORD).await,
        303,
        "another address signs in"
    );
    // Headers from an untrusted peer are not believed: spoofing XFF does not reset it.
    let op = Op::start_config(
        Backend::Sqlite,
        &config("").replace("127.0.0.1/32", "10.9.9.9/32"),
    )
    .await
    .expect("op");
    for i in 0..30 {
        attempt(
            &op,
            &browser_at(&format!("10.0.0.{i}")),
            &format!("nobody{i}"),
            "x",
        )
        .await;
    }
    assert_eq!(attempt(&op, &browser_at("10.1.1.1"), "bob", "y").await, 429);
}

/// M2 (c): five failures locked any chosen account, correct password included. Now a
/// browser the person signed in with before keeps working, whoever fails elsewhere, and a
/// new browser waits for the window, never longer.
#[tokio::test]
async fn m2_an_attacker_cannot_lock_a_user_out_of_a_browser_they_used_before() {
    let op = start(Backend::Sqlite).await.expect("op");
    let mine = browser_at("198.51.100.40");
    assert_eq!(attempt(&op, &mine, "alice", ALICE_PASSWORD).await, 303);
    mine.forget_session_keep_device(&op);
    for i in 0..25 {
        attempt(
            &op,
            &browser_at(&format!("203.0.113.{}", 100 + i)),
            "alice",
            "guess",
        )
        .await;
    }
    let fresh = browser_at("198.51.100.41");
    assert_eq!(
        attempt(&op, &fresh, "alice", ALICE_PASSWORD).await,
        429,
        "a new browser waits"
    );
    assert_eq!(
        attempt(&op, &mine, "alice", ALICE_PASSWORD).await,
        303,
        "the browser she used before is not locked out"
    );
    op.clock.advance(15 * 60 + 1);
    assert_eq!(
        attempt(&op, &browser_at("198.51.100.42"), "alice", ALICE_PASSWORD).await,
        303,
        "the lock ends with its window"
    );
}

trait KeepDevice {
    fn forget_session_keep_device(&self, op: &Op);
}

impl KeepDevice for Browser {
    /// Signs out locally: drops every cookie but the device cookie.
    fn forget_session_keep_device(&self, op: &Op) {
        let name = op.state.flows.cookies.device.clone();
        let device = self.cookie(&name).expect("a device cookie after sign-in");
        self.forget_cookies();
        self.set_header("Cookie", &format!("{name}={device}"));
    }
}
