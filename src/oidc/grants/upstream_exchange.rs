//! Token exchange of an upstream's token (RFC 8693, as Dex does): a client presents an ID
//! token its person got from Entra ID, Okta or another OIDC upstream (never an access token:
//! what vouches for one, userinfo, answers for any app there), names the
//! connector (`connector_id`), and gets this provider's token. The connector validates the
//! token and makes the identity as at sign-in (its group pipeline); the client's access
//! policy then applies, and the identity is stored as the person's latest claims.
//!
//! `requested_token_type` may ask for this provider's ID token (answered with
//! `token_type: N_A`, §2.2.1) instead of an access token; `audience` and `resource`, when
//! given, must be among `token_exchange.audiences`, and otherwise the token is for the
//! client itself.

use super::exchange_target::{GRANT, targets};
use super::issue::{Grants, Overrides, TokenResponse, check_scope};
use crate::audit::{Event, Kind};
use crate::config::{ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE, TokenExchangePolicy};
use crate::federation::upstream::UpstreamError;
use crate::federation::{ConnectorError, Identity};
use crate::oidc::client_auth::ClientRequest;
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::oidc::grant::Grant;

pub async fn exchange(
    grants: &Grants,
    req: &ClientRequest,
    policy: &TokenExchangePolicy,
    connector: &str,
) -> Result<TokenResponse, OAuthError> {
    let kind = checked(req, policy, connector)?;
    let token = req.params.require("subject_token")?;
    let (identity, signed_in) = identity(grants, connector, token).await?;
    admit(grants, req, &identity, connector).await?;
    let wants_id_token = req.params.get("requested_token_type") == Some(ID_TOKEN_TYPE);
    let mut grant = grant_for(grants, req, policy, identity, wants_id_token)?;
    // The ID token says when the person signed in upstream, never "now".
    grant.auth_time = signed_in.min(grants.clock.now());
    let overrides = Overrides {
        no_id_token: !wants_id_token,
        ..Default::default()
    };
    let client = &req.client;
    let mut issued = grants.issue_with(client, &grant, false, None, &overrides)?;
    let r = &mut issued.response;
    match r.id_token.take() {
        Some(id_token) if wants_id_token => {
            r.access_token = id_token;
            r.token_type = "N_A".into();
            r.issued_token_type = Some(ID_TOKEN_TYPE.into());
        }
        _ => r.issued_token_type = Some(ACCESS_TOKEN_TYPE.into()),
    }
    grants.issued(
        "token_exchanged",
        GRANT,
        client.id(),
        &grant.sub,
        &issued.access_jti,
        issued.response.expires_in,
    );
    grants.audit.record(
        Event::new(Kind::TokenExchanged, "success")
            .client(client.id())
            .subject(grant.sub.as_str())
            .connector(connector)
            .detail("subject_token_type", kind),
    );
    Ok(issued.response)
}

/// The request's connector and token type, each one the policy allows.
fn checked<'a>(
    req: &'a ClientRequest,
    policy: &TokenExchangePolicy,
    connector: &str,
) -> Result<&'a str, OAuthError> {
    if !policy.connectors.iter().any(|c| c == connector) {
        return Err(OAuthError::invalid_request(
            "this client may not exchange tokens of that connector",
        ));
    }
    if req.params.get("actor_token").is_some() {
        return Err(OAuthError::invalid_request(
            "an actor_token goes with this provider's own tokens, not an upstream's",
        ));
    }
    let kind = req.params.require("subject_token_type")?;
    // An upstream access token is not taken: what vouches for it (userinfo) answers for
    // tokens of any app at that upstream, so it cannot be tied to this provider's
    // registration. An ID token's `aud` can.
    match kind {
        ID_TOKEN_TYPE => {}
        ACCESS_TOKEN_TYPE => {
            return Err(OAuthError::invalid_request(
                "an upstream's access token cannot be tied to this provider's registration there: exchange its ID token",
            ));
        }
        _ => {
            return Err(OAuthError::invalid_request(
                "subject_token_type is not id_token or access_token",
            ));
        }
    }
    if !policy.subject_token_types.iter().any(|t| t == kind) {
        return Err(OAuthError::invalid_request(
            "this client may not exchange that token type",
        ));
    }
    Ok(kind)
}

/// The client's access policy on the identity; admitted, it is stored as the person's
/// latest claims (userinfo and later refreshes read them).
async fn admit(
    grants: &Grants,
    req: &ClientRequest,
    identity: &Identity,
    connector: &str,
) -> Result<(), OAuthError> {
    let client = &req.client;
    if let Err(refusal) = crate::federation::policy::admits(&client.config, identity) {
        grants.audit.record(
            Event::new(Kind::TokenIssued, "denied")
                .client(client.id())
                .subject(identity.sub.as_str())
                .connector(connector)
                .detail("grant_type", GRANT)
                .detail("reason", refusal.reason()),
        );
        return Err(OAuthError::invalid_request(
            "the subject may not use this client (RFC 8693 §2.2.2)",
        ));
    }
    let stored = serde_json::to_string(identity).map_err(|e| OAuthError::internal(&e))?;
    grants
        .storage
        .put_identity(&identity.sub, &stored, grants.clock.now())
        .await?;
    Ok(())
}

/// What the new token grants: the scope asked for (`openid` by default) among the
/// client's, for the targets asked for (else the client itself).
fn grant_for(
    grants: &Grants,
    req: &ClientRequest,
    policy: &TokenExchangePolicy,
    identity: Identity,
    wants_id_token: bool,
) -> Result<Grant, OAuthError> {
    let client = &req.client;
    let allowed = client.config.scopes.clone().unwrap_or_else(|| {
        crate::config::STANDARD_SCOPES
            .iter()
            .map(|s| s.to_string())
            .collect()
    });
    let scope = check_scope(Some(req.params.get("scope").unwrap_or("openid")), &allowed)?;
    if wants_id_token && !scope.iter().any(|s| s == "openid") {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "an ID token needs the openid scope",
        ));
    }
    Ok(Grant {
        sub: identity.sub.clone(),
        client_id: client.id().into(),
        scope,
        redirect_uri: Default::default(),
        nonce: None,
        code_challenge: None,
        auth_time: grants.clock.now(),
        sid: None,
        claims: None,
        identity,
        resources: targets(req, policy, false)?,
        act: None,
    })
}

/// The identity connector `id` makes of an upstream ID token.
async fn identity(
    grants: &Grants,
    connector: &str,
    token: &str,
) -> Result<(Identity, i64), OAuthError> {
    match grants.connectors.token_identity(connector, token).await {
        None => Err(OAuthError::invalid_request(
            "that connector does not take tokens for exchange",
        )),
        Some(Ok(identity)) => Ok(identity),
        Some(Err(
            ConnectorError::Upstream(UpstreamError::Unavailable(e))
            | ConnectorError::Unavailable(e),
        )) => {
            tracing::warn!(connector, error = %e, "token exchange: the upstream is unavailable");
            Err(OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "the identity provider cannot be reached; try again",
            )
            .with_retry_after(2))
        }
        Some(Err(e)) => {
            tracing::info!(connector, error = %e, "token exchange: the upstream token was refused");
            Err(OAuthError::invalid_request(
                "the subject_token is not valid for that connector",
            ))
        }
    }
}
