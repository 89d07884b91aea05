//! The HTML pages in a real headless Chromium (Debian's `chromium`, driven over CDP by
//! puppeteer-core from `conformance/browser/`), each with JavaScript on and off: what a
//! person sees (heading, error text, labels, focus), the CSRF field of every form that posts
//! back, zero axe-core violations (wcag2a, wcag2aa), and the flow completed by real clicks.
//! Screenshots go to `target/screenshots/<page>-<js|nojs>.png`.
//!
//! Chromium is `OIDC_BRIDGE_TEST_CHROMIUM`, else `chromium` on `PATH` (`.ci/chromium-up`
//! installs it). Without it the tests pass with a note, except under `CI`, where they fail.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use conformance::{Backend, CALLBACK, Op, PASSWORD, POST_LOGOUT, USER};
use oidc_bridge::testkit::MockIdp;
use oidc_bridge::web::describe_scope;
use serde_json::{Value, json};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser")
}

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots")
}

/// Debian's Chromium, or `None` (with a note) outside CI when there is none.
fn chromium() -> Option<String> {
    let found = std::env::var("OIDC_BRIDGE_TEST_CHROMIUM")
        .ok()
        .filter(|p| !p.is_empty())
        .or_else(|| {
            let path = std::env::var_os("PATH")?;
            std::env::split_paths(&path)
                .map(|d| d.join("chromium"))
                .find(|p| p.is_file())
                .map(|p| p.to_string_lossy().into_owned())
        });
    match found {
        Some(p) => Some(p),
        None if std::env::var("CI").is_ok() => {
            panic!(
                "Chromium is not installed: CI must run the browser tests (bash .ci/chromium-up)"
            )
        }
        None => {
            eprintln!(
                "note: no Chromium (set OIDC_BRIDGE_TEST_CHROMIUM or install chromium): browser test skipped"
            );
            None
        }
    }
}

/// Runs `pages.mjs` with `job` (plus Chromium and the screenshot folder) and fails with its
/// output unless every check passed. `on_pause` runs each time the script pauses for the
/// test (to move the provider's clock, say).
async fn browse(chromium: String, mut job: Value, mut on_pause: impl FnMut() + Send + 'static) {
    job["chromium"] = json!(chromium);
    job["screenshots"] = json!(screenshots());
    let page = job["page"].as_str().unwrap_or("?").to_string();
    let run = tokio::task::spawn_blocking(move || {
        conformance::npm_ci(&dir(), "puppeteer-core/package.json");
        let mut child = Command::new("node")
            .arg("pages.mjs")
            .arg(job.to_string())
            .current_dir(dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node runs (Node.js is needed for the browser tests)");
        let mut stderr = child.stderr.take().expect("stderr");
        let errors = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let mut stdin = child.stdin.take().expect("stdin");
        let mut out = String::new();
        for line in BufReader::new(child.stdout.take().expect("stdout")).lines() {
            let line = line.unwrap_or_default();
            if line == "pause" {
                on_pause();
                writeln!(stdin, "go").expect("answer the pause");
            }
            out.push_str(&line);
            out.push('\n');
        }
        drop(stdin);
        let status = child.wait().expect("node exits");
        (status, out, errors.join().unwrap_or_default())
    });
    let (status, out, err) = run.await.expect("the browser run");
    assert!(
        status.success(),
        "the browser test of the {page} page failed ({status}):\n{err}\n{out}"
    );
    eprintln!("{err}{out}");
}

/// The suite's provider, and an authorization request from its `client` with `scopes`.
async fn provider(scopes: &[&str], extra: &[(&str, &str)]) -> (Op, Value) {
    let op = Op::start(Backend::Sqlite).await.expect("sqlite");
    let p = op.rp("client").await.authorize_url(scopes, extra);
    let job = json!({
        "start": p.url,
        "state": p.state,
        "issuer": op.issuer,
        "client": CALLBACK,
        "callbacks": ["https://rp.example.test/"],
        "user": USER,
        "password": PASSWORD,
    });
    (op, job)
}

fn with(mut job: Value, more: Value) -> Value {
    if let (Some(j), Value::Object(m)) = (job.as_object_mut(), more) {
        j.extend(m);
    }
    job
}

/// The login form's controls, as labelled.
fn login_controls() -> Value {
    json!({"username": "Username", "password": "Password"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_form_is_labelled_carries_csrf_and_signs_in_with_and_without_javascript() {
    let Some(chromium) = chromium() else { return };
    let (op, job) = provider(&["profile"], &[]).await;
    // Without JavaScript, one more scope: the consent page is asked again, not remembered.
    let nojs = op
        .rp("client")
        .await
        .authorize_url(&["profile", "email"], &[]);
    let job = with(
        job.clone(),
        json!({
            "page": "login",
            "flow": "login",
            "start": {"js": job["start"], "nojs": nojs.url},
            "state": {"js": job["state"], "nojs": nojs.state},
            "consent": true,
            "expect": {
                "status": 200,
                "heading": "Sign in",
                "texts": ["to continue to Conformance RP"],
                "controls": login_controls(),
                "buttons": ["Sign in"],
                "forms": 1,
                "focus": "username",
            },
        }),
    );
    browse(chromium, job, || {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_shows_the_error_keeps_the_username_and_the_form_still_signs_in() {
    let Some(chromium) = chromium() else { return };
    let (_op, job) = provider(&["profile"], &[]).await;
    let job = with(
        job,
        json!({
            "page": "wrong-password",
            "flow": "wrong-password",
            "wrong_password": "not the password",
            "expect": {
                "status": 401,
                "heading": "Sign in",
                "alert": "Wrong username or password.",
                "controls": login_controls(),
                "buttons": ["Sign in"],
                "forms": 1,
                "focus": "username",
            },
        }),
    );
    browse(chromium, job, || {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consent_page_lists_what_is_shared_and_deny_returns_access_denied() {
    let Some(chromium) = chromium() else { return };
    let (_op, job) = provider(&["profile", "email"], &[]).await;
    let job = with(
        job,
        json!({
            "page": "consent",
            "flow": "consent",
            "expect": {
                "status": 200,
                "heading": "Allow Conformance RP?",
                "texts": [
                    "Signed in as alice",
                    describe_scope("profile"),
                    describe_scope("email"),
                ],
                "buttons": ["Allow", "Deny"],
                "forms": 1,
            },
        }),
    );
    browse(chromium, job, || {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_logout_confirmation_names_the_client_and_returns_to_its_post_logout_uri() {
    let Some(chromium) = chromium() else { return };
    let (op, job) = provider(&[], &[]).await;
    let logout = format!(
        "{}?client_id=client&post_logout_redirect_uri={POST_LOGOUT}&state=bye",
        op.url("/logout")
    );
    let job = with(
        job,
        json!({
            "page": "logout",
            "flow": "logout",
            "logout": logout,
            "post_logout": POST_LOGOUT,
            "logout_state": "bye",
            "expect": {
                "status": 200,
                "heading": "Sign out?",
                "texts": ["Conformance RP asks to sign you out."],
                "buttons": ["Sign out"],
                "forms": 1,
            },
        }),
    );
    browse(chromium, job, || {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_without_a_client_ends_on_the_signed_out_page() {
    let Some(chromium) = chromium() else { return };
    let (op, job) = provider(&[], &[]).await;
    let job = with(
        job,
        json!({
            "page": "signed-out",
            "flow": "signed-out",
            "logout": op.url("/logout"),
            "expect": {
                "status": 200,
                "heading": "Signed out",
                "texts": ["You are signed out."],
                "forms": 0,
            },
        }),
    );
    browse(chromium, job, || {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregistered_client_gets_an_error_page_not_a_redirect() {
    let Some(chromium) = chromium() else { return };
    let (op, job) = provider(&[], &[]).await;
    let start = format!(
        "{}?client_id=nobody&response_type=code&scope=openid&redirect_uri={CALLBACK}&state=s",
        op.url("/authorize")
    );
    let job = with(
        job,
        json!({
            "page": "error-unknown-client",
            "flow": "error",
            "start": start,
            "expect": {
                "status": 400,
                "heading": "Sign-in error",
                "alert": "not registered with this sign-in service",
                "forms": 0,
            },
        }),
    );
    browse(chromium, job, || {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregistered_redirect_uri_gets_an_error_page_not_a_redirect() {
    let Some(chromium) = chromium() else { return };
    let (op, job) = provider(&[], &[]).await;
    let start = format!(
        "{}?client_id=client&response_type=code&scope=openid&redirect_uri=https://rp.example.test/elsewhere&state=s",
        op.url("/authorize")
    );
    let job = with(
        job,
        json!({
            "page": "error-redirect-uri",
            "flow": "error",
            "start": start,
            "expect": {
                "status": 400,
                "heading": "Sign-in error",
                "alert": "is not one the application registered",
                "forms": 0,
            },
        }),
    );
    browse(chromium, job, || {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_form_left_open_too_long_gets_the_expired_page() {
    let Some(chromium) = chromium() else { return };
    let (op, job) = provider(&[], &[]).await;
    let job = with(
        job,
        json!({
            "page": "error-expired",
            "flow": "expired",
            "expect": {
                "status": 400,
                "heading": "Sign-in expired",
                "alert": "This sign-in page has expired.",
                "forms": 0,
            },
        }),
    );
    let clock = op.clock.clone();
    // Past the 15 minutes a pending sign-in lives.
    browse(chromium, job, move || clock.advance(16 * 60)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_form_posted_with_a_forged_csrf_token_is_refused_on_a_page() {
    let Some(chromium) = chromium() else { return };
    let (_op, job) = provider(&[], &[]).await;
    let job = with(
        job,
        json!({
            "page": "error-csrf",
            "flow": "forged-csrf",
            "expect": {
                "status": 403,
                "heading": "Sign-in refused",
                "alert": "missing or wrong CSRF token",
                "forms": 0,
            },
        }),
    );
    browse(chromium, job, || {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_post_response_continues_by_itself_or_by_its_button_without_javascript() {
    let Some(chromium) = chromium() else { return };
    let (_op, job) = provider(&[], &[("response_mode", "form_post")]).await;
    let job = with(
        job,
        json!({
            "page": "form-post",
            "flow": "form-post",
            "expect": {
                "status": 200,
                "buttons": ["Continue"],
                "forms": 0,
            },
        }),
    );
    browse(chromium, job, || {}).await;
}

// ---------------------------------------------------------------------------------------
// Federation: the bridge with Okta- and Entra-ID-shaped mock upstreams on `localhost`.

const UPSTREAM: &str = r#"
mock:
  issuers:
    - id: okta
      persona: okta
      users:
        - { username: jane@example.com, name: Jane Doe, email: jane@example.com, groups: [Engineering, Everyone] }
        - { username: nogroups@example.com, groups: [Everyone] }
    - id: azure
      persona: azure
      tenant: 72f988bf-86f1-41af-91ab-2d7cd011db47
      users:
        - { username: jane@example.com, name: Jane Doe, groups: [Engineering] }
"#;

/// The upstream mock, the bridge federating to it (Okta, Entra ID and a strict Okta that
/// requires a group), and the upstream's Okta issuer.
async fn federation() -> (MockIdp, Op, String) {
    let upstream = MockIdp::builder()
        .host("localhost")
        .config_yaml(UPSTREAM)
        .start()
        .await
        .expect("upstream starts");
    let okta = upstream.issuer_of("okta").expect("okta").to_string();
    let azure = upstream.issuer_of("azure").expect("azure").to_string();
    let graph = azure.replace("/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0", "/graph");
    let yaml = format!(
        r#"
connectors:
  - id: okta
    type: okta
    name: Okta
    issuer: {okta}
    client_id: mock-client
    client_secret: mock-secret
  - id: azure
    type: azure
    name: Entra ID
    issuer: {azure}
    graph_url: {graph}
    client_id: mock-client
    client_secret: mock-secret
  - id: strict
    type: okta
    name: Strict Okta
    issuer: {okta}
    client_id: mock-client
    client_secret: mock-secret
    groups:
      include: ["^engineering$"]
      required: true
"#
    );
    let bridge = Op::start_with(Backend::Sqlite, &yaml)
        .await
        .expect("bridge starts");
    (upstream, bridge, okta)
}

fn bridge_job(bridge: &Op, pending: conformance::Pending) -> Value {
    json!({
        "start": pending.url,
        "state": pending.state,
        "issuer": bridge.issuer,
        "client": CALLBACK,
        "callbacks": ["https://rp.example.test/"],
        "user": USER,
        "password": PASSWORD,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connector_chooser_offers_every_option_and_leads_upstream_and_back() {
    let Some(chromium) = chromium() else { return };
    let (_upstream, bridge, okta) = federation().await;
    let pending = bridge.rp("client").await.authorize_url(&["profile"], &[]);
    let job = with(
        bridge_job(&bridge, pending),
        json!({
            "page": "connector-chooser",
            "flow": "connector-chooser",
            "choose": "Continue with Okta",
            "upstream": okta,
            "upstream_user": "jane@example.com",
            "expect": {
                "status": 200,
                "heading": "Sign in",
                "texts": ["to continue to Conformance RP"],
                "buttons": [
                    "Continue with Okta",
                    "Continue with Entra ID",
                    "Continue with Strict Okta",
                    "Continue with a username and password",
                ],
                "forms": 4,
            },
        }),
    );
    browse(chromium, job, || {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_without_a_required_group_is_refused_on_a_clear_page() {
    let Some(chromium) = chromium() else { return };
    let (_upstream, bridge, _) = federation().await;
    let pending = bridge.rp("client").await.authorize_url(
        &[],
        &[
            ("connector_id", "strict"),
            ("login_hint", "nogroups@example.com"),
        ],
    );
    let job = with(
        bridge_job(&bridge, pending),
        json!({
            "page": "error-required-groups",
            "flow": "error",
            "expect": {
                "status": 403,
                "heading": "Not allowed",
                "alert": "none of your groups is allowed",
                "forms": 0,
            },
        }),
    );
    browse(chromium, job, || {}).await;
}

// ---------------------------------------------------------------------------------------
// Mock mode.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mock_login_page_takes_any_username_and_groups_and_returns_a_code() {
    let Some(chromium) = chromium() else { return };
    let idp = MockIdp::builder().start().await.expect("mock starts");
    let start = format!(
        "{}/authorize?client_id=mock-client&response_type=code&scope=openid%20groups&redirect_uri=http://localhost:3000/cb&state=mock-state",
        idp.issuer()
    );
    let job = json!({
        "page": "mock-login",
        "flow": "mock-login",
        "start": start,
        "state": "mock-state",
        "client": "http://localhost:3000/cb",
        "callbacks": ["http://localhost:3000/"],
        "user": "dave",
        "groups": "qa, ops",
        "expect": {
            "status": 200,
            "heading": "Sign in",
            "texts": ["Mock identity provider: any username signs in"],
            "controls": {
                "username": "Username",
                "password": "Password",
                "groups": "Groups",
                "claims": "Extra claims",
            },
            "buttons": ["Sign in"],
            "forms": 1,
            "focus": "username",
        },
    });
    browse(chromium, job, || {}).await;
}
