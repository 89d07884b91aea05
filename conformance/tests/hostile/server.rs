//! The server itself: L4 (the mock request log), L5 (slow and silent connections), L6 (log
//! injection), L11 (database file mode), I8 (admin bearer scheme), I10 (fault statuses).

use std::io::Write as _;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::common::*;

/// L4: 300 unauthenticated 1 MiB bodies took the mock to 344 MB of request log.
#[tokio::test]
async fn l4_the_mock_request_log_is_capped_in_bytes_and_values_are_cut() {
    let up = oidc_bridge::testkit::MockIdp::builder()
        .start()
        .await
        .expect("mock");
    let http = http_client();
    let big = "v".repeat(60 * 1024);
    for _ in 0..120 {
        let resp = http
            .post(format!("{}/token", up.issuer()))
            .form(&[("grant_type", "client_credentials"), ("x", big.as_str())])
            .send()
            .await
            .expect("post");
        assert!(resp.status().is_client_error());
    }
    let over = http
        .post(format!("{}/token", up.issuer()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 2 * 1024 * 1024])
        .send()
        .await
        .expect("post");
    assert_eq!(
        over.status(),
        413,
        "an oversized body is refused, not logged empty"
    );
    let log = http
        .get(format!("{}/mock/requests", up.issuer()))
        .send()
        .await
        .expect("log")
        .text()
        .await
        .expect("text");
    assert!(log.len() < 512 * 1024, "the log holds {} bytes", log.len());
    let entries: Value = serde_json::from_str(&log).expect("json");
    let x = entries[0]["params"]["x"].as_str().expect("recorded");
    assert!(x.len() <= 260, "values are cut: {}", x.len());
}

fn limited() -> String {
    config("").replace(
        "server:\n  trusted_proxies: [127.0.0.1/32]",
        "server:\n  trusted_proxies: [127.0.0.1/32]\n  header_read_timeout: 1s\n  max_connections: 2",
    )
}

fn addr_of(op: &Op) -> String {
    op.issuer.trim_start_matches("http://").to_string()
}

/// Reads until the server closes the connection; `true` if it did within the guard.
async fn closed_by_server(stream: &mut tokio::net::TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    let guard = std::time::Duration::from_secs(10);
    loop {
        match tokio::time::timeout(guard, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// L5: 500 half-sent headers and 100 silent connections stayed open for minutes.
#[tokio::test]
async fn l5_slow_and_silent_connections_are_closed_and_do_not_hold_the_listener() {
    let op = Op::start_config(Backend::Sqlite, &limited())
        .await
        .expect("op");
    let addr = addr_of(&op);
    let mut slow = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let mut silent = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    // Both slots are taken; a real request waits in the accept queue until they go.
    let served = tokio::spawn({
        let url = op.url("/healthz");
        async move {
            http_client()
                .get(url)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    });
    assert!(
        closed_by_server(&mut slow).await,
        "a half-sent header is cut off"
    );
    assert!(
        closed_by_server(&mut silent).await,
        "a silent connection is cut off"
    );
    let status = tokio::time::timeout(std::time::Duration::from_secs(10), served)
        .await
        .expect("served once the slots free up")
        .expect("join")
        .expect("request");
    assert_eq!(status, 200);
    // A keep-alive connection left idle after a request is closed too.
    let mut idle = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    assert!(
        closed_by_server(&mut idle).await,
        "an idle keep-alive connection is cut off"
    );
}

/// L5: one host could hold every connection slot. Past its share, a client address's
/// connections are closed at once; other addresses and trusted proxies are unaffected.
#[tokio::test]
async fn l5_one_address_cannot_hold_every_connection() {
    let yaml = config("").replace(
        "server:\n  trusted_proxies: [127.0.0.1/32]",
        "server:\n  trusted_proxies: [10.9.9.9/32]\n  max_connections_per_address: 2",
    );
    let op = Op::start_config(Backend::Sqlite, &yaml).await.expect("op");
    let addr = addr_of(&op);
    let _a = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let _b = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let mut third = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .ok();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        third.read_to_end(&mut buf),
    )
    .await
    .expect("closed, not left waiting");
    assert!(
        read.is_err() || buf.is_empty(),
        "the third connection got an answer"
    );
    drop(_a);
    drop(_b);
    // The slots come back.
    let mut ok = false;
    for _ in 0..50 {
        if http_client()
            .get(op.url("/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(ok, "a connection is served again once the others closed");
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut v = self.0.lock().unwrap();
        if v.len() < 8 * 1024 * 1024 {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every log line of this test binary, as the text format writes them.
fn logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let c = Captured::default();
        let writer = c.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        c
    })
}

/// L6: a `%0A` in the callback path forged a log line in text logs.
#[tokio::test]
async fn l6_a_crafted_callback_path_cannot_forge_a_log_line() {
    let captured = logs();
    let up = oidc_bridge::testkit::MockIdp::builder()
        .host("localhost")
        .start()
        .await
        .expect("upstream");
    let yaml = config(&format!(
        "connectors:\n  - {{ id: okta, type: oidc, issuer: \"{}\", client_id: mock-client, client_secret: mock-secret }}\n",
        up.issuer()
    ));
    let op = Op::start_config(Backend::Sqlite, &yaml)
        .await
        .expect("bridge");
    let b = Browser::new();
    let (url, _) = authorize_url(&op, "web2", "openid", &[("connector_id", "okta")]);
    let out = b.request("GET", &url, None).await;
    let upstream_url = out.location.expect("sent upstream");
    let state = url::Url::parse(&upstream_url)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state");
    let forged = "okta%0A2026-12-01T00:00:00Z%20%20INFO%20oidc_bridge::oidc::login:%20forged%20sign-in%20sub=admin";
    let resp = b
        .request(
            "GET",
            &op.url(&format!("/callback/{forged}?code=x&state={state}")),
            None,
        )
        .await;
    assert_eq!(resp.status, 403);
    let text = String::from_utf8_lossy(&captured.0.lock().unwrap()).to_string();
    assert!(
        text.contains("upstream callback refused"),
        "the refusal is logged"
    );
    assert!(
        !text.lines().any(|l| l.starts_with("2026-12-01T00:00:00Z")),
        "a forged line appeared"
    );
    let _ = std::io::stderr().flush();
}

/// L11: the SQLite database was created world-readable.
#[cfg(unix)]
#[tokio::test]
async fn l11_the_database_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("bridge.db");
    let url = format!("sqlite://{}", path.display());
    let store = oidc_bridge::storage::SqliteStorage::connect(&url)
        .await
        .expect("open");
    let op = Op::start_full(&config(""), Some(Arc::new(store)), 0).await;
    login(&op, &Browser::new(), "web2", "openid", &[]).await;
    for suffix in ["", "-wal", "-shm"] {
        let p = dir.path().join(format!("bridge.db{suffix}"));
        let mode = std::fs::metadata(&p).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", p.display());
    }
    // An existing file readable by others is tightened.
    let old = dir.path().join("old.db");
    std::fs::write(&old, b"").expect("create");
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    oidc_bridge::storage::SqliteStorage::connect(&format!("sqlite://{}", old.display()))
        .await
        .expect("open");
    let mode = std::fs::metadata(&old)
        .expect("exists")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
}

async fn staging() -> Op {
    let yaml = config("mock: { control_api: true, admin_token: staging-admin-token-0123456789 }");
    Op::start_config(Backend::Sqlite, &yaml)
        .await
        .expect("staging")
}

/// I8: the admin guard wanted exactly `Bearer `; the scheme is case-insensitive.
#[tokio::test]
async fn i8_the_bearer_scheme_is_case_insensitive_and_the_token_exact() {
    let op = staging().await;
    let get = |auth: &'static str| {
        let url = op.url("/mock/requests");
        async move {
            http_client()
                .get(url)
                .header("Authorization", auth)
                .send()
                .await
                .expect("get")
                .status()
                .as_u16()
        }
    };
    assert_eq!(get("bearer staging-admin-token-0123456789").await, 200);
    assert_eq!(get("BEARER staging-admin-token-0123456789").await, 200);
    assert_eq!(get("Bearer staging-admin-token-0123456789x").await, 401);
    assert_eq!(get("Basic staging-admin-token-0123456789").await, 401);
}

/// I10: fault statuses 100–199 were accepted (101 was sent as is).
#[tokio::test]
async fn i10_a_fault_must_end_the_request_with_a_final_status() {
    let up = oidc_bridge::testkit::MockIdp::builder()
        .start()
        .await
        .expect("mock");
    for (status, expect) in [(101, 400), (100, 400), (200, 201), (599, 201)] {
        let resp = http_client()
            .post(format!("{}/mock/faults", up.issuer()))
            .json(
                &json!({"endpoint": "token", "effect": {"status": {"status": status}}, "times": 1}),
            )
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status().as_u16(), expect, "status {status}");
    }
}
