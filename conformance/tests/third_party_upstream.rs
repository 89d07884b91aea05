//! Federation to an upstream that is not this project's code: node-oidc-provider (OpenID
//! Certified), run locally from `tests/upstream-op/` (`npm ci` from its lockfile).

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use conformance::{Backend, Browser, CALLBACK, Op};
use serde_json::json;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/upstream-op")
}

struct Node(std::process::Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts node-oidc-provider on a port it binds itself; returns it and its issuer.
fn start_node(redirect_uri: &str) -> (Node, String) {
    conformance::npm_ci(&dir(), "oidc-provider/package.json");
    let mut child = Command::new("node")
        .arg("server.mjs")
        .current_dir(dir())
        .env("REDIRECT_URI", redirect_uri)
        .env("NODE_ENV", "development")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node runs");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines
        .next()
        .expect("node-oidc-provider starts")
        .expect("line");
    let issuer = first
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("{first}"))
        .to_string();
    std::thread::spawn(move || for _ in lines {});
    (Node(child), issuer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_federates_to_node_oidc_provider() {
    // Both ports are bound before they are handed out: the bridge's here, kept until it
    // serves on it; node-oidc-provider's by itself.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let bridge_port = listener.local_addr().expect("addr").port();
    let (_node, node_issuer) = start_node(&format!("http://127.0.0.1:{bridge_port}/callback/node"));
    let yaml = format!(
        r#"
connectors:
  - id: node
    type: oidc
    name: node-oidc-provider
    issuer: {node_issuer}
    client_id: bridge
    client_secret: bridge-secret-for-node-oidc-provider
    scopes: [openid, email, profile, groups, offline_access]
    get_userinfo: true
    groups:
      exclude: ["^everyone$"]
"#
    );
    let bridge = Op::start_on_listener(Backend::Sqlite, &yaml, listener)
        .await
        .expect("bridge");
    let browser = Browser::new_following(CALLBACK);
    let rp = bridge.rp("client").await;
    let p = rp.authorize_url(&["email", "groups", "profile"], &[("connector_id", "node")]);
    let q = browser.authorize(&p.url).await.callback();
    let code = q.get("code").unwrap_or_else(|| panic!("{q:?}")).clone();
    let pages = browser.pages_seen.lock().expect("lock").clone();
    assert!(
        pages.contains(&"upstream-login"),
        "went through node-oidc-provider's login: {pages:?}"
    );
    let t = rp.exchange(&code, p).await;
    assert_eq!(t.claims["groups"], json!(["node-team"]));
    let (status, ui) = bridge.userinfo(t.access_token()).await;
    assert_eq!(status, 200);
    assert_eq!(ui["email"], "alice@example.org");
    assert_eq!(ui["email_verified"], true);
    assert_eq!(ui["upstream"]["iss"], node_issuer.as_str());
    assert_eq!(ui["upstream"]["sub"], "alice");
}
