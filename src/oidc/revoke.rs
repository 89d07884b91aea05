//! Token revocation (RFC 7009). Valid, already revoked, foreign and unknown tokens all get
//! 200, so the answer says nothing about the token.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::client_auth::ClientRequest;
use super::error::{OAuthError, no_store};
use super::tokens::TokenService;

pub async fn post(
    State(tokens): State<Arc<TokenService>>,
    req: ClientRequest,
) -> Result<Response, OAuthError> {
    let token = req.params.require("token")?;
    tokens.revoke(token, &req.client).await?;
    let mut resp = ().into_response();
    no_store(&mut resp);
    Ok(resp)
}
