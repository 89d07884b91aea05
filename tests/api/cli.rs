//! The binary itself: check-config, hash-password, keys, help and version, and `serve` with
//! its logs.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_oidc-bridge");

fn run(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_names_three_different_mistakes_with_key_paths() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "issuer: http://id.example.com\ntokens:\n  access_token: soon\nclients:\n  - id: web\n    redirect_uris: [not a uri]\n",
    )
    .expect("write");
    let (code, _, err) = run(
        &["check-config", "--config", file.to_str().expect("utf8")],
        "",
    );
    assert_ne!(code, 0);
    for path in [
        "issuer:",
        "tokens.access_token:",
        "clients[0].redirect_uris[0]:",
    ] {
        assert!(err.contains(path), "missing {path} in:\n{err}");
    }
    assert!(err.contains("3 problems"), "{err}");
}

/// The connectors' own mistakes, each at its key path, and a warning for owner-chosen
/// Google group names.
#[test]
fn check_config_names_connector_mistakes_and_warns_of_owner_chosen_group_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("c.yaml");
    std::fs::write(
        &file,
        r#"
connectors:
  - { id: gh, type: github, client_id: a, client_secret: b, hosted_domains: [x.com], orgs: [acme, acme-labs] }
  - { id: corp, type: ldap, url: "ldap://ldap.example.com", bind_dn: "cn=r", bind_password: "",
      user_search: { base_dn: "dc=x", filter: "(uid=x)" } }
  - { id: g, type: google, client_id: a, client_secret: b, directory: { service_account_key_file: /nope.json } }
"#,
    )
    .expect("write");
    let (code, _, err) = run(
        &["check-config", "--config", file.to_str().expect("utf8")],
        "",
    );
    assert_ne!(code, 0);
    for path in [
        "connectors[0].hosted_domains: is not a key of a `github` connector",
        "connectors[0].team_separator:",
        "connectors[1].url: ldap:// sends passwords in clear",
        "connectors[1].bind_password: must not be empty",
        "connectors[1].user_search.filter: must contain {username}",
        "connectors[2].directory.service_account_key_file: cannot read `/nope.json`",
        "connectors[2].directory.admin_email: is required",
    ] {
        assert!(err.contains(path), "missing {path} in:\n{err}");
    }
    std::fs::write(
        &file,
        "connectors:\n  - { id: g, type: google, client_id: a, client_secret: b, group_name: name }\n",
    )
    .expect("write");
    let (code, _, err) = run(
        &["check-config", "--config", file.to_str().expect("utf8")],
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(
            "warning: connectors[0].group_name: a Google group's name is chosen by its owners"
        ),
        "{err}"
    );
}

#[test]
fn check_config_accepts_the_quickstart() {
    let quickstart = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/quickstart.yaml");
    let (code, out, err) = run(&["check-config", "--config", quickstart], "");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("OK"), "{out}");
}

#[test]
fn hash_password_reads_stdin_and_prints_an_argon2id_phc_string() {
    let (code, out, err) = run(&["hash-password"], "correct horse\n");
    assert_eq!(code, 0, "{err}");
    let phc = out.trim();
    assert!(phc.starts_with("$argon2id$v=19$"), "{phc}");
    assert!(oidc_bridge::secret::verify_password("correct horse", phc));
    assert!(!oidc_bridge::secret::verify_password(
        "correct horse\n",
        phc
    ));
}

#[test]
fn every_command_has_help_and_the_binary_has_a_version() {
    let (code, out, _) = run(&["--version"], "");
    assert_eq!(code, 0);
    assert!(out.starts_with("oidc-bridge "), "{out}");
    for cmd in [
        vec!["serve"],
        vec!["migrate"],
        vec!["check-config"],
        vec!["keys"],
        vec!["keys", "list"],
        vec!["keys", "rotate"],
        vec!["hash-password"],
    ] {
        let mut args = cmd.clone();
        args.push("--help");
        let (code, out, _) = run(&args, "");
        assert_eq!(code, 0, "{cmd:?}");
        assert!(out.contains("Usage:"), "{cmd:?}: {out}");
    }
}

#[test]
fn migrate_then_keys_rotate_and_list_show_states() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        format!("database: sqlite://{}\n", dir.path().join("k.db").display()),
    )
    .expect("write");
    let cfg = cfg.to_str().expect("utf8");
    let (code, out, err) = run(&["migrate", "--config", cfg], "");
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = run(&["keys", "list", "--config", cfg], "");
    assert_eq!(code, 0);
    assert!(out.contains("no signing keys yet"), "{out}");
    // The first rotation creates the first key (active) and a successor (next).
    let (code, out, err) = run(&["keys", "rotate", "--config", cfg], "");
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = run(&["keys", "list", "--config", cfg, "--json"], "");
    assert_eq!(code, 0);
    let keys: serde_json::Value = serde_json::from_str(&out).expect("json");
    let states: Vec<&str> = keys
        .as_array()
        .expect("list")
        .iter()
        .map(|k| k["state"].as_str().expect("state"))
        .collect();
    assert_eq!(states, ["active", "next"]);
    assert_eq!(keys[0]["alg"], "RS256");
    let (_, table, _) = run(&["keys", "list", "--config", cfg], "");
    assert!(
        table.contains("KID") && table.contains("active") && table.contains("next"),
        "{table}"
    );
}

#[test]
fn serve_logs_one_json_line_per_request_and_never_a_secret_or_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("c.yaml");
    let secret = "very-secret-client-password-42";
    std::fs::write(
        &cfg,
        format!(
            "listen: 127.0.0.1:0\ndatabase: sqlite://{}\nclients:\n  - id: svc\n    secret: {secret}\n    grant_types: [client_credentials]\n",
            dir.path().join("s.db").display()
        ),
    )
    .expect("write");
    let mut child = Command::new(BIN)
        .args([
            "--log-format",
            "json",
            "serve",
            "--config",
            cfg.to_str().expect("utf8"),
        ])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("serve");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = Vec::new();
    let addr = loop {
        let line = lines
            .next()
            .expect("server logs before serving")
            .expect("line");
        seen.push(line.clone());
        let v: serde_json::Value = serde_json::from_str(&line).expect("each log line is JSON");
        if v["message"] == "oidc-bridge is serving" {
            break v["addr"].as_str().expect("addr").to_string();
        }
    };
    let token: serde_json::Value = raw_http::blocking_free_post(&addr, secret);
    let access_token = token["access_token"].as_str().expect("token").to_string();
    let _ = child.kill();
    let _ = child.wait();
    for line in lines.map_while(Result::ok) {
        seen.push(line);
    }
    let all = seen.join("\n");
    assert!(!all.contains(secret), "secret logged:\n{all}");
    assert!(!all.contains(&access_token), "token logged");
    let request_lines: Vec<serde_json::Value> = seen
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "request")
        .collect();
    assert_eq!(request_lines.len(), 1, "{all}");
    let r = &request_lines[0];
    assert_eq!(r["method"], "POST");
    assert_eq!(r["path"], "/token");
    assert_eq!(r["status"], 200);
    assert!(r["latency_ms"].is_number());
}

mod raw_http {
    /// A token request over a plain TCP socket: this test is synchronous.
    pub fn blocking_free_post(addr: &str, secret: &str) -> serde_json::Value {
        use std::io::{Read as _, Write as _};
        let body = format!("grant_type=client_credentials&client_id=svc&client_secret={secret}");
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        write!(
            s,
            "POST /token HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("write");
        let mut resp = String::new();
        s.read_to_string(&mut resp).expect("read");
        let json = resp.split("\r\n\r\n").nth(1).expect("body");
        serde_json::from_str(json).expect("token json")
    }
}

/// Starts `oidc-bridge mock` on a free port; returns the child, its issuer and its stderr.
fn start_mock(
    extra: &[&str],
) -> (
    std::process::Child,
    String,
    std::sync::mpsc::Receiver<String>,
) {
    let mut args = vec!["--log-format", "json", "mock", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut child = Command::new(BIN)
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mock runs");
    let mut out = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let issuer = loop {
        let line = out.next().expect("mock prints its issuer").expect("line");
        if let Some(rest) = line.trim().strip_prefix("issuer") {
            break rest.split_whitespace().nth(1).expect("url").to_string();
        }
    };
    std::thread::spawn(move || for _ in out.by_ref() {});
    let (tx, rx) = std::sync::mpsc::channel();
    let err = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, issuer, rx)
}

#[tokio::test]
async fn mock_prints_its_issuer_keeps_its_key_file_and_logs_audit_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("mock.pem");
    let key = key.to_str().expect("utf8");
    let http = reqwest::Client::new();
    let (mut child, issuer, logs) = start_mock(&["--key-file", key]);
    let jwks: serde_json::Value = http
        .get(format!("{issuer}/jwks"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    let kid = jwks["keys"][0]["kid"].as_str().expect("kid").to_string();

    let minted: serde_json::Value = http
        .post(format!("{issuer}/mock/tokens"))
        .json(&serde_json::json!({"sub": "alice", "expires_in": 300}))
        .send()
        .await
        .expect("mint")
        .json()
        .await
        .expect("json");
    let rt = minted["refresh_token"].as_str().expect("refresh token");
    let refreshed: serde_json::Value = http
        .post(format!("{issuer}/token"))
        .basic_auth("mock-client", Some("mock-secret"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
        .send()
        .await
        .expect("refresh")
        .json()
        .await
        .expect("json");
    let rt2 = refreshed["refresh_token"].as_str().expect("rotated");
    let status = http
        .post(format!("{issuer}/revoke"))
        .basic_auth("mock-client", Some("mock-secret"))
        .form(&[("token", rt2)])
        .send()
        .await
        .expect("revoke")
        .status();
    assert_eq!(status, 200);
    http.post(format!("{issuer}/mock/faults"))
        .json(&serde_json::json!({"endpoint": "token", "effect": {"status": {"status": 503}}, "times": 1}))
        .send()
        .await
        .expect("fault");
    let status = http
        .post(format!("{issuer}/token"))
        .basic_auth("mock-client", Some("mock-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token")
        .status();
    assert_eq!(status, 503);
    let _ = child.kill();
    let _ = child.wait();
    let events: Vec<serde_json::Value> = logs
        .try_iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
        .filter(|v| v["event"].is_string())
        .collect();
    let find = |name: &str| {
        events
            .iter()
            .find(|e| e["event"] == name)
            .unwrap_or_else(|| panic!("no {name} event in {events:?}"))
            .clone()
    };
    let minted = find("token_minted");
    assert_eq!(minted["client_id"], "mock-client");
    assert_eq!(minted["sub"], "alice");
    assert_eq!(minted["expires_in"], 300);
    assert!(minted["jti_hash"].as_str().is_some_and(|h| h.len() == 43));
    let refreshed = find("token_refreshed");
    assert_eq!(refreshed["sub"], "alice");
    assert!(refreshed["jti_hash"].is_string() && refreshed["expires_in"].is_number());
    let revoked = find("token_revoked");
    assert_eq!(
        (revoked["client_id"].as_str(), revoked["sub"].as_str()),
        (Some("mock-client"), Some("alice"))
    );
    let fault = find("fault_injected");
    assert_eq!(fault["endpoint"], "token");

    // A second run with the same key file publishes the same key.
    let (mut child, issuer, _) = start_mock(&["--key-file", key]);
    let jwks: serde_json::Value = http
        .get(format!("{issuer}/jwks"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(jwks["keys"][0]["kid"], kid.as_str());
}

#[test]
fn groups_explain_prints_why_each_group_was_kept_renamed_or_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        r#"
clients:
  - id: backstage
    secret: backstage-secret-0123456789
    redirect_uris: [https://backstage.example.com/api/auth/oidc/handler/frame]
    groups:
      include: ["^azure:p"]
connectors:
  - id: corp
    type: azure
    tenant: 72f988bf-86f1-41af-91ab-2d7cd011db47
    client_id: app
    client_secret: secret
    groups:
      claims: [groups, roles]
      map:
        7a3e6f1c-0000-4000-8000-000000000001: Platform Team
      unmapped: drop
      exclude: ["^everyone$"]
      prefix: azure
"#,
    )
    .expect("write");
    let claims = dir.path().join("claims.json");
    std::fs::write(
        &claims,
        r#"{"groups": ["7a3e6f1c-0000-4000-8000-000000000001", "11111111-2222-4333-8444-555555555555"], "roles": ["Everyone", "Data/Science"]}"#,
    )
    .expect("write");
    let (code, out, err) = run(
        &[
            "groups",
            "explain",
            "--config",
            cfg.to_str().expect("utf8"),
            "--connector",
            "corp",
            "--claims",
            claims.to_str().expect("utf8"),
            "--client",
            "backstage",
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    for expected in [
        "upstream groups (4):",
        "mapped to \"Platform Team\"",
        "-> kept as \"azure:platform-team\"",
        "dropped: a GUID with no name in `map` (unmapped: drop)",
        "dropped: excluded by /^everyone$/",
        "slugified to \"data-science\"",
        "result (2): [\"azure:data-science\", \"azure:platform-team\"]",
        "client backstage: include [\"^azure:p\"], max 0 -> (1) [\"azure:platform-team\"]",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

#[test]
fn groups_explain_shows_a_local_users_groups_and_the_clients_access_policy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        r#"
groups:
  exclude: ["^everyone$"]
clients:
  - { id: backstage, secret: backstage-secret-0123456789, redirect_uris: ["https://b.example.com/cb"],
      require_groups: [sre] }
users:
  - { username: alice, password: a-password-123, groups: ["Platform Team", Everyone] }
"#,
    )
    .expect("write");
    let (code, out, err) = run(
        &[
            "groups",
            "explain",
            "--config",
            cfg.to_str().expect("utf8"),
            "--user",
            "alice",
            "--client",
            "backstage",
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    for expected in [
        "local user alice: top-level groups",
        "slugified to \"platform-team\"",
        "dropped: excluded by /^everyone$/",
        "result (1): [\"platform-team\"]",
        "client backstage: access policy REFUSES this person (not_in_required_group)",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    let (code, _, err) = run(
        &[
            "groups",
            "explain",
            "--config",
            cfg.to_str().expect("utf8"),
            "--user",
            "nobody",
        ],
        "",
    );
    assert_ne!(code, 0);
    assert!(err.contains("no local user `nobody`"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_exits_zero_only_when_the_server_is_ready() {
    let app = crate::helpers::TestApp::spawn().await;
    let base = app.base.clone();
    let (code, out, err) =
        tokio::task::spawn_blocking(move || run(&["healthcheck", "--url", &base], ""))
            .await
            .expect("run");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("/readyz answered 200"), "{out}");
    let healthz = format!("{}/healthz", app.base);
    let (code, _, _) =
        tokio::task::spawn_blocking(move || run(&["healthcheck", "--url", &healthz], ""))
            .await
            .expect("run");
    assert_eq!(code, 0, "a full URL is asked as given");
    let missing = format!("{}/no-such-probe", app.base);
    let (code, _, err) =
        tokio::task::spawn_blocking(move || run(&["healthcheck", "--url", &missing], ""))
            .await
            .expect("run");
    assert_eq!(code, 1, "a 404 is not ready: {err}");
    assert!(err.contains("answered 404"), "{err}");
    let base = app.base.clone();
    app.stop().await;
    let (code, _, err) = tokio::task::spawn_blocking(move || {
        run(&["healthcheck", "--url", &base, "--timeout", "2"], "")
    })
    .await
    .expect("run");
    assert_eq!(code, 1, "a stopped server is not ready");
    assert!(err.contains("cannot be reached"), "{err}");
}

/// Writes `config` and `doc` to a temp dir and runs `groups explain` for `connector`.
fn explain_with(config: &str, connector: &str, doc: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("c.yaml");
    std::fs::write(&cfg, config).expect("write");
    let claims = dir.path().join("answers.json");
    std::fs::write(&claims, doc).expect("write");
    run(
        &[
            "groups",
            "explain",
            "--config",
            cfg.to_str().expect("utf8"),
            "--connector",
            connector,
            "--claims",
            claims.to_str().expect("utf8"),
        ],
        "",
    )
}

/// Each connector type's document: Google's Directory groups (and the `hd` check), GitHub's
/// teams (and the org allow-list), an LDAP directory's groups, each with where it came from.
#[test]
fn groups_explain_shows_where_each_group_came_from_for_google_github_and_ldap() {
    let config = r#"
connectors:
  - { id: google, type: google, client_id: a, client_secret: b, hosted_domains: [example.com],
      group_name: email_local_part }
  - { id: github, type: github, client_id: a, client_secret: b, orgs: [{ name: acme, teams: [platform] }] }
  - { id: corp, type: ldap, url: "ldaps://ldap.example.com", user_search: { base_dn: "ou=people,dc=x" },
      group_search: { base_dn: "ou=groups,dc=x", nested: true }, claims: { department: departmentNumber } }
"#;
    let (code, out, err) = explain_with(
        config,
        "google",
        r#"{"hd": "example.com", "directory_groups": [
            {"email": "platform@example.com", "name": "Platform"},
            {"email": "eng@example.com", "name": "Engineering", "via": "platform@example.com"}]}"#,
    );
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("REFUSED"), "{out}");
    let (_, refused, _) = explain_with(config, "google", r#"{"hd": "evil.example"}"#);
    assert!(
        refused.contains(
            "login would be REFUSED: the Google Workspace domain evil.example is not allowed here"
        ),
        "{refused}"
    );
    for expected in [
        "\"eng\" [google:directory eng@example.com (transitive, via platform@example.com)]",
        "result (2): [\"eng\", \"platform\"]",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    let (code, out, err) = explain_with(
        config,
        "github",
        r#"{"user": {"id": 1, "login": "octocat"}, "orgs": ["acme"],
            "teams": [{"org": "acme", "slug": "platform", "name": "Platform"},
                      {"org": "acme", "slug": "sales", "name": "Sales"}]}"#,
    );
    assert_eq!(code, 0, "{err}");
    for expected in [
        "\"acme-platform\" [github:team acme/platform (Platform)]",
        "\"acme\" [github:org acme]",
        "result (2): [\"acme\", \"acme-platform\"]",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    assert!(
        !out.contains("sales"),
        "a team outside the allow-list: {out}"
    );
    let (_, out, _) = explain_with(
        config,
        "github",
        r#"{"user": {"id": 1, "login": "x"}, "orgs": ["other"]}"#,
    );
    assert!(
        out.contains(
            "login would be REFUSED: not a member of the required GitHub orgs or teams (acme)"
        ),
        "{out}"
    );
    let (code, out, err) = explain_with(
        config,
        "corp",
        r#"{"dn": "uid=alice,ou=people,dc=x", "attributes": {"entryUUID": ["u1"], "departmentNumber": ["42"]}, "groups": [
            {"dn": "cn=platform,ou=groups,dc=x", "name": "platform"},
            {"dn": "cn=staff,ou=groups,dc=x", "name": "Staff", "via": "platform"}]}"#,
    );
    assert_eq!(code, 0, "{err}");
    for expected in [
        "\"Staff\" [ldap:member cn=staff,ou=groups,dc=x (nested, via platform)]",
        "result (2): [\"platform\", \"staff\"]",
        "claim department <- departmentNumber: \"42\"",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    // A file of the wrong shape is an error that says the right one, not an empty answer.
    let (code, _, err) = explain_with(config, "github", r#"{"user": "octocat", "teams": 3}"#);
    assert_ne!(code, 0);
    assert!(err.contains("GitHub's answers"), "{err}");
}

/// `--lookup` asks a real directory (`.ci/slapd-up`) as the search account: alice's nested
/// groups, each with the group it was reached through.
#[test]
fn groups_explain_looks_an_ldap_user_up_in_the_directory() {
    let dir = match std::env::var("OIDC_BRIDGE_TEST_LDAP_DIR") {
        Ok(d) if !d.is_empty() => d,
        _ if std::env::var("CI").is_ok() => panic!("OIDC_BRIDGE_TEST_LDAP_DIR is not set in CI"),
        _ => return,
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = tmp.path().join("c.yaml");
    std::fs::write(
        &cfg,
        format!(
            r#"
connectors:
  - id: corp
    type: ldap
    url: ldaps://127.0.0.1:3636
    ca_file: "{dir}/ca.pem"
    bind_dn: "cn=reader,dc=example,dc=com"
    bind_password: reader-secret
    user_search: {{ base_dn: "ou=people,dc=example,dc=com" }}
    group_search: {{ base_dn: "ou=groups,dc=example,dc=com", nested: true }}
"#
        ),
    )
    .expect("write");
    let args = |user: &str| {
        vec![
            "groups".to_string(),
            "explain".into(),
            "--config".into(),
            cfg.to_str().expect("utf8").into(),
            "--connector".into(),
            "corp".into(),
            "--lookup".into(),
            user.into(),
        ]
    };
    let a = args("bob");
    let (code, out, err) = run(&a.iter().map(String::as_str).collect::<Vec<_>>(), "");
    assert_eq!(code, 0, "{err}");
    for expected in [
        "\"engineering\" [ldap:member cn=engineering,ou=groups,dc=example,dc=com]",
        "\"staff\" [ldap:member cn=staff,ou=groups,dc=example,dc=com (nested, via engineering)]",
        "result (2): [\"engineering\", \"staff\"]",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    let a = args("nobody");
    let (code, _, err) = run(&a.iter().map(String::as_str).collect::<Vec<_>>(), "");
    assert_ne!(code, 0);
    assert!(err.contains("no single entry for `nobody`"), "{err}");
}
