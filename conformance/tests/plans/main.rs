//! The OpenID Foundation's OP certification plans, one test per module, each run on SQLite
//! and on PostgreSQL. Module names follow the suite (`oidcc-codereuse` → `oidcc_codereuse`).

mod backchannel;
mod basic;
mod config;
mod extra;
mod logout;
mod refresh;

pub use conformance::{Browser, Op, Outcome, happy_flow, jwt_claims, jwt_header};
pub use serde_json::{Value, json};

/// The ID-token claims `oidcc-server` allows with `scope=openid` (IDT-16).
pub const ALLOWED_ID_TOKEN_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "at_hash",
    "c_hash",
    "nbf",
    "jti",
    "sid",
    "s_hash",
];

/// Standard ID-token checks IDT-3..IDT-9 for `client_id`.
pub fn check_id_token(op: &Op, claims: &Value, client_id: &str) {
    assert_eq!(claims["iss"], op.issuer.as_str(), "IDT-3");
    assert_eq!(
        claims["aud"], client_id,
        "IDT-4: aud is the client_id as a string"
    );
    let now = op.clock.current();
    let exp = claims["exp"].as_i64().expect("IDT-5 exp");
    let iat = claims["iat"].as_i64().expect("IDT-6 iat");
    assert!(exp >= now - 300 && exp < now + 50 * 365 * 86_400, "IDT-5");
    assert!((now - 300..=now + 300).contains(&iat), "IDT-6");
    if let Some(at) = claims["auth_time"].as_i64() {
        assert!(at >= now - 365 * 86_400 && at <= now + 300, "IDT-7");
    }
    let sub = claims["sub"].as_str().expect("IDT-9 sub");
    assert!(!sub.is_empty() && sub.len() <= 255 && sub.bytes().all(|b| (0x20..=0x7e).contains(&b)));
    assert!(
        claims.get("nbf").is_none(),
        "no nbf: Backstage validates with zero leeway"
    );
}

/// Checks ERR-1..ERR-7 on an error redirect and returns the error code.
pub fn check_error_redirect(
    op: &Op,
    q: &std::collections::HashMap<String, String>,
    state: Option<&str>,
) -> String {
    assert_eq!(
        q.get("state").map(String::as_str),
        state,
        "ERR-1: state echoed"
    );
    assert_eq!(q.get("iss"), Some(&op.issuer), "ERR-2");
    let error = q.get("error").expect("ERR-3: error present").clone();
    assert!(q.get("code").is_none(), "ERR-4: no code");
    for k in q.keys() {
        assert!(
            [
                "error",
                "error_description",
                "error_uri",
                "state",
                "session_state",
                "iss"
            ]
            .contains(&k.as_str()),
            "ERR-5: unexpected {k}"
        );
    }
    if let Some(d) = q.get("error_description") {
        assert!(
            d.bytes().all(|b| b == 0x20
                || b == 0x21
                || (0x23..=0x5b).contains(&b)
                || (0x5d..=0x7e).contains(&b)),
            "ERR-6/7: {d:?}"
        );
    }
    error
}

/// A state of `n` characters, ending in `-._~` as the suite's long states do.
pub fn long_state(n: usize) -> String {
    let mut s: String = "a1B2c3D4".chars().cycle().take(n - 4).collect();
    s.push_str("-._~");
    s
}

/// Removes a parameter from a URL.
pub fn without_param(url: &str, name: &str) -> String {
    let mut u = url::Url::parse(url).expect("url");
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .into_owned()
        .filter(|(k, _)| k != name)
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u.to_string()
}

/// Sets (or replaces) a parameter on a URL.
pub fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut u = url::Url::parse(&without_param(url, name)).expect("url");
    u.query_pairs_mut().append_pair(name, value);
    u.to_string()
}
