//! `Forwarded` and `X-Forwarded-For` from a trusted proxy: which hop is the client.
#![no_main]

use std::net::IpAddr;
use std::sync::LazyLock;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use oidc_bridge::server::{ClientAddr, ForwardedHeader, TrustedProxies};

fn nets() -> Vec<ipnet::IpNet> {
    ["10.0.0.0/8", "127.0.0.1/32", "2001:db8::/32"]
        .iter()
        .map(|n| n.parse().expect("cidr"))
        .collect()
}

static TRUSTED: LazyLock<[TrustedProxies; 2]> = LazyLock::new(|| {
    [
        TrustedProxies::new(nets()),
        TrustedProxies::with_header(nets(), ForwardedHeader::Forwarded),
    ]
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        let (name, value) = match line.first() {
            Some(b'F') => ("forwarded", &line[1..]),
            _ => ("x-forwarded-for", line),
        };
        if let Ok(v) = HeaderValue::from_bytes(value) {
            headers.append(HeaderName::from_static(name), v);
        }
    }
    for trusted in TRUSTED.iter() {
        for peer in ["10.1.2.3", "203.0.113.9", "2001:db8::1", "::ffff:10.0.0.1"] {
            let peer: IpAddr = peer.parse().expect("ip");
            let client = trusted.client(peer, &headers);
            assert_eq!(
                trusted.client(peer, &HeaderMap::new()),
                peer.to_canonical(),
                "no header: the peer itself"
            );
            let _ = ClientAddr(client).budget_key();
        }
    }
});
