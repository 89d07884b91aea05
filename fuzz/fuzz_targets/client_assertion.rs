//! What a client sends for `private_key_jwt` and the device grant, before anything is
//! trusted: the client id an assertion claims, its verification against a client's keys
//! (RS256, a JWK with and without `kid`), and a typed user code.
#![no_main]

use std::sync::LazyLock;

use oidc_bridge::config::SigningAlgorithm;
use oidc_bridge::oidc::client_assertion::claimed_client;
use oidc_bridge::oidc::client_keys::ClientKeys;
use oidc_bridge::oidc::device::normalize_user_code;

const N: &str = "vC-qUZi2iq2iX2_S8CrlOSpBASnUglOZSuAMBB6ysQVAE0rakyaARGKi2q89FC7spjAW-OcC8dzp0m0nTZb-3-Wd1Ky8yXhHov6Yo2T9cmF5StaJX5VysfHBq-Mtikggl2pbeWMcBcmpcnD1StyrqNVj2ThyPxZhKWw6XQzTVT2T0iB2Ti6TasDxOLsncGptYf7Btqc9XD7bu0VLBr2cZnebOQW3_lW_Z8X1NbGaVI1X4TyydMfHOOz_ShFPmmW7PYQ6LY-vqMqR36C1O3_NhS3xz5tqEtX_CekcPVTCpBO_4qKv3rOlDoEcB36ECzNR7HUxpEBLzutSq4lVPxrZUw";

static KEYS: LazyLock<ClientKeys> = LazyLock::new(|| {
    let set = serde_json::json!({"keys": [
        {"kty": "RSA", "kid": "k1", "use": "sig", "n": N, "e": "AQAB"},
        {"kty": "RSA", "n": N, "e": "AQAB"},
        {"kty": "RSA", "use": "enc", "n": N, "e": "AQAB"},
    ]});
    ClientKeys::from_jwks(SigningAlgorithm::RS256, &set).expect("keys")
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = claimed_client(text);
    let _ = KEYS.verify(text);
    let _ = KEYS.knows(Some(text));
    if let Some(code) = normalize_user_code(text) {
        assert_eq!(code.len(), 8);
        assert_eq!(
            normalize_user_code(&oidc_bridge::oidc::device::display_user_code(&code)),
            Some(code)
        );
    }
});
