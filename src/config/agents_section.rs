//! A client's keys for agents, CLIs and APIs: resource indicators (RFC 8707), token
//! exchange (RFC 8693), `private_key_jwt` keys (RFC 7523, OIDC Core §9) and back-channel
//! logout (OpenID Connect Back-Channel Logout 1.0).

use serde_json::Value;

use super::checks::check_uri;
use super::client_agents::*;
use super::parties::{AuthMethod, GrantType};
use super::settings::SigningAlgorithm;
use super::tree::{Obj, Reader, index};

impl ClientAgents {
    /// The algorithm this client's assertions must use: the configured one, else the one
    /// its first inline key implies, else RS256.
    pub fn assertion_alg(&self) -> SigningAlgorithm {
        self.token_endpoint_auth_signing_alg
            .as_deref()
            .and_then(SigningAlgorithm::parse)
            .or_else(|| implied_alg(self.jwks.as_ref()?.get("keys")?.get(0)?))
            .unwrap_or(SigningAlgorithm::RS256)
    }
}

/// The algorithm a JWK implies when none is configured.
fn implied_alg(jwk: &Value) -> Option<SigningAlgorithm> {
    if let Some(alg) = jwk.get("alg").and_then(Value::as_str) {
        return SigningAlgorithm::parse(alg);
    }
    match (jwk["kty"].as_str()?, jwk["crv"].as_str()) {
        ("RSA", _) => Some(SigningAlgorithm::RS256),
        ("EC", Some("P-256")) => Some(SigningAlgorithm::ES256),
        ("OKP", Some("Ed25519")) => Some(SigningAlgorithm::EdDSA),
        _ => None,
    }
}

/// What the rest of a client says, for the checks across keys.
pub struct ClientFacts<'a> {
    pub method: Option<AuthMethod>,
    pub has_secret: bool,
    pub grant_types: &'a [GrantType],
}

/// Reads the agent keys of client `o`, checking them against `facts`.
pub fn read_agents(r: &mut Reader, o: &Obj<'_>, facts: &ClientFacts<'_>) -> ClientAgents {
    let resources = r.strings(o, "resources").unwrap_or_default();
    for (i, uri) in resources.iter().enumerate() {
        check_resource(r, index(&o.key_path("resources"), i), uri);
    }
    let token_exchange = read_token_exchange(r, o, facts);
    let jwks = o.get("jwks").cloned();
    let jwks_uri = r.string(o, "jwks_uri");
    let alg = r.string(o, "token_endpoint_auth_signing_alg");
    if let Some(a) = &alg
        && SigningAlgorithm::parse(a).is_none()
    {
        r.problem(
            o.key_path("token_endpoint_auth_signing_alg"),
            format!("`{a}` is not one of RS256, PS256, ES256, EdDSA"),
        );
    }
    let agents = ClientAgents {
        resources,
        token_exchange,
        jwks,
        jwks_uri,
        token_endpoint_auth_signing_alg: alg,
        backchannel_logout_uri: r.string(o, "backchannel_logout_uri"),
        backchannel_logout_session_required: r
            .bool(o, "backchannel_logout_session_required")
            .unwrap_or(true),
    };
    check_keys(r, o, facts, &agents);
    if let Some(uri) = &agents.backchannel_logout_uri {
        check_http_uri(r, o.key_path("backchannel_logout_uri"), uri);
    }
    agents
}

/// A URL this provider fetches or posts to: https (http on loopback), no fragment.
fn check_http_uri(r: &mut Reader, path: String, uri: &str) {
    if !uri.starts_with("https://") && !uri.starts_with("http://") {
        r.problem(path, "must be an https URL");
        return;
    }
    check_uri(r, path, uri);
}

/// An absolute URI without a fragment (RFC 8707 §2).
fn check_resource(r: &mut Reader, path: String, uri: &str) {
    if uri == "*" {
        return;
    }
    match url::Url::parse(uri) {
        Ok(u) if u.fragment().is_some() => {
            r.problem(path, "must not contain a fragment (RFC 8707 §2)")
        }
        Ok(_) => {}
        Err(_) => r.problem(
            path,
            format!("`{uri}` is not an absolute URI (RFC 8707 §2)"),
        ),
    }
}

fn read_token_exchange(
    r: &mut Reader,
    o: &Obj<'_>,
    facts: &ClientFacts<'_>,
) -> Option<TokenExchangePolicy> {
    let path = o.key_path("token_exchange");
    let t = r.obj(
        o.get("token_exchange"),
        &path,
        &["audiences", "subject_token_types", "connectors"],
    );
    let granted = facts.grant_types.contains(&GrantType::TokenExchange);
    if !t.is_present() {
        if granted {
            r.problem(
                &path,
                "is required for the token-exchange grant: name the audiences it may reach",
            );
        }
        return None;
    }
    if !granted {
        r.problem(
            &path,
            "has no effect: add urn:ietf:params:oauth:grant-type:token-exchange to grant_types",
        );
    }
    let connectors = r.strings(&t, "connectors").unwrap_or_default();
    let audiences = r.strings(&t, "audiences").unwrap_or_default();
    if audiences.is_empty() && connectors.is_empty() {
        r.problem(
            t.key_path("audiences"),
            "must name at least one audience (or `connectors` whose tokens it may exchange)",
        );
    }
    let types = r
        .strings(&t, "subject_token_types")
        .unwrap_or_else(|| vec![ACCESS_TOKEN_TYPE.to_string()]);
    for (i, ty) in types.iter().enumerate() {
        let upstream_only = ty == ID_TOKEN_TYPE;
        if !(ty == ACCESS_TOKEN_TYPE || upstream_only) {
            r.problem(
                index(&t.key_path("subject_token_types"), i),
                format!("`{ty}` is not one of {ACCESS_TOKEN_TYPE}, {ID_TOKEN_TYPE}"),
            );
        } else if upstream_only && connectors.is_empty() {
            r.problem(
                index(&t.key_path("subject_token_types"), i),
                "ID tokens are exchanged only from upstreams: name them in `connectors`",
            );
        }
    }
    Some(TokenExchangePolicy {
        audiences,
        subject_token_types: types,
        connectors,
    })
}

/// `private_key_jwt` needs keys, and keys need `private_key_jwt`.
fn check_keys(r: &mut Reader, o: &Obj<'_>, facts: &ClientFacts<'_>, a: &ClientAgents) {
    let jwt = facts.method == Some(AuthMethod::PrivateKeyJwt);
    let path = o.key_path("token_endpoint_auth_method");
    match (&a.jwks, &a.jwks_uri) {
        (None, None) if jwt => {
            r.problem(&path, "is private_key_jwt: give `jwks` or `jwks_uri`");
            return;
        }
        (Some(_), Some(_)) => {
            r.problem(
                o.key_path("jwks_uri"),
                "give `jwks` or `jwks_uri`, not both",
            );
        }
        (Some(_), _) | (_, Some(_)) if !jwt => {
            r.problem(
                &path,
                "must be private_key_jwt for a client with `jwks` or `jwks_uri`",
            );
        }
        _ => {}
    }
    if jwt && facts.has_secret {
        r.problem(
            o.key_path("secret"),
            "is not used by a private_key_jwt client: remove it",
        );
    }
    if let Some(uri) = &a.jwks_uri {
        check_http_uri(r, o.key_path("jwks_uri"), uri);
    }
    if let Some(set) = &a.jwks {
        check_jwks(r, &o.key_path("jwks"), set, a.assertion_alg());
    }
}

/// Every key public, and usable with the client's algorithm.
fn check_jwks(r: &mut Reader, path: &str, set: &Value, alg: SigningAlgorithm) {
    let Some(keys) = set.get("keys").and_then(Value::as_array) else {
        r.problem(path, "must be a JWK Set: {keys: [...]}");
        return;
    };
    if keys.is_empty() || keys.len() > MAX_CLIENT_KEYS {
        r.problem(
            super::tree::join(path, "keys"),
            format!("must hold 1 to {MAX_CLIENT_KEYS} keys"),
        );
    }
    for (i, key) in keys.iter().enumerate() {
        let at = index(&super::tree::join(path, "keys"), i);
        if ["d", "p", "q", "k"].iter().any(|k| key.get(k).is_some()) {
            r.problem(&at, "holds private key material: give the public key only");
            continue;
        }
        if let Err(e) = jwk_verifier(alg, key) {
            r.problem(&at, format!("is not a {} public key: {e}", alg.as_str()));
        }
    }
}

/// A verifier for `alg` from a public JWK (JSON), through OpenSSL (josekit). The JWK's own
/// `alg`, when it has one, must be `alg`.
pub fn jwk_verifier(
    alg: SigningAlgorithm,
    jwk: &Value,
) -> Result<Box<dyn josekit::jws::JwsVerifier>, String> {
    use josekit::jws::{ES256, EdDSA, PS256, RS256};
    let mut map = jwk.as_object().ok_or("a JWK is a JSON object")?.clone();
    // The caller matches `kid`: a verifier holding one would refuse a header without it.
    map.remove("kid");
    let jwk = josekit::jwk::Jwk::from_map(map).map_err(|e| e.to_string())?;
    if let Some(own) = jwk.algorithm()
        && own != alg.as_str()
    {
        return Err(format!("its alg is {own}"));
    }
    let verifier: Box<dyn josekit::jws::JwsVerifier> = match alg {
        SigningAlgorithm::RS256 => {
            Box::new(RS256.verifier_from_jwk(&jwk).map_err(|e| e.to_string())?)
        }
        SigningAlgorithm::PS256 => {
            Box::new(PS256.verifier_from_jwk(&jwk).map_err(|e| e.to_string())?)
        }
        SigningAlgorithm::ES256 => {
            Box::new(ES256.verifier_from_jwk(&jwk).map_err(|e| e.to_string())?)
        }
        SigningAlgorithm::EdDSA => {
            Box::new(EdDSA.verifier_from_jwk(&jwk).map_err(|e| e.to_string())?)
        }
    };
    Ok(verifier)
}
