//! The token-exchange grant (RFC 8693): a client trades an access token of this provider
//! (the subject token) for one meant for another audience, never wider than the original.
//!
//! - The presenting client must be the one the subject token was issued to, or one its
//!   `aud` names (a backend exchanging the token it was called with).
//! - The target (`audience` and `resource` parameters) must be among the client's
//!   `token_exchange.audiences`; else `invalid_target`.
//! - `scope` may only narrow the subject token's.
//! - An `actor_token`, issued to the presenting client, makes it delegation: the new
//!   token's `act` names the actor, with any earlier actor of the subject token nested
//!   inside (§4.1). Without one, an `act` the subject token had is kept: delegation is
//!   never shed by exchanging again.
//! - With `connector_id`, the subject token is an upstream's (`upstream_exchange.rs`).
//! - A person's token goes through the group pipeline and the client's access policy
//!   again, against their latest stored identity (refused: `invalid_request`, §2.2.2);
//!   it keeps the session (`sid`), so a
//!   sign-out ends the exchanged tokens too, and it never outlives the subject token.

use serde_json::{Value, json};

use super::exchange_target::{GRANT, targets};
use super::issue::{Grants, Overrides, TokenResponse, check_scope};
use crate::audit::{Event, Kind};
use crate::config::{ACCESS_TOKEN_TYPE, TokenExchangePolicy};
use crate::federation::Identity;
use crate::oidc::client_auth::ClientRequest;
use crate::oidc::clients::Client;
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::oidc::grant::Grant;
use crate::oidc::tokens::AccessTokenClaims;

fn refuse(description: &'static str) -> OAuthError {
    OAuthError::invalid_request(description)
}

/// A token of ours, valid now, of a type this policy takes.
async fn validated(
    grants: &Grants,
    token: &str,
    kind: &str,
    types: &[String],
    what: &'static str,
) -> Result<AccessTokenClaims, OAuthError> {
    if kind != ACCESS_TOKEN_TYPE || !types.iter().any(|t| t == kind) {
        return Err(refuse(
            "the token type is not one this client may exchange (urn:ietf:params:oauth:token-type:access_token)",
        ));
    }
    grants
        .tokens
        .validate_access_token(token)
        .await?
        .ok_or_else(|| refuse(what))
}

/// The `act` claim of the new token: the actor, with the subject token's actor nested.
async fn actor(
    grants: &Grants,
    req: &ClientRequest,
    policy: &TokenExchangePolicy,
    subject: &AccessTokenClaims,
) -> Result<Option<Value>, OAuthError> {
    let earlier = subject.extra.get("act").cloned();
    let Some(token) = req.params.get("actor_token") else {
        if req.params.get("actor_token_type").is_some() {
            return Err(refuse("actor_token_type without actor_token"));
        }
        return Ok(earlier);
    };
    let kind = req
        .params
        .get("actor_token_type")
        .ok_or_else(|| refuse("actor_token_type is required with actor_token"))?;
    let actor = validated(
        grants,
        token,
        kind,
        &policy.subject_token_types,
        "actor_token is not a valid access token of this provider",
    )
    .await?;
    // The actor is the presenting client (its own token, or one issued to it): holding
    // someone else's token proves nothing about who acts.
    if actor.client_id.as_str() != req.client.id() {
        return Err(refuse(
            "actor_token must be issued to the client presenting it",
        ));
    }
    let mut act = json!({"sub": actor.sub.as_str(), "client_id": actor.client_id.as_str()});
    if let Some(earlier) = earlier {
        act["act"] = earlier;
    }
    Ok(Some(act))
}

pub async fn exchange(grants: &Grants, req: ClientRequest) -> Result<TokenResponse, OAuthError> {
    let client = &req.client;
    let policy = client.config.agents.token_exchange.clone().ok_or_else(|| {
        OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client has no token_exchange policy",
        )
    })?;
    if let Some(connector) = req.params.get("connector_id") {
        return super::upstream_exchange::exchange(grants, &req, &policy, connector).await;
    }
    if req
        .params
        .get("requested_token_type")
        .is_some_and(|t| t != ACCESS_TOKEN_TYPE)
    {
        return Err(refuse(
            "only access tokens are issued (urn:ietf:params:oauth:token-type:access_token)",
        ));
    }
    let subject = validated(
        grants,
        req.params.require("subject_token")?,
        req.params.require("subject_token_type")?,
        &policy.subject_token_types,
        "subject_token is not a valid access token of this provider",
    )
    .await?;
    if subject.client_id != client.id() && !subject.aud.contains(client.id()) {
        return Err(refuse(
            "subject_token was neither issued to this client nor meant for it",
        ));
    }
    let audience = targets(&req, &policy, true)?;
    let held = held_scope(client, &subject);
    let scope = match req.params.get("scope") {
        Some(s) => check_scope(Some(s), &held)?,
        None => held,
    };
    let act = actor(grants, &req, &policy, &subject).await?;
    let now = grants.clock.now();
    let lifetime = grants.access_lifetime(client).min(subject.exp - now);
    // A machine's token (client_credentials) has no session and no sign-in time; a person
    // named like a client still has both.
    let machine = subject.sub.as_str() == subject.client_id.as_str()
        && subject.sid.is_none()
        && subject.auth_time.is_none();
    let issued = if machine {
        for_machine(
            grants,
            client,
            &subject,
            audience,
            &scope,
            act.clone(),
            lifetime,
        )?
    } else {
        for_person(
            grants,
            client,
            &subject,
            audience,
            scope,
            act.clone(),
            lifetime,
        )
        .await?
    };
    audit(grants, client, &subject, act.as_ref(), &issued);
    Ok(issued.response)
}

/// The scopes the subject token holds that the presenting client may have.
fn held_scope(client: &Client, subject: &AccessTokenClaims) -> Vec<String> {
    let may_have = |s: &str| match &client.config.scopes {
        Some(list) => list.iter().any(|a| a == s),
        None => s == "openid" || crate::config::STANDARD_SCOPES.contains(&s),
    };
    subject
        .scope
        .as_deref()
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty() && may_have(s))
        .map(str::to_string)
        .collect()
}

/// A machine's token (`client_credentials`: `sub` is a client) for another audience.
fn for_machine(
    grants: &Grants,
    client: &Client,
    subject: &AccessTokenClaims,
    audience: Vec<String>,
    scope: &[String],
    act: Option<Value>,
    lifetime: i64,
) -> Result<super::issue::IssuedTokens, OAuthError> {
    let mut extra = serde_json::Map::new();
    if let Some(act) = act {
        extra.insert("act".into(), act);
    }
    let mut issued = grants.machine_token(
        client,
        subject.sub.as_str(),
        scope,
        audience,
        lifetime,
        extra,
    )?;
    issued.response.issued_token_type = Some(ACCESS_TOKEN_TYPE.into());
    Ok(issued)
}

/// A person's token for another audience: their latest identity, through the group
/// pipeline and this client's access policy.
async fn for_person(
    grants: &Grants,
    client: &Client,
    subject: &AccessTokenClaims,
    audience: Vec<String>,
    scope: Vec<String>,
    act: Option<Value>,
    lifetime: i64,
) -> Result<super::issue::IssuedTokens, OAuthError> {
    let identity: Identity = match grants.storage.get_identity(subject.sub.as_str()).await? {
        Some(json) => serde_json::from_str(&json).map_err(|e| OAuthError::internal(&e))?,
        None => return Err(refuse("the subject is no longer known")),
    };
    if let Err(refusal) = crate::federation::policy::admits(&client.config, &identity) {
        grants.audit.record(
            Event::new(Kind::TokenIssued, "denied")
                .client(client.id())
                .subject(subject.sub.as_str())
                .detail("grant_type", GRANT)
                .detail("reason", refusal.reason()),
        );
        return Err(refuse(
            "the subject may not use this client (RFC 8693 §2.2.2)",
        ));
    }
    let grant = Grant {
        sub: subject.sub.clone(),
        client_id: client.id().into(),
        scope,
        redirect_uri: Default::default(),
        nonce: None,
        code_challenge: None,
        auth_time: subject.auth_time.unwrap_or(subject.iat),
        sid: subject.sid.clone(),
        claims: None,
        identity,
        resources: audience,
        act,
    };
    let overrides = Overrides {
        lifetime: Some(lifetime),
        no_id_token: true,
        ..Default::default()
    };
    let mut issued = grants.issue_with(client, &grant, false, None, &overrides)?;
    issued.response.issued_token_type = Some(ACCESS_TOKEN_TYPE.into());
    Ok(issued)
}

/// The audit line names the subject, the actor and both clients.
fn audit(
    grants: &Grants,
    client: &Client,
    subject: &AccessTokenClaims,
    act: Option<&Value>,
    issued: &super::issue::IssuedTokens,
) {
    grants.issued(
        "token_exchanged",
        GRANT,
        client.id(),
        subject.sub.as_str(),
        &issued.access_jti,
        issued.response.expires_in,
    );
    let mut event = Event::new(Kind::TokenExchanged, "success")
        .client(client.id())
        .subject(subject.sub.as_str())
        .detail("subject_client_id", subject.client_id.as_str());
    if let Some(act) = act {
        event = event.detail("actor", act["sub"].clone());
    }
    grants.audit.record(event);
}
