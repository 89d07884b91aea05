//! Upstream discovery documents (after the size cap): JSON, the metadata types, the issuer
//! check.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    use oidc_bridge::federation::upstream::parse_discovery;
    let _ = parse_discovery(body.clone(), "https://idp.example.com", false);
    let _ = parse_discovery(
        body,
        "https://login.microsoftonline.com/{tenantid}/v2.0",
        true,
    );
});
