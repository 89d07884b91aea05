//! Unit tests of the module above.

use super::*;
use josekit::jws::JwsHeader;

const NOW: i64 = 1_700_000_000;
const READONLY: &str = "https://www.googleapis.com/auth/admin.directory.group.readonly";

fn account() -> ServiceAccount {
    ServiceAccount::generate("http://127.0.0.1:1/google").expect("generate")
}

/// Signs `claims` as a connector would, with the key file's PEM.
fn sign(a: &ServiceAccount, claims: &Value, kid: Option<&str>) -> String {
    let signer = RS256
        .signer_from_pem(&a.private_key_pem)
        .expect("the key file's PEM loads");
    let mut header = JwsHeader::new();
    header.set_token_type("JWT");
    if let Some(k) = kid {
        header.set_key_id(k);
    }
    let payload = serde_json::to_vec(claims).expect("json");
    josekit::jws::serialize_compact(&payload, &header, &signer).expect("sign")
}

fn claims(a: &ServiceAccount) -> Value {
    json!({
        "iss": CLIENT_EMAIL,
        "sub": "admin@example.com",
        "aud": a.token_uri,
        "scope": format!("{READONLY} openid"),
        "iat": NOW,
        "exp": NOW + 3600,
    })
}

fn user(name: &str, email: Option<&str>, groups: &[&str]) -> (String, MockUserConfig) {
    let u = MockUserConfig {
        username: name.into(),
        email: email.map(str::to_string),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..MockUserConfig::default()
    };
    (name.to_string(), u)
}

fn directory(hd: Option<&str>) -> Directory {
    let mut groups = BTreeMap::new();
    groups.insert(
        "Eng@Example.com".to_string(),
        MockDirectoryGroup {
            name: Some("Engineering".into()),
            member_of: vec!["ALL@example.com".into(), "staff@example.com".into()],
        },
    );
    Directory::new(hd.map(str::to_string), groups)
}

#[test]
fn the_key_file_is_a_google_service_account_key() {
    let a = account();
    assert!(a.private_key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert_eq!(a.private_key_id.len(), 40);
    assert!(a.private_key_id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(a.client_id.len(), 21);
    assert!(a.client_id.chars().all(|c| c.is_ascii_digit()));
    assert!(!a.client_id.starts_with('0'));
    let token_uri = "http://127.0.0.1:1/google/service-account/token";
    assert_eq!(a.token_uri, token_uri);
}

#[test]
fn a_signed_assertion_is_accepted_with_or_without_kid() {
    let a = account();
    let expected = Issued {
        sub: Some("admin@example.com".into()),
        scopes: vec![READONLY.into(), "openid".into()],
        expires: NOW + TOKEN_LIFETIME,
    };
    let with_kid = sign(&a, &claims(&a), Some(&a.private_key_id));
    assert_eq!(a.check_assertion(&with_kid, NOW), Ok(expected));
    let without = sign(&a, &claims(&a), None);
    assert!(a.check_assertion(&without, NOW + 3599).is_ok());
    let mut own = claims(&a);
    own["sub"] = json!(CLIENT_EMAIL);
    let own = sign(&a, &own, None);
    let sub = a.check_assertion(&own, NOW).map(|g| g.sub);
    assert_eq!(sub, Ok(None), "the account naming itself is no delegation");
}

#[test]
fn a_tampered_or_foreign_assertion_is_refused() {
    let a = account();
    let refused = |jwt: &str| a.check_assertion(jwt, NOW) == Err(Refusal::BadSignature);
    let good = sign(&a, &claims(&a), None);
    let parts: Vec<&str> = good.split('.').collect();
    let mut other = claims(&a);
    other["sub"] = json!("root@example.com");
    let forged = crate::secret::b64url(other.to_string().as_bytes());
    assert!(refused(&format!("{}.{forged}.{}", parts[0], parts[2])));
    let none = crate::secret::b64url(br#"{"alg":"none"}"#);
    assert!(refused(&format!("{none}.{}.", parts[1])), "alg none");
    let hs = crate::secret::b64url(br#"{"alg":"HS256"}"#);
    assert!(
        refused(&format!("{hs}.{}.{}", parts[1], parts[2])),
        "alg HS256"
    );
    assert!(refused(&sign(&a, &claims(&a), Some("another-key"))), "kid");
    let b = account();
    assert!(refused(&sign(&b, &claims(&a), None)), "another key");
    assert!(refused("not a jwt"));
    assert!(refused(&"a".repeat(MAX_ASSERTION + 1)));
    assert!(!refused(&good));
}

#[test]
fn wrong_claims_are_refused() {
    let a = account();
    let with = |change: &dyn Fn(&mut Value)| {
        let mut c = claims(&a);
        change(&mut c);
        a.check_assertion(&sign(&a, &c, None), NOW)
    };
    let google = with(&|c| c["aud"] = json!("https://oauth2.googleapis.com/token"));
    assert_eq!(google, Err(Refusal::BadAudience));
    let iss = with(&|c| c["iss"] = json!("someone@else.iam.gserviceaccount.com"));
    assert_eq!(iss, Err(Refusal::UnknownAccount));
    assert_eq!(
        with(&|c| c["scope"] = json!("  ")),
        Err(Refusal::InvalidScope)
    );
    let no_scope = with(&|c| {
        if let Some(m) = c.as_object_mut() {
            m.remove("scope");
        }
    });
    assert_eq!(no_scope, Err(Refusal::InvalidScope));
    let sub = with(&|c| c["sub"] = json!(42));
    assert_eq!(sub, Err(Refusal::UnauthorizedClient));
    let listed = with(&|c| {
        let aud = c["aud"].clone();
        c["aud"] = json!(["x", aud]);
    });
    assert!(listed.is_ok(), "aud may be a list");
}

#[test]
fn long_lived_expired_or_future_assertions_are_refused() {
    let a = account();
    let at = |iat: Value, exp: Value, now: i64| {
        let mut c = claims(&a);
        c["iat"] = iat;
        c["exp"] = exp;
        a.check_assertion(&sign(&a, &c, None), now)
    };
    let bad = Err(Refusal::BadTimes);
    assert_eq!(at(json!(NOW), json!(NOW + 7200), NOW), bad, "two hours");
    assert_eq!(
        at(json!(NOW), json!(NOW + 3601), NOW),
        bad,
        "an hour and a second"
    );
    assert_eq!(
        at(json!(NOW), json!(NOW + 3600), NOW + 3600),
        bad,
        "expired"
    );
    assert_eq!(
        at(json!(NOW + 61), json!(NOW + 600), NOW),
        bad,
        "issued later"
    );
    assert_eq!(
        at(json!(NOW), json!(NOW - 1), NOW - 10),
        bad,
        "exp before iat"
    );
    assert_eq!(at(json!("now"), json!(NOW + 60), NOW), bad, "not a number");
    assert_eq!(at(Value::Null, json!(NOW + 60), NOW), bad, "no iat");
    assert!(
        at(json!(NOW + 60), json!(NOW + 600), NOW).is_ok(),
        "a minute's skew"
    );
    assert!(at(json!(NOW - 3000), json!(NOW + 600), NOW).is_ok());
}

#[test]
fn a_users_direct_groups_include_bare_names_in_the_hosted_domain() {
    let d = directory(Some("example.com"));
    let users: Users = [
        user(
            "alice",
            Some("Alice@Example.com"),
            &["ENG@example.com", "Platform", " "],
        ),
        user("bob@corp.test", None, &["ops"]),
        user("carl", None, &["ops@example.com"]),
    ]
    .into_iter()
    .collect();
    let alice = d
        .direct_groups(&users, " alice@EXAMPLE.com")
        .expect("alice");
    let got: Vec<(&str, &str)> = alice
        .iter()
        .map(|(e, n)| (e.as_str(), n.as_str()))
        .collect();
    let expected = [
        ("eng@example.com", "Engineering"),
        ("platform@example.com", "Platform"),
    ];
    assert_eq!(got, expected);
    let bob = d.direct_groups(&users, "bob@corp.test").expect("bob");
    assert_eq!(bob.keys().collect::<Vec<_>>(), ["ops@example.com"]);
    let bob = directory(None).direct_groups(&users, "bob@corp.test");
    let keys: Vec<String> = bob.expect("bob").into_keys().collect();
    assert_eq!(keys, ["ops@corp.test"], "no hosted domain: the user's own");
    let carl = d
        .direct_groups(&users, "carl@example.com")
        .expect("as his ID token says");
    assert_eq!(carl.get("ops@example.com").map(String::as_str), Some("ops"));
    assert_eq!(d.direct_groups(&users, "dora@example.com"), None);
    assert_eq!(d.direct_groups(&users, ""), None);
}

#[test]
fn a_groups_direct_groups_are_its_member_of() {
    let d = directory(Some("example.com"));
    let users = Users::new();
    let eng = d.direct_groups(&users, "eng@EXAMPLE.com").expect("eng");
    let got: Vec<(&str, &str)> = eng.iter().map(|(e, n)| (e.as_str(), n.as_str())).collect();
    assert_eq!(
        got,
        [("all@example.com", "all"), ("staff@example.com", "staff")]
    );
    assert_eq!(
        d.direct_groups(&users, "all@example.com"),
        None,
        "not configured"
    );
}

#[test]
fn only_configured_users_in_the_hosted_domain_may_be_impersonated() {
    let users: Users = [
        user("admin", Some("admin@example.com"), &[]),
        user("eve", Some("eve@other.test"), &[]),
        user("plain", None, &[]),
    ]
    .into_iter()
    .collect();
    let d = directory(Some("example.com"));
    assert!(d.may_impersonate(&users, "ADMIN@example.com"));
    assert!(
        d.may_impersonate(&users, "plain@example.com"),
        "as its ID token says"
    );
    assert!(
        !d.may_impersonate(&users, "eve@other.test"),
        "outside the domain"
    );
    assert!(!d.may_impersonate(&users, "nobody@example.com"));
    assert!(!d.may_impersonate(&users, "admin@example.com.evil"));
    assert!(directory(None).may_impersonate(&users, "eve@other.test"));
}

#[test]
fn pages_are_offsets_clamped_to_200() {
    assert_eq!(page_window(450, None, None), Some((0, 200)));
    assert_eq!(page_window(450, Some("200"), None), Some((200, 400)));
    assert_eq!(page_window(450, Some("400"), None), Some((400, 450)));
    assert_eq!(page_window(400, Some("200"), Some("")), Some((200, 400)));
    assert_eq!(page_window(5, None, Some("2")), Some((0, 2)));
    assert_eq!(page_window(5, Some("4"), Some("2")), Some((4, 5)));
    assert_eq!(page_window(5, None, Some("0")), Some((0, 1)));
    assert_eq!(page_window(5, None, Some("-3")), Some((0, 1)));
    assert_eq!(page_window(500, None, Some("1000")), Some((0, 200)));
    assert_eq!(page_window(0, None, None), Some((0, 0)));
    assert_eq!(page_window(5, Some("5"), None), Some((5, 5)));
    assert_eq!(page_window(5, Some("abc"), None), None);
    assert_eq!(page_window(5, Some("6"), None), None);
    assert_eq!(page_window(5, Some("-1"), None), None);
    assert_eq!(page_window(5, None, Some("ten")), None);
    let huge = format!("{}", u128::MAX);
    assert_eq!(page_window(5, Some(&huge), None), None);
    assert_eq!(page_window(5, None, Some(&huge)), None);
}

#[test]
fn issued_tokens_expire_and_are_capped() {
    let t = IssuedTokens::default();
    let issued = |expires| Issued {
        sub: None,
        scopes: vec![],
        expires,
    };
    t.insert("a", issued(NOW + 10), NOW);
    assert!(t.get("a", NOW + 9).is_some());
    assert!(t.get("a", NOW + 10).is_none(), "expired");
    assert!(t.get("b", NOW).is_none(), "unknown");
    t.insert("b", issued(NOW + 100), NOW + 20);
    assert_eq!(
        t.0.lock().expect("lock").len(),
        1,
        "the expired one is gone"
    );
    {
        let mut map = t.0.lock().expect("lock");
        for i in 0..MAX_ISSUED - 1 {
            let key = sha256_b64url(format!("t{i}").as_bytes());
            map.insert(key, issued(NOW + 1000 + i as i64));
        }
    }
    t.insert("new", issued(NOW + 100_000), NOW);
    assert_eq!(t.0.lock().expect("lock").len(), MAX_ISSUED);
    assert!(
        t.get("b", NOW).is_none(),
        "the soonest to expire went first"
    );
    assert!(t.get("new", NOW).is_some());
    assert!(t.get("t0", NOW).is_some());
}

#[test]
fn group_ids_are_stable_and_google_shaped() {
    let g = group_json("eng@example.com", "Engineering");
    let id = g["id"].as_str().expect("id");
    assert_eq!(id.len(), 15);
    assert!(id.starts_with('0'));
    assert_eq!(group_json("eng@example.com", "x")["id"], g["id"]);
    assert_ne!(group_json("ops@example.com", "x")["id"], g["id"]);
    assert_eq!(g["directMembersCount"], "0");
}

async fn answer(r: Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let body = axum::body::to_bytes(r.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, serde_json::from_slice(&body).expect("json"))
}

#[tokio::test]
async fn refusals_are_googles() {
    let (status, body) = answer(Refusal::BadTimes.into_response()).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    let d = body["error_description"].as_str().expect("description");
    assert!(d.starts_with("Invalid JWT: Token must be a short-lived token (60 minutes)"));
    assert!(
        d.contains("and in a reasonable timeframe. Check your iat"),
        "{d}"
    );
    let (status, body) = answer(Refusal::UnauthorizedClient.into_response()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized_client"))
    );
    let grant = Refusal::UnsupportedGrantType("password".into());
    let (_, body) = answer(grant.into_response()).await;
    assert_eq!(body["error_description"], "Invalid grant_type: password");
    let (status, body) = answer(DirectoryError::PermissionDenied.into_response()).await;
    assert_eq!(status, 403);
    let message = "Not Authorized to access this resource/api";
    let expected =
        json!({"error": {"code": 403, "message": message, "status": "PERMISSION_DENIED"}});
    assert_eq!(body, expected);
    let (status, _) = answer(DirectoryError::NotFound.into_response()).await;
    assert_eq!(status, 404);
}
