//! ID tokens from an upstream IdP, validated as the callback does: signature through the
//! upstream's JWKS, issuer, audience, times, nonce, tenant.
#![no_main]

use std::sync::LazyLock;

use oidc_bridge::config::ConnectorConfig;
use oidc_bridge::federation::upstream::{check_id_token, parse_discovery};
use openidconnect::core::{CoreJsonWebKeySet, CoreProviderMetadata};

const ISSUER: &str = "https://idp.example.com";

static UPSTREAM: LazyLock<(
    ConnectorConfig,
    ConnectorConfig,
    CoreProviderMetadata,
    CoreJsonWebKeySet,
)> = LazyLock::new(|| {
    let yaml = format!(
        "connectors:\n  - {{id: up, type: oidc, issuer: '{ISSUER}', client_id: bridge, client_secret: s}}\n  - {{id: entra, type: azure, issuer: 'https://login.microsoftonline.com/organizations/v2.0', client_id: bridge, client_secret: s, allowed_tenants: [t1]}}\n"
    );
    let mut config = oidc_bridge::config::from_yaml_str(&yaml, &|_| None).expect("config");
    let entra = config.connectors.remove(1);
    let up = config.connectors.remove(0);
    let discovery = serde_json::json!({
        "issuer": ISSUER,
        "authorization_endpoint": format!("{ISSUER}/authorize"),
        "token_endpoint": format!("{ISSUER}/token"),
        "jwks_uri": format!("{ISSUER}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
    });
    let (metadata, _) = parse_discovery(discovery, ISSUER, false).expect("metadata");
    let jwks: CoreJsonWebKeySet = serde_json::from_value(serde_json::json!({"keys": [
        {"kty": "EC", "crv": "P-256", "kid": "ec1", "alg": "ES256", "use": "sig",
         "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
         "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed1", "alg": "EdDSA", "use": "sig",
         "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    ]}))
    .expect("jwks");
    (up, entra, metadata, jwks)
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let (up, entra, metadata, jwks) = &*UPSTREAM;
    let _ = check_id_token(
        up,
        false,
        metadata,
        jwks.clone(),
        raw,
        Some("n-0S6_WzA2Mj"),
        1_700_000_000,
    );
    let _ = check_id_token(up, false, metadata, jwks.clone(), raw, None, 1_700_000_000);
    let _ = check_id_token(
        entra,
        true,
        metadata,
        jwks.clone(),
        raw,
        None,
        1_700_000_000,
    );
});
