//! The Google Workspace, GitHub and GitLab-style connectors end to end, in one process: the
//! bridge federates to the mock's `google` and `github` personas (on `localhost`, so their
//! cookies stay apart from the bridge's on 127.0.0.1), and a relying party (the
//! `openidconnect` crate) signs in through each. LDAP has its own file, against a real slapd.

use conformance::{Backend, Browser, CALLBACK, Op, Outcome, http_client, jwt_claims};
use oidc_bridge::testkit::MockIdp;
use serde_json::{Value, json};

const UPSTREAM: &str = r#"
mock:
  issuers:
    - id: github
      persona: github
      users:
        - { username: octocat, name: The Octocat, email: octocat@acme.com, groups: [acme, "acme/Platform Team", "acme/Sales", other, "other/Ops"] }
        - { username: outsider, email: outsider@else.example, groups: [else, "else/Everyone"] }
        - { username: manyteams, email: many@acme.com, groups: [TEAMS] }
    - id: google
      persona: google
      directory_groups:
        platform@example.com: { name: Platform, member_of: [engineering@example.com] }
        engineering@example.com: { name: Engineering, member_of: [everyone@example.com] }
        everyone@example.com: { name: Everyone, member_of: [platform@example.com] }
      users:
        - { username: jane, name: Jane Doe, email: jane@example.com, groups: [platform, sales@example.com] }
        - { username: gmail, name: Consumer, email: someone@gmail.com, groups: [] }
"#;

struct Fed {
    upstream: MockIdp,
    bridge: Op,
    github: String,
    google: String,
    _key_file: tempfile::NamedTempFile,
}

/// `connectors(github, google, google's service-account key file)` gives the bridge's
/// `connectors:` items.
async fn start(connectors: impl Fn(&str, &str, &str) -> String) -> Fed {
    let teams: Vec<String> = (0..120).map(|i| format!("\"acme/T{i:03}\"")).collect();
    let upstream = MockIdp::builder()
        .host("localhost")
        .config_yaml(&UPSTREAM.replace("TEAMS", &teams.join(", ")))
        .start()
        .await
        .expect("upstream starts");
    let github = upstream.issuer_of("github").expect("github").to_string();
    let google = upstream.issuer_of("google").expect("google").to_string();
    // The persona's service-account key, as an admin downloads it from the console.
    let key = http_client()
        .get(format!("{google}/service-account.json"))
        .send()
        .await
        .expect("GET key")
        .text()
        .await
        .expect("key");
    let key_file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(key_file.path(), key).expect("write key");
    let path = key_file.path().display().to_string();
    let yaml = format!("connectors:\n{}", connectors(&github, &google, &path));
    let bridge = Op::start_with(Backend::Sqlite, &yaml)
        .await
        .expect("bridge starts");
    Fed {
        upstream,
        bridge,
        github,
        google,
        _key_file: key_file,
    }
}

/// RP → bridge → upstream (signed in by `login_hint`) → bridge → RP: where it ended.
async fn sign_in(fed: &Fed, connector: &str, hint: &str) -> (Outcome, conformance::Pending) {
    let browser = Browser::new();
    browser.follow_until(CALLBACK);
    let rp = fed.bridge.rp("client").await;
    let p = rp.authorize_url(
        &["profile", "email", "groups", "offline_access"],
        &[("connector_id", connector), ("login_hint", hint)],
    );
    (browser.authorize(&p.url).await, p)
}

async fn login(fed: &Fed, connector: &str, hint: &str) -> conformance::Tokens {
    let (outcome, p) = sign_in(fed, connector, hint).await;
    let rp = fed.bridge.rp("client").await;
    rp.exchange(&outcome.code(), p).await
}

async fn userinfo_groups(fed: &Fed, t: &conformance::Tokens) -> Value {
    let (status, body) = fed.bridge.userinfo(t.access_token()).await;
    assert_eq!(status, 200, "{body}");
    body["groups"].clone()
}

async fn refresh(fed: &Fed, rt: &str) -> (u16, Value) {
    let (status, _, body) = fed
        .bridge
        .token_request(
            "client",
            &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        )
        .await;
    (status, body)
}

/// A listener for the bridge (its port known first, for an upstream client's redirect URI)
/// and the upstream mock started with `yaml(port)`.
async fn bound_upstream(yaml: impl FnOnce(u16) -> String) -> (tokio::net::TcpListener, MockIdp) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let upstream = MockIdp::builder()
        .host("localhost")
        .config_yaml(&yaml(port))
        .start()
        .await
        .expect("upstream starts");
    (listener, upstream)
}

async fn set_groups(issuer: &str, user: &str, groups: Value) {
    let resp = http_client()
        .put(format!("{issuer}/mock/users/{user}"))
        .json(&json!({ "groups": groups }))
        .send()
        .await
        .expect("PUT");
    assert_eq!(resp.status(), 200);
}

fn github_connectors(github: &str, _google: &str, _key: &str) -> String {
    // The persona's org ids are derived from the org's name.
    let acme: u64 = oidc_bridge::mock::persona::numeric("github-org:acme", 7)
        .parse()
        .expect("an id");
    format!(
        r#"  - id: github-pinned
    type: github
    base_url: "{github}"
    client_id: mock-client
    client_secret: mock-secret
    orgs: [{{ name: acme, id: {acme} }}]
    groups: {{ prefix: pin, prefix_separator: "-" }}
  - id: github-moved
    type: github
    base_url: "{github}"
    client_id: mock-client
    client_secret: mock-secret
    orgs: [{{ name: acme, id: 1 }}]
    groups: {{ prefix: moved, prefix_separator: "-" }}
  - id: github
    type: github
    name: GitHub
    base_url: "{github}"
    client_id: mock-client
    client_secret: mock-secret
    orgs: [{{ name: acme, teams: ["Platform Team"] }}]
  - id: github-all
    type: github
    base_url: "{github}"
    client_id: mock-client
    client_secret: mock-secret
    groups: {{ prefix: gh, prefix_separator: "-" }}
"#
    )
}

/// `orgs` with a `teams` list: the org and that team, nothing from other orgs or teams;
/// the immutable id is GitHub's numeric id, the e-mail the verified primary address.
#[tokio::test]
async fn a_github_sign_in_gives_org_and_allowed_team_groups_in_the_id_token_and_userinfo() {
    let fed = start(github_connectors).await;
    let t = login(&fed, "github", "octocat").await;
    assert_eq!(t.claims["groups"], json!(["acme", "acme-platform-team"]));
    let (status, ui) = fed.bridge.userinfo(t.access_token()).await;
    assert_eq!(status, 200, "{ui}");
    assert_eq!(ui["groups"], json!(["acme", "acme-platform-team"]));
    assert_eq!(ui["preferred_username"], "octocat");
    assert_eq!(ui["email"], "octocat@acme.com");
    assert_eq!(ui["email_verified"], true);
    // Without `orgs`: every org and team (`.` between them: see team_separator), through the
    // connector's own pipeline.
    let all = login(&fed, "github-all", "octocat").await;
    assert_eq!(
        all.claims["groups"],
        json!([
            "gh-acme",
            "gh-acme.platform-team",
            "gh-acme.sales",
            "gh-other",
            "gh-other.ops"
        ])
    );
    assert_ne!(
        all.claims["sub"], t.claims["sub"],
        "one subject per connector"
    );
    // The sign-in went through GitHub's OAuth endpoints with PKCE S256 (the mock's client
    // does not require PKCE: only the connector sending it puts these in the log).
    let seen = conformance::mock_requests(&fed.github).await;
    let text = seen.to_string();
    assert!(text.contains("/login/oauth/access_token"), "{text}");
    assert!(text.contains("/api/v3/user/teams"), "{text}");
    let authorize = seen
        .as_array()
        .expect("requests")
        .iter()
        .find(|r| {
            r["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("/login/oauth/authorize"))
        })
        .expect("an authorization request");
    assert_eq!(
        authorize["params"]["code_challenge_method"], "S256",
        "{authorize}"
    );
    assert!(
        text.contains("\"code_verifier\""),
        "the exchange sent the verifier: {text}"
    );
}

/// An org pinned by its numeric id: its members are admitted; an `acme` that is another org
/// (the id differs: the name was freed by a rename and registered again) admits nobody.
#[tokio::test]
async fn a_github_org_pinned_by_id_admits_only_that_org() {
    let fed = start(github_connectors).await;
    let t = login(&fed, "github-pinned", "octocat").await;
    assert_eq!(
        t.claims["groups"],
        json!(["pin-acme", "pin-acme-platform-team", "pin-acme-sales"])
    );
    match sign_in(&fed, "github-moved", "octocat").await.0 {
        Outcome::Page(status, body) => {
            assert_eq!(status, 403, "{body}");
            assert!(
                body.contains("not a member of the required GitHub orgs"),
                "{body}"
            );
        }
        other => panic!("{other:?}"),
    }
}

/// Someone in none of the required orgs is refused with a page that says why.
#[tokio::test]
async fn github_refuses_a_person_outside_the_org_allow_list() {
    let fed = start(github_connectors).await;
    match sign_in(&fed, "github", "outsider").await.0 {
        Outcome::Page(status, body) => {
            assert_eq!(status, 403, "{body}");
            assert!(
                body.contains("not a member of the required GitHub orgs"),
                "{body}"
            );
        }
        other => panic!("{other:?}"),
    }
    // In the org but not in an allowed team: refused too.
    set_groups(&fed.github, "outsider", json!(["acme", "acme/Sales"])).await;
    assert!(matches!(
        sign_in(&fed, "github", "outsider").await.0,
        Outcome::Page(403, _)
    ));
}

/// 120 teams: two pages of `/user/teams` (100 each, `Link: rel="next"`), all of them read.
#[tokio::test]
async fn github_teams_are_read_across_pages() {
    let fed = start(github_connectors).await;
    let t = login(&fed, "github-all", "manyteams").await;
    let groups = t.claims["groups"].as_array().expect("groups").clone();
    assert_eq!(groups.len(), 121, "acme and its 120 teams");
    assert!(groups.contains(&json!("gh-acme.t119")), "{groups:?}");
}

/// A refresh past the staleness window reads the teams again; leaving the org ends it.
#[tokio::test]
async fn a_github_refresh_re_reads_teams_and_ends_when_the_person_leaves_the_org() {
    let fed = start(github_connectors).await;
    let t = login(&fed, "github", "octocat").await;
    let rt = t.refresh_token().expect("refresh token").to_string();
    set_groups(
        &fed.github,
        "octocat",
        json!(["acme", "acme/Platform Team", "acme/Sales"]),
    )
    .await;
    fed.bridge.clock.advance(16 * 60);
    let (status, body) = refresh(&fed, &rt).await;
    assert_eq!(status, 200, "{body}");
    let id = jwt_claims(body["id_token"].as_str().expect("id_token"));
    assert_eq!(id["groups"], json!(["acme", "acme-platform-team"]));
    assert_eq!(id["sub"], t.claims["sub"], "the subject never changes");
    set_groups(&fed.github, "octocat", json!(["other"])).await;
    fed.bridge.clock.advance(16 * 60);
    let rt = body["refresh_token"].as_str().expect("rt").to_string();
    let (status, body) = refresh(&fed, &rt).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let _ = &fed.upstream;
}

fn google_connectors(_github: &str, google: &str, key: &str) -> String {
    format!(
        r#"  - id: google
    type: google
    name: Google Workspace
    issuer: "{google}"
    client_id: mock-client
    client_secret: mock-secret
    hosted_domains: [example.com]
    group_name: email_local_part
    directory:
      service_account_key_file: "{key}"
      admin_email: jane@example.com
      api_url: "{google}"
      transitive: true
  - id: google-direct
    type: google
    issuer: "{google}"
    client_id: mock-client
    client_secret: mock-secret
    groups: {{ slugify: false }}
    directory:
      service_account_key_file: "{key}"
      domain_admins: {{ example.com: jane@example.com }}
      api_url: "{google}"
"#
    )
}

async fn requests_to(issuer: &str, path: &str) -> usize {
    let seen = conformance::mock_requests(issuer).await;
    seen.as_array()
        .or(seen["requests"].as_array())
        .expect("a list of requests")
        .iter()
        .filter(|r| r["path"].as_str().is_some_and(|p| p.ends_with(path)))
        .count()
}

/// Google's ID token carries no groups; the bridge reads them from the Directory API with
/// the service account (an RS256 JWT assertion, the token cached), follows groups' own
/// memberships through a cycle, and names them by the e-mail's local part.
#[tokio::test]
async fn a_google_sign_in_gets_transitive_directory_groups() {
    let fed = start(google_connectors).await;
    let t = login(&fed, "google", "jane").await;
    assert_eq!(
        t.claims["groups"],
        json!(["engineering", "everyone", "platform", "sales"])
    );
    assert_eq!(
        userinfo_groups(&fed, &t).await,
        json!(["engineering", "everyone", "platform", "sales"])
    );
    // Direct memberships only, named by e-mail (slugify off keeps the address).
    let direct = login(&fed, "google-direct", "jane").await;
    assert_eq!(
        direct.claims["groups"],
        json!(["platform@example.com", "sales@example.com"])
    );
    // One service-account token per connector, each cached: two sign-ins, two tokens.
    assert_eq!(requests_to(&fed.google, "/service-account/token").await, 2);
    let _ = login(&fed, "google", "jane").await;
    assert_eq!(
        requests_to(&fed.google, "/service-account/token").await,
        2,
        "the Directory token is cached until it expires"
    );
}

/// `hosted_domains`: a Google account of another domain (a consumer account) is refused.
#[tokio::test]
async fn google_refuses_an_account_outside_the_hosted_domains() {
    let fed = start(google_connectors).await;
    match sign_in(&fed, "google", "gmail").await.0 {
        Outcome::Page(status, body) => {
            assert_eq!(status, 403, "{body}");
            assert!(
                body.contains("a Google account outside the allowed Workspace domains"),
                "a consumer account has no hd: {body}"
            );
        }
        other => panic!("{other:?}"),
    }
    // The same person through a connector with no hosted_domains signs in, with no
    // Directory groups: Google vouches for an address's groups only in a Workspace.
    let t = login(&fed, "google-direct", "gmail").await;
    assert_eq!(t.claims["groups"], json!([]));
}

/// Google gives no refresh token here: past the staleness window a refresh reads the
/// Directory again for the e-mail signed in with.
#[tokio::test]
async fn a_google_refresh_re_reads_the_directory() {
    let fed = start(google_connectors).await;
    let t = login(&fed, "google", "jane").await;
    set_groups(&fed.google, "jane", json!(["sales"])).await;
    fed.bridge.clock.advance(16 * 60);
    let (status, body) = refresh(&fed, t.refresh_token().expect("rt")).await;
    assert_eq!(status, 200, "{body}");
    let id = jwt_claims(body["id_token"].as_str().expect("id_token"));
    assert_eq!(id["groups"], json!(["sales"]));
    assert_eq!(id["sub"], t.claims["sub"]);
    // Suspended in the Workspace: the next refresh past the window ends the session.
    let resp = http_client()
        .put(format!("{}/mock/users/jane", fed.google))
        .json(&json!({ "claims": { "suspended": true } }))
        .send()
        .await
        .expect("PUT");
    assert_eq!(resp.status(), 200);
    fed.bridge.clock.advance(16 * 60);
    let (status, body) = refresh(&fed, body["refresh_token"].as_str().expect("rt")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

/// GitLab through the generic `oidc` connector: GitLab's ID token carries `groups_direct`,
/// and `groups` (full paths, subgroups too) only at userinfo, released with `openid`. With
/// `get_userinfo: true` the bridge reads them there; without, there are none.
#[tokio::test]
async fn gitlab_groups_come_from_userinfo_through_the_generic_oidc_connector() {
    // A GitLab application: its userinfo has `groups` whatever the scopes, as GitLab's does.
    let (listener, upstream) = bound_upstream(|port| {
        format!(
            r#"
clients:
  - id: gitlab-app
    secret: gitlab-app-secret
    redirect_uris: [http://127.0.0.1:{port}/callback/gitlab, http://127.0.0.1:{port}/callback/gitlab-token-only]
    groups: {{ always: true }}
mock:
  issuers:
    - id: gitlab
      persona: gitlab
      users:
        - {{ username: dev, name: Dev Eloper, email: dev@acme.com, groups: [acme, acme/platform, acme/platform/sre] }}
"#
        )
    })
    .await;
    let gitlab = upstream.issuer_of("gitlab").expect("gitlab").to_string();
    let connector = |id: &str, userinfo: bool| {
        format!(
            "  - {{ id: {id}, type: oidc, issuer: \"{gitlab}\", client_id: gitlab-app, client_secret: gitlab-app-secret,\n      scopes: [openid, profile, email], get_userinfo: {userinfo}, groups: {{ claims: [groups] }} }}\n"
        )
    };
    let yaml = format!(
        "connectors:\n{}{}",
        connector("gitlab", true),
        connector("gitlab-token-only", false)
    );
    let bridge = Op::start_on_listener(Backend::Sqlite, &yaml, listener)
        .await
        .expect("bridge starts");
    let fed = Fed {
        upstream,
        bridge,
        github: String::new(),
        google: String::new(),
        _key_file: tempfile::NamedTempFile::new().expect("temp"),
    };
    let t = login(&fed, "gitlab", "dev").await;
    assert_eq!(
        t.claims["groups"],
        json!(["acme", "acme-platform", "acme-platform-sre"])
    );
    assert_eq!(
        userinfo_groups(&fed, &t).await,
        json!(["acme", "acme-platform", "acme-platform-sre"])
    );
    let without = login(&fed, "gitlab-token-only", "dev").await;
    assert_eq!(
        without.claims["groups"],
        json!([]),
        "the ID token has no `groups`: userinfo is where they are"
    );
}

/// Google gives a refresh token only at the first consent: without one, a refresh past the
/// window reads the Directory again, and asks `users.get` whether the person was suspended.
#[tokio::test]
async fn without_an_upstream_refresh_token_a_google_refresh_checks_the_directory() {
    // An application the upstream gives no refresh token to.
    let (listener, upstream) = bound_upstream(|port| {
        format!(
            r#"
clients:
  - id: google-app
    secret: google-app-secret
    redirect_uris: [http://127.0.0.1:{port}/callback/google]
    grant_types: [authorization_code]
{}"#,
            UPSTREAM.replace("TEAMS", "acme")
        )
    })
    .await;
    let google = upstream.issuer_of("google").expect("google").to_string();
    let key = http_client()
        .get(format!("{google}/service-account.json"))
        .send()
        .await
        .expect("GET key")
        .text()
        .await
        .expect("key");
    let key_file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(key_file.path(), key).expect("write key");
    let yaml = format!(
        "connectors:\n{}",
        google_connectors("", &google, &key_file.path().display().to_string())
            .replace("client_id: mock-client", "client_id: google-app")
            .replace(
                "client_secret: mock-secret",
                "client_secret: google-app-secret"
            )
    );
    let bridge = Op::start_on_listener(Backend::Sqlite, &yaml, listener)
        .await
        .expect("bridge starts");
    let fed = Fed {
        upstream,
        bridge,
        github: String::new(),
        google: google.clone(),
        _key_file: key_file,
    };
    let t = login(&fed, "google", "jane").await;
    set_groups(&google, "jane", json!(["sales"])).await;
    fed.bridge.clock.advance(16 * 60);
    let (status, body) = refresh(&fed, t.refresh_token().expect("rt")).await;
    assert_eq!(status, 200, "{body}");
    let id = jwt_claims(body["id_token"].as_str().expect("id_token"));
    assert_eq!(id["groups"], json!(["sales"]));
    let resp = http_client()
        .put(format!("{google}/mock/users/jane"))
        .json(&json!({ "claims": { "suspended": true } }))
        .send()
        .await
        .expect("PUT");
    assert_eq!(resp.status(), 200);
    fed.bridge.clock.advance(16 * 60);
    let (status, body) = refresh(&fed, body["refresh_token"].as_str().expect("rt")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert!(requests_to(&google, "/admin/directory/v1/users/jane@example.com").await >= 2);
}
