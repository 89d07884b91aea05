//! Cookie headers (one per line) and the device cookie's MAC check.
#![no_main]

use axum::http::{HeaderMap, HeaderValue, header};
use oidc_bridge::oidc::session::{Cookies, DeviceCookies, read_cookie};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let names = Cookies::new("https://id.example.com", 3600);
    let devices = DeviceCookies::new([9; 32]);
    let mut headers = HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            headers.append(header::COOKIE, v);
        }
    }
    for name in [&names.session, &names.binding, &names.device] {
        if let Some(v) = read_cookie(&headers, name) {
            assert!(!v.is_empty() && v.len() <= 128);
            let _ = devices.check(v, "alice", 1_000_000);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = devices.check(text, "alice", 1_000_000);
    }
});
