//! The pure half of upstream validation, with no I/O (and so fuzzed directly): a discovery
//! document and an upstream ID token checked against it.

use openidconnect::core::{
    CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
    CoreProviderMetadata,
};
use openidconnect::{ClientId, IssuerUrl, Nonce};
use serde_json::Value;

use super::error::UpstreamError;
use crate::clock::UnixTime;
use crate::config::ConnectorConfig;

/// Leeway for `exp` and `iat`.
const LEEWAY: i64 = 60;

/// A discovery document (OIDC Discovery §4.2): its metadata and whether it sends `iss` in
/// authorization responses. The issuer must be the configured one, exactly (a
/// multi-tenant Entra ID connector's document names the `{tenantid}` template).
pub fn parse_discovery(
    body: Value,
    expected_issuer: &str,
    multi_tenant: bool,
) -> Result<(CoreProviderMetadata, bool), UpstreamError> {
    let sends_iss = body["authorization_response_iss_parameter_supported"] == true;
    let metadata: CoreProviderMetadata = serde_json::from_value(body)
        .map_err(|e| UpstreamError::Invalid(format!("discovery document: {e}")))?;
    if !multi_tenant && metadata.issuer().as_str() != expected_issuer {
        return Err(UpstreamError::Invalid(format!(
            "discovery names issuer `{}`, not the configured `{expected_issuer}`",
            metadata.issuer().as_str(),
        )));
    }
    Ok((metadata, sends_iss))
}

/// Validates an upstream ID token against `metadata` and `jwks` at `now`: signature by an
/// allowed algorithm (never `none` or HMAC), exact `iss` (multi-tenant: the template with
/// the token's tenant, which must be allowed), `aud`, `exp` and `iat` with a minute of
/// leeway, and `nonce` when given. Returns all its claims.
pub fn check_id_token(
    config: &ConnectorConfig,
    multi_tenant: bool,
    metadata: &CoreProviderMetadata,
    jwks: CoreJsonWebKeySet,
    raw: &str,
    nonce: Option<&str>,
    now: UnixTime,
) -> Result<Value, UpstreamError> {
    let token: CoreIdToken = raw
        .parse()
        .map_err(|e| UpstreamError::Invalid(format!("ID token: {e}")))?;
    let expected_issuer = IssuerUrl::new(metadata.issuer().as_str().to_string())
        .map_err(|e| UpstreamError::Invalid(e.to_string()))?;
    let verifier = verifier(config, multi_tenant, expected_issuer, jwks, now);
    let verified = match nonce {
        Some(n) => token
            .claims(&verifier, &Nonce::new(n.to_string()))
            .map(|_| ()),
        None => token
            .claims(&verifier, |_: Option<&Nonce>| Ok(()))
            .map(|_| ()),
    };
    if let Err(e) = verified {
        use openidconnect::{ClaimsVerificationError, SignatureVerificationError};
        let unknown_key = matches!(
            e,
            ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey
            )
        );
        let detail = match &e {
            ClaimsVerificationError::SignatureVerification(s) => format!("{e}: {s}"),
            _ => e.to_string(),
        };
        return Err(if unknown_key {
            UpstreamError::UnknownKey(detail)
        } else {
            UpstreamError::Invalid(format!("ID token rejected: {detail}"))
        });
    }
    let payload = raw.split('.').nth(1).unwrap_or_default();
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
        .map_err(|e| UpstreamError::Invalid(e.to_string()))?;
    let claims: Value =
        serde_json::from_slice(&bytes).map_err(|e| UpstreamError::Invalid(e.to_string()))?;
    if multi_tenant {
        check_tenant(config, metadata, &claims)?;
    }
    Ok(claims)
}

/// The `openidconnect` verifier for a connector: its client id, the upstream's issuer and
/// keys, an algorithm allow-list without `none` and HMAC, and a minute of leeway at `now`.
fn verifier(
    config: &ConnectorConfig,
    multi_tenant: bool,
    expected_issuer: IssuerUrl,
    jwks: CoreJsonWebKeySet,
    now: UnixTime,
) -> CoreIdTokenVerifier<'static> {
    CoreIdTokenVerifier::new_public_client(
        ClientId::new(config.client_id.clone()),
        expected_issuer,
        jwks,
    )
    .set_allowed_algs([
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
        CoreJwsSigningAlgorithm::RsaSsaPssSha256,
        CoreJwsSigningAlgorithm::RsaSsaPssSha384,
        CoreJwsSigningAlgorithm::RsaSsaPssSha512,
        CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        CoreJwsSigningAlgorithm::EcdsaP384Sha384,
        CoreJwsSigningAlgorithm::EdDsa,
    ])
    .require_issuer_match(!multi_tenant)
    .set_time_fn(move || chrono::DateTime::from_timestamp(now - LEEWAY, 0).unwrap_or_default())
    .set_issue_time_verifier_fn(move |iat| {
        if iat.timestamp() > now + LEEWAY {
            Err("issued in the future".into())
        } else {
            Ok(())
        }
    })
}

/// A multi-tenant Entra ID token: `iss` must be the template filled with its own `tid`, and
/// that tenant allowed.
fn check_tenant(
    config: &ConnectorConfig,
    metadata: &CoreProviderMetadata,
    claims: &Value,
) -> Result<(), UpstreamError> {
    let tid = claims["tid"].as_str().unwrap_or_default();
    let expected = metadata.issuer().as_str().replace("{tenantid}", tid);
    if claims["iss"] != expected.as_str() {
        return Err(UpstreamError::Invalid(
            "iss does not match the tenant".into(),
        ));
    }
    if !config.allowed_tenants.is_empty() && !config.allowed_tenants.iter().any(|t| t == tid) {
        return Err(UpstreamError::Refused(format!(
            "tenant {tid} is not allowed"
        )));
    }
    Ok(())
}
