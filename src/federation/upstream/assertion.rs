//! Client assertions towards an upstream (RFC 7523 §2.2): a JWT signed through OpenSSL
//! (josekit) with a key parsed once, for one token endpoint at a time. Connectors with
//! `private_key_jwt` send one with every token request; Okta's API service app, to get its
//! token.

use josekit::jws::{JwsHeader, JwsSigner, RS256};
use serde_json::json;

use super::error::UpstreamError;

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion is valid.
const LIFETIME: i64 = 300;

pub struct ClientAssertion {
    client_id: String,
    signer: Box<dyn JwsSigner>,
    header: JwsHeader,
}

impl ClientAssertion {
    /// `pem`: an RSA private key; `kid`, `x5t` and `x5t#S256` go in every header.
    pub fn new(
        client_id: &str,
        pem: &str,
        kid: Option<&str>,
        thumbprints: Option<(&str, &str)>,
    ) -> Result<Self, UpstreamError> {
        let signer = RS256
            .signer_from_pem(pem.as_bytes())
            .map_err(|e| UpstreamError::Invalid(format!("the private key cannot sign: {e}")))?;
        let mut header = JwsHeader::new();
        header.set_token_type("JWT");
        if let Some(kid) = kid {
            header.set_key_id(kid);
        }
        if let Some((sha1, sha256)) = thumbprints {
            let set = |h: &mut JwsHeader, k: &str, v: &str| h.set_claim(k, Some(json!(v)));
            set(&mut header, "x5t", sha1)
                .and_then(|()| set(&mut header, "x5t#S256", sha256))
                .map_err(|e| UpstreamError::Invalid(format!("assertion header: {e}")))?;
        }
        Ok(Self {
            client_id: client_id.to_string(),
            signer: Box::new(signer),
            header,
        })
    }

    /// An assertion for `token_url` at `now`.
    pub fn sign(&self, token_url: &str, now: i64) -> Result<String, UpstreamError> {
        let claims = json!({
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": token_url,
            "iat": now,
            "nbf": now,
            "exp": now + LIFETIME,
            "jti": crate::secret::random_token(16),
        });
        let payload = serde_json::to_vec(&claims)
            .map_err(|e| UpstreamError::Invalid(format!("client assertion: {e}")))?;
        josekit::jws::serialize_compact(&payload, &self.header, &*self.signer)
            .map_err(|e| UpstreamError::Invalid(format!("cannot sign the client assertion: {e}")))
    }
}
