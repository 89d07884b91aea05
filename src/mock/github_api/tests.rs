//! Unit tests of the module above.

use super::*;

fn groups(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn slugs_are_lowercase_with_single_dashes_and_no_dash_at_either_end() {
    assert_eq!(slug("Platform Team"), "platform-team");
    assert_eq!(slug("  SRE -- On_Call!! "), "sre-on-call");
    assert_eq!(slug("a.b/c"), "a-b-c");
    assert_eq!(slug("!!!"), "");
    assert_eq!(slug("Ünïcode Team"), "n-code-team");
}

#[test]
fn groups_become_orgs_and_teams_each_once() {
    let m = memberships(&groups(&[
        "acme",
        "acme/Platform Team",
        "ACME/platform team",
        "globex/Ops",
        "/orphan",
        "initech/",
        "acme/!!!",
    ]));
    assert_eq!(m.orgs, vec!["acme", "globex", "initech"]);
    let teams: Vec<(&str, &str, &str)> = m
        .teams
        .iter()
        .map(|t| (t.org.as_str(), t.name.as_str(), t.slug.as_str()))
        .collect();
    assert_eq!(
        teams,
        vec![
            ("acme", "Platform Team", "platform-team"),
            ("globex", "Ops", "ops"),
        ]
    );
}

#[test]
fn pages_default_to_thirty_cap_at_a_hundred_and_survive_nonsense() {
    let p = page_of(65, None, None);
    assert_eq!(
        (p.per_page, p.page, p.last, p.start, p.end),
        (30, 1, 3, 0, 30)
    );
    let p = page_of(65, Some("30"), Some("3"));
    assert_eq!((p.start, p.end), (60, 65));
    let p = page_of(500, Some("1000"), Some("x"));
    assert_eq!((p.per_page, p.page, p.last), (100, 1, 5));
    let p = page_of(5, Some("0"), Some("99999999999999999999"));
    assert_eq!((p.per_page, p.page, p.start, p.end), (30, 1, 0, 5));
    let huge = usize::MAX.to_string();
    let p = page_of(5, Some("2"), Some(huge.as_str()));
    assert_eq!((p.start, p.end, p.last), (5, 5, 3));
    assert_eq!(link_header("http://h", &p), None, "no page after the last");
    assert_eq!(page_of(0, None, None).last, 1);
}

#[test]
fn link_header_names_the_next_and_the_last_page() {
    let url = "http://h/github/api/v3/user/teams";
    assert_eq!(link_header(url, &page_of(30, None, None)), None);
    assert_eq!(
        link_header(url, &page_of(65, Some("30"), None)).as_deref(),
        Some(
            "<http://h/github/api/v3/user/teams?per_page=30&page=2>; rel=\"next\", \
             <http://h/github/api/v3/user/teams?per_page=30&page=3>; rel=\"last\""
        )
    );
    assert_eq!(link_header(url, &page_of(65, Some("30"), Some("3"))), None);
    assert_eq!(link_header(url, &page_of(65, Some("30"), Some("9"))), None);
}

#[test]
fn authorize_is_the_issuers_with_oidc_scopes_and_login_as_hint() {
    let q: HashMap<String, String> = [
        ("client_id", "c1"),
        ("redirect_uri", "http://b/cb?x=1"),
        ("state", "s t"),
        ("scope", "user:email read:org"),
        ("login", "alice"),
        ("allow_signup", "false"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let url = authorize_url("http://h/github", &q).expect("url");
    assert_eq!(
        url,
        "http://h/github/authorize?response_type=code&client_id=c1\
         &scope=openid+profile+email&redirect_uri=http%3A%2F%2Fb%2Fcb%3Fx%3D1\
         &state=s+t&login_hint=alice"
    );
    assert_eq!(authorize_url("http://h", &HashMap::new()), None);
}

#[test]
fn bearer_and_token_schemes_are_accepted() {
    assert_eq!(presented_token("Bearer abc"), Some("abc"));
    assert_eq!(presented_token("token abc"), Some("abc"));
    assert_eq!(presented_token("TOKEN  abc "), Some("abc"));
    assert_eq!(presented_token("Basic abc"), None);
    assert_eq!(presented_token("Bearer "), None);
    assert_eq!(presented_token("abc"), None);
}

fn op(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[test]
fn token_errors_are_http_200_with_githubs_codes() {
    let bad = op(json!({"error": "invalid_grant", "error_description": "x"}));
    let (status, f) = github_token_answer(StatusCode::BAD_REQUEST, &bad, false);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(f[0], ("error", json!("bad_verification_code")));
    assert_eq!(
        f[1],
        (
            "error_description",
            json!("The code passed is incorrect or expired.")
        )
    );
    assert_eq!(
        f[2].1,
        json!(
            "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code"
        )
    );
    let (_, f) = github_token_answer(StatusCode::BAD_REQUEST, &bad, true);
    assert_eq!(f[0].1, json!("bad_refresh_token"));
    let client = op(json!({"error": "invalid_client"}));
    let (status, f) = github_token_answer(StatusCode::UNAUTHORIZED, &client, false);
    assert_eq!(
        (status, f[0].1.clone()),
        (StatusCode::OK, json!("incorrect_client_credentials"))
    );
    let other = op(json!({"error": "unsupported_grant_type", "error_description": "no"}));
    let (_, f) = github_token_answer(StatusCode::BAD_REQUEST, &other, false);
    assert_eq!(
        (f[0].1.clone(), f[1].1.clone()),
        (json!("unsupported_grant_type"), json!("no"))
    );
    let busy = op(json!({"error": "temporarily_unavailable"}));
    let (status, _) = github_token_answer(StatusCode::SERVICE_UNAVAILABLE, &busy, false);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

#[test]
fn token_success_has_githubs_fields_and_refresh_only_when_issued() {
    let plain = op(json!({"access_token": "at", "token_type": "Bearer", "expires_in": 300}));
    let (status, f) = github_token_answer(StatusCode::OK, &plain, false);
    assert_eq!(status, StatusCode::OK);
    let keys: Vec<&str> = f.iter().map(|(k, _)| *k).collect();
    assert_eq!(keys, vec!["access_token", "scope", "token_type"]);
    assert_eq!(f[2].1, json!("bearer"));
    let app = op(json!({"access_token": "at", "refresh_token": "rt", "expires_in": 300}));
    let (_, f) = github_token_answer(StatusCode::OK, &app, false);
    let got: Map<String, Value> = f.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    assert_eq!(got["refresh_token"], "rt");
    assert_eq!(got["expires_in"], 300);
    assert_eq!(got["refresh_token_expires_in"], 15_897_600);
    assert_eq!(got["scope"], "read:org,user:email");
}

#[test]
fn emails_come_from_github_emails_when_given() {
    let mut id = Identity {
        sub: "12345678".into(),
        email: Some("a@x.test".into()),
        ..Identity::default()
    };
    assert_eq!(
        emails_json(&id),
        json!([{"email": "a@x.test", "primary": true, "verified": true, "visibility": null}])
    );
    id.extra.insert(
        "github_emails".into(),
        json!([{"email": "p@x.test", "primary": true, "verified": false}, {"nope": 1}]),
    );
    assert_eq!(
        emails_json(&id),
        json!([{"email": "p@x.test", "primary": true, "verified": false, "visibility": null}])
    );
}

#[test]
fn user_ids_are_the_numeric_subject_or_a_stable_number() {
    let id = Identity {
        sub: "12345678".into(),
        preferred_username: Some("alice".into()),
        ..Identity::default()
    };
    assert_eq!(user_id(&id), 12_345_678);
    let u = user_json("http://h/github", &id);
    assert_eq!(u["login"], "alice");
    assert_eq!(u["node_id"], "U_kgDO12345678");
    assert_eq!(u["html_url"], "http://h/github/alice");
    assert!(u["email"].is_null());
    let odd = Identity {
        sub: "not-a-number".into(),
        ..Identity::default()
    };
    let stable: u64 = numeric("github-user:not-a-number", 8)
        .parse()
        .expect("number");
    assert_eq!(user_id(&odd), stable);
    assert!(stable >= 10_000_000);
    assert_eq!(login_of(&odd), "not-a-number");
}
