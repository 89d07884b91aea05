//! Faults lose nothing: a database outage is answered within the acquire timeout and costs
//! no refresh family; nodes sharing PostgreSQL agree on a new key at once; a code replayed
//! while its first redemption is in flight still revokes what it issues. PostgreSQL sits
//! behind a TCP proxy the test cuts, as a stopped server or a partition would.

use std::sync::Arc;
use std::time::Duration;

use conformance::proxy::Proxy;
use oidc_bridge::storage::{PoolOptions, PostgresStorage, Storage};

use crate::both;
use crate::common::*;

/// A store on `options` reached through `proxy`, failing fast (1 s acquire timeout).
async fn store_via(proxy: &Proxy, options: &sqlx::postgres::PgConnectOptions) -> Arc<dyn Storage> {
    let via = options.clone().host("127.0.0.1").port(proxy.addr.port());
    let store = PostgresStorage::connect_with_pool(
        via,
        &PoolOptions {
            acquire_timeout: Duration::from_secs(1),
            max_connections: Some(4),
        },
    )
    .await
    .expect("connect through the proxy");
    store.migrate().await.expect("migrate");
    Arc::new(store)
}

/// A proxy in front of the test database, and a store through it.
async fn through_proxy(
    options: &sqlx::postgres::PgConnectOptions,
) -> (Arc<Proxy>, Arc<dyn Storage>) {
    let target = tokio::net::lookup_host((options.get_host(), options.get_port()))
        .await
        .expect("resolve")
        .next()
        .expect("an address");
    let proxy = Proxy::start(target).await;
    let store = store_via(&proxy, options).await;
    (proxy, store)
}

/// Longer than any answer may take when the database is away (acquire timeout 1 s): a hang
/// guard, not a speed measurement.
const GUARD: Duration = Duration::from_secs(6);

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, f)
        .await
        .unwrap_or_else(|_| panic!("{what} waited past the acquire timeout"))
}

/// Fills the pool: every connection it may open is open and idle.
async fn fill_pool(store: &Arc<dyn Storage>) {
    for _ in 0..20 {
        let (a, b, c, d) = tokio::join!(store.ping(), store.ping(), store.ping(), store.ping());
        for r in [a, b, c, d] {
            r.expect("ping");
        }
        if store.pool_stats().0 == 4 {
            return;
        }
    }
    panic!(
        "the pool did not open its 4 connections: {:?}",
        store.pool_stats()
    );
}

/// The database goes away: requests that need it get 503 with Retry-After within the
/// acquire timeout (the pool's 10 s before), `/readyz` says so, and nothing is lost. The
/// pool holds four connections the outage killed and three requests fail on: the first
/// request after it still finds a live one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_answered_at_once_and_loses_nothing() {
    let Some(options) = conformance::postgres_schema().await else {
        return;
    };
    let (proxy, store) = through_proxy(&options).await;
    let op = Op::start_full(&config(""), Some(store.clone()), 0).await;
    let t = login(&op, &Browser::new(), "web2", "openid offline_access", &[]).await;
    let rt = s(&t, "refresh_token");
    fill_pool(&store).await;
    proxy.cut();
    let (status, body) = within("a refresh", refresh(&op, "web2", &rt)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("temporarily_unavailable")),
        "{body}"
    );
    let ready = within("/readyz", op.http.get(op.url("/readyz")).send())
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 503);
    let (status, _) = within("userinfo", op.userinfo(&s(&t, "access_token"))).await;
    assert_eq!(status, 503);
    proxy.restore();
    let (status, body) = refresh(&op, "web2", &rt).await;
    assert_eq!(status, 200, "the failed attempt rotated nothing: {body}");
}

/// The database restarts while nobody uses it: every pooled connection died, yet the first
/// request after it succeeds. A connection idle for a second or more is checked before
/// use, so the dead ones are closed and a fresh one opened instead of the request failing
/// on one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_request_after_a_quiet_restart_succeeds() {
    let Some(options) = conformance::postgres_schema().await else {
        return;
    };
    let (proxy, store) = through_proxy(&options).await;
    let op = Op::start_full(&config(""), Some(store.clone()), 0).await;
    let t = login(&op, &Browser::new(), "web2", "openid offline_access", &[]).await;
    fill_pool(&store).await;
    proxy.cut();
    proxy.restore();
    // Idle past the check's threshold, as a pool is overnight.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, body) = within("a refresh", refresh(&op, "web2", &s(&t, "refresh_token"))).await;
    assert_eq!(status, 200, "the first request after the restart: {body}");
}

/// Three nodes on one PostgreSQL, families refreshing on all of them, the database cut
/// mid-load (3 s; `OUTAGE_SECONDS=12` for the long run): every answer during the cut is a
/// 503 within the acquire timeout, and afterwards every family still refreshes. The
/// slowest answer is printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_lose_no_refresh_family_in_an_outage() {
    let Some(options) = conformance::postgres_schema().await else {
        return;
    };
    let (proxy, _) = through_proxy(&options).await;
    let yaml = config("");
    let mut nodes = Vec::new();
    for _ in 0..3 {
        let store = store_via(&proxy, &options).await;
        nodes.push(Arc::new(
            Op::start_node(&yaml, Some(store), 0, Some("http://cluster.test")).await,
        ));
    }
    let mut families = Vec::new();
    for i in 0..9 {
        let t = login(
            &nodes[i % 3],
            &Browser::new(),
            "web2",
            "openid offline_access",
            &[],
        )
        .await;
        families.push(s(&t, "refresh_token"));
    }
    let families = Arc::new(tokio::sync::Mutex::new(families));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for w in 0..3 {
        let (nodes, families, stop) = (nodes.clone(), families.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let mut n = 0usize;
            let mut unavailable = 0;
            let mut slowest = Duration::ZERO;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let i = (n * 3 + w) % 9;
                let rt = families.lock().await[i].clone();
                let node = &nodes[n % 3];
                let started = std::time::Instant::now();
                let (status, body) =
                    within("a refresh under load", refresh(node, "web2", &rt)).await;
                slowest = slowest.max(started.elapsed());
                match status {
                    200 => families.lock().await[i] = s(&body, "refresh_token"),
                    503 => unavailable += 1,
                    other => panic!("family {i} answered {other}: {body}"),
                }
                n += 1;
            }
            (unavailable, slowest)
        }));
    }
    let outage: u64 = std::env::var("OUTAGE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    tokio::time::sleep(Duration::from_millis(700)).await;
    proxy.cut();
    tokio::time::sleep(Duration::from_secs(outage)).await;
    proxy.restore();
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (mut unavailable, mut slowest) = (0, Duration::ZERO);
    for l in load {
        let (u, s) = l.await.expect("load");
        unavailable += u;
        slowest = slowest.max(s);
    }
    eprintln!(
        "outage {outage} s: {unavailable} answers were 503; the slowest answer took {slowest:?}"
    );
    assert!(unavailable > 0, "the outage was felt");
    for (i, rt) in families.lock().await.iter().enumerate() {
        let (status, body) = refresh(&nodes[i % 3], "web2", rt).await;
        assert_eq!(status, 200, "family {i} lost: {body}");
    }
}

/// After `keys rotate --publish-ahead 0` on one node, the others refused its tokens until
/// their next reload (up to 30 s). A node meeting an unknown kid of its issuer reloads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_sharing_postgres_agree_on_a_new_key_at_once() {
    let Some(options) = conformance::postgres_schema().await else {
        return;
    };
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let store = PostgresStorage::connect_with(options.clone())
            .await
            .expect("connect");
        nodes.push(
            Op::start_node(
                &config(""),
                Some(Arc::new(store)),
                0,
                Some("http://cluster.test"),
            )
            .await,
        );
    }
    let kid = nodes[0]
        .state
        .keys
        .rotate(oidc_bridge::config::Seconds(0))
        .await
        .expect("rotate")
        .expect("a new key");
    let (status, _, t) = token(&nodes[0], "svc", &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, 200);
    let at = s(&t, "access_token");
    assert_eq!(conformance::jwt_header(&at)["kid"], kid.as_str());
    let (status, _, body) = post_form(
        &nodes[1],
        "/introspect",
        Some(basic("svc", &secret_of("svc"))),
        &[],
        &[("token", &at)],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["active"], true,
        "the other node knows the new key at once"
    );
}

// A code replayed while its first redemption was in flight did not always revoke what that
// redemption issued.
both!(
    a_code_replayed_during_its_redemption_revokes_what_it_issues,
    |op| {
        let op = Arc::new(op);
        for trial in 0..8 {
            let (url, verifier) = authorize_url(&op, "web2", "openid offline_access", &[]);
            let code = Browser::new().authorize(&url).await.code();
            let mut both = Vec::new();
            for _ in 0..2 {
                let (op, code, verifier) = (op.clone(), code.clone(), verifier.clone());
                both.push(tokio::spawn(async move {
                    token(
                        &op,
                        "web2",
                        &[
                            ("grant_type", "authorization_code"),
                            ("code", &code),
                            ("redirect_uri", redirect_of("web2")),
                            ("code_verifier", &verifier),
                        ],
                    )
                    .await
                }));
            }
            let mut issued = Vec::new();
            for b in both {
                let (status, _, body) = b.await.expect("join");
                if status == 200 {
                    issued.push(body);
                } else {
                    assert_eq!(body["error"], "invalid_grant");
                }
            }
            assert_eq!(
                issued.len(),
                1,
                "trial {trial}: exactly one redemption succeeds"
            );
            let t = &issued[0];
            assert_eq!(
                op.userinfo(&s(t, "access_token")).await.0,
                401,
                "trial {trial}"
            );
            assert_eq!(
                refresh(&op, "web2", &s(t, "refresh_token")).await.0,
                400,
                "trial {trial}"
            );
        }
    }
);
