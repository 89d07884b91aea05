//! Token introspection (RFC 7662). Per §4, a token is `active` only to a client entitled to
//! know about it: the client it was issued to, a client its `aud` names, or a client
//! configured as a resource server for the issuing client (`resource_server_for`). Anything
//! unknown, expired, revoked, foreign, or from a client that is no longer registered is
//! `{"active": false}`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::client_auth::ClientRequest;
use super::clients::{Client, ClientRegistry};
use super::error::{OAuthError, no_store};
use super::tokens::{AccessTokenClaims, TokenService};

fn entitled(asking: &Client, token: &AccessTokenClaims, registry: &ClientRegistry) -> bool {
    if registry.get(&token.client_id).is_none() {
        return false;
    }
    let me = asking.id();
    token.client_id == me
        || (!asking.is_public()
            && (token.aud.contains(me)
                || asking
                    .config
                    .resource_server_for
                    .iter()
                    .any(|c| c == "*" || *c == token.client_id)))
}

pub async fn post(
    State(tokens): State<Arc<TokenService>>,
    State(registry): State<Arc<ClientRegistry>>,
    req: ClientRequest,
) -> Result<Response, OAuthError> {
    let token = req.params.require("token")?;
    let claims = tokens.validate_access_token(token).await?;
    let body = match claims {
        Some(c) if entitled(&req.client, &c, &registry) => {
            let mut v = serde_json::to_value(&c).map_err(|e| OAuthError::internal(&e))?;
            if let Some(obj) = v.as_object_mut() {
                obj.insert("active".into(), json!(true));
                obj.insert("token_type".into(), json!("Bearer"));
            }
            v
        }
        Some(_) => json!({ "active": false }),
        None => match tokens.live_refresh_token(token, req.client.id()).await? {
            Some((family, exp)) => {
                let grant: Option<crate::oidc::grant::Grant> =
                    serde_json::from_str(&family.grant).ok();
                json!({
                    "active": true,
                    "token_type": "refresh_token",
                    "client_id": family.client_id,
                    "sub": family.sub,
                    "iss": tokens.issuer,
                    "exp": exp,
                    "iat": family.created_at,
                    "scope": grant.map(|g| g.scope.join(" ")),
                })
            }
            None => json!({ "active": false }),
        },
    };
    let mut resp = Json(body).into_response();
    no_store(&mut resp);
    Ok(resp)
}
