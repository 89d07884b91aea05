//! A real Backstage auth backend (`tests/backstage-real/`: `@backstage/backend-defaults`,
//! `plugin-auth-backend`, the OIDC provider module and the README's sign-in resolver, pinned
//! in a committed lockfile, `better-sqlite3` compiled from source) signs people in through
//! the bridge as its frontend's popup does: `/api/auth/oidc/start`, the bridge's pages, the
//! `/handler/frame` answer, `/refresh` with `X-Requested-With`, `/logout`. A local user, a
//! user federated through the Okta persona and one through the Entra persona with a group
//! overage each get valid ownership references; sign-out ends the bridge session.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use conformance::{Browser, Op, Outcome, form_action, hidden, jwt_claims};
use oidc_bridge::testkit::MockIdp;
use serde_json::Value;

const CLIENT_SECRET: &str = "backstage-secret-0123456789";
const SESSION_SECRET: &str = "a-session-secret-for-the-test";

fn project() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/backstage-real")
}

/// `npm ci` once, from the committed lockfile, compiling `better-sqlite3` against the
/// system's Node headers (no prebuilt binary can be downloaded here).
fn install() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let built = project().join("node_modules/better-sqlite3/build/Release/better_sqlite3.node");
        if built.exists() {
            return;
        }
        let mut cmd = Command::new("npm");
        cmd.args(["ci", "--no-audit", "--no-fund", "--build-from-source"])
            .current_dir(project());
        if std::path::Path::new("/usr/include/node/node.h").exists() {
            cmd.arg("--nodedir=/usr");
        }
        let out = cmd.output().expect("npm runs");
        assert!(
            out.status.success() && built.exists(),
            "npm ci failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The Backstage backend process, stopped when dropped.
struct Backstage {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Drop for Backstage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Backstage {
    async fn start(port: u16, issuer: &str) -> Self {
        let log = std::env::temp_dir().join(format!("backstage-{port}.log"));
        let child = Command::new("node")
            .args(["index.js", "--config", "app-config.yaml"])
            .current_dir(project())
            .env("BACKSTAGE_PORT", port.to_string())
            .env("BRIDGE_ISSUER", issuer)
            .env("BACKSTAGE_CLIENT_SECRET", CLIENT_SECRET)
            .env("BACKSTAGE_SESSION_SECRET", SESSION_SECRET)
            .stdout(Stdio::from(std::fs::File::create(&log).expect("log")))
            .stderr(Stdio::null())
            .spawn()
            .expect("node starts");
        let b = Self {
            child,
            base: format!("http://localhost:{port}"),
            log,
        };
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        for _ in 0..240 {
            if let Ok(r) = http.get(b.start_url()).send().await
                && r.status() == 302
            {
                return b;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("Backstage did not start:\n{}", b.logs());
    }

    fn start_url(&self) -> String {
        format!(
            "{}/api/auth/oidc/start?env=development&scope=openid%20profile%20email",
            self.base
        )
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The auth response the `/handler/frame` page posts to the app.
fn frame_response(body: &str) -> Value {
    let data = body
        .split("decodeURIComponent('")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .unwrap_or_else(|| panic!("not Backstage's frame page: {body}"));
    let decoded: String = url::form_urlencoded::parse(format!("d={data}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .expect("decoded");
    serde_json::from_str(&decoded).expect("JSON")
}

/// Backstage's entity-reference rule for `kind:namespace/name`.
fn valid_ref(r: &str) -> bool {
    let Some((kind_ns, name)) = r.split_once('/') else {
        return false;
    };
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    kind_ns
        .split_once(':')
        .is_some_and(|(k, ns)| ok(k) && ok(ns))
        && ok(name)
}

/// One sign-in through the popup flow; `connector` picks a chooser option.
async fn sign_in(bs: &Backstage, bridge: &str, browser: &Browser, connector: &str) -> Value {
    browser.follow_until("http://never.example/");
    let mut outcome = browser.authorize(&bs.start_url()).await;
    if let Outcome::Page(200, body) = &outcome
        && body.contains("name=\"connector\"")
    {
        let form = vec![
            (
                "request".to_string(),
                hidden(body, "request").expect("request"),
            ),
            ("csrf".to_string(), hidden(body, "csrf").expect("csrf")),
            ("connector".to_string(), connector.to_string()),
        ];
        let action = form_action(body).expect("action");
        outcome = browser.submit(&format!("{bridge}{action}"), &form).await;
    }
    match outcome {
        Outcome::Page(200, body) => {
            let r = frame_response(&body);
            assert!(
                r.get("error").is_none(),
                "Backstage refused: {r}\n{}",
                bs.logs()
            );
            r["response"].clone()
        }
        other => panic!("{other:?}\n{}", bs.logs()),
    }
}

/// `/refresh` as Backstage's frontend calls it (`X-Requested-With`, the refresh cookie).
async fn refresh(bs: &Backstage, browser: &Browser) -> Value {
    browser.set_header("X-Requested-With", "XMLHttpRequest");
    let resp = browser
        .request(
            "GET",
            &format!("{}/api/auth/oidc/refresh?env=development", bs.base),
            None,
        )
        .await;
    assert_eq!(resp.status, 200, "{}\n{}", resp.body, bs.logs());
    serde_json::from_str(&resp.body).expect("JSON")
}

fn ownership(r: &Value) -> Vec<String> {
    r["backstageIdentity"]["identity"]["ownershipEntityRefs"]
        .as_array()
        .expect("ownershipEntityRefs")
        .iter()
        .map(|v| v.as_str().expect("str").to_string())
        .collect()
}

const UPSTREAM: &str = r#"
mock:
  issuers:
    - id: okta
      persona: okta
      users:
        - { username: jane@example.com, name: Jane Doe, email: jane@example.com, groups: [Engineering, "Platform Team", Everyone] }
    - id: azure
      persona: azure
      tenant: 72f988bf-86f1-41af-91ab-2d7cd011db47
      users:
        - { username: big@contoso.com, name: Big Groups, groups: [GROUPS] }
    - id: google
      persona: google
      directory_groups:
        platform@example.com: { member_of: [engineering@example.com] }
      users:
        - { username: gina, name: Gina, email: gina@example.com, groups: [platform] }
        - { username: admin, email: admin@example.com }
    - id: github
      persona: github
      users:
        - { username: octocat, name: The Octocat, email: octocat@example.com, groups: [acme, acme/Platform, acme/Sales] }
"#;

/// `tests/backstage-real/connectors.yaml` (the README's Google and GitHub recipe) pointed at
/// the mock's personas.
async fn google_and_github(upstream: &MockIdp, key_file: &std::path::Path) -> String {
    let google = upstream.issuer_of("google").expect("google").to_string();
    let github = upstream.issuer_of("github").expect("github").to_string();
    let key = conformance::http_client()
        .get(format!("{google}/service-account.json"))
        .send()
        .await
        .expect("GET key")
        .text()
        .await
        .expect("key");
    std::fs::write(key_file, key).expect("write key");
    let yaml = std::fs::read_to_string(project().join("connectors.yaml")).expect("connectors.yaml");
    [
        (
            "${GOOGLE_ISSUER:-https://accounts.google.com}",
            google.as_str(),
        ),
        (
            "${GOOGLE_API_URL:-https://admin.googleapis.com}",
            google.as_str(),
        ),
        ("${GOOGLE_CLIENT_ID}", "mock-client"),
        ("${GOOGLE_CLIENT_SECRET}", "mock-secret"),
        (
            "${GOOGLE_SERVICE_ACCOUNT_KEY_FILE}",
            key_file.to_str().expect("utf8"),
        ),
        ("${GOOGLE_ADMIN_EMAIL}", "admin@example.com"),
        ("${GITHUB_URL:-https://github.com}", github.as_str()),
        (
            "${GITHUB_API_URL:-https://api.github.com}",
            &format!("{github}/api/v3"),
        ),
        ("${GITHUB_CLIENT_ID}", "mock-client"),
        ("${GITHUB_CLIENT_SECRET}", "mock-secret"),
    ]
    .iter()
    .fold(yaml, |y, (from, to)| y.replace(from, to))
    .replace("connectors:\n", "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_backstage_signs_in_local_okta_and_entra_users_refreshes_and_signs_out() {
    tokio::task::spawn_blocking(install).await.expect("install");
    let groups: Vec<String> = (0..250).map(|i| format!("Team {i:03}")).collect();
    let upstream = MockIdp::builder()
        .host("localhost")
        .config_yaml(&UPSTREAM.replace("GROUPS", &groups.join(", ")))
        .start()
        .await
        .expect("upstream");
    let okta = upstream.issuer_of("okta").expect("okta").to_string();
    let azure = upstream.issuer_of("azure").expect("azure").to_string();
    let graph = azure.replace("/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0", "/graph");
    let bs_port = free_port();
    // The recipe's client block, as the README shows it.
    let client = std::fs::read_to_string(project().join("bridge.yaml"))
        .expect("bridge.yaml")
        .replace("${BACKSTAGE_PORT}", &bs_port.to_string())
        .replace("${BACKSTAGE_CLIENT_SECRET}", CLIENT_SECRET);
    let key_file = tempfile::NamedTempFile::new().expect("temp");
    let more = google_and_github(&upstream, key_file.path()).await;
    let yaml = format!(
        r#"{client}
connectors:
{more}
  - {{ id: okta, type: okta, name: Okta, issuer: "{okta}", client_id: mock-client, client_secret: mock-secret,
      groups: {{ exclude: ["^everyone$"], prefix: okta, prefix_separator: "-" }} }}
  - {{ id: azure, type: azure, name: Entra ID, issuer: "{azure}", graph_url: "{graph}", client_id: mock-client,
      client_secret: mock-secret, groups: {{ unmapped: drop, trust_display_names: true }} }}
users:
  - {{ username: alice, password: wonderland-password, email: alice@example.com, name: Alice, groups: ["Platform Team"] }}
"#
    );
    let bridge = Op::start_full(&yaml, None, 0).await;
    let bs = Backstage::start(bs_port, &bridge.issuer).await;

    // A local user: "Platform Team" is a valid group ref by default.
    let browser = Browser::new();
    browser.set_login("alice", "wonderland-password");
    let r = sign_in(&bs, &bridge.base, &browser, "local").await;
    let refs = ownership(&r);
    assert_eq!(
        refs,
        ["user:default/alice", "group:default/platform-team"],
        "{r}"
    );
    let token = r["backstageIdentity"]["token"].as_str().expect("token");
    let claims = jwt_claims(token);
    assert_eq!(claims["sub"], "user:default/alice");
    assert_eq!(
        claims["ent"].as_array().map(Vec::len),
        Some(2),
        "ent is in the token: {claims}"
    );

    // Refresh, as the frontend does it.
    assert_eq!(ownership(&refresh(&bs, &browser).await), refs);

    // Sign-out revokes the refresh token, which ends the bridge session.
    let resp = browser
        .request(
            "POST",
            &format!("{}/api/auth/oidc/logout?env=development", bs.base),
            Some(&[]),
        )
        .await;
    assert!(resp.status < 300, "{} {}", resp.status, resp.body);
    browser.expect_no_login();
    match browser.authorize(&bs.start_url()).await {
        Outcome::Page(200, body) => assert!(
            body.contains("name=\"connector\"") || body.contains("name=\"password\""),
            "the bridge asks again: {body}"
        ),
        other => panic!("signed in without asking: {other:?}"),
    }

    // Okta persona.
    let browser = Browser::new();
    browser.set_login("jane@example.com", "anything");
    let refs = ownership(&sign_in(&bs, &bridge.base, &browser, "okta").await);
    assert_eq!(
        refs[1..],
        [
            "group:default/okta-engineering",
            "group:default/okta-platform-team"
        ]
    );
    assert!(refs.iter().all(|r| valid_ref(r)), "{refs:?}");
    assert_eq!(ownership(&refresh(&bs, &browser).await), refs);

    // Entra persona, 250 groups: an overage resolved through Graph, capped at the recipe's 200.
    let browser = Browser::new();
    browser.set_login("big@contoso.com", "anything");
    let refs = ownership(&sign_in(&bs, &bridge.base, &browser, "azure").await);
    assert_eq!(refs.len(), 201, "the user and 200 groups");
    assert!(
        refs.contains(&"group:default/team-000".to_string()),
        "{refs:?}"
    );
    assert!(refs.iter().all(|r| valid_ref(r)), "{refs:?}");
    assert_eq!(ownership(&refresh(&bs, &browser).await), refs);

    // Google Workspace: groups from the Directory (transitive), named by the local part.
    let browser = Browser::new();
    browser.set_login("gina", "anything");
    let refs = ownership(&sign_in(&bs, &bridge.base, &browser, "google").await);
    assert_eq!(
        refs,
        [
            "user:default/gina",
            "group:default/engineering",
            "group:default/platform"
        ]
    );
    assert_eq!(ownership(&refresh(&bs, &browser).await), refs);

    // GitHub: the org and the allowed team, as Backstage entity names.
    let browser = Browser::new();
    browser.set_login("octocat", "anything");
    let refs = ownership(&sign_in(&bs, &bridge.base, &browser, "github").await);
    assert_eq!(
        refs,
        [
            "user:default/octocat",
            "group:default/acme",
            "group:default/acme-platform"
        ]
    );
    assert!(refs.iter().all(|r| valid_ref(r)), "{refs:?}");
    assert_eq!(ownership(&refresh(&bs, &browser).await), refs);
}

/// The README's Backstage recipe shows these files word for word: what users copy is what
/// this test runs.
#[test]
fn the_readme_recipe_is_the_tested_project() {
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .expect("README");
    for file in [
        "bridge.yaml",
        "connectors.yaml",
        "app-config.yaml",
        "src/oidcBridgeResolver.js",
        "index.js",
    ] {
        let text = std::fs::read_to_string(project().join(file)).expect(file);
        assert!(
            readme.contains(text.trim_end()),
            "README.md does not show tests/backstage-real/{file} as it is"
        );
    }
    assert!(
        !readme.contains("signIn:\n          resolvers:"),
        "no signIn block next to the resolver module"
    );
}
