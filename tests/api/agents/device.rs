//! The device authorization grant (RFC 8628) through openid-client's own poll loop: a
//! person approves on the `/device` page (signing in as for any client), `slow_down` is met
//! and honoured, an expired code and a refused person end the poll; in mock mode, the
//! control API decides instead of a person.

use super::*;
use conformance::{Browser, Outcome, hidden, module};
use oidc_bridge::oidc::device::normalize_user_code;

fn cli_env(client: &str) -> Vec<(&'static str, String)> {
    vec![
        ("CLIENT_ID", client.to_string()),
        ("SCOPE", "openid profile offline_access".to_string()),
    ]
}

/// Waits until the device has polled `n` times; the request as it then stands.
async fn polled(op: &Op, user_code: &str, n: i64) -> oidc_bridge::model::DeviceCodeRecord {
    let code = normalize_user_code(user_code).expect("a user code");
    for _ in 0..600 {
        let d = op
            .state
            .storage
            .get_device_code(&code)
            .await
            .expect("get")
            .expect("stored");
        if d.polls >= n {
            return d;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the device never polled {n} times");
}

/// The person's side: the verification URI with the code, the confirmation, the sign-in.
async fn approve(op: &Op, b: &Browser, started: &Value) -> Outcome {
    let complete = started["verification_uri_complete"]
        .as_str()
        .expect("complete URI");
    let form = b.request("GET", complete, None).await;
    assert_eq!(form.status, 200);
    let typed = hidden_input(&form.body, "user_code");
    assert_eq!(
        Some(typed.as_str()),
        started["user_code"].as_str(),
        "filled in"
    );
    let confirm = b
        .request(
            "POST",
            &op.url("/device"),
            Some(&[("user_code".into(), typed)]),
        )
        .await;
    assert!(
        confirm.body.contains("Orders CLI") || confirm.body.contains("Admin CLI"),
        "{}",
        confirm.body
    );
    let fields: Vec<(String, String)> = ["user_code", "csrf"]
        .iter()
        .map(|n| {
            (
                n.to_string(),
                hidden(&confirm.body, n).expect("hidden field"),
            )
        })
        .chain([("confirm".to_string(), "yes".to_string())])
        .collect();
    b.submit(&op.url("/device"), &fields).await
}

/// The code form's text input value.
fn hidden_input(body: &str, name: &str) -> String {
    let start = body
        .find(&format!("name=\"{name}\" value=\""))
        .expect("input")
        + name.len()
        + 15;
    body[start..].split('"').next().expect("value").to_string()
}

module!(
    a_cli_signs_in_on_another_device_after_slow_down,
    start = start,
    |op| {
        let mut env = cli_env("cli");
        env.push(("RESOURCES", ORDERS.into()));
        env.push(("POLL_INTERVAL", "1".into()));
        let mut run = Running::start(&op, "device", &env);
        let started = run.next().await;
        assert_eq!(started["ok"], true, "{started}");
        assert_eq!(started["interval"], 3);
        let code = started["user_code"].as_str().expect("user_code");
        assert!(code.len() == 9 && code.as_bytes()[4] == b'-', "{code}");
        assert_eq!(started["verification_uri"], op.url("/device").as_str());

        // openid-client polls every second, under the 3-second interval: the second poll hears
        // slow_down, and openid-client must wait 5 seconds longer from then on.
        let seen = polled(&op, code, 2).await;
        assert!(seen.slow_down, "the second poll came too soon");
        let b = Browser::new();
        match approve(&op, &b, &started).await {
            Outcome::Page(status, body) => {
                assert_eq!(status, 200, "{body}");
                assert!(body.contains("Device signed in"), "{body}");
            }
            other => panic!("the device page, not {other:?}"),
        }
        let done = run.next().await;
        assert_eq!(done["ok"], true, "{done}");
        assert_eq!(done["id_token_claims"]["sub"], "alice");
        assert!(done["id_token_claims"].get("nonce").is_none());
        assert_eq!(done["access_claims"]["aud"], ORDERS);
        assert!(
            done["response"]["refresh_token"].is_string(),
            "offline_access"
        );
        let d = op.discovery().await;
        assert_eq!(
            d["device_authorization_endpoint"],
            op.url("/device_authorization").as_str()
        );
    }
);

module!(an_expired_device_code_ends_the_poll, start = start, |op| {
    let mut run = Running::start(&op, "device", &cli_env("cli"));
    let started = run.next().await;
    polled(&op, started["user_code"].as_str().expect("code"), 1).await;
    op.clock.advance(601);
    let done = run.next().await;
    assert_eq!(done["error"], "expired_token", "{done}");
    // The person is too late as well.
    let b = Browser::new();
    let page = b
        .request(
            "POST",
            &op.url("/device"),
            Some(&[(
                "user_code".into(),
                started["user_code"].as_str().expect("code").into(),
            )]),
        )
        .await;
    assert_eq!(page.status, 400, "{}", page.body);
});

module!(
    a_person_the_policy_refuses_denies_the_device,
    start = start,
    |op| {
        let mut run = Running::start(&op, "device", &cli_env("cli-admins"));
        let started = run.next().await;
        let b = Browser::new();
        match approve(&op, &b, &started).await {
            Outcome::Page(status, body) => assert_eq!(status, 403, "{body}"),
            other => panic!("the refusal page, not {other:?}"),
        }
        let done = run.next().await;
        assert_eq!(done["error"], "access_denied", "{done}");
    }
);

module!(
    the_device_page_refuses_wrong_codes_and_forged_confirmations,
    start = start,
    |op| {
        let b = Browser::new();
        let wrong = b
            .request(
                "POST",
                &op.url("/device"),
                Some(&[("user_code".into(), "BCDF-GHJK".into())]),
            )
            .await;
        assert_eq!(wrong.status, 400);
        assert!(wrong.body.contains("That code is wrong"), "{}", wrong.body);
        let mut run = Running::start(&op, "device", &cli_env("cli"));
        let started = run.next().await;
        // Another site's form, posting a confirmation for its own code: no browser-bound token.
        let forged = Browser::new()
            .request(
                "POST",
                &op.url("/device"),
                Some(&[
                    (
                        "user_code".into(),
                        started["user_code"].as_str().expect("code").into(),
                    ),
                    ("confirm".into(), "yes".into()),
                    ("csrf".into(), "forged".into()),
                ]),
            )
            .await;
        assert_eq!(forged.status, 403, "{}", forged.body);
        for _ in 0..10 {
            b.request(
                "POST",
                &op.url("/device"),
                Some(&[("user_code".into(), "BCDF-GHJK".into())]),
            )
            .await;
        }
        let throttled = b
            .request(
                "POST",
                &op.url("/device"),
                Some(&[("user_code".into(), "BCDF-GHJK".into())]),
            )
            .await;
        assert_eq!(throttled.status, 429, "wrong codes are counted per address");
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mock_approves_denies_or_expires_a_device_code() {
    use oidc_bridge::testkit::MockIdp;
    let idp = MockIdp::builder()
        .user("alice", &["qa"])
        .start()
        .await
        .expect("mock");
    let iss = idp.issuer().to_string();
    let op_like = |scenario: &'static str| {
        let mut cmd = Command::new("node");
        cmd.arg("agents-client.mjs")
            .arg(scenario)
            .current_dir(project_dir())
            .env("ISSUER", &iss)
            .env("CLIENT_ID", "mock-client")
            .env("CLIENT_SECRET", "mock-secret")
            .env("SCOPE", "openid profile groups");
        cmd
    };
    conformance::npm_ci(&project_dir(), "openid-client/package.json");
    for (body, expect) in [
        (
            json!({"action": "approve", "username": "alice", "after_polls": 2}),
            "ok",
        ),
        (json!({"action": "deny"}), "access_denied"),
        (json!({"action": "expire"}), "expired_token"),
    ] {
        let mut child = op_like("device")
            .stdout(Stdio::piped())
            .spawn()
            .expect("node");
        let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        let started: Value =
            serde_json::from_str(&lines.next().expect("line").expect("read")).expect("json");
        let code = started["user_code"].as_str().expect("user_code");
        let (status, decided) =
            conformance::post_json(&format!("{iss}/mock/device/{code}"), body.clone()).await;
        assert_eq!(status, 200, "{decided}");
        let done: Value = tokio::task::spawn_blocking(move || {
            let line = lines.next().expect("line").expect("read");
            let _ = child.wait();
            serde_json::from_str(&line).expect("json")
        })
        .await
        .expect("join");
        if expect == "ok" {
            assert_eq!(done["ok"], true, "{done}");
            assert_eq!(done["id_token_claims"]["sub"], "alice");
            assert_eq!(done["id_token_claims"]["groups"], json!(["qa"]), "{done}");
        } else {
            assert_eq!(done["error"], expect, "{body}: {done}");
        }
    }
    let (status, _) =
        conformance::post_json(&format!("{iss}/mock/device/BCDF-GHJK"), json!({})).await;
    assert_eq!(status, 404, "no such pending code");
}

async fn budgeted(backend: Backend) -> Option<Op> {
    let yaml = super::yaml("http://127.0.0.1:9/jwks").replace(
        "tokens:\n",
        "server:\n  pending_requests_per_minute: 2\ntokens:\n",
    );
    Op::start_config(backend, &yaml).await
}

module!(
    device_requests_count_against_the_address_budget,
    start = budgeted,
    |op| {
        let mut statuses = Vec::new();
        for _ in 0..3 {
            let resp = op
                .http
                .post(op.url("/device_authorization"))
                .form(&[("client_id", "cli"), ("scope", "openid")])
                .send()
                .await
                .expect("POST");
            statuses.push((
                resp.status().as_u16(),
                resp.headers().contains_key("retry-after"),
            ));
        }
        assert_eq!(
            statuses,
            [(200, false), (200, false), (429, true)],
            "each stores a row"
        );
    }
);
