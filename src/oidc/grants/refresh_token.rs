//! The `refresh_token` grant (RFC 6749 §6, OAuth 2.0 Security BCP §4.14): tokens are opaque,
//! stored hashed and rotated on every use. A rotated token still works for
//! `tokens.refresh_reuse_grace` (concurrent browser tabs); used later, it revokes the whole
//! family. Idle and absolute lifetimes apply. The refreshed ID token keeps `sub` and
//! `auth_time`, has a fresh `iat` and no `nonce`.

use super::{Grant, Grants, TokenResponse, audit_issued, check_scope};
use crate::federation::LoginError;
use crate::federation::upstream::UpstreamError;
use crate::model::Redemption;
use crate::oidc::client_auth::ClientRequest;
use crate::oidc::error::OAuthError;

pub async fn exchange(grants: &Grants, req: ClientRequest) -> Result<TokenResponse, OAuthError> {
    let client = &req.client;
    let presented = req.params.require("refresh_token")?;
    let hash = Grants::refresh_hash(client.id(), presented);
    let now = grants.clock.now();
    let bad = |why: &'static str| OAuthError::invalid_grant(why);

    let token = match grants.storage.rotate_refresh_token(&hash, now).await? {
        Redemption::First(t) => t,
        Redemption::Again(t) => {
            let rotated = t.rotated_at.unwrap_or(now);
            if now - rotated > grants.lifetimes.refresh_reuse_grace.get() {
                grants
                    .storage
                    .revoke_refresh_family(&t.family_id, now)
                    .await?;
                let sub = grants
                    .storage
                    .get_refresh_family(&t.family_id)
                    .await?
                    .map(|f| f.sub)
                    .unwrap_or_default();
                tracing::warn!(
                    event = "refresh_token_reuse_detected",
                    client_id = client.id(),
                    sub = %sub,
                    family_hash = %crate::secret::sha256_b64url(t.family_id.as_bytes()),
                    rotated_seconds_ago = now - rotated,
                    "a rotated refresh token was reused: its family is revoked"
                );
                return Err(bad(
                    "the refresh token was already used; its session is revoked",
                ));
            }
            t
        }
        Redemption::Missing => return Err(bad("the refresh token is invalid")),
    };
    let family = grants
        .storage
        .get_refresh_family(&token.family_id)
        .await?
        .ok_or_else(|| bad("the refresh token is invalid"))?;
    if family.revoked_at.is_some() {
        return Err(bad("the refresh token was revoked"));
    }
    if family.absolute_expires_at <= now || token.idle_expires_at <= now {
        return Err(bad("the refresh token has expired"));
    }
    let mut grant: Grant =
        serde_json::from_str(&family.grant).map_err(|e| OAuthError::internal(&e))?;
    if let Some(requested) = req.params.get("scope") {
        grant.scope = check_scope(Some(requested), &grant.scope)?;
    }
    // Local users are re-read so that changed claims (groups, say) reach the new tokens; a
    // user removed from the config can no longer refresh.
    if grant.identity.local {
        match grants.users.identity(&grant.sub) {
            Some(current) => grant.identity = current.with_amr(&grant.identity.amr),
            None => {
                grants
                    .storage
                    .revoke_refresh_family(&family.id, now)
                    .await?;
                return Err(bad("the user no longer exists"));
            }
        }
    } else if grant.identity.upstream_session.is_some() {
        // Federated: past the connector's groups_max_staleness, ask upstream again.
        match grants.federation.refresh_if_stale(&grant.identity).await {
            Ok(Some(fresh)) => {
                grant.identity = fresh;
                let json = serde_json::to_string(&grant).map_err(|e| OAuthError::internal(&e))?;
                grants
                    .storage
                    .update_refresh_family_grant(&family.id, &json)
                    .await?;
                let identity =
                    serde_json::to_string(&grant.identity).map_err(|e| OAuthError::internal(&e))?;
                grants
                    .storage
                    .put_identity(&grant.sub, &identity, now)
                    .await?;
            }
            Ok(None) => {}
            Err(LoginError::Upstream(UpstreamError::Unavailable(e))) => {
                tracing::warn!(
                    client_id = client.id(),
                    error = %e,
                    "upstream unreachable at refresh: keeping the last known claims"
                );
            }
            Err(e) => {
                grants
                    .storage
                    .revoke_refresh_family(&family.id, now)
                    .await?;
                tracing::warn!(
                    event = "upstream_refresh_refused",
                    client_id = client.id(),
                    sub = %grant.sub,
                    error = %e,
                    "upstream refused the refresh: the family is revoked"
                );
                return Err(bad(
                    "the upstream identity provider no longer accepts this session",
                ));
            }
        }
    } else if let Some(stored) = grants.storage.get_identity(&grant.identity.sub).await? {
        // Anything else (mock users): the latest claims stored for this identity.
        if let Ok(latest) = serde_json::from_str::<crate::oidc::identity::Identity>(&stored) {
            grant.identity = latest;
        }
    }

    let mut issued = grants.issue(client, &grant, false)?;
    let next = grants
        .add_refresh_token(client, &family, &issued.access_jti, issued.access_exp)
        .await?;
    issued.response.refresh_token = Some(next);
    audit_issued(
        "token_refreshed",
        "refresh_token",
        client.id(),
        &grant.sub,
        &issued.access_jti,
        issued.response.expires_in,
    );
    Ok(issued.response)
}
