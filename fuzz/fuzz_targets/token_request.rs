//! A token request: the `Authorization` header (first line) and the form body (the rest),
//! through the parsers the token, introspection and revocation endpoints use.
#![no_main]

use oidc_bridge::config::GrantType;
use oidc_bridge::oidc::client_auth::parse_basic;
use oidc_bridge::oidc::grants::check_scope;
use oidc_bridge::oidc::params::Params;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&data[..0], data),
    };
    if let Ok(h) = std::str::from_utf8(header) {
        let _ = parse_basic(h);
    }
    let Ok(mut params) = Params::parse(body) else {
        return;
    };
    let _ = params.take("client_id");
    let _ = params.take("client_secret");
    if let Some(g) = params.get("grant_type") {
        let _ = GrantType::parse(g);
    }
    let allowed = vec![
        "openid".to_string(),
        "read".to_string(),
        "write".to_string(),
    ];
    let _ = check_scope(params.get("scope"), &allowed);
    let _ = params.require("code");
});
