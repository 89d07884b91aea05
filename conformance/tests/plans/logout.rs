//! RP-Initiated Logout OP plan (`oidcc-rp-initiated-logout-certification-test-plan`, 11
//! modules). Flow "L": H with a 128-character state, then the end-session request.

use super::*;
use conformance::{POST_LOGOUT, module};

/// A 90-character end-session state of visible characters.
fn logout_state() -> String {
    "AbC!#$%&()*,-./0123456789:<=>?@[]^_`{|}~"
        .chars()
        .cycle()
        .take(90)
        .collect()
}

/// Runs H, then sends the browser to the end-session endpoint with `params`, confirming
/// when asked. Returns where it ended.
async fn logout(
    op: &Op,
    params: impl Fn(&str) -> Vec<(&'static str, String)>,
) -> (Browser, Outcome) {
    let b = Browser::new();
    let state = long_state(128);
    let t = happy_flow(op, &b, "client", &[], &[("state", &state)]).await;
    let mut url = url::Url::parse(&op.url("/logout")).expect("url");
    for (k, v) in params(&t.id_token) {
        url.query_pairs_mut().append_pair(k, &v);
    }
    let page = b.request("GET", url.as_str(), None).await;
    let outcome = if let Some(loc) = page.location {
        let u = url::Url::parse(&loc).expect("location");
        Outcome::Callback(u.query_pairs().into_owned().collect())
    } else if page.body.contains("name=\"confirm\"") {
        let mut form: Vec<(String, String)> = Vec::new();
        for name in [
            "csrf",
            "id_token_hint",
            "client_id",
            "post_logout_redirect_uri",
            "state",
        ] {
            if let Some(v) = conformance::hidden(&page.body, name) {
                form.push((name.into(), v));
            }
        }
        form.push(("confirm".into(), "yes".into()));
        let done = b.request("POST", &op.url("/logout"), Some(&form)).await;
        match done.location {
            Some(loc) => {
                assert!(loc.starts_with(POST_LOGOUT), "{loc}");
                let u = url::Url::parse(&loc).expect("location");
                Outcome::Callback(u.query_pairs().into_owned().collect())
            }
            None => Outcome::Page(done.status, done.body),
        }
    } else {
        Outcome::Page(page.status, page.body)
    };
    (b, outcome)
}

/// After a logout, prompt=none must fail with an interaction error.
async fn prompt_none_fails(op: &Op, b: &Browser) {
    b.expect_no_login();
    let p = op
        .rp("client")
        .await
        .authorize_url(&[], &[("prompt", "none")]);
    let q = b.authorize(&p.url).await.callback();
    assert_eq!(
        check_error_redirect(op, &q, Some(&p.state)),
        "login_required"
    );
}

/// The person sees the refusal (400, saying why), never a redirect, nor a page that only
/// looks like one because the server failed.
fn assert_refused(outcome: &Outcome, why: &str) {
    match outcome {
        Outcome::Page(status, body) => {
            assert_eq!(*status, 400, "a refusal, not a failure: {body}");
            assert!(body.contains(why), "the page says why ({why}): {body}");
        }
        other => panic!("must not redirect: {other:?}"),
    }
}

const UNREGISTERED: &str = "The post_logout_redirect_uri is not one the application registered.";
const NOT_OURS: &str = "The id_token_hint is not an ID token this provider issued.";

module!(
    oidcc_rp_initiated_logout_discovery_endpoint_verification,
    |op| {
        let d = op.discovery().await;
        let end = d["end_session_endpoint"]
            .as_str()
            .expect("end_session_endpoint");
        assert_eq!(end, op.url("/logout"));
    }
);

module!(oidcc_rp_initiated_logout, |op| {
    let state = logout_state();
    let s2 = state.clone();
    let (b, outcome) = logout(&op, move |hint| {
        vec![
            ("id_token_hint", hint.to_string()),
            ("post_logout_redirect_uri", POST_LOGOUT.to_string()),
            ("state", s2.clone()),
        ]
    })
    .await;
    let q = outcome.callback();
    assert_eq!(q.get("state"), Some(&state), "state echoed exactly");
    assert_eq!(q.len(), 1, "no other parameters");
    prompt_none_fails(&op, &b).await;
});

module!(
    oidcc_rp_initiated_logout_bad_post_logout_redirect_uri,
    |op| {
        let (_, outcome) = logout(&op, |hint| {
            vec![
                ("id_token_hint", hint.to_string()),
                (
                    "post_logout_redirect_uri",
                    "https://rp.example.test/bad_post_logout_redirect_uri".into(),
                ),
                ("state", "s".into()),
            ]
        })
        .await;
        assert_refused(&outcome, UNREGISTERED);
    }
);

module!(oidcc_rp_initiated_logout_modified_id_token_hint, |op| {
    let (_, outcome) = logout(&op, |hint| {
        let payload = hint.split('.').nth(1).expect("payload");
        vec![
            ("id_token_hint", format!("eyJhbGciOiJub25lIn0.{payload}.")),
            ("post_logout_redirect_uri", POST_LOGOUT.into()),
        ]
    })
    .await;
    assert_refused(&outcome, NOT_OURS);
});

module!(oidcc_rp_initiated_logout_no_id_token_hint, |op| {
    let (_, outcome) = logout(&op, |_| {
        vec![
            ("post_logout_redirect_uri", POST_LOGOUT.into()),
            ("state", "s".into()),
        ]
    })
    .await;
    assert_refused(
        &outcome,
        "A post_logout_redirect_uri needs an id_token_hint or client_id to be trusted.",
    );
});

module!(oidcc_rp_initiated_logout_no_params, |op| {
    let (b, outcome) = logout(&op, |_| Vec::new()).await;
    match outcome {
        Outcome::Page(200, body) => assert!(body.contains("signed out"), "{body}"),
        other => panic!("a logged-out page: {other:?}"),
    }
    prompt_none_fails(&op, &b).await;
});

module!(
    oidcc_rp_initiated_logout_no_post_logout_redirect_uri,
    |op| {
        let (b, outcome) = logout(&op, |hint| {
            vec![("id_token_hint", hint.to_string()), ("state", "s".into())]
        })
        .await;
        match outcome {
            Outcome::Page(200, body) => assert!(body.contains("signed out"), "{body}"),
            other => panic!("a logged-out page: {other:?}"),
        }
        prompt_none_fails(&op, &b).await;
    }
);

module!(oidcc_rp_initiated_logout_no_state, |op| {
    let (b, outcome) = logout(&op, |hint| {
        vec![
            ("id_token_hint", hint.to_string()),
            ("post_logout_redirect_uri", POST_LOGOUT.into()),
        ]
    })
    .await;
    let q = outcome.callback();
    assert!(q.is_empty(), "no state, no parameters: {q:?}");
    prompt_none_fails(&op, &b).await;
});

module!(oidcc_rp_initiated_logout_only_state, |op| {
    let (_, outcome) = logout(&op, |_| vec![("state", "only".into())]).await;
    match outcome {
        Outcome::Page(200, body) => assert!(body.contains("signed out"), "{body}"),
        other => panic!("a logged-out page: {other:?}"),
    }
});

module!(
    oidcc_rp_initiated_logout_query_added_to_post_logout_redirect_uri,
    |op| {
        let (_, outcome) = logout(&op, |hint| {
            vec![
                ("id_token_hint", hint.to_string()),
                ("post_logout_redirect_uri", format!("{POST_LOGOUT}?foo=bar")),
            ]
        })
        .await;
        assert_refused(&outcome, UNREGISTERED);
    }
);

module!(oidcc_rp_initiated_logout_bad_id_token_hint, |op| {
    let (_, outcome) = logout(&op, |_| {
        // HS256 over the client secret, as the suite forges it.
        let header = "eyJhbGciOiJIUzI1NiJ9";
        let claims = json!({"iss": "client", "aud": "issuer", "sub": "alice", "nonce": "flibble"});
        let payload = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            claims.to_string(),
        );
        vec![
            ("id_token_hint", format!("{header}.{payload}.c2lnbmF0dXJl")),
            ("post_logout_redirect_uri", POST_LOGOUT.into()),
        ]
    })
    .await;
    assert_refused(&outcome, NOT_OURS);
});
