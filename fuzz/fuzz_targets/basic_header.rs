//! The HTTP Basic header of client authentication (RFC 6749 §2.3.1: form-encoded, then
//! base64).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(h) = std::str::from_utf8(data)
        && let Some((id, decoded, raw)) = oidc_bridge::oidc::client_auth::parse_basic(h)
    {
        assert!(!id.is_empty(), "an empty client id is never accepted");
        // Decoding never makes the secret longer than it was sent.
        assert!(decoded.len() <= raw.len(), "{decoded:?} from {raw:?}");
    }
});
