//! The device-code grant (RFC 8628 §3.4, §3.5): a device polls with its device code until
//! its person has signed in. Each poll is one statement (`poll_device_code`): counted,
//! checked against the interval, and, once approved, the grant taken by exactly one poll.

use super::issue::{Grants, TokenResponse};
use crate::config::GrantType;
use crate::model::DeviceStatus;
use crate::oidc::client_auth::ClientRequest;
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::oidc::grant::Grant;
use crate::secret::{random_token, sha256_b64url};

fn error(code: ErrorCode, description: &'static str) -> OAuthError {
    OAuthError::new(code, description)
}

pub async fn exchange(grants: &Grants, req: ClientRequest) -> Result<TokenResponse, OAuthError> {
    let client = &req.client;
    let code = req.params.require("device_code")?;
    let now = grants.clock.now();
    let hash = sha256_b64url(code.as_bytes());
    // A code of another client is unknown to this one, and left untouched.
    let polled = grants.storage.poll_device_code(&hash, client.id(), now);
    let Some(device) = polled.await? else {
        return Err(OAuthError::invalid_grant("the device code is invalid"));
    };
    if device.taken_now() {
        let json = device.grant.as_deref().unwrap_or_default();
        let grant: Grant = serde_json::from_str(json).map_err(|e| OAuthError::internal(&e))?;
        return issue(grants, &req, &grant).await;
    }
    match device.status {
        DeviceStatus::Used => Err(OAuthError::invalid_grant(
            "the device code was already used",
        )),
        _ if device.expires_at <= now => Err(error(
            ErrorCode::ExpiredToken,
            "the device code expired: start again",
        )),
        DeviceStatus::Denied => Err(error(
            ErrorCode::AccessDenied,
            "the user refused the device's sign-in",
        )),
        _ if device.slow_down => Err(error(
            ErrorCode::SlowDown,
            "polling too often: wait 5 seconds longer between polls",
        )),
        _ => Err(error(
            ErrorCode::AuthorizationPending,
            "the user has not finished signing in yet",
        )),
    }
}

/// The tokens of an approved device request, with a refresh family when the client may
/// refresh.
async fn issue(
    grants: &Grants,
    req: &ClientRequest,
    grant: &Grant,
) -> Result<TokenResponse, OAuthError> {
    let client = &req.client;
    // The access token may be for fewer of the granted resources (RFC 8707 §2.2).
    let mut for_token = grant.clone();
    let asked = req.params.all("resource");
    for_token.resources = crate::oidc::resource::narrow_for(client, &grant.resources, asked)?;
    let mut issued = grants.issue(client, &for_token, false, None)?;
    if client.allows_grant(GrantType::RefreshToken) {
        let family = random_token(16);
        let token = grants
            .new_family(
                client,
                grant,
                &family,
                (&issued.access_jti, issued.access_exp),
                None,
            )
            .await?;
        issued.response.refresh_token = Some(token);
    }
    grants.issued(
        "token_issued",
        GrantType::DeviceCode.as_str(),
        client.id(),
        &grant.sub,
        &issued.access_jti,
        issued.response.expires_in,
    );
    Ok(issued.response)
}
