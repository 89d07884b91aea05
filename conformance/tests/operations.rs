//! Operations: the admin API (clients made on one node sign in through another at once;
//! config clients are read-only), client secrets rotated with overlap (both work until the
//! overlap ends on the node's clock, then only the new one; the metrics and the audit log
//! say which was used), and an audit line for each security event.

use std::collections::HashMap;
use std::sync::Arc;

use conformance::{Browser, CALLBACK, Op};
use oidc_bridge::storage::{PostgresStorage, Storage};
use serde_json::{Value, json};

const TOKEN: &str = "admin-token-for-tests-0123456789abcdef";
/// The RFC 7636 Appendix B pair.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

const USERS: &str = r#"
users:
  - username: alice
    password: "correct horse battery staple"
    email: alice@example.com
    groups: [Developers]
clients:
  - id: from-config
    secret: config-secret-0123456789
    redirect_uris: [https://rp.example.test/callback]
    post_logout_redirect_uris: [https://rp.example.test/post_logout_redirect]
    grant_types: [authorization_code, refresh_token, client_credentials]
  - id: rotating
    grant_types: [client_credentials]
    secrets:
      - id: ended
        secret: ended-secret-0123456789
        expires: 2001-01-01T00:00:00Z
      - id: current
        secret: current-secret-0123456789
"#;

fn yaml(extra: &str) -> String {
    format!("{USERS}\nadmin:\n  token: {TOKEN}\nserver:\n  metrics_listen: 127.0.0.1:0\n{extra}")
}

async fn admin(op: &Op, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = op.http.request(method, op.url(path)).bearer_auth(TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("admin request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn client_credentials(op: &Op, id: &str, secret: &str) -> u16 {
    op.http
        .post(op.url("/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token")
        .status()
        .as_u16()
}

/// A browser sign-in through `op` for `client_id`, then the code redeemed with `secret`.
async fn sign_in(op: &Op, client_id: &str, secret: &str) -> Value {
    let url = format!(
        "{}/authorize?client_id={client_id}&response_type=code&scope=openid%20offline_access&state=st\
         &redirect_uri={CALLBACK}&code_challenge={CHALLENGE}&code_challenge_method=S256&prompt=consent",
        op.base
    );
    let q: HashMap<String, String> = Browser::new().authorize(&url).await.callback();
    let code = q.get("code").unwrap_or_else(|| panic!("a code: {q:?}"));
    let resp = op
        .http
        .post(op.url("/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(resp.status(), 200);
    resp.json().await.expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_is_off_unless_a_token_is_set_and_wants_the_token() {
    let off = Op::start_full(USERS, None, 0).await;
    let resp = off
        .http
        .get(off.url("/admin/clients"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 404, "no admin API without admin.token");

    let op = Op::start_full(&yaml(""), None, 0).await;
    for auth in [None, Some("Bearer wrong-token"), Some("Basic YTpi")] {
        let mut req = op.http.get(op.url("/admin/clients"));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let resp = req.send().await.expect("GET");
        assert_eq!(resp.status(), 401, "{auth:?}");
        assert!(resp.headers().contains_key("www-authenticate"));
    }
    let (status, body) = admin(&op, reqwest::Method::GET, "/admin/clients", None).await;
    assert_eq!(status, 200);
    let config_client = &body["clients"][0];
    assert_eq!(config_client["id"], "from-config");
    assert_eq!(config_client["source"], "config");
    assert!(
        !body.to_string().contains("hmac-sha256"),
        "no hash is shown"
    );

    // Config clients are read-only; bad bodies say what is wrong, with key paths.
    let (status, _) = admin(
        &op,
        reqwest::Method::DELETE,
        "/admin/clients/from-config",
        None,
    )
    .await;
    assert_eq!(status, 409);
    let (status, _) = admin(
        &op,
        reqwest::Method::POST,
        "/admin/clients/from-config/rotate-secret",
        Some(json!({"overlap": "1h"})),
    )
    .await;
    assert_eq!(status, 409);
    let (status, body) = admin(
        &op,
        reqwest::Method::POST,
        "/admin/clients",
        Some(json!({"id": "bad", "redirect_uris": ["http://evil.example/cb"], "grant_types": ["implicit"]})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let paths: Vec<&str> = body["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter_map(|p| p["path"].as_str())
        .collect();
    assert!(
        paths.contains(&"redirect_uris[0]") && paths.contains(&"grant_types[0]"),
        "{body}"
    );
    let (status, _) = admin(
        &op,
        reqwest::Method::POST,
        "/admin/clients",
        Some(json!({"id": "from-config", "grant_types": ["client_credentials"]})),
    )
    .await;
    assert_eq!(status, 409, "an existing id is refused");
    let (status, body) = admin(
        &op,
        reqwest::Method::POST,
        "/admin/clients",
        Some(json!({"id": "x", "secret": "chosen-by-me-0123456789", "grant_types": ["client_credentials"]})),
    )
    .await;
    assert_eq!(status, 400, "secrets are generated, never sent in: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_made_on_one_node_signs_in_through_another_at_once() {
    let Some(options) = conformance::postgres_schema().await else {
        return;
    };
    let store = |o: sqlx::postgres::PgConnectOptions| async move {
        Arc::new(PostgresStorage::connect_with(o).await.expect("connect")) as Arc<dyn Storage>
    };
    let issuer = "http://cluster.test";
    let a = Op::start_node(
        &yaml(""),
        Some(store(options.clone()).await),
        0,
        Some(issuer),
    )
    .await;
    let b = Op::start_node(
        &yaml(""),
        Some(store(options.clone()).await),
        0,
        Some(issuer),
    )
    .await;
    let (status, made) = admin(
        &a,
        reqwest::Method::POST,
        "/admin/clients",
        Some(json!({
            "id": "portal",
            "name": "Developer portal",
            "redirect_uris": [CALLBACK],
            "grant_types": ["authorization_code", "refresh_token"],
            "deny_groups": ["contractors"],
            "claims": {"tenant": "acme"},
            "access_token_claims": ["groups"],
        })),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let secret = made["client_secret"].as_str().expect("the secret, once");
    assert!(secret.len() >= 40);
    // Node B has never heard of it: it asks storage.
    let tokens = sign_in(&b, "portal", secret).await;
    assert!(tokens["id_token"].is_string() && tokens["refresh_token"].is_string());

    // The view, sent back with a change, updates it (its secrets stay).
    let (status, mut view) = admin(&b, reqwest::Method::GET, "/admin/clients/portal", None).await;
    assert_eq!(status, 200);
    assert_eq!(view["source"], "api");
    view["name"] = json!("Renamed portal");
    view["tokens"] = json!({"access_token": "15m"});
    let (status, updated) = admin(
        &b,
        reqwest::Method::PUT,
        "/admin/clients/portal",
        Some(view),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["name"], "Renamed portal");
    assert_eq!(updated["tokens"]["access_token"], "900s");
    assert_eq!(updated["secrets"].as_array().map(Vec::len), Some(1));
    // The access policy and claims survive the round trip through the view.
    assert_eq!(
        (
            updated["deny_groups"].clone(),
            updated["claims"].clone(),
            updated["access_token_claims"].clone()
        ),
        (
            json!(["contractors"]),
            json!({"tenant": "acme"}),
            json!(["groups"])
        )
    );

    // A rotation on A: B accepts the new secret at once too.
    let (status, rotated) = admin(
        &a,
        reqwest::Method::POST,
        "/admin/clients/portal/rotate-secret",
        Some(json!({"overlap": "1h"})),
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let newer = rotated["client_secret"].as_str().expect("new secret");
    let refreshed = b
        .http
        .post(b.url("/token"))
        .basic_auth("portal", Some(newer))
        .form(&[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                tokens["refresh_token"].as_str().expect("rt"),
            ),
        ])
        .send()
        .await
        .expect("refresh");
    assert_eq!(refreshed.status(), 200);

    // Deleted on B: A stops accepting it (it rereads storage when the secret fails).
    let (status, _) = admin(&b, reqwest::Method::DELETE, "/admin/clients/portal", None).await;
    assert_eq!(status, 204);
    let (status, _) = admin(&a, reqwest::Method::GET, "/admin/clients/portal", None).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_works_until_the_overlap_ends_then_only_the_new_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let audit = dir.path().join("audit.jsonl");
    let op = Op::start_full(
        &yaml(&format!("audit:\n  output: {}\n", audit.display())),
        None,
        0,
    )
    .await;
    // From the config: an ended secret no longer works, the current one does.
    assert_eq!(
        client_credentials(&op, "rotating", "ended-secret-0123456789").await,
        401
    );
    assert_eq!(
        client_credentials(&op, "rotating", "current-secret-0123456789").await,
        200
    );

    let (status, made) = admin(
        &op,
        reqwest::Method::POST,
        "/admin/clients",
        Some(json!({"id": "batch", "grant_types": ["client_credentials"]})),
    )
    .await;
    assert_eq!(status, 201);
    let old = made["client_secret"].as_str().expect("secret").to_string();
    let old_id = made["secret_id"].as_str().expect("id").to_string();
    let (status, rotated) = admin(
        &op,
        reqwest::Method::POST,
        "/admin/clients/batch/rotate-secret",
        Some(json!({"overlap": "7d"})),
    )
    .await;
    assert_eq!(status, 200);
    let new = rotated["client_secret"]
        .as_str()
        .expect("secret")
        .to_string();
    let new_id = rotated["secret_id"].as_str().expect("id").to_string();
    assert_ne!(old_id, new_id);
    assert_eq!(
        rotated["old_secrets_expire_at"],
        op.clock.current() + 7 * 86_400
    );
    assert_eq!(
        client_credentials(&op, "batch", &old).await,
        200,
        "old, in the overlap"
    );
    assert_eq!(client_credentials(&op, "batch", &new).await, 200, "new");
    op.clock.advance(7 * 86_400 - 10);
    assert_eq!(
        client_credentials(&op, "batch", &old).await,
        200,
        "just before the end"
    );
    op.clock.advance(11);
    assert_eq!(
        client_credentials(&op, "batch", &old).await,
        401,
        "after the overlap"
    );
    assert_eq!(client_credentials(&op, "batch", &new).await, 200);

    // The metrics say which secret was used; so does the audit log.
    let scrape = op.scrape().await;
    let line = |secret: &str, result: &str| {
        format!(
            "oidc_bridge_client_authentications_total{{client_id=\"batch\",secret=\"{secret}\",result=\"{result}\"}}"
        )
    };
    let count = |name: &str| -> Option<f64> {
        scrape
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    };
    assert_eq!(count(&line(&old_id, "success")), Some(2.0), "{scrape}");
    assert_eq!(count(&line(&new_id, "success")), Some(2.0), "{scrape}");
    assert_eq!(count(&line("none", "failure")), Some(1.0), "{scrape}");
    let lines: Vec<Value> = std::fs::read_to_string(&audit)
        .expect("audit file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let used: Vec<&str> = lines
        .iter()
        .filter(|l| l["event"] == "token_issued" && l["client"] == "batch")
        .filter_map(|l| l["details"]["secret"].as_str())
        .collect();
    assert_eq!(used, [&old_id, &new_id, &old_id, &new_id]);
    let rotations: Vec<&Value> = lines
        .iter()
        .filter(|l| l["event"] == "admin_change")
        .collect();
    assert_eq!(rotations.len(), 2);
    assert_eq!(rotations[1]["details"]["action"], "rotate_secret");
    let all = std::fs::read_to_string(&audit).expect("audit");
    assert!(
        !all.contains(&old) && !all.contains(&new),
        "no secret in the audit log"
    );
}

/// Every audit line has the same keys; each security event of a sign-in's life is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_security_event_is_one_audit_line_with_the_stable_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let audit = dir.path().join("audit.jsonl");
    let op = Op::start_full(
        &yaml(&format!(
            "audit:\n  output: {}\ntokens:\n  refresh_reuse_grace: 0s\n",
            audit.display()
        )),
        None,
        0,
    )
    .await;
    // A wrong password, then a sign-in with consent, a code exchange and a refresh.
    let url = format!(
        "{}/authorize?client_id=from-config&response_type=code&scope=openid%20offline_access&state=st\
         &redirect_uri={CALLBACK}&code_challenge={CHALLENGE}&code_challenge_method=S256&prompt=consent",
        op.base
    );
    let wrong = Browser::new();
    wrong.set_login("alice", "not her password");
    let outcome = wrong.authorize(&url).await;
    assert!(
        matches!(outcome, conformance::Outcome::Page(401, _)),
        "{outcome:?}"
    );
    let tokens = sign_in(&op, "from-config", "config-secret-0123456789").await;
    let rt = tokens["refresh_token"].as_str().expect("rt").to_string();
    let refresh = |rt: String| {
        let op = &op;
        async move {
            op.http
                .post(op.url("/token"))
                .basic_auth("from-config", Some("config-secret-0123456789"))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt.as_str()),
                ])
                .send()
                .await
                .expect("refresh")
        }
    };
    let next: Value = refresh(rt.clone()).await.json().await.expect("json");
    op.clock.advance(5);
    assert_eq!(refresh(rt).await.status(), 400, "reuse after the grace");
    // Revocation (of an access token), a wrong client secret, a key rotation, an admin change.
    let at = next["access_token"]
        .as_str()
        .unwrap_or(tokens["access_token"].as_str().expect("at"));
    let status = op
        .http
        .post(op.url("/revoke"))
        .basic_auth("from-config", Some("config-secret-0123456789"))
        .form(&[("token", at)])
        .send()
        .await
        .expect("revoke")
        .status();
    assert_eq!(status, 200);
    assert_eq!(
        client_credentials(&op, "from-config", "wrong-secret-0123456789").await,
        401
    );
    op.state
        .keys
        .rotate(oidc_bridge::config::Seconds(0))
        .await
        .expect("rotate");
    let (status, _) = admin(
        &op,
        reqwest::Method::POST,
        "/admin/clients",
        Some(json!({"id": "later", "grant_types": ["client_credentials"]})),
    )
    .await;
    assert_eq!(status, 201);

    let lines: Vec<Value> = std::fs::read_to_string(&audit)
        .expect("audit file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let keys = [
        "client",
        "connector",
        "details",
        "event",
        "ip",
        "outcome",
        "request_id",
        "sub",
        "time",
    ];
    for l in &lines {
        let mut got: Vec<&str> = l
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        got.sort();
        assert_eq!(got, keys, "{l}");
        assert!(l["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{l}");
    }
    let find = |event: &str, outcome: &str| {
        lines
            .iter()
            .find(|l| l["event"] == event && l["outcome"] == outcome)
            .unwrap_or_else(|| panic!("no {event}/{outcome} line in {lines:#?}"))
    };
    let failed = find("login", "failure");
    assert_eq!(failed["connector"], "local");
    assert_eq!(failed["client"], "from-config");
    assert_eq!(failed["details"]["username"], "alice");
    assert_eq!(failed["details"]["reason"], "wrong_credentials");
    assert_eq!(failed["ip"], "127.0.0.1");
    assert!(failed["request_id"].as_str().is_some_and(|r| !r.is_empty()));
    let ok = find("login", "success");
    assert_eq!(ok["sub"], "alice");
    assert_eq!(find("consent", "success")["client"], "from-config");
    let issued = find("token_issued", "success");
    assert_eq!(issued["details"]["grant_type"], "authorization_code");
    assert_eq!(issued["sub"], "alice");
    assert!(
        lines
            .iter()
            .any(|l| l["event"] == "token_issued" && l["details"]["grant_type"] == "refresh_token")
    );
    assert_eq!(find("refresh_reuse", "refused")["sub"], "alice");
    assert_eq!(
        find("revocation", "success")["details"]["revoked"],
        "access_token"
    );
    assert_eq!(find("client_auth", "failure")["client"], "from-config");
    assert!(find("key_rotation", "success")["details"]["kid"].is_string());
    assert_eq!(
        find("admin_change", "success")["details"]["action"],
        "create"
    );

    // A logout (the confirmation page, then the confirmed form).
    let browser = Browser::new();
    browser.authorize(&url).await.callback();
    let page = browser.request("GET", &op.url("/logout"), None).await;
    assert_eq!(page.status, 200, "a confirmation page");
    let csrf = conformance::hidden(&page.body, "csrf").expect("csrf");
    browser
        .request(
            "POST",
            &op.url("/logout"),
            Some(&[("csrf".into(), csrf), ("confirm".into(), "yes".into())]),
        )
        .await;
    let all = std::fs::read_to_string(&audit).expect("audit");
    let logout = all
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("json"))
        .find(|l| l["event"] == "logout")
        .unwrap_or_else(|| panic!("no logout line:\n{all}"));
    assert_eq!(logout["sub"], "alice");
    assert_eq!(logout["outcome"], "success");
    assert!(
        !all.contains("correct horse battery staple"),
        "no password in the audit log"
    );
    assert!(
        !all.contains("config-secret-0123456789"),
        "no secret in the audit log"
    );
    assert!(
        !all.contains(&tokens["access_token"].as_str().expect("at")[..40]),
        "no token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_listen_keeps_the_api_off_the_main_listener_and_wrong_tokens_are_throttled() {
    let hash = oidc_bridge::secret::hash_password(TOKEN).expect("hash");
    let op = Op::start_full(
        &format!("{USERS}\nadmin:\n  token_hash: \"{hash}\"\n  listen: 127.0.0.1:0\n"),
        None,
        0,
    )
    .await;
    let resp = op
        .http
        .get(op.url("/admin/clients"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 404, "not on the main listener");
    let admin = op.admin.clone().expect("admin.listen is bound");
    let get = |token: &'static str| {
        let (http, url) = (op.http.clone(), format!("{admin}/admin/clients"));
        async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("GET")
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        get(TOKEN).await,
        200,
        "the token that matches its argon2id hash"
    );
    for _ in 0..10 {
        assert_eq!(get("wrong-token-wrong-token-wrong-token").await, 401);
    }
    assert_eq!(
        get("wrong-token-wrong-token-wrong-token").await,
        429,
        "past ten wrong tokens from one address, refused unchecked"
    );
    assert_eq!(
        get(TOKEN).await,
        429,
        "the budget holds for everyone at that address"
    );
    op.clock.advance(301);
    assert_eq!(get(TOKEN).await, 200, "after the window");
}
