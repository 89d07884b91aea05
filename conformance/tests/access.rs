//! Who may use a client, and what its tokens say of a person, end to end on SQLite and
//! PostgreSQL: local groups through the top-level pipeline; `require_groups` and
//! `deny_groups` at sign-in (a page, `access_denied` for the client, an audit line) and at
//! refresh once the upstream has dropped the group; claims of your own only under their
//! scope; a client's fixed claims; groups and roles in JWT access tokens, verified with the
//! `openidconnect` crate's JOSE code, and a distributed claim past the cap.

use conformance::app::verify_with_third_party;
use conformance::{
    Backend, Browser, CALLBACK, Op, Outcome, PASSWORD, SECRET, happy_flow, http_client, module,
};
use oidc_bridge::testkit::MockIdp;
use serde_json::{Value, json};

/// Backstage's entity-name rule, which every group name must meet by default.
fn is_entity_name(s: &str) -> bool {
    let ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !s.is_empty()
        && s.len() <= 63
        && ok(s.as_bytes()[0])
        && ok(s.as_bytes()[s.len() - 1])
        && s.bytes().all(|b| ok(b) || b"-_.".contains(&b))
}

fn client(id: &str, extra: &str) -> String {
    format!(
        "  - {{ id: {id}, secret: \"{SECRET}\", redirect_uris: [{CALLBACK}], skip_consent: true, grant_types: [authorization_code, refresh_token]{extra} }}\n"
    )
}

fn clients() -> String {
    [
        client(
            "platform",
            ", scopes: [openid, profile, groups, offline_access, org], require_groups: [platform-team], access_token_claims: [groups, roles], claims: { tenant: acme }",
        ),
        client("open", ", scopes: [openid, groups, offline_access], deny_groups: [contractors]"),
        client("tiny", ", access_token_claims: [groups], access_token_claims_max: 1"),
        client("hr", ", scopes: [openid, org]"),
    ]
    .concat()
}

fn audit_path() -> String {
    let dir = std::env::temp_dir().join(format!(
        "oidc-bridge-access-{}",
        oidc_bridge::secret::random_token(6)
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    dir.join("audit.jsonl").display().to_string()
}

/// Local users, the three clients, a scope of our own, and an audit log at `audit`.
fn local_yaml(audit: &str) -> String {
    format!(
        r#"
audit:
  output: {audit}
scopes:
  org: [department, employee_id]
clients:
{clients}users:
  - {{ username: alice, password: "{PASSWORD}", name: Alice, groups: ["Platform Team", Developers], roles: [catalog-admin],
      claims: {{ department: Platform, employee_id: E-1 }} }}
  - {{ username: carol, password: "{PASSWORD}", groups: [Developers, Contractors] }}
"#,
        clients = clients()
    )
}

async fn start_local(backend: Backend) -> Option<Op> {
    Op::start_config(backend, &local_yaml(&audit_path())).await
}

async fn jwks(op: &Op) -> Value {
    let uri = op.discovery().await["jwks_uri"]
        .as_str()
        .expect("jwks_uri")
        .to_string();
    http_client()
        .get(uri)
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json")
}

module!(
    local_groups_are_entity_names_and_claims_follow_their_scope,
    start = start_local,
    |op| {
        let t = happy_flow(&op, &Browser::new(), "platform", &["groups", "org"], &[]).await;
        let id = &t.claims;
        assert_eq!(id["groups"], json!(["developers", "platform-team"]), "{id}");
        for g in id["groups"].as_array().expect("groups") {
            assert!(is_entity_name(g.as_str().expect("str")), "{g}");
        }
        assert_eq!(
            (id["department"].clone(), id["employee_id"].clone()),
            (json!("Platform"), json!("E-1"))
        );
        assert_eq!(id["tenant"], "acme", "a fixed claim of the client");
        assert_eq!(id["roles"], json!(["catalog-admin"]));
        let (status, ui) = op.userinfo(t.access_token()).await;
        assert_eq!(status, 200, "{ui}");
        assert_eq!(
            (ui["department"].clone(), ui["tenant"].clone()),
            (json!("Platform"), json!("acme"))
        );

        // The access token carries groups and roles, checked by a JOSE implementation not ours.
        let at = verify_with_third_party(&jwks(&op).await, t.access_token()).expect("verifies");
        assert_eq!(at["groups"], json!(["developers", "platform-team"]));
        assert_eq!(at["roles"], json!(["catalog-admin"]));
        assert_eq!(at["tenant"], "acme");
        assert!(
            at.get("department").is_none(),
            "scope claims stay out of access tokens"
        );

        // Without the scope, the mapped claims are nowhere.
        let t = happy_flow(&op, &Browser::new(), "platform", &["groups"], &[]).await;
        assert!(t.claims.get("department").is_none(), "{}", t.claims);
        let (_, ui) = op.userinfo(t.access_token()).await;
        assert!(
            ui.get("department").is_none() && ui.get("employee_id").is_none(),
            "{ui}"
        );
    }
);

async fn refused_on_a_page(backend: Backend) {
    let audit = audit_path();
    let Some(op) = Op::start_config(backend, &local_yaml(&audit)).await else {
        return;
    };
    let browser = Browser::new();
    browser.set_login("carol", PASSWORD);
    let rp = op.rp("platform").await;
    let p = rp.authorize_url(&["groups"], &[]);
    let Outcome::Page(status, body) = browser.authorize(&p.url).await else {
        panic!("a page, not a redirect");
    };
    assert_eq!(status, 403);
    assert!(
        body.contains("only for members of certain groups"),
        "{body}"
    );
    // The page's way back gives the client access_denied, with its state and our iss.
    let href = body
        .split("class=\"button\" href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a link back")
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    let back = url::Url::parse(&href).unwrap_or_else(|_| panic!("{href}"));
    assert!(back.as_str().starts_with(CALLBACK), "{back}");
    let q: std::collections::HashMap<String, String> = back.query_pairs().into_owned().collect();
    assert_eq!(q.get("error").map(String::as_str), Some("access_denied"));
    assert_eq!(q.get("state"), Some(&p.state));
    assert_eq!(q.get("iss"), Some(&op.issuer));
    assert!(!q.contains_key("code"));
    // The same person, signed in now, asking silently: straight back with access_denied.
    let p = rp.authorize_url(&["groups"], &[("prompt", "none")]);
    let q = browser.authorize(&p.url).await.callback();
    assert_eq!(
        q.get("error").map(String::as_str),
        Some("access_denied"),
        "{q:?}"
    );
    // The audit log says who, for which client, and why.
    let line = std::fs::read_to_string(&audit)
        .expect("audit")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "login" && e["outcome"] == "denied")
        .expect("an audit line for the refusal");
    assert_eq!(
        (
            line["client"].clone(),
            line["sub"].clone(),
            line["details"]["reason"].clone()
        ),
        (
            json!("platform"),
            json!("carol"),
            json!("not_in_required_group")
        )
    );
    // Alice, in the group, is let in.
    let t = happy_flow(&op, &Browser::new(), "platform", &["groups"], &[]).await;
    assert!(t.claims["groups"].as_array().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_outside_the_required_groups_is_refused_on_a_page_sqlite() {
    refused_on_a_page(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_outside_the_required_groups_is_refused_on_a_page_postgres() {
    refused_on_a_page(Backend::Postgres).await;
}

module!(
    a_member_of_a_denied_group_is_refused,
    start = start_local,
    |op| {
        let browser = Browser::new();
        browser.set_login("carol", PASSWORD);
        let p = op.rp("open").await.authorize_url(&["groups"], &[]);
        match browser.authorize(&p.url).await {
            Outcome::Page(403, body) => assert!(body.contains("`contractors`"), "{body}"),
            other => panic!("{other:?}"),
        }
        // Alice is in no denied group.
        happy_flow(&op, &Browser::new(), "open", &["groups"], &[]).await;
    }
);

module!(
    groups_past_the_cap_are_a_distributed_claim_at_userinfo,
    start = start_local,
    |op| {
        let t = happy_flow(&op, &Browser::new(), "tiny", &[], &[]).await;
        let at = verify_with_third_party(&jwks(&op).await, t.access_token()).expect("verifies");
        assert!(at.get("groups").is_none(), "never part of the list: {at}");
        assert_eq!(at["_claim_names"], json!({"groups": "userinfo"}));
        assert_eq!(
            at["_claim_sources"]["userinfo"]["endpoint"],
            format!("{}/userinfo", op.issuer)
        );
        let (status, ui) = op.userinfo(t.access_token()).await;
        assert_eq!(status, 200, "{ui}");
        assert_eq!(ui["groups"], json!(["developers", "platform-team"]));
    }
);

/// A federated person (an Okta-shaped mock) whose upstream groups change mid-session.
const UPSTREAM: &str = r#"
mock:
  issuers:
    - id: okta
      persona: okta
      users:
        - { username: jane@example.com, name: Jane Doe, email: jane@example.com, groups: [Engineering, "Platform Team"],
            claims: { hr: { department: Platform } } }
    - id: azure
      persona: azure
      tenant: 72f988bf-86f1-41af-91ab-2d7cd011db47
      users:
        - { username: max@contoso.com, name: Max, groups: [Platform], claims: { department: Research, employeeId: "4711" } }
"#;

async fn federated(backend: Backend) -> Option<(MockIdp, Op, String)> {
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
scopes:
  org: [department, employee_id]
connectors:
  - {{ id: okta, type: okta, issuer: "{okta}", client_id: mock-client, client_secret: mock-secret,
      claims: {{ department: hr.department }} }}
  - {{ id: azure, type: azure, issuer: "{azure}", graph_url: "{graph}", client_id: mock-client, client_secret: mock-secret,
      claims: {{ department: graph.department, employee_id: graph.employeeId }}, groups: {{ prefix: entra, prefix_separator: "-" }} }}
clients:
{clients}"#,
        clients = clients()
    );
    let op = Op::start_config(backend, &yaml).await?;
    Some((upstream, op, okta))
}

async fn refused_at_refresh(backend: Backend) {
    let Some((_upstream, op, okta)) = federated(backend).await else {
        return;
    };
    let browser = Browser::new();
    browser.follow_until(CALLBACK);
    let rp = op.rp("platform").await;
    let p = rp.authorize_url(
        &["groups", "org", "offline_access"],
        &[("connector_id", "okta"), ("login_hint", "jane@example.com")],
    );
    let code = browser.authorize(&p.url).await.code();
    let t = rp.exchange(&code, p).await;
    assert_eq!(t.claims["groups"], json!(["engineering", "platform-team"]));
    assert_eq!(
        t.claims["department"], "Platform",
        "mapped from hr.department"
    );
    let resp = http_client()
        .put(format!("{okta}/mock/users/jane@example.com"))
        .json(&json!({"groups": ["Engineering"]}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(resp.status(), 200);
    let refresh = |rt: String| {
        let op = &op;
        async move {
            op.token_request(
                "platform",
                &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
            )
            .await
        }
    };
    let (status, _, body) = refresh(t.refresh_token().expect("rt").to_string()).await;
    assert_eq!(
        status, 200,
        "inside the staleness window the groups stand: {body}"
    );
    op.clock.advance(16 * 60);
    let next = body["refresh_token"].as_str().expect("rt").to_string();
    let (status, _, body) = refresh(next.clone()).await;
    assert_eq!(
        (
            status,
            body["error"].as_str(),
            body["error_description"].as_str()
        ),
        (
            400,
            Some("invalid_grant"),
            Some("the user may no longer use this client")
        ),
        "{body}"
    );
    // The family is gone with it: the same token again is no retry.
    let (status, _, _) = refresh(next).await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_dropped_from_the_required_group_upstream_loses_the_refresh_sqlite() {
    refused_at_refresh(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_dropped_from_the_required_group_upstream_loses_the_refresh_postgres() {
    refused_at_refresh(Backend::Postgres).await;
}

/// An Entra ID user's profile attributes, read from Graph's `/me` (`graph.` paths), are
/// mapped claims like any other: in the ID token and userinfo under their scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_profile_attributes_become_mapped_claims() {
    let Some((_upstream, op, _)) = federated(Backend::Sqlite).await else {
        return;
    };
    let browser = Browser::new();
    browser.follow_until(CALLBACK);
    let rp = op.rp("hr").await;
    let p = rp.authorize_url(
        &["org"],
        &[("connector_id", "azure"), ("login_hint", "max@contoso.com")],
    );
    let q = browser.authorize(&p.url).await.callback();
    let code = q.get("code").unwrap_or_else(|| panic!("{q:?}")).clone();
    let t = rp.exchange(&code, p).await;
    assert_eq!(
        (
            t.claims["department"].clone(),
            t.claims["employee_id"].clone()
        ),
        (json!("Research"), json!("4711")),
        "{}",
        t.claims
    );
    let (_, ui) = op.userinfo(t.access_token()).await;
    assert_eq!(ui["employee_id"], "4711", "{ui}");
}
