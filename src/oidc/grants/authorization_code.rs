//! The `authorization_code` grant (RFC 6749 §4.1.3, RFC 7636 §4.6): a code is single-use,
//! bound to its client, redirect URI and PKCE challenge, and short-lived. A replayed code
//! gets `invalid_grant` and revokes everything it issued (RFC 6749 §4.1.2).

use super::{Grant, Grants, TokenResponse, audit_issued};
use crate::config::GrantType;
use crate::model::Redemption;
use crate::oidc::client_auth::ClientRequest;
use crate::oidc::error::OAuthError;
use crate::secret::{ct_eq, sha256, sha256_b64url};

fn pkce_matches(challenge: &str, verifier: &str) -> bool {
    let valid = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    valid
        && ct_eq(
            crate::secret::b64url(&sha256(verifier.as_bytes())).as_bytes(),
            challenge.as_bytes(),
        )
}

pub async fn exchange(grants: &Grants, req: ClientRequest) -> Result<TokenResponse, OAuthError> {
    let client = &req.client;
    let code = req.params.require("code")?;
    let code_hash = sha256_b64url(code.as_bytes());
    let now = grants.clock.now();
    let bad = || OAuthError::invalid_grant("the authorization code is invalid, expired or used");

    let record = match grants.storage.redeem_auth_code(&code_hash, now).await? {
        Redemption::First(r) => r,
        Redemption::Again(r) => {
            // A replay: whoever holds this code is not to be trusted with what it issued.
            if let Some(family) = &r.family_id {
                grants.storage.revoke_refresh_family(family, now).await?;
            }
            if let (Some(jti), Some(exp)) = (&r.access_jti, r.access_exp) {
                grants.storage.revoke_token_id(jti, exp).await?;
            }
            tracing::warn!(
                event = "code_reuse_detected",
                client_id = client.id(),
                "authorization code replayed: tokens it issued are revoked"
            );
            return Err(bad());
        }
        Redemption::Missing => return Err(bad()),
    };
    if record.expires_at <= now || record.client_id != client.id() {
        return Err(bad());
    }
    let grant: Grant = serde_json::from_str(&record.grant).map_err(|e| OAuthError::internal(&e))?;
    if req.params.get("redirect_uri") != Some(grant.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    match (&grant.code_challenge, req.params.get("code_verifier")) {
        (Some(challenge), Some(verifier)) if pkce_matches(challenge, verifier) => {}
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_grant("code_verifier does not match"));
        }
        (Some(_), None) => return Err(OAuthError::invalid_grant("code_verifier is required")),
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier sent, but the authorization request had no code_challenge",
            ));
        }
        (None, None) => {}
    }

    let mut issued = grants.issue(client, &grant, true)?;
    let family_id = if client.allows_grant(GrantType::RefreshToken) {
        let (family, token) = grants
            .new_family(client, &grant, &issued.access_jti, issued.access_exp)
            .await?;
        issued.response.refresh_token = Some(token);
        Some(family)
    } else {
        None
    };
    grants
        .storage
        .record_code_issuance(
            &code_hash,
            family_id.as_deref(),
            &issued.access_jti,
            issued.access_exp,
        )
        .await?;
    audit_issued(
        "token_issued",
        "authorization_code",
        client.id(),
        &grant.sub,
        &issued.access_jti,
        issued.response.expires_in,
    );
    Ok(issued.response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc7636_appendix_b() {
        assert!(pkce_matches(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        ));
        assert!(!pkce_matches(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX"
        ));
        assert!(!pkce_matches(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "short"
        ));
    }
}
