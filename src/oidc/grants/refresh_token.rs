//! The `refresh_token` grant (RFC 6749 §6, OAuth 2.0 Security BCP §4.14): tokens are opaque,
//! stored hashed and rotated on every use. Idle and absolute lifetimes apply. The refreshed
//! ID token keeps `sub` and `auth_time`, has a fresh `iat` and no `nonce`.
//!
//! Rotation is one transaction: the old token is marked rotated, and the sealed response
//! carrying its successor stored with it, together with the successor's insertion, or
//! nothing is. A rotated token presented again within `tokens.refresh_reuse_grace`
//! (concurrent tabs, a retry after a lost response) gets that same response, successor
//! included, so the family never forks; presented later, it revokes the whole family.

use super::issue::{Grants, TokenResponse, check_scope};
use crate::audit::{Event, Kind};
use crate::federation::upstream::UpstreamError;
use crate::federation::{ConnectorError, Refreshed};
use crate::model::{Redemption, RefreshFamilyRecord, RefreshTokenRecord};
use crate::oidc::client_auth::ClientRequest;
use crate::oidc::clients::Client;
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::oidc::grant::Grant;

fn bad(why: &'static str) -> OAuthError {
    OAuthError::invalid_grant(why)
}

/// Whether the family's identity came through a connector (cheap: no full parse).
fn family_is_federated(family: &RefreshFamilyRecord) -> bool {
    family.grant.contains("\"upstream_session\"")
}

/// A token rotated before: inside the grace window, the response its rotation gave; after
/// it, reuse (the family is revoked).
async fn rotated_again(
    grants: &Grants,
    client: &Client,
    token: &RefreshTokenRecord,
    family: &RefreshFamilyRecord,
) -> Result<TokenResponse, OAuthError> {
    let now = grants.clock.now();
    let rotated = token.rotated_at.unwrap_or(now);
    let in_grace = now - rotated <= grants.lifetimes.refresh_reuse_grace.get();
    let replay = token
        .successor_response
        .as_deref()
        .filter(|_| in_grace && family.revoked_at.is_none())
        .and_then(|sealed| grants.sealer.open(sealed, &token.token_hash).ok())
        .and_then(|plain| serde_json::from_slice::<TokenResponse>(&plain).ok());
    if let Some(response) = replay {
        tracing::info!(
            event = "refresh_token_retried",
            client_id = client.id(),
            sub = %family.sub,
            "a just-rotated refresh token was presented again: the same successor is returned"
        );
        return Ok(response);
    }
    grants
        .storage
        .revoke_refresh_family(&token.family_id, now)
        .await?;
    grants.metrics.refresh_reuse(client.id());
    grants.audit.record(
        Event::new(Kind::RefreshReuse, "refused")
            .client(client.id())
            .subject(family.sub.as_str())
            .detail("rotated_seconds_ago", now - rotated)
            .detail("family_revoked", true),
    );
    tracing::warn!(
        event = "refresh_token_reuse_detected",
        client_id = client.id(),
        sub = %family.sub,
        family_hash = %crate::secret::sha256_b64url(token.family_id.as_bytes()),
        rotated_seconds_ago = now - rotated,
        "a rotated refresh token was reused: its family is revoked"
    );
    Err(bad(
        "the refresh token was already used; its session is revoked",
    ))
}

pub async fn exchange(grants: &Grants, req: ClientRequest) -> Result<TokenResponse, OAuthError> {
    let client = &req.client;
    let presented = req.params.require("refresh_token")?;
    let hash = crate::oidc::tokens::refresh_hash(client.id(), presented);
    let now = grants.clock.now();

    let Some((token, family)) = grants.storage.get_refresh_token(&hash).await? else {
        return Err(bad("the refresh token is invalid"));
    };
    if token.rotated_at.is_some() {
        return rotated_again(grants, client, &token, &family).await;
    }
    // A federated identity may be refreshed upstream: one request per family at a time on
    // this node, so that concurrent tabs do not present the upstream refresh token twice (an
    // upstream with rotation would take that for theft). The one that waited answers as a
    // retry of the first.
    let (_single_flight, token, family) = if family_is_federated(&family) {
        let guard = grants.upstream_lock(&family.id).lock_owned().await;
        match grants.storage.get_refresh_token(&hash).await? {
            Some((t, f)) if t.rotated_at.is_some() => {
                return rotated_again(grants, client, &t, &f).await;
            }
            Some((t, f)) => (Some(guard), t, f),
            None => return Err(bad("the refresh token is invalid")),
        }
    } else {
        (None, token, family)
    };
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
    if let Some(retry) = renew_identity(grants, client, &hash, &family, &mut grant).await? {
        return Ok(retry);
    }
    still_admitted(grants, client, &family, &grant).await?;
    rotate(
        grants,
        client,
        &token,
        &family,
        &grant,
        req.params.all("resource"),
    )
    .await
}

/// The client's access policy on the identity as it now stands (a person removed from a
/// required group upstream, once the connector has noticed, or a policy changed by a
/// reload): refused, the family is revoked and the audit log says why.
async fn still_admitted(
    grants: &Grants,
    client: &Client,
    family: &RefreshFamilyRecord,
    grant: &Grant,
) -> Result<(), OAuthError> {
    let Err(refusal) = crate::federation::policy::admits(&client.config, &grant.identity) else {
        return Ok(());
    };
    grants
        .storage
        .revoke_refresh_family(&family.id, grants.clock.now())
        .await?;
    grants.audit.record(
        Event::new(Kind::TokenIssued, "denied")
            .client(client.id())
            .subject(family.sub.as_str())
            .detail("grant_type", "refresh_token")
            .detail("reason", refusal.reason())
            .detail("family_revoked", true),
    );
    tracing::info!(client_id = client.id(), sub = %family.sub, reason = refusal.reason(), "access policy refused a refresh: the family is revoked");
    Err(bad("the user may no longer use this client"))
}

/// Asks the connector that signed the person in whether the identity still holds (local
/// users re-read, so that changed groups reach the new tokens; federated ones upstream past
/// `groups_max_staleness`; mock ones from their latest stored claims), and puts what it says
/// in `grant`. `Some`: another node rotated the family meanwhile, and this is its answer.
async fn renew_identity(
    grants: &Grants,
    client: &Client,
    hash: &str,
    family: &RefreshFamilyRecord,
    grant: &mut Grant,
) -> Result<Option<TokenResponse>, OAuthError> {
    let now = grants.clock.now();
    let revoke = || grants.storage.revoke_refresh_family(&family.id, now);
    match grants.connectors.refresh(&grant.identity).await {
        Ok(Refreshed::Unchanged) => {}
        Ok(Refreshed::Current(current)) => grant.identity = current,
        Ok(Refreshed::Renewed(fresh)) => {
            grant.identity = fresh;
            let json = serde_json::to_string(&*grant).map_err(|e| OAuthError::internal(&e))?;
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
        Ok(Refreshed::Gone) => {
            revoke().await?;
            return Err(bad("the user no longer exists"));
        }
        Err(ConnectorError::ReauthenticationRequired) => {
            revoke().await?;
            tracing::info!(
                event = "upstream_recheck_required",
                client_id = client.id(),
                sub = %grant.sub,
                "the upstream gave no refresh token and the claims are stale: sign-in required"
            );
            return Err(bad(
                "the identity provider must be asked again: sign in again",
            ));
        }
        Err(ConnectorError::Upstream(UpstreamError::Unavailable(e))) => {
            tracing::warn!(
                client_id = client.id(),
                error = %e,
                "upstream unreachable at refresh: keeping the last known claims"
            );
        }
        Err(ConnectorError::Unavailable(e)) => {
            tracing::error!(client_id = client.id(), error = %e, "connector unavailable at refresh");
            return Err(OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "the server's storage is unavailable; try again",
            )
            .with_retry_after(2));
        }
        Err(e) => {
            // Another node may have refreshed this family (and the upstream token) first:
            // then this is a retry, not a refusal.
            if let Some((t, f)) = grants.storage.get_refresh_token(hash).await?
                && t.rotated_at.is_some()
            {
                return rotated_again(grants, client, &t, &f).await.map(Some);
            }
            revoke().await?;
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
    Ok(None)
}

/// Issues the new tokens, the access token for `resources` of the granted ones (RFC 8707
/// §2.2; all when none), and rotates `token` to its successor, in one transaction.
async fn rotate(
    grants: &Grants,
    client: &Client,
    token: &RefreshTokenRecord,
    family: &RefreshFamilyRecord,
    grant: &Grant,
    resources: &[String],
) -> Result<TokenResponse, OAuthError> {
    let now = grants.clock.now();
    let mut for_token = grant.clone();
    for_token.resources = crate::oidc::resource::narrow_for(client, &grant.resources, resources)?;
    let mut issued = grants.issue(client, &for_token, false, None)?;
    let (next, successor) =
        grants.refresh_token(client, family, (&issued.access_jti, issued.access_exp));
    issued.response.refresh_token = Some(next);
    let sealed = serde_json::to_vec(&issued.response)
        .map_err(|e| OAuthError::internal(&e))
        .and_then(|plain| {
            grants
                .sealer
                .seal(&plain, &token.token_hash)
                .map_err(|e| OAuthError::internal(&e))
        })?;
    match grants
        .storage
        .rotate_refresh_token(&token.token_hash, &successor, &sealed, now)
        .await?
    {
        Redemption::First(_) => {}
        // A concurrent request rotated it first: answer as its retry.
        Redemption::Again(t) => return rotated_again(grants, client, &t, family).await,
        Redemption::Foreign(_) | Redemption::Missing => {
            return Err(bad("the refresh token is invalid"));
        }
    }
    grants.issued(
        "token_refreshed",
        "refresh_token",
        client.id(),
        &grant.sub,
        &issued.access_jti,
        issued.response.expires_in,
    );
    Ok(issued.response)
}
