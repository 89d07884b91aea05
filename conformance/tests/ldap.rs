//! The LDAP connector against a real OpenLDAP server (`.ci/slapd-up`: Debian's slapd,
//! StartTLS on 3389, LDAPS on 3636, seeded from `.ci/slapd-seed.ldif`), never a mock of the
//! protocol. A relying party (the `openidconnect` crate) signs in through the bridge's form.
//!
//! Outside CI, without `OIDC_BRIDGE_TEST_LDAP_DIR` (the slapd instance directory, which
//! `.ci/run` exports), the tests are skipped; under `CI` a missing directory fails them.

use std::io::Write as _;
use std::process::{Command, Stdio};

use conformance::{Backend, Browser, CALLBACK, Op, Outcome, jwt_claims};
use serde_json::{Value, json};

const SUFFIX: &str = "dc=example,dc=com";

/// The slapd instance directory (its `ca.pem`), or `None` to skip.
fn ldap_dir() -> Option<String> {
    match std::env::var("OIDC_BRIDGE_TEST_LDAP_DIR") {
        Ok(d) if !d.is_empty() => Some(d),
        _ if std::env::var("CI").is_ok() => {
            panic!(
                "OIDC_BRIDGE_TEST_LDAP_DIR is not set: CI must run the LDAP tests (.ci/slapd-up)"
            )
        }
        _ => {
            eprintln!("skipped: OIDC_BRIDGE_TEST_LDAP_DIR is not set (run .ci/slapd-up)");
            None
        }
    }
}

/// A connector item for the seeded directory; `extra` adds keys (YAML flow mapping items).
fn connector(id: &str, dir: &str, url_and_tls: &str, extra: &str) -> String {
    format!(
        r#"  - id: {id}
    type: ldap
    name: Corporate directory
    {url_and_tls}
    ca_file: "{dir}/ca.pem"
    bind_dn: "cn=reader,{SUFFIX}"
    bind_password: reader-secret
    user_search: {{ base_dn: "ou=people,{SUFFIX}", filter: "(uid={{username}})" }}
    group_search: {{ base_dn: "ou=groups,{SUFFIX}", user_attr: dn, group_attr: member, name_attr: cn, nested: true }}
    claims: {{ employee_mail: mail }}
{extra}"#
    )
}

fn start_tls(dir: &str) -> String {
    connector(
        "corp",
        dir,
        "url: ldap://127.0.0.1:3389\n    start_tls: true",
        "",
    )
}

async fn bridge(connectors: &str) -> Op {
    Op::start_with(Backend::Sqlite, &format!("connectors:\n{connectors}"))
        .await
        .expect("bridge starts")
}

/// Signs in with `connector`'s form as `user`/`password`: where it ended, and the request.
async fn sign_in(
    op: &Op,
    browser: &Browser,
    connector: &str,
    user: &str,
    password: &str,
) -> (Outcome, conformance::Pending) {
    browser.follow_until(CALLBACK);
    browser.set_login(user, password);
    let rp = op.rp("client").await;
    let p = rp.authorize_url(
        &["profile", "email", "groups", "offline_access"],
        &[("connector_id", connector)],
    );
    (browser.authorize(&p.url).await, p)
}

async fn login(op: &Op, connector: &str, user: &str, password: &str) -> conformance::Tokens {
    let (outcome, p) = sign_in(op, &Browser::new(), connector, user, password).await;
    op.rp("client").await.exchange(&outcome.code(), p).await
}

fn sorted(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("a list: {v}"))
        .iter()
        .map(|g| g.as_str().expect("a name").to_string())
        .collect();
    out.sort();
    out
}

/// As the directory's admin, `ldapadd` or `ldapdelete` (the test's own entries only).
fn ldap_admin(tool: &str, input: &str) {
    let mut child = Command::new(tool)
        .args(["-x", "-H", "ldap://127.0.0.1:3389", "-D"])
        .arg(format!("cn=admin,{SUFFIX}"))
        .args(["-w", "admin-secret"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    assert!(
        child.wait().expect("wait").success(),
        "{tool} failed: {input}"
    );
}

/// Nested groups through two levels and a cycle (platform ⊂ engineering ⊂ staff; loop-a ⇄
/// loop-b), in the ID token and at userinfo, with mapped attributes.
#[tokio::test]
async fn ldap_sign_in_over_start_tls_gives_nested_groups_in_the_id_token_and_userinfo() {
    let Some(dir) = ldap_dir() else { return };
    let op = bridge(&start_tls(&dir)).await;
    let t = login(&op, "corp", "alice", "alice-password").await;
    let want = ["engineering", "loop-a", "loop-b", "platform", "staff"];
    assert_eq!(sorted(&t.claims["groups"]), want);
    let (status, ui) = op.userinfo(t.access_token()).await;
    assert_eq!(status, 200, "{ui}");
    assert_eq!(sorted(&ui["groups"]), want);
    assert_eq!(ui["preferred_username"], "alice");
    assert_eq!(ui["name"], "Alice Liddell");
    assert_eq!(ui["email"], "alice@example.com");
    let bob = login(&op, "corp", "bob", "bob-password").await;
    assert_eq!(sorted(&bob.claims["groups"]), ["engineering", "staff"]);
    let carol = login(&op, "corp", "carol", "carol-password").await;
    assert_eq!(carol.claims["groups"], json!([]));
    assert_ne!(bob.claims["sub"], carol.claims["sub"]);
}

/// LDAPS, direct groups only, and one subject per directory entry (its `entryUUID`), the
/// same at every sign-in.
#[tokio::test]
async fn ldaps_without_nesting_gives_direct_groups_and_a_stable_subject() {
    let Some(dir) = ldap_dir() else { return };
    let item = connector("corp", &dir, "url: ldaps://127.0.0.1:3636", "")
        .replace("nested: true", "nested: false");
    let op = bridge(&item).await;
    let t = login(&op, "corp", "alice", "alice-password").await;
    assert_eq!(sorted(&t.claims["groups"]), ["loop-a", "platform"]);
    let again = login(&op, "corp", "alice", "alice-password").await;
    assert_eq!(again.claims["sub"], t.claims["sub"]);
}

/// A wrong password is refused like an unknown user, counts against the sign-in budgets, and
/// after five the right password is refused too; an empty password never reaches the
/// directory as an (anonymous) bind.
#[tokio::test]
async fn a_wrong_ldap_password_is_refused_and_throttled() {
    let Some(dir) = ldap_dir() else { return };
    let op = bridge(&start_tls(&dir)).await;
    let browser = Browser::new();
    for (user, password) in [
        ("alice", "wrong"),
        ("nobody", "alice-password"),
        ("alice", ""),
    ] {
        match sign_in(&op, &browser, "corp", user, password).await.0 {
            Outcome::Page(status, body) => {
                assert_eq!(status, 401, "{user}: {body}");
                assert!(body.contains("Wrong username or password"), "{body}");
                assert!(
                    body.contains("name=\"connector\" value=\"corp\""),
                    "the form stays the directory's"
                );
            }
            other => panic!("{user}: {other:?}"),
        }
    }
    for _ in 0..3 {
        let (outcome, _) = sign_in(&op, &browser, "corp", "alice", "wrong").await;
        assert!(matches!(outcome, Outcome::Page(401, _)), "{outcome:?}");
    }
    match sign_in(&op, &browser, "corp", "alice", "alice-password")
        .await
        .0
    {
        Outcome::Page(status, body) => {
            assert_eq!(status, 429, "{body}");
            assert!(body.contains("Too many failed sign-in attempts"), "{body}");
        }
        other => panic!("throttled, not {other:?}"),
    }
    // The local user `alice` has a budget of her own.
    let local = login(&op, "local", "alice", conformance::PASSWORD).await;
    assert_eq!(
        sorted(&local.claims["groups"]),
        ["developers", "wonderland"]
    );
}

/// `password_check: compare`: the search account compares `userPassword` (for directories
/// that refuse user binds; OpenLDAP compares the stored value, so this user's is in clear).
#[tokio::test]
async fn compare_checks_the_password_as_the_search_account() {
    let Some(dir) = ldap_dir() else { return };
    let uid = format!(
        "cmp{}",
        oidc_bridge::secret::random_token(6)
            .to_lowercase()
            .replace(['-', '_'], "x")
    );
    ldap_admin(
        "ldapadd",
        &format!(
            "dn: uid={uid},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: Compare User\nsn: User\nmail: {uid}@example.com\nuserPassword: plain-secret\n"
        ),
    );
    let item = connector(
        "corp",
        &dir,
        "url: ldap://127.0.0.1:3389\n    start_tls: true\n    password_check: compare",
        "",
    );
    let op = bridge(&item).await;
    let t = login(&op, "corp", &uid, "plain-secret").await;
    assert_eq!(t.claims["groups"], json!([]));
    let (outcome, _) = sign_in(&op, &Browser::new(), "corp", &uid, "not-it").await;
    assert!(matches!(outcome, Outcome::Page(401, _)), "{outcome:?}");
    // It is a compare, not a bind: alice's right password (stored hashed, which a bind
    // accepts and OpenLDAP's compare does not) is refused.
    let (outcome, _) = sign_in(&op, &Browser::new(), "corp", "alice", "alice-password").await;
    assert!(matches!(outcome, Outcome::Page(401, _)), "{outcome:?}");
    ldap_admin("ldapdelete", &format!("uid={uid},ou=people,{SUFFIX}\n"));
}

/// Past the staleness window a refresh reads the entry and its groups again (no password);
/// an entry gone from the directory ends the session.
#[tokio::test]
async fn an_ldap_refresh_re_reads_groups_and_ends_when_the_entry_is_gone() {
    let Some(dir) = ldap_dir() else { return };
    let uid = format!(
        "ref{}",
        oidc_bridge::secret::random_token(6)
            .to_lowercase()
            .replace(['-', '_'], "x")
    );
    let user_dn = format!("uid={uid},ou=people,{SUFFIX}");
    let group_dn = format!("cn=tmp-{uid},ou=groups,{SUFFIX}");
    ldap_admin(
        "ldapadd",
        &format!(
            "dn: {user_dn}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: Refresh User\nsn: User\nuserPassword: {uid}-pw\n\ndn: {group_dn}\nobjectClass: groupOfNames\ncn: tmp-{uid}\nmember: {user_dn}\n"
        ),
    );
    let op = bridge(&start_tls(&dir)).await;
    let t = login(&op, "corp", &uid, &format!("{uid}-pw")).await;
    assert_eq!(t.claims["groups"], json!([format!("tmp-{uid}")]));
    let refresh = |rt: String| {
        let op = &op;
        async move {
            let (status, _, body) = op
                .token_request(
                    "client",
                    &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
                )
                .await;
            (status, body)
        }
    };
    ldap_admin("ldapdelete", &format!("{group_dn}\n"));
    op.clock.advance(16 * 60);
    let (status, body) = refresh(t.refresh_token().expect("rt").to_string()).await;
    assert_eq!(status, 200, "{body}");
    let id = jwt_claims(body["id_token"].as_str().expect("id_token"));
    assert_eq!(id["groups"], json!([]), "the group is gone");
    assert_eq!(id["sub"], t.claims["sub"]);
    ldap_admin("ldapdelete", &format!("{user_dn}\n"));
    op.clock.advance(16 * 60);
    let (status, body) = refresh(body["refresh_token"].as_str().expect("rt").to_string()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

/// StartTLS really verifies the server: with a CA that did not sign its certificate (here the
/// server's own leaf certificate), nobody signs in.
#[tokio::test]
async fn start_tls_refuses_a_server_the_ca_does_not_vouch_for() {
    let Some(dir) = ldap_dir() else { return };
    let item = start_tls(&dir).replace("ca.pem", "server.pem");
    let op = bridge(&item).await;
    match sign_in(&op, &Browser::new(), "corp", "alice", "alice-password")
        .await
        .0
    {
        Outcome::Page(status, body) => assert_eq!(status, 503, "{body}"),
        other => panic!("{other:?}"),
    }
}

/// A directory that cannot be reached gets a 503 page, which does not count as a failure.
#[tokio::test]
async fn an_unreachable_directory_is_a_503_not_a_wrong_password() {
    let Some(dir) = ldap_dir() else { return };
    let item = connector(
        "corp",
        &dir,
        "url: ldap://127.0.0.1:9\n    start_tls: true\n    timeout: 2s",
        "",
    );
    let op = bridge(&item).await;
    let browser = Browser::new();
    for _ in 0..6 {
        match sign_in(&op, &browser, "corp", "alice", "alice-password")
            .await
            .0
        {
            Outcome::Page(status, body) => {
                assert_eq!(status, 503, "{body}");
                assert!(body.contains("cannot be reached"), "{body}");
            }
            other => panic!("{other:?}"),
        }
    }
}

/// The sign-in filter still holds at a refresh: an account the filter now excludes (here
/// marked disabled, as Active Directory's `userAccountControl` filter does) loses its session
/// at the next refresh past the window, though the entry is still there.
#[tokio::test]
async fn a_refresh_applies_the_user_filter_so_a_disabled_account_is_gone() {
    let Some(dir) = ldap_dir() else { return };
    let uid = format!(
        "dis{}",
        oidc_bridge::secret::random_token(6)
            .to_lowercase()
            .replace(['-', '_'], "x")
    );
    let user_dn = format!("uid={uid},ou=people,{SUFFIX}");
    ldap_admin(
        "ldapadd",
        &format!(
            "dn: {user_dn}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: Soon Disabled\nsn: User\nuserPassword: {uid}-pw\n"
        ),
    );
    let item = start_tls(&dir).replace(
        "filter: \"(uid={username})\"",
        "filter: \"(&(uid={username})(!(description=disabled)))\"",
    );
    let op = bridge(&item).await;
    let t = login(&op, "corp", &uid, &format!("{uid}-pw")).await;
    ldap_admin(
        "ldapmodify",
        &format!("dn: {user_dn}\nchangetype: modify\nadd: description\ndescription: disabled\n"),
    );
    op.clock.advance(16 * 60);
    let (status, _, body) = op
        .token_request(
            "client",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", t.refresh_token().expect("rt")),
            ],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    ldap_admin("ldapdelete", &format!("{user_dn}\n"));
}
