//! Token introspection (RFC 7662). A confidential client may introspect any token; a public
//! client only its own. Anything unknown, expired, revoked or foreign is `{"active": false}`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::client_auth::ClientRequest;
use super::error::{OAuthError, no_store};
use super::tokens::TokenService;

pub async fn post(
    State(tokens): State<Arc<TokenService>>,
    req: ClientRequest,
) -> Result<Response, OAuthError> {
    let token = req.params.require("token")?;
    let claims = tokens.validate_access_token(token).await?;
    let body = match claims {
        Some(c) if !req.client.is_public() || c.client_id == req.client.id() => {
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
                let grant: Option<crate::oidc::grants::Grant> =
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
