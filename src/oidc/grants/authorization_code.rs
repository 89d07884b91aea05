//! The `authorization_code` grant (RFC 6749 §4.1.3, RFC 7636 §4.6): a code is single-use,
//! bound to its client, redirect URI and PKCE challenge, and short-lived. A replayed code
//! gets `invalid_grant` and revokes everything it issued (RFC 6749 §4.1.2).
//!
//! A code presented by another client is left untouched, so that seeing a code is not
//! enough to burn it; a used PKCE-bound code presented without its verifier revokes
//! nothing either. What a redemption will issue (the access token's id, the refresh
//! family's id) is recorded with the redemption itself, and a family is created revoked if
//! the code was replayed meanwhile: a replay that races the first redemption still revokes
//! everything it issues.

use super::issue::{Grants, TokenResponse};
use crate::config::GrantType;
use crate::model::{CodeIssuance, Redemption};
use crate::oidc::client_auth::ClientRequest;
use crate::oidc::error::OAuthError;
use crate::oidc::grant::Grant;
use crate::secret::{ct_eq, random_token, sha256, sha256_b64url};

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

fn bad() -> OAuthError {
    OAuthError::invalid_grant("the authorization code is invalid, expired or used")
}

pub async fn exchange(grants: &Grants, req: ClientRequest) -> Result<TokenResponse, OAuthError> {
    let client = &req.client;
    let code = req.params.require("code")?;
    let code_hash = sha256_b64url(code.as_bytes());
    let now = grants.clock.now();
    let issuance = CodeIssuance {
        family_id: client
            .allows_grant(GrantType::RefreshToken)
            .then(|| random_token(16)),
        access_jti: random_token(16),
        access_exp: now + grants.access_lifetime(client),
    };
    let record = match grants
        .storage
        .redeem_auth_code(&code_hash, client.id(), &issuance, now)
        .await?
    {
        Redemption::First(r) => r,
        Redemption::Again(r) => return Err(replayed(grants, &req, &code_hash, &r).await?),
        Redemption::Foreign(r) => {
            tracing::warn!(
                event = "code_presented_by_other_client",
                client_id = client.id(),
                code_client_id = %r.client_id,
                "an authorization code was presented by a client it was not issued to; left untouched"
            );
            return Err(bad());
        }
        Redemption::Missing => return Err(bad()),
    };
    if record.expires_at <= now {
        return Err(bad());
    }
    let grant: Grant = serde_json::from_str(&record.grant).map_err(|e| OAuthError::internal(&e))?;
    check_binding(&req, &grant)?;
    // The access token may be for fewer of the authorized resources (RFC 8707 §2.2); the
    // refresh family keeps them all.
    let mut for_token = grant.clone();
    for_token.resources =
        crate::oidc::resource::narrow_for(client, &grant.resources, req.params.all("resource"))?;
    let mut issued = grants.issue(client, &for_token, true, Some(issuance.access_jti.clone()))?;
    if let Some(family) = &issuance.family_id {
        let token = grants
            .new_family(
                client,
                &grant,
                family,
                (&issued.access_jti, issued.access_exp),
                Some(&code_hash),
            )
            .await?;
        issued.response.refresh_token = Some(token);
    }
    grants.issued(
        "token_issued",
        "authorization_code",
        client.id(),
        &grant.sub,
        &issued.access_jti,
        issued.response.expires_in,
    );
    Ok(issued.response)
}

/// The redemption must name the authorization request's redirect URI and prove its PKCE
/// challenge (RFC 6749 §4.1.3, RFC 7636 §4.6).
fn check_binding(req: &ClientRequest, grant: &Grant) -> Result<(), OAuthError> {
    if req.params.get("redirect_uri") != Some(grant.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    match (&grant.code_challenge, req.params.get("code_verifier")) {
        (Some(challenge), Some(verifier)) if pkce_matches(challenge, verifier) => Ok(()),
        (Some(_), Some(_)) => Err(OAuthError::invalid_grant("code_verifier does not match")),
        (Some(_), None) => Err(OAuthError::invalid_grant("code_verifier is required")),
        (None, Some(_)) => Err(OAuthError::invalid_grant(
            "code_verifier sent, but the authorization request had no code_challenge",
        )),
        (None, None) => Ok(()),
    }
}

/// A used code presented again: what it issued is revoked, unless the presenter did not
/// prove possession (a PKCE-bound code without its verifier: any public client id gets
/// that far). Either way the answer is `invalid_grant`.
async fn replayed(
    grants: &Grants,
    req: &ClientRequest,
    code_hash: &str,
    r: &crate::model::AuthCodeRecord,
) -> Result<OAuthError, OAuthError> {
    let client_id = req.client.id();
    let now = grants.clock.now();
    let proves_possession = match serde_json::from_str::<Grant>(&r.grant) {
        Ok(g) => match (&g.code_challenge, req.params.get("code_verifier")) {
            (Some(challenge), Some(verifier)) => pkce_matches(challenge, verifier),
            (Some(_), None) => false,
            (None, _) => true,
        },
        Err(_) => true,
    };
    if !proves_possession {
        tracing::warn!(
            event = "code_replayed_without_verifier",
            client_id,
            "a used authorization code was presented without its PKCE verifier; nothing revoked"
        );
        return Ok(bad());
    }
    grants.storage.mark_code_replayed(code_hash, now).await?;
    if let Some(family) = &r.family_id {
        grants.storage.revoke_refresh_family(family, now).await?;
    }
    if let (Some(jti), Some(exp)) = (&r.access_jti, r.access_exp) {
        grants.storage.revoke_token_id(jti, exp).await?;
    }
    tracing::warn!(
        event = "code_reuse_detected",
        client_id,
        "authorization code replayed: tokens it issued are revoked"
    );
    Ok(bad())
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
